"""Runtime observability: OpenTelemetry spans per saga and per attempt, and
metrics, checked with the SDK's in-memory exporter on the virtual clock."""

from __future__ import annotations

import ast
import itertools
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode
from rt_helpers import Script, vrun

from runtime import (
    BreakerState,
    Engine,
    SagaEvent,
    SagaOutcome,
    VirtualClock,
    otel_telemetry,
)
from saga_models import CircuitBreaker, RetryPolicy, Saga, SagaBuilder

ROOT = Path(__file__).resolve().parents[2]


def trip() -> Saga:
    """Two compensatable steps, then a payment that fails on every attempt,
    behind a breaker that opens after two failures."""
    return (SagaBuilder("trip")
            .step("hotel", participant="p", action="a", compensation="ua")
            .step("flight", participant="p", action="b", compensation="ub")
            .step("pay", participant="bank", action="pay",
                  retry=RetryPolicy(max_attempts=3, initial_interval=2.0,
                                    backoff=1.0),
                  breaker=CircuitBreaker(failure_threshold=2,
                                         recovery_timeout=60.0))
            .build())


def _run(saga: Saga, script: Script, telemetry: Any) -> Any:
    async def main(clock: VirtualClock) -> Any:
        engine = Engine(saga, script.participants(saga), clock=clock,
                        telemetry=telemetry)
        try:
            return await engine.run({})
        finally:
            await engine.aclose()

    return vrun(main)


def _otel() -> tuple[Any, InMemorySpanExporter, InMemoryMetricReader]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    telemetry = otel_telemetry(tracer_provider=tracer_provider,
                               meter_provider=MeterProvider(metric_readers=[reader]))
    return telemetry, exporter, reader


def _metrics(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {m.name: list(m.data.data_points)
            for rm in data.resource_metrics for sm in rm.scope_metrics
            for m in sm.metrics}


def _attempts(spans: tuple[ReadableSpan, ...]) -> list[tuple[Any, ...]]:
    return [(s.name, dict(s.attributes or {})["sagaproof.attempt"],
             dict(s.attributes or {})["sagaproof.outcome"],
             dict(s.attributes or {}).get("sagaproof.breaker.state"))
            for s in sorted(spans, key=lambda s: s.start_time or 0)  # stable
            if s.name.startswith(("action", "compensation"))]


def test_the_spans_and_metrics_of_a_compensated_saga() -> None:
    telemetry, exporter, reader = _otel()
    script = Script({("pay", "action"): ["fail", "fail"]})
    result = _run(trip(), script, telemetry)
    assert result.outcome is SagaOutcome.COMPENSATED
    spans = exporter.get_finished_spans()
    (saga,) = [s for s in spans if s.name == "saga trip"]
    assert saga.attributes is not None
    assert saga.attributes["sagaproof.saga.outcome"] == "COMPENSATED"
    assert saga.attributes["sagaproof.saga.id"] == result.saga_id
    assert saga.status.status_code is StatusCode.ERROR  # a rollback is no success
    # Every attempt: its own span under the saga's, retries included; the
    # third payment is refused by the open breaker without a call.
    assert _attempts(spans) == [
        ("action hotel", 1, "ok", None),
        ("action flight", 1, "ok", None),
        ("action pay", 1, "failed", "closed"),
        ("action pay", 2, "failed", "open"),
        ("action pay", 3, "failed", "open"),
        ("compensation flight", 1, "ok", None),
        ("compensation hotel", 1, "ok", None),
    ]
    assert len([c for c in script.calls if c[0] == "pay"]) == 2
    for s in spans:
        if s is not saga:
            assert s.parent is not None
            assert s.parent.span_id == saga.context.span_id
            assert s.context.trace_id == saga.context.trace_id
    # Times come from the virtual clock: the retries wait out their backoff.
    pays = sorted((s for s in spans if s.name == "action pay"),
                  key=lambda s: s.start_time or 0)
    gaps = [((b.start_time or 0) - (a.start_time or 0)) / 1e9
            for a, b in itertools.pairwise(pays)]
    assert gaps == [pytest.approx(2.0, abs=0.05)] * 2
    assert saga.start_time is not None and saga.end_time is not None
    assert all(saga.start_time <= (s.start_time or 0) <= (s.end_time or 0)
               <= saga.end_time for s in spans)
    metrics = _metrics(reader)
    (started,) = metrics["sagaproof.sagas.started"]
    assert started.value == 1
    (ended,) = metrics["sagaproof.sagas.ended"]
    assert (ended.value, ended.attributes["sagaproof.saga.outcome"]) == (
        1, "COMPENSATED")
    latency = {(p.attributes["sagaproof.step"], p.attributes["sagaproof.outcome"]):
               p.count for p in metrics["sagaproof.step.duration"]}
    assert latency == {("hotel", "ok"): 1, ("flight", "ok"): 1,
                       ("pay", "failed"): 3}


def test_a_completed_saga_is_one_ok_span_with_no_compensation() -> None:
    telemetry, exporter, reader = _otel()
    result = _run(trip(), Script(), telemetry)
    assert result.outcome is SagaOutcome.COMPLETED
    spans = exporter.get_finished_spans()
    (saga,) = [s for s in spans if s.name == "saga trip"]
    assert saga.status.status_code is StatusCode.OK
    assert _attempts(spans) == [("action hotel", 1, "ok", None),
                                ("action flight", 1, "ok", None),
                                ("action pay", 1, "ok", "closed")]
    (ended,) = _metrics(reader)["sagaproof.sagas.ended"]
    assert ended.attributes["sagaproof.saga.outcome"] == "COMPLETED"


def test_a_failing_telemetry_never_breaks_the_saga(
        caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, float, BreakerState | None]] = []

    class Broken:
        def observe(self, event: SagaEvent, *, at: float,
                    breaker: BreakerState | None) -> None:
            seen.append((event.type.value, at, breaker))
            raise RuntimeError("exporter down")

    with caplog.at_level(logging.ERROR, logger="sagaproof.runtime"):
        result = _run(trip(), Script(), Broken())
    assert result.outcome is SagaOutcome.COMPLETED
    assert [s[0] for s in seen][:2] == ["SAGA_STARTED", "STEP_STARTED"]
    assert seen[-1][0] == "SAGA_COMPLETED"
    assert "exporter down" in caplog.text


def test_the_runtime_needs_opentelemetry_only_for_tracing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only runtime/_otel.py imports OpenTelemetry, and only on request."""
    def imports_otel(path: Path) -> bool:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                     [a.name for a in node.names] if isinstance(node, ast.Import)
                     else [])
            if any(n.split(".")[0] == "opentelemetry" for n in names):
                return True
        return False

    importers = sorted(p.name for p in (ROOT / "runtime").rglob("*.py")
                       if imports_otel(p))
    assert importers == ["_otel.py"]
    code = ("import sys, runtime; "
            "print(any(m.startswith('opentelemetry') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, text=True,
                         capture_output=True, env={"PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False"
    # Without the extra: a clear ImportError naming it.
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "runtime._otel", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'sagaproof\[otel\]'"):
        otel_telemetry()

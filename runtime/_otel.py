"""OpenTelemetry for the runtime: one span per saga run and one per attempt of
an action or a compensation (its outcome, attempt number, idempotency key's
parts and breaker state as attributes), and metrics: sagas started and ended
by outcome, attempt latency.

Needs the ``otel`` extra (``opentelemetry-api``, ``opentelemetry-sdk``);
nothing else in the runtime imports this module.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from ._breaker import BreakerState
from ._events import EventType, SagaEvent

_NS = 1_000_000_000

_BEGIN = {EventType.SAGA_STARTED: "start", EventType.SAGA_RECOVERED: "recover",
          EventType.SAGA_RESUMED: "resume"}
_END = {EventType.SAGA_COMPLETED: "COMPLETED",
        EventType.SAGA_COMPENSATED: "COMPENSATED",
        EventType.SAGA_FAILED: "FAILED", EventType.SAGA_STUCK: "STUCK"}
_ATTEMPT_START = {EventType.STEP_STARTED: "action",
                  EventType.COMPENSATION_STARTED: "compensation"}
_ATTEMPT_END = {
    EventType.STEP_COMPLETED: ("action", "ok"),
    EventType.STEP_FAILED: ("action", "failed"),
    EventType.STEP_TIMED_OUT: ("action", "unknown"),
    EventType.COMPENSATION_COMPLETED: ("compensation", "ok"),
    EventType.COMPENSATION_FAILED: ("compensation", "failed"),
    EventType.COMPENSATION_TIMED_OUT: ("compensation", "unknown"),
}


class OpenTelemetry:
    """A :class:`~runtime.Telemetry` that records OpenTelemetry spans and
    metrics; timestamps come from the engine's injected clock.

    Args:
        tracer_provider: Where spans go (default: the global provider).
        meter_provider: Where metrics go (default: the global provider).
    """

    def __init__(self, *, tracer_provider: Any = None,
                 meter_provider: Any = None) -> None:
        self._tracer = trace.get_tracer("sagaproof.runtime",
                                        tracer_provider=tracer_provider)
        meter = metrics.get_meter("sagaproof.runtime", meter_provider=meter_provider)
        self._started = meter.create_counter(
            "sagaproof.sagas.started", unit="{saga}",
            description="saga runs started, recovered or resumed")
        self._ended = meter.create_counter(
            "sagaproof.sagas.ended", unit="{saga}",
            description="saga runs that reached a terminal outcome, by outcome "
            "(COMPLETED, COMPENSATED, FAILED, STUCK)")
        self._latency = meter.create_histogram(
            "sagaproof.step.duration", unit="s",
            description="time from sending an attempt to its reply")
        self._sagas: dict[str, Span] = {}
        self._attempts: dict[tuple[str, str, str], tuple[Span, float]] = {}

    def observe(self, event: SagaEvent, *, at: float,
                breaker: BreakerState | None) -> None:
        """Open or close the span ``event`` begins or ends; count it."""
        t = event.type
        when = int(at * _NS)
        if t in _BEGIN:
            self._begin_saga(event, _BEGIN[t], when)
        elif t in _END:
            self._end_saga(event, _END[t], when)
        elif t in _ATTEMPT_START:
            self._begin_attempt(event, _ATTEMPT_START[t], at, breaker)
        elif t in _ATTEMPT_END:
            kind, outcome = _ATTEMPT_END[t]
            self._end_attempt(event, kind, outcome, at, breaker)

    def _begin_saga(self, event: SagaEvent, how: str, when: int) -> None:
        old = self._sagas.pop(event.saga_id, None)
        if old is not None:  # the previous run of this instance was cut short
            old.set_status(Status(StatusCode.ERROR, "interrupted"))
            old.end(end_time=when)
        span = self._tracer.start_span(
            f"saga {event.saga_name}", start_time=when,
            attributes={"sagaproof.saga.id": event.saga_id,
                        "sagaproof.saga.name": event.saga_name,
                        "sagaproof.saga.run": how})
        self._sagas[event.saga_id] = span
        self._started.add(1, {"sagaproof.saga.name": event.saga_name,
                              "sagaproof.saga.run": how})

    def _end_saga(self, event: SagaEvent, outcome: str, when: int) -> None:
        self._ended.add(1, {"sagaproof.saga.name": event.saga_name,
                            "sagaproof.saga.outcome": outcome})
        span = self._sagas.pop(event.saga_id, None)
        if span is None:
            return
        span.set_attribute("sagaproof.saga.outcome", outcome)
        # Only COMPLETED is a success; a rollback is not (SagaResult.completed).
        span.set_status(Status(StatusCode.OK) if outcome == "COMPLETED"
                        else Status(StatusCode.ERROR, outcome))
        span.end(end_time=when)

    def _begin_attempt(self, event: SagaEvent, kind: str, at: float,
                       breaker: BreakerState | None) -> None:
        parent = self._sagas.get(event.saga_id)
        context = trace.set_span_in_context(parent) if parent is not None else None
        attributes: dict[str, str | int] = {
            "sagaproof.saga.id": event.saga_id, "sagaproof.step": event.step or "",
            "sagaproof.attempt.kind": kind, "sagaproof.attempt": event.attempt}
        if breaker is not None:
            attributes["sagaproof.breaker.state"] = breaker.value
        span = self._tracer.start_span(f"{kind} {event.step}", context=context,
                                       start_time=int(at * _NS),
                                       attributes=attributes)
        key = (event.saga_id, event.step or "", kind)
        old = self._attempts.pop(key, None)
        if old is not None:  # superseded without a reply (a crash in between)
            old[0].set_status(Status(StatusCode.ERROR, "no reply"))
            old[0].end(end_time=int(at * _NS))
        self._attempts[key] = (span, at)

    def _end_attempt(self, event: SagaEvent, kind: str, outcome: str, at: float,
                     breaker: BreakerState | None) -> None:
        found = self._attempts.pop((event.saga_id, event.step or "", kind), None)
        if found is None:
            return  # its start was published by another worker
        span, began = found
        span.set_attribute("sagaproof.outcome", outcome)
        if breaker is not None:
            span.set_attribute("sagaproof.breaker.state", breaker.value)
        if outcome == "ok":
            span.set_status(Status(StatusCode.OK))
        else:
            span.set_status(Status(StatusCode.ERROR, event.error or outcome))
        span.end(end_time=int(at * _NS))
        self._latency.record(max(0.0, at - began), {
            "sagaproof.saga.name": event.saga_name, "sagaproof.step": event.step or "",
            "sagaproof.attempt.kind": kind, "sagaproof.outcome": outcome})

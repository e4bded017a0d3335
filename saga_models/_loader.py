"""Loading YAML and JSON saga definitions into the IR (minimal first version;
the loader owner extends it with schema checks and every diagnostic)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ._errors import Diagnostic, InvalidDefinition
from ._ir import AfterExhausted, CompensationPolicy, RetryPolicy, Saga, Step, StepKind
from ._source import Document, parse_document, read_document
from ._validate import lowering_diagnostics

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``"1s"``, ``"250ms"``, ``"2m"``, ``3`` to seconds.

    >>> parse_duration("250ms")
    0.25
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (write e.g. 10s, 250ms, 2m)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def load(path: str | Path) -> Any:
    """Load a definition file (saga or workflow) into its IR."""
    return load_document(read_document(path))


def loads(text: str, *, fmt: str = "yaml", file: str = "<memory>") -> Any:
    """Load a definition from a string."""
    return load_document(parse_document(text, file=file, fmt=fmt))


def load_document(doc: Document) -> Any:
    """Lower a parsed document into a Saga (or hand it to the workflow loader)."""
    data = doc.data
    if isinstance(data, dict) and "workflow" in data:
        from .workflow import load_workflow_document  # type: ignore[attr-defined]

        return load_workflow_document(doc)
    if isinstance(data, dict) and "saga" not in data:
        from . import importers  # ASL and Seata files, detected by their shape

        if importers.detect(data) is not None:
            return importers.load_document(doc)
    if not isinstance(data, dict) or "saga" not in data:
        raise InvalidDefinition((Diagnostic(
            code="SAGA121", message="not a saga or workflow definition",
            span=doc.span(""),
            help="start the file with 'saga: <name>' and a 'steps:' list"),))
    return _lower_saga(doc, data)


def _lower_saga(doc: Document, data: dict[str, Any]) -> Saga:
    steps: list[Step] = []
    for i, raw in enumerate(data.get("steps") or []):
        ptr = f"/steps/{i}"
        if "depends_on" in raw:
            deps = tuple(raw["depends_on"])
        else:
            deps = (steps[-1].name,) if steps else ()
        retry = raw.get("retry") or {}
        max_attempts = retry.get("max_attempts", 1)
        if max_attempts in ("forever", "unbounded", None):
            max_attempts = None
        steps.append(Step(
            name=raw["name"],
            participant=raw.get("participant", ""),
            action=raw.get("action", raw["name"]),
            compensation=raw.get("compensation"),
            kind=StepKind(raw.get("kind", "compensatable")),
            depends_on=deps,
            retry=RetryPolicy(
                max_attempts=max_attempts,
                initial_interval=parse_duration(retry.get("initial_interval", 1)),
                backoff=float(retry.get("backoff", 2.0)),
                max_interval=parse_duration(retry.get("max_interval", 100)),
                span=doc.span(ptr + "/retry"),
            ),
            timeout=parse_duration(raw["timeout"]) if "timeout" in raw else None,
            idempotent=bool(raw.get("idempotent", True)),
            compensation_needs_result=bool(raw.get("compensation_needs_result", False)),
            span=doc.span(ptr),
            field_spans=tuple((k, doc.span(f"{ptr}/{k}")) for k in raw),
        ))
    policy_raw = data.get("compensation_policy") or {}
    if policy_raw.get("retry") == "forever" or not policy_raw:
        policy = CompensationPolicy(span=doc.span("/compensation_policy"))
    else:
        policy = CompensationPolicy(
            max_attempts=int(policy_raw["max_attempts"]),
            then=AfterExhausted(policy_raw.get("then", "escalate")),
            span=doc.span("/compensation_policy"),
        )
    saga = Saga(name=str(data["saga"]), steps=tuple(steps),
                compensation_policy=policy, source_format=doc.fmt,
                span=doc.span(""))
    problems = lowering_diagnostics(saga)
    if problems:
        raise InvalidDefinition(problems)
    return saga

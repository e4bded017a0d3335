"""Loading YAML and JSON saga definitions into the IR.

Three passes, each reporting every problem it finds before anything is raised:

1. :mod:`._source` parses the text (size, depth and alias guards) into plain data
   with a span per JSON pointer;
2. :mod:`._schema` checks the shape against the JSON Schema (unknown keys with a
   "did you mean", wrong types, unknown words);
3. this module lowers whatever is well-formed into the IR, putting defaults where
   a value was already reported as bad, so that :func:`lowering_diagnostics` can
   still find duplicate names, unknown dependencies, cycles and out-of-range
   values in the same run.

If any pass found an error, one :class:`InvalidDefinition` carries them all, in
file order.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ._errors import Diagnostic, InvalidDefinition, Severity
from ._ir import (
    AfterExhausted,
    CircuitBreaker,
    CompensationChain,
    CompensationPolicy,
    Effect,
    Resource,
    ResourceInvariant,
    RetryPolicy,
    Saga,
    Step,
    StepKind,
)
from ._resources import effect_from_data
from ._schema import schema_diagnostics
from ._source import Document
from ._span import Span
from ._validate import lowering_diagnostics

_T = TypeVar("_T")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
FOREVER = ("forever", "unbounded")
"""Words for an unbounded number of attempts."""


def parse_duration(value: Any) -> float:
    """A duration in seconds: ``"10s"``, ``"250ms"``, ``"2m"``, ``"1h"``,
    ``"1m30s"``, or a number of seconds.

    >>> parse_duration("250ms"), parse_duration("1m30s"), parse_duration(3)
    (0.25, 90.0, 3.0)

    Raises:
        ValueError: ``value`` is not a duration.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _float(value)
    if isinstance(value, str) and value.strip():
        text, pos, total = value.strip(), 0, 0.0
        while pos < len(text):
            m = _DURATION_PART.match(text, pos)
            if m is None:
                break
            total += float(m.group(1)) * _UNIT[m.group(2)]
            pos = m.end()
        else:
            return total
    raise ValueError(f"not a duration: value={value!r}; write e.g. 10s, 250ms, "
                     "2m, 1h or a number of seconds")


def parse_attempts(value: Any) -> int | None:
    """``max_attempts`` as an int, or ``None`` for ``forever``.

    >>> parse_attempts(3), parse_attempts("forever")
    (3, None)

    Raises:
        ValueError: ``value`` is neither a whole number nor ``forever``.
    """
    if value in FOREVER:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"not a number of attempts: max_attempts={value!r}; write a "
                     "whole number or 'forever'")


def lower_saga(doc: Document) -> Saga:
    """Validate ``doc`` against the schema and lower it to a :class:`Saga`.

    Raises:
        InvalidDefinition: with every schema, lowering and value problem.
    """
    problems = schema_diagnostics(doc)
    lowering = _Lowering(doc, problems)
    saga = lowering.saga()
    problems.extend(lowering.extra)
    for d in lowering_diagnostics(saga):
        if d.code == "SAGA100" and lowering.steps_incomplete:
            continue  # the steps are there, just malformed, and said so already
        if d.span.pointer in lowering.bad:
            continue  # a default stood in for a value the schema reported
        problems.append(d)
    errors = [d for d in problems if d.severity is Severity.ERROR]
    if errors:
        raise InvalidDefinition(tuple(sorted(
            problems, key=lambda d: (d.span.line or 1 << 30, d.span.column))))
    return saga


class _Lowering:
    """Builds the IR from schema-checked data; reads a field only when the schema
    found nothing wrong with it, and uses the default otherwise."""

    def __init__(self, doc: Document, problems: list[Diagnostic]) -> None:
        self.doc = doc
        self.bad = {d.span.pointer for d in problems}
        self.extra: list[Diagnostic] = []
        self.steps_incomplete = False

    def ok(self, pointer: str) -> bool:
        """True when the node itself is well-formed (a mapping may still hold a
        bad key, which is then skipped on its own)."""
        return pointer not in self.bad

    def ok_deep(self, pointer: str) -> bool:
        """True when nothing at or under ``pointer`` was reported."""
        return not any(b == pointer or b.startswith(pointer + "/") for b in self.bad)

    def get(self, raw: Mapping[str, Any], key: str, pointer: str,
            convert: Callable[[Any], _T], default: _T) -> _T:
        ptr = f"{pointer}/{key}"
        if key not in raw or not self.ok_deep(ptr):
            return default
        try:
            return convert(raw[key])
        except (TypeError, ValueError):
            return default  # reported by the schema (or unreachable with it)

    def spans(self, raw: Mapping[str, Any], pointer: str,
              prefix: str = "") -> list[tuple[str, Span]]:
        return [(prefix + str(k), self.doc.span(f"{pointer}/{k}")) for k in raw]

    # --- the saga ----------------------------------------------------------------
    def saga(self) -> Saga:
        data: Mapping[str, Any] = self.doc.data
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not self.ok("/steps"):
            self.steps_incomplete = True
            raw_steps = []
        steps: list[Step] = []
        for i, raw in enumerate(raw_steps):
            step = self.step(raw, f"/steps/{i}", steps[-1].name if steps else None)
            if step is None:
                self.steps_incomplete = True
            else:
                steps.append(step)
        return Saga(
            name=self.get(data, "saga", "", _string, "<unnamed>"),
            steps=tuple(steps),
            compensation_policy=self.policy(data.get("compensation_policy")),
            compensation_chains=self.chains(data.get("compensation_chains")),
            resources=self.resources(data.get("resources")),
            invariants=self.invariants(data.get("invariants")),
            instances=self.get(data, "instances", "", _integer, 1),
            semantic_locks=self.get(data, "semantic_locks", "", _names, ()),
            pessimistic_view=self.get(data, "pessimistic_view", "", _names, ()),
            source_format=self.doc.fmt,
            span=self.doc.span(""),
        )

    def step(self, raw: Any, ptr: str, previous: str | None) -> Step | None:
        if not isinstance(raw, Mapping):
            return None
        name = self.get(raw, "name", ptr, _string, None)
        if name is None:
            return None
        deps: tuple[str, ...]
        if "depends_on" in raw:
            deps = self.get(raw, "depends_on", ptr, _names, ())
        else:  # no depends_on: follow the previous step, making a chain (not a
            # self-loop when two steps share a name: that is SAGA101 already)
            deps = (previous,) if previous not in (None, name) else ()
        field_spans = self.spans(raw, ptr)
        retry = RetryPolicy(span=self.doc.span(ptr + "/retry"))
        if isinstance(raw.get("retry"), Mapping) and self.ok(ptr + "/retry"):
            retry = self.retry(raw["retry"], ptr + "/retry")
            field_spans += self.spans(raw["retry"], ptr + "/retry", "retry.")
        breaker = None
        if isinstance(raw.get("breaker"), Mapping) and self.ok(ptr + "/breaker"):
            breaker = self.breaker(raw["breaker"], ptr + "/breaker")
            field_spans += self.spans(raw["breaker"], ptr + "/breaker", "breaker.")
        kind = self.get(raw, "kind", ptr, StepKind, StepKind.COMPENSATABLE)
        raw_retry = raw.get("retry")
        if kind is StepKind.RETRIABLE and not (
                isinstance(raw_retry, Mapping) and "max_attempts" in raw_retry):
            # The semantics retries a retriable step until it succeeds; only a
            # bound the author wrote may cut that short (SAGA116 reports it).
            retry = dataclasses.replace(retry, max_attempts=None)
        return Step(
            name=name,
            participant=self.get(raw, "participant", ptr, _string, ""),
            action=self.get(raw, "action", ptr, _string, name),
            compensation=self.get(raw, "compensation", ptr, _optional_string, None),
            kind=kind,
            depends_on=deps,
            retry=retry,
            timeout=self.get(raw, "timeout", ptr, parse_duration, None),
            total_timeout=self.get(raw, "total_timeout", ptr, parse_duration, None),
            idempotent=self.get(raw, "idempotent", ptr, _boolean, True),
            compensation_needs_result=self.get(
                raw, "compensation_needs_result", ptr, _boolean, False),
            idempotency_key=self.get(raw, "idempotency_key", ptr, _string, None),
            breaker=breaker,
            cache_ttl=self.get(raw, "cache_ttl", ptr, parse_duration, None),
            effect=self.effect(raw, "effect", ptr),
            compensation_effect=self.effect(raw, "compensation_effect", ptr),
            read_only=self.get(raw, "read_only", ptr, _boolean, False),
            empty_rollback=self.get(raw, "empty_rollback", ptr, _boolean, False),
            anti_suspension=self.get(raw, "anti_suspension", ptr, _boolean, False),
            span=self.doc.span(ptr),
            field_spans=tuple(field_spans),
        )

    def effect(self, raw: Mapping[str, Any], key: str, ptr: str) -> Effect | None:
        value = raw.get(key)
        ptr = f"{ptr}/{key}"
        if not isinstance(value, Mapping) or not self.ok_deep(ptr):
            return None
        return effect_from_data(value, self.doc.span(ptr))

    def resources(self, raw: Any) -> tuple[Resource, ...]:
        if not isinstance(raw, Mapping) or not self.ok("/resources"):
            return ()
        out = []
        for name, value in raw.items():
            ptr = f"/resources/{name}"
            if isinstance(value, Mapping) and self.ok_deep(ptr):
                fields = value.get("fields") or {}
                if value.get("kind") == "record" and "initial" in value:
                    # The IR cannot tell an absent initial from 0: say it here.
                    self.extra.append(Diagnostic(
                        code="SAGA166",
                        message=f"record {name!r} has initial="
                        f"{value['initial']!r}",
                        span=self.doc.span(f"{ptr}/initial"),
                        help="a record's initial values are its fields' "
                        "('fields: {total: 10}')"))
                out.append(Resource(
                    name=str(name), initial=int(value.get("initial", 0)),
                    kind=str(value.get("kind", "counter")),
                    fields=tuple((str(f), int(v)) for f, v in fields.items()),
                    key=str(value.get("key", "shared")),
                    span=self.doc.span(ptr)))
        return tuple(out)

    def invariants(self, raw: Any) -> tuple[ResourceInvariant, ...]:
        if not isinstance(raw, Mapping) or not self.ok("/invariants"):
            return ()
        return tuple(
            ResourceInvariant(name=str(name), expr=str(text),
                              span=self.doc.span(f"/invariants/{name}"))
            for name, text in raw.items()
            if self.ok_deep(f"/invariants/{name}")
        )

    def retry(self, raw: Mapping[str, Any], ptr: str) -> RetryPolicy:
        d = RetryPolicy()
        return RetryPolicy(
            max_attempts=self.get(raw, "max_attempts", ptr, parse_attempts,
                                  d.max_attempts),
            initial_interval=self.get(raw, "initial_interval", ptr, parse_duration,
                                      d.initial_interval),
            backoff=self.get(raw, "backoff", ptr, _number, d.backoff),
            max_interval=self.get(raw, "max_interval", ptr, parse_duration,
                                  d.max_interval),
            jitter=self.get(raw, "jitter", ptr, _number, d.jitter),
            retryable_errors=self.get(raw, "retryable_errors", ptr, _names, ()),
            non_retryable_errors=self.get(raw, "non_retryable_errors", ptr,
                                          _names, ()),
            span=self.doc.span(ptr),
        )

    def breaker(self, raw: Mapping[str, Any], ptr: str) -> CircuitBreaker:
        d = CircuitBreaker()
        return CircuitBreaker(
            failure_threshold=self.get(raw, "failure_threshold", ptr, _integer,
                                       d.failure_threshold),
            recovery_timeout=self.get(raw, "recovery_timeout", ptr, parse_duration,
                                      d.recovery_timeout),
            span=self.doc.span(ptr),
        )

    def policy(self, raw: Any) -> CompensationPolicy:
        ptr = "/compensation_policy"
        d = CompensationPolicy()
        if not isinstance(raw, Mapping) or not self.ok(ptr):
            return CompensationPolicy(span=self.doc.span(ptr))
        attempts = self.get(raw, "max_attempts", ptr, parse_attempts, None)
        if "retry" in raw and attempts is not None:
            self.extra.append(Diagnostic(
                code="SAGA128",
                message="compensation_policy says both retry='forever' and "
                f"max_attempts={attempts!r}",
                span=self.doc.span(ptr + "/max_attempts"),
                help="keep 'retry: forever' to retry until success, or "
                "'max_attempts: N' to escalate after N attempts, not both",
            ))
        return CompensationPolicy(
            max_attempts=attempts,
            then=self.get(raw, "then", ptr, AfterExhausted, d.then),
            initial_interval=self.get(raw, "initial_interval", ptr, parse_duration,
                                      d.initial_interval),
            backoff=self.get(raw, "backoff", ptr, _number, d.backoff),
            max_interval=self.get(raw, "max_interval", ptr, parse_duration,
                                  d.max_interval),
            span=self.doc.span(ptr),
        )

    def chains(self, raw: Any) -> tuple[CompensationChain, ...]:
        if not isinstance(raw, list) or not self.ok("/compensation_chains"):
            return ()
        out: list[CompensationChain] = []
        for i, chain in enumerate(raw):
            ptr = f"/compensation_chains/{i}"
            if not isinstance(chain, Mapping) or not self.ok(ptr):
                continue
            out.append(CompensationChain(
                trigger=self.get(chain, "trigger", ptr, _string, "*"),
                steps=self.get(chain, "steps", ptr, _names, ()),
                unconditional=self.get(chain, "unconditional", ptr, _boolean, False),
                span=self.doc.span(ptr),
            ))
        return tuple(out)


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(value)
    return value


def _optional_string(value: Any) -> str | None:
    return None if value is None else _string(value)


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(value)
    return tuple(_string(v) for v in value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return _float(value)


def _float(value: int | float) -> float:
    """``float(value)``, with an integer too large for a float read as
    infinity, which the range rules then report (SAGA127) instead of the
    conversion raising ``OverflowError``."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _integer(value: Any) -> int:
    attempts = parse_attempts(value)
    if attempts is None:
        raise TypeError(value)
    return attempts

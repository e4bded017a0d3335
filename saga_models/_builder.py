"""The Python builder API: the third way to write a saga, same IR.

The builder takes the same vocabulary as the file format (durations as ``"10s"``
or seconds, ``max_attempts="forever"``, retry and breaker settings as mappings or
IR values) and lowers it to the same values, so a saga written here and the same
saga written in YAML have equal :meth:`Saga.to_dict` and ``content_hash``.
Problems are collected while the saga is built and raised together by
:meth:`SagaBuilder.build`, each pointing at the user's call.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
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
from ._loader import FOREVER, parse_attempts, parse_duration
from ._span import Span
from ._validate import lowering_diagnostics

_T = TypeVar("_T")
Duration = float | int | str
"""Seconds, or a string such as ``"10s"``, ``"250ms"``, ``"2m"``."""

_RETRY_DURATIONS = ("initial_interval", "max_interval")
_RETRY_NUMBERS = ("backoff", "jitter")


def _call_site() -> Span:
    """The span of the user's call (the first frame outside this module)."""
    frame = inspect.currentframe()
    here = __file__
    while frame is not None and frame.f_code.co_filename == here:
        frame = frame.f_back
    if frame is None:
        return Span(file="<builder>")
    return Span(file=frame.f_code.co_filename, line=frame.f_lineno, column=1)


class SagaBuilder:
    """A mutable builder that freezes into a :class:`Saga`.

    Omitting ``depends_on`` makes a step follow the previous one (a chain);
    ``depends_on=[]`` starts a parallel root. Diagnostics point at the call site.

    >>> saga = (SagaBuilder("t")
    ...         .step("a", participant="p", action="x", compensation="undo",
    ...               timeout="10s", retry={"max_attempts": 3, "backoff": 2})
    ...         .build())
    >>> saga.steps[0].timeout, saga.steps[0].retry.max_attempts
    (10.0, 3)
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._span = _call_site()
        self._steps: list[Step] = []
        self._policy = CompensationPolicy(span=self._span)
        self._chains: list[CompensationChain] = []
        self._problems: list[Diagnostic] = []
        self._resources: list[Resource] = []
        self._invariants: list[ResourceInvariant] = []
        self._instances = 1
        self._locks: tuple[str, ...] = ()
        self._pessimistic: tuple[str, ...] = ()

    # --- problems found while building ---------------------------------------
    def _problem(self, code: str, message: str, span: Span, help: str) -> None:
        self._problems.append(Diagnostic(code=code, message=message, span=span,
                                         help=help))

    def _convert(self, where: str, field: str, value: Any,  # noqa: PLR0917
                 convert: Callable[[Any], _T], default: _T, span: Span) -> _T:
        try:
            return convert(value)
        except (TypeError, ValueError):
            duration = convert is parse_duration or convert is _optional_duration
            self._problem(
                "SAGA126" if duration else "SAGA124",
                f"{where}{field}={value!r} is not "
                + ("a duration" if duration else "a valid value"),
                span,
                "write seconds as a number, or a string such as '10s', '250ms', "
                "'2m'" if duration else f"see the type of {field!r} in Step",
            )
            return default

    def _unknown_keys(self, where: str, given: Mapping[str, Any],
                      known: Sequence[str], span: Span) -> None:
        for key in given:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                self._problem("SAGA122", f"unknown key {key!r} in {where}", span,
                              f"did you mean {close[0]!r}?" if close
                              else f"known keys: {', '.join(known)}")

    # --- the API ---------------------------------------------------------------
    def step(
        self,
        name: str,
        *,
        participant: str,
        action: str | None = None,
        compensation: str | None = None,
        kind: StepKind | str = StepKind.COMPENSATABLE,
        depends_on: Sequence[str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: Duration | None = None,
        total_timeout: Duration | None = None,
        idempotent: bool = True,
        compensation_needs_result: bool = False,
        idempotency_key: str | None = None,
        breaker: CircuitBreaker | Mapping[str, Any] | None = None,
        cache_ttl: Duration | None = None,
        effect: Effect | Mapping[str, Any] | None = None,
        compensation_effect: Effect | Mapping[str, Any] | None = None,
        read_only: bool = False,
        empty_rollback: bool = False,
        anti_suspension: bool = False,
    ) -> SagaBuilder:
        """Add a step; see :class:`Step` for the fields. ``action`` defaults to
        the step's name, as in the file format."""
        span = _call_site()
        where = f"step {name!r}: "
        if depends_on is None:
            previous = self._steps[-1].name if self._steps else None
            deps: tuple[str, ...] = (previous,) if previous not in (None, name) \
                else ()
        elif isinstance(depends_on, str):
            self._problem("SAGA124", f"{where}depends_on={depends_on!r} is not a "
                          "list of step names", span,
                          f"write depends_on=[{depends_on!r}]")
            deps = (depends_on,)
        else:
            deps = tuple(depends_on)
        step_kind = self._kind(where, kind, span)
        policy = self._retry(where, retry, span)
        if step_kind is StepKind.RETRIABLE and (
                retry is None
                or (isinstance(retry, Mapping) and "max_attempts" not in retry)):
            # As in the file format: a retriable step retries until it succeeds
            # unless the author wrote a bound.
            policy = dataclasses.replace(policy, max_attempts=None)
        self._steps.append(
            Step(
                name=name,
                participant=participant,
                action=name if action is None else action,
                compensation=compensation,
                kind=step_kind,
                depends_on=deps,
                retry=policy,
                timeout=self._convert(where, "timeout", timeout,
                                      _optional_duration, None, span),
                total_timeout=self._convert(where, "total_timeout", total_timeout,
                                            _optional_duration, None, span),
                idempotent=idempotent,
                compensation_needs_result=compensation_needs_result,
                idempotency_key=idempotency_key,
                breaker=self._breaker(where, breaker, span),
                cache_ttl=self._convert(where, "cache_ttl", cache_ttl,
                                        _optional_duration, None, span),
                effect=_effect(effect, span),
                compensation_effect=_effect(compensation_effect, span),
                read_only=read_only,
                empty_rollback=empty_rollback,
                anti_suspension=anti_suspension,
                span=span,
            )
        )
        return self

    def _kind(self, where: str, kind: StepKind | str, span: Span) -> StepKind:
        try:
            return StepKind(kind)
        except ValueError:
            words = [k.value for k in StepKind]
            close = difflib.get_close_matches(str(kind), words, n=1)
            self._problem("SAGA125", f"{where}kind={kind!r} is not one of "
                          f"{', '.join(words)}", span,
                          f"did you mean {close[0]!r}?" if close
                          else "use StepKind.COMPENSATABLE, PIVOT or RETRIABLE")
            return StepKind.COMPENSATABLE

    def _retry(self, where: str, retry: RetryPolicy | Mapping[str, Any] | None,
               span: Span) -> RetryPolicy:
        if retry is None:
            return RetryPolicy(span=span)
        if isinstance(retry, RetryPolicy):
            given: Mapping[str, Any] = {
                f.name: getattr(retry, f.name) for f in dataclasses.fields(retry)
                if f.name != "span"
            }
        elif isinstance(retry, Mapping):
            known = [f.name for f in dataclasses.fields(RetryPolicy)
                     if f.name != "span"]
            self._unknown_keys(f"{where}retry", retry, known, span)
            given = {k: v for k, v in retry.items() if k in known}
        else:
            self._problem("SAGA120", f"{where}retry={retry!r} is not a mapping or "
                          "a RetryPolicy", span,
                          "write retry={'max_attempts': 3} or RetryPolicy(...)")
            return RetryPolicy(span=span)
        return _normalised_retry(self, where, given, span)

    def _breaker(self, where: str, breaker: CircuitBreaker | Mapping[str, Any] | None,
                 span: Span) -> CircuitBreaker | None:
        if breaker is None:
            return None
        if isinstance(breaker, CircuitBreaker):
            given: Mapping[str, Any] = {"failure_threshold": breaker.failure_threshold,
                                        "recovery_timeout": breaker.recovery_timeout}
        elif isinstance(breaker, Mapping):
            known = ["failure_threshold", "recovery_timeout"]
            self._unknown_keys(f"{where}breaker", breaker, known, span)
            given = breaker
        else:
            self._problem("SAGA120", f"{where}breaker={breaker!r} is not a mapping "
                          "or a CircuitBreaker", span,
                          "write breaker={'failure_threshold': 5, "
                          "'recovery_timeout': '30s'}")
            return None
        d = CircuitBreaker()
        return CircuitBreaker(
            failure_threshold=self._convert(
                where, "breaker.failure_threshold",
                given.get("failure_threshold", d.failure_threshold),
                _whole, d.failure_threshold, span),
            recovery_timeout=self._convert(
                where, "breaker.recovery_timeout",
                given.get("recovery_timeout", d.recovery_timeout),
                parse_duration, d.recovery_timeout, span),
            span=span,
        )

    def compensation_policy(
        self,
        *,
        max_attempts: int | str | None = None,
        then: AfterExhausted | str = AfterExhausted.ESCALATE,
        initial_interval: Duration = 1.0,
        backoff: float = 2.0,
        max_interval: Duration = 60.0,
    ) -> SagaBuilder:
        """Set how failing compensations are retried: ``max_attempts=None`` (or
        ``"forever"``) retries until they succeed; a number escalates after that
        many attempts to ``STUCK``."""
        span = _call_site()
        where = "compensation_policy: "
        try:
            after = AfterExhausted(then)
        except ValueError:
            self._problem("SAGA125", f"{where}then={then!r} is not one of "
                          "escalate", span, "write then='escalate'")
            after = AfterExhausted.ESCALATE
        retry = _normalised_retry(self, where, {
            "max_attempts": max_attempts, "initial_interval": initial_interval,
            "backoff": backoff, "max_interval": max_interval}, span)
        self._policy = CompensationPolicy(
            max_attempts=retry.max_attempts, then=after,
            initial_interval=retry.initial_interval, backoff=retry.backoff,
            max_interval=retry.max_interval, span=span,
        )
        return self

    def compensation_chain(
        self, trigger: str, steps: Sequence[str], *, unconditional: bool = False
    ) -> SagaBuilder:
        """Wire an explicit compensation chain (as imported ASL/Seata do)."""
        self._chains.append(
            CompensationChain(
                trigger=trigger,
                steps=tuple(steps),
                unconditional=unconditional,
                span=_call_site(),
            )
        )
        return self

    def resource(self, name: str, *, initial: int = 0) -> SagaBuilder:
        """Declare a shared counter resource and its initial value."""
        self._resources.append(Resource(name=name, initial=initial,
                                        span=_call_site()))
        return self

    def record(self, name: str, **fields: int) -> SagaBuilder:
        """Declare a keyed record (its name is its key) with its fields' initial
        values; it has a version too (see :class:`Resource`)."""
        self._resources.append(Resource(name=name, kind="record",
                                        fields=tuple(fields.items()),
                                        span=_call_site()))
        return self

    def instance_record(self, name: str, **fields: int) -> SagaBuilder:
        """Declare a record keyed by instance: each instance has its own row
        (fields and version) that no other instance sees (``key: instance``
        in a file; see :class:`Resource`)."""
        self._resources.append(Resource(name=name, kind="record",
                                        fields=tuple(fields.items()),
                                        key="instance", span=_call_site()))
        return self

    def invariant(self, name: str, expr: str) -> SagaBuilder:
        """Declare an invariant over the resources, e.g. ``stock >= 0``."""
        self._invariants.append(ResourceInvariant(name=name, expr=expr,
                                                  span=_call_site()))
        return self

    def instances(self, count: int) -> SagaBuilder:
        """How many instances run at once over the resources."""
        self._instances = count
        return self

    def pessimistic_view(self, *resources: str) -> SagaBuilder:
        """Declare the saga's order a pessimistic view of ``resources`` (see
        :class:`Saga`)."""
        self._pessimistic += resources
        return self

    def semantic_lock(self, *resources: str) -> SagaBuilder:
        """Put ``resources`` under a semantic lock (see :class:`Saga`)."""
        self._locks += resources
        return self

    def build(self) -> Saga:
        """Freeze and validate.

        Raises:
            InvalidDefinition: every problem that makes the definition
                meaningless, each located at the call that introduced it.
        """
        saga = Saga(
            name=self._name,
            steps=tuple(self._steps),
            compensation_policy=self._policy,
            compensation_chains=tuple(self._chains),
            resources=tuple(self._resources),
            invariants=tuple(self._invariants),
            instances=self._instances,
            semantic_locks=self._locks,
            pessimistic_view=self._pessimistic,
            source_format="builder",
            span=self._span,
        )
        problems = [*self._problems, *lowering_diagnostics(saga)]
        if any(d.severity is Severity.ERROR for d in problems):
            raise InvalidDefinition(tuple(problems))
        return saga


def _effect(value: Effect | Mapping[str, Any] | None, span: Span) -> Effect | None:
    if value is None or isinstance(value, Effect):
        return value
    from ._resources import effect_from_data

    return effect_from_data(value, span)


def _normalised_retry(builder: SagaBuilder, where: str, given: Mapping[str, Any],
                      span: Span) -> RetryPolicy:
    """A RetryPolicy from builder values, with the file format's spellings and
    every number a float, so the IR equals the one the loader makes."""
    d = RetryPolicy()
    prefix = "retry." if where.startswith("step") else ""
    values: dict[str, Any] = {}
    attempts = given.get("max_attempts", d.max_attempts)
    values["max_attempts"] = (None if attempts is None or attempts in FOREVER
                              else builder._convert(where, prefix + "max_attempts",
                                                    attempts, parse_attempts,
                                                    d.max_attempts, span))
    for key in _RETRY_DURATIONS:
        if key in given:
            values[key] = builder._convert(where, prefix + key, given[key],
                                           parse_duration, getattr(d, key), span)
    for key in _RETRY_NUMBERS:
        if key in given:
            values[key] = builder._convert(where, prefix + key, given[key],
                                           _number, getattr(d, key), span)
    for key in ("retryable_errors", "non_retryable_errors"):
        if key in given:
            empty: tuple[str, ...] = ()
            values[key] = builder._convert(where, prefix + key, given[key],
                                           _names, empty, span)
    return RetryPolicy(**values, span=span)


def _optional_duration(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)


def _whole(value: Any) -> int:
    attempts = parse_attempts(value)
    if attempts is None:
        raise TypeError(value)
    return attempts


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(value)
    return tuple(str(v) for v in value)

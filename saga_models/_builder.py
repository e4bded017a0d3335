"""The Python builder API: the third way to write a saga, same IR."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ._errors import InvalidDefinition
from ._ir import (
    CircuitBreaker,
    CompensationChain,
    CompensationPolicy,
    RetryPolicy,
    Saga,
    Step,
    StepKind,
)
from ._span import Span
from ._validate import lowering_diagnostics

_FOLLOW = object()


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
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._span = _call_site()
        self._steps: list[Step] = []
        self._policy = CompensationPolicy()
        self._chains: list[CompensationChain] = []

    def step(
        self,
        name: str,
        *,
        participant: str,
        action: str,
        compensation: str | None = None,
        kind: StepKind | str = StepKind.COMPENSATABLE,
        depends_on: Sequence[str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: float | None = None,
        total_timeout: float | None = None,
        idempotent: bool = True,
        compensation_needs_result: bool = False,
        breaker: CircuitBreaker | None = None,
        cache_ttl: float | None = None,
    ) -> SagaBuilder:
        """Add a step; see :class:`Step` for the fields."""
        span = _call_site()
        if depends_on is None:
            deps: tuple[str, ...] = (self._steps[-1].name,) if self._steps else ()
        else:
            deps = tuple(depends_on)
        if isinstance(retry, Mapping):
            retry = RetryPolicy(**retry)
        self._steps.append(
            Step(
                name=name,
                participant=participant,
                action=action,
                compensation=compensation,
                kind=StepKind(kind),
                depends_on=deps,
                retry=replace(retry or RetryPolicy(), span=span),
                timeout=timeout,
                total_timeout=total_timeout,
                idempotent=idempotent,
                compensation_needs_result=compensation_needs_result,
                breaker=breaker,
                cache_ttl=cache_ttl,
                span=span,
            )
        )
        return self

    def compensation_policy(
        self, *, max_attempts: int | None = None, **kwargs: Any
    ) -> SagaBuilder:
        """Set how failing compensations are retried (``None``: forever)."""
        self._policy = CompensationPolicy(
            max_attempts=max_attempts, span=_call_site(), **kwargs
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

    def build(self) -> Saga:
        """Freeze and validate; raises :class:`InvalidDefinition` listing every
        problem that makes the definition meaningless."""
        saga = Saga(
            name=self._name,
            steps=tuple(self._steps),
            compensation_policy=self._policy,
            compensation_chains=tuple(self._chains),
            source_format="builder",
            span=self._span,
        )
        problems = lowering_diagnostics(saga)
        if problems:
            raise InvalidDefinition(problems)
        return saga

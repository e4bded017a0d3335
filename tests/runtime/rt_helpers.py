"""Shared test helpers: a virtual-clock runner and scripted participants."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from runtime import StepContext, VirtualClock
from saga_models.semantics import EFFECT_CAP

T = TypeVar("T")


class Boom(Exception):
    """A retryable failure."""


class Fatal(Exception):
    """Declared non-retryable in the sagas that use it."""


def vrun(fn: Callable[[VirtualClock], Coroutine[Any, Any, T]]) -> T:
    """Run ``fn(clock)`` on a fresh virtual event loop."""
    clock = VirtualClock(deadlock_after=2.0)
    return clock.run(fn(clock))


class Script:
    """Participants whose every call follows a script, and who keep records.

    ``plan[(step, kind)]`` is a list of behaviours for successive calls:
    ``ok``, ``fail`` (raise :class:`Boom`), ``fatal`` (raise :class:`Fatal`),
    ``hang`` (never answer; takes effect, or undoes, first if ``hang+``),
    ``garbage``
    (return a non-JSON value), any of them as ``what@seconds`` to wait
    first, or a number (sleep that long, then ok). Calls past
    the end of a list behave as ``ok``. ``effects[step]`` counts applications per
    idempotency key, as a real participant's ledger would.
    """

    def __init__(self, plan: dict[tuple[str, str], list[Any]] | None = None,
                 *, idempotent: bool = True,
                 non_idempotent: frozenset[str] = frozenset()) -> None:
        self.plan = defaultdict(list, plan or {})
        self.calls: list[tuple[str, str, str, int]] = []
        self.applied: dict[str, set[str]] = defaultdict(set)
        self.effect: dict[str, int] = defaultdict(int)
        self.modelled: dict[str, int] = defaultdict(int)
        """The same ledger in the model's abstraction: counted up to
        ``EFFECT_CAP`` (where "twice" means "twice or more") and decremented by
        each compensation, exactly as the semantics does. Three applications
        and one compensation are 2 here but 1 in the model; both say "not
        undone", and only this one is comparable with a model state."""
        self.undone: dict[str, int] = defaultdict(int)
        self.compensated: set[str] = set()
        self.contexts: list[StepContext] = []
        self.idempotent = idempotent
        self.non_idempotent = non_idempotent

    def _take(self, step: str, kind: str) -> Any:
        todo = self.plan[(step, kind)]
        return todo.pop(0) if todo else "ok"

    def _apply(self, ctx: StepContext) -> None:
        idem = self.idempotent and ctx.step not in self.non_idempotent
        if idem and ctx.idempotency_key in self.applied[ctx.step]:
            return
        self.applied[ctx.step].add(ctx.idempotency_key)
        self.effect[ctx.step] += 1
        self.modelled[ctx.step] = min(self.modelled[ctx.step] + 1, EFFECT_CAP)

    def _undo(self, ctx: StepContext) -> None:
        # A compensation must be safe when re-run (DESIGN.md): one re-sent
        # with the same key (after a crash or a timeout) undoes nothing more.
        if ctx.idempotency_key in self.compensated:
            return
        self.compensated.add(ctx.idempotency_key)
        if self.effect[ctx.step] > 0:
            self.effect[ctx.step] -= 1
            self.undone[ctx.step] += 1
        if self.modelled[ctx.step] > 0:
            self.modelled[ctx.step] -= 1

    def op(self, ctx: StepContext) -> Any:
        return self._run(ctx)

    async def _run(self, ctx: StepContext) -> Any:
        self.contexts.append(ctx)
        self.calls.append((ctx.step, ctx.attempt_kind, ctx.idempotency_key,
                           ctx.attempt))
        what = self._take(ctx.step, ctx.attempt_kind)
        idem = self.idempotent and ctx.step not in self.non_idempotent
        if isinstance(what, (int, float)):
            what = f"ok@{what}"
        if "@" in what:
            what, delay = what.split("@")
            await asyncio.sleep(float(delay))
        if what in ("fail", "fatal") and (
                (idem and ctx.attempt_kind == "action"
                 and ctx.idempotency_key in self.applied[ctx.step])
                or ctx.idempotency_key in self.compensated):
            # An idempotent participant that already applied this key answers
            # with the recorded result; it cannot fail it any more. Checked
            # after the delay is split off, so ``fail@1`` obeys it too, and
            # after the wait, since the key may have been applied meanwhile.
            # A compensation is keyed the same way (safe when re-run).
            what = "ok"
        if what == "fail":
            raise Boom(f"{ctx.step} {ctx.attempt_kind} failed")
        if what == "fatal":
            raise Fatal(f"{ctx.step} rejected")
        if what in ("hang", "hang+"):
            if what == "hang+" and ctx.attempt_kind == "action":
                self._apply(ctx)
            elif what == "hang+":
                self._undo(ctx)  # undoes, then its reply is lost
            await asyncio.Event().wait()
        if what == "garbage":
            return object()
        if ctx.attempt_kind == "compensation":
            self._undo(ctx)
            return None
        self._apply(ctx)
        return {"step": ctx.step, "seen": sorted(ctx.results)}

    def participants(self, saga: Any) -> dict[str, dict[str, Any]]:
        """Bind every operation of ``saga`` to this script."""
        out: dict[str, dict[str, Any]] = defaultdict(dict)
        for step in saga.steps:
            for name in (step.action, step.compensation):
                if name:
                    out[step.participant][name] = self.op
        return dict(out)


# --- random definitions and fault schedules (Hypothesis) --------------------------
def sagas() -> Any:
    """Hypothesis strategy: small sagas (DAGs, kinds, timeouts, policies)."""
    from hypothesis import strategies as st

    from saga_models import (
        CircuitBreaker,
        CompensationPolicy,
        RetryPolicy,
        Saga,
        Step,
        StepKind,
    )

    @st.composite
    def build(draw: Any) -> Saga:
        n = draw(st.integers(1, 4))
        pivot_at = draw(st.one_of(st.none(), st.integers(0, n - 1)))
        steps = []
        for i in range(n):
            kind = (StepKind.COMPENSATABLE if pivot_at is None or i < pivot_at
                    else StepKind.PIVOT if i == pivot_at else StepKind.RETRIABLE)
            deps = tuple(f"s{j}" for j in range(i)
                         if draw(st.booleans()) or (j == i - 1 and kind
                                                    is not StepKind.COMPENSATABLE))
            bounded = kind is StepKind.COMPENSATABLE or draw(st.booleans())
            steps.append(Step(
                name=f"s{i}", participant=draw(st.sampled_from(["p", "q"])),
                action=f"do{i}",
                compensation=f"undo{i}" if kind is StepKind.COMPENSATABLE else None,
                kind=kind, depends_on=deps,
                retry=RetryPolicy(
                    max_attempts=draw(st.integers(1, 3)) if bounded else None,
                    initial_interval=draw(st.sampled_from([0.0, 0.5, 2.0])),
                    non_retryable_errors=("Fatal",) if draw(st.booleans()) else ()),
                timeout=draw(st.sampled_from([None, 3.0])),
                # with a 3s timeout, the second attempt is cut short (expired)
                total_timeout=draw(st.sampled_from([None, None, 5.0])),
                breaker=(CircuitBreaker(failure_threshold=1, recovery_timeout=2.0)
                         if draw(st.integers(0, 3)) == 0 else None),
                idempotent=draw(st.booleans()),
                compensation_needs_result=draw(st.booleans()) and draw(st.booleans()),
            ))
        policy = CompensationPolicy(
            max_attempts=draw(st.sampled_from([None, 1, 2, 3])),
            initial_interval=draw(st.sampled_from([0.25, 1.0])))
        return Saga(name="random", steps=tuple(steps), compensation_policy=policy)

    return build()


def schedules(saga: Any) -> Any:
    """Hypothesis strategy: a plan for :class:`Script` that respects what the
    semantics allows (only steps with a timeout may hang)."""
    from hypothesis import strategies as st

    entries = {}
    for step in saga.steps:
        acts = ["ok", "fail", "fatal", "ok@1", "fail@1"]
        comps = ["ok", "fail", "ok@0.5"]
        if step.timeout is not None or step.total_timeout is not None:
            acts += ["hang", "hang+"]
        if step.timeout is not None:  # a compensation has the per-attempt one
            comps += ["hang", "hang+"]
        entries[(step.name, "action")] = st.lists(st.sampled_from(acts), max_size=4)
        if step.compensation:
            entries[(step.name, "compensation")] = st.lists(st.sampled_from(comps),
                                                            max_size=3)
    return st.fixed_dictionaries(entries)

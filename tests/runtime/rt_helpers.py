"""Shared test helpers: a virtual-clock runner and scripted participants."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from runtime import StepContext, VirtualClock

T = TypeVar("T")


class Boom(Exception):
    """A retryable failure."""


class Fatal(Exception):
    """Declared non-retryable in the sagas that use it."""


def vrun(fn: Callable[[VirtualClock], Coroutine[Any, Any, T]]) -> T:
    """Run ``fn(clock)`` on a fresh virtual event loop."""
    clock = VirtualClock()
    return clock.run(fn(clock))


class Script:
    """Participants whose every call follows a script, and who keep records.

    ``plan[(step, kind)]`` is a list of behaviours for successive calls:
    ``ok``, ``fail`` (raise :class:`Boom`), ``fatal`` (raise :class:`Fatal`),
    ``hang`` (never answer; takes effect first if ``hang+``), ``garbage``
    (return a non-JSON value), any of them as ``what@seconds`` to wait
    first, or a number (sleep that long, then ok). Calls past
    the end of a list behave as ``ok``. ``effects[step]`` counts applications per
    idempotency key, as a real participant's ledger would.
    """

    def __init__(self, plan: dict[tuple[str, str], list[Any]] | None = None,
                 *, idempotent: bool = True) -> None:
        self.plan = defaultdict(list, plan or {})
        self.calls: list[tuple[str, str, str, int]] = []
        self.applied: dict[str, set[str]] = defaultdict(set)
        self.effect: dict[str, int] = defaultdict(int)
        self.undone: dict[str, int] = defaultdict(int)
        self.contexts: list[StepContext] = []
        self.idempotent = idempotent

    def _take(self, step: str, kind: str) -> Any:
        todo = self.plan[(step, kind)]
        return todo.pop(0) if todo else "ok"

    def _apply(self, ctx: StepContext) -> None:
        if self.idempotent and ctx.idempotency_key in self.applied[ctx.step]:
            return
        self.applied[ctx.step].add(ctx.idempotency_key)
        self.effect[ctx.step] += 1

    def op(self, ctx: StepContext) -> Any:
        return self._run(ctx)

    async def _run(self, ctx: StepContext) -> Any:
        self.contexts.append(ctx)
        self.calls.append((ctx.step, ctx.attempt_kind, ctx.idempotency_key,
                           ctx.attempt))
        what = self._take(ctx.step, ctx.attempt_kind)
        if isinstance(what, (int, float)):
            what = f"ok@{what}"
        if "@" in what:
            what, delay = what.split("@")
            await asyncio.sleep(float(delay))
        if what == "fail":
            raise Boom(f"{ctx.step} {ctx.attempt_kind} failed")
        if what == "fatal":
            raise Fatal(f"{ctx.step} rejected")
        if what in ("hang", "hang+"):
            if what == "hang+" and ctx.attempt_kind == "action":
                self._apply(ctx)
            await asyncio.Event().wait()
        if what == "garbage":
            return object()
        if ctx.attempt_kind == "compensation":
            if self.effect[ctx.step] > 0:
                self.effect[ctx.step] -= 1
                self.undone[ctx.step] += 1
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

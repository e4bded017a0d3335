"""Drive asyncio code one step at a time from synchronous test code.

Hypothesis has no async stateful testing: a rule is a plain method. The bridge
owns one :class:`runtime.VirtualEventLoop` per test case and lets a rule run
the loop *until every task is blocked*, without letting virtual time move.
Time moves only when a rule asks for it (:meth:`LoopBridge.advance`), so a
per-attempt timeout or a retry backoff fires exactly when the generated
schedule says so, which is what makes a schedule replayable and shrinkable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from runtime import VirtualClock

T = TypeVar("T")

_MAX_SPINS = 100_000
"""Iterations :meth:`LoopBridge.drain` allows before calling the code under
test a busy loop (a task that never blocks would hang the test otherwise)."""


class BridgeError(RuntimeError):
    """The code under test never settles (a task that never blocks)."""


class LoopBridge:
    """A virtual-time event loop that synchronous code can step.

    >>> bridge = LoopBridge()
    >>> async def nap() -> str:
    ...     await asyncio.sleep(5)
    ...     return "woke"
    >>> task = bridge.spawn(nap())
    >>> bridge.drain(); task.done()
    False
    >>> bridge.advance()
    5.0
    >>> task.result()
    'woke'
    >>> bridge.close()
    """

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.loop = self.clock.new_event_loop()

    @property
    def now(self) -> float:
        """Virtual seconds elapsed."""
        return self.clock.now()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Start ``coro`` as a task (it runs on the next :meth:`drain`)."""
        return self.loop.create_task(coro)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion, then drain what it woke.

        ``coro`` must finish without waiting for virtual time (the engine's
        ``start`` and ``aclose`` do).
        """
        task = self.spawn(coro)
        self.drain()
        if not task.done():
            task.cancel()
            self.drain()
            raise BridgeError(f"{coro!r} blocked; it must finish without time "
                              "passing")
        return task.result()

    def drain(self) -> None:
        """Run every ready callback and due timer until all tasks are blocked.

        Reads the loop's ready queue and timer heap: asyncio has no public
        "is idle" query, and polling with ``sleep(0)`` a fixed number of times
        would either waste time or stop too early.
        """
        loop = self.loop

        async def until_idle() -> None:
            for _ in range(_MAX_SPINS):
                await asyncio.sleep(0)
                if not loop._ready and not self._due():  # type: ignore[attr-defined]
                    return
            raise BridgeError("the code under test never blocks (a busy loop?)")

        loop.run_until_complete(until_idle())

    def _due(self) -> bool:
        when = self.next_timer()
        return when is not None and when <= self.clock.time

    def next_timer(self) -> float | None:
        """Virtual time of the earliest pending timer, or None."""
        heap = self.loop._scheduled  # type: ignore[attr-defined]
        live = [h.when() for h in heap if not h.cancelled()]
        return min(live) if live else None

    def advance(self, seconds: float | None = None) -> float:
        """Move virtual time to the next timer (or by ``seconds``), firing the
        timers that fall due one at a time, in order; returns the new time."""
        target = None if seconds is None else self.clock.time + seconds
        while True:
            when = self.next_timer()
            if when is None or (target is not None and when > target):
                break
            self.clock.time = max(self.clock.time, when)
            self.drain()
            if target is None:
                break
        if target is not None:
            self.clock.time = max(self.clock.time, target)
            self.drain()
        return self.clock.time

    def close(self) -> None:
        """Cancel every task still running and close the loop."""
        loop = self.loop
        if loop.is_closed():
            return
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


P = ParamSpec("P")


def off_running_loop(fn: Callable[P, T]) -> Callable[P, T]:
    """Run ``fn`` in a worker thread when this thread already runs an event
    loop (Jupyter's kernel does): the bridge's own loop cannot run inside
    another, and the caller still gets a plain synchronous call."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args, **kwargs)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(fn, *args, **kwargs).result()

    return wrapper

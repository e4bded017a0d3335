"""Injected time: a real clock and a virtual clock that jumps ahead.

The runtime never reads the wall clock or sleeps by itself (house style 9); it
asks a :class:`Clock`. Timers, per-attempt timeouts and backoff all run on the
event loop's clock (``loop.time()``), so the virtual clock is an event loop
whose time only moves when every task is blocked: like trio's ``MockClock``
with ``autojump_threshold=0``, a test with an hour of backoff runs in
milliseconds.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """What the runtime needs to know about time."""

    def now(self) -> float:
        """Monotonic seconds, for timers and breaker windows."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, for leases shared between processes and
        for timestamps in the log."""
        ...


class RealClock:
    """The event loop's monotonic clock and the system's wall clock."""

    def now(self) -> float:
        """``loop.time()`` of the running loop."""
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        """``time.time()``."""
        return time.time()


class VirtualClock:
    """Time of a :class:`VirtualEventLoop`; wall time is ``epoch + now()``.

    >>> clock = VirtualClock()
    >>> async def nap() -> float:
    ...     await asyncio.sleep(3600)
    ...     return clock.now()
    >>> clock.run(nap())
    3600.0
    """

    def __init__(self, *, epoch: float = 1_700_000_000.0,
                 deadlock_after: float = 30.0) -> None:
        self.deadlock_after = deadlock_after
        """Real seconds to wait for I/O when nothing is scheduled before
        declaring a deadlock."""
        self.epoch = epoch
        """Wall-clock seconds at virtual time zero."""
        self.time = 0.0
        """Virtual seconds elapsed."""

    def now(self) -> float:
        """Virtual monotonic seconds."""
        return self.time

    def wall(self) -> float:
        """``epoch`` plus virtual seconds."""
        return self.epoch + self.time

    def new_event_loop(self) -> VirtualEventLoop:
        """An event loop driven by this clock."""
        return VirtualEventLoop(self)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion on a fresh virtual event loop."""
        with asyncio.Runner(loop_factory=self.new_event_loop) as runner:
            return runner.run(coro)


class _AutojumpSelector(selectors.BaseSelector):
    """Wraps the real selector: when the loop would block until its next timer,
    advance the virtual clock to that timer instead of waiting."""

    def __init__(self, real: selectors.BaseSelector, clock: VirtualClock) -> None:
        self._real = real
        self._clock = clock

    def register(self, fileobj: Any, events: int, data: Any = None) -> Any:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> Any:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> Any:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # Nothing scheduled: only real I/O (a thread finishing) can wake us.
            ready = self._real.select(self._clock.deadlock_after)
            if not ready:
                raise RuntimeError(
                    "virtual clock: every task is blocked and no timer is pending "
                    "(deadlock)"
                )
            return ready
        self._clock.time += timeout
        return []

    def close(self) -> None:
        self._real.close()

    def get_key(self, fileobj: Any) -> Any:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is a :class:`VirtualClock`.

    Real I/O still works, but a timer fires as soon as every task is blocked, so
    use it with the in-memory log or synchronous SQLite (no worker threads).
    """

    def __init__(self, clock: VirtualClock) -> None:
        self._virtual_clock = clock
        super().__init__(_AutojumpSelector(selectors.DefaultSelector(), clock))

    def time(self) -> float:
        return self._virtual_clock.time

"""A worker: claims new and orphaned saga instances from a shared log and
drives them, until told to stop.

Many workers, on many hosts, share one PostgreSQL log (or one SQLite file on
one host). ``claimable`` hands each free instance to one of them (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL); the lease a worker holds is renewed by its
engines' heartbeat; an instance whose worker died is claimed again once its
lease has run out, and recovered as ``sagaproof recover`` would (completed
steps are not re-run; the in-flight command is re-sent with the same
idempotency key). A worker that lost its lease cannot append: every append is
a compare-and-set on the owner and the next sequence number, so it stops
driving that instance (:class:`LeaseLost`) and never sends another command
for it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ._clock import Clock, RealClock
from ._engine import Engine, SagaResult
from ._errors import LeaseLost
from ._events import logger
from ._log import SagaInfo, SagaLog, new_worker_id


class ClaimingLog(SagaLog, Protocol):
    """A log that can hand out free instances to competing workers."""

    def claimable(self, *, owner: str, lease_until: float, now: float,
                  limit: int = 16) -> list[SagaInfo]:
        """Lease up to ``limit`` running instances nobody holds (or whose lease
        ran out) to ``owner`` and return them."""
        ...


@dataclass(slots=True, kw_only=True)
class WorkerStats:
    """What one worker did (mutable while it runs)."""

    claimed: int = 0
    recovered: int = 0
    """Claimed instances that another worker had driven before (orphans)."""
    outcomes: Counter[str] = field(default_factory=Counter)
    lease_lost: int = 0


class Worker:
    """Claims instances from ``log`` and drives each with the engine that
    ``resolve`` returns for it (one engine per definition, all with this
    worker's id, so their heartbeats renew its leases).

    Args:
        log: The shared log.
        resolve: Given a claimed instance and this worker's id, the engine
            for its definition (the same engine for instances of one
            definition); it must use ``log`` and ``worker_id``.
        worker_id: The lease identity (default: host:pid:random).
        lease_seconds: How long a claim lasts without renewal.
        capacity: How many instances to drive at once.
        poll: Seconds between claims when there is nothing to do.
        clock: Injected time (default: the real clock).
    """

    def __init__(self, log: ClaimingLog,
                 resolve: Callable[[SagaInfo, str], Engine], *,
                 worker_id: str | None = None, lease_seconds: float = 30.0,
                 capacity: int = 8, poll: float = 0.2,
                 clock: Clock | None = None) -> None:
        self.log = log
        self.resolve = resolve
        self.worker_id = worker_id or new_worker_id()
        self.lease_seconds = lease_seconds
        self.capacity = capacity
        self.poll = poll
        self.clock: Clock = clock if clock is not None else RealClock()
        self.stats = WorkerStats()
        self._engines: list[Engine] = []

    async def run(self, *, stop: asyncio.Event | None = None,
                  idle_exit: float | None = None) -> WorkerStats:
        """Claim and drive until ``stop`` is set, or (with ``idle_exit``) until
        nothing was claimable and nothing was running for that many seconds."""
        idle_since: float | None = None
        try:
            while stop is None or not stop.is_set():
                self._reap()
                busy = sum(e.driving() for e in self._engines)
                claimed = 0
                if busy < self.capacity:
                    claimed = self._claim(self.capacity - busy)
                if claimed == 0 and busy == 0:
                    now = self.clock.now()
                    idle_since = now if idle_since is None else idle_since
                    if idle_exit is not None and now - idle_since >= idle_exit:
                        break
                else:
                    idle_since = None
                await asyncio.sleep(0 if claimed else self.poll)
        finally:
            for engine in self._engines:
                await engine.aclose()
            self._reap()
        return self.stats

    def _claim(self, limit: int) -> int:
        wall = self.clock.wall()
        infos = self.log.claimable(owner=self.worker_id,
                                   lease_until=wall + self.lease_seconds, now=wall,
                                   limit=limit)
        for info in infos:
            engine = self.resolve(info, self.worker_id)
            if engine not in self._engines:
                self._engines.append(engine)
            self.stats.claimed += 1
            self.stats.recovered += info.next_seq > 1
            engine.adopt(info)
        return len(infos)

    def _reap(self) -> None:
        for engine in self._engines:
            for saga_id, outcome in engine.reap():
                if isinstance(outcome, SagaResult):
                    self.stats.outcomes[outcome.outcome.value] += 1
                elif isinstance(outcome, LeaseLost):
                    # Another worker took it over while we were paused: it
                    # recovers the instance; we must not touch it again.
                    self.stats.lease_lost += 1
                    logger.warning("worker %s lost saga %s: %s", self.worker_id,
                                   saga_id, outcome)
                else:
                    raise outcome

"""A workflow's services as separate processes over Redis Streams.

Each service has one stream (``sagaproof:<workflow>:<service>``) and one
consumer group named after it; every process running that service is a
consumer of the group. The shared store (one SQLite file in WAL, see
:mod:`runtime.workflow._store`) stays the truth; the streams only carry
notifications of what is on its outbox. Every model event, and what each bus
behaviour is in the model:

- **send** (the model's ``_send``): the handler's step commits the emitted
  envelopes to the outbox in the same transaction as the state change, the
  counters, the inbox record and the log entry. Only after that commit are they
  ``XADD`` ed (and recorded in ``wf_relayed``). A relay repeated after a crash
  adds a second stream entry for the same outbox row: no model event (below).
- **delivery** (``deliver``/``ignore``/``drop``/``unhandled``): a consumer
  ``XREADGROUP`` s an entry, takes the store's write lock, checks that the
  envelope is still on the outbox, asks the semantics how its service reacts
  (guards read every service's state in the same transaction), calls the
  handler, and commits. Then, and only then, it ``XACK`` s.
- **a consumer dies** before its commit: no model step happened; the entry
  stays pending in the group and another consumer (or the restarted one)
  ``XAUTOCLAIM`` s it once idle past ``min_idle``: the model's delivery, once.
- **a consumer dies** after its commit and before ``XACK``: the reclaimed
  entry names an envelope no longer on the outbox, so it is acknowledged
  without a step. The model's delivery happened exactly once, at the commit.

- **a timer** (the model's ``timer`` step, which may fire at any time while
  its service stays in the state): each process of a service polls the store
  for instances whose timer for that service is due (wall-clock due times,
  armed on entering the state, so they survive restarts) and fires one in a
  store transaction, as a delivery is handled. A killed process's due timer is
  fired by the next poll of any process of the service.

So the bus never makes a model duplicate (``duplicate`` stays false): the
model's at-least-once copies are a superset of what it does. What the model
cannot see is refused before a process starts: a fifo bus (consumer groups
and reclaim do not keep a channel's order), WF130.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from saga_models import Diagnostic, InvalidDefinition, SagaError
from saga_models.workflow import Order, Workflow
from saga_models.workflow import semantics as sem

from ._bus import Envelope
from ._engine import WorkflowEngine, _Live, create_instance
from ._store import WorkflowStore

PREFIX = "sagaproof"
"""Stream keys are ``PREFIX:<workflow>:<service>``."""
SWEEP_EVERY = 1.0
"""Seconds of idle polling between two relays of the whole outbox."""


class BusError(SagaError, ConnectionError):
    """The Redis server cannot be used (RT010 unreachable, RT011 bad URL).
    The message is one line, starts with its code and says what to do."""

    def __init__(self, code: str, message: str, *, fix: str) -> None:
        super().__init__(f"[{code}] {message}; {fix}")
        self.code = code


def process_diagnostics(wf: Workflow, service: str | None = None
                        ) -> list[Diagnostic]:
    """Why ``wf`` (and ``service``) cannot run as processes on the Redis bus;
    empty when it can. Every problem at once."""
    out: list[Diagnostic] = []
    if wf.bus.order is Order.FIFO:
        out.append(Diagnostic(
            code="WF130", span=wf.bus.span,
            message=f"workflow {wf.name!r} declares bus order='fifo', which "
            "the Redis bus does not keep (a reclaimed event is handled after "
            "later ones on its channel)",
            help="declare `bus: {order: unordered}` and check the workflow "
            "again, or run it in one process (`sagaproof run`)"))
    names = [s.name for s in wf.services]
    if service is not None and service not in names:
        out.append(Diagnostic(
            code="WF132", span=wf.span,
            message=f"no service={service!r} in workflow {wf.name!r}",
            help=f"use one of {names}"))
    return out


@contextmanager
def _redis_errors(url: str, doing: str) -> Iterator[None]:
    import redis

    try:
        yield
    except redis.exceptions.TimeoutError as exc:
        raise BusError("RT012", f"bus={url!r}: {doing} failed: {exc} (the Redis "
                       "server did not answer in time)",
                       fix="check the server's load and disk (it fsyncs every "
                       "write); a service process retries by itself") from None
    except redis.exceptions.ConnectionError as exc:
        raise BusError("RT010", f"bus={url!r}: {doing} failed: {exc} (the Redis "
                       "server is unreachable)",
                       fix="start it (`bash scripts/redis.sh start`) or fix "
                       "--bus, and run the command again") from None
    except redis.exceptions.ResponseError as exc:
        raise BusError("RT013", f"bus={url!r}: {doing} failed: {exc} (the "
                       "server refused the command)",
                       fix="check that no one deleted the workflow's streams or "
                       "groups; a service process recreates its group") from None


class RedisBus:
    """The streams of one workflow on one Redis server."""

    def __init__(self, url: str, wf: Workflow, *, prefix: str = PREFIX,
                 socket_timeout: float = 30.0) -> None:
        """Connect to ``url`` (``redis://host:port/db``); stream keys start
        with ``prefix``; a command unanswered for ``socket_timeout`` seconds
        fails (RT012).

        Raises:
            BusError: a bad URL (RT011) or an unreachable server (RT010).
        """
        import redis

        self.url = url
        self.wf = wf
        self.prefix = prefix
        try:
            # A loaded server that fsyncs every write can be slow to answer:
            # wait longer than redis-py's 5 s before calling it a failure.
            self.client: Any = redis.Redis.from_url(
                url, decode_responses=True, socket_timeout=socket_timeout,
                socket_connect_timeout=5.0)
        except ValueError as exc:
            raise BusError("RT011", f"bus={url!r} is not a Redis URL: {exc}",
                           fix="write it as redis://127.0.0.1:63790/0") from None
        with _redis_errors(url, "connecting"):
            self.client.ping()

    def stream(self, service: str) -> str:
        """The stream key of ``service``."""
        return f"{self.prefix}:{self.wf.name}:{service}"

    def ensure_group(self, service: str) -> None:
        """Create ``service``'s stream and consumer group if missing (from the
        stream's start, so entries added before it are delivered too)."""
        import redis

        with _redis_errors(self.url, "creating the consumer group"):
            try:
                self.client.xgroup_create(self.stream(service), service, id="0",
                                          mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def publish(self, rows: Iterable[tuple[str, Envelope]]) -> int:
        """``XADD`` each ``(workflow_id, envelope)`` to its receiver's stream;
        how many."""
        rows = list(rows)
        if not rows:
            return 0
        with _redis_errors(self.url, "publishing"):
            pipe = self.client.pipeline(transaction=False)
            for wid, e in rows:
                pipe.xadd(self.stream(e.receiver), {
                    "wid": wid, "seq": e.seq, "eid": e.event_id, "event": e.event,
                    "sender": e.sender, "receiver": e.receiver})
            pipe.execute()
        return len(rows)

    def read(self, service: str, consumer: str, *, count: int = 10,
             block_ms: int = 200) -> list[tuple[str, dict[str, str]]]:
        """New entries for ``consumer`` (waits up to ``block_ms``)."""
        with _redis_errors(self.url, "reading"):
            got = self.client.xreadgroup(service, consumer,
                                         {self.stream(service): ">"},
                                         count=count, block=block_ms)
        return [(i, f) for _, entries in (got or []) for i, f in entries]

    def reclaim(self, service: str, consumer: str, *, min_idle_ms: int,
                count: int = 10) -> list[tuple[str, dict[str, str]]]:
        """Entries other consumers (dead ones, or this one before a restart)
        took and did not acknowledge for ``min_idle_ms``: now ``consumer``'s."""
        with _redis_errors(self.url, "reclaiming"):
            got = self.client.xautoclaim(self.stream(service), service, consumer,
                                         min_idle_ms, start_id="0-0", count=count)
        return [(i, f) for i, f in got[1] if f]

    def ack(self, service: str, entry_id: str) -> None:
        """Acknowledge and delete a handled entry (the store holds the truth;
        the stream does not grow without bound)."""
        with _redis_errors(self.url, "acknowledging"):
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(self.stream(service), service, entry_id)
            pipe.xdel(self.stream(service), entry_id)
            pipe.execute()

    def pending(self, service: str) -> int:
        """Entries delivered to a consumer of ``service`` and not acknowledged."""
        with _redis_errors(self.url, "reading pending entries"):
            return int(self.client.xpending(self.stream(service),
                                            service)["pending"])

    def drop_streams(self) -> None:
        """Delete every stream of the workflow (tests, a fresh start)."""
        with _redis_errors(self.url, "deleting streams"):
            self.client.delete(*(self.stream(s.name) for s in self.wf.services))

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


class _Collect:
    """The engine's bus while a step is in its transaction: it only collects
    the emitted envelopes, relayed after the commit."""

    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    def publish(self, envelopes: Iterable[Envelope]) -> None:
        self.sent.extend(envelopes)

    def take(self) -> Envelope | None:
        return None

    def ack(self, envelope: Envelope) -> None:
        pass

    def nack(self, envelope: Envelope) -> None:
        pass

    def pending(self) -> int:
        return len(self.sent)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceStats:
    """What a service process did."""

    steps: int
    """Model steps committed."""
    stale: int
    """Entries whose envelope was already consumed (acknowledged, no step)."""
    reclaimed: int
    """Entries taken over with ``XAUTOCLAIM``."""
    failed: int
    """Handler calls that raised (left pending, retried after ``min_idle``)."""
    relayed: int
    timers: int = 0
    """Timer steps fired (counted in ``steps`` too)."""


def start_instance(wf: Workflow, store: WorkflowStore, bus: RedisBus,
                   workflow_id: str, *, input: Any = None,
                   clock: Any = None) -> None:
    """Create an instance (its start events on the outbox, the timers of the
    initial states armed, its ``input`` kept for every handler's
    ``ctx.input``) and relay the start events."""
    from runtime._clock import RealClock

    clock = clock or RealClock()
    for s in wf.services:
        bus.ensure_group(s.name)
    t = sem.tables(wf)
    with store.locked():
        if store.load(workflow_id) is None:
            create_instance(wf, store, workflow_id)
            if input is not None:
                store.set_input(workflow_id, input)
            now = clock.wall()
            for i, s in enumerate(wf.services):
                k = t.timers.get((i, 0))  # the initial state is state 0
                if k is not None:
                    after = t.transition(i, k).after or 0.0
                    store.set_due(workflow_id, s.name, now + after)
    relay(store, bus)


def relay(store: WorkflowStore, bus: RedisBus) -> int:
    """Hand every outbox envelope not yet relayed to the bus (idempotent:
    a second copy of an entry is acknowledged without a step)."""
    total = 0
    while rows := store.unrelayed():
        bus.publish(rows)
        store.mark_relayed([(w, e.seq) for w, e in rows])
        total += len(rows)
    return total


class ServiceProcess:
    """One consumer of one service's stream, driving the shared semantics."""

    def __init__(self, wf: Workflow, service: str, handlers: Any, *,
                 store: WorkflowStore, bus: RedisBus, consumer: str | None = None,
                 min_idle: float = 5.0, block: float = 0.2,
                 clock: Any = None) -> None:
        bad = process_diagnostics(wf, service)
        if bad:
            raise InvalidDefinition(diagnostics=tuple(bad))
        self.wf, self.service, self.store, self.bus = wf, service, store, bus
        self.consumer = consumer or f"{service}-{socket.gethostname()}-{os.getpid()}"
        self.min_idle_ms = int(min_idle * 1000)
        self.block_ms = int(block * 1000)
        self._collect = _Collect()
        from runtime._clock import RealClock

        # Timer due times are wall-clock seconds shared by the processes.
        self.clock = clock or RealClock()
        self.engine = WorkflowEngine(wf, handlers, store=store, bus=self._collect,
                                     clock=self.clock)
        self._t = sem.tables(wf)
        self._me = self._t.services.index(service)
        self.steps = self.stale = self.reclaimed = self.failed = self.relayed = 0
        self.timers = 0
        self.bus_errors = 0

    def stats(self) -> ServiceStats:
        """Counts so far."""
        return ServiceStats(steps=self.steps, stale=self.stale,
                            reclaimed=self.reclaimed, failed=self.failed,
                            relayed=self.relayed, timers=self.timers)

    async def handle(self, entry_id: str, fields: dict[str, str]) -> bool:
        """Handle one stream entry; True when it is done (acknowledged)."""
        try:
            wid, seq = fields["wid"], int(fields["seq"])
            env = Envelope(event_id=fields["eid"], event=fields["event"],
                           sender=fields["sender"], receiver=fields["receiver"],
                           seq=seq)
        except (KeyError, ValueError):
            # Not written by a relay: no outbox row stands behind it, so it is
            # no model event; acknowledge it so it is not reclaimed forever.
            print(f"{self.consumer}: ignored a foreign entry {entry_id} "
                  f"{fields!r}", file=sys.stderr, flush=True)
            self.bus.ack(self.service, entry_id)
            return True
        engine, t = self.engine, self._t
        self._collect.sent.clear()
        try:
            with self.store.locked():
                if env.receiver != self.service or not self.store.is_pending(
                        wid, seq):
                    step_done = False
                else:
                    live = self._live(wid)
                    model = engine._model(live.states, live.fired, live.counters)
                    duplicate = self.store.seen(wid, env.receiver, env.event_id)
                    steps = sem.react(self.wf, model,
                                      t.services.index(env.receiver),
                                      t.events.index(env.event),
                                      duplicate=duplicate)
                    step = await engine._choose(live, steps, env)
                    engine._commit(live, model, step, env)
                    self._finish_if_quiescent(live)
                    step_done = True
        except Exception as exc:  # a handler failed: rolled back, redelivered
            self.failed += 1
            print(f"{self.consumer}: {env.event} for {wid} failed: {exc!r}; "
                  f"redelivered after {self.min_idle_ms} ms", file=sys.stderr,
                  flush=True)
            return False
        if step_done:
            self.steps += 1
            self.relayed += self.bus.publish((wid, e) for e in self._collect.sent)
            self.store.mark_relayed([(wid, e.seq) for e in self._collect.sent])
        else:
            self.stale += 1
        self.bus.ack(self.service, entry_id)
        return True

    def _live(self, wid: str) -> _Live:
        snap = self.store.load(wid)
        assert snap is not None  # callers hold a row of the instance
        return _Live(wid=wid, states=dict(snap.states), fired=dict(snap.fired),
                     due=dict(snap.due), counters=dict(snap.counters),
                     seq=snap.next_seq, next_event=snap.next_event,
                     input=self.store.input(wid))

    def _finish_if_quiescent(self, live: _Live) -> None:
        """Record the end status once nothing can happen: the outbox (the
        model's bus) is empty and no timer step is enabled."""
        model = self.engine._model(live.states, live.fired, live.counters)
        if (self.store.outbox_size(live.wid) == 0
                and not sem.timers_enabled(self.wf, model)):
            self.engine._finish(live)

    async def fire_timers(self) -> int:
        """Fire this service's due timers, each in one store transaction;
        how many fired."""
        fired = 0
        for wid in self.store.due_timers(self.service, self.clock.wall()):
            self._collect.sent.clear()
            try:
                with self.store.locked():
                    live = self._live(wid)
                    due = live.due[self.service]
                    if (live.fired[self.service] or due is None
                            or due > self.clock.wall()):
                        continue  # another process fired it meanwhile
                    model = self.engine._model(live.states, live.fired,
                                               live.counters)
                    steps = [s for s in sem.timers_enabled(self.wf, model)
                             if s.service == self._me]
                    if not steps:
                        continue  # its guard is false now
                    step = await self.engine._choose(live, steps, None)
                    self.engine._commit(live, model, step, None)
                    self._finish_if_quiescent(live)
            except Exception as exc:  # a handler failed: rolled back, retried
                self.failed += 1
                print(f"{self.consumer}: timer for {wid} failed: {exc!r}; "
                      "fired again at the next poll", file=sys.stderr,
                      flush=True)
                continue
            fired += 1
            self.relayed += self.bus.publish((wid, e) for e in self._collect.sent)
            self.store.mark_relayed([(wid, e.seq) for e in self._collect.sent])
        self.timers += fired
        self.steps += fired
        return fired

    async def poll(self, *, block_ms: int | None = None) -> int:
        """One round: fire due timers, reclaim entries idle past
        ``min_idle`` (or else read new ones, waiting up to ``block_ms``) and
        handle each; how many steps or entries."""
        fired = await self.fire_timers()
        entries = self.bus.reclaim(self.service, self.consumer,
                                   min_idle_ms=self.min_idle_ms)
        self.reclaimed += len(entries)
        if not entries:
            entries = self.bus.read(self.service, self.consumer,
                                    block_ms=self.block_ms if block_ms is None
                                    else block_ms)
        for entry_id, fields in entries:
            await self.handle(entry_id, fields)
        return fired + len(entries)

    async def run(self, *, stop: asyncio.Event | None = None,
                  idle_exit: float | None = None) -> ServiceStats:
        """Consume until ``stop`` is set (or nothing came for ``idle_exit``
        seconds): reclaim idle entries, read new ones, handle each."""
        stop = stop or asyncio.Event()
        self.bus.ensure_group(self.service)
        self.relayed += relay(self.store, self.bus)
        idle, swept, backoff = 0.0, 0.0, 0.1
        while not stop.is_set():
            try:
                busy = await self.poll()
            except BusError as exc:
                # The server is restarting, overloaded, or lost the group:
                # nothing was acknowledged, so nothing is lost; wait and retry.
                self.bus_errors += 1
                print(f"{self.consumer}: {exc}; retrying in {backoff:.1f}s",
                      file=sys.stderr, flush=True)
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, 5.0)
                with contextlib.suppress(BusError):
                    self.bus.ensure_group(self.service)
                continue
            backoff = 0.1
            if busy:
                idle = 0.0
            else:
                idle += self.block_ms / 1000
                swept += self.block_ms / 1000
                if swept >= SWEEP_EVERY:
                    # Recovers a relay cut short by a crash after its commit;
                    # not at every idle poll, which would mostly race the
                    # committing process's own relay and add stale copies.
                    swept = 0.0
                    with contextlib.suppress(BusError):  # retried next time
                        self.relayed += relay(self.store, self.bus)
                if idle_exit is not None and idle >= idle_exit:
                    break
            await asyncio.sleep(0)  # let a signal handler set ``stop``
        return self.stats()

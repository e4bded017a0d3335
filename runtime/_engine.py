"""The asyncio engine: drives :mod:`saga_models.semantics`, nothing else decides.

Each saga instance holds a semantic ``State``. The engine asks
:func:`~saga_models.semantics.enabled` for the orchestrator's commands
(``DISPATCH``, ``COMP_DISPATCH``), logs them durably, sends them concurrently,
and feeds every observed reply back through :func:`~saga_models.semantics.apply`.
Retry backoff, timeouts and the breaker only decide *when* a command is sent and
*which outcome* an attempt had; which command comes next is the semantics' call.

Not ``tenacity`` for retries: it sleeps with its own (wall-clock) sleep and
owns the retry loop, whereas here the retry *decision* belongs to the semantics
and the wait must run on the injected clock as an event-loop timer.
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from saga_models import RetryPolicy, Saga, Step
from saga_models import semantics as sem
from saga_models.semantics import (
    CS,
    HEADER,
    NO_FAULTS,
    PHASE,
    ST,
    WIDTH,
    CompStatus,
    Event,
    EventKind,
    Outcome,
    Phase,
    Status,
)

from ._breaker import Breaker
from ._clock import Clock, RealClock
from ._errors import (
    CircuitOpen,
    DefinitionMismatch,
    LeaseLost,
    NotResumable,
    ParticipantContractError,
)
from ._events import EventBus, EventType, InProcessBus, SagaEvent, logger
from ._log import (
    RUNNING,
    Create,
    LogRecord,
    MemoryLog,
    SagaInfo,
    SagaLog,
    append_many,
    new_worker_id,
)
from ._participants import (
    ACTION,
    COMPENSATION,
    Operation,
    ParticipantsLike,
    StepContext,
    as_participants,
    error_names,
    invoke,
    is_fatal,
)
from ._replay import Replayed, derived_status, replay, unfinished
from ._telemetry import Telemetry


class SagaOutcome(enum.Enum):
    """The four typed terminal outcomes (DESIGN.md)."""

    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    FAILED = "FAILED"
    """Aborted with nothing to compensate."""
    STUCK = "STUCK"
    """A compensation (or a step after the pivot) could not finish; resumable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SagaResult:
    """How one saga instance ended."""

    saga_id: str
    outcome: SagaOutcome
    results: Mapping[str, Any] = field(default_factory=dict)
    """Outputs of the actions that completed, by step name."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """The last error of each step that failed, by step name."""

    @property
    def completed(self) -> bool:
        """True only for ``COMPLETED``: a rollback never reports success."""
        return self.outcome is SagaOutcome.COMPLETED


_Key = tuple[str, int]  # ("a" | "c", step index)


@dataclass(slots=True, kw_only=True)
class _Instance:
    saga_id: str
    input: Any
    state: sem.State
    seq: int
    results: dict[int, Any]
    attempts: dict[int, int]
    comp_attempts: dict[int, int]
    errors: dict[int, str]
    queue: asyncio.Queue[tuple[Any, ...]] = field(default_factory=asyncio.Queue)
    tasks: dict[_Key, asyncio.Task[None]] = field(default_factory=dict)
    contexts: dict[_Key, StepContext] = field(default_factory=dict)
    deadlines: dict[_Key, asyncio.Timeout] = field(default_factory=dict)
    not_before: dict[_Key, float] = field(default_factory=dict)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    first_sent: dict[int, float] = field(default_factory=dict)
    """Wall time of each step's first send: the start of its total budget,
    which a crash does not renew (it is rebuilt from the log)."""
    after_unknown: set[int] = field(default_factory=set)
    """Steps whose attempt in flight follows one that ended unknown."""
    pending: list[LogRecord] = field(default_factory=list)
    events: list[SagaEvent] = field(default_factory=list)


_REPLY_EVENT = {
    Outcome.OK: EventType.STEP_COMPLETED,
    Outcome.FAILED: EventType.STEP_FAILED,
    Outcome.FATAL: EventType.STEP_FAILED,
    Outcome.UNKNOWN: EventType.STEP_TIMED_OUT,
    Outcome.EXPIRED: EventType.STEP_TIMED_OUT,
}
_END_EVENT = {
    Phase.COMPLETED: EventType.SAGA_COMPLETED,
    Phase.COMPENSATED: EventType.SAGA_COMPENSATED,
    Phase.FAILED: EventType.SAGA_FAILED,
    Phase.STUCK: EventType.SAGA_STUCK,
}
_CACHE_SIZE = 10_000


class Engine:
    """Runs instances of one saga definition.

    Args:
        saga: The definition.
        participants: What binds its actions (see :class:`Participants`); every
            action and compensation must be bound, or :class:`BindingError`.
        log: The durable log (default: in memory, not durable).
        clock: Injected time (default: the event loop's).
        rng: Injected randomness for jitter (default: ``random.Random(0)``).
        bus: Where lifecycle events go (default: a new :class:`InProcessBus`).
        worker_id: This worker's lease identity (default: host:pid:random).
        lease_seconds: How long a claim on an instance lasts without renewal.
        definition_path: Recorded so ``sagaproof recover`` can reload it.
        participants_spec: Recorded ``module:object`` so recovery can re-bind.
        group_commit: Commit the records of instances that are ready together
            (new, running and recovered ones) in one transaction (one fsync);
            no command is sent before its record is durable either way.
        telemetry: Told every published event with its time and the breaker
            state (e.g. :func:`otel_telemetry` for OpenTelemetry spans and
            metrics); it observes only.

    >>> from saga_models import SagaBuilder
    >>> saga = (SagaBuilder("demo")
    ...         .step("a", participant="p", action="do", compensation="undo")
    ...         .build())
    >>> ops = {"p": {"do": lambda ctx: {"n": 1}, "undo": lambda ctx: None}}
    >>> asyncio.run(Engine(saga, ops).run({"x": 1})).outcome.value
    'COMPLETED'
    """

    def __init__(
        self,
        saga: Saga,
        participants: ParticipantsLike,
        *,
        log: SagaLog | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        bus: EventBus | None = None,
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        definition_path: str | None = None,
        participants_spec: str | None = None,
        group_commit: bool = True,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.saga = saga
        self._ops: dict[tuple[str, str], Operation] = as_participants(
            participants).bind(saga)
        self.log: SagaLog = log if log is not None else MemoryLog()
        self.clock: Clock = clock if clock is not None else RealClock()
        self.rng = rng if rng is not None else random.Random(0)
        self.bus: EventBus = bus if bus is not None else InProcessBus()
        self.worker_id = worker_id or new_worker_id()
        self.lease_seconds = lease_seconds
        self.definition_path = definition_path
        self.participants_spec = participants_spec
        self.telemetry = telemetry
        self.hash = saga.content_hash
        self._breakers: dict[str, Breaker] = {}
        for step in saga.steps:
            if step.breaker is not None and step.participant not in self._breakers:
                self._breakers[step.participant] = Breaker(step.breaker, self.clock)
        self._cache: OrderedDict[tuple[str, str, str], tuple[float, Any]] = (
            OrderedDict())
        self._drivers: dict[str, asyncio.Task[SagaResult]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._counter = 0
        self.group_commit = group_commit
        self._group: list[tuple[str, list[LogRecord], str, bool,
                                asyncio.Future[None]]] = []
        self._group_creates: list[tuple[Create, asyncio.Future[None]]] = []

    # --- public API -------------------------------------------------------------
    def breaker(self, participant: str) -> Breaker | None:
        """The circuit breaker of ``participant``, if one is declared."""
        return self._breakers.get(participant)

    async def run(self, input: Any = None, *, saga_id: str | None = None) -> SagaResult:
        """Start an instance and wait for its terminal outcome."""
        sid = await self.start(input, saga_id=saga_id)
        return await self.wait(sid)

    async def start(self, input: Any = None, *, saga_id: str | None = None) -> str:
        """Log a new instance durably and start driving it; returns its id."""
        input_json = self._input_json(input)
        if saga_id is None:
            self._counter += 1
            saga_id = f"{self.saga.name}-{self.worker_id.rsplit(':', 1)[-1]}-" \
                      f"{self._counter}-{self.rng.getrandbits(32):08x}"
        wall = self.clock.wall()
        first = LogRecord(saga_id=saga_id, seq=0, kind="start",
                          definition_hash=self.hash, data=input_json, at=wall)
        inst = _Instance(saga_id=saga_id, input=input, seq=1,
                         state=sem.initial_state(self.saga), results={}, attempts={},
                         comp_attempts={}, errors={})
        # The first commands' dispatches commit with the start record: one
        # transaction, one fsync instead of two, and still nothing is sent
        # before its record is durable (the driver sends what the log shows
        # in flight, as after a recovery).
        self._advance(inst)
        status = (sem.phase(inst.state).name if sem.is_terminal(inst.state)
                  else RUNNING)
        info = SagaInfo(
            saga_id=saga_id, name=self.saga.name, definition_hash=self.hash,
            definition_path=self.definition_path, participants=self.participants_spec,
            input=input_json, status=status, owner=self.worker_id,
            lease_until=wall + self.lease_seconds, created_at=wall, updated_at=wall)
        more, inst.pending = inst.pending, []
        if not self.group_commit:
            self.log.create(info, first, more)
            self._started(inst)
            return saga_id
        done = self._join_group(create=(info, first, more))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            # The caller gave up, but the group commit still writes the
            # instance (queued before any cancel could come): once it is in
            # the log it is driven, else its first commands would wait,
            # unsent, for this live worker's lease to run out.
            def drive(f: asyncio.Future[None]) -> None:
                if not f.cancelled() and f.exception() is None:
                    self._started(inst)

            done.add_done_callback(drive)
            raise
        self._started(inst)
        return saga_id

    def _started(self, inst: _Instance) -> None:
        """Announce and drive an instance whose start is in the log."""
        self._publish(SagaEvent(type=EventType.SAGA_STARTED, saga_id=inst.saga_id,
                                saga_name=self.saga.name, seq=0))
        self._spawn(inst)

    def submit(self, input: Any = None, *, saga_id: str) -> str:
        """Log a new instance durably and leave it for a worker to claim
        (``sagaproof worker``): nobody owns it and nothing has been sent."""
        input_json = self._input_json(input)
        wall = self.clock.wall()
        info = SagaInfo(
            saga_id=saga_id, name=self.saga.name, definition_hash=self.hash,
            definition_path=self.definition_path, participants=self.participants_spec,
            input=input_json, status=RUNNING, owner=None, lease_until=0.0,
            created_at=wall, updated_at=wall)
        self.log.create(info, LogRecord(saga_id=saga_id, seq=0, kind="start",
                                        definition_hash=self.hash, data=input_json,
                                        at=wall))
        return saga_id

    def adopt(self, info: SagaInfo) -> None:
        """Drive an instance this worker has just claimed (its lease is ours).

        One that a worker already drove is recovered, exactly as ``recover``
        does (a crash and a recovery in the semantics, in-flight commands sent
        again with the same keys). One that nobody started (only its ``start``
        record, so no command has left) simply starts: no crash happened.
        """
        if info.owner != self.worker_id:
            raise LeaseLost(f"saga_id={info.saga_id!r} is owned by {info.owner!r}, "
                            f"not by this worker {self.worker_id!r}")
        if info.next_seq > 1:
            self._restart(info, "recover", EventType.SAGA_RECOVERED)
            return
        rep = self._replay(info)
        self._started(_Instance(saga_id=info.saga_id, input=rep.input, seq=1,
                                state=rep.state, results={}, attempts={},
                                comp_attempts={}, errors={}))

    def driving(self) -> int:
        """How many instances this engine is driving now."""
        return sum(1 for t in self._drivers.values() if not t.done())

    def reap(self) -> list[tuple[str, SagaResult | BaseException]]:
        """The instances whose driver finished since the last call, each with
        its result or the exception that stopped it (``LeaseLost`` when another
        worker took it over)."""
        done = [(sid, t) for sid, t in self._drivers.items() if t.done()]
        out: list[tuple[str, SagaResult | BaseException]] = []
        for sid, t in done:
            del self._drivers[sid]
            if t.cancelled():
                continue
            exc = t.exception()
            out.append((sid, exc if exc is not None else t.result()))
        return out

    async def wait(self, saga_id: str) -> SagaResult:
        """The terminal outcome of ``saga_id`` (driving here, or from the log)."""
        task = self._drivers.get(saga_id)
        if task is not None:
            try:
                return await asyncio.shield(task)
            finally:
                if task.done():
                    self._drivers.pop(saga_id, None)
        info = self.log.get(saga_id)
        rep = self._replay(info)
        return self._result(saga_id, rep.state, rep.results, rep.errors)

    async def recover(self, *, force: bool = False) -> list[SagaResult]:
        """Resume every unfinished instance of this definition from the log.

        Completed steps are never re-run; the in-flight step is re-sent with the
        same idempotency key; compensation resumes where it stopped. Instances
        leased by a live worker are left alone unless ``force``.
        Raises :class:`DefinitionMismatch` (before touching anything) if an
        unfinished instance of this saga was started under another definition.
        """
        # The records decide what is unfinished, not the status column (a
        # summary that can be stale or edited): every instance the summary or
        # the records call unfinished is replayed, and recovered if the replay
        # is not terminal.
        infos: list[SagaInfo] = []
        foreign: list[SagaInfo] = []
        for i in unfinished(self.log):
            if i.name != self.saga.name or i.saga_id in self._drivers:
                continue
            records = self.log.records(i.saga_id)
            if records and records[0].definition_hash != self.hash:
                foreign.append(i)
            elif derived_status(replay(self.saga, records)) == RUNNING:
                infos.append(i)
        if foreign:
            ids = ", ".join(f"{i.saga_id} ({i.definition_hash[:12]}...)"
                            for i in foreign[:5])
            raise DefinitionMismatch(
                f"{len(foreign)} unfinished instance(s) of saga {self.saga.name!r} "
                f"are pinned to another definition than hash {self.hash[:12]}...: "
                f"{ids}; recover them with the definition they started with")
        started: list[str] = []
        for info in infos:
            wall = self.clock.wall()
            if not self.log.claim(info.saga_id, owner=self.worker_id,
                                  lease_until=wall + self.lease_seconds, now=wall,
                                  expect_status=info.status, new_status=RUNNING,
                                  force=force):
                continue
            self._restart(self.log.get(info.saga_id), "recover",
                          EventType.SAGA_RECOVERED)
            started.append(info.saga_id)
        return [await self.wait(sid) for sid in started]

    async def resume(self, saga_id: str) -> SagaResult:
        """Continue a ``STUCK`` instance after a person fixed the cause."""
        info = self.log.get(saga_id)
        if info.name != self.saga.name:
            raise NotResumable(
                f"saga_id={saga_id!r} is an instance of {info.name!r}, not "
                f"{self.saga.name!r}")
        if info.definition_hash != self.hash:
            raise DefinitionMismatch(
                f"saga_id={saga_id!r} is pinned to definition hash "
                f"{info.definition_hash[:12]}..., not {self.hash[:12]}...")
        if info.status != Phase.STUCK.name:
            raise NotResumable(
                f"saga_id={saga_id!r} is {info.status}, not STUCK; only a STUCK "
                "instance can be resumed (use recover for running ones)")
        wall = self.clock.wall()
        if not self.log.claim(saga_id, owner=self.worker_id,
                              lease_until=wall + self.lease_seconds, now=wall,
                              expect_status=Phase.STUCK.name, new_status=RUNNING,
                              force=True):
            raise NotResumable(f"saga_id={saga_id!r} was resumed by another worker")
        self._restart(self.log.get(saga_id), "resume", EventType.SAGA_RESUMED)
        return await self.wait(saga_id)

    async def aclose(self) -> None:
        """Cancel every instance being driven (as if the process stopped; the
        log lets another worker recover them) and wait for them to settle."""
        tasks = list(self._drivers.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._drivers.clear()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.wait([self._heartbeat])
            self._heartbeat = None

    # --- instance lifecycle --------------------------------------------------------
    @staticmethod
    def _input_json(input: Any) -> str:
        try:
            return json.dumps(input)
        except (TypeError, ValueError) as exc:
            raise ParticipantContractError(
                f"saga input must be JSON-serialisable: {exc}") from None

    def _replay(self, info: SagaInfo) -> Replayed:
        if info.definition_hash != self.hash:
            raise DefinitionMismatch(
                f"saga_id={info.saga_id!r} is pinned to definition hash "
                f"{info.definition_hash[:12]}..., but {self.saga.name!r} given here "
                f"has hash {self.hash[:12]}...")
        return replay(self.saga, self.log.records(info.saga_id))

    def _restart(self, info: SagaInfo, kind: str, event: EventType) -> None:
        rep = self._replay(info)
        inst = _Instance(saga_id=info.saga_id, input=rep.input, seq=rep.next_seq,
                         state=rep.state, results=rep.results, attempts=rep.attempts,
                         comp_attempts=rep.comp_attempts, errors=rep.errors,
                         after_unknown=rep.after_unknown,
                         # a person resuming a STUCK saga gives it a fresh budget
                         first_sent={} if kind == "resume" else rep.first_sent)
        self._record(inst, kind, -1)
        inst.state = (sem.resume(self.saga, inst.state) if kind == "resume" else
                      sem.apply(self.saga, sem.apply(self.saga, inst.state,
                                                     Event(EventKind.CRASH)),
                                Event(EventKind.RECOVER)))
        inst.events.append(SagaEvent(type=event, saga_id=inst.saga_id,
                                     saga_name=self.saga.name, seq=inst.seq - 1))
        self._spawn(inst)

    def _spawn(self, inst: _Instance) -> None:
        self._drivers[inst.saga_id] = asyncio.create_task(
            self._drive(inst), name=f"saga:{inst.saga_id}")
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._renew_leases())

    async def _renew_leases(self) -> None:
        while any(not t.done() for t in self._drivers.values()):
            await asyncio.sleep(self.lease_seconds / 3)
            self.log.renew(self.worker_id, self.clock.wall() + self.lease_seconds)

    async def _drive(self, inst: _Instance) -> SagaResult:
        try:
            # What the log shows in flight leaves once the instance's own
            # first records (recover/resume) are durable: grouped with the
            # other instances', so recovering many costs one fsync, not many.
            await self._commit(inst, status=RUNNING, sync=True)
            self._resend_in_flight(inst)
            while True:
                launches = self._advance(inst)
                terminal = sem.is_terminal(inst.state)
                # Nothing leaves before its record is durable: the commands
                # are sent once the batch (grouped with other instances'
                # batches that are ready now) has committed.
                await self._commit(
                    inst, status=sem.phase(inst.state).name if terminal else RUNNING,
                    sync=bool(launches))
                for key in launches:
                    self._launch(inst, key)
                if terminal:
                    break
                msg = await inst.queue.get()
                self._handle(inst, msg)
        finally:
            for h in inst.timers:
                h.cancel()
            pending = [t for t in inst.tasks.values() if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
        return self._result(inst.saga_id, inst.state, inst.results, inst.errors)

    def _result(self, saga_id: str, state: sem.State, results: Mapping[int, Any],
                errors: Mapping[int, str]) -> SagaResult:
        phase = sem.phase(state)
        if phase not in sem.TERMINAL:
            raise LeaseLost(f"saga_id={saga_id!r} is still {phase.name}; recover it")
        names = [s.name for s in self.saga.steps]
        return SagaResult(saga_id=saga_id, outcome=SagaOutcome(phase.name),
                          results={names[i]: v for i, v in results.items()},
                          errors={names[i]: e for i, e in errors.items()})

    # --- the driving loop ------------------------------------------------------------
    def _advance(self, inst: _Instance) -> list[_Key]:
        """Take every command the semantics enables now and record it; returns
        the commands to send once the records are durable."""
        saga = self.saga
        now = self.clock.now()
        launches: list[_Key] = []
        while not sem.is_terminal(inst.state):
            chosen: Event | None = None
            for ev in sem.enabled(saga, inst.state, NO_FAULTS):
                if ev.kind not in sem.CONTROLLED:
                    continue
                key: _Key = ("a" if ev.kind is EventKind.DISPATCH else "c", ev.step)
                if inst.not_before.get(key, 0.0) > now:
                    continue  # waiting out a backoff; its timer will wake us
                chosen = ev
                break
            if chosen is None:
                break
            i = chosen.step
            if chosen.kind is EventKind.DISPATCH:
                if inst.state[HEADER + WIDTH * i + ST] == Status.RETRY_UNKNOWN:
                    inst.after_unknown.add(i)
                else:
                    inst.after_unknown.discard(i)
            inst.state = sem.apply(saga, inst.state, chosen)
            if chosen.kind is EventKind.DISPATCH:
                n = inst.attempts[i] = inst.attempts.get(i, 0) + 1
                inst.first_sent.setdefault(i, self.clock.wall())
                self._record(inst, "dispatch", i, attempt=n)
                inst.events.append(self._ev(inst, EventType.STEP_STARTED, i, n))
                launches.append(("a", i))
            else:
                n = inst.comp_attempts[i] = inst.comp_attempts.get(i, 0) + 1
                self._record(inst, "comp_dispatch", i, attempt=n)
                inst.events.append(self._ev(inst, EventType.COMPENSATION_STARTED, i, n))
                launches.append(("c", i))
        terminal = sem.is_terminal(inst.state)
        if terminal:
            ph = sem.phase(inst.state)
            self._record(inst, "end", -1, outcome=ph.name)
            inst.events.append(SagaEvent(type=_END_EVENT[ph], saga_id=inst.saga_id,
                                         saga_name=saga.name, seq=inst.seq - 1))
        return launches

    async def _commit(self, inst: _Instance, *, status: str, sync: bool) -> None:
        """Make ``inst``'s pending records durable, in one transaction with
        those of every other instance that is ready in the same turn of the
        event loop (group commit: one fsync for all of them)."""
        if not inst.pending or not self.group_commit:
            self._flush(inst, status=status, sync=sync)
            return
        pending, inst.pending = inst.pending, []
        await self._join_group(batch=(inst.saga_id, pending, status, sync))
        self._flush(inst, status=status, sync=sync)  # publishes the events

    def _join_group(self, *, batch: tuple[str, list[LogRecord], str, bool]
                    | None = None, create: Create | None = None
                    ) -> asyncio.Future[None]:
        """Queue ``batch`` (records of a running instance) or ``create`` (a
        new instance) to commit with everything else that is ready in this
        turn of the event loop; the future is done when it has, with what its
        own part failed with."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if batch is not None:
            self._group.append((*batch, done))
        if create is not None:
            self._group_creates.append((create, done))
        if len(self._group) + len(self._group_creates) == 1:
            loop.call_soon(self._commit_group)
        return done

    def _commit_group(self) -> None:
        group, self._group = self._group, []
        creates, self._group_creates = self._group_creates, []
        batches = [(sid, recs, status) for sid, recs, status, _s, _d in group]
        sync = any(s for *_, s, _d in group)
        futures = [fut for _, fut in creates] + [fut for *_, fut in group]
        try:
            errors = append_many(self.log, batches, owner=self.worker_id,
                                 now=self.clock.wall(), sync=sync,
                                 creates=[c for c, _ in creates])
        except Exception as exc:  # the transaction failed: nothing was written
            errors = [exc] * len(futures)
        for fut, error in zip(futures, errors, strict=True):
            if fut.done():
                continue  # its driver was cancelled meanwhile
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)

    def _flush(self, inst: _Instance, *, status: str, sync: bool) -> None:
        if inst.pending:
            self.log.append(inst.saga_id, inst.pending, owner=self.worker_id,
                            status=status, now=self.clock.wall(), sync=sync)
            inst.pending = []
        for ev in inst.events:
            self._publish(ev)
        inst.events = []

    def _record(self, inst: _Instance, kind: str, i: int, *, outcome: str | None = None,
                attempt: int = 0, data: str | None = None) -> None:
        inst.pending.append(LogRecord(
            saga_id=inst.saga_id, seq=inst.seq, kind=kind,
            step=self.saga.steps[i].name if i >= 0 else None, step_index=i,
            outcome=outcome, attempt=attempt, definition_hash=self.hash, data=data,
            at=self.clock.wall()))
        inst.seq += 1

    def _ev(self, inst: _Instance, type_: EventType, i: int, attempt: int,
            error: str | None = None) -> SagaEvent:
        return SagaEvent(type=type_, saga_id=inst.saga_id, saga_name=self.saga.name,
                         seq=inst.seq - 1, step=self.saga.steps[i].name,
                         attempt=attempt, error=error)

    def _publish(self, event: SagaEvent) -> None:
        self.bus.publish(event)
        if self.telemetry is not None:
            self._observe(self.telemetry, event)

    def _observe(self, telemetry: Telemetry, event: SagaEvent) -> None:
        breaker = None
        if event.step is not None:
            found = self._breakers.get(self.saga.step(event.step).participant)
            breaker = found.state if found is not None else None
        try:
            telemetry.observe(event, at=self.clock.wall(), breaker=breaker)
        except Exception:
            # Like a failing bus subscriber: observing must not break a saga.
            logger.exception("telemetry %r failed on %s", telemetry,
                             event.type.value)

    def _resend_in_flight(self, inst: _Instance) -> None:
        """Send what the log shows in flight: after recover/resume again, with
        the same attempt number and idempotency key (at-least-once); after
        :meth:`start`, the first commands, whose dispatches committed with the
        start record."""
        aborting = inst.state[PHASE] != Phase.RUNNING
        for i in range(len(self.saga.steps)):
            base = HEADER + WIDTH * i
            if inst.state[base + ST] == Status.RUNNING:
                self._launch(inst, ("a", i))
                if aborting:
                    self._cancel_sibling(inst, i)
            if inst.state[base + CS] == CompStatus.RUNNING:
                self._launch(inst, ("c", i))

    def _launch(self, inst: _Instance, key: _Key) -> None:
        kind, i = key
        step = self.saga.steps[i]
        attempt_kind = ACTION if kind == "a" else COMPENSATION
        op_name = step.action if kind == "a" else step.compensation
        assert op_name is not None
        template = step.idempotency_key or "{saga_id}:{step}:{attempt_kind}"
        ctx = StepContext(
            saga_id=inst.saga_id, saga_name=self.saga.name, step=step.name,
            participant=step.participant, operation=op_name, attempt_kind=attempt_kind,
            attempt=max(1, (inst.attempts if kind == "a" else inst.comp_attempts)
                        .get(i, 1)),
            idempotency_key=template.format(saga_id=inst.saga_id, step=step.name,
                                            attempt_kind=attempt_kind),
            action_key=template.format(saga_id=inst.saga_id, step=step.name,
                                       attempt_kind=ACTION),
            input=inst.input if isinstance(inst.input, Mapping) else {},
            results={self.saga.steps[j].name: v for j, v in inst.results.items()},
            result=inst.results.get(i) if kind == "c" else None,
        )
        inst.contexts[key] = ctx
        coro = (self._call_action(inst, i, step, ctx) if kind == "a"
                else self._call_compensation(inst, i, step, ctx))
        inst.tasks[key] = asyncio.create_task(coro)

    def _handle(self, inst: _Instance, msg: tuple[Any, ...]) -> None:
        tag = msg[0]
        if tag == "timer":
            # asyncio may fire a timer up to its clock resolution early, so the
            # timer itself, not a comparison with now, ends the wait.
            inst.not_before.pop(msg[1], None)
            return
        saga = self.saga
        _, i, outcome, payload, error = msg
        base = HEADER + WIDTH * i
        key: _Key = ("a" if tag == "reply" else "c", i)
        inst.tasks.pop(key, None)
        inst.contexts.pop(key, None)
        inst.deadlines.pop(key, None)
        if tag == "reply":
            if inst.state[base + ST] != Status.RUNNING:
                return  # stale: nothing in flight for this step
            was_running = inst.state[PHASE] == Phase.RUNNING
            inst.state = sem.apply(saga, inst.state, Event(EventKind.REPLY, i, outcome))
            n = inst.attempts.get(i, 1)
            if outcome is Outcome.OK:
                inst.results[i] = payload
                inst.errors.pop(i, None)
                data = json.dumps(payload)
            else:
                inst.results.pop(i, None)
                inst.errors[i] = error
                data = json.dumps(error)
            self._record(inst, "reply", i, outcome=outcome.value, attempt=n, data=data)
            inst.events.append(self._ev(inst, _REPLY_EVENT[outcome], i, n, error))
            st = inst.state[base + ST]
            if st in (Status.RETRY_FAILED, Status.RETRY_UNKNOWN):
                retry = saga.steps[i].retry
                delay = _interval(retry, inst.attempts.get(i, 1))
                if retry.jitter:
                    delay -= delay * retry.jitter * self.rng.random()
                self._wake_at(inst, ("a", i), delay)
            if was_running and inst.state[PHASE] != Phase.RUNNING:
                for (k, j) in list(inst.tasks):
                    if k == "a":
                        self._cancel_sibling(inst, j)
        else:
            if inst.state[base + CS] != CompStatus.RUNNING:
                return
            inst.state = sem.apply(saga, inst.state,
                                   Event(EventKind.COMP_REPLY, i, outcome))
            n = inst.comp_attempts.get(i, 1)
            ok = outcome is Outcome.OK
            if not ok:
                inst.errors[i] = error
            self._record(inst, "comp_reply", i, outcome=outcome.value, attempt=n,
                         data=None if ok else json.dumps(error))
            inst.events.append(self._ev(
                inst, EventType.COMPENSATION_COMPLETED if ok
                else EventType.COMPENSATION_TIMED_OUT if outcome is Outcome.UNKNOWN
                else EventType.COMPENSATION_FAILED, i, n, None if ok else error))
            if inst.state[base + CS] == CompStatus.RETRY:
                policy = saga.compensation_policy.as_retry()
                self._wake_at(inst, ("c", i), _interval(
                    policy, inst.comp_attempts.get(i, 1)))

    def _wake_at(self, inst: _Instance, key: _Key, delay: float) -> None:
        if delay <= 0:
            inst.not_before.pop(key, None)
            return
        when = self.clock.now() + delay
        inst.not_before[key] = when
        loop = asyncio.get_running_loop()
        inst.timers = [h for h in inst.timers if not h.cancelled()
                       and h.when() > loop.time()]
        inst.timers.append(loop.call_at(loop.time() + delay, inst.queue.put_nowait,
                                        ("timer", key)))

    def _cancel_sibling(self, inst: _Instance, i: int) -> None:
        """Abort: ask an in-flight action to stop. One with a per-attempt timeout
        is cut off now (an unknown outcome, compensated); one without is waited
        for, since the semantics only knows its real reply."""
        ctx = inst.contexts.get(("a", i))
        if ctx is not None:
            ctx.cancel_requested.set()
        deadline = inst.deadlines.get(("a", i))
        if deadline is not None and not deadline.expired():
            deadline.reschedule(asyncio.get_running_loop().time())

    # --- calls -----------------------------------------------------------------------
    async def _call_action(self, inst: _Instance, i: int, step: Step,
                           ctx: StepContext) -> None:
        outcome, payload, error = await self._attempt(inst, i, step, ctx)
        inst.queue.put_nowait(("reply", i, outcome, payload, error))

    async def _attempt(self, inst: _Instance, i: int, step: Step,
                       ctx: StepContext) -> tuple[Outcome, Any, str | None]:
        op = self._ops[(step.participant, step.action)]
        breaker = self._breakers.get(step.participant)
        cache_key: tuple[str, str, str] | None = None
        if step.cache_ttl is not None:
            cache_key = (step.participant, step.action,
                         json.dumps(ctx.input, sort_keys=True, default=str))
            hit = self._cache.get(cache_key)
            if hit is not None and hit[0] > self.clock.now():
                return Outcome.OK, hit[1], None
        loop = asyncio.get_running_loop()
        now = loop.time()
        budget_end: float | None = None
        if step.total_timeout is not None:
            # The semantics' EXPIRED reply: the budget for all attempts (counted
            # from the first send by this worker) is spent, so the step is spent
            # however many attempts remain. Spent before this attempt: it is not
            # sent at all (expired, no effect).
            wall = self.clock.wall()
            budget_end = now + (inst.first_sent.get(i, wall) + step.total_timeout
                                - wall)
            if now >= budget_end:
                return Outcome.EXPIRED, None, (
                    f"TimeoutError: total timeout of {step.total_timeout}s spent")
        if breaker is not None and not breaker.allow():
            # Not sent. After an attempt that ended unknown, "failed" would tell
            # the semantics that nothing took effect and skip the compensation
            # the earlier attempt may need: the outcome is still unknown.
            unknown = i in inst.after_unknown and step.timeout is not None
            return (Outcome.UNKNOWN if unknown else Outcome.FAILED), None, _describe(
                CircuitOpen(f"circuit breaker of participant {step.participant!r} "
                            "is open"))
        deadline: float | None = None
        if step.timeout is not None:
            deadline = now + step.timeout
        budget_fires = budget_end is not None and (deadline is None
                                                   or budget_end <= deadline)
        if budget_fires:
            deadline = budget_end
        try:
            # timeout_at: the deadline is absolute loop time (asyncio.timeout
            # takes a delay, which made every attempt after t=0 last too long)
            async with asyncio.timeout_at(deadline) as cm:
                if deadline is not None:
                    # Only an attempt with a timeout can be cut off by an
                    # abort; one without is waited for (see _cancel_sibling).
                    inst.deadlines[("a", i)] = cm
                if ctx.cancel_requested.is_set() and deadline is not None:
                    cm.reschedule(loop.time())
                try:
                    out = await invoke(op, ctx)
                finally:
                    # A finished Timeout cannot be rescheduled by an abort.
                    inst.deadlines.pop(("a", i), None)
            _check_json(out, step, ctx.operation)
        except TimeoutError as exc:
            if breaker is not None:
                breaker.failure()
            if deadline is not None and cm.expired():
                # An abort cuts an attempt off by rescheduling its deadline: an
                # unknown outcome either way, reported as the semantics offers
                # it for this step (a step with only a total timeout has no
                # plain unknown).
                if step.timeout is None or (
                        budget_fires and not ctx.cancel_requested.is_set()):
                    return Outcome.EXPIRED, None, (
                        f"TimeoutError: total timeout of {step.total_timeout}s "
                        "spent")
                return Outcome.UNKNOWN, None, (
                    f"TimeoutError: no reply within {step.timeout}s")
            return self._classify(step, exc)
        except Exception as exc:
            if breaker is not None:
                breaker.failure()
            return self._classify(step, exc)
        if breaker is not None:
            breaker.success()
        if cache_key is not None:
            self._cache[cache_key] = (self.clock.now() + (step.cache_ttl or 0), out)
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return Outcome.OK, out, None

    def _classify(self, step: Step, exc: Exception) -> tuple[Outcome, Any, str]:
        fatal = is_fatal(step.retry, error_names(exc))
        if not isinstance(exc, ParticipantContractError) and logger.isEnabledFor(10):
            logger.debug("step %s raised %r", step.name, exc)
        return (Outcome.FATAL if fatal else Outcome.FAILED), None, _describe(exc)

    async def _call_compensation(self, inst: _Instance, i: int, step: Step,
                                 ctx: StepContext) -> None:
        outcome, error = await self._compensate(inst, i, step, ctx)
        inst.queue.put_nowait(("comp_reply", i, outcome, None, error))

    async def _compensate(self, inst: _Instance, i: int, step: Step,
                          ctx: StepContext) -> tuple[Outcome, str | None]:
        assert step.compensation is not None
        if step.compensation_needs_result and i not in inst.results:
            # The semantics: without the action's reply there is nothing to undo
            # with (no reservation id), so the compensation can only fail.
            return Outcome.FAILED, (
                f"compensation {step.participant}.{step.compensation} needs the "
                f"result of {step.name!r}, whose reply never came")
        op = self._ops[(step.participant, step.compensation)]
        breaker = self._breakers.get(step.participant)
        if breaker is not None and not breaker.allow():
            return Outcome.FAILED, _describe(CircuitOpen(
                f"circuit breaker of participant {step.participant!r} is open"))
        try:
            # A compensation that does not answer in time has an unknown
            # outcome (it may have undone the action), which the semantics
            # retries like a failure, with the same key: a compensation must
            # be safe when re-run (see semantics.apply, COMP_REPLY).
            async with asyncio.timeout(step.timeout) as cm:
                out = await invoke(op, ctx)
            _check_json(out, step, ctx.operation)
        except TimeoutError as exc:
            if breaker is not None:
                breaker.failure()
            if step.timeout is not None and cm.expired():
                return Outcome.UNKNOWN, (
                    f"TimeoutError: compensation gave no reply within "
                    f"{step.timeout}s")
            return Outcome.FAILED, _describe(exc)
        except Exception as exc:
            if breaker is not None:
                breaker.failure()
            return Outcome.FAILED, _describe(exc)
        if breaker is not None:
            breaker.success()
        return Outcome.OK, None


def _interval(policy: RetryPolicy, retry_number: int) -> float:
    """``policy.interval`` that saturates at the cap instead of overflowing
    after thousands of retries (a compensation retried forever gets there)."""
    try:
        return policy.interval(retry_number)
    except OverflowError:
        return float(policy.max_interval)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _check_json(out: Any, step: Step, op: str) -> None:
    try:
        json.dumps(out)
    except (TypeError, ValueError) as exc:
        raise ParticipantContractError(
            f"{step.participant}.{op} (step {step.name!r}) returned "
            f"{type(out).__name__} {out!r:.80}, which is not JSON ({exc}); return "
            "JSON-serialisable data") from None

"""The workflow engine: persisted state machines driven by the shared semantics.

Every decision (which transition handles an event, whether a guard holds, what
a duplicate does to a de-duplicating inbox, counter saturation, timer re-arming)
is :func:`saga_models.workflow.semantics.react` /
:func:`~saga_models.workflow.semantics.effect` on the same state tuple the
verifier explores. The engine adds what only a runtime has: a bus, handlers
bound by name, a clock for timers and a durable store.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from saga_models import SagaError
from saga_models.workflow import ENV, Workflow
from saga_models.workflow import semantics as sem
from saga_models.workflow.semantics import HEADER, Step, StepKind

from ._bus import Envelope, EventBus, InProcessBus
from ._store import LogEntry, WorkflowStore

Handler = Callable[["EventContext"], Any]
"""``fn(ctx) -> choice`` (or async): for a ``choose`` transition it returns the
target state name or the 0-based index of the choice; otherwise its result is
ignored."""


class WorkflowRuntimeError(SagaError, RuntimeError):
    """A handler broke its contract, or a binding is missing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventContext:
    """What a handler receives."""

    workflow_id: str
    service: str
    state: str
    """The service's state before the transition."""
    event: str | None
    """None for a timer."""
    event_id: str | None
    duplicate: bool
    """This event id was delivered to this service before."""
    counters: Mapping[str, int]
    choices: tuple[str, ...]
    """Target states of the transition's outcomes, in order."""
    input: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowResult:
    """How a run ended."""

    workflow_id: str
    status: str
    """``consistent`` (an outcome), ``final`` (every service final, no
    outcomes declared), ``stuck`` (quiescent, neither), or ``waiting`` (only a
    timer further away than ``max_wait`` is left; run again to resume)."""
    states: dict[str, str]
    counters: dict[str, int]
    steps: int
    unhandled: tuple[str, ...] = ()
    """Deliveries no transition handled (``event -> service in STATE``)."""
    outcome: str | None = None
    dead_letters: tuple[str, ...] = field(default=())


@dataclass(slots=True)
class _Live:
    """The mutable state of one running instance (mirrors the store)."""

    wid: str
    states: dict[str, str]
    fired: dict[str, bool]
    due: dict[str, float | None]
    counters: dict[str, int]
    seq: int
    next_event: int
    input: Any = None
    unhandled: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)


def create_instance(wf: Workflow, store: WorkflowStore, workflow_id: str) -> None:
    """Persist a new instance of ``wf``: initial states and counters, the
    ``start`` events on the outbox (nothing is delivered yet)."""
    env = [Envelope(event_id=f"{workflow_id}:{n}", event=e, receiver=r,
                    sender=ENV, seq=n)
           for n, (e, r) in enumerate(
               (e, r) for e in wf.start for r in wf.subscribers(e))]
    store.create(workflow_id, wf.name,
                 states={s.name: s.initial for s in wf.services},
                 counters={c.name: c.initial for c in wf.counters},
                 outbox=env, next_event=len(env))


class WorkflowEngine:
    """Runs one workflow definition; one instance per ``run`` call."""

    def __init__(self, wf: Workflow, handlers: Any = None, *,
                 store: WorkflowStore | None = None, bus: EventBus | None = None,
                 clock: Any = None, rng: random.Random | None = None,
                 max_handler_attempts: int = 3, max_steps: int = 10_000,
                 max_wait: float | None = None,
                 listeners: Sequence[Callable[[LogEntry], Any]] = ()) -> None:
        self.wf = wf
        self.store = store or WorkflowStore()
        self.rng = rng or random.Random(0)
        self.bus: EventBus = bus or InProcessBus(wf, rng=self.rng)
        from runtime._clock import RealClock

        # Timer due times are wall-clock seconds, so they survive a restart.
        self.clock = clock or RealClock()
        self.max_wait = max_wait
        self.listeners = tuple(listeners)
        """Called with each step once it is durable (state-change events)."""
        """Stop (status ``waiting``) rather than sleep longer than this for
        the next timer; a later ``run`` with the same id resumes."""
        self.max_handler_attempts = max_handler_attempts
        self.max_steps = max_steps
        self._t = sem.tables(wf)
        self._handlers = self._bind(handlers)

    def _bind(self, handlers: Any) -> dict[tuple[int, int], Handler]:
        from runtime._participants import as_participants

        parts = as_participants(handlers if handlers is not None else {})
        bound: dict[tuple[int, int], Handler] = {}
        missing = []
        for i, s in enumerate(self.wf.services):
            for k, t in enumerate(s.transitions):
                fn = parts.resolve(s.name, t.handler_name)
                if fn is not None:
                    bound[(i, k)] = fn  # type: ignore[assignment]
                elif t.choose:
                    missing.append(f"{s.name}.{t.handler_name}")
        if missing:
            raise WorkflowRuntimeError(
                f"workflow {self.wf.name!r}: no handler bound for the choices "
                + ", ".join(missing) + "; a 'choose' transition needs a callable "
                "that returns the target state")
        return bound

    # --- model state <-> stored state ------------------------------------------------
    def _model(self, states: Mapping[str, str], fired: Mapping[str, bool],
               counters: Mapping[str, int]) -> sem.State:
        t = self._t
        st = [0] * t.width
        for i, name in enumerate(t.services):
            st[HEADER + 2 * i] = t.state_names[i].index(states[name])
            st[HEADER + 2 * i + 1] = int(fired[name])
        for i, c in enumerate(t.counters):
            st[t.counter_base + i] = counters[c]
        return tuple(st)

    def create(self, workflow_id: str) -> None:
        """Persist a new instance (see :func:`create_instance`)."""
        create_instance(self.wf, self.store, workflow_id)

    async def run(self, *, workflow_id: str | None = None, input: Any = None
                  ) -> WorkflowResult:
        """Run (or resume) an instance until nothing can happen any more."""
        wid = workflow_id or uuid.uuid4().hex  # an id, not a behaviour
        snap = self.store.load(wid)
        if snap is not None and snap.name != self.wf.name:
            raise WorkflowRuntimeError(
                f"instance {wid!r} in the store belongs to workflow "
                f"{snap.name!r}, not {self.wf.name!r}; pick another id or db")
        t = self._t
        if snap is None:
            self.create(wid)
            snap = self.store.load(wid)
            assert snap is not None
        live = _Live(wid=wid, states=dict(snap.states), fired=dict(snap.fired),
                     due=dict(snap.due), counters=dict(snap.counters),
                     seq=snap.next_seq, next_event=snap.next_event, input=input)
        self.bus.publish(snap.outbox)
        now = self.clock.wall()
        for i in range(len(self.wf.services)):
            self._arm(live, i, now, entered=snap.next_seq == 0)
        attempts: dict[tuple[str, str], int] = {}
        for _ in range(self.max_steps):
            model = self._model(live.states, live.fired, live.counters)
            timers = sem.timers_enabled(self.wf, model)
            armed = [(d, s) for s in timers
                     if (d := live.due[t.services[s.service]]) is not None]
            when = min((d for d, _ in armed), default=None)
            overdue = when is not None and when <= self.clock.wall()
            env_ = None if overdue else self.bus.take()
            if env_ is None:
                if when is None:
                    break
                delay = when - self.clock.wall()
                if self.max_wait is not None and delay > self.max_wait:
                    return self._finish(live, waiting=True)
                if delay > 0:
                    await asyncio.sleep(delay)
                # One service's timer at a time (its choices, if it has several).
                fire = next(s.service for d, s in armed if d == when)
                choices = [s for d, s in armed if d == when and s.service == fire]
                step = await self._choose(live, choices, None)
                self._commit(live, model, step, None)
                continue
            svc = t.services.index(env_.receiver)
            ev = t.events.index(env_.event)
            duplicate = self.store.seen(wid, env_.receiver, env_.event_id)
            steps = sem.react(self.wf, model, svc, ev, duplicate=duplicate)
            try:
                step = await self._choose(live, steps, env_)
            except Exception as exc:  # a handler failed: redeliver, then park
                key = (env_.receiver, env_.event_id)
                attempts[key] = attempts.get(key, 0) + 1
                if attempts[key] >= self.max_handler_attempts:
                    self.bus.ack(env_)
                    live.dead.append(f"{env_.event} -> {env_.receiver}: {exc!r}")
                else:
                    self.bus.nack(env_)
                continue
            if step.kind is StepKind.UNHANDLED:
                live.unhandled.append(f"{env_.event} -> {env_.receiver} in "
                                      f"{live.states[env_.receiver]}")
            self._commit(live, model, step, env_)
            self.bus.ack(env_)
        else:
            raise WorkflowRuntimeError(
                f"workflow {self.wf.name!r} instance {wid!r}: more than "
                f"{self.max_steps} steps; does it emit without end?")
        return self._finish(live)

    def _arm(self, live: _Live, i: int, now: float, *, entered: bool) -> None:
        name = self._t.services[i]
        state_ix = self._t.state_names[i].index(live.states[name])
        k = self._t.timers.get((i, state_ix))
        if k is None:
            live.due[name] = None
        elif entered or live.due[name] is None:
            after = self._t.transition(i, k).after
            live.due[name] = now + (after or 0.0)

    async def _choose(self, live: _Live, steps: list[Step],
                      env: Envelope | None) -> Step:
        first = steps[0]
        if first.kind not in (StepKind.DELIVER, StepKind.TIMER):
            return first
        key = (first.service, first.transition)
        fn = self._handlers.get(key)
        tr = self._t.transition(*key)
        if fn is None:
            return first  # a plain transition needs no callable
        svc = self._t.services[first.service]
        ctx = EventContext(
            workflow_id=live.wid, service=svc, state=live.states[svc],
            event=env.event if env else None, event_id=env.event_id if env else None,
            duplicate=first.duplicate, counters=dict(live.counters),
            choices=tuple(b.to for b in tr.branches), input=live.input)
        out = fn(ctx)
        if inspect.isawaitable(out):
            out = await out
        if not tr.choose:
            return first
        by_branch = {s.branch: s for s in steps}
        if isinstance(out, int) and not isinstance(out, bool) and out in by_branch:
            return by_branch[out]
        for s in steps:
            if tr.branches[s.branch].to == out:
                return s
        raise WorkflowRuntimeError(
            f"handler {svc}.{tr.handler_name} returned {out!r}; return one of "
            f"{list(ctx.choices)} (or its index)")

    def _commit(self, live: _Live, model: sem.State, step: Step,
                env: Envelope | None) -> None:
        t = self._t
        wid = live.wid
        svc = t.services[step.service]
        before = live.states[svc]
        after_model = sem.effect(self.wf, model, step)
        base = HEADER + 2 * step.service
        live.states[svc] = t.state_names[step.service][after_model[base]]
        live.fired[svc] = bool(after_model[base + 1])
        for i, c in enumerate(t.counters):
            live.counters[c] = after_model[t.counter_base + i]
        emitted: list[Envelope] = []
        names: list[str] = []
        if step.kind in (StepKind.DELIVER, StepKind.TIMER):
            br = t.transition(step.service, step.transition).branches[step.branch]
            for e in br.emit:
                eid = f"{wid}:{live.next_event}"
                names.append(e)
                for r in self.wf.subscribers(e):
                    emitted.append(Envelope(event_id=eid, event=e, receiver=r,
                                            sender=svc, seq=live.next_event))
                    live.next_event += 1
            if after_model[base] != model[base]:
                self._arm(live, step.service, self.clock.wall(), entered=True)
        entry = LogEntry(
            seq=live.seq, kind=step.kind.value, service=svc,
            event=env.event if env else None, event_id=env.event_id if env else None,
            sender=env.sender if env else None, duplicate=step.duplicate,
            from_state=before, to_state=live.states[svc], emitted=tuple(names),
            at=self.clock.wall())
        self.store.commit_step(wid, entry=entry, consumed=env,
                               service_row=(live.states[svc], live.fired[svc],
                                            live.due[svc]),
                               counters=live.counters, emitted=emitted,
                               next_event=live.next_event)
        self.bus.publish(emitted)
        live.seq += 1
        for listener in self.listeners:
            listener(entry)

    def _finish(self, live: _Live, *, waiting: bool = False) -> WorkflowResult:
        states, wid = live.states, live.wid
        outcome = None
        for o in self.wf.outcomes:
            if all(states[s] == v for s, v in o.states):
                outcome = o.describe()
                break
        all_final = all(not s.final or states[s.name] in s.final
                        for s in self.wf.services)
        if waiting:
            status = "waiting"
        elif outcome is not None:
            status = "consistent"
        elif all_final and not self.wf.outcomes:
            status = "final"
        else:
            status = "stuck"
        self.store.finish(wid, status)
        return WorkflowResult(workflow_id=wid, status=status, states=dict(states),
                              counters=dict(live.counters), steps=live.seq,
                              unhandled=tuple(live.unhandled), outcome=outcome,
                              dead_letters=tuple(live.dead))

"""The event-workflow kind of :class:`~._harness.Harness`.

It runs the real :class:`runtime.workflow.WorkflowEngine` with the user's own
handlers on a virtual clock, and plays the bus itself: every delivery is a
decision of the schedule (which pending event, out of order or not, whether
the acknowledgement is lost so the bus delivers it again, whether the worker
dies after the handler ran and before the step was committed). After every
decision it evaluates the workflow's properties on what the runtime stored
(the log conforms to the model, no unhandled event, the user's invariants
over states and counters, a declared outcome once an instance is quiescent)
and on what the handlers themselves recorded (their effects, read back as
counter values, and their own invariants).

What every kind shares (the schedule, the report, replaying, closing) is in
:mod:`._harness`; this module holds what only a workflow has: the scripted
bus, the store that can die mid-commit, and the workflow's own properties.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runtime import Participants
from runtime.workflow import (
    Envelope,
    EventContext,
    LogEntry,
    WorkflowEngine,
    WorkflowStore,
    conforms,
)
from saga_models import FaultModel
from saga_models.workflow import Order, Workflow
from saga_models.workflow import semantics as sem
from saga_models.workflow.semantics import HEADER

from ._harness import (
    Effects,
    Harness,
    Invariant,
    ScheduleFailure,
    ScheduleMismatch,
    ScheduleReport,
    _resolve,
    run_schedule,
)
from ._schedule import (
    AdvanceClock,
    CrashWorker,
    DeliverEvent,
    EventFault,
    StartWorkflow,
    WorkflowOp,
    WorkflowSchedule,
)

_SETTLE_BUDGET = 500
_DEFAULT_FAULTS = FaultModel()


class WorkerCrash(BaseException):
    """The injected death of the worker between a handler and its commit.

    A ``BaseException`` on purpose: the engine treats an ``Exception`` from a
    handler as a failed delivery and retries it; a dying process is not that,
    and the engine must let it through (house style 9)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowBinding:
    """The user's handlers, bound for generated workflow tests.

    >>> WorkflowBinding(handlers=dict).handlers()
    {}
    """

    handlers: Callable[[], Any]
    """A factory: fresh handlers (anything
    :class:`runtime.workflow.WorkflowEngine` accepts: ``{service: {handler:
    fn}}``, an object per service, a :class:`runtime.Participants`) for every
    generated test case, so cases do not leak state into each other."""
    effects: Effects | None = None
    """How to read the workflow's counters back from the handlers' records:
    ``effects(handlers, workflow_id)`` is the value each workflow counter has
    according to them (``{"charged": 2}`` when the ledger shows two charges).
    Counters it leaves out are not checked."""
    invariants: tuple[Invariant, ...] = ()
    """The handlers' own invariants (e.g. no customer charged twice)."""
    inputs: Any = None
    """The input of each instance: a callable ``k -> input``, a Hypothesis
    strategy (the generated test draws one per instance; the schedule records
    it), or None for ``{"instance": k}``."""
    name: str = ""
    """``module:attribute`` where this binding lives, so a failure can print
    a script that imports it."""


WorkflowReport = ScheduleReport
"""The report of a workflow run: the one :class:`ScheduleReport` (a name
kept for callers)."""
WorkflowScheduleFailure = ScheduleFailure
"""A workflow schedule broke a property: the one :class:`ScheduleFailure`
(a name kept for callers); its ``report`` replays it."""


class _CrashingStore(WorkflowStore):
    """The durable store, able to die just before committing one delivery."""

    crash_on: tuple[str, str] | None = None
    """(receiver, event id) whose commit the worker does not live to make."""
    crash_on_timer: bool = False
    """The worker does not live to commit the next timer step."""

    def commit_step(self, workflow_id: str, *, entry: LogEntry,
                    consumed: Envelope | None,
                    service_row: tuple[str, bool, float | None],
                    counters: dict[str, int], emitted: list[Envelope],
                    next_event: int, keep_consumed: bool = False) -> None:
        if consumed is not None and self.crash_on == (consumed.receiver,
                                                      consumed.event_id):
            self.crash_on = None
            raise WorkerCrash(f"worker dies before committing {consumed.event} "
                              f"{consumed.event_id} -> {consumed.receiver}")
        if consumed is None and entry.kind == "timer" and self.crash_on_timer:
            self.crash_on_timer = False
            raise WorkerCrash(f"worker dies before committing the timer of "
                              f"{entry.service} in {entry.from_state}")
        super().commit_step(workflow_id, entry=entry, consumed=consumed,
                            service_row=service_row, counters=counters,
                            emitted=emitted, next_event=next_event,
                            keep_consumed=keep_consumed)


class _ScriptedBus:
    """A broker the schedule drives: it survives worker crashes, hands out
    only the envelope the schedule picked, and forgets one only when it is
    acknowledged (a kept copy stays, marked as a redelivery)."""

    def __init__(self, *, fifo: bool) -> None:
        self.fifo = fifo
        self.queue: list[Envelope] = []
        """In send order (a redelivered copy keeps its place under fifo)."""
        self.selected: Envelope | None = None
        self.keep: int | None = None
        """Seq of the envelope whose acknowledgement is lost."""
        self.acked: list[Envelope] = []

    def publish(self, envelopes: Iterable[Envelope]) -> None:
        # A recovering worker re-publishes its whole outbox; the broker
        # already holds those envelopes (the outbox is what is unacknowledged).
        known = {e.seq for e in self.queue}
        for env in envelopes:
            if env.seq not in known:
                self.queue.append(env)
                known.add(env.seq)

    def take(self) -> Envelope | None:
        env, self.selected = self.selected, None
        return env

    def ack(self, envelope: Envelope) -> None:
        i = self._index(envelope)
        self.acked.append(envelope)
        if self.keep == envelope.seq:
            self.keep = None
            copy = replace(self.queue[i], redelivery=True)
            if self.fifo:
                self.queue[i] = copy  # still the head of its channel
            else:
                del self.queue[i]
                self.queue.append(copy)
        else:
            del self.queue[i]

    def nack(self, envelope: Envelope) -> None:
        i = self._index(envelope)
        self.queue[i] = replace(self.queue[i], redelivery=True)

    def pending(self) -> int:
        return len(self.queue)

    def _index(self, envelope: Envelope) -> int:
        for i, e in enumerate(self.queue):
            if e.seq == envelope.seq:
                return i
        raise KeyError(f"envelope {envelope.event_id} -> {envelope.receiver} is "
                       "not pending")

    def candidates(self) -> list[Envelope]:
        """What the bus may deliver next: anything (unordered), or the head
        of each (sender, receiver) channel (fifo); oldest first."""
        if not self.fifo:
            return list(self.queue)
        heads: dict[tuple[str, str], Envelope] = {}
        for e in self.queue:
            heads.setdefault((e.sender, e.receiver), e)
        return list(heads.values())


@dataclass(slots=True, eq=False)
class _Instance:
    wid: str
    input: Any
    bus: _ScriptedBus
    engine: WorkflowEngine | None = None
    status: str = "running"


class WorkflowHarness(Harness):
    """One generated test case of an event workflow: engines, the user's
    handlers, a clock.

    Args:
        workflow: The definition.
        binding: The handlers and how to observe them.
        faults: ``duplicates`` bounds lost acknowledgements (at-least-once
            buses only), ``crashes`` bounds worker crashes.
        store: ``"memory"`` (one in-memory SQLite store that outlives the
            worker) or ``"sqlite"`` (a file, closed and reopened on a crash).
        definition_ref: Path (or ``python:module:attr``) for replay scripts.
    """

    schedule_type = WorkflowSchedule

    def __init__(self, workflow: Workflow, binding: WorkflowBinding, *,
                 faults: FaultModel = _DEFAULT_FAULTS, store: str = "memory",
                 definition_ref: str = "") -> None:
        if store not in ("memory", "sqlite"):
            raise ValueError(f"store={store!r}; use 'memory' or 'sqlite'")
        self._setup(binding, binding.handlers(), faults=faults,
                    definition_ref=definition_ref)
        self.wf = workflow
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._path: str = ":memory:"
        if store == "sqlite":
            self._tmp = tempfile.TemporaryDirectory(prefix="sagaproof-wf-")
            self._path = str(Path(self._tmp.name) / "workflow.db")
        self.store = _CrashingStore(self._path)
        self.instances: list[_Instance] = []
        self.duplicates = 0
        self.handler_errors: list[str] = []
        self.interrupted: set[tuple[int, int]] = set()
        """(instance, envelope seq) whose handler ran and whose commit was
        lost to a crash: the handlers' records run ahead of the store until
        it is delivered again, so record checks wait for it."""
        self.interrupted_timers: set[int] = set()
        """Instances whose timer step a crash cut off after its handler ran."""
        self.handled: set[str] = set()
        """``service.handler`` names called (coverage)."""
        self._fifo = workflow.bus.order is Order.FIFO
        self.at_least_once = sem.tables(workflow).at_least_once
        self._registry = self._wrap_all()

    # --- wiring ------------------------------------------------------------------
    def _wrap_all(self) -> Participants:
        reg = Participants()
        for s in self.wf.services:
            for t in s.transitions:
                name = t.handler_name
                # The shapes the engine accepts: a registry, {service: {name:
                # fn}}, or objects with methods.
                fn = _resolve(self.world, s.name, name)
                if fn is not None and reg.resolve(s.name, name) is None:
                    reg.register(s.name, name, self._intercept(s.name, name, fn))
        return reg

    def _intercept(self, service: str, name: str,
                   fn: Callable[..., Any]) -> Callable[..., Any]:
        async def call(ctx: EventContext) -> Any:
            self.handled.add(f"{service}.{name}")
            what = (f"handler {service}.{name} on "
                    + (f"{ctx.event} {ctx.event_id}" if ctx.event else "its timer")
                    + f" in state {ctx.state}")
            try:
                out = fn(ctx)
                if inspect.isawaitable(out):
                    out = await out
            except Exception as exc:
                self.handler_errors.append(
                    f"{what} raised {type(exc).__name__}: {exc}")
                raise
            if ctx.choices and len(ctx.choices) > 1 and not _valid_choice(
                    out, ctx.choices):
                self.handler_errors.append(
                    f"{what} returned {out!r}; a choice handler returns one of "
                    f"{list(ctx.choices)} or its index")
            return out

        return call

    def _engine(self, inst: _Instance) -> WorkflowEngine:
        if inst.engine is None:
            # max_wait=0: never sleep for a timer; the schedule moves time.
            inst.engine = WorkflowEngine(self.wf, self._registry, store=self.store,
                                         bus=inst.bus, clock=self.bridge.clock,
                                         max_wait=0.0)
        return inst.engine

    def _run(self, inst: _Instance) -> bool:
        """Run the instance's worker until it has nothing to do; False when
        the worker died."""
        try:
            result = self.bridge.run(self._engine(inst).run(
                workflow_id=inst.wid, input=inst.input))
        except WorkerCrash:
            self._recover()
            return False
        inst.status = result.status
        # A run fires every overdue timer before anything else, so a timer
        # whose commit a crash lost has now been committed.
        self.interrupted_timers.discard(self.instances.index(inst))
        return True

    def _recover(self) -> None:
        self.crashes += 1
        if self._tmp is not None:
            self.store.close()
            self.store = _CrashingStore(self._path)
        self.store.crash_on, self.store.crash_on_timer = None, False
        for inst in self.instances:
            inst.engine = None  # a new worker; the broker (bus) lives on

    # --- decisions -----------------------------------------------------------------
    def start(self, input: object = None) -> int:
        """Start instance ``k`` (returned): its start events go on the bus.
        Without ``input``, the binding's ``inputs(k)`` (a callable) or
        ``{"instance": k}``."""
        k = len(self.instances)
        self.ops.append(StartWorkflow(input=input))
        if input is None:
            inputs = self.binding.inputs
            input = inputs(k) if _is_input_fn(inputs) else {"instance": k}
        inst = _Instance(wid=f"{self.wf.name}-{k}", input=input,
                         bus=_ScriptedBus(fifo=self._fifo))
        self.instances.append(inst)
        self._run(inst)
        return k

    def candidates(self, k: int) -> list[Envelope]:
        """What instance ``k``'s bus may deliver next, oldest first."""
        return self.instances[k].bus.candidates()

    def allowed(self, fault: EventFault) -> bool:
        """Whether ``fault`` stays within the fault model now."""
        if fault is EventFault.DUPLICATE:
            return self.at_least_once and self.duplicates < self.faults.duplicates
        if fault is EventFault.CRASH:
            return self.crashes < self.faults.crashes
        return True

    def deliver(self, k: int, env: Envelope,
                fault: EventFault = EventFault.NONE) -> None:
        """Deliver ``env`` (pending on instance ``k``'s bus) with ``fault``."""
        inst = self.instances[k]
        cands = inst.bus.candidates()
        self.ops.append(DeliverEvent(
            instance=k, event=env.event, receiver=env.receiver,
            number=_number(env), fault=fault,
            out_of_order=bool(cands) and cands[0].seq != env.seq))
        if fault is EventFault.DUPLICATE:
            self.duplicates += 1
            inst.bus.keep = env.seq
        elif fault is EventFault.CRASH:
            self.store.crash_on = (env.receiver, env.event_id)
        inst.bus.selected = env
        before = len(inst.bus.acked)
        alive = self._run(inst)
        self.store.crash_on = None
        inst.bus.keep = None
        if not alive:
            self.interrupted.add((k, env.seq))
        elif len(inst.bus.acked) > before:
            self.interrupted.discard((k, env.seq))

    def find(self, op: DeliverEvent) -> Envelope:
        """The pending envelope ``op`` names."""
        if op.instance >= len(self.instances):
            raise ScheduleMismatch(f"{op.code()}: there is no instance "
                                        f"{op.instance} (started "
                                        f"{len(self.instances)})")
        inst = self.instances[op.instance]
        for env in inst.bus.candidates():
            if (env.event, env.receiver, _number(env)) == (op.event, op.receiver,
                                                          op.number):
                return env
        shown = ", ".join(f"{e.event} #{_number(e)} -> {e.receiver}"
                          for e in inst.bus.candidates()) or "nothing"
        raise ScheduleMismatch(f"{op.code()} names no deliverable event; "
                                    f"pending: {shown}")

    def crash(self) -> None:
        """The worker dies between deliveries; a new one recovers."""
        self.ops.append(CrashWorker())
        self._recover()

    def next_timer(self) -> float | None:
        """Wall time of the earliest armed timer of any instance, or None."""
        dues: list[float] = []
        for inst in self.instances:
            snap = self.store.load(inst.wid)
            if snap is None:
                continue
            model = self._model(inst.wid)
            for step in sem.timers_enabled(self.wf, model):
                due = snap.due[self.wf.services[step.service].name]
                if due is not None:
                    dues.append(due)
        return min(dues, default=None)

    def advance(self, *, crash: bool = False) -> None:
        """Virtual time jumps to the next timer; every worker fires what is
        due. With ``crash``, the worker dies before committing the first timer
        step (after its handler ran)."""
        when = self.next_timer()
        if when is None:
            return
        self.ops.append(AdvanceClock(crash=crash))
        self.bridge.advance(max(0.0, when - self.bridge.clock.wall()))
        self.store.crash_on_timer = crash
        try:
            for k, inst in enumerate(self.instances):
                if not self._run(inst):
                    self.interrupted_timers.add(k)
                    return
        finally:
            self.store.crash_on_timer = False

    def quiescent(self, k: int) -> bool:
        """Nothing can happen to instance ``k`` any more."""
        inst = self.instances[k]
        return not inst.bus.queue and not sem.timers_enabled(
            self.wf, self._model(inst.wid))

    def settle(self) -> None:
        """Finish every instance without further faults: deliver the oldest
        pending event, let timers fire, until all are quiescent (or a
        property breaks, or the budget runs out)."""
        for _ in range(_SETTLE_BUDGET):
            if self.violations():
                return
            for k, inst in enumerate(self.instances):
                cands = inst.bus.candidates()
                if cands:
                    self.deliver(k, cands[0])
                    break
            else:
                if self.next_timer() is None:
                    return
                self.advance()

    # --- the runtime's state ------------------------------------------------------
    def _model(self, wid: str) -> sem.State:
        """The instance's services and counters as a model state (bus left
        empty: the bus is the harness's)."""
        t = sem.tables(self.wf)
        snap = self.store.load(wid)
        st = [0] * t.width
        if snap is None:
            return sem.initial_state(self.wf)
        for i, name in enumerate(t.services):
            st[HEADER + 2 * i] = t.state_names[i].index(snap.states[name])
            st[HEADER + 2 * i + 1] = int(snap.fired[name])
        for i, c in enumerate(t.counters):
            st[t.counter_base + i] = snap.counters[c]
        return tuple(st)

    def log(self, k: int) -> list[LogEntry]:
        """The runtime's log of instance ``k``."""
        return self.store.log(self.instances[k].wid)

    # --- properties ------------------------------------------------------------------
    def violations(self, *, final: bool = False) -> list[str]:
        """Every property broken now; with ``final``, also every instance that
        is not quiescent after settling."""
        out = list(dict.fromkeys(self.handler_errors))
        records_settled = not self.interrupted and not self.interrupted_timers
        if records_settled:
            out += self._binding_invariants("handler")
        for k, inst in enumerate(self.instances):
            out += self._instance_violations(k, inst,
                                             records_settled=records_settled)
        if final and not out:
            # Settling stops at the first broken property, so an instance
            # left running then is no termination failure of its own.
            out += [f"{inst.wid} did not come to rest: events still pending or "
                    "a timer armed after settling (termination)"
                    for k, inst in enumerate(self.instances)
                    if not self.quiescent(k)]
        return out

    def _instance_violations(self, k: int, inst: _Instance, *,
                             records_settled: bool) -> list[str]:
        wf, wid = self.wf, inst.wid
        log = self.store.log(wid)
        res = conforms(wf, log)
        if not res.ok:
            return [f"{wid}: the runtime's log is not a path of the model: "
                    f"{res.message}"]
        out = [f"{wid}: event {e.event!r} reached service {e.service!r} in state "
               f"{e.from_state!r}, which has no transition for it and does not "
               "ignore it (no_unhandled_event)"
               for e in log if e.kind == "unhandled"]
        model = self._model(wid)
        states = sem.state_names(wf, model)
        counters = sem.counter_values(wf, model)
        out += [f"{wid}: {m} (runtime state)"
                for m in _broken(wf, counters, states)]
        if self.binding.effects is not None and records_settled:
            observed = dict(self.binding.effects(self.world, wid))
            mixed = {**counters, **observed}
            out += [f"{wid}: {m} (handlers' records: "
                    + ", ".join(f"{c}={v}" for c, v in sorted(observed.items()))
                    + ")" for m in _broken(wf, mixed, states)]
            caps = dict(zip(sem.tables(wf).counters, sem.tables(wf).caps,
                            strict=True))
            if self.quiescent(k):
                for c, v in sorted(observed.items()):
                    if c in counters and min(max(v, 0), caps[c]) != counters[c]:
                        out.append(
                            f"{wid}: the handlers' records say {c}={v} but the "
                            f"workflow counted {c}={counters[c]} (a handler's "
                            "effect the workflow does not know about)")
        if self.quiescent(k):
            msg = _outcome_violation(wf, states)
            if msg:
                out.append(f"{wid}: {msg} (eventual_consistency)")
        return out

    # --- reports -------------------------------------------------------------------
    def apply(self, op: WorkflowOp) -> None:
        """Take the decision ``op`` (the fault model is not enforced: the
        schedule says what happens)."""
        if isinstance(op, StartWorkflow):
            self.start(op.input)
        elif isinstance(op, DeliverEvent):
            self.deliver(op.instance, self.find(op), op.fault)
        elif isinstance(op, CrashWorker):
            self.crash()
        else:
            self.advance(crash=op.crash)

    def instance_ids(self) -> list[str]:
        """The workflow id of every instance started."""
        return [inst.wid for inst in self.instances]

    def outcome(self, k: int) -> str:
        """``consistent``, ``final``, ``stuck`` or ``running``."""
        return self.instances[k].status if self.quiescent(k) else "running"

    def trace(self, k: int, observed: Mapping[str, int]) -> tuple[str, ...]:
        """Message-sequence lines of a model path that explains ``k``'s log."""
        return workflow_trace(self.wf, self.log(k), observed)

    def reached(self) -> set[str]:
        """Coverage witnesses of this run (see :mod:`sagaproof.testing`)."""
        from ._coverage import workflow_witnesses

        out: set[str] = set()
        for k, inst in enumerate(self.instances):
            out |= workflow_witnesses(self.wf, self.log(k))
            if self.quiescent(k):
                out |= _outcome_witness(self.wf, self._model(inst.wid))
        return out

    def close(self) -> None:
        """Stop everything still running and drop the store."""
        super().close()
        self.store.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def _is_input_fn(inputs: object) -> bool:
    from hypothesis.strategies import SearchStrategy

    return callable(inputs) and not isinstance(inputs, SearchStrategy)


def _valid_choice(out: object, choices: Sequence[str]) -> bool:
    if isinstance(out, int) and not isinstance(out, bool):
        return 0 <= out < len(choices)
    return out in choices


def _number(env: Envelope) -> int:
    return int(env.event_id.rsplit(":", 1)[1])


def _broken(wf: Workflow, counters: Mapping[str, int],
            states: Mapping[str, str]) -> list[str]:
    out = []
    for inv in wf.invariants:
        if not inv.expr.evaluate(dict(counters), dict(states)):
            shown = [f"{c}={counters[c]}" for c in sorted(inv.expr.counters)]
            shown += [f"{s}.state={states[s]}" for s in sorted(inv.expr.services)]
            out.append(f"invariant {inv.name!r} is broken ({', '.join(shown)})")
    return out


def _outcome_violation(wf: Workflow, states: Mapping[str, str]) -> str | None:
    where = ", ".join(f"{k}={v}" for k, v in states.items())
    if any(all(states[s] == v for s, v in o.states) for o in wf.outcomes):
        return None
    if not wf.outcomes:
        if all(not s.final or states[s.name] in s.final for s in wf.services):
            return None
        return f"came to rest in ({where}), which is not final"
    return (f"came to rest in ({where}), which matches no declared outcome ("
            + " | ".join(o.describe() for o in wf.outcomes) + ")")


def _outcome_witness(wf: Workflow, state: sem.State) -> set[str]:
    states = sem.state_names(wf, state)
    for o in wf.outcomes:
        if all(states[s] == v for s, v in o.states):
            return {f"outcome:{o.describe()}"}
    return {"outcome:none"}


def _matches(wf: Workflow, step: sem.Step, entry: LogEntry) -> bool:
    # The same matching as runtime.workflow's conformance replay (kept here
    # rather than importing its private helper).
    js = sem.step_json(wf, step)
    if (js["kind"], js["service"], js["event"]) != (entry.kind, entry.service,
                                                    entry.event):
        return False
    if step.duplicate != entry.duplicate:
        return False
    if js["sender"] is not None and js["sender"] != entry.sender:
        return False
    if sem.tables(wf).state_names[step.service][step.at] != entry.from_state:
        return False
    return js["to"] is None or js["to"] == entry.to_state


def workflow_trace(wf: Workflow, log: Sequence[LogEntry],
                   observed: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """One model path that explains a runtime log, as message-sequence lines
    (``payments <- charge => CHARGED, emits charged, charged += 1``).

    Of the paths that match (the log cannot show which deliveries were left
    unacknowledged), the one with the fewest kept copies is shown; the last
    line is the state it ends in, with the handlers' records beside the
    counters when ``observed`` is given.
    """
    dups = sum(e.duplicate for e in log)
    layer: dict[sem.State, tuple[tuple[str, ...], int]] = {
        sem.initial_state(wf, duplicates=dups): ((), 0)}
    for entry in log:
        nxt: dict[sem.State, tuple[tuple[str, ...], int]] = {}
        for st, (path, keeps) in layer.items():
            for step in sem.enabled(wf, st):
                if _matches(wf, step, entry):
                    d = sem.apply(wf, st, step)
                    cand = ((*path, sem.describe(wf, step)), keeps + step.keep)
                    if d not in nxt or cand[1] < nxt[d][1]:
                        nxt[d] = cand
        if not nxt:
            bad = (f"(log entry {entry.seq}: {entry.kind} {entry.event} -> "
                   f"{entry.service} is not a step of the model)")
            path, _ = min(layer.values(), key=lambda v: v[1])
            return (*path, bad)
        layer = nxt
    end, (path, _) = min(layer.items(), key=lambda kv: (kv[1][1], kv[0]))
    states = ", ".join(f"{k}={v}" for k, v in sem.state_names(wf, end).items())
    counters = sem.counter_values(wf, end)
    tail = f"=> {states}"
    if counters:
        tail += "; counters: " + ", ".join(f"{c}={v}" for c, v in counters.items())
    if observed:
        tail += "; handlers' records: " + ", ".join(
            f"{c}={v}" for c, v in sorted(observed.items()))
    return (*path, tail)


def run_workflow_schedule(workflow: Workflow, binding: WorkflowBinding,
                          schedule: WorkflowSchedule, *,
                          faults: FaultModel = _DEFAULT_FAULTS,
                          store: str = "memory", settle: bool = True,
                          definition_ref: str = "") -> ScheduleReport:
    """:func:`~._harness.run_schedule` for a workflow (a name kept for
    callers; ``run_schedule`` takes either kind)."""
    return run_schedule(workflow, binding, schedule, faults=faults, store=store,
                        settle=settle, definition_ref=definition_ref)


def shrink_schedule(workflow: Workflow, binding: WorkflowBinding,
                    report: ScheduleReport, *,
                    faults: FaultModel = _DEFAULT_FAULTS, store: str = "memory",
                    definition_ref: str = "") -> ScheduleReport:
    """A shorter schedule that fails the same way, by replay.

    Hypothesis shrinks the rule sequence, but the first rule of a run is
    always drawn and some rules shrink away poorly; this removes one
    decision at a time (delta debugging over the recorded schedule) while
    the replay still reports the same first violation, until no single
    decision can go. Returns the report of the shortest replay found.
    """
    if not report.violations:
        return report
    target = report.violations[0]
    ops = list(report.schedule.ops)
    best = report
    changed = True
    while changed:
        changed = False
        for i in range(len(ops) - 1, 0, -1):
            cand = WorkflowSchedule(ops=tuple(ops[:i] + ops[i + 1:]))
            try:
                r = run_schedule(workflow, binding, cand, faults=faults,
                                 store=store, definition_ref=definition_ref)
            except ScheduleMismatch:
                continue  # names an event that is no longer there
            if r.violations and r.violations[0] == target and (
                    len(r.schedule) < len(best.schedule)):
                ops, best, changed = list(r.schedule.ops), r, True
                break
    return best

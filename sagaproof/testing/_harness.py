"""The fault-injecting harness behind the generated stateful tests.

:class:`Harness` is one generated test case of either kind of definition:
``Harness(saga, binding)`` runs the real :class:`runtime.Engine` with the
user's participants, ``Harness(workflow, binding)`` the real workflow engine
with the user's handlers (:mod:`._workflow_harness` holds that kind's bus and
store). What every kind shares lives here once: the decisions taken so far
(the :class:`~._schedule.Schedule`), the report, replaying a schedule, the
check of the user's own invariants, and closing down.

The saga kind puts itself between the engine and every participant call: each
call waits until the schedule answers it (:class:`Outcome`). After every
decision it evaluates the verifier's properties on what the runtime logged
(conformance with the model) and on what the participants themselves recorded
(their effects, their own invariants).

Hypothesis is not needed here: :func:`run_schedule` drives a harness from a
schedule of either kind, which is how a shrunk failure is replayed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, ClassVar

from runtime import Engine, MemoryLog, Participants, StepContext
from saga_models import FaultModel, Saga, SagaError
from saga_models import semantics as sem
from saga_models.semantics import EF, HEADER, WIDTH, Event, EventKind
from saga_models.strategies import FaultPlan
from verifier import SagaTransitionSystem
from verifier.conformance import conform

from ._bridge import BridgeError, LoopBridge, off_running_loop
from ._contract import Resources, effect_contract
from ._schedule import (
    Advance,
    Crash,
    Deliver,
    FaultSchedule,
    Op,
    Outcome,
    Schedule,
    Settle,
    Start,
)

Invariant = Callable[[Any], "str | None"]
"""A check of the participants' or handlers' own records: a message when it
is broken."""
Effects = Callable[[Any, str], Mapping[str, int]]
"""``effects(world, instance_id)``: what the participants' or handlers'
records say. For a saga, how many times each step's action is in effect at
its participant right now (applications minus undos), by step name; for a
workflow, the value of each counter. Names it leaves out are not checked."""

_TERMINAL = frozenset(p.name for p in sem.TERMINAL)
_SETTLE_BUDGET = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """The user's participants, bound for generated tests.

    >>> Binding(participants=dict).participants()
    {}
    """

    participants: Callable[[], Any]
    """A factory: fresh participants (anything :class:`runtime.Engine` accepts)
    for every generated test case, so cases do not leak state into each other."""
    effects: Effects | None = None
    """How to read each step's effect from the participants' records."""
    invariants: tuple[Invariant, ...] = ()
    """The participants' own invariants (e.g. no payment refunded twice)."""
    inputs: Callable[[int], Any] | None = None
    """The input of instance ``k`` (default: ``{"instance": k}``)."""
    name: str = ""
    """``module:attribute`` where this binding lives, so a failure can print
    a script that imports it."""
    resources: Resources | None = None
    """``resources(participants)``: the shared resources' current values, by
    name (records as ``order.total``, ``order.version``). A record keyed by
    instance (``key: instance``) has one row per instance, named by the
    instance's saga id (``StepContext.saga_id``; ``<saga name>-<k>`` for the
    ``k``-th instance a generated test starts): ``order[trip-0].total``,
    ``order[trip-0].version``; return every row the participants hold (a row
    left out does not exist yet and holds its declared initial values).
    Given, every call of a step that declares an effect is checked against
    it, and a call that changes another instance's row breaks it
    (:mod:`._contract`)."""


class InjectedFault(Exception):
    """Raised in place of a participant's reply by the fault schedule."""


class ScheduleMismatch(SagaError, ValueError):
    """A schedule step names a call that is not in flight at that point."""


class ScheduleFailure(SagaError, AssertionError):
    """A generated schedule broke a property; the message is the report."""

    def __init__(self, message: str, *,
                 report: ScheduleReport | None = None) -> None:
        super().__init__(message)
        self.report = report
        """The report, with the schedule that replays the failure."""


@dataclass(slots=True, kw_only=True, eq=False)
class Call:
    """One participant call held by the harness until the schedule answers."""

    saga: int
    step: str
    kind: str
    attempt: int
    ctx: StepContext
    fn: Callable[[StepContext], Any]
    answer: asyncio.Future[Outcome]
    hanging: bool = False
    finished: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleReport:
    """What a harness run found (either kind of definition)."""

    schedule: Schedule
    violations: tuple[str, ...]
    traces: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Model traces of the instances involved, by instance id."""
    outcomes: Mapping[str, str] = field(default_factory=dict)
    """Where each instance ended, by id: a saga's terminal phase, a
    workflow's ``consistent``, ``final`` or ``stuck``; or ``running``."""
    script: str = ""

    @property
    def ok(self) -> bool:
        """True when no property was broken."""
        return not self.violations

    def text(self) -> str:
        """The report for people: violations, the schedule, each instance's
        model trace with where it ended, and the script that replays it."""
        lines = ["property violated:" if self.violations else
                 "all properties held"]
        lines += [f"  - {v}" for v in self.violations]
        lines.append(f"{self.schedule.title} ({len(self.schedule)} decisions):")
        lines.append(self.schedule.describe() or "  (none)")
        for key, trace in self.traces.items():
            lines.append(f"model trace of {key} ({self.outcomes.get(key, '?')}):")
            lines += [f"  {i:>3}. {t}" for i, t in enumerate(trace, 1)]
        if self.script:
            lines.append("replay it with:")
            lines += ["    " + ln for ln in self.script.splitlines()]
        return "\n".join(lines)

    def raise_for_violation(self) -> None:
        """Raise :class:`ScheduleFailure` when a property was broken."""
        if self.violations:
            raise ScheduleFailure(self.text(), report=self)


class Harness:
    """One generated test case of either kind: an engine, the user's own
    participants or handlers, a virtual clock, and the decisions so far.

    ``Harness(saga, binding, ...)`` makes a :class:`SagaHarness`,
    ``Harness(workflow, binding, ...)`` a
    :class:`~sagaproof.testing.WorkflowHarness`; both take ``faults`` and
    ``definition_ref`` (the path or ``python:module:attr`` printed in replay
    scripts), the workflow kind also ``store``. A kind implements the
    decisions (``start``, ``crash``, ``advance``, ``settle``, its
    ``deliver``), ``apply`` (one schedule operation), ``violations`` and the
    three views of an instance the report needs.
    """

    schedule_type: ClassVar[type[Schedule]]
    """The kind's schedule class."""

    def __new__(cls, definition: Any, *args: Any, **kwargs: Any) -> Harness:
        kind = harness_kind(definition) if cls is Harness else cls
        return super().__new__(kind)

    def _setup(self, binding: Any, world: Any, *, faults: FaultModel,
               definition_ref: str) -> None:
        self.binding = binding
        self.faults = faults
        self.definition_ref = definition_ref
        self.bridge = LoopBridge()
        self.world = world
        self.ops: list[Any] = []
        self.crashes = 0

    # --- what each kind provides ----------------------------------------------------
    def apply(self, op: Any) -> None:
        """Take the decision ``op`` (an operation of this kind's schedule)."""
        raise NotImplementedError

    def settle(self) -> None:
        """Finish every instance without further faults."""
        raise NotImplementedError

    def violations(self, *, final: bool = False) -> list[str]:
        """Every property broken now; with ``final``, also every instance that
        did not finish."""
        raise NotImplementedError

    def instance_ids(self) -> list[str]:
        """The id of every instance started, in order."""
        raise NotImplementedError

    def outcome(self, k: int) -> str:
        """Where instance ``k`` is (its report label)."""
        raise NotImplementedError

    def trace(self, k: int, observed: Mapping[str, int]) -> tuple[str, ...]:
        """A model path that explains instance ``k``'s log."""
        raise NotImplementedError

    def reached(self) -> set[str]:
        """Coverage witnesses of this run (see :mod:`sagaproof.testing`)."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------
    def _binding_invariants(self, who: str) -> list[str]:
        """The user's own invariants over the participants' or handlers'
        records, each broken one as a message."""
        out = []
        for inv in self.binding.invariants:
            msg = inv(self.world)
            if msg:
                out.append(f"{who} invariant {_name(inv)}: {msg}")
        return out

    @property
    def schedule(self) -> Schedule:
        """The decisions taken so far."""
        return self.schedule_type(ops=tuple(self.ops))  # type: ignore[call-arg]

    def report(self, *, final: bool = False, binding_ref: str = "") -> ScheduleReport:
        """Evaluate the properties and package what a person needs."""
        violations = self.violations(final=final)
        traces: dict[str, tuple[str, ...]] = {}
        outcomes: dict[str, str] = {}
        for k, iid in enumerate(self.instance_ids()):
            outcomes[iid] = self.outcome(k)
            if violations:
                observed = (dict(self.binding.effects(self.world, iid))
                            if self.binding.effects is not None else {})
                traces[iid] = self.trace(k, observed)
        ref = binding_ref or self.binding.name
        script = ""
        if violations and ref and self.definition_ref:
            script = self.schedule.script(definition=self.definition_ref,
                                          binding=ref)
        return ScheduleReport(schedule=self.schedule, violations=tuple(violations),
                              traces=traces, outcomes=outcomes, script=script)

    def replay(self, schedule: Schedule, *, settle: bool = True) -> ScheduleReport:
        """Take every decision of ``schedule`` (stopping at the first broken
        property), then, with ``settle``, finish every instance without
        further faults, and report."""
        for op in schedule.ops:
            self.apply(op)
            if self.violations():
                return self.report()
        if settle:
            self.settle()
        return self.report(final=settle)

    def close(self) -> None:
        """Stop everything still running."""
        self.bridge.close()


_KINDS = {"Saga": ("._harness", "SagaHarness"),
          "Workflow": ("._workflow_harness", "WorkflowHarness")}
"""Where each kind's harness lives, by the definition's class name: looked up
on use, as the package looks up its public names, so that this module (which
the workflow kind builds on) does not import the workflow kind back."""


def harness_kind(definition: Any) -> type[Harness]:
    """The harness class for ``definition``'s kind (a saga or a workflow)."""
    where = _KINDS.get(type(definition).__name__)
    if where is None:
        raise TypeError(f"definition={definition!r} is neither a Saga nor a "
                        "Workflow")
    module = import_module(where[0], __package__)
    kind: type[Harness] = getattr(module, where[1])
    return kind


class SagaHarness(Harness):
    """One generated test case of a saga: an engine, the user's
    participants, a clock.

    Args:
        saga: The definition.
        binding: The participants and how to observe them.
        faults: The fault model the schedule stays within.
        definition_ref: Path (or ``python:EXPR``) printed in replay scripts.
    """

    schedule_type = FaultSchedule

    def __init__(self, saga: Saga, binding: Binding, *,
                 faults: FaultModel = sem.ALL_FAULTS,
                 definition_ref: str = "") -> None:
        self._setup(binding, binding.participants(), faults=faults,
                    definition_ref=definition_ref)
        self.saga = saga
        self.log = MemoryLog()
        self.pending: list[Call] = []
        self.saga_ids: list[str] = []
        self.duplicates: dict[int, int] = {}
        self.contract_errors: list[str] = []
        self.touched: set[tuple[int, str, str]] = set()
        """(instance, step, kind) whose participant has been called: from then
        on a failure can only come from the participant (the model's ``failed``
        means the action had no effect, which a re-send cannot promise)."""
        self._ids = itertools.count()
        self._comp_ctx: dict[tuple[int, str], StepContext] = {}
        """The last compensation context per (instance, step), for the late
        delivery probe."""
        self._late_probed: set[str] = set()
        self._registry = self._wrap_all()
        self._recovering: list[asyncio.Task[Any]] = []
        self._props = [p for p in SagaTransitionSystem(saga, faults).properties
                       if p.on_terminal is not None]
        self.engine = self._new_engine()
        self._contract = effect_contract(saga, binding.resources)

    # --- wiring ------------------------------------------------------------------
    def _wrap_all(self) -> Participants:
        reg = Participants()
        for step in self.saga.steps:
            for name in (step.action, step.compensation):
                if name is None:
                    continue
                fn = _resolve(self.world, step.participant, name)
                if fn is not None:
                    reg.register(step.participant, name, self._intercept(fn))
        return reg

    def _new_engine(self) -> Engine:
        return Engine(self.saga, self._registry, log=self.log,
                      clock=self.bridge.clock, worker_id=f"harness-{self.crashes}")

    def _intercept(self, fn: Callable[[StepContext], Any]) -> Callable[..., Any]:
        async def held(ctx: StepContext) -> Any:
            call = Call(saga=self.saga_ids.index(ctx.saga_id), step=ctx.step,
                        kind=ctx.attempt_kind, attempt=ctx.attempt, ctx=ctx, fn=fn,
                        answer=asyncio.get_running_loop().create_future())
            if ctx.attempt_kind == "compensation":
                self._comp_ctx[(call.saga, ctx.step)] = ctx
            self.pending.append(call)
            try:
                outcome = await call.answer
            finally:
                if call in self.pending:
                    self.pending.remove(call)
            try:
                return await self._execute(call, outcome)
            finally:
                call.finished = True

        return held

    async def _execute(self, call: Call, outcome: Outcome) -> Any:
        if outcome is Outcome.FAIL:
            raise InjectedFault(f"injected failure of {call.kind} {call.step!r}")
        if outcome is Outcome.UNKNOWN:
            return await self._hang(call)
        result = await self._invoke(call)
        if outcome is Outcome.DUPLICATE:
            result = await self._invoke(call)
        elif outcome in (Outcome.UNKNOWN_AFTER_EFFECT, Outcome.CRASH_AFTER_EFFECT):
            return await self._hang(call)
        return result

    async def _hang(self, call: Call) -> Any:
        call.hanging = True
        await asyncio.Event().wait()  # until the timeout or a crash cancels us

    async def _invoke(self, call: Call) -> Any:
        self.touched.add((call.saga, call.step, call.kind))
        pending = (self._contract.before(
            call.saga, call.step, call.kind, self.world,
            f"{call.kind} {call.ctx.participant}.{call.ctx.operation} of step "
            f"{call.step!r}", saga_id=call.ctx.saga_id)
            if self._contract is not None else None)
        returned = False
        try:
            out = call.fn(call.ctx)
            if inspect.isawaitable(out):
                out = await out
            returned = True
        except Exception as exc:
            if call.kind == "compensation":
                # DESIGN.md: a compensation must be safe whenever it is called,
                # also when the action never took effect. The harness injected
                # nothing here, so the participant itself broke the contract.
                msg = (
                    f"saga {call.saga}: compensation {call.ctx.participant}."
                    f"{call.ctx.operation} of step {call.step!r} raised "
                    f"{type(exc).__name__}: {exc} with no injected fault (a "
                    "compensation must succeed whenever it is called, also when "
                    "the action never took effect)")
                if msg not in self.contract_errors:
                    self.contract_errors.append(msg)
            raise
        finally:
            if self._contract is not None:
                if pending is not None:
                    self._contract.after(pending, self.world, returned=returned)
                self.contract_errors += [m for m in self._contract.take()
                                         if m not in self.contract_errors]
        return out

    # --- decisions -----------------------------------------------------------------
    def start(self, input: object = None) -> int:
        """Start instance ``k`` (returned)."""
        k = len(self.saga_ids)
        if input is None:
            input = (self.binding.inputs(k) if self.binding.inputs is not None
                     else {"instance": k})
        sid = f"{self.saga.name}-{k}"
        self.saga_ids.append(sid)
        self.duplicates[k] = 0
        self.ops.append(Start(input=input))
        self.bridge.run(self.engine.start(input, saga_id=sid))
        self.bridge.drain()
        return k

    def allowed(self, call: Call, outcome: Outcome) -> bool:
        """Whether ``outcome`` for ``call`` stays within the fault model."""
        f = self.faults
        step = self.saga.step(call.step)
        action = call.kind == "action"
        if outcome is Outcome.OK:
            return True
        if outcome is Outcome.FAIL:
            if (call.saga, call.step, call.kind) in self.touched:
                return False
            return f.fail if action else f.comp_fail
        if outcome is Outcome.UNKNOWN and not action:
            # A compensation attempt that times out (semantics: COMP_REPLY
            # unknown, under comp_fail and timeout). Only the lost-before-it-
            # acts kind: an undo whose reply is lost is booked by the model
            # at the next ok reply, which a STUCK escalation may never bring.
            return f.comp_fail and f.timeout and step.timeout is not None
        if outcome in (Outcome.UNKNOWN, Outcome.UNKNOWN_AFTER_EFFECT):
            return action and f.timeout and step.timeout is not None
        if outcome is Outcome.DUPLICATE:
            return self.duplicates[call.saga] < f.duplicates
        return self.crashes < f.crashes  # CRASH_AFTER_EFFECT

    def deliver(self, call: Call, outcome: Outcome) -> None:
        """Answer ``call`` with ``outcome`` and run until everything blocks."""
        self.ops.append(Deliver(saga=call.saga, step=call.step, kind=call.kind,
                                outcome=outcome, attempt=call.attempt))
        if outcome is Outcome.DUPLICATE:
            self.duplicates[call.saga] += 1
        call.answer.set_result(outcome)
        self.bridge.drain()
        if outcome is Outcome.CRASH_AFTER_EFFECT:
            self._crash()
        elif outcome in (Outcome.UNKNOWN, Outcome.UNKNOWN_AFTER_EFFECT):
            # Let time run until the step's timeout has cut the call off.
            for _ in range(_SETTLE_BUDGET):
                if call.finished or self.bridge.next_timer() is None:
                    break
                self.bridge.advance()

    def find(self, op: Deliver) -> Call:
        """The in-flight call ``op`` names; lets virtual time pass (a retry
        backoff) until it is sent, if need be."""
        for _ in range(_SETTLE_BUDGET):
            if any((c.saga, c.step, c.kind) == (op.saga, op.step, op.kind)
                   for c in self.pending) or not self.has_timer():
                break
            self.bridge.advance()
        for call in self.pending:
            if (call.saga, call.step, call.kind) == (op.saga, op.step, op.kind):
                return call
        inflight = ", ".join(f"saga {c.saga} {c.kind} {c.step!r}"
                             for c in self.pending) or "nothing"
        raise ScheduleMismatch(f"schedule step {op.code()} names no call in "
                               f"flight; in flight: {inflight}")

    def crash(self) -> None:
        """The orchestrator dies; a new engine recovers every instance."""
        self.ops.append(Crash())
        self._crash()

    def _crash(self) -> None:
        self.crashes += 1
        self.bridge.run(self.engine.aclose())
        self.engine = self._new_engine()
        self._recovering.append(self.bridge.spawn(self.engine.recover(force=True)))
        self.bridge.drain()

    def advance(self) -> None:
        """Virtual time jumps to the next timer."""
        self.ops.append(Advance())
        self.bridge.advance()

    def has_timer(self) -> bool:
        """Whether a timer (backoff, timeout, lease renewal) is pending."""
        return self.bridge.next_timer() is not None

    def settle(self, *, record: bool = False) -> None:
        """Finish every instance without further faults: answer each call ok,
        let time pass, until every instance ended or the budget ran out."""
        if record:
            self.ops.append(Settle())
        for _ in range(_SETTLE_BUDGET):
            if self.contract_errors:
                return  # already broken; answering more calls adds nothing
            if self.pending:
                call = self.pending[0]
                call.answer.set_result(Outcome.OK)
                self.bridge.drain()
            elif all(self.status(k) in _TERMINAL for k in range(len(self.saga_ids))):
                return
            elif self.has_timer():
                self.bridge.advance()
            else:
                return

    def status(self, k: int) -> str:
        """``running`` or the terminal phase of instance ``k``."""
        return self.log.get(self.saga_ids[k]).status

    def apply(self, op: Op) -> None:
        """Take the decision ``op`` (the fault model is not enforced: the
        schedule says what happens)."""
        if isinstance(op, Start):
            self.start(op.input)
        elif isinstance(op, Deliver):
            self.deliver(self.find(op), op.outcome)
        elif isinstance(op, Crash):
            self.crash()
        elif isinstance(op, Settle):
            self.settle(record=True)
        else:
            self.advance()

    def instance_ids(self) -> list[str]:
        """The saga id of every instance started."""
        return list(self.saga_ids)

    def outcome(self, k: int) -> str:
        """``running`` or the terminal phase of instance ``k``."""
        return self.status(k)

    def trace(self, k: int, observed: Mapping[str, int]) -> tuple[str, ...]:
        """A model path that explains instance ``k``'s log."""
        return model_trace(self.saga, self.log.records(self.saga_ids[k]), observed)

    # --- properties ------------------------------------------------------------------
    def violations(self, *, final: bool = False) -> list[str]:
        """Every property broken now; with ``final``, also every instance that
        did not finish."""
        out = list(self.contract_errors)
        out += self._binding_invariants("participant")
        for task in self._recovering:
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                out.append(f"recovery raised {type(exc).__name__}: {exc}")
        for k, sid in enumerate(self.saga_ids):
            status = self.status(k)
            if status in _TERMINAL:
                out += self._terminal_violations(sid)
            elif final:
                out.append(f"{sid} did not finish: still {status} after every "
                           "call was answered ok and every timer fired "
                           "(termination)")
        return out

    def _terminal_violations(self, sid: str) -> list[str]:
        records = self.log.records(sid)
        res = conform(self.saga, records)
        if not res.conforms:
            return [f"{sid}: the runtime's log is not a path of the model: "
                    f"{res.message}"]
        if self.binding.effects is None:
            return []
        observed = dict(self.binding.effects(self.world, sid))
        out = [f"{sid}: step {name!r} was undone {-n} more time(s) than it took "
               "effect (participants' records)"
               for name, n in observed.items() if n < 0]
        if out:
            return out
        late = self._late_probe(sid, res.final_states)
        if late:
            return late
        first: str | None = None
        for state in sorted(res.final_states):
            msg = self._evaluate(state, observed)
            if msg is None:
                return []
            first = first or msg
        held = ", ".join(f"{n}x{v}" for n, v in sorted(observed.items()))
        return [f"{sid}: {first} (participants' records: {held})"]

    def _late_probe(self, sid: str, finals: frozenset[sem.State]) -> list[str]:
        """Knob ``late``: deliver, once per ended instance, each compensated
        step's action again, late, to the real participant, for every step
        that declares ``anti_suspension`` (with ``empty_rollback``). Its key was
        compensated, so the participant must refuse it: the effect it records
        for the step must not grow."""
        if not self.faults.late or sid in self._late_probed or (
                self.binding.effects is None):
            return []
        self._late_probed.add(sid)
        k = self.saga_ids.index(sid)
        out: list[str] = []
        for i, step in enumerate(self.saga.steps):
            ctx = self._comp_ctx.get((k, step.name))
            if not step.anti_suspension or ctx is None or not all(
                    sem.field(f, i, sem.CS) == sem.CompStatus.DONE for f in finals):
                continue
            fn = _resolve(self.world, step.participant, step.action)
            if fn is None:
                continue
            late = dataclasses.replace(
                ctx, operation=step.action, attempt_kind="action", attempt=1,
                idempotency_key=ctx.action_key, result=None)
            before = dict(self.binding.effects(self.world, sid)).get(step.name, 0)

            async def deliver(fn: Callable[..., Any] = fn,
                              late: StepContext = late) -> None:
                try:
                    got = fn(late)
                    if inspect.isawaitable(got):
                        await got
                except Exception:  # a refusal may well raise: not a verdict
                    return

            try:
                self.bridge.run(deliver())
            except BridgeError:
                continue  # it waits for virtual time: no late answer to judge
            after = dict(self.binding.effects(self.world, sid)).get(step.name, 0)
            if after > before:
                out.append(
                    f"{sid}: step {step.name!r} declares anti_suspension, but "
                    f"its action {step.participant}.{step.action}, delivered "
                    f"late (key {ctx.action_key!r}) after its compensation, "
                    "took effect (late delivery; the participant must record "
                    "a compensated key, also an unseen one, and refuse it)")
        return out

    def _evaluate(self, state: sem.State, observed: Mapping[str, int]) -> str | None:
        s = list(state)
        for name, n in observed.items():
            s[HEADER + WIDTH * self.saga.index(name) + EF] = min(n, sem.EFFECT_CAP)
        st = tuple(s)
        for p in self._props:
            assert p.on_terminal is not None
            msg = p.on_terminal(st)
            if msg:
                return f"{p.name}: {msg}"
        return None

    # --- reports -------------------------------------------------------------------
    def reached(self) -> set[str]:
        """Coverage witnesses of this run (see :mod:`sagaproof.testing`)."""
        from ._coverage import witnesses

        out: set[str] = set()
        for sid in self.saga_ids:
            out |= witnesses(self.log.records(sid))
        return out


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", repr(fn))


def _resolve(world: Any, participant: str, name: str) -> Callable[..., Any] | None:
    """The user's callable for ``participant.name`` (the shapes
    :class:`runtime.Engine` accepts)."""
    if isinstance(world, Participants):
        return world.resolve(participant, name)
    obj = world.get(participant) if isinstance(world, Mapping) else getattr(
        world, participant, None)
    if obj is None:
        return None
    found = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return found if callable(found) else None


def model_trace(saga: Saga, records: Sequence[Any],
                observed: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """One model path that explains a runtime log, in the model's words.

    The log cannot show effects at participants, so this searches the model
    for a path matching the log whose last state agrees with ``observed``
    (each step's effect count) where possible, and renders its events
    (``charge: unknown (took effect)``).
    """
    recoveries = sum(1 for r in records if r.kind == "recover")
    faults = FaultModel(crashes=recoveries, duplicates=0)
    ts = SagaTransitionSystem(saga, faults)
    kinds = {"dispatch": EventKind.DISPATCH, "reply": EventKind.REPLY,
             "comp_dispatch": EventKind.COMP_DISPATCH,
             "comp_reply": EventKind.COMP_REPLY}
    layer: dict[sem.State, tuple[str, ...]] = {ts.initial()[0]: ()}
    for rec in records:
        nxt: dict[sem.State, tuple[str, ...]] = {}
        for s, path in layer.items():
            if rec.kind == "recover":
                for e, d in ts.successors(s):
                    if e.kind is EventKind.CRASH:
                        for e2, d2 in ts.successors(d):
                            if e2.kind is EventKind.RECOVER:
                                nxt.setdefault(d2, (*path, e.describe(saga),
                                                    e2.describe(saga)))
            elif rec.kind in kinds:
                want = (kinds[rec.kind], saga.index(rec.step),
                        sem.Outcome(rec.outcome) if rec.outcome else None)
                for e, d in ts.successors(s):
                    if (e.kind, e.step, e.outcome) == want:
                        nxt.setdefault(d, (*path, Event.describe(e, saga)))
            else:
                nxt[s] = path
        if not nxt:
            break
        layer = nxt
    obs = observed or {}

    def score(s: sem.State) -> int:
        return sum(s[HEADER + WIDTH * saga.index(n) + EF] != min(max(v, 0),
                                                                 sem.EFFECT_CAP)
                   for n, v in obs.items())

    best = min(sorted(layer), key=score)
    view = sem.view(saga, best)
    held = ", ".join(f"{s.name}x{s.effect}" for s in view.steps if s.effect) or "none"
    return (*layer[best], f"=> saga {view.phase.name}; effects held: {held}")


@off_running_loop
def run_schedule(definition: Any, binding: Any, schedule: Schedule, *,
                 faults: FaultModel = sem.ALL_FAULTS, settle: bool = True,
                 definition_ref: str = "", **options: Any) -> ScheduleReport:
    """Replay ``schedule`` against ``binding``'s participants (a saga) or
    handlers (a workflow) and report.

    After the schedule, every instance is finished without further faults
    (``settle``), as the generated tests do, and every property is evaluated.
    The fault model is not enforced on a replay: the schedule says what
    happens. ``options`` go to the kind's harness (a workflow's ``store``).
    """
    h = Harness(definition, binding, faults=faults, definition_ref=definition_ref,
                **options)
    try:
        return h.replay(schedule, settle=settle)
    finally:
        h.close()


_PLAN_OUTCOMES = {
    "fail": Outcome.FAIL,
    "unknown": Outcome.UNKNOWN,
    "unknown_after_effect": Outcome.UNKNOWN_AFTER_EFFECT,
    "duplicate": Outcome.DUPLICATE,
    "crash": Outcome.CRASH_AFTER_EFFECT,
}


@off_running_loop
def run_plan(saga: Saga, binding: Binding, plan: FaultPlan, *,
             faults: FaultModel = sem.ALL_FAULTS, instances: int = 1,
             definition_ref: str = "") -> ScheduleReport:
    """Run ``instances`` sagas, answering every call as ``plan`` says (calls
    it does not name are delivered normally), and report.

    The plain-Hypothesis counterpart of the state machine: ``@given(
    fault_plans(saga))`` then ``run_plan(...).raise_for_violation()``.
    """
    h = SagaHarness(saga, binding, faults=faults, definition_ref=definition_ref)
    try:
        for _ in range(instances):
            h.start()
        for _ in range(_SETTLE_BUDGET):
            if h.violations():
                return h.report()
            if h.pending:
                call = h.pending[0]
                kind = plan.fault_for(call.step, call.attempt,
                                      compensation=call.kind == "compensation")
                outcome = _PLAN_OUTCOMES[kind] if kind else Outcome.OK
                h.deliver(call, outcome if h.allowed(call, outcome) else Outcome.OK)
            elif all(h.status(k) in _TERMINAL for k in range(instances)):
                break
            elif h.has_timer():
                h.advance()
            else:
                break
        return h.report(final=True)
    finally:
        h.close()

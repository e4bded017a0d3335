"""Generated Hypothesis stateful tests of a user's participants or handlers.

:func:`state_machine` turns a definition and its binding into a
``RuleBasedStateMachine`` that drives a :class:`~._harness.Harness`: for a
saga, whose rules are the faults of DESIGN.md (answer the next call with an
outcome, crash and recover, duplicate a delivery, let time pass); for an
event workflow, whose rules are the bus's and the worker's faults (start an
instance, deliver the oldest pending event, deliver another one out of order
where the bus allows it, lose an acknowledgement so the bus delivers again
where the bus is at-least-once, crash the worker mid-delivery or between
deliveries, let virtual time run to the next timer). Every kind shares one
base machine: its invariant is the definition's properties, evaluated on what
the runtime logged and on what the participants or handlers recorded; its
teardown settles, reports and gathers coverage. Hypothesis shrinks a failing
run to a short schedule; the failure text prints it as a story, as a model
trace and as a runnable script.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from hypothesis import Phase, target
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from saga_models import FaultModel, Saga
from saga_models import semantics as sem
from saga_models.workflow import Workflow

from ._bridge import off_running_loop
from ._harness import Binding, Harness, SagaHarness, ScheduleFailure
from ._schedule import EventFault, Outcome

F = TypeVar("F", bound=Callable[..., Any])

_COLLECTED: dict[str, tuple[Any, FaultModel, set[str]]] = {}


def collected() -> dict[str, tuple[Any, FaultModel, set[str]]]:
    """Coverage witnesses gathered by generated tests in this process, by
    definition key (sagas and workflows; the pytest plugin saves them)."""
    return _COLLECTED


def collected_workflows() -> dict[str, tuple[Workflow, FaultModel, set[str]]]:
    """The workflows' share of :func:`collected`."""
    return {k: v for k, v in _COLLECTED.items() if isinstance(v[0], Workflow)}


def _guarded(fn: F) -> F:
    """Mark the machine failed when a rule raises, so teardown does not
    settle on top of the failure and replace its message."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except BaseException:
            self.failed = True
            raise

    return wrapper  # type: ignore[return-value]


class HarnessMachine(RuleBasedStateMachine):
    """What every generated machine shares: a fresh harness per test case,
    the properties as the invariant, and a teardown that settles every
    instance, reports and gathers coverage. A kind adds its rules."""

    make_harness: ClassVar[Callable[[], Harness]]
    definition: ClassVar[Any]
    faults: ClassVar[FaultModel]
    max_instances: ClassVar[int]

    def __init__(self) -> None:
        super().__init__()
        self.failed = False
        self.harness = type(self).make_harness()

    @invariant()
    @_guarded
    def properties_hold(self) -> None:
        _raise(self.harness.report())

    def teardown(self) -> None:
        h = self.harness
        try:
            if not self.failed:
                h.settle()
                report = h.report(final=True)
                from ._coverage import definition_key

                entry = _COLLECTED.setdefault(
                    definition_key(self.definition),
                    (self.definition, self.faults, set()))
                reached = h.reached()
                entry[2].update(reached)
                # Steer generation towards schedules that reach more of
                # the definition (targeted property-based testing).
                target(float(len(reached)), label="coverage witnesses")
                _raise(report)
        finally:
            h.close()


def _raise(report: Any) -> None:
    # One raise site for invariants and teardown of every kind: Hypothesis
    # tells distinct bugs apart by where they are raised, and these are one
    # kind of failure.
    if not report.ok:
        raise ScheduleFailure(report.text(), report=report)


def _ident(name: str) -> str:
    return "".join(part.capitalize() for part in
                   "".join(c if c.isalnum() else "_" for c in name).split("_"))


def state_machine(
    definition: Saga | Workflow,
    binding: Any,
    *,
    faults: FaultModel = sem.ALL_FAULTS,
    max_instances: int = 2,
    store: str = "memory",
    definition_ref: str = "",
) -> type[RuleBasedStateMachine]:
    """A Hypothesis state machine that tests ``binding``'s participants (a
    saga's :class:`Binding`) or handlers (a workflow's
    :class:`~sagaproof.testing.WorkflowBinding`).

    Args:
        definition: The saga or workflow the binding implements.
        binding: What to drive (a factory) and how to observe it.
        faults: Which faults the rules inject (the same knobs as ``check``;
            a workflow uses ``duplicates``, lost acknowledgements on an
            at-least-once bus, and ``crashes``, worker crashes).
        max_instances: Most instances started in one test case (two let one
            instance interfere with the other's effects).
        store: A workflow's store: ``"memory"`` or ``"sqlite"`` (a file,
            reopened on each crash).
        definition_ref: Path of the definition, printed in replay scripts.
    """
    options: dict[str, Any] = {"faults": faults, "definition_ref": definition_ref}
    if isinstance(definition, Saga):
        if store != "memory":
            raise ValueError(f"store={store!r}: a saga's harness keeps its log "
                             "in memory; store is for workflows")
        rules: type[HarnessMachine] = _saga_rules()
        suffix = "ParticipantsMachine"
    else:
        rules = _workflow_rules(binding)
        options["store"] = store
        suffix = "HandlersMachine"

    def make_harness() -> Harness:
        return Harness(definition, binding, **options)

    name = f"{_ident(definition.name)}{suffix}"
    return type(name, (rules,), {
        "make_harness": staticmethod(make_harness), "definition": definition,
        "faults": faults, "max_instances": max_instances, "__qualname__": name})


def _saga_rules() -> type[HarnessMachine]:
    outcomes = list(Outcome)

    class SagaRules(HarnessMachine):
        harness: SagaHarness

        @initialize()
        @_guarded
        def start_first_saga(self) -> None:
            self.harness.start()

        @precondition(lambda self: len(self.harness.saga_ids) < self.max_instances)
        @rule()
        @_guarded
        def start_saga(self) -> None:
            self.harness.start()

        @precondition(lambda self: bool(self.harness.pending))
        @rule(pick=st.integers(0, 7), outcome=st.sampled_from(outcomes))
        @_guarded
        def deliver(self, pick: int, outcome: Outcome) -> None:
            h = self.harness
            call = h.pending[pick % len(h.pending)]
            if not h.allowed(call, outcome):
                outcome = Outcome.OK  # outside the fault model: plain delivery
            h.deliver(call, outcome)

        @precondition(lambda self: self.harness.crashes < self.faults.crashes)
        @rule()
        @_guarded
        def crash_and_recover(self) -> None:
            self.harness.crash()

        @precondition(lambda self: self.harness.has_timer())
        @rule()
        @_guarded
        def advance_clock(self) -> None:
            self.harness.advance()

        @precondition(lambda self: not self.harness.pending)
        @rule()
        @_guarded
        def run_without_faults(self) -> None:
            # Enabled whenever ``deliver`` is not, so some rule always is.
            self.harness.settle(record=True)

    return SagaRules


def _workflow_rules(binding: Any) -> type[HarnessMachine]:
    # The rules draw the binding's inputs, so each binding gets its class.
    from hypothesis.strategies import SearchStrategy

    from ._workflow_harness import WorkflowHarness

    inputs = binding.inputs
    draw_inputs: SearchStrategy[Any] = (
        inputs if isinstance(inputs, SearchStrategy) else st.none())
    fault_choices = list(EventFault)

    class WorkflowRules(HarnessMachine):
        harness: WorkflowHarness

        def _deliverable(self) -> list[int]:
            h = self.harness
            return [k for k in range(len(h.instances)) if h.candidates(k)]

        def _reorderable(self) -> list[int]:
            h = self.harness
            return [k for k in range(len(h.instances)) if len(h.candidates(k)) > 1]

        def _fault(self, fault: EventFault) -> EventFault:
            # Outside the fault model: a plain delivery instead.
            return fault if self.harness.allowed(fault) else EventFault.NONE

        @initialize(input=draw_inputs)
        @_guarded
        def start_first_instance(self, input: Any) -> None:
            self.harness.start(input)

        @precondition(lambda self: len(self.harness.instances)
                      < self.max_instances)
        @rule(data=st.data())
        @_guarded
        def another_instance(self, data: st.DataObject) -> None:
            # Drawn inside the rule (not as a rule argument) so the rule sorts
            # with the argument-free ones, which shrinks schedules better.
            self.harness.start(data.draw(draw_inputs, label="input"))

        @precondition(lambda self: bool(self._deliverable()))
        @rule(pick=st.integers(0, 7), fault=st.sampled_from(fault_choices))
        @_guarded
        def deliver_oldest(self, pick: int, fault: EventFault) -> None:
            ks = self._deliverable()
            k = ks[pick % len(ks)]
            self.harness.deliver(k, self.harness.candidates(k)[0], self._fault(fault))

        @precondition(lambda self: bool(self._reorderable()))
        @rule(pick=st.integers(0, 7), which=st.integers(1, 7),
              fault=st.sampled_from(fault_choices))
        @_guarded
        def deliver_out_of_order(self, pick: int, which: int,
                                 fault: EventFault) -> None:
            ks = self._reorderable()
            k = ks[pick % len(ks)]
            cands = self.harness.candidates(k)
            env = cands[1 + (which - 1) % (len(cands) - 1)]
            self.harness.deliver(k, env, self._fault(fault))

        @precondition(lambda self: self.harness.crashes < self.faults.crashes)
        @rule()
        @_guarded
        def crash_worker(self) -> None:
            self.harness.crash()

        @precondition(lambda self: self.harness.next_timer() is not None)
        @rule()
        @_guarded
        def advance_clock(self) -> None:
            self.harness.advance()

        # A rule of its own rather than an argument of advance_clock: rules
        # without arguments shrink away more readily.
        @precondition(lambda self: self.harness.next_timer() is not None
                      and self.harness.allowed(EventFault.CRASH))
        @rule()
        @_guarded
        def crash_in_timer(self) -> None:
            self.harness.advance(crash=True)

        @precondition(lambda self: not self._deliverable()
                      and self.harness.next_timer() is None)
        @rule()
        def at_rest(self) -> None:
            # Every instance is quiescent: let the test end here rather than
            # force a crash or another instance (which would then not shrink
            # away from a failing schedule).
            pass

    return WorkflowRules


def saga_state_machine(saga: Saga, binding: Binding, *,
                       faults: FaultModel = sem.ALL_FAULTS, max_sagas: int = 2,
                       definition_ref: str = "") -> type[RuleBasedStateMachine]:
    """:func:`state_machine` for a saga (a name kept for callers)."""
    return state_machine(saga, binding, faults=faults, max_instances=max_sagas,
                         definition_ref=definition_ref)


def workflow_state_machine(workflow: Workflow, binding: Any, *,
                           faults: FaultModel = sem.ALL_FAULTS,
                           max_instances: int = 2, store: str = "memory",
                           definition_ref: str = "") -> type[RuleBasedStateMachine]:
    """:func:`state_machine` for a workflow (a name kept for callers)."""
    return state_machine(workflow, binding, faults=faults,
                         max_instances=max_instances, store=store,
                         definition_ref=definition_ref)


@off_running_loop
def check_participants(
    definition: Saga | Workflow,
    binding: Any,
    *,
    faults: FaultModel = sem.ALL_FAULTS,
    max_instances: int = 2,
    store: str = "memory",
    definition_ref: str = "",
    settings: Settings | None = None,
) -> None:
    """Run the generated stateful test of ``binding`` now; raise
    :class:`ScheduleFailure` with the shrunk failure. A workflow's failure is
    shrunk further by :func:`~._workflow_harness.shrink_schedule` on the
    recorded schedule. Without ``settings``, the current Hypothesis profile
    (for a workflow, its explain phase off).

    >>> from saga_models import SagaBuilder
    >>> saga = (SagaBuilder("pay").step("charge", participant="bank",
    ...         action="charge", compensation="refund").build())
    >>> ledger: dict[str, int] = {}
    >>> def bank() -> dict[str, object]:
    ...     ledger.clear()
    ...     return {"bank": {
    ...         "charge": lambda ctx: ledger.__setitem__(ctx.saga_id, 1),
    ...         "refund": lambda ctx: ledger.pop(ctx.saga_id, None)}}
    >>> check_participants(saga, Binding(participants=bank,
    ...     effects=lambda world, sid: {"charge": ledger.get(sid, 0)}),
    ...     settings=Settings(max_examples=5, database=None))

    The same for a workflow's handlers:

    >>> from saga_models.workflow import WorkflowBuilder
    >>> from sagaproof.testing import WorkflowBinding
    >>> wf = (WorkflowBuilder("ping").start("ping")
    ...       .service("a", initial="W", final=["D"]).on("W", "pong", to="D")
    ...       .service("b", initial="I").on("I", "ping", to="I", emit=["pong"])
    ...       .outcome(a="D").build())
    >>> check_participants(wf, WorkflowBinding(handlers=dict),
    ...                    settings=Settings(max_examples=5, database=None))
    """
    if settings is None and isinstance(definition, Workflow):
        # The current profile, without Hypothesis's explain phase: it re-runs
        # the shrunk case many times to annotate lines, and the failure text
        # already explains the schedule step by step.
        settings = Settings(phases=[p for p in Settings().phases
                                    if p is not Phase.explain])
    machine = state_machine(definition, binding, faults=faults,
                            max_instances=max_instances, store=store,
                            definition_ref=definition_ref)
    try:
        run_state_machine_as_test(machine, settings=settings)
    except ScheduleFailure as exc:
        if not isinstance(definition, Workflow) or exc.report is None:
            raise
        from ._workflow_harness import shrink_schedule

        smaller = shrink_schedule(definition, binding, exc.report, faults=faults,
                                  store=store, definition_ref=definition_ref)
        raise ScheduleFailure(smaller.text(), report=smaller) from None


def check_handlers(workflow: Workflow, binding: Any, *,
                   faults: FaultModel = sem.ALL_FAULTS, max_instances: int = 2,
                   store: str = "memory", definition_ref: str = "",
                   settings: Settings | None = None) -> None:
    """:func:`check_participants` for a workflow's handlers (a name kept for
    callers)."""
    check_participants(workflow, binding, faults=faults,
                       max_instances=max_instances, store=store,
                       definition_ref=definition_ref, settings=settings)

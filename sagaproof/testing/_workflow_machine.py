"""Generated Hypothesis stateful tests of a user's event-workflow handlers.

:func:`workflow_state_machine` turns a workflow and a :class:`WorkflowBinding`
into a ``RuleBasedStateMachine`` over the real workflow engine whose rules are
the bus's and the worker's faults (start an instance, deliver the oldest
pending event, deliver another one out of order where the bus allows it, lose
an acknowledgement so the bus delivers again where the bus is at-least-once,
crash the worker mid-delivery or between deliveries, let virtual time run to
the next timer) and whose invariants are the workflow's properties, evaluated
on what the runtime stored and on what the handlers recorded. Hypothesis
shrinks a failing run to a short schedule; the failure text prints it as a
story, as a model trace and as a runnable script.
"""

from __future__ import annotations

from typing import Any

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

from saga_models import FaultModel
from saga_models.workflow import Workflow

from ._bridge import off_running_loop
from ._machine import _guarded, _ident
from ._workflow_harness import (
    WorkflowBinding,
    WorkflowHarness,
    WorkflowReport,
    WorkflowScheduleFailure,
    shrink_schedule,
)
from ._workflow_schedule import EventFault

_COLLECTED: dict[str, tuple[Workflow, FaultModel, set[str]]] = {}
_DEFAULT_FAULTS = FaultModel()


def collected_workflows() -> dict[str, tuple[Workflow, FaultModel, set[str]]]:
    """Coverage witnesses gathered by generated workflow tests in this
    process, by definition key (the pytest plugin saves them)."""
    return _COLLECTED


def workflow_state_machine(
    workflow: Workflow,
    binding: WorkflowBinding,
    *,
    faults: FaultModel = _DEFAULT_FAULTS,
    max_instances: int = 2,
    store: str = "memory",
    definition_ref: str = "",
) -> type[RuleBasedStateMachine]:
    """A Hypothesis state machine that tests ``binding``'s handlers.

    Args:
        workflow: The definition the handlers implement.
        binding: The handlers (a factory) and how to observe them.
        faults: ``duplicates`` lost acknowledgements (only if the bus is
            at-least-once) and ``crashes`` worker crashes per test case.
        max_instances: Most instances started in one test case (two let one
            instance's handlers interfere with the other's records).
        store: ``"memory"`` or ``"sqlite"`` (a file, reopened on each crash).
        definition_ref: Path of the definition, printed in replay scripts.
    """
    from hypothesis.strategies import SearchStrategy

    inputs = binding.inputs
    draw_inputs: SearchStrategy[Any] = (
        inputs if isinstance(inputs, SearchStrategy) else st.none())
    fault_choices = list(EventFault)

    class WorkflowHandlersMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.failed = False
            self.harness = WorkflowHarness(workflow, binding, faults=faults,
                                           store=store,
                                           definition_ref=definition_ref)

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

        @precondition(lambda self: len(self.harness.instances) < max_instances)
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

        @precondition(lambda self: self.harness.crashes < faults.crashes)
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

                    entry = _COLLECTED.setdefault(definition_key(workflow),
                                                  (workflow, faults, set()))
                    reached = h.reached()
                    entry[2].update(reached)
                    target(float(len(reached)), label="coverage witnesses")
                    _raise(report)
            finally:
                h.close()

    WorkflowHandlersMachine.__name__ = f"{_ident(workflow.name)}HandlersMachine"
    WorkflowHandlersMachine.__qualname__ = WorkflowHandlersMachine.__name__
    return WorkflowHandlersMachine


def _raise(report: WorkflowReport) -> None:
    # One raise site (see _machine._raise): Hypothesis tells distinct bugs
    # apart by where they are raised.
    if not report.ok:
        raise WorkflowScheduleFailure(report.text(), report=report)


@off_running_loop
def check_handlers(
    workflow: Workflow,
    binding: WorkflowBinding,
    *,
    faults: FaultModel = _DEFAULT_FAULTS,
    max_instances: int = 2,
    store: str = "memory",
    definition_ref: str = "",
    settings: Settings | None = None,
) -> None:
    """Run the generated stateful test of ``binding``'s handlers now; raise
    :class:`WorkflowScheduleFailure` (a :class:`ScheduleFailure`) with the
    shrunk failure: Hypothesis's shrink, then :func:`shrink_schedule` on the
    recorded schedule. Without ``settings``, the current Hypothesis profile
    (its explain phase off).

    >>> from saga_models.workflow import WorkflowBuilder
    >>> wf = (WorkflowBuilder("ping").start("ping")
    ...       .service("a", initial="W", final=["D"]).on("W", "pong", to="D")
    ...       .service("b", initial="I").on("I", "ping", to="I", emit=["pong"])
    ...       .outcome(a="D").build())
    >>> check_handlers(wf, WorkflowBinding(handlers=dict),
    ...                settings=Settings(max_examples=5, database=None))
    """
    if settings is None:
        # The current profile, without Hypothesis's explain phase: it re-runs
        # the shrunk case many times to annotate lines, and the failure text
        # already explains the schedule step by step.
        settings = Settings(phases=[p for p in Settings().phases
                                    if p is not Phase.explain])
    machine = workflow_state_machine(workflow, binding, faults=faults,
                                     max_instances=max_instances, store=store,
                                     definition_ref=definition_ref)
    try:
        run_state_machine_as_test(machine, settings=settings)
    except WorkflowScheduleFailure as exc:
        smaller = shrink_schedule(workflow, binding, exc.report, faults=faults,
                                  store=store, definition_ref=definition_ref)
        raise WorkflowScheduleFailure(smaller.text(), report=smaller) from None

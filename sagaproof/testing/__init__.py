"""Property-based tests of your participants, generated from a definition.

Bind your participants (a payment client, an inventory service) to a saga and
sagaproof generates a Hypothesis stateful test that drives them through the
real runtime under injected faults (failures, timeouts with unknown outcome,
orchestrator crashes, duplicate deliveries), checking the verifier's
properties on the runtime's log and on your participants' own records::

    from hypothesis import settings
    from saga_models import load
    from sagaproof.testing import Binding, state_machine

    binding = Binding(participants=make_services, effects=read_effects)
    TestTrip = state_machine(load("trip.yaml"), binding).TestCase

Event workflows work the same way, through the same functions, with the
handlers a workflow binds by name; the generated test plays the bus (which
pending event next, out of order where the bus allows it, a lost
acknowledgement on an at-least-once bus), crashes the worker between a handler
and its commit, and moves the virtual clock to fire timers::

    from sagaproof.testing import WorkflowBinding, state_machine

    binding = WorkflowBinding(handlers=make_handlers, effects=read_counters)
    TestOrders = state_machine(load("order.workflow.yaml"), binding).TestCase

One harness (:class:`Harness`), one state machine (:func:`state_machine`,
:func:`check_participants`) and one replay (:func:`run_schedule` of a
:class:`Schedule`) serve both kinds; the ``workflow_*`` and ``*_handlers``
names are the same functions, kept for callers.

Or let the pytest plugin collect them: ``pytest --sagaproof examples/``.
"""

# The pytest plugin lives in this package and pytest loads it into every run of
# a project that installs sagaproof, so the package imports its modules (and
# with them Hypothesis, the runtime and the checkers) on first use only
# (PEP 562); type checkers see the names through the block below.
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._bridge import BridgeError as BridgeError
    from ._bridge import LoopBridge as LoopBridge
    from ._coverage import CoverageReport as CoverageReport
    from ._coverage import CoverageStore as CoverageStore
    from ._coverage import coverage_report as coverage_report
    from ._coverage import reachable as reachable
    from ._coverage import witnesses as witnesses
    from ._coverage import workflow_reachable as workflow_reachable
    from ._coverage import workflow_witnesses as workflow_witnesses
    from ._harness import Binding as Binding
    from ._harness import Harness as Harness
    from ._harness import InjectedFault as InjectedFault
    from ._harness import SagaHarness as SagaHarness
    from ._harness import ScheduleFailure as ScheduleFailure
    from ._harness import ScheduleMismatch as ScheduleMismatch
    from ._harness import ScheduleReport as ScheduleReport
    from ._harness import model_trace as model_trace
    from ._harness import run_plan as run_plan
    from ._harness import run_schedule as run_schedule
    from ._machine import check_handlers as check_handlers
    from ._machine import check_participants as check_participants
    from ._machine import collected as collected
    from ._machine import collected_workflows as collected_workflows
    from ._machine import saga_state_machine as saga_state_machine
    from ._machine import state_machine as state_machine
    from ._machine import workflow_state_machine as workflow_state_machine
    from ._recording import RecordingParticipants as RecordingParticipants
    from ._recording import recording_binding as recording_binding
    from ._recording import schedule_from_counterexample as schedule_from_counterexample
    from ._schedule import Advance as Advance
    from ._schedule import AdvanceClock as AdvanceClock
    from ._schedule import Crash as Crash
    from ._schedule import CrashWorker as CrashWorker
    from ._schedule import Deliver as Deliver
    from ._schedule import DeliverEvent as DeliverEvent
    from ._schedule import EventFault as EventFault
    from ._schedule import FaultSchedule as FaultSchedule
    from ._schedule import Outcome as Outcome
    from ._schedule import Schedule as Schedule
    from ._schedule import Settle as Settle
    from ._schedule import Start as Start
    from ._schedule import StartWorkflow as StartWorkflow
    from ._schedule import WorkflowSchedule as WorkflowSchedule
    from ._workflow_harness import WorkerCrash as WorkerCrash
    from ._workflow_harness import WorkflowBinding as WorkflowBinding
    from ._workflow_harness import WorkflowHarness as WorkflowHarness
    from ._workflow_harness import WorkflowReport as WorkflowReport
    from ._workflow_harness import WorkflowScheduleFailure as WorkflowScheduleFailure
    from ._workflow_harness import run_workflow_schedule as run_workflow_schedule
    from ._workflow_harness import shrink_schedule as shrink_schedule
    from ._workflow_harness import workflow_trace as workflow_trace

_WHERE = {
    "BridgeError": "_bridge",
    "LoopBridge": "_bridge",
    "CoverageReport": "_coverage",
    "CoverageStore": "_coverage",
    "coverage_report": "_coverage",
    "reachable": "_coverage",
    "witnesses": "_coverage",
    "workflow_reachable": "_coverage",
    "workflow_witnesses": "_coverage",
    "Binding": "_harness",
    "Harness": "_harness",
    "SagaHarness": "_harness",
    "InjectedFault": "_harness",
    "ScheduleFailure": "_harness",
    "ScheduleMismatch": "_harness",
    "ScheduleReport": "_harness",
    "model_trace": "_harness",
    "run_plan": "_harness",
    "run_schedule": "_harness",
    "check_participants": "_machine",
    "collected": "_machine",
    "saga_state_machine": "_machine",
    "state_machine": "_machine",
    "RecordingParticipants": "_recording",
    "recording_binding": "_recording",
    "schedule_from_counterexample": "_recording",
    "Advance": "_schedule",
    "Crash": "_schedule",
    "Deliver": "_schedule",
    "FaultSchedule": "_schedule",
    "Outcome": "_schedule",
    "Schedule": "_schedule",
    "Settle": "_schedule",
    "Start": "_schedule",
    "WorkerCrash": "_workflow_harness",
    "WorkflowBinding": "_workflow_harness",
    "WorkflowHarness": "_workflow_harness",
    "WorkflowReport": "_workflow_harness",
    "WorkflowScheduleFailure": "_workflow_harness",
    "run_workflow_schedule": "_workflow_harness",
    "shrink_schedule": "_workflow_harness",
    "workflow_trace": "_workflow_harness",
    "check_handlers": "_machine",
    "collected_workflows": "_machine",
    "workflow_state_machine": "_machine",
    "AdvanceClock": "_schedule",
    "CrashWorker": "_schedule",
    "DeliverEvent": "_schedule",
    "EventFault": "_schedule",
    "StartWorkflow": "_schedule",
    "WorkflowSchedule": "_schedule",
}
"""Each public name and the module that defines it."""


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Advance",
    "AdvanceClock",
    "Binding",
    "BridgeError",
    "CoverageReport",
    "CoverageStore",
    "Crash",
    "CrashWorker",
    "Deliver",
    "DeliverEvent",
    "EventFault",
    "FaultSchedule",
    "Harness",
    "InjectedFault",
    "LoopBridge",
    "Outcome",
    "RecordingParticipants",
    "SagaHarness",
    "Schedule",
    "ScheduleFailure",
    "ScheduleMismatch",
    "ScheduleReport",
    "Settle",
    "Start",
    "StartWorkflow",
    "WorkerCrash",
    "WorkflowBinding",
    "WorkflowHarness",
    "WorkflowReport",
    "WorkflowSchedule",
    "WorkflowScheduleFailure",
    "check_handlers",
    "check_participants",
    "collected",
    "collected_workflows",
    "coverage_report",
    "model_trace",
    "reachable",
    "recording_binding",
    "run_plan",
    "run_schedule",
    "run_workflow_schedule",
    "saga_state_machine",
    "schedule_from_counterexample",
    "shrink_schedule",
    "state_machine",
    "witnesses",
    "workflow_reachable",
    "workflow_state_machine",
    "workflow_trace",
    "workflow_witnesses",
]

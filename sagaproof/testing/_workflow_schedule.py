"""Workflow schedules: what a generated workflow test did, as replayable data.

The decisions of an event-workflow test are different from a saga's: the
harness plays the bus, so it picks which pending event is delivered next (and
whether out of order), whether the bus keeps a copy to deliver again, whether
the worker dies while a handler runs, and when virtual time jumps to the next
timer. Events are named by instance, event, receiver and the number in their
event id (``order_saga-0:3``), all deterministic for a given schedule, so a
shrunk schedule reads as a story and replays exactly
(:func:`sagaproof.testing.run_workflow_schedule`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventFault(enum.Enum):
    """What goes wrong with one delivery."""

    NONE = "none"
    """Delivered and acknowledged."""
    DUPLICATE = "duplicate"
    """Handled, but the acknowledgement is lost: the bus delivers the same
    event id again later (at-least-once buses only)."""
    CRASH = "crash"
    """The handler runs, then the worker dies before the step is committed;
    a new worker recovers from the store and the bus redelivers the event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflow:
    """Start instance ``k`` (numbered from 0): its ``start`` events go on the
    bus."""

    input: object = None

    def code(self) -> str:
        """This operation as Python source."""
        return f"StartWorkflow(input={self.input!r})"

    def describe(self) -> str:
        """One line for people."""
        shown = "" if self.input is None else f" with input {self.input!r}"
        return f"start a workflow instance{shown}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverEvent:
    """Deliver one pending event to one receiver."""

    instance: int
    event: str
    receiver: str
    number: int
    """The number in the event id (``<workflow id>:<number>``)."""
    fault: EventFault = EventFault.NONE
    out_of_order: bool = False
    """An event sent earlier to the same receiver's bus was still pending
    (informative: the replay finds the event by its id)."""

    def code(self) -> str:
        """This operation as Python source."""
        extra = ""
        if self.fault is not EventFault.NONE:
            extra += f", fault=EventFault.{self.fault.name}"
        if self.out_of_order:
            extra += ", out_of_order=True"
        return (f"DeliverEvent(instance={self.instance}, event={self.event!r}, "
                f"receiver={self.receiver!r}, number={self.number}{extra})")

    def describe(self) -> str:
        """One line for people."""
        what = {
            EventFault.NONE: "handled",
            EventFault.DUPLICATE: "handled, acknowledgement lost: the bus will "
            "deliver it again",
            EventFault.CRASH: "handler runs, then the worker crashes before "
            "committing, recovers from the store, and the bus redelivers it",
        }[self.fault]
        order = " (out of order: an earlier event is still pending)" \
            if self.out_of_order else ""
        return (f"instance {self.instance}: {self.event} #{self.number} -> "
                f"{self.receiver}{order}: {what}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CrashWorker:
    """The worker dies between deliveries; a new one recovers from the store."""

    def code(self) -> str:
        """This operation as Python source."""
        return "CrashWorker()"

    def describe(self) -> str:
        """One line for people."""
        return "worker crashes and recovers from the store"


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvanceClock:
    """Virtual time jumps to the next armed timer, which fires."""

    crash: bool = False
    """The first timer's handler runs, then the worker dies before the step
    is committed; the recovered worker fires the (overdue) timer again."""

    def code(self) -> str:
        """This operation as Python source."""
        return "AdvanceClock(crash=True)" if self.crash else "AdvanceClock()"

    def describe(self) -> str:
        """One line for people."""
        if self.crash:
            return ("time passes until the next timer fires; its handler runs, "
                    "then the worker crashes before committing and recovers "
                    "from the store (the timer is still due)")
        return "time passes until the next timer fires"


WorkflowOp = StartWorkflow | DeliverEvent | CrashWorker | AdvanceClock
"""One decision of a workflow schedule."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSchedule:
    """A sequence of decisions, replayable with
    :func:`~sagaproof.testing.run_workflow_schedule`.

    >>> s = WorkflowSchedule(ops=(StartWorkflow(), DeliverEvent(
    ...     instance=0, event="charge", receiver="payments", number=1,
    ...     fault=EventFault.CRASH)))
    >>> print(s.describe())
        1. start a workflow instance
        2. instance 0: charge #1 -> payments: handler runs, then the worker \
crashes before committing, recovers from the store, and the bus redelivers it
    """

    ops: tuple[WorkflowOp, ...] = ()

    def __len__(self) -> int:
        return len(self.ops)

    def code(self) -> str:
        """The schedule as a Python expression."""
        body = "".join(f"    {op.code()},\n" for op in self.ops)
        return f"WorkflowSchedule(ops=(\n{body}))"

    def describe(self) -> str:
        """The schedule as numbered lines for people."""
        return "\n".join(f"  {i:>3}. {op.describe()}"
                         for i, op in enumerate(self.ops, 1))

    def script(self, *, definition: str, binding: str) -> str:
        """A runnable Python script that replays this schedule.

        Args:
            definition: A path to the workflow file, or ``python:module:attr``
                for a workflow built in Python.
            binding: ``module:attribute`` of the
                :class:`~sagaproof.testing.WorkflowBinding` the test used.
        """
        if definition.startswith("python:"):
            dmod, _, dattr = definition.removeprefix("python:").partition(":")
            load_lines = f"from {dmod} import {dattr} as workflow\n"
        else:
            load_lines = ("from saga_models import load\n\n"
                          f"workflow = load({definition!r})\n")
        mod, _, attr = binding.partition(":")
        return (
            "from sagaproof.testing import (AdvanceClock, CrashWorker, "
            "DeliverEvent, EventFault,\n"
            "                               StartWorkflow, WorkflowSchedule,\n"
            "                               run_workflow_schedule)\n"
            f"from {mod} import {attr}\n"
            f"{load_lines}"
            f"schedule = {self.code()}\n"
            f"report = run_workflow_schedule(workflow, {attr}, schedule)\n"
            "print(report.text())\n"
        )

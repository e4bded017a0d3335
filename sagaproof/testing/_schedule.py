"""Schedules: what a generated test did, as replayable data.

A schedule is the sequence of decisions a stateful test made. For a saga:
start an instance, answer one in-flight call with an outcome, crash the
orchestrator, let virtual time pass. For an event workflow the harness plays
the bus, so it picks which pending event is delivered next (and whether out of
order), whether the bus keeps a copy to deliver again, whether the worker dies
while a handler runs, and when virtual time jumps to the next timer. Calls and
events are named by instance, step or event and kind, not by position
(events by the number in their id, ``order_saga-0:3``, deterministic for a
given schedule), so a shrunk schedule reads as a story and replays exactly
(:func:`sagaproof.testing.run_schedule`).

One :class:`Schedule` holds either kind; :class:`FaultSchedule` and
:class:`WorkflowSchedule` only name their operations and their replay.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar


class Schedule:
    """A sequence of decisions (``ops``) and what is shared by every kind:
    its length, its code, its story and the script that replays it."""

    __slots__ = ()
    ops: tuple[Any, ...]
    _subject: ClassVar[str]
    """The variable the replay script binds the definition to."""
    _names: ClassVar[str]
    """What the replay script imports from :mod:`sagaproof.testing`."""
    title: ClassVar[str]
    """What a report calls this kind of schedule."""

    def __len__(self) -> int:
        return len(self.ops)

    def code(self) -> str:
        """The schedule as a Python expression."""
        body = "".join(f"    {op.code()},\n" for op in self.ops)
        return f"{type(self).__name__}(ops=(\n{body}))"

    def describe(self) -> str:
        """The schedule as numbered lines for people."""
        return "\n".join(f"  {i:>3}. {op.describe()}"
                         for i, op in enumerate(self.ops, 1))

    def script(self, *, definition: str, binding: str) -> str:
        """A runnable Python script that replays this schedule.

        Args:
            definition: A path to the definition file, or
                ``python:module:attr`` for a definition built in Python.
            binding: ``module:attribute`` of the binding the test used.
        """
        subject = self._subject
        if definition.startswith("python:"):
            dmod, _, dattr = definition.removeprefix("python:").partition(":")
            load_line = f"from {dmod} import {dattr} as {subject}"
        else:
            load_line = f"{subject} = load({definition!r})"
        mod, _, attr = binding.partition(":")
        return (
            "from saga_models import load\n"
            f"from sagaproof.testing import ({self._names}, run_schedule)\n"
            f"from {mod} import {attr}\n\n"
            f"{load_line}\n"
            f"schedule = {self.code()}\n"
            f"report = run_schedule({subject}, {attr}, schedule)\n"
            "print(report.text())\n"
        )


class Outcome(enum.Enum):
    """How one in-flight call to a participant is answered."""

    OK = "ok"
    """Delivered once; the participant's own reply (or error) goes back."""
    FAIL = "fail"
    """The transport fails the call before it reaches the participant."""
    UNKNOWN = "unknown"
    """The call is lost before the participant sees it; the step's timeout
    fires (an unknown outcome with no effect)."""
    UNKNOWN_AFTER_EFFECT = "unknown_after_effect"
    """The participant acts but the reply is lost; the timeout fires."""
    DUPLICATE = "duplicate"
    """The command is delivered twice with the same idempotency key."""
    CRASH_AFTER_EFFECT = "crash_after_effect"
    """The participant acts, then the orchestrator dies before logging the
    reply; recovery re-sends the command with the same key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """Start a new saga instance (instances are numbered from 0)."""

    input: object = None

    def code(self) -> str:
        """This operation as Python source."""
        return f"Start(input={self.input!r})"

    def describe(self) -> str:
        """One line for people."""
        return "start a saga instance"


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    """Answer the in-flight call of ``kind`` for ``step`` of instance ``saga``."""

    saga: int
    step: str
    kind: str = "action"
    """``action`` or ``compensation``."""
    outcome: Outcome = Outcome.OK
    attempt: int = 1
    """The attempt number the engine gave the call (informative)."""

    def code(self) -> str:
        """This operation as Python source."""
        return (f"Deliver(saga={self.saga}, step={self.step!r}, kind={self.kind!r}, "
                f"outcome=Outcome.{self.outcome.name}, attempt={self.attempt})")

    def describe(self) -> str:
        """One line for people."""
        what = {
            Outcome.OK: "delivered, participant answers",
            Outcome.FAIL: "fails before reaching the participant",
            Outcome.UNKNOWN: "lost, the timeout fires (no effect)",
            Outcome.UNKNOWN_AFTER_EFFECT: "participant acts, reply lost, the "
            "timeout fires",
            Outcome.DUPLICATE: "delivered twice with the same idempotency key",
            Outcome.CRASH_AFTER_EFFECT: "participant acts, then the orchestrator "
            "crashes before logging the reply, and recovers",
        }[self.outcome]
        return (f"saga {self.saga}: {self.kind} of {self.step!r} (attempt "
                f"{self.attempt}): {what}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Crash:
    """The orchestrator dies; a new one recovers every instance from the log."""

    def code(self) -> str:
        """This operation as Python source."""
        return "Crash()"

    def describe(self) -> str:
        """One line for people."""
        return "orchestrator crashes and recovers from the log"


@dataclass(frozen=True, slots=True, kw_only=True)
class Advance:
    """Virtual time jumps to the next timer (a backoff, a timeout)."""

    def code(self) -> str:
        """This operation as Python source."""
        return "Advance()"

    def describe(self) -> str:
        """One line for people."""
        return "time passes until the next timer (backoff or timeout)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settle:
    """Every call in flight is answered ok and time runs until each instance
    has ended (no further faults)."""

    def code(self) -> str:
        """This operation as Python source."""
        return "Settle()"

    def describe(self) -> str:
        """One line for people."""
        return "everything in flight is answered ok until every instance ends"


Op = Start | Deliver | Crash | Advance | Settle
"""One decision of a schedule."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSchedule(Schedule):
    """A saga's decisions, replayable with :func:`run_schedule`.

    >>> s = FaultSchedule(ops=(Start(), Deliver(saga=0, step="charge"), Crash()))
    >>> print(s.code())
    FaultSchedule(ops=(
        Start(input=None),
        Deliver(saga=0, step='charge', kind='action', outcome=Outcome.OK, attempt=1),
        Crash(),
    ))
    """

    ops: tuple[Op, ...] = ()
    _subject: ClassVar[str] = "saga"
    title: ClassVar[str] = "fault schedule"
    _names: ClassVar[str] = (
        "Advance, Crash, Deliver, FaultSchedule, Outcome, Settle, Start")


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
class WorkflowSchedule(Schedule):
    """An event workflow's decisions, replayable with
    :func:`~sagaproof.testing.run_schedule`.

    >>> s = WorkflowSchedule(ops=(StartWorkflow(), DeliverEvent(
    ...     instance=0, event="charge", receiver="payments", number=1,
    ...     fault=EventFault.CRASH)))
    >>> print(s.describe())
        1. start a workflow instance
        2. instance 0: charge #1 -> payments: handler runs, then the worker \
crashes before committing, recovers from the store, and the bus redelivers it
    """

    ops: tuple[WorkflowOp, ...] = ()
    _subject: ClassVar[str] = "workflow"
    title: ClassVar[str] = "workflow schedule"
    _names: ClassVar[str] = ("AdvanceClock, CrashWorker, DeliverEvent, EventFault, "
                             "StartWorkflow, WorkflowSchedule")

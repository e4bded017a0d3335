"""Fault schedules: what the generated tests did, as replayable data.

A schedule is the sequence of decisions a stateful test made: start an
instance, answer one in-flight call with an outcome, crash the orchestrator,
let virtual time pass. It names calls by saga instance, step and kind, not by
position, so a shrunk schedule reads as a story and replays exactly
(:func:`sagaproof.testing.run_schedule`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
class FaultSchedule:
    """A sequence of decisions, replayable with :func:`run_schedule`.

    >>> s = FaultSchedule(ops=(Start(), Deliver(saga=0, step="charge"), Crash()))
    >>> print(s.code())
    FaultSchedule(ops=(
        Start(input=None),
        Deliver(saga=0, step='charge', kind='action', outcome=Outcome.OK, attempt=1),
        Crash(),
    ))
    """

    ops: tuple[Op, ...] = ()

    def __len__(self) -> int:
        return len(self.ops)

    def code(self) -> str:
        """The schedule as a Python expression."""
        body = "".join(f"    {op.code()},\n" for op in self.ops)
        return f"FaultSchedule(ops=(\n{body}))"

    def describe(self) -> str:
        """The schedule as numbered lines for people."""
        return "\n".join(f"  {i:>3}. {op.describe()}"
                         for i, op in enumerate(self.ops, 1))

    def script(self, *, definition: str, binding: str) -> str:
        """A runnable Python script that replays this schedule.

        Args:
            definition: A path to the definition file, or ``python:module:attr``
                for a saga built in Python.
            binding: ``module:attribute`` of the :class:`Binding` the test used.
        """
        if definition.startswith("python:"):
            dmod, _, dattr = definition.removeprefix("python:").partition(":")
            load_line = f"from {dmod} import {dattr} as saga"
        else:
            load_line = f"saga = load({definition!r})"
        mod, _, attr = binding.partition(":")
        return (
            "from saga_models import load\n"
            "from sagaproof.testing import (Advance, Crash, Deliver, FaultSchedule,"
            " Outcome, Settle,\n"
            "                               Start, run_schedule)\n"
            f"from {mod} import {attr}\n\n"
            f"{load_line}\n"
            f"schedule = {self.code()}\n"
            f"report = run_schedule(saga, {attr}, schedule)\n"
            "print(report.text())\n"
        )

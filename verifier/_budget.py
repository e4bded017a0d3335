"""Budgets every backend honours: states (or BMC frames), memory, wall clock.

A check that runs out of a budget ends ``unknown`` with a reason that names the
budget (``--timeout``, ``--max-states``, ``--max-memory``), never ``holds``.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass

from saga_models import SagaError


@dataclass(frozen=True, slots=True, kw_only=True)
class Deadline:
    """An overall wall-clock deadline for one check (``--timeout``).

    >>> d = Deadline.after(3600.0)
    >>> d.expired(), d.remaining() > 3500
    (False, True)
    """

    at: float
    """``time.monotonic()`` value when the budget runs out."""
    seconds: float
    """The budget as given, for messages."""

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now."""
        return cls(at=time.monotonic() + seconds, seconds=seconds)

    def remaining(self) -> float:
        """Seconds left (negative once expired)."""
        return self.at - time.monotonic()

    def expired(self) -> bool:
        """Whether the budget has run out."""
        return self.remaining() <= 0

    def reason(self, where: str) -> str:
        """The unknown verdict's reason: which budget, and where it ran out."""
        return f"time budget reached: --timeout {self.seconds:g}s ran out {where}"


def deadline_after(timeout: float | None) -> Deadline | None:
    """``Deadline.after(timeout)``, or None for no time budget.

    Raises:
        ValueError: ``timeout`` is not a positive number of seconds.
    """
    if timeout is None:
        return None
    if not timeout > 0:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    return Deadline.after(timeout)


def current_rss() -> int:
    """Resident memory now, in bytes: a budget compares it with the start.

    Not the peak (``ru_maxrss``): a process that peaked higher earlier (imports,
    a previous check) would otherwise get its budget for free.
    """
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:  # not Linux: the peak is the best portable figure
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb if sys.platform == "darwin" else kb * 1024


class BudgetExhausted(SagaError):
    """Raised inside a backend when a budget runs out; caught by the backend and
    turned into ``unknown`` verdicts (never seen by callers of ``check``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

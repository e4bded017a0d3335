"""A circuit breaker per participant: closed, open, half-open.

Not a library (``pybreaker``, ``aiobreaker``) because those read the wall clock
themselves; this one reads the injected :class:`~runtime.Clock`, so a 30 s
recovery window passes instantly under the virtual clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from saga_models import CircuitBreaker

from ._clock import Clock


class BreakerState(enum.Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    """Calls go through; consecutive failures are counted."""
    OPEN = "open"
    """Calls fail fast without being made, until the recovery timeout passes."""
    HALF_OPEN = "half_open"
    """One trial call goes through; its outcome closes or re-opens the breaker."""


@dataclass(slots=True)
class Breaker:
    """The mutable state of one participant's breaker."""

    config: CircuitBreaker
    clock: Clock
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = False

    def allow(self) -> bool:
        """Whether a call may be made now (and, half-open, claim the trial)."""
        if self.state is BreakerState.OPEN:
            if self.clock.now() - self.opened_at < self.config.recovery_timeout:
                return False
            self.state = BreakerState.HALF_OPEN
            self.trial_in_flight = False
        if self.state is BreakerState.HALF_OPEN:
            if self.trial_in_flight:
                return False
            self.trial_in_flight = True
        return True

    def success(self) -> None:
        """A call succeeded."""
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.trial_in_flight = False

    def failure(self) -> None:
        """A call failed or timed out."""
        self.trial_in_flight = False
        if self.state is BreakerState.HALF_OPEN:
            self._open()
            return
        self.failures += 1
        if self.failures >= self.config.failure_threshold:
            self._open()

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = self.clock.now()
        self.failures = 0

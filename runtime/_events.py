"""Lifecycle events published to subscribers, and structured logs."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger("sagaproof.runtime")


class EventType(enum.Enum):
    """What happened to a saga instance."""

    SAGA_STARTED = "SAGA_STARTED"
    SAGA_RECOVERED = "SAGA_RECOVERED"
    SAGA_RESUMED = "SAGA_RESUMED"
    STEP_STARTED = "STEP_STARTED"
    STEP_COMPLETED = "STEP_COMPLETED"
    STEP_FAILED = "STEP_FAILED"
    STEP_TIMED_OUT = "STEP_TIMED_OUT"
    COMPENSATION_STARTED = "COMPENSATION_STARTED"
    COMPENSATION_COMPLETED = "COMPENSATION_COMPLETED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"
    COMPENSATION_TIMED_OUT = "COMPENSATION_TIMED_OUT"
    """Unknown outcome; retried like a failure (see semantics.apply)."""
    SAGA_COMPLETED = "SAGA_COMPLETED"
    SAGA_COMPENSATED = "SAGA_COMPENSATED"
    SAGA_FAILED = "SAGA_FAILED"
    SAGA_STUCK = "SAGA_STUCK"


@dataclass(frozen=True, slots=True, kw_only=True)
class SagaEvent:
    """One published event; published only after its log record is durable."""

    type: EventType
    saga_id: str
    saga_name: str
    seq: int
    """Sequence number of the log record this event reports."""
    step: str | None = None
    attempt: int = 0
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[SagaEvent], None]


class EventBus(Protocol):
    """Where the engine publishes :class:`SagaEvent` values."""

    def publish(self, event: SagaEvent) -> None:
        """Deliver ``event`` to every subscriber."""
        ...


class InProcessBus:
    """Synchronous in-process fan-out; a failing subscriber is logged and
    skipped, never allowed to break the saga."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Add ``fn``; returns a function that removes it."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def publish(self, event: SagaEvent) -> None:
        """Call every subscriber with ``event``."""
        for fn in tuple(self._subscribers):
            try:
                fn(event)
            except Exception:
                logger.exception("event subscriber %r failed on %s", fn,
                                 event.type.value)
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "%s saga=%s step=%s", event.type.value, event.saga_id, event.step,
                extra={"saga_event": event.type.value, "saga_id": event.saga_id,
                       "saga_name": event.saga_name, "step": event.step,
                       "seq": event.seq, "attempt": event.attempt,
                       "error": event.error},
            )

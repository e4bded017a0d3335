"""The engine's observability hook: a :class:`Telemetry` sees every lifecycle
event with the injected clock's time and the participant's breaker state.

It only observes: what it is told is what the bus publishes, after the log
record is durable, so tracing cannot change what a saga does (one semantics,
no runtime feature the model cannot see). OpenTelemetry (spans per saga and
per attempt, and metrics) is one implementation, in :mod:`._otel`, imported
only by :func:`otel_telemetry` so that the runtime does not need the
``otel`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ._breaker import BreakerState
from ._events import SagaEvent

if TYPE_CHECKING:
    from ._otel import OpenTelemetry


class Telemetry(Protocol):
    """What the engine calls for each lifecycle event it publishes."""

    def observe(self, event: SagaEvent, *, at: float,
                breaker: BreakerState | None) -> None:
        """Record ``event``.

        Args:
            event: The event, published after its log record is durable.
            at: Wall-clock seconds from the engine's injected clock.
            breaker: The state of the circuit breaker of the event's
                participant, if it declares one (after the attempt, for a
                reply).
        """
        ...


def otel_telemetry(*, tracer_provider: Any = None,
                   meter_provider: Any = None) -> OpenTelemetry:
    """An OpenTelemetry :class:`Telemetry` (spans and metrics), on the global
    providers unless given.

    Raises:
        ImportError: the ``otel`` extra is not installed; the message says how
            to install it.
    """
    try:
        from ._otel import OpenTelemetry
    except ImportError as exc:
        raise ImportError(
            f"tracing needs OpenTelemetry ({exc}); install it with "
            "pip install 'sagaproof[otel]'") from None
    return OpenTelemetry(tracer_provider=tracer_provider,
                         meter_provider=meter_provider)

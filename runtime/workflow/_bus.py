"""The event bus protocol and an in-process bus with at-least-once delivery.

A bus hands out :class:`Envelope` s and forgets one only when it is
acknowledged; an envelope taken and not acknowledged (a handler that raised, a
process that died) is delivered again with the same ``event_id``. The
in-process bus can also be told to repeat deliveries on purpose
(``duplicate_rate``, with an injected RNG), which is how tests exercise the
de-duplicating inbox and idempotent handlers.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from saga_models.workflow import Delivery, Order, Workflow


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One copy of an event addressed to one subscriber."""

    event_id: str
    """Same for every copy of one emission (the inbox de-duplicates by it)."""
    event: str
    receiver: str
    sender: str
    seq: int = 0
    """Send order (the durable store keeps it)."""
    redelivery: bool = False
    """The bus sends this copy again after an unacknowledged delivery."""


class EventBus(Protocol):
    """What the engine needs from a bus."""

    def publish(self, envelopes: Iterable[Envelope]) -> None:
        """Accept envelopes for delivery."""
        ...

    def take(self) -> Envelope | None:
        """The next envelope to deliver, or None when nothing is pending."""
        ...

    def ack(self, envelope: Envelope) -> None:
        """The delivery of ``envelope`` is done (its effect is durable)."""
        ...

    def nack(self, envelope: Envelope) -> None:
        """The delivery failed: deliver ``envelope`` again later."""
        ...

    def pending(self) -> int:
        """How many envelopes are waiting."""
        ...


class InProcessBus:
    """An in-memory bus honouring a workflow's declared order.

    Fifo keeps one queue per (sender, receiver) channel; unordered picks any
    pending envelope. Under at-least-once delivery, ``duplicate_rate`` is the
    chance that a taken envelope is also kept for a later redelivery, at most
    ``max_duplicates`` times in all.
    """

    def __init__(self, wf: Workflow, *, rng: random.Random | None = None,
                 duplicate_rate: float = 0.0, max_duplicates: int = 1) -> None:
        self._fifo = wf.bus.order is Order.FIFO
        self._dups_ok = wf.bus.delivery is Delivery.AT_LEAST_ONCE
        self._rng = rng or random.Random(0)
        self._rate = duplicate_rate
        self._dups_left = max_duplicates
        self._queues: dict[tuple[str, str], deque[Envelope]] = {}
        self._bag: list[Envelope] = []
        self._in_flight: dict[int, Envelope] = {}

    def publish(self, envelopes: Iterable[Envelope]) -> None:
        for env in envelopes:
            if self._fifo:
                self._queues.setdefault((env.sender, env.receiver), deque()).append(env)
            else:
                self._bag.append(env)

    def take(self) -> Envelope | None:
        if self._fifo:
            ready = sorted(k for k, q in self._queues.items() if q)
            if not ready:
                return None
            q = self._queues[self._rng.choice(ready)]
            env = q[0]
            repeat = self._repeat()
            if repeat:
                q[0] = replace(env, redelivery=True)  # head again, next time
            else:
                q.popleft()
        else:
            if not self._bag:
                return None
            env = self._bag.pop(self._rng.randrange(len(self._bag)))
            if self._repeat():
                self._bag.append(replace(env, redelivery=True))
        self._in_flight[id(env)] = env
        return env

    def _repeat(self) -> bool:
        if self._dups_ok and self._dups_left > 0 and self._rng.random() < self._rate:
            self._dups_left -= 1
            return True
        return False

    def ack(self, envelope: Envelope) -> None:
        self._in_flight.pop(id(envelope), None)

    def nack(self, envelope: Envelope) -> None:
        self._in_flight.pop(id(envelope), None)
        self.publish([replace(envelope, redelivery=True)])

    def pending(self) -> int:
        return len(self._bag) + sum(len(q) for q in self._queues.values())

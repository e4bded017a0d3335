"""A cancellation that fails when the booking's outcome was unknown.

The booking timed out before the hotel saw it, so there is nothing to cancel;
the buggy hotel raises ``KeyError``, the correct one treats it as done.
"""

from __future__ import annotations

from collections.abc import Mapping

from runtime import StepContext
from saga_models import SagaBuilder
from sagaproof.testing import Binding

SAGA = (SagaBuilder("stay")
        .step("book_room", participant="hotel", action="book", compensation="cancel",
              timeout="5s", retry={"max_attempts": 1},
              # the tolerant hotel also records the cancel of a booking it
              # never saw, and refuses that booking if it arrives late
              empty_rollback=True, anti_suspension=True)
        .step("charge", participant="payments", action="charge",
              compensation="refund")
        .build())


class Hotel:
    """Bookings by saga; ``tolerant`` is the fix."""

    def __init__(self, *, tolerant: bool) -> None:
        self.bookings: dict[str, str] = {}
        self.cancelled: set[str] = set()
        self.tolerant = tolerant

    async def book(self, ctx: StepContext) -> dict[str, str]:
        if self.tolerant and ctx.idempotency_key in self.cancelled:
            return {"refused": ctx.idempotency_key}  # anti-suspension
        self.bookings.setdefault(ctx.saga_id, f"room-{len(self.bookings)}")
        return {"room": self.bookings[ctx.saga_id]}

    async def cancel(self, ctx: StepContext) -> None:
        if self.tolerant:
            self.bookings.pop(ctx.saga_id, None)
            self.cancelled.add(ctx.action_key)  # also an empty rollback
        else:
            del self.bookings[ctx.saga_id]


class Payments:
    def __init__(self) -> None:
        self.paid: set[str] = set()

    def charge(self, ctx: StepContext) -> None:
        self.paid.add(ctx.saga_id)

    def refund(self, ctx: StepContext) -> None:
        self.paid.discard(ctx.saga_id)


def effects(world: Mapping[str, object], sid: str) -> dict[str, int]:
    hotel, pay = world["hotel"], world["payments"]
    assert isinstance(hotel, Hotel) and isinstance(pay, Payments)
    return {"book_room": int(sid in hotel.bookings), "charge": int(sid in pay.paid)}


correct = Binding(participants=lambda: {"hotel": Hotel(tolerant=True),
                                        "payments": Payments()},
                  effects=effects,
    name="tests.testing.participants.cancel_unknown:correct")
buggy = Binding(participants=lambda: {"hotel": Hotel(tolerant=False),
                                      "payments": Payments()},
                effects=effects,
    name="tests.testing.participants.cancel_unknown:buggy")
EXPECT = "raised KeyError"

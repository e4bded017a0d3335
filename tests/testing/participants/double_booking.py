"""Seats booked per delivery instead of per idempotency key: a duplicated
command books two seats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from runtime import StepContext
from saga_models import SagaBuilder
from sagaproof.testing import Binding

SAGA = (SagaBuilder("flight")
        .step("reserve_seat", participant="flights", action="reserve",
              compensation="release")
        .step("charge", participant="payments", action="charge",
              compensation="refund")
        .build())


class Flights:
    """Seats by saga; ``dedupe`` is the fix."""

    def __init__(self, *, dedupe: bool) -> None:
        self.seats: Counter[str] = Counter()
        self.seen: set[str] = set()
        self.dedupe = dedupe

    async def reserve(self, ctx: StepContext) -> dict[str, int]:
        if not (self.dedupe and ctx.idempotency_key in self.seen):
            self.seen.add(ctx.idempotency_key)
            self.seats[ctx.saga_id] += 1
        return {"seats": self.seats[ctx.saga_id]}

    async def release(self, ctx: StepContext) -> None:
        self.seats[ctx.saga_id] = 0


class Payments:
    def __init__(self) -> None:
        self.paid: set[str] = set()

    def charge(self, ctx: StepContext) -> None:
        self.paid.add(ctx.saga_id)

    def refund(self, ctx: StepContext) -> None:
        self.paid.discard(ctx.saga_id)


def effects(world: Mapping[str, object], sid: str) -> dict[str, int]:
    fl, pay = world["flights"], world["payments"]
    assert isinstance(fl, Flights) and isinstance(pay, Payments)
    return {"reserve_seat": fl.seats[sid], "charge": int(sid in pay.paid)}


correct = Binding(participants=lambda: {"flights": Flights(dedupe=True),
                                        "payments": Payments()},
                  effects=effects,
    name="tests.testing.participants.double_booking:correct")
buggy = Binding(participants=lambda: {"flights": Flights(dedupe=False),
                                      "payments": Payments()},
                effects=effects,
    name="tests.testing.participants.double_booking:buggy")
EXPECT = "took effect twice"

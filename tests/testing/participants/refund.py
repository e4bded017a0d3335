"""A refund that is not idempotent: re-sent after a crash, it refunds twice.

The correct payment service remembers refunds by idempotency key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from runtime import StepContext
from saga_models import SagaBuilder
from sagaproof.testing import Binding

SAGA = (SagaBuilder("checkout")
        .step("charge", participant="payments", action="charge",
              compensation="refund")
        .step("ship", participant="shipping", action="book", compensation="cancel")
        .build())


class Payments:
    """Charges and refunds by saga; ``dedupe_refunds`` is the fix."""

    def __init__(self, *, dedupe_refunds: bool) -> None:
        self.charged: Counter[str] = Counter()
        self.refunded: Counter[str] = Counter()
        self.keys: set[str] = set()
        self.dedupe_refunds = dedupe_refunds

    async def charge(self, ctx: StepContext) -> dict[str, str]:
        if ctx.idempotency_key not in self.keys:
            self.keys.add(ctx.idempotency_key)
            self.charged[ctx.saga_id] += 1
        return {"payment": ctx.saga_id}

    async def refund(self, ctx: StepContext) -> None:
        if self.dedupe_refunds:
            if ctx.idempotency_key in self.keys:
                return
            self.keys.add(ctx.idempotency_key)
            if not self.charged[ctx.saga_id]:
                return  # nothing was charged: nothing to refund
        self.refunded[ctx.saga_id] += 1


class Shipping:
    """Idempotent bookings."""

    def __init__(self) -> None:
        self.booked: set[str] = set()

    def book(self, ctx: StepContext) -> None:
        self.booked.add(ctx.saga_id)

    def cancel(self, ctx: StepContext) -> None:
        self.booked.discard(ctx.saga_id)


def _world(dedupe: bool) -> dict[str, object]:
    return {"payments": Payments(dedupe_refunds=dedupe), "shipping": Shipping()}


def effects(world: Mapping[str, object], sid: str) -> dict[str, int]:
    pay = world["payments"]
    ship = world["shipping"]
    assert isinstance(pay, Payments) and isinstance(ship, Shipping)
    return {"charge": pay.charged[sid] - pay.refunded[sid],
            "ship": int(sid in ship.booked)}


def never_refund_more_than_charged(world: Mapping[str, object]) -> str | None:
    pay = world["payments"]
    assert isinstance(pay, Payments)
    for sid, n in pay.refunded.items():
        if n > pay.charged[sid]:
            return f"{sid} was charged {pay.charged[sid]}x and refunded {n}x"
    return None


correct = Binding(participants=lambda: _world(True), effects=effects,
                  invariants=(never_refund_more_than_charged,),
                  name="tests.testing.participants.refund:correct")
buggy = Binding(participants=lambda: _world(False), effects=effects,
                invariants=(never_refund_more_than_charged,),
                name="tests.testing.participants.refund:buggy")
EXPECT = "refunded"

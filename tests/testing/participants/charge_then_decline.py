"""A charge that debits before it validates: a declined payment has already
taken the money, but a failed step is never compensated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime import StepContext
from saga_models import SagaBuilder
from sagaproof.testing import Binding

SAGA = (SagaBuilder("order")
        .step("reserve", participant="stock", action="reserve", compensation="release")
        .step("charge", participant="payments", action="charge", compensation="refund",
              retry={"max_attempts": 1})
        .build())

LIMIT = 100


class Declined(Exception):
    """Over the card's limit."""


class Payments:
    """Debits by saga; ``validate_first`` is the fix."""

    def __init__(self, *, validate_first: bool) -> None:
        self.debits: dict[str, int] = {}
        self.validate_first = validate_first

    async def charge(self, ctx: StepContext) -> dict[str, Any]:
        amount = int(ctx.input.get("amount", 0))
        if self.validate_first and amount > LIMIT:
            raise Declined(f"amount {amount} over limit {LIMIT}")
        self.debits.setdefault(ctx.saga_id, amount)
        if amount > LIMIT:
            raise Declined(f"amount {amount} over limit {LIMIT}")
        return {"debited": amount}

    async def refund(self, ctx: StepContext) -> None:
        self.debits.pop(ctx.saga_id, None)


class Stock:
    def __init__(self) -> None:
        self.held: set[str] = set()

    def reserve(self, ctx: StepContext) -> None:
        self.held.add(ctx.saga_id)

    def release(self, ctx: StepContext) -> None:
        self.held.discard(ctx.saga_id)


def effects(world: Mapping[str, object], sid: str) -> dict[str, int]:
    pay, stock = world["payments"], world["stock"]
    assert isinstance(pay, Payments) and isinstance(stock, Stock)
    return {"charge": int(sid in pay.debits), "reserve": int(sid in stock.held)}


def amounts(k: int) -> dict[str, int]:
    """Instance 0 pays 40, instance 1 asks for more than the limit."""
    return {"amount": 40 if k % 2 == 0 else 400}


correct = Binding(participants=lambda: {"payments": Payments(validate_first=True),
                                        "stock": Stock()},
                  effects=effects, inputs=amounts,
                  name="tests.testing.participants.charge_then_decline:correct")
buggy = Binding(participants=lambda: {"payments": Payments(validate_first=False),
                                      "stock": Stock()},
                effects=effects, inputs=amounts,
                name="tests.testing.participants.charge_then_decline:buggy")
EXPECT = "took effect and was never compensated"

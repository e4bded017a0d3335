"""A cancellation keyed by customer instead of by saga: one customer's two
orders share a reservation record, so aborting one cancels the other's."""

from __future__ import annotations

from collections.abc import Mapping

from runtime import StepContext
from saga_models import SagaBuilder
from sagaproof.testing import Binding

SAGA = (SagaBuilder("table")
        .step("hold_table", participant="restaurant", action="hold",
              compensation="release")
        .step("deposit", participant="payments", action="charge",
              compensation="refund")
        .build())


class Restaurant:
    """Holds; ``by_customer`` is the bug (both orders are customer ada's)."""

    def __init__(self, *, by_customer: bool) -> None:
        self.holds: dict[str, set[str]] = {}
        self.by_customer = by_customer

    def _key(self, ctx: StepContext) -> str:
        return str(ctx.input["customer"]) if self.by_customer else ctx.saga_id

    async def hold(self, ctx: StepContext) -> None:
        self.holds.setdefault(self._key(ctx), set()).add(ctx.saga_id)

    async def release(self, ctx: StepContext) -> None:
        self.holds.pop(self._key(ctx), None)


class Payments:
    def __init__(self) -> None:
        self.paid: set[str] = set()

    def charge(self, ctx: StepContext) -> None:
        self.paid.add(ctx.saga_id)

    def refund(self, ctx: StepContext) -> None:
        self.paid.discard(ctx.saga_id)


def effects(world: Mapping[str, object], sid: str) -> dict[str, int]:
    rest, pay = world["restaurant"], world["payments"]
    assert isinstance(rest, Restaurant) and isinstance(pay, Payments)
    held = any(sid in sids for sids in rest.holds.values())
    return {"hold_table": int(held), "deposit": int(sid in pay.paid)}


def inputs(k: int) -> dict[str, object]:
    return {"customer": "ada", "order": k}


correct = Binding(participants=lambda: {"restaurant": Restaurant(by_customer=False),
                                        "payments": Payments()},
                  effects=effects, inputs=inputs,
                  name="tests.testing.participants.shared_key:correct")
buggy = Binding(participants=lambda: {"restaurant": Restaurant(by_customer=True),
                                      "payments": Payments()},
                effects=effects, inputs=inputs,
                name="tests.testing.participants.shared_key:buggy")
EXPECT = "took effect never"

"""A refund handler that assumes the charge it undoes came first.

The customer cancels while the charge is still on the (unordered) bus. The
definition handles both orders: a cancel before the charge voids the payment
and the late charge is ignored. The buggy refund handler looks the charge up
and raises ``KeyError`` when it is not there yet; the correct one has nothing
to refund then.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from runtime.workflow import EventContext
from saga_models import loads
from sagaproof.testing import (
    DeliverEvent,
    StartWorkflow,
    WorkflowBinding,
    WorkflowSchedule,
)

WORKFLOW = loads("""\
workflow: cancel_race
bus: {delivery: exactly_once, order: unordered}
start: [charge, cancel]
services:
  payments:
    initial: IDLE
    final: [REFUNDED, VOIDED]
    transitions:
      - {from: IDLE, on: charge, to: CHARGED, add: {charged: 1}}
      - {from: CHARGED, on: cancel, to: REFUNDED, add: {charged: -1},
         handler: refund}
      - {from: IDLE, on: cancel, to: VOIDED, handler: refund}
    ignore: [charge]  # a charge after the cancel is declined
counters: {charged: {initial: 0, cap: 1}}
invariants:
  - {name: cancelled_payments_keep_nothing,
     expr: "payments.state not in ('REFUNDED', 'VOIDED') or charged == 0"}
outcomes:
  - {payments: REFUNDED}
  - {payments: VOIDED}
""")


class Payments:
    """Charges by workflow; ``tolerant`` is the fix."""

    def __init__(self, *, tolerant: bool) -> None:
        self.held: Counter[str] = Counter()
        self.tolerant = tolerant

    def charge(self, ctx: EventContext) -> None:
        self.held[ctx.workflow_id] = 1  # keyed by order: idempotent

    def refund(self, ctx: EventContext) -> None:
        if self.tolerant and not self.held[ctx.workflow_id]:
            return  # cancelled before the charge arrived: nothing to refund
        amount = self.held.pop(ctx.workflow_id)
        assert amount == 1


def _world(tolerant: bool) -> dict[str, Any]:
    return {"payments": Payments(tolerant=tolerant)}


def effects(world: dict[str, Any], wid: str) -> dict[str, int]:
    return {"charged": world["payments"].held[wid]}


correct = WorkflowBinding(handlers=lambda: _world(True), effects=effects,
                          name="tests.testing.handlers.refund_first:correct")
buggy = WorkflowBinding(handlers=lambda: _world(False), effects=effects,
                        name="tests.testing.handlers.refund_first:buggy")
EXPECT = "handler payments.refund on cancel"
SCHEDULE = WorkflowSchedule(ops=(
    StartWorkflow(),
    DeliverEvent(instance=0, event="cancel", receiver="payments", number=1,
                 out_of_order=True),
))

"""A payment handler that captures a payment arriving after the deadline.

The order waits 15 minutes for the payment; when the timer fires first the
order expires, and a payment that still arrives is refunded. Both arrivals
are handled by ``take_payment``. The buggy handler captures the money
whatever the order's state; the correct one looks at ``ctx.state`` and sends
a late payment back. Only a schedule that lets the clock run out before the
payment is delivered shows it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from runtime.workflow import EventContext
from saga_models import loads
from sagaproof.testing import (
    AdvanceClock,
    DeliverEvent,
    StartWorkflow,
    WorkflowBinding,
    WorkflowSchedule,
)

WORKFLOW = loads("""\
workflow: pay_deadline
bus: {delivery: exactly_once, order: unordered}
start: [order_created]
services:
  orders:
    initial: NEW
    final: [PAID, REFUNDED]
    transitions:
      - {from: NEW, on: order_created, to: AWAITING, emit: [invoice]}
      - {from: AWAITING, on: payment, to: PAID, add: {captured: 1},
         handler: take_payment}
      - {from: AWAITING, after: 15m, to: EXPIRED}
      - {from: EXPIRED, on: payment, to: REFUNDED, handler: take_payment}
  customer:
    initial: IDLE
    final: [DONE]
    transitions:
      - {from: IDLE, on: invoice, to: DONE, emit: [payment]}
counters: {captured: {initial: 0, cap: 2}}
invariants:
  - {name: refunded_orders_keep_no_money,
     expr: "orders.state != 'REFUNDED' or captured == 0"}
outcomes:
  - {orders: PAID, customer: DONE}
  - {orders: REFUNDED, customer: DONE}
""")


class Till:
    """Money held by order; ``checks_state`` is the fix."""

    def __init__(self, *, checks_state: bool) -> None:
        self.held: Counter[str] = Counter()
        self.checks_state = checks_state

    def take_payment(self, ctx: EventContext) -> None:
        if self.checks_state and ctx.state == "EXPIRED":
            return  # too late: the payment goes back to the customer
        self.held[ctx.workflow_id] = 1  # keyed by order: idempotent


def _world(checks_state: bool) -> dict[str, Any]:
    return {"orders": Till(checks_state=checks_state)}


def effects(world: dict[str, Any], wid: str) -> dict[str, int]:
    return {"captured": world["orders"].held[wid]}


correct = WorkflowBinding(handlers=lambda: _world(True), effects=effects,
                          name="tests.testing.handlers.late_payment:correct")
buggy = WorkflowBinding(handlers=lambda: _world(False), effects=effects,
                        name="tests.testing.handlers.late_payment:buggy")
EXPECT = "invariant 'refunded_orders_keep_no_money' is broken"
SCHEDULE = WorkflowSchedule(ops=(
    StartWorkflow(),
    DeliverEvent(instance=0, event="order_created", receiver="orders", number=0),
    AdvanceClock(),
))

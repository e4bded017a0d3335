"""A charge handler that is not idempotent, on an at-least-once bus whose
payment service does not de-duplicate its inbox.

The definition is right: a repeated ``charge`` in ``CHARGED`` is declared
idempotent (no state or counter change), so the model counts one charge. The
buggy handler charges the card on every call, so a redelivered ``charge``
(a lost acknowledgement, or a worker that died before committing) charges the
customer twice. The correct one remembers the event ids it has charged for.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from runtime.workflow import EventContext
from saga_models import loads
from sagaproof.testing import (
    DeliverEvent,
    EventFault,
    StartWorkflow,
    WorkflowBinding,
    WorkflowSchedule,
)

SOURCE = """\
workflow: pay_once
bus: {delivery: at_least_once, order: unordered}
start: [order_created]
services:
  orders:
    initial: NEW
    final: [PAID]
    transitions:
      - {from: NEW, on: order_created, to: PAYING, emit: [charge]}
      - {from: PAYING, on: charged, to: PAID}
    ignore: [order_created, charged]
  payments:
    initial: IDLE
    transitions:
      - {from: IDLE, on: charge, to: CHARGED, emit: [charged], add: {charged: 1}}
      - {from: CHARGED, on: charge, to: CHARGED, idempotent: true}
counters: {charged: {initial: 0, cap: 2}}
invariants:
  - {name: charged_at_most_once, expr: "charged <= 1"}
outcomes:
  - {orders: PAID, payments: CHARGED}
"""
WORKFLOW = loads(SOURCE)


class Card:
    """The payment provider's ledger; ``dedupe`` is the fix."""

    def __init__(self, *, dedupe: bool) -> None:
        self.charges: Counter[str] = Counter()
        self.seen: set[str] = set()
        self.dedupe = dedupe

    def charge(self, ctx: EventContext) -> None:
        if self.dedupe:
            if ctx.event_id in self.seen:
                return
            assert ctx.event_id is not None
            self.seen.add(ctx.event_id)
        self.charges[ctx.workflow_id] += 1


def _world(dedupe: bool) -> dict[str, Any]:
    return {"payments": Card(dedupe=dedupe)}


def effects(world: dict[str, Any], wid: str) -> dict[str, int]:
    return {"charged": world["payments"].charges[wid]}


def never_charged_twice(world: dict[str, Any]) -> str | None:
    for wid, n in world["payments"].charges.items():
        if n > 1:
            return f"{wid} was charged {n}x"
    return None


correct = WorkflowBinding(handlers=lambda: _world(True), effects=effects,
                          invariants=(never_charged_twice,),
                          name="tests.testing.handlers.double_charge:correct")
buggy = WorkflowBinding(handlers=lambda: _world(False), effects=effects,
                        invariants=(never_charged_twice,),
                        name="tests.testing.handlers.double_charge:buggy")
EXPECT = "charged 2x"
SCHEDULE = WorkflowSchedule(ops=(
    StartWorkflow(),
    DeliverEvent(instance=0, event="order_created", receiver="orders", number=0),
    DeliverEvent(instance=0, event="charge", receiver="payments", number=1,
                 fault=EventFault.DUPLICATE),
))
"""A lost acknowledgement: the bus delivers ``charge`` again."""
CRASH_SCHEDULE = WorkflowSchedule(ops=(
    StartWorkflow(),
    DeliverEvent(instance=0, event="order_created", receiver="orders", number=0),
    DeliverEvent(instance=0, event="charge", receiver="payments", number=1,
                 fault=EventFault.CRASH),
))
"""The worker dies after the charge, before committing it."""

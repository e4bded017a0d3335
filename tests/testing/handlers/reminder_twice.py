"""A timer handler that is not idempotent: the worker dies after the
reminder e-mail went out and before the timer step was committed, the
recovered worker fires the (still due) timer again, and the customer gets
two reminders. The correct handler remembers which reminders it has sent,
keyed by instance and state (a timer has no event id)."""

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
workflow: cart_reminder
bus: {delivery: exactly_once, order: unordered}
start: [cart_abandoned]
services:
  mailer:
    initial: IDLE
    final: [REMINDED]
    transitions:
      - {from: IDLE, on: cart_abandoned, to: WAITING}
      - {from: WAITING, after: 1h, to: REMINDED, add: {reminders: 1},
         handler: send_reminder}
counters: {reminders: {initial: 0, cap: 2}}
invariants:
  - {name: one_reminder, expr: "reminders <= 1"}
outcomes:
  - {mailer: REMINDED}
""")


class Mailer:
    """Sent mail by instance; ``dedupe`` is the fix."""

    def __init__(self, *, dedupe: bool) -> None:
        self.sent: Counter[str] = Counter()
        self.keys: set[tuple[str, str]] = set()
        self.dedupe = dedupe

    def send_reminder(self, ctx: EventContext) -> None:
        key = (ctx.workflow_id, ctx.state)
        if self.dedupe and key in self.keys:
            return
        self.keys.add(key)
        self.sent[ctx.workflow_id] += 1


def _world(dedupe: bool) -> dict[str, Any]:
    return {"mailer": Mailer(dedupe=dedupe)}


def effects(world: dict[str, Any], wid: str) -> dict[str, int]:
    return {"reminders": world["mailer"].sent[wid]}


correct = WorkflowBinding(handlers=lambda: _world(True), effects=effects,
                          name="tests.testing.handlers.reminder_twice:correct")
buggy = WorkflowBinding(handlers=lambda: _world(False), effects=effects,
                        name="tests.testing.handlers.reminder_twice:buggy")
EXPECT = "invariant 'one_reminder' is broken (reminders=2)"
SCHEDULE = WorkflowSchedule(ops=(
    StartWorkflow(),
    DeliverEvent(instance=0, event="cart_abandoned", receiver="mailer",
                 number=0),
    AdvanceClock(crash=True),
))

"""A booking handler that de-duplicates by the event's number alone.

Event numbers restart in every workflow instance (``room_booking-0:0`` and
``room_booking-1:0``), so the hotel takes the second trip's booking for a
repeat of the first one's and books nothing, while the workflow counts a room
and confirms the trip. The correct handler keys by the whole event id.
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
workflow: room_booking
bus: {delivery: exactly_once, order: fifo}
start: [book]
services:
  hotel:
    initial: FREE
    transitions:
      - {from: FREE, on: book, to: BOOKED, emit: [booked], add: {rooms: 1}}
  trips:
    initial: PLANNING
    final: [CONFIRMED]
    transitions:
      - {from: PLANNING, on: booked, to: CONFIRMED}
counters: {rooms: {initial: 0, cap: 2}}
outcomes:
  - {trips: CONFIRMED, hotel: BOOKED}
""")


class Hotel:
    """Rooms by trip; ``whole_id`` is the fix."""

    def __init__(self, *, whole_id: bool) -> None:
        self.rooms: Counter[str] = Counter()
        self.seen: set[str] = set()
        self.whole_id = whole_id

    def book(self, ctx: EventContext) -> None:
        assert ctx.event_id is not None
        key = ctx.event_id if self.whole_id else ctx.event_id.rsplit(":", 1)[1]
        if key in self.seen:
            return  # a redelivery: already booked
        self.seen.add(key)
        self.rooms[ctx.workflow_id] += 1


def _world(whole_id: bool) -> dict[str, Any]:
    return {"hotel": Hotel(whole_id=whole_id)}


def effects(world: dict[str, Any], wid: str) -> dict[str, int]:
    return {"rooms": world["hotel"].rooms[wid]}


correct = WorkflowBinding(handlers=lambda: _world(True), effects=effects,
                          name="tests.testing.handlers.shared_key:correct")
buggy = WorkflowBinding(handlers=lambda: _world(False), effects=effects,
                        name="tests.testing.handlers.shared_key:buggy")
EXPECT = "records say rooms=0 but the workflow counted rooms=1"
SCHEDULE = WorkflowSchedule(ops=(
    StartWorkflow(),
    StartWorkflow(),
    DeliverEvent(instance=0, event="book", receiver="hotel", number=0),
    DeliverEvent(instance=1, event="book", receiver="hotel", number=0),
))

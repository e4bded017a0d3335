"""Deduplication keyed on the attempt number: a retry after a timed-out
attempt (which did take effect) books a second room."""

from __future__ import annotations

from collections.abc import Mapping

from runtime import StepContext
from saga_models import SagaBuilder
from sagaproof.testing import Binding

SAGA = (SagaBuilder("rooms")
        .step("reserve_room", participant="rooms", action="reserve",
              compensation="release", timeout="2s",
              retry={"max_attempts": 3, "initial_interval": "1s"},
              empty_rollback=True, anti_suspension=True)
        .build())


class Rooms:
    """Reservations by dedup key; ``by_attempt`` is the bug."""

    def __init__(self, *, by_attempt: bool) -> None:
        self.reservations: dict[str, str] = {}
        self.released: set[str] = set()
        self.by_attempt = by_attempt

    def reserve(self, ctx: StepContext) -> dict[str, str]:
        if ctx.idempotency_key in self.released:
            return {"refused": ctx.idempotency_key}  # anti-suspension
        key = ctx.idempotency_key
        if self.by_attempt:
            key = f"{key}#{ctx.attempt}"
        self.reservations.setdefault(key, ctx.saga_id)
        return {"key": key}

    def release(self, ctx: StepContext) -> None:
        self.released.add(ctx.action_key)  # also an empty rollback
        for key in [k for k, sid in self.reservations.items() if sid == ctx.saga_id]:
            del self.reservations[key]


def effects(world: Mapping[str, object], sid: str) -> dict[str, int]:
    rooms = world["rooms"]
    assert isinstance(rooms, Rooms)
    return {"reserve_room": sum(1 for s in rooms.reservations.values() if s == sid)}


correct = Binding(participants=lambda: {"rooms": Rooms(by_attempt=False)},
                  effects=effects,
    name="tests.testing.participants.key_per_attempt:correct")
buggy = Binding(participants=lambda: {"rooms": Rooms(by_attempt=True)},
                effects=effects,
    name="tests.testing.participants.key_per_attempt:buggy")
EXPECT = "took effect twice"

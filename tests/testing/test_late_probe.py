"""The generated stateful tests deliver a compensated step's action late to
the real participant when the step declares ``anti_suspension``: a participant
that claims the countermeasure and lacks it fails; one that has it passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from saga_models import load
from sagaproof.testing import Binding, check_participants

FIXED = Path(__file__).resolve().parents[2] / "examples" / "late_reservation_fixed.yaml"


class Hotel:
    """Rooms held per action key; ``guarded`` adds empty rollback and
    anti-suspension (a cancelled key is recorded and refused)."""

    def __init__(self, *, guarded: bool) -> None:
        self.guarded = guarded
        self.held: dict[str, set[str]] = {}
        self.cancelled: set[str] = set()

    def reserve(self, ctx: Any) -> dict[str, str]:
        if self.guarded and ctx.idempotency_key in self.cancelled:
            return {"refused": ctx.idempotency_key}
        self.held.setdefault(ctx.saga_id, set()).add(ctx.idempotency_key)
        return {"room": ctx.idempotency_key}

    def cancel(self, ctx: Any) -> None:
        self.held.pop(ctx.saga_id, None)
        self.cancelled.add(ctx.action_key)


def _binding(*, guarded: bool) -> Binding:
    box: dict[str, Hotel] = {}

    def world() -> dict[str, Any]:
        box["hotel"] = Hotel(guarded=guarded)
        return {"hotel": box["hotel"],
                "payments": {"charge": lambda ctx: {"paid": True}}}

    def effects(w: Any, sid: str) -> dict[str, int]:
        # only the hotel keeps records; the model's view stands for the rest
        return {"reserve_room": len(box["hotel"].held.get(sid, ()))}

    return Binding(participants=world, effects=effects)


_SETTINGS = settings(max_examples=50, database=None, deadline=None,
                     derandomize=True,
                     suppress_health_check=list(HealthCheck))


def test_a_participant_without_the_countermeasures_fails() -> None:
    with pytest.raises(AssertionError, match="delivered late"):
        check_participants(load(FIXED), _binding(guarded=False),
                           settings=_SETTINGS)


def test_a_participant_with_the_countermeasures_passes() -> None:
    check_participants(load(FIXED), _binding(guarded=True), settings=_SETTINGS)

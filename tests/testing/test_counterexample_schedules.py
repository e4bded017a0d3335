"""A model counterexample becomes a fault schedule that the runtime follows
exactly, effects included: a crash that re-sends a non-idempotent command
shows up as the double effect in the participants' own records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saga_models import FaultModel, load
from sagaproof.testing import (
    Binding,
    Crash,
    Deliver,
    Outcome,
    RecordingParticipants,
    run_schedule,
    schedule_from_counterexample,
)
from verifier import Verdict, check

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CRASH_ONLY = FaultModel(fail=False, timeout=False, comp_fail=False, crashes=1,
                        duplicates=0)


def _binding(saga: Any, worlds: list[RecordingParticipants]) -> Binding:
    def make() -> RecordingParticipants:
        worlds.append(RecordingParticipants(saga))
        return worlds[-1]

    return Binding(participants=make, effects=lambda w, sid: w.effects(sid))


def test_a_crash_double_effect_replays_as_a_double_effect() -> None:
    saga = load(EXAMPLES / "payment_double_charge.yaml")
    result = check(saga, faults=CRASH_ONLY)["eventual_consistency"]
    assert result.verdict is Verdict.VIOLATED and result.counterexample
    events = [s.event or {} for s in result.counterexample.steps[1:]]
    assert {"kind": "reply", "step": "charge", "outcome": "ok",
            "effect_delta": 2} in events  # the model's double effect
    assert any(e.get("kind") == "crash" for e in events)

    schedule = schedule_from_counterexample(result.counterexample)
    assert Deliver(saga=0, step="charge",
                   outcome=Outcome.CRASH_AFTER_EFFECT) in schedule.ops
    assert Crash() not in schedule.ops  # the crash is that delivery's

    worlds: list[RecordingParticipants] = []
    report = run_schedule(saga, _binding(saga, worlds), schedule,
                          faults=CRASH_ONLY, settle=False)
    (world,) = worlds
    sid = "payment_double_charge-0"
    assert world.effects(sid) == {"reserve_stock": 1, "charge": 2, "ship": 1}
    assert list(report.outcomes.values()) == ["COMPLETED"]
    assert any("eventual_consistency" in v and "twice" in v
               for v in report.violations), report.text()


def test_a_crash_without_a_double_effect_stays_a_plain_crash() -> None:
    # With the charge idempotent the same crash re-sends under the same key:
    # one effect, so the schedule keeps a plain crash and the replay holds.
    saga = load(EXAMPLES / "trip_booking.saga.yaml")
    from verifier import Counterexample, TraceStep

    first = saga.steps[0].name
    steps = [TraceStep(state={}, action="init", event=None)]
    for ev in ({"kind": "dispatch", "step": first, "outcome": None,
                "effect_delta": 0},
               {"kind": "crash", "step": None, "outcome": None, "effect_delta": 0},
               {"kind": "recover", "step": None, "outcome": None,
                "effect_delta": 0},
               {"kind": "reply", "step": first, "outcome": "ok",
                "effect_delta": 1}):
        steps.append(TraceStep(state={}, action=str(ev["kind"]), event=ev))
    schedule = schedule_from_counterexample(Counterexample(steps=tuple(steps)))
    assert schedule.ops[1:] == (Crash(), Deliver(saga=0, step=first))
    worlds: list[RecordingParticipants] = []
    report = run_schedule(saga, _binding(saga, worlds), schedule)
    assert report.ok, report.text()
    assert worlds[0].effects(f"{saga.name}-0")[first] == 1

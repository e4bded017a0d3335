"""Generated stateful tests find seeded bugs in participant code and pass on
the correct version of the same participants.

The fast tier replays one known bad schedule per pair; the slow tier lets
Hypothesis search and shrink (``-m slow``).

Every saga here verifies (its definition is right), so whatever the generated
tests report is the participants' fault.
"""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from sagaproof.testing import (
    Deliver,
    FaultSchedule,
    Outcome,
    ScheduleFailure,
    Settle,
    Start,
    check_participants,
    run_schedule,
)
from tests.testing.participants import (
    cancel_unknown,
    charge_then_decline,
    double_booking,
    key_per_attempt,
    refund,
    shared_key,
)
from verifier import Verdict, check

PAIRS = [refund, cancel_unknown, double_booking, key_per_attempt,
         charge_then_decline, shared_key]
IDS = [m.__name__.rsplit(".", 1)[-1] for m in PAIRS]

SETTINGS = settings(max_examples=400, stateful_step_count=25, derandomize=True,
                    database=None, deadline=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_the_definition_itself_verifies(pair: ModuleType) -> None:
    assert check(pair.SAGA).verdict is Verdict.HOLDS


Out = Outcome
SCHEDULES = {
    "refund": (Start(), Deliver(saga=0, step="charge"),
               Deliver(saga=0, step="ship", outcome=Out.FAIL),
               Deliver(saga=0, step="charge", kind="compensation",
                       outcome=Out.DUPLICATE)),
    "cancel_unknown": (Start(), Deliver(saga=0, step="book_room", outcome=Out.UNKNOWN),
                       Deliver(saga=0, step="book_room", kind="compensation")),
    "double_booking": (Start(), Deliver(saga=0, step="reserve_seat",
                                        outcome=Out.DUPLICATE), Settle()),
    "key_per_attempt": (Start(), Deliver(saga=0, step="reserve_room",
                                         outcome=Out.UNKNOWN_AFTER_EFFECT), Settle()),
    "charge_then_decline": (Start(), Start(), Settle()),
    "shared_key": (Start(), Start(), Deliver(saga=0, step="hold_table"),
                   Deliver(saga=0, step="deposit"), Deliver(saga=1, step="hold_table"),
                   Deliver(saga=1, step="deposit", outcome=Out.FAIL), Settle()),
}


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_the_bug_shows_on_its_schedule_and_the_fix_survives_it(
        pair: ModuleType) -> None:
    schedule = FaultSchedule(ops=SCHEDULES[pair.__name__.rsplit(".", 1)[-1]])
    buggy = run_schedule(pair.SAGA, pair.buggy, schedule)
    assert not buggy.ok and pair.EXPECT in buggy.text()
    correct = run_schedule(pair.SAGA, pair.correct, schedule)
    assert correct.ok, correct.text()


@pytest.mark.slow
@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_correct_participants_pass(pair: ModuleType) -> None:
    check_participants(pair.SAGA, pair.correct, settings=SETTINGS)


@pytest.mark.slow
@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_seeded_bug_is_found(pair: ModuleType) -> None:
    with pytest.raises(ScheduleFailure) as info:
        check_participants(pair.SAGA, pair.buggy, settings=SETTINGS)
    text = str(info.value)
    assert pair.EXPECT in text
    assert "fault schedule" in text and "model trace of" in text


@pytest.mark.slow
def test_the_printed_script_replays_the_shrunk_failure() -> None:
    with pytest.raises(ScheduleFailure) as info:
        check_participants(refund.SAGA, refund.buggy, settings=SETTINGS,
                           definition_ref="python:tests.testing.participants."
                           "refund:SAGA")
    text = str(info.value)
    script = text.split("replay it with:\n", 1)[1]
    script = "\n".join(line.removeprefix("    ") for line in script.splitlines())
    out: list[str] = []
    exec(compile(script, "<replay>", "exec"), {"print": out.append})
    assert out and out[0].startswith("property violated:")
    assert "refunded 2x" in out[0]

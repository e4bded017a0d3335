"""Late delivery (knob ``late``): a command whose attempt timed out may reach
its participant after the compensation; without the countermeasures the effect
stays, with them it is refused. Both backends, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from saga_models import FaultModel, load
from saga_models import semantics as sem
from verifier import Verdict, check

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BROKEN = EXAMPLES / "late_reservation.yaml"
FIXED = EXAMPLES / "late_reservation_fixed.yaml"


@pytest.mark.parametrize("backend", ["explicit", "smt"])
def test_late_delivery_after_the_compensation_is_violated(backend: str) -> None:
    result = check(load(BROKEN), backend=backend)
    ec = result["eventual_consistency"]
    assert ec.verdict is Verdict.VIOLATED
    assert ec.counterexample is not None
    events = [st.event for st in ec.counterexample.steps[1:]]
    kinds = [e["kind"] for e in events if e is not None]
    # the late delivery is its own line, after the compensation's ok reply
    assert kinds[-1] == "late_delivery" and events[-1] is not None
    assert events[-1]["effect_delta"] == 1
    assert "comp_reply" in kinds[:-1]
    last = ec.counterexample.steps[-1]
    assert "delivered late (took effect)" in last.action
    assert last.state["steps"]["reserve_room"]["effect"] == 1  # type: ignore[index]
    assert last.state["phase"] == "COMPENSATED"


@pytest.mark.parametrize("backend", ["explicit", "smt"])
def test_the_countermeasures_make_it_hold(backend: str) -> None:
    result = check(load(FIXED), backend=backend)
    assert all(r.verdict is Verdict.HOLDS for r in result.results), result


def test_without_the_late_knob_the_broken_example_holds() -> None:
    faults = FaultModel.parse("fail,timeout,comp_fail,crash=1,duplicate=1")
    assert not faults.late
    result = check(load(BROKEN), faults=faults)
    assert all(r.verdict is Verdict.HOLDS for r in result.results)


def test_anti_suspension_refuses_only_after_the_compensation() -> None:
    saga = load(FIXED)
    s = sem.initial_state(saga)
    for e in (sem.Event(sem.EventKind.DISPATCH, 0),
              sem.Event(sem.EventKind.REPLY, 0, sem.Outcome.UNKNOWN, 0)):
        s = sem.apply(saga, s, e)
    assert sem.view(saga, s).steps[0].late == 1
    # before the compensation the late copy takes effect (and is then undone)
    late = [e for e in sem.enabled(saga, s) if e.kind is sem.EventKind.LATE]
    assert late == [sem.Event(sem.EventKind.LATE, 0, None, 1)]
    for e in (sem.Event(sem.EventKind.COMP_DISPATCH, 0),
              sem.Event(sem.EventKind.COMP_REPLY, 0, sem.Outcome.OK)):
        s = sem.apply(saga, s, e)
    assert sem.phase(s) is sem.Phase.COMPENSATED
    late = [e for e in sem.enabled(saga, s) if e.kind is sem.EventKind.LATE]
    assert late == [sem.Event(sem.EventKind.LATE, 0, None, 0)]  # refused
    end = sem.apply(saga, s, late[0])
    assert sem.view(saga, end).steps[0].effect == 0
    assert sem.enabled(saga, end) == []
    # with the knob off nothing is delivered late
    assert sem.enabled(saga, s, FaultModel.parse("fail,timeout")) == []


def test_a_definite_reply_clears_the_late_flag_of_an_idempotent_step() -> None:
    saga = load(BROKEN)
    s = sem.initial_state(saga)
    for e in (sem.Event(sem.EventKind.DISPATCH, 0),
              sem.Event(sem.EventKind.REPLY, 0, sem.Outcome.UNKNOWN, 1)):
        s = sem.apply(saga, s, e)
    # it took effect: a later copy with the same key changes nothing
    assert sem.view(saga, s).steps[0].late == 0

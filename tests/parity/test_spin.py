"""SPIN cross-check: the Promela export against sagaproof's explicit checker.

The export (saga_models/exporters/_promela.py) must have exactly sagaproof's
reachable states (pan's stored-state count equals the checker's state count,
and pan's transitions equal the checker's plus one) and the same verdicts on
the properties a safety run of SPIN decides (docs/spin.md). The fast tier pins
the text of one export and compares a handful of definitions; the slow tier
compares 200 generated definitions with every fault knob.

Tests that run SPIN are skipped when ``spin`` or ``gcc`` is missing, except in
CI (``CI=true``), where a missing SPIN fails them: scripts/install_system.sh
installs it there.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_models import CircuitBreaker, FaultModel, Saga, SagaBuilder, load
from saga_models.exporters import ExportError, _promela, to_promela
from saga_models.semantics import EventKind
from saga_models.strategies import fault_models, sagas
from sagaproof.cli import main
from verifier import Verdict
from verifier.spin import (
    SPIN_PROPERTIES,
    PanOptions,
    compare,
    parse_pan,
    run_promela,
    spin_available,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "spin"
# Parity runs compile many small models: -O0 compiles fastest, and a small hash
# table is plenty for a few thousand states.
FAST = PanOptions(optimise="-O0", hash_bits=18, max_depth=200_000)


@pytest.fixture
def spin() -> None:
    if spin_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("spin and gcc are required in CI (scripts/install_system.sh)")
    pytest.skip("spin or gcc is not installed")


def _small_saga() -> Saga:
    return (SagaBuilder("pay")
            .step("reserve", participant="stock", action="reserve",
                  compensation="release", timeout=1.0)
            .step("charge", participant="bank", action="charge",
                  compensation="refund", idempotent=False, depends_on=["reserve"],
                  retry={"max_attempts": 2})
            .compensation_policy(max_attempts=2)
            .build())


@st.composite
def _sagas(draw: st.DrawFn, max_steps: int) -> Saga:
    """The shared generator (it draws the late countermeasures per step), plus
    what it never draws: declared error classes (so the fatal outcome),
    circuit breakers (an open one fails attempts and compensations under the
    timeout knob too, for every step of its participant, so steps share
    participants here) and ``read_only`` steps (judged by no effect
    property)."""
    saga = draw(sagas(max_steps=max_steps, total_timeouts=True))
    n = len(saga.steps)
    typed, breaker, read = (
        draw(st.lists(st.booleans(), min_size=n, max_size=n)) for _ in range(3))
    shared = [f"p{draw(st.integers(0, i))}" for i in range(n)]
    steps = tuple(
        dataclasses.replace(
            s,
            retry=(dataclasses.replace(s.retry, retryable_errors=("Transient",))
                   if t else s.retry),
            participant=p,
            breaker=CircuitBreaker() if b else None,
            read_only=r and s.compensation is None)
        for s, t, b, r, p in zip(saga.steps, typed, breaker, read, shared,
                                 strict=True))
    return dataclasses.replace(saga, steps=steps)


# --- fast: the text, the refusals ----------------------------------------------
def test_golden_promela() -> None:
    """The export of one small saga, pinned. Regenerate with
    SAGAPROOF_UPDATE_GOLDEN=1 after an intended change, and read the diff."""
    text = to_promela(_small_saga(),
                      faults=FaultModel.parse("fail,timeout,comp_fail,late,crash=1,"
                                              "duplicate=1"))
    golden = GOLDEN / "pay.pml"
    if os.environ.get("SAGAPROOF_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


def test_one_command_per_event_kind_and_knob() -> None:
    """Knobs that are off leave no command behind: the table follows the
    fault model, as ``semantics.enabled`` does."""
    saga = _small_saga()
    table = _promela.commands(saga, faults=FaultModel.parse("none"))
    off = [c.name for c in table]
    on = [c.name for c in _promela.commands(saga, faults=FaultModel())]
    assert "crash" not in off and "recover" not in off
    assert "duplicate charge" not in off
    assert not any("failed" in n or n.startswith("late") for n in off)
    # Without the timeout knob, an unknown reply is only an abort cutting off
    # a timed sibling (semantics._cut_off).
    assert all("phase == P_COMPENSATING" in c.guard
               for c in table if "unknown" in c.name)
    assert {"crash", "recover", "duplicate charge", "reply reserve unknown +1",
            "compensation of charge failed", "late reserve +1"} <= set(on)


def test_refuses_compensation_chains(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", "--format", "promela",
                 "examples/imported/order_saga.asl.json"])
    err = capsys.readouterr().err
    assert code == 2
    assert "SAGA180" in err and "help:" in err and "order_saga.asl.json:" in err


def test_refuses_a_bound_too_large(capsys: pytest.CaptureFixture[str]) -> None:
    # Above the exporter's bound (200), within the semantics' (255): SAGA182.
    code = main(["export", "--format", "promela", "--faults", "duplicate=230",
                 "examples/trip_booking.saga.yaml"])
    err = capsys.readouterr().err
    assert code == 2 and "SAGA182" in err and "duplicate" in err
    # Beyond what a state field holds: the fault model itself refuses it.
    code = main(["export", "--format", "promela", "--faults", "duplicate=300",
                 "examples/trip_booking.saga.yaml"])
    err = capsys.readouterr().err
    assert code == 2 and "SAGA010" in err and "help:" in err


def test_refuses_an_event_kind_without_a_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An event kind of the semantics without a generator (as ``late`` was
    before the exporter learnt it) is refused, never silently dropped."""
    table = dict(_promela._GENERATORS)
    del table[EventKind.LATE]
    monkeypatch.setattr(_promela, "_GENERATORS", table)
    with pytest.raises(ExportError) as info:
        to_promela(_small_saga())
    assert [d.code for d in info.value.diagnostics] == ["SAGA181"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _LaterFaults(FaultModel):
    reorder: int = 1
    """A knob the exporter does not know (a future one)."""


def test_refuses_a_fault_knob_it_does_not_encode() -> None:
    with pytest.raises(ExportError) as info:
        to_promela(_small_saga(), faults=_LaterFaults())
    (d,) = info.value.diagnostics
    assert d.code == "SAGA181" and "reorder=1" in d.message
    assert to_promela(_small_saga(), faults=_LaterFaults(reorder=0))


def test_refuses_a_state_layout_it_does_not_know(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A per-step field the variables do not mirror would make every count
    wrong: refused, naming the layout."""
    monkeypatch.setattr(_promela, "WIDTH", _promela.LAYOUT[1] + 1)
    with pytest.raises(ExportError) as info:
        to_promela(_small_saga())
    (d,) = info.value.diagnostics
    assert d.code == "SAGA181" and "WIDTH=" in d.message


def test_cli_writes_the_model(capsys: pytest.CaptureFixture[str],
                              tmp_path: Path) -> None:
    out = tmp_path / "m.pml"
    code = main(["export", "--format", "promela", "--faults", "fail,crash=2",
                 "examples/trip_booking.saga.yaml", "-o", str(out)])
    assert code == 0
    text = out.read_text()
    assert "faults fail,crash=2" in text and "crashes < 2" in text
    assert main(["export", "--format", "promela", "--faults", "bogus",
                 "examples/trip_booking.saga.yaml"]) == 2
    assert "unknown fault knob" in capsys.readouterr().err


def test_unfinished_pan_run_is_unknown() -> None:
    out = ("error: max search depth too small\n   12 states, stored\n"
           "   13 transitions (= stored+matched)\n")
    r = parse_pan(out)
    assert set(r.verdicts.values()) == {Verdict.UNKNOWN}
    assert "depth" in r.reason
    assert parse_pan("pan: no output").reason


# --- fast: SPIN itself -------------------------------------------------------------
EXAMPLES = [
    ("trip_booking.saga.yaml", "all"),
    ("order_saga.yaml", "fail,comp_fail,crash=2"),
    ("payment_double_charge.yaml", "all"),
    ("shipping_after_pivot.yaml", "all"),
    ("hotel_cancel_needs_id.yaml", "fail,timeout,duplicate=2"),
    ("late_reservation.yaml", "all"),
    ("late_reservation_fixed.yaml", "all"),
    ("late_reservation_fixed.yaml", "timeout,crash=1"),
]


@pytest.mark.parametrize(("name", "faults"), EXAMPLES)
def test_spin_agrees_on_examples(spin: None, name: str, faults: str) -> None:
    c = compare(load(ROOT / "examples" / name), faults=FaultModel.parse(faults),
                options=FAST)
    assert c.disagreements == ()


def test_seeded_bugs_are_violated_by_both(spin: None) -> None:
    """Both ways: a double charge (not idempotent, duplicated) and an escalating
    compensation (STUCK) must be violated by both; the fixed saga holds."""
    bug = compare(load(ROOT / "examples" / "payment_double_charge.yaml"), options=FAST)
    assert bug.spin.verdicts["eventual_consistency"] is Verdict.VIOLATED
    assert bug.spin.verdicts["compensation_completeness"] is Verdict.VIOLATED
    stuck = compare(_small_saga(), options=FAST)
    assert stuck.spin.verdicts["eventual_consistency"] is Verdict.VIOLATED
    good = compare(load(ROOT / "examples" / "trip_booking.saga.yaml"), options=FAST)
    assert set(good.spin.verdicts.values()) == {Verdict.HOLDS}
    assert bug.disagreements == stuck.disagreements == good.disagreements == ()


def test_late_delivery_both_ways(spin: None) -> None:
    """A reserve delivered late after its cancel leaves the room held: violated
    by both with the late knob, holds without it; with empty rollback and
    anti-suspension the participant refuses it (the refused command is taken
    in a terminal phase) and it holds."""
    late = load(ROOT / "examples" / "late_reservation.yaml")
    on = compare(late, options=FAST)
    assert on.spin.verdicts["eventual_consistency"] is Verdict.VIOLATED
    off = compare(late, faults=dataclasses.replace(FaultModel(), late=False),
                  options=FAST)
    assert set(off.spin.verdicts.values()) == {Verdict.HOLDS}
    fixed = load(ROOT / "examples" / "late_reservation_fixed.yaml")
    text = to_promela(fixed)
    assert "late reserve_room +0 (refused)" in text
    good = compare(fixed, options=FAST)
    assert set(good.spin.verdicts.values()) == {Verdict.HOLDS}
    # Without the refusal the fixed saga is the broken one again.
    broken = text.replace("!down && lt[0] == 1 && !(cs[0] == C_DONE)",
                          "!down && lt[0] == 1")
    assert broken != text
    assert run_promela(broken, options=FAST).verdicts[
        "eventual_consistency"] is Verdict.VIOLATED
    assert on.disagreements == off.disagreements == good.disagreements == ()


def test_deadlock_is_caught(spin: None) -> None:
    """No saga of the semantics deadlocks, so the deadlock check is exercised on
    a mutation: an orchestrator that never recovers after a crash."""
    text = to_promela(_small_saga(), faults=FaultModel.parse("crash=1"))
    assert text.count("phase < P_COMPLETED && down") == 1
    broken = text.replace("phase < P_COMPLETED && down", "false")
    r = run_promela(broken, options=FAST)
    assert r.verdicts["deadlock"] is Verdict.VIOLATED
    assert run_promela(text, options=FAST).verdicts["deadlock"] is Verdict.HOLDS


@given(saga=_sagas(max_steps=3),
       faults=fault_models(max_crashes=2, max_duplicates=2))
@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
def test_spin_agrees_on_a_few_generated(spin: None, saga: Saga,
                                        faults: FaultModel) -> None:
    c = compare(saga, faults=faults, options=FAST)
    assert c.disagreements == (), saga.to_dict()


# --- slow: the parity suite ------------------------------------------------------
@pytest.mark.slow
@given(saga=_sagas(max_steps=4),
       faults=fault_models(max_crashes=2, max_duplicates=2))
@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
def test_spin_parity_200_generated(spin: None, saga: Saga,
                                   faults: FaultModel) -> None:
    """200 generated definitions (chains and DAGs, every step kind, retry
    bounds, timeouts and total timeouts, idempotent or not, compensations that
    need the reply, escalating policies) under every combination of the fault
    knobs, up to two crashes and two duplicates, and declared error classes (so
    fatal replies): the same states, the same
    transitions and the same verdicts, or the failure prints the definition."""
    c = compare(saga, faults=faults, options=FAST)
    assert c.disagreements == (), (saga.to_dict(), faults)
    assert set(c.spin.verdicts) == set(SPIN_PROPERTIES)

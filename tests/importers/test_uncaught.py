"""Uncaught errors are checked behaviour: a Catch that misses an error a Task
can raise gives an alternative saga in which that error ends the execution with
nothing compensated, and the checker reports it with a counterexample."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from saga_models import CompensationChain, Saga, Severity, StepKind
from saga_models.importers import load_all
from verifier import check

FIXTURES = Path(__file__).parent / "fixtures"
TRAVEL = FIXTURES / "travel-timeout-uncaught.asl.json"
# ../shared/corpus from the repository root; CI always has it, so there a
# missing corpus fails the tests instead of skipping them.
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
_ABSENT = not CORPUS.exists() and not os.environ.get("CI")
_WHERE = "corpus not present: put it at ../shared/corpus beside the repository"
FAULTS = "fail,timeout"


def verdicts(saga: Saga, faults: str = FAULTS) -> dict[str, str]:
    return {r.property: r.verdict.value
            for r in check(saga, faults=faults, max_states=100_000).results}


def codes(saga: Saga) -> set[str]:
    return {d.code for d in saga.import_diagnostics
            if d.severity is Severity.ERROR}


def machine() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TRAVEL.read_text())
    return data


def write(tmp: Path, data: dict[str, Any], name: str = "m.asl.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps(data))
    return path


def test_missed_timeout_is_an_alternative_with_a_counterexample() -> None:
    primary, variant = load_all(TRAVEL)
    assert variant.name == "travel-timeout-uncaught[uncaught States.Timeout at " \
        "ReserveCar]"
    assert variant.chain_for(variant.index("ReserveCar")) == CompensationChain(
        trigger="ReserveCar", steps=(), span=variant.chain_for(
            variant.index("ReserveCar")).span)  # type: ignore[union-attr]
    # The designed rollback is fine: only the uncaught path is wrong.
    assert verdicts(primary)["compensation_completeness"] == "holds"
    assert verdicts(primary)["eventual_consistency"] == "holds"
    assert "ASL201" in codes(primary)
    result = check(variant, faults=FAULTS)
    bad = {r.property: r for r in result.results}
    assert bad["compensation_completeness"].verdict.value == "violated"
    assert bad["eventual_consistency"].verdict.value == "violated"
    trace = bad["compensation_completeness"].counterexample
    assert trace is not None
    # The trace ends with the hotel booked, the car aborted, nothing undone.
    last = trace.steps[-1].state
    assert last["phase"] == "FAILED"
    steps = last["steps"]
    assert isinstance(steps, dict)
    assert steps["ReserveHotel"]["effect"] == 1
    assert steps["ReserveHotel"]["compensation"] == "NONE"
    assert steps["ReserveCar"]["status"] in {"FAILED", "UNKNOWN"}
    # The variant says what it stands for (a warning, not a structure error).
    assert any(d.code == "ASL215" and "States.Timeout" in d.message
               for d in variant.import_diagnostics)


def test_catching_the_timeout_removes_the_alternative_and_everything_holds(
        tmp_path: Path) -> None:
    data = machine()
    data["States"]["ReserveCar"]["Catch"][0]["ErrorEquals"].append("States.Timeout")
    [saga] = load_all(write(tmp_path, data))
    assert set(verdicts(saga).values()) == {"holds"}


def test_a_timeout_retried_forever_never_propagates(tmp_path: Path) -> None:
    data = machine()
    data["States"]["ReserveCar"]["Retry"].insert(
        0, {"ErrorEquals": ["States.Timeout"], "MaxAttempts": 99999999})
    sagas = load_all(write(tmp_path, data))
    assert [s.name for s in sagas] == ["m"]
    assert "ASL201" not in codes(sagas[0])


def test_retries_of_the_uncaught_error_bound_the_variant(tmp_path: Path) -> None:
    data = machine()
    data["States"]["ReserveCar"]["Retry"].append(
        {"ErrorEquals": ["States.Timeout"], "MaxAttempts": 2})
    _, variant = load_all(write(tmp_path, data))
    assert variant.step("ReserveCar").retry.max_attempts == 3
    assert verdicts(variant)["compensation_completeness"] == "violated"


def test_catch_of_specific_errors_follows_the_designed_route(tmp_path: Path) -> None:
    """A Catch naming only a custom error: the rollback it starts is modelled,
    and every other error (any error of the code, the Lambda service errors)
    is the uncaught alternative."""
    data = machine()
    car = data["States"]["ReserveCar"]
    car["Catch"][0]["ErrorEquals"] = ["CarUnavailable", "States.Timeout"]
    primary, variant = load_all(write(tmp_path, data))
    chain = primary.chain_for(primary.index("ReserveCar"))
    assert chain is not None and chain.steps == ("ReserveCar", "ReserveHotel")
    assert variant.name.endswith("[uncaught States.TaskFailed|Lambda.* at ReserveCar]")
    assert verdicts(primary)["compensation_completeness"] == "holds"
    assert verdicts(variant)["compensation_completeness"] == "violated"


def test_parallel_catch_that_misses_the_timeout(tmp_path: Path) -> None:
    data = machine()
    states = data["States"]
    car = copy.deepcopy(states.pop("ReserveCar"))
    del car["Catch"]
    car.pop("Next")
    car["End"] = True
    states["Both"] = {
        "Type": "Parallel", "Next": "Booked",
        "Branches": [{"StartAt": "ReserveCar", "States": {"ReserveCar": car}}],
        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "CancelCar"}]}
    states["ReserveHotel"]["Next"] = "Both"
    sagas = load_all(write(tmp_path, data))
    assert [s.name for s in sagas] == [
        "m", "m[uncaught States.Timeout at ReserveCar]"]
    assert verdicts(sagas[0])["compensation_completeness"] == "holds"
    assert verdicts(sagas[1])["compensation_completeness"] == "violated"


def test_no_alternative_when_the_primary_already_has_no_rollback(
        tmp_path: Path) -> None:
    """A Task without any Catch is uncaught in the primary itself (ASL202)."""
    data = machine()
    del data["States"]["ReserveCar"]["Catch"]
    [saga] = load_all(write(tmp_path, data))
    assert "ASL202" in codes(saga)
    assert verdicts(saga)["compensation_completeness"] == "violated"


def test_alternatives_are_bounded_by_the_steps_of_each_path() -> None:
    for path in [*sorted((CORPUS / "asl").glob("*.json")), TRAVEL]:
        try:
            sagas = load_all(path)
        except ValueError:
            continue
        primaries = [s for s in sagas if "[uncaught " not in s.name]
        variants = [s for s in sagas if "[uncaught " in s.name]
        assert len(variants) <= sum(
            1 for p in primaries for st in p.steps
            if st.kind is not StepKind.RETRIABLE)


@pytest.mark.skipif(_ABSENT, reason=_WHERE)
def test_seata_catch_of_specific_exceptions_gives_an_uncaught_alternative() -> None:
    sagas = load_all(CORPUS / "seata/simple_statelang_with_compensation.json")
    names = [s.name for s in sagas]
    i = names.index("simpleCompensationStateMachine[ChoiceState=SecondState]")
    variant = sagas[i + 1]
    assert variant.name.endswith("[uncaught other exceptions at SecondState]")
    assert verdicts(sagas[i], "fail")["compensation_completeness"] == "holds"
    assert verdicts(variant, "fail")["compensation_completeness"] == "violated"
    assert "SEATA201" in codes(sagas[i])


@pytest.mark.skipif(_ABSENT, reason=_WHERE)
def test_a_parallel_catch_of_its_branches_signals_is_not_a_rollback() -> None:
    """quorum-with-parallel's Parallel catches States.QuorumMet, which its
    branches raise on purpose (control flow): not the route of a Task error."""
    from saga_models._source import read_document
    from saga_models.importers import _asl

    m = _asl.parse(read_document(CORPUS / "asl/quorum-with-parallel.asl.json"))
    assert not _asl.designed_route(m, "Update Process1 Completion").caught
    sagas = load_all(CORPUS / "asl/quorum-with-parallel.asl.json")
    assert not any("[uncaught " in s.name for s in sagas)

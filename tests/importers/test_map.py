"""Map states are modelled with two iterations (the items are unknown before
run time): the least that shows a partial failure, one item's effect in place
while another fails. One iteration would hide it; this file shows both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from saga_models import Saga
from saga_models.importers import _asl, load_all
from verifier import check

FIXTURE = Path(__file__).parent / "fixtures/reserve-items-map.asl.json"


def verdicts(saga: Saga, faults: str = "fail") -> dict[str, str]:
    return {r.property: r.verdict.value
            for r in check(saga, faults=faults, max_states=100_000).results}


def machine() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def forgetful(tmp: Path) -> Path:
    """Seeded bug: the Map's Catch cancels the order but releases no item."""
    data = machine()
    data["States"]["ReserveEachItem"]["Catch"][0]["Next"] = "CancelOrder"
    path = tmp / "forgetful.asl.json"
    path.write_text(json.dumps(data))
    return path


def test_map_has_two_parallel_iterations_with_their_own_names() -> None:
    [saga] = load_all(FIXTURE)
    assert [s.name for s in saga.steps] == [
        "CreateOrder", "ReserveItem (item 1)", "ReserveItem (item 2)"]
    assert saga.step("ReserveItem (item 2)").depends_on == ("CreateOrder",)
    # one compensation Task (in the rollback Map) undoes every iteration
    chain = saga.chain_for(saga.index("ReserveItem (item 1)"))
    assert chain is not None
    assert set(chain.steps) == {"ReserveItem (item 1)", "ReserveItem (item 2)",
                                "CreateOrder"}
    assert chain.steps[-1] == "CreateOrder"
    assert verdicts(saga)["eventual_consistency"] == "holds"
    assert verdicts(saga)["structure"] == "holds"


def test_a_rollback_that_forgets_the_items_is_caught(tmp_path: Path) -> None:
    [saga] = load_all(forgetful(tmp_path))
    result = {r.property: r for r in check(saga, faults="fail").results}
    assert result["eventual_consistency"].verdict.value == "violated"
    assert "ReserveItem (item" in result["eventual_consistency"].reason


def test_one_iteration_would_hide_that_bug(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_asl, "MAP_ITEMS", 1)
    [saga] = load_all(forgetful(tmp_path))
    assert [s.name for s in saga.steps] == ["CreateOrder", "ReserveItem (item 1)"]
    assert verdicts(saga)["eventual_consistency"] == "holds"  # missed


def test_max_concurrency_one_runs_iterations_in_order(tmp_path: Path) -> None:
    data = machine()
    data["States"]["ReserveEachItem"]["MaxConcurrency"] = 1
    path = tmp_path / "seq.asl.json"
    path.write_text(json.dumps(data))
    [saga] = load_all(path)
    assert saga.step("ReserveItem (item 2)").depends_on == ("ReserveItem (item 1)",)


def test_uncaught_alternative_is_not_repeated_per_iteration(tmp_path: Path) -> None:
    data = machine()
    item = data["States"]["ReserveEachItem"]["ItemProcessor"]["States"][
        "ReserveItem"]
    item["TimeoutSeconds"] = 5
    data["States"]["ReserveEachItem"]["Catch"][0]["ErrorEquals"] = [
        "States.TaskFailed"]
    path = tmp_path / "t.asl.json"
    path.write_text(json.dumps(data))
    names = [s.name for s in load_all(path)]
    assert names == ["t", "t[uncaught States.Timeout at ReserveItem (item 1)]"]


def test_tolerated_failures_are_announced(tmp_path: Path) -> None:
    data = machine()
    data["States"]["ReserveEachItem"]["ToleratedFailurePercentage"] = 10
    path = tmp_path / "tol.asl.json"
    path.write_text(json.dumps(data))
    [saga] = load_all(path)
    assert any(d.code == "ASL217" for d in saga.import_diagnostics)

"""JSONata machines (``QueryLanguage: JSONata``: ``Arguments``, ``Output``,
``Assign``, ``{% %}`` expressions, Choice ``Condition``) import like JSONPath
ones: the importer never evaluates an expression."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from saga_models import Saga
from saga_models.importers import load_all
from saga_models.importers._asl import OPAQUE_SECONDS
from verifier import check

FIXTURE = Path(__file__).parent / "fixtures/order-jsonata.asl.json"
FAULTS = "fail,timeout,comp_fail"


def verdicts(saga: Saga) -> dict[str, str]:
    return {r.property: r.verdict.value
            for r in check(saga, faults=FAULTS, max_states=100_000).results}


def sidecar(tmp: Path) -> Path:
    side = tmp / "map.yaml"
    side.write_text("compensations:\n  FlagForAudit: none   # an audit record\n")
    return side


def test_jsonata_machine_imports_with_its_choice_paths(tmp_path: Path) -> None:
    sagas = load_all(FIXTURE, compensations=sidecar(tmp_path))
    assert [s.name for s in sagas] == ["order-jsonata[IsLarge=FlagForAudit]",
                                       "order-jsonata[IsLarge=Done]"]
    saga = sagas[0]
    assert [s.name for s in saga.steps] == ["ReserveStock", "ChargeCard"]
    stock, card = saga.steps
    # Arguments.FunctionName names the participant; a {% %} timeout is opaque
    assert (stock.participant, card.participant) == ("inventory", "payments")
    assert stock.timeout == OPAQUE_SECONDS and card.timeout == 30.0
    assert stock.compensation == "ReleaseStock" and card.compensation == "RefundCard"
    chain = saga.chain_for(saga.index("ChargeCard"))
    assert chain is not None and chain.steps == ("ChargeCard", "ReserveStock")
    for s in sagas:
        assert set(verdicts(s).values()) == {"holds"}, s.name


def test_jsonata_rollback_that_skips_a_compensation_is_violated(
        tmp_path: Path) -> None:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    data["States"]["RefundCard"]["Next"] = "OrderFailed"  # seeded bug
    path = tmp_path / "bug.asl.json"
    path.write_text(json.dumps(data))
    for s in load_all(path, compensations=sidecar(tmp_path)):
        assert verdicts(s)["compensation_completeness"] == "violated", s.name


def test_jsonata_catch_that_misses_the_timeout_is_an_alternative(
        tmp_path: Path) -> None:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    data["States"]["ChargeCard"]["Catch"][0]["ErrorEquals"] = ["States.TaskFailed"]
    path = tmp_path / "bug.asl.json"
    path.write_text(json.dumps(data))
    names = [s.name for s in load_all(path, compensations=sidecar(tmp_path))]
    assert "bug[IsLarge=Done][uncaught States.Timeout at ChargeCard]" in names

"""Seata: a Choice that tests the value a ServiceTask's Status map already
decided (``ChoiceStateHandler`` after ``decideExecutionStatus``) is evaluated
against the task's outcome; any other Choice keeps every branch."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from saga_models._source import read_document
from saga_models.importers.graph_semantics import ImportedMachine, load_seata
from verifier import check
from verifier._imported_ts import findings

SAGA: dict[str, Any] = {
    "Name": "reduce", "StartState": "ReduceInventory", "Version": "0.0.1",
    "States": {
        "ReduceInventory": {
            "Type": "ServiceTask", "ServiceName": "inventory",
            "ServiceMethod": "reduce",
            "CompensateState": "CompensateReduceInventory",
            "Next": "ChoiceState",
            "Output": {"reduceInventoryResult": "$.#root"},
            "Status": {"#root == true": "SU", "#root == false": "FA"}},
        "ChoiceState": {"Type": "Choice", "Choices": [
            {"Expression": "[reduceInventoryResult] == true",
             "Next": "ReduceBalance"}], "Default": "Fail"},
        "ReduceBalance": {
            "Type": "ServiceTask", "ServiceName": "balance",
            "ServiceMethod": "reduce",
            "CompensateState": "CompensateReduceBalance",
            "Status": {"#root == true": "SU", "#root == false": "FA"},
            "Catch": [{"Exceptions": ["java.lang.Throwable"],
                       "Next": "CompensationTrigger"}],
            "Next": "Succeed"},
        "CompensateReduceInventory": {
            "Type": "ServiceTask", "ServiceName": "inventory",
            "ServiceMethod": "compensateReduce"},
        "CompensateReduceBalance": {
            "Type": "ServiceTask", "ServiceName": "balance",
            "ServiceMethod": "compensateReduce"},
        "CompensationTrigger": {"Type": "CompensationTrigger", "Next": "Fail"},
        "Succeed": {"Type": "Succeed"},
        "Fail": {"Type": "Fail", "ErrorCode": "PURCHASE_FAILED"},
    }}
"""reduce_inventory_and_balance.json without its ``$Exception`` -> UN
entries (so only the Choice rule is at stake)."""


def variant(**states: Any) -> dict[str, Any]:
    data = copy.deepcopy(SAGA)
    for name, changes in states.items():
        data["States"][name].update(changes)
    return data


def load(tmp: Path, data: dict[str, Any]) -> ImportedMachine:
    path = tmp / "saga.json"
    path.write_text(json.dumps(data, indent=2))
    return load_seata(read_document(path))


def test_a_choice_on_the_decided_value_follows_the_status(tmp_path: Path
                                                          ) -> None:
    im = load(tmp_path, SAGA)
    assert im.decided_choices == (("ChoiceState", 0),)
    assert findings(im) == frozenset()
    # Spaces do not matter; the rule is matched as an expression.
    spaced = variant(ChoiceState={"Choices": [
        {"Expression": "[ reduceInventoryResult ]==true",
         "Next": "ReduceBalance"}]})
    assert findings(load(tmp_path, spaced)) == frozenset()


@pytest.mark.parametrize("bug", [
    # The Choice tests the opposite: after SU it takes its Default (Fail).
    {"ChoiceState": {"Choices": [{"Expression": "[reduceInventoryResult] == "
                                  "false", "Next": "ReduceBalance"}]}},
    # Two expressions say SU: a return of 1 is SU, yet not '== true'.
    {"ReduceInventory": {"Status": {"#root == true": "SU", "#root == 1": "SU",
                                    "#root == false": "FA"}}},
    # An earlier rule on other data may be taken first.
    {"ChoiceState": {"Choices": [
        {"Expression": "[other] == 1", "Next": "Fail"},
        {"Expression": "[reduceInventoryResult] == true",
         "Next": "ReduceBalance"}]}},
    # The value is not the Status map's: the Output stores a field of it.
    {"ReduceInventory": {"Output": {"reduceInventoryResult": "$.#root.ok"}}},
    # Asynchronous: the engine skips the Status map (null return value).
    {"ReduceInventory": {"IsAsync": True}},
], ids=["opposite-test", "two-su-expressions", "earlier-rule",
        "other-output", "async"])
def test_an_undecided_choice_keeps_every_branch(tmp_path: Path,
                                                bug: dict[str, Any]) -> None:
    im = load(tmp_path, variant(**bug))
    assert findings(im) == {"left_in_place:ReduceInventory"}


def test_a_second_way_into_the_choice_keeps_every_branch(tmp_path: Path
                                                         ) -> None:
    # Entered also from a Catch route, the Choice may see a stale value.
    data = variant(ReduceInventory={"Catch": [
        {"Exceptions": ["java.lang.Throwable"], "Next": "ChoiceState"}]})
    assert load(tmp_path, data).decided_choices == ()


@pytest.mark.parametrize(("data", "verdict"), [
    (SAGA, "holds"),
    (variant(ChoiceState={"Choices": [{"Expression": "[reduceInventoryResult]"
                                       " == false", "Next": "ReduceBalance"}]}),
     "violated")])
def test_z3_agrees(tmp_path: Path, data: dict[str, Any], verdict: str) -> None:
    im = load(tmp_path, data)
    for backend in ("explicit", "smt"):
        r = check(im, backend=backend)["compensation_completeness"]
        assert r.verdict.value == verdict, (backend, r.reason)

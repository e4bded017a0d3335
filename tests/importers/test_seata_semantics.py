"""Seata sagas explored as their own graph, rule by rule (each both ways): the
compensation stack, Catch matching, UN outcomes and the TC's recovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from saga_models._source import read_document
from saga_models.importers.graph_semantics import ImportedMachine, load_seata
from verifier import check


def svc(nxt: str | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": "ServiceTask", "ServiceName": "s",
                           "ServiceMethod": "m"}
    if nxt is not None:
        out["Next"] = nxt
    out.update(extra)
    return out


def saga(**overrides: Any) -> dict[str, Any]:
    """Reserve -> Pay, a Catch of Pay to the CompensationTrigger, then Fail."""
    states: dict[str, Any] = {
        "Reserve": svc("Pay", CompensateState="CancelReserve"),
        "Pay": svc("Done", CompensateState="Refund", Catch=[
            {"Exceptions": ["java.lang.Throwable"], "Next": "Trigger"}]),
        "CancelReserve": svc(None),
        "Refund": svc(None),
        "Trigger": {"Type": "CompensationTrigger", "Next": "Failed"},
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "ErrorCode": "E"},
    }
    states.update(overrides)
    return {"Name": "s", "StartState": "Reserve", "States": states}


def load(tmp: Path, data: dict[str, Any]) -> ImportedMachine:
    path = tmp / "s.json"
    path.write_text(json.dumps(data, indent=2))
    return load_seata(read_document(path))


def verdicts(im: ImportedMachine, faults: str = "fail") -> dict[str, str]:
    return {r.property: r.verdict.value for r in check(im, faults=faults).results}


def trace(im: ImportedMachine, prop: str, faults: str = "fail") -> str:
    [r] = [r for r in check(im, faults=faults).results if r.property == prop]
    assert r.verdict.value == "violated" and r.counterexample is not None
    return r.counterexample.violation + "\n" + "\n".join(
        s.action for s in r.counterexample.steps)


def test_a_catch_to_the_trigger_compensates(tmp_path: Path) -> None:
    assert set(verdicts(load(tmp_path, saga())).values()) == {"holds"}


def test_an_empty_exception_list_catches_nothing(tmp_path: Path) -> None:
    # Regression: an empty Exceptions list was read as catch-all (wrong HOLDS).
    data = saga(Pay=svc("Done", CompensateState="Refund", Catch=[
        {"Exceptions": [], "Next": "Trigger"}]))
    text = trace(load(tmp_path, data), "compensation_completeness")
    assert "'Reserve'" in text


def _run(im: ImportedMachine, failing: str) -> list[str]:
    """The labels of the shortest run in which ``failing`` raises and the
    execution ends."""
    from collections import deque

    from verifier._imported_ts import ImportedTransitionSystem

    ts = ImportedTransitionSystem(im)
    start = (ts.initial()[0], False)
    parent: dict[Any, Any] = {start: None}
    todo = deque([start])
    while todo:
        node = todo.popleft()
        state, seen = node
        if ts.is_terminal(state) and seen:
            out = []
            while parent[node] is not None:
                node, label = parent[node]
                out.append(label)
            return out[::-1]
        for label, nxt in ts.successors(state):
            text = ts.label_text(label)
            raised = text.startswith(f"{failing} (line") and "raises" in text
            key = (nxt, seen or raised)
            if key not in parent:
                parent[key] = (node, text)
                todo.append(key)
    raise AssertionError(f"no run in which {failing} raises")


def test_the_stack_unwinds_newest_first(tmp_path: Path) -> None:
    data = saga(Ship=svc("Done", CompensateState="Unship", Catch=[
        {"Exceptions": ["java.lang.Throwable"], "Next": "Trigger"}]),
        Unship=svc(None))
    data["States"]["Pay"]["Next"] = "Ship"
    run = "\n".join(_run(load(tmp_path, data), "Ship"))
    assert run.index("'Refund' undoes 'Pay'") < run.index(
        "'CancelReserve' undoes 'Reserve'")
    assert "'Unship'" not in run  # Ship failed (FA): not on the stack


def test_a_failed_compensation_is_retried_by_the_tc(tmp_path: Path) -> None:
    # The engine stops the unwind; the TC retries the rollback
    # (RollbackRetrying): under fairness it completes.
    assert verdicts(load(tmp_path, saga()), "fail,comp_fail")[
        "compensation_completeness"] == "holds"
    data = saga(Pay=svc("Done", Catch=[
        {"Exceptions": ["java.lang.Throwable"], "Next": "Trigger"}]))
    data["States"]["Pay"]["IsForUpdate"] = True  # UN, and no CompensateState
    assert "'Pay'" in trace(load(tmp_path, data), "compensation_completeness",
                            "fail,comp_fail")


def test_an_uncaught_un_state_is_retried_forward(tmp_path: Path) -> None:
    status = {"$Exception{java.lang.Throwable}": "UN", "#root == true": "SU"}
    # UN: the TC retries it forward (CommitRetrying), so nothing is left.
    un = saga(Pay=svc("Done", CompensateState="Refund", Status=status))
    assert verdicts(load(tmp_path, un))["compensation_completeness"] == "holds"
    # FA (no Status map, not IsForUpdate): the machine is finished, unrolled.
    fa = saga(Pay=svc("Done", CompensateState="Refund"))
    assert "'Reserve'" in trace(load(tmp_path, fa), "compensation_completeness")


@pytest.mark.parametrize("kind", ["CompensateSubMachine", "ServiceTask"])
def test_compensate_sub_machine_is_a_valid_type(tmp_path: Path, kind: str) -> None:
    data = saga(Sub={"Type": "SubStateMachine", "StateMachineName": "other",
                     "CompensateState": "UndoSub", "Next": "Pay", "Catch": [
                         {"Exceptions": ["java.lang.Exception"],
                          "Next": "Trigger"}]},
                UndoSub={"Type": kind, "StateMachineName": "other"})
    data["States"]["Reserve"]["Next"] = "Sub"
    assert set(verdicts(load(tmp_path, data)).values()) == {"holds"}
    data["States"]["Trigger"]["Next"] = "Done"
    assert "masks the failure" in trace(load(tmp_path, data),
                                        "eventual_consistency")

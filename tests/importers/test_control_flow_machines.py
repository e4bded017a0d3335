"""A state machine without a Task (errors used as control flow, polling
loops, timers) is still a machine: checked as its own graph it gets verdicts,
its termination among them; only lowering it into a saga (the runtime,
export) refuses it, with ASL100."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from saga_models import InvalidDefinition
from saga_models._source import read_document
from saga_models.importers import load_all
from saga_models.importers.graph_semantics import ImportedMachine, load_machine
from verifier import check


def poll(n: int, *, exit_rule: bool = True) -> dict[str, Any]:
    """A branch that polls (Pass -> Choice -> Wait -> Pass) and signals that
    the process completed with a Fail (an error used as control flow)."""
    rules = [{"Variable": "$.done", "BooleanEquals": True,
              "Next": f"Completed{n}"}] if exit_rule else []
    states: dict[str, Any] = {
        f"Get{n}": {"Type": "Pass", "Result": {"Completed": False},
                    "ResultPath": "$.q", "Next": f"Check{n}"},
        f"Wait{n}": {"Type": "Wait", "Seconds": 5, "Next": f"Get{n}"},
        f"Check{n}": {"Type": "Choice", "Choices": rules,
                      "Default": f"Wait{n}"},
        f"Completed{n}": {"Type": "Fail", "Error": f"Faux{n}"},
    }
    if not exit_rule:
        # A Choice needs a rule: one that only polls again.
        states[f"Check{n}"]["Choices"] = [
            {"Variable": "$.q.Completed", "BooleanEquals": False,
             "Next": f"Wait{n}"}]
    return {"StartAt": f"Get{n}", "States": states}


TIMER = {"StartAt": "TimeoutWait", "States": {
    "TimeoutWait": {"Type": "Wait", "Seconds": 15, "Next": "RanOutOfTime"},
    "RanOutOfTime": {"Type": "Fail", "Error": "RanOutOfTime"}}}


def either_or(branches: list[dict[str, Any]]) -> dict[str, Any]:
    """The either-or-parallel pattern: the first branch to raise wins; the
    Parallel's Catch routes each signal to its own terminal Pass."""
    signals = ["Faux1", "Faux2", "RanOutOfTime"]
    return {"StartAt": "Either", "States": {
        "Either": {"Type": "Parallel", "Branches": branches, "Next": "Next1",
                   "Catch": [{"ErrorEquals": [e], "Next": f"On{e}"}
                             for e in signals]},
        "Next1": {"Type": "Pass", "End": True},
        **{f"On{e}": {"Type": "Pass", "End": True} for e in signals}}}


def load(tmp: Path, data: dict[str, Any]) -> ImportedMachine:
    path = tmp / "m.asl.json"
    path.write_text(json.dumps(data, indent=2))
    return load_machine(read_document(path))


def verdicts(im: ImportedMachine, backend: str = "explicit"
             ) -> dict[str, str]:
    return {r.property: r.verdict.value
            for r in check(im, backend=backend).results}


def test_a_timer_branch_bounds_the_polling_loops(tmp_path: Path) -> None:
    im = load(tmp_path, either_or([TIMER, poll(1), poll(2)]))
    assert im.forward == ()  # nothing takes effect
    assert verdicts(im) == dict.fromkeys(
        ("compensation_completeness", "eventual_consistency", "termination",
         "unconditional_termination"), "holds")


def test_without_the_timer_a_poll_may_go_on_forever(tmp_path: Path) -> None:
    # Seeded bug: the TimeoutWait branch removed. The polling loops end only
    # if the polled process completes (the fairness assumption).
    v = verdicts(load(tmp_path, either_or([poll(1), poll(2)])))
    assert v["termination"] == "holds"
    assert v["unconditional_termination"] == "violated"


def test_a_loop_without_an_exit_never_terminates(tmp_path: Path) -> None:
    # Seeded bug: neither the timer nor an exit rule: no fairness helps.
    v = verdicts(load(tmp_path, either_or([poll(1, exit_rule=False)])))
    assert v["termination"] == "violated"
    assert v["unconditional_termination"] == "violated"


def test_a_task_free_machine_is_refused_only_for_lowering(tmp_path: Path
                                                          ) -> None:
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(either_or([TIMER, poll(1)])))
    with pytest.raises(InvalidDefinition) as info:
        load_all(path)  # a saga for the runtime or export: there is none
    [d] = info.value.diagnostics
    assert d.code == "ASL100" and d.span.line > 0 and "sagaproof check" in d.help
    # An empty States mapping is no machine at all, for either use.
    path.write_text(json.dumps({"StartAt": "A", "States": {}}))
    for loader in (load_all, lambda p: load_machine(read_document(p))):
        with pytest.raises(InvalidDefinition) as info:
            loader(path)
        assert info.value.diagnostics[0].code == "ASL101"


def test_its_mapping_is_an_empty_sidecar_that_reads_back(tmp_path: Path
                                                         ) -> None:
    from saga_models.importers import graph_mapping
    from saga_models.importers._mapping import read_sidecar

    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(either_or([TIMER, poll(1)])))
    side = tmp_path / "m.map.yaml"
    side.write_text(graph_mapping(path).to_yaml())  # sagaproof mapping
    assert read_sidecar(str(side)).compensations == {}
    side.write_text("compensations:\n")  # a bare key is null: refused
    with pytest.raises(InvalidDefinition):
        read_sidecar(str(side))


def test_the_same_rule_for_seata(tmp_path: Path) -> None:
    from saga_models.importers.graph_semantics import load_seata

    path = tmp_path / "s.json"
    path.write_text(json.dumps({
        "Name": "decide", "StartState": "Decide", "States": {
            "Decide": {"Type": "Choice", "Choices": [
                {"Expression": "[a] == 1", "Next": "Ok"}], "Default": "No"},
            "Ok": {"Type": "Succeed"}, "No": {"Type": "Fail"}}}))
    im = load_seata(read_document(path))
    assert im.forward == ()
    assert set(verdicts(im).values()) == {"holds"}
    with pytest.raises(InvalidDefinition) as info:
        load_all(path)
    assert info.value.diagnostics[0].code == "SEATA100"

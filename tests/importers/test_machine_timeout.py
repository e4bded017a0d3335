"""The machine-level ``TimeoutSeconds`` is in the model exactly when some run
may last longer: the worst case of a run (attempts x per-attempt timeout,
Retry delays, Wait seconds; a Parallel's longest branch) is computed from the
file, and a timeout longer than the worst case of every run cannot fire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from saga_models._source import read_document
from saga_models.importers.graph_semantics import ImportedMachine, load_machine
from verifier import check

FAULTS = "timeout"
WORST = 96.0
"""The worst case of :func:`machine`, by hand: BookHotel 4 attempts x 10 s +
delays 2 + 4 + 8 = 54; Pause 6; ChargeCard 5; RefundCard 7; CancelHotel 3 x 7
+ delays 1 + min(3, 2) = 24: the longest run is the rollback after ChargeCard
fails, 54 + 6 + 5 + 7 + 24 = 96 (BookHotel's own rollback: 54 + 24)."""


def task(nxt: str | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": "Task", "Resource": "arn:aws:states:::sqs:x"}
    out.update({"Next": nxt} if nxt else {"End": True})
    out.update(extra)
    return out


def catch(target: str) -> list[dict[str, Any]]:
    return [{"ErrorEquals": ["States.ALL"], "Next": target}]


def machine(timeout: float | None = None, **overrides: Any) -> dict[str, Any]:
    """BookHotel -> Pause -> ChargeCard, each Catch undoing what took effect,
    every Task with a TimeoutSeconds: a correct saga whose runs are bounded."""
    states: dict[str, Any] = {
        "BookHotel": task("Pause", TimeoutSeconds=10, Catch=catch("CancelHotel"),
                          Retry=[{"ErrorEquals": ["States.ALL"],
                                  "IntervalSeconds": 2, "MaxAttempts": 3,
                                  "BackoffRate": 2}]),
        "Pause": {"Type": "Wait", "Seconds": 6, "Next": "ChargeCard"},
        "ChargeCard": task("Done", TimeoutSeconds=5, Catch=catch("RefundCard")),
        "Done": {"Type": "Succeed"},
        "RefundCard": task("CancelHotel", TimeoutSeconds=7),
        "CancelHotel": task("Failed", TimeoutSeconds=7, Retry=[{
            "ErrorEquals": ["States.ALL"], "IntervalSeconds": 1,
            "MaxAttempts": 2, "BackoffRate": 3, "MaxDelaySeconds": 2}]),
        "Failed": {"Type": "Fail"},
    }
    states.update(overrides)
    out: dict[str, Any] = {"StartAt": "BookHotel", "States": states}
    if timeout is not None:
        out["TimeoutSeconds"] = timeout
    return out


def load(tmp: Path, data: dict[str, Any]) -> ImportedMachine:
    path = tmp / "m.asl.json"
    path.write_text(json.dumps(data, indent=2))
    return load_machine(read_document(path))


def completeness(im: ImportedMachine, backend: str = "explicit") -> Any:
    return check(im, faults=FAULTS, backend=backend)["compensation_completeness"]


def test_the_worst_case_is_computed_from_the_file(tmp_path: Path) -> None:
    assert load(tmp_path, machine()).worst_case == WORST
    # A Parallel lasts as long as its longest branch (per attempt).
    branch = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30,
                                               "End": True}}}
    par = {"Type": "Parallel", "Next": "ChargeCard", "Branches": [
        branch, {"StartAt": "X", "States": {"X": task(None, TimeoutSeconds=4)}}]}
    assert load(tmp_path, machine(Pause=par)).worst_case == WORST - 6 + 30


@pytest.mark.parametrize("backend", ["explicit", "smt"])
def test_an_ample_machine_timeout_cannot_cut_a_run(tmp_path: Path,
                                                   backend: str) -> None:
    r = completeness(load(tmp_path, machine(WORST + 1)), backend)
    assert r.verdict.value == "holds", r.reason
    assert "cannot expire (every run ends within 96s)" in r.fault_model


@pytest.mark.parametrize("backend", ["explicit", "smt"])
def test_a_short_machine_timeout_cuts_the_rollback(tmp_path: Path,
                                                   backend: str) -> None:
    for seconds in (50, WORST):  # a run may take exactly the worst case, or
        # a little more (the engine's own steps): equal is not ample
        r = completeness(load(tmp_path, machine(seconds)), backend)
        assert r.verdict.value == "violated"
        assert r.counterexample is not None
        assert "machine's TimeoutSeconds" in r.counterexample.steps[-1].action
        assert "may expire" in r.fault_model


@pytest.mark.parametrize("unbounded", [
    {"ChargeCard": task("Done", Catch=catch("RefundCard"))},  # no timeout
    {"ChargeCard": task("Done", HeartbeatSeconds=5, Catch=catch("RefundCard"))},
    {"ChargeCard": task("Done", TimeoutSecondsPath="$.t",
                        Catch=catch("RefundCard"))},
    {"ChargeCard": task("Done", TimeoutSeconds=5, Catch=catch("RefundCard"),
                        Retry=[{"ErrorEquals": ["States.ALL"],
                                "MaxAttempts": 99_999_999}])},  # forever
    {"ChargeCard": task("Done", TimeoutSeconds=5, Catch=catch("RefundCard"),
                        Retry=[{"ErrorEquals": ["States.ALL"],
                                "IntervalSeconds": "${Interval}"}])},
    {"Pause": {"Type": "Wait", "SecondsPath": "$.s", "Next": "ChargeCard"}},
    {"Pause": {"Type": "Wait", "Timestamp": "2030-01-01T00:00:00Z",
               "Next": "ChargeCard"}},
    {"Pause": {"Type": "Choice", "Default": "ChargeCard", "Choices": [
        {"Variable": "$.wait", "BooleanEquals": True, "Next": "Again"}]},
     "Again": {"Type": "Wait", "Seconds": 1, "Next": "Pause"}},  # polling
    {"Pause": {"Type": "Map", "Next": "ChargeCard", "ItemProcessor": {
        "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1,
                                         "End": True}}}}},
], ids=["no-timeout", "heartbeat-only", "timeout-path", "retry-forever",
        "retry-placeholder", "wait-path", "wait-timestamp", "loop", "map"])
def test_an_unbounded_run_keeps_the_timeout(tmp_path: Path,
                                            unbounded: dict[str, Any]) -> None:
    im = load(tmp_path, machine(10 ** 6, **unbounded))
    assert im.worst_case is None
    r = completeness(im)
    assert r.verdict.value == "violated"
    assert r.counterexample is not None
    assert "machine's TimeoutSeconds" in r.counterexample.steps[-1].action


def test_without_the_timeout_fault_it_is_left_out(tmp_path: Path) -> None:
    r = check(load(tmp_path, machine(50)), faults="fail")
    assert r["compensation_completeness"].verdict.value == "holds"
    assert "TimeoutSeconds" not in r["compensation_completeness"].fault_model


def timeout_states(im: ImportedMachine) -> set[str]:
    """The top-level states in which the machine timeout may expire."""
    from saga_models.importers import graph_semantics as gs
    from saga_models.semantics import FaultModel
    from verifier._imported_ts import ImportedTransitionSystem

    ts = ImportedTransitionSystem(im, FaultModel.parse(FAULTS))
    t = ts.tables
    top = t.regions[0]
    seen = set(ts.initial())
    todo = list(seen)
    out: set[str] = set()
    while todo:
        state = todo.pop()
        for ev, nxt in ts.successors(state):
            if ev.kind == "machine_timeout":
                out.add(top.names[state[top.base] - gs.AT])
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return out


def test_it_fires_only_where_a_run_may_still_be(tmp_path: Path) -> None:
    # Latest ends: BookHotel 54, Pause 60, ChargeCard and Done 65,
    # RefundCard 72, CancelHotel and Failed 96 (after RefundCard).
    assert timeout_states(load(tmp_path, machine(80))) == {
        "CancelHotel", "Failed"}
    assert timeout_states(load(tmp_path, machine(70))) == {
        "RefundCard", "CancelHotel", "Failed"}
    assert timeout_states(load(tmp_path, machine(50))) == {
        "BookHotel", "Pause", "ChargeCard", "Done", "RefundCard",
        "CancelHotel", "Failed"}
    # A loop before a state leaves its latest end unbounded.
    loop = {"Pause": {"Type": "Choice", "Default": "ChargeCard", "Choices": [
        {"Variable": "$.wait", "BooleanEquals": True, "Next": "Again"}]},
        "Again": {"Type": "Wait", "Seconds": 1, "Next": "Pause"}}
    assert timeout_states(load(tmp_path, machine(80, **loop))) == {
        "Pause", "Again", "ChargeCard", "Done", "RefundCard", "CancelHotel",
        "Failed"}


@pytest.mark.parametrize("backend", ["explicit", "smt"])
def test_a_late_timeout_cuts_only_the_late_rollback(tmp_path: Path,
                                                    backend: str) -> None:
    r = completeness(load(tmp_path, machine(80)), backend)
    assert r.verdict.value == "violated" and r.counterexample is not None
    *_, before, cut = r.counterexample.steps
    # Not at BookHotel, Pause or ChargeCard (every run is past them by
    # 80 s): the timeout cuts the rollback at CancelHotel, which a run may
    # still be in then (via RefundCard, until 96 s).
    assert before.state["at"] == ["CancelHotel"]
    assert "machine's TimeoutSeconds" in cut.action


def test_z3_tabulates_where_it_fires(tmp_path: Path) -> None:
    # The guarded commands z3 checks give exactly the semantics' successors
    # (the timeout included only where it may fire) on every reachable state.
    from tests.parity.test_imported_smt_parity import _relation_is_the_semantics

    _relation_is_the_semantics(load(tmp_path, machine(80)))

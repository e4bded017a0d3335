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

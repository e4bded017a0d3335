"""Explicit-vs-z3 agreement on imported graphs (ASL, Seata, Serverless
Workflow).

Both backends check the same transition system (the graph semantics: z3's
relation is tabulated from ``graph_semantics`` itself). For every corpus file
and every generated ASL machine they must give the same verdict for every
property, neither may say ``unknown`` (unknown is never agreement), and for a
violated safety property the counterexamples have the same length (BMC's
shortest against BFS's).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from saga_models._source import read_document
from saga_models.importers import detect
from saga_models.importers import graph_semantics as gs
from saga_models.importers.graph_semantics import ImportedMachine
from tests.importers.test_moto_differential import machines
from verifier import Verdict, check
from verifier._imported_ts import ImportedTransitionSystem
from verifier.smt._imported_encode import ImportedEncoding

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
_ABSENT = not CORPUS.exists() and not os.environ.get("CI")
FILES = sorted(p for d in ("asl", "seata", "sw") for p in (CORPUS / d).glob("*.*")
               if p.suffix in {".json", ".yml", ".yaml"})
SAFETY = ("compensation_completeness", "eventual_consistency")
FAST = {"common-error-handling-option1.asl.json",
        "explicit-failure-with-parallel-states.asl.json",
        "parallel-human-approval.asl.json",
        "retry-with-exponential-backoff.asl.json",
        "selective-checkpointing-parent.asl.json", "trip-booking-bernd.asl.json",
        "trip-booking-bernd.serverless.yml", "reduce_inventory_and_balance.json",
        "simple_statelang_with_catches.json", "simple_statelang_with_choice.json",
        "simple_statelang_with_recover_strategy.json"}
"""Corpus files z3 checks in a few seconds; the rest (10 s to 3 min) are the
slow tier's."""
NOT_YET = {
    "seata-go-order_saga.json": "a loop of state-changing steps: z3's fair "
    "lasso search has not finished within the test's time",
    "seata-go-order_saga.yaml": "the same machine as seata-go-order_saga.json",
    "either-or-parallel.asl.json": "three polling loops in parallel "
    "branches: z3's termination queries have not finished within the test's "
    "time (over 10 minutes)",
    "quorum-with-parallel.asl.json": "11,040 states over 5 regions: z3 has "
    "not finished within the test's time",
}
"""Files the z3 backend does not yet decide in the time a test may take; not
counted as agreement (see docs/importers.md)."""


def load(path: Path) -> ImportedMachine:
    doc = read_document(path)
    loader = {"asl": gs.load_machine, "seata": gs.load_seata, "sw": gs.load_sw}
    return loader[str(detect(doc.data))](doc)


def agree(definition: Any, faults: str = "fail,timeout,comp_fail") -> None:
    explicit = check(definition, faults=faults)
    smt = check(definition, faults=faults, backend="smt")
    for e, z in zip(explicit.results, smt.results, strict=True):
        assert e.property == z.property
        assert z.backend == "smt"
        assert Verdict.UNKNOWN not in (e.verdict, z.verdict), (
            f"{e.property}: explicit {e.verdict.value} ({e.reason}); "
            f"z3 {z.verdict.value} ({z.reason})")
        assert e.verdict is z.verdict, (
            f"{e.property}: explicit {e.verdict.value} ({e.reason}); "
            f"z3 {z.verdict.value} ({z.reason})")
        if e.verdict is Verdict.VIOLATED and e.property in SAFETY:
            assert e.counterexample is not None and z.counterexample is not None
            assert len(e.counterexample.steps) == len(z.counterexample.steps), (
                e.property)
            # The z3 trace is rendered in the file's own state names.
            assert z.counterexample.steps[-1].action


def _cases(fast: bool) -> list[Path]:
    return [p for p in FILES if (p.name in FAST) == fast and p.name not in NOT_YET]


@pytest.mark.skipif(_ABSENT, reason="corpus not present at ../shared/corpus")
@pytest.mark.parametrize("path", _cases(True), ids=lambda p: p.name)
def test_corpus_file_same_verdicts(path: Path) -> None:
    agree(load(path))


@pytest.mark.slow
@pytest.mark.skipif(_ABSENT, reason="corpus not present at ../shared/corpus")
@pytest.mark.parametrize("path", _cases(False), ids=lambda p: p.name)
def test_slow_corpus_file_same_verdicts(path: Path) -> None:
    agree(load(path))


def machine(tmp_path: Path, data: dict[str, Any]) -> ImportedMachine:
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(data, indent=1))
    return gs.load_machine(read_document(path))


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(case=machines())
def test_generated_machines_sample(tmp_path: Path,
                                   case: tuple[dict[str, Any], Any, Any]) -> None:
    agree(machine(tmp_path, case[0]))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(case=machines())
def test_generated_machines(tmp_path: Path,
                            case: tuple[dict[str, Any], Any, Any]) -> None:
    agree(machine(tmp_path, case[0]))


# --- termination both ways ------------------------------------------------------
def _task(nxt: str | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": "Task",
                           "Resource": "arn:aws:lambda:us-east-1:1:function:f"}
    out.update({"Next": nxt} if nxt else {"End": True})
    out.update(extra)
    return out


def test_a_loop_without_exit_is_a_livelock_for_both(tmp_path: Path) -> None:
    # A -> B -> A forever: every step changes the state (a moving cycle).
    data = {"StartAt": "BookA", "States": {
        "BookA": _task("Again"), "Again": {"Type": "Pass", "Next": "BookA"}}}
    im = machine(tmp_path, data)
    agree(im)
    z = check(im, backend="smt")["termination"]
    assert z.verdict is Verdict.VIOLATED and z.counterexample is not None
    assert z.counterexample.loop_start is not None
    assert "BookA" in " ".join(s.action for s in z.counterexample.steps)


def test_a_choice_that_only_loops_on_itself_is_a_livelock(tmp_path: Path) -> None:
    # Every branch of the Choice is itself: a fair run stays there (a trap).
    data = {"StartAt": "BookA", "States": {
        "BookA": _task("Poll"),
        "Poll": {"Type": "Choice", "Choices": [
            {"Variable": "$.x", "StringEquals": "a", "Next": "Poll"}],
            "Default": "Poll"}}}
    im = machine(tmp_path, data)
    agree(im)
    assert check(im, backend="smt")["termination"].verdict is Verdict.VIOLATED


def test_a_polling_loop_terminates_only_under_fairness(tmp_path: Path) -> None:
    data = {"StartAt": "Check", "States": {
        "Check": _task("Ready"),
        "Ready": {"Type": "Choice", "Choices": [
            {"Variable": "$.done", "BooleanEquals": True, "Next": "Done"}],
            "Default": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 5, "Next": "Check"},
        "Done": {"Type": "Succeed"}}}
    im = machine(tmp_path, data)
    z = check(im, backend="smt")
    assert z["unconditional_termination"].verdict is Verdict.VIOLATED
    e = check(im)
    assert e["unconditional_termination"].verdict is Verdict.VIOLATED
    # Fair termination of a loop that changes state is not decided by the
    # bounded lasso search: z3 says unknown with the reason, never holds.
    assert z["termination"].verdict in (Verdict.HOLDS, Verdict.UNKNOWN)
    if z["termination"].verdict is Verdict.UNKNOWN:
        assert "cycle of state-changing steps" in z["termination"].reason


def test_the_tabulated_relation_is_the_semantics(tmp_path: Path) -> None:
    # On every reachable state of a corpus-like machine, the guarded commands
    # give exactly the successors graph_semantics gives.
    data = {"StartAt": "BookA", "States": {
        "BookA": _task("BookB", Retry=[{"ErrorEquals": ["States.ALL"],
                                        "MaxAttempts": 4}],
                       Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Fail"}]),
        "BookB": _task(None, TimeoutSeconds=3,
                       Catch=[{"ErrorEquals": ["States.ALL"], "Next": "CancelA"}]),
        "CancelA": _task("Fail"), "Fail": {"Type": "Fail"}}}
    _relation_is_the_semantics(machine(tmp_path, data))


def _relation_is_the_semantics(im: ImportedMachine) -> None:
    ts = ImportedTransitionSystem(im, explore_unconditional=False)
    enc = ImportedEncoding(ts)
    t = ts.tables
    seen = {gs.initial_state(t)}
    todo = list(seen)
    while todo:
        st = todo.pop()
        real = {(e, gs.apply(t, st, e)) for e in gs.enabled(t, st)}
        mine = set()
        for cmd in enc.commands:
            if all(st[i] in c for i, c in enumerate(cmd.cube)):
                nxt = list(st)
                for i, slot in cmd.out:
                    nxt[i] = slot if isinstance(slot, int) else dict(
                        slot.table)[st[slot.src]]
                mine.add((enc.alternatives[cmd.alt], tuple(nxt)))
        assert real == mine, gs.view(t, st)
        for _, n in real:
            if n not in seen:
                seen.add(n)
                todo.append(n)
    assert len(seen) > 5


def test_cli_outputs_under_z3(tmp_path: Path) -> None:
    # The same JSON and SARIF as the explicit checker, located on the file.
    import subprocess
    import sys

    states: dict[str, Any] = {
        "BookA": _task("BookB", Catch=[{"ErrorEquals": ["States.ALL"],
                                        "Next": "Fail"}]),
        "BookB": _task(None, Catch=[{"ErrorEquals": ["States.ALL"],
                                     "Next": "Fail"}]),
        "Fail": {"Type": "Fail"}}
    data = {"StartAt": "BookA", "States": states}
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(data, indent=1))
    root = Path(__file__).parents[2]
    outs = {}
    for fmt in ("json", "sarif"):
        run = subprocess.run(
            [sys.executable, "-m", "sagaproof", "check", str(path), "--backend",
             "smt", "--format", fmt, "--no-progress"], capture_output=True,
            text=True, env={**os.environ, "PYTHONPATH": str(root)}, check=False)
        assert run.returncode == 1, run.stderr
        outs[fmt] = run.stdout
    assert '"backend": "smt"' in outs["json"]
    assert "BookA" in outs["json"] and '"line"' in outs["json"]
    assert "compensation_completeness" in outs["sarif"]
    # The fixed file holds under z3 too.
    states["BookB"] = _task(None, Catch=[{"ErrorEquals": ["States.ALL"],
                                          "Next": "CancelA"}])
    states["CancelA"] = _task("Fail")
    path.write_text(json.dumps(data, indent=1))
    fixed = check(str(path), backend="smt", faults="fail")
    assert fixed["compensation_completeness"].verdict is Verdict.HOLDS


BPMN = sorted((Path(__file__).parents[1] / "importers" / "bpmn").glob("*.bpmn"))
"""The hand-checked BPMN goldens (tests/importers/bpmn) and the corpus file."""
BPMN_CORPUS = CORPUS / "bpmn" / "trip-compensation-bernd.bpmn"


@pytest.mark.parametrize("path", BPMN, ids=lambda p: p.name)
def test_bpmn_goldens_same_verdicts_camunda7(path: Path) -> None:
    agree(gs.load_bpmn(str(path), dialect="camunda7"))


@pytest.mark.slow
@pytest.mark.parametrize("path", BPMN, ids=lambda p: p.name)
def test_bpmn_goldens_same_verdicts_zeebe(path: Path) -> None:
    agree(gs.load_bpmn(str(path), dialect="zeebe"))


@pytest.mark.skipif(_ABSENT, reason="corpus not present at ../shared/corpus")
@pytest.mark.parametrize("dialect", ["camunda7", "zeebe"])
def test_bpmn_corpus_same_verdicts_and_relation(dialect: str) -> None:
    # BPMN's extra slots (the completed activities still to compensate, the
    # handler incident) are in z3's layout: the tabulated relation is the
    # semantics on every reachable state, and the verdicts agree.
    im = gs.load_bpmn(str(BPMN_CORPUS), dialect=dialect)
    _relation_is_the_semantics(im)
    agree(im)

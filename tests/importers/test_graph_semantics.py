"""The imported graph semantics, rule by rule: each rule with a small ASL machine
where it must fire (a violation, with a counterexample in the file's own state
names) and one where it must not (the property holds)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from saga_models import InvalidDefinition
from saga_models._source import read_document
from saga_models.importers.graph_semantics import ImportedMachine, load_machine
from verifier import check

ROOT = Path(__file__).parents[2]


def task(nxt: str | None = None, *, catch: str | None = None,
         errors: tuple[str, ...] = ("States.ALL",), **extra: Any) -> dict[str, Any]:
    """A Lambda-less Task state (so only the generic error and timeouts)."""
    out: dict[str, Any] = {"Type": "Task", "Resource": "arn:aws:states:::sqs:x"}
    if nxt is None:
        out["End"] = True
    else:
        out["Next"] = nxt
    if catch is not None:
        out["Catch"] = [{"ErrorEquals": list(errors), "Next": catch}]
    out.update(extra)
    return out


def saga(**overrides: dict[str, Any]) -> dict[str, Any]:
    """BookHotel -> BookCar -> Pay, each Catch starting the rollback that
    undoes what came before (names pair them: Cancel/Book, Refund/Pay)."""
    states: dict[str, Any] = {
        "BookHotel": task("BookCar", catch="Failed"),
        "BookCar": task("Pay", catch="CancelHotel"),
        "Pay": task("Done", catch="CancelCar"),
        "Done": {"Type": "Succeed"},
        "CancelCar": task("CancelHotel"),
        "CancelHotel": task("Failed"),
        "Failed": {"Type": "Fail", "Error": "SagaFailed"},
    }
    states.update(overrides)
    return {"StartAt": "BookHotel", "States": states}


def load(tmp: Path, data: dict[str, Any]) -> ImportedMachine:
    path = tmp / "m.asl.json"
    path.write_text(json.dumps(data, indent=2))
    return load_machine(read_document(path))


def verdicts(im: ImportedMachine, faults: str = "fail") -> dict[str, str]:
    return {r.property: r.verdict.value
            for r in check(im, faults=faults, max_states=200_000).results}


def violation(im: ImportedMachine, prop: str, faults: str = "fail") -> str:
    [r] = [r for r in check(im, faults=faults).results if r.property == prop]
    assert r.verdict.value == "violated", r
    assert r.counterexample is not None
    return r.counterexample.violation + "\n" + "\n".join(
        s.action for s in r.counterexample.steps)


def test_a_correct_rollback_holds(tmp_path: Path) -> None:
    assert set(verdicts(load(tmp_path, saga())).values()) == {"holds"}


def test_a_rollback_that_skips_a_compensation_is_violated(tmp_path: Path) -> None:
    im = load(tmp_path, saga(CancelCar=task("Failed")))
    text = violation(im, "compensation_completeness")
    assert "'BookHotel'" in text and "Pay (line" in text


def test_every_choice_branch_on_a_rollback_route_is_explored(tmp_path: Path
                                                             ) -> None:
    # The second branch skips CancelHotel: only exploring it finds the bug.
    route = {"Type": "Choice", "Choices": [
        {"Variable": "$.x", "StringEquals": "a", "Next": "CancelCar"}],
        "Default": "CancelCarOnly"}
    bad = saga(Pay=task("Done", catch="Route"), Route=route,
               CancelCarOnly=task("Failed"))
    assert "CancelCarOnly" in violation(load(tmp_path, bad),
                                        "compensation_completeness")
    good = copy.deepcopy(bad)
    good["States"]["CancelCarOnly"] = task("CancelHotel")
    assert verdicts(load(tmp_path, good))["compensation_completeness"] == "holds"


@pytest.mark.parametrize("attempts", [1000, 99_999_998])
def test_large_retry_counts_are_abstracted(tmp_path: Path, attempts: int) -> None:
    retry = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": attempts}]
    # Retried, then caught: the rollback runs and the saga is consistent.
    good = saga(Pay=task("Done", catch="CancelCar", Retry=retry))
    assert verdicts(load(tmp_path, good))["compensation_completeness"] == "holds"
    # Retried, then uncaught: the retries run out and the error ends the run.
    bad = saga(Pay=task("Done", Retry=retry))
    text = violation(load(tmp_path, bad), "compensation_completeness")
    assert "retries exhausted" in text


def test_retries_are_exact_below_the_cap(tmp_path: Path) -> None:
    retry = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}]
    text = violation(load(tmp_path, saga(Pay=task("Done", Retry=retry))),
                     "compensation_completeness")
    assert text.count("Pay (line") == 2  # the attempt and its one retry


def test_the_last_task_without_timeout_is_the_pivot(tmp_path: Path) -> None:
    # Pay has no compensation, but nothing can fail after it: no alarm.
    data = saga()
    data["States"]["Pay"] = task("Done", catch="CancelCar")
    data["States"]["Ship"] = task("Done")
    assert verdicts(load(tmp_path, data))["compensation_completeness"] == "holds"
    # A later Task that can fail leaves Pay's effect in place: flagged.
    data["States"]["Pay"] = task("Ship", catch="CancelCar")
    data["States"]["Ship"] = task("Done", catch="CancelCar")
    assert "'Pay'" in violation(load(tmp_path, data), "compensation_completeness")


def test_a_timed_out_last_task_may_have_taken_effect(tmp_path: Path) -> None:
    data = saga(Pay=task("Done", catch="CancelCar", TimeoutSeconds=5))
    text = violation(load(tmp_path, data), "compensation_completeness",
                     faults="timeout")
    assert "'Pay'" in text and "States.Timeout (after taking effect)" in text
    data["States"]["Refund"] = task("CancelCar")
    data["States"]["Pay"] = task("Done", catch="Refund", TimeoutSeconds=5)
    assert verdicts(load(tmp_path, data), "timeout")[
        "compensation_completeness"] == "holds"


def test_an_uncaught_timeout_leaves_the_effects(tmp_path: Path) -> None:
    narrow = saga(Pay=task("Done", catch="CancelCar",
                           errors=("States.TaskFailed",), TimeoutSeconds=5))
    text = violation(load(tmp_path, narrow), "compensation_completeness",
                     faults="timeout")
    assert "fails with States.Timeout" in text
    caught = saga(Pay=task("Done", catch="RefundPay",
                           errors=("States.TaskFailed", "States.Timeout"),
                           TimeoutSeconds=5), RefundPay=task("CancelCar"))
    assert verdicts(load(tmp_path, caught), "timeout")[
        "compensation_completeness"] == "holds"


@pytest.mark.parametrize("errors", [["States.ALL"], ["States.TaskFailed"]])
def test_an_empty_error_list_is_refused(tmp_path: Path, errors: list[str]) -> None:
    bad = saga()
    bad["States"]["Pay"]["Catch"][0]["ErrorEquals"] = []
    with pytest.raises(InvalidDefinition) as info:
        load(tmp_path, bad)
    [d] = info.value.diagnostics
    assert d.code == "ASL240" and d.span.line > 0 and d.help
    ok = saga()
    ok["States"]["Pay"]["Catch"][0]["ErrorEquals"] = errors
    assert load(tmp_path, ok).name == "m"


def test_the_machine_timeout_can_cut_a_run(tmp_path: Path) -> None:
    data = {**saga(), "TimeoutSeconds": 60}
    text = violation(load(tmp_path, data), "compensation_completeness",
                     faults="timeout")
    assert "machine TimeoutSeconds" in text
    assert verdicts(load(tmp_path, saga()), "timeout")[
        "compensation_completeness"] == "holds"


def test_a_catch_on_a_compensation_that_skips_the_rest(tmp_path: Path) -> None:
    data = saga(CancelCar=task("CancelHotel", catch="Failed"))
    text = violation(load(tmp_path, data), "eventual_consistency",
                     faults="fail,comp_fail")
    assert "part-way through the rollback" in text
    forever = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 99_999_999}]
    data = saga(CancelCar=task("CancelHotel", catch="Failed", Retry=forever),
                CancelHotel=task("Failed", Retry=forever))
    assert set(verdicts(load(tmp_path, data), "fail,comp_fail").values()) == {
        "holds"}


def test_a_polling_loop_terminates_only_under_an_assumption(tmp_path: Path
                                                            ) -> None:
    poll = saga(
        Pay=task("Wait", catch="CancelCar"),
        Wait={"Type": "Wait", "Seconds": 5, "Next": "Status"},
        Status=task("IsDone", catch="CancelCar"),
        IsDone={"Type": "Choice", "Choices": [
            {"Variable": "$.s", "StringEquals": "IN_PROGRESS", "Next": "Wait"}],
            "Default": "Done"},
    )
    v = verdicts(load(tmp_path, poll))
    assert v["termination"] == "holds"  # under fairness (the service moves on)
    assert v["unconditional_termination"] == "violated"
    assert verdicts(load(tmp_path, saga()))[
        "unconditional_termination"] == "holds"


def test_a_rollback_ending_in_succeed_masks_the_failure(tmp_path: Path) -> None:
    data = saga(CancelHotel=task(None))
    assert "masks the failure" in violation(load(tmp_path, data),
                                            "eventual_consistency")
    assert verdicts(load(tmp_path, saga()))["eventual_consistency"] == "holds"


def _parallel(compensations: list[str]) -> dict[str, Any]:
    branch = {"StartAt": "CheckRoom", "States": {"CheckRoom": task(None)}}
    chain = {c: task(n) for c, n in zip(compensations,
                                        [*compensations[1:], "Failed"],
                                        strict=True)}
    return {"StartAt": "BookHotel", "States": {
        "BookHotel": task("Both", catch="Failed"),
        "Both": {"Type": "Parallel", "Next": "Done", "Branches": [
            {"StartAt": "BookCar", "States": {"BookCar": task(None)}}, branch],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": compensations[0]}]},
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail"},
        **chain}}


def test_a_failing_branch_stops_its_siblings(tmp_path: Path) -> None:
    # Sibling BookCar may have completed: the Catch must undo it too.
    bad = load(tmp_path, _parallel(["CancelHotel"]))
    assert "'BookCar'" in violation(bad, "compensation_completeness")
    good = load(tmp_path, _parallel(["CancelCar", "CancelHotel"]))
    assert verdicts(good)["compensation_completeness"] == "holds"


def test_smt_backend_checks_the_same_graph(tmp_path: Path) -> None:
    # Both ways: the seeded bug is violated, the fixed file holds, under z3.
    bad = check(load(tmp_path, saga(CancelCar=task("Failed"))), faults="fail",
                backend="smt")
    assert bad["compensation_completeness"].verdict.value == "violated"
    assert bad["compensation_completeness"].backend == "smt"
    good = check(load(tmp_path, saga()), faults="fail", backend="smt")
    assert good["compensation_completeness"].verdict.value == "holds"


def test_cli_checks_the_graph_and_refuses_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(saga(CancelCar=task("Failed")), indent=2))
    env = {"PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "sagaproof", "check", str(path),
                          "--faults", "fail", "--no-progress"],
                         capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 1, run.stderr
    assert "VIOLATED  compensation_completeness" in run.stdout
    run = subprocess.run([sys.executable, "-m", "sagaproof", "check", str(path),
                          "--faults", "fail", "--no-progress", "--backend", "smt"],
                         capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 1, run.stderr
    assert "VIOLATED  compensation_completeness" in run.stdout
    assert "Traceback" not in run.stderr


# --- the compensation map, from the structure of the file -------------------------
def _chain(routes: dict[str, list[str]], order: list[str]) -> dict[str, Any]:
    """Forward Tasks ``order``; each one's Catch runs ``routes[f]`` then fails."""
    states: dict[str, Any] = {}
    for i, f in enumerate(order):
        nxt = order[i + 1] if i + 1 < len(order) else "Done"
        route = routes.get(f, [])
        states[f] = task(nxt, catch=f"{f}Route")
        states[f"{f}Route"] = {"Type": "Pass", "Next": route[0] if route
                               else "Failed"}
        for j, h in enumerate(route):
            states.setdefault(h, task(route[j + 1] if j + 1 < len(route)
                                      else "Failed"))
    states["Done"] = {"Type": "Succeed"}
    states["Failed"] = {"Type": "Fail"}
    return {"StartAt": order[0], "States": states}


def test_the_rollback_chains_say_which_task_undoes_which(tmp_path: Path) -> None:
    # No name pairs: X1 is first reached when Beta fails, so it undoes Alpha.
    order = ["Alpha", "Beta", "Gamma"]
    good = _chain({"Beta": ["X1"], "Gamma": ["X2", "X1"]}, order)
    im = load(tmp_path, good)
    assert dict(im.undoes.undoes) == {"X1": ("Alpha",), "X2": ("Beta",)}
    assert verdicts(im)["compensation_completeness"] == "holds"
    # Gamma's rollback forgets Beta's compensation.
    bad = _chain({"Beta": ["X1"], "Gamma": ["X1"]}, order)
    assert "'Beta'" in violation(load(tmp_path, bad), "compensation_completeness")


def test_a_route_through_choice_and_next_is_compensation(tmp_path: Path) -> None:
    # Catch -> Pass -> Choice -> CancelHotel: still the rollback of BookHotel.
    data = saga(BookCar=task("Pay", catch="Log"),
                Log={"Type": "Pass", "Next": "Pick"},
                Pick={"Type": "Choice", "Choices": [
                    {"Variable": "$.x", "IsPresent": True, "Next": "CancelHotel"}],
                    "Default": "CancelHotel"})
    im = load(tmp_path, data)
    assert ("CancelHotel", ("BookHotel",)) in im.undoes.undoes
    assert verdicts(im)["compensation_completeness"] == "holds"


def test_a_notice_on_the_route_undoes_nothing(tmp_path: Path) -> None:
    order = ["Alpha", "Beta"]
    data = _chain({"Beta": ["NotifyFailure"]}, order)
    im = load(tmp_path, data)
    assert im.undoes.undoes == ()
    assert "'Alpha'" in violation(im, "compensation_completeness")
    data = _chain({"Beta": ["X1", "NotifyFailure"]}, order)
    assert verdicts(load(tmp_path, data))["compensation_completeness"] == "holds"


def test_a_read_needs_no_compensation(tmp_path: Path) -> None:
    read = _chain({}, ["GetQuote", "Beta"])
    im = load(tmp_path, read)
    assert "GetQuote" in im.undoes.no_effect
    assert verdicts(im)["compensation_completeness"] == "holds"
    write = _chain({}, ["BuyQuote", "Beta"])
    assert "'BuyQuote'" in violation(load(tmp_path, write),
                                     "compensation_completeness")


def test_the_sidecar_overrides_the_structure(tmp_path: Path) -> None:
    from saga_models.importers._mapping import read_sidecar

    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(_chain({}, ["BuyQuote", "Beta"]), indent=2))
    side = tmp_path / "map.yaml"
    side.write_text("compensations:\n  BuyQuote: none\n  Beta: none\n")
    im = load_machine(read_document(path), sidecar=read_sidecar(side))
    assert verdicts(im)["compensation_completeness"] == "holds"


def test_a_catch_route_of_notices_that_succeeds_masks_the_failure(
        tmp_path: Path) -> None:
    notice = saga(Pay=task("Done", catch="NotifyFailure"),
                  NotifyFailure=task(None), CancelCar=task(None))
    assert "cannot tell the failure" in violation(load(tmp_path, notice),
                                                  "eventual_consistency")
    # A fallback that does the work another way is not a masked failure.
    fallback = saga(Pay=task("Done", catch="PayByInvoice"),
                    PayByInvoice=task(None))
    assert verdicts(load(tmp_path, fallback))["eventual_consistency"] == "holds"


def test_a_callback_without_timeout_may_never_come(tmp_path: Path) -> None:
    resource = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    waits = saga(Pay=task("Done", catch="CancelCar", Resource=resource))
    v = verdicts(load(tmp_path, waits))
    assert v["termination"] == "holds"
    assert v["unconditional_termination"] == "violated"
    bounded = saga(Pay=task("Done", catch="CancelCar", Resource=resource,
                            TimeoutSeconds=3600))
    assert verdicts(load(tmp_path, bounded))["unconditional_termination"] == "holds"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sagaproof", *args],
                          capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(ROOT)})


def test_check_shows_importer_warnings_with_their_location(tmp_path: Path
                                                           ) -> None:
    data = saga(Pay={"Type": "Map", "Next": "Done", "ItemProcessor": {
        "StartAt": "PayItem", "States": {"PayItem": task(None)}}})
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(data, indent=2))
    run = _cli("check", str(path), "--faults", "fail", "--no-progress",
               "--format", "json")
    line = path.read_text().splitlines().index('    "Pay": {') + 1
    assert f"{path}:{line}:" in run.stderr and "warning ASL241" in run.stderr
    json.loads(run.stdout)  # warnings stay out of the machine-readable output
    path.write_text(json.dumps(saga(), indent=2))
    assert "warning" not in _cli("check", str(path), "--no-progress").stderr


def test_mapping_output_matches_its_help(tmp_path: Path) -> None:
    assert "'?'" in " ".join(_cli("mapping", "--help").stdout.split())
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(_chain({}, ["BuyQuote", "GetQuote"]), indent=2))
    out = _cli("mapping", str(path)).stdout
    assert "BuyQuote:" in out and "'?'" in out and "UNMAPPED" in out
    assert "GetQuote:" in out and "none" in out


SW_ORDER = (Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "sw"
            / "order-saga-error-handling.sw.json")


@pytest.mark.skipif(not SW_ORDER.exists(), reason="corpus not at ../shared/corpus")
def test_mapping_of_a_serverless_workflow_is_its_compensated_by() -> None:
    # Each forward state's compensatedBy, as the checker reads it; a state
    # with none is reported unmapped (it was refused as "not ASL" before).
    run = _cli("mapping", str(SW_ORDER))
    assert run.returncode == 0, run.stderr
    assert "reserveStock:" in run.stdout and "CancelStock" in run.stdout
    assert "from compensatedBy" in run.stdout and "UNMAPPED" in run.stdout
    # A sidecar would be ignored: refused, located, for mapping and check.
    for cmd in ("mapping", "check"):
        bad = _cli(cmd, str(SW_ORDER), "--compensations", "map.yaml")
        assert bad.returncode == 2 and "SW150" in bad.stderr, bad.stderr
        assert f"{SW_ORDER}:1:1:" in bad.stderr and "Traceback" not in bad.stderr


def test_check_on_a_path_explores_the_graph(tmp_path: Path) -> None:
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(saga(CancelCar=task("Failed")), indent=2))
    result = check(path, faults="fail")
    assert result.kind == "state machine"
    assert result.verdict.value == "violated"


def test_a_machine_too_large_to_explore_is_refused(tmp_path: Path) -> None:
    from saga_models.importers.graph_semantics import tables

    names = [f"S{i}" for i in range(260)]
    states: dict[str, Any] = {n: {"Type": "Pass", "Next": m}
                              for n, m in zip(names, [*names[1:], "T"],
                                              strict=True)}
    states["T"] = task(None)
    with pytest.raises(InvalidDefinition) as info:
        tables(load(tmp_path, {"StartAt": "S0", "States": states}))
    assert info.value.diagnostics[0].code == "ASL242"
    small = {"StartAt": "S0", "States": {**{n: states[n] for n in names[:5]},
                                         "S4": {"Type": "Pass", "Next": "T"},
                                         "T": task(None)}}
    assert tables(load(tmp_path, small)).regions


def test_check_shows_seata_importer_warnings(tmp_path: Path) -> None:
    data = {"Name": "s", "StartState": "A", "States": {
        "A": {"Type": "ServiceTask", "CompensateState": "U", "Next": "Done",
              "Catches": [{"Exceptions": ["E"], "Next": "Done"}]},
        "U": {"Type": "ServiceTask"}, "Done": {"Type": "Succeed"}}}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data, indent=2))
    run = _cli("check", str(path), "--no-progress")
    assert "warning SEATA310" in run.stderr and f"{path}:" in run.stderr


def test_a_parallel_without_branches_moves_on(tmp_path: Path) -> None:
    data: dict[str, Any] = {"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [], "Next": "T"}, "T": task(None)}}
    assert verdicts(load(tmp_path, data))["termination"] == "holds"
    data["States"]["P"]["Next"] = "P2"
    data["States"]["P2"] = {"Type": "Pass", "Next": "P"}  # a real loop
    assert verdicts(load(tmp_path, data))["termination"] == "violated"


def test_a_handler_that_undoes_nothing_is_a_warning(tmp_path: Path) -> None:
    fallback = load(tmp_path, saga(Pay=task("Done", catch="PayByInvoice"),
                                   PayByInvoice=task(None)))
    [d] = [d for d in fallback.import_diagnostics
           if d.code == "ASL211" and "'PayByInvoice'" in d.message]
    assert d.span.line > 0
    assert not [d for d in load(tmp_path, saga()).import_diagnostics
                if d.code == "ASL211"]

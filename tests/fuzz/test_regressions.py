"""Every crash and false alarm the fuzzing found (issue 15), one test each.

Each input once ended in a traceback with exit code 1, an allocation of
gigabytes, an uncoded internal error, or a wrong verdict. Now: malformed input
is exit code 2 with a located, coded diagnostic and a help line; a definition
bug is a ``VIOLATED`` verdict (docs/errors.md); a correct definition holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from saga_models import FaultModel, InvalidDefinition, SagaBuilder, load, loads
from saga_models.workflow import ExprError, Workflow, parse_expr
from sagaproof.cli import main
from verifier import Verdict, check

from .oracle import run_cli

ASL_TYPE_LIST = {"StartAt": "a", "States": {"a": {"Type": ["Task"]}}}


def _asl_task(**extra: object) -> dict[str, object]:
    task = {"Type": "Task", "Resource": "arn:aws:lambda:::function:f",
            "End": True, **extra}
    return {"StartAt": "a", "States": {"a": task}}


def _seata(**extra: object) -> dict[str, object]:
    return {"Name": "s", "StartState": "a", "States": {
        "a": {"Type": "ServiceTask", "ServiceName": "svc", "ServiceMethod": "m",
              "Next": "b", **extra},
        "b": {"Type": "Succeed"}}}


@pytest.mark.parametrize(("data", "code"), [
    (ASL_TYPE_LIST, "ASL230"),
    (_asl_task(Catch=[5]), "ASL230"),
    (_asl_task(Retry=[5]), "ASL230"),
    (_asl_task(Retry=[{"ErrorEquals": 5}]), "ASL230"),
    (_asl_task(Choices=5), "ASL230"),
    (_asl_task(TimeoutSeconds=10**400), "ASL231"),
    (_seata(Type={"x": 1}), "SEATA330"),
    (_seata(Catch=[{"Exceptions": 5, "Next": "b"}]), "SEATA330"),
    (_seata(Retry=[{"MaxAttempts": "x"}]), "SEATA330"),
    (_seata(Retry=[{"IntervalSeconds": 10**400}]), "SEATA331"),
    (_seata(Retry=[{"IntervalSeconds": "UNKNOWN"}]), "SEATA330"),
    (_seata(Retry=[{"BackoffRate": {"a": 1}}]), "SEATA330"),
    (_seata(Choices=1.5), "SEATA330"),
    ({"stepFunctions": [1], "StartState": "a"}, None),
])
def test_wrongly_typed_importer_sub_nodes(tmp_path: Path, data: dict[str, object],
                                          code: str | None,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # In process (an escaping exception fails the test with its traceback);
    # the first case also runs as a subprocess, as a CI gate would.
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    assert main(["check", "--no-progress", str(path)]) == 2
    err = capsys.readouterr().err
    if code is not None:
        assert f"error {code}:" in err and "help:" in err
        assert f"{path}:1:" in err  # located
    if data is ASL_TYPE_LIST:
        run = run_cli([str(path)])
        assert run.exit_code == 2 and not run.traceback, run.stderr
        assert "error ASL230:" in run.stderr


def test_a_well_typed_import_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_asl_task(Retry=[{"ErrorEquals": ["States.ALL"],
                                                 "MaxAttempts": 2}])))
    (saga,) = _load_all(path)
    assert saga.steps[0].retry.max_attempts == 3


WF = """\
workflow: w
start: [go]
counters: {{charged: {{cap: 3}}}}
services:
  orders:
    initial: NEW
    final: [DONE]
    transitions:
      - {{from: NEW, on: go, to: DONE, guard: "{guard}"}}
"""


@pytest.mark.parametrize(("guard", "code"), [
    ("charged < 'x'", "WF120"),
    ("-orders.state", "WF120"),
    ("min()", "WF120"),
    ("min(5)", "WF120"),
    ("abs(1, 2)", "WF120"),
    ("charged in 5", "WF120"),
    ("'a' * 100000000 != 'b'", "WF120"),
    ("orders.state", "WF120"),
    ("'a' == 'a'", "WF120"),
    ("orders.state == 1", "WF120"),
    ("min < 1", "WF120"),
    ("charged * charged * charged * charged > 0", "WF121"),
    ("charged < 99999999999", "WF121"),
    ("orders.state == 'DNOE'", "WF122"),
])
def test_ill_typed_guards_are_refused_at_load(guard: str, code: str) -> None:
    with pytest.raises(InvalidDefinition) as info:
        loads(WF.format(guard=guard), file="w.yaml")
    (d,) = info.value.diagnostics
    assert d.code == code and d.help and d.span.line == 9


@pytest.mark.parametrize("guard", [
    "charged < 2", "orders.state == 'NEW'", "orders.state in ('NEW', 'DONE')",
    "min(charged, 1) + max((charged, 2)) >= 2", "not charged and true",
    "abs(charged - 2) == 2", "charged * charged * charged < 30",
])
def test_well_typed_guards_load_and_evaluate(guard: str) -> None:
    wf = loads(WF.format(guard=guard), file="w.yaml")
    assert isinstance(wf, Workflow)
    (t,) = wf.services[0].transitions
    assert t.guard is not None
    assert t.guard.evaluate({"charged": 0}, {"orders": "NEW"}) is True
    assert check(wf).verdict is Verdict.HOLDS


def test_no_guard_can_allocate_beyond_the_bound() -> None:
    # The largest value any accepted expression can take is bounded by
    # construction: a product of counters past the bound is refused, and a
    # product just inside evaluates to a machine-word integer.
    e = parse_expr("c * c * c * 127")
    assert e.evaluate({"c": 255}, {}) < 2**31
    with pytest.raises(ExprError) as info:
        parse_expr("c * c * c * 130")
    assert info.value.code == "WF121"
    with pytest.raises(ExprError):
        parse_expr("'" + "a" * 65 + "' == s.state")


def test_retry_bound_of_the_encoding_is_a_rule(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("saga: t\nsteps:\n"
                    "  - {name: a, participant: p, compensation: c,\n"
                    "     retry: {max_attempts: 1000000000}}\n"
                    "  - {name: b, participant: p, kind: pivot}\n")
    run = run_cli([str(path)])
    assert run.exit_code == 2 and not run.traceback
    assert "error SAGA140:" in run.stderr and f"{path}:4:" in run.stderr
    ok = _write(tmp_path, path.read_text().replace("1000000000", "255"))
    assert load(ok).steps[0].retry.max_attempts == 255


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    return path


def test_other_encoding_bounds_are_rules() -> None:
    def chain(n: int) -> SagaBuilder:
        b = SagaBuilder("big")
        for i in range(n):
            b.step(f"s{i}", participant="p", compensation="c")
        return b

    assert len(chain(254).build().steps) == 254
    with pytest.raises(InvalidDefinition) as info:
        chain(255).build()
    assert [d.code for d in info.value.diagnostics] == ["SAGA141"]
    ok = chain(2).compensation_chain("s1", ["s0"] * 255).build()
    assert len(ok.compensation_chains[0].steps) == 255
    with pytest.raises(InvalidDefinition) as info:
        chain(2).compensation_chain("s1", ["s0"] * 256).build()
    assert [d.code for d in info.value.diagnostics] == ["SAGA142"]
    with pytest.raises(InvalidDefinition, match="SAGA140"):
        (SagaBuilder("t").step("a", participant="p", compensation="c")
         .compensation_policy(max_attempts=256).build())
    with pytest.raises(ValueError, match="from 0 to 255"):
        FaultModel(crashes=256)
    with pytest.raises(ValueError, match="from 0 to 255"):
        FaultModel.parse("duplicate=1000")
    assert FaultModel.parse("crash=255").crashes == 255


def test_fault_count_over_the_bound_is_a_usage_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    path = _write(tmp_path, "saga: t\nsteps:\n  - {name: a, participant: p, "
                  "compensation: c}\n")
    assert main(["check", "--faults", "crash=1000", str(path)]) == 2
    assert "from 0 to 255" in capsys.readouterr().err


RETRIABLE = """\
saga: t
steps:
  - {name: a, participant: p, compensation: c}
  - {name: b, participant: p, kind: pivot}
  - {name: c, participant: p, kind: retriable}
"""


def test_retriable_without_retry_is_unbounded_and_holds() -> None:
    saga = loads(RETRIABLE)
    assert saga.steps[2].retry.unbounded
    r = check(saga)
    assert r.verdict is Verdict.HOLDS, [x.reason for x in r.results]
    built = (SagaBuilder("t").step("a", participant="p", compensation="c")
             .step("b", participant="p", kind="pivot")
             .step("c", participant="p", kind="retriable",
                   retry={"initial_interval": 2}).build())
    assert built.steps[2].retry.unbounded
    assert check(built).verdict is Verdict.HOLDS


def test_retriable_with_a_written_bound_is_still_violated() -> None:
    saga = loads(RETRIABLE.replace("kind: retriable}",
                                   "kind: retriable, retry: {max_attempts: 3}}"))
    r = check(saga)["structure"]
    assert r.verdict is Verdict.VIOLATED and "SAGA116" in r.reason


UNHANDLED = """\
workflow: w
start: [go]
services:
  orders:
    initial: NEW
    final: [DONE]
    transitions:
      - {from: NEW, on: go, to: DONE, emit: [nobody]}
"""


def test_emitted_and_handled_by_nobody_is_a_verdict(tmp_path: Path) -> None:
    path = _write(tmp_path, UNHANDLED)
    run = run_cli([str(path)])
    assert run.exit_code == 1 and not run.traceback, run.stderr
    assert "VIOLATED  structure" in run.stdout and "WF107" in run.stdout
    for backend in ("explicit", "smt"):
        r = check(load(path), backend=backend)["structure"]
        assert r.verdict is Verdict.VIOLATED and "WF107" in r.reason
    fixed = _write(tmp_path, UNHANDLED.replace("    final: [DONE]\n",
                                               "    final: [DONE]\n"
                                               "    ignore: [nobody]\n"))
    for backend in ("explicit", "smt"):
        assert check(load(fixed), backend=backend)["structure"].verdict \
            is Verdict.HOLDS


def test_control_character_in_yaml_is_located(tmp_path: Path) -> None:
    # Found by the slow CLI tier (mutant 20011): the reader's error had an
    # offset, not a line, so the diagnostic named only the file.
    path = tmp_path / "s.yaml"
    path.write_bytes(b"saga: t\nsteps:\n  - {name: a\x01, participant: p}\n")
    with pytest.raises(InvalidDefinition) as info:
        load(path)
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("SAGA004", 3, 13)
    assert "U+0001" in d.message and d.help


def test_a_number_too_large_for_a_float_is_a_range_error(tmp_path: Path) -> None:
    # Found by the fuzzer on main: float(10**400) raised OverflowError in the
    # loader; now it reads as infinity, which the range rule reports.
    path = _write(tmp_path, "saga: t\nsteps:\n  - {name: a, participant: p, "
                  f"compensation: c, timeout: {10**400}}}\n")
    with pytest.raises(InvalidDefinition) as info:
        load(path)
    (d,) = info.value.diagnostics
    assert d.code == "SAGA127" and "timeout=inf" in d.message and d.span.line == 3


def test_asl_retry_past_the_attempt_bound(tmp_path: Path) -> None:
    # ASL's own bound is 99,999,999 (read as "until it succeeds"); a count
    # between the model's 255 and that is a located rule, not an overflow.
    def retry(n: int) -> Path:
        path = tmp_path / f"r{n}.asl.json"
        path.write_text(json.dumps(_asl_task(Retry=[
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": n}])))
        return path

    # `check` explores the file's own graph, where retry counts past 2 are
    # abstracted: a verdict, not a bound.
    run = run_cli([str(retry(1000))])
    assert run.exit_code == 0 and not run.traceback, run.stderr
    # Lowered to a native saga (export, mapping), the count is a state field:
    # past 255 it is a located rule.
    with pytest.raises(InvalidDefinition) as info:
        _load_all(retry(1000))
    assert any(d.code == "SAGA140" and "max_attempts=1001" in d.message
               for d in info.value.diagnostics)
    (saga,) = _load_all(retry(99_999_999))
    assert saga.steps[0].retry.unbounded
    (saga,) = _load_all(retry(254))
    assert saga.steps[0].retry.max_attempts == 255


def _load_all(path: Path) -> list[Any]:
    from saga_models.importers import load_all

    return list(load_all(path))

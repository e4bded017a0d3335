"""Machine outputs of ``sagaproof check``: SARIF that code scanning accepts, ITF
traces itf-py reads back, bad input reported in the chosen format, and exit
codes that never turn a closed pipe into a verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from sagaproof.cli import main

ROOT = Path(__file__).parents[1]
BUGS = ROOT / "tests" / "quality" / "sagas" / "bugs"
HOTEL = "examples/hotel_cancel_needs_id.yaml"
DOUBLE = "examples/payment_double_charge.yaml"
BAD = "saga: x\nsteps:\n  - name: a\n    participant: p\n    kind: wat\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _no_extra(model: Any, where: str = "$") -> list[str]:
    """Keys the SARIF object model did not know (it allows extras, so a
    misspelt key would otherwise pass silently)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            # SARIF keys the object model does not declare (valid per the spec).
            if key not in {"$schema", "columnKind", "toolExecutionNotifications"}:
                found.append(f"{where}.{key}")
        for name in type(model).model_fields:
            found += _no_extra(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            found += _no_extra(item, f"{where}[{i}]")
    return found


def _sarif(out: str) -> Any:
    from sarif_pydantic import Sarif

    doc = Sarif.model_validate_json(out)  # validates the structure on parse
    assert _no_extra(doc) == []
    return doc


def _line_of(path: str, needle: str) -> int:
    for i, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_sarif_violation_has_lines_codeflow_and_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "check", DOUBLE, "--format", "sarif")
    assert code == 1
    doc = _sarif(out)
    (run_,) = doc.runs
    driver = run_.tool.driver
    assert driver.name == "sagaproof" and driver.version
    rules = {r.id: r for r in driver.rules}
    assert {"eventual_consistency", "compensation_completeness"} <= set(rules)
    for rule in rules.values():
        assert rule.help is not None and rule.help.text
        assert rule.help_uri and rule.help_uri.startswith("https://")
    charge = _line_of(DOUBLE, "- name: charge")
    by_rule = {r.rule_id: r for r in run_.results}
    ec = by_rule["eventual_consistency"]
    assert driver.rules[ec.rule_index].id == "eventual_consistency"
    region = ec.locations[0].physical_location.region
    # The charge that took effect twice is the last step that acted... or ship
    # after it; either way a real step line, never line 1.
    assert region.start_line > 1 and region.start_column
    (flow,) = ec.code_flows
    steps = flow.thread_flows[0].locations
    raw = json.loads(out)["runs"][0]["results"]
    texts = [s.location.message.text for s in steps]
    assert texts[0] == "1. send reserve_stock"
    lines = [s.location.physical_location.region.start_line for s in steps]
    # Each event sits on its step's line: charge's events on charge's line.
    for text, line in zip(texts, lines, strict=True):
        if "charge" in text:
            assert line == charge, (text, line)
        elif "reserve_stock" in text:
            assert line == _line_of(DOUBLE, "name: reserve_stock")
    assert [s.execution_order for s in steps] == list(range(1, len(steps) + 1))
    assert all(r["level"] == "error" for r in raw)


def test_sarif_structure_rule_at_its_column(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = str(BUGS / "two_pivots.yaml")
    code, out, _ = run(capsys, "check", path, "--format", "sarif")
    assert code == 1
    doc = _sarif(out)
    (res,) = doc.runs[0].results
    assert res.rule_id == "SAGA112"
    region = res.locations[0].physical_location.region
    assert region.start_line == _line_of(path, "name: ship")
    assert region.start_column > 1
    assert res.properties["property"] == "structure"


def test_sarif_holds_is_empty_and_unknown_is_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "check", "examples/trip_booking.saga.yaml",
                       "--format", "sarif", "--no-progress")
    assert code == 0
    assert _sarif(out).runs[0].results == []
    big = ROOT / "tests" / "quality" / "sagas" / "correct" / "wide_parallel.yaml"
    code, out, _ = run(capsys, "check", str(big), "--format", "sarif",
                       "--max-states", "100")
    assert code == 3
    levels = {r.level.value for r in _sarif(out).runs[0].results}
    assert levels == {"warning"}


@pytest.mark.parametrize("fmt", ["json", "junit", "sarif"])
def test_bad_input_in_the_chosen_format(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path, fmt: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    code, out, err = run(capsys, "check", str(bad), DOUBLE, "--format", fmt)
    assert code == 2
    assert "SAGA125" in err
    if fmt == "json":
        entries = json.loads(out)
        (error,) = [e for e in entries if e["verdict"] == "error"]
        (d,) = error["diagnostics"]
        assert d["code"] == "SAGA125" and d["help"]
        assert d["location"]["line"] == 5 and d["location"]["column"] == 11
        # The good file is still checked and reported.
        assert {e["verdict"] for e in entries} == {"error", "violated"}
    elif fmt == "junit":
        root = ET.fromstring(out.split("?>", 1)[1])
        (case,) = [c for c in root.iter("testcase") if c.get("name") == "SAGA125"]
        error = case.find("error")
        assert error is not None and "help:" in (error.text or "")
    else:
        results = _sarif(out).runs[0].results
        (d,) = [r for r in results if r.rule_id == "SAGA125"]
        region = d.locations[0].physical_location.region
        assert (region.start_line, region.start_column) == (5, 11)


def test_usage_errors_are_diagnostics(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", DOUBLE, "--faults", "lightning",
                         "--format", "json")
    assert code == 2
    (entry,) = json.loads(out)
    assert entry["diagnostics"][0]["code"] == "SAGA010"
    assert "help:" in err
    code, out, _ = run(capsys, "check", DOUBLE, "--property", "speed",
                       "--format", "json")
    assert code == 2
    assert json.loads(out)[0]["diagnostics"][0]["code"] == "SAGA011"
    # In SARIF a problem with no file to annotate is a notification of the
    # run (and the run did not succeed), not a result.
    code, out, _ = run(capsys, "check", DOUBLE, "--faults", "lightning",
                       "--format", "sarif")
    assert code == 2
    doc = _sarif(out)
    assert doc.runs[0].results == []
    (invocation,) = doc.runs[0].invocations
    assert invocation.execution_successful is False
    raw = json.loads(out)["runs"][0]["invocations"][0]
    assert raw["toolExecutionNotifications"][0]["descriptor"]["id"] == "SAGA010"


def test_text_diagnostics_one_per_line(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD + "  - name: a\n    participant: p\n")
    code, out, err = run(capsys, "check", str(bad))
    assert code == 2 and out == ""
    lines = err.splitlines()
    errors = [i for i, line in enumerate(lines) if ": error SAGA" in line]
    assert len(errors) == 2
    for i in errors:
        assert lines[i + 1].startswith("  help: ")
    # A structure verdict with several diagnostics keeps one per line too.
    multi = tmp_path / "multi.yaml"
    multi.write_text(
        "saga: m\nsteps:\n"
        "  - {name: a, participant: p, kind: pivot}\n"
        "  - {name: b, participant: p, kind: pivot}\n"
        "  - {name: c, participant: p, kind: pivot}\n")
    code, out, _ = run(capsys, "check", str(multi), "--property", "structure")
    assert code == 1
    errs = [line for line in out.splitlines() if "error SAGA112" in line]
    assert len(errs) == 2 and not any("; " + str(multi) in e for e in errs)


def _closed_pipe_run(*argv: str) -> subprocess.CompletedProcess[bytes]:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write
    try:
        return subprocess.run(
            [sys.executable, "-m", "sagaproof", *argv], stdout=write,
            stderr=subprocess.PIPE, cwd=ROOT, check=False, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write)


def test_closed_stdout_is_not_a_verdict() -> None:
    proc = _closed_pipe_run("check", DOUBLE, "--format", "json")
    assert proc.returncode in {0, 141}
    assert b"Traceback" not in proc.stderr
    proc = _closed_pipe_run("check", HOTEL)
    assert proc.returncode in {0, 141}


def test_itf_round_trips_through_itf_py(capsys: pytest.CaptureFixture[str]) -> None:
    from itf_py import trace_from_json

    from verifier.itf import from_itf_value

    for path in (DOUBLE, HOTEL,
                 "tests/quality/workflows/bug_no_dedup_choreography.yaml"):
        code, out, _ = run(capsys, "check", path, "--format", "json")
        assert code == 1
        cexes = [r["counterexample"] for e in json.loads(out)
                 for r in e["results"] if r["counterexample"]]
        assert cexes
        for itf in cexes:
            text = json.dumps(itf)
            assert "null" not in text  # ITF has no null
            trace = trace_from_json(json.loads(text))
            assert trace.vars and len(trace.states) == len(itf["states"])
            assert all(set(s.values) == set(trace.vars) for s in trace.states)
            if trace.loop is not None:
                assert 0 <= trace.loop < len(trace.states)
            # Every value read back by itf-py is the value we meant.
            for raw, state in zip(itf["states"], trace.states, strict=True):
                assert state.meta["index"] == raw["#meta"]["index"]
                for var in trace.vars:
                    assert _plain(state.values[var]) == from_itf_value(raw[var])


def _plain(value: Any) -> Any:
    """itf-py's values (namedtuple records, variants) as plain data."""
    if hasattr(value, "_fields"):
        if getattr(type(value), "_itf_variant", False):
            return None if type(value).__name__ == "Nil" else _plain(value[0])
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_itf_encodes_ints_and_absent_values() -> None:
    from verifier.itf import from_itf_value, itf_value

    value = {"n": 3, "big": 2**70, "flag": True, "none": None, "xs": [1, "a"]}
    encoded = itf_value(value)
    assert encoded["n"] == {"#bigint": "3"}
    assert encoded["flag"] is True
    assert encoded["none"] == {"tag": "Nil", "value": "U_OF_UNIT"}
    assert from_itf_value(encoded) == value
    assert from_itf_value(itf_value(1.5)) == 1.5
    with pytest.raises(TypeError):
        itf_value(object())


def _cli_in_subprocess(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
        check=False, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_missing_extra_is_a_diagnostic_not_a_traceback() -> None:
    # z3 made unimportable, as in an install without the smt extra.
    proc = _cli_in_subprocess(
        "import sys; sys.modules['z3'] = None\n"
        "from sagaproof.cli import main\n"
        f"raise SystemExit(main(['check', {DOUBLE!r}, '--backend', 'smt']))")
    assert proc.returncode == 2, proc.stderr
    assert "SAGA012" in proc.stderr and "sagaproof[smt]" in proc.stderr
    assert "Traceback" not in proc.stderr
    # The explicit backend does not need it.
    proc = _cli_in_subprocess(
        "import sys; sys.modules['z3'] = None; sys.modules['sympy'] = None\n"
        "from sagaproof.cli import main\n"
        f"raise SystemExit(main(['check', {DOUBLE!r}, '--no-progress']))")
    assert proc.returncode == 1, proc.stderr


def test_help_and_version_import_nothing_heavy() -> None:
    proc = _cli_in_subprocess(
        "import sys\n"
        "from sagaproof.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ['z3', 'sympy', 'networkx', 'jsonschema', 'hypothesis',\n"
        "         'saga_models', 'verifier', 'runtime', 'yaml']\n"
        "print(sorted(m for m in heavy if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    proc = _cli_in_subprocess(
        "from sagaproof.cli import main\nmain(['--version'])")
    assert proc.returncode == 0
    assert proc.stdout.startswith("sagaproof ")


def test_explicit_check_does_not_load_z3() -> None:
    proc = _cli_in_subprocess(
        "import sys\nfrom sagaproof.cli import main\n"
        f"code = main(['check', {DOUBLE!r}, '--no-progress'])\n"
        "print(code, sorted(m for m in ('z3', 'sympy') if m in sys.modules))")
    assert proc.stdout.strip().splitlines()[-1] == "1 []", proc.stderr


def test_sarif_workflow_steps_on_their_transitions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = "tests/quality/workflows/bug_no_dedup_choreography.yaml"
    code, out, _ = run(capsys, "check", path, "--format", "sarif")
    assert code == 1
    doc = _sarif(out)
    res = next(r for r in doc.runs[0].results if r.code_flows)
    steps = res.code_flows[0].thread_flows[0].locations
    by_text = {s.location.message.text: s.location.physical_location.region
               for s in steps}
    exceeded = next(r for t, r in by_text.items()
                    if "orders <- credit_limit_exceeded" in t)
    # The event is drawn at the transition that handles it, not at line 1.
    assert exceeded.start_line == _line_of(path, "on: credit_limit_exceeded")


@pytest.mark.parametrize(("line", "expected"), [
    ("sagaproof ch", "check"), ("sagaproof check --for", "--format"),
    ("sagaproof check --format sa", "sarif")])
def test_shell_completion(tmp_path: Path, line: str, expected: str) -> None:
    out = tmp_path / "completions"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_ARGCOMPLETE": "1",
           "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    proc = subprocess.run([sys.executable, "-m", "sagaproof"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert [c.strip() for c in out.read_text().split("\n")] == [expected]

"""The check and graph commands: formats, exit codes, golden renderings."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sagaproof.cli import main

ROOT = Path(__file__).parents[1]
GOLDEN = Path(__file__).parent / "golden"
BUGS = ROOT / "tests" / "quality" / "sagas" / "bugs"
GOOD = ROOT / "examples" / "trip_booking.saga.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "check", str(GOOD), "--no-progress")[0] == 0
    assert run(capsys, "check", str(BUGS / "two_pivots.yaml"))[0] == 1
    # A budget too small for a verdict: unknown, exit 3.
    big = ROOT / "tests" / "quality" / "sagas" / "correct" / "wide_parallel.yaml"
    code, out, _ = run(capsys, "check", str(big), "--max-states", "100")
    assert code == 3
    assert "state budget reached" in out
    assert run(capsys, "check", str(tmp_path / "missing.yaml"))[0] == 2
    assert run(capsys, "check", str(GOOD), "--faults", "lightning")[0] == 2
    # No path and no [tool.sagaproof] paths: a usage diagnostic (SAGA016).
    assert run(capsys, "check")[0] == 2
    with pytest.raises(SystemExit) as exc:
        main(["check", "--format", "yaml"])
    assert exc.value.code == 2


def test_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", str(BUGS / "non_idempotent_charge.yaml"),
                       "--format", "json")
    assert code == 1
    (entry,) = json.loads(out)
    results = {r["property"]: r for r in entry["results"]}
    ec = results["eventual_consistency"]
    assert ec["verdict"] == "violated"
    assert ec["fault_model"] == "fail,timeout,comp_fail,late,crash=1,duplicate=1"
    itf = ec["counterexample"]
    assert itf["#meta"]["format"] == "ITF"
    assert [s["#meta"]["index"] for s in itf["states"]] == list(
        range(len(itf["states"]))
    )
    assert itf["states"][-1]["phase"] == "COMPLETED"
    assert itf["states"][-1]["steps"]["charge"]["effect"] == {"#bigint": "2"}
    assert set(ec["stats"]) == {"states", "transitions", "seconds", "depth",
                                 "engine"}
    assert results["termination"]["counterexample"] is None


def test_junit_and_sarif(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", str(GOOD), str(BUGS / "two_pivots.yaml"),
                       "--format", "junit")
    assert code == 1
    root = ET.fromstring(out.split("?>", 1)[1])
    suites = root.findall("testsuite")
    assert [s.get("failures") for s in suites] == ["0", "1"]
    code, out, _ = run(capsys, "check", str(BUGS / "two_pivots.yaml"),
                       "--format", "sarif")
    doc = json.loads(out)
    assert doc["version"] == "2.1.0"
    assert [r["ruleId"] for r in doc["runs"][0]["results"]] == ["SAGA112"]


@pytest.mark.parametrize("name", ["non_idempotent_charge",
                                  "refund_needs_charge_id_retry_forever",
                                  "chain_wrong_order", "retriable_bounded"])
def test_golden_text(capsys: pytest.CaptureFixture[str], name: str) -> None:
    """The human rendering of counterexamples, pinned. Regenerate with
    SAGAPROOF_UPDATE_GOLDEN=1 after an intended change, and read the diff."""
    _, out, _ = run(capsys, "check", f"tests/quality/sagas/bugs/{name}.yaml")
    text = "\n".join(line for line in out.splitlines()
                     if not line.startswith("  faults:"))
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("SAGAPROOF_UPDATE_GOLDEN"):
        golden.write_text(text + "\n")
    assert text + "\n" == golden.read_text()


def test_graph_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "graph", "examples/order_saga.yaml")
    assert code == 0
    assert out.startswith("flowchart LR")
    # both parallel roots feed the pivot
    assert "s0 --> s2" in out and "s1 --> s2" in out
    code, out, _ = run(capsys, "graph", "examples/order_saga.yaml", "--format", "dot")
    assert out.startswith('digraph "order_saga"') and out.rstrip().endswith("}")
    code, out, err = run(capsys, "graph", str(GOOD), "--states", "--max-states", "5")
    assert out.startswith("stateDiagram-v2") and "cut at 5 states" in err
    code, out, _ = run(capsys, "graph", str(GOOD), "--states", "--format", "dot",
                       "--faults", "fail")
    assert out.count("peripheries=2") >= 2  # COMPLETED and COMPENSATED both reached

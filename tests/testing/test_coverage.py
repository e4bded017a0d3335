"""Coverage witnesses: what the generated tests reached against what the model
can reach."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from saga_models import FaultModel
from sagaproof.cli import main
from sagaproof.testing import (
    CoverageStore,
    check_participants,
    collected,
    coverage_report,
    reachable,
)
from tests.testing.participants import refund


def test_the_model_bounds_what_can_be_reached() -> None:
    none = reachable(refund.SAGA, FaultModel.parse("none"))
    assert "terminal:COMPLETED" in none
    assert "terminal:COMPENSATED" not in none and "recovery" not in none
    full = reachable(refund.SAGA)
    assert {"terminal:COMPENSATED", "recovery", "comp_outcome:charge:failed",
            "outcome:ship:failed"} <= full
    assert "outcome:ship:unknown" not in full  # ship has no timeout


@pytest.mark.slow
def test_generated_tests_reach_every_reachable_witness() -> None:
    collected().pop(refund.SAGA.content_hash, None)
    check_participants(refund.SAGA, refund.correct,
                       settings=settings(max_examples=300, derandomize=True,
                                         database=None, deadline=None))
    _, _, reached = collected()[refund.SAGA.content_hash]
    report = coverage_report(refund.SAGA, reached)
    assert report.missing == (), report.text()
    assert report.ratio == 1.0


def test_never_reached_is_reported(tmp_path: Path, capsys: object) -> None:
    store = CoverageStore(tmp_path / "cov.json")
    store.add(refund.SAGA, {"step:charge", "outcome:charge:ok", "step:ship",
                            "outcome:ship:ok", "terminal:COMPLETED"},
              faults=FaultModel())
    store.save()
    report = coverage_report(refund.SAGA, CoverageStore(tmp_path / "cov.json")
                             .reached(refund.SAGA))
    assert "terminal:COMPENSATED" in report.missing
    assert "step:charge" not in report.missing
    assert "never reached:" in report.text()


def test_the_command_exits_1_when_something_was_never_reached(
        tmp_path: Path) -> None:
    saga_file = tmp_path / "one.yaml"
    saga_file.write_text("saga: one\nsteps:\n  - {name: a, participant: p, "
                         "action: x, compensation: u}\n")
    data = tmp_path / "cov.json"
    from saga_models import load

    saga = load(saga_file)
    store = CoverageStore(data)
    store.add(saga, {"step:a", "outcome:a:ok", "terminal:COMPLETED"},
              faults=FaultModel.parse("none"))
    store.save()
    assert main(["coverage", str(saga_file), "--data", str(data)]) == 0
    store.add(saga, set(), faults=FaultModel())
    data.unlink()
    store2 = CoverageStore(data)
    store2.add(saga, {"step:a"}, faults=FaultModel())
    store2.save()
    assert main(["coverage", str(saga_file), "--data", str(data)]) == 1
    assert main(["coverage", str(saga_file), "--data", str(data),
                 "--fail-under", "0"]) == 0


def test_the_command_reports_workflows_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Workflow witnesses (transitions, outcomes) go through the same command:
    full marks when every reachable one is recorded, exit 1 when one is not."""
    import json

    from saga_models import load
    from sagaproof.testing import workflow_reachable

    examples = Path(__file__).parents[2] / "examples"
    path = examples / "workflows" / "order_saga.workflow.yaml"
    wf = load(path)
    faults = FaultModel()
    can = set(workflow_reachable(wf, faults))
    assert any(w.startswith("outcome:") for w in can)
    data = tmp_path / "cov.json"
    store = CoverageStore(data)
    store.add(wf, can, faults=faults)
    store.save()
    assert main(["coverage", str(path), "--data", str(data)]) == 0
    missing = sorted(can)[0]
    data.unlink()
    store = CoverageStore(data)
    store.add(wf, can - {missing}, faults=faults)
    store.save()
    capsys.readouterr()
    assert main(["coverage", str(path), "--data", str(data), "--json"]) == 1
    [report] = json.loads(capsys.readouterr().out)
    assert report["missing"] == [missing]


_SAVER = """\
import sys
from sagaproof.testing import CoverageStore

path, who = sys.argv[1], sys.argv[2]
for k in range(25):
    store = CoverageStore(path)
    store._data[f"{who}-{k}"] = {"name": who, "faults": "none", "reached": []}
    store.save()
"""


def test_parallel_workers_saving_one_store_lose_nothing(tmp_path: Path) -> None:
    """pytest-xdist workers each save the store at the end of their session:
    every record survives and the file is never torn."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "coverage.json"
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [subprocess.Popen([sys.executable, "-c", _SAVER, str(path), f"w{n}"],
                              env=env, stderr=subprocess.PIPE, text=True)
             for n in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    data = json.loads(path.read_text())["definitions"]
    assert set(data) == {f"w{n}-{k}" for n in range(4) for k in range(25)}

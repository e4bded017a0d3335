"""The pytest plugin generates handler tests for the event workflows a
conftest binds, run in a subprocess on a scratch project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testing.handlers import double_charge

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """\
from hypothesis import settings
from examples.workflows import handlers
from sagaproof.testing import WorkflowBinding
from tests.testing.handlers import double_charge

settings.register_profile("plugin", max_examples=40, stateful_step_count=12,
                          derandomize=True, database=None, deadline=None)
settings.load_profile("plugin")

def pytest_sagaproof_workflow_binding(workflow, path):
    if workflow.name == "pay_once":
        return double_charge.{which}
    if workflow.name == "order_saga":
        return WorkflowBinding(handlers=lambda: handlers.order_saga)
    return None
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "pay_once.workflow.yaml").write_text(double_charge.SOURCE)
    shutil.copy(ROOT / "examples" / "workflows" / "order_saga.workflow.yaml", defs)
    return tmp_path


def _run(tmp: Path, which: str) -> subprocess.CompletedProcess[str]:
    (tmp / "conftest.py").write_text(CONFTEST.format(which=which))
    (tmp / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf",
         "--sagaproof", "defs"],
        check=False, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


def test_bound_workflow_handlers_become_passing_items(project: Path) -> None:
    out = _run(project, "correct")
    assert out.returncode == 0, out.stdout + out.stderr
    # Seven properties per workflow (structure included), and one handlers
    # item each.
    assert "16 passed" in out.stdout, out.stdout
    data = json.loads((project / ".sagaproof" / "coverage.json").read_text())
    names = {e["name"] for e in data["definitions"].values()}
    assert names == {"pay_once", "order_saga"}


def test_buggy_handlers_fail_with_the_shrunk_schedule(project: Path) -> None:
    out = _run(project, "buggy")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAILED defs/pay_once.workflow.yaml::handlers" in out.stdout
    assert "1 failed, 15 passed" in out.stdout
    assert "charged 2x" in out.stdout
    assert "workflow schedule" in out.stdout and "replay it with:" in out.stdout
    assert "workflow = load('" in out.stdout
    assert "/defs/pay_once.workflow.yaml')" in out.stdout

"""The pytest plugin, run in a subprocess on a scratch project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
saga: checkout
steps:
  - {name: charge, participant: payments, action: charge, compensation: refund}
  - {name: ship, participant: shipping, action: book, compensation: cancel}
compensation_policy: {retry: forever}
"""
DOUBLE_CHARGE = """\
saga: double
steps:
  - {name: charge, participant: payments, action: charge, compensation: refund,
     idempotent: false}
"""
BROKEN = """\
saga: broken
steps:
  - {name: a, participant: p, action: x, compensation: u, depends_on: [a]}
"""

CONFTEST = """\
from hypothesis import settings
from tests.testing.participants import refund

settings.register_profile("plugin", max_examples={examples}, derandomize=True,
                          database=None, deadline=None{steps})
settings.load_profile("plugin")

def pytest_sagaproof_binding(saga, path):
    if saga.name == "checkout":
        return refund.{which}
    return None
"""


def _run(tmp: Path, *args: str,
         which: str = "correct") -> subprocess.CompletedProcess[str]:
    # The buggy refund needs a crash between a refund and its reply: a longer
    # search than the correct participants' (whose runs must all pass). With
    # Hypothesis's 50 steps per example only its target phase reached it
    # (250 s of CPU); 25 steps, as tests/testing/test_generated.py uses, find
    # it in the generation phase (48 s).
    examples = 300 if which == "buggy" else 120
    steps = ", stateful_step_count=25" if which == "buggy" else ""
    (tmp / "conftest.py").write_text(CONFTEST.format(which=which,
                                                     examples=examples,
                                                     steps=steps))
    (tmp / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest",  # the plugin loads by its entry point
         "-p", "no:cacheprovider", "-q", "-rf", *args],
        check=False, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "checkout.saga.yaml").write_text(GOOD)
    (defs / "notes.yaml").write_text("just: some config\n")
    return tmp_path


def test_a_correct_folder_passes_with_one_item_per_property(project: Path) -> None:
    out = _run(project, "--sagaproof", "defs")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 passed" in out.stdout  # four properties and the participants


def test_a_violation_fails_with_its_counterexample(project: Path) -> None:
    (project / "defs" / "double.yaml").write_text(DOUBLE_CHARGE)
    out = _run(project, "--sagaproof", "defs")
    assert out.returncode == 1
    assert "FAILED defs/double.yaml::eventual_consistency" in out.stdout
    assert "charge: command delivered twice" in out.stdout


def test_a_definition_that_does_not_load_fails_with_its_diagnostics(
        project: Path) -> None:
    (project / "defs" / "broken.yaml").write_text(BROKEN)
    out = _run(project, "--sagaproof", "defs/broken.yaml")
    assert out.returncode == 1
    assert "SAGA103" in out.stdout


def test_the_flag_takes_no_path_and_collect_only_is_truthful(
        project: Path) -> None:
    """``--sagaproof defs``: ``defs`` is pytest's path, collected as pytest
    collects test modules, and ``--collect-only`` counts the items it lists."""
    out = _run(project, "--sagaproof", "defs", "--collect-only")
    assert out.returncode == 0, out.stdout + out.stderr
    items = [line for line in out.stdout.splitlines() if "::" in line]
    assert items == [f"defs/checkout.saga.yaml::{p}" for p in (
        "compensation_completeness", "termination", "eventual_consistency",
        "structure", "participants")], out.stdout
    assert "5 tests collected" in out.stdout


def test_without_the_flag_no_definition_is_collected(project: Path) -> None:
    (project / "test_plain.py").write_text("def test_plain():\n    pass\n")
    out = _run(project, "defs", "test_plain.py", "--collect-only")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test_plain.py::test_plain" in out.stdout
    assert "1 test collected" in out.stdout, out.stdout


def test_configured_paths_join_the_test_paths(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.sagaproof]\npaths = ["defs"]\n')
    (project / "test_plain.py").write_text("def test_plain():\n    pass\n")
    out = _run(project, "--sagaproof", "--collect-only")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test_plain.py::test_plain" in out.stdout
    assert "defs/checkout.saga.yaml::termination" in out.stdout
    assert "6 tests collected" in out.stdout, out.stdout
    # Glob patterns too, as sagaproof check reads the same key.
    (project / "pyproject.toml").write_text(
        '[tool.sagaproof]\npaths = ["defs/*.saga.yaml"]\n')
    out = _run(project, "--sagaproof", "--collect-only")
    assert "6 tests collected" in out.stdout, out.stdout
    # Paths on the command line win over the configured ones, as testpaths.
    out = _run(project, "--sagaproof", "test_plain.py", "--collect-only")
    assert "1 test collected" in out.stdout, out.stdout


def test_the_plugin_imports_nothing_heavy_until_a_definition_is_collected(
        ) -> None:
    """pytest loads the plugin into every run of a project that installs it;
    the definitions, checkers, runtime and Hypothesis wait for a definition
    (``bench/plugin_bench.py`` measures the time this saves)."""
    code = ("import sys, pytest; before = set(sys.modules); "
            "import sagaproof.testing.plugin; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}))")
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['sagaproof', 'tomllib']", out.stdout


def test_the_shipped_examples_collect_exactly_their_items() -> None:
    """``pytest --sagaproof examples/``: one item per property of every
    definition under examples/ and one per binding of examples/conftest.py,
    and nothing from the project's own test paths."""
    from saga_models import FaultModel, InvalidDefinition, Saga, load
    from verifier import compile_model

    want = set()
    for path in sorted((ROOT / "examples").rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".json"):
            continue
        rel = path.relative_to(ROOT).as_posix()
        try:
            definition = load(path, scenarios=True)
        except InvalidDefinition:
            # A definition shipped to show a refusal is one failing load item.
            if "# expect: refused" in path.read_text():
                want.add(f"{rel}::load")
            continue
        _, ts = compile_model(definition, FaultModel.parse("all"))
        want |= {f"{rel}::{p.name}" for p in ts.properties}
        bound = ({"trip_booking", "order_saga"} if isinstance(definition, Saga)
                 else {"order_saga", "order_lifecycle"})
        if definition.name in bound:
            kind = "participants" if isinstance(definition, Saga) else "handlers"
            want.add(f"{rel}::{kind}")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "--sagaproof", "examples/", "--collect-only"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = {line for line in proc.stdout.splitlines() if "::" in line}
    assert got == want, proc.stdout
    assert f"{len(want)} tests collected" in proc.stdout


@pytest.mark.slow
def test_buggy_participants_fail_with_the_shrunk_schedule(project: Path) -> None:
    out = _run(project, "--sagaproof", "defs", which="buggy")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAILED defs/checkout.saga.yaml::participants" in out.stdout
    assert "fault schedule" in out.stdout and "replay it with:" in out.stdout


def test_generated_tests_record_coverage(project: Path) -> None:
    out = _run(project, "--sagaproof", "defs")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads((project / ".sagaproof" / "coverage.json").read_text())
    (entry,) = data["definitions"].values()
    assert entry["name"] == "checkout"
    assert "terminal:COMPLETED" in entry["reached"]
    assert "compensation:charge" in entry["reached"]
    report = subprocess.run(
        [sys.executable, "-m", "sagaproof", "coverage", "defs/checkout.saga.yaml",
         "--data", ".sagaproof/coverage.json"],
        check=False, cwd=project, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120)
    assert "witnesses reached" in report.stdout, report.stderr
    assert textwrap.dedent(report.stdout).startswith("checkout:")


@pytest.mark.slow
def test_on_the_shipped_examples(tmp_path: Path) -> None:
    """``pytest --sagaproof examples/`` in the repository: an item
    per property of every example fails exactly where its ``# expect:`` header
    says it is violated, and the generated tests of the participants and
    handlers ``examples/conftest.py`` binds all run and pass."""
    import xml.etree.ElementTree as ET

    from tests.expectations import expectation

    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "--sagaproof", "examples/", f"--junitxml={junit}"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    failed, passed = set(), set()
    for case in ET.parse(junit).iter("testcase"):
        # junit names an item by dotted path and item name.
        name = f"{case.get('classname')}::{case.get('name')}"
        (failed if case.find("failure") is not None else passed).add(name)
    generated = {n for n in passed | failed if n.endswith(("participants", "handlers"))}
    assert {"examples.trip_booking.saga.yaml::participants",
            "examples.workflows.order_saga.workflow.yaml::handlers"} <= generated, (
        sorted(passed | failed))
    assert not generated & failed, proc.stdout
    want = set()
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        rel = path.relative_to(ROOT).as_posix().replace("/", ".")
        exp = expectation(path)
        want |= {f"{rel}::{p}" for p in exp.violated}
        if exp.refused:
            want.add(f"{rel}::load")  # refused: one failing item, its diagnostic
    assert failed == want, proc.stdout

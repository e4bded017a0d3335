"""CI integration: the pre-commit hooks this repository publishes, run by
pre-commit itself against a throwaway project (slow: pre-commit builds the
hook's virtualenv from the source, about a minute), and the example GitHub
Actions workflow (fast: its shape)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.slow
def test_pre_commit_hooks(tmp_path: Path) -> None:
    # The hook repository: a git copy of the working tree (pre-commit clones
    # a revision, so uncommitted work must be committed somewhere).
    hooks = tmp_path / "hooks"
    shutil.copytree(ROOT, hooks, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "build", ".*_cache",
        ".hypothesis", "*.db", "notebooks", "tests"))
    _git(hooks, "init", "-q")
    _git(hooks, "add", "-A")
    _git(hooks, "commit", "-qm", "hooks")
    rev = _git(hooks, "rev-parse", "HEAD")

    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    shutil.copy(ROOT / "examples" / "trip_booking.saga.yaml", project)
    shutil.copy(ROOT / "examples" / "payment_double_charge.yaml",
                project / "payment.saga.yaml")
    (project / "notes.yaml").write_text("not: a saga\n")  # not matched
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{
        "repo": str(hooks), "rev": rev,
        "hooks": [{"id": "sagaproof-check"}, {"id": "sagaproof-check-sarif"}],
    }]}))
    _git(project, "add", "-A")
    env = {**_ENV, "PRE_COMMIT_HOME": str(tmp_path / "cache")}

    def run(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--files", *files],
            cwd=project, env=env, capture_output=True, text=True, timeout=900,
            check=False)

    good = run("trip_booking.saga.yaml", "notes.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
    report = json.loads((project / "sagaproof.sarif").read_text())
    assert report["runs"][0]["results"] == []

    bad = run("trip_booking.saga.yaml", "payment.saga.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "VIOLATED" in bad.stdout and "Failed" in bad.stdout
    report = json.loads((project / "sagaproof.sarif").read_text())
    rules = {r["ruleId"] for r in report["runs"][0]["results"]}
    assert "eventual_consistency" in rules


def test_hook_definitions_match_the_command() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    ids = {h["id"]: h for h in hooks}
    assert set(ids) == {"sagaproof-check", "sagaproof-check-sarif"}
    import re

    pattern = re.compile(ids["sagaproof-check"]["files"])
    assert pattern.search("sagas/order.saga.yaml")
    assert pattern.search("wf/order.workflow.json")
    assert not pattern.search("docker-compose.yaml")
    for hook in hooks:
        assert hook["language"] == "python"
        assert "sagaproof check" in hook["entry"]


def test_example_github_workflow() -> None:
    wf = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text())
    assert wf["permissions"]["security-events"] == "write"
    steps = wf["jobs"]["verify"]["steps"]
    check = next(s for s in steps if s.get("id") == "check")
    assert "--format sarif" in check["run"] and check["continue-on-error"]
    upload = next(s for s in steps
                  if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert upload["if"] == "always()"
    assert upload["with"]["sarif_file"] in check["run"]
    # The job still fails when a property does not hold.
    assert steps[-1]["if"] == "steps.check.outcome == 'failure'"
    assert steps[-1]["run"] == "exit 1"

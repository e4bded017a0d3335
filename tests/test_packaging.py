"""The package as users get it: an sdist and a wheel built from it, installed
into a fresh virtualenv (no system site-packages, no editable install), with
the command working there. Slow tier: builds and installs take about a minute
(PyPI or pip's cache supplies the dependencies)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


# No PYTHONPATH: the fresh venv must see only what was installed into it.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(*cmd: str | Path, cwd: Path = ROOT,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True,
                          text=True, check=False, timeout=600, env=_ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # A copy of the working tree, so the build's egg-info and build/ folders
    # land there, not in the checkout.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "build", ".*_cache",
        ".hypothesis", "*.db"))
    # python -m build makes the sdist, then the wheel *from the sdist*, so a
    # file missing from the sdist breaks the wheel too.
    _run(sys.executable, "-m", "build", "--outdir", dist, src)
    (wheel,) = dist.glob("sagaproof-*.whl")
    (sdist,) = dist.glob("sagaproof-*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("saga_models/schema/saga.schema.json",
                   "saga_models/schema/workflow.schema.json",
                   "saga_models/schema/scenario.schema.json",
                   "sagaproof/py.typed", "verifier/py.typed"):
        assert needed in names, needed
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith("tests/") for n in names)
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert "Provides-Extra: smt" in metadata
    assert "z3-solver" not in metadata.split("Provides-Extra")[0]
    with tarfile.open(sdist) as tar:
        assert any(m.name.endswith("/LICENSE") for m in tar.getmembers())

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    bin_ = venv / "bin"
    _run(bin_ / "python", "-m", "pip", "install", "-q", wheel)
    version = _run(bin_ / "sagaproof", "--version").stdout.strip()
    assert version.startswith("sagaproof 0.") and "unknown" not in version
    # Outside the checkout, so only the installed package can answer.
    work = tmp_path / "work"
    work.mkdir()
    example = work / "double.yaml"
    example.write_text((ROOT / "examples" / "payment_double_charge.yaml").read_text())
    proc = _run(bin_ / "sagaproof", "check", example.name, "--format", "sarif",
                cwd=work, check=False)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["runs"][0]["tool"]["driver"]["version"] == version.split()[1]
    assert doc["runs"][0]["results"]
    # The z3 backend is an extra: without it, a diagnostic, not a traceback.
    proc = _run(bin_ / "sagaproof", "check", example.name, "--backend", "smt",
                cwd=work, check=False)
    assert proc.returncode == 2
    assert "SAGA012" in proc.stderr and "Traceback" not in proc.stderr
    # Bad input in JSON, from the installed package.
    bad = work / "bad.yaml"
    bad.write_text("saga: x\nsteps: 3\n")
    proc = _run(bin_ / "sagaproof", "check", bad.name, "--format", "json",
                cwd=work, check=False)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)[0]["diagnostics"][0]["code"].startswith("SAGA")


def test_project_metadata() -> None:
    import tomllib

    from trove_classifiers import classifiers

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # an SPDX expression (PEP 639)
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert [c for c in project["classifiers"] if c not in classifiers] == []
    assert not any(c.startswith("License ::") for c in project["classifiers"])
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(project["urls"])
    extras = project["optional-dependencies"]
    assert {"smt", "jupyter", "notebooks", "postgres", "dev"} <= set(extras)
    assert any(d.startswith("z3-solver") for d in extras["smt"])
    assert not any(d.startswith(("z3-solver", "sympy"))
                   for d in project["dependencies"])
    assert any(d.startswith("jupyterlab") for d in extras["jupyter"])

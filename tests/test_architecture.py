"""The pipeline is visible in the folders: imports flow one way (DESIGN.md),
z3 is imported only behind verifier/smt (and proofs), and each package's
``__all__`` is exactly its public names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
ALLOWED = {
    "saga_models": set(),
    "verifier": {"saga_models"},
    "runtime": {"saga_models"},
    "proofs": {"saga_models", "verifier"},
}
STAGES = {"saga_models", "verifier", "runtime", "proofs", "sagaproof"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path) & STAGES - {package} - ALLOWED[package]:
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, bad


def test_z3_lives_behind_one_module() -> None:
    bad = []
    for package in ("saga_models", "verifier", "runtime", "sagaproof"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "z3" in _imports(path) and "smt" not in path.relative_to(ROOT).parts:
                bad.append(str(path.relative_to(ROOT)))
    assert not bad, bad


@pytest.mark.parametrize("package", ["saga_models", "verifier", "runtime"])
def test_all_is_the_public_names(package: str) -> None:
    module = importlib.import_module(package)
    # isidentifier: pytest's assertion rewriting (the project ships a pytest
    # plugin) adds '@py_builtins' to the modules of the distribution.
    public = {n for n in vars(module) if not n.startswith("_") and n.isidentifier()}
    submodules = {n for n in public
                  if type(getattr(module, n)).__name__ == "module"}
    assert set(module.__all__) == public - submodules

"""The pipeline is visible in the folders: imports flow one way (DESIGN.md),
z3 is imported only behind verifier/smt (and proofs), no module imports
itself back through others (no import cycle), and each package's ``__all__``
is exactly its public names."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterable
from pathlib import Path

import networkx as nx
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


def _module_graph(root: Path, packages: Iterable[str]) -> nx.DiGraph:
    """Module -> module imports inside ``packages`` under ``root``, function
    level imports included (a lazy import still needs the other layer), each
    edge to the module named (``from pkg import sub`` is ``pkg.sub`` when that
    is a module, ``pkg``'s ``__init__`` otherwise)."""
    files: dict[str, tuple[Path, bool]] = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            files[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph = nx.DiGraph()
    for name, (path, is_package) in files.items():
        graph.add_node(name)
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in files
                           else module for a in node.names]
            for imported in targets:
                target = imported
                while target and target not in files:
                    target = target.rpartition(".")[0]  # a name in a module
                if target and target != name:
                    graph.add_edge(name, target)
    return graph


def _cycles(graph: nx.DiGraph) -> list[list[str]]:
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph)
                  if len(c) > 1)


def test_no_import_cycle() -> None:
    """Each layer only uses the ones below it, module by module: the loaders
    do not import the dispatch above them, nor the transition systems the
    check API (packages wire the kinds of definition in their ``__init__``)."""
    assert _cycles(_module_graph(ROOT, sorted(STAGES))) == []


def test_the_cycle_finder_finds_a_lazy_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from ._a import f\n")
    (pkg / "_a.py").write_text("def f():\n    from .sub import _b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "_b.py").write_text("from .. import _a\n")
    (pkg / "_c.py").write_text("from pkg._a import f\n")
    assert _cycles(_module_graph(tmp_path, ["pkg"])) == [["pkg._a", "pkg.sub._b"]]

"""Each notebook runs top to bottom, imports only public API, and its saved
outputs are what a fresh run produces (refresh with
``python scripts/refresh_notebooks.py``)."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PUBLIC = {"saga_models", "saga_models.strategies", "saga_models.workflow",
          "verifier", "runtime", "proofs", "sagaproof.jupyter", "sagaproof.testing",
          "IPython.display", "matplotlib.pyplot", "sympy", "dataclasses"}
_FLOAT = re.compile(r"\d+\.\d+")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def _normalise(text: str) -> str:
    # Timings and addresses change run to run; the repository's location
    # changes machine to machine.
    text = text.replace(str(ROOT), "<root>")
    return _ADDRESS.sub("0x?", _FLOAT.sub("<float>", text))


def _outputs(nb: Any) -> list[list[tuple[str, str]]]:
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        entries = []
        for o in cell.outputs:
            if o.output_type == "stream":
                entries.append((f"stream:{o.name}", _normalise(o.text)))
            elif o.output_type == "error":
                entries.append(("error", o.ename))
            else:
                for mime, data in sorted(o.get("data", {}).items()):
                    # A raster plot's bytes depend on the font stack; its
                    # presence is what is pinned.
                    text = "<png>" if mime == "image/png" else _normalise(str(data))
                    entries.append((mime, text))
        out.append(entries)
    return out


def test_there_are_four_notebooks() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["counterexamples", "proofs", "tour",
                                           "workflows"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_import_only_public_api(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom):
                assert node.module in PUBLIC, f"{path.name}: from {node.module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name in PUBLIC | {"proofs"}, alias.name
            elif isinstance(node, ast.Attribute):
                assert not node.attr.startswith("_"), f"{path.name}: .{node.attr}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_its_saved_outputs_are_fresh(path: Path) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from refresh_notebooks import execute
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    saved = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    fresh = execute(path)
    assert time.perf_counter() - start < 60, "keep each notebook under a minute"
    assert all(e[0] != "error" for cell in _outputs(fresh) for e in cell)
    assert _outputs(fresh) == _outputs(saved), (
        f"{path.name}: saved outputs are stale; run "
        "python scripts/refresh_notebooks.py")

"""Re-execute every notebook in notebooks/ and save it with fresh outputs.

    python scripts/refresh_notebooks.py [NAME.ipynb ...]

Run after changing anything a notebook shows; tests/notebooks checks that the
saved outputs match a fresh run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TIMEOUT = 120


def execute(path: Path) -> nbformat.NotebookNode:
    """``path`` executed top to bottom in its own folder."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    for cell in nb.cells:
        # Execution timestamps would make every refresh a diff.
        cell.metadata.pop("execution", None)
    return nb


def main(argv: list[str]) -> int:
    paths = ([NOTEBOOKS / a for a in argv] if argv
             else sorted(NOTEBOOKS.glob("*.ipynb")))
    for path in paths:
        start = time.perf_counter()
        nb = execute(path)
        nbformat.write(nb, path)
        print(f"{path.relative_to(ROOT)}: {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

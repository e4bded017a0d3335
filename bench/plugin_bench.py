"""What the sagaproof pytest plugin adds to a pytest run that collects no
definition (issue 17 part 10: at most 50 ms).

Runs pytest on a scratch project with one trivial test, alternately with the
plugin loaded by its entry point and with ``-p no:sagaproof``, and reports the
median of each and their difference::

    python bench/plugin_bench.py [--runs 15] [--root CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(root: Path, cwd: Path, *extra: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one pytest run. CPU time is the
    steadier on a shared machine: waiting for a core does not count."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    *extra], cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


_IMPORT = """\
import time
import pytest
t = time.perf_counter()
import sagaproof.testing.plugin
print(time.perf_counter() - t)
"""


def _import_cost(root: Path, cwd: Path) -> float:
    """Seconds to import the plugin module into an interpreter that has
    pytest already (the steadier figure: no process start-up noise)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    # cwd: ``python -c`` puts it first on sys.path, so not the repository.
    out = subprocess.run([sys.executable, "-c", _IMPORT], env=env, check=True,
                         cwd=cwd, capture_output=True, text=True)
    return float(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--root", type=Path, default=ROOT,
                    help="the checkout to measure (e.g. an older one, for the "
                    "figure before a change)")
    args = ap.parse_args()
    root = args.root.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "test_one.py").write_text("def test_one():\n    pass\n")
        (cwd / "pytest.ini").write_text("[pytest]\n")
        with_plugin: list[tuple[float, float]] = []
        without: list[tuple[float, float]] = []
        _time(root, cwd)  # warm the file cache and the bytecode
        for _ in range(args.runs):
            with_plugin.append(_time(root, cwd))
            without.append(_time(root, cwd, "-p", "no:sagaproof"))
        cost = statistics.median(_import_cost(root, cwd)
                                 for _ in range(args.runs))
    for k, what in ((0, "wall"), (1, "CPU")):
        a = statistics.median(t[k] for t in with_plugin)
        b = statistics.median(t[k] for t in without)
        print(f"{what:>4}: pytest run with the plugin {a * 1000:.0f} ms, with -p "
              f"no:sagaproof {b * 1000:.0f} ms, added {(a - b) * 1000:+.0f} ms "
              f"(medians of {args.runs})")
    print(f"importing the plugin module: median {cost * 1000:.1f} ms")


if __name__ == "__main__":
    main()

"""What the sagaproof pytest plugin adds to a pytest run that collects no
definition (issue 17 part 10: at most 50 ms).

Runs pytest on a scratch project with one trivial test, alternately with the
plugin loaded by its entry point and with ``-p no:sagaproof``, and reports the
median of each and their difference::

    python bench/plugin_bench.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(cwd: Path, *extra: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    *extra], cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


_IMPORT = """\
import time
import pytest
t = time.perf_counter()
import sagaproof.testing.plugin
print(time.perf_counter() - t)
"""


def _import_cost() -> float:
    """Seconds to import the plugin module into an interpreter that has
    pytest already (the steadier figure: no process start-up noise)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _IMPORT], env=env, check=True,
                         capture_output=True, text=True)
    return float(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "test_one.py").write_text("def test_one():\n    pass\n")
        (cwd / "pytest.ini").write_text("[pytest]\n")
        with_plugin: list[float] = []
        without: list[float] = []
        _time(cwd)  # warm the file cache and the bytecode
        for _ in range(args.runs):
            with_plugin.append(_time(cwd))
            without.append(_time(cwd, "-p", "no:sagaproof"))
    a, b = statistics.median(with_plugin), statistics.median(without)
    print(f"pytest run, plugin loaded:   median {a * 1000:.0f} ms ({args.runs} runs)")
    print(f"pytest run, -p no:sagaproof: median {b * 1000:.0f} ms")
    print(f"added by the plugin: {(a - b) * 1000:+.0f} ms")
    cost = statistics.median(_import_cost() for _ in range(args.runs))
    print(f"importing the plugin module: median {cost * 1000:.1f} ms")


if __name__ == "__main__":
    main()

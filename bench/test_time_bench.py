"""CPU seconds of single tests, one pytest process each (issue 17, item 11).

    python bench/test_time_bench.py                  the tests of the table in
                                                     bench/RESULTS.md
    python bench/test_time_bench.py NODEID...        those tests
    python bench/test_time_bench.py --warm           the numba warm-up, with a
                                                     cold then a warm cache

CPU (user + system of the child process, from ``getrusage``), not wall time:
the machine is shared, and CPU is what two xdist workers divide between them.
Run it from the repository root; it sets ``PYTHONPATH`` to it.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DEFAULT = (
    "tests/parity/test_kernel_props.py::test_kernel_props_parity_1000_generated",
    "tests/parity/test_wf_kernel_parity.py::test_wf_kernel_parity_1000_generated",
    "tests/isolation/test_por_parity.py::test_reductions_parity_300_cases",
    "tests/testing/test_generated.py::test_correct_participants_pass[refund]",
    "tests/testing/test_generated.py::test_seeded_bug_is_found[refund]",
)


def cpu_of(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """CPU seconds of running ``argv`` to its end, and its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = subprocess.run(argv, cwd=ROOT, env=env, check=False,
                          stdout=subprocess.DEVNULL).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, code


def main() -> int:
    """Print one line per test (or per warm-up run)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nodeids", nargs="*", default=list(DEFAULT))
    ap.add_argument("--warm", action="store_true",
                    help="time python -m verifier._warm, cold then warm")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if args.warm:
        with tempfile.TemporaryDirectory() as cache:
            env["XDG_CACHE_HOME"] = cache
            for label in ("cold cache", "warm cache"):
                cpu, code = cpu_of([sys.executable, "-m", "verifier._warm"], env)
                print(f"{cpu:7.1f} s CPU  exit {code}  warm-up, {label}")
        return 0
    worst = 0
    for node in args.nodeids:
        cpu, code = cpu_of([sys.executable, "-m", "pytest", node, "-q",
                            "-p", "no:cacheprovider"], env)
        print(f"{cpu:7.1f} s CPU  exit {code}  {node}", flush=True)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())

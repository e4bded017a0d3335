"""Time of each proof in ``proofs/`` against the issue's 2 s budget.

    python bench/proofs_bench.py            # each proof in a fresh process
    python bench/proofs_bench.py --repeat 3 # medians

Each module's ``run()`` is timed in its own interpreter (imports excluded), so
one proof's z3 state cannot slow the next; ``--in-process`` also times the
whole ``run_all()`` sequence in one process. Prints a Markdown table (paste into
bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from proofs import MODULES, run_all

BUDGET = 2.0
"""Seconds per parametric proof (the z3 issue's target)."""

_ONE = """
import importlib, time
mod = importlib.import_module("proofs.{name}")
started = time.perf_counter()
result = mod.run()
print(time.perf_counter() - started, result.status.value)
"""


def one(name: str) -> tuple[float, str]:
    out = subprocess.run([sys.executable, "-c", _ONE.format(name=name)],
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--in-process", action="store_true")
    args = ap.parse_args()
    print("| proof | status | seconds (median) | under 2 s |")
    print("|---|---|---:|---|")
    for name in MODULES:
        runs = [one(name) for _ in range(args.repeat)]
        secs = statistics.median(r[0] for r in runs)
        print(f"| {name} | {runs[0][1]} | {secs:.2f} | "
              f"{'yes' if secs < BUDGET else 'NO'} |")
    if args.in_process:
        started = time.perf_counter()
        run_all()
        print(f"\nrun_all() in one process: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()

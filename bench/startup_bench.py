"""Start-up CPU: what ``sagaproof`` costs before and while it checks a small
example, against the interpreter's own floor, measured in the same run.

Each command runs in a fresh interpreter; the figure is its CPU time (user +
system, from ``RUSAGE_CHILDREN``), not wall clock, so that a machine shared
with other jobs measures the command and not its neighbours. It prints the
median of N runs of ``python -c pass``, ``sagaproof --help`` and ``sagaproof
check`` on a small example, each command's CPU over the floor, the ratio to
the floor, and whether networkx or jsonschema were imported.

Run: ``python bench/startup_bench.py [--runs 9] [--example PATH]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
EXAMPLE = "examples/trip_booking.saga.yaml"
WATCHED = ("networkx", "jsonschema", "z3", "hypothesis")

_CLI = ("import sys as _s\nfrom sagaproof.cli import main\n"
        "try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "_s.stderr.write('LOADED ' + ' '.join(m for m in {watched!r} "
        "if m in _s.modules) + '\\n')\n")


def _cpu(argv: list[str]) -> float:
    """CPU seconds of one child process running ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=False,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _loaded(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("LOADED")]
    return " ".join(lines[-1].split()[1:]) if lines else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--example", default=EXAMPLE)
    args = parser.parse_args()
    cases = [
        ("python -c pass", "pass", False),
        ("sagaproof --help", _CLI.format(argv=["--help"], watched=WATCHED), True),
        (f"sagaproof check {args.example}",
         _CLI.format(argv=["check", args.example, "--no-progress"],
                     watched=WATCHED), True),
    ]
    rows = []
    for name, code, probe in cases:
        argv = [sys.executable, "-c", code]
        _cpu(argv)  # warm the file system cache and the bytecode
        median = statistics.median(_cpu(argv) for _ in range(args.runs))
        rows.append((name, median, _loaded(code) if probe else "-"))
    floor = rows[0][1]
    print(f"CPU seconds, median of {args.runs} fresh interpreters "
          f"({sys.executable})")
    print(f"{'command':<52} {'cpu s':>7} {'over floor':>10} {'ratio':>6}  loads")
    for name, cpu, loaded in rows:
        print(f"{name:<52} {cpu:7.3f} {cpu - floor:10.3f} {cpu / floor:6.1f}  "
              f"{loaded or '-'}")


if __name__ == "__main__":
    main()

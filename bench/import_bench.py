"""Start-up cost: what a user waits for before sagaproof does anything.

Each command runs in a fresh interpreter (the cost is import time, which a
warm process hides); the table gives the median and the best of N runs of:
``python -c pass`` (the floor), ``sagaproof --version``, ``sagaproof --help``,
``sagaproof check`` on a small example (explicit backend), the same with
``--backend smt`` (loads z3), and ``import pytest`` with and without the
sagaproof pytest plugin (the plugin's added cost is what every test run of a
project with sagaproof installed pays). It also lists which heavy modules each
command loads.

Run: ``python bench/import_bench.py [--runs 7] [--write]``; with ``--write`` the
table replaces the "Start-up and import cost" section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- import-bench:begin -->", "<!-- import-bench:end -->"
EXAMPLE = "examples/trip_booking.saga.yaml"
HEAVY = ("z3", "sympy", "networkx", "jsonschema", "hypothesis", "yaml",
         "saga_models", "verifier", "runtime")

_CLI = ("from sagaproof.cli import main\n"
        "try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n")
CASES: list[tuple[str, str]] = [
    ("python -c pass", "pass"),
    ("sagaproof --version", _CLI.format(argv=["--version"])),
    ("sagaproof --help", _CLI.format(argv=["--help"])),
    (f"sagaproof check {EXAMPLE}",
     _CLI.format(argv=["check", EXAMPLE, "--no-progress"])),
    (f"sagaproof check {EXAMPLE} --backend smt",
     _CLI.format(argv=["check", EXAMPLE, "--no-progress", "--backend", "smt"])),
    ("import pytest", "import pytest"),
    ("import pytest + sagaproof plugin",
     "import pytest\nimport sagaproof.testing.plugin"),
]


def _run(code: str) -> tuple[float, list[str]]:
    probe = (code + "\nimport sys as _s\n_s.stderr.write('LOADED ' + ' '.join("
             f"m for m in {HEAVY!r} if m in _s.modules) + '\\n')\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    elapsed = time.perf_counter() - start
    loaded = [line for line in proc.stderr.splitlines() if line.startswith("LOADED")]
    if not loaded:
        raise SystemExit(f"{code!r} failed:\n{proc.stderr}")
    return elapsed, loaded[-1].split()[1:]


def measure(runs: int) -> list[tuple[str, float, float, list[str]]]:
    """(case, median seconds, best seconds, heavy modules loaded) per case."""
    rows = []
    for name, code in CASES:
        _run(code)  # warm the file system cache and the bytecode
        times: list[float] = []
        loaded: list[str] = []
        for _ in range(runs):
            t, loaded = _run(code)
            times.append(t)
        rows.append((name, statistics.median(times), min(times), loaded))
    return rows


def table(rows: list[tuple[str, float, float, list[str]]], runs: int) -> str:
    floor = rows[0][1]
    lines = [
        f"Median and best of {runs} fresh interpreters (`python bench/import_bench"
        f".py --runs {runs} --write`); *over floor* subtracts `python -c pass`.",
        "",
        "| command | median ms | best ms | over floor ms | heavy modules loaded |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, med, best, loaded in rows:
        lines.append(f"| `{name}` | {med * 1000:.0f} | {best * 1000:.0f} | "
                     f"{(med - floor) * 1000:.0f} | {', '.join(loaded) or '-'} |")
    by = {name: med for name, med, _, _ in rows}
    plugin = by["import pytest + sagaproof plugin"] - by["import pytest"]
    lines += ["", f"The pytest plugin adds {plugin * 1000:.0f} ms to `import "
              "pytest` (median difference)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = table(measure(args.runs), args.runs)
    print(text)
    if args.write:
        results = RESULTS.read_text()
        block = f"{BEGIN}\n{text}\n{END}"
        if BEGIN in results:
            results = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END),
                             lambda _: block, results, flags=re.S)
        else:
            results += ("\n## Start-up and import cost\n\n"
                        "`python bench/import_bench.py --runs 7 --write`. "
                        "2-core machine shared with other work; indicative.\n\n"
                        + block + "\n")
        RESULTS.write_text(results)


if __name__ == "__main__":
    main()

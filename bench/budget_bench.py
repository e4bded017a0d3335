"""How closely each backend keeps a budget on a definition far beyond it.

    python bench/budget_bench.py                 # 4x8 branches, --timeout 10s
    python bench/budget_bench.py --timeout 30 --branches 6x8

For each backend (explicit, smt, auto) and each budget (--timeout, --max-memory,
--max-states), the wall time from the call to the ``unknown`` verdict, and the
reason. Unbudgeted, the 4x8 saga runs for many minutes in every backend (the
issue saw smt pass 240 s with nothing printed). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from smt_bench import branches  # noqa: E402

from verifier import check  # noqa: E402


def _memory_run(backend: str, spec: str, budget: int) -> tuple[float, str, str]:
    """A fresh process: a memory budget counts growth from the check's start."""
    code = (
        "import sys, time; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/bench']\n"
        "from smt_bench import branches; from verifier import check\n"
        "k, m = map(int, sys.argv[3].split('x'))\n"
        "t = time.perf_counter()\n"
        "r = check(branches(k, m), backend=sys.argv[2], max_memory=int(sys.argv[4]))\n"
        "u = [p for p in r.results if p.verdict.value == 'unknown']\n"
        "print(f'{time.perf_counter() - t:.1f}|{r.verdict.value}|'"
        " + (u[0].reason if u else ''))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), backend, spec,
                          str(budget)], capture_output=True, text=True, check=True)
    secs, verdict, reason = out.stdout.strip().split("|", 2)
    return float(secs), verdict, reason


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--branches", default="4x8", metavar="KxM")
    p.add_argument("--max-memory", type=int, default=64 * 1024**2)
    p.add_argument("--max-states", type=int, default=20_000)
    args = p.parse_args()
    k, m = map(int, args.branches.split("x"))
    saga = branches(k, m)
    print("| backend | budget | seconds to verdict | verdict "
          "| reason (first unknown) |")
    print("|---|---|--:|---|---|")
    for backend in ("explicit", "smt", "auto"):
        for name in ("timeout", "max-states", "max-memory"):
            if name == "max-memory":
                secs, verdict, reason = _memory_run(backend, args.branches,
                                                    args.max_memory)
                label = f"--max-memory {args.max_memory // 1024**2}M"
            else:
                # For z3, --max-states bounds BMC frames, not the induction
                # queries: it is paired with a --timeout, as the README says.
                states = args.max_states if backend == "explicit" else 10
                kw: dict[str, float] = (
                    {"timeout": args.timeout} if name == "timeout"
                    else {"max_states": states, "timeout": 6 * args.timeout})
                label = (f"--timeout {args.timeout:g}s" if name == "timeout"
                         else f"--max-states {states:,}"
                         + ("" if backend == "explicit"
                            else f" --timeout {6 * args.timeout:g}s"))
                started = time.perf_counter()
                r = check(saga, backend=backend, **kw)  # type: ignore[arg-type]
                secs = time.perf_counter() - started
                verdict = r.verdict.value
                unknown = [x for x in r.results if x.verdict.value == "unknown"]
                reason = unknown[0].reason if unknown else ""
            print(f"| {backend} | {label} | {secs:.1f} | {verdict} "
                  f"| {reason[:110]} |", flush=True)


if __name__ == "__main__":
    main()

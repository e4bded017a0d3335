"""Where z3's time goes on one imported file's termination check.

Runs the stages of ``verifier/smt/_imported.py``'s termination decision one
by one on a corpus file and prints each one's time: tabulating the graph
semantics into guarded commands, the BMC unrolling to the loop-free depth d
(with the deadlock and trap goals), the moving-cycle test at d + 1, and the
fair-lasso search at growing bounds up to the one the backend uses,
2 (d + 1). For a file whose loops end under fairness (a polling loop)
the lasso search finds nothing at any bound, so the backend can only say
``unknown`` there: this shows how long it takes to say so.

Run: ``PYTHONPATH=. python bench/imported_smt_stages.py FILE [--max-bound N]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from saga_models.semantics import FaultModel  # noqa: E402
from verifier._check import _load_path  # noqa: E402
from verifier._imported_ts import ImportedTransitionSystem  # noqa: E402
from verifier.smt._imported import DEFAULT_MAX_DEPTH, _Goal, _Run  # noqa: E402
from verifier.smt._z3 import DEFAULT_RLIMIT  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--max-bound", type=int, default=DEFAULT_MAX_DEPTH,
                    help="stop the lasso search at this bound")
    args = ap.parse_args()
    # Loaded as `sagaproof check` loads it (ASL, Seata, SW or BPMN).
    ts = ImportedTransitionSystem(_load_path(args.file), FaultModel(),
                                 explore_unconditional=False)
    print(f"{Path(args.file).name}: faults {ts.fault_model}")
    t0 = time.perf_counter()
    run = _Run(ts, max_depth=DEFAULT_MAX_DEPTH, rlimit=DEFAULT_RLIMIT)
    enc = run.enc
    print(f"| tabulate | {time.perf_counter() - t0:.2f} s | "
          f"{len(enc.commands)} guarded commands |", flush=True)
    t0 = time.perf_counter()
    goals = [_Goal(name="deadlock", bad=enc.lift("deadlock", run.deadlock)),
             _Goal(name="trap", bad=run.trap(enc.families))]
    bmc = run.bmc(goals, need_diameter=True)
    found = [g.name for g in goals if g.trace is not None]
    print(f"| BMC | {time.perf_counter() - t0:.2f} s | loop-free depth "
          f"{bmc.diameter}; found: {found or 'nothing'} |", flush=True)
    if bmc.diameter is None or found:
        return
    t0 = time.perf_counter()
    cycle = run.moving_cycle(bmc.diameter)
    print(f"| moving cycle | {time.perf_counter() - t0:.2f} s | {cycle} |",
          flush=True)
    if cycle is not True:
        return
    bound = min(DEFAULT_MAX_DEPTH, 2 * (bmc.diameter + 1), args.max_bound)
    for k in sorted({b for b in (5, 10, 20, 40, bound) if b <= bound}):
        t0 = time.perf_counter()
        lasso, why = run.fair_lasso(enc.families, k)
        print(f"| fair lasso, bound {k} | {time.perf_counter() - t0:.2f} s | "
              f"{'found' if lasso else 'none'} {why} |", flush=True)
        if lasso is not None:
            return


if __name__ == "__main__":
    main()

"""Event workflows, explicit against z3: time to a verdict on every property.

Workloads: the chain and fanout workflows of ``bench/workflow_bench.py`` (every
delivery contract and order, 2 duplicates) and the workflow corpus of
``tests/quality/workflows``. For each, the explicit checker's states and time,
the z3 backend's time, how many of the six properties each backend decided,
and whether the verdicts agree (they must; unknown is reported, not hidden).

Run: ``python bench/workflow_smt_bench.py [--max-services 4] [--corpus]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from saga_models import FaultModel, load
from saga_models.workflow import Workflow
from verifier import Verdict
from verifier._explicit import explore
from verifier._workflow_ts import WorkflowTransitionSystem
from verifier.smt._workflow import check_workflow

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from workflow_bench import chain, fanout  # noqa: E402


def row(name: str, wf: Workflow, duplicates: int) -> str:
    ts = WorkflowTransitionSystem(wf, FaultModel(duplicates=duplicates))
    started = time.perf_counter()
    explicit = explore(ts)
    t_exp = time.perf_counter() - started
    started = time.perf_counter()
    smt = check_workflow(wf, ts)
    t_smt = time.perf_counter() - started
    decided = sum(r.verdict is not Verdict.UNKNOWN for r in smt)
    agree = all(s.verdict is e.verdict for e, s in zip(explicit, smt, strict=True)
                if s.verdict is not Verdict.UNKNOWN)
    unbounded = sum("every length" in r.reason or "rank " in r.reason for r in smt)
    verdict = ("holds" if {r.verdict for r in explicit} == {Verdict.HOLDS}
               else "violated")
    return (f"| {name} | {explicit[0].stats.states:,} | {t_exp:.3f} | {t_smt:.2f} "
            f"| {decided}/6 | {unbounded} | {'yes' if agree else 'NO'} | {verdict} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-services", type=int, default=4,
                    help="largest chain/fanout size (plus one service)")
    ap.add_argument("--duplicates", type=int, default=2)
    ap.add_argument("--corpus", action="store_true",
                    help="also the tests/quality/workflows corpus")
    args = ap.parse_args()
    print("| workload | states (explicit) | explicit (s) | z3 (s) | z3 decided "
          "| z3 by induction or rank | agree | verdict |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for workload, make in (("chain", chain), ("fanout", fanout)):
        for n in range(1, args.max_services):
            for delivery in ("exactly_once", "at_least_once"):
                for order in ("fifo", "unordered"):
                    wf = make(n, delivery=delivery, order=order)
                    print(row(f"{workload} {n + 1} {delivery} {order}", wf,
                              args.duplicates), flush=True)
    if args.corpus:
        for path in sorted((HERE.parent / "tests/quality/workflows").glob("*.yaml")):
            print(row(path.stem, load(path), 1), flush=True)


if __name__ == "__main__":
    main()

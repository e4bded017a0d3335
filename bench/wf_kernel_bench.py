"""The workflow kernel: interpreted, the pre-kernel oracle, and compiled.

Run: ``python bench/wf_kernel_bench.py`` (``--cases fanout5-alo-fifo,...``;
a case is ``<workload><n>-<eo|alo>-<fifo|unordered>`` over the workloads of
``bench/workflow_bench.py``). Two duplicate deliveries, no reduction, all six
properties. Per case, CPU seconds (this machine is shared: wall clock measures
the neighbours) of:

* ``python``: the explicit checker's interpreted search (``engine="python"``:
  ``semantics.enabled``/``apply``, i.e. the workflow kernel run interpreted on
  tuples), what the runtime's path costs;
* ``oracle``: the same search over the pre-kernel hand-written semantics
  (``tests/parity/reference_workflow_semantics.py``);
* ``check``: the whole compiled check (``engine="kernel"``: the compiled
  search, then the property checks in Python), after one warm-up run so the
  JIT (cached on disk) is not counted.

Verdicts and state counts are asserted equal across the three.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "parity"))

DEFAULT = "fanout4-alo-fifo,fanout5-alo-unordered,fanout5-alo-fifo"


def _workflow(case: str) -> Any:
    from workflow_bench import chain, fanout

    head, delivery, order = case.split("-")
    make = fanout if head.startswith("fanout") else chain
    n = int(head.lstrip("afnoutchi"))
    return make(n, delivery={"eo": "exactly_once", "alo": "at_least_once"}[
        delivery], order=order)


def _oracle_system(wf: Any, faults: Any) -> Any:
    import reference_workflow_semantics as ref

    from verifier._workflow_ts import WorkflowTransitionSystem

    class Oracle(WorkflowTransitionSystem):
        def initial(self) -> list[tuple[int, ...]]:
            return [ref.initial_state(self.wf, duplicates=self.duplicates)]

        def successors(self, state: tuple[int, ...]) -> list[tuple[Any, Any]]:
            return [(s, ref.apply(self.wf, state, s))
                    for s in ref.enabled(self.wf, state, reduce=self.reduce)]

        def is_terminal(self, state: tuple[int, ...]) -> bool:
            return not ref.enabled(self.wf, state)

    return Oracle(wf, faults)


def run(case: str) -> list[str]:
    from saga_models import FaultModel
    from verifier._explicit import explore
    from verifier._workflow_ts import WorkflowTransitionSystem

    wf = _workflow(case)
    faults = FaultModel(duplicates=2)
    rows, seen = [], set()
    explore(WorkflowTransitionSystem(wf, faults), engine="kernel")  # warm-up
    for mode in ("python", "oracle", "check"):
        ts = (_oracle_system(wf, faults) if mode == "oracle"
              else WorkflowTransitionSystem(wf, faults))
        engine = "kernel" if mode == "check" else "python"
        started = time.process_time()
        results = explore(ts, engine=engine)
        cpu = time.process_time() - started
        states = results[0].stats.states
        verdicts = ",".join(r.verdict.value for r in results)
        seen.add((states, verdicts))
        rows.append(f"| {case} | {mode} | {states:,} | {cpu:.2f} | "
                    f"{states / max(cpu, 1e-9):,.0f} | {verdicts} |")
    assert len(seen) == 1, f"{case}: the three searches disagree: {seen}"
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=DEFAULT)
    args = ap.parse_args()
    print("| case | mode | states | CPU s | states/s | verdicts |")
    print("|---|---|---:|---:|---:|---|")
    for case in args.cases.split(","):
        for row in run(case):
            print(row, flush=True)


if __name__ == "__main__":
    main()

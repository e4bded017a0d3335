"""Isolation examples: the cost of each countermeasure in states and time.

Checks every definition in ``examples/isolation/`` (sagas and scenarios, all
faults on, explicit checker, without and with ``--symmetry``) and prints one
row per file: instances, verdict, the violated properties, states,
transitions and seconds. A countermeasure that blocks or refuses steps usually
shrinks the space; one that adds a local (a version, a reread value) grows it.

Run: ``python bench/countermeasure_bench.py`` (figures in ``bench/RESULTS.md``,
section "Isolation countermeasures").
"""

from __future__ import annotations

import time
from pathlib import Path

from saga_models import load
from verifier import Verdict, check

EXAMPLES = Path(__file__).parents[1] / "examples" / "isolation"


def main() -> None:
    """Print the table."""
    print("| example | K | verdict | violated | states | transitions | s "
          "| states, symmetry |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for path in sorted(EXAMPLES.glob("*.yaml")):
        definition = load(path, scenarios=True)
        row = []
        for symmetry in (False, True):
            start = time.perf_counter()
            res = check(definition, symmetry=symmetry)
            seconds = time.perf_counter() - start
            # Safety properties share one exploration (the reduced one with
            # symmetry); termination is always checked unreduced.
            stats = next(r.stats for r in res.results
                         if r.property == "conservation" and r.stats is not None)
            row.append((res, stats, seconds))
        (res, stats, seconds), (_, sym, _) = row
        violated = ", ".join(r.property for r in res.results
                             if r.verdict is Verdict.VIOLATED) or "-"
        k = res.results[0].fault_model.split("instances=")[1].split(";")[0]
        print(f"| {path.name} | {k} | {res.verdict.value} | {violated} | "
              f"{stats.states:,} | {stats.transitions:,} | {seconds:.2f} | "
              f"{sym.states:,} |")


if __name__ == "__main__":
    main()

"""sagaproof against SPIN on the same definitions, side by side.

Run: ``python bench/spin_bench.py`` (``--quick`` for a smoke run, ``--large``
adds chain40, par3x6 and par4x6). Needs ``spin`` and ``gcc``.

For each saga of a grid of chains and parallel branches, under crashes and
duplicates (every fault knob on: fail, timeout, comp_fail, late, crash=1,
duplicate=1, unless ``--faults`` says otherwise, e.g. ``--faults
fail,timeout,comp_fail,crash=1,duplicate=1`` for the figures without late),
the same definition is checked by sagaproof's explicit checker (the two
safety properties SPIN is compared on, docs/spin.md) and by SPIN on its
Promela export (``spin -o2 -a``,
``gcc -O2 -DSAFETY -DNOREDUCE``, ``pan -c0``: the same properties plus
deadlock). Printed per row: both state counts, sagaproof's time and states/s,
SPIN's three times (``spin -a``, the C compile, the search), and the ratios
of sagaproof's time to SPIN's whole time and to its search alone. A row counts
only where both explored the same semantics: equal state counts and equal
verdicts; any difference is said in the last column.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from explicit_bench import chain, parallel

from saga_models import FaultModel, Saga
from verifier import SagaTransitionSystem, Verdict, explore
from verifier.spin import PanOptions, spin_available, spin_check

SAFETY = ("compensation_completeness", "eventual_consistency")


def grid(quick: bool, large: bool) -> list[Saga]:
    """The definitions, smallest first."""
    if quick:
        return [chain(4), chain(8), parallel(2, 3)]
    cases = [chain(4), chain(8), chain(12), chain(20),
             parallel(2, 3), parallel(2, 6), parallel(3, 3), parallel(3, 4)]
    if large:
        # chain40's pan.c takes gcc -O2 many minutes (every command carries
        # the O(steps) settle and check code, so the C is O(steps**2)).
        cases += [chain(40), parallel(3, 6), parallel(4, 6)]
    return cases


def row(saga: Saga, faults: FaultModel, max_states: int,
        opt: str) -> dict[str, object]:
    """Check ``saga`` both ways; one table row. Times are CPU seconds (user +
    system; this machine is shared, and wall clock there measures the other
    tenants)."""
    gc.collect()
    started = time.process_time()
    results = explore(SagaTransitionSystem(saga, faults), properties=SAFETY,
                      max_states=max_states)
    ours = time.process_time() - started
    ours_states = results[0].stats.states
    verdicts = {r.property: r.verdict for r in results}
    # Size pan's hash table and DFS stack to the model, as a SPIN user would
    # (pan clears the whole table first: 2**24 slots cost a second by
    # themselves on a 200-state model).
    bits = max(16, (2 * ours_states).bit_length())
    options = PanOptions(optimise=opt, hash_bits=bits,
                         max_depth=max(10_000, 2 * ours_states), timeout=3600.0)
    spin = spin_check(saga, faults=faults, options=options)
    whole = spin.spin_cpu + spin.compile_cpu + spin.search_cpu
    why = []
    if any(v is Verdict.UNKNOWN for v in verdicts.values()):
        why.append("sagaproof: " + results[0].reason)
    if spin.reason:
        why.append("SPIN: " + spin.reason)
    if not why and ours_states != spin.states:
        why.append(f"state counts differ by {spin.states - ours_states:+,}")
    if not why and any(verdicts[p] is not spin.verdicts[p] for p in SAFETY):
        why.append("verdicts differ")
    return {
        "case": saga.name,
        "steps": len(saga.steps),
        "ours_states": ours_states,
        "spin_states": spin.states,
        "ours_s": ours,
        "rate": ours_states / ours if ours else 0.0,
        "spin_a": spin.spin_cpu,
        "gcc": spin.compile_cpu,
        "pan": spin.search_cpu,
        "spin_rate": spin.states / spin.search_cpu if spin.search_cpu else 0,
        "vs_whole": ours / whole if whole else float("nan"),
        "vs_search": ours / spin.search_cpu if spin.search_cpu else float("nan"),
        "verdict": ",".join(sorted(f"{p.split('_')[0]}={verdicts[p].value}"
                                   for p in SAFETY)),
        "deadlock": spin.verdicts["deadlock"].value,
        "note": "; ".join(why) or "same states, same verdicts",
    }


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit 1 if a row does not count (a disagreement)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--large", action="store_true")
    ap.add_argument("--faults", default="all")
    ap.add_argument("--max-states", type=int, default=5_000_000)
    ap.add_argument("--opt", default="-O2", help="gcc optimisation for pan")
    args = ap.parse_args(argv)
    if not spin_available():
        print("spin and gcc are needed (scripts/install_system.sh)",
              file=sys.stderr)
        return 2
    faults = FaultModel.parse(args.faults)
    print(f"faults: {faults.describe()}; sagaproof explicit (safety: "
          f"{', '.join(SAFETY)}) vs SPIN {args.opt} -DSAFETY -DNOREDUCE pan -c0; "
          "CPU seconds")
    print("| case | steps | sagaproof states | SPIN states | sagaproof s | "
          "sagaproof states/s | spin -a s | gcc s | pan s | pan states/s | "
          "ours/SPIN whole | ours/SPIN search | verdicts | deadlock (SPIN) | "
          "note |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    bad = 0
    for saga in grid(args.quick, args.large):
        r = row(saga, faults, args.max_states, args.opt)
        bad += r["note"] != "same states, same verdicts"
        print(f"| {r['case']} | {r['steps']} | {r['ours_states']:,} | "
              f"{r['spin_states']:,} | {r['ours_s']:.2f} | {r['rate']:,.0f} | "
              f"{r['spin_a']:.2f} | {r['gcc']:.2f} | {r['pan']:.2f} | "
              f"{r['spin_rate']:,.0f} | {r['vs_whole']:.2f}x | "
              f"{r['vs_search']:.1f}x | {r['verdict']} | {r['deadlock']} | "
              f"{r['note']} |", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""SagaBench (../shared/bench/SAGABENCH.md) reproduced with sagaproof.

Run: ``python bench/sagabench.py A`` (or ``B``, ``C``). For the configuration
it prints:

1. the independent enumerator's SagaBench state count (written in
   ``tests/isolation/test_sagabench.py`` from SAGABENCH.md; must be the
   published one);
2. sagaproof's own count for the same definition (K instances over one stock
   counter, ``--faults fail``, ``keep_attempts``, no reduction), with
   transitions, wall and CPU time and peak RSS;
3. the checked mapping: every instance move projects to a stutter or to a
   SagaBench action (checked once per distinct move), and the projection of
   every reachable sagaproof state onto SagaBench's variables equals the
   enumerator's set.

The search is ``PackedComposition`` of the test (states packed into uint64,
breadth-first by layers over sorted arrays). ``--reference-only`` runs the
enumerator alone.

``--symmetric`` (what C needs) searches up to permutations of the K identical
instances (compiled with numba, the ``fast`` extra; ``--numpy`` for the numpy
search, which the tests compare it with): one representative per orbit, the
full system's states and transitions counted exactly from the orbit sizes,
and the mapping checked on the representatives of both projected sets (both
sets closed under permutation: the enumerator's is checked, its orbits must
add up to its count). The search runs first, so the peak RSS it prints is
the search's own (the enumerator's Python set comes after it).
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))

from saga_models import loads
from tests.isolation.test_sagabench import (
    PackedComposition,
    _compiled_layer,
    canonical_projection,
    pack_reference,
    sagabench_definition,
    sagabench_states,
    sagabench_system,
)

CONFIGS = {
    "A": ((4, 4, 2, 10), 385_251),
    "B": ((5, 3, 2, 9), 2_658_750),
    "C": ((5, 4, 2, 12), 11_358_306),
}


def cpu() -> float:
    """CPU seconds of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def rss_mib() -> float:
    """Peak RSS of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def budgeted(k: int, n: int, r: int, total: int, max_states: int) -> None:
    """sagaproof's search alone, stopped at a budget."""
    w0, c0 = time.perf_counter(), cpu()
    pc = PackedComposition(sagabench_system(
        loads(sagabench_definition(k, n, r, total)), k), n, r, total)
    states, transitions = pc.explore(max_states=max_states)
    print(f"sagaproof: {states.size:,} states, {transitions:,} transitions "
          f"({'complete' if pc.complete else 'STOPPED at --max-states'}), "
          f"{time.perf_counter() - w0:.1f}s wall, {cpu() - c0:.1f}s CPU; peak "
          f"RSS {rss_mib():,.0f} MiB", flush=True)


def liveness(k: int, n: int, r: int, total: int) -> None:
    """The explicit checker on one configuration: termination (per-instance
    fairness) against the safety properties, on the default semantics."""
    from saga_models import semantics as sem
    from verifier._explicit import explore
    from verifier._multi_ts import MultiSagaTransitionSystem

    saga = loads(sagabench_definition(k, n, r, total))
    for props in (["compensation_completeness", "eventual_consistency",
                   "conservation"], ["termination"]):
        ts = MultiSagaTransitionSystem([saga] * k, sem.FaultModel.parse("fail"),
                                       track_anomalies=False)
        w0, c0 = time.perf_counter(), cpu()
        results = explore(ts, properties=props, max_states=100_000_000,
                          max_memory=16 << 30)
        verdicts = ", ".join(f"{x.property} {x.verdict.value}" for x in results)
        stats = results[0].stats
        print(f"{verdicts}: {stats.states:,} states, {stats.transitions:,} "
              f"transitions, {time.perf_counter() - w0:.1f}s wall, "
              f"{cpu() - c0:.1f}s CPU; peak RSS {rss_mib():,.0f} MiB", flush=True)


def symmetric(k: int, n: int, r: int, total: int, published: int, *,
              compiled: bool, search_only: bool = False) -> bool:
    """The search up to permutations of the instances, then the enumerator,
    then the mapping on representatives; whether every check passed
    (``search_only``: the search alone, for its time and memory)."""
    w0, c0 = time.perf_counter(), cpu()
    pc = PackedComposition(sagabench_system(
        loads(sagabench_definition(k, n, r, total)), k), n, r, total)
    w1, c1 = time.perf_counter(), cpu()
    table = f"{w1 - w0:.2f}s wall, {c1 - c0:.2f}s CPU"
    jit = ""
    if compiled:
        _compiled_layer()
        jit = (f"; numba compilation before it {time.perf_counter() - w1:.2f}s "
               f"wall, {cpu() - c1:.2f}s CPU")
        w1, c1 = time.perf_counter(), cpu()
    found = pc.explore_compiled() if compiled else pc.explore_symmetric()
    w2, c2 = time.perf_counter(), cpu()
    print(f"sagaproof up to symmetry ({'compiled' if compiled else 'numpy'}): "
          f"{found.representatives.size:,} representatives ({found.moves:,} "
          "moves out of them); the full system, counted from orbit sizes: "
          f"{found.states:,} states, {found.transitions:,} transitions",
          flush=True)
    print(f"  search {w2 - w1:.2f}s wall, {c2 - c1:.2f}s CPU{jit}; table of "
          f"{len(pc.blocks)} instance blocks ({pc.moves:,} moves checked "
          f"against SagaBench's actions) {table}; peak RSS so far "
          f"{rss_mib():,.0f} MiB", flush=True)
    if search_only:
        return True
    w0 = time.perf_counter()
    projected, _ = canonical_projection(pc.projected(found.representatives), k)
    w1, c1 = time.perf_counter(), cpu()
    ref, _ = sagabench_states(k, n, r, total, with_edges=False)
    reference = pack_reference(ref, n, r)
    del ref
    ref_reps, orbits = canonical_projection(reference, k)
    print(f"reference enumerator: {reference.size:,} states (published "
          f"{published:,}: {'equal' if reference.size == published else 'DIFFERENT'}"
          f"); {ref_reps.size:,} representatives whose orbits hold {orbits:,} "
          f"states ({'closed' if orbits == reference.size else 'NOT closed'} "
          f"under permutation); {time.perf_counter() - w1:.1f}s wall, "
          f"{cpu() - c1:.1f}s CPU", flush=True)
    equal = bool(np.array_equal(projected, ref_reps))
    print(f"projection onto SagaBench's variables, up to permutation: "
          f"{projected.size:,} representatives; equal to the enumerator's: "
          f"{equal} ({w1 - w0:.1f}s); peak RSS of the whole run "
          f"{rss_mib():,.0f} MiB", flush=True)
    return equal and orbits == reference.size == published


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", help="A, B or C (or K,N,R,TOTAL with --liveness)")
    ap.add_argument("--liveness", action="store_true",
                    help="time the explicit checker's termination against its "
                    "safety properties instead")
    ap.add_argument("--reference-only", action="store_true",
                    help="run only the independent enumerator")
    ap.add_argument("--symmetric", action="store_true",
                    help="search up to permutations of the instances, count "
                    "the full system from orbit sizes (compiled with numba)")
    ap.add_argument("--numpy", action="store_true",
                    help="with --symmetric: the numpy search, not numba's")
    ap.add_argument("--search-only", action="store_true",
                    help="with --symmetric: the search alone (no enumerator, "
                    "no mapping), for its time and memory")
    ap.add_argument("--max-states", type=int, default=None,
                    help="stop sagaproof's search after the layer that passes "
                    "this many states (no mapping check then)")
    args = ap.parse_args()
    if args.symmetric and not args.numpy and not importlib.util.find_spec("numba"):
        ap.error("--symmetric compiles its search with numba: pip install "
                 "'sagaproof[fast]', or add --numpy")
    if args.liveness:
        liveness(*(CONFIGS[args.config][0] if args.config in CONFIGS else
                   tuple(int(x) for x in args.config.split(","))))
        return
    if args.config not in CONFIGS:
        ap.error(f"config={args.config!r}: use A, B or C")
    (k, n, r, total), published = CONFIGS[args.config]
    print(f"config {args.config}: K={k} N={n} R={r} TOTAL={total}", flush=True)
    if args.max_states is not None:
        budgeted(k, n, r, total, args.max_states)
        return
    if args.symmetric:
        sys.exit(0 if symmetric(k, n, r, total, published,
                                compiled=not args.numpy,
                                search_only=args.search_only) else 1)
    w0, c0 = time.perf_counter(), cpu()
    ref, _ = sagabench_states(k, n, r, total, with_edges=False)
    count = len(ref)
    reference = pack_reference(ref, n, r)
    del ref
    print(f"reference enumerator: {count:,} states (published {published:,}: "
          f"{'equal' if count == published else 'DIFFERENT'}); "
          f"{time.perf_counter() - w0:.1f}s wall, {cpu() - c0:.1f}s CPU, "
          f"peak RSS so far {rss_mib():,.0f} MiB", flush=True)
    if args.reference_only:
        sys.exit(0 if count == published else 1)
    w0, c0 = time.perf_counter(), cpu()
    pc = PackedComposition(sagabench_system(
        loads(sagabench_definition(k, n, r, total)), k), n, r, total)
    states, transitions = pc.explore()
    wall, used = time.perf_counter() - w0, cpu() - c0
    print(f"sagaproof: {states.size:,} states, {transitions:,} transitions, "
          f"{wall:.1f}s wall, {used:.1f}s CPU; {len(pc.blocks)} distinct "
          f"instance blocks, {pc.moves:,} distinct instance moves checked "
          f"({pc.stutters:,} stutters, the rest SagaBench actions); peak RSS "
          f"of the whole run {rss_mib():,.0f} MiB", flush=True)
    w0 = time.perf_counter()
    projected = pc.projected(states)
    equal = bool(projected.size == reference.size
                 and (projected == reference).all())
    print(f"projection onto SagaBench's variables: {projected.size:,} distinct "
          f"states; equal to the enumerator's set: {equal} "
          f"({time.perf_counter() - w0:.1f}s)", flush=True)
    if not equal or count != published:
        sys.exit(1)


if __name__ == "__main__":
    main()

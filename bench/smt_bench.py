"""Explicit vs SMT: time to an unbounded verdict, side by side, in one run.

    python bench/smt_bench.py                      # chains 10, 50, 100, 200; 3x4, 6x8
    python bench/smt_bench.py --chains 10 50 --branches 3x4

Each definition is checked for ``compensation_completeness`` under every fault
(the default fault model) by the explicit checker (with a state budget) and by
the z3 backend. Prints a Markdown table (paste into bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import time

from saga_models import Saga, SagaBuilder
from verifier import check

PROPERTY = "compensation_completeness"


def chain(n: int) -> Saga:
    """n compensatable steps in a chain: timeout, two attempts, all faults."""
    b = SagaBuilder(f"chain{n}")
    for i in range(n):
        b.step(
            f"s{i}",
            participant=f"p{i}",
            action="do",
            compensation="undo",
            timeout=1.0,
            retry={"max_attempts": 2},
        )
    return b.build()


def branches(k: int, m: int) -> Saga:
    """k parallel branches of m steps each."""
    b = SagaBuilder(f"branches{k}x{m}")
    for j in range(k):
        for i in range(m):
            b.step(
                f"b{j}s{i}",
                participant=f"p{j}",
                action="do",
                compensation="undo",
                timeout=1.0,
                retry={"max_attempts": 2},
                depends_on=[f"b{j}s{i - 1}"] if i else [],
            )
    return b.build()


def measure(saga: Saga, backend: str, max_states: int) -> tuple[str, float, str]:
    started = time.perf_counter()
    res = check(saga, backend=backend, properties=[PROPERTY], max_states=max_states)
    r = res.results[0]
    return r.verdict.value, time.perf_counter() - started, r.reason


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, nargs="*", default=[10, 50, 100, 200])
    ap.add_argument("--branches", nargs="*", default=["3x4", "6x8"])
    ap.add_argument("--max-states", type=int, default=2_000_000)
    ap.add_argument(
        "--skip-explicit-over",
        type=int,
        default=10**9,
        help="skip the explicit run for definitions with more steps",
    )
    args = ap.parse_args()
    sagas = [chain(n) for n in args.chains]
    sagas += [branches(*map(int, spec.split("x"))) for spec in args.branches]
    print(
        "| definition | steps | explicit verdict | explicit s | smt verdict | smt s |"
    )
    print("|---|---|---|---|---|---|")
    for saga in sagas:
        if len(saga.steps) > args.skip_explicit_over:
            ev, et = "skipped", float("nan")
        else:
            ev, et, _ = measure(saga, "explicit", args.max_states)
        sv, st, _ = measure(saga, "smt", args.max_states)
        print(
            f"| {saga.name} | {len(saga.steps)} | {ev} | {et:.2f} | {sv} | {st:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

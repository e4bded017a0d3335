"""SagaBench (../shared/bench/SAGABENCH.md) reproduced with sagaproof.

Run: ``python bench/sagabench.py A`` (or ``B``, ``C``; ``--max-states N`` to
stop early). For the configuration it prints: the independent enumerator's
SagaBench state count (must be the published one), sagaproof's own state count
for the same definition (K instances over one stock counter, transient failures
only, no reduction), whether the projection of sagaproof's reachable states
equals the normalised SagaBench set (the checked mapping of
``tests/isolation/test_sagabench.py``), and time and peak memory.

sagaproof's states are stored by the bytes of the fields that can vary under
this fault model (a lossless key: the others are asserted constant), so B and C
fit in memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from saga_models import loads
from saga_models import semantics as sem
from saga_models.semantics import AT, CS, EF, HEADER, PHASE, ST, TRIGGER, WIDTH
from tests.isolation.test_sagabench import (
    norm,
    project,
    sagabench_definition,
    sagabench_states,
)
from verifier._multi_ts import MultiSagaTransitionSystem

CONFIGS = {
    "A": ((4, 4, 2, 10), 385_251),
    "B": ((5, 3, 2, 9), 2_658_750),
    "C": ((5, 4, 2, 12), 11_358_306),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", choices=sorted(CONFIGS))
    ap.add_argument("--max-states", type=int, default=60_000_000)
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the independent enumerator (and the mapping)")
    args = ap.parse_args()
    (k, n, r, total), published = CONFIGS[args.config]
    image: set[tuple[int, ...]] | None = None
    if not args.no_reference:
        t0 = time.perf_counter()
        ref, _ = sagabench_states(k, n, r, total)
        print(f"reference enumerator: {len(ref):,} states "
              f"(published {published:,}: "
              f"{'equal' if len(ref) == published else 'DIFFERENT'}) "
              f"in {time.perf_counter() - t0:.1f}s")
        image = {norm(s) for s in ref}
        del ref
    saga = loads(sagabench_definition(k, n, r, total))
    ts = MultiSagaTransitionSystem([saga] * k, sem.FaultModel.parse("fail"),
                                   track_anomalies=False)
    (init,) = ts.initial()
    keep = []
    for inst in ts.comp.instances:
        keep += [inst.off + PHASE, inst.off + TRIGGER, inst.dirty + k]  # net
        for j in range(n):
            b = inst.off + HEADER + WIDTH * j
            keep += [b + ST, b + AT, b + EF, b + CS]
    keep.append(0)
    fixed = [i for i in range(len(init)) if i not in keep]

    def key(s: tuple[int, ...]) -> bytes:
        return bytes([s[i] for i in keep])

    t0 = time.perf_counter()
    seen = {key(init)}
    todo = [init]
    projected: set[tuple[int, ...]] = set()
    transitions = 0
    while todo and len(seen) < args.max_states:
        s = todo.pop()
        if image is not None:
            projected.add(project(ts, s))
        for _, t in ts.successors(s):
            transitions += 1
            kt = key(t)
            if kt not in seen:
                assert all(t[i] == init[i] for i in fixed), "a dropped field moved"
                seen.add(kt)
                todo.append(t)
    seconds = time.perf_counter() - t0
    complete = not todo
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sagaproof: {len(seen):,} states, {transitions:,} transitions, "
          f"{seconds:.1f}s, {len(seen) / seconds:,.0f} states/s, "
          f"{'complete' if complete else 'STOPPED at --max-states'}; "
          f"peak RSS {rss:,.0f} MiB")
    if image is not None and complete:
        print(f"projection onto SagaBench's variables: {len(projected):,} "
              f"distinct; equals the normalised reference set "
              f"({len(image):,}): {projected == image}")


if __name__ == "__main__":
    main()

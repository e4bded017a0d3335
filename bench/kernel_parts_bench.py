"""Where a compiled check's time goes: search, property pass, fair cycle.

Run: ``python bench/kernel_parts_bench.py`` (``--cases par3x3,par3x4``, the
default). Every fault knob on; CPU seconds, in one process, after a warm-up
that loads the compiled code. Per case: the compiled search alone (watching
compensation starts, as a safety check does), the compiled property pass
over its states (``verifier._kernel_props.property_pass``, every check on),
the search keeping its edges, and the compiled fair-cycle search on them
(``verifier._kernel_liveness.fair_cycle``). Then the property pass split
into its state checks and its ordering check (over the watched
transitions), each the fastest of ``--repeat`` runs (default 5).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    """Print one line per case."""
    from explicit_bench import parallel

    from saga_models import FaultModel
    from verifier import SagaTransitionSystem
    from verifier import _kernel_bfs as kb
    from verifier import _kernel_liveness as kl
    from verifier import _kernel_props as kp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="par3x3,par3x4")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    faults = FaultModel()
    warm = parallel(2, 3)
    s0 = kb.search(warm, faults, graph=True, watch_kinds=32, max_states=1 << 30)
    assert s0 is not None
    kp.property_pass(warm, s0, completeness=True, consistency=True,
                     reached=True, transitions=True)
    kl.fair_cycle(SagaTransitionSystem(warm, faults), s0)
    print("| case | states | edges | search s | property pass s | "
          "search with edges s | fair cycle s | fair cycle found | "
          "state checks s (min) | ordering check s (min) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for name in args.cases.split(","):
        b, k = (int(x) for x in name[3:].split("x"))
        saga = parallel(b, k)
        t0 = time.process_time()
        s = kb.search(saga, faults, graph=False, watch_kinds=32,
                      max_states=1 << 31)
        t1 = time.process_time()
        assert s is not None
        kp.property_pass(saga, s, completeness=True, consistency=True,
                         reached=True, transitions=True)
        t2 = time.process_time()
        parts = []
        for states, trans in ((True, False), (False, True)):
            best = float("inf")
            for _ in range(args.repeat):
                t = time.process_time()
                kp.property_pass(saga, s, completeness=states,
                                 consistency=states, reached=states,
                                 transitions=trans)
                best = min(best, time.process_time() - t)
            parts.append(best)
        del s
        s = kb.search(saga, faults, graph=True, watch_kinds=32,
                      max_states=1 << 31)
        t3 = time.process_time()
        assert s is not None
        lasso = kl.fair_cycle(SagaTransitionSystem(saga, faults), s)
        t4 = time.process_time()
        print(f"| {name} | {s.count:,} | {len(s.edge_dst):,} | {t1 - t0:.2f} | "
              f"{t2 - t1:.2f} | {t3 - t2:.2f} | {t4 - t3:.2f} | "
              f"{lasso is not None} | {parts[0]:.2f} | {parts[1]:.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""States and time with and without partial-order reduction (and symmetry).

For each model in examples/isolation/ and K = 2..4 instances, the safety
properties (every one but termination, which always runs unreduced) are
checked four ways: unreduced, ``por``, ``symmetry``, ``symmetry+por``. With
``por`` the time includes recomputing each counterexample by the bounded
unreduced search. The verdicts of the four must agree (the script says so).

Run: ``python bench/por_bench.py --faults fail --max-k 4``
(seconds are CPU time of this process, so other load on a shared machine does
not count; a run that exceeds ``--max-states`` shows ``>N``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from saga_models import FaultModel, Saga, load  # noqa: E402
from verifier import Verdict  # noqa: E402
from verifier._explicit import explore  # noqa: E402
from verifier._multi_ts import MultiSagaTransitionSystem  # noqa: E402
from verifier._por import explore_shortest  # noqa: E402

MODES = (("unreduced", False, False), ("por", False, True),
         ("symmetry", True, False), ("symmetry+por", True, True))


def run(saga: Saga, k: int, faults: FaultModel, max_states: int
        ) -> list[tuple[str, int, float, dict[str, Verdict]]]:
    """One row: (mode, states, seconds, verdicts) per mode."""
    out = []
    for mode, symmetry, por in MODES:
        ts = MultiSagaTransitionSystem([saga] * k, faults, symmetry=symmetry,
                                       por=por)
        names = [p.name for p in ts.properties if not p.liveness]
        started = time.process_time()
        if por:
            plain = MultiSagaTransitionSystem([saga] * k, faults,
                                              symmetry=symmetry)
            res = explore_shortest(ts, plain, properties=names,
                                   max_states=max_states)
        else:
            res = explore(ts, properties=names, max_states=max_states)
        seconds = time.process_time() - started
        out.append((mode, res[0].stats.states, seconds,
                    {r.property: r.verdict for r in res}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", default="fail")
    ap.add_argument("--max-k", type=int, default=4)
    ap.add_argument("--max-states", type=int, default=2_000_000)
    ap.add_argument("--only", default="", help="substring of the model names")
    args = ap.parse_args()
    faults = FaultModel.parse(args.faults)
    print(f"faults: {faults.describe()}")
    print("| model | K | " + " | ".join(f"{m} states (s)" for m, _, _ in MODES)
          + " | verdicts agree |")
    print("|---|---|" + "---|" * (len(MODES) + 1))
    for path in sorted((ROOT / "examples" / "isolation").glob("*.saga.yaml")):
        if args.only not in path.name:
            continue
        saga = load(path)
        assert isinstance(saga, Saga)
        for k in range(2, args.max_k + 1):
            row = run(saga, k, faults, args.max_states)
            cells = []
            for _, states, seconds, verdicts in row:
                over = Verdict.UNKNOWN in verdicts.values()
                cells.append(f"{'>' if over else ''}{states:,} ({seconds:.2f})")
            decided = [v for *_, v in row if Verdict.UNKNOWN not in v.values()]
            agree = all(v == decided[0] for v in decided) if decided else None
            print(f"| {path.name.split('.')[0]} | {k} | " + " | ".join(cells)
                  + f" | {'yes' if agree else 'NO' if agree is False else '-'} |",
                  flush=True)


if __name__ == "__main__":
    main()

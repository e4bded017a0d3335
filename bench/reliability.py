"""The reliability report: crash scenarios with real processes, one table.

    python bench/reliability.py                  # the figures in bench/RESULTS.md
    python bench/reliability.py --kills 20 --total 400   # a quick look

Per scenario (see tests/runtime/slow/reliability.py for how each is measured):
kills, sagas, sagas recovered, recoveries that found a saga compensating,
re-executions (re-sends of in-flight steps, allowed), lost steps, completed
steps re-run, non-terminal sagas, conform rejections, double claims, sagas a
worker took over from a SIGSTOPped one. The fuzz suite's figures (inputs tried,
failures) get their own rows from their own command; see bench/RESULTS.md.
Exit code 1 if a must-be-zero figure is not zero.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "runtime" / "slow"))

import reliability as r  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=100)
    p.add_argument("--total", type=int, default=2000)
    p.add_argument("--stops", type=int, default=5, help="SIGSTOP rounds")
    p.add_argument("--only", type=int, action="append", metavar="N",
                   help="run only scenario N (1-5, repeatable)")
    args = p.parse_args()
    runs = [
        lambda t: r.random_kills(t, kills=args.kills, total=args.total),
        lambda t: r.random_kills(t, kills=args.kills, total=args.total,
                                 mode="compensate"),
        lambda t: r.recover_kills(t, kills=args.kills, total=args.total),
        lambda t: r.concurrent_recover(t, kills=max(1, args.kills // 5),
                                       total=args.total),
        lambda t: r.sigstop_past_lease(t, rounds=args.stops, total=args.total),
    ]
    print(r.HEADER)
    ok = True
    for n, run in enumerate(runs, 1):
        if args.only and n not in args.only:
            continue
        with tempfile.TemporaryDirectory() as d:
            fig = run(Path(d))
        print(fig.row(), flush=True)
        for problem in fig.problems:
            print(f"  problem: {problem}", file=sys.stderr)
        ok &= fig.ok()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

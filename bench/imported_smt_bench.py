"""Explicit vs z3 on imported graphs: verdicts, agreement and time per file.

For every corpus file under ``../shared/corpus`` (asl, seata, sw) and for N
ASL machines drawn from the moto differential test's Hypothesis strategy,
checks with both backends and prints, per file, the explicit and z3 seconds,
the states the explicit checker stored, and whether every property agrees (an
``unknown`` on either side counts as a disagreement).

Run: ``PYTHONPATH=. python bench/imported_smt_bench.py [--generated 30]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from saga_models._source import read_document  # noqa: E402
from saga_models.importers import graph_semantics as gs  # noqa: E402
from tests.importers.test_moto_differential import machines  # noqa: E402
from tests.parity.test_imported_smt_parity import FILES, load  # noqa: E402
from verifier import Verdict, check  # noqa: E402


def one(name: str, im: gs.ImportedMachine) -> tuple[bool, float, float]:
    t0 = time.perf_counter()
    e = check(im)
    t1 = time.perf_counter()
    z = check(im, backend="smt")
    t2 = time.perf_counter()
    ok = all(a.verdict is b.verdict and Verdict.UNKNOWN not in (a.verdict, b.verdict)
             for a, b in zip(e.results, z.results, strict=True))
    states = max(r.stats.states for r in e.results)
    print(f"| {name} | {states} | {t1 - t0:.2f} | {t2 - t1:.2f} | "
          f"{'yes' if ok else 'NO'} |", flush=True)
    return ok, t1 - t0, t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--generated", type=int, default=30)
    ap.add_argument("--skip", default="", help="comma-separated file names")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print("| file | states (explicit) | explicit s | z3 s | agree |")
    print("|---|---:|---:|---:|---|")
    agree = total = 0
    for path in FILES:
        if path.name in skip:
            continue
        ok, _, _ = one(path.name, load(path))
        agree += ok
        total += 1
    times: list[float] = []
    tmp = Path(tempfile.mkdtemp())

    @settings(max_examples=args.generated, deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck))
    @given(case=machines())
    def gen(case: tuple[dict[str, Any], Any, Any]) -> None:
        nonlocal agree, total
        p = tmp / "m.asl.json"
        p.write_text(json.dumps(case[0], indent=1))
        ok, _, z = one(f"generated {total}", gs.load_machine(read_document(p)))
        agree += ok
        total += 1
        times.append(z)

    gen()
    print(f"\n{agree}/{total} agree; generated: z3 median "
          f"{sorted(times)[len(times) // 2]:.2f}s" if times else "")


if __name__ == "__main__":
    main()

"""Fuzzing throughput and findings: ``python bench/fuzz_bench.py [N] [--code DIR]``.

Runs mutants 0..N-1 of the structure-aware mutation fuzzer (``tests/fuzz``)
through the CLI's loading path and the explicit checker, in process, and
prints inputs per second, the outcomes (``invalid``: a coded diagnostic,
``verdict``) and every distinct crash (exception type and the line it escaped
from). ``--code DIR`` runs the same inputs against another checkout's
``saga_models``/``verifier`` (e.g. the main branch before issue 15) to count
what the fuzzer finds there.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("n", nargs="?", type=int, default=2000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="checkout whose loaders and checker are fuzzed")
    args = ap.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    # The suite is loaded from this checkout under its own package name, so
    # that ``--code`` decides which saga_models and verifier it drives.
    spec = importlib.util.spec_from_file_location(
        "fuzzsuite", ROOT / "tests" / "fuzz" / "__init__.py",
        submodule_search_locations=[str(ROOT / "tests" / "fuzz")])
    assert spec is not None and spec.loader is not None
    sys.modules["fuzzsuite"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules["fuzzsuite"])
    mutants = importlib.import_module("fuzzsuite.mutate").mutants
    in_process = importlib.import_module("fuzzsuite.oracle").in_process

    outcomes: collections.Counter[str] = collections.Counter()
    crashes: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for m in mutants(args.n, start=args.start):
            path = Path(tmp) / f"mutant{m.number}{m.suffix}"
            path.write_bytes(m.content)
            try:
                outcome, problems = in_process(path)
            except Exception as exc:  # counting escapes is the point
                last = traceback.extract_tb(exc.__traceback__)[-1]
                crashes[f"{type(exc).__name__} at {Path(last.filename).name}:"
                        f"{last.lineno}"] += 1
                continue
            outcomes[outcome] += 1
            outcomes["diagnostic without code/help/location"] += bool(problems)
    seconds = time.perf_counter() - started
    print(f"code: {args.code}")
    print(f"{args.n} inputs in {seconds:.1f}s ({args.n / seconds:.0f} inputs/s)")
    print(f"outcomes: {dict(outcomes)}")
    print(f"crashes: {sum(crashes.values())} inputs, {len(crashes)} distinct sites")
    for site, count in crashes.most_common():
        print(f"  {count:5d}  {site}")


if __name__ == "__main__":
    main()

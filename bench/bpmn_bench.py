"""BPMN import: what a check of a BPMN file costs, and the differential's pace.

For the corpus file and every golden in ``tests/importers/bpmn/``, under both
dialects: the time to parse (SpiffWorkflow validation included) and to check
every property with all faults on, and the states explored. Then the time
per example of the SpiffWorkflow differential (generate, run with Spiff,
replay in the model).

Run: ``python bench/bpmn_bench.py [--examples 200] [--write]`` from the
repository root (reads ../shared/corpus); with ``--write`` the table replaces
the "BPMN import" section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from saga_models.importers.graph_semantics import load_bpmn  # noqa: E402
from verifier import check  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- bpmn-bench:begin -->", "<!-- bpmn-bench:end -->"
CORPUS = ROOT / ".." / "shared" / "corpus" / "bpmn"


def differential(examples: int) -> float:
    """Seconds per example of the SpiffWorkflow differential."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.importers.spiff_oracle import processes, replay, run_spiff

    @settings(max_examples=examples, deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck))
    @given(gen=processes(), data=st.data())
    def one(gen: object, data: st.DataObject) -> None:
        run = run_spiff(gen,  # type: ignore[arg-type]
                        lambda options: data.draw(st.sampled_from(options)))
        assert replay(gen, run) is None  # type: ignore[arg-type]

    started = time.perf_counter()
    one()
    return (time.perf_counter() - started) / examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    files = sorted(CORPUS.glob("*.bpmn")) + sorted(
        (ROOT / "tests" / "importers" / "bpmn").glob("*.bpmn"))
    rows = []
    for path in files:
        for dialect in ("camunda7", "zeebe"):
            started = time.perf_counter()
            im = load_bpmn(str(path), dialect=dialect)
            parsed = time.perf_counter() - started
            result = check(im)
            total = time.perf_counter() - started
            states = max(p.stats.states for p in result.results)
            rows.append(f"| {path.name} | {dialect} | {parsed * 1000:.0f} | "
                        f"{total * 1000:.0f} | {states} | "
                        f"{result.verdict.value} |")
    per = differential(args.examples)
    text = "\n".join([
        "## BPMN import",
        "",
        f"Command: `python bench/bpmn_bench.py --examples {args.examples} "
        "--write` (from the repository root). One run, 2-core machine shared "
        "with other work; indicative. Parse includes SpiffWorkflow's "
        "validation; check is every property, all faults on.",
        "",
        "| file | dialect | parse ms | parse + check ms | states | verdict |",
        "|---|---|---:|---:|---:|---|",
        *rows,
        "",
        f"SpiffWorkflow differential: {per * 1000:.0f} ms per generated "
        f"process ({args.examples} examples: generate, run in SpiffWorkflow, "
        "replay in the model).",
    ])
    print(text)
    if args.write:
        old = RESULTS.read_text()
        block = f"{BEGIN}\n{text}\n{END}"
        if BEGIN in old:
            head, rest = old.split(BEGIN, 1)
            old = head + block + rest.split(END, 1)[1]
        else:
            old = old.rstrip("\n") + "\n\n" + block + "\n"
        RESULTS.write_text(old)


if __name__ == "__main__":
    main()

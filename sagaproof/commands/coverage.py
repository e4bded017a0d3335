"""``sagaproof coverage DEFINITION...``: what generated tests never reached.

Reads the witnesses the generated stateful tests recorded (the pytest plugin
merges them into ``.sagaproof/coverage.json``) and compares them with what the
model can reach under the same fault model: steps, compensations, outcomes of
each, terminal outcomes, recovery. Exit code 0 when every reachable witness
was reached (or ``--fail-under`` is met), 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..budget import add_budget_args


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "coverage", help="report what the generated tests never reached")
    p.add_argument("definitions", nargs="+", metavar="DEFINITION")
    p.add_argument("--data", default=".sagaproof/coverage.json",
                   help="witness file written by the pytest plugin")
    p.add_argument("--fail-under", type=float, default=100.0, metavar="PERCENT",
                   help="exit 1 when fewer witnesses than this were reached")
    p.add_argument("--json", action="store_true")
    add_budget_args(p, max_states=200_000)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saga_models import load
    from sagaproof.testing import CoverageStore, coverage_report
    from verifier._budget import Deadline

    store = CoverageStore(args.data)
    deadline = Deadline.after(args.timeout) if args.timeout else None
    reports = []
    for path in args.definitions:
        definition = load(path)  # a saga or an event workflow
        reports.append(coverage_report(definition, store.reached(definition),
                                       faults=store.faults(definition),
                                       max_states=args.max_states,
                                       deadline=deadline))
    if args.json:
        print(json.dumps([{"definition": r.definition, "ratio": r.ratio,
                           "incomplete": r.cut or None,
                           "reached": sorted(r.reached & r.reachable),
                           "missing": list(r.missing)} for r in reports],
                         indent=2))
    else:
        for r in reports:
            print(r.text())
            if not r.reached:
                print(f"  (no witnesses in {args.data}: run the generated tests, "
                      "e.g. pytest --sagaproof DEFINITION with a binding)")
    worst = min(r.ratio for r in reports) * 100
    return 0 if worst >= args.fail_under else 1

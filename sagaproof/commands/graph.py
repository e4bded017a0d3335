"""``sagaproof graph PATH``: draw a definition, or its explored state graph."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..budget import count_arg, seconds_arg
from ..cli import EXIT_OK, EXIT_USAGE


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "graph", help="draw a saga or workflow (Mermaid or DOT)",
        description="Draw the definition; with --states, the state graph the "
        "checker explores (breadth-first, cut at --max-states).",
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    p.add_argument("--states", action="store_true",
                   help="draw the explored state graph instead of the definition")
    p.add_argument("--faults", default="none", metavar="KNOBS",
                   help="fault model for --states (default: none, to keep it "
                   "readable)")
    p.add_argument("--max-states", type=count_arg, default=500, metavar="N")
    p.add_argument("--timeout", type=seconds_arg, default=None, metavar="DURATION",
                   help="wall-clock budget for --states (30s, 2m)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saga_models import FaultModel, Saga, load
    from verifier import graph

    definition = load(args.path)
    if args.states:
        try:
            faults = FaultModel.parse(args.faults)
        except ValueError as exc:
            print(f"sagaproof graph: --faults: {exc}", file=sys.stderr)
            return EXIT_USAGE
        g = graph.state_graph(definition, faults=faults, max_states=args.max_states,
                              timeout=args.timeout)
        out = (graph.state_graph_mermaid(g) if args.format == "mermaid"
               else graph.state_graph_dot(g))
        if g.graph.get("truncated"):
            print(f"sagaproof graph: state graph cut at {len(g)} states "
                  f"(raise {g.graph.get('cut_by') or '--max-states'})",
                  file=sys.stderr)
    elif isinstance(definition, Saga):
        out = (graph.saga_mermaid(definition) if args.format == "mermaid"
               else graph.saga_dot(definition))
    else:
        from saga_models import workflow

        out = (workflow.to_mermaid(definition) if args.format == "mermaid"
               else workflow.to_dot(definition))
    sys.stdout.write(out)
    return EXIT_OK

"""``sagaproof export --format asl DEFINITION``: a verified saga for Step
Functions; ``sagaproof export --format promela [--faults KNOBS] DEFINITION``:
the saga under a fault model as a Promela model for SPIN (docs/spin.md); and
``sagaproof mapping FILE``: the inferred compensation map of an
imported ASL or Seata file, as a sidecar to edit and pass to ``--compensations``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..cli import EXIT_OK, EXIT_USAGE


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "export", help="write a native saga as an ASL state machine or a "
        "Promela model for SPIN",
        description="Write a native saga as an Amazon States Language state "
        "machine: Tasks with Retry and Catch, Parallel states (with their own "
        "Catch) for steps that do not depend on each other, and one guarded "
        "compensation chain in reverse topological order ending in Fail. The "
        "exported file, imported again, verifies with the same verdicts. A "
        "dependency graph nested Parallel states cannot express (not "
        "series-parallel) is refused with a located EXPORT101 (exit 2); so is "
        "a saga that breaks a structure rule (SAGA11x) or has a fact the "
        "checked file cannot carry (SAGA184-189: compensation_needs_result, "
        "total_timeout, breaker, read_only, shared resources, a retried "
        "non-idempotent step, a pivot's timeout). "
        "--format promela writes the saga under --faults as a Promela model "
        "whose states are sagaproof's states, with the safety properties as "
        "assertions (docs/spin.md); outside its subset: SAGA180-182, exit 2.",
    )
    p.add_argument("path", metavar="DEFINITION")
    p.add_argument("--format", choices=["asl", "promela"], default="asl")
    p.add_argument("--faults", default="all", metavar="KNOBS",
                   help="promela only: all, none, or a comma list of fail, "
                   "timeout, comp_fail, late, crash[=N], duplicate[=N] "
                   "(default: all)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write here instead of standard output")
    p.set_defaults(func=run_export)
    m: argparse.ArgumentParser = sub.add_parser(
        "mapping", help="print the inferred compensation map of an ASL/Seata file",
        description="Print which Task compensates which, as 'sagaproof check' "
        "reads it: from the structure of the file (Catch routes and rollback "
        "chains, names breaking ties; CompensateState in Seata), in the "
        "sidecar format that --compensations reads. A Task with nothing to "
        "undo (a read, a notice) is listed as 'none'; an unmapped forward Task "
        "as '?' with an UNMAPPED note, which --compensations refuses until you "
        "replace it: it is reported, never guessed.",
    )
    m.add_argument("path", metavar="FILE")
    m.add_argument("--compensations", metavar="MAP",
                   help="an existing sidecar to apply before printing")
    m.set_defaults(func=run_mapping)


def run_export(args: argparse.Namespace) -> int:
    from saga_models import load
    from saga_models.exporters import dumps_asl, dumps_promela
    from saga_models.semantics import FaultModel

    if args.format == "promela":
        try:
            faults = FaultModel.parse(args.faults)
        except ValueError as exc:
            print(f"sagaproof export: error[SAGA010]: --faults={args.faults!r}: "
                  f"{exc}\n  help: write all, none, or a comma list of fail, "
                  "timeout, comp_fail, crash[=N], duplicate[=N]", file=sys.stderr)
            return EXIT_USAGE
        text = dumps_promela(load(args.path), faults=faults)
    else:
        text = dumps_asl(load(args.path))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def run_mapping(args: argparse.Namespace) -> int:
    from saga_models import importers
    from saga_models._formats import looks_like_bpmn
    from saga_models._source import read_document

    if looks_like_bpmn(args.path):
        from saga_models.importers.graph_semantics import bpmn_mapping

        cmap = bpmn_mapping(args.path)
        use = ("read from its compensation boundary events and associations "
               "(a BPMN file declares them; it takes no sidecar)")
    elif importers.detect((doc := read_document(args.path)).data) == "sw":
        from saga_models.importers.graph_semantics import (
            declared_mapping,
            load_sw,
        )

        _no_sidecar(args.path, args.compensations)
        cmap = declared_mapping(load_sw(doc), "compensatedBy")
        use = ("read from its states' compensatedBy (a Serverless Workflow "
               "declares them; it takes no sidecar)")
    else:
        cmap = importers.graph_mapping(args.path,
                                       compensations=args.compensations)
        use = f"use: sagaproof check {args.path} --compensations THIS_FILE"
    sys.stdout.write(cmap.to_yaml(
        header=f"compensation map for {args.path}\n{use}"))
    return EXIT_OK


def _no_sidecar(path: str, compensations: str | None) -> None:
    """A Serverless Workflow declares its compensations (``compensatedBy``):
    a sidecar would be ignored, so it is refused rather than dropped."""
    if not compensations:
        return
    from saga_models import Diagnostic, InvalidDefinition, Span

    raise InvalidDefinition((Diagnostic(
        code="SW150", span=Span(file=path, line=1, column=1),
        message="--compensations does not apply to a Serverless Workflow: "
        "each state's compensatedBy says which state undoes it",
        help="leave --compensations out; set compensatedBy on the state "
        "that needs undoing"),))

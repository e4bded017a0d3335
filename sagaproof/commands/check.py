"""``sagaproof check PATH...``: verdicts a CI pipeline can gate on."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from saga_models import FaultModel, InvalidDefinition
from verifier import CheckResult, Verdict, check, render

from ..cli import EXIT_OK, EXIT_UNKNOWN, EXIT_USAGE, EXIT_VIOLATED


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "check", help="verify definitions; exit 0 holds, 1 violated, 3 unknown",
        description="Explore every execution of each definition under the fault "
        "model and report a verdict per property.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--format", choices=["text", "json", "junit", "sarif"],
                   default="text")
    p.add_argument("--faults", default="all", metavar="KNOBS",
                   help="all, none, or a comma list of fail, timeout, comp_fail, "
                   "crash[=N], duplicate[=N] (default: all)")
    p.add_argument("--max-states", type=int, default=5_000_000, metavar="N")
    p.add_argument("--max-memory", type=int, default=8 * 1024**3, metavar="BYTES")
    p.add_argument("--property", action="append", dest="properties",
                   metavar="NAME", help="check only this property (repeatable)")
    p.add_argument("--backend", choices=["explicit", "smt", "auto"],
                   default="explicit")
    p.add_argument("--compensations", metavar="MAP",
                   help="sidecar YAML mapping forward tasks to compensations "
                   "(imported ASL)")
    p.add_argument("--instances", type=int, metavar="K",
                   help="compose K instances of each saga over its shared "
                   "resources, every interleaving (default: the file's "
                   "'instances:', else 1)")
    p.add_argument("--symmetry", action="store_true",
                   help="explore identical instances up to permutation "
                   "(safety properties; termination is checked unreduced)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run)


def _progress_bar(enabled: bool) -> Any:
    if not enabled or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(unit=" states", file=sys.stderr, leave=False)

    def update(states: int, depth: int) -> None:
        bar.n = states
        bar.set_postfix(depth=depth, refresh=False)
        bar.refresh()

    return bar, update


def run(args: argparse.Namespace) -> int:
    try:
        faults = FaultModel.parse(args.faults)
    except ValueError as exc:
        print(f"sagaproof check: --faults: {exc}", file=sys.stderr)
        return EXIT_USAGE
    results: list[CheckResult] = []
    bad_input = False
    for path in args.paths:
        try:
            definitions = _load_all(path, args)
        except InvalidDefinition as exc:
            print(exc.render(), file=sys.stderr)
            bad_input = True
            continue
        for definition in definitions:
            bar, update = _progress_bar(not args.no_progress)
            try:
                results.append(check(
                    definition, properties=args.properties, faults=faults,
                    backend=args.backend, max_states=args.max_states,
                    max_memory=args.max_memory, progress=update, source=path,
                    instances=args.instances, symmetry=args.symmetry,
                ))
            except ValueError as exc:
                print(f"sagaproof check: {path}: {exc}", file=sys.stderr)
                bad_input = True
            finally:
                if bar is not None:
                    bar.close()
    out = {"text": lambda r: render.text(r, verbose=args.verbose),
           "json": render.to_json, "junit": render.junit,
           "sarif": render.sarif}[args.format](results)
    if out:
        print(out)
    if bad_input:
        return EXIT_USAGE
    verdicts = {r.verdict for r in results}
    if Verdict.VIOLATED in verdicts:
        return EXIT_VIOLATED
    if Verdict.UNKNOWN in verdicts:
        return EXIT_UNKNOWN
    return EXIT_OK


def _load_all(path: str, args: argparse.Namespace) -> list[Any]:
    """Every definition in ``path``: one for a native file, one per Choice path
    for an imported ASL or Seata file (each path is checked on its own)."""
    from saga_models import importers
    from saga_models._loader import load_document
    from saga_models._source import read_document

    doc = read_document(path)
    if importers.detect(doc.data) is not None:
        return list(importers.load_all_document(doc, compensations=args.compensations))
    if args.compensations:
        return [importers.load(path, compensations=args.compensations)]
    return [load_document(doc)]

"""``sagaproof check PATH...``: verdicts a CI pipeline can gate on."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..budget import add_budget_args, count_arg
from ..cli import EXIT_OK, EXIT_UNKNOWN, EXIT_USAGE, EXIT_VIOLATED, version

if TYPE_CHECKING:
    # Loaded when the command runs, not when ``sagaproof --help`` builds the
    # parser (docs/cli.md: import cost).
    from saga_models import Diagnostic, FaultModel


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "check", help="verify definitions; exit 0 holds, 1 violated, 3 unknown",
        description="Explore every execution of each definition under the fault "
        "model and report a verdict per property.",
    )
    # Defaults of None: a flag given wins over [tool.sagaproof] in
    # pyproject.toml, which wins over the built-in defaults (DEFAULTS).
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="definition files (default: paths in [tool.sagaproof])")
    p.add_argument("--format", choices=["text", "json", "junit", "sarif"],
                   default=None, help="default: text")
    p.add_argument("--faults", default=None, metavar="KNOBS",
                   help="all, none, or a comma list of fail, timeout, comp_fail, "
                   "crash[=N], duplicate[=N] (default: all)")
    # Defaults are None so [tool.sagaproof] can fill them (see DEFAULTS).
    add_budget_args(p, max_states=None, max_memory=None, memory=True)
    p.add_argument("--property", action="append", dest="properties",
                   metavar="NAME", help="check only this property (repeatable)")
    p.add_argument("--backend", choices=["explicit", "smt", "auto"],
                   default=None, help="default: explicit")
    p.add_argument("--config", metavar="PYPROJECT",
                   help="read [tool.sagaproof] from this file instead of the "
                   "nearest pyproject.toml")
    p.add_argument("--compensations", metavar="MAP",
                   help="sidecar YAML mapping forward tasks to compensations "
                   "(imported ASL)")
    p.add_argument("--bpmn-dialect", choices=["camunda7", "zeebe"],
                   default=None, help="the engine whose compensation rules a "
                   "BPMN file is checked under: camunda7 (handlers one at a "
                   "time, newest first) or zeebe (all at once); default: "
                   "camunda7")
    p.add_argument("--instances", type=int, metavar="K",
                   help="compose K instances of each saga over its shared "
                   "resources, every interleaving (default: the file's "
                   "'instances:', else 1)")
    p.add_argument("--symmetry", action="store_true",
                   help="explore identical instances up to permutation "
                   "(safety properties; termination is checked unreduced)")
    p.add_argument("--por", action="store_true",
                   help="partial-order reduction: do not interleave moves of an "
                   "instance that no other instance can see, nor moves of "
                   "parallel steps that no other step can see (one saga too; "
                   "safety properties, counterexamples still shortest; "
                   "termination is checked unreduced; combines with "
                   "--symmetry)")
    p.add_argument("--hash-compact", action="store_true", default=None,
                   help="store a 64-bit fingerprint per state instead of the "
                   "state (SPIN's hash compaction), for models beyond memory: "
                   "violations found are real, nothing is reported as holding "
                   "(unknown, with the estimated probability that a state was "
                   "missed)")
    p.add_argument("--bitstate", nargs="?", const="", default=None,
                   metavar="BITS",
                   help="store k=3 bits per state in an array of 2**BITS bits "
                   "(SPIN's bitstate or supertrace; default 30, 128 MiB); as "
                   "lossy as --hash-compact, smaller still; write "
                   "--bitstate=BITS")
    p.add_argument("--workers", type=count_arg, default=None, metavar="N",
                   help="threads that expand states in the compiled search "
                   "(a single saga); the same verdicts, counts and "
                   "counterexamples as one (default: 1)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run)


DEFAULTS: dict[str, Any] = {
    "format": "text", "faults": "all", "max_states": 5_000_000,
    "max_memory": 8 * 1024**3, "backend": "explicit", "properties": None,
    "compensations": None, "bpmn_dialect": "camunda7", "hash_compact": False,
    "bitstate": None, "workers": 1,
}
"""Built-in defaults, used when neither a flag nor the configuration sets one."""


def _configure(args: argparse.Namespace) -> list[tuple[str, Diagnostic]]:
    """Fill unset options from [tool.sagaproof], then from DEFAULTS; the
    configuration's own problems, as diagnostics."""
    from pathlib import Path

    from ..config import expand_paths, load_config

    cfg = load_config(args.config)
    for dest, default in DEFAULTS.items():
        if getattr(args, dest, None) is None:
            setattr(args, dest, cfg.values.get(dest.replace("_", "-"), default))
    if not args.paths and "paths" in cfg.values:
        args.paths = expand_paths(cfg.values["paths"],
                                  base=Path(cfg.file).parent)
    problems = [(cfg.file, d) for d in cfg.diagnostics]
    if not args.paths and not problems:
        problems.append(_usage(
            "SAGA016", "no definition to check",
            "name files: sagaproof check order.saga.yaml, or set paths = "
            '["sagas/*.yaml"] under [tool.sagaproof] in pyproject.toml'))
    return problems


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


def _usage(code: str, message: str, help_text: str,
           where: str = "<command line>") -> tuple[str, Diagnostic]:
    """A usage problem as a diagnostic, so every format can report it."""
    from saga_models import Diagnostic, Span

    return where, Diagnostic(code=code, message=message, help=help_text,
                             span=Span(file=where))


def run(args: argparse.Namespace) -> int:
    from saga_models import FaultModel
    from verifier import CheckResult, Verdict, render

    results: list[CheckResult] = []
    sources: list[render.SourceMap] = []
    lossy_flags = _lossy_flags(args)
    problems = _configure(args)
    if lossy_flags is not None:
        # A flag given overrides both keys of [tool.sagaproof].
        args.hash_compact, args.bitstate = lossy_flags
    if problems:
        _emit(args, results, sources, problems)
        return EXIT_USAGE
    if args.por and args.backend == "smt":
        problems.append(_usage(
            "SAGA183", "--por with --backend smt: partial-order reduction is a "
            "reduction of the explicit search",
            "drop --por, or use --backend explicit (or auto, which checks "
            "composed sagas explicitly)"))
        _emit(args, results, sources, problems)
        return EXIT_USAGE
    compaction, problem = _compaction(args)
    if problem is not None:
        problems.append(problem)
        _emit(args, results, sources, problems)
        return EXIT_USAGE
    args.compaction = compaction
    try:
        faults = FaultModel.parse(args.faults)
    except ValueError as exc:
        problems.append(_usage(
            "SAGA010", f"--faults={args.faults!r}: {exc}",
            "write all, none, or a comma list of fail, timeout, comp_fail, "
            "crash[=N], duplicate[=N]"))
    else:
        for path in args.paths:
            _check_path(path, args, faults, results=results, sources=sources,
                        problems=problems)
    _emit(args, results, sources, problems)
    if problems:
        return EXIT_USAGE
    verdicts = {r.verdict for r in results}
    if Verdict.VIOLATED in verdicts:
        return EXIT_VIOLATED
    if Verdict.UNKNOWN in verdicts:
        return EXIT_UNKNOWN
    return EXIT_OK


def _check_path(path: str, args: argparse.Namespace, faults: FaultModel, *,
                results: list[Any], sources: list[Any],
                problems: list[tuple[str, Diagnostic]]) -> None:
    """Check every definition in ``path``, appending to the three lists."""
    from saga_models import InvalidDefinition
    from verifier import check, render
    from verifier._explicit import CompactionUnsupported

    try:
        definitions = _load_all(path, args)
    except InvalidDefinition as exc:
        problems.extend((path, d) for d in exc.diagnostics)
        return
    for definition in definitions:
        _show_warnings(definition)
        if args.instances is not None and _is_scenario(definition):
            problems.append(_usage(
                "SAGA175", f"--instances={args.instances} on a scenario",
                "leave out --instances: a scenario gives each saga its "
                "'count:'", where=path))
            continue
        bar, update = _progress_bar(not args.no_progress)
        try:
            results.append(check(
                definition, properties=args.properties, faults=faults,
                backend=args.backend, max_states=args.max_states,
                max_memory=args.max_memory, progress=update, source=path,
                timeout=args.timeout, instances=args.instances,
                symmetry=args.symmetry, por=args.por,
                compaction=args.compaction, workers=args.workers,
            ))
            sources.append(render.SourceMap.of(definition))
        except CompactionUnsupported as exc:
            problems.append(_usage(
                "SAGA194", f"{args.compaction.mode}: {exc}",
                "drop --hash-compact/--bitstate for this definition: the "
                "full search (or --symmetry, --por for composed sagas) is the "
                "way to check it", where=path))
        except ValueError as exc:
            problems.append(_usage(
                "SAGA011", str(exc),
                "pass --property with one of the names listed, or leave it "
                "out to check every property", where=path))
        finally:
            if bar is not None:
                bar.close()


def _lossy_flags(args: argparse.Namespace) -> tuple[bool, Any] | None:
    """(``--hash-compact``, ``--bitstate``) as given on the command line, or
    None when neither is."""
    from pathlib import Path

    bits = args.bitstate
    if isinstance(bits, str) and bits and not bits.isdigit() \
            and Path(bits).exists():
        # ``--bitstate order.yaml``: argparse took the path for BITS.
        args.paths.append(bits)
        bits = args.bitstate = ""
    if args.hash_compact is None and bits is None:
        return None
    return bool(args.hash_compact), bits


def _compaction(args: argparse.Namespace) -> tuple[Any, Any]:
    """The lossy storage asked for (``--hash-compact``, ``--bitstate``, or
    their keys in [tool.sagaproof]), or a usage problem."""
    bits = args.bitstate
    if not args.hash_compact and bits is None:
        return None, None
    if args.hash_compact and bits is not None:
        return None, _usage(
            "SAGA192", "--hash-compact and --bitstate together: each is a "
            "way to store the visited states",
            "choose one: --hash-compact (8 bytes a state, almost never "
            "misses one) or --bitstate=BITS (a fixed 2**BITS-bit array)")
    if args.backend != "explicit" or args.symmetry or args.por:
        flag = "--hash-compact" if args.hash_compact else "--bitstate"
        other = (f"--backend {args.backend}" if args.backend != "explicit"
                 else "--symmetry" if args.symmetry else "--por")
        return None, _usage(
            "SAGA193", f"{flag} with {other}: hash compaction and bitstate are "
            "storage modes of the explicit search of a single saga",
            f"drop {flag}, or drop {other}")
    from verifier._kernel_compact import MAX_BITS, MIN_BITS, Compaction

    if args.hash_compact:
        return Compaction(mode="hash-compact"), None
    text = str(bits)
    if text == "":
        return Compaction(mode="bitstate"), None
    if not text.isdigit() or not MIN_BITS <= int(text) <= MAX_BITS:
        return None, _usage(
            "SAGA195", f"--bitstate={text!r} is not a number of bits from "
            f"{MIN_BITS} to {MAX_BITS}",
            "write --bitstate=BITS for an array of 2**BITS bits, e.g. "
            "--bitstate=30 (128 MiB) or --bitstate=33 (1 GiB)")
    return Compaction(mode="bitstate", bits=int(text)), None


def _emit(args: argparse.Namespace, results: list[Any], sources: list[Any],
          problems: list[tuple[str, Diagnostic]]) -> None:
    """Print the report in the chosen format; bad input is part of it (a CI job
    reading JSON or SARIF sees the diagnostics, not an empty list)."""
    from verifier import render

    if problems:
        # People read stderr in every format; one diagnostic per line, each
        # help line under its error.
        print(render.diagnostics_text(problems), file=sys.stderr)
    fmt = args.format
    if fmt == "text":
        out = render.text(results, verbose=args.verbose)
    elif fmt == "json":
        out = render.to_json(results, diagnostics=problems)
    elif fmt == "junit":
        out = render.junit(results, diagnostics=problems)
    else:
        out = render.sarif(results, diagnostics=problems, sources=sources,
                           tool_version=version())
    if out:
        print(out)
def _is_scenario(definition: Any) -> bool:
    from saga_models._scenario import Scenario

    return isinstance(definition, Scenario)


def _show_warnings(definition: Any) -> None:
    """Every importer warning, located, on standard error (not a verdict, so
    not in the machine-readable output on standard output)."""
    from saga_models import Severity

    for d in getattr(definition, "import_diagnostics", ()):
        if d.severity is Severity.WARNING:
            print(d.render(), file=sys.stderr)


def _load_all(path: str, args: argparse.Namespace) -> list[Any]:
    """Every definition in ``path``: one for a native file, one per Choice path
    for an imported ASL or Seata file (each path is checked on its own)."""
    from saga_models import importers
    from saga_models._formats import check_file, looks_like_bpmn
    from saga_models._load import load_document
    from saga_models._source import read_document

    if looks_like_bpmn(path):
        from saga_models import Diagnostic, InvalidDefinition, Span
        from saga_models.importers.graph_semantics import load_bpmn

        if args.compensations:
            raise InvalidDefinition((Diagnostic(
                code="BPMN112", span=Span(file=path, line=1, column=1),
                message="--compensations does not apply to a BPMN file: its "
                "compensation boundary events say which handler undoes "
                "which task", help="leave --compensations out; associate "
                "each compensation boundary event with its handler"),))

        return [load_bpmn(path, dialect=args.bpmn_dialect)]
    check_file(path)
    doc = read_document(path)
    fmt = importers.detect(doc.data)
    if fmt in ("asl", "seata", "sw"):
        # Checked as its own graph, with the engine's rules (not lowered).
        from saga_models.importers._mapping import read_sidecar
        from saga_models.importers.graph_semantics import (
            load_machine,
            load_seata,
            load_sw,
        )

        if fmt == "sw":
            from .export import _no_sidecar

            _no_sidecar(path, args.compensations)
            return [load_sw(doc)]
        sidecar = (read_sidecar(args.compensations)
                   if args.compensations else None)
        loader = load_machine if fmt == "asl" else load_seata
        return [loader(doc, sidecar=sidecar)]
    if importers.detect(doc.data) is not None:
        return list(importers.load_all_document(doc, compensations=args.compensations))
    if args.compensations:
        return [importers.load(path, compensations=args.compensations)]
    return [load_document(doc, scenarios=True)]

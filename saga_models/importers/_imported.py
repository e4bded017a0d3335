"""An imported definition (ASL, Seata, Serverless Workflow) as the graph
:mod:`.graph_semantics` explores, and the loaders that build it.

Split from the semantics so that each module has one job: this one reads a
document (with the format's own validity rules and importer warnings), the
other steps the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .._errors import Diagnostic, InvalidDefinition, Severity
from .._source import Document
from .._span import Span
from ._asl import MAP_ITEMS, Machine, _at, parse
from ._duration import latest_ends, worst_case
from ._graph import Catcher, Graph, Retrier
from ._mapping import Sidecar
from ._seata import CATCH_ALL as SEATA_CATCH_ALL
from ._seata import Machine as SeataMachine
from ._structure import Undoes, is_notice
from ._structure import infer as infer_undoes


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedMachine:
    """An imported state machine (ASL or Seata), checked as its own graph."""

    name: str
    top: Graph
    """The machine's states (Parallel/Map branches nested in their nodes)."""
    forward: tuple[str, ...]
    """Tasks reachable from the start without a Catch: forward work."""
    span: Span
    source_format: str = "asl"
    notices: frozenset[str] = frozenset()
    """Tasks that report rather than change anything."""
    unknowns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(Task, exceptions that end it ``UN``; ``*`` for every one): Seata's
    Status map, or ``IsForUpdate`` without one. Such a failed attempt may
    still have taken effect."""
    rollback_end_ok: bool = False
    """Serverless Workflow: ending normally after compensating is how a
    workflow reports a rolled-back run (it has no Fail state), not a masked
    failure; the effects still in place at such an end are checked."""
    fa_status: frozenset[str] = frozenset()
    """Seata: Tasks whose Status map can say FA for a returned value."""
    stack: bool = False
    """Seata: a CompensationTrigger unwinds the compensation stack (every
    executed Task with an effect, in reverse order; the first compensation
    that fails stops the unwind)."""
    machine_timeout: float | None = None
    """The machine-level ``TimeoutSeconds`` (it cannot be caught)."""
    worst_case: float | None = None
    """The longest any run can last (:func:`._duration.worst_case`); None
    when the file does not bound it. A ``machine_timeout`` longer than it
    cannot expire, so it is left out of the model."""
    latest_ends: tuple[tuple[str, float | None], ...] = ()
    """Per top-level state: the latest a run leaves it (seconds since the
    start; None unbounded, :func:`._duration.latest_ends`). The machine
    timeout cannot expire in a state every run leaves before it."""
    undoes: Undoes = field(default_factory=lambda: Undoes(
        undoes=(), no_effect=frozenset(), source=()))
    """Which Task undoes which (inferred from the graph, or the sidecar)."""
    import_diagnostics: tuple[Diagnostic, ...] = ()
    bpmn_dialect: str | None = None
    """BPMN: ``camunda7`` (compensation handlers run one at a time, newest
    first; an incident stops the rest) or ``zeebe`` (every handler at once;
    an incident stops only its own)."""
    decided_choices: tuple[tuple[str, int], ...] = ()
    """Seata: (Choice, index of a rule that is true whenever the Choice is
    reached); see :func:`_decided_choices`."""
    raises: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    """BPMN: (Task, the error codes an attempt may throw), exactly; None
    means the format's own rule (:func:`.graph_semantics.tables`)."""


# --- loading -------------------------------------------------------------------
def load_machine(doc: Document, *, sidecar: Sidecar | None = None
                 ) -> ImportedMachine:
    """Parse an ASL document into an :class:`ImportedMachine`.

    Raises :class:`InvalidDefinition` with located ``ASL2xx`` diagnostics on
    what the engine itself refuses (an empty ``ErrorEquals``).
    """
    from . import check_shape

    check_shape(doc, "asl")
    m = parse(doc, sidecar=sidecar, enumerate_paths=False)
    problems = list(_invalid(m))
    if problems:
        raise InvalidDefinition(tuple(problems))
    raw = _at(doc.data, m.pointer)
    tmo = raw.get("TimeoutSeconds") if isinstance(raw, dict) else None
    seconds = float(tmo) if isinstance(tmo, (int, float)) and not isinstance(
        tmo, bool) and tmo > 0 else None
    undoes = infer_undoes(m, sidecar)
    notices = frozenset(n for n in m.nodes if is_notice(m, n))
    warnings = _warnings(m)
    used = {c for c, _ in undoes.undoes}
    for h in m.handlers:
        if h not in used and h not in notices:
            warnings.append(Diagnostic(
                code="ASL211", span=m.nodes[h][0].span,
                severity=Severity.WARNING,
                message=f"handler Task {h!r} undoes no forward Task (no Catch "
                "route pairs it with one, and its name does not)",
                help="if it compensates something, map it in --compensations"))
    return ImportedMachine(
        name=m.name, top=m.top, forward=tuple(m.forward), span=m.top.span,
        machine_timeout=seconds, worst_case=worst_case(m.top),
        latest_ends=tuple(latest_ends(m.top).items()),
        undoes=undoes, notices=notices,
        import_diagnostics=tuple(warnings))


def load_seata(doc: Document, *, sidecar: Sidecar | None = None
               ) -> ImportedMachine:
    """Parse a Seata saga (Java or Go engine) into an :class:`ImportedMachine`:
    CompensateState says which state undoes which; a state whose Status can
    be ``UN`` (or an ``IsForUpdate`` one without a Status map) may have taken
    effect when it fails; a CompensationTrigger unwinds the stack."""
    from . import _seata, check_shape

    check_shape(doc, "seata")
    m = _seata.parse(doc, sidecar=sidecar, enumerate_paths=False)
    nodes = m.graph.nodes
    pairs: dict[str, list[str]] = {}
    no_effect: set[str] = set()
    source: list[tuple[str, str]] = []
    for e in m.mapping.entries:
        source.append((e.forward, e.source))
        if e.no_effect:
            no_effect.add(e.forward)
        elif e.compensation is not None and e.compensation in nodes:
            pairs.setdefault(e.compensation, []).append(e.forward)
    return ImportedMachine(
        name=m.name, top=m.graph, forward=tuple(m.forward), span=m.graph.span,
        source_format="seata", stack=True,
        unknowns=tuple((n, _un_exceptions(nodes[n].raw)) for n in m.forward
                       if _un_exceptions(nodes[n].raw)),
        fa_status=frozenset(n for n in m.forward if _fa_status(nodes[n].raw)),
        decided_choices=_decided_choices(m.graph),
        undoes=Undoes(undoes=tuple((c, tuple(fs)) for c, fs in pairs.items()),
                      no_effect=frozenset(no_effect), source=tuple(source)),
        import_diagnostics=(*m.diags.items, *_seata_warnings(m)))


def load_sw(doc: Document) -> ImportedMachine:
    """Parse a Serverless Workflow 0.8 document into an
    :class:`ImportedMachine` (see :mod:`._sw` for the rules)."""
    from . import _sw

    graph, forward, undo, name = _sw.parse(doc)
    pairs: dict[str, list[str]] = {}
    for f, c in undo.items():
        pairs.setdefault(c, []).append(f)
    return ImportedMachine(
        name=name, top=graph, forward=tuple(forward), span=graph.span,
        source_format="sw", stack=True, rollback_end_ok=True,
        undoes=Undoes(undoes=tuple((c, tuple(fs)) for c, fs in pairs.items()),
                      no_effect=frozenset(),
                      source=tuple((f, "compensatedBy" if f in undo else
                                    "unmapped") for f in forward)))


def _un_exceptions(raw: dict[str, object]) -> tuple[str, ...]:
    """Exceptions that end a Seata state ``UN`` (ServiceTaskHandlerInterceptor
    decideExecutionStatus: the Status map's ``$Exception{...}`` entries; with
    no Status map, every exception of an ``IsForUpdate`` state)."""
    from ._seata import _STATUS, _get

    status = _get(raw, "Status")
    if not isinstance(status, dict) or not status:
        update = _get(raw, "IsForUpdate", "ForUpdate") is True
        return ("*",) if update else ()
    out: list[str] = []
    for expr, value in status.items():
        key = str(expr)
        if _STATUS.get(str(value).upper()) != "UN" or not key.lower().startswith(
                "$exception{"):
            continue
        name = key[len("$exception{"):].rstrip("}").strip()
        out.append("*" if name in SEATA_CATCH_ALL else name)
    return tuple(dict.fromkeys(out))


def _decided_choices(graph: Graph) -> tuple[tuple[str, int], ...]:
    """Choice rules that Seata's engine provably evaluates to true.

    ``ServiceTaskHandlerInterceptor.decideExecutionStatus`` ends a state SU
    when one of its Status expressions mapped to SU is true of the service's
    return value (``#root``), and ``postProcess`` then stores that value in
    the context under each ``Output`` name mapped to ``$.#root``
    (``ParameterUtils.createOutputParams``). ``ChoiceStateHandler.process``
    evaluates the rules in order on the context and takes the first true
    one. So when a Choice is entered only by the ``Next`` of such a state
    (its only way in is that state's success), its only SU expression is
    over ``#root`` alone, no exception maps to SU and the state is not
    asynchronous (the Status map is then skipped), a rule whose expression
    is that SU expression with ``#root`` read as ``[name]`` is true: the
    Choice takes it or an earlier rule, never a later one or its Default.
    Anything else keeps every branch.
    """
    from ._seata import _STATUS, _get, rules

    ways_in: dict[str, list[tuple[str, bool]]] = {graph.start: [("", False)]}
    for n in graph.nodes.values():
        for target, by_next in ((n.next, True), *((c, False) for c in n.choices),
                                (n.default, False),
                                *((c.next, False) for c in n.catches)):
            if target is not None:
                ways_in.setdefault(target, []).append((n.name, by_next))
    out: list[tuple[str, int]] = []
    for choice in graph.nodes.values():
        ways = ways_in.get(choice.name, [])
        if choice.kind != "choice" or len(ways) != 1 or not ways[0][1]:
            continue
        raw = graph.nodes[ways[0][0]].raw
        status, output = _get(raw, "Status"), _get(raw, "Output")
        if not isinstance(status, dict) or not isinstance(output, dict) or \
                _get(raw, "IsAsync", "Async") is True:
            continue
        su = [str(k) for k, v in status.items()
              if _STATUS.get(str(v).upper()) == "SU"]
        if len(su) != 1 or su[0].lower().startswith("$exception{"):
            continue
        expr = _squeeze(su[0])
        if any(c in expr.replace("#root", "") for c in "#[$"):
            continue  # it reads more than the return value
        names = [str(k) for k, v in output.items()
                 if isinstance(v, str) and _squeeze(v) == "$.#root"]
        # Numbered as the parser numbers ``choice.choices`` (one filter).
        for k, rule in enumerate(rules(choice.raw)):
            text = _get(rule, "Expression")
            if isinstance(text, str) and any(
                    _squeeze(text).replace(f"[{name}]", "#root") == expr
                    for name in names):
                out.append((choice.name, k))
                break
    return tuple(out)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _seata_warnings(m: SeataMachine) -> list[Diagnostic]:
    raw = m.raw
    if str(raw.get("RecoverStrategy", "")).lower() != "forward":
        return []
    return [Diagnostic(
        code="SEATA320", span=m.graph.span,
        severity=Severity.WARNING,
        message="RecoverStrategy Forward: on a global-transaction timeout the "
        "TC retries forward instead of compensating (SagaResourceManager."
        "branchRollback); the model has no global timeout, so it does not "
        "explore that recovery",
        help="see docs/importers.md")]


def _fa_status(raw: dict[str, object]) -> bool:
    """Whether a returned value can end the state FA (a Status entry that is
    not an ``$Exception{...}`` one maps to FA)."""
    from ._seata import _STATUS, _get

    status = _get(raw, "Status")
    return isinstance(status, dict) and any(
        _STATUS.get(str(v).upper()) == "FA"
        and not str(k).lower().startswith("$exception{")
        for k, v in status.items())


def _warnings(m: Machine) -> list[Diagnostic]:
    """What the model approximates in this file, located (warnings)."""
    out: list[Diagnostic] = []
    for name, (node, _) in m.nodes.items():
        if node.raw.get("Type") != "Map":
            continue
        out.append(Diagnostic(
            code="ASL241", span=node.span, severity=Severity.WARNING,
            message=f"Map {name!r} is explored with {MAP_ITEMS} iterations "
            "running in parallel (its items are known only at run time)",
            help="two iterations show every partial failure of a Map; check "
            "the iterator as its own machine for more"))
        tolerated = [k for k in node.raw if k.startswith("ToleratedFailure")]
        if tolerated:
            out.append(Diagnostic(
                code="ASL217", span=node.span, severity=Severity.WARNING,
                message=f"Map {name!r} sets {tolerated[0]}: the model fails the "
                "Map at the first failed iteration, so runs where it tolerates "
                "failures (and carries on) are not checked",
                help="check the tolerated case as its own machine, or "
                "compensate failed items inside the iteration"))
    return out


def _invalid(m: Machine) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for name, (node, _) in m.nodes.items():
        lists: tuple[tuple[str, Sequence[Retrier | Catcher]], ...] = (
            ("Retry", node.retriers), ("Catch", node.catches))
        for what, entries in lists:
            for i, entry in enumerate(entries):
                if not entry.errors:
                    out.append(Diagnostic(
                        code="ASL240", span=entry.span,
                        message=f"state {name!r}: {what}[{i}] has an empty "
                        "ErrorEquals, which Step Functions refuses (it would "
                        "match no error)",
                        help="name the errors it handles, e.g. "
                        "'ErrorEquals: [States.ALL]'"))
    return out

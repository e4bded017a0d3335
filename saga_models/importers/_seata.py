"""Seata saga state language (Java engine, and the Go engine's dialect) into
the saga IR.

Seata's compensation is engine-driven: a ``CompensationTrigger`` runs the
``CompensateState`` of every state that ended ``SU`` or ``UN``, in reverse order
of execution, and stops at the first compensation that fails. That lowers to a
:class:`CompensationChain` with ``unconditional=False`` (only steps whose last
outcome is ok or unknown are compensated) listing the executed steps in reverse,
and a compensation policy that escalates after the compensation's own attempts
(``STUCK``: the saga waits for Seata's recovery or a person). See
docs/importers.md for where this differs from sagaproof's native semantics.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._errors import Diagnostic, InvalidDefinition, Severity
from .._ir import (
    CompensationChain,
    CompensationPolicy,
    RetryPolicy,
    Saga,
    Step,
    StepKind,
)
from .._source import Document
from .._validate import lowering_diagnostics
from ._graph import (
    TASK_KINDS,
    Catcher,
    Enumerator,
    Graph,
    Node,
    Path,
    Retrier,
    can_terminate,
    reachable,
    reject,
)
from ._lower import (
    Diags,
    alternative_name,
    dedupe_names,
    escape,
    layout,
    uncaught_variant,
)
from ._mapping import CompensationMap, MappingEntry, Sidecar, check_sidecar_names

CATCH_ALL = frozenset({"java.lang.Throwable", "java.lang.Exception", "*",
                       "Throwable", "Exception", "error"})
"""Exception names that match every exception a service can throw."""
GENERIC = "<any exception>"
UNKNOWN_TIMEOUT = 60.0
"""Seata has no per-state timeout; a state whose Status can be ``UN`` gets this
nominal timeout so the model explores unknown outcomes (only its presence
matters to the model)."""
_TYPES = {"ServiceTask": "task", "ScriptTask": "task", "SubStateMachine": "sub",
          # The compensation of a SubStateMachine (StateType
          # COMPENSATE_SUB_MACHINE in the Java engine): a valid state type.
          "CompensateSubMachine": "task",
          "Choice": "choice", "Succeed": "succeed", "Fail": "fail",
          "CompensationTrigger": "trigger"}
_STATUS = {"SU": "SU", "FA": "FA", "UN": "UN", "SUCCEEDED": "SU", "FAILED": "FA",
           "UNKNOWN": "UN"}


def matches(pattern: str, error: str) -> bool:
    """Whether a Catch/Retry exception name matches ``error``."""
    return pattern in CATCH_ALL or pattern == error


def rules(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """A Choice's rules that the graph keeps (those with a ``Next``), in
    order: ``Node.choices[k]`` is ``rules(raw)[k]["Next"]``."""
    found = raw.get("Choices") or []
    return [c for c in found if isinstance(c, dict) and "Next" in c]


def _get(raw: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present, case-insensitively (old seata-go YAML
    wrote serviceName)."""
    lower = {str(k).lower(): v for k, v in raw.items()}
    for k in keys:
        if k in raw:
            return raw[k]
        if k.lower() in lower:
            return lower[k.lower()]
    return None


@dataclass(slots=True)
class Machine:
    """A parsed Seata machine."""

    name: str
    graph: Graph
    forward: list[str]
    compensations: set[str]
    mapping: CompensationMap
    paths: list[Path]
    diags: Diags
    raw: dict[str, Any]


def parse(doc: Document, *, sidecar: Sidecar | None = None,
          enumerate_paths: bool = True) -> Machine:
    """Parse and validate as Seata's own validator would, then classify.

    ``enumerate_paths=False`` skips the forward paths (lowering needs them;
    the graph semantics explores loops and every Choice itself)."""
    data = doc.data
    d = Diags()
    name = str(data.get("Name") or "seata-saga")
    states = data.get("States")
    if not isinstance(states, dict) or not states:
        raise reject("SEATA300", "a Seata saga needs a non-empty 'States' mapping",
                     doc.span("/States"), "define the states under 'States'")
    nodes: dict[str, Node] = {}
    for sname, raw in states.items():
        nodes[str(sname)] = _node(doc, d, str(sname), raw)
    start = str(data.get("StartState"))
    graph = Graph(start=start, nodes=nodes, span=doc.span(""))
    problems: list[Diagnostic] = []
    if start not in nodes:
        problems.append(Diagnostic(code="SEATA302", message=f"StartState={start!r} "
                                   "names no state", span=doc.span("/StartState"),
                                   help="name one of the states under 'States'"))
    for node in nodes.values():
        targets = [("Next", node.next), ("Default", node.default),
                   *(("Choices", c) for c in node.choices),
                   *(("Catch", c.next) for c in node.catches)]
        for key, target in targets:
            if target is not None and target not in nodes:
                close = difflib.get_close_matches(target, list(nodes), n=1)
                problems.append(Diagnostic(
                    code="SEATA302", message=f"state {node.name!r}: {key} target "
                    f"{target!r} does not exist (Seata's StateNameExistsRule)",
                    span=node.span, help=f"did you mean {close[0]!r}?" if close
                    else "define the state, or route to an existing one"))
        if node.kind == "sub" and _get(node.raw, "StateMachineName") == name:
            problems.append(Diagnostic(
                code="SEATA303", message=f"state {node.name!r} calls its own "
                f"machine {name!r} (Seata's NoRecursiveSubStateMachineRule)",
                span=node.span, help="a sub-machine must be a different machine"))
    if problems:
        raise InvalidDefinition(tuple(problems))
    live = can_terminate(graph)
    stuck = [n for n in reachable(graph, start) if n not in live]
    if stuck:
        raise reject(
            "SEATA301", "no path to an end state from "
            + ", ".join(map(repr, stuck)) + " (Seata's FiniteTerminationRule)",
            nodes[stuck[0]].span, "give the loop an exit: a Choice Default or a "
            "Next to a Succeed/Fail state")
    comps = {str(_get(n.raw, "CompensateState")) for n in nodes.values()
             if _get(n.raw, "CompensateState")}
    comps |= {n.name for n in nodes.values()
              if _get(n.raw, "IsForCompensation", "ForCompensation") is True}
    tasks = [n for n, node in nodes.items() if node.kind in TASK_KINDS]
    forward = [n for n in reachable(graph, start)
               if nodes[n].kind in TASK_KINDS and n not in comps]
    if not forward and enumerate_paths:
        # As ASL100: only lowering needs a forward task; checked as its own
        # graph, such a machine still has its termination to check.
        raise reject("SEATA100", f"Seata saga {name!r} runs no service task: "
                     "there is no saga to lower it into (for the runtime or "
                     "export)", graph.span, "check it as its own graph with "
                     "'sagaproof check FILE'; add a ServiceTask to run it")
    if sidecar is not None:
        check_sidecar_names(sidecar, tasks)
    entries: list[MappingEntry] = []
    for f in forward:
        node = nodes[f]
        target = _get(node.raw, "CompensateState")
        if sidecar is not None and f in sidecar.compensations:
            comp = sidecar.compensations[f]
            entries.append(MappingEntry(forward=f, compensation=comp,
                                        source="sidecar", no_effect=comp is None))
        elif node.kind == "sub":
            entries.append(MappingEntry(
                forward=f,
                compensation=f"compensate {_get(node.raw, 'StateMachineName')}",
                source="SubStateMachine"))
        elif target:
            entries.append(MappingEntry(forward=f, compensation=str(target),
                                        source="CompensateState"))
        else:
            entries.append(MappingEntry(forward=f, compensation=None,
                                        source="unmapped"))
    mapping = CompensationMap(
        entries=tuple(entries),
        kinds=tuple(sidecar.kinds.items()) if sidecar else ())

    def catch_target(node: Node, error: str) -> str | None:
        return None  # Seata has no Parallel state

    paths = Enumerator(is_compensation=comps.__contains__,
                       catch_target=catch_target,
                       loop_code="SEATA304").paths(graph, start) \
        if enumerate_paths else []
    return Machine(name=name, graph=graph, forward=forward, compensations=comps,
                   mapping=mapping, paths=paths, diags=d, raw=data)


def _node(doc: Document, d: Diags, name: str, raw: Any) -> Node:
    pointer = f"/States/{escape(name)}"
    span = doc.span(pointer)
    if not isinstance(raw, dict) or raw.get("Type") not in _TYPES:
        kind = raw.get("Type") if isinstance(raw, dict) else raw
        raise reject("SEATA305", f"state {name!r} has unknown Type={kind!r}", span,
                     "use ServiceTask, ScriptTask, SubStateMachine, "
                     "CompensateSubMachine, Choice, CompensationTrigger, "
                     "Succeed or Fail")
    if "Catches" in raw:
        d.add("SEATA310", f"state {name!r}: key 'Catches' is not read by Seata's "
              "parsers (they read 'Catch'); its routes are ignored", doc.key_span(
                  f"{pointer}/Catches"), "rename the key to 'Catch'", warning=True)
    if "Loop" in raw:
        d.add("SEATA316", f"state {name!r} has a Loop: the model runs it as one "
              "call (its instances succeed or fail together)", doc.key_span(
                  f"{pointer}/Loop"), "check a loop body as its own saga if its "
              "instances can fail independently", warning=True)
    status = _get(raw, "Status")
    if isinstance(status, dict):
        for expr, value in status.items():
            if str(value).upper() not in _STATUS:
                d.add("SEATA315", f"state {name!r}: Status value {value!r} (for "
                      f"{expr!r}) is not SU/FA/UN (or SUCCEEDED/FAILED/UNKNOWN)",
                      doc.span(f"{pointer}/Status"), "map every expression to "
                      "SU, FA or UN", warning=True)
    choices = tuple(str(c.get("Next")) for c in rules(raw))
    nxt = raw.get("Next")
    return Node(
        name=name, kind=_TYPES[raw["Type"]], span=span,
        next=str(nxt) if nxt is not None else None,
        choices=choices,
        default=str(raw["Default"]) if raw.get("Default") is not None else None,
        catches=tuple(
            # An empty Exceptions list matches nothing (EngineUtils
            # .handleException tests each listed class): never a catch-all.
            Catcher(errors=tuple(map(str, c.get("Exceptions") or [])),
                    next=str(c.get("Next")), span=doc.span(f"{pointer}/Catch/{i}"))
            for i, c in enumerate(raw.get("Catch") or []) if isinstance(c, dict)),
        retriers=tuple(
            Retrier(errors=tuple(map(str, r.get("Exceptions") or [])),
                    interval=float(r.get("IntervalSeconds", 1.0)),
                    max_retries=int(r.get("MaxAttempts", 3)),
                    backoff=float(r.get("BackoffRate", 1.5)),
                    span=doc.span(f"{pointer}/Retry/{i}"))
            for i, r in enumerate(raw.get("Retry") or []) if isinstance(r, dict)),
        raw=raw,
    )


def _first(entries: Iterable[Any], error: str) -> Any:
    for e in entries:
        # A Retry without Exceptions retries every exception; a Catch without
        # them catches none.
        if (not e.errors and isinstance(e, Retrier)) or any(
                matches(p, error) for p in e.errors):
            return e
    return None


def may_be_unknown(node: Node) -> bool:
    """Whether the state can end ``UN`` (its effect may have happened)."""
    status = _get(node.raw, "Status")
    if isinstance(status, dict) and status:
        return any(_STATUS.get(str(v).upper()) == "UN" for v in status.values())
    # No Status map: Seata decides UN for an update service that threw.
    return _get(node.raw, "IsForUpdate", "ForUpdate") is True


def retry_policy(node: Node) -> RetryPolicy:
    """Seata retries per exception class; bounded by the largest entry."""
    if not node.retriers:
        return RetryPolicy(max_attempts=1)
    gen = _first(node.retriers, GENERIC)
    first = gen or node.retriers[0]
    return RetryPolicy(
        max_attempts=1 + max(r.max_retries for r in node.retriers),
        initial_interval=first.interval, backoff=max(1.0, first.backoff),
        max_interval=max(first.interval, 100.0),
        retryable_errors=() if gen is not None else tuple(dict.fromkeys(
            e for r in node.retriers for e in r.errors)),
        span=first.span)


def lower_paths(m: Machine) -> list[Saga]:
    """One saga per forward path through the Choice states."""
    many = len(m.paths) > 1
    sagas: list[Saga] = []
    for i, p in enumerate(m.paths):
        primary = _lower(m, p, many, i)
        sagas.append(primary)
        sagas.extend(uncaught_variants(m, primary))
    return dedupe_names(sagas)


OTHER = "other exceptions"
"""How an alternative names the exceptions a specific-only Catch misses."""


def uncaught_variants(m: Machine, primary: Saga) -> list[Saga]:
    """One alternative per state whose Catch names only specific exceptions
    (SEATA201) while the primary follows a route that compensates: in it, an
    exception the Catch does not name ends the saga with nothing compensated."""
    out: list[Saga] = []
    for i, step in enumerate(primary.steps):
        node = m.graph.nodes[step.name]
        chain = primary.chain_for(i)
        if step.kind is StepKind.RETRIABLE or chain is None or not chain.steps \
                or not node.catches or _catches_all(node):
            continue
        retrier = _first(node.retriers, GENERIC)
        diag = Diagnostic(
            code="SEATA215", severity=Severity.WARNING, span=node.catches[0].span,
            message=f"alternative in which {step.name!r} throws an exception its "
            "Catch does not name: Seata ends the saga there and compensates "
            f"nothing (here every abort of {step.name!r} stands for it)",
            help="add a Catch entry for java.lang.Throwable routed to the "
            "CompensationTrigger")
        out.append(uncaught_variant(
            primary, step.name, (OTHER,),
            1 + (retrier.max_retries if retrier else 0), diag))
    return out


def _catches_all(node: Node) -> bool:
    return any(any(p in CATCH_ALL for p in c.errors) for c in node.catches)


def _route(m: Machine, node: Node) -> tuple[str, Catcher | None]:
    """How a failure of ``node`` ends: ``trigger`` (engine compensation),
    ``fail``, ``succeed``, or ``uncaught``; with the Catch taken. The chain
    follows the route of an exception no specific entry names, else the first
    Catch entry (the route the author designed)."""
    hit = _first(node.catches, GENERIC) or (node.catches[0] if node.catches
                                            else None)
    if hit is None:
        return "uncaught", None
    n: str | None = hit.next
    seen: set[str] = set()
    while n is not None and n not in seen:
        seen.add(n)
        target = m.graph.nodes[n]
        if target.kind == "trigger":
            return "trigger", hit
        if target.kind in ("fail", "succeed"):
            return target.kind, hit
        n = target.next if target.kind != "choice" else target.default
    return "fail", hit


def _lower(m: Machine, path: Path, many: bool, index: int) -> Saga:
    d = Diags()
    for item in m.diags.items:
        d.items.append(item)
    nodes = m.graph.nodes
    no_effect = {e.forward for e in m.mapping.entries if e.no_effect}
    placed = layout(path, lambda t: t not in no_effect)
    timeout = m.raw.get("trans_operation_timeout")
    nominal = float(timeout) / 1000 if isinstance(timeout, (int, float)) and \
        timeout > 0 else UNKNOWN_TIMEOUT
    steps: list[Step] = []
    for task, deps in placed:
        node = nodes[task]
        kind = m.mapping.kind_of(task) or StepKind.COMPENSATABLE
        comp = m.mapping.compensation_of(task) if kind is StepKind.COMPENSATABLE \
            else None
        if comp is not None and node.kind != "sub" and comp not in nodes:
            d.add("SEATA212", f"state {task!r}: CompensateState {comp!r} is not "
                  "defined; Seata cannot compensate it", node.span,
                  f"define a state named {comp!r}, or fix the name")
            comp = None
        retry = retry_policy(node)
        steps.append(Step(
            name=task,
            participant=str(_get(node.raw, "ServiceName", "StateMachineName")
                            or task),
            action=str(_get(node.raw, "ServiceMethod") or task),
            compensation=comp, kind=kind, depends_on=deps, retry=retry,
            timeout=nominal if may_be_unknown(node) else None,
            span=node.span, field_spans=(("retry", retry.span),)))
    chains: list[CompensationChain] = []
    comp_states: set[str] = set()
    for i, step in enumerate(steps):
        if step.kind is StepKind.RETRIABLE:
            continue
        node = nodes[step.name]
        how, hit = _route(m, node)
        span = hit.span if hit else node.span
        chain: tuple[str, ...] = ()
        earlier = [s for s in steps[: i + 1] if s.compensation is not None]
        if how == "trigger":
            chain = tuple(s.name for s in reversed(earlier))
            comp_states |= {s.compensation for s in earlier if s.compensation}
        elif earlier[:-1] or (earlier and earlier[-1].name != step.name):
            effects = ", ".join(repr(s.name) for s in earlier if s.name != step.name)
            if effects:
                d.add("SEATA202", f"an exception in {step.name!r} "
                      + ("is not caught" if how == "uncaught" else
                         f"is routed to a {how} state without a "
                         "CompensationTrigger")
                      + f": the saga ends with {effects} in place", span,
                      "route the Catch to a CompensationTrigger state")
        if node.catches and not _catches_all(node):
            names = sorted({e for c in node.catches for e in c.errors})
            d.add("SEATA201", f"the Catch of {step.name!r} names only "
                  f"{', '.join(names)}: any other exception is uncaught and ends "
                  "the saga without compensation", node.catches[0].span,
                  "add a Catch entry for java.lang.Throwable routed to the "
                  "CompensationTrigger")
        if how == "succeed":
            d.add("SEATA205", f"the failure route of {step.name!r} ends in "
                  "Succeed: callers cannot tell rollback from success", span,
                  "end the route in a Fail state")
        chains.append(CompensationChain(trigger=step.name, steps=chain,
                                        unconditional=False, span=span))
    for trig in (n for n in nodes.values() if n.kind == "trigger"):
        after = nodes.get(trig.next or "")
        if after is not None and after.kind == "succeed":
            d.add("SEATA205", f"CompensationTrigger {trig.name!r} continues to "
                  f"Succeed {after.name!r}: callers cannot tell rollback from "
                  "success", trig.span, "continue to a Fail state")
    for s in steps:
        if s.kind is StepKind.COMPENSATABLE and s.compensation is None and \
                (e := m.mapping.entry(s.name)) is not None and not e.no_effect \
                and e.source != "CompensateState":
            d.add("SEATA210", f"ServiceTask {s.name!r} has no CompensateState",
                  s.span, "add 'CompensateState: <state>', or map it to 'none' in "
                  "--compensations if it changes nothing")
    if path.end == "comp":
        d.add("SEATA311", f"compensation state {path.end_state!r} is reached as "
              "forward work (not through a CompensationTrigger): it runs whether "
              "or not the step it undoes ever ran; the model ends the saga there",
              nodes[path.end_state].span, "route to a CompensationTrigger "
              "instead, so Seata compensates exactly the states that ran")
    elif path.end == "fail" and any(s.compensation for s in steps):
        end = nodes.get(path.end_state)
        d.add("SEATA206", f"this path ends in {path.end_state!r} with "
              + ", ".join(repr(s.name) for s in steps) + " in place: a Fail "
              "state does not compensate", end.span if end else m.graph.span,
              "route through a CompensationTrigger before the Fail state")
    if str(m.raw.get("RecoverStrategy", "")).lower() == "forward":
        d.add("SEATA320", "RecoverStrategy Forward: after a crash Seata retries "
              "unknown (UN) states forward instead of compensating; the model "
              "follows the first run", m.graph.span, "see docs/importers.md",
              warning=True)
    name = alternative_name(m.name, path, many)
    if many and index == 0:
        d.add("SEATA120", f"the saga has {len(m.paths)} paths through its Choice "
              f"states; this is the first, {name!r}", m.graph.span,
              "check every alternative (saga_models.importers.load_all)",
              warning=True)
    worst = 1
    attempts = [1 + r.max_retries for c in comp_states if c in nodes
                for r in nodes[c].retriers[:1]]
    worst = min(attempts) if attempts else 1
    saga = Saga(
        name=name, steps=tuple(steps),
        # Seata stops compensating at the first compensation that fails.
        compensation_policy=CompensationPolicy(max_attempts=worst),
        compensation_chains=tuple(chains), import_diagnostics=tuple(d.items),
        source_format="seata", span=m.graph.span)
    problems = lowering_diagnostics(saga)
    if problems:
        raise InvalidDefinition(problems)
    return saga

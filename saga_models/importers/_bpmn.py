"""BPMN 2.0 (Camunda 7 and Camunda 8 / Zeebe) into the graph the imported
semantics explores.

SpiffWorkflow's parser reads and validates the file (sequence flows, gateways,
error events, event sub-processes); it has no compensation events, so the
compensation elements (compensation boundary events, their ``isForCompensation``
handlers and associations, compensation throw and end events) are set aside
first on a copy of the tree, keeping their ids and line numbers, and read here.
The rules (docs/importers.md, "BPMN", cites each):

- a service task attempt succeeds, or throws one of the BPMN errors that a
  catching error event in its scope names (an error boundary event on it; an
  error start event of the process's event sub-process); a task whose
  implementation is a literal expression (``#{true}``) throws none and has no
  effect; a technical failure (an exception, not a BPMN error) is retried by
  the job executor and then waits in an incident for an operator: it changes
  nothing, so it adds no state;
- an exclusive gateway may take any outgoing flow (its conditions are over data
  the model does not have); a none end event ends the process;
- an error end event throws its error; a thrown error that nothing catches ends
  the process (Camunda 7) or raises an incident (Zeebe): either way it ends
  with the effects in place;
- a compensation throw or end event compensates the completed activities of
  the process that have a compensation handler (only ``activityRef``, if it
  names one); the handler's failure past its job retries is an incident:
  Camunda 7 runs the handlers one at a time, newest first, and the incident
  stops the rest; Zeebe (8.5+) invokes them all at once and the incident
  stops only its own. The process then waits for an operator (``STUCK``).

An embedded sub-process or transaction is a region of one branch: an error
escaping it goes to its boundary events; when interrupted, what completed
inside it is not compensated later; a cancel end event cancels its
transaction, compensating what completed inside, then leaves by the cancel
boundary event. A structured parallel block (fork, branches, join) is a
region of its own,
run interleaved like an ASL Parallel; an interrupting timer boundary event on
a task may fire while the call is in flight (the call may have taken effect;
the task did not complete, so it is not compensated).

Anything else (inclusive gateways, messages, signals, other timers, call
activities, ad-hoc sub-processes) is refused with a located
BPMN110 that names the element: a check that skipped part of the process
would not be a verdict.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lxml import etree

from .._errors import Diagnostic, InvalidDefinition
from .._span import Span
from ._asl import TIMEOUT
from ._graph import BPMN_CANCEL, Catcher, Graph, Node
from ._imported import ImportedMachine
from ._structure import Undoes

NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
DIALECTS = ("camunda7", "zeebe")
"""The engines whose compensation rules the checker follows."""
ANY_ERROR = "<any BPMN error>"
"""A BPMN error that no catch event names by its code (caught only by a catch
event without ``errorRef``)."""
CATCH_ALL = "States.ALL"
"""The pattern a catch event without ``errorRef`` matches with (every error)."""

_TASKS = frozenset({"serviceTask", "task", "sendTask", "scriptTask",
                    "businessRuleTask", "receiveTask", "userTask", "manualTask"})
_IGNORED = frozenset({"sequenceFlow", "association", "textAnnotation",
                      "dataObject", "dataObjectReference", "dataStoreReference",
                      "extensionElements", "documentation", "laneSet",
                      "ioSpecification", "property"})
_LITERAL = re.compile(r"^\s*[#$]\{\s*(true|false|null|-?\d+(\.\d+)?|'[^']*'|"
                      r'"[^"]*")\s*\}\s*$')


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _local(el: Any) -> str:
    return str(etree.QName(el).localname)


def is_bpmn(path: str | Path) -> bool:
    """Whether the file at ``path`` is BPMN 2.0 XML (by suffix or namespace)."""
    from .._formats import looks_like_bpmn

    return looks_like_bpmn(path)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Where:
    file: str

    def at(self, el: Any) -> Span:
        return Span(file=self.file, line=int(el.sourceline or 0), column=1,
                    pointer=str(el.get("id", "")))

    def reject(self, code: str, el: Any, message: str, help: str
               ) -> Diagnostic:
        return Diagnostic(code=code, span=self.at(el), message=message,
                          help=help)


def _what(el: Any) -> str:
    name = el.get("name")
    ident = el.get("id", "?")
    return f"{_local(el)} {ident!r}" + (f" ({name!r})" if name else "")


def load_bpmn(path: str | Path, *, dialect: str = "camunda7",
              process: str | None = None) -> ImportedMachine:
    """Read the BPMN file at ``path`` into an :class:`ImportedMachine`.

    Raises:
        InvalidDefinition: located ``BPMN1xx`` diagnostics for XML that is not
            well formed, a process SpiffWorkflow refuses, or a construct the
            model does not have.
    """
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidDefinition((Diagnostic(
            code="SAGA001", span=Span(file=file), message=f"cannot read "
            f"{file!r}: {exc.strerror}", help="check the path"),)) from None
    return parse_bpmn(data, file=file, dialect=dialect, process=process)


def parse_bpmn(data: bytes, *, file: str = "<memory>",
               dialect: str = "camunda7", process: str | None = None
               ) -> ImportedMachine:
    """Parse BPMN XML ``data``; see :func:`load_bpmn`."""
    where = _Where(file=file)
    if dialect not in DIALECTS:
        raise InvalidDefinition((Diagnostic(
            code="BPMN109", span=Span(file="<command line>"),
            message=f"bpmn_dialect={dialect!r} is not a BPMN dialect",
            help="use --bpmn-dialect camunda7 or --bpmn-dialect zeebe"),))
    parser = etree.XMLParser(resolve_entities=False, no_network=True,
                             remove_comments=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (0, 0)
        raise InvalidDefinition((Diagnostic(
            code="BPMN101", span=Span(file=file, line=line or 1,
                                      column=col or 1),
            message=f"not well-formed XML: {exc.msg}",
            help="fix the XML (a BPMN modeler writes it well formed)"),)
        ) from None
    procs = [p for p in root.iter(_q("process"))]
    if process is not None:
        procs = [p for p in procs if p.get("id") == process]
    if len(procs) != 1:
        ids = [p.get("id") for p in root.iter(_q("process"))]
        raise InvalidDefinition((Diagnostic(
            code="BPMN102", span=where.at(root),
            message=f"the file has {len(procs)} matching bpmn:process elements "
            f"({ids!r}); sagaproof checks one process",
            help="check a file with one process (a collaboration's pools are "
            "separate processes: put each in its own file)"),))
    proc = procs[0]
    comp = _set_aside(root, proc, where)
    _spiff_validate(comp.stripped, proc.get("id", ""), where)
    return _lower(proc, comp, where, dialect)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Compensation:
    stripped: Any
    """A copy of the tree without the compensation elements (for Spiff)."""
    boundary: dict[str, str]
    """Compensation boundary event id -> the activity it is attached to."""
    handler_of: dict[str, str]
    """Activity id -> its compensation handler's id (via an association)."""
    handlers: frozenset[str]
    """Ids of ``isForCompensation`` activities."""
    problems: tuple[Diagnostic, ...]


def _set_aside(root: Any, proc: Any, where: _Where) -> _Compensation:
    """Read the compensation elements and remove them from a copy of the tree,
    since SpiffWorkflow's parser has no compensation events (it refuses a
    compensation boundary event)."""
    boundary: dict[str, str] = {}
    handlers: set[str] = set()
    problems: list[Diagnostic] = []
    for ev in proc.iter(_q("boundaryEvent")):
        if ev.find(_q("compensateEventDefinition")) is not None:
            boundary[ev.get("id", "")] = ev.get("attachedToRef", "")
    for el in proc.iter():
        if isinstance(el.tag, str) and el.get("isForCompensation") == "true":
            handlers.add(el.get("id", ""))
    handler_of: dict[str, str] = {}
    for a in proc.iter(_q("association")):
        src, dst = a.get("sourceRef", ""), a.get("targetRef", "")
        if src in boundary and dst in handlers:
            handler_of[boundary[src]] = dst
        elif src in boundary:
            problems.append(where.reject(
                "BPMN104", a, f"association {a.get('id')!r} links compensation "
                f"boundary event {src!r} to {dst!r}, which is not an activity "
                "with isForCompensation=\"true\"",
                "associate the compensation boundary event with its handler "
                "(an activity marked isForCompensation)"))
    stripped = copy.deepcopy(root)
    sproc = next(p for p in stripped.iter(_q("process"))
                 if p.get("id") == proc.get("id"))
    for el in list(sproc.iter()):
        if not isinstance(el.tag, str):
            continue
        gone = (el.get("id") in boundary or el.get("id") in handlers
                or _local(el) == "association")
        if gone and el.getparent() is not None:
            el.getparent().remove(el)
    for d in list(sproc.iter(_q("compensateEventDefinition"))):
        d.getparent().remove(d)
    return _Compensation(stripped=stripped, boundary=boundary,
                         handler_of=handler_of, handlers=frozenset(handlers),
                         problems=tuple(problems))


def _spiff_validate(tree: Any, pid: str, where: _Where) -> None:
    """Let SpiffWorkflow parse the process; its refusal is located BPMN103."""
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.exceptions import SpiffWorkflowException

    parser = BpmnParser()
    try:
        parser.add_bpmn_xml(etree.ElementTree(tree), filename=where.file)
        parser.get_spec(pid)
    except SpiffWorkflowException as exc:
        line = getattr(exc, "line_number", "") or 0
        ident = getattr(exc, "id", "") or ""
        if not line and ident:
            # Spiff names the element; its line is in the tree we parsed.
            line = next((el.sourceline for el in tree.iter()
                         if isinstance(el.tag, str) and el.get("id") == ident),
                        0) or 0
        tag = getattr(exc, "tag", "") or "element"
        raise InvalidDefinition((Diagnostic(
            code="BPMN103", span=Span(file=where.file, line=int(line),
                                      column=1, pointer=str(ident)),
            message=f"SpiffWorkflow's BPMN parser refuses {tag} {ident!r}: "
            f"{exc}",
            help="fix the element (a BPMN modeler's validation shows the "
            "same problem)"),)) from None


def _literal(el: Any) -> bool:
    """A Camunda task whose implementation is a literal expression: it
    neither fails with a BPMN error nor changes anything."""
    expr = el.get(f"{{{CAMUNDA}}}expression")
    return isinstance(expr, str) and bool(_LITERAL.match(expr))


def _error_code(root: Any, definition: Any) -> str:
    """The code a catch event matches (CATCH_ALL with no errorRef)."""
    ref = definition.get("errorRef")
    if not ref:
        return CATCH_ALL
    for err in root.iter(_q("error")):
        if err.get("id") == ref:
            return str(err.get("errorCode") or err.get("name") or ref)
    return str(ref)


def _lower(proc: Any, comp: _Compensation, where: _Where, dialect: str
           ) -> ImportedMachine:
    root = proc.getroottree().getroot()
    problems = list(comp.problems)
    nodes: dict[str, Node] = {}
    outgoing: dict[str, list[str]] = {}
    incoming: dict[str, int] = {}
    for holder in (proc, *proc.iter(_q("subProcess")),
                   *proc.iter(_q("transaction"))):
        for f in holder.findall(_q("sequenceFlow")):
            outgoing.setdefault(f.get("sourceRef", ""), []).append(
                f.get("targetRef", ""))
            incoming[f.get("targetRef", "")] = incoming.get(
                f.get("targetRef", ""), 0) + 1
    # The process's error event sub-processes: their catches apply to every
    # activity of the process outside them.
    esp_catches: list[Catcher] = []
    esp_members: set[str] = set()
    elements: list[Any] = []
    container: dict[str, str] = {}
    """Element id -> the sub-process or transaction it is directly in."""

    def collect(parent: Any, owner: str | None) -> None:
        for el in parent:
            if not isinstance(el.tag, str):
                continue
            kind = _local(el)
            if kind == "subProcess" and el.get("triggeredByEvent") == "true":
                if owner is not None:
                    problems.append(_unsupported(where, el))
                    continue
                _event_subprocess(el, where, problems=problems,
                                  catches=esp_catches, members=esp_members,
                                  elements=elements, root=root)
                continue
            if owner is not None and el.get("id"):
                container[str(el.get("id"))] = owner
            elements.append(el)
            if kind in ("subProcess", "transaction"):
                collect(el, str(el.get("id")))

    collect(proc, None)
    boundaries: dict[str, list[Any]] = {}
    starts: list[Any] = []
    for el in elements:
        ident = el.get("id")
        if _local(el) == "boundaryEvent" and ident not in comp.boundary:
            boundaries.setdefault(el.get("attachedToRef", ""), []).append(el)
        if _local(el) == "startEvent" and ident not in container and \
                ident not in esp_members:
            starts.append(el)
    kinds = {str(el.get("id")): _local(el) for el in elements}

    def chain(ident: str) -> list[str]:
        """The sub-processes around ``ident``, innermost first."""
        out: list[str] = []
        while ident in container:
            ident = container[ident]
            out.append(ident)
        return out

    def scope_of(sub: str) -> tuple[str, ...]:
        """The tasks inside ``sub`` (at any depth)."""
        return tuple(i for i, k in kinds.items() if k in _TASKS
                     and sub in chain(i))

    raises: dict[str, tuple[str, ...]] = {}
    forward: list[str] = []
    no_effect: set[str] = set()
    for el in elements:
        ident = str(el.get("id", ""))
        kind = _local(el)
        if kind in _IGNORED or ident in comp.boundary:
            continue  # compensation boundary events were read beforehand
        span = where.at(el)
        outs = outgoing.get(ident, [])
        defs = [_local(d) for d in el if isinstance(d.tag, str)
                and _local(d).endswith("EventDefinition")]
        raw: dict[str, Any] = {"Type": kind, "name": el.get("name") or ident}
        if kind not in ("exclusiveGateway", "parallelGateway") and len(outs) > 1:
            problems.append(where.reject(
                "BPMN111", el, f"{_what(el)} has {len(outs)} outgoing sequence "
                "flows: an implicit parallel split, which sagaproof does not "
                "model yet", "join the flows through an exclusive gateway, or "
                "check each branch as its own process"))
            continue
        nxt = outs[0] if outs else None
        loop = next((c for c in el if isinstance(c.tag, str) and _local(c) in
                     ("multiInstanceLoopCharacteristics",
                      "standardLoopCharacteristics")), None)
        if loop is not None:
            # A loop or multi-instance activity runs its body many times:
            # checking it as one run would not be a verdict.
            problems.append(where.reject(
                "BPMN110", el, f"{_what(el)} with {_local(loop)} is not "
                "modelled by sagaproof yet", "check the activity without "
                "its loop marker (one instance), or as its own process"))
            continue
        if kind in _TASKS:
            if ident in comp.handlers:
                nodes[ident] = Node(name=ident, kind="task", span=span, raw=raw)
                continue
            catches: list[Catcher] = []
            timers: list[Catcher] = []
            for b in boundaries.get(ident, []):
                d = b.find(_q("errorEventDefinition"))
                timer = b.find(_q("timerEventDefinition"))
                if b.get("cancelActivity") == "false":
                    continue  # refused as an element of its own
                if timer is not None:
                    # The timer interrupts the call, which may still have
                    # taken effect: the task did not complete, so it is
                    # not compensated (BPMN 2.0.2 §10.7).
                    timers.append(Catcher(errors=(TIMEOUT,),
                                          next=str(b.get("id")),
                                          span=where.at(b)))
                elif d is not None:
                    catches.append(Catcher(errors=(_error_code(root, d),),
                                           next=str(b.get("id")),
                                           span=where.at(b)))
            if ident not in esp_members:
                catches.extend(esp_catches)
            # An error may also escape to a boundary event of a sub-process
            # around the task.
            around = [Catcher(errors=(_error_code(root, d),), next="")
                      for sub in chain(ident) for b in boundaries.get(sub, [])
                      for d in b.findall(_q("errorEventDefinition"))]
            codes = [] if _literal(el) else list(dict.fromkeys(
                ANY_ERROR if c.errors[0] == CATCH_ALL else c.errors[0]
                for c in (*catches, *around)))
            # The timer's catch comes first: an error catch-all must not
            # take the timer's firing.
            catches[:0] = timers[:1]
            codes += [TIMEOUT] if timers else []
            raises[ident] = tuple(codes)
            forward.append(ident)
            if _literal(el) or (kind == "task" and len(el) == 0):
                no_effect.add(ident)
            nodes[ident] = Node(name=ident, kind="task", span=span, next=nxt,
                                catches=tuple(catches), raw=raw)
        elif kind in ("subProcess", "transaction"):
            inner = [c for c in el if isinstance(c.tag, str)
                     and _local(c) == "startEvent"]
            if len(inner) != 1 or any(isinstance(d.tag, str) for d in inner[0]
                                      if _local(d).endswith("Definition")):
                problems.append(where.reject(
                    "BPMN114", el, f"{_what(el)} needs exactly one plain start "
                    f"event (it has {len(inner)} start events)",
                    "give the sub-process one none start event"))
                continue
            scope = scope_of(ident)
            sub_catches: list[Catcher] = []
            for b in boundaries.get(ident, []):
                d = b.find(_q("errorEventDefinition"))
                if b.get("cancelActivity") == "false":
                    continue  # refused as an element of its own
                if d is not None:
                    sub_catches.append(Catcher(
                        errors=(_error_code(root, d),), next=str(b.get("id")),
                        span=where.at(b)))
                elif b.find(_q("cancelEventDefinition")) is not None and \
                        kind == "transaction":
                    # Cancelling a transaction compensates what completed
                    # inside it, then leaves by the cancel boundary event
                    # (BPMN 2.0.2 §10.5.4 cancel events, §10.7).
                    trigger = f"{ident} (cancel)"
                    nodes[trigger] = Node(
                        name=trigger, kind="trigger", span=where.at(b),
                        next=str(b.get("id")),
                        raw={"Type": "cancel", "name": trigger,
                             "scope": scope})
                    sub_catches.append(Catcher(errors=(BPMN_CANCEL,),
                                               next=trigger, span=where.at(b)))
            if ident not in esp_members:
                sub_catches.extend(esp_catches)
            raw.update(sub_start=str(inner[0].get("id")), subprocess=True,
                       scope=scope)
            nodes[ident] = Node(name=ident, kind="pass", span=span, next=nxt,
                                catches=tuple(sub_catches), raw=raw)
        elif kind == "endEvent" and defs == ["cancelEventDefinition"] and \
                [kinds.get(c) for c in chain(ident)][:1] == ["transaction"]:
            nodes[ident] = Node(name=ident, kind="fail", span=span,
                                error=BPMN_CANCEL, raw=raw)
        elif kind == "parallelGateway":
            # A fork (one flow in, several out) or a join (several in, one
            # out); _structure pairs them into blocks.
            if len(outs) > 1 and incoming.get(ident, 0) <= 1:
                raw["fork"] = tuple(outs)
            elif len(outs) <= 1 and incoming.get(ident, 0) > 1:
                raw["join"] = True
            elif len(outs) > 1:
                problems.append(where.reject(
                    "BPMN113", el, f"{_what(el)} both joins and forks "
                    "flows, which sagaproof does not model yet",
                    "use one gateway to join and another to fork"))
                continue
            nodes[ident] = Node(name=ident, kind="pass", span=span, next=nxt,
                                raw=raw)
        elif kind == "exclusiveGateway":
            targets = list(dict.fromkeys(outs))
            default = el.get("default")
            flows = {f.get("id"): f.get("targetRef") for f in
                     el.getparent().findall(_q("sequenceFlow"))}
            if default in flows:
                targets = [t for t in targets if t != flows[default]] + [
                    str(flows[default])]
            # Every flow is possible; the last stands as the default, since a
            # gateway none of whose conditions holds raises a technical
            # failure (an incident), which adds no state.
            nodes[ident] = Node(name=ident, kind="choice" if targets else
                                "pass", span=span, choices=tuple(targets[:-1]),
                                default=targets[-1] if targets else None,
                                raw=raw)
        elif kind in ("startEvent", "boundaryEvent") and \
                el.get("cancelActivity") != "false" and \
                _catchable(defs, kinds.get(str(el.get("attachedToRef")))):
            nodes[ident] = Node(name=ident, kind="pass", span=span, next=nxt,
                                raw=raw)
        elif kind in ("intermediateThrowEvent", "endEvent") and \
                ("compensateEventDefinition" in
                 [_local(d) for d in el if isinstance(d.tag, str)]):
            d = el.find(_q("compensateEventDefinition"))
            ref = d.get("activityRef") if d is not None else None
            if ref:
                raw["activityRef"] = ref
            if kind == "endEvent":
                end = f"{ident} (end)"
                nodes[end] = Node(name=end, kind="pass", span=span, raw=raw)
                nxt = end
            nodes[ident] = Node(name=ident, kind="trigger", span=span,
                                next=nxt, raw=raw)
        elif kind == "intermediateThrowEvent" and not defs:
            nodes[ident] = Node(name=ident, kind="pass", span=span, next=nxt,
                                raw=raw)
        elif kind == "endEvent" and defs in ([], ["terminateEventDefinition"]):
            nodes[ident] = Node(name=ident, kind="pass", span=span, raw=raw)
        elif kind == "endEvent" and defs == ["errorEventDefinition"]:
            code = _error_code(root, el.find(_q("errorEventDefinition")))
            code = ANY_ERROR if code == CATCH_ALL else code
            caught = next((c for c in esp_catches if c.errors[0] in
                           (code, CATCH_ALL)), None)
            if caught is not None and ident not in esp_members:
                raw["error_code"] = code  # a fail node inside a parallel block
                nodes[ident] = Node(name=ident, kind="pass", span=span,
                                    next=caught.next, raw=raw)
            else:
                nodes[ident] = Node(name=ident, kind="fail", span=span,
                                    error=code, raw=raw)
        else:
            problems.append(_unsupported(where, el))
    by_id = {el.get("id"): el for el in proc.iter() if isinstance(el.tag, str)}
    for b_id, a in comp.boundary.items():
        if a in nodes and nodes[a].kind == "task":
            continue
        problems.append(where.reject(
            "BPMN105", by_id[b_id], f"compensation boundary event {b_id!r} is "
            f"attached to {a!r}, which is not a task of this process",
            "attach compensation boundary events to service tasks"))
    for n in list(nodes.values()):
        for t in (n.next, *n.choices, n.default, *(c.next for c in n.catches)):
            if t is not None and t not in nodes:
                problems.append(Diagnostic(
                    code="BPMN106", span=n.span, message=f"{n.raw.get('Type')} "
                    f"{n.name!r} flows to {t!r}, which is not a modelled "
                    "element of this process", help="connect it to an element "
                    "of the same process"))
    none_starts = [s for s in starts
                   if not any(isinstance(d.tag, str) for d in s
                              if _local(d).endswith("EventDefinition"))]
    if len(none_starts) != 1:
        problems.append(Diagnostic(
            code="BPMN107", span=where.at(proc), message=f"process "
            f"{proc.get('id')!r} has {len(none_starts)} none start events; "
            "sagaproof checks a process with exactly one",
            help="give the process one plain start event"))
    if not problems and not [f for f in forward if f not in no_effect]:
        problems.append(Diagnostic(
            code="BPMN100", span=where.at(proc), message=f"process "
            f"{proc.get('id')!r} has no task that takes effect: nothing to "
            "compensate", help="sagaproof checks sagas: service tasks and "
            "the compensation handlers that undo them"))
    if problems:
        raise InvalidDefinition(tuple(problems))
    pairs: dict[str, list[str]] = {}
    for a, h in comp.handler_of.items():
        pairs.setdefault(h, []).append(a)
    graph = _structure(nodes, str(none_starts[0].get("id")), where.at(proc),
                       esp=esp_catches)
    return ImportedMachine(
        name=str(proc.get("name") or proc.get("id")), top=graph,
        forward=tuple(forward), span=graph.span, source_format="bpmn",
        rollback_end_ok=True, bpmn_dialect=dialect,
        raises=tuple(raises.items()),
        undoes=Undoes(undoes=tuple((h, tuple(fs)) for h, fs in pairs.items()),
                      no_effect=frozenset(no_effect),
                      source=tuple((f, "compensation boundary event"
                                    if f in comp.handler_of else "unmapped")
                                   for f in forward)))


def _catchable(defs: list[str], attached: str | None) -> bool:
    """Whether a start or boundary event with these definitions is one the
    model has: none or error; a timer on a task; a cancel on a transaction."""
    if defs in ([], ["errorEventDefinition"]):
        return True
    if defs == ["timerEventDefinition"]:
        return attached in _TASKS
    return defs == ["cancelEventDefinition"] and attached == "transaction"


def _unsupported(where: _Where, el: Any) -> Diagnostic:
    defs = [_local(d) for d in el if isinstance(d.tag, str)
            and _local(d).endswith("EventDefinition")]
    what = _what(el) + (f" with {', '.join(defs)}" if defs else "")
    if el.get("cancelActivity") == "false":
        what += " (non-interrupting)"
    return where.reject(
        "BPMN110", el, f"{what} is not modelled by sagaproof yet",
        "use service tasks, exclusive and parallel gateways, error (and "
        "interrupting timer) boundary events, an error event sub-process, "
        "embedded sub-processes and transactions, and compensation events "
        "(docs/importers.md, BPMN); check other parts as their own process")


def _event_subprocess(el: Any, where: _Where, *, problems: list[Diagnostic],
                      catches: list[Catcher], members: set[str],
                      elements: list[Any], root: Any) -> None:
    """An error event sub-process: its start event catches the error for
    every activity of the process (after their own boundary events)."""
    start = el.find(_q("startEvent"))
    d = start.find(_q("errorEventDefinition")) if start is not None else None
    if start is None or d is None or start.get("isInterrupting") == "false":
        problems.append(_unsupported(where, start if start is not None else el))
        return
    catches.append(Catcher(errors=(_error_code(root, d),),
                           next=str(start.get("id")), span=where.at(start)))
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if child.get("id"):
            members.add(str(child.get("id")))
        if _local(child) == "subProcess":
            problems.append(_unsupported(where, child))
            continue
        if _local(child) == "startEvent" and child is not start:
            problems.append(_unsupported(where, child))
            continue
        elements.append(child)


def _structure(nodes: dict[str, Node], start: str, span: Span, *,
               esp: list[Catcher]) -> Graph:
    """The flat nodes as a graph whose parallel blocks (a fork gateway, its
    branches, the join gateway they all reach) are regions of their own, as
    the semantics runs an ASL Parallel: an error a branch does not catch
    stops the other branches and goes to the process's event sub-process
    (BPMN 2.0.2 §10.6.4 parallel gateway, §13.5.4 interrupting handlers).

    Raises:
        InvalidDefinition: BPMN113 for a fork whose branches do not all reach
            one join, or a branch that ends in a none end event (the join
            would wait for its token forever).
    """
    esp_starts = {c.next for c in esp}
    problems: list[Diagnostic] = []

    def succ(node: Node, *, inner: bool) -> list[str]:
        out = [node.next, *node.choices, node.default,
               *(c.next for c in node.catches)]
        return [x for x in out if x and not (inner and x in esp_starts)]

    joins: dict[str, str | None] = {}

    def join_of(fork: str) -> str | None:
        if fork not in joins:
            joins[fork] = None  # a cycle through a fork is unstructured
            found: set[str] = set()
            for t in nodes[fork].raw["fork"]:
                found |= stops(t)
            joins[fork] = found.pop() if len(found) == 1 else None
        return joins[fork]

    def stops(entry: str) -> set[str]:
        seen: set[str] = set()
        out: set[str] = set()
        todo = [entry]
        while todo:
            n = todo.pop()
            if n in seen or n not in nodes:
                continue
            seen.add(n)
            node = nodes[n]
            if node.raw.get("join"):
                out.add(n)
            elif "fork" in node.raw:
                j = join_of(n)
                if j is None:
                    return {"", "<unstructured>"}
                todo.extend(succ(nodes[j], inner=True))
            else:
                todo.extend(succ(node, inner=True))
        return out

    placed: set[str] = set()

    def region(entry: str, stop: str | None, parent: str | None, *,
               inner: bool) -> Graph:
        """The nodes from ``entry``: the process (not ``inner``), a branch
        of a parallel block up to its join ``stop``, or the inside of a
        sub-process (ending at its end events)."""
        end = f"{stop} (from {entry})"
        out: dict[str, Node] = {}
        todo = [entry]
        while todo:
            n = todo.pop()
            if n in out or n == end:
                continue
            node = nodes[n]
            if "fork" in node.raw:
                j = join_of(n)
                if j is None:
                    problems.append(Diagnostic(
                        code="BPMN113", span=node.span, message=f"parallel "
                        f"gateway {n!r}: its branches do not all meet at one "
                        "joining parallel gateway", help="close each "
                        "parallel block with one joining parallel gateway"))
                    continue
                node = replace(node, kind="parallel", branches=tuple(
                    region(t, j, n, inner=True) for t in node.raw["fork"]),
                    next=j, catches=tuple(esp))
            elif node.raw.get("subprocess"):
                # A sub-process is a block with one branch: an error it
                # does not catch inside goes to its own boundary events.
                node = replace(node, kind="parallel", branches=(region(
                    node.raw["sub_start"], None, n, inner=True),))
            if inner:
                if stop is not None and node.kind == "pass" and \
                        node.next is None and node.raw.get("Type") == "endEvent":
                    problems.append(Diagnostic(
                        code="BPMN113", span=node.span, message=f"end event "
                        f"{n!r} ends a branch of the parallel block before "
                        f"{stop!r}: the join would wait for its token forever",
                        help="lead the branch to the joining gateway"))
                if "error_code" in node.raw:
                    node = replace(node, kind="fail", next=None,
                                   error=node.raw["error_code"])

                def fix(x: str | None) -> str | None:
                    return end if x is not None and x == stop else x

                node = replace(
                    node, next=fix(node.next),
                    choices=tuple(str(fix(c)) for c in node.choices),
                    default=fix(node.default),
                    catches=tuple(c for c in node.catches
                                  if c.next not in esp_starts))
                placed.add(n)
            out[n] = node
            todo.extend(succ(node, inner=inner))
        if stop is not None and any(end in (x.next, *x.choices, x.default)
                         for x in out.values()):
            out[end] = Node(name=end, kind="pass", span=nodes[str(stop)].span,
                            raw={"Type": "join", "name": end})
        return Graph(start=entry, nodes=out, span=span, parent=parent)

    top = region(start, None, None, inner=False)
    # Handlers, the event sub-process and unreachable elements stay in the
    # top region (handlers run from the compensation stack).
    rest = {n: node for n, node in nodes.items()
            if n not in placed and n not in top.nodes}
    graph = Graph(start=start, nodes={**top.nodes, **rest}, span=span)
    if problems:
        raise InvalidDefinition(tuple(problems))
    return graph

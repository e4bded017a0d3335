"""Serverless Workflow 0.8 (CNCF) into the graph the imported semantics explores.

An ``operation`` state calls functions (a Task); ``compensatedBy`` names the
state (``usedForCompensation: true``) that undoes it; ``onErrors`` routes a
named error to a transition (a Catch); an error no ``onErrors`` entry names
fails the workflow (spec 0.8, "Workflow Error Handling"); a transition or end
with ``compensate: true`` first compensates every completed state, newest first
(spec 0.8, "Workflow Compensation"), as Seata's CompensationTrigger does, so the
compensation stack of :mod:`.graph_semantics` runs it. ``inject`` and ``sleep``
states pass data or time; ``switch`` with data conditions is a Choice. Other
state types are refused with a located SW101 (not modelled yet).
"""

from __future__ import annotations

from typing import Any

from .._errors import Diagnostic, InvalidDefinition
from .._source import Document
from ._graph import Catcher, Graph, Node, reject

_PASS = frozenset({"inject", "sleep"})


def detect(data: Any) -> bool:
    """Whether ``data`` is a Serverless Workflow definition."""
    return (isinstance(data, dict) and isinstance(data.get("states"), list)
            and "start" in data and ("specVersion" in data or "id" in data))


def _target(value: Any) -> tuple[str | None, bool]:
    """(next state, compensate first) of a ``transition``/``end`` value."""
    if isinstance(value, str):
        return value, False
    if isinstance(value, dict):
        nxt = value.get("nextState")
        return (str(nxt) if nxt is not None else None,
                value.get("compensate") is True)
    return None, False


def parse(doc: Document) -> tuple[Graph, list[str], dict[str, str], str]:
    """(graph, forward states, compensatedBy map, name); raises
    :class:`InvalidDefinition` with located SW1xx diagnostics."""
    data = doc.data
    start = data.get("start")
    start = start.get("stateName") if isinstance(start, dict) else start
    nodes: dict[str, Node] = {}
    undo: dict[str, str] = {}
    comps: set[str] = set()
    problems: list[Diagnostic] = []
    extra: dict[str, Node] = {}
    for i, raw in enumerate(data["states"]):
        pointer = f"/states/{i}"
        span = doc.span(pointer)
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise reject("SW102", "a state needs a 'name'", span,
                         "give every state a unique name")
        name, kind = raw["name"], raw.get("type")
        if kind not in ("operation", "switch", *_PASS):
            raise reject("SW101", f"state {name!r} has type {kind!r}, which "
                         "sagaproof does not model yet", span,
                         "use operation, switch (data conditions), inject or "
                         "sleep states; check other parts as their own "
                         "workflows")
        if raw.get("usedForCompensation") is True:
            comps.add(name)
        if isinstance(raw.get("compensatedBy"), str):
            undo[name] = raw["compensatedBy"]
        if "end" in raw and raw["end"] not in (None, False):
            nxt, compensate = None, isinstance(raw["end"], dict) and \
                raw["end"].get("compensate") is True
        else:
            nxt, compensate = _target(raw.get("transition"))
        if compensate:
            # Compensate, then go on: a trigger state in between.
            trigger = f"{name} (compensate)"
            extra[trigger] = Node(name=trigger, kind="trigger", span=span,
                                  next=nxt)
            nxt = trigger
        catches = []
        for j, on in enumerate(raw.get("onErrors") or []):
            if not isinstance(on, dict):
                continue
            refs = on.get("errorRefs") or ([on["errorRef"]] if "errorRef" in on
                                           else [])
            target, comp = (_target(on.get("transition")) if "transition" in on
                            else (None, False))
            if comp:
                trigger = f"{name} (compensate on error {j})"
                extra[trigger] = Node(name=trigger, kind="trigger", span=span,
                                      next=target)
                target = trigger
            catches.append(Catcher(errors=tuple(map(str, refs)),
                                   next=target or "", span=doc.span(
                                       f"{pointer}/onErrors/{j}")))
        choices: tuple[str, ...] = ()
        default = None
        if kind == "switch":
            choices = tuple(t for c in raw.get("dataConditions") or []
                            if isinstance(c, dict)
                            for t in [_target(c.get("transition"))[0]] if t)
            d = raw.get("defaultCondition")
            default = _target(d.get("transition"))[0] if isinstance(d, dict) \
                else None
        node_kind = ("task" if kind == "operation" else
                     "choice" if kind == "switch" else "pass")
        nodes[name] = Node(name=name, kind=node_kind, span=span, next=nxt,
                           choices=choices, default=default,
                           catches=tuple(catches), raw=raw)
    nodes.update(extra)
    for node in nodes.values():
        for key, t in (("transition", node.next), ("default", node.default),
                       *(("condition", c) for c in node.choices),
                       *(("onErrors", c.next) for c in node.catches)):
            if t is not None and t not in nodes:
                problems.append(Diagnostic(
                    code="SW103", span=node.span,
                    message=f"state {node.name!r}: {key} target {t!r} is not "
                    "a state", help="name a state of this workflow"))
    for f, c in undo.items():
        if c not in nodes:
            problems.append(Diagnostic(
                code="SW104", span=nodes[f].span, message=f"state {f!r}: "
                f"compensatedBy {c!r} is not a state",
                help="name a state with usedForCompensation: true"))
    if start not in nodes:
        problems.append(Diagnostic(code="SW103", span=doc.span("/start"),
                                   message=f"start={start!r} names no state",
                                   help="name one of the states"))
    if problems:
        raise InvalidDefinition(tuple(problems))
    # Forward work: operations reached from the start without an onErrors
    # route (those are handlers, like the failure notice after a rollback).
    seen: list[str] = []
    todo = [str(start)]
    while todo:
        n = todo.pop(0)
        if n in seen or n not in nodes:
            continue
        seen.append(n)
        todo.extend(t for t in (nodes[n].next, *nodes[n].choices,
                                nodes[n].default) if t)
    forward = [n for n in seen if nodes[n].kind == "task" and n not in comps]
    if not forward:
        raise reject("SW100", "the workflow has no operation state that is "
                     "not used for compensation: nothing takes effect",
                     doc.span(""), "sagaproof checks sagas: operations and "
                     "the states that compensate them")
    graph = Graph(start=str(start), nodes=nodes, span=doc.span(""))
    name = str(data.get("id") or data.get("name") or "workflow")
    return graph, forward, undo, name

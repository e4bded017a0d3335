"""Which Task undoes which, read from the structure of an ASL state machine.

Names alone leave ``BookHotel``/``CancelHotel`` or ``ProcessPayment``/
``ProcessRefund`` unpaired when their verbs are not in a table, and cannot tell
two compensations of one Task apart. The file itself says more: the Catch of a
failing Task routes to the Tasks that undo what ran before it, so

- a handler Task ``c`` (reached only through a Catch) undoes one of the forward
  Tasks ``f`` whose rollback route reaches ``c``; the earliest such ``f`` in
  forward order (every later Task's rollback reaches ``c`` too) is the one it
  undoes when the machine's routes undo the failing Task itself (a route of
  the first Task already compensates), else the Task before it;
- a name that pairs ``c`` with one of those candidates wins over position;
- a handler that notifies (Notify, Send, Publish, Log, ...) undoes nothing,
  and neither does one without an undo verb after which the execution can
  still succeed (a fallback);
- a forward Task that only reads or notifies (Get, Check, Validate, Notify,
  ...) has no effect to undo.

A ``--compensations`` sidecar (and the exporter's annotations) override it.
Every route is followed through Choices (all branches), Parallels and chains of
``Next``, not only to the first Task after the Catch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._asl import Machine, annotation
from ._graph import TASK_KINDS, Graph
from ._mapping import (
    CompensationMap,
    MappingEntry,
    Sidecar,
    match_score,
    undo_verb,
    words,
)

READ_VERBS = frozenset({
    "get", "read", "check", "fetch", "describe", "list", "query", "lookup",
    "validate", "verify", "notify", "send", "publish", "log", "record",
    "report", "alert", "email", "sns", "wait", "poll", "inspect", "find",
    "search", "load", "is", "has", "evaluate", "calculate", "compute",
})
"""Leading words of a Task that changes nothing another Task must undo (a
read, or a notice that cannot be taken back)."""

NOTICE_VERBS = frozenset({"notify", "send", "sending", "publish", "log",
                          "record", "report", "alert", "email", "sns"})
NOTICE_WORDS = frozenset({*NOTICE_VERBS, "notification", "error", "handler",
                          "failure", "sms"})
"""Words of a handler that reports a failure rather than undoing work (when
it does not start with an undo verb)."""
READ_RESOURCES = ("dynamodb:getItem", "dynamodb:query", "dynamodb:scan",
                  "s3:getObject", "states:describeExecution", "sqs:receiveMessage")
NOTICE_RESOURCES = ("sns:publish",)


@dataclass(frozen=True, slots=True, kw_only=True)
class Undoes:
    """The inferred relation."""

    undoes: tuple[tuple[str, tuple[str, ...]], ...]
    """(handler Task, the forward Tasks it undoes)."""
    no_effect: frozenset[str]
    """Forward Tasks with nothing to undo."""
    source: tuple[tuple[str, str], ...]
    """(forward Task, where its pairing came from): sidecar, annotation,
    structure, structure+name, read-only, or unmapped."""

    def compensations_of(self, forward: str) -> list[str]:
        """Every handler Task that undoes ``forward``."""
        return [c for c, fs in self.undoes if forward in fs]


def _verb(name: str) -> str:
    w = words(name)
    return w[0] if w else ""


def _resource(m: Machine, task: str) -> str:
    return str(m.nodes[task][0].raw.get("Resource", ""))


def is_notice(m: Machine, task: str) -> bool:
    """A Task that tells someone about a failure (it undoes nothing)."""
    if any(r in _resource(m, task) for r in NOTICE_RESOURCES):
        return True
    return not undo_verb(task) and bool(set(words(task)) & NOTICE_WORDS)


def is_read(m: Machine, task: str) -> bool:
    """A forward Task with no effect to undo: a read, or a notice."""
    res = _resource(m, task)
    if any(r in res for r in (*READ_RESOURCES, *NOTICE_RESOURCES)):
        return True
    return _verb(task) in READ_VERBS


def ends_in_failure(m: Machine, task: str) -> bool:
    """Whether every way on from ``task`` (errors aside) ends in a Fail state:
    a route that can end in success after it is a fallback, not a rollback."""
    _, graph = m.nodes[task]
    seen: set[str] = set()
    todo = [task]
    while todo:
        n = todo.pop()
        if n in seen or n not in graph.nodes:
            continue
        seen.add(n)
        node = graph.nodes[n]
        if node.kind == "succeed" or (node.next is None and node.kind not in (
                "fail", "choice")):
            return False
        todo.extend(x for x in (node.next, *node.choices, node.default) if x)
    return True


def _object(name: str) -> set[str]:
    return set(words(name)[1:])


def _catch_targets(m: Machine, task: str) -> list[tuple[Graph, str]]:
    """Catch targets that handle a failure of ``task``: its own and every
    enclosing Parallel's/Map's."""
    node, graph = m.nodes[task]
    out: list[tuple[Graph, str]] = []
    while True:
        out.extend((graph, c.next) for c in node.catches)
        if graph.parent is None:
            return out
        node, graph = m.nodes[graph.parent]


def route_tasks(m: Machine, graph: Graph, start: str, forward: set[str]
                ) -> list[str]:
    """Handler Tasks on every path from ``start`` (a Catch target): every
    Choice branch, Parallel branch and Catch of the handlers themselves, up to
    an end or a forward Task (the route resumes forward work there)."""
    out: dict[str, None] = {}
    seen: set[str] = set()
    todo = [(graph, start)]
    while todo:
        g, n = todo.pop(0)
        if n in seen or n not in g.nodes:
            continue
        seen.add(n)
        node = g.nodes[n]
        if node.kind in TASK_KINDS:
            if n in forward:
                continue
            out[n] = None
        for b in node.branches:
            todo.append((b, b.start))
        targets = [node.next, *node.choices, node.default,
                   *(c.next for c in node.catches)]
        todo.extend((g, t) for t in targets if t is not None)
    return list(out)


def infer(m: Machine, sidecar: Sidecar | None = None) -> Undoes:
    """The handler -> forward relation of ``m``."""
    forward = list(m.forward)
    fset = set(forward)
    routes = {f: [t for g, s in _catch_targets(m, f)
                  for t in route_tasks(m, g, s, fset)] for f in forward}
    handlers = [n for n, (node, _) in m.nodes.items()
                if node.kind in TASK_KINDS and n not in fset]
    fixed: dict[str, str | None] = {}
    source: dict[str, str] = {}
    if sidecar is not None:
        for f, c in sidecar.compensations.items():
            fixed[f] = c
            source[f] = "sidecar"
    for h in handlers:
        target = annotation(m.nodes[h][0]).get("compensates")
        for f in [target] if isinstance(target, str) else (target or []):
            if str(f) not in fixed:
                fixed[str(f)] = h
                source[str(f)] = "annotation"
    # Whether routes undo the failing Task itself: some route already holds a
    # handler that pairs by name with its own Task, or the longest route holds
    # as many handlers as there are Tasks up to and including its Task.
    self_inclusive = any(match_score(f, c) for f in forward for c in routes[f])
    if not self_inclusive and any(routes.values()):
        f_star = max(forward, key=lambda f: len(set(routes[f])))
        undoing = [c for c in routes[f_star] if not is_notice(m, c)]
        self_inclusive = len(undoing) >= forward.index(f_star) + 1
    rel: dict[str, list[str]] = {h: [] for h in handlers}
    for c in handlers:
        if is_notice(m, c):
            continue
        reaching = [f for f in forward if c in routes[f]]
        if not reaching:
            continue
        earliest = forward.index(reaching[0])
        candidates = forward[: earliest + 1]
        named = sorted(((match_score(f, c), -forward.index(f), f)
                        for f in candidates), reverse=True)
        if named and named[0][0] > 0:
            f = named[0][2]
            kind = "structure+name"
        elif not undo_verb(c) and not ends_in_failure(m, c):
            continue  # a fallback that can end in success undoes nothing
        elif self_inclusive:
            f, kind = forward[earliest], "structure"
        elif earliest > 0:
            f, kind = forward[earliest - 1], "structure"
        else:
            continue
        if f in fixed:
            continue
        rel[c].append(f)
        source.setdefault(f, kind)
        # Later steps on the same object (ConfirmFlight after ReserveFlight)
        # are undone with it when nothing else undoes them: cancelling a
        # reservation cancels its confirmation.
        common = _object(c) & _object(f)
        for g in forward[forward.index(f) + 1:]:
            if g not in fixed and common & _object(g) and not any(
                    match_score(g, h) for h in handlers):
                rel[c].append(g)
                source.setdefault(g, "structure+object")
    for f, c in fixed.items():
        if c is not None and c in rel:
            rel[c].append(f)
    no_effect = {f for f, c in fixed.items() if c is None}
    for f in forward:
        if f in source:
            continue
        if is_read(m, f):
            no_effect.add(f)
            source[f] = "read-only"
        else:
            source[f] = "unmapped"
    return Undoes(
        undoes=tuple((c, tuple(dict.fromkeys(fs))) for c, fs in rel.items() if fs),
        no_effect=frozenset(no_effect),
        source=tuple((f, source[f]) for f in forward))


def as_map(m: Machine, rel: Undoes) -> CompensationMap:
    """The relation in the sidecar shape ``sagaproof mapping`` prints (a
    forward Task undone by several handlers shows the first)."""
    source = dict(rel.source)
    entries = tuple(
        MappingEntry(forward=f, compensation=next(iter(rel.compensations_of(f)),
                                                  None),
                     source=source.get(f, "unmapped"),
                     no_effect=f in rel.no_effect)
        for f in m.forward)
    used = {c for c, _ in rel.undoes}
    handlers = tuple(n for n, (node, _) in m.nodes.items()
                     if node.kind in TASK_KINDS and n not in m.forward
                     and n not in used)
    return CompensationMap(entries=entries, kinds=m.mapping.kinds,
                           handlers=handlers)

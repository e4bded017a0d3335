"""A format-neutral state graph, and the enumeration of its forward paths.

Both importers (ASL and Seata) first normalise their file into a :class:`Graph`
of :class:`Node` values, then enumerate the forward paths from the start state:
every Choice is a nondeterministic branch, so each path is one alternative saga.
The IR has no branches; expanding into alternatives keeps every checker, the
runtime and the CLI unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .._errors import Diagnostic, InvalidDefinition
from .._span import UNKNOWN_SPAN, Span

TASK_KINDS = frozenset({"task", "sub"})
"""Node kinds that call a participant (and so may take effect)."""

BPMN_CANCEL = "<cancel>"
"""BPMN: a cancel end event inside a transaction sub-process (caught by the
transaction's cancel boundary event)."""

MAX_PATHS = 64
"""Alternatives per definition: a definition with more paths is refused rather
than checked in part (a verdict on some paths is not a verdict)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Retrier:
    """One Retry entry: which errors it retries and how often."""

    errors: tuple[str, ...]
    """Error names matched; empty means every error (Seata's default)."""
    interval: float = 1.0
    max_retries: int = 3
    """Retries after the first attempt (ASL ``MaxAttempts``)."""
    backoff: float = 2.0
    max_delay: float | None = None
    jitter: bool = False
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class Catcher:
    """One Catch entry: matched errors and the state they route to."""

    errors: tuple[str, ...]
    next: str
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One state, normalised."""

    name: str
    kind: str
    """task, sub, choice, pass, succeed, fail, parallel, trigger."""
    span: Span
    next: str | None = None
    """The following state; None means the (branch of the) machine ends here."""
    choices: tuple[str, ...] = ()
    """Choice targets in declaration order (Default excluded)."""
    default: str | None = None
    catches: tuple[Catcher, ...] = ()
    retriers: tuple[Retrier, ...] = ()
    branches: tuple[Graph, ...] = ()
    error: str | None = None
    """A Fail state's error name."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """A state machine, or one branch of a Parallel/Map state."""

    start: str
    nodes: dict[str, Node]
    span: Span
    parent: str | None = None
    """The Parallel/Map state this graph is a branch of."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Par:
    """A Parallel (or Map) state on a path, with one chosen path per branch."""

    name: str
    branches: tuple[Path, ...]


Item = str | Par
"""A task name, or a Parallel with its branch paths."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Path:
    """One forward path: what runs, and how it ends."""

    items: tuple[Item, ...] = ()
    end: str = "end"
    """succeed, end (a state with End/no Next), fail, comp (walks into a
    compensation state as if it were forward work)."""
    end_state: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    """(Choice state, chosen target) pairs, in path order."""

    def prepend(self, item: Item | None, choice: tuple[str, str] | None = None
                ) -> Path:
        items = self.items if item is None else (item, *self.items)
        choices = self.choices if choice is None else (choice, *self.choices)
        return replace(self, items=items, choices=choices)

    def tasks(self) -> Iterator[str]:
        """Every task on the path, branches included, in path order."""
        for item in self.items:
            if isinstance(item, Par):
                for branch in item.branches:
                    yield from branch.tasks()
            else:
                yield item


def reject(code: str, message: str, span: Span, help: str) -> InvalidDefinition:
    """A located import error (the file cannot be lowered)."""
    return InvalidDefinition((Diagnostic(code=code, message=message, span=span,
                                         help=help),))


@dataclass(slots=True)
class Enumerator:
    """Enumerates forward paths; ``is_compensation`` names states that only
    undo work (a path that walks into one ends there)."""

    is_compensation: Callable[[str], bool]
    catch_target: Callable[[Node, str], str | None]
    """Where a Parallel routes a branch's Fail error, or None if uncaught."""
    loop_code: str
    count: int = 0

    def paths(self, graph: Graph, name: str, on_path: tuple[str, ...] = ()
              ) -> list[Path]:
        node = graph.nodes[name]
        if name in on_path:
            cycle = on_path[on_path.index(name):]
            tasks = [c for c in cycle if graph.nodes[c].kind in TASK_KINDS]
            if tasks:
                raise reject(
                    self.loop_code,
                    f"loop through task(s) {', '.join(map(repr, tasks))}: "
                    + " -> ".join([*cycle, name]),
                    node.span,
                    "sagaproof's sagas are acyclic: express a repeated call as a "
                    "Retry on the task, or move the loop into the task",
                )
            # A loop of Pass/Wait/Choice states (polling): under fairness it
            # exits, and it runs no task, so it adds no behaviour to the saga.
            return []
        on_path = (*on_path, name)
        kind = node.kind
        if kind in TASK_KINDS:
            if self.is_compensation(name):
                return [Path(end="comp", end_state=name)]
            rest = (self.paths(graph, node.next, on_path) if node.next
                    else [Path(end="end", end_state=name)])
            return self._bound([p.prepend(name) for p in rest], node)
        return self._other(graph, node, on_path)

    def _other(self, graph: Graph, node: Node, on_path: tuple[str, ...]
               ) -> list[Path]:
        name, kind = node.name, node.kind
        if kind == "pass":
            return (self.paths(graph, node.next, on_path) if node.next
                    else [Path(end="end", end_state=name)])
        if kind == "choice":
            out: list[Path] = []
            targets = list(dict.fromkeys(node.choices))
            if node.default is not None and node.default not in targets:
                targets.append(node.default)
            for target in targets:
                out.extend(p.prepend(None, (name, target))
                           for p in self.paths(graph, target, on_path))
            if node.default is None:
                # No rule matched: the engine raises (States.NoChoiceMatched).
                out.append(Path(end="fail", end_state=name,
                                choices=((name, "<no match>"),)))
            return self._bound(out, node)
        if kind == "succeed":
            return [Path(end="succeed", end_state=name)]
        if kind in ("fail", "trigger"):
            return [Path(end="fail", end_state=name)]
        if kind == "parallel":
            per_branch = [self.paths(b, b.start) for b in node.branches]
            out = []
            for combo in itertools.product(*per_branch):
                failing = next((p for p in combo if p.end == "fail"), None)
                if failing is not None:
                    error = _fail_error(node, failing)
                    caught = self.catch_target(node, error)
                    cont = (self.paths(graph, caught, on_path)
                            if caught is not None else
                            [Path(end="fail", end_state=failing.end_state)])
                else:
                    cont = (self.paths(graph, node.next, on_path) if node.next
                            else [Path(end="end", end_state=name)])
                item = Par(name=name, branches=tuple(combo))
                inner = tuple(c for p in combo for c in p.choices)
                out.extend(replace(p.prepend(item), choices=inner + p.choices)
                           for p in cont)
            return self._bound(out, node)
        raise AssertionError(f"unexpected node kind {kind!r}")

    def _bound(self, out: list[Path], node: Node) -> list[Path]:
        if len(out) > MAX_PATHS:
            raise reject(
                "IMPORT100",
                f"more than {MAX_PATHS} alternative paths through the definition "
                f"(at state {node.name!r})",
                node.span,
                "split the state machine, or make Choice states decidable; "
                "sagaproof refuses to check only some of the paths",
            )
        return out


def _fail_error(par: Node, path: Path) -> str:
    for branch in par.branches:
        hit = branch.nodes.get(path.end_state)
        if hit is not None:
            return hit.error or "States.TaskFailed"
    return "States.TaskFailed"


def can_terminate(graph: Graph) -> set[str]:
    """States from which a terminal state (or an implicit end) is reachable."""
    preds: dict[str, set[str]] = {n: set() for n in graph.nodes}
    good: set[str] = set()
    for node in graph.nodes.values():
        targets = [node.next, *node.choices, node.default,
                   *(c.next for c in node.catches)]
        if node.kind in ("succeed", "fail") or (
            node.next is None and node.kind not in ("choice",)
        ):
            good.add(node.name)
        for t in targets:
            if t in preds:
                preds[t].add(node.name)
    todo = list(good)
    while todo:
        n = todo.pop()
        for p in preds[n]:
            if p not in good:
                good.add(p)
                todo.append(p)
    return good


def reachable(graph: Graph, start: str) -> list[str]:
    """States reachable from ``start`` by any edge, in discovery order."""
    seen: dict[str, None] = {}
    todo = [start]
    while todo:
        n = todo.pop(0)
        if n in seen or n not in graph.nodes:
            continue
        seen[n] = None
        node = graph.nodes[n]
        todo.extend(t for t in (node.next, *node.choices, node.default,
                                *(c.next for c in node.catches)) if t)
    return list(seen)

"""Amazon States Language (AWS Step Functions) into the saga IR.

Forward Tasks become steps; ``Retry`` becomes the step's retry policy;
``TimeoutSeconds``/``HeartbeatSeconds`` a timeout (so an attempt can end
``States.Timeout``, outcome unknown); each forward Task's Catch route is walked
and the compensation tasks it runs become a :class:`CompensationChain` with
``unconditional=True`` (Step Functions runs every Task of the route, whether or
not its step took effect). A Choice is a nondeterministic branch: each path is
one alternative saga. Hand-wiring problems that are not behaviours of the model
become ``import_diagnostics`` (ASL2xx, see docs/import_diagnostics.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
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
from .._span import Span
from .._validate import lowering_diagnostics
from ._graph import (
    TASK_KINDS,
    Catcher,
    Enumerator,
    Graph,
    Item,
    Node,
    Path,
    Retrier,
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
from ._mapping import (
    CompensationMap,
    MappingEntry,
    Sidecar,
    check_sidecar_names,
    infer,
    match_score,
    undo_verb,
)

FOREVER = 99_999_999
"""The largest ``MaxAttempts`` ASL accepts; sagaproof reads it (and writes it on
export) as "retry until it succeeds" (see docs/importers.md for the caveat)."""
GENERIC = "States.TaskFailed"
"""Stands for any error a Task's own code raises (a custom error name)."""
TIMEOUT = "States.Timeout"
LAMBDA_ERRORS = ("Lambda.ServiceException", "Lambda.AWSLambdaException",
                 "Lambda.SdkClientException", "Lambda.TooManyRequestsException")
OPAQUE_SECONDS = 3600.0
"""Stands in for a timeout given as a placeholder or a path (decided at deploy
or run time): only its presence matters to the model."""
ANNOTATION = "sagaproof:"
"""A state ``Comment`` starting with this carries JSON the exporter wrote."""
_TYPES = {"Task": "task", "Pass": "pass", "Wait": "pass", "Choice": "choice",
          "Succeed": "succeed", "Fail": "fail", "Parallel": "parallel",
          "Map": "parallel"}


def matches(pattern: str, error: str) -> bool:
    """Whether an ``ErrorEquals`` entry matches ``error`` (ASL's rules)."""
    if pattern == "States.ALL":
        return error not in ("States.Runtime", "States.DataLimitExceeded")
    if pattern == "States.TaskFailed":
        return error not in (TIMEOUT, "States.Runtime", "States.DataLimitExceeded")
    return pattern == error


def first_match(entries: tuple[Any, ...], error: str) -> Any:
    """The first Retry/Catch entry (declaration order) matching ``error``."""
    for entry in entries:
        if any(matches(p, error) for p in entry.errors):
            return entry
    return None


# --- parsing -------------------------------------------------------------------
def find_machine(data: Any) -> tuple[str, str] | None:
    """``(pointer, name)`` of the state machine in ``data``: the document itself,
    or the first definition in a Serverless Framework file."""
    if isinstance(data, dict) and "StartAt" in data and "States" in data:
        return "", ""
    functions = data.get("stepFunctions") if isinstance(data, dict) else None
    machines = functions.get("stateMachines") if isinstance(
        functions, dict) else None
    if isinstance(machines, dict):
        for key, machine in machines.items():
            if isinstance(machine, dict) and isinstance(machine.get("definition"),
                                                        dict):
                name = str(machine.get("name") or key)
                where = f"/stepFunctions/stateMachines/{escape(str(key))}"
                return where + "/definition", name
    return None


def _at(data: Any, pointer: str) -> Any:
    for part in pointer.split("/")[1:]:
        data = data[part.replace("~1", "/").replace("~0", "~")]
    return data


@dataclass(slots=True)
class _Parser:
    doc: Document
    nodes: dict[str, tuple[Node, Graph]] = field(default_factory=dict)
    problems: list[Any] = field(default_factory=list)

    def span(self, pointer: str) -> Span:
        return self.doc.span(pointer)

    def graph(self, raw: Any, pointer: str, parent: str | None) -> Graph:
        if not isinstance(raw, dict) or not isinstance(raw.get("States"), dict) \
                or not raw.get("States"):
            raise reject("ASL101", "a state machine needs 'StartAt' and a non-empty "
                         "'States' mapping", self.span(pointer),
                         "write 'StartAt: <first state>' and 'States: {...}'")
        start = raw.get("StartAt")
        nodes: dict[str, Node] = {}
        for name, state in raw["States"].items():
            sp = f"{pointer}/States/{escape(str(name))}"
            nodes[str(name)] = self.node(str(name), state, sp)
        graph = Graph(start=str(start), nodes=nodes, span=self.span(pointer),
                      parent=parent)
        if start not in nodes:
            self.problems.append(("ASL102", f"StartAt={start!r} names no state",
                                  self.span(pointer + "/StartAt"),
                                  "name one of the states under 'States'"))
        for node in nodes.values():
            if node.name in self.nodes:
                self.problems.append((
                    "ASL104", f"state name {node.name!r} is used twice",
                    node.span, "state names must be unique in the whole state "
                    "machine, branches included"))
            self.nodes[node.name] = (node, graph)
            targets = [("Next", node.next), ("Default", node.default)]
            targets += [("Choices", c) for c in node.choices]
            targets += [("Catch", c.next) for c in node.catches]
            for key, target in targets:
                if target is not None and target not in nodes:
                    import difflib
                    close = difflib.get_close_matches(target, list(nodes), n=1)
                    self.problems.append((
                        "ASL102", f"state {node.name!r}: {key} target "
                        f"{target!r} is not a state of this machine", node.span,
                        f"did you mean {close[0]!r}?" if close else
                        "name a state defined in the same 'States' mapping"))
        return graph

    def node(self, name: str, raw: Any, pointer: str) -> Node:
        sp = self.span(pointer)
        if not isinstance(raw, dict) or raw.get("Type") not in _TYPES:
            kind = raw.get("Type") if isinstance(raw, dict) else raw
            raise reject("ASL103", f"state {name!r} has unknown Type={kind!r}",
                         sp, "use Task, Pass, Choice, Parallel, Map, Wait, "
                         "Succeed or Fail")
        kind = _TYPES[raw["Type"]]
        nxt = raw.get("Next")
        if kind in ("task", "pass", "parallel") and nxt is None and \
                raw.get("End") is not True:
            self.problems.append(("ASL105", f"state {name!r} has neither Next nor "
                                  "End: true", sp, "add 'Next: <state>' or "
                                  "'End: true'"))
        branches: tuple[Graph, ...] = ()
        if raw["Type"] == "Parallel":
            branches = tuple(
                self.graph(b, f"{pointer}/Branches/{i}", name)
                for i, b in enumerate(raw.get("Branches") or []))
        elif raw["Type"] == "Map":
            key = "ItemProcessor" if "ItemProcessor" in raw else "Iterator"
            branches = (self.graph(raw.get(key), f"{pointer}/{key}", name),)
        choices: list[str] = []
        for rule in raw.get("Choices") or []:
            if isinstance(rule, dict) and "Next" in rule:
                choices.append(str(rule["Next"]))
        return Node(
            name=name, kind=kind, span=sp,
            next=str(nxt) if nxt is not None else None,
            choices=tuple(choices),
            default=str(raw["Default"]) if "Default" in raw else None,
            catches=tuple(
                Catcher(errors=tuple(map(str, c.get("ErrorEquals") or [])),
                        next=str(c.get("Next")), span=self.span(f"{pointer}/Catch/{i}"))
                for i, c in enumerate(raw.get("Catch") or [])),
            retriers=tuple(self.retrier(r, f"{pointer}/Retry/{i}")
                           for i, r in enumerate(raw.get("Retry") or [])),
            branches=branches,
            error=str(raw["Error"]) if "Error" in raw else None,
            raw=raw,
        )

    def retrier(self, raw: Any, pointer: str) -> Retrier:
        def num(key: str, default: float) -> float:
            v = raw.get(key, default)
            return float(v) if isinstance(v, (int, float)) and not isinstance(
                v, bool) else default  # placeholders stay opaque: the default
        return Retrier(
            errors=tuple(map(str, raw.get("ErrorEquals") or [])),
            interval=num("IntervalSeconds", 1.0),
            max_retries=int(num("MaxAttempts", 3.0)),
            backoff=num("BackoffRate", 2.0),
            max_delay=num("MaxDelaySeconds", 0.0) or None,
            jitter=raw.get("JitterStrategy") == "FULL",
            span=self.span(pointer),
        )


def annotation(node: Node) -> dict[str, Any]:
    """The exporter's ``sagaproof:`` annotation in the state's Comment."""
    comment = node.raw.get("Comment")
    if isinstance(comment, str) and comment.startswith(ANNOTATION):
        try:
            value = json.loads(comment[len(ANNOTATION):])
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


# --- the model of one machine ---------------------------------------------------
@dataclass(slots=True)
class Machine:
    """A parsed ASL machine with its forward/handler classification and mapping."""

    name: str
    top: Graph
    nodes: dict[str, tuple[Node, Graph]]
    forward: list[str]
    handlers: list[str]
    mapping: CompensationMap
    paths: list[Path]
    pointer: str
    origin: dict[str, str] = field(default_factory=dict)
    """Step name of a Map iteration's copy of a Task -> the Task's state name."""
    later_copies: set[str] = field(default_factory=set)
    """Copies of iterations after the first (symmetric to the first)."""

    def state_of(self, step: str) -> str:
        """The state a step was lowered from (a Map copy's original Task)."""
        return self.origin.get(step, step)


MAP_ITEMS = 2
"""Iterations a Map state is modelled with (its items are unknown before run
time). Two is the least that shows a partial failure: one iteration's effect
in place while another fails; see docs/importers.md for why more add nothing
to the checked properties."""


def parse(doc: Document, *, sidecar: Sidecar | None = None,
          enumerate_paths: bool = True) -> Machine:
    """Parse and classify; raises :class:`InvalidDefinition` on a bad file.

    ``enumerate_paths=False`` skips the forward paths (lowering needs them;
    the graph semantics explores loops and every Choice itself)."""
    found = find_machine(doc.data)
    if found is None:
        raise reject("ASL101", "not an ASL state machine", doc.span(""),
                     "an ASL file has 'StartAt' and 'States' at the top")
    pointer, name = found
    parser = _Parser(doc)
    top = parser.graph(_at(doc.data, pointer), pointer, None)
    if parser.problems:
        raise InvalidDefinition(tuple(
            Diagnostic(code=c, message=m, span=s, help=h)
            for c, m, s, h in parser.problems))
    name = name or _stem(doc.file)
    nodes = parser.nodes
    tasks = [n for n, (node, _) in nodes.items() if node.kind in TASK_KINDS]
    if not tasks and enumerate_paths:
        # Lowering makes a saga of the forward Tasks; with none there is no
        # saga to run or export. Checked as its own graph (enumerate_paths
        # False) such a machine is still a machine: control flow through
        # Parallel, Choice, Wait and Fail, whose termination is checked.
        raise reject("ASL100", f"state machine {name!r} has no Task state: it "
                     "calls no participant, so there is no saga to lower it "
                     "into (for the runtime or export)", top.span,
                     "check it as its own graph with 'sagaproof check FILE' "
                     "(its termination is checked); add a Task to run it")
    forward = _forward_tasks(top)
    handlers = [t for t in tasks if t not in forward]
    mapping = _mapping(nodes, forward, handlers, sidecar)

    def is_comp(task: str) -> bool:
        return False  # in ASL a handler task on a forward path is forward work

    def catch_target(par: Node, error: str) -> str | None:
        hit = first_match(par.catches, error)
        return hit.next if hit else None

    if not enumerate_paths:
        return Machine(name=name, top=top, nodes=nodes, forward=forward,
                       handlers=handlers, mapping=mapping, paths=[],
                       pointer=pointer)
    paths = Enumerator(is_compensation=is_comp, catch_target=catch_target,
                       loop_code="ASL106").paths(top, top.start)
    if not paths:
        raise reject("ASL107", "no path from StartAt reaches an end state",
                     top.span, "add a Succeed/Fail state or 'End: true'")
    m = Machine(name=name, top=top, nodes=nodes, forward=forward,
                handlers=handlers, mapping=mapping, paths=paths, pointer=pointer)
    m.paths = [replace(p, items=_expand_maps(m, p.items, "")) for p in paths]
    return m


def _expand_maps(m: Machine, items: tuple[Item, ...], suffix: str
                 ) -> tuple[Item, ...]:
    """``items`` with every Map's one iteration replaced by :data:`MAP_ITEMS`
    copies of it, their Tasks renamed ``Task (item k)``: in parallel, or one
    after the other when the Map's ``MaxConcurrency`` is 1."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, str):
            out.append(_copy_name(m, item, suffix))
            continue
        node = m.nodes[item.name][0]
        if node.raw.get("Type") != "Map":
            out.append(replace(item, branches=tuple(
                replace(b, items=_expand_maps(m, b.items, suffix))
                for b in item.branches)))
            continue
        [branch] = item.branches
        copies = [replace(branch, items=_expand_maps(
            m, branch.items, f"{suffix} (item {k + 1})")) for k in range(MAP_ITEMS)]
        if node.raw.get("MaxConcurrency") == 1:
            out.extend(i for c in copies for i in c.items)  # one at a time
        else:
            out.append(replace(item, branches=tuple(copies)))
    return tuple(out)


def _copy_name(m: Machine, task: str, suffix: str) -> str:
    if not suffix:
        return task
    name = task + suffix
    m.origin[name] = m.origin.get(task, task)
    if any(f"(item {k})" in suffix for k in range(2, MAP_ITEMS + 1)):
        m.later_copies.add(name)
    return name


def _stem(file: str) -> str:
    base = file.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".asl.json", ".asl.yaml", ".asl.yml", ".json", ".yaml", ".yml"):
        if base.endswith(suffix):
            return base[: -len(suffix)] or "state-machine"
    return base or "state-machine"


def _forward_tasks(top: Graph) -> list[str]:
    """Tasks reachable from StartAt without taking a Catch edge."""
    out: dict[str, None] = {}

    def visit(graph: Graph, start: str) -> None:
        seen: set[str] = set()
        todo = [start]
        while todo:
            n = todo.pop(0)
            if n in seen or n not in graph.nodes:
                continue
            seen.add(n)
            node = graph.nodes[n]
            if node.kind in TASK_KINDS:
                out[n] = None
            for b in node.branches:
                visit(b, b.start)
            todo.extend(t for t in (node.next, *node.choices, node.default) if t)
            if node.kind == "parallel":
                # A branch's Fail routed by the Parallel's Catch is control flow.
                todo.extend(c.next for c in node.catches
                            if not any(matches(p, GENERIC) for p in c.errors))
    visit(top, top.start)
    return list(out)


def _mapping(nodes: dict[str, tuple[Node, Graph]], forward: list[str],
             handlers: list[str], sidecar: Sidecar | None) -> CompensationMap:
    if sidecar is not None:
        check_sidecar_names(sidecar, [n for n, (nd, _) in nodes.items()
                                      if nd.kind in TASK_KINDS])
    entry_of: dict[str, str] = {}
    for f in forward:
        node = nodes[f][0]
        hit = first_match(node.catches, GENERIC)
        if hit is not None:
            first = _first_task(nodes, hit.next)
            if first:
                entry_of[f] = first
    annotated: dict[str, str] = {}
    for h in handlers:
        target = annotation(nodes[h][0]).get("compensates")
        for t in [target] if isinstance(target, str) else (target or []):
            annotated[str(t)] = h
    candidates = [h for h in handlers if undo_verb(h)] or handlers
    inferred = infer(forward, candidates, catch_entry=entry_of)
    entries: list[MappingEntry] = []
    kinds: dict[str, StepKind] = {}
    for f in forward:
        ann = annotation(nodes[f][0])
        if isinstance(ann.get("kind"), str):
            kinds[f] = StepKind(ann["kind"])
        if sidecar is not None and f in sidecar.compensations:
            comp = sidecar.compensations[f]
            entries.append(MappingEntry(forward=f, compensation=comp,
                                        source="sidecar", no_effect=comp is None))
        elif f in annotated:
            entries.append(MappingEntry(forward=f, compensation=annotated[f],
                                        source="annotation"))
        elif ann.get("compensation") is None and "kind" in ann:
            entries.append(MappingEntry(forward=f, compensation=None,
                                        source="annotation"))
        else:
            comp, src = inferred[f]
            entries.append(MappingEntry(forward=f, compensation=comp, source=src))
    if sidecar is not None:
        kinds.update(sidecar.kinds)
    used = {e.compensation for e in entries}
    return CompensationMap(entries=tuple(entries), kinds=tuple(kinds.items()),
                           handlers=tuple(h for h in handlers if h not in used))


def _first_task(nodes: dict[str, tuple[Node, Graph]], start: str) -> str | None:
    seen: set[str] = set()
    n: str | None = start
    while n is not None and n not in seen and n in nodes:
        seen.add(n)
        node = nodes[n][0]
        if node.kind in TASK_KINDS:
            return n
        n = node.next if node.kind != "choice" else (
            node.choices[0] if node.choices else node.default)
    return None


# --- lowering one path -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Route:
    """Where an error raised in a task goes."""

    caught: bool
    target: str | None = None
    graph: Graph | None = None
    catcher: Catcher | None = None


def route(m: Machine, task: str, error: str) -> Route:
    """The Catch that handles ``error`` raised in ``task`` (its own, else the
    enclosing Parallel's), or uncaught."""
    node, graph = m.nodes[m.state_of(task)]
    while True:
        hit = first_match(node.catches, error)
        if hit is not None:
            return Route(caught=True, target=hit.next, graph=graph, catcher=hit)
        if graph.parent is None:
            return Route(caught=False)
        node, graph = m.nodes[graph.parent]


def designed_route(m: Machine, task: str) -> Route:
    """The first Catch entry of ``task`` (else of the nearest enclosing Parallel
    that has one): the rollback its author wrote, whichever errors it names."""
    node, graph = m.nodes[m.state_of(task)]
    while True:
        signals = {n.error for b in node.branches for n in _all_nodes(b)
                   if n.kind == "fail" and n.error}
        for hit in node.catches:
            # A Parallel's Catch of the errors its branches' Fail states raise
            # is control flow (ASL207), not a rollback for a Task's failure.
            if not signals or not set(hit.errors) <= signals:
                return Route(caught=True, target=hit.next, graph=graph,
                             catcher=hit)
        if graph.parent is None:
            return Route(caught=False)
        node, graph = m.nodes[graph.parent]


def _all_nodes(g: Graph) -> Iterator[Node]:
    for n in g.nodes.values():
        yield n
        for b in n.branches:
            yield from _all_nodes(b)


@dataclass(slots=True)
class Handler:
    """What a Catch route runs: its tasks (first path) and how it can end."""

    tasks: list[str] = field(default_factory=list)
    ends: set[str] = field(default_factory=set)
    """succeed, fail, swallowed (a branch carries on), resume (back to forward
    work)."""
    end_spans: dict[str, Span] = field(default_factory=dict)


def walk_handler(m: Machine, graph: Graph, start: str) -> Handler:
    """Walk a Catch route: tasks along the first path, ends along every path."""
    h = Handler()
    forward = set(m.forward)

    def ends(g: Graph, n: str | None, seen: set[str], first: bool) -> None:
        while n is not None and n in g.nodes and n not in seen:
            seen.add(n)
            node = g.nodes[n]
            if node.kind in TASK_KINDS:
                if n in forward:
                    _end(h, "resume", node.span)
                    return
                if first:
                    h.tasks.append(n)
            elif node.kind == "parallel":
                for b in node.branches:
                    for t in _branch_tasks(b):
                        if first and t not in h.tasks:
                            h.tasks.append(t)
            elif node.kind == "succeed":
                _end(h, "succeed", node.span)
                return
            elif node.kind in ("fail", "trigger"):
                _end(h, "fail", node.span)
                return
            elif node.kind == "choice":
                targets = list(dict.fromkeys(
                    [*node.choices, *([node.default] if node.default else [])]))
                for i, t in enumerate(targets):
                    ends(g, t, set(seen), first and i == 0)
                if node.default is None:
                    _end(h, "fail", node.span)
                return
            if node.next is None:
                _end(h, "swallowed" if g.parent else "succeed", node.span)
                return
            n = node.next

    ends(graph, start, set(), True)
    return h


def _end(h: Handler, kind: str, span: Span) -> None:
    h.ends.add(kind)
    h.end_spans.setdefault(kind, span)


def _branch_tasks(g: Graph) -> Iterator[str]:
    for n in g.nodes.values():
        if n.kind in TASK_KINDS:
            yield n.name
        for b in n.branches:
            yield from _branch_tasks(b)


def implicit_errors(node: Node) -> list[str]:
    """Errors every such Task can raise, whatever its code does."""
    errors = [GENERIC]
    if _timeout(node) is not None:
        errors.append(TIMEOUT)
    resource = str(node.raw.get("Resource", ""))
    if ":lambda:" in resource or resource.startswith("arn:aws:lambda"):
        errors.extend(LAMBDA_ERRORS)
    return errors


def _timeout(node: Node) -> float | None:
    values: list[float] = []
    for key in ("TimeoutSeconds", "HeartbeatSeconds"):
        v = node.raw.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            values.append(float(v))
        elif v is not None or f"{key}Path" in node.raw:
            values.append(OPAQUE_SECONDS)
    return min(values) if values else None


def retry_policy(node: Node) -> RetryPolicy:
    """The step's retry policy: attempts bounded by the largest retrier (an
    over-approximation), non-retried errors fail at once (``FATAL``)."""
    retriers = node.retriers
    if not retriers:
        return RetryPolicy(max_attempts=1)
    gen = first_match(retriers, GENERIC)
    most = max(r.max_retries for r in retriers)
    first = gen or retriers[0]
    # MaxAttempts=FOREVER reads as "until it succeeds" (see FOREVER), on the
    # generic retrier or, as the largest retrier bounds the policy, on any.
    attempts: int | None = None if most >= FOREVER else 1 + most
    interval = first.interval
    return RetryPolicy(
        max_attempts=attempts,
        initial_interval=interval,
        backoff=max(1.0, first.backoff),
        max_interval=max(interval, first.max_delay or 100.0),
        jitter=1.0 if first.jitter else 0.0,
        retryable_errors=() if gen is not None else tuple(dict.fromkeys(
            e for r in retriers for e in r.errors)),
        span=first.span,
    )


def _annotated_seconds(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def participant(node: Node) -> str:
    """The service a Task calls: its Lambda function, else the AWS service."""
    ann = annotation(node).get("participant")
    if isinstance(ann, str) and ann:
        return ann
    resource = str(node.raw.get("Resource", "")) or "task"
    params = node.raw.get("Parameters") or node.raw.get("Arguments") or {}
    fn = params.get("FunctionName") if isinstance(params, dict) else None
    if resource.startswith("arn:aws:states:::lambda") and isinstance(fn, str):
        resource = fn
    if ":function:" in resource:
        return resource.split(":function:", 1)[1].split(":")[0] or resource
    if resource.startswith("arn:aws:states:::"):
        return resource[len("arn:aws:states:::"):].split(":")[0]
    return resource


def lower_paths(m: Machine, *, source_format: str = "asl") -> list[Saga]:
    """One saga per forward path (alternative)."""
    many = len(m.paths) > 1
    sagas: list[Saga] = []
    for i, p in enumerate(m.paths):
        primary = _lower_path(m, p, many, i)
        sagas.append(primary)
        sagas.extend(uncaught_variants(m, primary))
    return dedupe_names(sagas)


def uncaught_errors(m: Machine, task: str) -> tuple[tuple[str, ...], int | None]:
    """The implicit errors of ``task`` that no Catch (its own or an enclosing
    Parallel's) handles and no Retry retries forever, and how many attempts
    the Task gets before they propagate (the fewest among them)."""
    node = m.nodes[m.state_of(task)][0]
    errors: list[str] = []
    attempts: list[int] = []
    for error in implicit_errors(node):
        if route(m, task, error).caught:
            continue
        retrier = first_match(node.retriers, error)
        if retrier is not None and retrier.max_retries >= FOREVER:
            continue  # retried until it succeeds: it never propagates
        errors.append(error)
        attempts.append(1 + (retrier.max_retries if retrier else 0))
    return tuple(errors), (min(attempts) if attempts else None)


def uncaught_variants(m: Machine, primary: Saga) -> list[Saga]:
    """One alternative per Task of ``primary`` whose Catch misses an error it
    can raise (ASL201), in which that error propagates: the execution fails with
    the effects of completed steps in place and no rollback. A Task whose
    failure the primary already models as uncaught (an empty chain) adds none,
    so there are at most as many alternatives as compensatable/pivot steps."""
    out: list[Saga] = []
    for i, step in enumerate(primary.steps):
        if step.kind is StepKind.RETRIABLE or step.name in m.later_copies:
            # A retriable step never aborts (it ends STUCK instead); a later
            # Map iteration behaves as the first, which has its alternative.
            continue
        chain = primary.chain_for(i)
        if chain is None or not chain.steps:
            continue
        errors, attempts = uncaught_errors(m, step.name)
        if not errors:
            continue
        node = m.nodes[m.state_of(step.name)][0]
        span = node.catches[0].span if node.catches else step.span
        diag = Diagnostic(
            code="ASL215", severity=Severity.WARNING, span=span,
            message=f"alternative in which Task {step.name!r} raises "
            f"{' or '.join(errors)}, which no Catch handles: the execution fails "
            "there and nothing is compensated (here every abort of "
            f"{step.name!r}, failed or unknown, stands for that error)",
            help=f"add {errors[0]!r} (or States.ALL) to the Catch that starts "
            "the rollback")
        out.append(uncaught_variant(primary, step.name, errors, attempts, diag))
    return out


def _lower_path(m: Machine, path: Path, many: bool, index: int) -> Saga:
    d = Diags()
    mapping = m.mapping
    no_effect = {e.forward for e in mapping.entries if e.no_effect}
    placed = layout(path, lambda t: m.state_of(t) not in no_effect)
    steps: list[Step] = []
    for task, deps in placed:
        state = m.state_of(task)
        node = m.nodes[state][0]
        ann = annotation(node)
        kind = mapping.kind_of(state) or StepKind.COMPENSATABLE
        comp = mapping.compensation_of(state) if kind is StepKind.COMPENSATABLE \
            else None
        retry = retry_policy(node)
        if kind is StepKind.RETRIABLE and retry.max_attempts is not None:
            d.add("ASL214", f"retriable Task {task!r} retries at most "
                  f"{retry.max_attempts - 1} times", retry.span,
                  f"retry States.ALL with MaxAttempts {FOREVER} (the ASL maximum) "
                  "so it is retried until it succeeds")
        steps.append(Step(
            name=task, participant=participant(node),
            action=str(ann.get("action") or state), compensation=comp, kind=kind,
            depends_on=deps, retry=retry, timeout=_timeout(node),
            idempotent=bool(ann.get("idempotent", True)),
            compensation_needs_result=bool(ann.get("compensation_needs_result",
                                                   False)),
            # ASL has no budget across a Task's retries; the exporter's
            # annotation carries it.
            total_timeout=_annotated_seconds(ann.get("total_timeout")),
            empty_rollback=ann.get("empty_rollback") is True,
            anti_suspension=ann.get("anti_suspension") is True,
            span=node.span,
            field_spans=(("retry", retry.span),),
        ))
    names = [s.name for s in steps]
    index_of = {n: i for i, n in enumerate(names)}
    chains: list[CompensationChain] = []
    comp_tasks: dict[str, None] = {}
    for step in steps:
        if step.kind is StepKind.RETRIABLE:
            continue
        node = m.nodes[m.state_of(step.name)][0]
        chain = _chain(m, d, step, node=node, index_of=index_of, steps=steps,
                       comp_tasks=comp_tasks)
        chains.append(chain)
    _path_diagnostics(m, d, path, steps, index_of)
    policy = _policy(m, comp_tasks)
    name = alternative_name(m.name, path, many)
    if many and index == 0:
        d.add("ASL120", f"the machine has {len(m.paths)} paths through its Choice/"
              f"Parallel states; this saga is the first, {name!r}", m.top.span,
              "check every path: 'sagaproof check' on an imported file checks all "
              "alternatives through saga_models.importers.load_all", warning=True)
    saga = Saga(name=name, steps=tuple(steps), compensation_policy=policy,
                compensation_chains=tuple(chains),
                import_diagnostics=tuple(d.items), source_format="asl",
                span=m.top.span)
    problems = lowering_diagnostics(saga)
    if problems:
        raise InvalidDefinition(problems)
    return saga


def _chain(m: Machine, d: Diags, step: Step, *, node: Node, index_of: dict[str, int],
           steps: list[Step], comp_tasks: dict[str, None]) -> CompensationChain:
    gen = route(m, step.name, GENERIC)
    if not gen.caught:
        # The Catch names only specific errors: model the route its author
        # designed; the errors it misses are their own alternative (ASL201).
        gen = designed_route(m, step.name)
    gen_chain = _route_chain(m, d, step, gen, index_of=index_of, steps=steps,
                             comp_tasks=comp_tasks)
    span = gen.catcher.span if gen.catcher else node.span
    # Compensation Tasks the exporter guards (each undoes its step only if the
    # step took effect) make the chain conditional.
    unconditional = not _guarded(m, gen)
    chain = gen_chain
    if step.timeout is not None:
        tmo = route(m, step.name, TIMEOUT)
        if tmo.caught and gen.caught:
            tmo_chain = _route_chain(m, d, step, tmo, index_of=index_of,
                                         steps=steps, comp_tasks=comp_tasks)
            if tmo_chain == gen_chain:
                pass
            elif tmo_chain == (step.name, *gen_chain):
                # Timeout (the step may have taken effect) undoes it too, other
                # errors (it did not) do not: exactly a conditional chain.
                chain, unconditional = tmo_chain, False
            else:
                d.add("ASL209", f"Task {step.name!r} rolls back differently for "
                      f"{TIMEOUT} and for other errors; the model follows the "
                      f"{GENERIC} route", span, "route every error of a Task to "
                      "one rollback, or route States.Timeout to the same chain "
                      "plus the Task's own compensation", warning=True)
    return CompensationChain(trigger=step.name, steps=chain,
                             unconditional=unconditional, span=span)


def _guarded(m: Machine, r: Route) -> bool:
    """Whether every compensation Task on route ``r`` carries the exporter's
    ``if_took_effect`` annotation."""
    if not r.caught or r.graph is None or r.target is None:
        return False
    comps = [t for t in walk_handler(m, r.graph, r.target).tasks
             if m.mapping.forwards_of(t)]
    return bool(comps) and all(
        annotation(m.nodes[t][0]).get("if_took_effect") is True for t in comps)


def _route_chain(m: Machine, d: Diags, step: Step, r: Route, *,
                 index_of: dict[str, int], steps: list[Step],
                 comp_tasks: dict[str, None]) -> tuple[str, ...]:
    if not r.caught or r.graph is None or r.target is None:
        return ()
    h = walk_handler(m, r.graph, r.target)
    span = r.catcher.span if r.catcher else step.span
    if "succeed" in h.ends:
        d.add("ASL205", f"the Catch of {step.name!r} can end in Succeed (at "
              f"{h.end_spans['succeed']}): callers cannot tell this rollback from "
              "success", span, "end every Catch route in a Fail state (Error "
              "names the failure) after compensating")
    if "swallowed" in h.ends:
        d.add("ASL208", f"the Catch of {step.name!r} turns the error into data and "
              "its Parallel branch carries on; the model ends the saga there "
              "without rollback", span, "compensate, then fail, instead of "
              "continuing", warning=True)
    if "resume" in h.ends:
        d.add("ASL213", f"the Catch of {step.name!r} routes back into forward "
              "work; the model ends the saga there", span,
              "route the Catch to the rollback, then a Fail state", warning=True)
    # Steps that run only after the trigger cannot have started when it fails:
    # a compensation Task shared with one of them undoes the earlier step only.
    later: set[str] = set()
    for s in steps:
        if any(d == step.name or d in later for d in s.depends_on):
            later.add(s.name)
    out: list[str] = []
    for task in h.tasks:
        forwards = m.mapping.forwards_of(task)
        if not forwards:
            continue
        comp_tasks[task] = None
        undone = set(forwards)
        for f in sorted((f for f in index_of if m.state_of(f) in undone
                         and f not in later), key=lambda f: -index_of[f]):
            if steps[index_of[f]].compensation is not None and f not in out:
                out.append(f)
    return tuple(out)


def _policy(m: Machine, comp_tasks: dict[str, None]) -> CompensationPolicy:
    """Compensations are retried as their own Retry says; then (no Catch, or a
    Catch that leaves the chain) the execution fails with effects left: STUCK."""
    worst: int | None = None
    for task in comp_tasks:
        node = m.nodes[task][0]
        gen = first_match(node.retriers, GENERIC)
        attempts = None if gen is not None and gen.max_retries >= FOREVER else (
            1 + (gen.max_retries if gen else 0))
        if attempts is not None:
            worst = attempts if worst is None else min(worst, attempts)
    return CompensationPolicy(max_attempts=worst)


def _path_diagnostics(m: Machine, d: Diags, path: Path, steps: list[Step],
                      index_of: dict[str, int]) -> None:
    mapping = m.mapping
    ancestors: dict[str, set[str]] = {}
    for s in steps:
        anc: set[str] = set()
        for dep in s.depends_on:
            anc |= {dep} | ancestors.get(dep, set())
        ancestors[s.name] = anc
    for s in steps:
        node = m.nodes[m.state_of(s.name)][0]
        entry = mapping.entry(m.state_of(s.name))
        if s.kind is StepKind.COMPENSATABLE and s.compensation is None and \
                entry is not None and not entry.no_effect:
            hint = sorted(m.handlers, key=lambda h: -match_score(s.name, h))[:1]
            d.add("ASL210", f"forward Task {s.name!r} has no known compensation",
                  s.span, "name the Task that undoes it in a --compensations map "
                  f"(e.g. '{s.name}: {hint[0] if hint else '<Task>'}'), or "
                  f"'{s.name}: none' if it has no effect to undo")
        errors = implicit_errors(node)
        caught = [e for e in errors if route(m, s.name, e).caught]
        effects = [a for a in sorted(ancestors[s.name], key=index_of.__getitem__)]
        if not caught:
            if effects and s.kind is not StepKind.RETRIABLE:
                d.add("ASL202", f"Task {s.name!r} has no Catch: a failure ends the "
                      f"execution with {', '.join(map(repr, effects))} in place",
                      s.span, "add 'Catch: [{ErrorEquals: [States.ALL], Next: "
                      "<rollback>}]' that compensates the earlier steps")
        else:
            uncaught, _ = uncaught_errors(m, s.name)
            for e in uncaught:
                d.add("ASL201", f"the Catch of Task {s.name!r} misses {e}: "
                      "that error is uncaught and ends the execution"
                      + (f" with {', '.join(map(repr, effects))} in place"
                         if effects else ""),
                      node.catches[0].span if node.catches else s.span,
                      f"add {e!r} (or States.ALL) to a Catch's ErrorEquals")
    for comp in dict.fromkeys(e.compensation for e in mapping.entries
                              if e.compensation):
        node = m.nodes[comp][0]
        if not node.retriers:
            d.add("ASL203", f"compensation Task {comp!r} has no Retry: one "
                  "transient failure abandons the rollback", node.span,
                  "add 'Retry: [{ErrorEquals: [States.ALL], MaxAttempts: ...}]'")
        if not route(m, comp, GENERIC).caught:  # its own or its Parallel/Map's
            d.add("ASL204", f"compensation Task {comp!r} has no Catch: when its "
                  "retries run out the execution fails and the rest of the "
                  "rollback never runs", node.span,
                  "add a Catch that records the failure and continues to a Fail "
                  "state naming it, so an operator can finish the rollback")
    for h in mapping.handlers:
        d.add("ASL211", f"handler Task {h!r} undoes no forward Task", m.nodes[h][0]
              .span, "if it compensates something, map it in --compensations",
              warning=True)
    if path.end == "fail" and steps:
        end = m.nodes.get(path.end_state)
        span = end[0].span if end else m.top.span
        d.add("ASL206", f"this path ends in {path.end_state!r} (a failure reached "
              "without any Task failing) with "
              + ", ".join(repr(s.name) for s in steps) + " in place and no rollback",
              span, "compensate the completed steps before the Fail state")
    for item in path.items:
        if not isinstance(item, str):
            raw = m.nodes[item.name][0].raw
            tolerated = [k for k in raw if k.startswith("ToleratedFailure")]
            if raw.get("Type") == "Map" and tolerated:
                d.add("ASL217", f"Map {item.name!r} sets {tolerated[0]}: the model "
                      "fails the Map at the first failed iteration, so runs where "
                      "it tolerates failures (and carries on) are not checked",
                      m.nodes[item.name][0].span, "check the tolerated case as "
                      "its own saga, or compensate failed items inside the "
                      "iteration", warning=True)
            for b in item.branches:
                if b.end == "fail":
                    d.add("ASL207", f"Parallel {item.name!r}: branch ending in "
                          f"{b.end_state!r} signals with an error (errors used "
                          "as control flow)", m.nodes[item.name][0].span,
                          "return a result and decide with a Choice after the "
                          "Parallel", warning=True)


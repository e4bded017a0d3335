"""SpiffWorkflow as the oracle of the BPMN import (like moto for ASL).

:func:`processes` generates BPMN processes of the constructs both sides run:
service tasks, exclusive split and join gateways, error boundary events (by
code or catch-all) and error end events. :func:`run_spiff` executes one with
SpiffWorkflow, injecting a BPMN error into a service task where Hypothesis
says; :func:`replay` walks the same run through the model (the imported graph
semantics) and says where it disagrees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.specs.defaults import ServiceTask
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import (
    ErrorEventDefinition,
)
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.util.task import TaskState

from saga_models.importers import graph_semantics as gs
from saga_models.importers._bpmn import ANY_ERROR, parse_bpmn

from .bpmn_build import Process

OTHER = "OTHER"
"""The code Spiff is given for the model's ANY_ERROR (no catch names it)."""


class _InjectedServiceTask(ServiceTask):  # type: ignore[misc]
    """A service task the test completes or fails by hand (Spiff's own runs
    a service call the test has no use for)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manual = True

    def _run_hook(self, task: Any) -> bool:
        return True


class _Parser(BpmnParser):  # type: ignore[misc]
    OVERRIDE_PARSER_CLASSES = {  # noqa: RUF012 (Spiff's extension point)
        full_tag("serviceTask"): (TaskParser, _InjectedServiceTask)}


@dataclass
class Generated:
    """A generated process, its gateway data and the codes each task may
    throw (what its boundary event catches)."""

    process: Process
    data: dict[str, int]
    codes: dict[str, list[str]]


@st.composite
def processes(draw: st.DrawFn) -> Generated:
    """A process: a chain of blocks, each a service task (maybe with an error
    boundary event routed to an end or an error end event) or an exclusive
    split into two short branches joined again (a branch may instead end in
    an error end event)."""
    p = Process(pid="gen").start()
    data: dict[str, int] = {}
    codes: dict[str, list[str]] = {}
    n = [0]

    def fresh(prefix: str) -> str:
        n[0] += 1
        return f"{prefix}{n[0]}"

    def task() -> str:
        t = fresh("T")
        p.task(t)
        catch = draw(st.sampled_from([None, None, "E1", "E2", "*"]))
        codes[t] = []
        if catch is not None:
            b = fresh("B")
            p.boundary_error(b, t, None if catch == "*" else catch)
            codes[t] = [OTHER if catch == "*" else catch]
            route = draw(st.sampled_from(["end", "error_end", "task_end"]))
            if route == "end":
                e = fresh("End")
                p.end(e).flow(b, e)
            elif route == "error_end":
                e = fresh("Err")
                p.end_error(e, draw(st.sampled_from(["E1", "X"]))).flow(b, e)
            else:
                h, e = fresh("H"), fresh("End")
                p.task(h).end(e).flow(b, h, e)
                codes[h] = []
        return t

    prev = "start"
    for i in range(draw(st.integers(1, 4))):
        # The first block is a task: a process with none checks nothing.
        if i == 0 or draw(st.booleans()):
            t = task()
            p.flow(prev, t)
            prev = t
            continue
        g, j = fresh("G"), fresh("J")
        p.gateway(g).gateway(j)
        p.flow(prev, g)
        var = f"v{g}"
        data[var] = draw(st.integers(0, 1))
        ends_in_error = draw(st.sampled_from([None, 0, 1]))
        for k in (0, 1):
            if ends_in_error == k:
                e = fresh("Err")
                p.end_error(e, draw(st.sampled_from(["E1", "X"])))
                p.branch(g, e, f"{var} == {k}")
                continue
            chain = [task() for _ in range(draw(st.integers(0, 2)))]
            if not chain:
                p.branch(g, j, f"{var} == {k}")
                continue
            p.branch(g, chain[0], f"{var} == {k}")
            p.flow(*chain, j)
        prev = j
    p.end("ok").flow(prev, "ok")
    return Generated(process=p, data=data, codes=codes)


@dataclass
class SpiffRun:
    """What SpiffWorkflow did: the elements completed in order (a failed
    task as ``("error", id, code)``), and how the process ended."""

    steps: list[tuple[str, ...]]
    completed: set[str]
    """Service tasks completed (their effects are in place)."""
    uncaught: str | None
    """The code of an error no event caught (the process ended with it)."""


def run_spiff(gen: Generated, draw: Callable[[Any], Any]) -> SpiffRun:
    """Execute ``gen`` with SpiffWorkflow; each service task attempt succeeds
    or throws one of the codes its boundary event catches, as drawn."""
    parser = _Parser()
    xml = etree.fromstring(gen.process.xml().encode())
    parser.add_bpmn_xml(etree.ElementTree(xml), filename="gen.bpmn")
    wf = BpmnWorkflow(parser.get_spec(gen.process.pid))
    wf.data.update(gen.data)
    for t in wf.get_tasks():
        t.data.update(gen.data)
    failed: dict[str, str] = {}
    wf.do_engine_steps()
    guard = 0
    while not wf.completed:
        guard += 1
        ready = [t for t in wf.get_tasks(state=TaskState.READY)
                 if t.task_spec.manual]
        if not ready or guard > 100:
            raise AssertionError("SpiffWorkflow stopped with no task to run")
        task = ready[0]
        ident = task.task_spec.bpmn_id
        outcome = draw(st.sampled_from(["ok", *gen.codes.get(ident, [])]))
        if outcome == "ok":
            task.run()
        else:
            failed[ident] = outcome
            wf.catch(BpmnEvent(ErrorEventDefinition(outcome, code=outcome),
                               target=task.workflow))
        wf.do_engine_steps()
    uncaught = [e.event_definition.code for e in wf.get_events()
                if isinstance(e.event_definition, ErrorEventDefinition)]
    # The run is the chain of parents up from the deepest completed element
    # (timestamps can tie: several tasks complete in one engine step).
    last = max((t for t in wf.get_tasks(state=TaskState.COMPLETED)
                if t.task_spec.bpmn_id), key=_depth)
    path: list[Any] = []
    node = last
    while node is not None:
        if node.state == TaskState.COMPLETED and node.task_spec.bpmn_id:
            path.append(node)
        node = node.parent
    steps: list[tuple[str, ...]] = []
    completed: set[str] = set()
    for t in reversed(path):
        ident = t.task_spec.bpmn_id
        if ident in gen.codes:
            steps.append(("ok", ident))
            completed.add(ident)
        else:
            steps.append(("done", ident))
    # A failed task is not on the path: its boundary event is; put the
    # error just before it.
    out: list[tuple[str, ...]] = []
    for step in steps:
        owner = _attached(gen, step[1])
        if owner is not None and owner in failed:
            out.append(("error", owner, failed[owner]))
        out.append(step)
    return SpiffRun(steps=out, completed=completed,
                    uncaught=uncaught[0] if uncaught else None)


def _depth(task: Any) -> int:
    depth = 0
    while task.parent is not None:
        task, depth = task.parent, depth + 1
    return depth


def _attached(gen: Generated, ident: str) -> str | None:
    """The task a boundary event ``ident`` is attached to."""
    for line in gen.process.lines:
        if f'<bpmn:boundaryEvent id="{ident}"' in line:
            return line.split('attachedToRef="')[1].split('"')[0]
    return None


def replay(gen: Generated, run: SpiffRun) -> str | None:
    """Walk ``run`` through the model; None if the model allows it with the
    same end status and the same effects in place, else the disagreement."""
    im = parse_bpmn(gen.process.xml().encode(), file="gen.bpmn")
    t = gs.tables(im)
    s = gs.initial_state(t)
    todo = list(run.steps)
    top = t.regions[0]
    while not gs.is_terminal(t, s):
        node = top.node(s[top.base] - gs.AT)
        events = gs.enabled(t, s)
        if not todo:
            return f"Spiff stopped before the model at {node.name!r}"
        step = todo[0]
        if node.kind == "task":
            if step[1] != node.name or step[0] not in ("ok", "error"):
                return f"model at task {node.name!r}, Spiff at {step}"
            todo.pop(0)
            if step[0] == "ok":
                pick = [e for e in events if e.kind == "ok"]
            else:
                want = ANY_ERROR if step[2] == OTHER else step[2]
                pick = [e for e in events if e.kind == "error"
                        and t.errors[e.arg] == want]
        else:
            if step != ("done", node.name):
                return f"model at {node.name!r}, Spiff at {step}"
            todo.pop(0)
            if node.kind == "choice":
                target = todo[0][1] if todo else None
                pick = [e for e in events if e.kind == "choose"
                        and gs._targets(node)[e.arg] == target]
            else:
                pick = events
        if len(pick) != 1:
            return f"at {node.name!r} the model allows {len(pick)} events " \
                f"for Spiff's {step}"
        s = gs.apply(t, s, pick[0])
    if todo:
        return f"the model ended before Spiff's {todo[0]}"
    status = gs.STATUS_NAMES[s[0]]
    expected = "FAILED" if run.uncaught else "SUCCEEDED"
    if status != expected:
        return f"model ends {status}, Spiff {expected}"
    if run.uncaught and t.errors[s[1] // 2 - 1] != run.uncaught:
        return f"model fails with {t.errors[s[1] // 2 - 1]}, Spiff " \
            f"with {run.uncaught}"
    held = set(gs.held(t, s))
    if held != run.completed:
        return f"effects in place: model {sorted(held)}, Spiff " \
            f"{sorted(run.completed)}"
    return None

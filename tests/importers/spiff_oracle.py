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
from dataclasses import dataclass, field
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
    gateways: set[str]
    """Exclusive gateways (splits and joins)."""
    subs: dict[str, set[str]] = field(default_factory=dict)
    """Sub-process (or transaction) -> the elements inside it."""


@st.composite
def processes(draw: st.DrawFn) -> Generated:
    """A process: a chain of blocks, each a service task (maybe with an error
    boundary event routed to an end or an error end event), an exclusive
    split into two short branches joined again (a branch may instead end in
    an error end event), or a parallel block of plain tasks."""
    p = Process(pid="gen").start()
    data: dict[str, int] = {}
    codes: dict[str, list[str]] = {}
    subs: dict[str, set[str]] = {}
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
        block = "task" if i == 0 else draw(st.sampled_from(
            ["task", "xor", "par", "sub", "tx"]))
        if block == "task":
            t = task()
            p.flow(prev, t)
            prev = t
            continue
        if block in ("sub", "tx"):
            # A sub-process whose error boundary event catches E1 from its
            # tasks, or a transaction that a cancel end event may cancel.
            sub = fresh("S")
            inner = Process(pid=sub)
            chain = [fresh("T") for _ in range(draw(st.integers(1, 2)))]
            for t in chain:
                inner.task(t)
                codes[t] = ["E1"] if block == "sub" else []
            if block == "tx":
                x, done, cancel = fresh("G"), fresh("End"), fresh("Cancel")
                inner.gateway(x).end(done).cancel_end(cancel)
                inner.flow(f"{sub}_start", *chain, x)
                data[f"v{x}"] = draw(st.integers(0, 1))
                inner.branch(x, done, f"v{x} == 0")
                inner.branch(x, cancel, f"v{x} == 1")
            else:
                done = fresh("End")
                inner.end(done).flow(f"{sub}_start", *chain, done)
            p.subprocess(sub, inner, transaction=block == "tx")
            b, e = fresh("B"), fresh("End")
            if block == "tx":
                p.boundary_cancel(b, sub)
            else:
                p.boundary_error(b, sub, "E1")
            p.end(e).flow(b, e).flow(prev, sub)
            subs[sub] = set(chain) | {f"{sub}_start", done}
            prev = sub
            continue
        if block == "par":
            # Branches of plain tasks: SpiffWorkflow runs them interleaved,
            # in the order Hypothesis picks.
            f, j = fresh("F"), fresh("P")
            p.gateway(f, "parallel").gateway(j, "parallel").flow(prev, f)
            for _ in range(draw(st.integers(2, 3))):
                chain = [fresh("T") for _ in range(draw(st.integers(1, 2)))]
                for t in chain:
                    p.task(t)
                    codes[t] = []
                p.flow(f, *chain, j)
            prev = j
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
    gateways = {line.split('id="')[1].split('"')[0] for line in p.lines
                if "<bpmn:exclusiveGateway" in line}
    return Generated(process=p, data=data, codes=codes, gateways=gateways,
                     subs=subs)


@dataclass
class SpiffRun:
    """What SpiffWorkflow did: the service task outcomes in the order it ran
    them, the elements it reached, and how the process ended."""

    decisions: list[tuple[str, ...]]
    """``("ok", task)`` or ``("error", task, code)``, in run order."""
    reached: set[str]
    """Every element completed, and every task that threw."""
    completed: set[str]
    """Service tasks completed (their effects are in place)."""
    taken: dict[str, str]
    """Exclusive gateway -> the element its taken flow leads to."""
    uncaught: str | None
    """The code of an error no event caught (the process ended with it)."""


def run_spiff(gen: Generated, choose: Callable[[list[Any]], Any]) -> SpiffRun:
    """Execute ``gen`` with SpiffWorkflow: ``choose`` (Hypothesis) picks
    which ready service task runs next, and whether it succeeds or throws
    one of the codes its boundary event catches."""
    parser = _Parser()
    xml = etree.fromstring(gen.process.xml().encode())
    parser.add_bpmn_xml(etree.ElementTree(xml), filename="gen.bpmn")
    wf = BpmnWorkflow(parser.get_spec(gen.process.pid),
                      parser.get_subprocess_specs(gen.process.pid))
    for t in wf.get_tasks():
        t.data.update(gen.data)
    decisions: list[tuple[str, ...]] = []
    wf.do_engine_steps()
    while not wf.completed:
        ready = sorted((t for t in wf.get_tasks(state=TaskState.READY)
                        if t.task_spec.manual),
                       key=lambda t: str(t.task_spec.bpmn_id))
        if not ready or len(decisions) > 100:
            raise AssertionError("SpiffWorkflow stopped with no task to run")
        task = choose(ready)
        ident = str(task.task_spec.bpmn_id)
        outcome = choose(["ok", *gen.codes.get(ident, [])])
        if outcome == "ok":
            decisions.append(("ok", ident))
            task.run()
        else:
            decisions.append(("error", ident, outcome))
            wf.catch(BpmnEvent(ErrorEventDefinition(outcome, code=outcome),
                               target=task.workflow))
        wf.do_engine_steps()
    uncaught = [e.event_definition.code for e in wf.get_events()
                if isinstance(e.event_definition, ErrorEventDefinition)]
    reached = {str(t.task_spec.bpmn_id)
               for t in wf.get_tasks(state=TaskState.COMPLETED)
               if t.task_spec.bpmn_id}
    completed = {t for t in reached if t in gen.codes}
    # A sub-process that ran is visited even when its boundary event
    # cancelled it.
    reached |= {sub for sub, inner in gen.subs.items() if inner & reached}
    # A task with a boundary event sits behind Spiff's "<task>.Boundary
    # EventSplit" (no bpmn id of its own).
    taken = {str(t.task_spec.bpmn_id): str(c.task_spec.bpmn_id
                                            or c.task_spec.name.split(".")[0])
             for t in wf.get_tasks(state=TaskState.COMPLETED)
             if t.task_spec.bpmn_id in gen.gateways
             for c in t.children if c.state != TaskState.CANCELLED}
    reached |= {d[1] for d in decisions if d[0] == "error"}
    return SpiffRun(decisions=decisions, reached=reached, completed=completed,
                    taken=taken, uncaught=uncaught[0] if uncaught else None)


def replay(gen: Generated, run: SpiffRun) -> str | None:
    """Walk ``run`` through the model; None if the model allows it (every
    task outcome in Spiff's order, every gateway to the element Spiff
    reached), visits the same elements and ends the same way with the same
    effects in place; else the disagreement."""
    im = parse_bpmn(gen.process.xml().encode(), file="gen.bpmn")
    t = gs.tables(im)
    s = gs.initial_state(t)
    todo = list(run.decisions)
    visited: set[str] = set()

    def name(ev: gs.Event) -> str:
        return t.regions[ev.region].node(ev.node).name

    while not gs.is_terminal(t, s):
        events = gs.enabled(t, s)
        engine = [e for e in events if e.kind not in ("ok", "error", "wait")
                  and (e.kind != "choose" or run.taken.get(name(e)) ==
                       gs._targets(t.regions[e.region].node(e.node))[e.arg])]
        if engine:
            pick = engine[0]
        else:
            if not todo:
                return "Spiff ran no more tasks; the model waits at " + \
                    ", ".join(sorted({name(e) for e in events}))
            step = todo.pop(0)
            want = (ANY_ERROR if step[2] == OTHER else step[2]) \
                if step[0] == "error" else None
            match = [e for e in events if e.kind == step[0]
                     and name(e) == step[1]
                     and (want is None or t.errors[e.arg] == want)]
            if not match:
                return f"the model cannot take Spiff's {step}"
            pick = match[0]
        visited.add(name(pick))
        s = gs.apply(t, s, pick)
    if todo:
        return f"the model ended before Spiff's {todo[0]}"
    visited = {v for v in visited if " (" not in v}
    if visited != run.reached:
        return f"elements: model {sorted(visited)}, Spiff {sorted(run.reached)}"
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

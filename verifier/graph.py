"""Drawings: a saga's steps, and the state graph the checker explores.

Mermaid and DOT are written as text: both are a few quoted lines, and the
graphviz Python package would only wrap string building (rendering an image is
left to the reader's own tools: ``dot -Tsvg``, a Mermaid viewer, Jupyter).
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import networkx as nx

from saga_models import FaultModel, Saga, StepKind

from ._budget import deadline_after
from ._check import compile_model

_SHAPE = {StepKind.COMPENSATABLE: "box", StepKind.PIVOT: "diamond",
          StepKind.RETRIABLE: "box"}


def _q(text: str) -> str:
    return json.dumps(text)


def _mq(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def saga_mermaid(saga: Saga) -> str:
    """A Mermaid flowchart of the steps; compensations as dotted back edges."""
    lines = ["flowchart LR"]
    for i, s in enumerate(saga.steps):
        label = f"{s.name}<br/>{s.participant}.{s.action}"
        if s.kind is StepKind.PIVOT:
            lines.append(f"  s{i}{{{{{_mq(label + ' (pivot)')}}}}}")
        elif s.kind is StepKind.RETRIABLE:
            lines.append(f"  s{i}([{_mq(label + ' (retriable)')}])")
        else:
            lines.append(f"  s{i}[{_mq(label)}]")
    for i in range(len(saga.steps)):
        for d in saga.deps(i):
            lines.append(f"  s{d} --> s{i}")
    for i, s in enumerate(saga.steps):
        if s.compensation:
            lines.append(f"  c{i}[/{_mq(s.participant + '.' + s.compensation)}/]")
            lines.append(f"  s{i} -. on abort .-> c{i}")
    return "\n".join(lines) + "\n"


def saga_dot(saga: Saga) -> str:
    """A Graphviz digraph of the steps; compensations as dashed nodes."""
    lines = [f"digraph {_q(saga.name)} {{", "  rankdir=LR;"]
    for i, s in enumerate(saga.steps):
        label = f"{s.name}\\n{s.participant}.{s.action}"
        if s.kind is not StepKind.COMPENSATABLE:
            label += f"\\n({s.kind.value})"
        lines.append(f"  s{i} [label={_q(label).replace(chr(92) * 2, chr(92))}, "
                     f"shape={_SHAPE[s.kind]}];")
        if s.compensation:
            lines.append(f"  c{i} [label={_q(s.participant + '.' + s.compensation)},"
                         " style=dashed];")
            lines.append(f"  s{i} -> c{i} [style=dashed, label=\"on abort\"];")
    for i in range(len(saga.steps)):
        for d in saga.deps(i):
            lines.append(f"  s{d} -> s{i};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def state_graph(
    definition: Any, *, faults: FaultModel = FaultModel(), max_states: int = 2000,
    timeout: float | None = None,
) -> nx.DiGraph:
    """The explored state graph (breadth-first, at most ``max_states`` nodes,
    for at most ``timeout`` seconds).

    Nodes carry ``label`` (a one-line summary) and ``terminal``; edges carry
    ``label`` (the event). The graph is marked ``truncated`` when cut short,
    with ``cut_by`` naming the budget (``--max-states`` or ``--timeout``).
    """
    deadline = deadline_after(timeout)
    _, ts = compile_model(definition, faults)
    graph = nx.DiGraph(truncated=False, cut_by="")
    init = ts.initial()
    ids: dict[tuple[int, ...], int] = {}
    queue: deque[tuple[int, ...]] = deque()
    for s in init:
        ids[s] = len(ids)
        queue.append(s)
    while queue:
        if deadline is not None and deadline.expired():
            # Label the frontier (edges already point at it), expand no more.
            graph.graph.update(truncated=True, cut_by="--timeout")
            for s in queue:
                graph.add_node(ids[s], label=_summary(ts.state_json(s)),
                               terminal=ts.is_terminal(s), initial=s in init)
            break
        s = queue.popleft()
        graph.add_node(ids[s], label=_summary(ts.state_json(s)),
                       terminal=ts.is_terminal(s), initial=s in init)
        for label, nxt in ts.successors(s):
            if nxt not in ids:
                if len(ids) >= max_states:
                    graph.graph.update(truncated=True, cut_by="--max-states")
                    continue
                ids[nxt] = len(ids)
                queue.append(nxt)
            graph.add_edge(ids[s], ids[nxt], label=ts.label_text(label))
    return graph


def _summary(state: dict[str, object]) -> str:
    steps = state.get("steps")
    if isinstance(steps, dict):
        parts = [str(state.get("phase", ""))]
        if state.get("orchestrator_down"):
            parts.append("DOWN")
        for name, info in steps.items():
            if isinstance(info, dict) and (info.get("status") != "PENDING"
                                           or info.get("compensation") != "NONE"):
                comp = info.get("compensation")
                parts.append(f"{name}:{info.get('status')}"
                             + (f"/{comp}" if comp != "NONE" else ""))
        return " ".join(parts)
    services = state.get("services")
    if isinstance(services, dict):
        text = " ".join(f"{k}={v.get('state') if isinstance(v, dict) else v}"
                        for k, v in services.items())
        bus = state.get("bus")
        if isinstance(bus, list) and bus:
            text += " | bus: " + ", ".join(map(str, bus))
        return text
    return json.dumps(state, sort_keys=True)[:120]


def state_graph_mermaid(graph: nx.DiGraph) -> str:
    """Mermaid text for :func:`state_graph`'s result."""
    lines = ["stateDiagram-v2"]
    for n, data in graph.nodes(data=True):
        lines.append(f"  q{n} : {data['label']}")
        if data.get("initial"):
            lines.append(f"  [*] --> q{n}")
        if data.get("terminal"):
            lines.append(f"  q{n} --> [*]")
    for u, v, data in graph.edges(data=True):
        lines.append(f"  q{u} --> q{v} : {data['label'].replace(':', ' -')}")
    if graph.graph.get("truncated"):
        lines.append("  note right of q0 : truncated")
    return "\n".join(lines) + "\n"


def state_graph_dot(graph: nx.DiGraph) -> str:
    """DOT text for :func:`state_graph`'s result."""
    lines = ["digraph states {", "  node [shape=box, fontsize=10];"]
    for n, data in graph.nodes(data=True):
        extra = ", peripheries=2" if data.get("terminal") else ""
        extra += ", style=bold" if data.get("initial") else ""
        lines.append(f"  q{n} [label={_q(data['label'])}{extra}];")
    for u, v, data in graph.edges(data=True):
        lines.append(f"  q{u} -> q{v} [label={_q(data['label'])}];")
    if graph.graph.get("truncated"):
        lines.append('  truncated [label="(truncated)", shape=plaintext];')
    lines.append("}")
    return "\n".join(lines) + "\n"

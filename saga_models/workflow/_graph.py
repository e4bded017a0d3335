"""Drawings of a workflow: services as subgraphs, transitions labelled
``event / emits``. Mermaid for Markdown and notebooks, DOT for Graphviz."""

from __future__ import annotations

import re

from ._ir import Transition, Workflow


def _label(t: Transition, branch: int) -> str:
    b = t.branches[branch]
    trigger = t.on if t.on is not None else f"after {t.after:g}s"
    if t.guard is not None:
        trigger += f" [{t.guard.text}]"
    out = trigger
    if b.emit:
        out += " / " + ", ".join(b.emit)
    if b.add:
        out += " " + " ".join(f"{c}{v:+d}" for c, v in b.add)
    return out


def _id(*parts: str) -> str:
    return "_".join(re.sub(r"\W", "_", p) for p in parts)


def to_mermaid(wf: Workflow) -> str:
    """A Mermaid flowchart: one subgraph per service.

    >>> from saga_models.workflow import WorkflowBuilder
    >>> wf = (WorkflowBuilder("w").start("go").service("a", initial="X",
    ...       final=["Y"]).on("X", "go", to="Y").outcome(a="Y").build())
    >>> print(to_mermaid(wf))
    flowchart LR
      start(("start: go"))
      subgraph a["a"]
        a_X(["X"])
        a_Y((("Y")))
        a_X -->|"go"| a_Y
      end
      start -.-> a_X
    """
    lines = ["flowchart LR",
             f'  start(("start: {", ".join(wf.start)}"))']
    for s in wf.services:
        lines.append(f'  subgraph {_id(s.name)}["{s.name}"]')
        for st in s.states:
            shape = f'((("{st}")))' if st in s.final else f'(["{st}"])'
            lines.append(f"    {_id(s.name, st)}{shape}")
        for t in s.transitions:
            for i, b in enumerate(t.branches):
                arrow = "-.->" if t.is_timer else "-->"
                label = _label(t, i).replace('"', "'")
                lines.append(f'    {_id(s.name, t.source)} {arrow}|"{label}"| '
                             f"{_id(s.name, b.to)}")
        lines.append("  end")
    for s in wf.services:
        lines.append(f"  start -.-> {_id(s.name, s.initial)}")
    return "\n".join(lines)


def to_dot(wf: Workflow) -> str:
    """A Graphviz digraph: one cluster per service."""
    q = _quote
    lines = [f"digraph {q(wf.name)} {{", "  rankdir=LR;",
             "  node [shape=box, style=rounded];",
             f"  start [shape=point, xlabel={q('start: ' + ', '.join(wf.start))}];"]
    for s in wf.services:
        lines.append(f"  subgraph {q('cluster_' + s.name)} {{")
        lines.append(f"    label={q(s.name)};")
        for st in s.states:
            shape = ", peripheries=2" if st in s.final else ""
            lines.append(f"    {q(s.name + '.' + st)} [label={q(st)}{shape}];")
        for t in s.transitions:
            for i, b in enumerate(t.branches):
                style = ", style=dashed" if t.is_timer else ""
                lines.append(f"    {q(s.name + '.' + t.source)} -> "
                             f"{q(s.name + '.' + b.to)} [label={q(_label(t, i))}"
                             f"{style}];")
        lines.append("  }")
        lines.append(f"  start -> {q(s.name + '.' + s.initial)} [style=dotted];")
    lines.append("}")
    return "\n".join(lines)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

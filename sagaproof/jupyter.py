"""Rich display in Jupyter for definitions, check results, counterexamples
and state graphs.

Wrap a value with :func:`show` (or build a :class:`Graph`) and let Jupyter
render it: each display object has ``_repr_html_`` and ``_repr_markdown_``
(and ``_repr_svg_`` for drawings), so the same object also reads well in a
plain-text console through ``str``.

>>> from saga_models import SagaBuilder
>>> saga = (SagaBuilder("t").step("a", participant="p", action="x",
...         compensation="undo").build())
>>> "<table" in show(saga)._repr_html_()
True
>>> Graph(saga).svg().startswith("<svg")
True

Drawings use Graphviz when its ``dot`` program and its Python package are both
installed and a small pure-Python layered layout otherwise, so notebooks render
on a bare CI runner. When Graphviz is broken (``dot`` on PATH without the Python
package, or a ``dot`` that fails), the drawing falls back to the pure-Python
layout and says why in one line under it.
"""

from __future__ import annotations

import html
import json
import shutil
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from saga_models import FaultModel, Saga
from saga_models.workflow import Workflow
from verifier import CheckResult, Counterexample, PropertyResult, Verdict
from verifier.render import counterexample_text

__all__ = ["CheckView", "CounterexampleView", "DefinitionView", "Graph", "show"]

_VERDICT_COLOUR = {Verdict.HOLDS: "#1a7f37", Verdict.VIOLATED: "#cf222e",
                   Verdict.UNKNOWN: "#9a6700"}
_PHASE_COLOUR = {"COMPLETED": "#1a7f37", "COMPENSATED": "#0969da",
                 "FAILED": "#6e7781", "STUCK": "#cf222e"}
_HIGHLIGHT = "#ffebe9"
_E = html.escape


def show(value: Any) -> Any:
    """The display object for ``value``: a definition, a check result, a
    property result or a counterexample (anything else comes back as is)."""
    if isinstance(value, (Saga, Workflow)):
        return DefinitionView(value)
    if isinstance(value, CheckResult):
        return CheckView(value)
    if isinstance(value, PropertyResult):
        return CheckView(CheckResult(definition=value.property, source="",
                                     results=(value,)))
    if isinstance(value, Counterexample):
        return CounterexampleView(value)
    return value


# --- definitions ---------------------------------------------------------------
def _duration(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class DefinitionView:
    """A saga's steps (or a workflow's services) as a table and a drawing."""

    definition: Saga | Workflow

    def rows(self) -> list[dict[str, str]]:
        """The table, one mapping per row."""
        d = self.definition
        if isinstance(d, Saga):
            return [{
                "step": s.name, "kind": s.kind.value,
                "action": f"{s.participant}.{s.action}",
                "compensation": (f"{s.participant}.{s.compensation}"
                                 if s.compensation else ""),
                "depends on": ", ".join(s.depends_on),
                "attempts": ("forever" if s.retry.max_attempts is None
                             else str(s.retry.max_attempts)),
                "timeout": _duration(s.timeout),
                "idempotent": "yes" if s.idempotent else "NO",
            } for s in d.steps]
        rows = []
        for svc in d.services:
            for t in svc.transitions:
                trigger = t.on if t.on is not None else f"after {t.after:g}s"
                targets = "; ".join(
                    f"{b.to or t.source}" + (f" emit {', '.join(b.emit)}"
                                                 if b.emit else "")
                    for b in t.branches)
                rows.append({"service": svc.name, "from": t.source, "on": trigger,
                             "to / emit": targets})
        return rows

    def _title(self) -> str:
        d = self.definition
        kind = "saga" if isinstance(d, Saga) else "workflow"
        return f"{kind} {d.name!r}"

    def _repr_markdown_(self) -> str:
        rows = self.rows()
        if not rows:
            return f"**{self._title()}** (empty)"
        head = list(rows[0])
        lines = [f"**{self._title()}**", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r[h] for h in head) + " |" for r in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return (f"<div><b>{_E(self._title())}</b>{_table(self.rows())}"
                f"{self._repr_svg_()}</div>")

    def _repr_svg_(self) -> str:
        d = self.definition
        if isinstance(d, Saga):
            nodes = [(s.name, f"{s.name}\n{s.kind.value}") for s in d.steps]
            edges = [(dep, s.name, "") for s in d.steps for dep in s.depends_on]
            colours = {s.name: ("#ddf4ff" if s.compensation else "#fff8c5")
                       for s in d.steps}
        else:
            nodes, edges, colours = [], [], {}
            for svc in d.services:
                for st_name in svc.states:
                    nodes.append((f"{svc.name}.{st_name}", f"{svc.name}\n{st_name}"))
                    if st_name in svc.final:
                        colours[f"{svc.name}.{st_name}"] = "#dafbe1"
                for t in svc.transitions:
                    for b in t.branches:
                        edges.append((f"{svc.name}.{t.source}",
                                      f"{svc.name}.{b.to or t.source}",
                                      t.on or "timer"))
        return _draw(nodes, edges, colours=colours)

    def __str__(self) -> str:
        return self._repr_markdown_()

    def __repr__(self) -> str:
        return f"<DefinitionView of {self._title()}>"


# --- check results -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CheckView:
    """A check result: one row per property, then each counterexample."""

    result: CheckResult

    def _repr_html_(self) -> str:
        r = self.result
        colour = _VERDICT_COLOUR[r.verdict]
        parts = [f"<div><b>{_E(r.kind)} {_E(r.definition)!s}</b>: "
                 f"<b style='color:{colour}'>{r.verdict.value.upper()}</b>",
                 "<table><tr><th>property</th><th>verdict</th><th>states</th>"
                 "<th>seconds</th><th>why</th></tr>"]
        for p in r.results:
            parts.append(
                f"<tr><td>{_E(p.property)}</td><td style='color:"
                f"{_VERDICT_COLOUR[p.verdict]}'><b>{p.verdict.value}</b></td>"
                f"<td>{p.stats.states:,}</td><td>{p.stats.seconds:.2f}</td>"
                f"<td>{_E(p.reason)}</td></tr>")
        parts.append("</table>")
        if r.results:
            parts.append(f"<small>faults: {_E(r.results[0].fault_model)}</small>")
        for p in r.results:
            if p.counterexample is not None:
                parts.append(f"<h4>{_E(p.property)}: counterexample</h4>")
                parts.append(CounterexampleView(p.counterexample)._repr_html_())
        parts.append("</div>")
        return "".join(parts)

    def _repr_markdown_(self) -> str:
        r = self.result
        lines = [f"**{r.kind} {r.definition}: {r.verdict.value.upper()}**", "",
                 "| property | verdict | states | why |", "|---|---|---|---|"]
        lines += [f"| {p.property} | {p.verdict.value} | {p.stats.states:,} | "
                  f"{p.reason} |" for p in r.results]
        for p in r.results:
            if p.counterexample is not None:
                lines += ["", f"*{p.property}*:", "```",
                          counterexample_text(p.counterexample), "```"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._repr_markdown_()

    def __repr__(self) -> str:
        r = self.result
        return f"<CheckView of {r.kind} {r.definition!r}: {r.verdict.value}>"


# --- counterexamples -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CounterexampleView:
    """A counterexample as a step-through table: one row per event with the
    state it leads to; the violating transition (or the start of the cycle)
    is highlighted."""

    counterexample: Counterexample
    upto: int | None = None
    """Show only the first ``upto`` events (for stepping through)."""

    @property
    def failing_index(self) -> int:
        """Row of the transition to highlight."""
        cex = self.counterexample
        if cex.loop_start is not None:
            return cex.loop_start + 1 if cex.loop_start + 1 < len(cex.steps) else 0
        return len(cex.steps) - 1

    def step(self, n: int) -> CounterexampleView:
        """The view after the first ``n`` events."""
        return CounterexampleView(self.counterexample, upto=n)

    def rows(self) -> list[dict[str, str]]:
        """The table, one mapping per event."""
        cex = self.counterexample
        last = len(cex.steps) - 1 if self.upto is None else min(
            self.upto, len(cex.steps) - 1)
        out = []
        for i, st in enumerate(cex.steps[: last + 1]):
            row = {"#": str(i), "event": st.action}
            state = st.state
            if "phase" in state:
                row["phase"] = str(state["phase"])
                steps = state.get("steps")
                if isinstance(steps, dict):
                    for name, info in steps.items():
                        if isinstance(info, dict):
                            cell = f"{str(info['status']).lower()}"
                            if info.get("effect"):
                                cell += f" eff={info['effect']}"
                            if info.get("compensation") not in (None, "NONE"):
                                cell += f" comp={str(info['compensation']).lower()}"
                            row[name] = cell
            else:
                row["state"] = json.dumps(state, sort_keys=True)[:160]
            out.append(row)
        return out

    def _repr_html_(self) -> str:
        cex = self.counterexample
        rows = self.rows()
        bad = self.failing_index
        parts = [_table(rows, highlight={bad})]
        if cex.violation:
            parts.append(f"<p style='background:{_HIGHLIGHT}'>"
                         f"<b>violation</b>: {_E(cex.violation)}</p>")
        if cex.loop_start is not None:
            parts.append(f"<p>rows {cex.loop_start + 1}..{len(cex.steps) - 1} "
                         "repeat forever</p>")
        return "<div>" + "".join(parts) + "</div>"

    def _repr_markdown_(self) -> str:
        rows = self.rows()
        head = list(dict.fromkeys(k for r in rows for k in r))
        bad = self.failing_index
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, r in enumerate(rows):
            cells = [r.get(h, "") for h in head]
            if i == bad:
                cells = [f"**{c}**" if c else c for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        if self.counterexample.violation:
            lines += ["", f"**violation**: {self.counterexample.violation}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return counterexample_text(self.counterexample)

    def __repr__(self) -> str:
        return (f"<CounterexampleView of {len(self.counterexample)} events"
                + (f", first {self.upto}" if self.upto is not None else "") + ">")


def _table(rows: Sequence[dict[str, str]], *, highlight: set[int] | None = None
           ) -> str:
    if not rows:
        return "<p>(empty)</p>"
    head = list(dict.fromkeys(k for r in rows for k in r))
    out = ["<table><tr>", *(f"<th>{_E(h)}</th>" for h in head), "</tr>"]
    for i, r in enumerate(rows):
        style = (f" style='background:{_HIGHLIGHT};font-weight:bold'"
                 if highlight and i in highlight else "")
        out.append(f"<tr{style}>")
        out += [f"<td>{_E(r.get(h, ''))}</td>" for h in head]
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


# --- state graphs ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Graph:
    """The reachable state graph of a definition, drawn.

    Args:
        definition: A saga or a workflow.
        faults: The fault model (default: none, so the graph stays small).
        max_states: Stop exploring after this many states (marked ``...``).
        highlight: A counterexample whose path is drawn in red.
        engine: ``auto`` (Graphviz if ``dot`` is installed), ``graphviz`` or
            ``python``.
    """

    definition: Saga | Workflow
    faults: FaultModel = field(default_factory=lambda: FaultModel.parse("none"))
    max_states: int = 200
    highlight: Counterexample | None = None
    engine: str = "auto"

    def explore(self) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]],
                               dict[str, str], bool]:
        """Nodes ``(id, label)``, edges ``(src, dst, label)``, node colours,
        and whether exploration was cut off."""
        from verifier import compile_model

        _, ts = compile_model(self.definition, self.faults)
        init = ts.initial()
        ids: dict[Any, str] = {}
        nodes: list[tuple[str, str]] = []
        edges: list[tuple[str, str, str]] = []
        colours: dict[str, str] = {}
        queue = deque(init)
        for s in init:
            ids[s] = "s0"
        nodes.append(("s0", "start"))
        truncated = False
        while queue:
            s = queue.popleft()
            for label, d in ts.successors(s):
                if d not in ids:
                    if len(ids) >= self.max_states:
                        truncated = True
                        continue
                    ids[d] = f"s{len(ids)}"
                    data = ts.state_json(d)
                    phase = str(data.get("phase", ""))
                    nodes.append((ids[d], phase if ts.is_terminal(d) else
                                  f"{len(ids) - 1}"))
                    if phase in _PHASE_COLOUR and ts.is_terminal(d):
                        colours[ids[d]] = _PHASE_COLOUR[phase]
                    queue.append(d)
                edges.append((ids[s], ids[d], ts.label_text(label)))
        return nodes, edges, colours, truncated

    def _path_edges(self, edges: list[tuple[str, str, str]]) -> set[int]:
        if self.highlight is None:
            return set()
        wanted = [st.action for st in self.highlight.steps[1:]]
        out: set[int] = set()
        node = "s0"
        for action in wanted:
            for k, (a, b, lab) in enumerate(edges):
                if a == node and lab == action:
                    out.add(k)
                    node = b
                    break
            else:
                break
        return out

    def svg(self) -> str:
        """The drawing as SVG text."""
        nodes, edges, colours, truncated = self.explore()
        hot = self._path_edges(edges)
        if self.engine in ("auto", "graphviz"):
            svg, why = _graphviz_svg(nodes, edges, colours, hot)
            if svg is not None:
                return svg
            if self.engine == "graphviz":
                why = why or "the Graphviz 'dot' program is not on PATH"
                raise RuntimeError(f"engine='graphviz' cannot draw: {why}; use "
                                   "engine='python'")
            if why is not None:
                return _draw(nodes, edges, colours=colours, hot=hot,
                             truncated=truncated,
                             note=f"drawn without Graphviz: {why}")
        return _draw(nodes, edges, colours=colours, hot=hot, truncated=truncated)

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        return (f"<Graph of {self.definition.name!r}, faults "
                f"{self.faults.describe()}>")

    def _repr_markdown_(self) -> str:
        nodes, edges, _, truncated = self.explore()
        more = " (cut off)" if truncated else ""
        return (f"state graph of {self.definition.name!r}: {len(nodes)} states, "
                f"{len(edges)} transitions{more}")


def _graphviz_svg(nodes: list[tuple[str, str]], edges: list[tuple[str, str, str]],
                  colours: dict[str, str], hot: set[int]
                  ) -> tuple[str | None, str | None]:
    """The Graphviz drawing, or ``None`` and why Graphviz cannot draw it (``None``
    too without the ``dot`` program: the expected case on a bare runner, not
    worth a note)."""
    has_dot = shutil.which("dot") is not None
    try:
        import graphviz
    except ImportError:
        if not has_dot:
            return None, None
        return None, ("the 'dot' program is installed but the graphviz Python "
                      "package is not (pip install graphviz)")
    if not has_dot:
        # The notebooks extra installs the package, so a runner without the
        # program is the usual bare case, not a broken install: no note.
        return None, None
    g = graphviz.Digraph(graph_attr={"rankdir": "TB"},
                         node_attr={"shape": "circle", "fontsize": "9"})
    for nid, label in nodes:
        g.node(nid, label, style="filled", fillcolor=colours.get(nid, "#ffffff"))
    for k, (a, b, lab) in enumerate(edges):
        g.edge(a, b, tooltip=lab, color="#cf222e" if k in hot else "#8c959f",
               penwidth="2.5" if k in hot else "1")
    try:
        return str(g.pipe(format="svg", encoding="utf-8")), None
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError,
            OSError) as exc:
        # A broken install: a drawing without Graphviz beats a traceback in
        # the middle of a notebook.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"'dot' failed ({first})"


def _draw(nodes: Sequence[tuple[str, str]], edges: Sequence[tuple[str, str, str]],
          *, colours: dict[str, str] | None = None, hot: set[int] | None = None,
          truncated: bool = False, note: str | None = None) -> str:
    """A layered drawing in plain SVG: each node on the row of its
    breadth-first depth from the first node (no Graphviz needed), with
    ``note`` as one line of text under it."""
    colours = colours or {}
    hot = hot or set()
    ids = [n for n, _ in nodes]
    succ: dict[str, list[str]] = {n: [] for n in ids}
    indeg = dict.fromkeys(ids, 0)
    for a, b, _ in edges:
        if a in succ and b in indeg:
            succ[a].append(b)
            indeg[b] += 1
    depth: dict[str, int] = {}
    roots = [n for n in ids if indeg[n] == 0] or ids[:1]
    queue = deque(roots)
    for root in roots:
        depth[root] = 0
    while queue:
        n = queue.popleft()
        for m in succ[n]:
            if m not in depth:
                depth[m] = depth[n] + 1
                queue.append(m)
    for n in ids:
        depth.setdefault(n, 0)
    layers: dict[int, list[str]] = {}
    for n in ids:
        layers.setdefault(depth[n], []).append(n)
    dx, dy, r = 70, 60, 16
    width = max(len(v) for v in layers.values()) * dx + dx
    height = (max(layers) + 1) * dy + dy if layers else dy
    if note is not None:
        # One line under the drawing, wide enough to be read whole.
        width = max(width, 6 * len(note) + 8)
        height += 14
    pos: dict[str, tuple[float, float]] = {}
    for level, row in layers.items():
        offset = (width - len(row) * dx) / 2 + dx / 2
        for k, n in enumerate(row):
            pos[n] = (offset + k * dx, dy / 2 + level * dy + r)
    labels = dict(nodes)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' "
           f"height='{height:.0f}' viewBox='0 0 {width:.0f} {height:.0f}' "
           "font-family='sans-serif' font-size='9'>",
           "<defs><marker id='a' viewBox='0 0 10 10' refX='10' refY='5' "
           "markerWidth='6' markerHeight='6' orient='auto'><path d='M0,0L10,5L0,"
           "10z' fill='#8c959f'/></marker></defs>"]
    for k, (a, b, lab) in enumerate(edges):
        if a not in pos or b not in pos:
            continue
        (x1, y1), (x2, y2) = pos[a], pos[b]
        colour, w = ("#cf222e", 2.5) if k in hot else ("#8c959f", 1)
        if a == b:
            out.append(f"<path d='M{x1 - 8:.0f},{y1 - r:.0f} c-20,-25 36,-25 16,0' "
                       f"fill='none' stroke='{colour}' stroke-width='{w}'>"
                       f"<title>{_E(lab)}</title></path>")
            continue
        vx, vy = x2 - x1, y2 - y1
        norm = max((vx * vx + vy * vy) ** 0.5, 1e-9)
        sx, sy = x1 + vx / norm * r, y1 + vy / norm * r
        ex, ey = x2 - vx / norm * r, y2 - vy / norm * r
        out.append(f"<line x1='{sx:.1f}' y1='{sy:.1f}' x2='{ex:.1f}' y2='{ey:.1f}' "
                   f"stroke='{colour}' stroke-width='{w}' marker-end='url(#a)'>"
                   f"<title>{_E(lab)}</title></line>")
    for n in ids:
        x, y = pos[n]
        fill = colours.get(n, "#ffffff")
        text_colour = "#ffffff" if n in colours and fill in _PHASE_COLOUR.values() \
            else "#24292f"
        out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{r}' fill='{fill}' "
                   f"stroke='#57606a'><title>{_E(labels[n])}</title></circle>")
        lines = labels[n].split("\n")
        for j, line in enumerate(lines):
            short = line if len(line) <= 11 else line[:10] + "…"
            yy = y + 3 + (j - (len(lines) - 1) / 2) * 10
            out.append(f"<text x='{x:.1f}' y='{yy:.1f}' text-anchor='middle' "
                       f"fill='{text_colour}'>{_E(short)}</text>")
    if truncated:
        y_cut = height - (18 if note is not None else 4)
        out.append(f"<text x='4' y='{y_cut:.0f}'>… (cut off)</text>")
    if note is not None:
        out.append(f"<text x='4' y='{height - 4:.0f}' fill='#9a6700' "
                   f"class='note'>{_E(note)}</text>")
    out.append("</svg>")
    return "".join(out)

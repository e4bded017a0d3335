"""One saga instance's timeline, read from its durable log: each attempt of an
action or a compensation as a bar from its ``dispatch`` record to its reply,
and the instance's start, recoveries, resumptions and end as marks.

Rendered as text (``sagaproof status SAGA_ID --timeline``) or as a standalone
HTML page with an SVG chart (``--html FILE``). Times are the log's own (the
engine's injected clock), relative to the ``start`` record.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_KIND = {"dispatch": "action", "comp_dispatch": "compensation"}
_REPLY = {"reply": "action", "comp_reply": "compensation"}
_MARKS = frozenset({"start", "recover", "resume", "end"})
_COLOUR = {"ok": "#1a7f37", "failed": "#cf222e", "fatal": "#82071e",
           "unknown": "#9a6700", "expired": "#9a6700", None: "#8c959f"}
_PHASE_COLOUR = {"COMPLETED": "#1a7f37", "COMPENSATED": "#0969da",
                 "FAILED": "#6e7781", "STUCK": "#cf222e"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One attempt: from its dispatch to its reply (or still open)."""

    step: str
    kind: str
    """``action`` or ``compensation``."""
    attempt: int
    start: float
    """Seconds after the instance's start."""
    end: float | None
    """``None`` while no reply is logged (in flight, or lost in a crash)."""
    outcome: str | None
    """The reply's outcome (``ok``, ``failed``, ``fatal``, ``unknown``...)."""
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark:
    """A point on the timeline: start, recover, resume or end."""

    at: float
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """What the log says happened to one saga instance, in time."""

    saga_id: str
    name: str
    status: str
    length: float
    """Seconds from the start record to the last record."""
    bars: tuple[Bar, ...]
    marks: tuple[Mark, ...]
    lanes: tuple[tuple[str, str], ...]
    """(step, kind) rows in order of first dispatch."""


def timeline(info: Any, records: Sequence[Any]) -> Timeline:
    """The timeline of the instance ``info`` from its log ``records``.

    >>> from runtime import LogRecord, SagaInfo
    >>> recs = [LogRecord(saga_id="s", seq=0, kind="start", at=10.0),
    ...         LogRecord(saga_id="s", seq=1, kind="dispatch", step="a",
    ...                   attempt=1, at=10.0),
    ...         LogRecord(saga_id="s", seq=2, kind="reply", step="a",
    ...                   outcome="ok", attempt=1, at=12.5),
    ...         LogRecord(saga_id="s", seq=3, kind="end", outcome="COMPLETED",
    ...                   at=12.5)]
    >>> tl = timeline(SagaInfo(saga_id="s", name="n", definition_hash="h",
    ...                        status="COMPLETED"), recs)
    >>> tl.bars[0].start, tl.bars[0].end, tl.bars[0].outcome, tl.length
    (0.0, 2.5, 'ok', 2.5)
    """
    t0 = records[0].at if records else 0.0
    open_: dict[tuple[str, str, int], Bar] = {}
    bars: list[Bar] = []
    marks: list[Mark] = []
    lanes: list[tuple[str, str]] = []
    for r in records:
        at = r.at - t0
        if r.kind in _MARKS:
            label = r.kind if r.kind != "end" else f"end {r.outcome}"
            marks.append(Mark(at=at, label=label))
        elif r.kind in _KIND and r.step is not None:
            kind = _KIND[r.kind]
            if (r.step, kind) not in lanes:
                lanes.append((r.step, kind))
            open_[(r.step, kind, r.attempt)] = Bar(
                step=r.step, kind=kind, attempt=r.attempt, start=at, end=None,
                outcome=None)
        elif r.kind in _REPLY and r.step is not None:
            began = open_.pop((r.step, _REPLY[r.kind], r.attempt), None)
            if began is None:
                continue  # a reply to an attempt this log never dispatched
            error = None
            if r.outcome != "ok" and r.data:
                error = str(_json(r.data))
            bars.append(Bar(step=began.step, kind=began.kind, attempt=began.attempt,
                            start=began.start, end=at, outcome=r.outcome,
                            error=error))
    bars.extend(open_.values())
    bars.sort(key=lambda b: (b.start, lanes.index((b.step, b.kind)), b.attempt))
    length = (records[-1].at - t0) if records else 0.0
    return Timeline(saga_id=info.saga_id, name=info.name, status=info.status,
                    length=length, bars=tuple(bars), marks=tuple(marks),
                    lanes=tuple(lanes))


def _json(data: str) -> Any:
    import json

    try:
        return json.loads(data)
    except ValueError:
        return data


def _lane_text(bar: Bar, length: float, width: int) -> str:
    """The bar drawn in ``width`` characters of the whole run's length."""
    if length <= 0:
        return "|" + " " * (width - 1)
    start = min(width - 1, int(bar.start / length * width))
    stop = width if bar.end is None else min(width, int(bar.end / length * width))
    cells = [" "] * width
    for k in range(start, max(stop, start + 1)):
        cells[k] = "="
    if bar.end is None:
        cells[-1] = ">"
    return "".join(cells)


def render_text(tl: Timeline, *, width: int = 30) -> str:
    """The timeline as text: a header, then one line per attempt and mark in
    time order, each attempt with its bar across the run's length.

    >>> print(render_text(Timeline(saga_id="s", name="n", status="COMPLETED",
    ...     length=2.0, bars=(Bar(step="a", kind="action", attempt=1, start=0.0,
    ...     end=1.0, outcome="ok"),), marks=(Mark(at=0.0, label="start"),),
    ...     lanes=(("a", "action"),)), width=10))
    s (n): COMPLETED after 2.000 s
          start  length  step  attempt         outcome  0 .. 2.000 s
      +  0.000s                                         start
      +  0.000s  1.000s  a     action #1       ok       [=====     ]
    """
    step_w = max([4, *(len(s) for s, _ in tl.lanes)])
    head = (f"{tl.saga_id} ({tl.name}): {tl.status} after {tl.length:.3f} s\n"
            f"  {'start':>9}  {'length':<6}  {'step':<{step_w}}  "
            f"{'attempt':<14}  {'outcome':<7}  0 .. {tl.length:.3f} s")
    rows: list[tuple[float, int, str]] = []
    for m in tl.marks:
        # An end comes after the replies logged at the same instant.
        rank = 2 if m.label.startswith("end") else 0
        rows.append((m.at, rank, f"  +{m.at:7.3f}s  {'':6}  {'':<{step_w}}  "
                              f"{'':<14}  {'':<7}  {m.label}"))
    for b in tl.bars:
        span = "open" if b.end is None else f"{b.end - b.start:.3f}s"
        what = f"{b.kind} #{b.attempt}"
        outcome = b.outcome or "no reply"
        line = (f"  +{b.start:7.3f}s  {span:<6}  {b.step:<{step_w}}  {what:<14}  "
                f"{outcome:<7}  [{_lane_text(b, tl.length, width)}]")
        if b.error:
            line += f"  {b.error}"
        rows.append((b.start, 1, line))
    rows.sort(key=lambda r: (r[0], r[1]))
    return "\n".join([head, *(r[2] for r in rows)])


def render_html(tl: Timeline) -> str:
    """A standalone HTML page (no script, no external resource): the
    timeline as an SVG chart with one row per step and kind, then a table of
    every attempt."""
    e = html.escape
    label_w, row_h, chart_w, top = 220, 26, 640, 34
    scale = chart_w / tl.length if tl.length > 0 else 0.0
    height = top + row_h * max(1, len(tl.lanes)) + 24
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + chart_w + 120}"'
           f' height="{height}" role="img" aria-label="timeline of {e(tl.saga_id)}">']
    ticks = 5
    for k in range(ticks + 1):
        x = label_w + chart_w * k / ticks
        svg.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" '
                   f'y2="{height - 20}" stroke="#d0d7de"/>'
                   f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" '
                   f'class="tick">{tl.length * k / ticks:.2f}s</text>')
    for row, (step, kind) in enumerate(tl.lanes):
        y = top + row * row_h
        svg.append(f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" '
                   f'text-anchor="end" class="lane">{e(step)} '
                   f'<tspan class="kind">{e(kind)}</tspan></text>')
    for b in tl.bars:
        y = top + tl.lanes.index((b.step, b.kind)) * row_h + 4
        end = tl.length if b.end is None else b.end
        x = label_w + b.start * scale
        w = max(3.0, (end - b.start) * scale)
        colour = _COLOUR.get(b.outcome, "#8c959f")
        dash = ' stroke-dasharray="4 2"' if b.kind == "compensation" else ""
        title = (f"{b.step} {b.kind} attempt {b.attempt}: "
                 f"{b.outcome or 'no reply'} at +{b.start:.3f}s"
                 + (f" for {end - b.start:.3f}s" if b.end is not None else "")
                 + (f" ({b.error})" if b.error else ""))
        svg.append(f'<rect class="bar {e(b.kind)}" data-outcome='
                   f'"{e(b.outcome or "open")}" x="{x:.1f}" y="{y}" '
                   f'width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{colour}" '
                   f'fill-opacity="0.85" stroke="#24292f"{dash}>'
                   f'<title>{e(title)}</title></rect>')
        if w > 18:
            svg.append(f'<text x="{x + 4:.1f}" y="{y + row_h / 2 + 1:.1f}" '
                       f'class="attempt">#{b.attempt}</text>')
    for m in tl.marks:
        x = label_w + m.at * scale
        svg.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" '
                   f'y2="{height - 20}" stroke="#57606a" stroke-dasharray="2 3"/>'
                   f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" '
                   f'class="mark">{e(m.label)}</text>')
    svg.append("</svg>")
    rows = "".join(
        f"<tr><td>+{b.start:.3f}s</td><td>{e(b.step)}</td><td>{e(b.kind)}</td>"
        f"<td>{b.attempt}</td><td>{e(b.outcome or 'no reply')}</td>"
        f"<td>{'' if b.end is None else f'{b.end - b.start:.3f}s'}</td>"
        f"<td>{e(b.error or '')}</td></tr>" for b in tl.bars)
    phase = _PHASE_COLOUR.get(tl.status, "#57606a")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>saga {e(tl.saga_id)}: timeline</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #24292f; }}
h1 {{ font-size: 20px; }} .status {{ color: #fff; background: {phase};
  padding: 2px 8px; border-radius: 4px; }}
svg text {{ font-size: 12px; }} .tick, .mark {{ fill: #57606a; font-size: 11px; }}
.kind {{ fill: #57606a; }} .attempt {{ fill: #fff; font-size: 11px; }}
table {{ border-collapse: collapse; margin-top: 16px; font-size: 13px; }}
td, th {{ border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; }}
</style></head><body>
<h1>{e(tl.name)} <code>{e(tl.saga_id)}</code>
<span class="status">{e(tl.status)}</span></h1>
<p>{len(tl.bars)} attempts over {tl.length:.3f} s (times from the durable log;
dashed bars are compensations).</p>
{"".join(svg)}
<table><thead><tr><th>start</th><th>step</th><th>kind</th><th>attempt</th>
<th>outcome</th><th>took</th><th>error</th></tr></thead>
<tbody>{rows}</tbody></table>
</body></html>
"""

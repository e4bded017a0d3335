"""Conformance: a runtime log replays through the model.

The replay keeps the *set* of model states consistent with the log so far
(what the log cannot show, such as whether a delivery was acknowledged or will
be repeated, is left open), and advances it by every enabled model step that
matches the next entry. The log conforms when the set never becomes empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from saga_models.workflow import Workflow
from saga_models.workflow import semantics as sem

from ._store import LogEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class Conformance:
    """The verdict of a replay."""

    ok: bool
    steps: int
    """Log entries replayed."""
    message: str = ""
    """For a mismatch: the entry, and what the model allowed instead."""


def _matches(wf: Workflow, step: sem.Step, entry: LogEntry) -> bool:
    js = sem.step_json(wf, step)
    if js["kind"] != entry.kind or js["service"] != entry.service:
        return False
    if js["event"] != entry.event or step.duplicate != entry.duplicate:
        return False
    if js["sender"] is not None and js["sender"] != entry.sender:
        return False
    names = sem.tables(wf).state_names[step.service]
    if names[step.at] != entry.from_state:
        return False
    return js["to"] is None or js["to"] == entry.to_state


def conforms(wf: Workflow, log: Sequence[LogEntry]) -> Conformance:
    """Replay ``log`` (one instance, in order) through ``wf``'s model.

    The duplicate budget is the number of duplicate deliveries in the log, so
    a log with more repeats than the model explores still replays.
    """
    dups = sum(e.duplicate for e in log)
    frontier = {sem.initial_state(wf, duplicates=dups)}
    for n, entry in enumerate(log):
        nxt = set()
        for st in frontier:
            for step in sem.enabled(wf, st):
                if _matches(wf, step, entry):
                    nxt.add(sem.apply(wf, st, step))
        if not nxt:
            allowed = sorted({sem.describe(wf, s) for st in frontier
                              for s in sem.enabled(wf, st)})
            return Conformance(
                ok=False, steps=n,
                message=(f"log entry seq={entry.seq} ({entry.kind} "
                         f"service={entry.service!r} event={entry.event!r} "
                         f"{entry.from_state} -> {entry.to_state}, "
                         f"duplicate={entry.duplicate}) is not a step of the "
                         "model; it allowed: " + "; ".join(allowed)))
        frontier = nxt
    return Conformance(ok=True, steps=len(log))

"""Rebuilding an instance's semantic state from its log records.

Replay goes through :func:`saga_models.semantics.apply`, the same function that
made the records, and checks every coordinate on the way: the definition hash
each record was written under, the step name at each step index, and that the
semantics allows each event. A mismatch is an error naming (saga id, seq, step).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from saga_models import Saga
from saga_models import semantics as sem
from saga_models.semantics import Event, EventKind, Outcome, State

from ._errors import CorruptLog, DefinitionMismatch
from ._log import LogRecord

_SEM_KINDS = {
    "dispatch": EventKind.DISPATCH,
    "reply": EventKind.REPLY,
    "comp_dispatch": EventKind.COMP_DISPATCH,
    "comp_reply": EventKind.COMP_REPLY,
}


@dataclass(slots=True, kw_only=True)
class Replayed:
    """What the log says about one instance."""

    state: State
    input: Any = None
    results: dict[int, Any] = field(default_factory=dict)
    """Outputs of actions whose last reply was ok, by step index."""
    attempts: dict[int, int] = field(default_factory=dict)
    """Action attempts sent so far, by step index."""
    comp_attempts: dict[int, int] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    after_unknown: set[int] = field(default_factory=set)
    first_sent: dict[int, float] = field(default_factory=dict)
    """Wall time of each step's first dispatch since the start or the last
    resume (where its total timeout budget starts)."""
    """Steps whose last dispatch followed an attempt that ended unknown."""
    next_seq: int = 0
    ended: str | None = None
    """The phase name of the ``end`` record, if any."""


def event_of(rec: LogRecord) -> Event | None:
    """The semantics event a record stands for (None for start/end/recover/resume)."""
    kind = _SEM_KINDS.get(rec.kind)
    if kind is None:
        return None
    outcome = Outcome(rec.outcome) if rec.outcome is not None else None
    return Event(kind, rec.step_index, outcome, 0)


def replay(saga: Saga, records: Sequence[LogRecord]) -> Replayed:
    """Fold ``records`` through the semantics; raises :class:`CorruptLog` or
    :class:`DefinitionMismatch` naming the first bad coordinate."""
    out = Replayed(state=sem.initial_state(saga))
    digest = saga.content_hash
    expected_seq = 0
    for rec in records:
        where = f"(saga_id={rec.saga_id!r}, seq={rec.seq}, step={rec.step!r})"
        if rec.seq != expected_seq:
            raise CorruptLog(f"log record {where}: expected seq={expected_seq}")
        expected_seq += 1
        if rec.definition_hash != digest:
            raise DefinitionMismatch(
                f"log record {where} was written under definition hash "
                f"{rec.definition_hash[:12]}..., but saga {saga.name!r} has hash "
                f"{digest[:12]}...; run it with the definition it started with")
        if rec.step is not None and (
                not 0 <= rec.step_index < len(saga.steps)
                or saga.steps[rec.step_index].name != rec.step):
            raise CorruptLog(
                f"log record {where}: step index {rec.step_index} is not step "
                f"{rec.step!r} in saga {saga.name!r}")
        try:
            out.state = _apply_record(saga, out, rec)
        except ValueError as exc:
            raise CorruptLog(f"log record {where} kind={rec.kind!r} "
                             f"outcome={rec.outcome!r} is not allowed by the "
                             f"definition's semantics here ({exc})") from None
    out.next_seq = expected_seq
    return out


def _apply_record(saga: Saga, out: Replayed, rec: LogRecord) -> State:
    state = out.state
    k = rec.kind
    i = rec.step_index
    if k == "start":
        out.input = json.loads(rec.data) if rec.data else None
        return state
    if k == "end":
        out.ended = rec.outcome
        return state
    if k == "recover":
        state = sem.apply(saga, state, Event(EventKind.CRASH))
        return sem.apply(saga, state, Event(EventKind.RECOVER))
    if k == "resume":
        out.first_sent.clear()
        return sem.resume(saga, state)
    ev = event_of(rec)
    if ev is None:
        raise ValueError(f"unknown record kind {k!r}")
    if k == "dispatch":
        out.attempts[i] = out.attempts.get(i, 0) + 1
        out.first_sent.setdefault(i, rec.at)
        if state[sem.HEADER + sem.WIDTH * i + sem.ST] == sem.Status.RETRY_UNKNOWN:
            out.after_unknown.add(i)
        else:
            out.after_unknown.discard(i)
    elif k == "comp_dispatch":
        out.comp_attempts[i] = out.comp_attempts.get(i, 0) + 1
    elif k == "reply":
        if rec.outcome == "ok":
            out.results[i] = json.loads(rec.data) if rec.data else None
            out.errors.pop(i, None)
        else:
            out.results.pop(i, None)
            if rec.data:
                out.errors[i] = str(json.loads(rec.data))
    elif k == "comp_reply" and rec.outcome != "ok" and rec.data:
        out.errors[i] = str(json.loads(rec.data))
    return sem.apply(saga, state, ev)

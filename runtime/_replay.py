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
from ._log import RUNNING, LogRecord, SagaInfo, SagaLog

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


def ended(records: Sequence[LogRecord]) -> bool:
    """Whether the records end with an ``end`` marker (a terminal outcome that
    no later ``resume`` reopened). Needs no definition."""
    return bool(records) and records[-1].kind == "end"


def unfinished(log: SagaLog) -> list[SagaInfo]:
    """Candidates for recovery: instances the summary calls running, or whose
    records do not end with ``end``. A log may answer this itself (SQLite does,
    in one query); otherwise every instance's records are read."""
    fast = getattr(log, "unfinished", None)
    if fast is not None:
        return list(fast())
    return [i for i in log.instances()
            if i.status == RUNNING or not ended(log.records(i.saga_id))]


def derived_status(rep: Replayed) -> str:
    """The ``sagas.status`` value the records imply: a terminal phase's name,
    else ``running``."""
    phase = sem.phase(rep.state)
    return phase.name if phase in sem.TERMINAL else RUNNING


def audit(saga: Saga, info: SagaInfo, records: Sequence[LogRecord]) -> list[str]:
    """Every derived column of ``info`` (the ``sagas`` row, a summary the
    runtime writes beside the records) that the replayed records contradict,
    plus every record the replay refuses. Empty when the summary is honest.
    Records written under another definition cannot be compared at all: that
    raises :class:`DefinitionMismatch`, as :func:`replay` does.

    The records are the truth: ``recover`` and ``conform`` trust them, so a
    summary edited by hand (``status='COMPLETED'`` with a step still held) is
    reported here rather than believed.
    """
    sid = info.saga_id
    problems: list[str] = []
    for rec in records:
        where = f"(saga_id={sid!r}, seq={rec.seq}, kind={rec.kind!r})"
        if rec.data is not None:
            try:
                json.loads(rec.data)
            except ValueError:
                problems.append(f"record {where}: data is not JSON: "
                                f"{rec.data[:40]!r}")
        if rec.kind in _SEM_KINDS and rec.step is None:
            problems.append(f"record {where}: names no step")
        if rec.kind in {"dispatch", "comp_dispatch"} and rec.outcome is not None:
            problems.append(f"record {where}: a dispatch has outcome="
                            f"{rec.outcome!r}")
    try:
        rep = replay(saga, records)
    except CorruptLog as exc:
        return [*problems, str(exc)]
    if info.definition_hash != saga.content_hash:
        problems.append(f"saga_id={sid!r}: definition_hash column "
                        f"{info.definition_hash[:12]}... but the records were "
                        f"written under {saga.content_hash[:12]}...")
    status = derived_status(rep)
    # A resume claims a STUCK saga (status running) just before logging its
    # ``resume`` record: a worker killed in between leaves exactly this.
    if info.status != status and not (info.status == RUNNING
                                      and status == sem.Phase.STUCK.name):
        problems.append(f"saga_id={sid!r}: status column says {info.status!r}, "
                        f"the records say {status!r}")
    if rep.ended is not None and rep.ended != sem.phase(rep.state).name:
        problems.append(f"saga_id={sid!r}: end record says {rep.ended!r}, the "
                        f"replayed records reach {sem.phase(rep.state).name!r}")
    if info.next_seq != len(records):
        problems.append(f"saga_id={sid!r}: next_seq column is {info.next_seq}, "
                        f"the log has {len(records)} records")
    try:
        stored_input = json.loads(info.input)
    except ValueError:
        problems.append(f"saga_id={sid!r}: input column is not JSON")
    else:
        if records and records[0].kind == "start" and stored_input != rep.input:
            problems.append(f"saga_id={sid!r}: input column differs from the "
                            "start record's input")
    return problems

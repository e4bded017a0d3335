"""Conformance: is a runtime log a path of the model?

The runtime's log of one saga instance is replayed through the same
:class:`~verifier.SagaTransitionSystem` the checker explores. Because the
runtime cannot see a participant's effects, it logs every reply with
``delta=0``; conformance therefore simulates a *set* of model states, matching
each logged event by kind, step and outcome and accepting any effect delta the
model allows. The first logged event no state in the set can take is reported.

This module reads no database: callers (``sagaproof conform``, tests) pass the
records as mappings or objects with ``kind``, ``step``, ``outcome`` and
optionally ``seq`` and ``definition_hash`` (the runtime's ``LogRecord``).

>>> from saga_models import SagaBuilder
>>> saga = (SagaBuilder("t").step("a", participant="p", action="x",
...         compensation="undo").build())
>>> log = [{"kind": "start"}, {"kind": "dispatch", "step": "a"},
...        {"kind": "reply", "step": "a", "outcome": "ok"},
...        {"kind": "end", "outcome": "COMPLETED"}]
>>> conform(saga, log).conforms
True
>>> bad = log[:2] + [{"kind": "comp_dispatch", "step": "a"}]
>>> print(conform(saga, bad).message)  # doctest: +NORMALIZE_WHITESPACE
event 2 (comp_dispatch a) is not allowed by the model;
it allows: a: ok (took effect), a: failed (no effect)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from saga_models import FaultModel, Saga, SagaError
from saga_models import semantics as sem
from saga_models.semantics import Event, EventKind, Outcome

from ._saga_ts import SagaTransitionSystem

_KINDS = {
    "dispatch": EventKind.DISPATCH,
    "reply": EventKind.REPLY,
    "comp_dispatch": EventKind.COMP_DISPATCH,
    "comp_reply": EventKind.COMP_REPLY,
}
_MARKERS = frozenset({"start", "end", "recover", "resume"})


class ConformanceError(SagaError, ValueError):
    """The log cannot be compared with this definition at all (a record of an
    unknown kind or step, or written under another definition hash)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConformanceResult:
    """Whether a log is a path of the model, and if not, where it leaves it."""

    conforms: bool
    events: int
    """Records checked (all of them when the log conforms)."""
    index: int | None = None
    """Position of the first record the model does not allow."""
    record: Mapping[str, Any] | None = None
    """That record, as data."""
    message: str = ""
    states: int = 0
    """Model states the log could be in after the last record checked."""
    phases: tuple[str, ...] = ()
    """The phases of those states (a finished log has one terminal phase)."""
    final_states: frozenset[sem.State] = frozenset()
    """The model states the log may have led to (they differ in the effects at
    participants, which the log cannot see)."""


def _get(rec: Any, name: str) -> Any:
    if isinstance(rec, Mapping):
        return rec.get(name)
    return getattr(rec, name, None)


def _as_data(rec: Any) -> dict[str, Any]:
    keys = ("seq", "kind", "step", "outcome", "attempt")
    return {k: _get(rec, k) for k in keys if _get(rec, k) is not None}


def conform(
    saga: Saga,
    records: Iterable[Any],
    *,
    faults: FaultModel | None = None,
) -> ConformanceResult:
    """Replay one instance's ``records`` through the model of ``saga``.

    Args:
        saga: The definition the instance ran.
        records: Its log records in sequence order.
        faults: The fault model to accept; default: every fault, with as many
            crashes as the log has recoveries and no transport duplicates (the
            runtime sends each command once per attempt or recovery).
    """
    recs = list(records)
    digest = saga.content_hash
    for k, rec in enumerate(recs):
        h = _get(rec, "definition_hash")
        if h and h != digest:
            raise ConformanceError(
                f"record {k} (seq={_get(rec, 'seq')}) was written under definition "
                f"hash {str(h)[:12]}..., but saga {saga.name!r} has hash "
                f"{digest[:12]}...; pass the definition the instance ran")
        kind = _get(rec, "kind")
        if kind not in _KINDS and kind not in _MARKERS:
            raise ConformanceError(f"record {k}: unknown kind={kind!r}")
        step = _get(rec, "step")
        if kind in _KINDS:
            try:
                saga.index(str(step))
            except KeyError:
                raise ConformanceError(
                    f"record {k}: step={step!r} is not a step of saga "
                    f"{saga.name!r}") from None
    if faults is None:
        recoveries = sum(1 for r in recs if _get(r, "kind") == "recover")
        faults = FaultModel(crashes=recoveries, duplicates=0)
    ts = SagaTransitionSystem(saga, faults)
    states: set[sem.State] = set(ts.initial())
    for k, rec in enumerate(recs):
        kind = _get(rec, "kind")
        nxt: set[sem.State] = set()
        if kind == "start":
            continue
        if kind == "end":
            want = _get(rec, "outcome")
            nxt = {s for s in states if sem.is_terminal(s)
                   and sem.phase(s).name == want}
            if not nxt:
                return _bad(saga, ts, states, k, rec, why=
                            f"the log ends {want} but the model is in "
                            f"{_phases(states)}")
        elif kind == "recover":
            for s in states:
                for e, d in ts.successors(s):
                    if e.kind is EventKind.CRASH:
                        nxt.update(d2 for e2, d2 in ts.successors(d)
                                   if e2.kind is EventKind.RECOVER)
        elif kind == "resume":
            nxt = {sem.resume(saga, s) for s in states
                   if sem.phase(s) is sem.Phase.STUCK}
            if not nxt:
                return _bad(saga, ts, states, k, rec, why=
                            "a resume, but the model is not STUCK")
        else:
            want_kind = _KINDS[kind]
            want_step = saga.index(str(_get(rec, "step")))
            out = _get(rec, "outcome")
            want_out = Outcome(out) if out is not None else None
            for s in states:
                for e, d in ts.successors(s):
                    if (e.kind is want_kind and e.step == want_step
                            and e.outcome == want_out):
                        nxt.add(d)
        if not nxt:
            return _bad(saga, ts, states, k, rec)
        states = nxt
    return ConformanceResult(conforms=True, events=len(recs), states=len(states),
                             phases=_phases(states), final_states=frozenset(states))


def _phases(states: Iterable[sem.State]) -> tuple[str, ...]:
    return tuple(sorted({sem.phase(s).name for s in states}))


def _bad(saga: Saga, ts: SagaTransitionSystem, states: set[sem.State], k: int,
         rec: Any, *, why: str = "") -> ConformanceResult:
    allowed: list[str] = []
    for s in sorted(states):
        for e, _ in ts.successors(s):
            text = Event.describe(e, saga)
            if text not in allowed:
                allowed.append(text)
    step = _get(rec, "step")
    outcome = _get(rec, "outcome")
    what = " ".join(str(x) for x in (_get(rec, "kind"), step, outcome) if x)
    message = (f"event {k} ({what}) is not allowed by the model; "
               + (why if why else "it allows: " + (", ".join(allowed) or "nothing")))
    return ConformanceResult(conforms=False, events=k, index=k, record=_as_data(rec),
                             message=message, states=len(states),
                             phases=_phases(states), final_states=frozenset(states))

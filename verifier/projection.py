"""The read model (CQRS projection) of a saga's log, as a transition system.

The runtime's :class:`runtime._projection.Projector` folds the log into a row
per instance, asynchronously. This model checks the argument it rests on: a
row that is written together with its checkpoint converges to the log's state
(``view_converges``: in every terminal state the row equals the saga's state)
and is never wrong, only late (``view_is_a_prefix``: whenever no projection
step is half done, the row is the fold of a prefix of the log). A projector
that writes the row and then, separately, its checkpoint (``atomic=False``)
applies a record twice after a crash between the two, and both properties
find it.

State: the saga's state under its fault model; the fold of its whole log (what
replay computes: the orchestrator's view, without the participants' side the
log cannot know); the row's state; the state the row should have (the fold of
what the projector consumed); the records logged but not yet projected (at
most ``lag`` of them, as event codes, 0 for an empty slot); ``pending`` (row
written, checkpoint not); projector crashes so far.
The saga waits while ``lag`` records are unprojected: a bound on the lag, not
on what the saga does (every path of the saga is still explored).
"""

from __future__ import annotations

from typing import Any

from saga_models import FaultModel, Saga
from saga_models import semantics as sem
from saga_models.semantics import Event

from ._saga_ts import SagaTransitionSystem
from ._ts import Property, StateT

_PROJECT, _CHECKPOINT, _CRASH = "project", "checkpoint", "projector crash"
_BROKEN = 255
"""A row the semantics refused to advance (fills every field; no real state
has a phase of 255)."""


class ProjectionSystem:
    """A saga's transition system together with its projector."""

    def __init__(self, saga: Saga, faults: FaultModel = sem.ALL_FAULTS, *,
                 lag: int = 2, atomic: bool = True, crashes: int = 1) -> None:
        self.saga = saga
        self.inner = SagaTransitionSystem(saga, faults)
        self.lag, self.atomic, self.crashes = lag, atomic, crashes
        self.name = f"{saga.name} read model"
        self.fault_model = (f"{self.inner.fault_model}; projector lag <= {lag}, "
                            f"projector crashes <= {crashes}, checkpoint "
                            f"{'atomic with the row' if atomic else 'separate'}")
        self.fairness = self.inner.fairness + "; the projector eventually runs"
        self._n = len(self.inner.initial()[0])
        self._codes: dict[Event, int] = {}
        self._events: list[Event] = []
        self.properties = (
            Property(name="view_is_a_prefix",
                     description="the row is the fold of a prefix of the log, "
                     "never a state the log did not pass through",
                     on_state=self._prefix),
            Property(name="view_converges",
                     description="the projector keeps up: once the saga is "
                     "terminal, the row reaches its state",
                     on_terminal=self._converged, liveness=True),
        )

    # --- layout -------------------------------------------------------------------
    def _split(self, s: StateT) -> tuple[StateT, StateT, StateT, StateT, StateT,
                                         int, int]:
        n, lag = self._n, self.lag
        return (s[:n], s[n:2 * n], s[2 * n:3 * n], s[3 * n:4 * n],
                s[4 * n:4 * n + lag], s[4 * n + lag], s[4 * n + lag + 1])

    def _code(self, e: Event) -> int:
        if e not in self._codes:
            self._codes[e] = len(self._events) + 1
            self._events.append(e)
        return self._codes[e]

    # --- the protocol ------------------------------------------------------------
    def initial(self) -> list[StateT]:
        return [s * 4 + (0,) * self.lag + (0, 0) for s in self.inner.initial()]

    def successors(self, state: StateT) -> list[tuple[Any, StateT]]:
        saga, log, row, want, queue, pending, crashed = self._split(state)
        out: list[tuple[Any, StateT]] = []
        used = sum(1 for c in queue if c)
        if used < self.lag and not pending:
            for label, nxt in self.inner.successors(saga):
                rec = _record(label)
                if rec is None:
                    out.append((label, nxt + log + row + want + queue
                                + (0, crashed)))
                    continue
                q = list(queue)
                q[used] = self._code(rec)
                out.append((label, nxt + self._apply(log, rec) + row + want
                            + tuple(q) + (0, crashed)))
        if used:
            head = self._events[queue[0] - 1]
            rest = (*queue[1:], 0)
            if not pending:
                row2 = self._apply(row, head)
                if self.atomic:
                    out.append((_PROJECT, saga + log + row2 + self._apply(want, head)
                                + rest + (0, crashed)))
                else:
                    out.append((_PROJECT, saga + log + row2 + want + queue
                                + (1, crashed)))
            else:
                out.append((_CHECKPOINT, saga + log + row + self._apply(want, head)
                            + rest + (0, crashed)))
                if crashed < self.crashes:
                    # The row was written, its checkpoint was not: on restart
                    # the projector reads the same record again.
                    out.append((_CRASH, saga + log + row + want + queue
                                + (0, crashed + 1)))
        return out

    def _apply(self, s: StateT, e: Event) -> StateT:
        """Fold one record into ``s`` as replay does (a ``recover`` record is
        a crash and a recovery)."""
        if s[0] == _BROKEN:
            return s
        try:
            if e.kind is sem.EventKind.RECOVER:
                s = tuple(sem.apply(self.saga, s, Event(sem.EventKind.CRASH)))
            return tuple(sem.apply(self.saga, s, e))
        except ValueError:
            # The semantics refuses the record on this row: the projector
            # would stop with an error. Marked so the invariant reports it.
            return (_BROKEN,) * self._n

    def is_terminal(self, state: StateT) -> bool:
        saga, _log, _row, _want, queue, pending, _c = self._split(state)
        return self.inner.is_terminal(saga) and not any(queue) and not pending

    def fairness_family(self, label: Any) -> int:
        if label == _PROJECT:
            return 10_000
        if label == _CHECKPOINT:
            return 10_001
        if isinstance(label, str):
            return -1
        return self.inner.fairness_family(label)

    def label_text(self, label: Any) -> str:
        return label if isinstance(label, str) else self.inner.label_text(label)

    def label_json(self, label: Any) -> dict[str, object]:
        if isinstance(label, str):
            return {"projector": label}
        return self.inner.label_json(label)

    def state_json(self, state: StateT) -> dict[str, object]:
        saga, _log, row, _want, queue, pending, crashed = self._split(state)
        out = dict(self.inner.state_json(saga))
        out["read_model"] = ("not a state of the log" if row[0] == _BROKEN
                             else self.inner.state_json(row))
        out["unprojected_records"] = sum(1 for c in queue if c)
        out["projector_pending_checkpoint"] = bool(pending)
        out["projector_crashes"] = crashed
        return out

    # --- properties ---------------------------------------------------------------
    def _prefix(self, state: StateT) -> str | None:
        _saga, _log, row, want, _q, pending, _c = self._split(state)
        if not pending and row != want:
            return ("the read model shows a state that is not the fold of the "
                    "records it consumed (a record was applied twice)")
        return None

    def _converged(self, state: StateT) -> str | None:
        _saga, log, row, *_ = self._split(state)
        if row != log:
            return ("the saga ended but its read model row never reached the "
                    "state of its log")
        return None


def _record(label: Any) -> Event | None:
    """The log record a saga event writes, as replay reads it back (the
    participants' side, ``delta``, is not in the log), or None: crashes and
    duplicate deliveries write nothing; a recovery writes ``recover``."""
    if not isinstance(label, Event) or label.kind in (sem.EventKind.CRASH,
                                                      sem.EventKind.DUPLICATE):
        return None
    return Event(label.kind, label.step, label.outcome, 0)

"""The read model (CQRS): a query table projected from the saga log.

The log is the write model: append-only records, one instance at a time. Who
asks "which sagas are stuck, and what do they still hold?" should not replay
every log; :class:`Projector` folds the log into one row per instance
(``saga_view``: status, each step's state, the effects still held, the last
error) asynchronously, and ``sagaproof status --view`` reads those rows.

* The fold is the shared semantics (:func:`runtime._replay._apply_record`, the
  same function recovery uses), continued from the state stored in the row.
* Each row stores the number of records it reflects (``seq``) and is written
  in one transaction with that number, so the projector is idempotent and
  restartable: killed anywhere, it resumes from each row's own checkpoint and
  never applies a record twice. The model of this argument, and of what goes
  wrong when the checkpoint is written apart from the row, is
  :mod:`verifier.projection`.
* A read says how stale it is: the row's ``seq`` against the log's
  ``next_seq``.

It runs on the log's own database: a poller on SQLite; on PostgreSQL the
poller also wakes on ``LISTEN sagaproof_log`` (every append notifies in its
transaction).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from saga_models import Saga
from saga_models import semantics as sem

from ._log import LogRecord, SagaInfo, SagaLog
from ._replay import Replayed, _apply_record

_TOOK_EFFECT = (sem.Status.OK, sem.Status.UNKNOWN, sem.Status.RETRY_UNKNOWN)


@dataclass(frozen=True, slots=True, kw_only=True)
class SagaView:
    """One row of the read model."""

    saga_id: str
    name: str
    seq: int
    """How many log records the row reflects (its checkpoint)."""
    status: str
    steps: dict[str, dict[str, str]]
    """Per step: the action's and the compensation's status, by step name."""
    held: tuple[str, ...]
    """Steps whose action may have taken effect and is not compensated."""
    last_error: str | None
    state: tuple[int, ...]
    """The semantics' state after ``seq`` records (where the fold goes on)."""


def fold(saga: Saga, view: SagaView | None, info: SagaInfo,
         records: Sequence[LogRecord]) -> SagaView:
    """``view`` advanced by ``records`` (those after its ``seq``)."""
    rep = Replayed(state=view.state if view else sem.initial_state(saga))
    error = view.last_error if view else None
    seq = view.seq if view else 0
    for rec in records:
        if rec.seq != seq:
            raise ValueError(f"saga_id={info.saga_id!r}: record seq={rec.seq} "
                             f"follows seq={seq - 1}")
        rep.state = _apply_record(saga, rep, rec)
        seq += 1
        if rec.kind in ("reply", "comp_reply") and rec.outcome != "ok" and rec.data:
            error = f"{rec.step}: {json.loads(rec.data)}"
    st = rep.state
    steps, held = {}, []
    for i, step in enumerate(saga.steps):
        status = sem.Status(sem.field(st, i, sem.ST))
        comp = sem.CompStatus(sem.field(st, i, sem.CS))
        steps[step.name] = {"action": status.name, "compensation": comp.name}
        if status in _TOOK_EFFECT and comp is not sem.CompStatus.DONE:
            held.append(step.name)
    phase = sem.phase(st)
    status_text = phase.name if phase in sem.TERMINAL else "running"
    return SagaView(saga_id=info.saga_id, name=info.name, seq=seq,
                    status=status_text, steps=steps, held=tuple(held),
                    last_error=error, state=tuple(st))


class ViewStore:
    """The ``saga_view`` table beside the log, in its database (SQLite or
    PostgreSQL: the same SQL with each driver's placeholders)."""

    def __init__(self, log: SagaLog) -> None:
        from ._postgres import PostgresLog
        from ._sqlite import SQLiteLog

        if isinstance(log, PostgresLog):
            self._db, self._p, self._t = log._db, "%s", f"{log.schema}.saga_view"
        elif isinstance(log, SQLiteLog):
            self._db, self._p, self._t = log._db, "?", "saga_view"
        else:
            raise TypeError(f"no read model for a {type(log).__name__}")
        self._pg = isinstance(log, PostgresLog)
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {self._t}(saga_id TEXT PRIMARY KEY, "
            "name TEXT NOT NULL, seq BIGINT NOT NULL, status TEXT NOT NULL, "
            "steps TEXT NOT NULL, held TEXT NOT NULL, last_error TEXT, "
            "state TEXT NOT NULL)")

    def get(self, saga_id: str) -> SagaView | None:
        """The row of ``saga_id``, or None if not projected yet."""
        row = self._db.execute(
            f"SELECT saga_id, name, seq, status, steps, held, last_error, state "
            f"FROM {self._t} WHERE saga_id={self._p}", (saga_id,)).fetchone()
        return _view(row) if row else None

    def all(self) -> list[SagaView]:
        """Every row."""
        rows = self._db.execute(
            f"SELECT saga_id, name, seq, status, steps, held, last_error, state "
            f"FROM {self._t} ORDER BY saga_id").fetchall()
        return [_view(r) for r in rows]

    def put(self, view: SagaView, *, expect_seq: int) -> bool:
        """Write ``view`` if the stored row is still at ``expect_seq`` (0: none
        yet): one statement, so a row and its checkpoint never part, and two
        projectors never apply the same records twice."""
        p = self._p
        values = (view.saga_id, view.name, view.seq, view.status,
                  json.dumps(view.steps), json.dumps(list(view.held)),
                  view.last_error, json.dumps(list(view.state)))
        if expect_seq == 0:
            cur = self._db.execute(
                f"INSERT INTO {self._t} VALUES ({','.join([p] * 8)}) "
                "ON CONFLICT (saga_id) DO NOTHING", values)
        else:
            cur = self._db.execute(
                f"UPDATE {self._t} SET seq={p}, status={p}, steps={p}, held={p}, "
                f"last_error={p}, state={p} WHERE saga_id={p} AND seq={p}",
                (*values[2:], view.saga_id, expect_seq))
        return bool(cur.rowcount == 1)


class Projector:
    """Brings the read model up to date with the log.

    Args:
        log: The write model.
        definitions: The definition of an instance (by its recorded path and
            hash); default: load the recorded path and check the hash.
    """

    def __init__(self, log: SagaLog,
                 definitions: Callable[[SagaInfo], Saga] | None = None) -> None:
        self.log = log
        self.store = ViewStore(log)
        self._defs = definitions or _load_recorded
        self._cache: dict[str, Saga] = {}

    def catch_up(self, *, limit: int | None = None) -> int:
        """Project every record not yet in the read model (at most ``limit``
        instances); returns how many rows moved."""
        moved = 0
        for info in self.log.instances():
            if limit is not None and moved >= limit:
                break
            view = self.store.get(info.saga_id)
            have = view.seq if view else 0
            if have >= info.next_seq:
                continue
            saga = self._cache.get(info.definition_hash)
            if saga is None:
                saga = self._cache[info.definition_hash] = self._defs(info)
            records = self.log.records(info.saga_id)[have:]
            if self.store.put(fold(saga, view, info, records), expect_seq=have):
                moved += 1
        return moved

    def staleness(self, saga_id: str) -> tuple[SagaView | None, int]:
        """A row and how many log records it is behind (a stale read is
        shown as such, never as current)."""
        view = self.store.get(saga_id)
        return view, self.log.get(saga_id).next_seq - (view.seq if view else 0)


def _load_recorded(info: SagaInfo) -> Saga:
    from saga_models import load

    from ._errors import DefinitionMismatch

    if not info.definition_path:
        raise DefinitionMismatch(f"saga_id={info.saga_id!r} recorded no definition "
                                 "path; project it with definitions=...")
    saga = load(info.definition_path)
    if not isinstance(saga, Saga) or saga.content_hash != info.definition_hash:
        raise DefinitionMismatch(
            f"saga_id={info.saga_id!r}: {info.definition_path} is not the "
            f"definition with hash {info.definition_hash[:12]}... it ran under")
    return saga


def _view(r: Sequence[Any]) -> SagaView:
    return SagaView(saga_id=str(r[0]), name=str(r[1]), seq=int(r[2]),
                    status=str(r[3]), steps=json.loads(r[4]),
                    held=tuple(json.loads(r[5])), last_error=r[6],
                    state=tuple(json.loads(r[7])))

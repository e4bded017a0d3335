"""Durable state of workflow instances: SQLite in one file (stdlib ``sqlite3``).

One row per service instance (its state, whether its timer fired, its timer's
due time), the counters, the outbox of undelivered envelopes, the inbox of
event ids each service has seen, and an append-only log keyed by
``(workflow_id, seq)``. Every delivery commits in one transaction (state,
counters, inbox, log, the consumed envelope and the ones it emits), so after a
crash an event is either fully handled or still pending: at-least-once, never
lost. The log is also a trace for :func:`runtime.workflow.conforms`.

Services in separate processes share one store file (WAL) and take a step in
:meth:`WorkflowStore.locked`, so a guard reads the other services' states in
the same transaction that commits the step, as the model's atomic steps do.
``wf_relayed`` records which outbox envelopes were handed to an external bus
(:mod:`runtime.workflow._redis_bus`): a row leaves the outbox only when a
receiver consumes it, so the outbox is the model's bus.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._sqlite import guarded, log_error, rollback
from ._bus import Envelope

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wf_instances(
    workflow_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
    next_seq INTEGER NOT NULL, next_event INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS wf_services(
    workflow_id TEXT NOT NULL, service TEXT NOT NULL, state TEXT NOT NULL,
    timer_fired INTEGER NOT NULL, timer_due REAL,
    PRIMARY KEY(workflow_id, service));
CREATE TABLE IF NOT EXISTS wf_counters(
    workflow_id TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY(workflow_id, name));
CREATE TABLE IF NOT EXISTS wf_outbox(
    workflow_id TEXT NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL,
    event TEXT NOT NULL, sender TEXT NOT NULL, receiver TEXT NOT NULL,
    PRIMARY KEY(workflow_id, seq));
CREATE TABLE IF NOT EXISTS wf_inbox(
    workflow_id TEXT NOT NULL, service TEXT NOT NULL, event_id TEXT NOT NULL,
    PRIMARY KEY(workflow_id, service, event_id));
CREATE TABLE IF NOT EXISTS wf_log(
    workflow_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    service TEXT NOT NULL, event TEXT, event_id TEXT, sender TEXT,
    duplicate INTEGER NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
    emitted TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY(workflow_id, seq));
CREATE TABLE IF NOT EXISTS wf_input(
    workflow_id TEXT PRIMARY KEY, input TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS wf_relayed(
    workflow_id TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY(workflow_id, seq));
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One step of a workflow instance, as recorded."""

    seq: int
    kind: str
    """``deliver``, ``ignore``, ``drop``, ``unhandled`` or ``timer``."""
    service: str
    event: str | None
    event_id: str | None
    sender: str | None
    duplicate: bool
    from_state: str
    to_state: str
    emitted: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """A workflow instance as stored."""

    name: str
    status: str
    states: dict[str, str]
    fired: dict[str, bool]
    due: dict[str, float | None]
    counters: dict[str, int]
    outbox: list[Envelope]
    next_seq: int
    next_event: int


class WorkflowStore:
    """The SQLite store (``":memory:"`` for tests)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        """Open (or make) the store at ``path``.

        Raises:
            LogError: SQLite failed (read-only, full, locked, I/O), one line.
        """
        self.path = str(path)
        try:
            # Several service processes may share the file: wait for the
            # write lock rather than fail at once.
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       timeout=30.0)
        except sqlite3.Error as exc:
            raise log_error(exc, self.path, "opening the store") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise log_error(exc, self.path, "opening the store") from None

    def _rollback(self) -> None:
        rollback(self._db)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @guarded("starting a workflow")
    def create(self, workflow_id: str, name: str, *, states: dict[str, str],
               counters: dict[str, int], outbox: list[Envelope],
               next_event: int) -> None:
        """Persist a new instance with its start events."""
        with self._tx():
            self._db.execute("INSERT INTO wf_instances VALUES (?,?,?,?,?)",
                             (workflow_id, name, "running", 0, next_event))
            self._db.executemany("INSERT INTO wf_services VALUES (?,?,?,0,NULL)",
                                 [(workflow_id, s, v) for s, v in states.items()])
            self._db.executemany("INSERT INTO wf_counters VALUES (?,?,?)",
                                 [(workflow_id, c, v) for c, v in counters.items()])
            self._put(workflow_id, outbox)

    @guarded("reading the store")
    def load(self, workflow_id: str) -> Snapshot | None:
        """The stored instance, or None."""
        row = self._db.execute(
            "SELECT name, status, next_seq, next_event FROM wf_instances "
            "WHERE workflow_id=?", (workflow_id,)).fetchone()
        if row is None:
            return None
        svc = self._db.execute("SELECT service, state, timer_fired, timer_due FROM "
                               "wf_services WHERE workflow_id=?",
                               (workflow_id,)).fetchall()
        cnt = self._db.execute("SELECT name, value FROM wf_counters WHERE "
                               "workflow_id=?", (workflow_id,)).fetchall()
        out = self._db.execute("SELECT seq, event_id, event, sender, receiver FROM "
                               "wf_outbox WHERE workflow_id=? ORDER BY seq",
                               (workflow_id,)).fetchall()
        return Snapshot(
            name=row[0], status=row[1], next_seq=row[2], next_event=row[3],
            states={s: st for s, st, _, _ in svc},
            fired={s: bool(f) for s, _, f, _ in svc},
            due={s: d for s, _, _, d in svc},
            counters=dict(cnt),
            outbox=[Envelope(seq=q, event_id=i, event=e, sender=s, receiver=r)
                    for q, i, e, s, r in out])

    @guarded("reading the store")
    def seen(self, workflow_id: str, service: str, event_id: str) -> bool:
        """Whether ``service``'s inbox has recorded ``event_id``."""
        return self._db.execute(
            "SELECT 1 FROM wf_inbox WHERE workflow_id=? AND service=? AND "
            "event_id=?", (workflow_id, service, event_id)).fetchone() is not None

    @guarded("recording a step")
    def commit_step(self, workflow_id: str, *, entry: LogEntry,
                    consumed: Envelope | None, service_row: tuple[str, bool,
                                                                  float | None],
                    counters: dict[str, int], emitted: list[Envelope],
                    next_event: int, keep_consumed: bool = False) -> None:
        """Record one step atomically (see the module docstring)."""
        state, fired, due = service_row
        with self._tx():
            self._db.execute(
                "UPDATE wf_services SET state=?, timer_fired=?, timer_due=? "
                "WHERE workflow_id=? AND service=?",
                (state, int(fired), due, workflow_id, entry.service))
            self._db.executemany(
                "UPDATE wf_counters SET value=? WHERE workflow_id=? AND name=?",
                [(v, workflow_id, c) for c, v in counters.items()])
            if consumed is not None:
                self._db.execute("INSERT OR IGNORE INTO wf_inbox VALUES (?,?,?)",
                                 (workflow_id, consumed.receiver, consumed.event_id))
                if not keep_consumed:
                    key = (workflow_id, consumed.seq)
                    self._db.execute("DELETE FROM wf_outbox WHERE workflow_id=? "
                                     "AND seq=?", key)
                    self._db.execute("DELETE FROM wf_relayed WHERE workflow_id=? "
                                     "AND seq=?", key)
            self._put(workflow_id, emitted)
            self._db.execute(
                "INSERT INTO wf_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (workflow_id, entry.seq, entry.kind, entry.service, entry.event,
                 entry.event_id, entry.sender, int(entry.duplicate),
                 entry.from_state, entry.to_state, json.dumps(list(entry.emitted)),
                 entry.at))
            self._db.execute("UPDATE wf_instances SET next_seq=?, next_event=? "
                             "WHERE workflow_id=?",
                             (entry.seq + 1, next_event, workflow_id))

    @guarded("recording the end")
    def finish(self, workflow_id: str, status: str) -> None:
        """Record the instance's end status."""
        with self._tx():
            self._db.execute("UPDATE wf_instances SET status=? WHERE workflow_id=?",
                             (status, workflow_id))

    @guarded("reading the store")
    def log(self, workflow_id: str) -> list[LogEntry]:
        """The instance's log, in order."""
        rows = self._db.execute(
            "SELECT seq, kind, service, event, event_id, sender, duplicate, "
            "from_state, to_state, emitted, at FROM wf_log WHERE workflow_id=? "
            "ORDER BY seq", (workflow_id,)).fetchall()
        return [LogEntry(seq=r[0], kind=r[1], service=r[2], event=r[3],
                         event_id=r[4], sender=r[5], duplicate=bool(r[6]),
                         from_state=r[7], to_state=r[8],
                         emitted=tuple(json.loads(r[9])), at=r[10]) for r in rows]

    @guarded("reading the store")
    def is_pending(self, workflow_id: str, seq: int) -> bool:
        """Whether envelope ``seq`` of the instance is still on the outbox (not
        yet consumed by its receiver)."""
        return self._db.execute(
            "SELECT 1 FROM wf_outbox WHERE workflow_id=? AND seq=?",
            (workflow_id, seq)).fetchone() is not None

    @guarded("reading the store")
    def outbox_size(self, workflow_id: str | None = None) -> int:
        """Envelopes not yet consumed (of one instance, or of all)."""
        if workflow_id is None:
            row = self._db.execute("SELECT count(*) FROM wf_outbox").fetchone()
        else:
            row = self._db.execute("SELECT count(*) FROM wf_outbox WHERE "
                                   "workflow_id=?", (workflow_id,)).fetchone()
        return int(row[0])

    @guarded("reading the store")
    def instances(self) -> dict[str, str]:
        """Every instance id with its status."""
        rows = self._db.execute("SELECT workflow_id, status FROM wf_instances "
                                "ORDER BY workflow_id").fetchall()
        return {str(w): str(s) for w, s in rows}

    @guarded("recording the input")
    def set_input(self, workflow_id: str, data: Any) -> None:
        """Keep the instance's input (JSON) for handlers in other processes."""
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO wf_input VALUES (?,?)",
                             (workflow_id, json.dumps(data)))

    @guarded("reading the store")
    def input(self, workflow_id: str) -> Any:
        """The instance's input, or None."""
        row = self._db.execute("SELECT input FROM wf_input WHERE workflow_id=?",
                               (workflow_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    @guarded("reading the store")
    def due_timers(self, service: str, now: float) -> list[str]:
        """Running instances where ``service``'s timer is armed, not fired,
        and due at ``now`` (wall-clock seconds)."""
        rows = self._db.execute(
            "SELECT s.workflow_id FROM wf_services s JOIN wf_instances i ON "
            "i.workflow_id=s.workflow_id WHERE s.service=? AND i.status="
            "'running' AND s.timer_fired=0 AND s.timer_due IS NOT NULL AND "
            "s.timer_due<=? ORDER BY s.timer_due", (service, now)).fetchall()
        return [str(r[0]) for r in rows]

    @guarded("arming a timer")
    def set_due(self, workflow_id: str, service: str, due: float | None) -> None:
        """Set ``service``'s timer due time (None: no timer armed)."""
        with self._tx():
            self._db.execute("UPDATE wf_services SET timer_due=? WHERE "
                             "workflow_id=? AND service=?",
                             (due, workflow_id, service))

    @guarded("reading the outbox")
    def unrelayed(self, *, limit: int = 500) -> list[tuple[str, Envelope]]:
        """Outbox envelopes not yet handed to the external bus, in send order."""
        rows = self._db.execute(
            "SELECT o.workflow_id, o.seq, o.event_id, o.event, o.sender, "
            "o.receiver FROM wf_outbox o LEFT JOIN wf_relayed r ON "
            "r.workflow_id=o.workflow_id AND r.seq=o.seq WHERE r.seq IS NULL "
            "ORDER BY o.workflow_id, o.seq LIMIT ?", (limit,)).fetchall()
        return [(w, Envelope(seq=q, event_id=i, event=e, sender=s, receiver=r))
                for w, q, i, e, s, r in rows]

    @guarded("recording a relay")
    def mark_relayed(self, rows: list[tuple[str, int]]) -> None:
        """Record that these ``(workflow_id, seq)`` envelopes are on the bus
        (only those still on the outbox: one consumed meanwhile stays gone)."""
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO wf_relayed SELECT workflow_id, seq FROM "
                "wf_outbox WHERE workflow_id=? AND seq=?", rows)

    def locked(self) -> Any:
        """A write transaction (``BEGIN IMMEDIATE``) around several calls:
        the methods called inside join it instead of opening their own, and
        it commits on exit (rolls back on an exception)."""
        return _Tx(self._db)

    def _put(self, workflow_id: str, envelopes: list[Envelope]) -> None:
        self._db.executemany(
            "INSERT INTO wf_outbox VALUES (?,?,?,?,?,?)",
            [(workflow_id, e.seq, e.event_id, e.event, e.sender, e.receiver)
             for e in envelopes])

    def _tx(self) -> Any:
        return _Tx(self._db)


class _Tx:
    """One write transaction; a no-op when one is already open (so a method
    called inside :meth:`WorkflowStore.locked` joins the outer one)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._outer = False

    def __enter__(self) -> None:
        self._outer = not self._db.in_transaction
        if self._outer:
            self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self._outer:
            return
        if exc_type is not None:
            rollback(self._db)
        else:
            self._db.execute("COMMIT")

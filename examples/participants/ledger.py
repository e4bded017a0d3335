"""A participant's own records: every effect, keyed by idempotency key.

The ledger is what a real service would keep: an action with a key it has seen
returns the recorded result instead of acting again (so a re-sent command takes
effect once), and a compensation marks the step's effect undone (and is safe
when the action never took effect). Failures are injected through the saga's
input, so the CLI can demonstrate every path::

    {"fail": {"reserve_car": "always"}}        # action raises every time
    {"fail": {"charge": 1}}                    # fails the first attempt only
    {"fail_compensation": {"reserve_flight": "always"}}
    {"hang": ["reserve_flight"]}               # never answers (timeout fires)
    {"garbage": ["reserve_car"]}               # returns a non-JSON value
    {"delay": 0.05}                            # every call takes 50 ms
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import threading
from typing import Any

from runtime import StepContext

LEDGER_ENV = "SAGAPROOF_LEDGER"


class ServiceUnavailable(Exception):
    """A retryable failure injected by the example."""


class Rejected(Exception):
    """A business rejection (declare it in ``non_retryable_errors``)."""


class Ledger:
    """Effects recorded in SQLite (``path``) or in memory (``:memory:``)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or os.environ.get(LEDGER_ENV, "ledger.db")
        self._db = sqlite3.connect(self.path, isolation_level=None,
                                   check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS effects(key TEXT PRIMARY KEY, saga_id TEXT, "
            "step TEXT, participant TEXT, operation TEXT, result TEXT, "
            "calls INTEGER NOT NULL, undone INTEGER NOT NULL DEFAULT 0, "
            "undo_calls INTEGER NOT NULL DEFAULT 0)")

    def act(self, ctx: StepContext, result: Any) -> Any:
        """Apply an action once per idempotency key; later calls get the
        recorded result. A key recorded by an empty rollback is refused: the
        action takes no effect and answers None (anti-suspension)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT result FROM effects WHERE key=?",
                             (ctx.idempotency_key,)).fetchone()
            if row is not None:
                db.execute("UPDATE effects SET calls=calls+1 WHERE key=?",
                           (ctx.idempotency_key,))
                db.execute("COMMIT")
                return json.loads(row[0])
            db.execute("INSERT INTO effects(key, saga_id, step, participant, "
                       "operation, result, calls) VALUES (?,?,?,?,?,?,1)",
                       (ctx.idempotency_key, ctx.saga_id, ctx.step, ctx.participant,
                        ctx.operation, json.dumps(result)))
            db.execute("COMMIT")
            return result

    def lookup(self, key: str) -> Any:
        """The recorded result of an applied key, or None."""
        with self._lock:
            row = self._db.execute("SELECT result FROM effects WHERE key=?",
                                   (key,)).fetchone()
        if row is None:
            return None
        self.act_seen(key)
        return json.loads(row[0])

    def act_seen(self, key: str) -> None:
        """Count a repeated call of an applied key."""
        with self._lock:
            self._db.execute("UPDATE effects SET calls=calls+1 WHERE key=?", (key,))

    def undo(self, ctx: StepContext) -> None:
        """Undo the step's action if it took effect (idempotent). A compensation
        for an action never seen is an empty rollback: it answers OK and
        records the action's key as undone, so that the action, should it
        arrive late, is refused (anti-suspension, in :meth:`act`)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            # An empty-rollback record (calls=0) is not undone again: repeating
            # the empty rollback changes nothing.
            cur = db.execute(
                "UPDATE effects SET undone=1, undo_calls=undo_calls+1 "
                "WHERE saga_id=? AND step=? AND calls > 0", (ctx.saga_id, ctx.step))
            if cur.rowcount == 0 and ctx.action_key:
                db.execute("INSERT OR IGNORE INTO effects(key, saga_id, step, "
                           "participant, "
                           "operation, result, calls, undone, undo_calls) "
                           "VALUES (?,?,?,?,?,'null',0,1,1)",
                           (ctx.action_key, ctx.saga_id, ctx.step,
                            ctx.participant, ctx.operation))
            db.execute("COMMIT")

    def effects(self) -> list[dict[str, Any]]:
        """Every recorded effect, as data."""
        cur = self._db.execute("SELECT key, saga_id, step, participant, operation, "
                               "calls, undone, undo_calls FROM effects")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]


def _mode(ctx: StepContext, field: str) -> Any:
    spec = ctx.input.get(field)
    if isinstance(spec, dict):
        return spec.get(ctx.step)
    if isinstance(spec, list):
        return "always" if ctx.step in spec else None
    return None


def _should_fail(mode: Any, attempt: int) -> bool:
    if mode == "always":
        return True
    return isinstance(mode, int) and attempt <= mode


class Service:
    """A participant whose every operation is recorded in a :class:`Ledger`.

    Any attribute is an operation: ``flights.reserve`` acts, and an operation
    called as a compensation (``ctx.attempt_kind == "compensation"``) undoes.
    """

    def __init__(self, name: str, ledger: Ledger) -> None:
        self.name = name
        self.ledger = ledger
        self.ignore_faults = False
        """Set once "a person fixed the cause": injected faults are ignored."""

    def __getattr__(self, operation: str) -> Any:
        if operation.startswith("_"):
            raise AttributeError(operation)

        async def call(ctx: StepContext) -> Any:
            if self.ignore_faults:
                ctx = dataclasses.replace(ctx, input={})
            delay = ctx.input.get("delay")
            if isinstance(delay, (int, float)) and delay > 0:
                await asyncio.sleep(delay)
            if ctx.attempt_kind == "compensation":
                if _should_fail(_mode(ctx, "fail_compensation"), ctx.attempt):
                    raise ServiceUnavailable(f"{self.name}.{operation} is down")
                self.ledger.undo(ctx)
                return None
            done = self.ledger.lookup(ctx.idempotency_key)
            if done is not None:
                # Already applied under this key: answer with the recorded
                # result, whatever else would happen now.
                return done
            if _mode(ctx, "hang"):
                await asyncio.Event().wait()
            if _should_fail(_mode(ctx, "fail"), ctx.attempt):
                raise ServiceUnavailable(f"{self.name}.{operation} is down")
            if _mode(ctx, "reject"):
                raise Rejected(f"{self.name}.{operation} rejected the request")
            if _mode(ctx, "garbage"):
                return object()
            return self.ledger.act(ctx, {"ref": f"{self.name}-{ctx.saga_id}-"
                                                f"{ctx.step}"})

        call.__name__ = operation
        return call


class AnyParticipant:
    """Answers for any participant name with a :class:`Service` on one ledger."""

    def __init__(self, ledger: Ledger | None = None) -> None:
        self._fixed = ledger
        self._opened: Ledger | None = None
        self._services: dict[str, Service] = {}

    @property
    def ledger(self) -> Ledger:
        """The given ledger, or the one ``$SAGAPROOF_LEDGER`` names (re-read,
        so one process can run several demos)."""
        if self._fixed is not None:
            return self._fixed
        path = os.environ.get(LEDGER_ENV, "ledger.db")
        if self._opened is None or self._opened.path != path:
            self._opened = Ledger(path)
            for svc in self._services.values():
                svc.ledger = self._opened
        return self._opened

    def __getattr__(self, participant: str) -> Service:
        if participant.startswith("_"):
            raise AttributeError(participant)
        ledger = self.ledger
        svc = self._services.get(participant)
        if svc is None:
            svc = self._services[participant] = Service(participant, ledger)
        return svc

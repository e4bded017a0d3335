"""The durable log on PostgreSQL (psycopg 3), shared by many workers.

The same :class:`~runtime.SagaLog` protocol as :class:`~runtime.SQLiteLog`,
with the same rules:

* an append is a compare-and-set on ``(owner, next_seq)`` in the same
  transaction as the inserted records, so a worker that lost its lease (or
  whose view of the log is stale) cannot append: the fencing the lease needs;
* a batch that sends a command commits synchronously before the command
  leaves (``synchronous_commit=on``); other batches may commit with
  ``synchronous_commit=off`` (``sync=False``), like SQLite's ``NORMAL``: they
  survive a killed worker, and after a server crash the last reply is simply
  re-requested with the same idempotency key;
* ``claimable`` hands out new and orphaned instances with ``FOR UPDATE SKIP
  LOCKED``, so workers polling together never wait on each other or take the
  same instance twice.

The tables live in their own schema (``sagaproof`` unless given), so a test or
a tenant can keep several logs in one database.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ._errors import CorruptLog, LeaseLost, LogError, NoSuchLog, UnknownSaga
from ._log import (
    RUNNING,
    Create,
    LogRecord,
    SagaInfo,
    check_consecutive,
    lease_is_free,
)

MAGIC = "sagaproof-log"
SCHEMA_VERSION = "1"

_INFO_COLS = ("saga_id, name, definition_hash, definition_path, participants, input, "
              "status, owner, lease_until, next_seq, created_at, updated_at")
_REC_COLS = ("saga_id, seq, kind, step, step_index, outcome, attempt, "
             "definition_hash, data, at")

_DDL = """
CREATE TABLE IF NOT EXISTS {s}.sagaproof_meta(
    key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.sagas(
    saga_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    definition_path TEXT,
    participants TEXT,
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    lease_until DOUBLE PRECISION NOT NULL,
    next_seq BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS sagas_by_status ON {s}.sagas(status, lease_until);
CREATE TABLE IF NOT EXISTS {s}.log(
    saga_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    step_index INTEGER NOT NULL,
    outcome TEXT,
    attempt INTEGER NOT NULL,
    definition_hash TEXT NOT NULL,
    data TEXT,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY(saga_id, seq))
"""

_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(doing: str) -> Callable[[_F], _F]:
    """Turn a server error of the method into one line (the transaction it
    was in has been rolled back by psycopg: the log is unchanged)."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def call(self: PostgresLog, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except self._psycopg.Error as exc:
                raise _log_error(exc, self.path, doing) from None

        return call  # type: ignore[return-value]

    return wrap


def _log_error(exc: Exception, url: str, doing: str) -> LogError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    where = f"db={_redact(url)!r}: {doing} failed: {first}"
    name = type(exc).__name__
    if name in ("OperationalError", "InterfaceError", "AdminShutdown"):
        return LogError("RT009", f"{where} (the PostgreSQL server is unreachable "
                        "or dropped the connection)",
                        fix="check the server (bash scripts/postgres.sh start) and "
                        "run the command again; the transaction was rolled back")
    if name in ("UndefinedTable", "UndefinedColumn"):
        return LogError("RT002", f"{where} (an incomplete sagaproof log)",
                        fix="drop the schema and start anew, or restore it")
    return LogError("RT008", where, fix="the transaction was rolled back; check "
                    "the server's log")


def is_postgres_url(text: str) -> bool:
    """Whether ``--db`` names a PostgreSQL server rather than a SQLite file."""
    return text.startswith(("postgresql://", "postgres://"))


class PostgresLog:
    """A :class:`~runtime.SagaLog` in a PostgreSQL database.

    Args:
        url: a libpq connection URL (``postgresql://user@host:port/db``).
        schema: the schema that holds the tables; created when missing.
        create: create the tables when the schema has none; when false, a
            schema without a sagaproof log raises :class:`UnknownLog`.
    """

    def __init__(self, url: str, *, schema: str = "sagaproof",
                 create: bool = True) -> None:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the extra
            raise CorruptLog(
                "--db names a PostgreSQL server but psycopg is not installed; "
                "pip install 'sagaproof[postgres]'") from None
        if not _IDENT.fullmatch(schema):
            raise ValueError(f"schema={schema!r}; use lower-case letters, digits "
                             "and underscores")
        self.path = url
        self.schema = schema
        self._psycopg = psycopg
        self._listener: Any = None
        try:
            self._db: Any = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise LogUnavailable(
                "RT009", f"db={_redact(url)!r}: cannot connect to PostgreSQL "
                f"({first})", fix="start the server (bash scripts/postgres.sh "
                "start) or fix the URL") from None
        self._open(create)

    def _open(self, create: bool) -> None:
        s = self.schema
        exists = self._db.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema=%s AND table_name='sagaproof_meta'",
            (s,)).fetchone()[0]
        if exists:
            meta = dict(self._db.execute(
                f"SELECT key, value FROM {s}.sagaproof_meta").fetchall())
            if meta.get("magic") != MAGIC or meta.get("schema") != SCHEMA_VERSION:
                raise CorruptLog(
                    f"db={_redact(self.path)!r} schema {s!r} has sagaproof_meta="
                    f"{meta!r}, expected magic={MAGIC!r} schema={SCHEMA_VERSION!r}")
            return
        if not create:
            raise UnknownLog(
                "RT001", f"no such log db={_redact(self.path)!r} (schema {s!r} "
                "holds no sagaproof log)", fix="check the URL and the schema "
                "after '#'; `sagaproof run` creates a log")
        with self._db.transaction():
            # Two workers starting at once both get here: serialise on a
            # transaction-scoped advisory lock so DDL runs once.
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (s,))
            self._db.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            for stmt in filter(str.strip, _DDL.format(s=s).split(";")):
                self._db.execute(stmt)
            self._db.execute(
                f"INSERT INTO {s}.sagaproof_meta VALUES ('magic', %s), "
                "('schema', %s) ON CONFLICT DO NOTHING", (MAGIC, SCHEMA_VERSION))

    # --- the protocol ---------------------------------------------------------
    @_guarded("starting a saga")
    def create(self, info: SagaInfo, first: LogRecord,
               more: Sequence[LogRecord] = ()) -> None:
        [error] = self._write((), owner="", now=0.0, sync=True,
                              creates=((info, first, more),))
        if error is not None:
            raise error

    def _insert_new(self, info: SagaInfo, first: LogRecord,
                    more: Sequence[LogRecord]) -> CorruptLog | None:
        """Insert one new instance inside the open transaction, under a
        savepoint (a nested transaction): a duplicate id undoes only its own
        rows (the error is returned), so a group commit keeps the others."""
        s = self.schema
        try:
            with self._db.transaction():
                self._db.execute(
                    f"INSERT INTO {s}.sagas({_INFO_COLS}) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    (info.saga_id, info.name, info.definition_hash,
                     info.definition_path, info.participants, info.input,
                     info.status, info.owner, info.lease_until, 1 + len(more),
                     info.created_at, info.updated_at))
                with self._db.cursor() as c:
                    c.executemany(
                        f"INSERT INTO {s}.log({_REC_COLS}) "
                        "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                        [_row(r) for r in (first, *more)])
                if more:
                    # Wakes `sagaproof project` (LISTEN), as an append does.
                    self._db.execute("SELECT pg_notify(%s, %s)",
                                     (f"{s}_log", info.saga_id))
        except self._psycopg.errors.UniqueViolation:
            return CorruptLog(
                f"saga_id={info.saga_id!r} already exists in "
                f"db={_redact(self.path)!r}; choose another id")
        return None

    @_guarded("appending to the log")
    def append(self, saga_id: str, records: Sequence[LogRecord], *, owner: str,
               status: str = RUNNING, now: float = 0.0, sync: bool = True) -> None:
        """See :class:`~runtime.SagaLog`; ``sync=False`` lets the commit return
        before the WAL is flushed (never for a batch that sends a command)."""
        if not records:
            return
        s = self.schema
        first = records[0].seq
        with self._db.transaction():
            if not sync:
                self._db.execute("SET LOCAL synchronous_commit = off")
            cur = self._db.execute(
                f"UPDATE {s}.sagas SET next_seq=%s, status=%s, updated_at=%s "
                "WHERE saga_id=%s AND owner=%s AND next_seq=%s",
                (first + len(records), status, now, saga_id, owner, first))
            if cur.rowcount == 1:
                with self._db.cursor() as c:
                    c.executemany(
                        f"INSERT INTO {s}.log({_REC_COLS}) "
                        "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                        [_row(r) for r in records])
                # Wakes `sagaproof project` (LISTEN), delivered at commit.
                self._db.execute("SELECT pg_notify(%s, %s)",
                                 (f"{s}_log", saga_id))
                return
        self._explain_append_failure(saga_id, owner, first)

    @_guarded("appending to the log")
    def append_many(self, batches: Sequence[tuple[str, Sequence[LogRecord], str]],
                    *, owner: str, now: float = 0.0, sync: bool = True,
                    creates: Sequence[Create] = ()) -> list[Exception | None]:
        """Group commit: new instances (``creates``) and several instances'
        batches in one transaction (one WAL flush); a duplicate new id, or an
        instance whose compare-and-set fails, is skipped and gets its error,
        the others commit. Errors: one per create, then one per batch."""
        return self._write(batches, owner=owner, now=now, sync=sync,
                           creates=creates)

    def _write(self, batches: Sequence[tuple[str, Sequence[LogRecord], str]],
               *, owner: str, now: float, sync: bool,
               creates: Sequence[Create]) -> list[Exception | None]:
        """:meth:`append_many` and :meth:`create` (one transaction, each
        instance on its own); a create is always synchronous: its first
        commands leave once this returns."""
        for info, start, later in creates:
            check_consecutive(info.saga_id, start, later)
        s = self.schema
        failed: dict[int, tuple[str, int]] = {}
        create_errors: list[Exception | None] = []
        with self._db.transaction():
            if not sync and not creates:
                self._db.execute("SET LOCAL synchronous_commit = off")
            for info, start, later in creates:
                create_errors.append(self._insert_new(info, start, later))
            rows: list[tuple[object, ...]] = []
            for k, (saga_id, records, status) in enumerate(batches):
                if not records:
                    continue
                first = records[0].seq
                cur = self._db.execute(
                    f"UPDATE {s}.sagas SET next_seq=%s, status=%s, updated_at=%s "
                    "WHERE saga_id=%s AND owner=%s AND next_seq=%s",
                    (first + len(records), status, now, saga_id, owner, first))
                if cur.rowcount != 1:
                    failed[k] = (saga_id, first)
                    continue
                rows.extend(_row(r) for r in records)
                self._db.execute("SELECT pg_notify(%s, %s)", (f"{s}_log", saga_id))
            if rows:
                with self._db.cursor() as c:
                    c.executemany(
                        f"INSERT INTO {s}.log({_REC_COLS}) "
                        "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
        out: list[Exception | None] = [None] * len(batches)
        for k, (saga_id, first) in failed.items():
            try:
                self._explain_append_failure(saga_id, owner, first)
            except (LeaseLost, CorruptLog, UnknownSaga) as exc:
                out[k] = exc
        return create_errors + out

    def _explain_append_failure(self, saga_id: str, owner: str, seq: int) -> None:
        info = self.get(saga_id)
        if info.owner != owner:
            raise LeaseLost(
                f"saga_id={saga_id!r} is now owned by {info.owner!r}, not {owner!r}")
        raise CorruptLog(
            f"saga_id={saga_id!r}: appending seq={seq} but the log is at "
            f"next_seq={info.next_seq}")

    @_guarded("reading the log")
    def records(self, saga_id: str) -> list[LogRecord]:
        self.get(saga_id)
        rows = self._db.execute(
            f"SELECT {_REC_COLS} FROM {self.schema}.log WHERE saga_id=%s "
            "ORDER BY seq", (saga_id,)).fetchall()
        return [LogRecord(saga_id=r[0], seq=r[1], kind=r[2], step=r[3],
                          step_index=r[4], outcome=r[5], attempt=r[6],
                          definition_hash=r[7], data=r[8], at=r[9]) for r in rows]

    @_guarded("reading the log")
    def get(self, saga_id: str) -> SagaInfo:
        row = self._db.execute(
            f"SELECT {_INFO_COLS} FROM {self.schema}.sagas WHERE saga_id=%s",
            (saga_id,)).fetchone()
        if row is None:
            raise UnknownSaga(f"no saga_id={saga_id!r} in db={_redact(self.path)!r}")
        return _info(row)

    @_guarded("reading the log")
    def instances(self, *, status: str | None = None) -> list[SagaInfo]:
        sql = f"SELECT {_INFO_COLS} FROM {self.schema}.sagas"
        if status is None:
            rows = self._db.execute(sql + " ORDER BY created_at, saga_id")
        else:
            rows = self._db.execute(
                sql + " WHERE status=%s ORDER BY created_at, saga_id", (status,))
        return [_info(r) for r in rows.fetchall()]

    @_guarded("reading the log")
    def unfinished(self) -> list[SagaInfo]:
        """Instances the summary calls running or whose records do not end
        with ``end``: what ``recover`` replays (one query, as on SQLite)."""
        s = self.schema
        rows = self._db.execute(
            f"SELECT {_INFO_COLS} FROM {s}.sagas g WHERE status=%s OR (SELECT "
            f"kind FROM {s}.log l WHERE l.saga_id=g.saga_id ORDER BY seq DESC "
            "LIMIT 1) IS DISTINCT FROM 'end' ORDER BY created_at, saga_id",
            (RUNNING,)).fetchall()
        return [_info(r) for r in rows]

    @_guarded("reading the log")
    def counts(self) -> dict[str, int]:
        """Number of instances per status."""
        return dict(self._db.execute(
            f"SELECT status, count(*) FROM {self.schema}.sagas "
            "GROUP BY status").fetchall())

    @_guarded("claiming a saga")
    def claim(self, saga_id: str, *, owner: str, lease_until: float, now: float,
              expect_status: str = RUNNING, new_status: str = RUNNING,
              force: bool = False) -> bool:
        info = self.get(saga_id)
        if info.status != expect_status:
            return False
        if not lease_is_free(info, owner=owner, now=now, force=force):
            return False
        # Compare-and-set on the owner we saw, so two workers cannot both win.
        cur = self._db.execute(
            f"UPDATE {self.schema}.sagas SET owner=%s, lease_until=%s, status=%s "
            "WHERE saga_id=%s AND status=%s AND owner IS NOT DISTINCT FROM %s",
            (owner, lease_until, new_status, saga_id, expect_status, info.owner))
        return bool(cur.rowcount == 1)

    @_guarded("claiming sagas")
    def claimable(self, *, owner: str, lease_until: float, now: float,
                  limit: int = 16) -> list[SagaInfo]:
        """Take up to ``limit`` running instances whose lease is free (never
        held, or expired) and return them, now leased to ``owner``.

        ``FOR UPDATE SKIP LOCKED`` lets many workers poll at once: each row is
        handed to one of them, and nobody waits for another's transaction.
        """
        s = self.schema
        with self._db.transaction():
            rows = self._db.execute(
                f"SELECT saga_id FROM {s}.sagas WHERE status=%s AND "
                "(owner IS NULL OR lease_until < %s) ORDER BY created_at, saga_id "
                "LIMIT %s FOR UPDATE SKIP LOCKED",
                (RUNNING, now, limit)).fetchall()
            ids = [r[0] for r in rows]
            if not ids:
                return []
            self._db.execute(
                f"UPDATE {s}.sagas SET owner=%s, lease_until=%s "
                "WHERE saga_id = ANY(%s)", (owner, lease_until, ids))
        return [self.get(i) for i in ids]

    @_guarded("renewing leases")
    def renew(self, owner: str, lease_until: float) -> None:
        self._db.execute(
            f"UPDATE {self.schema}.sagas SET lease_until=%s "
            "WHERE owner=%s AND status=%s", (lease_until, owner, RUNNING))

    @_guarded("listening for appends")
    def wait_for_appends(self, timeout: float) -> bool:
        """Block until some worker appends to this log (``LISTEN``), or
        ``timeout`` seconds; whether an append was announced."""
        if self._listener is None:
            self._listener = self._psycopg.connect(self.path, autocommit=True)
            self._listener.execute(f"LISTEN {self.schema}_log")
        got = False
        for _ in self._listener.notifies(timeout=timeout, stop_after=1):
            got = True
        return got

    def drop(self) -> None:
        """Remove the schema and everything in it (tests)."""
        self._db.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._db.close()


class LogUnavailable(LogError):
    """The log's server cannot be reached (RT009)."""


class UnknownLog(NoSuchLog):
    """There is no sagaproof log in the schema ``--db`` names (RT001)."""


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _row(r: LogRecord) -> tuple[object, ...]:
    return (r.saga_id, r.seq, r.kind, r.step, r.step_index, r.outcome, r.attempt,
            r.definition_hash, r.data, r.at)


def _info(r: Sequence[Any]) -> SagaInfo:
    return SagaInfo(saga_id=str(r[0]), name=str(r[1]), definition_hash=str(r[2]),
                    definition_path=r[3], participants=r[4], input=str(r[5]),
                    status=str(r[6]), owner=r[7], lease_until=float(r[8]),
                    next_seq=int(r[9]), created_at=float(r[10]),
                    updated_at=float(r[11]))

"""The default durable log: SQLite in one file, WAL, stdlib ``sqlite3``.

Commits are synchronous (fsync of the WAL) at the points that need them: a
batch that sends a command to a participant is on disk before the command
leaves, so after a crash the log never knows less than the participants were
told. Other batches (a final reply and the end marker) commit without fsync;
they survive a killed process, and after a power cut the last reply is simply
re-requested with the same idempotency key; so do claims (a lease lost to a
power cut is simply taken again). ``durability="full"`` fsyncs every commit.

Fsyncs are few by construction: a new instance's start record commits with
its first dispatches, and the engine's group commit puts the records of every
instance that is ready at once (new ones included) in one transaction. A
sequential saga of n commands pays n + 1 fsyncs with ``full`` (n with
``commands``).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sagaproof_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sagas(
    saga_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    definition_path TEXT,
    participants TEXT,
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    lease_until REAL NOT NULL,
    next_seq INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sagas_by_status ON sagas(status);
CREATE TABLE IF NOT EXISTS log(
    saga_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    step_index INTEGER NOT NULL,
    outcome TEXT,
    attempt INTEGER NOT NULL,
    definition_hash TEXT NOT NULL,
    data TEXT,
    at REAL NOT NULL,
    PRIMARY KEY(saga_id, seq)
) WITHOUT ROWID;
"""

_TABLES = frozenset({"sagaproof_meta", "sagas", "log"})
_P = ParamSpec("_P")
_R = TypeVar("_R")


def log_error(exc: sqlite3.Error, path: str, doing: str) -> LogError:
    """One line for a SQLite failure: which file, what was being done, the
    cause in words, and what to do (the code says which case, for scripts)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    where = f"db={path!r}: {doing} failed: {text}"
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return LogError("RT003", f"{where} (the log is read-only)",
                        fix="make the file and its directory writable, or "
                        "point --db at a writable copy")
    if name == "SQLITE_FULL" or "disk is full" in text:
        return LogError("RT004", f"{where} (no space left for the log)",
                        fix="free disk space (or raise the file-size limit) and "
                        "run the command again; nothing was written")
    if name.startswith("SQLITE_IOERR") or "I/O error" in text:
        return LogError("RT005", f"{where} (the disk refused a read or write: "
                        "full, over a file-size limit, or failing)",
                        fix="check free space, `ulimit -f` and the disk, then "
                        "run the command again; nothing was written")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return LogError("RT006", f"{where} (another process holds the log's "
                        "write lock)",
                        fix="wait for the other sagaproof process (or raise "
                        "--lock-timeout) and run the command again")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return LogError("RT007", f"{where} (cannot open the file)",
                        fix="check that the directory exists and is accessible")
    if "no such table" in text or "no such column" in text:
        return LogError("RT002", f"{where} (an incomplete sagaproof log)",
                        fix="restore the log from a backup, or start a new one "
                        "with `sagaproof run --db NEW.db`")
    return LogError("RT008", where, fix="the transaction was rolled back; check "
                    "the file with `sqlite3 DB 'PRAGMA integrity_check'`")


class Guardable(Protocol):
    """A SQLite-backed store whose methods :func:`guarded` can wrap."""

    path: str

    def _rollback(self) -> None: ...


_S = TypeVar("_S", bound=Guardable)


def guarded(
    doing: str,
) -> Callable[[Callable[Concatenate[_S, _P], _R]], Callable[Concatenate[_S, _P], _R]]:
    """Turn any ``sqlite3.Error`` of the method into a one-line
    :class:`LogError`, after rolling back whatever transaction it left open (a
    failed COMMIT may have ended it already: hence the check, which replaces
    ``cannot rollback - no transaction is active``)."""

    def wrap(
        fn: Callable[Concatenate[_S, _P], _R],
    ) -> Callable[Concatenate[_S, _P], _R]:
        @functools.wraps(fn)
        def call(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return fn(self, *args, **kwargs)
            except sqlite3.Error as exc:
                self._rollback()
                raise log_error(exc, self.path, doing) from None

        return call

    return wrap


def rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already (it does
    after some I/O errors, and a second ROLLBACK would fail)."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


_INFO_COLS = ("saga_id, name, definition_hash, definition_path, participants, input, "
              "status, owner, lease_until, next_seq, created_at, updated_at")
_REC_COLS = ("saga_id, seq, kind, step, step_index, outcome, attempt, "
             "definition_hash, data, at")


class SQLiteLog:
    """A :class:`~runtime.SagaLog` in one SQLite file.

    Opening a file that is not a sagaproof log (corrupt, or another program's
    database) raises :class:`CorruptLog` and leaves the file untouched.
    """

    def __init__(self, path: str | Path, *, durability: str = "commands",
                 check: bool = True, create: bool = True,
                 lock_timeout: float = 30.0) -> None:
        """Open (or, with ``create``, make) the log at ``path``.

        Args:
            path: the SQLite file.
            durability: ``commands``, ``full`` or ``os`` (see the module).
            check: run SQLite's quick integrity check on an existing file.
            create: make the file if it does not exist; commands that only read
                or finish an existing log pass False and get :class:`NoSuchLog`.
            lock_timeout: seconds to wait for another process's write lock.

        Raises:
            NoSuchLog: ``create`` is False and there is no file at ``path``.
            CorruptLog: the file is not a sagaproof log.
            LogError: SQLite failed (read-only, full, locked, I/O), one line.
        """
        if durability not in {"commands", "full", "os"}:
            raise ValueError(
                f"durability={durability!r}; use commands (fsync before a command "
                "is sent), full (fsync every commit) or os (no fsync)")
        self.path = str(path)
        self._durability = durability
        # Unknown until set: SQLite's default is FULL, so assuming NORMAL
        # here skipped the first PRAGMA and left durability="os" fsyncing.
        self._sync = ""
        self._lock_ms = max(0, int(lock_timeout * 1000))
        if not create and not Path(self.path).is_file():
            raise NoSuchLog(
                "RT001", f"no such log db={self.path!r}",
                fix="check the path (`sagaproof run` creates a log; this "
                "command only reads an existing one)")
        try:
            if create:
                self._db = sqlite3.connect(self.path, isolation_level=None,
                                           check_same_thread=False)
            else:
                # mode=rw: never create the file, even if it vanished meanwhile.
                uri = Path(self.path).resolve().as_uri() + "?mode=rw"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None,
                                           check_same_thread=False)
        except sqlite3.Error as exc:
            raise log_error(exc, self.path, "opening the log") from None
        try:
            self._open(check)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            name = getattr(exc, "sqlite_errorname", "") or ""
            if name in {"SQLITE_NOTADB", "SQLITE_CORRUPT"}:
                raise CorruptLog(
                    f"db={self.path!r} is not a readable SQLite database ({exc}); "
                    "point --db at a sagaproof log or a new file"
                ) from None
            raise log_error(exc, self.path, "opening the log") from None
        except BaseException:
            self._db.close()
            raise

    def _rollback(self) -> None:
        rollback(self._db)

    def _open(self, check: bool) -> None:
        db = self._db
        db.execute(f"PRAGMA busy_timeout={self._lock_ms}")
        tables = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "sagaproof_meta" not in tables:
            raise CorruptLog(
                f"db={self.path!r} is a SQLite database of another program (tables "
                f"{sorted(tables)!r}); give sagaproof its own file")
        if tables and not tables >= _TABLES:
            raise LogError(
                "RT002", f"db={self.path!r} is an incomplete sagaproof log: "
                f"tables {sorted(_TABLES - tables)!r} are missing",
                fix="restore the log from a backup, or start a new one with "
                "`sagaproof run --db NEW.db`")
        if tables:
            meta = dict(db.execute("SELECT key, value FROM sagaproof_meta"))
            if meta.get("magic") != MAGIC or meta.get("schema") != SCHEMA_VERSION:
                raise CorruptLog(
                    f"db={self.path!r} has sagaproof_meta={meta!r}, expected "
                    f"magic={MAGIC!r} schema={SCHEMA_VERSION!r}")
            if check:
                bad = db.execute("PRAGMA quick_check").fetchone()[0]
                if bad != "ok":
                    raise CorruptLog(f"db={self.path!r} fails its integrity check: "
                                     f"{bad}")
        db.execute("PRAGMA journal_mode=WAL")
        self._set_sync("FULL" if self._durability == "full" else "NORMAL")
        if not tables:
            db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(stmt)
                db.execute("INSERT OR IGNORE INTO sagaproof_meta VALUES ('magic', ?)",
                           (MAGIC,))
                db.execute("INSERT OR IGNORE INTO sagaproof_meta VALUES ('schema', ?)",
                           (SCHEMA_VERSION,))
                db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    @property
    def _claim_sync(self) -> str:
        """A lease needs no fsync of its own unless every commit gets one:
        no command is sent under it before the instance's next records
        commit with an fsync, which makes the claim durable too (the WAL is
        one sequence); a claim lost to a power cut only means nobody holds
        the instance, and the next recovery claims it again."""
        return "FULL" if self._durability == "full" else "NORMAL"

    def _set_sync(self, mode: str) -> None:
        if mode != self._sync:
            self._db.execute(f"PRAGMA synchronous={mode}")
            self._sync = mode

    # --- the protocol ---------------------------------------------------------
    @guarded("starting a saga")
    def create(self, info: SagaInfo, first: LogRecord,
               more: Sequence[LogRecord] = ()) -> None:
        """See :class:`~runtime.SagaLog`: always synchronous (unless
        ``durability="os"``), since ``more`` may hold dispatches whose commands
        leave as soon as this returns. A group commit of this one instance."""
        [error] = self._write((), owner="", now=0.0, sync=True,
                              creates=((info, first, more),))
        if error is not None:
            raise error

    def _insert_new(self, info: SagaInfo, first: LogRecord,
                    more: Sequence[LogRecord]) -> CorruptLog | None:
        """Insert one new instance inside the open transaction, under a
        savepoint: a duplicate id undoes only its own rows (the error is
        returned), so a group commit keeps the other instances."""
        db = self._db
        db.execute("SAVEPOINT new_saga")
        try:
            db.execute(
                f"INSERT INTO sagas({_INFO_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (info.saga_id, info.name, info.definition_hash, info.definition_path,
                 info.participants, info.input, info.status, info.owner,
                 info.lease_until, 1 + len(more), info.created_at,
                 info.updated_at))
            db.executemany(
                f"INSERT INTO log({_REC_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [_row(r) for r in (first, *more)])
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK TO new_saga")
            db.execute("RELEASE new_saga")
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_CONSTRAINT_PRIMARYKEY":
                raise
            return CorruptLog(
                f"saga_id={info.saga_id!r} already exists in db={self.path!r}; "
                "choose another id")
        db.execute("RELEASE new_saga")
        return None

    @guarded("appending to the log")
    def append(self, saga_id: str, records: Sequence[LogRecord], *, owner: str,
               status: str = RUNNING, now: float = 0.0, sync: bool = True) -> None:
        """See :class:`~runtime.SagaLog`; ``sync`` asks for an fsync (needed
        before a command is sent)."""
        if not records:
            return
        if self._durability == "commands":
            self._set_sync("FULL" if sync else "NORMAL")
        db = self._db
        first = records[0].seq
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute(
                "UPDATE sagas SET next_seq=?, status=?, updated_at=? "
                "WHERE saga_id=? AND owner=? AND next_seq=?",
                (first + len(records), status, now, saga_id, owner, first))
            if cur.rowcount != 1:
                db.execute("ROLLBACK")
                self._explain_append_failure(saga_id, owner, first)
            db.executemany(
                f"INSERT INTO log({_REC_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [_row(r) for r in records])
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    @guarded("appending to the log")
    def append_many(self, batches: Sequence[tuple[str, Sequence[LogRecord], str]],
                    *, owner: str, now: float = 0.0, sync: bool = True,
                    creates: Sequence[Create] = ()) -> list[Exception | None]:
        """Group commit: new instances (``creates``) and the batches of
        several instances in one transaction (one fsync). A duplicate new id,
        or an instance whose compare-and-set fails (lease lost, stale seq),
        is skipped and gets its error; the others commit. Errors: one per
        create, then one per batch."""
        return self._write(batches, owner=owner, now=now, sync=sync,
                           creates=creates)

    def _write(self, batches: Sequence[tuple[str, Sequence[LogRecord], str]],
               *, owner: str, now: float, sync: bool,
               creates: Sequence[Create]) -> list[Exception | None]:
        """:meth:`append_many` and :meth:`create` (one transaction, each
        instance on its own); a create is synchronous unless
        ``durability="os"``: its first commands leave once this returns."""
        for info, start, later in creates:
            check_consecutive(info.saga_id, start, later)
        if self._durability == "commands":
            self._set_sync("FULL" if sync or creates else "NORMAL")
        db = self._db
        failed: dict[int, tuple[str, int]] = {}
        create_errors: list[Exception | None] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for info, start, later in creates:
                create_errors.append(self._insert_new(info, start, later))
            for k, (saga_id, records, status) in enumerate(batches):
                if not records:
                    continue
                first = records[0].seq
                cur = db.execute(
                    "UPDATE sagas SET next_seq=?, status=?, updated_at=? "
                    "WHERE saga_id=? AND owner=? AND next_seq=?",
                    (first + len(records), status, now, saga_id, owner, first))
                if cur.rowcount != 1:
                    failed[k] = (saga_id, first)
                    continue
                db.executemany(
                    f"INSERT INTO log({_REC_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [_row(r) for r in records])
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
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

    @guarded("reading the log")
    def records(self, saga_id: str) -> list[LogRecord]:
        self.get(saga_id)
        rows = self._db.execute(
            f"SELECT {_REC_COLS} FROM log WHERE saga_id=? ORDER BY seq", (saga_id,))
        return [LogRecord(saga_id=r[0], seq=r[1], kind=r[2], step=r[3],
                          step_index=r[4], outcome=r[5], attempt=r[6],
                          definition_hash=r[7], data=r[8], at=r[9]) for r in rows]

    @guarded("reading the log")
    def get(self, saga_id: str) -> SagaInfo:
        row = self._db.execute(f"SELECT {_INFO_COLS} FROM sagas WHERE saga_id=?",
                               (saga_id,)).fetchone()
        if row is None:
            raise UnknownSaga(f"no saga_id={saga_id!r} in db={self.path!r}")
        return _info(row)

    @guarded("reading the log")
    def instances(self, *, status: str | None = None) -> list[SagaInfo]:
        if status is None:
            rows = self._db.execute(
                f"SELECT {_INFO_COLS} FROM sagas ORDER BY created_at, saga_id")
        else:
            rows = self._db.execute(
                f"SELECT {_INFO_COLS} FROM sagas WHERE status=? "
                "ORDER BY created_at, saga_id", (status,))
        return [_info(r) for r in rows]

    @guarded("reading the log")
    def unfinished(self) -> list[SagaInfo]:
        """Instances the summary calls running or whose records do not end
        with an ``end`` marker: the candidates ``recover`` replays. One query
        on the (saga_id, seq) key, so a log of many finished sagas stays cheap."""
        rows = self._db.execute(
            f"SELECT {_INFO_COLS} FROM sagas s WHERE status=? OR (SELECT kind FROM "
            "log l WHERE l.saga_id=s.saga_id ORDER BY seq DESC LIMIT 1) IS NOT "
            "'end' ORDER BY created_at, saga_id", (RUNNING,))
        return [_info(r) for r in rows]

    @guarded("reading the log")
    def counts(self) -> dict[str, int]:
        """Number of instances per status."""
        return dict(self._db.execute(
            "SELECT status, count(*) FROM sagas GROUP BY status").fetchall())

    @guarded("claiming a saga")
    def claim(self, saga_id: str, *, owner: str, lease_until: float, now: float,
              expect_status: str = RUNNING, new_status: str = RUNNING,
              force: bool = False) -> bool:
        info = self.get(saga_id)
        if info.status != expect_status:
            return False
        if not lease_is_free(info, owner=owner, now=now, force=force):
            return False
        self._set_sync(self._claim_sync)
        # Compare-and-set on the owner we saw, so two workers cannot both win.
        cur = self._db.execute(
            "UPDATE sagas SET owner=?, lease_until=?, status=? "
            "WHERE saga_id=? AND status=? AND owner IS ?",
            (owner, lease_until, new_status, saga_id, expect_status, info.owner))
        return cur.rowcount == 1

    @guarded("claiming sagas")
    def claimable(self, *, owner: str, lease_until: float, now: float,
                  limit: int = 16) -> list[SagaInfo]:
        """Lease up to ``limit`` free running instances (never held, or lease
        expired) to ``owner``; ``BEGIN IMMEDIATE`` makes the pick and the
        update one step for every process sharing the file."""
        self._set_sync(self._claim_sync)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            ids = [r[0] for r in db.execute(
                "SELECT saga_id FROM sagas WHERE status=? AND (owner IS NULL OR "
                "lease_until < ?) ORDER BY created_at, saga_id LIMIT ?",
                (RUNNING, now, limit))]
            db.executemany("UPDATE sagas SET owner=?, lease_until=? WHERE saga_id=?",
                           [(owner, lease_until, i) for i in ids])
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return [self.get(i) for i in ids]

    @guarded("renewing leases")
    def renew(self, owner: str, lease_until: float) -> None:
        self._db.execute("UPDATE sagas SET lease_until=? WHERE owner=? AND status=?",
                         (lease_until, owner, RUNNING))

    def close(self) -> None:
        self._db.close()


def _row(r: LogRecord) -> tuple[object, ...]:
    return (r.saga_id, r.seq, r.kind, r.step, r.step_index, r.outcome, r.attempt,
            r.definition_hash, r.data, r.at)


def _info(r: tuple[object, ...]) -> SagaInfo:
    return SagaInfo(saga_id=str(r[0]), name=str(r[1]), definition_hash=str(r[2]),
                    definition_path=r[3] if r[3] is None else str(r[3]),
                    participants=r[4] if r[4] is None else str(r[4]),
                    input=str(r[5]), status=str(r[6]),
                    owner=r[7] if r[7] is None else str(r[7]),
                    lease_until=float(r[8]),  # type: ignore[arg-type]
                    next_seq=int(r[9]),  # type: ignore[call-overload]
                    created_at=float(r[10]),  # type: ignore[arg-type]
                    updated_at=float(r[11]))  # type: ignore[arg-type]

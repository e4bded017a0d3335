"""Runtime error paths: every SQLite failure is one line, exit 2, log unchanged.

Each case runs the real CLI in a subprocess against a real file (a read-only
file, a file-size limit, another process's lock, a dropped table, a trigger that
fails in the middle of a transaction) and compares the log's rows before and
after.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime import LogError, NoSuchLog, SQLiteLog

ROOT = Path(__file__).resolve().parents[2]
TRIP = str(ROOT / "examples" / "trip_booking.saga.yaml")
PARTICIPANTS = "examples.participants.trip"
Rows = tuple[list[tuple[object, ...]], list[tuple[object, ...]]]


def rows(db: Path) -> Rows:
    """Every row of the log's two tables, in key order."""
    con = sqlite3.connect(db)
    try:
        return (con.execute("SELECT * FROM sagas ORDER BY saga_id").fetchall(),
                con.execute("SELECT * FROM log ORDER BY saga_id, seq").fetchall())
    finally:
        con.close()


def cli(*args: str, ledger: Path, preexec: Callable[[], None] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sagaproof", *args], check=False,
        capture_output=True, text=True, cwd=ROOT, timeout=120, preexec_fn=preexec,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
             "SAGAPROOF_LEDGER": str(ledger)},
    )


def one_line_error(out: subprocess.CompletedProcess[str], code: str) -> str:
    """The run failed with exit 2 and exactly one line on stderr, with ``code``."""
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert f"[{code}]" in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory anyone may write (the read-only case runs as ``nobody``)."""
    d = Path(tempfile.mkdtemp(prefix="sagaproof-logerr-"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _started(workdir: Path) -> Path:
    db = workdir / "s.db"
    out = cli("run", TRIP, "--participants", PARTICIPANTS, "--db", str(db),
              "--saga-id", "t1", ledger=workdir / "ledger.db")
    assert out.returncode == 0, out.stderr
    return db


def _run_t2(db: Path, workdir: Path, *extra: str,
            preexec: Callable[[], None] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    return cli("run", TRIP, "--participants", PARTICIPANTS, "--db", str(db),
               "--saga-id", "t2", *extra, ledger=workdir / "ledger.db",
               preexec=preexec)


# --- a --db that does not exist ------------------------------------------------------
@pytest.mark.parametrize("command", [["status"], ["recover"], ["resume", "x"]])
def test_reading_commands_do_not_create_a_log(command: list[str],
                                              workdir: Path) -> None:
    db = workdir / "typo.db"
    out = cli(*command, "--db", str(db), ledger=workdir / "ledger.db")
    assert "no such log" in one_line_error(out, "RT001")
    assert not db.exists()


def test_conform_does_not_create_a_log(workdir: Path) -> None:
    db = workdir / "typo.db"
    out = cli("conform", TRIP, str(db), ledger=workdir / "ledger.db")
    assert "no such log" in one_line_error(out, "RT001")
    assert not db.exists()


def test_run_creates_the_log(workdir: Path) -> None:
    assert rows(_started(workdir))[0][0][0] == "t1"


def test_library_refuses_to_create_when_asked_not_to(workdir: Path) -> None:
    with pytest.raises(NoSuchLog, match="RT001"):
        SQLiteLog(workdir / "none.db", create=False)
    assert not (workdir / "none.db").exists()


# --- read-only --------------------------------------------------------------------
def _unprivileged() -> None:
    """Root ignores file modes: drop CAP_DAC_OVERRIDE from the bounding set
    before exec so the child (still root, still able to read the interpreter)
    obeys them."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_capbset_drop, cap_dac_override = 24, 1
        if libc.prctl(pr_capbset_drop, cap_dac_override, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_read_only_log(workdir: Path) -> None:
    db = _started(workdir)
    before = rows(db)
    db.chmod(0o444)
    (workdir / "ledger.db").chmod(0o666)
    out = _run_t2(db, workdir, preexec=_unprivileged)
    assert "read-only" in one_line_error(out, "RT003")
    db.chmod(0o644)
    assert rows(db) == before
    # Reading a read-only log still works.
    db.chmod(0o444)
    ok = cli("status", "--db", str(db), ledger=workdir / "ledger.db",
             preexec=_unprivileged)
    assert ok.returncode == 0 and "t1" in ok.stdout, ok.stderr


# --- disk full ------------------------------------------------------------------------
def test_disk_full(workdir: Path) -> None:
    """A file-size limit below what the next transaction needs: SQLite's write
    fails (EFBIG, SIGXFSZ ignored) as on a full disk."""
    db = _started(workdir)
    before = rows(db)
    limit = 128 * 1024  # above SQLite's 32 KiB shared-memory file

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    # A large input: the start record alone needs far more than the limit.
    big = workdir / "input.json"
    big.write_text('{"note": "' + "x" * 512 * 1024 + '"}')
    out = _run_t2(db, workdir, "--input", f"@{big}", preexec=small_files)
    line = one_line_error(out, "RT005")
    assert "cannot rollback" not in line
    assert rows(db) == before


# --- locked --------------------------------------------------------------------------
def test_locked_log(workdir: Path) -> None:
    db = _started(workdir)
    before = rows(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock
    try:
        out = _run_t2(db, workdir, "--lock-timeout", "200ms")
        assert "write lock" in one_line_error(out, "RT006")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert rows(db) == before


# --- missing tables ---------------------------------------------------------------
@pytest.mark.parametrize("command", [["status"], ["recover"], ["run"]])
def test_missing_log_table(command: list[str], workdir: Path) -> None:
    db = _started(workdir)
    con = sqlite3.connect(db)
    con.execute("DROP TABLE log")
    con.commit()
    sagas = con.execute("SELECT * FROM sagas").fetchall()
    con.close()
    args = ([*command, TRIP, "--participants", PARTICIPANTS]
            if command == ["run"] else command)
    out = cli(*args, "--db", str(db), ledger=workdir / "ledger.db")
    assert "['log'] are missing" in one_line_error(out, "RT002")
    con = sqlite3.connect(db)
    assert con.execute("SELECT * FROM sagas").fetchall() == sagas
    assert {r[0] for r in con.execute("SELECT name FROM sqlite_master")} == {
        "sagaproof_meta", "sagas", "sagas_by_status",
        "sqlite_autoindex_sagaproof_meta_1", "sqlite_autoindex_sagas_1"}
    con.close()


# --- an sqlite3 error in the middle of a transaction ------------------------------
def test_error_mid_transaction_rolls_back(workdir: Path) -> None:
    """A trigger fails the log insert after the ``sagas`` update of the same
    transaction: the update is rolled back with it, the CLI says one line."""
    db = _started(workdir)
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER fail_late BEFORE INSERT ON log "
                "WHEN NEW.saga_id = 't2' AND NEW.seq >= 3 "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
    con.commit()
    con.close()
    out = _run_t2(db, workdir)
    assert "injected failure" in one_line_error(out, "RT008")
    sagas, log = rows(db)
    t2 = next(r for r in sagas if r[0] == "t2")
    t2_log = [r for r in log if r[0] == "t2"]
    # The header agrees with the records: the failed append (its sagas update
    # and every record of its batch) left no trace.
    assert t2[9] == len(t2_log)
    assert len(t2_log) >= 2
    assert [r[1] for r in t2_log] == list(range(len(t2_log)))
    assert len(t2_log) < 4  # seq 3 never landed


def test_log_error_is_a_saga_error() -> None:
    from saga_models import SagaError

    assert issubclass(LogError, SagaError)
    assert issubclass(NoSuchLog, FileNotFoundError)


def test_every_runtime_and_budget_code_is_documented() -> None:
    """Both ways: each RTnnn / budget code (SAGA190, SAGA191) in the code has a
    row in the docs, and each row is used (a row for a code nothing raises
    would be a stale promise). SAGA192-195 are check options, raised outside
    runtime/: tests/test_validate.py holds every code to the docs both ways."""
    import re

    code = re.compile(r"\b(RT\d{3}|SAGA19[01])\b")
    sources = [*(ROOT / "runtime").rglob("*.py"), ROOT / "sagaproof" / "budget.py"]
    used = {c for f in sources for c in code.findall(f.read_text())}
    rows = {m.group(1) for line in
            (ROOT / "docs" / "diagnostics.md").read_text().splitlines()
            if line.startswith("| ") for m in [code.search(line)] if m}
    assert used and used == rows, (sorted(used - rows), sorted(rows - used))


def test_workflow_store_read_only(workdir: Path) -> None:
    """The event-workflow runtime's store gets the same one-line errors."""
    wf = str(ROOT / "examples" / "workflows" / "order_saga.workflow.yaml")
    db = workdir / "w.db"

    def run_wf(sid: str, preexec: Callable[[], None] | None = None,
               ) -> subprocess.CompletedProcess[str]:
        return cli("run", wf, "--participants",
                   "examples.workflows.handlers:order_saga", "--db", str(db),
                   "--saga-id", sid, "--input", '{"amount": 500}',
                   ledger=workdir / "ledger.db", preexec=preexec)

    assert run_wf("c1").returncode == 0
    tables = ["wf_instances", "wf_log", "wf_outbox", "wf_services"]

    def dump() -> list[list[tuple[object, ...]]]:
        con = sqlite3.connect(db)
        try:
            return [con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                    for t in tables]
        finally:
            con.close()

    before = dump()
    db.chmod(0o444)
    out = run_wf("c2", preexec=_unprivileged)
    assert "read-only" in one_line_error(out, "RT003")
    db.chmod(0o644)
    assert dump() == before

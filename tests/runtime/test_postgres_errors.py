"""PostgreSQL log failures are one line with a code, exit 2, never a
traceback, and leave the log unchanged (as on SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import LogError, LogRecord, SagaInfo
from runtime._postgres import PostgresLog

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sagaproof", *args], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=120, check=False)


def test_unreachable_server_is_one_line_exit_2() -> None:
    out = _cli("status", "--db", "postgresql://postgres@127.0.0.1:1/postgres")
    assert out.returncode == 2, out.stderr
    assert "[RT009]" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_reading_commands_do_not_create_a_log(pg_url: str, pg_schema: str) -> None:
    out = _cli("status", "--db", f"{pg_url}#{pg_schema}")
    assert out.returncode == 2 and "[RT001]" in out.stderr, out.stderr
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM information_schema.schemata "
                          "WHERE schema_name=%s", (pg_schema,)).fetchone()[0] == 0


def test_a_dropped_connection_is_a_log_error_and_nothing_is_written(
        pg_url: str, pg_schema: str) -> None:
    import psycopg

    log = PostgresLog(pg_url, schema=pg_schema)
    log.create(SagaInfo(saga_id="s", name="n", definition_hash="h", owner="w"),
               LogRecord(saga_id="s", seq=0, kind="start", definition_hash="h"))
    pid = log._db.info.backend_pid
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(LogError) as info:
        log.append("s", [LogRecord(saga_id="s", seq=1, kind="dispatch", step="a",
                                   step_index=0, definition_hash="h")], owner="w")
    assert info.value.code == "RT009"
    log.close()
    fresh = PostgresLog(pg_url, schema=pg_schema)
    assert [r.seq for r in fresh.records("s")] == [0]  # unchanged
    fresh.close()

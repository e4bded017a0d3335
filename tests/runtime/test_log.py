"""The durable log: SQLite and in-memory behind one protocol, bad files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import (
    CorruptLog,
    LeaseLost,
    LogRecord,
    MemoryLog,
    SagaInfo,
    SQLiteLog,
    UnknownSaga,
)
from runtime._log import owner_is_dead


def _info(sid: str = "s1", owner: str = "w1") -> SagaInfo:
    return SagaInfo(saga_id=sid, name="n", definition_hash="h", owner=owner,
                    lease_until=100.0)


def _rec(seq: int, kind: str = "dispatch", sid: str = "s1") -> LogRecord:
    return LogRecord(saga_id=sid, seq=seq, kind=kind, step="a", step_index=0,
                     definition_hash="h")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "memory":
        yield MemoryLog()
        return
    if request.param == "postgres":
        from runtime._postgres import PostgresLog

        url = request.getfixturevalue("pg_url")
        pg = PostgresLog(url, schema=request.getfixturevalue("pg_schema"))
        yield pg
        pg.close()
        return
    sq = SQLiteLog(tmp_path / "s.db")
    yield sq
    sq.close()


def test_append_and_read_back(log: SQLiteLog) -> None:
    log.create(_info(), _rec(0, "start"))
    log.append("s1", [_rec(1), _rec(2, "reply")], owner="w1")
    assert [r.seq for r in log.records("s1")] == [0, 1, 2]
    assert log.get("s1").next_seq == 3
    log.append("s1", [_rec(3, "end")], owner="w1", status="COMPLETED")
    assert log.get("s1").status == "COMPLETED"
    assert log.instances(status="running") == []


def test_append_is_fenced_by_the_lease(log: SQLiteLog) -> None:
    log.create(_info(), _rec(0, "start"))
    with pytest.raises(LeaseLost, match="owned by 'w1', not 'w2'"):
        log.append("s1", [_rec(1)], owner="w2")
    assert len(log.records("s1")) == 1  # nothing half-applied


def test_out_of_sequence_append_is_rejected(log: SQLiteLog) -> None:
    log.create(_info(), _rec(0, "start"))
    with pytest.raises(CorruptLog, match="seq"):
        log.append("s1", [_rec(5)], owner="w1")
    assert len(log.records("s1")) == 1


def test_claim_respects_live_leases(log: SQLiteLog) -> None:
    log.create(_info(owner="otherhost:1:x"), _rec(0, "start"))
    assert not log.claim("s1", owner="w2", lease_until=200.0, now=50.0)
    assert log.claim("s1", owner="w2", lease_until=200.0, now=150.0)  # expired
    assert log.get("s1").owner == "w2"
    assert log.claim("s1", owner="w3", lease_until=300.0, now=0.0, force=True)


def test_unknown_saga(log: SQLiteLog) -> None:
    with pytest.raises(UnknownSaga):
        log.get("nope")


def test_duplicate_id_is_refused(log: SQLiteLog) -> None:
    log.create(_info(), _rec(0, "start"))
    with pytest.raises(CorruptLog, match="already exists"):
        log.create(_info(), _rec(0, "start"))


def test_corrupt_file_is_a_clear_error_and_left_untouched(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    before = bad.read_bytes()
    with pytest.raises(CorruptLog, match="not a readable SQLite database"):
        SQLiteLog(bad)
    assert bad.read_bytes() == before


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users(id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(CorruptLog, match=r"another program.*users"):
        SQLiteLog(path)
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["users"]


def test_reopening_keeps_the_log(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "s.db")
    log.create(_info(), _rec(0, "start"))
    log.close()
    again = SQLiteLog(tmp_path / "s.db")
    assert again.get("s1").name == "n"
    assert again.counts() == {"running": 1}


def test_dead_owner_on_this_host_is_detected() -> None:
    import os
    import socket
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host = socket.gethostname()
    assert owner_is_dead(f"{host}:{proc.pid}:x")
    assert not owner_is_dead(f"{host}:{os.getpid()}:x")
    assert not owner_is_dead(f"elsewhere:{proc.pid}:x")


def test_group_commit_fences_each_instance_on_its_own(log: SQLiteLog) -> None:
    from runtime._log import append_many

    log.create(_info("g1"), _rec(0, "start", "g1"))
    log.create(_info("g2", owner="other"), _rec(0, "start", "g2"))
    log.create(_info("g3"), _rec(0, "start", "g3"))
    errors = append_many(log, [("g1", [_rec(1, sid="g1")], "running"),
                               ("g2", [_rec(1, sid="g2")], "running"),
                               ("g3", [_rec(1, sid="g3"), _rec(2, sid="g3")],
                                "running")], owner="w1", now=1.0, sync=True)
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], LeaseLost)
    assert [r.seq for r in log.records("g1")] == [0, 1]
    assert [r.seq for r in log.records("g2")] == [0]  # nothing of it written
    assert [r.seq for r in log.records("g3")] == [0, 1, 2]
    assert log.get("g3").next_seq == 3


def test_create_writes_the_first_records_with_the_start(log: SQLiteLog) -> None:
    log.create(_info(), _rec(0, "start"), [_rec(1), _rec(2)])
    assert [r.seq for r in log.records("s1")] == [0, 1, 2]
    assert log.get("s1").next_seq == 3
    log.append("s1", [_rec(3, "reply")], owner="w1")
    assert log.get("s1").next_seq == 4


def test_create_refuses_records_out_of_sequence(log: SQLiteLog) -> None:
    with pytest.raises(CorruptLog, match="expected seq=1"):
        log.create(_info(), _rec(0, "start"), [_rec(2)])
    with pytest.raises(CorruptLog, match="saga_id='other'"):
        log.create(_info(), _rec(0, "start"), [_rec(1, sid="other")])
    with pytest.raises(UnknownSaga):
        log.get("s1")  # nothing of either was written


def test_group_commit_creates_new_instances_each_on_its_own(
        log: SQLiteLog) -> None:
    from runtime._log import append_many

    log.create(_info("g1"), _rec(0, "start", "g1"))
    errors = append_many(
        log, [("g1", [_rec(1, sid="g1")], "running")], owner="w1", now=1.0,
        sync=True, creates=[(_info("g4"), _rec(0, "start", "g4"),
                             [_rec(1, sid="g4")]),
                            (_info("g1"), _rec(0, "start", "g1"), [])])
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], CorruptLog)  # g1 exists: only it is refused
    assert [r.seq for r in log.records("g4")] == [0, 1]
    assert log.get("g4").next_seq == 2
    assert [r.seq for r in log.records("g1")] == [0, 1]

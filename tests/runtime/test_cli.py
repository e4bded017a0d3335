"""The runtime's CLI commands, end to end on real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sagaproof.cli import main

ROOT = Path(__file__).resolve().parents[2]
TRIP = str(ROOT / "examples" / "trip_booking.saga.yaml")
PARTICIPANTS = "examples.participants.trip"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # module:object specs resolve from a clone's root
    monkeypatch.setenv("SAGAPROOF_LEDGER", str(tmp_path / "ledger.db"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_status_conform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    code, out, _ = run(capsys, "run", TRIP, "--participants", PARTICIPANTS,
                       "--db", db, "--saga-id", "t1")
    assert code == 0 and out.startswith("t1: COMPLETED")
    code, out, _ = run(capsys, "run", TRIP, "--participants", PARTICIPANTS,
                       "--db", db, "--saga-id", "t2", "--json",
                       "--input", '{"fail": {"charge": "always"}}')
    assert code == 1 and json.loads(out)["outcome"] == "COMPENSATED"
    code, out, _ = run(capsys, "status", "--db", db)
    assert code == 0 and "1 COMPENSATED, 1 COMPLETED" in out
    code, out, _ = run(capsys, "status", "--db", db, "t2")
    assert "comp_reply    reserve_flight ok" in out
    code, out, _ = run(capsys, "conform", TRIP, db)
    assert code == 0 and "2 of 2 log(s)" in out
    ledger = sqlite3.connect(tmp_path / "ledger.db")
    rows = ledger.execute("SELECT saga_id, step, undone FROM effects "
                          "ORDER BY saga_id, step").fetchall()
    assert rows == [("t1", "charge", 0), ("t1", "confirm", 0),
                    ("t1", "reserve_car", 0), ("t1", "reserve_flight", 0),
                    ("t2", "reserve_car", 1), ("t2", "reserve_flight", 1)]


def test_conform_reports_a_doctored_log(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    run(capsys, "run", TRIP, "--participants", PARTICIPANTS, "--db", str(db),
        "--saga-id", "t1")
    records = json.loads(run(capsys, "status", "--db", str(db), "t1",
                             "--json")[1])["records"]
    del records[2]  # lose the reply of reserve_flight
    path = tmp_path / "log.json"
    path.write_text(json.dumps(records))
    code, out, _ = run(capsys, "conform", TRIP, str(path))
    assert code == 1
    assert "t1: does not conform: event 2 (dispatch reserve_car)" in out


def test_stuck_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    definition = tmp_path / "stuck.saga.yaml"
    definition.write_text(
        "saga: stuck\nsteps:\n"
        "  - {name: hold, participant: bank, action: hold, compensation: release}\n"
        "  - {name: ship, participant: post, action: ship, compensation: recall}\n"
        "compensation_policy: {max_attempts: 2, initial_interval: 10ms}\n")
    db = str(tmp_path / "s.db")
    bad = json.dumps({"fail": {"ship": "always"},
                      "fail_compensation": {"hold": "always"}})
    code, out, _ = run(capsys, "run", str(definition), "--participants",
                       "examples.participants.generic:participants", "--db", db,
                       "--saga-id", "s1", "--input", bad)
    assert code == 3 and "s1: STUCK" in out
    # The person fixes the cause: here, the injected failure lives in the input,
    # so resuming with a participant that no longer fails means new code.
    code, out, _ = run(capsys, "resume", "s1", "--db", db, "--participants",
                       "examples.participants.generic:participants_fixed")
    assert code == 1 and "s1: COMPENSATED" in out
    assert run(capsys, "conform", str(definition), db)[0] == 0
    code, _, err = run(capsys, "resume", "s1", "--db", db)
    assert code == 2 and "not STUCK" in err


def test_recover_finishes_an_interrupted_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from examples.participants.generic import participants
    from runtime import Engine, SQLiteLog
    from saga_models import load

    db = tmp_path / "s.db"
    log = SQLiteLog(db)
    engine = Engine(load(TRIP), participants, log=log, definition_path=TRIP,
                    participants_spec=PARTICIPANTS, worker_id="gone:1:x",
                    lease_seconds=0.0)

    async def interrupted() -> None:
        await engine.start({"hang": ["reserve_car"]}, saga_id="t9")
        await asyncio.sleep(0.05)
        await engine.aclose()  # the process "dies" with reserve_car in flight

    asyncio.run(interrupted())
    log.close()
    code, out, _ = run(capsys, "status", "--db", str(db))
    assert "t9  trip_booking  running" in out
    # reserve_car hung because of what the input says; a person fixes it and
    # recovers with participants that no longer hang.
    code, out, _ = run(capsys, "recover", "--db", str(db), "--participants",
                       "examples.participants.generic:participants_fixed")
    assert code == 0 and "t9: COMPLETED" in out and "recovered 1 of 1" in out
    calls = dict(sqlite3.connect(tmp_path / "ledger.db").execute(
        "SELECT step, calls FROM effects WHERE saga_id='t9'").fetchall())
    assert calls == {"reserve_flight": 1, "reserve_car": 1, "charge": 1,
                     "confirm": 1}  # the completed step was not re-run
    assert run(capsys, "conform", TRIP, str(db))[0] == 0


@pytest.mark.parametrize("content", [b"garbage" * 200, None])
def test_bad_databases_are_clear_errors(tmp_path: Path, content: bytes | None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "x.db"
    if content is None:
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE orders(id)")
        con.commit()
        con.close()
    else:
        db.write_bytes(content)
    before = db.read_bytes()
    code, _, err = run(capsys, "status", "--db", str(db))
    assert code == 2 and err.startswith("sagaproof: error: db=")
    assert "Traceback" not in err
    assert db.read_bytes() == before


def test_missing_participant_module_and_operation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    code, _, err = run(capsys, "run", TRIP, "--participants", "no.such.module",
                       "--db", db)
    assert code == 2 and "cannot import module 'no.such.module'" in err
    code, _, err = run(capsys, "run", TRIP, "--participants",
                       "examples.participants.ledger:Ledger", "--db", db)
    assert code == 2 and "no callable bound for" in err


def test_definition_hash_mismatch_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    run(capsys, "run", TRIP, "--participants", PARTICIPANTS, "--db", db,
        "--saga-id", "t1")
    changed = tmp_path / "trip.saga.yaml"
    changed.write_text(Path(TRIP).read_text().replace("timeout: 10s", "timeout: 5s"))
    code, _, err = run(capsys, "conform", str(changed), db)
    assert code == 2 and "definition hash" in err


def test_bad_input_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "run", TRIP, "--participants", PARTICIPANTS,
                       "--db", str(tmp_path / "s.db"), "--input", "{nope")
    assert code == 2 and "--input" in err

"""The ``sagas`` table is a summary of the records: ``conform`` checks it against
the replayed records, and ``recover`` decides from the records, not from it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sagaproof.cli import main

ROOT = Path(__file__).resolve().parents[2]
TRIP = str(ROOT / "examples" / "trip_booking.saga.yaml")
PARTICIPANTS = "examples.participants.trip"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SAGAPROOF_LEDGER", str(tmp_path / "ledger.db"))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def completed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    db = tmp_path / "s.db"
    code, out = cli(capsys, "run", TRIP, "--participants", PARTICIPANTS,
                    "--db", str(db), "--saga-id", "t1")
    assert code == 0, out
    return db


def sql(db: Path, *statements: str) -> None:
    con = sqlite3.connect(db)
    for s in statements:
        con.execute(s)
    con.commit()
    con.close()


def crashed(db: Path, keep: int) -> None:
    """Cut t1's records after ``keep`` (a worker killed there; its lease is
    over), with an honest summary."""
    sql(db, f"DELETE FROM log WHERE saga_id='t1' AND seq >= {keep}",
        f"UPDATE sagas SET next_seq={keep}, status='running', "
        "owner='vm:1:dead', lease_until=0 WHERE saga_id='t1'")


def test_honest_log_conforms(tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    db = completed(tmp_path, capsys)
    assert cli(capsys, "conform", TRIP, str(db))[0] == 0
    crashed(db, keep=4)  # reserve_flight done, reserve_car in flight
    assert cli(capsys, "conform", TRIP, str(db))[0] == 0


@pytest.mark.parametrize(("tamper", "expected"), [
    ("UPDATE sagas SET status='COMPENSATED'",
     "status column says 'COMPENSATED', the records say 'COMPLETED'"),
    ("UPDATE sagas SET next_seq=next_seq+1", "next_seq column is"),
    ("UPDATE sagas SET input='{\"x\": 1}'", "input column differs"),
    ("UPDATE sagas SET definition_hash='0123456789abcdef'", "definition_hash"),
    ("UPDATE log SET outcome='COMPENSATED' WHERE kind='end'",
     "end record says 'COMPENSATED'"),
    ("UPDATE log SET data='{not json' WHERE kind='reply' AND seq=2",
     "data is not JSON"),
    ("UPDATE log SET step_index=1 WHERE seq=1", "step index 1 is not step"),
    ("UPDATE log SET outcome='ok' WHERE seq=1", "a dispatch has outcome='ok'"),
])
def test_tampered_summary_is_reported(tamper: str, expected: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    db = completed(tmp_path, capsys)
    sql(db, tamper)
    code, out = cli(capsys, "conform", TRIP, str(db))
    assert code == 1, out
    assert "t1: does not conform" in out and expected in out, out


def test_completed_by_hand_with_a_step_held(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    """The issue's case: marked COMPLETED with reserve_car still in flight.
    conform rejects it; recover finishes it from the records; then it conforms."""
    db = completed(tmp_path, capsys)
    crashed(db, keep=4)
    sql(db, "UPDATE sagas SET status='COMPLETED' WHERE saga_id='t1'")
    code, out = cli(capsys, "conform", TRIP, str(db))
    assert code == 1
    assert "status column says 'COMPLETED', the records say 'running'" in out
    code, out = cli(capsys, "recover", "--db", str(db))
    assert code == 0 and "t1: COMPLETED" in out, out
    assert "recovered 1 of 1" in out
    code, out = cli(capsys, "conform", TRIP, str(db))
    assert code == 0, out
    con = sqlite3.connect(db)
    kinds = [r[0] for r in con.execute(
        "SELECT kind FROM log WHERE saga_id='t1' ORDER BY seq")]
    con.close()
    assert kinds[4] == "recover" and kinds[-1] == "end"
    # The completed step was not re-run: one dispatch of reserve_flight.
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM log WHERE saga_id='t1' AND "
                       "kind='dispatch' AND step='reserve_flight'").fetchone() == (1,)
    con.close()


def test_recover_ignores_a_running_summary_of_a_finished_log(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The other way: status says running, the records say COMPLETED: nothing
    is re-run (and conform reports the summary)."""
    db = completed(tmp_path, capsys)
    sql(db, "UPDATE sagas SET status='running', owner='vm:1:dead', lease_until=0")
    code, out = cli(capsys, "recover", "--db", str(db))
    assert code == 0 and "recovered 0 of 1" in out, out
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM log WHERE kind='recover'"
                       ).fetchone() == (0,)
    con.close()
    code, out = cli(capsys, "conform", TRIP, str(db))
    assert code == 1 and "status column says 'running'" in out

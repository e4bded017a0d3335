"""The reliability report's analysis can fail: seeded faults in a real log and
ledger show up in the figures (the slow scenarios rely on it)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "slow"
sys.path.insert(0, str(HERE))
import reliability as r  # noqa: E402
from kill_worker import saga_input, trip  # noqa: E402

from examples.participants.ledger import AnyParticipant, Ledger  # noqa: E402
from runtime import Engine, SQLiteLog  # noqa: E402


def _two_sagas(tmp: Path) -> tuple[Path, Path]:
    db, ledger = tmp / "saga.db", tmp / "ledger.db"

    async def main() -> None:
        log = SQLiteLog(db)
        engine = Engine(trip(), AnyParticipant(Ledger(str(ledger))), log=log)
        try:
            for n in (1, 5):  # one completes, one compensates
                await engine.run(saga_input(n, 0.0), saga_id=f"trip-{n}")
        finally:
            await engine.aclose()
            log.close()

    asyncio.run(main())
    return db, ledger


def _sql(path: Path, statement: str) -> None:
    con = sqlite3.connect(path)
    con.execute(statement)
    con.commit()
    con.close()


def test_clean_run_is_ok(tmp_path: Path) -> None:
    db, ledger = _two_sagas(tmp_path)
    fig = r.analyse(db, ledger, "clean", kills=0, seconds=0)
    assert fig.ok() and fig.sagas == 2 and fig.lost_steps == 0, fig


def test_a_call_the_log_never_ordered_is_a_lost_step(tmp_path: Path) -> None:
    db, ledger = _two_sagas(tmp_path)
    _sql(ledger, "UPDATE effects SET calls=calls+1 WHERE saga_id='trip-1' AND "
         "step='charge'")
    fig = r.analyse(db, ledger, "seeded", kills=0, seconds=0)
    assert fig.lost_steps == 1 and fig.re_executions == 1 and not fig.ok()


def test_an_ok_reply_without_effect_is_a_lost_step(tmp_path: Path) -> None:
    db, ledger = _two_sagas(tmp_path)
    _sql(ledger, "DELETE FROM effects WHERE saga_id='trip-1' AND step='confirm'")
    assert r.analyse(db, ledger, "seeded", kills=0, seconds=0).lost_steps == 1


def test_unfinished_and_tampered_logs_are_counted(tmp_path: Path) -> None:
    db, ledger = _two_sagas(tmp_path)
    _sql(db, "DELETE FROM log WHERE saga_id='trip-1' AND kind IN ('end', 'reply') "
         "AND step IS NOT 'reserve_flight'")
    fig = r.analyse(db, ledger, "seeded", kills=0, seconds=0)
    assert fig.non_terminal == 1 and fig.conform_rejections >= 1, fig


def test_a_completed_step_sent_again_is_counted(tmp_path: Path) -> None:
    db, ledger = _two_sagas(tmp_path)
    # Re-label the confirm dispatch as a second dispatch of reserve_flight,
    # whose ok reply is already logged.
    _sql(db, "UPDATE log SET step='reserve_flight', step_index=0 WHERE "
         "saga_id='trip-1' AND kind='dispatch' AND step='confirm'")
    fig = r.analyse(db, ledger, "seeded", kills=0, seconds=0)
    assert fig.completed_rerun == 1 and not fig.ok()

"""Crash test with real processes and real SQLite: SIGKILL a worker at random
points (at least 200 times), restart it, and check the participants' own
records at the end."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime import SQLiteLog

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from kill_worker import audit, ledger_by_saga, trip  # noqa: E402

WORKER = HERE / "kill_worker.py"
KILLS = 200
TOTAL = 3000
DELAY = 0.02  # per call: ~100 sagas/s, so 200 kills land mid-run


def start(db: Path, ledger: Path) -> subprocess.Popen[str]:
    # stderr goes to a file beside the database, so a worker that dies before
    # saying "ready" leaves its traceback for the failure message.
    with (db.parent / "worker.err").open("a") as err:
        return subprocess.Popen(
            [sys.executable, str(WORKER), "--db", str(db), "--ledger", str(ledger),
             "--total", str(TOTAL), "--delay", str(DELAY)], stdout=subprocess.PIPE,
            stderr=err, text=True)


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_repeats_nothing(
        tmp_path: Path) -> None:
    db, ledger = tmp_path / "saga.db", tmp_path / "ledger.db"
    rng = random.Random(20261125)
    kills = 0
    while kills < KILLS:
        proc = start(db, ledger)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.kill()
            proc.wait()
            proc.stdout.close()
            tail = (tmp_path / "worker.err").read_text()[-3000:]
            pytest.fail(f"worker {kills + 1} did not start (said {line!r}):\n{tail}")
        time.sleep(rng.uniform(0.0, 0.25))
        if proc.poll() is not None:
            proc.stdout.close()
            pytest.fail(f"the worker finished all {TOTAL} sagas after only {kills} "
                        "kills; raise TOTAL or DELAY")
        os.kill(proc.pid, signal.SIGKILL)
        kills += 1
        proc.wait()
        proc.stdout.close()
    proc = start(db, ledger)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "done" in out

    saga = trip()
    log = SQLiteLog(db)
    infos = log.instances()
    assert len(infos) == TOTAL  # nothing lost
    statuses = {i.status for i in infos}
    assert statuses <= {"COMPLETED", "COMPENSATED", "FAILED"}, statuses

    by_saga = ledger_by_saga(ledger)
    recovered = reexecuted = 0
    for info in infos:
        was, again = audit(saga, info, log.records(info.saga_id),
                           by_saga.get(info.saga_id, {}))
        recovered += was
        reexecuted += again
    assert reexecuted == 0  # no completed step was called again
    log.close()
    # Many kills land mid-saga (others land during a recovery, which is a
    # crash point too); make sure the first kind is not rare.
    assert recovered >= KILLS // 4, recovered
    print(json.dumps({"kills": kills, "sagas": TOTAL, "recovered": recovered,
                      "statuses": sorted(statuses)}))


"""Crash test with real processes and real SQLite: SIGKILL a worker at random
points (at least 200 times), restart it, and check the participants' own
records at the end."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from runtime import SQLiteLog
from saga_models import semantics as sem
from verifier.conformance import conform

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from kill_worker import trip  # noqa: E402

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

    with contextlib.closing(sqlite3.connect(ledger)) as con:
        effects = con.execute(
            "SELECT saga_id, step, calls, undone FROM effects").fetchall()
    by_saga: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for sid, step, calls, undone in effects:
        by_saga[sid][step] = (calls, undone)

    recovered = 0
    for info in infos:
        records = log.records(info.saga_id)
        res = conform(saga, records)
        assert res.conforms, (info.saga_id, res.message)
        recovered += any(r.kind == "recover" for r in records)
        # Every call a participant saw was ordered by the log: a dispatch, or a
        # re-send at recovery of a step the log shows in flight. A completed
        # step is never in flight again, so it is never called again.
        sends: dict[str, int] = defaultdict(int)
        state = sem.initial_state(saga)
        for r in records:
            if r.kind == "dispatch":
                sends[r.step or ""] += 1
            if r.kind == "recover":
                for i, step in enumerate(saga.steps):
                    if sem.field(state, i, sem.ST) == sem.Status.RUNNING:
                        sends[step.name] += 1
            state = _fold(saga, state, r)
        seen = by_saga.get(info.saga_id, {})
        for step, (calls, _undone) in seen.items():
            assert calls <= sends[step], (info.saga_id, step, calls, dict(sends))
        # Effects agree with the outcome.
        if info.status == "COMPLETED":
            assert set(seen) == {s.name for s in saga.steps}, (info.saga_id, seen)
            assert not any(u for _, u in seen.values())
        else:
            compensatable = {s.name for s in saga.steps if s.compensation}
            left = [s for s, (_, u) in seen.items() if not u and s in compensatable]
            assert not left, (info.saga_id, info.status, seen)
            assert not set(seen) - compensatable - {"charge"}
    log.close()
    # Many kills land mid-saga (others land during a recovery, which is a
    # crash point too); make sure the first kind is not rare.
    assert recovered >= KILLS // 4, recovered
    print(json.dumps({"kills": kills, "sagas": TOTAL, "recovered": recovered,
                      "statuses": sorted(statuses)}))


def _fold(saga: object, state: sem.State, r: object) -> sem.State:
    from runtime._replay import Replayed, _apply_record

    rep = Replayed(state=state)
    return _apply_record(saga, rep, r)  # type: ignore[arg-type]

"""Three workers on one real PostgreSQL log: SIGKILL a random worker at random
times (at least 100 kills) while the others keep running, restart it, pause
one past its lease now and then (SIGSTOP/SIGCONT); at the end every saga is
terminal, no completed step's action ran again, nothing is lost, and every log
conforms to the model. The participants record each call in their own ledger,
outside the log, so the test sees the truth."""

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

from runtime import Engine, SagaLog
from runtime._postgres import PostgresLog
from saga_models import semantics as sem
from verifier.conformance import conform

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from kill_worker import saga_input, trip  # noqa: E402
from test_kill import _fold  # noqa: E402

WORKER = HERE / "pg_worker.py"
KILLS = 100
STOPS = 5
BATCH = 40
LEASE = 1.0
DELAY = 0.3  # per participant call: sagas stay in flight across kills


def _start(url: str, schema: str, ledger: Path, errs: Path,
           idle_exit: float | None = None, *,
           wait: bool = True) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(WORKER), "--db", url, "--schema", schema,
           "--ledger", str(ledger), "--lease", str(LEASE)]
    if idle_exit is not None:
        cmd += ["--idle-exit", str(idle_exit)]
    with errs.open("a") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    if not wait:
        return proc  # killed while still starting, sometimes: a crash point too
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        proc.wait()
        pytest.fail(f"worker did not start ({line!r}):\n{errs.read_text()[-3000:]}")
    return proc


def _submit(log: SagaLog, first: int, n: int) -> None:
    from examples.participants.ledger import AnyParticipant, Ledger

    submitter = Engine(trip(), AnyParticipant(Ledger(":memory:")), log=log)
    for k in range(first, first + n):
        submitter.submit(saga_input(k, DELAY), saga_id=f"pg-{k:05d}")


@pytest.mark.slow
def test_three_workers_survive_sigkill_and_sigstop(
        tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    ledger, errs = tmp_path / "ledger.db", tmp_path / "workers.err"
    log = PostgresLog(pg_url, schema=pg_schema)
    rng = random.Random(20261206)
    submitted = 0
    _submit(log, submitted, BATCH)
    submitted += BATCH
    workers = [_start(pg_url, pg_schema, ledger, errs) for _ in range(3)]
    kills = stops = 0
    while kills < KILLS:
        time.sleep(rng.uniform(0.05, 0.3))
        if not log.instances(status="running"):
            _submit(log, submitted, BATCH)  # keep them busy until 100 kills
            submitted += BATCH
        k = rng.randrange(3)
        if stops < STOPS and rng.random() < 0.05:
            # Paused past its lease: its sagas are taken over; when it resumes
            # it must not append (fenced) and must not crash.
            os.kill(workers[k].pid, signal.SIGSTOP)
            time.sleep(LEASE * 2.5)
            os.kill(workers[k].pid, signal.SIGCONT)
            stops += 1
            continue
        os.kill(workers[k].pid, signal.SIGKILL)
        workers[k].wait()
        assert workers[k].stdout is not None
        workers[k].stdout.close()
        kills += 1
        workers[k] = _start(pg_url, pg_schema, ledger, errs, wait=False)
    for w in workers:
        assert w.stdout is not None
        assert w.stdout.readline().strip() == "ready", errs.read_text()[-3000:]
        w.send_signal(signal.SIGTERM)
    ended = [json.loads(w.communicate(timeout=120)[0].strip().splitlines()[-1])
             for w in workers]
    # Drain: one worker per slot finishes what the last kills left.
    drain = [_start(pg_url, pg_schema, ledger, errs, idle_exit=LEASE * 3)
             for _ in range(3)]
    stats = [json.loads(d.communicate(timeout=600)[0].strip().splitlines()[-1])
             for d in drain]
    assert all(d.returncode == 0 for d in drain), errs.read_text()[-3000:]

    saga = trip()
    infos = log.instances()
    assert len(infos) == submitted  # nothing lost
    non_terminal = [i.saga_id for i in infos if i.status == "running"]
    assert not non_terminal
    with contextlib.closing(sqlite3.connect(ledger)) as con:
        effects = con.execute(
            "SELECT saga_id, step, calls, undone FROM effects").fetchall()
    by_saga: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for sid, step, calls, undone in effects:
        by_saga[sid][step] = (calls, undone)
    recovered = reexecuted = 0
    for info in infos:
        records = log.records(info.saga_id)
        res = conform(saga, records)
        assert res.conforms, (info.saga_id, res.message)
        recovered += any(r.kind == "recover" for r in records)
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
        # A call the log did not order (a completed step run again) shows as
        # more calls than sends.
        reexecuted += sum(calls > sends[step] for step, (calls, _) in seen.items())
        if info.status == "COMPLETED":
            assert set(seen) == {s.name for s in saga.steps}, (info.saga_id, seen)
            assert not any(u for _, u in seen.values())
        else:
            compensatable = {s.name for s in saga.steps if s.compensation}
            left = [s for s, (_, u) in seen.items() if not u and s in compensatable]
            assert not left, (info.saga_id, info.status, seen)
    log.close()
    assert reexecuted == 0
    assert recovered >= KILLS // 4, recovered
    print(json.dumps({"kills": kills, "stops": stops, "sagas": submitted,
                      "recovered": recovered, "re_executions": reexecuted,
                      "lost": submitted - len(infos),
                      "non_terminal": len(non_terminal),
                      "lease_lost_by_live_workers": sum(
                          e["lease_lost"] for e in ended),
                      "drained": sum(d["claimed"] for d in stats)}))

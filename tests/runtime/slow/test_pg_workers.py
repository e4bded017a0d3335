"""Three workers on one real PostgreSQL log: SIGKILL a random worker at random
times (at least 100 kills) while the others keep running, restart it, pause
one past its lease now and then (SIGSTOP/SIGCONT); at the end every saga is
terminal, no completed step's action ran again, nothing is lost, and every log
conforms to the model. The participants record each call in their own ledger,
outside the log, so the test sees the truth."""

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

from runtime import Engine, SagaLog
from runtime._postgres import PostgresLog

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from kill_worker import audit, ledger_by_saga, saga_input, trip  # noqa: E402

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
    by_saga = ledger_by_saga(ledger)
    recovered = reexecuted = 0
    for info in infos:
        was, again = audit(saga, info, log.records(info.saga_id),
                           by_saga.get(info.saga_id, {}))
        recovered += was
        reexecuted += again
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

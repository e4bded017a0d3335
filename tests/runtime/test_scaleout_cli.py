"""The scale-out commands as a user runs them: sagas enqueued on PostgreSQL and
finished by `sagaproof worker`, and a saga run on Temporal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRIP = "examples/trip_booking.saga.yaml"


def _cli(*args: str, ledger: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SAGAPROOF_LEDGER=str(ledger), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sagaproof", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.mark.slow
def test_enqueue_then_two_workers_on_postgres(pg_url: str, tmp_path: Path) -> None:
    # The CLI keeps its tables in schema "sagaproof": start from none, and
    # drop it afterwards.
    from runtime._postgres import PostgresLog

    ledger = tmp_path / "ledger.db"
    fresh = PostgresLog(pg_url)
    fresh.drop()
    fresh.close()
    try:
        for k in range(4):
            data = '{"fail": {"charge": "always"}}' if k == 0 else "{}"
            out = _cli("run", TRIP, "--participants", "examples.participants.trip",
                       "--db", pg_url, "--enqueue", "--input", data,
                       "--saga-id", f"cli-{k}", ledger=ledger)
            assert out.returncode == 0 and "enqueued" in out.stdout, out.stderr
        procs = [subprocess.Popen(
            [sys.executable, "-m", "sagaproof", "worker", "--db", pg_url,
             "--idle-exit", "1.5", "--poll", "0.05"], cwd=ROOT,
            env=dict(os.environ, SAGAPROOF_LEDGER=str(ledger), PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        claimed = sum(int(o.split("claimed ")[1].split()[0]) for o, _ in outs)
        assert claimed == 4
        status = _cli("status", "--db", pg_url, ledger=ledger)
        assert status.returncode == 0, status.stderr
        conform = _cli("conform", TRIP, pg_url, ledger=ledger)
        assert conform.returncode == 0, conform.stdout + conform.stderr
        assert "4 of 4 log(s)" in conform.stdout
        log = PostgresLog(pg_url)
        assert sorted(i.status for i in log.instances()) == [
            "COMPENSATED", "COMPLETED", "COMPLETED", "COMPLETED"]
        log.close()
    finally:
        pg = PostgresLog(pg_url)
        pg.drop()
        pg.close()


@pytest.mark.slow
def test_run_on_temporal(temporal_address: str, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    ok = _cli("run", TRIP, "--participants", "examples.participants.trip",
              "--engine", "temporal", "--temporal", temporal_address, "--serve",
              "--task-queue", "cli-test", ledger=ledger)
    assert ok.returncode == 0 and "COMPLETED" in ok.stdout, ok.stderr
    bad = _cli("run", TRIP, "--participants", "examples.participants.trip",
               "--engine", "temporal", "--temporal", temporal_address, "--serve",
               "--task-queue", "cli-test", "--input",
               '{"fail": {"charge": "always"}}', ledger=ledger)
    assert bad.returncode == 1 and "COMPENSATED" in bad.stdout, bad.stderr
    assert "Traceback" not in bad.stderr

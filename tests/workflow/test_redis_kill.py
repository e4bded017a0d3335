"""Kill test of a workflow's services as processes on the Redis bus: SIGKILL a
service process at random points (20 times, most of them while a handler
runs), restart it, and check the truth at the end: the store, the
streams, and the ledger the handlers write outside the store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from runtime.workflow import RedisBus, WorkflowStore, conforms, start_instance
from saga_models import load
from saga_models.workflow import Workflow
from tests.workflow import redis_participants as rp

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "examples" / "workflows" / "order_saga.workflow.yaml"
KILLS = 20
BATCH = 20
PATH_LENGTH = {"CHARGED": 5, "DECLINED": 3, "REFUNDED": 7}
"""Deliveries on each path (payments' final state names the path)."""


def _spawn(service: str, common: list[str], env: dict[str, str],
           err: Path) -> subprocess.Popen[str]:
    with err.open("a") as fh:
        p = subprocess.Popen(
            [sys.executable, "-m", "sagaproof", "workflow-service", str(ORDER),
             *common, "--service", service, "--min-idle", "0.5",
             "--participants", "tests.workflow.redis_participants:order_saga"],
            cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=fh)
    assert p.stdout is not None
    line = p.stdout.readline()  # "ready": it handles events from now on
    assert "ready" in line, err.read_text()
    return p


def _last_record(ledger: Path) -> dict[str, object] | None:
    if not ledger.exists():
        return None
    lines = ledger.read_bytes().splitlines()
    try:
        return dict(json.loads(lines[-1])) if lines else None
    except ValueError:  # a line being written
        return None


@pytest.mark.slow
def test_kill_service_processes(redis_url: str, stream_prefix: str,
                                tmp_path: Path) -> None:
    wf = load(ORDER)
    assert isinstance(wf, Workflow)
    rng = random.Random(18)
    db, ledger, err = tmp_path / "wf.db", tmp_path / "ledger.jsonl", tmp_path / "err"
    env = {**os.environ, "PYTHONPATH": str(ROOT), rp.LEDGER: str(ledger),
           rp.DELAY: "0.1"}
    common = ["--bus", redis_url, "--db", str(db), "--stream-prefix", stream_prefix]
    store = WorkflowStore(db)
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    services = [s.name for s in wf.services]
    procs = {s: _spawn(s, common, env, err) for s in services}
    started = 0

    def top_up() -> None:
        nonlocal started
        if list(store.instances().values()).count("running") < BATCH // 2:
            for _ in range(BATCH):
                start_instance(wf, store, bus, f"i{started}")
                started += 1

    kills: list[tuple[int, str]] = []
    t0 = time.monotonic()
    while len(kills) < KILLS:
        top_up()
        time.sleep(rng.uniform(0.05, 0.4))
        victim = rng.choice(services)
        if len(kills) % 3:
            # Two kills in three aim at a handler that is running: the last
            # ledger record is a handler's begin in one of the processes.
            last = _last_record(ledger)
            for s, p in procs.items():
                if last and last["phase"] == "begin" and last["pid"] == p.pid:
                    victim = s
        dead = procs[victim]
        dead.send_signal(signal.SIGKILL)
        dead.wait(timeout=30)
        assert dead.stdout is not None
        dead.stdout.close()
        kills.append((dead.pid, victim))
        procs[victim] = _spawn(victim, common, env, err)
    deadline = time.monotonic() + 120
    while "running" in store.instances().values() and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in procs.values():
        p.send_signal(signal.SIGTERM)
    for p in procs.values():
        p.communicate(timeout=60)
        assert p.returncode == 0, err.read_text()[-2000:]
    elapsed = time.monotonic() - t0

    # The store: every instance in the outcome its handlers chose, each event
    # handled once, nothing left on the outbox, every log a path of the model.
    instances = store.instances()
    assert len(instances) == started
    assert set(instances.values()) == {"consistent"}, instances
    assert store.outbox_size() == 0
    handled: set[tuple[str, str, str]] = set()
    for wid in instances:
        snap = store.load(wid)
        assert snap is not None and snap.states == rp.expected_states(wid), wid
        log = store.log(wid)
        keys = [(wid, e.service, e.event_id or "") for e in log]
        assert len(set(keys)) == len(keys), f"{wid}: an event handled twice"
        assert len(log) == PATH_LENGTH[snap.states["payments"]]
        verdict = conforms(wf, log)
        assert verdict.ok, verdict.message
        handled.update(keys)
    # The streams: nothing pending.
    assert [bus.pending(s) for s in services] == [0] * len(services)
    # The ledger (the truth outside the store): every handled event's handler
    # finished at least once, no handler ran for anything else; a handler cut
    # short by a kill ran again in another process.
    records = [json.loads(x) for x in ledger.read_text().splitlines()]

    def key(r: dict[str, str]) -> tuple[str, str, str]:
        return (r["wid"], r["service"], r["eid"])

    begins = Counter(key(r) for r in records if r["phase"] == "begin")
    ends = Counter(key(r) for r in records if r["phase"] == "end")
    assert set(ends) == set(begins) == handled
    killed_pids = {pid for pid, _ in kills}
    ended = {(key(r), r["pid"]) for r in records if r["phase"] == "end"}
    cut = [r for r in records if r["phase"] == "begin"
           and (key(r), r["pid"]) not in ended]
    assert {r["pid"] for r in cut} <= killed_pids
    again = sum(n - 1 for n in begins.values())
    print(f"\nredis kill test: {len(kills)} kills ({len(cut)} mid-handler), "
          f"{started} instances, {len(handled)} events handled once, "
          f"{sum(begins.values())} handler calls ({again} repeated after a "
          f"kill), {elapsed:.0f}s")
    assert len(cut) >= KILLS // 4, "few kills landed while a handler ran"
    assert again >= len(cut)
    bus.close()
    store.close()

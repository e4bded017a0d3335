"""Event workflow across processes: events handled per second by two service
processes on the Redis Streams bus, sharing one SQLite store (WAL).

The workflow has two services (``b`` answers each ``ping`` with a ``pong``,
``a`` waits for it), so each instance is two deliveries, each one store
transaction under the shared write lock plus a relay and an ``XACK``. All
instances are started first; the clock runs from both processes being ready
until every instance is consistent.

Run: ``python bench/redis_bus_bench.py [--n 300]`` (starts Redis with
``scripts/redis.sh``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.workflow import RedisBus, WorkflowStore, start_instance  # noqa: E402
from saga_models import load  # noqa: E402
from saga_models.workflow import Workflow  # noqa: E402

PING = """\
workflow: ping_pong
bus: {delivery: at_least_once, order: unordered}
start: [ping]
services:
  a:
    initial: WAITING
    final: [DONE]
    transitions:
      - {from: WAITING, on: pong, to: DONE}
  b:
    initial: IDLE
    transitions:
      - {from: IDLE, on: ping, to: IDLE, emit: [pong]}
outcomes:
  - {a: DONE}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="instances (default 300)")
    args = ap.parse_args()
    url = subprocess.run(["bash", str(ROOT / "scripts" / "redis.sh"), "start"],
                         check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ping.workflow.yaml"
        path.write_text(PING)
        wf = load(path)
        assert isinstance(wf, Workflow)
        db = Path(tmp) / "wf.db"
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        store = WorkflowStore(db)
        bus = RedisBus(url, wf, prefix=prefix)
        for i in range(args.n):
            start_instance(wf, store, bus, f"p{i}")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen(
            [sys.executable, "-m", "sagaproof", "workflow-service", str(path),
             "--service", s, "--bus", url, "--db", str(db),
             "--stream-prefix", prefix], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE) for s in ("a", "b")]
        for p in procs:
            assert p.stdout is not None and "ready" in p.stdout.readline()
        t0 = time.perf_counter()
        while "running" in store.instances().values():
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=60)
        done = list(store.instances().values()).count("consistent")
        bus.client.delete(*(bus.stream(s) for s in ("a", "b")))
        bus.close()
        store.close()
    events = 2 * args.n
    print(f"{args.n} instances ({done} consistent), {events} events across 2 "
          f"service processes in {elapsed:.2f}s: {events / elapsed:.0f} events/s")


if __name__ == "__main__":
    main()

"""Scale-out throughput, side by side in one run, on this machine.

- ``postgres xK``: N sagas enqueued on one PostgreSQL log, then K
  ``sagaproof worker`` processes drain it (K = 1, 2, 4); sagas per second from
  the first claim to the last terminal status. On a 2-core machine the curve
  flattens at 2: this is reported, not hidden.
- ``sqlite x1``: the same N sagas in one process on a SQLite log (8 at a time).
- ``dbos postgres``: DBOS Transact on the same PostgreSQL server, the same
  saga as a DBOS workflow, through a queue of concurrency 8.
- ``temporal sagaproof`` / ``temporal hand-written``: on one Temporal dev
  server, the sagaproof workflow (the shared semantics) against a plain
  temporalio saga workflow doing the same work (three activities, the
  compensations in reverse on failure), 8 in flight, one in-process worker.

Every 10th saga takes the compensating path in every engine.

Run: ``python bench/scale_bench.py --n 400`` (needs ``.[postgres,temporal,bench]``;
starts PostgreSQL with scripts/postgres.sh and a Temporal dev server itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime import Engine, SQLiteLog  # noqa: E402
from saga_models import Saga, load  # noqa: E402

DEFINITION = ROOT / "bench" / "bench.saga.yaml"
SPEC = "bench.scale_participants:participants"


def _saga() -> Saga:
    saga = load(DEFINITION)
    assert isinstance(saga, Saga)
    return saga


def _inputs(n: int) -> list[dict[str, bool]]:
    return [{"fail": i % 10 == 0} for i in range(n)]


def bench_postgres(url: str, n: int, workers: int) -> float:
    from bench.scale_participants import participants
    from runtime._postgres import PostgresLog

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    log = PostgresLog(url, schema=schema)
    sub = Engine(_saga(), participants, log=log, definition_path=str(DEFINITION),
                 participants_spec=SPEC)
    for i, data in enumerate(_inputs(n)):
        sub.submit(data, saga_id=f"s{i:06d}")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "sagaproof", "worker", "--db", f"{url}#{schema}",
         "--idle-exit", "0.5", "--poll", "0.02", "--capacity", "8"], cwd=ROOT,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)]
    # The clock starts at the first claim, not at process start-up.
    while not any(i.owner for i in log.instances(status="running")):
        time.sleep(0.01)
    t0 = time.perf_counter()
    while log.counts().get("running"):
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    for p in procs:
        _out, err = p.communicate(timeout=120)
        if p.returncode != 0:
            raise RuntimeError(err[-2000:])
    log.drop()
    log.close()
    return n / elapsed


def bench_sqlite(n: int) -> float:
    from bench.scale_participants import participants

    with tempfile.TemporaryDirectory() as tmp:
        log = SQLiteLog(Path(tmp) / "s.db")
        engine = Engine(_saga(), participants, log=log)

        async def main() -> float:
            sem = asyncio.Semaphore(8)

            async def one(data: dict[str, bool]) -> None:
                async with sem:
                    await engine.run(data)
            t0 = time.perf_counter()
            await asyncio.gather(*(one(d) for d in _inputs(n)))
            rate = n / (time.perf_counter() - t0)
            await engine.aclose()
            return rate
        rate = asyncio.run(main())
        log.close()
    return rate


def bench_dbos(url: str, n: int) -> float:
    from dbos import DBOS

    from bench.scale_participants import ShipFailed

    db = f"dbos_{uuid.uuid4().hex[:8]}"
    admin = url.rsplit("/", 1)[0]
    DBOS(config={"name": "scale", "system_database_url": f"{admin}/{db}"})

    @DBOS.step()
    def act(i: int, name: str, fail: bool = False) -> str:
        if fail:
            raise ShipFailed("no courier")
        return f"{name}{i}"

    @DBOS.workflow()
    def saga(i: int, fail: bool) -> str:
        act(i, "reserve")
        act(i, "charge")
        try:
            act(i, "ship", fail)
        except Exception:
            act(i, "refund")
            act(i, "release")
            return "COMPENSATED"
        return "COMPLETED"

    DBOS.launch()
    queue = DBOS.register_queue("scale", concurrency=8, polling_interval_sec=0.01)
    try:
        t0 = time.perf_counter()
        handles = [queue.enqueue(saga, i, d["fail"])
                   for i, d in enumerate(_inputs(n))]
        for h in handles:
            h.get_result()
        return n / (time.perf_counter() - t0)
    finally:
        DBOS.destroy(destroy_registry=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_temporal(n: int) -> dict[str, float]:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from bench.handwritten_saga import HandWritten, step
    from bench.scale_participants import participants
    from runtime import _temporal as rt

    exe = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [exe, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
             "--headless", "--db-filename", f"{tmp}/t.db", "--log-level", "error",
             "--ui-port", str(_free_port()), "--metrics-port", str(_free_port())],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return asyncio.run(_temporal_runs(
                f"127.0.0.1:{port}", n, classes=(Client, Worker, rt),
                participants=participants, hand=HandWritten, step=step))
        finally:
            server.terminate()
            server.wait()


async def _temporal_runs(address: str, n: int, *, classes: Any,
                         participants: Any, hand: Any, step: Any
                         ) -> dict[str, float]:
    import logging

    client_cls, worker_cls, rt = classes
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    for _ in range(240):
        try:
            client = await client_cls.connect(address)
            break
        except Exception:
            await asyncio.sleep(0.5)
    saga = _saga()
    rt.register(saga)
    acts = rt.bind(saga, participants)
    out: dict[str, float] = {}
    async with worker_cls(client, task_queue="bench", workflows=[rt.SagaWorkflow,
                                                                 hand],
                          activities=[acts.call, step],
                          max_concurrent_workflow_tasks=8):
        for name in ("sagaproof", "hand-written"):
            sem = asyncio.Semaphore(8)

            async def one(i: int, data: dict[str, bool], name: str = name,
                          sem: asyncio.Semaphore = sem) -> None:
                async with sem:
                    wid = f"{name}-{uuid.uuid4().hex[:8]}-{i}"
                    if name == "sagaproof":
                        await client.execute_workflow(
                            rt.WORKFLOW, rt.SagaRun(
                                definition_hash=saga.content_hash, saga_id=wid,
                                input=data), id=wid, task_queue="bench")
                    else:
                        await client.execute_workflow(
                            "bench.handwritten", data["fail"], id=wid,
                            task_queue="bench")
            t0 = time.perf_counter()
            await asyncio.gather(*(one(i, d) for i, d in enumerate(_inputs(n))))
            out[name] = n / (time.perf_counter() - t0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=400, help="sagas per measurement")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--skip", nargs="*", default=[],
                   choices=["postgres", "sqlite", "dbos", "temporal"])
    args = p.parse_args()
    url = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "start"],
                         capture_output=True, text=True, check=True
                         ).stdout.strip().splitlines()[-1]
    rows: dict[str, float] = {}
    if "sqlite" not in args.skip:
        rows["sqlite x1"] = bench_sqlite(args.n)
    if "postgres" not in args.skip:
        for k in args.workers:
            rows[f"postgres x{k}"] = bench_postgres(url, args.n, k)
    if "dbos" not in args.skip:
        rows["dbos postgres"] = bench_dbos(url, args.n)
    if "temporal" not in args.skip:
        for name, rate in bench_temporal(args.n).items():
            rows[f"temporal {name}"] = rate
    print(json.dumps({"n": args.n, "cpus": os.cpu_count(), "sagas_per_s": rows},
                     indent=2))
    for name, rate in rows.items():
        print(f"{name:<24}{rate:>9.0f} sagas/s")
    if "postgres x1" in rows and "dbos postgres" in rows:
        print(f"sagaproof postgres x1 / dbos postgres: "
              f"{rows['postgres x1'] / rows['dbos postgres']:.2f}")
    if "temporal sagaproof" in rows:
        print(f"temporal sagaproof / hand-written: "
              f"{rows['temporal sagaproof'] / rows['temporal hand-written']:.2f}")


if __name__ == "__main__":
    main()

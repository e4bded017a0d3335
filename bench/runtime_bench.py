"""Runtime throughput: sagaproof against DBOS Transact, same saga, same machine.

The saga: three steps (reserve, charge, ship), the first two with
compensations; a failure in ``ship`` takes the compensating path. Both engines
log durably to SQLite in a fresh temporary directory (no server). Measured:

- sequential: one workflow after another, workflows per second;
- concurrent: 8 workflows in flight at a time (sagaproof: 8 asyncio instances;
  DBOS: a ``Queue`` with ``concurrency=8``), workflows per second.

``--fail-every K`` sends every K-th workflow down the compensating path in
both engines (default 10).

Run: ``python bench/runtime_bench.py --n 1000 --repeat 3`` (medians of
interleaved runs; ``--only sagaproof`` skips DBOS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime import Engine, SQLiteLog, StepContext
from saga_models import SagaBuilder


class ShipFailed(Exception):
    """The injected failure that takes the compensating path."""


def _saga() -> Any:
    return (SagaBuilder("bench")
            .step("reserve", participant="inventory", action="reserve",
                  compensation="release")
            .step("charge", participant="payments", action="charge",
                  compensation="refund")
            .step("ship", participant="shipping", action="ship",
                  compensation="recall")
            .build())


def _participants() -> dict[str, dict[str, Any]]:
    async def ok(ctx: StepContext) -> dict[str, str]:
        return {"ref": ctx.idempotency_key}

    async def ship(ctx: StepContext) -> dict[str, str]:
        if ctx.input.get("fail"):
            raise ShipFailed("no courier")
        return {"ref": ctx.idempotency_key}

    async def undo(ctx: StepContext) -> None:
        return None

    return {"inventory": {"reserve": ok, "release": undo},
            "payments": {"charge": ok, "refund": undo},
            "shipping": {"ship": ship, "recall": undo}}


def bench_sagaproof(n: int, fail_every: int, durability: str) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = SQLiteLog(Path(tmp) / "saga.db", durability=durability)
        engine = Engine(_saga(), _participants(), log=log)

        def inp(i: int) -> dict[str, bool]:
            return {"fail": fail_every > 0 and i % fail_every == 0}

        async def sequential() -> float:
            t = time.perf_counter()
            for i in range(n):
                await engine.run(inp(i))
            return n / (time.perf_counter() - t)

        async def concurrent() -> float:
            sem = asyncio.Semaphore(8)

            async def one(i: int) -> None:
                async with sem:
                    await engine.run(inp(i))

            t = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            return n / (time.perf_counter() - t)

        async def main() -> None:
            await engine.run(inp(1))  # warm up
            out["sequential"] = await sequential()
            out["concurrent8"] = await concurrent()
            await engine.aclose()

        asyncio.run(main())
        log.close()
    return out


def bench_dbos(n: int, fail_every: int) -> dict[str, float]:
    from dbos import DBOS

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        DBOS(config={"name": "bench",
                     "system_database_url": f"sqlite:///{tmp}/dbos.sqlite"})

        @DBOS.step()
        def reserve(i: int) -> str:
            return f"r{i}"

        @DBOS.step()
        def charge(i: int) -> str:
            return f"c{i}"

        @DBOS.step()
        def ship(i: int, fail: bool) -> str:
            if fail:
                raise ShipFailed("no courier")
            return f"s{i}"

        @DBOS.step()
        def release(i: int) -> None:
            return None

        @DBOS.step()
        def refund(i: int) -> None:
            return None

        @DBOS.workflow()
        def saga(i: int, fail: bool) -> str:
            reserve(i)
            try:
                charge(i)
            except Exception:
                release(i)
                return "COMPENSATED"
            try:
                ship(i, fail)
            except Exception:
                refund(i)
                release(i)
                return "COMPENSATED"
            return "COMPLETED"

        DBOS.launch()
        # A short polling interval favours DBOS (its default is 1 s).
        queue = DBOS.register_queue("bench", concurrency=8,
                                    polling_interval_sec=0.01)
        try:
            def fail(i: int) -> bool:
                return fail_every > 0 and i % fail_every == 0

            saga(0, False)
            t = time.perf_counter()
            for i in range(n):
                saga(i, fail(i))
            out["sequential"] = n / (time.perf_counter() - t)
            t = time.perf_counter()
            handles = [queue.enqueue(saga, i, fail(i)) for i in range(n)]
            for h in handles:
                h.get_result()
            out["concurrent8"] = n / (time.perf_counter() - t)
        finally:
            DBOS.destroy()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="workflows per measurement")
    p.add_argument("--fail-every", type=int, default=10)
    p.add_argument("--only", choices=["sagaproof", "dbos"])
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of each engine, interleaved; medians reported")
    p.add_argument("--durability", default="commands",
                   choices=["commands", "full", "os"])
    args = p.parse_args()
    results: dict[str, Any] = {
        "n": args.n, "fail_every": args.fail_every, "durability": args.durability,
        "python": platform.python_version(), "cpus": os.cpu_count()}
    runs: dict[str, list[dict[str, float]]] = {"sagaproof": [], "dbos": []}
    for _ in range(args.repeat):  # interleaved, so both see the same machine
        if args.only != "dbos":
            runs["sagaproof"].append(bench_sagaproof(args.n, args.fail_every,
                                                     args.durability))
            print("sagaproof", runs["sagaproof"][-1], flush=True)
        if args.only != "sagaproof":
            runs["dbos"].append(bench_dbos(args.n, args.fail_every))
            print("dbos", runs["dbos"][-1], flush=True)
    for name, rs in runs.items():
        if rs:
            results[name] = {k: statistics.median(r[k] for r in rs)
                             for k in ("sequential", "concurrent8")}
            results[name + "_runs"] = rs
    if "sagaproof" in results and "dbos" in results:
        results["ratio"] = {k: results["sagaproof"][k] / results["dbos"][k]
                            for k in ("sequential", "concurrent8")}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

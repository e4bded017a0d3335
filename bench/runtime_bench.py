"""Runtime throughput: sagaproof against DBOS Transact, same saga, same machine,
same durability.

The saga: three steps (reserve, charge, ship), the first two with
compensations; a failure in ``ship`` takes the compensating path. Both engines
log durably to SQLite in a fresh temporary directory (no server). Measured:

- sequential: one workflow after another, workflows per second;
- concurrent: 8 workflows in flight at a time (sagaproof: 8 asyncio instances;
  DBOS: a ``Queue`` with ``concurrency=8``), workflows per second.

Durability is what makes a log slow, so every row says what it pays, per
phase: the fsync/fdatasync calls per workflow, counted with ``strace -f -c``
on a separate short run of that configuration and phase, and the CPU time per
workflow. The disk's own fdatasync latency and the load average are printed
too: under load they, not the engine, set the pace. The configurations:

- ``sagaproof/commands``: WAL, fsync before any command is sent (the default);
- ``sagaproof/full``: WAL, fsync at every commit;
- ``dbos/wal``: DBOS on a database file put in WAL mode first (DBOS keeps the
  file's journal mode; SQLite's default synchronous=FULL: fsync every commit);
- ``dbos/rollback``: DBOS as it comes (rollback journal, synchronous=FULL),
  the configuration earlier figures compared against: NOT like for like.

The like-for-like ratios are sagaproof/full against dbos/wal (both fsync at
every commit, both WAL), printed as ``ratio_equal``; sagaproof/commands against
dbos/wal is printed too, with the fsync counts beside it.

``--fail-every K`` sends every K-th workflow down the compensating path in
both engines (default 10).

Run: ``python bench/runtime_bench.py --n 1000 --repeat 3`` (medians of
interleaved runs; needs ``pip install -e '.[bench]'`` and strace for the fsync
counts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime import Engine, SQLiteLog, StepContext
from saga_models import SagaBuilder

PHASES = ("sequential", "concurrent8")


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


def _timed(n: int, wall: float, cpu: float, out: dict[str, float],
           phase: str) -> None:
    out[phase] = n / wall
    out[phase + "_cpu_ms"] = cpu / n * 1000


def bench_sagaproof(n: int, fail_every: int, durability: str,
                    phases: tuple[str, ...] = PHASES) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = SQLiteLog(Path(tmp) / "saga.db", durability=durability)
        engine = Engine(_saga(), _participants(), log=log)

        def inp(i: int) -> dict[str, bool]:
            return {"fail": fail_every > 0 and i % fail_every == 0}

        async def sequential() -> None:
            t, c = time.perf_counter(), time.process_time()
            for i in range(n):
                await engine.run(inp(i))
            _timed(n, time.perf_counter() - t, time.process_time() - c, out,
                   "sequential")

        async def concurrent() -> None:
            sem = asyncio.Semaphore(8)

            async def one(i: int) -> None:
                async with sem:
                    await engine.run(inp(i))

            t, c = time.perf_counter(), time.process_time()
            await asyncio.gather(*(one(i) for i in range(n)))
            _timed(n, time.perf_counter() - t, time.process_time() - c, out,
                   "concurrent8")

        async def main() -> None:
            await engine.run(inp(1))  # warm up
            if "sequential" in phases:
                await sequential()
            if "concurrent8" in phases:
                await concurrent()
            await engine.aclose()

        asyncio.run(main())
        log.close()
    return out


def bench_dbos(n: int, fail_every: int, journal: str = "wal",
               phases: tuple[str, ...] = PHASES) -> dict[str, float]:
    from dbos import DBOS

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if journal == "wal":
            # WAL mode is a property of the file, kept by every later
            # connection: DBOS runs on WAL like the sagaproof log.
            con = sqlite3.connect(f"{tmp}/dbos.sqlite")
            con.execute("PRAGMA journal_mode=WAL")
            con.close()
        # WARNING: its INFO lines (every migration at each launch; none per
        # workflow) would bury the figures.
        DBOS(config={"name": "bench", "log_level": "WARNING",
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
            if "sequential" in phases:
                t, c = time.perf_counter(), time.process_time()
                for i in range(n):
                    saga(i, fail(i))
                _timed(n, time.perf_counter() - t, time.process_time() - c, out,
                       "sequential")
            if "concurrent8" in phases:
                t, c = time.perf_counter(), time.process_time()
                handles = [queue.enqueue(saga, i, fail(i)) for i in range(n)]
                for h in handles:
                    h.get_result()
                _timed(n, time.perf_counter() - t, time.process_time() - c, out,
                       "concurrent8")
        finally:
            DBOS.destroy()
    return out


CONFIGS = ("sagaproof/commands", "sagaproof/full", "dbos/wal", "dbos/rollback")


def run_one(config: str, n: int, fail_every: int,
            phases: tuple[str, ...] = PHASES) -> dict[str, float]:
    """One measurement of one configuration, in this process."""
    engine, mode = config.split("/")
    if engine == "sagaproof":
        return bench_sagaproof(n, fail_every, mode, phases)
    return bench_dbos(n, fail_every, mode, phases)


def fsync_latency_ms(samples: int = 30) -> float:
    """Median time of one 4 KiB write + fdatasync in the directory the
    engines log to: under load the disk, not the engine, sets the pace."""
    times: list[float] = []
    with tempfile.NamedTemporaryFile() as fh:
        for _ in range(samples):
            t = time.perf_counter()
            os.pwrite(fh.fileno(), b"x" * 4096, 0)
            os.fdatasync(fh.fileno())
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


_STRACE_ROW = re.compile(
    r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?f(?:data)?sync\s*$", re.M)


def fsyncs_per_workflow(config: str, n: int, fail_every: int,
                        phase: str) -> float | None:
    """fsync + fdatasync calls per workflow of ``config`` in one ``phase``,
    counted by strace on a child process that runs the warm-up workflow and
    ``n`` workflows of that phase (so n + 1); None without strace."""
    if shutil.which("strace") is None:
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as fh:
        subprocess.run(
            ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", fh.name,
             sys.executable, __file__, "--child", config, "--n", str(n),
             "--fail-every", str(fail_every), "--child-phase", phase],
            capture_output=True, text=True, check=True)
        calls = sum(int(m.group(1)) for m in _STRACE_ROW.finditer(fh.read()))
    return calls / (n + 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="workflows per measurement")
    p.add_argument("--fail-every", type=int, default=10)
    p.add_argument("--only", choices=["sagaproof", "dbos"])
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of each configuration, interleaved; medians")
    p.add_argument("--fsync-n", type=int, default=100,
                   help="workflows per phase in the strace run")
    p.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    p.add_argument("--child-phase", choices=PHASES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        run_one(args.child, args.n, args.fail_every,
                (args.child_phase,) if args.child_phase else PHASES)
        return
    configs = [c for c in CONFIGS if args.only is None or c.startswith(args.only)]
    results: dict[str, Any] = {
        "n": args.n, "fail_every": args.fail_every,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_before": os.getloadavg(), "fsync_ms_before": fsync_latency_ms()}
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in configs}
    for _ in range(args.repeat):  # interleaved, so all see the same machine
        for c in configs:
            runs[c].append(run_one(c, args.n, args.fail_every))
            print(c, runs[c][-1], flush=True)
    results["load_after"] = os.getloadavg()
    results["fsync_ms_after"] = fsync_latency_ms()
    keys = [k + x for k in PHASES for x in ("", "_cpu_ms")]
    for c, rs in runs.items():
        results[c] = {k: statistics.median(r[k] for r in rs) for k in keys}
        for ph in PHASES:
            results[c][ph + "_fsyncs"] = fsyncs_per_workflow(
                c, args.fsync_n, args.fail_every, ph)
        results[c + " runs"] = rs

    def ratio(a: str, b: str) -> dict[str, float] | None:
        if a not in results or b not in results:
            return None
        return {k: round(results[a][k] / results[b][k], 2) for k in PHASES}

    results["ratio_equal"] = ratio("sagaproof/full", "dbos/wal")
    results["ratio_default_vs_dbos_wal"] = ratio("sagaproof/commands", "dbos/wal")
    results["ratio_default_vs_dbos_rollback"] = ratio("sagaproof/commands",
                                                      "dbos/rollback")
    print(json.dumps(results, indent=2))

    def num(x: float | None, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    print(f"{'configuration':<20}{'seq/s':>7}{'cpu ms':>8}{'fsync':>7}"
          f"{'conc8/s':>9}{'cpu ms':>8}{'fsync':>7}   (per workflow)")
    for c in configs:
        r = results[c]
        print(f"{c:<20}{r['sequential']:>7.0f}{r['sequential_cpu_ms']:>8.2f}"
              f"{num(r['sequential_fsyncs'], '.2f'):>7}"
              f"{r['concurrent8']:>9.0f}{r['concurrent8_cpu_ms']:>8.2f}"
              f"{num(r['concurrent8_fsyncs'], '.2f'):>7}")
    if results["ratio_equal"] is not None:
        eq = results["ratio_equal"]
        print(f"sagaproof/full vs dbos/wal (equal durability): "
              f"{eq['sequential']:.2f}x sequential (target 2x), "
              f"{eq['concurrent8']:.2f}x with 8 concurrent (target 3x)")
    print(f"disk: fdatasync {results['fsync_ms_before']:.2f} ms before, "
          f"{results['fsync_ms_after']:.2f} ms after; load "
          f"{results['load_before'][0]:.1f} -> {results['load_after'][0]:.1f}")


if __name__ == "__main__":
    main()

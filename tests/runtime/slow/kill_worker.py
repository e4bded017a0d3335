"""A worker process for the kill test: recovers what a killed predecessor left,
then starts sagas until the log holds ``--total`` of them, 8 at a time.

Run by ``test_kill.py``; prints ``ready`` once it is driving sagas and ``done``
when every instance is terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from examples.participants.ledger import AnyParticipant, Ledger  # noqa: E402
from runtime import Engine, SQLiteLog  # noqa: E402
from saga_models import Saga, load  # noqa: E402

DEFINITION = ROOT / "examples" / "trip_booking.saga.yaml"


def trip() -> Saga:
    """The example trip booking with backoffs scaled down 100x, so a kill
    test of thousands of sagas is not spent waiting."""
    saga = load(DEFINITION)
    steps = tuple(dataclasses.replace(s, retry=dataclasses.replace(
        s.retry, initial_interval=s.retry.initial_interval / 100,
        max_interval=s.retry.max_interval / 100)) for s in saga.steps)
    policy = dataclasses.replace(
        saga.compensation_policy,
        initial_interval=saga.compensation_policy.initial_interval / 100,
        max_interval=saga.compensation_policy.max_interval / 100)
    return dataclasses.replace(saga, steps=steps, compensation_policy=policy)


def saga_input(n: int, delay: float = 0.002,
               mode: str = "mixed") -> dict[str, object]:
    """Every fifth saga's pivot fails (compensating path), every seventh has a
    compensation that fails once, every eleventh a car that cannot be had.
    ``mode="compensate"``: every pivot fails, so most of the time is spent
    compensating (and most kills land there)."""
    data: dict[str, object] = {"delay": delay, "n": n}
    if mode == "compensate":
        data["fail"] = {"charge": "always"}
        if n % 3 == 0:
            data["fail_compensation"] = {"reserve_car": 1}
        return data
    if n % 5 == 0:
        data["fail"] = {"charge": "always"}
    if n % 11 == 0:
        data["fail"] = {"reserve_car": "always"}
    if n % 7 == 0:
        data["fail_compensation"] = {"reserve_flight": 1}
    return data


async def main(args: argparse.Namespace) -> None:
    saga = trip()
    log = SQLiteLog(args.db)
    ledger = Ledger(args.ledger)
    engine = Engine(saga, AnyParticipant(ledger), log=log,
                    lease_seconds=args.lease)
    recovering = asyncio.ensure_future(engine.recover())
    print("ready", flush=True)
    sem = asyncio.Semaphore(args.concurrency)

    async def one(n: int) -> None:
        try:
            await engine.run(saga_input(n, args.delay, args.mode),
                             saga_id=f"trip-{n:06d}")
        finally:
            sem.release()

    started = len(log.instances())
    tasks = []
    while started < args.total:
        await sem.acquire()
        tasks.append(asyncio.ensure_future(one(started)))
        started += 1
    await asyncio.gather(recovering, *tasks)
    # Anything still running belongs to a live worker only if one exists; here
    # we are the only one, so finish those too (a kill may have raced a start).
    await engine.recover()
    await engine.aclose()
    print("done", os.getpid(), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--ledger", required=True)
    p.add_argument("--total", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--delay", type=float, default=0.002,
                   help="seconds each participant call takes")
    p.add_argument("--lease", type=float, default=60.0,
                   help="seconds a claim lasts without renewal")
    p.add_argument("--mode", choices=["mixed", "compensate"], default="mixed")
    asyncio.run(main(p.parse_args()))


def ledger_by_saga(ledger: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """The participants' own record: (calls, undone) per step, per saga."""
    import contextlib
    import sqlite3
    from collections import defaultdict

    with contextlib.closing(sqlite3.connect(ledger)) as con:
        effects = con.execute(
            "SELECT saga_id, step, calls, undone FROM effects").fetchall()
    by_saga: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for sid, step, calls, undone in effects:
        by_saga[sid][step] = (calls, undone)
    return by_saga


def audit(saga: Saga, info: Any, records: list[Any],
          seen: dict[str, tuple[int, int]]) -> tuple[bool, int]:
    """Check one instance after a crash test: its log conforms to the model,
    and the participants' effects agree with its outcome. Returns whether it
    was recovered and how many steps a participant saw called more often than
    the log ordered (a dispatch, or a re-send at recovery of a step the log
    shows in flight): a completed step run again would count here."""
    from collections import defaultdict

    from runtime._replay import Replayed, _apply_record
    from saga_models import semantics as sem
    from verifier.conformance import conform

    res = conform(saga, records)
    assert res.conforms, (info.saga_id, res.message)
    sends: dict[str, int] = defaultdict(int)
    state = sem.initial_state(saga)
    for r in records:
        if r.kind == "dispatch":
            sends[r.step or ""] += 1
        if r.kind == "recover":
            for i, step in enumerate(saga.steps):
                if sem.field(state, i, sem.ST) == sem.Status.RUNNING:
                    sends[step.name] += 1
        state = _apply_record(saga, Replayed(state=state), r)
    reexecuted = sum(calls > sends[step] for step, (calls, _) in seen.items())
    if info.status == "COMPLETED":
        assert set(seen) == {s.name for s in saga.steps}, (info.saga_id, seen)
        assert not any(u for _, u in seen.values())
    else:
        compensatable = {s.name for s in saga.steps if s.compensation}
        pivots = {s.name for s in saga.steps if s.kind.value == "pivot"}
        left = [s for s, (_, u) in seen.items() if not u and s in compensatable]
        assert not left, (info.saga_id, info.status, seen)
        assert not set(seen) - compensatable - pivots, (info.saga_id, seen)
    return any(r.kind == "recover" for r in records), reexecuted

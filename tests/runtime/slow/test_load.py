"""10,000 sagas through one worker on a real SQLite log, with bounded memory."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest

from runtime import Engine, SagaOutcome, SQLiteLog, StepContext
from saga_models import SagaBuilder

TOTAL = 10_000
CONCURRENCY = 16


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        import os

        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_ten_thousand_sagas_in_bounded_memory(tmp_path: Path) -> None:
    saga = (SagaBuilder("load")
            .step("reserve", participant="p", action="reserve", compensation="undo")
            .step("charge", participant="p", action="charge", compensation="refund")
            .step("ship", participant="p", action="ship", compensation="recall")
            .build())
    effects: dict[str, int] = {}

    async def act(ctx: StepContext) -> dict[str, Any]:
        if ctx.step == "ship" and ctx.input["n"] % 10 == 0:
            raise RuntimeError("no courier")
        effects[ctx.idempotency_key] = effects.get(ctx.idempotency_key, 0) + 1
        return {"n": ctx.input["n"]}

    async def undo(ctx: StepContext) -> None:
        key = ctx.idempotency_key.replace(":compensation", ":action")
        effects[key] -= 1

    ops = {"p": {"reserve": act, "charge": act, "ship": act, "undo": undo,
                 "refund": undo, "recall": undo}}
    log = SQLiteLog(tmp_path / "load.db")
    engine = Engine(saga, ops, log=log)
    outcomes: dict[SagaOutcome, int] = {}
    samples: dict[int, int] = {}

    async def main() -> None:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(n: int) -> None:
            async with sem:
                r = await engine.run({"n": n})
                outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1

        for start in range(0, TOTAL, 1000):
            await asyncio.gather(*(one(n) for n in range(start, start + 1000)))
            gc.collect()
            samples[start + 1000] = _rss()
        await engine.aclose()

    asyncio.run(main())
    assert outcomes == {SagaOutcome.COMPLETED: 9000, SagaOutcome.COMPENSATED: 1000}
    assert log.counts() == {"COMPLETED": 9000, "COMPENSATED": 1000}
    log.close()
    assert set(effects.values()) <= {0, 1}
    assert sum(effects.values()) == 9000 * 3
    growth = samples[TOTAL] - samples[2000]
    # The participants' own dict grows by ~30k keys; the engine keeps nothing
    # per finished saga, so the rest must stay flat.
    assert growth < 24 * 1024 * 1024, {k: v // 1024 for k, v in samples.items()}

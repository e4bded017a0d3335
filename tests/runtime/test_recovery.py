"""Crash and recovery in one process: a worker stops mid-saga (its tasks are
cancelled, nothing more is logged) and another recovers from the same log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import Script, vrun

from runtime import (
    DefinitionMismatch,
    Engine,
    LeaseLost,
    NotResumable,
    SagaOutcome,
    SQLiteLog,
    VirtualClock,
)
from saga_models import SagaBuilder
from verifier.conformance import conform


def chain(name: str = "chain", *, comp_max: int | None = None) -> Any:
    b = (SagaBuilder(name)
         .step("a", participant="p", action="a", compensation="ua")
         .step("b", participant="p", action="b", compensation="ub")
         .step("c", participant="p", action="c", compensation="uc"))
    if comp_max is not None:
        b = b.compensation_policy(max_attempts=comp_max)
    return b.build()


async def crash_when(engine: Engine, script: Script, step: str, kind: str,
                     input: Any = None) -> str:
    """Start a saga and stop the engine once ``step``'s ``kind`` is in flight."""
    sid = await engine.start(input or {})
    while not any(c[0] == step and c[1] == kind for c in script.calls):
        await asyncio.sleep(0.01)
    await engine.aclose()
    return sid


def test_recovery_reruns_only_the_in_flight_step(tmp_path: Path) -> None:
    saga = chain()
    s = Script({("b", "action"): ["hang"]})
    log = SQLiteLog(tmp_path / "s.db")

    async def main(clock: VirtualClock) -> Any:
        first = Engine(saga, s.participants(saga), log=log, clock=clock,
                       worker_id="w1")
        sid = await crash_when(first, s, "b", "action")
        second = Engine(saga, s.participants(saga), log=log, clock=clock,
                        worker_id="w2")
        assert await second.recover() == []  # w1's lease is still live
        await asyncio.sleep(31)
        results = await second.recover()
        assert [r.saga_id for r in results] == [sid]
        return results[0], sid

    result, sid = vrun(main)
    assert result.outcome is SagaOutcome.COMPLETED
    assert [c[:2] for c in s.calls].count(("a", "action")) == 1
    b_calls = [c for c in s.calls if c[:2] == ("b", "action")]
    assert len(b_calls) == 2 and b_calls[0][2:] == b_calls[1][2:]  # same key
    assert dict(s.effect) == {"a": 1, "b": 1, "c": 1}
    assert conform(saga, log.records(sid)).conforms
    assert [r.kind for r in log.records(sid)].count("recover") == 1


def test_compensation_resumes_where_it_stopped(tmp_path: Path) -> None:
    saga = chain()
    s = Script({("c", "action"): ["fail"], ("b", "compensation"): ["hang"]})
    log = SQLiteLog(tmp_path / "s.db")

    async def main(clock: VirtualClock) -> Any:
        first = Engine(saga, s.participants(saga), log=log, clock=clock)
        sid = await crash_when(first, s, "b", "compensation")
        second = Engine(saga, s.participants(saga), log=log, clock=clock)
        (result,) = await second.recover(force=True)
        return result, sid

    result, sid = vrun(main)
    assert result.outcome is SagaOutcome.COMPENSATED
    comps = [c[0] for c in s.calls if c[1] == "compensation"]
    assert comps == ["b", "b", "a"]
    assert dict(s.effect) == {"a": 0, "b": 0}
    assert conform(saga, log.records(sid)).conforms


def test_recover_refuses_another_definition_before_touching_anything(
        tmp_path: Path) -> None:
    saga = chain()
    s = Script({("b", "action"): ["hang"]})
    log = SQLiteLog(tmp_path / "s.db")
    changed = (SagaBuilder("chain")
               .step("a", participant="p", action="a", compensation="ua")
               .step("b", participant="p", action="b", compensation="ub",
                     timeout=5.0)
               .step("c", participant="p", action="c", compensation="uc").build())

    async def main(clock: VirtualClock) -> str:
        sid = await crash_when(Engine(saga, s.participants(saga), log=log,
                                      clock=clock), s, "b", "action")
        other = Engine(changed, s.participants(changed), log=log, clock=clock)
        with pytest.raises(DefinitionMismatch, match="pinned to another definition"):
            await other.recover(force=True)
        return sid

    sid = vrun(main)
    assert [r.kind for r in log.records(sid)] == ["start", "dispatch", "reply",
                                                  "dispatch"]
    assert log.get(sid).status == "running"


def test_stuck_instance_is_persisted_and_resumable(tmp_path: Path) -> None:
    saga = chain(comp_max=2)
    s = Script({("c", "action"): ["fail"], ("a", "compensation"): ["fail"] * 2})
    log = SQLiteLog(tmp_path / "s.db")

    async def main(clock: VirtualClock) -> Any:
        engine = Engine(saga, s.participants(saga), log=log, clock=clock)
        stuck = await engine.run()
        assert stuck.outcome is SagaOutcome.STUCK
        assert log.get(stuck.saga_id).status == "STUCK"
        s2 = Script()
        done = await Engine(saga, s2.participants(saga), log=log, clock=clock).run()
        with pytest.raises(NotResumable, match="is COMPLETED, not STUCK"):
            await engine.resume(done.saga_id)
        return await Engine(saga, s.participants(saga), log=log,
                            clock=clock).resume(stuck.saga_id)

    result = vrun(main)
    assert result.outcome is SagaOutcome.COMPENSATED
    assert dict(s.effect)["a"] == 0
    records = log.records(result.saga_id)
    assert [r.kind for r in records].count("resume") == 1
    assert conform(saga, records).conforms


def test_a_worker_that_lost_its_lease_stops_writing(tmp_path: Path) -> None:
    saga = chain()
    s = Script({("b", "action"): [5.0]})
    log = SQLiteLog(tmp_path / "s.db")

    async def main(clock: VirtualClock) -> None:
        first = Engine(saga, s.participants(saga), log=log, clock=clock,
                       worker_id="w1")
        sid = await first.start()
        await asyncio.sleep(1)
        assert log.claim(sid, owner="w2", lease_until=1e12, now=0, force=True)
        with pytest.raises(LeaseLost, match="owned by 'w2'"):
            await first.wait(sid)
        await first.aclose()

    vrun(main)

"""Sagas on a real Temporal dev server: the workflow drives the shared
semantics, its histories are paths of the model, and it replays."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from rt_helpers import Script

pytest.importorskip("temporalio")

from temporalio.client import Client
from temporalio.worker import Replayer, Worker

from runtime import _temporal as rt
from saga_models import SagaBuilder
from verifier.conformance import conform

SAGA = (SagaBuilder("tmp_trip")
        .step("flight", participant="flights", action="reserve",
              compensation="cancel", retry={"max_attempts": 3,
                                            "initial_interval": 0.05})
        .step("hotel", participant="hotels", action="reserve",
              compensation="cancel", timeout=0.5)
        .step("car", participant="cars", action="reserve", compensation="cancel",
              depends_on=["flight"])
        .step("charge", participant="payments", action="charge", kind="pivot",
              retry={"max_attempts": 2, "initial_interval": 0.05})
        .compensation_policy(max_attempts="forever", initial_interval=0.05)
        .build())


async def _run(address: str, script: Script, runs: int = 1) -> list[Any]:
    client = await Client.connect(address)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    rt.register(SAGA)
    acts = rt.bind(SAGA, script.participants(SAGA))
    out = []
    async with Worker(client, task_queue=queue, workflows=[rt.SagaWorkflow],
                      activities=[acts.call]):
        for _ in range(runs):
            sid = f"tmp-{uuid.uuid4().hex[:8]}"
            handle = await client.start_workflow(
                rt.WORKFLOW, rt.SagaRun(definition_hash=SAGA.content_hash,
                                        saga_id=sid, input={"n": 1}),
                id=sid, task_queue=queue)
            result = await handle.result()
            history = await handle.fetch_history()
            records = await rt.history_records(SAGA, history)
            out.append((result, records, history))
    return out


def test_completed_saga_history_conforms_and_replays(temporal_address: str) -> None:
    script = Script({("flight", "action"): ["fail"]})  # one retry
    [(result, records, history)] = asyncio.run(_run(temporal_address, script))
    assert result["outcome"] == "COMPLETED"
    kinds = [r.kind for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("dispatch") == 5  # flight twice, then hotel, car, charge
    res = conform(SAGA, records)
    assert res.conforms, res.message
    assert set(script.applied) == {"flight", "hotel", "car", "charge"}

    async def replay() -> None:
        await Replayer(workflows=[rt.SagaWorkflow]).replay_workflow(history)
    asyncio.run(replay())


def test_failed_pivot_compensates_in_reverse_order(temporal_address: str) -> None:
    script = Script({("charge", "action"): ["fail", "fail"],
                     ("hotel", "compensation"): ["fail"]})
    [(result, records, _h)] = asyncio.run(_run(temporal_address, script))
    assert result["outcome"] == "COMPENSATED"
    res = conform(SAGA, records)
    assert res.conforms, res.message
    undone = [r.step for r in records if r.kind == "comp_reply"
              and r.outcome == "ok"]
    assert set(undone) == {"flight", "hotel", "car"}
    # car depends on flight: flight is undone after car
    assert undone.index("car") < undone.index("flight")
    assert all(script.effect[s] == 0 for s in ("flight", "hotel", "car"))


def test_timed_out_attempt_is_unknown_and_compensated(temporal_address: str) -> None:
    # The hotel never answers: its 0.5 s timeout makes the attempt unknown
    # (maybe applied), the step has no retry left, so the saga compensates,
    # the hotel included.
    script = Script({("hotel", "action"): ["hang+"]})
    [(result, records, history)] = asyncio.run(_run(temporal_address, script))
    assert result["outcome"] == "COMPENSATED"
    assert any(r.kind == "reply" and r.step == "hotel" and r.outcome == "unknown"
               for r in records)
    assert conform(SAGA, records).conforms
    assert script.effect["hotel"] == 0

    async def replay() -> None:
        await Replayer(workflows=[rt.SagaWorkflow]).replay_workflow(history)
    asyncio.run(replay())


def test_a_tampered_history_does_not_conform(temporal_address: str) -> None:
    [(_r, records, _h)] = asyncio.run(_run(temporal_address, Script()))
    # drop the pivot's reply: the model cannot reach COMPLETED without it
    cut = [r for r in records if not (r.kind == "reply" and r.step == "charge")]
    assert not conform(SAGA, cut).conforms


def test_unsupported_features_are_refused() -> None:
    saga = (SagaBuilder("b").step("a", participant="p", action="x",
                                  compensation="y", total_timeout=5).build())
    with pytest.raises(rt.TemporalUnsupported, match="total_timeout"):
        rt.register(saga)

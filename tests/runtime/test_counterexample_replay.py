"""Every counterexample the verifier finds can be replayed by the runtime with
scripted participant outcomes (and crashes), ending in the same bad state."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from rt_helpers import Script, vrun

from runtime import Engine, EventType, InProcessBus, MemoryLog, VirtualClock, replay
from saga_models import FaultModel, RetryPolicy, Saga, SagaBuilder
from saga_models import semantics as sem
from verifier import SagaTransitionSystem, Verdict, check
from verifier.conformance import conform

_REPLY_EVENTS = {EventType.STEP_COMPLETED, EventType.STEP_FAILED,
                 EventType.STEP_TIMED_OUT, EventType.COMPENSATION_COMPLETED,
                 EventType.COMPENSATION_FAILED}


def _bugs() -> dict[str, tuple[Saga, FaultModel]]:
    no_dup = FaultModel(duplicates=0)
    return {
        # The compensation needs a reservation id that a timed-out reply never
        # delivered: the saga can only escalate.
        "needs_result": ((SagaBuilder("needs_result")
                          .step("hold", participant="bank", action="hold",
                                compensation="release", timeout=5.0,
                                compensation_needs_result=True)
                          .step("ship", participant="post", action="ship",
                                compensation="recall")
                          .compensation_policy(max_attempts=2).build()), no_dup),
        # A non-idempotent charge re-sent after a crash takes effect twice.
        "double_charge": ((SagaBuilder("double_charge")
                           .step("charge", participant="bank", action="charge",
                                 compensation="refund", idempotent=False)
                           .build()), FaultModel(fail=False, timeout=False,
                                                 comp_fail=False, duplicates=0)),
        # A retriable step with a bounded retry policy can run out.
        "bounded_retriable": ((SagaBuilder("bounded_retriable")
                               .step("pay", participant="bank", action="pay",
                                     kind="pivot")
                               .step("notify", participant="mail", action="send",
                                     kind="retriable",
                                     retry=RetryPolicy(max_attempts=2))
                               .build()), no_dup),
        # A compensatable step after the pivot: an abort leaves the pivot's
        # effect in place.
        "after_pivot": ((SagaBuilder("after_pivot")
                         .step("pay", participant="bank", action="pay",
                               kind="pivot")
                         .step("book", participant="hotel", action="book",
                               compensation="cancel")
                         .build()), no_dup),
    }


def _plan(saga: Saga, events: list[dict[str, Any]]) -> tuple[
        dict[tuple[str, str], list[str]], list[tuple[int, int]]]:
    """Participant behaviours and crash points that make the runtime take the
    counterexample's path. A crash point is (replies seen, calls made)."""
    plan: dict[tuple[str, str], list[str]] = defaultdict(list)
    inflight: dict[tuple[str, str], list[int]] = {}
    crashes: list[tuple[int, int]] = []
    replies = calls = 0
    idem = {s.name: s.idempotent for s in saga.steps}
    for ev in events:
        kind, step = ev["kind"], ev["step"]
        if kind in ("dispatch", "comp_dispatch"):
            key = (step, "action" if kind == "dispatch" else "compensation")
            plan[key].append("?")
            inflight[key] = [len(plan[key]) - 1]
            calls += 1
        elif kind == "crash":
            crashes.append((replies, calls))
        elif kind == "recover":
            for key, idxs in inflight.items():
                if idxs:
                    plan[key].append("?")
                    idxs.append(len(plan[key]) - 1)
                    calls += 1
        elif kind in ("reply", "comp_reply"):
            key = (step, "action" if kind == "reply" else "compensation")
            idxs = inflight.pop(key)
            *abandoned, last = idxs
            outcome, delta = ev["outcome"], ev["effect_delta"]
            for k in abandoned:
                plan[key][k] = "hang"
            if kind == "comp_reply":
                plan[key][last] = "ok" if outcome == "ok" else "fail"
            elif idem[step]:
                plan[key][last] = {"ok": "ok", "failed": "fail", "fatal": "fatal",
                                   "unknown": "hang+" if delta else "hang"}[outcome]
            else:
                applied_last = 1 if outcome == "ok" else 0
                extra = delta - applied_last
                if outcome == "unknown" and extra > len(abandoned):
                    plan[key][last], extra = "hang+", extra - 1
                else:
                    plan[key][last] = {"ok": "ok", "failed": "fail",
                                       "fatal": "fatal", "unknown": "hang"}[outcome]
                for k in abandoned[:extra]:
                    plan[key][k] = "hang+"
            replies += 1
    return dict(plan), crashes


def _run(saga: Saga, plan: dict[tuple[str, str], list[str]],
         crashes: list[tuple[int, int]]) -> tuple[sem.State, Script, list[Any]]:
    script = Script({k: list(v) for k, v in plan.items()},
                    non_idempotent=frozenset(s.name for s in saga.steps
                                             if not s.idempotent))
    log = MemoryLog()

    async def main(clock: VirtualClock) -> str:
        ops = script.participants(saga)
        replies = 0
        reached = asyncio.Event()
        target = crashes[0][0] if crashes else -1

        def count(e: Any) -> None:
            nonlocal replies
            if e.type in _REPLY_EVENTS:
                replies += 1
            if replies == target:
                reached.set()

        bus = InProcessBus()
        bus.subscribe(count)
        engine = Engine(saga, ops, log=log, clock=clock, bus=bus, worker_id="w0")
        sid = await engine.start({})
        for n, (_, calls) in enumerate(crashes):
            if target > 0:
                await reached.wait()
            while len(script.calls) < calls:
                await asyncio.sleep(0)
            await engine.aclose()  # the orchestrator crashes here
            reached.clear()
            target = crashes[n + 1][0] if n + 1 < len(crashes) else -1
            engine = Engine(saga, ops, log=log, clock=clock, bus=bus,
                            worker_id=f"w{n + 1}")
            await engine.recover(force=True)
        await engine.wait(sid)
        return sid

    sid = vrun(main)
    records = log.records(sid)
    return replay(saga, records).state, script, records


@pytest.mark.parametrize("name", sorted(_bugs()))
def test_counterexample_replays_to_the_same_bad_state(name: str) -> None:
    saga, faults = _bugs()[name]
    result = check(saga, faults=faults)
    bad = [r for r in result.results
           if r.verdict is Verdict.VIOLATED and r.counterexample is not None
           and r.counterexample.loop_start is None]
    assert bad, f"seeded bug {name} must be refuted"
    ts = SagaTransitionSystem(saga, faults)
    for prop in bad:
        cex = prop.counterexample
        assert cex is not None
        events = [s.event for s in cex.steps[1:] if s.event is not None]
        plan, crashes = _plan(saga, events)
        state, script, records = _run(saga, plan, crashes)
        assert conform(saga, records).conforms
        world = list(state)
        for i, step in enumerate(saga.steps):
            world[sem.HEADER + sem.WIDTH * i + sem.EF] = script.modelled[
                step.name]
        got = sem.view(saga, tuple(world)).to_json()
        want = cex.steps[-1].state
        assert got["phase"] == want["phase"], (prop.property, got, want)
        for sname, fields in want["steps"].items():  # type: ignore[union-attr]
            for f in ("status", "effect", "compensation"):
                assert got["steps"][sname][f] == fields[f], (  # type: ignore[index]
                    prop.property, sname, f, got, want)
        # ...and the property fails on the runtime's world as on the model's.
        check_fn = next(p for p in ts.properties if p.name == prop.property)
        assert check_fn.on_terminal is not None
        message = check_fn.on_terminal(tuple(world))
        assert message is not None and message in prop.reason, (message, prop.reason)

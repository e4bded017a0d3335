"""The engine drives the semantics: outcomes, ordering, retries, timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rt_helpers import Script, vrun

from runtime import (
    BindingError,
    Engine,
    EventType,
    InProcessBus,
    MemoryLog,
    SagaEvent,
    SagaOutcome,
    VirtualClock,
)
from saga_models import RetryPolicy, Saga, SagaBuilder


def chain(**kw: Any) -> Saga:
    return (SagaBuilder("chain")
            .step("a", participant="p", action="a", compensation="ua", **kw)
            .step("b", participant="p", action="b", compensation="ub", **kw)
            .step("c", participant="p", action="c", compensation="uc", **kw)
            .build())


def diamond() -> Saga:
    return (SagaBuilder("diamond")
            .step("root", participant="p", action="r", compensation="ur")
            .step("left", participant="p", action="l", compensation="ul",
                  depends_on=["root"])
            .step("right", participant="p", action="x", compensation="ux",
                  depends_on=["root"])
            .step("join", participant="p", action="j", compensation="uj",
                  depends_on=["left", "right"])
            .build())


def run(saga: Saga, script: Script, input: Any = None, **kw: Any) -> Any:
    async def main(clock: VirtualClock) -> Any:
        engine = Engine(saga, script.participants(saga), clock=clock, **kw)
        try:
            return await engine.run(input or {})
        finally:
            await engine.aclose()

    return vrun(main)


def test_happy_path_completes_and_outputs_flow_forward() -> None:
    s = Script()
    result = run(chain(), s, {"who": "ada"})
    assert result.outcome is SagaOutcome.COMPLETED and result.completed
    assert result.results["c"] == {"step": "c", "seen": ["a", "b"]}
    assert [c[:2] for c in s.calls] == [("a", "action"), ("b", "action"),
                                        ("c", "action")]
    assert s.contexts[0].input == {"who": "ada"}
    assert s.contexts[0].idempotency_key.endswith(":a:action")


def test_failure_compensates_in_reverse_and_compensation_sees_the_output() -> None:
    s = Script({("c", "action"): ["fail"]})
    result = run(chain(), s)
    assert result.outcome is SagaOutcome.COMPENSATED and not result.completed
    comps = [c[0] for c in s.calls if c[1] == "compensation"]
    assert comps == ["b", "a"]
    comp_ctx = next(c for c in s.contexts if c.attempt_kind == "compensation")
    assert comp_ctx.result == {"step": "b", "seen": ["a"]}
    assert dict(s.effect) == {"a": 0, "b": 0}
    assert "Boom" in result.errors["c"]


def test_first_step_failing_is_failed_not_compensated() -> None:
    result = run(chain(), Script({("a", "action"): ["fail"]}))
    assert result.outcome is SagaOutcome.FAILED


def test_independent_steps_run_concurrently() -> None:
    s = Script({("left", "action"): [10.0], ("right", "action"): [10.0]})

    async def main(clock: VirtualClock) -> float:
        engine = Engine(diamond(), s.participants(diamond()), clock=clock)
        await engine.run()
        return clock.now()

    assert vrun(main) == pytest.approx(10.0)  # not 20: left and right overlap


def test_compensation_waits_for_dependents_and_runs_independent_ones_together() -> None:
    s = Script({("join", "action"): ["fail"],
                ("left", "compensation"): [5.0], ("right", "compensation"): [5.0]})

    async def main(clock: VirtualClock) -> tuple[Any, float]:
        engine = Engine(diamond(), s.participants(diamond()), clock=clock)
        return await engine.run(), clock.now()

    result, elapsed = vrun(main)
    assert result.outcome is SagaOutcome.COMPENSATED
    comps = [c[0] for c in s.calls if c[1] == "compensation"]
    assert comps[-1] == "root" and set(comps[:2]) == {"left", "right"}
    assert elapsed == pytest.approx(5.0)


def test_retries_back_off_exponentially_on_the_virtual_clock() -> None:
    saga = (SagaBuilder("r").step(
        "a", participant="p", action="a", compensation="ua",
        retry=RetryPolicy(max_attempts=4, initial_interval=1.0, backoff=3.0,
                          max_interval=5.0)).build())
    s = Script({("a", "action"): ["fail", "fail", "fail"]})
    times: list[float] = []

    async def main(clock: VirtualClock) -> Any:
        bus = InProcessBus()
        bus.subscribe(lambda e: times.append(clock.now())
                      if e.type is EventType.STEP_STARTED else None)
        return await Engine(saga, s.participants(saga), clock=clock, bus=bus).run()

    assert vrun(main).outcome is SagaOutcome.COMPLETED
    assert times == pytest.approx([0.0, 1.0, 4.0, 9.0])  # waits 1, 3, 5 (capped)
    assert [c[3] for c in s.calls] == [1, 2, 3, 4]
    assert len({c[2] for c in s.calls}) == 1  # one idempotency key for all


def test_jitter_is_drawn_from_the_injected_rng() -> None:
    import random

    saga = (SagaBuilder("j").step(
        "a", participant="p", action="a", compensation="ua",
        retry=RetryPolicy(max_attempts=2, initial_interval=10.0, jitter=0.5))
        .build())

    def elapsed(seed: int) -> float:
        async def main(clock: VirtualClock) -> float:
            s = Script({("a", "action"): ["fail"]})
            await Engine(saga, s.participants(saga), clock=clock,
                         rng=random.Random(seed)).run()
            return clock.now()

        return vrun(main)

    assert 5.0 <= elapsed(1) <= 10.0
    assert elapsed(1) == elapsed(1) and elapsed(1) != elapsed(2)


def test_non_retryable_error_is_fatal_and_not_retried() -> None:
    saga = (SagaBuilder("f")
            .step("a", participant="p", action="a", compensation="ua")
            .step("b", participant="p", action="b", compensation="ub",
                  retry=RetryPolicy(max_attempts=5, non_retryable_errors=("Fatal",)))
            .build())
    s = Script({("b", "action"): ["fatal"]})
    assert run(saga, s).outcome is SagaOutcome.COMPENSATED
    assert [c[0] for c in s.calls if c[1] == "action"] == ["a", "b"]
    s = Script({("b", "action"): ["fail"]})
    assert run(saga, s).outcome is SagaOutcome.COMPLETED  # Boom is retryable


def test_timeout_is_an_unknown_outcome_and_is_compensated() -> None:
    saga = (SagaBuilder("t")
            .step("a", participant="p", action="a", compensation="ua")
            .step("b", participant="p", action="b", compensation="ub", timeout=2.0)
            .build())
    s = Script({("b", "action"): ["hang+"]})
    result = run(saga, s)
    assert result.outcome is SagaOutcome.COMPENSATED
    assert "TimeoutError" in result.errors["b"]
    assert dict(s.effect) == {"a": 0, "b": 0}  # b took effect and was undone


def test_compensation_needing_a_result_that_never_came_escalates_to_stuck() -> None:
    saga = (SagaBuilder("n")
            .step("a", participant="p", action="a", compensation="ua", timeout=1.0,
                  compensation_needs_result=True)
            .compensation_policy(max_attempts=3)
            .build())
    s = Script({("a", "action"): ["hang+"]})
    result = run(saga, s)
    assert result.outcome is SagaOutcome.STUCK
    assert not [c for c in s.calls if c[1] == "compensation"]  # never callable


def test_compensation_retried_forever_with_backoff_until_it_succeeds() -> None:
    s = Script({("b", "compensation"): ["fail"] * 6, ("c", "action"): ["fail"]})
    result = run(chain(), s)
    assert result.outcome is SagaOutcome.COMPENSATED
    assert len([c for c in s.calls if c[:2] == ("b", "compensation")]) == 7


def test_abort_cuts_off_timed_siblings_and_waits_for_others() -> None:
    saga = (SagaBuilder("p")
            .step("a", participant="p", action="a", compensation="ua")
            .step("slow", participant="p", action="s", compensation="us",
                  depends_on=["a"], timeout=100.0)
            .step("fails", participant="p", action="f", compensation="uf",
                  depends_on=["a"])
            .build())
    s = Script({("slow", "action"): ["hang+"], ("fails", "action"): ["fail@1"]})

    async def main(clock: VirtualClock) -> tuple[Any, float]:
        engine = Engine(saga, s.participants(saga), clock=clock)
        return await engine.run(), clock.now()

    result, elapsed = vrun(main)
    assert result.outcome is SagaOutcome.COMPENSATED
    assert elapsed < 100.0  # the sibling was cancelled, not waited out
    assert s.contexts[1].cancel_requested.is_set()
    assert dict(s.effect)["slow"] == 0


def test_abort_waits_for_an_untimed_sibling_and_compensates_it() -> None:
    """A sibling without a timeout is not cut off by an abort: only its real
    reply tells the semantics whether it took effect (cut off, it was reported
    failed and never compensated, though it may have applied)."""
    saga = (SagaBuilder("p")
            .step("a", participant="p", action="a", compensation="ua")
            .step("slow", participant="p", action="s", compensation="us",
                  depends_on=["a"])
            .step("fails", participant="p", action="f", compensation="uf",
                  depends_on=["a"])
            .build())
    s = Script({("slow", "action"): ["ok@5"], ("fails", "action"): ["fail@1"]})
    log = MemoryLog()

    async def main(clock: VirtualClock) -> tuple[Any, float]:
        engine = Engine(saga, s.participants(saga), clock=clock, log=log)
        return await engine.run(), clock.now()

    result, elapsed = vrun(main)
    assert result.outcome is SagaOutcome.COMPENSATED
    assert elapsed >= 5.0
    slow = [r.outcome for r in log.records(result.saga_id)
            if r.kind == "reply" and r.step == "slow"]
    assert slow == ["ok"]
    assert s.undone["slow"] == 1 and dict(s.effect)["slow"] == 0


def test_events_are_published_in_order() -> None:
    seen: list[SagaEvent] = []
    bus = InProcessBus()
    bus.subscribe(seen.append)
    bus.subscribe(lambda e: 1 / 0)  # a broken subscriber does not break the saga
    result = run(chain(), Script({("b", "action"): ["fail"]}), bus=bus)
    assert result.outcome is SagaOutcome.COMPENSATED
    assert [e.type for e in seen] == [
        EventType.SAGA_STARTED, EventType.STEP_STARTED, EventType.STEP_COMPLETED,
        EventType.STEP_STARTED, EventType.STEP_FAILED,
        EventType.COMPENSATION_STARTED, EventType.COMPENSATION_COMPLETED,
        EventType.SAGA_COMPENSATED]


def test_garbage_reply_is_a_clear_failure() -> None:
    result = run(chain(), Script({("b", "action"): ["garbage"]}))
    assert result.outcome is SagaOutcome.COMPENSATED
    assert "ParticipantContractError" in result.errors["b"]
    assert "not JSON" in result.errors["b"]


def test_missing_participant_is_named_at_bind_time() -> None:
    saga = chain()
    with pytest.raises(BindingError, match=r"p\.uc \(step 'c'\)") as info:
        Engine(saga, {"p": {"a": print, "b": print, "c": print, "ua": print,
                            "ub": print}})
    assert isinstance(info.value, LookupError)


def test_unexpected_exception_from_participant_is_a_failed_attempt() -> None:
    saga = chain()

    def explode(ctx: Any) -> Any:
        raise KeyError("surprise")

    ops = Script().participants(saga)
    ops["p"]["b"] = explode
    result = vrun(lambda clock: Engine(saga, ops, clock=clock).run())
    assert result.outcome is SagaOutcome.COMPENSATED
    assert "KeyError" in result.errors["b"]


def test_result_cache_serves_idempotent_reads_within_ttl() -> None:
    saga = (SagaBuilder("q").step("quote", participant="p", action="q",
                                  kind="retriable", cache_ttl=60.0, read_only=True,
                                  retry=RetryPolicy(max_attempts=None)).build())
    s = Script()

    async def main(clock: VirtualClock) -> None:
        engine = Engine(saga, s.participants(saga), clock=clock)
        await engine.run({"sku": 1})
        await engine.run({"sku": 1})
        await engine.run({"sku": 2})
        await asyncio.sleep(61)
        await engine.run({"sku": 1})

    vrun(main)
    assert len(s.calls) == 3


def test_hours_of_backoff_run_in_virtual_time() -> None:
    saga = (SagaBuilder("h").step(
        "a", participant="p", action="a", compensation="ua",
        retry=RetryPolicy(max_attempts=10, initial_interval=600.0, backoff=1.0,
                          max_interval=600.0)).build())
    s = Script({("a", "action"): ["fail"] * 9})

    async def main(clock: VirtualClock) -> float:
        await Engine(saga, s.participants(saga), clock=clock,
                     log=MemoryLog()).run()
        return clock.now()

    assert vrun(main) == pytest.approx(5400.0)

"""The circuit breaker: closed, open, half-open, on the injected clock."""

from __future__ import annotations

from typing import Any

from rt_helpers import Script, vrun

from runtime import Breaker, BreakerState, Engine, SagaOutcome, VirtualClock
from saga_models import CircuitBreaker, RetryPolicy, SagaBuilder


class Tick:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t


def test_opens_after_threshold_and_half_opens_after_recovery() -> None:
    clock = Tick()
    b = Breaker(CircuitBreaker(failure_threshold=3, recovery_timeout=30.0), clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state is BreakerState.CLOSED
    assert b.allow()
    b.failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.t = 29.9
    assert not b.allow()
    clock.t = 30.0
    assert b.allow() and b.state is BreakerState.HALF_OPEN
    assert not b.allow()  # only one trial call at a time
    b.failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.t = 60.0
    assert b.allow()
    b.success()
    assert b.state is BreakerState.CLOSED and b.allow()


def test_success_resets_the_count_of_consecutive_failures() -> None:
    b = Breaker(CircuitBreaker(failure_threshold=2), Tick())
    b.failure()
    b.success()
    b.failure()
    assert b.state is BreakerState.CLOSED


def test_open_breaker_fails_fast_without_calling_the_participant() -> None:
    saga = (SagaBuilder("b").step(
        "pay", participant="bank", action="pay", kind="retriable",
        retry=RetryPolicy(max_attempts=None, initial_interval=1.0, backoff=1.0),
        breaker=CircuitBreaker(failure_threshold=2, recovery_timeout=60.0))
        .build())
    s = Script({("pay", "action"): ["fail", "fail"]})

    async def main(clock: VirtualClock) -> tuple[Any, float]:
        engine = Engine(saga, s.participants(saga), clock=clock)
        result = await engine.run()
        breaker = engine.breaker("bank")
        assert breaker is not None and breaker.state is BreakerState.CLOSED
        return result, clock.now()

    result, elapsed = vrun(main)
    assert result.outcome is SagaOutcome.COMPLETED
    # two real failures open it; retries every second fail fast for 60 s, then
    # the half-open trial goes through and succeeds.
    assert len(s.calls) == 3
    assert 60.0 <= elapsed <= 63.0

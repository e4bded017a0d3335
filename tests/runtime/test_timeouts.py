"""Total timeouts, compensation timeouts and an open breaker after an unknown
attempt: the runtime, the shared semantics and both checkers agree."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from rt_helpers import Script, vrun
from test_conformance import check_execution, matches_world, run_with_faults

from runtime import (
    Engine,
    EventType,
    InProcessBus,
    MemoryLog,
    SagaOutcome,
    VirtualClock,
)
from saga_models import (
    CircuitBreaker,
    CompensationPolicy,
    RetryPolicy,
    Saga,
    Step,
    StepKind,
)
from saga_models import semantics as sem
from saga_models.semantics import Event, EventKind, Outcome
from verifier import Verdict, check
from verifier.conformance import conform


def two(*, timeout: float | None = 1.0, total: float | None = 2.5,
        attempts: int | None = 5, kind: StepKind = StepKind.COMPENSATABLE,
        policy: CompensationPolicy | None = None,
        breaker: CircuitBreaker | None = None, idempotent: bool = True,
        interval: float = 0.0) -> Saga:
    """``a`` then ``b``; ``b`` carries the timeouts under test."""
    return Saga(name="t", steps=(
        Step(name="a", participant="p", action="a", compensation="ua",
             timeout=1.0),
        Step(name="b", participant="q", action="b",
             compensation="ub" if kind is StepKind.COMPENSATABLE else None,
             kind=kind, depends_on=("a",), timeout=timeout, total_timeout=total,
             retry=RetryPolicy(max_attempts=attempts, initial_interval=interval),
             breaker=breaker, idempotent=idempotent),
    ), compensation_policy=policy or CompensationPolicy())


def execute(saga: Saga, plan: dict[Any, list[Any]]) -> tuple[Any, Any, Script]:
    result, records, script = run_with_faults(saga, plan, None)
    return result, records, script


# --- total timeout: a semantic transition ------------------------------------------
def test_total_timeout_spends_the_step_before_its_attempts_run_out() -> None:
    saga = two()
    result, records, script = execute(saga, {("b", "action"): ["hang+"] * 5})
    assert result.outcome is SagaOutcome.COMPENSATED
    replies = [(r.outcome, r.at - 1_700_000_000.0) for r in records
               if r.kind == "reply" and r.step == "b"]
    # 1s per attempt, 2.5s in all: unknown at 1 and 2, expired at 2.5 (each
    # deadline is absolute: the second attempt, sent at 1, ends at 2, not 3)
    assert replies == [("unknown", 1.0), ("unknown", 2.0), ("expired", 2.5)]
    assert script.effect["b"] == 0  # b may have taken effect: compensated
    res = conform(saga, records)
    assert res.conforms and res.phases == ("COMPENSATED",)
    assert any(matches_world(saga, s, script) for s in res.final_states)


def test_expired_is_what_conformance_needs_to_accept_the_early_abort() -> None:
    """The same log with the last reply relabelled plain unknown leaves the
    model with two attempts to go, so the abort is not a path of the model."""
    saga = two()
    _, records, _ = execute(saga, {("b", "action"): ["hang+"] * 5})
    k = max(n for n, r in enumerate(records) if r.outcome == "expired")
    doctored = [*records[:k], dataclasses.replace(records[k], outcome="unknown"),
                *records[k + 1:]]
    res = conform(saga, doctored)
    assert not res.conforms and res.index == k + 1


def test_an_expired_reply_for_a_step_without_total_timeout_is_refused() -> None:
    saga = two(total=None, attempts=1)
    _, records, _ = execute(saga, {("b", "action"): ["hang"]})
    k = next(n for n, r in enumerate(records) if r.outcome == "unknown")
    doctored = [*records[:k], dataclasses.replace(records[k], outcome="expired"),
                *records[k + 1:]]
    res = conform(saga, doctored)
    assert not res.conforms and res.index == k


def test_total_timeout_alone_bounds_a_step_without_a_per_attempt_one() -> None:
    saga = two(timeout=None, total=4.0)
    result, records, _ = execute(saga, {("b", "action"): ["hang"]})
    assert result.outcome is SagaOutcome.COMPENSATED
    assert [r.outcome for r in records if r.kind == "reply"] == ["ok", "expired"]
    assert conform(saga, records).conforms


def test_a_budget_spent_before_a_retry_is_sent_expires_without_a_call() -> None:
    saga = two(timeout=10.0, total=2.5, interval=3.0)
    result, records, script = execute(saga, {("b", "action"): ["fail@1"]})
    # expired is an unknown outcome: b is compensated too, though it never ran
    assert result.outcome is SagaOutcome.COMPENSATED
    calls = [c for c in script.calls if c[:2] == ("b", "action")]
    assert len(calls) == 1  # the retry at t=4 found the 2.5s budget spent
    assert [r.outcome for r in records if r.kind == "reply" and r.step == "b"] == [
        "failed", "expired"]
    assert conform(saga, records).conforms


def test_an_expired_pivot_ends_stuck_and_resumes_with_a_fresh_budget() -> None:
    saga = two(kind=StepKind.PIVOT, attempts=None)
    log = MemoryLog()
    script = Script({("b", "action"): ["hang", "hang", "hang"]})

    async def main(clock: VirtualClock) -> tuple[Any, Any]:
        engine = Engine(saga, script.participants(saga), log=log, clock=clock)
        first = await engine.run()
        return first, await engine.resume(first.saga_id)

    stuck, resumed = vrun(main)
    assert stuck.outcome is SagaOutcome.STUCK
    assert resumed.outcome is SagaOutcome.COMPLETED
    records = log.records(stuck.saga_id)
    assert [r.outcome for r in records if r.kind == "reply" and r.step == "b"] == [
        "unknown", "unknown", "expired", "ok"]
    assert conform(saga, records).conforms


def test_a_crash_does_not_renew_the_total_budget() -> None:
    """The budget starts at the first send, as the log recorded it: a worker
    that recovers the saga at t~1 still gives up at 2.5, not 1 + 2.5."""
    saga = two()
    result, records, _ = run_with_faults(saga, {("b", "action"): ["hang"] * 6}, 3)
    assert result.outcome is SagaOutcome.COMPENSATED
    assert any(r.kind == "recover" for r in records)
    (expiry,) = [r for r in records if r.outcome == "expired"]
    assert expiry.at - 1_700_000_000.0 == pytest.approx(2.5)
    assert conform(saga, records).conforms


def test_conformance_under_faults_with_total_timeouts() -> None:
    for plan, crash in [({("b", "action"): ["hang+", "fail", "hang"]}, None),
                        ({("b", "action"): ["hang+", "hang+", "hang+"]}, 2),
                        ({("b", "action"): ["fail", "hang+"]}, 1)]:
        check_execution(two(idempotent=False), plan, crash)
        check_execution(two(kind=StepKind.RETRIABLE, attempts=None), plan, crash)


# --- the model: the new transition, explicit and SMT agree -------------------------
def expired(saga: Saga, state: sem.State, step: int = 1) -> list[Event]:
    return [e for e in sem.enabled(saga, state)
            if e.kind is EventKind.REPLY and e.outcome is Outcome.EXPIRED
            and e.step == step]


def running_b(saga: Saga) -> sem.State:
    s = sem.initial_state(saga)
    for e in (Event(EventKind.DISPATCH, 0), Event(EventKind.REPLY, 0, Outcome.OK, 1),
              Event(EventKind.DISPATCH, 1)):
        s = sem.apply(saga, s, e)
    return s


def test_expired_is_offered_only_for_a_total_timeout_under_timeout_or_fail() -> None:
    assert expired(two(), running_b(two()))
    assert not expired(two(total=None), running_b(two(total=None)))
    # retries of failures spend the budget too (found by
    # tests/runtime/slow/test_fault_soundness.py): fail alone lets it expire
    for knobs, offered in (("fail,comp_fail,crash=1", True),
                           ("timeout", True), ("comp_fail,crash=1", False)):
        off = sem.FaultModel.parse(knobs)
        got = [e for e in sem.enabled(two(), running_b(two()), off)
               if e.outcome is Outcome.EXPIRED]
        assert bool(got) is offered, knobs


@pytest.mark.parametrize(("kind", "phase"), [
    (StepKind.COMPENSATABLE, sem.Phase.COMPENSATING),
    (StepKind.PIVOT, sem.Phase.STUCK),
    (StepKind.RETRIABLE, sem.Phase.STUCK),
])
def test_expired_spends_the_step_on_its_first_attempt(kind: StepKind,
                                                      phase: sem.Phase) -> None:
    saga = two(kind=kind, attempts=None if kind is not StepKind.COMPENSATABLE
               else 5)
    state = running_b(saga)
    (e, *_) = expired(saga, state)
    after = sem.apply(saga, state, e)
    assert sem.phase(after) is phase
    assert sem.field(after, 1, sem.ST) == sem.Status.UNKNOWN
    # the plain timeout on the same attempt retries instead
    plain = sem.apply(saga, state, Event(EventKind.REPLY, 1, Outcome.UNKNOWN, 0))
    assert sem.phase(plain) is sem.Phase.RUNNING


SAGAS = {
    "compensatable": two(),
    "non_idempotent": two(idempotent=False, attempts=2),
    "pivot": two(kind=StepKind.PIVOT, attempts=None),
    "retriable": two(kind=StepKind.RETRIABLE, attempts=3),
    "total_only": two(timeout=None, total=3.0),
    "comp_escalates": two(policy=CompensationPolicy(max_attempts=1)),
}


def agree(saga: Saga, faults: sem.FaultModel) -> None:
    explicit = check(saga, faults=faults)
    smt = check(saga, faults=faults, backend="smt")
    got = [(r.property, r.verdict) for r in smt.results]
    assert [(r.property, r.verdict) for r in explicit.results] == got
    assert Verdict.UNKNOWN not in {v for _, v in got}


FAST = sem.FaultModel(crashes=0, duplicates=0)


@pytest.mark.parametrize("name", ["pivot", "retriable", "total_only"])
def test_explicit_and_smt_agree_with_total_timeouts(name: str) -> None:
    agree(SAGAS[name], FAST)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SAGAS))
def test_explicit_and_smt_agree_under_every_fault(name: str) -> None:
    agree(SAGAS[name], sem.ALL_FAULTS)


def test_an_expired_pivot_is_reported_stuck_by_the_checker() -> None:
    """The checker sees the new STUCK ending (a seeded bug: a pivot whose
    total budget can run out), and does not without the total timeout."""
    with_budget = check(two(kind=StepKind.PIVOT, attempts=None))
    without = check(two(kind=StepKind.PIVOT, attempts=None, total=None))
    by = {r.property: r for r in with_budget.results}
    assert "STUCK" in by["eventual_consistency"].reason
    assert "STUCK" not in {r.property: r for r in without.results}[
        "eventual_consistency"].reason


# --- compensation timeout: unknown, retried like a failure -------------------------
def test_a_timed_out_compensation_is_retried_with_the_same_key() -> None:
    saga = two(attempts=1)
    seen: list[Any] = []
    bus = InProcessBus()
    bus.subscribe(seen.append)
    log = MemoryLog()
    script = Script({("b", "action"): ["fail"], ("a", "compensation"): ["hang+"]})

    async def main(clock: VirtualClock) -> Any:
        return await Engine(saga, script.participants(saga), log=log, clock=clock,
                            bus=bus).run()

    result = vrun(main)
    assert result.outcome is SagaOutcome.COMPENSATED
    records = log.records(result.saga_id)
    assert [r.outcome for r in records if r.kind == "comp_reply"] == [
        "unknown", "ok"]
    keys = {c[2] for c in script.calls if c[:2] == ("a", "compensation")}
    assert len(keys) == 1  # same idempotency key: safe when re-run
    assert script.effect["a"] == 0 and script.undone["a"] == 1
    assert EventType.COMPENSATION_TIMED_OUT in {e.type for e in seen}
    res = conform(saga, records)
    assert res.conforms and res.phases == ("COMPENSATED",)
    assert any(matches_world(saga, s, script) for s in res.final_states)


def test_a_timed_out_compensation_escalates_by_policy() -> None:
    saga = two(attempts=1, policy=CompensationPolicy(max_attempts=2))
    result, records, script = execute(
        saga, {("b", "action"): ["fail"], ("a", "compensation"): ["hang+", "hang"]})
    assert result.outcome is SagaOutcome.STUCK
    assert [r.outcome for r in records if r.kind == "comp_reply"] == [
        "unknown", "unknown"]
    res = conform(saga, records)
    assert res.conforms and res.phases == ("STUCK",)
    # the first attempt did undo: the world is one the model allows at STUCK
    assert script.effect["a"] == 0
    assert any(matches_world(saga, s, script) for s in res.final_states)


def test_the_model_offers_a_compensation_timeout_only_where_one_can_fire() -> None:
    saga = two(attempts=1)
    s = running_b(saga)
    s = sem.apply(saga, s, Event(EventKind.REPLY, 1, Outcome.FAILED, 0))
    s = sem.apply(saga, s, Event(EventKind.COMP_DISPATCH, 0))
    comp_timeout = Event(EventKind.COMP_REPLY, 0, Outcome.UNKNOWN)
    assert comp_timeout in sem.enabled(saga, s)
    assert comp_timeout not in sem.enabled(saga, s, sem.FaultModel.parse(
        "fail,timeout"))  # comp_fail off
    after = sem.apply(saga, s, comp_timeout)
    assert sem.field(after, 0, sem.CS) == sem.CompStatus.RETRY
    assert sem.field(after, 0, sem.EF) == 1  # booked at the first ok reply
    untimed = dataclasses.replace(saga, steps=(
        dataclasses.replace(saga.steps[0], timeout=None), saga.steps[1]))
    assert comp_timeout not in sem.enabled(untimed, s)


# --- breaker: a fast failure after an unknown attempt stays unknown ---------------
def test_an_open_breaker_after_an_unknown_attempt_keeps_it_compensated() -> None:
    """b times out having taken effect, which opens b's breaker; its retry is
    refused by the open breaker. Reported "failed", the semantics would take
    b as never applied and leave it uncompensated (COMPENSATED with b's effect
    in place); reported unknown, b is compensated."""
    saga = two(total=None, attempts=2,
               breaker=CircuitBreaker(failure_threshold=1, recovery_timeout=60.0))
    result, records, script = execute(saga, {("b", "action"): ["hang+"]})
    assert result.outcome is SagaOutcome.COMPENSATED
    assert [r.outcome for r in records if r.kind == "reply" and r.step == "b"] == [
        "unknown", "unknown"]
    assert len([c for c in script.calls if c[:2] == ("b", "action")]) == 1
    assert script.effect["b"] == 0
    res = conform(saga, records)
    assert res.conforms
    assert any(matches_world(saga, s, script) for s in res.final_states)

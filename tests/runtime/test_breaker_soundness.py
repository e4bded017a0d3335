"""An open circuit breaker fails an attempt fast. Timeouts trip it too, so with
``fail`` off and ``timeout`` on the model must still offer that failure for a
step with a breaker (docs/runtime_behaviours.md); a runtime log where the
breaker opened on timeouts conforms under that same fault model."""

from __future__ import annotations

from typing import Any

from rt_helpers import Script, vrun

from runtime import Engine, MemoryLog, VirtualClock
from saga_models import CircuitBreaker, FaultModel, RetryPolicy, SagaBuilder
from saga_models import semantics as sem
from verifier.conformance import conform

TIMEOUT_ONLY = FaultModel.parse("timeout")


def _saga(*, breaker: bool) -> Any:
    return (SagaBuilder("b")
            .step("hold", participant="bank", action="hold", compensation="free",
                  timeout=1.0, empty_rollback=True, anti_suspension=True,
                  retry=RetryPolicy(max_attempts=2, initial_interval=1.0,
                                    backoff=1.0),
                  breaker=(CircuitBreaker(failure_threshold=2,
                                          recovery_timeout=60.0)
                           if breaker else None))
            .step("pay", participant="card", action="pay", kind="pivot")
            .build())


def _reply_outcomes(saga: Any, faults: FaultModel) -> set[sem.Outcome | None]:
    state = sem.apply(saga, sem.initial_state(saga),
                      sem.Event(sem.EventKind.DISPATCH, 0))
    return {e.outcome for e in sem.enabled(saga, state, faults)
            if e.kind is sem.EventKind.REPLY}


def test_with_fail_off_only_a_step_with_a_breaker_may_fail() -> None:
    assert sem.Outcome.FAILED in _reply_outcomes(_saga(breaker=True), TIMEOUT_ONLY)
    assert sem.Outcome.FAILED not in _reply_outcomes(_saga(breaker=False),
                                                     TIMEOUT_ONLY)
    # with timeouts off too, nothing can trip the breaker
    assert sem.Outcome.FAILED not in _reply_outcomes(
        _saga(breaker=True), FaultModel.parse("none"))


def test_breaker_opened_by_timeouts_conforms_with_fail_off() -> None:
    saga = _saga(breaker=True)
    # both attempts time out (no failure at all), which opens the breaker;
    # the compensation then fails fast without reaching the participant
    # (comp_fail is off too), until the half-open trial lets it through
    script = Script({("hold", "action"): ["hang", "hang"]})
    log = MemoryLog()

    async def main(clock: VirtualClock) -> str:
        return (await Engine(saga, script.participants(saga), log=log,
                             clock=clock).run()).saga_id

    records = log.records(vrun(main))
    replies = [r.outcome for r in records if r.kind == "reply"]
    comp = [r.outcome for r in records if r.kind == "comp_reply"]
    assert replies == ["unknown", "unknown"]
    assert comp[0] == "failed" and comp[-1] == "ok"  # fast failure, then trial
    assert [c[1] for c in script.calls] == ["action", "action", "compensation"]
    assert conform(saga, records, faults=TIMEOUT_ONLY).conforms
    # the same point without a breaker: no compensation failure is offered
    # (comp_fail is off), so the rule is what lets the log conform
    for with_breaker in (True, False):
        s2 = _saga(breaker=with_breaker)
        state = sem.initial_state(s2)
        for e in (sem.Event(sem.EventKind.DISPATCH, 0),
                  sem.Event(sem.EventKind.REPLY, 0, sem.Outcome.UNKNOWN),
                  sem.Event(sem.EventKind.DISPATCH, 0),
                  sem.Event(sem.EventKind.REPLY, 0, sem.Outcome.UNKNOWN),
                  sem.Event(sem.EventKind.COMP_DISPATCH, 0)):
            state = sem.apply(s2, state, e)
        failed = sem.Event(sem.EventKind.COMP_REPLY, 0, sem.Outcome.FAILED)
        assert (failed in sem.enabled(s2, state, TIMEOUT_ONLY)) is with_breaker


def test_a_breaker_fails_every_step_of_its_participant() -> None:
    # found by tests/runtime/slow/test_fault_soundness.py: the runtime keeps
    # one breaker per participant, declared on any of its steps
    saga = (SagaBuilder("p")
            .step("a", participant="bank", action="a", compensation="ua",
                  timeout=1.0)
            .step("b", participant="bank", action="b", compensation="ub",
                  breaker=CircuitBreaker(failure_threshold=1))
            .step("c", participant="card", action="c", compensation="uc")
            .build())
    faults = FaultModel.parse("timeout")
    state = sem.initial_state(saga)
    offered = {e.outcome for e in sem.enabled(
        saga, sem.apply(saga, state, sem.Event(sem.EventKind.DISPATCH, 0)), faults)
        if e.kind is sem.EventKind.REPLY}
    assert sem.Outcome.FAILED in offered  # a: no breaker of its own
    for e in (sem.Event(sem.EventKind.DISPATCH, 0),
              sem.Event(sem.EventKind.REPLY, 0, sem.Outcome.OK, 1),
              sem.Event(sem.EventKind.DISPATCH, 1),
              sem.Event(sem.EventKind.REPLY, 1, sem.Outcome.OK, 1),
              sem.Event(sem.EventKind.DISPATCH, 2)):
        state = sem.apply(saga, state, e)
    offered = {e.outcome for e in sem.enabled(saga, state, faults)
               if e.kind is sem.EventKind.REPLY}
    assert sem.Outcome.FAILED not in offered  # c: another participant


def test_an_abort_cuts_off_a_timed_sibling_even_with_timeout_off() -> None:
    # found by tests/runtime/slow/test_fault_soundness.py: _cancel_sibling cuts
    # an in-flight attempt with a per-attempt timeout short on abort
    saga = (SagaBuilder("cut")
            .step("a", participant="p", action="a", compensation="ua",
                  timeout=1.0, depends_on=[])
            .step("b", participant="q", action="b", compensation="ub",
                  depends_on=[])
            .build())
    faults = FaultModel.parse("fail")
    state = sem.initial_state(saga)
    for e in (sem.Event(sem.EventKind.DISPATCH, 0),
              sem.Event(sem.EventKind.DISPATCH, 1)):
        state = sem.apply(saga, state, e)
    unknown = sem.Event(sem.EventKind.REPLY, 0, sem.Outcome.UNKNOWN, 0)
    assert unknown not in sem.enabled(saga, state, faults)  # still running
    state = sem.apply(saga, state,
                      sem.Event(sem.EventKind.REPLY, 1, sem.Outcome.FAILED, 0))
    assert sem.phase(state) is sem.Phase.COMPENSATING
    assert unknown in sem.enabled(saga, state, faults)

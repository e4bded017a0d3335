"""Every runtime log is a path of the model; doctored logs are caught."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rt_helpers import Script, sagas, schedules, vrun

from runtime import Engine, LogRecord, MemoryLog, SagaOutcome, VirtualClock
from saga_models import SagaBuilder
from saga_models import semantics as sem
from verifier.conformance import ConformanceError, conform


def chain() -> Any:
    return (SagaBuilder("chain")
            .step("a", participant="p", action="a", compensation="ua")
            .step("b", participant="p", action="b", compensation="ub")
            .build())


def logged(saga: Any, script: Script) -> list[LogRecord]:
    log = MemoryLog()

    async def main(clock: VirtualClock) -> str:
        return (await Engine(saga, script.participants(saga), log=log,
                             clock=clock).run()).saga_id

    return log.records(vrun(main))


def matches_world(saga: Any, state: sem.State, script: Script) -> bool:
    """Whether the participants' real effects are those of model ``state``.

    A call still in flight when the saga ended (STUCK cancels the compensations
    running beside the one that exhausted its attempts) may or may not have
    reached the participant; the model freezes it as running (its effect is
    counted by the reply it never got), so every effect count its deliveries
    could have caused is allowed for it: up to ``deliveries`` more for an
    action (two after a recovery re-sent a non-idempotent command), one less
    for a compensation, also one waiting to retry after a timed-out attempt.
    """
    for i, step in enumerate(saga.steps):
        b = sem.HEADER + sem.WIDTH * i
        real = script.modelled[step.name]
        ef = state[b + sem.EF]
        modelled = {ef}
        if state[b + sem.CS] == sem.CompStatus.RUNNING or (
                state[b + sem.CS] == sem.CompStatus.RETRY
                and step.timeout is not None):
            # in flight, or retrying after an attempt that may have timed out
            # having undone (the model books the undo at the first ok reply)
            modelled.add(max(0, ef - 1))
        if state[b + sem.ST] == sem.Status.RUNNING:
            # an idempotent action takes effect at most once, however re-sent
            most = 1 if step.idempotent else sem.EFFECT_CAP
            modelled.update(min(most, ef + d) if ef < most else ef
                            for d in range(1, state[b + sem.DL] + 1))
        if real not in modelled:
            return False
    return True


HORIZON = 5_000.0
"""Virtual seconds after which a run is cut off: a saga whose compensation can
never succeed (it needs a reply that never came) and is retried forever does
not terminate, in the model or here; its log so far must still conform."""


def run_with_faults(saga: Any, plan: dict[Any, list[Any]], crash_after: int | None,
                    ) -> tuple[Any, list[LogRecord], Script]:
    """Run one instance under ``plan``; optionally stop the worker once the
    participants have seen ``crash_after`` calls, and recover on another.
    The result is None when the run was cut off at :data:`HORIZON`."""
    script = Script({k: list(v) for k, v in plan.items()},
                    non_idempotent=frozenset(s.name for s in saga.steps
                                             if not s.idempotent))
    log = MemoryLog()

    sid_box: list[str] = []
    engines: list[Engine] = []

    async def main(clock: VirtualClock) -> Any:
        try:
            return await asyncio.wait_for(body(clock), HORIZON)
        except TimeoutError:
            for e in engines:
                await e.aclose()
            return None

    async def body(clock: VirtualClock) -> Any:
        ops = script.participants(saga)
        first = Engine(saga, ops, log=log, clock=clock, worker_id="w1")
        engines.append(first)
        sid = await first.start({})
        sid_box.append(sid)
        if crash_after is not None:
            task = asyncio.ensure_future(first.wait(sid))
            while len(script.calls) < crash_after and not task.done():
                await asyncio.sleep(0.05)
            if not task.done():
                await first.aclose()
                second = Engine(saga, ops, log=log, clock=clock, worker_id="w2")
                engines.append(second)
                (result,) = await second.recover(force=True)
                await asyncio.wait([task])
                return result
            return task.result()
        return await first.wait(sid)

    result = vrun(main)
    return result, log.records(sid_box[0]), script


def check_execution(saga: Any, plan: dict[Any, list[Any]],
                    crash_after: int | None) -> None:
    result, records, script = run_with_faults(saga, plan, crash_after)
    res = conform(saga, records)
    assert res.conforms, res.message
    if result is None:
        return  # cut off at the horizon: the prefix conforms
    assert res.phases == (result.outcome.value,)
    # The participants' real world is one the model predicted for this log.
    assert any(matches_world(saga, s, script) for s in res.final_states), (
        dict(script.effect), [sem.view(saga, s).to_json() for s in res.final_states])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_runtime_logs_under_random_faults_are_model_paths(data: st.DataObject) -> None:
    saga = data.draw(sagas())
    plan = data.draw(schedules(saga))
    crash_after = data.draw(st.one_of(st.none(), st.integers(1, 6)))
    check_execution(saga, plan, crash_after)


def test_a_clean_log_conforms() -> None:
    res = conform(chain(), logged(chain(), Script({("b", "action"): ["fail"]})))
    assert res.conforms and res.phases == ("COMPENSATED",)


def test_a_dropped_reply_is_the_first_bad_event() -> None:
    records = logged(chain(), Script())
    doctored = [r for r in records if not (r.kind == "reply" and r.step == "a")]
    res = conform(chain(), doctored)
    assert not res.conforms and res.index == 2
    assert "dispatch b" in res.message and "allows: a: ok" in res.message


def test_a_false_success_is_caught_at_the_end() -> None:
    records = logged(chain(), Script({("b", "action"): ["fail"]}))
    doctored = [*records[:-1], dataclasses.replace(records[-1],
                                                   outcome="COMPLETED")]
    res = conform(chain(), doctored)
    assert not res.conforms and res.index == len(records) - 1
    assert "ends COMPLETED" in res.message and "COMPENSATED" in res.message


def test_compensating_out_of_order_is_caught() -> None:
    saga = (SagaBuilder("c3")
            .step("a", participant="p", action="a", compensation="ua")
            .step("b", participant="p", action="b", compensation="ub")
            .step("c", participant="p", action="c", compensation="uc").build())
    records = logged(saga, Script({("c", "action"): ["fail"]}))
    kinds = [(r.kind, r.step) for r in records]
    i = kinds.index(("comp_dispatch", "b"))
    j = kinds.index(("comp_dispatch", "a"))
    doctored = list(records)
    doctored[i], doctored[j] = (dataclasses.replace(records[j], seq=records[i].seq),
                                dataclasses.replace(records[i], seq=records[j].seq))
    res = conform(saga, doctored)
    assert not res.conforms and res.index == i


def test_a_log_of_another_definition_is_an_error() -> None:
    records = logged(chain(), Script())
    other = (SagaBuilder("chain")
             .step("a", participant="p", action="a", compensation="ua")
             .step("b", participant="p", action="b", compensation="ub",
                   timeout=1.0).build())
    with pytest.raises(ConformanceError, match="definition hash"):
        conform(other, records)


def test_retry_beyond_the_declared_bound_is_caught() -> None:
    records = logged(chain(), Script({("b", "action"): ["fail"]}))
    # pretend the runtime retried b instead of aborting
    fake = [r for r in records[:5]] + [
        LogRecord(saga_id="x", seq=5, kind="dispatch", step="b", step_index=1)]
    res = conform(chain(), [dataclasses.replace(r, definition_hash="")
                            for r in fake])
    assert not res.conforms and res.index == 5


def test_outcome_is_reported_consistently_with_the_world() -> None:
    saga = chain()
    result, records, script = run_with_faults(saga, {("b", "action"): ["fail"]},
                                              None)
    assert result.outcome is SagaOutcome.COMPENSATED
    res = conform(saga, records)
    assert any(matches_world(saga, s, script) for s in res.final_states)


# --- regressions: the shrunk cases the slow tier found -----------------------------
def _two_steps(*, s0_idempotent: bool, s0_attempts: int) -> Any:
    from saga_models import RetryPolicy, Saga, Step

    return Saga(name="random", steps=(
        Step(name="s0", participant="p", action="do0", compensation="undo0",
             retry=RetryPolicy(max_attempts=s0_attempts, initial_interval=0.0),
             timeout=3.0, idempotent=s0_idempotent),
        Step(name="s1", participant="p", action="do1", compensation="undo1",
             retry=RetryPolicy(max_attempts=1, initial_interval=0.0),
             idempotent=False),
    ))


def test_regression_idempotent_participant_cannot_fail_a_key_it_applied() -> None:
    """CI's derandomized profile: s0 (idempotent) times out after applying, and
    its retry is scripted ``fail@1``. An idempotent participant answers a key it
    already applied with the recorded result (the model's contract); the
    script used to check that before splitting off the ``@1`` delay, failed
    the retry, and the world (s0 applied, not undone) matched no model state."""
    saga = _two_steps(s0_idempotent=True, s0_attempts=2)
    check_execution(saga, {("s0", "action"): ["hang+", "fail@1"]}, None)
    _, _, script = run_with_faults(saga, {("s0", "action"): ["hang+", "fail@1"]},
                                   None)
    assert script.effect["s0"] == 1 and script.effect["s1"] == 1


def test_regression_effects_past_the_cap_compare_in_the_models_abstraction() -> None:
    """A non-idempotent step applied three times and compensated once has 2
    effects left; the model counts to 2 ("twice or more") and then undoes one.
    Both say "not undone"; the check compares the abstraction, not raw counts."""
    saga = _two_steps(s0_idempotent=False, s0_attempts=3)
    plan = {("s0", "action"): ["hang+", "hang+", "hang+"]}
    check_execution(saga, plan, None)
    _, records, script = run_with_faults(saga, plan, None)
    assert script.effect["s0"] == 2 and script.modelled["s0"] == 1
    res = conform(saga, records)
    assert res.phases == ("COMPENSATED",)
    # ...and the model state matching the world still has an effect left over.
    matching = [s for s in res.final_states if matches_world(saga, s, script)]
    assert matching and all(sem.field(s, 0, sem.EF) == 1 for s in matching)


def test_regression_recovery_resends_a_non_idempotent_command() -> None:
    """Same, with a crash after the first call: the recovered worker re-sends."""
    saga = _two_steps(s0_idempotent=False, s0_attempts=3)
    check_execution(saga, {("s0", "action"): ["fail", "hang+", "hang+", "hang+"]},
                    1)


def test_a_world_the_model_did_not_predict_is_caught() -> None:
    """The effects check can fail: a participant that quietly undid nothing."""
    saga = chain()
    _, records, script = run_with_faults(saga, {("b", "action"): ["fail"]},
                                         None)
    res = conform(saga, records)
    script.modelled["a"] += 1  # as if the compensation of a had not undone it
    assert not any(matches_world(saga, s, script) for s in res.final_states)

"""The effect declarations are the participant's contract: the generated
stateful tests check, around every real call, that the participant's change
to the shared resources is the declared one (or none)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from runtime import StepContext
from saga_models import SagaBuilder
from sagaproof.testing import (
    Binding,
    Deliver,
    FaultSchedule,
    Outcome,
    ScheduleFailure,
    Settle,
    Start,
    check_participants,
    run_schedule,
)
from verifier import Verdict, check

SAGA = (SagaBuilder("stock").resource("stock", initial=1)
        .record("order", total=0)
        .step("reserve", participant="inventory", compensation="release",
              retry={"max_attempts": 1},
              effect={"guard": "stock >= 1", "update": {"stock": "stock - 1"}},
              compensation_effect={"update": {"stock": "stock + 1"}})
        .step("add", participant="orders", compensation="remove",
              retry={"max_attempts": 1},
              effect={"read": {"seen": "order.total"},
                      "update": {"order.total": "order.total + 1"}},
              compensation_effect={"update": {"order.total": "order.total - 1"}})
        .step("charge", participant="payments", kind="pivot")
        .build())


class OutOfStock(Exception):
    """The business failure a false guard stands for."""


class World:
    """The participants' shared state. ``honest=False`` seeds a bug: a
    reservation goes through even when the stock is gone."""

    def __init__(self, *, honest: bool, give_back: int = 1) -> None:
        self.honest = honest
        self.give_back = give_back
        self.stock = 1
        self.total = 0
        self.version = 0
        self.held: set[str] = set()
        self.added: set[str] = set()

    def reserve(self, ctx: StepContext) -> None:
        if ctx.saga_id in self.held:
            return  # a re-delivery of the same reservation
        if self.stock < 1 and self.honest:
            raise OutOfStock("no stock")
        self.stock -= 1
        self.held.add(ctx.saga_id)

    def release(self, ctx: StepContext) -> None:
        if ctx.saga_id in self.held:
            self.held.discard(ctx.saga_id)
            self.stock += self.give_back

    def add(self, ctx: StepContext) -> None:
        if ctx.saga_id not in self.added:
            self.added.add(ctx.saga_id)
            self.total += 1
            self.version += 1

    def remove(self, ctx: StepContext) -> None:
        if ctx.saga_id in self.added:
            self.added.discard(ctx.saga_id)
            self.total -= 1
            self.version += 1

    def charge(self, ctx: StepContext) -> None:
        return None


def _participants(honest: bool, give_back: int = 1) -> Any:
    def make() -> dict[str, Any]:
        w = World(honest=honest, give_back=give_back)
        return {"inventory": w, "orders": w, "payments": w}
    return make


def _resources(world: Mapping[str, Any]) -> dict[str, int]:
    w = world["inventory"]
    return {"stock": w.stock, "order.total": w.total, "order.version": w.version}


HONEST = Binding(participants=_participants(True), resources=_resources)
DISHONEST = Binding(participants=_participants(False), resources=_resources)


def test_the_definition_itself_verifies_for_one_instance() -> None:
    assert check(SAGA, faults="fail").verdict is Verdict.HOLDS


def test_an_honest_participant_keeps_the_contract() -> None:
    report = run_schedule(SAGA, HONEST,
                          FaultSchedule(ops=(Start(), Start(), Settle())))
    assert report.ok, report.text()


def test_a_dishonest_participant_breaks_it() -> None:
    # The second reservation finds no stock: the declared guard is false, so
    # the call may change nothing; the dishonest one takes a unit anyway.
    report = run_schedule(SAGA, DISHONEST,
                          FaultSchedule(ops=(Start(), Start(), Settle())))
    assert not report.ok
    text = report.text()
    assert "action inventory.reserve of step 'reserve'" in text
    assert "from {stock=0, order.total=0, order.version=0} to {stock=-1" in text


def test_a_compensation_that_gives_back_too_much_breaks_it() -> None:
    schedule = FaultSchedule(ops=(
        Start(), Deliver(saga=0, step="reserve"),
        Deliver(saga=0, step="add", outcome=Outcome.FAIL), Settle()))
    assert run_schedule(SAGA, HONEST, schedule).ok
    greedy = Binding(participants=_participants(True, give_back=2),
                     resources=_resources)
    report = run_schedule(SAGA, greedy, schedule)
    assert not report.ok
    assert ("compensation inventory.release of step 'reserve' changed the "
            "shared resources from {stock=0") in report.text()


def test_a_missing_resource_in_the_snapshot_is_named() -> None:
    binding = Binding(participants=_participants(True),
                      resources=lambda world: {"stock": world["inventory"].stock})
    report = run_schedule(SAGA, binding, FaultSchedule(ops=(Start(), Settle())))
    assert not report.ok
    assert "Binding.resources returned no value for ['order.total'" in (
        report.text())


FAST = settings(max_examples=40, stateful_step_count=12, derandomize=True,
                database=None, deadline=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
def test_generated_tests_find_the_broken_contract_and_pass_the_kept_one() -> None:
    check_participants(SAGA, HONEST, settings=FAST)
    with pytest.raises(ScheduleFailure) as info:
        check_participants(SAGA, DISHONEST, settings=FAST)
    assert "declared effect allows" in str(info.value)

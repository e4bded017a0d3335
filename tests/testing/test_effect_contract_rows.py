"""The effect contract on a record keyed by instance (``key: instance``):
each instance has its own row, which no other instance can see. The binding
names the rows by saga id (``order[ks-0].total``); a call may change only the
shared resources and its own rows, exactly as declared."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

SAGA = (SagaBuilder("ks").resource("stock", initial=2)
        .instance_record("order", total=0, status=0)
        .step("reserve", participant="inventory", compensation="release",
              retry={"max_attempts": 1},
              effect={"guard": "stock >= 1", "update": {"stock": "stock - 1"}},
              compensation_effect={"update": {"stock": "stock + 1"}})
        .step("add", participant="orders", compensation="remove",
              retry={"max_attempts": 1},
              effect={"read": {"seen": "order.total"},
                      "update": {"order.total": "order.total + 5"}},
              compensation_effect={"update": {"order.total": "order.total - 5"}})
        .step("charge", participant="orders", kind="pivot",
              effect={"guard": "seen + 5 == order.total",
                      "update": {"order.status": "order.status + 1"}})
        .build())
"""Two instances share the stock; each has its own order row: ``add`` puts
5 on it (remembering the total it saw, 0), ``charge`` raises its status if
the row still holds what ``add`` left (a guard over a local and the row)."""


class OutOfStock(Exception):
    """The business failure the false guard stands for."""


@dataclass
class Row:
    """One order row, as the participant stores it."""

    total: int = 0
    status: int = 0
    version: int = 0


class Shop:
    """The participants' state: a stock and a table of order rows keyed by
    saga id. ``bug`` seeds one mistake: ``other`` writes the first
    instance's row whatever the instance (a stale key), ``no_version`` writes
    the row without moving its version, ``shared`` keeps one row for every
    instance."""

    def __init__(self, bug: str = "") -> None:
        self.bug = bug
        self.stock = 2
        self.orders: dict[str, Row] = {}
        self.held: set[str] = set()
        self.added: set[str] = set()
        self.charged: set[str] = set()

    def _row(self, ctx: StepContext) -> Row:
        key = {"other": "ks-0", "shared": "everyone"}.get(self.bug, ctx.saga_id)
        return self.orders.setdefault(key, Row())

    def reserve(self, ctx: StepContext) -> None:
        if ctx.saga_id in self.held:
            return  # a re-delivery of the same reservation
        if self.stock < 1:
            raise OutOfStock("no stock")
        self.stock -= 1
        self.held.add(ctx.saga_id)

    def release(self, ctx: StepContext) -> None:
        if ctx.saga_id in self.held:
            self.held.discard(ctx.saga_id)
            self.stock += 1

    def add(self, ctx: StepContext) -> None:
        if ctx.saga_id in self.added:
            return
        self.added.add(ctx.saga_id)
        row = self._row(ctx)
        row.total += 5
        if self.bug != "no_version":
            row.version += 1

    def remove(self, ctx: StepContext) -> None:
        if ctx.saga_id in self.added:
            self.added.discard(ctx.saga_id)
            row = self._row(ctx)
            row.total -= 5
            row.version += 1

    def charge(self, ctx: StepContext) -> None:
        if ctx.saga_id not in self.charged:
            self.charged.add(ctx.saga_id)
            row = self._row(ctx)
            row.status = 1
            row.version += 1


def _participants(bug: str = "") -> Any:
    def make() -> dict[str, Any]:
        shop = Shop(bug)
        return {"inventory": shop, "orders": shop}
    return make


def _resources(world: Mapping[str, Any]) -> dict[str, int]:
    shop = world["inventory"]
    out = {"stock": shop.stock}
    for key, row in shop.orders.items():
        out |= {f"order[{key}].total": row.total,
                f"order[{key}].status": row.status,
                f"order[{key}].version": row.version}
    return out


def _binding(bug: str = "", resources: Any = _resources) -> Binding:
    return Binding(participants=_participants(bug), resources=resources)


TWO = FaultSchedule(ops=(Start(), Start(), Settle()))


def test_the_definition_verifies_for_one_and_two_instances() -> None:
    assert check(SAGA, faults="fail").verdict is Verdict.HOLDS
    assert check(SAGA, faults="fail", instances=2).verdict is Verdict.HOLDS


def test_a_participant_that_keeps_its_own_rows_keeps_the_contract() -> None:
    report = run_schedule(SAGA, _binding(), TWO)
    assert report.ok, report.text()
    assert set(report.outcomes.values()) == {"COMPLETED"}


def test_a_deduplicated_redelivery_reads_nothing() -> None:
    # The second delivery of 'add' changes nothing, so it reads nothing:
    # 'seen' stays the 0 the first one read, and charge's guard holds.
    report = run_schedule(SAGA, _binding(), FaultSchedule(ops=(
        Start(), Deliver(saga=0, step="reserve"),
        Deliver(saga=0, step="add", outcome=Outcome.DUPLICATE), Settle())))
    assert report.ok, report.text()
    assert report.outcomes == {"ks-0": "COMPLETED"}


def test_writing_another_instances_row_is_caught() -> None:
    report = run_schedule(SAGA, _binding("other"), TWO)
    assert not report.ok
    text = report.text()
    # Instance 0 writes its own row; instance 1 writes instance 0's.
    assert ("instance 1 (saga 'ks-1'): action orders.add of step 'add' "
            "changed rows that are not its own: order[ks-0].total from 5 to 10"
            ) in text
    assert "its own rows (order[ks-1])" in text
    assert "Binding.resources" not in text


def test_a_write_without_its_version_bump_is_caught() -> None:
    report = run_schedule(SAGA, _binding("no_version"),
                          FaultSchedule(ops=(Start(), Settle())))
    assert not report.ok
    assert ("instance 0: action orders.add of step 'add' changed the shared "
            "resources and its own rows from {stock=1, order[ks-0].total=0, "
            "order[ks-0].status=0, order[ks-0].version=0} to {stock=1, "
            "order[ks-0].total=5, order[ks-0].status=0, order[ks-0].version=0}; "
            "its declared effect allows {stock=1, order[ks-0].total=0, "
            "order[ks-0].status=0, order[ks-0].version=0} or {stock=1, "
            "order[ks-0].total=5, order[ks-0].status=0, order[ks-0].version=1}"
            ) in report.text()


def test_one_shared_row_in_place_of_its_own_is_caught() -> None:
    # Even one instance is enough: the row it writes belongs to no instance.
    report = run_schedule(SAGA, _binding("shared"),
                          FaultSchedule(ops=(Start(), Settle())))
    assert not report.ok
    assert ("instance 0 (saga 'ks-0'): action orders.add of step 'add' changed "
            "rows that are not its own: order[everyone].total from 0 to 5, "
            "order[everyone].version from 0 to 1") in report.text()
    assert "Binding.resources" not in report.text()


def test_a_binding_that_leaves_out_a_rows_version_is_named() -> None:
    def no_version(world: Mapping[str, Any]) -> dict[str, int]:
        return {k: v for k, v in _resources(world).items()
                if not k.endswith(".version")}

    report = run_schedule(SAGA, _binding(resources=no_version),
                          FaultSchedule(ops=(Start(), Settle())))
    assert not report.ok
    assert ("Binding.resources returned no value for ['order[ks-0].version']; "
            "return every resource the saga declares") in report.text()


def test_a_binding_that_leaves_out_every_row_is_named() -> None:
    def stock_only(world: Mapping[str, Any]) -> dict[str, int]:
        return {"stock": world["inventory"].stock}

    report = run_schedule(SAGA, _binding(resources=stock_only),
                          FaultSchedule(ops=(Start(), Settle())))
    assert not report.ok
    assert ("Binding.resources returned no value for row 'order[ks-0]' after "
            "instance 0's action orders.add of step 'add' answered"
            ) in report.text()


def test_a_binding_that_names_the_row_as_shared_is_told_the_row_names() -> None:
    def one_row(world: Mapping[str, Any]) -> dict[str, int]:
        row = world["inventory"].orders.get("ks-0", Row())
        return {"stock": world["inventory"].stock, "order.total": row.total,
                "order.status": row.status, "order.version": row.version}

    report = run_schedule(SAGA, _binding(resources=one_row),
                          FaultSchedule(ops=(Start(), Settle())))
    assert not report.ok
    assert ("but 'order' is keyed by instance: name each instance's row by its "
            "saga id, e.g. 'order[<saga id>].total'") in report.text()


QUICK = settings(max_examples=15, stateful_step_count=10, derandomize=True,
                 database=None, deadline=None, print_blob=False,
                 suppress_health_check=[HealthCheck.too_slow])


def test_generated_tests_pass_own_rows_and_find_another_instances() -> None:
    check_participants(SAGA, _binding(), settings=QUICK)
    with pytest.raises(ScheduleFailure) as info:
        check_participants(SAGA, _binding("other"), settings=QUICK)
    assert "changed rows that are not its own: order[ks-0]" in str(info.value)


@pytest.mark.parametrize(("bug", "said"), [
    ("no_version", "order[ks-0].version=1} (the effect declaration is"),
    ("shared", "changed rows that are not its own: order[everyone].total"),
])
def test_generated_tests_find_each_seeded_row_bug(bug: str, said: str) -> None:
    with pytest.raises(ScheduleFailure) as info:
        check_participants(SAGA, _binding(bug), settings=QUICK)
    assert said in str(info.value)

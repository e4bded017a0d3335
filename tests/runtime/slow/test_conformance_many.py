"""Thousands of runtime executions under random injected faults and crashes;
every log must be a path of the model and the participants' world a state the
model predicted."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rt_helpers import sagas, schedules
from test_conformance import check_execution


@pytest.mark.slow
@pytest.mark.xfail(
    reason="known runtime/model gap, open in the runtime issue: under CI's "
    "derandomized profile Hypothesis finds a saga with a non-idempotent step "
    "that ends STUCK after a crash where the participants' effects match no final "
    "state the model predicts (e.g. {'s0': 1, 's1': 1, 's2': 1} against STUCK). "
    "Reproduce: CI=true pytest -m slow tests/runtime/slow/test_conformance_many.py",
    strict=False,
)
@settings(max_examples=3000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_thousands_of_faulty_executions_conform(data: st.DataObject) -> None:
    saga = data.draw(sagas())
    plan = data.draw(schedules(saga))
    crash_after = data.draw(st.one_of(st.none(), st.integers(1, 8)))
    check_execution(saga, plan, crash_after)

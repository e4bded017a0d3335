"""Thousands of runtime executions under random injected faults and crashes;
every log must be a path of the model and the participants' world a state the
model predicted.

The derandomized CI profile (tests/conftest.py) once failed here; the shrunk
cases are fast regression tests in tests/runtime/test_conformance.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rt_helpers import sagas, schedules
from test_conformance import check_execution


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_thousands_of_faulty_executions_conform(data: st.DataObject) -> None:
    saga = data.draw(sagas())
    plan = data.draw(schedules(saga))
    crash_after = data.draw(st.one_of(st.none(), st.integers(1, 8)))
    check_execution(saga, plan, crash_after)

"""The runtime's abstraction is sound under every fault model a check can be
run with: the runtime is driven with breakers tripping (threshold 1, so one
timeout or failure opens one), per-attempt and total timeouts expiring and
worker crashes, with only the faults the knob setting allows injected; every
log must be a path of the model under that *same* fault model. A fault the
check switched off must not happen at run time unless the model offers it
(docs/runtime_behaviours.md: an open breaker is a failure whenever ``fail``
or ``timeout`` is on)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rt_helpers import sagas, schedules
from test_conformance import run_with_faults

from saga_models import FaultModel
from verifier.conformance import conform

KNOBS = [
    FaultModel(fail=f, timeout=t, comp_fail=c, crashes=int(k), duplicates=0,
               late=lt)
    for f, t, c, k, lt in itertools.product((True, False), repeat=5)
]
"""Every knob setting (crash=0/1; duplicates are the transport's, the runtime
sends none)."""

_FAIL = {"fail", "fatal", "fail@1"}
_HANG = {"hang", "hang+"}


def _within(plan: dict[Any, list[str]], faults: FaultModel) -> dict[Any, list[str]]:
    """Only the participant faults ``faults`` allows."""
    out = {}
    for (step, kind), todo in plan.items():
        keep = []
        for what in todo:
            if what in _HANG and not faults.timeout:
                continue
            if (kind == "compensation" and what in _HANG
                    and not faults.comp_fail):
                continue  # a compensation timeout is a comp_fail fault
            if kind == "action" and what in _FAIL and not faults.fail:
                continue
            if kind == "compensation" and what == "fail" and not faults.comp_fail:
                continue
            keep.append(what)
        out[(step, kind)] = keep
    return out


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_runtime_logs_conform_under_the_check_fault_model(
    data: st.DataObject,
) -> None:
    faults = data.draw(st.sampled_from(KNOBS))
    saga = data.draw(sagas())
    plan = _within(data.draw(schedules(saga)), faults)
    crash_after = (data.draw(st.one_of(st.none(), st.integers(1, 8)))
                   if faults.crashes else None)
    _, records, _ = run_with_faults(saga, plan, crash_after)
    res = conform(saga, records, faults=faults)
    assert res.conforms, f"under {faults.describe()}: {res.message}"

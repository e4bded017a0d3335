"""Every claim in proofs/ is re-run here; its status is the test's verdict."""

from __future__ import annotations

import pytest
import sympy as sp

from proofs import (
    MODULES,
    Status,
    event_driven,
    performance,
    run_all,
    saga_correctness,
    state_count,
    state_machine,
    workflow_conditions,
)
from verifier import Verdict, check
from verifier.render import counterexample_text


def test_saga_correctness_refuted_then_proved() -> None:
    r = saga_correctness.run()
    assert r.status is Status.REFUTED_AND_CORRECTED, r.detail
    assert r.counterexample is not None
    assert r.counterexample.steps[-1].state["phase"] == "STUCK"
    assert "consecution" in str(r.witness)  # idempotency shown necessary


def test_state_machine_gap_is_stuck() -> None:
    r = state_machine.run()
    assert r.status is Status.REFUTED_AND_CORRECTED, r.detail
    assert "(no image)" in str(r.witness)
    assert "STUCK" in counterexample_text(r.counterexample)


def test_seed_machine_really_lacks_stuck() -> None:
    # The corrected delta minus the ESCALATE edges must fail again.
    gap = state_machine.refines(
        state_machine.family()[0],
        state_machine.CORRECTED_DELTA
        - {(state_machine.COMPENSATING, state_machine.STUCK)},
        corrected=True,
    )
    assert gap is not None and "STUCK" in gap


def test_event_driven() -> None:
    r = event_driven.run()
    assert r.status is Status.REFUTED_AND_CORRECTED, r.detail
    cex = r.counterexample
    assert cex["non_idempotent_handler"]["deliveries"] == 2
    assert event_driven.prove_dedup(dedup=False) != []  # not vacuous


def test_workflow_conditions() -> None:
    r = workflow_conditions.run()
    assert r.status is Status.REFUTED_AND_CORRECTED, r.detail
    conds = r.witness["conditions_of_counterexample"]
    assert all(conds[k] for k in conds if k[0] in "1234")
    assert not conds["5_compensation_without_reply"]


@pytest.mark.parametrize("saga", workflow_conditions.instances(), ids=lambda s: s.name)
def test_corrected_conditions_hold_unboundedly(saga) -> None:  # type: ignore[no-untyped-def]
    assert all(workflow_conditions.conditions(saga).values())
    res = check(saga, backend="smt", properties=["eventual_consistency", "termination"])
    assert res.verdict is Verdict.HOLDS, [r.reason for r in res.results]


def test_performance_closed_form() -> None:
    r = performance.run()
    assert r.status is Status.REFUTED_AND_CORRECTED, r.detail
    n, rr, m, c, tau = (
        performance.n,
        performance.r,
        performance.m,
        performance.c,
        performance.tau,
    )
    late = tau * sp.Piecewise((n, rr > 1), (1, True))
    assert (
        sp.simplify(
            r.witness["closed_form"]
            - (2 * n * rr + 2 * (n - 1 + tau) * m + 2 * c + late)
        )
        == 0
    )
    for retries in (1, 2, 5):  # linear in n, not quadratic, either way
        assert sp.degree(r.witness["closed_form"].subs(rr, retries), n) == 1


def test_state_count_forms_match_explicit() -> None:
    r = state_count.run()
    assert r.status is Status.PROVED, r.detail
    for knob, form in r.witness["forms"].items():
        counts = r.witness["counts"][knob]
        assert [form.subs(state_count.n, k + 1) for k in range(10)] == counts


def test_closed_form_rejects_non_polynomial() -> None:
    assert state_count.closed_form([2**k for k in range(1, 11)]) is None


@pytest.mark.parametrize("name", MODULES)
def test_each_proof_runs_on_its_own(name: str) -> None:
    """Each module's ``run()`` works alone (in any order). Its time, against the
    issue's 2 s budget, is a benchmark, not a test: ``python bench/proofs_bench.py``."""
    import importlib

    assert importlib.import_module(f"proofs.{name}").run().ok


def test_run_all_names() -> None:
    assert [r.name for r in run_all()] == list(MODULES)


def test_isolation_refuted_then_proved_for_every_k() -> None:
    from proofs import isolation

    r = isolation.run()
    assert r.status is Status.REFUTED_AND_CORRECTED, r.detail
    # The refutation is a real two-instance run ending with the wrong stock.
    assert isinstance(r.counterexample, list)
    assert r.counterexample[0].startswith("every instance ended but stock=2")
    assert any(line.startswith("[2]") for line in r.counterexample)
    # Without the countermeasure the invariant is not inductive.
    assert "consecution: counterexample" in str(r.witness)


def test_version_file_refuted_then_proved_for_every_k() -> None:
    from proofs import version_file

    r = version_file.run()
    assert r.status is Status.REFUTED_AND_CORRECTED, r.detail
    # The refutation is a real two-instance run of the composition.
    assert isinstance(r.counterexample, list)
    assert "does not remove the lost update" in r.counterexample[0]
    assert any(line.startswith("[2]") for line in r.counterexample)
    # Read apart from the value, the version check is not inductive.
    assert "consecution: counterexample" in str(r.witness)

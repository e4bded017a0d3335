"""Explicit-vs-SMT agreement on sagas big enough for the z3 backend's large-
definition path: step lemmas first closed on a miniature and grown on the full
saga by case-split queries (one per step's events), safety proved and the
ranking function checked the same way (``verifier/smt/_cases.py``).

The small-saga parity suite never reaches that path (it starts above eight
steps), so these sagas have nine to twelve: chains, where explicit search stays
cheap enough to be the reference, with every knob the semantics reads and the
seeded bugs those knobs make possible.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from test_smt_parity import _describe, faults_strategy

from saga_models import (
    CompensationPolicy,
    FaultModel,
    RetryPolicy,
    Saga,
    SagaBuilder,
    Step,
    StepKind,
)
from tests.cases import drawn
from verifier import Verdict, check


@st.composite
def long_chains(draw: st.DrawFn, min_steps: int = 9, max_steps: int = 11) -> Saga:
    """Chains past the miniature threshold; most steps alike (so the miniature
    is smaller), a few odd ones drawn anywhere (where bugs hide)."""
    n = draw(st.integers(min_steps, max_steps))
    odd = draw(st.sets(st.integers(0, n - 1), max_size=2))
    steps = []
    for i in range(n):
        kind, comp, retry, timeout, idem, needs = (
            StepKind.COMPENSATABLE, True, 2, 1.0, True, False
        )
        if i in odd:
            kind = draw(st.sampled_from(list(StepKind)))
            comp = kind is StepKind.COMPENSATABLE and draw(st.booleans())
            retry = draw(st.sampled_from([1, 2, None]))
            timeout = draw(st.sampled_from([None, 1.0]))
            idem = draw(st.booleans())
            needs = comp and draw(st.booleans())
        steps.append(
            Step(
                name=f"s{i}",
                participant=f"p{i}",
                action=f"a{i}",
                compensation=f"undo{i}" if comp else None,
                kind=kind,
                depends_on=(f"s{i - 1}",) if i else (),
                retry=RetryPolicy(max_attempts=retry),
                timeout=timeout,
                idempotent=idem,
                compensation_needs_result=needs,
            )
        )
    policy = CompensationPolicy(max_attempts=draw(st.sampled_from([None, 2])))
    return Saga(name="long", steps=tuple(steps), compensation_policy=policy)


def _chain(n: int, **odd: object) -> Saga:
    b = SagaBuilder(f"chain{n}")
    for i in range(n):
        # the countermeasures: without them a late delivery breaks any chain
        # with timeouts (tests/test_late_delivery.py)
        kw: dict[str, object] = {"timeout": 1.0, "retry": {"max_attempts": 2},
                                 "empty_rollback": True, "anti_suspension": True}
        if i == 1:
            kw.update(odd)
        b.step(f"s{i}", participant=f"p{i}", action="do", compensation="undo", **kw)  # type: ignore[arg-type]
    return b.build()


def test_large_path_proves_a_correct_chain() -> None:
    r = check(_chain(12), backend="smt")
    for res in r.results:
        assert res.verdict is Verdict.HOLDS, (res.property, res.reason)
    assert "every length" in r["compensation_completeness"].reason


@pytest.mark.slow
def test_large_path_refutes_a_seeded_double_effect() -> None:
    """One non-idempotent step in twelve: the case-split induction must not
    prove eventual consistency, and BMC finds a counterexample as short as the
    explicit checker's."""
    saga = _chain(12, idempotent=False)
    prop = "eventual_consistency"
    explicit = check(saga, backend="explicit", properties=[prop])[prop]
    smt = check(saga, backend="smt", properties=[prop])[prop]
    assert explicit.verdict is Verdict.VIOLATED, explicit.reason
    assert smt.verdict is Verdict.VIOLATED, smt.reason
    assert explicit.counterexample is not None and smt.counterexample is not None
    assert len(smt.counterexample) == len(explicit.counterexample)


@pytest.mark.slow
def test_large_path_finds_a_seeded_livelock() -> None:
    """A compensation that needs a reply that may never come retries forever.
    The ranking check must fail, and on twelve steps the fair-lasso search
    finds the livelock: a lasso as short as the explicit checker's (it gave
    up here, unknown, until the saga queries ran on z3's bit-vector SAT
    solver)."""
    saga = _chain(12, compensation_needs_result=True)
    explicit = check(saga, backend="explicit", properties=["termination"])
    assert explicit.verdict is Verdict.VIOLATED
    smt = check(saga, backend="smt", properties=["termination"]).results[0]
    assert smt.verdict is Verdict.VIOLATED, smt.reason
    assert "livelock" in smt.reason, smt.reason
    e, s = explicit.results[0].counterexample, smt.counterexample
    assert e is not None and s is not None
    assert s.loop_start is not None
    assert len(s) == len(e)


def assert_never_contradicts(saga: Saga, faults: FaultModel) -> None:
    """On long chains: every property that holds is proved unboundedly; every
    violation is found with a counterexample as short as BFS's, or, when that
    counterexample is deeper than BMC gets within its resource limit, the
    verdict is unknown and says so. Never the opposite verdict."""
    explicit = check(saga, faults=faults, backend="explicit")
    smt = check(saga, faults=faults, backend="smt")
    for e in explicit.results:
        s = smt[e.property]
        where = (f"{e.property}\n{_describe(saga, faults)}\nexplicit: "
                 f"{e.verdict.value}: {e.reason}\nsmt: {s.verdict.value}: {s.reason}")
        assert e.verdict is not Verdict.UNKNOWN, where
        if e.verdict is Verdict.HOLDS:
            assert s.verdict is Verdict.HOLDS, where
        elif s.verdict is Verdict.VIOLATED:
            if e.counterexample is not None and s.counterexample is not None:
                assert len(s.counterexample) == len(e.counterexample), where
        else:
            assert s.verdict is Verdict.UNKNOWN, where
            assert "gave up" in s.reason or "no fair lasso" in s.reason, where


LONG_EXAMPLES = 8
"""Generated long chains the slow tier compares, one test each: a chain costs
z3 minutes, so one test of all eight held one xdist worker for most of the
tier while the other idled."""
_LONG_CASES = st.tuples(long_chains(), faults_strategy)


@pytest.mark.slow
@pytest.mark.parametrize("k", range(LONG_EXAMPLES))
def test_backends_never_contradict_on_long_chains(k: int) -> None:
    saga, faults = drawn(_LONG_CASES, LONG_EXAMPLES, seed_value=0)[k]
    assert_never_contradicts(saga, faults)


def test_the_long_chains_are_varied() -> None:
    cases = drawn(_LONG_CASES, LONG_EXAMPLES, seed_value=0)
    assert len({repr(c) for c in cases}) == LONG_EXAMPLES
    assert any(len(saga.steps) >= 9 for saga, _ in cases)

"""Explicit-vs-SMT agreement on definitions with total timeouts and timed-out
compensations (the new EXPIRED and compensation-UNKNOWN transitions).

The shared generator in :mod:`saga_models.strategies` draws ``total_timeout``;
these tests run both backends on what it generates, and check the z3 transition
relation against every step of random walks through the shared semantics.
"""

from __future__ import annotations

import random

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_models import FaultModel, Saga, SagaBuilder
from saga_models import semantics as sem
from saga_models.semantics import EventKind, Outcome
from saga_models.strategies import fault_models, sagas
from tests.cases import drawn, shard
from verifier import SagaTransitionSystem, Verdict, check, smt
from verifier.smt import smt_check


def assert_agree(saga: Saga, faults: FaultModel) -> None:
    """Same verdict per property; same counterexample length per violation."""
    explicit = check(saga, faults=faults, backend="explicit")
    ts = SagaTransitionSystem(saga, faults)
    by = {r.property: r for r in smt_check(saga, ts, properties=None, faults=faults)}
    for e in explicit.results:
        s = by[e.property]
        where = (f"{e.property} faults={faults.describe()}\n{saga!r}\n"
                 f"explicit: {e.verdict.value}: {e.reason}\n"
                 f"smt: {s.verdict.value}: {s.reason}")
        assert e.verdict is not Verdict.UNKNOWN, where
        assert s.verdict is e.verdict, where
        if e.counterexample is not None and s.counterexample is not None:
            assert len(s.counterexample) == len(e.counterexample), where


_COMMON = {"deadline": None, "derandomize": True, "database": None,
           "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=12, **_COMMON)  # type: ignore[arg-type]
@given(saga=sagas(max_steps=2, total_timeouts=True).filter(
    lambda s: any(x.total_timeout is not None for x in s.steps)),
    faults=fault_models(max_crashes=1, max_duplicates=0))
def test_backends_agree_on_total_timeouts_fast(saga: Saga,
                                                faults: FaultModel) -> None:
    assert_agree(saga, faults)


SLOW_EXAMPLES = 200
SHARDS = 4
"""The slow comparison as SHARDS tests over one fixed draw of SLOW_EXAMPLES
(:func:`tests.cases.drawn`), so that xdist workers share it."""
_SLOW_CASES = st.tuples(sagas(max_steps=3, total_timeouts=True), fault_models())


@pytest.mark.slow
@pytest.mark.parametrize("k", range(SHARDS))
def test_backends_agree_on_generated_sagas(k: int) -> None:
    for saga, faults in shard(drawn(_SLOW_CASES, SLOW_EXAMPLES, seed_value=0),
                              k, SHARDS):
        assert_agree(saga, faults)


def test_the_generator_draws_total_timeouts() -> None:
    with_total: list[Saga] = []

    @settings(max_examples=50, **_COMMON)  # type: ignore[arg-type]
    @given(saga=sagas(max_steps=3, total_timeouts=True))
    def collect(saga: Saga) -> None:
        if any(s.total_timeout is not None for s in saga.steps):
            with_total.append(saga)

    collect()
    assert with_total


def test_random_walks_with_expiry_and_compensation_timeouts_replay_in_z3() -> None:
    """Every step of random walks (which take EXPIRED replies and timed-out
    compensations) satisfies the z3 transition relation; a timed-out
    compensation is taken by the failed alternative, which must then reach
    exactly the state the semantics does."""
    saga = (SagaBuilder("w")
            .step("a", participant="p", action="x", compensation="u", timeout=1.0,
                  total_timeout=2.5, idempotent=False, retry={"max_attempts": 3})
            .step("b", participant="p", action="y", kind="pivot",
                  total_timeout=2.0, depends_on=[])
            .step("c", participant="p", action="z", kind="retriable", timeout=1.0,
                  total_timeout=3.0, depends_on=["b"])
            .compensation_policy(max_attempts=2)
            .build())
    faults = FaultModel()
    enc = smt.encode(saga, faults)
    s, s2, c = enc.frame("a"), enc.frame("b"), enc.choice("c")
    rel = enc.transition(s, c, s2)
    rng = random.Random(7)
    seen: set[tuple[EventKind, Outcome | None]] = set()
    for _ in range(60):
        st = sem.initial_state(saga)
        while evs := sem.enabled(saga, st, faults):
            e = rng.choice(evs)
            seen.add((e.kind, e.outcome))
            nxt = sem.apply(saga, st, e)
            subst = [(v, z3.BitVecVal(int(x), v.size()))
                     for v, x in zip(s, st, strict=True)]
            subst += [(v, z3.BitVecVal(int(x), v.size()))
                      for v, x in zip(s2, nxt, strict=True)]
            a = enc.index_of(e)
            subst.append((c, z3.BitVecVal(a, c.size())))
            assert z3.is_true(z3.simplify(z3.substitute(rel, *subst))), (st, e)
            st = nxt
    assert (EventKind.REPLY, Outcome.EXPIRED) in seen
    assert (EventKind.COMP_REPLY, Outcome.UNKNOWN) in seen

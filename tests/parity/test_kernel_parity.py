"""The semantics kernel: interpreted, compiled and the hand-written oracle agree.

``saga_models._kernel`` is the core of the semantics: the runtime runs it
interpreted (through ``semantics.enabled``/``apply``) and the explicit checker's
fast path runs it compiled with numba over packed states. For generated
definitions (every step kind, DAGs, retry bounds, timeouts and total timeouts,
idempotent or not, compensations that need the reply, escalating policies,
declared error classes, circuit breakers on shared participants, read-only
steps, hand-wired compensation chains) under every combination of the fault
knobs, these tests check state by state, on every reachable state (a
breadth-first prefix of them for big models), that

* the interpreted kernel gives exactly the successors (events, order, next
  states) of the pre-kernel hand-written semantics (``reference_semantics``);
* the compiled kernel gives exactly those of the interpreted one;

and, per whole run, that the compiled search and the interpreted one give the
same verdicts, reasons, counts and counterexamples (budget stops included). A
seeded bug (one entry of the compiled kernel's table changed) must be caught.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import reference_semantics as ref
from _kernels import compiled_or_skip, compiled_successors, engines_agree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_models import CircuitBreaker, FaultModel, Saga
from saga_models import _kernel as K
from saga_models import semantics as sem
from saga_models._ir import CompensationChain
from saga_models.strategies import fault_models, sagas
from verifier import SagaTransitionSystem
from verifier._explicit import explore

np = pytest.importorskip("numpy")
kb = pytest.importorskip("verifier._kernel_bfs")


def _compiled() -> dict[str, Any]:
    return compiled_or_skip(kb)


@st.composite
def _sagas(draw: st.DrawFn, max_steps: int) -> Saga:
    """The shared generator, plus what it never draws: declared error classes
    (fatal outcomes), breakers on shared participants, read-only steps and
    hand-wired compensation chains (as the ASL and Seata importers make)."""
    saga = draw(sagas(max_steps=max_steps, total_timeouts=True))
    n = len(saga.steps)
    typed, breaker, read = (
        draw(st.lists(st.booleans(), min_size=n, max_size=n)) for _ in range(3))
    shared = [f"p{draw(st.integers(0, i))}" for i in range(n)]
    steps = tuple(
        dataclasses.replace(
            s,
            retry=(dataclasses.replace(s.retry, retryable_errors=("Transient",))
                   if t else s.retry),
            participant=p,
            breaker=CircuitBreaker() if b else None,
            read_only=r and s.compensation is None)
        for s, t, b, r, p in zip(saga.steps, typed, breaker, read, shared,
                                 strict=True))
    chains: tuple[CompensationChain, ...] = ()
    if draw(st.integers(0, 3)) == 0:
        names = [s.name for s in steps]
        triggers = draw(st.lists(st.sampled_from(["*", *names]), min_size=1,
                                 max_size=2, unique=True))
        chains = tuple(
            CompensationChain(
                trigger=trig,
                steps=tuple(draw(st.lists(st.sampled_from(names), max_size=n + 1))),
                unconditional=draw(st.booleans()))
            for trig in triggers)
    return dataclasses.replace(saga, steps=steps, compensation_chains=chains)


def _faults() -> st.SearchStrategy[FaultModel]:
    return fault_models(max_crashes=2, max_duplicates=2)


def first_disagreement(saga: Saga, faults: FaultModel, *, limit: int,
                       tab: Any = None) -> str | None:
    """Walk up to ``limit`` reachable states breadth-first; at each, compare
    the three implementations' successors. The first difference, or None.
    ``tab`` replaces the compiled kernel's table (the seeded-bug test)."""
    g = _compiled()
    ctab = np.array(sem.lower(saga), np.int64) if tab is None else tab
    fm = np.array(sem.fault_vector(faults), np.int64)
    buf = np.zeros(K.max_events(len(saga.steps)), np.int64)
    init = sem.initial_state(saga)
    seen = {init}
    queue = [init]
    for walked, state in enumerate(queue):
        if walked >= limit:
            break
        events = sem.enabled(saga, state, faults)
        succ = [(e, sem.apply(saga, state, e)) for e in events]
        oracle = [(e, ref.apply(saga, state, e))
                  for e in ref.enabled(saga, state, faults)]
        if succ != oracle:
            return f"interpreted kernel vs oracle at {state}: {succ} != {oracle}"
        arr = np.array(state, np.int64)
        count = g["enabled_codes"](arr, ctab, fm, buf)
        compiled = compiled_successors(g, arr, ctab, buf[:count].tolist(),
                                       decode=sem.decode_event, what="event")
        if isinstance(compiled, str):
            return compiled
        if compiled != succ:
            return f"compiled vs interpreted at {state}: {compiled} != {succ}"
        for _, nxt in succ:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return None


def _whole_run(saga: Saga, faults: FaultModel, max_states: int) -> None:
    ts = SagaTransitionSystem(saga, faults)
    engines_agree(ts, max_states=max_states)


_SETTINGS: dict[str, Any] = {
    "deadline": None, "derandomize": True, "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}


@given(saga=_sagas(max_steps=3), faults=_faults())
@settings(max_examples=100, **_SETTINGS)
def test_kernel_parity_100_generated(saga: Saga, faults: FaultModel) -> None:
    """100 generated definitions: successors state by state (up to 300
    states each), then the whole run (up to 3,000 states) both ways."""
    assert first_disagreement(saga, faults, limit=300) is None, saga.to_dict()
    _whole_run(saga, faults, 3_000)


@pytest.mark.slow
@given(saga=_sagas(max_steps=4), faults=_faults())
@settings(max_examples=1_000, **_SETTINGS)
def test_kernel_parity_1000_generated(saga: Saga, faults: FaultModel) -> None:
    """1,000 generated definitions of up to four steps: successors on up to
    2,000 reachable states each, the whole run up to 20,000 states."""
    assert first_disagreement(saga, faults, limit=2_000) is None, saga.to_dict()
    _whole_run(saga, faults, 20_000)


def _two_step() -> Saga:
    from saga_models import SagaBuilder

    return (SagaBuilder("seeded")
            .step("reserve", participant="stock", action="reserve",
                  compensation="release", timeout=1.0, idempotent=False,
                  retry={"max_attempts": 2})
            .step("charge", participant="bank", action="charge",
                  compensation="refund", retry={"max_attempts": 2})
            .build())


@pytest.mark.parametrize(("column", "delta"), [
    (K.K_IDEM, 1), (K.K_MAX, 1), (K.K_TIMEOUT, -1), (K.K_COMP, -1),
])
def test_seeded_table_bug_is_caught(column: int, delta: int) -> None:
    """One entry of the compiled kernel's table changed (an idempotency flag,
    an attempt cap, a timeout, a compensation): the parity walk must report
    it, and it reports nothing with the true table."""
    saga = _two_step()
    assert first_disagreement(saga, FaultModel(), limit=5_000) is None
    tab = np.array(sem.lower(saga), np.int64)
    tab[tab[K.T_STEPS] + column] += delta
    assert first_disagreement(saga, FaultModel(), limit=5_000, tab=tab)


def test_compiled_search_equals_interpreted_on_a_violation() -> None:
    """A definition with a real bug: both searches give the same shortest
    counterexample, rendered identically, and the same budget stop."""
    saga = dataclasses.replace(
        _two_step(), compensation_policy=dataclasses.replace(
            _two_step().compensation_policy, max_attempts=1))
    ts = SagaTransitionSystem(saga, FaultModel())
    fast = explore(ts, engine="kernel")
    assert any(r.counterexample is not None for r in fast)
    _whole_run(saga, FaultModel(), 5_000_000)
    _whole_run(saga, FaultModel(), 40)


def test_auto_engine_switches_to_the_kernel_past_its_threshold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``engine="auto"``: a model smaller than ``KERNEL_AFTER`` states is
    searched interpreted; a bigger one starts over compiled, with the same
    results as the interpreted search."""
    import verifier._explicit as ex

    ts = SagaTransitionSystem(_two_step(), FaultModel())
    small = explore(ts)
    assert {r.stats.engine for r in small} == {"python"}
    monkeypatch.setattr(ex, "KERNEL_AFTER", 50)
    big = explore(ts)
    assert {r.stats.engine for r in big} == {"kernel"}
    assert [(r.verdict, r.reason, r.counterexample, r.stats.states)
            for r in big] == [(r.verdict, r.reason, r.counterexample,
                               r.stats.states) for r in small]

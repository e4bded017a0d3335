"""The compiled fair-cycle search agrees with the reference one.

``verifier._kernel_liveness`` runs, compiled over the kernel search's edge
arrays, the algorithm of ``verifier._explicit._fair_cycle`` (Tarjan, then
strong fairness per family by Emerson-Lei, then a lasso). These tests check
that both give the same answer (no fair cycle, or the same lasso) on

* arbitrary graphs with arbitrary fairness families (numbered in BFS order,
  as the searches number states): deep Emerson-Lei nesting, self-loops,
  many components;
* the graphs of generated sagas under generated fault models, and of
  definitions that hold and that livelock (both ways), through ``explore``
  with each engine;

and that a seeded bug (a fairness family dropped from the compiled table)
makes the compiled search report a livelock the reference does not.
"""

from __future__ import annotations

from array import array
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernel_parity import _SETTINGS, _faults, _sagas

from saga_models import FaultModel, Saga, load
from saga_models import _kernel as K
from saga_models import semantics as sem
from verifier import SagaTransitionSystem
from verifier._explicit import _fair_cycle, explore

np = pytest.importorskip("numpy")
kl = pytest.importorskip("verifier._kernel_liveness")
kb = pytest.importorskip("verifier._kernel_bfs")


def _compiled() -> None:
    if kl.compiled() is None:
        pytest.skip("numba is not installed")


@st.composite
def _graphs(draw: st.DrawFn) -> tuple[list[list[int]], list[list[int]]]:
    """Adjacency lists (targets, families) of a graph whose states are
    numbered in BFS order from state 0, all reachable."""
    n = draw(st.integers(1, 14))
    nfam = draw(st.integers(1, 5))
    raw = [draw(st.lists(st.tuples(st.integers(0, n - 1),
                                   st.integers(-1, nfam - 1)), max_size=4))
           for _ in range(n)]
    # Renumber in BFS order from 0 and drop what is unreachable.
    order = {0: 0}
    queue = deque([0])
    while queue:
        v = queue.popleft()
        for w, _ in raw[v]:
            if w not in order:
                order[w] = len(order)
                queue.append(w)
    inv = sorted(order, key=order.__getitem__)
    adj = [[order[w] for w, _ in raw[v]] for v in inv]
    fams = [[f for _, f in raw[v]] for v in inv]
    return adj, fams


def _both(adj: list[list[int]], fams: list[list[int]]) -> tuple[Any, Any]:
    start = array("q", [0])
    dst = array("q")
    fam = array("q")
    for targets, fs in zip(adj, fams, strict=True):
        dst.extend(targets)
        fam.extend(fs)
        start.append(len(dst))
    n = len(adj)
    parent = [-1] * n
    seen = {0}
    for v in range(n):  # BFS order is index order: first discoverer wins
        for w in adj[v]:
            if w not in seen:
                seen.add(w)
                parent[w] = v
    ref = _fair_cycle(n, start, dst, fam)
    fast = kl.fair_cycle_arrays(
        np.array(start, np.int64), np.array(dst, np.int32),
        np.array(fam, np.int32), np.array(parent, np.int32),
        max([f + 1 for f in fam], default=1))
    return ref, fast


@given(graph=_graphs())
@settings(max_examples=300, **_SETTINGS)
def test_fair_cycle_parity_on_arbitrary_graphs(
        graph: tuple[list[list[int]], list[list[int]]]) -> None:
    """300 arbitrary graphs: the same lasso, or None both ways."""
    _compiled()
    ref, fast = _both(*graph)
    assert fast == ref, graph


def test_arbitrary_graphs_cover_both_answers() -> None:
    """The fixed graphs below: one with a fair cycle only after two rounds of
    Emerson-Lei, one whose only cycle is unfair; both ways."""
    _compiled()
    # 0 <-> 1 takes family 0; 1 enables family 1 (to 2) that the cycle never
    # takes: unfair. 2 <-> 3 takes family 2 and enables nothing else: fair.
    adj = [[1], [0, 2], [3], [2]]
    fams = [[0], [0, 1], [2], [2]]
    ref, fast = _both(adj, fams)
    assert ref is not None
    assert fast == ref
    ref, fast = _both([[1], [0, 2], []], [[0], [0, 1], []])
    assert ref is None
    assert fast is None


def _whole(saga: Saga, faults: FaultModel, max_states: int) -> str:
    ts = SagaTransitionSystem(saga, faults)
    slow = explore(ts, engine="python", properties=["termination"],
                   max_states=max_states)
    fast = explore(ts, engine="kernel", properties=["termination"],
                   max_states=max_states)
    (a,), (b,) = slow, fast
    assert (a.verdict, a.reason, a.counterexample) == (
        b.verdict, b.reason, b.counterexample), saga.to_dict()
    return a.verdict.value


@given(saga=_sagas(max_steps=3), faults=_faults())
@settings(max_examples=100, **_SETTINGS)
def test_termination_parity_100_generated(saga: Saga, faults: FaultModel) -> None:
    """100 generated definitions: termination by the interpreted search and
    the reference fair-cycle search, and by the compiled search and the
    compiled fair-cycle search: same verdict and counterexample."""
    _compiled()
    _whole(saga, faults, 5_000)


@pytest.mark.slow
@given(saga=_sagas(max_steps=4), faults=_faults())
@settings(max_examples=1_000, **_SETTINGS)
def test_termination_parity_1000_generated(saga: Saga, faults: FaultModel) -> None:
    """1,000 generated definitions of up to four steps (up to 20,000 states)."""
    _compiled()
    _whole(saga, faults, 20_000)


def test_livelock_and_termination_both_ways() -> None:
    """A definition that livelocks (a cancel that needs the reply it never
    got, retried forever) is refuted, a sound one holds: both engines, same
    counterexample."""
    _compiled()
    bad = load("examples/hotel_cancel_needs_id.yaml")
    good = load("examples/trip_booking.saga.yaml")
    assert _whole(bad, FaultModel(), 100_000) == "violated"  # type: ignore[arg-type]
    assert _whole(good, FaultModel(), 100_000) == "holds"  # type: ignore[arg-type]


def test_seeded_family_bug_is_caught() -> None:
    """The compiled search with one fairness family dropped from its table
    (a compensation's success no longer forced by fairness) reports a
    livelock on a definition the reference proves terminating."""
    _compiled()
    good = load("examples/trip_booking.saga.yaml")
    ts = SagaTransitionSystem(good, FaultModel())  # type: ignore[arg-type]
    searched = kb.search(ts.saga, ts.faults, graph=True, watch_kinds=0,
                         max_states=1_000_000)
    assert searched is not None
    assert kl.fair_cycle(ts, searched) is None
    lut = kl.family_table(ts, len(ts.saga.steps))
    for step in range(len(ts.saga.steps)):
        lut[K.encode(K.E_COMP_REPLY, step, K.O_OK, 0)] = -1
    assert kl.fair_cycle(ts, searched, lut=lut) is not None


def test_family_table_is_the_transition_systems() -> None:
    """Every event the semantics offers has, in the compiled table, the
    family ``SagaTransitionSystem.fairness_family`` gives it."""
    _compiled()
    saga = load("examples/trip_booking.saga.yaml")
    ts = SagaTransitionSystem(saga, FaultModel())  # type: ignore[arg-type]
    lut = kl.family_table(ts, len(ts.saga.steps))
    searched = kb.search(ts.saga, ts.faults, graph=True, watch_kinds=0,
                         max_states=1_000_000)
    assert searched is not None
    for code in set(searched.edge_code.tolist()):
        assert lut[code] == ts.fairness_family(sem.decode_event(code))


@pytest.mark.parametrize(("path", "verdict"), [
    ("examples/hotel_cancel_needs_id.yaml", "violated"),
    ("examples/trip_booking.saga.yaml", "holds"),
])
def test_termination_on_two_threads(monkeypatch: pytest.MonkeyPatch, path: str,
                                    verdict: str) -> None:
    """Termination on the parallel search's edges (``workers=2``): the
    compiled fair-cycle search runs on them (with the parents found again on
    demand for the lasso's prefix) and gives the one-thread search's and the
    interpreted search's verdict and counterexample."""
    _compiled()
    pytest.importorskip("verifier._kernel_parallel")
    ts = SagaTransitionSystem(load(path), FaultModel())  # type: ignore[arg-type]
    calls: list[int] = []
    real = kl.fair_cycle

    def spy(ts_: Any, searched: Any, **kw: Any) -> Any:
        calls.append(searched.count)
        return real(ts_, searched, **kw)

    monkeypatch.setattr(kl, "fair_cycle", spy)
    runs = [explore(ts, engine=engine, properties=["termination"],
                    max_states=100_000, workers=workers)
            for engine, workers in (("python", 1), ("kernel", 1), ("kernel", 2))]
    assert len(calls) == 2  # both compiled runs, not the reference
    (a,), (b,), (c,) = runs
    assert a.verdict.value == verdict
    for r in (b, c):
        assert (r.verdict, r.reason, r.counterexample) == (
            a.verdict, a.reason, a.counterexample)

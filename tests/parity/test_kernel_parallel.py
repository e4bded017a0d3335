"""The compiled search on two threads (``verifier._kernel_parallel``) gives
exactly what it gives on one: verdicts, reasons, counts, depths and
counterexamples, budget stops included, for generated sagas and for seeded
bugs; chunk boundaries and array growth in the middle of a chunk too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from saga_models import FaultModel, Saga, load
from saga_models.strategies import fault_models, sagas
from verifier import PropertyResult, SagaTransitionSystem, Verdict, check
from verifier._explicit import explore

kp = pytest.importorskip("verifier._kernel_parallel")
pytest.importorskip("numba")

ROOT = Path(__file__).parents[2]
BUGS = sorted((ROOT / "tests" / "quality" / "sagas" / "bugs").glob("*.yaml"))
_SETTINGS: dict[str, Any] = {
    "deadline": None, "derandomize": True, "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}


def _same(one: tuple[PropertyResult, ...],
          two: tuple[PropertyResult, ...]) -> None:
    for a, b in zip(one, two, strict=True):
        assert (a.property, a.verdict, a.reason) == (b.property, b.verdict,
                                                     b.reason)
        assert a.counterexample == b.counterexample, a.property
        assert (a.stats.states, a.stats.transitions, a.stats.depth,
                a.stats.engine) == (b.stats.states, b.stats.transitions,
                                    b.stats.depth, b.stats.engine)


def _both(saga: Saga, faults: FaultModel, max_states: int) -> tuple[
        tuple[PropertyResult, ...], tuple[PropertyResult, ...]]:
    ts = SagaTransitionSystem(saga, faults)
    return (explore(ts, engine="kernel", max_states=max_states),
            explore(ts, engine="kernel", max_states=max_states, workers=2))


def test_two_threads_are_available() -> None:
    """Otherwise the parity below compares one thread with one thread."""
    assert kp.available_threads() >= 2


@given(saga=sagas(max_steps=3, total_timeouts=True),
       faults=fault_models(max_crashes=2, max_duplicates=2))
@settings(max_examples=40, **_SETTINGS)
def test_two_threads_equal_one_on_generated_sagas(saga: Saga,
                                                  faults: FaultModel) -> None:
    """40 generated definitions, every property (termination keeps the
    edges), up to 3,000 states (a budget stop equal too)."""
    _same(*_both(saga, faults, 3_000))


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_small_chunks_and_growth(monkeypatch: pytest.MonkeyPatch,
                                 chunk: int) -> None:
    """Chunks of 1, 3 and 64 sources: layer boundaries fall inside chunks
    and the arrays grow in the middle of them; still the same results, and
    the bug is found."""
    monkeypatch.setattr(kp, "CHUNK", chunk)
    saga = load(BUGS[0].parent / "missing_compensation.yaml")
    one, two = _both(saga, FaultModel(), 1_000_000)
    _same(one, two)
    assert any(r.verdict is Verdict.VIOLATED for r in two)
    path = ROOT / "tests" / "quality" / "sagas" / "correct" / "wide_parallel.yaml"
    one, two = _both(load(path), FaultModel(), 1_000_000)
    _same(one, two)
    assert {r.verdict for r in two} == {Verdict.HOLDS}


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_seeded_bugs_same_traces(path: Path) -> None:
    """Every seeded bug: the same verdicts and the same counterexamples."""
    from tests.expectations import expectation

    faults = FaultModel.parse(expectation(path).faults)
    _same(*_both(load(path), faults, 5_000_000))


def test_check_api_and_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """``check(..., workers=2)`` through the automatic engine (switching to
    the compiled search early, as it does past 20,000 states), and a
    non-positive count refused."""
    import verifier._explicit as ex

    monkeypatch.setattr(ex, "KERNEL_AFTER", 50)
    path = ROOT / "tests" / "quality" / "sagas" / "correct" / "wide_parallel.yaml"
    one = check(load(path))
    two = check(load(path), workers=2)
    assert {r.stats.engine for r in two.results} == {"kernel"}
    _same(one.results, two.results)
    with pytest.raises(ValueError, match="workers"):
        check(load(path), workers=0)


@pytest.mark.slow
def test_par3x3_two_threads_store_the_same_arrays() -> None:
    """1,393,658 states (bench/explicit_bench.py's par3x3, every fault), the
    compiled search alone: on two threads it stores the very same arrays
    (states, distinct words, layers, watched transitions, edges) as on one."""
    from saga_models import SagaBuilder
    from verifier import _kernel_bfs as kb

    # bench/explicit_bench.py's parallel(3, 3)
    b = SagaBuilder("par3x3")
    for br in range(3):
        for i in range(3):
            b.step(f"b{br}s{i}", participant=f"p{br}", action="do",
                   compensation="undo",
                   depends_on=[] if i == 0 else [f"b{br}s{i - 1}"],
                   retry={"max_attempts": 2}, timeout=5.0 if i == 0 else None,
                   empty_rollback=i == 0, anti_suspension=i == 0)
    saga = b.build()
    runs = [kb.search(saga, FaultModel(), graph=True, watch_kinds=1 << 5,
                      max_states=1 << 31, runner=run)
            for run in (None, kp.runner(2, len(saga.steps)))]
    one, two = runs
    assert one is not None
    assert two is not None
    assert one.count == two.count == 1_393_658
    assert (one.transitions, one.depth, one.deadlocks) == (
        two.transitions, two.depth, two.deadlocks)
    assert one.parent.layers == two.parent.layers
    for a, b_ in ((one.states, two.states), (one.cvals, two.cvals),
                  (one.edge_start, two.edge_start), (one.edge_dst, two.edge_dst),
                  (one.edge_code, two.edge_code), *zip(one.watched, two.watched,
                                                        strict=True)):
        assert (a == b_).all()

"""Properties of the checker over generated definitions.

Where a verdict must hold by construction it is asserted on every generated
saga; where it need not, the checker is compared with an independent search
(iterative deepening over the semantics, a different algorithm from the BFS)
for the length of the shortest violation.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from saga_models import FaultModel, Saga
from saga_models import semantics as sem
from tests.strategies import fault_models, sagas, well_formed_sagas
from verifier import SagaTransitionSystem, Verdict, check


@given(well_formed_sagas(max_steps=4))
def test_all_compensations_and_unbounded_retry_is_compensation_complete(
    saga: Saga,
) -> None:
    result = check(saga)
    assert result["compensation_completeness"].verdict is Verdict.HOLDS
    assert result["eventual_consistency"].verdict is Verdict.HOLDS
    assert result["termination"].verdict is Verdict.HOLDS


@given(sagas(max_steps=3), fault_models())
def test_verdicts_are_never_unknown_within_budget(
    saga: Saga, faults: FaultModel
) -> None:
    result = check(saga, faults=faults)
    assert all(r.verdict is not Verdict.UNKNOWN for r in result.results)


@given(sagas(max_steps=3))
def test_narrowing_the_fault_model_never_adds_violations(saga: Saga) -> None:
    full = check(saga)
    narrow = check(saga, faults="none")
    for prop in ("compensation_completeness", "eventual_consistency"):
        if full[prop].verdict is Verdict.HOLDS:
            assert narrow[prop].verdict is Verdict.HOLDS


@given(sagas(max_steps=3), fault_models())
@settings(max_examples=40)
def test_counterexamples_are_shortest(saga: Saga, faults: FaultModel) -> None:
    result = check(saga, faults=faults)
    ts = SagaTransitionSystem(saga, faults)
    for prop in ("eventual_consistency", "compensation_completeness"):
        r = result[prop]
        p = next(p for p in ts.properties if p.name == prop)
        shortest = _iddfs_depth(ts, p, limit=40)
        if r.verdict is Verdict.VIOLATED and r.counterexample is not None:
            assert shortest == len(r.counterexample)
        elif r.verdict is Verdict.HOLDS:
            assert shortest is None


def _iddfs_depth(ts: SagaTransitionSystem, p, limit: int) -> int | None:  # type: ignore[no-untyped-def]
    """Depth of the shallowest violation of ``p``, by iterative deepening."""
    def bad_state(s: tuple[int, ...]) -> bool:
        if p.on_state is not None and p.on_state(s):
            return True
        return bool(p.on_terminal is not None and sem.is_terminal(s)
                    and p.on_terminal(s))

    init = ts.initial()[0]
    if bad_state(init):
        return 0
    best: dict[tuple[int, ...], int] = {}
    for depth in range(1, limit + 1):
        best.clear()
        stack = [(init, 0)]
        while stack:
            s, d = stack.pop()
            if d == depth:
                continue
            for label, nxt in ts.successors(s):
                if p.on_transition is not None and p.on_transition(s, label, nxt):
                    return d + 1
                if bad_state(nxt):
                    return d + 1
                if best.get(nxt, 1 << 30) > d + 1:
                    best[nxt] = d + 1
                    stack.append((nxt, d + 1))
        if not best:
            return None
        if max(best.values()) < depth:
            return None  # the whole reachable space is shallower than depth
    return None


@given(st.data())
def test_fault_model_round_trips_through_its_description(data: st.DataObject) -> None:
    faults = data.draw(fault_models(max_crashes=3, max_duplicates=3))
    assert FaultModel.parse(faults.describe()) == faults

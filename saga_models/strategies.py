"""Hypothesis strategies for saga definitions (public API).

They generate valid definitions with size controls and shrink towards small,
readable sagas: fewer steps, chains rather than DAGs, default options.

>>> from hypothesis import given
>>> from saga_models.strategies import sagas
>>> @given(sagas(max_steps=3))
... def test_names_are_unique(saga):
...     assert len({s.name for s in saga.steps}) == len(saga.steps)
>>> test_names_are_unique()
"""

from __future__ import annotations

from hypothesis import strategies as st

from ._builder import SagaBuilder
from ._ir import Saga, StepKind
from .semantics import FaultModel

__all__ = ["fault_models", "sagas", "well_formed_sagas"]


@st.composite
def sagas(
    draw: st.DrawFn,
    *,
    min_steps: int = 1,
    max_steps: int = 4,
    kinds: bool = True,
    dags: bool = True,
    timeouts: bool = True,
    non_idempotent: bool = True,
    needs_result: bool = True,
    escalate: bool = True,
    all_compensations: bool = False,
) -> Saga:
    """Any valid saga (it loads; it may well be wrong, which is the point).

    Args:
        min_steps: Fewest steps.
        max_steps: Most steps.
        kinds: Draw pivot and retriable steps as well as compensatable ones.
        dags: Draw dependencies other than "follow the previous step".
        timeouts: Draw per-attempt timeouts (so unknown outcomes).
        non_idempotent: Draw ``idempotent: false`` steps.
        needs_result: Draw ``compensation_needs_result: true``.
        escalate: Draw an escalating compensation policy.
        all_compensations: Give every step kind compensatable with a compensation.
    """
    n = draw(st.integers(min_steps, max_steps))
    b = SagaBuilder(f"generated_{n}")
    names = [f"s{i}" for i in range(n)]
    for i, name in enumerate(names):
        kind = StepKind.COMPENSATABLE
        if kinds and not all_compensations:
            kind = draw(st.sampled_from(list(StepKind)))
        comp = "undo" if kind is StepKind.COMPENSATABLE else None
        if kind is StepKind.COMPENSATABLE and not all_compensations:
            comp = draw(st.sampled_from(["undo", "undo", None]))
        deps = None
        if dags and i > 0 and draw(st.booleans()):
            deps = draw(st.lists(st.sampled_from(names[:i]), unique=True,
                                 max_size=min(i, 2)))
        attempts = draw(st.sampled_from([1, 2, 3, None]))
        b.step(
            name,
            participant=f"p{i}",
            action="do",
            compensation=comp,
            kind=kind,
            depends_on=deps,
            retry={"max_attempts": attempts},
            timeout=draw(st.sampled_from([None, 1.0])) if timeouts else None,
            idempotent=draw(st.booleans()) if non_idempotent else True,
            compensation_needs_result=(draw(st.booleans()) if needs_result
                                       else False),
        )
    if escalate and draw(st.booleans()):
        b.compensation_policy(max_attempts=draw(st.integers(1, 3)))
    return b.build()


def well_formed_sagas(
    *, max_steps: int = 4, timeouts: bool = True
) -> st.SearchStrategy[Saga]:
    """Sagas that should satisfy every property: compensatable, idempotent steps
    with compensations retried forever and not needing the action's reply."""
    return sagas(max_steps=max_steps, kinds=False, timeouts=timeouts,
                 non_idempotent=False, needs_result=False, escalate=False,
                 all_compensations=True)


@st.composite
def fault_models(draw: st.DrawFn, *, max_crashes: int = 1,
                 max_duplicates: int = 1) -> FaultModel:
    """Any combination of the fault knobs."""
    return FaultModel(
        fail=draw(st.booleans()),
        timeout=draw(st.booleans()),
        comp_fail=draw(st.booleans()),
        crashes=draw(st.integers(0, max_crashes)),
        duplicates=draw(st.integers(0, max_duplicates)),
    )

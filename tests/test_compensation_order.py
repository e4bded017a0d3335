"""Compensation order is transitive: with x -> y -> z where y has nothing to
undo (here: no compensation at all), z is still undone before x."""

from __future__ import annotations

from saga_models import Saga, SagaBuilder
from saga_models import semantics as sem
from verifier import Verdict, check


def _saga() -> Saga:
    return (SagaBuilder("transitive")
            .step("x", participant="p", action="a", compensation="u")
            .step("y", participant="p", action="a")  # nothing to undo
            .step("z", participant="p", action="a", compensation="u")
            .step("w", participant="p", action="a", compensation="u")
            .build())


def test_compensate_after_is_transitive() -> None:
    saga = _saga()
    assert sem.compensate_after(saga, 0) == (1, 2, 3)
    assert sem.compensate_after(saga, 3) == ()


def _orders(saga: Saga) -> set[tuple[int, ...]]:
    faults = sem.FaultModel(fail=True, timeout=False, comp_fail=False, crashes=0,
                            duplicates=0)
    orders: set[tuple[int, ...]] = set()
    stack: list[tuple[sem.State, tuple[int, ...]]] = [(sem.initial_state(saga), ())]
    while stack:
        s, sent = stack.pop()
        if sem.is_terminal(s):
            orders.add(sent)
            continue
        for e in sem.enabled(saga, s, faults):
            nxt = sent + ((e.step,) if e.kind is sem.EventKind.COMP_DISPATCH else ())
            stack.append((sem.apply(saga, s, e), nxt))
    return orders


def test_x_waits_for_z_although_y_has_nothing_to_undo() -> None:
    saga = _saga()
    orders = _orders(saga)
    assert (2, 0) in orders  # w failed: z undone, then x
    for order in orders:
        if 0 in order and 2 in order:
            assert order.index(2) < order.index(0), order
    # The checker agrees: the order part of completeness is not violated (the
    # missing compensation of y is a structure violation, reported as such).
    result = check(saga)
    assert "started before" not in result["compensation_completeness"].reason
    assert result["structure"].verdict is Verdict.VIOLATED

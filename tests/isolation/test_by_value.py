"""The by value countermeasure: a step chooses its lock by the value it sees
(low risk: no lock; high risk: a semantic lock), verified to remove the dirty
read it targets and reported when the choice lets one through."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from saga_models import InvalidDefinition, SagaBuilder
from saga_models import semantics as sem
from tests.expectations import expectation
from verifier import CheckResult, PropertyResult, Verdict, check
from verifier._multi_ts import MultiSagaTransitionSystem

ISOLATION = Path(__file__).parents[2] / "examples" / "isolation"


def _result(res: CheckResult, name: str) -> PropertyResult:
    return next(r for r in res.results if r.property == name)


def _last_units(*, high_risk: str | None, lock: bool = False) -> SagaBuilder:
    """Three orders over two units of stock."""
    effect: dict[str, object] = {"guard": "stock >= 1",
                                 "update": {"stock": "stock - 1"}}
    if high_risk is not None:
        effect["by_value"] = {"high_risk": high_risk, "lock": ["stock"]}
    b = (SagaBuilder("last_units").resource("stock", initial=2).instances(3)
         .step("reserve", participant="inventory", compensation="release",
               effect=effect,
               compensation_effect={"update": {"stock": "stock + 1"}})
         .step("charge", participant="payments", kind="pivot"))
    if lock:
        b.semantic_lock("stock")
    return b


def test_by_value_examples_are_broken_and_fixed() -> None:
    assert "no_dirty_read" in expectation(
        ISOLATION / "stock_last_units.saga.yaml").violated
    assert expectation(
        ISOLATION / "stock_last_units_by_value.saga.yaml").violated == frozenset()


def test_by_value_both_ways() -> None:
    fixed = check(_last_units(high_risk="stock <= 0").build(), faults="fail")
    assert fixed.verdict is Verdict.HOLDS
    assert _result(fixed, "by_value:reserve").verdict is Verdict.HOLDS
    # Seeded bug: the risk is misjudged (only "plentiful" stock counts as
    # high risk), so a request that sees no stock goes ahead unlocked.
    bad = check(_last_units(high_risk="stock >= 2").build(), faults="fail")
    res = _result(bad, "by_value:reserve")
    assert res.verdict is Verdict.VIOLATED
    assert "does not remove the dirty read" in res.reason
    assert res.counterexample is not None
    assert _result(bad, "no_dirty_read").verdict is Verdict.VIOLATED


def _unlocked_overlap(saga: SagaBuilder) -> bool:
    """Whether an instance's reservation ever takes effect while another
    instance holds an uncommitted one (what a lock forbids)."""
    built = saga.build()
    faults = dataclasses.replace(sem.NO_FAULTS, fail=True)
    ts = MultiSagaTransitionSystem([built] * 3, faults)
    comp = ts.comp
    todo, seen = [comp.initial()], set()
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        for _, nxt in ts.successors(s):
            a, b = comp.resources_of(s)["stock"], comp.resources_of(nxt)["stock"]
            if b < a < 2:  # someone else's unit is already pending
                pending = [i for i in range(3) if comp.net_of(s, i)[0] < 0
                           and s[comp.instances[i].off + sem.PHASE]
                           < int(sem.Phase.COMPLETED)]
                if pending:
                    return True
            todo.append(nxt)
    return False


def test_the_low_risk_path_runs_without_the_lock() -> None:
    # By value locks only when the stock looks exhausted; a full semantic lock
    # serialises every reservation behind a pending one.
    assert _unlocked_overlap(_last_units(high_risk="stock <= 0"))
    assert not _unlocked_overlap(_last_units(high_risk=None, lock=True))


@pytest.mark.parametrize(("by_value", "where", "code"), [
    ("{high_risk: 'stock <= 0', lock: [stok]}", "effect", "SAGA177"),
    ("{high_risk: 'stock <= 0', lock: []}", "effect", "SAGA177"),
    ("{high_risk: 'stok <= 0', lock: [stock]}", "effect", "SAGA161"),
    ("{high_risk: 'stock <= 0', lock: [stock]}", "compensation_effect",
     "SAGA177"),
])
def test_bad_by_value_declarations_are_located_diagnostics(
    by_value: str, where: str, code: str,
) -> None:
    from saga_models import loads

    text = ("saga: s\nresources: {stock: {initial: 1}}\nsteps:\n"
            f"  - {{name: a, participant: p, compensation: u, "
            f"{where}: {{by_value: {by_value}}}}}\n")
    with pytest.raises(InvalidDefinition) as exc:
        loads(text)
    d = exc.value.diagnostics[0]
    assert d.code == code, exc.value.diagnostics
    assert d.span.line == 4 and d.help

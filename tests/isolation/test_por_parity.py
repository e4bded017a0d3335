"""Partial-order reduction keeps every verdict and every shortest counterexample.

The cases are the symmetry parity suite's generated sagas (guards, reads,
writes from locals, buggy compensations, semantic locks, invariants; two or
three instances, sometimes of two sagas), so violations are frequent. Each is
explored unreduced and with ample sets (alone and combined with symmetry): the
verdicts and the counterexample lengths must be equal. A wrong footprint (two
conflicting moves declared independent) must make the comparison fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from saga_models import FaultModel, Saga, SagaBuilder, load
from saga_models.instances import Composition
from verifier import Verdict, check
from verifier._explicit import explore
from verifier._multi_ts import MultiSagaTransitionSystem
from verifier._por import Footprint, explore_shortest

from .test_reduction_parity import case

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples" / "isolation").glob("*.saga.yaml"))


def _no_footprint(comp: Composition, i: int) -> tuple[int, ...]:
    """The seeded dependency bug: nothing of an instance is seen by another,
    so moves that take resource effects or end an instance count as local."""
    return ()


def compare(sagas: Sequence[Saga], faults: FaultModel, *, symmetry: bool = False,
            footprint: Footprint | None = None
            ) -> tuple[list[str], int, int, bool]:
    """Explore unreduced and reduced. Returns (disagreements, full states,
    reduced states, whether anything is violated)."""
    full = MultiSagaTransitionSystem(sagas, faults)
    reduced = MultiSagaTransitionSystem(sagas, faults, symmetry=symmetry,
                                        por=True, footprint=footprint)
    plain = MultiSagaTransitionSystem(sagas, faults, symmetry=symmetry)
    names = [p.name for p in reduced.properties]
    a = {r.property: r for r in explore(full, properties=names)}
    b = {r.property: r for r in explore_shortest(reduced, plain,
                                                 properties=names)}
    wrong = []
    violated = False
    for name in names:
        assert a[name].verdict is not Verdict.UNKNOWN, name
        if a[name].verdict is not b[name].verdict:
            wrong.append(f"{name}: {a[name].verdict.value} unreduced, "
                         f"{b[name].verdict.value} reduced")
            continue
        ca, cb = a[name].counterexample, b[name].counterexample
        if (ca is None) != (cb is None):
            wrong.append(f"{name}: counterexample only one way")
        elif ca is not None and cb is not None:
            violated = True
            if len(ca) != len(cb):
                wrong.append(f"{name}: counterexample of {len(ca)} events "
                             f"unreduced, {len(cb)} reduced")
    return wrong, a[names[0]].stats.states, b[names[0]].stats.states, violated


def _run(seeds: range, *, symmetry: bool = False) -> None:
    reduced_any = violated = 0
    for seed in seeds:
        sagas, faults = case(seed)
        wrong, full, red, v = compare(sagas, faults, symmetry=symmetry)
        assert not wrong, (seed, wrong)
        reduced_any += red < full
        violated += v
    # Meaningful cases: many violate something, most are reduced.
    assert violated >= len(seeds) // 10, violated
    assert reduced_any >= len(seeds) // 2, reduced_any


def test_por_parity_fast() -> None:
    _run(range(40))


def test_por_with_symmetry_parity_fast() -> None:
    _run(range(40), symmetry=True)


@pytest.mark.slow
def test_por_parity_300_cases() -> None:
    _run(range(1000, 1300))


@pytest.mark.slow
def test_por_with_symmetry_parity_300_cases() -> None:
    _run(range(1000, 1300), symmetry=True)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name.split(".")[0])
def test_por_parity_on_examples(path: Path) -> None:
    saga = load(path)
    for k, faults in ((2, "fail"), (2, "fail,timeout"), (3, "fail")):
        wrong, full, red, _ = compare([saga] * k, FaultModel.parse(faults))
        assert not wrong, (k, faults, wrong)
        assert red < full, (k, faults)


def test_wrong_footprint_breaks_parity() -> None:
    # Declaring conflicting moves independent loses interleavings: the
    # comparison above must notice (here, on the lost-update examples).
    wrong = []
    for path in EXAMPLES:
        wrong += compare([load(path)] * 2, FaultModel.parse("fail"),
                         footprint=_no_footprint)[0]
    assert any("unreduced" in w for w in wrong), wrong


def local_steps_saga() -> Saga:
    """Two steps with no effect around one that takes stock: most moves of an
    instance are local."""
    return (SagaBuilder("local").resource("stock", initial=1)
            .step("prepare", participant="p", action="prep",
                  compensation="unprep", retry={"max_attempts": 2})
            .step("take", participant="inv", action="take",
                  compensation="give_back", depends_on=["prepare"],
                  effect={"guard": "stock >= 1", "update": {"stock": "stock - 1"}},
                  compensation_effect={"update": {"stock": "stock + 1"}})
            .step("notify", participant="n", action="mail",
                  compensation="unmail", depends_on=["take"],
                  retry={"max_attempts": 2})
            .build())


@pytest.mark.parametrize(("k", "faults"), [(2, "fail,crash=1"), (3, "fail")])
def test_por_reduces_independent_local_steps(k: int, faults: str) -> None:
    wrong, full, red, _ = compare([local_steps_saga()] * k,
                                  FaultModel.parse(faults))
    assert not wrong
    assert red < full * 0.8, (full, red)


def test_ample_sets_leave_resource_moves_interleaved() -> None:
    # Every move that takes or undoes an effect is dependent: where an
    # instance could take stock, every instance's moves are followed.
    sagas = [local_steps_saga()] * 2
    ts = MultiSagaTransitionSystem(sagas, FaultModel.parse("fail"), por=True)
    assert ts.por is not None
    comp = ts.comp
    seen = {comp.initial()}
    todo = [comp.initial()]
    checked = 0
    while todo:
        st = todo.pop()
        succ = ts.successors(st)
        kept = ts.reduce_successors(st, succ, lambda t: False)
        if kept != succ:
            i = kept[0][0].instance
            assert all(ev.instance == i for ev, _ in kept)
            assert kept == [x for x in succ if x[0].instance == i]
            for _, t in kept:  # only instance i's own part changes
                for j in range(comp.k):
                    if j != i:
                        assert comp.single(t, j) == comp.single(st, j)
                assert comp.resources_of(t) == comp.resources_of(st)
                assert comp.footprint(i) and all(
                    t[comp.instances[i].off + p] == st[comp.instances[i].off + p]
                    for p in comp.footprint(i))
            checked += 1
        for _, t in succ:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    assert checked > 0


def test_por_is_reported_and_termination_stays_unreduced() -> None:
    path = ROOT / "examples" / "isolation" / "stock_dirty_read.saga.yaml"
    plain = check(path, faults="fail")
    for symmetry, label in ((False, "reductions=por"),
                            (True, "reductions=symmetry,por")):
        res = check(path, faults="fail", por=True, symmetry=symmetry)
        by = {r.property: r for r in res.results}
        assert label in by["no_dirty_read"].fault_model
        assert "reductions" not in by["termination"].fault_model
        assert by["termination"].verdict is Verdict.HOLDS
        assert by["no_dirty_read"].verdict is Verdict.VIOLATED
        for r in plain.results:
            assert by[r.property].verdict is r.verdict
            if r.counterexample is not None:
                cex = by[r.property].counterexample
                assert cex is not None and len(cex) == len(r.counterexample)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sagaproof", "check",
                           "--no-progress", *args],
                          capture_output=True, text=True, cwd=ROOT, check=False)


def test_cli_por_in_json() -> None:
    out = _cli("examples/isolation/stock_dirty_read.saga.yaml", "--faults",
               "fail", "--por", "--property", "no_dirty_read", "--format", "json")
    assert out.returncode == 1, out.stderr
    text = json.dumps(json.loads(out.stdout))
    assert "reductions=por" in text


def test_cli_refuses_por_with_smt() -> None:
    out = _cli("examples/isolation/stock_dirty_read.saga.yaml", "--por",
               "--backend", "smt")
    assert out.returncode == 2
    assert "SAGA183" in out.stderr and "help" in out.stderr
    assert "Traceback" not in out.stderr


def test_depth_bound_leaves_undecided_properties_unknown() -> None:
    # The bounded search that recomputes counterexamples finds a violation
    # within the bound and decides nothing else.
    saga = load(ROOT / "examples" / "isolation" / "stock_dirty_read.saga.yaml")
    ts = MultiSagaTransitionSystem([saga] * 2, FaultModel.parse("fail"))
    full = {r.property: r for r in explore(ts)}
    cex = full["no_dirty_read"].counterexample
    assert cex is not None
    for bound, verdict in ((len(cex), Verdict.VIOLATED),
                           (len(cex) - 1, Verdict.UNKNOWN)):
        res = {r.property: r for r in explore(
            ts, properties=["no_dirty_read", "conservation"], max_depth=bound)}
        assert res["no_dirty_read"].verdict is verdict, bound
        assert res["conservation"].verdict is Verdict.UNKNOWN
        assert "depth bound" in res["conservation"].reason

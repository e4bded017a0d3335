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
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from saga_models import FaultModel, Saga, SagaBuilder, load
from saga_models.instances import Composition
from verifier import PropertyResult, Verdict, check
from verifier._explicit import explore
from verifier._multi_ts import MultiSagaTransitionSystem
from verifier._por import Footprint, explore_shortest

from .test_reduction_parity import (
    FAULTS,
    basic_effects,
    case,
    disagreements,
    unreduced,
)
from .test_reduction_parity import compare as symmetry_compare

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples" / "isolation").glob("*.saga.yaml"))


def _no_footprint(comp: Composition, i: int) -> tuple[int, ...]:
    """The seeded dependency bug: nothing of an instance is seen by another,
    so moves that take resource effects or end an instance count as local."""
    return ()


def compare(sagas: Sequence[Saga], faults: FaultModel, *, symmetry: bool = False,
            footprint: Footprint | None = None,
            full: dict[str, PropertyResult] | None = None,
            ) -> tuple[list[str], int, int, bool]:
    """Explore unreduced and reduced. Returns (disagreements, full states,
    reduced states, whether anything is violated). ``full``: the unreduced
    results, when the caller has them already (one search for several
    reductions of the case)."""
    reduced = MultiSagaTransitionSystem(sagas, faults, symmetry=symmetry,
                                        por=True, footprint=footprint)
    plain = MultiSagaTransitionSystem(sagas, faults, symmetry=symmetry)
    names = [p.name for p in reduced.properties]
    a = unreduced(list(sagas), faults, names) if full is None else full
    assert sorted(a) == sorted(names), sorted(a)
    b = {r.property: r for r in explore_shortest(reduced, plain,
                                                 properties=names)}
    wrong, violated = disagreements(names, a, b)
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


def disjoint_saga(rng: random.Random, name: str, initial: dict[str, int]
                  ) -> Saga:
    """A random small saga over its own resource ``<name>_own`` and the
    shared ``shared`` (some steps on each, some on none): different sagas of
    one case meet only on ``shared``, so many of their moves are independent
    across instances without being local to one."""
    own = f"{name}_own"
    b = SagaBuilder(name)
    for res, value in initial.items():  # declared by all, touched by some
        b.resource(res, initial=value)
    steps = rng.randint(1, 3)
    has_local = False
    for j in range(steps):
        r = rng.choice([own, own, "shared"])
        other = "shared" if r == own else own
        shape = rng.randrange(7)
        effect, comp, has_local = basic_effects(rng, shape, r, own,
                                                has_local=has_local)
        if shape == 4:
            # The compensation reaches a resource the action does not.
            effect = {"update": {r: f"{r} + 1"}}
            comp = {"update": {other: f"{other} - 1"}}
        elif shape == 5:
            # By value: a high-risk request locks a resource it does not
            # otherwise touch.
            effect = {"guard": f"{r} >= 1", "update": {r: f"{r} - 1"},
                      "by_value": {"high_risk": f"{r} <= 1", "lock": [other]}}
            comp = {"update": {r: f"{r} + 1"}}
        pivot = j == steps - 1 and rng.random() < 0.4
        b.step(f"s{j}", participant="p", action="do",
               compensation=None if pivot else "undo",
               kind="pivot" if pivot else "compensatable",
               retry={"max_attempts": rng.choice([1, 2])},
               timeout=rng.choice([None, None, 5.0]),
               effect=effect or None,
               compensation_effect=None if pivot else (comp or None))
    if rng.random() < 0.15:
        b.semantic_lock(rng.choice([own, "shared"]))
    if rng.random() < 0.4:
        # An invariant on a resource makes the moves that write it visible
        # (never reduced away), also where no other instance touches it; one
        # over two sagas' own resources is violated only by interleaving.
        target = rng.choice([own, "shared", "pair"])
        if target == "pair":
            mate = rng.choice([r for r in initial if r not in (own, "shared")])
            b.invariant(f"{name}_pair", f"{own} + {mate} <= 2")
        else:
            b.invariant(f"{name}_small", f"{target} <= 3")
    return b.build()


def disjoint_case(seed: int) -> tuple[list[Saga], FaultModel]:
    """Two or three different sagas on partly disjoint resources, one
    instance each (sometimes two of the first)."""
    rng = random.Random(seed)
    names = ["x", "y", "z"][: rng.choice([2, 2, 3])]
    initial = {f"{n}_own": rng.randint(0, 2) for n in names}
    initial["shared"] = rng.randint(0, 2)
    sagas = [disjoint_saga(rng, n, initial) for n in names]
    if len(sagas) == 2 and rng.random() < 0.25:
        sagas = [sagas[0], *sagas]
    faults = rng.choice(FAULTS if len(sagas) == 2 else FAULTS[:2])
    return sagas, FaultModel.parse(faults)


def _reach_footprint(*, compensations: bool = True, locks: bool = True,
                     sources: bool = True) -> Footprint:
    """A footprint computed like :meth:`Composition.footprint` but with a
    seeded bug: the other instances' compensations left out of what they
    touch, or the locks a by-value choice may take, or the resources a
    write reads through its locals, left out of every step's reach."""
    def reach(inst: Any, j: int, *, whole: bool) -> set[int]:
        out: set[int] = set()
        for eff in (inst.action[j],
                    inst.comp[j] if whole or compensations else None):
            if eff is not None:
                out |= eff.touches | eff.writes
                out |= eff.risk_lock if locks else set()
                out |= eff.sources if sources else set()
        return out

    def pick(comp: Composition, i: int) -> tuple[int, ...]:
        others: set[int] = set()
        for k, inst in enumerate(comp.instances):
            if k != i:
                for j in range(len(inst.saga.steps)):
                    others |= reach(inst, j, whole=False)
        inst = comp.instances[i]
        return tuple(comp.counter_position(j) for j in inst.effect_steps
                     if reach(inst, j, whole=True) & others)

    return pick


def _two_holders() -> list[Saga]:
    """Two sagas on their own counters, each holding +1 for a while; the
    invariant over both is false only when both hold at once."""
    def one(n: str) -> Saga:
        b = SagaBuilder(n).resource("x_own").resource("y_own")
        b.step("hold", participant="p", action="hold", compensation="free",
               effect={"update": {f"{n}_own": f"{n}_own + 1"}},
               compensation_effect={"update": {f"{n}_own": f"{n}_own - 1"}})
        b.step("release", participant="p", action="release",
               compensation="rehold", depends_on=["hold"],
               effect={"update": {f"{n}_own": f"{n}_own - 1"}},
               compensation_effect={"update": {f"{n}_own": f"{n}_own + 1"}})
        b.step("done", participant="p", action="done", kind="pivot",
               depends_on=["release"])
        b.invariant("one_at_a_time", "x_own + y_own <= 1")
        return b.build()
    return [one("x"), one("y")]


def _refund_into_shared() -> list[Saga]:
    """x reads ``shared`` and later writes it from what it read; y's action
    touches only its own counter, but its compensation refunds into
    ``shared`` (a lost update for x when it comes in between)."""
    x = (SagaBuilder("x").resource("shared")
         .step("look", participant="p", action="look", compensation="nop",
               effect={"read": {"seen": "shared"}})
         .step("add", participant="p", action="add", compensation="sub",
               depends_on=["look"], effect={"update": {"shared": "seen + 1"}},
               compensation_effect={"update": {"shared": "shared - 1"}})
         .step("done", participant="p", action="done", kind="pivot",
               depends_on=["add"])
         .build())
    y = (SagaBuilder("y").resource("shared").resource("y_own")
         .step("take", participant="p", action="take", compensation="refund",
               effect={"update": {"y_own": "y_own + 1"}},
               compensation_effect={"update": {"shared": "shared + 1"}})
         .step("check", participant="p", action="check", kind="pivot",
               depends_on=["take"], effect={"guard": "y_own >= 5"})
         .build())
    return [x, y]


def _high_risk_lock() -> list[Saga]:
    """x's second step touches only its own counter but, chosen by value,
    locks ``shared``, which y holds for a while: refused, x compensates its
    first step with a buggy compensation (conservation is violated)."""
    x = (SagaBuilder("x").resource("shared").resource("x_own")
         .step("hold", participant="p", action="hold", compensation="free",
               effect={"update": {"x_own": "x_own + 1"}},
               compensation_effect={"update": {"x_own": "x_own - 2"}})
         .step("big", participant="p", action="big", kind="pivot",
               depends_on=["hold"],
               effect={"update": {"x_own": "x_own + 1"},
                       "by_value": {"high_risk": "x_own >= 0",
                                    "lock": ["shared"]}})
         .step("done", participant="p", action="done", kind="retriable",
               retry={"max_attempts": "forever"}, depends_on=["big"])
         .build())
    y = (SagaBuilder("y").resource("shared")
         .step("add", participant="p", action="add", compensation="sub",
               effect={"update": {"shared": "shared + 1"}},
               compensation_effect={"update": {"shared": "shared - 1"}})
         .step("later", participant="p", action="later", compensation="unlater",
               depends_on=["add"])
         .build())
    return [x, y]


def _write_from_a_shared_read() -> list[Saga]:
    """y reads ``shared`` into a local and later writes only its own
    counter from it; x writes ``shared`` in between (a lost update for y:
    found by the 300-case suite, seed 2062, before writes from locals
    counted the locals' sources)."""
    x = (SagaBuilder("x").resource("shared", initial=1).resource("y_own")
         .step("take", participant="p", action="take", compensation="back",
               effect={"guard": "shared >= 1",
                       "update": {"shared": "shared - 1"}},
               compensation_effect={"update": {"shared": "shared + 1"}})
         .step("done", participant="p", action="done", kind="pivot",
               depends_on=["take"])
         .build())
    y = (SagaBuilder("y").resource("shared", initial=1).resource("y_own")
         .step("look", participant="p", action="look", compensation="nop",
               effect={"read": {"seen": "shared"}})
         .step("note", participant="p", action="note", kind="pivot",
               depends_on=["look"], effect={"update": {"y_own": "seen - 1"}})
         .build())
    return [x, y]


@pytest.mark.parametrize(("make", "bug", "prop"), [
    (_refund_into_shared, _reach_footprint(compensations=False),
     "no_lost_update"),
    (_high_risk_lock, _reach_footprint(locks=False), "conservation"),
    (_write_from_a_shared_read, _reach_footprint(sources=False),
     "no_lost_update"),
])
def test_disjoint_independence_sees_compensations_locks_and_sources(
        make: Any, bug: Footprint, prop: str) -> None:
    # Both ways: the footprint reduces and keeps the verdicts; leaving the
    # other instances' compensations (or by-value locks, or what a write
    # reads through its locals) out of what they touch loses the
    # interleaving that violates ``prop``.
    none = FaultModel.parse("none")
    wrong, full, red, violated = compare(make(), none)
    assert not wrong and violated and red < full, (wrong, full, red)
    wrong = compare(make(), none, footprint=bug)[0]
    assert any(w.startswith(f"{prop}: violated unreduced, holds reduced")
               for w in wrong), wrong


def test_a_move_on_an_invariants_resource_is_visible(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # No other instance touches x_own or y_own, but the invariant reads
    # both: their moves must stay interleaved (visibility, C2).
    none = FaultModel.parse("none")
    wrong, full, red, violated = compare(_two_holders(), none)
    assert not wrong and violated and red < full, (wrong, full, red)
    monkeypatch.setattr(MultiSagaTransitionSystem, "_invariant_reads",
                        lambda self: frozenset())
    wrong = compare(_two_holders(), none)[0]
    assert wrong == ["invariant:one_at_a_time: violated unreduced, holds "
                     "reduced"], wrong


def _run_disjoint(seeds: range, *, symmetry: bool = False) -> None:
    violated = finer = 0
    for seed in seeds:
        sagas, faults = disjoint_case(seed)
        wrong, _, red, v = compare(sagas, faults, symmetry=symmetry)
        assert not wrong, (seed, wrong)
        violated += v
        coarse = MultiSagaTransitionSystem(
            sagas, faults, symmetry=symmetry, por=True,
            footprint=Composition.instance_footprint)
        names = [p.name for p in coarse.properties][:1]
        finer += red < explore(coarse, properties=names)[0].stats.states
    # Meaningful cases: many violate something, and independence over
    # disjoint resources reduces further than instance-local moves alone.
    assert violated >= len(seeds) // 10, violated
    assert finer >= len(seeds) // 2, finer


def test_por_parity_fast() -> None:
    _run(range(40))


def test_por_with_symmetry_parity_fast() -> None:
    _run(range(40), symmetry=True)


def test_por_parity_disjoint_resources_fast() -> None:
    _run_disjoint(range(30))


def test_por_with_symmetry_parity_disjoint_resources_fast() -> None:
    _run_disjoint(range(30, 45), symmetry=True)


@pytest.mark.slow
def test_por_parity_disjoint_resources_300_cases() -> None:
    _run_disjoint(range(2000, 2300))


SLOW_SEEDS = range(1000, 1300)
"""The slow tier's 300 cases: each compared unreduced against symmetry
alone, partial-order reduction alone, and both."""
SHARDS = 4
"""They run as SHARDS tests of every SHARDS-th seed, so xdist shares them."""


@pytest.mark.slow
@pytest.mark.parametrize("k", range(SHARDS))
def test_reductions_parity_300_cases(k: int) -> None:
    """The three reductions on one case share its unreduced search (about
    half of each comparison's work), which the three 300-case tests this
    replaces each repeated; every comparison and every "meaningful cases"
    bound is kept, the bounds on each shard's share of the cases (so on
    every 75 cases, not only on the 300)."""
    seeds = SLOW_SEEDS[k::SHARDS]
    reduced = {False: 0, True: 0}
    violated = {False: 0, True: 0}
    symmetry_only = []
    for seed in seeds:
        sagas, faults = case(seed)
        names = [p.name for p in MultiSagaTransitionSystem(
            sagas, faults, symmetry=True, por=True).properties]
        full = unreduced(sagas, faults, names)
        symmetry_only.append(symmetry_compare(seed, full=full))
        for symmetry in (False, True):
            wrong, states, red, v = compare(sagas, faults, symmetry=symmetry,
                                            full=full)
            assert not wrong, (seed, "symmetry+por" if symmetry else "por",
                               wrong)
            reduced[symmetry] += red < states
            violated[symmetry] += v
    # Meaningful cases, as _run and test_reduction_parity._run require.
    for symmetry in (False, True):
        assert violated[symmetry] >= len(seeds) // 10, violated
        assert reduced[symmetry] >= len(seeds) // 2, reduced
    assert any(v for _, _, v in symmetry_only)
    assert any(r < f for f, r, _ in symmetry_only)


def test_the_reduction_shards_cover_the_300_cases() -> None:
    covered = sorted(s for k in range(SHARDS) for s in SLOW_SEEDS[k::SHARDS])
    assert covered == list(SLOW_SEEDS) and len(covered) == 300


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
    checked = 0
    for st, succ, kept in reduced_moves(ts):
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
    assert checked > 0


def reduced_moves(ts: MultiSagaTransitionSystem) -> Iterator[
        tuple[Any, list[tuple[Any, Any]], list[tuple[Any, Any]]]]:
    """Every reachable state of ``ts`` (unreduced), with its successors and
    the ample subset the reduction keeps of them (no state yet expanded
    closes a cycle: the proviso is left out, to see each choice)."""
    comp = ts.comp
    seen = {comp.initial()}
    todo = [comp.initial()]
    while todo:
        st = todo.pop()
        succ = ts.successors(st)
        yield st, succ, ts.reduce_successors(st, succ, lambda t: False)
        for _, t in succ:
            if t not in seen:
                seen.add(t)
                todo.append(t)


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

"""Partial-order reduction between the branches of one instance.

Generated DAG sagas (parallel branches; with and without resource effects;
retries, timeouts, non-idempotent steps, bounded and unbounded compensation
policies, hand-wired chains) are explored unreduced and with ample sets, one
saga (K = 1) and two instances (K = 2): verdicts and counterexample lengths
must be equal. The independence the reduction relies on is also checked
directly, state by state (moves commute; nothing else changes the header
before the chosen step moves), and a wrong independence must make the
comparison fail.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from saga_models import FaultModel, Saga, SagaBuilder, load
from saga_models import semantics as sem
from verifier import Verdict, check
from verifier._explicit import explore
from verifier._multi_ts import MultiSagaTransitionSystem
from verifier._por import (
    AmpleSets,
    BranchIndependence,
    ReducedSagaTransitionSystem,
    Stable,
    explore_shortest,
)
from verifier._saga_ts import SagaTransitionSystem

from .test_por_parity import compare as compare_many
from .test_por_parity import reduced_moves
from .test_reduction_parity import disagreements

ROOT = Path(__file__).parents[2]

# Crash-free models first: with a crash left in the budget nothing is
# reduced (the crash is dependent on every move), so they are the ones the
# reduction fires on; the last ones check that it stays exact with them.
FAULTS = ("none", "comp_fail", "timeout,late", "fail", "comp_fail,duplicate",
          "timeout,comp_fail,late,duplicate", "fail,comp_fail",
          "fail,timeout,comp_fail,late,duplicate", "crash=1", "all")


def dag_saga(rng: random.Random, name: str = "dag", *,
             effects: bool = False, most: int = 4, rows: bool = False) -> Saga:
    """A random saga whose steps form a DAG: each step depends on a random
    (often empty) subset of the earlier ones, so branches run in parallel.
    With ``effects``, steps update resources of their own (``r<j>``) or one
    shared by two steps (``both``), sometimes under a guard; with ``rows``
    those are records keyed by instance (``r<j>.v``), so that instances do
    not share them either."""
    b = SagaBuilder(name)
    n = rng.randint(2, most)
    if effects:
        for r in [f"r{j}" for j in range(n)] + ["both"]:
            if rows:
                b.instance_record(r, v=rng.randint(0, 1))
            else:
                b.resource(r, initial=rng.randint(0, 1))
    pivot_at = n - 1 if rng.random() < 0.3 else None
    for j in range(n):
        earlier = [f"s{d}" for d in range(j) if rng.random() < 0.3]
        kind = "pivot" if j == pivot_at else "compensatable"
        if pivot_at is not None and j == pivot_at:
            earlier = [f"s{d}" for d in range(j)]  # pivot after all the rest
        effect: dict[str, Any] | None = None
        comp: dict[str, Any] | None = None
        if effects and rng.random() < 0.7:
            res = rng.choice([f"r{j}", f"r{j}", "both"])
            res += ".v" if rows else ""
            effect = {"update": {res: f"{res} + 1"}}
            if rng.random() < 0.3:
                effect["guard"] = f"{res} <= 1"
            comp = {"update": {res: f"{res} - {rng.choice([1, 1, 2])}"}}
        b.step(f"s{j}", participant=f"p{j}", action="do",
               compensation=None if kind == "pivot" else "undo",
               kind=kind, depends_on=earlier,
               retry={"max_attempts": rng.choice([1, 2, "forever"])},
               timeout=rng.choice([None, None, 5.0]),
               idempotent=rng.random() < 0.7,
               empty_rollback=(suspend := kind != "pivot"
                               and rng.random() < 0.3),
               anti_suspension=suspend,
               compensation_needs_result=kind != "pivot" and rng.random() < 0.1,
               effect=effect,
               compensation_effect=None if kind == "pivot" else comp)
    if rng.random() < 0.3:
        b.compensation_policy(max_attempts=rng.choice([1, 2]))
    return b.build()


def single_case(seed: int) -> tuple[Saga, FaultModel]:
    """One generated DAG saga (K = 1) and a fault model."""
    rng = random.Random(seed)
    saga = dag_saga(rng, effects=rng.random() < 0.3)
    return saga, FaultModel.parse(rng.choice(FAULTS))


def many_case(seed: int) -> tuple[list[Saga], FaultModel]:
    """Two instances of a generated DAG saga, with or without resources."""
    rng = random.Random(seed)
    saga = dag_saga(rng, effects=rng.random() < 0.6, most=3,
                    rows=rng.random() < 0.5)
    return [saga, saga], FaultModel.parse(rng.choice(FAULTS[:4]))


def compare_one(saga: Saga, faults: FaultModel, *, stable: Stable | None = None
                ) -> tuple[list[str], int, int, bool]:
    """Explore one saga unreduced and reduced. Returns (disagreements, full
    states, reduced states, whether anything is violated)."""
    full = SagaTransitionSystem(saga, faults)
    reduced = ReducedSagaTransitionSystem(saga, faults, stable=stable)
    names = [p.name for p in reduced.properties]
    a = {r.property: r for r in explore(full, properties=names, engine="python")}
    b = {r.property: r for r in explore_shortest(reduced, full,
                                                 properties=names)}
    wrong, violated = disagreements(names, a, b)
    return wrong, a[names[0]].stats.states, b[names[0]].stats.states, violated


def _run_single(seeds: range) -> None:
    reduced_any = violated = 0
    for seed in seeds:
        saga, faults = single_case(seed)
        wrong, full, red, v = compare_one(saga, faults)
        assert not wrong, (seed, wrong)
        assert red <= full, seed
        reduced_any += red < full
        violated += v
    # Meaningful cases: many violate something, many are reduced.
    assert violated >= len(seeds) // 10, violated
    assert reduced_any >= len(seeds) // 3, reduced_any


def _run_many(seeds: range, *, symmetry: bool = False) -> None:
    branch = violated = 0
    for seed in seeds:
        sagas, faults = many_case(seed)
        wrong, _, red, v = compare_many(sagas, faults, symmetry=symmetry)
        assert not wrong, (seed, wrong)
        violated += v
        branch += red < _instances_only(sagas, faults, symmetry=symmetry)
    assert violated >= len(seeds) // 10, violated
    # The reduction between branches fires inside instances too (where
    # no other instance sees an instance's end: rows keyed by instance, or
    # no resources).
    assert branch >= len(seeds) // 6, branch


def _instances_only(sagas: list[Saga], faults: FaultModel, *,
                    symmetry: bool = False) -> int:
    """States of the reduced search with the reduction between branches
    turned off (only between instances)."""
    ts = MultiSagaTransitionSystem(sagas, faults, por=True, symmetry=symmetry)
    assert ts.por is not None
    ts.por._branch = lambda *a, **k: None  # type: ignore[method-assign]
    names = [p.name for p in ts.properties][:1]
    return explore(ts, properties=names)[0].stats.states


# --- the independence itself, state by state ---------------------------------
def _others_only(ind: BranchIndependence, faults: FaultModel, state: sem.State,
                 i: int, mine: set[sem.Event]) -> None:
    """Every path of moves of steps other than ``i`` from ``state`` keeps the
    header (the duplicate count aside) and enables no new move of ``i``."""
    saga = ind.saga
    seen = {state}
    todo = [state]
    while todo:
        s = todo.pop()
        for e in sem.enabled(saga, s, faults):
            if e.step == i:
                assert e in mine, ("a new move of step", i, e, state, s)
                continue
            t = sem.apply(saga, s, e)
            head = [x for k, x in enumerate(t[:sem.HEADER]) if k != sem.DUPS]
            assert head == [x for k, x in enumerate(state[:sem.HEADER])
                            if k != sem.DUPS], ("header changed by", e, state)
            if t not in seen:
                seen.add(t)
                todo.append(t)


def check_independence(saga: Saga, faults: FaultModel) -> int:
    """For every reachable state and every step whose moves the reduction
    may follow alone: each of its moves and each other enabled move commute
    (both orders reach the same state) and neither disables the other, and
    no path of the other steps changes the header or enables a new move of
    that step. Returns how many (state, step) pairs were checked."""
    ind = BranchIndependence(saga, faults)
    start = sem.initial_state(saga)
    seen = {start}
    todo = [start]
    checked = 0
    while todo:
        s = todo.pop()
        events = sem.enabled(saga, s, faults)
        succ = [(e, sem.apply(saga, s, e)) for e in events]
        for _, t in succ:
            if t not in seen:
                seen.add(t)
                todo.append(t)
        if not ind.quiet(s):
            continue
        steps = {e.step for e in events}
        for i in steps - {-1}:
            mine = [(e, t) for e, t in succ if e.step == i]
            if not all(ind.local(s, e, t) for e, t in mine) or not ind.stable(
                    s, i, [e for e, _ in mine]):
                continue
            checked += 1
            for a, sa in mine:
                for b, sb in succ:
                    if b.step == i:
                        continue
                    assert b in sem.enabled(saga, sa, faults), (a, b, s)
                    assert a in sem.enabled(saga, sb, faults), (b, a, s)
                    assert sem.apply(saga, sa, b) == sem.apply(saga, sb, a), (
                        a, b, s)
            _others_only(ind, faults, s, i, {e for e, _ in mine})
    return checked


def test_local_moves_commute_on_generated_dags() -> None:
    checked = 0
    for seed in range(40):
        saga, faults = single_case(seed)
        checked += check_independence(saga, faults)
    assert checked > 200, checked


def test_a_wrong_can_end_is_caught_by_the_independence_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Claiming that no step can abort makes a move the reduction follows
    # alone depend on another step's failure: the state-by-state check
    # sees the header change (so the footprint claim is tested, not taken).
    saga = (SagaBuilder("two").step("a", participant="p", action="x",
                                    compensation="u")
            .step("b", participant="q", action="y", compensation="v",
                  depends_on=[]).build())
    faults = FaultModel.parse("fail")
    check_independence(saga, faults)  # the right one holds (compensations)
    orig = BranchIndependence.__init__

    def never_ends(self: BranchIndependence, *a: Any, **k: Any) -> None:
        orig(self, *a, **k)
        self.can_end = (False,) * self.n

    monkeypatch.setattr(BranchIndependence, "__init__", never_ends)
    with pytest.raises(AssertionError, match="header changed"):
        check_independence(saga, faults)


# --- parity -------------------------------------------------------------------
def test_branch_por_parity_single_fast() -> None:
    _run_single(range(60))


def test_branch_por_parity_two_instances_fast() -> None:
    _run_many(range(12, 24))


def test_branch_por_with_symmetry_parity_two_instances_fast() -> None:
    _run_many(range(12, 24), symmetry=True)


@pytest.mark.slow
def test_branch_por_parity_single_300_cases() -> None:
    _run_single(range(3000, 3300))


@pytest.mark.slow
def test_branch_por_parity_two_instances_60_cases() -> None:
    _run_many(range(4000, 4060))


@pytest.mark.slow
def test_branch_por_with_symmetry_parity_two_instances_60_cases() -> None:
    _run_many(range(4000, 4060), symmetry=True)


@pytest.mark.slow
def test_local_moves_commute_on_120_generated_dags() -> None:
    checked = 0
    for seed in range(5000, 5120):
        saga, faults = single_case(seed)
        checked += check_independence(saga, faults)
    assert checked > 500, checked


def _always(ind: BranchIndependence, state: sem.State, i: int,
            events: Any) -> bool:
    """The seeded bug: every step counts as stable, so a step's moves are
    followed alone while another step may still abort."""
    return True


def _header_blind(self: BranchIndependence, before: sem.State,
                  event: sem.Event, after: sem.State) -> bool:
    """The seeded bug: a move that changes the header (an abort) counts as
    local, so the other steps' moves are postponed past it."""
    return event.step >= 0 and event.kind is not sem.EventKind.DUPLICATE


def cancelled_sibling() -> Saga:
    """``hold`` is retried until it succeeds and needs its reply to be
    compensated; ``pay`` runs beside it and may fail for good. Only an abort
    while ``hold`` is in flight cancels it with an unknown outcome, whose
    compensation can then only fail: STUCK. Every other order is
    consistent, so a reduction that postpones ``pay``'s failure past
    ``hold``'s moves (or ``hold``'s dispatch past the abort) loses the
    violation."""
    return (SagaBuilder("sibling")
            .step("hold", participant="p", action="hold", compensation="free",
                  retry={"max_attempts": "forever"}, timeout=5.0,
                  compensation_needs_result=True)
            .step("pay", participant="q", action="pay", compensation="refund",
                  depends_on=[])
            .compensation_policy(max_attempts=2)
            .build())


def test_wrong_independence_breaks_parity(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Both ways: the right predicates reduce and keep the verdict; a wrong
    # stability (another step's abort ignored) or a wrong locality (an abort
    # counted local) loses the only violating interleaving.
    faults = FaultModel.parse("fail")
    wrong, full, red, violated = compare_one(cancelled_sibling(), faults)
    assert not wrong and violated and red < full, (wrong, full, red)
    assert compare_one(cancelled_sibling(), faults, stable=_always)[0] == [
        "eventual_consistency: violated unreduced, holds reduced"]
    monkeypatch.setattr(BranchIndependence, "local", _header_blind)
    assert compare_one(cancelled_sibling(), faults)[0] == [
        "eventual_consistency: violated unreduced, holds reduced"]


def test_wrong_locality_breaks_parity_in_compositions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The same inside two instances: the reduction between branches reduces
    # further than the one between instances alone and keeps the verdict;
    # an abort counted local loses the violation.
    faults = FaultModel.parse("fail")
    sagas = [cancelled_sibling()] * 2
    wrong, _, red, violated = compare_many(sagas, faults)
    assert not wrong and violated and red < _instances_only(sagas, faults)
    monkeypatch.setattr(BranchIndependence, "local", _header_blind)
    assert compare_many(sagas, faults)[0] == [
        "eventual_consistency: violated unreduced, holds reduced"]


def late_after_compensation() -> Saga:
    """``b0`` may time out twice (its first command still in the network)
    and abort; ``b1`` runs beside it. The late command takes effect after
    ``b0`` is compensated only if it arrives before ``b1``'s compensation
    ends the saga: a composition offers no move of an ended instance."""
    return (SagaBuilder("late")
            .step("b0", participant="p", action="do", compensation="undo",
                  retry={"max_attempts": 2}, timeout=5.0)
            .step("b1", participant="q", action="do", compensation="undo",
                  depends_on=[])
            .build())


@pytest.mark.parametrize("k", [1, 2])
def test_the_end_of_an_instance_stops_late_deliveries(
        k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by bench/por_bench.py --branches (a wide DAG, K = 2, timeout and
    # late): in a composition the last compensation, which b1's becomes
    # once b0's is done, disables b0's late delivery, so it is dependent on
    # it. Both ways: with that dependency the verdict is kept; without it
    # (the single semantics' view, where a late delivery stays enabled in
    # terminal states) the violation is lost.
    faults = FaultModel.parse("timeout,late")
    sagas = [late_after_compensation()] * k
    wrong, _, _, violated = compare_many(sagas, faults)
    assert not wrong and violated, wrong
    orig = BranchIndependence.__init__

    def single_view(self: BranchIndependence, *a: Any, **kw: Any) -> None:
        orig(self, *a, **kw)
        self.end_stops_late = False

    monkeypatch.setattr(BranchIndependence, "__init__", single_view)
    assert compare_many(sagas, faults)[0] == [
        "eventual_consistency: violated unreduced, holds reduced"]
    monkeypatch.undo()
    # One saga alone keeps the late delivery after its end: nothing to lose.
    assert compare_one(sagas[0], faults)[0] == []


# --- examples, the API and the command line ----------------------------------
ORDER = ROOT / "examples" / "order_saga.yaml"


@pytest.mark.parametrize("faults", ["none", "timeout,late", "comp_fail",
                                    "fail,timeout,comp_fail,late,duplicate"])
def test_order_saga_is_reduced_and_exact(faults: str) -> None:
    saga = load(ORDER)
    assert isinstance(saga, Saga)
    wrong, full, red, _ = compare_one(saga, FaultModel.parse(faults))
    assert not wrong and red < full, (wrong, full, red)


def test_nothing_is_reduced_while_a_crash_is_left() -> None:
    # A crash disables every other move: it is dependent on all of them.
    saga = load(ORDER)
    assert isinstance(saga, Saga)
    ts = ReducedSagaTransitionSystem(saga, FaultModel.parse("crash=1"))
    s0 = ts.initial()[0]
    succ = ts.successors(s0)
    assert ts.reduce_successors(s0, succ, lambda t: False) == succ


def test_check_reports_por_on_one_saga() -> None:
    plain = check(ORDER, faults="fail,timeout,comp_fail,late,duplicate")
    res = check(ORDER, faults="fail,timeout,comp_fail,late,duplicate", por=True)
    by = {r.property: r for r in res.results}
    assert "reductions=por" in by["eventual_consistency"].fault_model
    assert "reductions" not in by["termination"].fault_model
    assert (by["eventual_consistency"].stats.states
            < {r.property: r for r in plain.results}[
                "eventual_consistency"].stats.states)
    for r in plain.results:
        assert by[r.property].verdict is r.verdict


def test_check_por_keeps_a_violation_shortest() -> None:
    # Parallel branches, one of which is not compensable once it took
    # effect twice (a duplicate): violated both ways, same length.
    saga = (SagaBuilder("dup").step("a", participant="p", action="x",
                                    compensation="u", idempotent=False)
            .step("b", participant="q", action="y", compensation="v",
                  depends_on=[])
            .step("c", participant="r", action="z", compensation="w",
                  depends_on=[])
            .build())
    plain = {r.property: r for r in check(saga, faults="duplicate").results}
    red = {r.property: r for r in check(saga, faults="duplicate",
                                        por=True).results}
    cex = plain["eventual_consistency"].counterexample
    assert plain["eventual_consistency"].verdict is Verdict.VIOLATED
    assert red["eventual_consistency"].verdict is Verdict.VIOLATED
    got = red["eventual_consistency"].counterexample
    assert cex is not None and got is not None and len(got) == len(cex)


def test_cli_por_on_one_saga() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sagaproof", "check", "--no-progress",
         str(ORDER.relative_to(ROOT)), "--faults", "none", "--por"],
        capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    assert "reductions=por" in out.stdout


def test_ample_sets_take_one_step_of_one_instance() -> None:
    # Inside a composition, the ample set between branches is every move of
    # one step of one instance, and nothing else.
    saga = load(ORDER)
    assert isinstance(saga, Saga)
    ts = MultiSagaTransitionSystem([saga, saga], FaultModel.parse("none"),
                                   por=True)
    assert isinstance(ts.por, AmpleSets)
    branch = 0
    for _, succ, kept in reduced_moves(ts):
        steps = {(ev.instance, ev.event.step) for ev, _ in kept}
        if len(steps) == 1 and len({ev.instance for ev, _ in succ}) == 1:
            i, b = steps.pop()
            assert kept == [x for x in succ if (x[0].instance, x[0].event.step)
                            == (i, b)]
            branch += 1
    assert branch > 0

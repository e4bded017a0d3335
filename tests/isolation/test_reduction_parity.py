"""Symmetry reduction keeps every verdict and every shortest counterexample.

Generated cases (seeded): small sagas over one or two counters, with guards,
reads, writes from locals, commutative and buggy compensations, sometimes a
semantic lock; two or three instances, sometimes of two different sagas (only
identical instances are permuted). Each case is explored unreduced and reduced;
the verdicts and the counterexample lengths must be equal.
"""

from __future__ import annotations

import itertools
import random

from saga_models import FaultModel, Saga, SagaBuilder
from verifier import PropertyResult, Verdict
from verifier._explicit import explore
from verifier._multi_ts import MultiSagaTransitionSystem

FAULTS = ("fail", "fail,timeout", "fail,comp_fail", "fail,crash=1")


Effects = dict[str, object]


def basic_effects(rng: random.Random, shape: int, r: str, written: str, *,
                  has_local: bool) -> tuple[Effects, Effects, bool]:
    """The (action effect, compensation effect) of shape 0 to 3 on resource
    ``r`` (a guarded take, a read into the local ``seen``, a write of
    ``written`` from that local once read, a compensation that may undo too
    much), none for other shapes; and whether ``seen`` is read by now."""
    if shape == 0:
        return ({"guard": f"{r} >= 1", "update": {r: f"{r} - 1"}},
                {"update": {r: f"{r} + 1"}}, has_local)
    if shape == 1:
        return {"read": {"seen": r}}, {}, True
    if shape == 2 and has_local:
        return ({"update": {written: "seen - 1"}},
                {"update": {written: f"{written} + 1"}}, has_local)
    if shape == 3:
        return ({"update": {r: f"{r} + 1"}},
                {"update": {r: f"{r} - {rng.choice([1, 1, 2])}"}}, has_local)
    return {}, {}, has_local


def generated_saga(rng: random.Random, name: str) -> Saga:
    """A random small saga with resource effects."""
    res = ["a", "b"][: rng.randint(1, 2)]
    b = SagaBuilder(name)
    for r in res:
        b.resource(r, initial=rng.randint(0, 2))
    steps = rng.randint(1, 3)
    has_local = False
    for j in range(steps):
        r = rng.choice(res)
        effect, comp, has_local = basic_effects(rng, rng.randrange(5), r, "a",
                                                has_local=has_local)
        pivot = j == steps - 1 and rng.random() < 0.5
        b.step(f"s{j}", participant="p", action="do",
               compensation=None if pivot else "undo",
               kind="pivot" if pivot else "compensatable",
               retry={"max_attempts": rng.choice([1, 2])},
               timeout=rng.choice([None, 5.0]),
               effect=effect or None,
               compensation_effect=None if pivot else (comp or None))
    if rng.random() < 0.2:
        b.semantic_lock(res[0])
    if rng.random() < 0.3:
        b.invariant("small", f"{res[0]} <= 3")
    return b.build()


def case(seed: int) -> tuple[list[Saga], FaultModel]:
    rng = random.Random(seed)
    one = generated_saga(rng, "x")
    if rng.random() < 0.25:
        two = generated_saga(rng, "y")
        # Two different sagas share the resources only if they start alike.
        two_ok = {r.name: r.initial for r in two.resources}
        if all(two_ok.get(r.name, r.initial) == r.initial for r in one.resources):
            return [one, one, two], FaultModel.parse("fail")
    k = rng.choice([2, 2, 3])
    return [one] * k, FaultModel.parse(rng.choice(FAULTS[:2] if k == 3 else FAULTS))


def unreduced(sagas: list[Saga], faults: FaultModel,
              names: list[str]) -> dict[str, PropertyResult]:
    """The unreduced search's result of each property in ``names``."""
    full = MultiSagaTransitionSystem(sagas, faults)
    return {r.property: r for r in explore(full, properties=names)}


def compare(seed: int, *, full: dict[str, PropertyResult] | None = None
            ) -> tuple[int, int, bool]:
    """Explore both ways; return (full states, reduced states, any violation).
    ``full``: the unreduced results of case ``seed``, when a caller that
    compares other reductions on the same case has them already."""
    sagas, faults = case(seed)
    reduced = MultiSagaTransitionSystem(sagas, faults, symmetry=True)
    names = [p.name for p in reduced.properties]
    a = unreduced(sagas, faults, names) if full is None else full
    assert sorted(a) == sorted(names), (seed, sorted(a))
    b = {r.property: r for r in explore(reduced, properties=names)}
    wrong, violated = disagreements(names, a, b)
    assert not wrong, (seed, wrong)
    return a[names[0]].stats.states, b[names[0]].stats.states, violated


def disagreements(names: list[str], a: dict[str, PropertyResult],
                  b: dict[str, PropertyResult]) -> tuple[list[str], bool]:
    """How the reduced results ``b`` differ from the unreduced ``a`` (verdict,
    whether there is a counterexample, its length), one line each, and
    whether any property is violated. Every reduction's parity suite judges
    with it; an unknown unreduced verdict is a broken case, not a pass."""
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
    return wrong, violated


def _run(seeds: range) -> None:
    outcomes = [compare(s) for s in seeds]
    # Meaningful cases: some violate something, some reduce the state count.
    assert any(v for _, _, v in outcomes)
    assert any(r < f for f, r, _ in outcomes)


def test_symmetry_parity_fast() -> None:
    _run(range(40))


# The slow tier's 300 symmetry cases (seeds 1000-1299) are compared in
# tests/isolation/test_por_parity.py::test_reductions_parity_300_cases, with
# partial-order reduction on the same cases: each case is explored unreduced
# once for the three reductions.


def test_reduced_counterexample_keeps_instance_ids() -> None:
    # The replayed trace is one real execution: every line's state follows
    # from the previous one by the printed instance's event.
    sagas, faults = case(3)
    while True:
        reduced = MultiSagaTransitionSystem(sagas, faults, symmetry=True)
        res = [r for r in explore(reduced) if r.counterexample is not None]
        if res:
            break
        sagas, faults = case(len(sagas) + 7)
    steps = res[0].counterexample.steps  # type: ignore[union-attr]
    for prev, step in itertools.pairwise(steps):
        assert step.event is not None
        who = step.event["instance"]
        before, after = prev.state["instances"], step.state["instances"]
        for inst_b, inst_a in zip(before, after, strict=True):
            if inst_b["instance"] != who:
                assert inst_b["steps"] == inst_a["steps"]


def test_symmetry_is_reported_and_termination_stays_unreduced() -> None:
    from pathlib import Path

    from verifier import check

    path = (Path(__file__).parents[2] / "examples" / "isolation"
            / "stock_dirty_read.saga.yaml")
    res = check(path, faults="fail", symmetry=True)
    by = {r.property: r for r in res.results}
    assert "reductions=symmetry" in by["no_dirty_read"].fault_model
    assert "reductions" not in by["termination"].fault_model
    assert by["termination"].verdict is Verdict.HOLDS
    plain = check(path, faults="fail")
    assert {r.property: r.verdict for r in plain.results} == {
        r.property: r.verdict for r in res.results}

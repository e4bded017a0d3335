"""Many instances over shared resources: the composition, the isolation
properties, each tested both ways, and the countermeasures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saga_models import InvalidDefinition, SagaBuilder, load, loads
from saga_models import semantics as sem
from saga_models.instances import Composition
from sagaproof.cli import main
from tests.expectations import expectation
from verifier import Verdict, check
from verifier._explicit import explore
from verifier._multi_ts import MultiSagaTransitionSystem
from verifier._saga_ts import SagaTransitionSystem

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "isolation")
                  .glob("*.yaml"))
ROOT = Path(__file__).parents[2]


def _reachable(ts: object) -> set[tuple[int, ...]]:
    seen: set[tuple[int, ...]] = set()
    todo = list(ts.initial())  # type: ignore[attr-defined]
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        todo.extend(n for _, n in ts.successors(s))  # type: ignore[attr-defined]
    return seen


def _stock_saga(*, guard: bool = True, undo: str = "stock + 1",
                lock: bool = False) -> SagaBuilder:
    b = (SagaBuilder("stock").resource("stock", initial=1).instances(2)
         .invariant("non_negative", "stock >= 0")
         .step("reserve", participant="inventory", compensation="release",
               effect={"guard": "stock >= 1", "update": {"stock": "stock - 1"}}
               if guard else {"update": {"stock": "stock - 1"}},
               compensation_effect={"update": {"stock": undo}})
         .step("charge", participant="payments", kind="pivot"))
    if lock:
        b.semantic_lock("stock")
    return b


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_isolation_examples_give_the_verdicts_they_promise(path: Path) -> None:
    result = check(path)
    violated = {r.property for r in result.results
                if r.verdict is Verdict.VIOLATED}
    assert violated == expectation(path).violated
    assert all(r.verdict is not Verdict.UNKNOWN for r in result.results)


def test_each_anomaly_has_a_broken_and_a_fixed_example() -> None:
    by_name = {p.name: expectation(p).violated for p in EXAMPLES}
    assert "no_dirty_read" in by_name["stock_dirty_read.saga.yaml"]
    assert by_name["stock_dirty_read_locked.saga.yaml"] == frozenset()
    assert {"no_lost_update", "conservation"} <= by_name[
        "seat_lost_update.saga.yaml"]
    assert by_name["seat_lost_update_commutative.saga.yaml"] == frozenset()
    assert not {"no_lost_update", "conservation"} & by_name[
        "seat_lost_update_reread.saga.yaml"]


def test_one_instance_without_effects_is_the_single_saga() -> None:
    # One semantics: a composition of one instance and no resources reaches
    # exactly the single saga's states (projected), under every fault.
    saga = load(ROOT / "examples" / "trip_booking.saga.yaml")
    comp = Composition((saga,))
    composed = {comp.single(s, 0) for s in _reachable(MultiSagaTransitionSystem(
        [saga]))}
    assert composed == _reachable(SagaTransitionSystem(saga))


def test_two_independent_instances_are_the_product() -> None:
    saga = (SagaBuilder("t").step("a", participant="p", compensation="u")
            .step("b", participant="q", kind="pivot").build())
    single = _reachable(SagaTransitionSystem(saga))
    comp = Composition((saga, saga))
    pairs = {(comp.single(s, 0), comp.single(s, 1))
             for s in _reachable(MultiSagaTransitionSystem([saga, saga]))}
    assert pairs == {(a, b) for a in single for b in single}


def test_a_false_guard_is_a_business_failure_not_an_ok() -> None:
    saga = _stock_saga().build()
    ts = MultiSagaTransitionSystem([saga, saga], sem.NO_FAULTS)
    for s in _reachable(ts):
        for label, nxt in ts.successors(s):
            took = ts.comp.resources_of(nxt)["stock"] < ts.comp.resources_of(s)[
                "stock"]
            if label.business:
                assert label.event.outcome is sem.Outcome.FATAL
                assert not took
            if took:
                assert ts.comp.resources_of(s)["stock"] >= 1


def test_declared_invariant_both_ways() -> None:
    holds = check(_stock_saga().build(), faults="fail")
    assert _verdict(holds, "invariant:non_negative") is Verdict.HOLDS
    broken = check(_stock_saga(guard=False).build(), faults="fail")
    res = _result(broken, "invariant:non_negative")
    assert res.verdict is Verdict.VIOLATED
    assert "stock=-1" in res.reason
    assert res.counterexample is not None
    assert res.counterexample.steps[-1].state["resources"] == {"stock": -1}


def test_conservation_both_ways() -> None:
    assert _verdict(check(_stock_saga().build()), "conservation") is Verdict.HOLDS
    # A compensation that gives back two units where one was taken.
    bad = check(_stock_saga(undo="stock + 2").build(), faults="fail")
    res = _result(bad, "conservation")
    assert res.verdict is Verdict.VIOLATED
    assert "stock=2, not 1" in res.reason


def test_semantic_lock_removes_the_dirty_read() -> None:
    broken = check(_stock_saga().build(), faults="fail")
    assert _verdict(broken, "no_dirty_read") is Verdict.VIOLATED
    fixed = check(_stock_saga(lock=True).build(), faults="fail")
    assert fixed.verdict is Verdict.HOLDS


def test_one_instance_cannot_read_dirty(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(ROOT / "examples" / "isolation" / "stock_dirty_read.saga.yaml")
    assert main(["check", path, "--no-progress", "--instances", "1"]) == 0
    assert main(["check", path, "--no-progress"]) == 1
    out = capsys.readouterr().out
    # Instance ids and resource values on every line of the counterexample.
    assert "[2] reserve: business failure (guard or lock refused)   [stock=0]" in out
    assert "[1] compensation of reserve: ok   [stock=1]" in out
    assert "=> instance 1 COMPENSATED, instance 2 FAILED" in out


def test_json_counterexample_names_instances_and_anomalies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = str(ROOT / "examples" / "isolation" / "seat_lost_update.saga.yaml")
    assert main(["check", path, "--no-progress", "--format", "json",
                 "--property", "no_lost_update"]) == 1
    (entry,) = json.loads(capsys.readouterr().out)
    (res,) = entry["results"]
    from verifier.itf import from_itf_value

    last = from_itf_value(res["counterexample"]["states"][-1])  # ITF
    assert last["event"]["instance"] in (1, 2)
    assert last["event"]["anomalies"][0].startswith("lost update")
    assert last["resources"] == {"seats": 1}


def test_instances_without_resources_keep_every_single_verdict() -> None:
    saga = load(ROOT / "examples" / "hotel_cancel_needs_id.yaml")
    one = check(saga)
    two = check(saga, instances=2)
    assert {r.property: r.verdict for r in two.results} == {
        r.property: r.verdict for r in one.results}


def test_the_smt_backend_does_not_answer_for_many_instances() -> None:
    saga = _stock_saga().build()
    with pytest.raises(ValueError, match="use --backend explicit"):
        check(saga, backend="smt")
    assert check(saga, backend="auto", faults="fail").verdict is Verdict.VIOLATED


def test_definitions_without_resources_keep_their_hash() -> None:
    saga = load(ROOT / "examples" / "trip_booking.saga.yaml")
    assert not {"resources", "instances", "invariants",
                "semantic_locks"} & set(saga.to_dict())
    assert "effect" not in saga.to_dict()["steps"][0]


def test_builder_and_file_make_the_same_ir() -> None:
    text = """
saga: stock
instances: 2
resources: {stock: {initial: 1}}
invariants: {non_negative: "stock >= 0"}
steps:
  - name: reserve
    participant: inventory
    compensation: release
    effect: {guard: "stock >= 1", update: {stock: "stock - 1"}}
    compensation_effect: {update: {stock: "stock + 1"}}
  - {name: charge, participant: payments, kind: pivot}
"""
    assert loads(text).to_dict() == _stock_saga().build().to_dict()


@pytest.mark.parametrize(("effect", "code"), [
    ('{guard: "stok >= 1"}', "SAGA161"),
    ('{update: {stock: "stock -"}}', "SAGA160"),
    ('{update: {stock: "orders.state"}}', "SAGA160"),
    ('{update: {seats: "1"}}', "SAGA161"),
    ('{read: {seen: seats}}', "SAGA161"),
    ('{update: {stock: "__import__(1)"}}', "SAGA160"),
])
def test_bad_effects_are_located_diagnostics(effect: str, code: str) -> None:
    text = ("saga: s\nresources: {stock: {initial: 1}}\nsteps:\n"
            f"  - {{name: a, participant: p, compensation: u, effect: {effect}}}\n")
    with pytest.raises(InvalidDefinition) as exc:
        loads(text)
    (d,) = exc.value.diagnostics
    assert d.code == code
    assert d.span.line == 4
    assert d.help


def test_a_guard_on_a_compensation_is_refused() -> None:
    with pytest.raises(InvalidDefinition) as exc:
        _stock_saga().step("x", participant="p", compensation="u",
                           compensation_effect={"guard": "stock >= 0"}).build()
    assert [d.code for d in exc.value.diagnostics] == ["SAGA162"]


def test_bad_resource_declarations_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("saga: s\nresources: {stock: {initial: many}}\n"
                    "semantic_locks: [seats]\ninstances: 0\n"
                    "steps:\n  - {name: a, participant: p, compensation: u}\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "SAGA124" in err or "SAGA127" in err
    assert "help:" in err


def test_values_out_of_range_are_reported_not_wrapped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("saga: s\nresources: {stock: {initial: 120}}\ninstances: 2\n"
                    "steps:\n  - {name: a, participant: p, compensation: u, "
                    "effect: {update: {stock: 'stock + 5'}}}\n")
    assert main(["check", str(path), "--no-progress"]) == 2
    assert "outside -128..127" in capsys.readouterr().err


def _result(res: object, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in res.results if r.property == name)  # type: ignore[attr-defined]


def _verdict(res: object, name: str) -> Verdict:
    return _result(res, name).verdict  # type: ignore[no-any-return]


def test_explore_reports_the_isolation_properties() -> None:
    ts = MultiSagaTransitionSystem([_stock_saga().build()] * 2)
    names = [r.property for r in explore(ts)]
    assert names[-4:] == ["conservation", "no_dirty_read", "no_lost_update",
                          "invariant:non_negative"]


@pytest.mark.parametrize("path", [
    ROOT / "examples" / "isolation" / "seat_lost_update.saga.yaml",
    ROOT / "examples" / "isolation" / "stock_dirty_read.saga.yaml",
], ids=lambda p: p.name)
def test_cached_successors_equal_the_direct_ones(path: Path) -> None:
    # Without locks or anomaly history, per-instance moves are memoised; the
    # memo must give exactly the successors the direct computation gives.
    saga = load(path)
    cached = Composition((saga, saga), track_anomalies=False)
    direct = Composition((saga, saga), track_anomalies=False)
    assert cached._local
    seen = {cached.initial()}
    todo = list(seen)
    while todo:
        s = todo.pop()
        succ = cached.successors(s)
        assert succ == direct._successors(s)
        for _, t in succ:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    assert len(seen) > 100


def test_a_cached_step_with_a_resource_effect_is_refused() -> None:
    text = ("saga: s\nresources: {stock: {initial: 1}}\nsteps:\n"
            "  - {name: a, participant: p, action: x, read_only: true,\n"
            "     cache_ttl: 30s, effect: {read: {seen: stock}}}\n")
    with pytest.raises(InvalidDefinition) as exc:
        loads(text)
    (d,) = exc.value.diagnostics
    assert d.code == "SAGA164"
    assert "cache_ttl" in d.help


def test_initial_value_beyond_the_state_field_is_refused(tmp_path: Path) -> None:
    from saga_models import InvalidDefinition, load

    path = tmp_path / "big.saga.yaml"
    path.write_text("saga: big\nresources:\n  seats: {kind: counter, initial: 300}\n"
                    "steps:\n  - {name: a, participant: p, action: x, "
                    "compensation: y}\n")
    with pytest.raises(InvalidDefinition) as info:
        load(path)
    assert [d.code for d in info.value.diagnostics] == ["SAGA165"]
    path.write_text(path.read_text().replace("300", "100"))
    assert load(path).resources[0].initial == 100

"""Records keyed by instance: each instance has its own row and version.

Both ways: the shipped lost-update model on one shared order row is violated;
the same model with the row keyed by instance (``key: instance``) holds, and
its moves on the row are local for partial-order reduction. Bad declarations
get located diagnostics (SAGA153, SAGA154, SAGA173).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from saga_models import FaultModel, InvalidDefinition, SagaBuilder, load
from saga_models.instances import Composition
from verifier import Verdict, check
from verifier._multi_ts import MultiSagaTransitionSystem

from .test_por_parity import compare

ROOT = Path(__file__).parents[2]
SHARED = ROOT / "examples" / "isolation" / "order_lost_update.saga.yaml"
ROW = "order: {kind: record, fields: {total: 0}}"


def _per_instance(tmp_path: Path, row: str = ROW.replace(
        "record,", "record, key: instance,")) -> Path:
    """The shipped lost-update model with its order row declared ``row``."""
    text = SHARED.read_text()
    assert ROW in text
    path = tmp_path / "per_instance.saga.yaml"
    path.write_text(text.replace(ROW, row))
    return path


def _verdicts(path: Path, **kw: object) -> dict[str, Verdict]:
    return {r.property: r.verdict
            for r in check(path, faults="fail", **kw).results}  # type: ignore[arg-type]


def test_a_shared_row_loses_an_update_a_row_per_instance_does_not(
        tmp_path: Path) -> None:
    shared = _verdicts(SHARED)
    assert shared["no_lost_update"] is Verdict.VIOLATED
    assert shared["conservation"] is Verdict.VIOLATED
    mine = _verdicts(_per_instance(tmp_path))
    assert all(v is Verdict.HOLDS for v in mine.values()), mine


def test_each_instance_has_its_own_row_and_version(tmp_path: Path) -> None:
    saga = load(_per_instance(tmp_path))
    comp = Composition((saga, saga), faults=FaultModel.parse("none"))
    assert comp.resource_names == ("order[1].total", "order[1].version",
                                   "order[2].total", "order[2].version")
    # Run instance 1 alone to its end: only its row moves, version included.
    state = comp.initial()
    while not comp.ended(comp.single(state, 0)):
        state = next(t for ev, t in comp.successors(state) if ev.instance == 0)
    assert comp.resources_of(state) == {
        "order[1].total": 1, "order[1].version": 1,
        "order[2].total": 0, "order[2].version": 0}


def test_moves_on_rows_per_instance_are_local(tmp_path: Path) -> None:
    saga = load(_per_instance(tmp_path))
    comp = Composition((saga, saga), faults=FaultModel.parse("fail"))
    assert comp.footprint(0) == comp.footprint(1) == ()
    assert not comp.end_seen(0)
    wrong, full, red, _ = compare([saga, saga], FaultModel.parse("fail"))
    assert not wrong and red < full / 2, (full, red)
    # The shared row keeps its moves interleaved.
    shared = load(SHARED)
    assert Composition((shared, shared)).footprint(0)


def test_a_row_per_instance_next_to_a_shared_counter() -> None:
    # The per-instance row is local; the shared stock is not, and its
    # dirty read is still found (with and without the reduction).
    saga = (SagaBuilder("order").instance_record("order", total=0)
            .resource("stock", initial=1)
            .step("add", participant="o", action="add", compensation="remove",
                  effect={"update": {"order.total": "order.total + 1"}},
                  compensation_effect={"update": {
                      "order.total": "order.total - 1"}})
            .step("take", participant="s", action="take", compensation="back",
                  depends_on=["add"],
                  effect={"guard": "stock >= 1", "update": {"stock": "stock - 1"}},
                  compensation_effect={"update": {"stock": "stock + 1"}})
            .step("pay", participant="p", action="pay", kind="pivot",
                  depends_on=["take"])
            .build())
    faults = FaultModel.parse("fail")
    wrong, full, red, violated = compare([saga, saga], faults)
    assert not wrong and violated and red < full
    ts = MultiSagaTransitionSystem([saga, saga], faults)
    comp = ts.comp
    take = comp.counter_position(1)
    assert comp.footprint(0) == (take,)
    res = {r.property: r for r in check(saga, faults="fail",
                                        instances=2).results}
    assert res["no_dirty_read"].verdict is Verdict.VIOLATED
    assert res["conservation"].verdict is Verdict.HOLDS


def test_an_invariant_holds_for_every_instances_row() -> None:
    # Seeded bug: the second instance's row is the one that breaks it (each
    # adds 1 to its own row, then a buggy compensation takes 2).
    def saga(undo: str) -> object:
        return (SagaBuilder("o").instance_record("order", total=0)
                .step("add", participant="o", action="add",
                      compensation="remove",
                      effect={"update": {"order.total": "order.total + 1"}},
                      compensation_effect={"update": {
                          "order.total": f"order.total - {undo}"}})
                .step("pay", participant="p", action="pay", kind="pivot",
                      depends_on=["add"])
                .invariant("non_negative", "order.total >= 0")
                .build())

    for undo, verdict in (("1", Verdict.HOLDS), ("2", Verdict.VIOLATED)):
        s = saga(undo)
        res = {r.property: r for r in check(s, faults="fail", instances=2,
                                             por=True).results}
        got = res["invariant:non_negative"]
        assert got.verdict is verdict, (undo, got.reason)
        if verdict is Verdict.VIOLATED:
            assert "order[1].total=-1" in got.reason, got.reason


def test_symmetry_is_off_with_rows_per_instance(tmp_path: Path) -> None:
    path = _per_instance(tmp_path)
    res = check(path, faults="fail", symmetry=True)
    assert all("symmetry" not in r.fault_model for r in res.results)
    assert {r.property: r.verdict for r in res.results} == _verdicts(path)


def _load_codes(path: Path) -> list[tuple[str, int]]:
    with pytest.raises(InvalidDefinition) as info:
        load(path)
    return [(d.code, d.span.line) for d in info.value.diagnostics]


def test_a_key_on_a_counter_is_refused_where_it_is_written(
        tmp_path: Path) -> None:
    path = tmp_path / "k.saga.yaml"
    path.write_text("saga: k\nresources:\n  stock: {initial: 1, key: instance}\n"
                    "steps:\n  - {name: a, participant: p, compensation: u,\n"
                    "     effect: {update: {stock: 'stock - 1'}}}\n")
    assert ("SAGA153", 3) in _load_codes(path)
    out = subprocess.run([sys.executable, "-m", "sagaproof", "check",
                          "--no-progress", str(path)], capture_output=True,
                         text=True, cwd=ROOT, check=False)
    assert out.returncode == 2
    assert "SAGA153" in out.stderr and "help" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unknown_key_is_a_schema_error(tmp_path: Path) -> None:
    path = _per_instance(tmp_path, ROW.replace("record,", "record, key: row,"))
    # Located on the row's line (the effects that name the dropped row
    # are reported as well).
    assert _load_codes(path)[0] == ("SAGA125", 9)


@pytest.mark.parametrize("extra", [
    "semantic_locks: [order]\n", "pessimistic_view: [order]\n"])
def test_a_lock_on_a_row_per_instance_is_refused(tmp_path: Path,
                                                 extra: str) -> None:
    path = _per_instance(tmp_path)
    path.write_text(path.read_text().replace("steps:\n", extra + "steps:\n"))
    assert [c for c, _ in _load_codes(path)] == ["SAGA154"]


def test_by_value_on_a_row_per_instance_is_refused() -> None:
    with pytest.raises(InvalidDefinition) as info:
        (SagaBuilder("b").instance_record("order", total=0)
         .step("a", participant="p", compensation="u",
               effect={"update": {"order.total": "order.total + 1"},
                       "by_value": {"high_risk": "order.total >= 0",
                                    "lock": ["order"]}})
         .build())
    assert [d.code for d in info.value.diagnostics] == ["SAGA154"]


def test_a_scenario_declares_the_key_alike(tmp_path: Path) -> None:
    body = ("saga: {name}\nresources:\n  order: {{kind: record, {key}"
            "fields: {{total: 0}}}}\nsteps:\n  - {{name: a, participant: p, "
            "compensation: u,\n     effect: {{update: {{order.total: "
            "'order.total + 1'}}}},\n     compensation_effect: {{update: "
            "{{order.total: 'order.total - 1'}}}}}}\n")
    (tmp_path / "a.yaml").write_text(body.format(name="a", key="key: instance, "))
    (tmp_path / "b.yaml").write_text(body.format(name="b", key=""))
    path = tmp_path / "s.scenario.yaml"
    path.write_text("scenario: s\nsagas:\n  - {path: a.yaml}\n"
                    "  - {path: b.yaml}\n")
    with pytest.raises(InvalidDefinition) as info:
        load(path, scenarios=True)
    (d,) = info.value.diagnostics
    assert d.code == "SAGA173" and "keyed by instance" in d.message

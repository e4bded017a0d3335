"""Loading and validating workflow definitions: every WF1xx code, located."""

from __future__ import annotations

import pytest

import saga_models.workflow as wfpkg
from saga_models import InvalidDefinition, loads
from saga_models.workflow import (
    Delivery,
    ExprError,
    Order,
    Workflow,
    WorkflowBuilder,
    parse_expr,
)
from saga_models.workflow import semantics as sem

SPEC = """\
workflow: order_choreography
bus: {delivery: at_least_once, order: unordered}
start: [order_placed]
services:
  orders:
    initial: NEW
    final: [APPROVED, REJECTED]
    dedup: false
    transitions:
      - {from: NEW, on: order_placed, to: PENDING, emit: [reserve_credit]}
      - {from: PENDING, on: credit_reserved, to: APPROVED}
      - {from: PENDING, on: credit_limit_exceeded, to: REJECTED}
  customers:
    initial: IDLE
    transitions:
      - from: IDLE
        on: reserve_credit
        choose:
          - {to: RESERVED, emit: [credit_reserved]}
          - {to: IDLE, emit: [credit_limit_exceeded]}
    ignore: []
outcomes:
  - {orders: APPROVED, customers: RESERVED}
  - {orders: REJECTED, customers: IDLE}
"""


def codes(text: str) -> list[str]:
    with pytest.raises(InvalidDefinition) as info:
        loads(text, file="w.yaml")
    return [d.code for d in info.value.diagnostics]


def structure_codes(text: str) -> list[str]:
    """Definition bugs: the file loads, and the rules name them (the
    ``structure`` verdict; docs/errors.md)."""
    wf = loads(text, file="w.yaml")
    assert isinstance(wf, Workflow)
    return [d.code for d in wfpkg.structure_diagnostics(wf)]


def test_the_issue_vocabulary_loads() -> None:
    wf = loads(SPEC, file="w.yaml")
    assert isinstance(wf, Workflow)
    assert wf.bus.delivery is Delivery.AT_LEAST_ONCE
    assert wf.bus.order is Order.UNORDERED
    assert wf.start == ("order_placed",)
    customers = wf.service("customers")
    (t,) = customers.transitions
    assert t.choose and [b.to for b in t.branches] == ["RESERVED", "IDLE"]
    assert wf.subscribers("reserve_credit") == ("customers",)
    assert t.span.line == 16  # spans point into the file
    assert wf.outcomes[1].describe() == "orders=REJECTED, customers=IDLE"


def test_json_works_too() -> None:
    import json

    from saga_models._source import parse_document

    # Not yaml.safe_load: YAML 1.1 would read the key 'on' as true.
    wf = loads(json.dumps(parse_document(SPEC).data), fmt="json")
    assert isinstance(wf, Workflow) and wf.source_format == "json"


def test_builder_matches_the_file() -> None:
    built = (
        WorkflowBuilder("order_choreography", delivery="at_least_once")
        .start("order_placed")
        .service("orders", initial="NEW", final=["APPROVED", "REJECTED"])
        .on("NEW", "order_placed", to="PENDING", emit=["reserve_credit"])
        .on("PENDING", "credit_reserved", to="APPROVED")
        .on("PENDING", "credit_limit_exceeded", to="REJECTED")
        .service("customers", initial="IDLE")
        .on("IDLE", "reserve_credit", choose=[
            {"to": "RESERVED", "emit": ["credit_reserved"]},
            {"to": "IDLE", "emit": ["credit_limit_exceeded"]}])
        .outcome(orders="APPROVED", customers="RESERVED")
        .outcome(orders="REJECTED", customers="IDLE")
        .build()
    )
    from_file = loads(SPEC)
    assert built.events == from_file.events
    for a, b in zip(built.services, from_file.services, strict=True):
        assert (a.name, a.states, a.final) == (b.name, b.states, b.final)
        assert [(t.source, t.on, [(x.to, x.emit) for x in t.branches])
                for t in a.transitions] == [
            (t.source, t.on, [(x.to, x.emit) for x in t.branches])
            for t in b.transitions]


def test_builder_rejects_like_the_loader() -> None:
    with pytest.raises(InvalidDefinition) as info:
        (WorkflowBuilder("w").start("go").service("a", initial="X", final=["Y"])
         .on("X", "go", to="Y").timer("X", 1, to="Y").timer("X", 2, to="X")
         .build())
    assert "WF113" in {d.code for d in info.value.diagnostics}
    wf = (WorkflowBuilder("w").start("go").service("a", initial="X", final=["Y"])
          .on("X", "go", to="Y").on("Y", "go", to="X").build())
    assert "WF105" in {d.code for d in wfpkg.structure_diagnostics(wf)}


@pytest.mark.parametrize(("edit", "code"), [
    (("  orders:\n", "  orders:\n    colour: red\n"), "WF101"),
    (("    initial: NEW\n", ""), "WF102"),
    (("final: [APPROVED, REJECTED]", "final: [APPROVED, REJECTED, GONE]"), "WF103"),
    (("  - {orders: REJECTED, customers: IDLE}", "  - {order: REJECTED}"),
     "WF109"),
    (("    dedup: false\n", "    dedup: maybe\n"), "WF102"),
    (("order: unordered", "order: random"), "WF112"),
])
def test_each_lowering_code(edit: tuple[str, str], code: str) -> None:
    old, new = edit
    assert old in SPEC
    assert code in codes(SPEC.replace(old, new, 1))


@pytest.mark.parametrize(("edit", "code"), [
    (("on: credit_reserved,", "on: credit_resrved,"), "WF104"),
    (("start: [order_placed]", "start: []"), "WF115"),
])
def test_each_structure_code(edit: tuple[str, str], code: str) -> None:
    old, new = edit
    assert old in SPEC
    assert structure_codes(SPEC) == []
    assert code in structure_codes(SPEC.replace(old, new, 1))


def test_final_with_outgoing_transition() -> None:
    text = SPEC.replace(
        "      - {from: PENDING, on: credit_limit_exceeded, to: REJECTED}\n",
        "      - {from: PENDING, on: credit_limit_exceeded, to: REJECTED}\n"
        "      - {from: APPROVED, on: credit_limit_exceeded, to: REJECTED}\n")
    assert "WF105" in structure_codes(text)


def test_two_transitions_on_one_state_and_event() -> None:
    text = SPEC.replace(
        "      - {from: PENDING, on: credit_reserved, to: APPROVED}\n",
        "      - {from: PENDING, on: credit_reserved, to: APPROVED}\n"
        "      - {from: PENDING, on: credit_reserved, to: REJECTED}\n")
    assert "WF106" in structure_codes(text)
    guarded = text.replace("{from: PENDING, on: credit_reserved, to: APPROVED}",
                           "{from: PENDING, on: credit_reserved, to: APPROVED, "
                           "guard: 'true'}")
    assert isinstance(loads(guarded), Workflow)


def test_emitted_event_nobody_handles() -> None:
    text = SPEC.replace("to: APPROVED}", "to: APPROVED, emit: [ship]}")
    wf = loads(text, file="w.yaml")
    assert isinstance(wf, Workflow)
    (d,) = [d for d in wfpkg.structure_diagnostics(wf) if d.code == "WF107"]
    assert "'ship'" in d.message and d.span.line == 11


def test_unreachable_state() -> None:
    text = SPEC.replace("    final: [APPROVED, REJECTED]\n",
                        "    final: [APPROVED, REJECTED]\n"
                        "    states: [PENDING, APPROVED, REJECTED, ARCHIVED]\n")
    assert structure_codes(text) == ["WF108"]


def test_counters_and_expressions_are_checked() -> None:
    text = SPEC.replace("to: APPROVED}", "to: APPROVED, add: {charges: 1}}")
    assert "WF111" in codes(text)
    text = SPEC + "invariants: ['charges <= 1', 'ordrs.state == \"NEW\"']\n"
    assert codes(text).count("WF110") == 2
    assert "WF110" in codes(SPEC + "invariants: ['__import__(\"os\")']\n")


def test_two_timers_in_one_state() -> None:
    text = SPEC.replace(
        "      - {from: PENDING, on: credit_reserved, to: APPROVED}\n",
        "      - {from: PENDING, on: credit_reserved, to: APPROVED}\n"
        "      - {from: PENDING, after: 30s, to: REJECTED}\n"
        "      - {from: PENDING, after: 60s, to: REJECTED}\n")
    assert "WF113" in codes(text)


def test_yaml_boolean_state_name_gets_a_hint() -> None:
    with pytest.raises(InvalidDefinition) as info:
        loads(SPEC.replace("initial: NEW", "initial: ON").replace(
            "from: NEW", "from: 'ON'"))
    assert "quote the name" in info.value.render()


def test_every_problem_at_once() -> None:
    text = SPEC.replace("order: unordered", "order: random").replace(
        "  orders:\n", "  orders:\n    colour: red\n")
    assert sorted(codes(text)) == ["WF101", "WF112"]


@pytest.mark.parametrize("bad", [
    "x.y", "a[0]", "lambda: 1", "open('f')", "f'{x}'", "1.5 > x", "x if y else z",
    "(x := 1)", "orders.state.upper", "max(x, key=y)",
])
def test_expression_whitelist(bad: str) -> None:
    with pytest.raises(ExprError):
        parse_expr(bad)


def test_expression_evaluation() -> None:
    e = parse_expr("min(a, 2) + b * 2 >= 4 and s.state in ('X', 'Y') and not c")
    assert e.counters == {"a", "b", "c"} and e.services == {"s"}
    assert e.evaluate({"a": 5, "b": 1, "c": 0}, {"s": "Y"}) is True
    assert e.evaluate({"a": 5, "b": 0, "c": 0}, {"s": "Y"}) is False
    assert parse_expr("1 < a < 3").evaluate({"a": 2}, {}) is True
    assert parse_expr("-a == -2").evaluate({"a": 2}, {}) is True


def test_exports() -> None:
    # isidentifier: pytest's assertion rewriting (the project ships a pytest
    # plugin) adds '@py_builtins' to the modules of the distribution.
    public = {n for n in dir(wfpkg)
              if not n.startswith("_") and n.isidentifier()} - {
        "semantics"}
    assert set(wfpkg.__all__) == public


@pytest.mark.parametrize(("outcomes", "ok"), [(256, True), (257, False)])
def test_a_choice_wider_than_a_step_code_is_refused(outcomes: int,
                                                    ok: bool) -> None:
    """A step of the semantics kernel has 8 bits for the outcome of a
    ``choose``: 256 outcomes load, 257 are WF114 on the transition's line."""
    choose = [{"to": "IDLE"}] * outcomes
    b = (WorkflowBuilder("wide").start("go").service("s", initial="IDLE")
         .on("IDLE", "go", choose=choose))
    if ok:
        wf = b.build()
        assert len(wf.services[0].transitions[0].branches) == outcomes
        return
    with pytest.raises(InvalidDefinition) as info:
        b.build()
    codes = [d.code for d in info.value.diagnostics]
    assert codes == ["WF114"], codes
    assert "257 outcomes" in info.value.diagnostics[0].message


def _refused(b: WorkflowBuilder) -> str:
    with pytest.raises(InvalidDefinition) as info:
        b.build()
    codes = [d.code for d in info.value.diagnostics]
    assert codes == ["WF114"], codes
    return info.value.diagnostics[0].message


@pytest.mark.parametrize(("services", "ok"), [(1_000, True), (1_001, False)])
def test_more_services_than_a_step_code_holds_are_refused(services: int,
                                                          ok: bool) -> None:
    """A step code has 10 bits for the service (and 11 for a fifo sender, env
    being the last): 1,000 services load and every one's delivery decodes to
    it; 1,001 are WF114."""
    b = WorkflowBuilder("many", order="fifo").start("go")
    for i in range(services):
        b = b.service(f"s{i}", initial="IDLE").on("IDLE", "go", to="DONE")
    if not ok:
        assert "1001 services" in _refused(b)
        return
    wf = b.build()
    steps = sem.enabled(wf, sem.initial_state(wf))
    assert [(s.service, s.sender) for s in steps] == [
        (i, services) for i in range(services)]


@pytest.mark.parametrize(("transitions", "ok"), [(8_000, True), (8_001, False)])
def test_more_transitions_than_a_step_code_holds_are_refused(
        transitions: int, ok: bool) -> None:
    """A step code has 13 bits for the transition: with 8,000 the last one
    (the only one whose guard holds) is the step taken; 8,001 are WF114."""
    b = WorkflowBuilder("long").start("go").service("s", initial="IDLE")
    for _ in range(transitions - 1):
        b = b.on("IDLE", "go", guard="false", to="IDLE")
    b = b.on("IDLE", "go", to="DONE")
    if not ok:
        assert "8001 transitions" in _refused(b)
        return
    wf = b.build()
    init = sem.initial_state(wf)
    [step] = sem.enabled(wf, init)
    assert step.transition == transitions - 1
    assert sem.service_state(wf, sem.apply(wf, init, step), 0) == "DONE"

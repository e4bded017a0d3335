"""Scenario files (several different sagas with counts over shared resources)
and the pessimistic view countermeasure, each tested both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from saga_models import InvalidDefinition, SagaBuilder, Scenario, ScenarioMember, load
from sagaproof.cli import main
from tests.expectations import expectation
from verifier import CheckResult, PropertyResult, Verdict, check

ROOT = Path(__file__).parents[2]
ISOLATION = ROOT / "examples" / "isolation"


def _result(res: CheckResult, name: str) -> PropertyResult:
    return next(r for r in res.results if r.property == name)


def _create_order() -> SagaBuilder:
    return (SagaBuilder("create_order").resource("credit", initial=0)
            .step("reserve_credit", participant="customers",
                  compensation="release_credit",
                  effect={"guard": "credit >= 1",
                          "update": {"credit": "credit - 1"}},
                  compensation_effect={"update": {"credit": "credit + 1"}})
            .step("approve", participant="orders", kind="pivot"))


def _cancel_order(*, pessimistic: bool) -> SagaBuilder:
    """Cancel Order refunds credit; ``pessimistic`` puts the refund last, in
    a retriable step, else first, in a compensatable one (a seeded bug)."""
    b = (SagaBuilder("cancel_order").resource("credit", initial=0)
         .pessimistic_view("credit"))
    refund = {"update": {"credit": "credit + 1"}}
    if pessimistic:
        return (b.step("cancel_shipment", participant="shipping", kind="pivot")
                .step("refund_credit", participant="customers",
                      kind="retriable", retry={"max_attempts": "forever"},
                      effect=refund))
    return (b.step("refund_credit", participant="customers",
                   compensation="take_back", effect=refund,
                   compensation_effect={"update": {"credit": "credit - 1"}})
            .step("cancel_shipment", participant="shipping", kind="pivot"))


def _scenario(*sagas: SagaBuilder) -> Scenario:
    return Scenario(name="s", members=tuple(
        ScenarioMember(path=f"{i}.yaml", saga=b.build()) for i, b in
        enumerate(sagas)))


def test_pessimistic_view_both_ways() -> None:
    broken = check(_scenario(_create_order(), _cancel_order(pessimistic=False)),
                   faults="fail")
    res = _result(broken, "pessimistic_view:cancel_order.credit")
    assert res.verdict is Verdict.VIOLATED
    assert "not a pessimistic view of credit" in res.reason
    assert "'refund_credit'" in res.reason
    assert res.counterexample is not None
    assert _result(broken, "no_dirty_read").verdict is Verdict.VIOLATED
    # The order alone says so too: a structure rule, located at the step.
    structure = _result(broken, "structure")
    assert structure.verdict is Verdict.VIOLATED
    assert "SAGA179" in structure.reason and "'refund_credit'" in structure.reason
    alone = check(_cancel_order(pessimistic=False).build(), faults="fail")
    assert _result(alone, "structure").verdict is Verdict.VIOLATED
    assert (_result(alone, "pessimistic_view:credit").verdict
            is Verdict.HOLDS)  # nothing reads the credit: no anomaly yet
    fixed = check(_scenario(_create_order(), _cancel_order(pessimistic=True)),
                  faults="fail")
    assert fixed.verdict is Verdict.HOLDS
    assert (_result(fixed, "pessimistic_view:cancel_order.credit").verdict
            is Verdict.HOLDS)


def test_scenario_examples_are_broken_and_fixed() -> None:
    broken = expectation(ISOLATION / "credit_dirty_read.scenario.yaml").violated
    assert {"no_dirty_read", "structure",
            "pessimistic_view:cancel_order_early_refund.credit"} <= broken
    assert expectation(
        ISOLATION / "credit_pessimistic_view.scenario.yaml").violated == frozenset()
    # test_isolation checks every example's verdicts against these headers.


def test_a_scenario_composes_each_saga_count_times() -> None:
    scenario = load(ISOLATION / "credit_pessimistic_view.scenario.yaml",
                    scenarios=True)
    assert [s.name for s in scenario.sagas] == ["create_order", "cancel_order"]
    res = check(scenario, faults="fail")
    assert "instances=2" in res.results[0].fault_model


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


_SAGA = ("saga: {name}\nresources: {{credit: {{initial: {initial}}}}}\n"
         "steps:\n  - {{name: a, participant: p, compensation: u, "
         "effect: {{update: {{credit: 'credit + 1'}}}}}}\n")


@pytest.mark.parametrize(("body", "code", "line"), [
    ("sagas:\n  - {path: a.yaml, count: 1}\n  - {path: b.yaml}\n", "SAGA173", 4),
    ("sagas:\n  - {path: missing.yaml}\n", "SAGA172", 3),
    ("sagas:\n  - {path: wf.yaml}\n", "SAGA172", 3),
    ("sagas:\n  - {path: a.yaml, count: 0}\n", "SAGA171", 3),
    ("sagas:\n  - {path: a.yaml, cout: 2}\n", "SAGA171", 3),
    ("sagas:\n  - {path: a.yaml, count: 40}\n  - {path: a.yaml, count: 40}\n",
     "SAGA174", 3),
    ("sagas:\n  - {path: bad.yaml}\n", "SAGA161", 4),
    ("sagas:\n  - {path: a.yaml}\n  - {path: a2.yaml}\n", "SAGA178", 4),
])
def test_bad_scenarios_are_located_diagnostics(
    tmp_path: Path, body: str, code: str, line: int | None,
) -> None:
    _write(tmp_path, "a.yaml", _SAGA.format(name="a", initial=0))
    _write(tmp_path, "b.yaml", _SAGA.format(name="b", initial=3))
    _write(tmp_path, "a2.yaml", _SAGA.format(name="a", initial=0))
    _write(tmp_path, "bad.yaml", "saga: bad\nresources: {credit: {initial: 0}}\n"
           "steps:\n  - {name: a, participant: p, compensation: u, "
           "effect: {guard: 'credt >= 1'}}\n")
    _write(tmp_path, "wf.yaml", (ROOT / "examples" / "workflows" /
                                 "order_lifecycle.workflow.yaml").read_text())
    path = _write(tmp_path, "s.scenario.yaml", "scenario: s\n" + body)
    with pytest.raises(InvalidDefinition) as exc:
        load(path, scenarios=True)
    d = exc.value.diagnostics[0]
    assert d.code == code, exc.value.diagnostics
    assert d.help
    if line is not None:
        assert d.span.line == line
    if code == "SAGA173":
        assert "'a.yaml'" in d.message and "'b.yaml'" in d.message


def test_scenarios_in_the_cli(tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = str(ISOLATION / "credit_dirty_read.scenario.yaml")
    assert main(["check", path, "--no-progress", "--faults", "fail"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATED  pessimistic_view:cancel_order_early_refund.credit" in out
    assert main(["check", path, "--no-progress", "--instances", "2"]) == 2
    assert "SAGA175" in capsys.readouterr().err
    # Only the checker composes several sagas: other commands refuse it.
    assert main(["graph", path]) == 2
    err = capsys.readouterr().err
    assert "SAGA176" in err and "Traceback" not in err


def test_pessimistic_view_of_an_unknown_resource_is_refused() -> None:
    with pytest.raises(InvalidDefinition) as exc:
        _create_order().pessimistic_view("credits").build()
    (d,) = exc.value.diagnostics
    assert d.code == "SAGA170" and "credit" in d.help


def test_shipped_scenarios_match_the_schema_editors_use() -> None:
    import json

    import jsonschema

    from saga_models._source import read_document

    schema = json.loads((ROOT / "saga_models" / "schema" /
                         "scenario.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted(ISOLATION.glob("*.scenario.yaml"))
    assert len(files) >= 2
    for path in files:
        assert list(validator.iter_errors(read_document(path).data)) == [], path


def test_one_file_named_twice_is_one_saga_and_counts_default_to_instances(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "a.yaml", "instances: 2\n" + _SAGA.format(name="a",
                                                                 initial=0))
    path = _write(tmp_path, "s.yaml", "scenario: s\nsagas:\n  - {path: a.yaml}\n"
                  "  - {path: ./a.yaml, count: 1}\n")
    scenario = load(path, scenarios=True)
    assert [m.count for m in scenario.members] == [2, 1]
    first, second = (m.saga for m in scenario.members)
    assert first is second
    names = [r.property for r in check(scenario, faults="fail").results]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("path", sorted((ISOLATION / "credit").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_the_scenario_members_alone_give_the_verdicts_they_promise(
    path: Path,
) -> None:
    result = check(path)
    violated = {r.property for r in result.results
                if r.verdict is Verdict.VIOLATED}
    assert violated == expectation(path).violated
    assert all(r.verdict is not Verdict.UNKNOWN for r in result.results)


def test_sarif_places_scenario_results_in_their_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    path = "examples/isolation/credit_dirty_read.scenario.yaml"
    assert main(["check", str(ROOT / path), "--no-progress", "--faults", "fail",
                 "--format", "sarif"]) == 1
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    where = {r["ruleId"]: r["locations"][0]["physicalLocation"]
             for r in results}
    # The structure rule at the member saga's step, the verdicts in the
    # scenario file (a step line would be another file's).
    assert where["SAGA179"]["artifactLocation"]["uri"].endswith(
        "credit/cancel_order_early_refund.saga.yaml")
    assert where["SAGA179"]["region"]["startLine"] == 17
    assert where["no_dirty_read"]["artifactLocation"]["uri"].endswith(path)

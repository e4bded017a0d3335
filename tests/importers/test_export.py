"""Export a native saga to ASL, import it back: the same verdicts."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from saga_models import CompensationPolicy, RetryPolicy, Saga, Step, StepKind, load
from saga_models.exporters import ExportError, dumps_asl, to_asl
from saga_models.importers import load_all
from saga_models.strategies import sagas
from sagaproof.cli import main
from verifier import check

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
ORDER = EXAMPLES[0].parent / "order_saga.yaml"
"""An example the export accepts (the first, hotel_cancel_needs_id, is
refused: SAGA184)."""
FIXTURE = Path(__file__).parent / "fixtures/travel-timeout-uncaught.asl.json"
FAULTS = "fail,timeout,comp_fail"


def verdicts(saga: Saga) -> dict[str, str]:
    return {r.property: r.verdict.value
            for r in check(saga, faults=FAULTS, max_states=1_000_000).results}


def roundtrip(saga: Saga, tmp: Path) -> Saga:
    path = tmp / f"{saga.name}.asl.json"
    path.write_text(dumps_asl(saga))
    [back] = load_all(path)
    return back


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_roundtrip_with_same_verdicts(path: Path, tmp_path: Path) -> None:
    saga = load(path)
    try:
        to_asl(saga)
    except ExportError as exc:
        # What ASL cannot carry is refused (test_roundtrip.py), located.
        d = exc.diagnostics[0]
        assert d.code.startswith("SAGA1") and d.span.file == str(path)
        return
    back = roundtrip(saga, tmp_path)
    assert sorted(s.name for s in back.steps) == sorted(s.name for s in saga.steps)
    native = verdicts(saga)
    if native["structure"] == "holds":
        assert not back.import_diagnostics
    assert verdicts(back) == native


@st.composite
def chain_sagas(draw: st.DrawFn) -> Saga:
    n = draw(st.integers(1, 3))
    pivot_at = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    steps = []
    for i in range(n):
        if pivot_at is None or i < pivot_at:
            kind = StepKind.COMPENSATABLE
        elif i == pivot_at:
            kind = StepKind.PIVOT
        else:
            kind = StepKind.RETRIABLE
        comp = (draw(st.sampled_from(["undo", None]))
                if kind is StepKind.COMPENSATABLE else None)
        attempts = None if kind is StepKind.RETRIABLE and draw(st.booleans()) \
            else draw(st.integers(1, 2))
        steps.append(Step(
            name=f"s{i}", participant=f"p{i}", action="do", compensation=comp,
            kind=kind, depends_on=(f"s{i - 1}",) if i else (),
            retry=RetryPolicy(max_attempts=attempts),
            # A pivot's timeout, total_timeout, compensation_needs_result and
            # a retried non-idempotent step are refused (SAGA184-189, see
            # test_roundtrip.py): the graph that checks the file cannot
            # carry them.
            timeout=(draw(st.sampled_from([None, 5.0]))
                     if kind is not StepKind.PIVOT else None),
            idempotent=attempts != 1 or draw(st.booleans())))
    policy = CompensationPolicy(max_attempts=draw(st.sampled_from([None, 1, 2])))
    return Saga(name="gen", steps=tuple(steps), compensation_policy=policy)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(saga=chain_sagas())
def test_generated_sagas_roundtrip_with_same_verdicts(saga: Saga,
                                                      tmp_path: Path) -> None:
    try:
        to_asl(saga)
    except ExportError as exc:
        # a saga that breaks a structure rule is refused with that rule's
        # diagnostic: its export would be certified by a graph without one
        assert exc.diagnostics[0].code.startswith("SAGA11")
        assume(False)
    assert verdicts(roundtrip(saga, tmp_path)) == verdicts(saga)


def has_n(saga: Saga) -> bool:
    """Whether the dependency order contains an N (a < c > b < d, nothing else
    between them): the one shape nested Parallel states cannot express.
    Independent of the exporter's decomposition."""
    names = [s.name for s in saga.steps]
    anc: dict[str, set[str]] = {}
    for n in names:  # IR order need not be topological: iterate to a fixpoint
        anc[n] = set(saga.step(n).depends_on)
    changed = True
    while changed:
        changed = False
        for n in names:
            more = set().union(*(anc[d] for d in anc[n])) - anc[n]
            if more:
                anc[n] |= more
                changed = True

    def lt(x: str, y: str) -> bool:
        return x in anc[y]

    def cmp(x: str, y: str) -> bool:
        return lt(x, y) or lt(y, x)

    return any(lt(a, c) and lt(b, c) and lt(b, d) and not cmp(a, b)
               and not cmp(c, d) and not cmp(a, d)
               for a, b, c, d in itertools.permutations(names, 4))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(saga=sagas(dags=True, max_steps=4, kinds=False, needs_result=False,
                  non_idempotent=False))
def test_generated_dag_sagas_roundtrip_or_are_refused_exactly_when_not_series_parallel(
        saga: Saga, tmp_path: Path) -> None:
    if has_n(saga):
        with pytest.raises(ExportError) as info:
            to_asl(saga)
        assert info.value.diagnostics[0].code == "EXPORT101"
        return
    try:
        to_asl(saga)
    except ExportError as exc:
        # refused for what the graph cannot carry (test_roundtrip.py)
        assert exc.diagnostics[0].code.startswith("SAGA1")
        return
    assert verdicts(roundtrip(saga, tmp_path)) == verdicts(saga)


@st.composite
def random_dags(draw: st.DrawFn) -> Saga:
    """Any dependency graph on up to 6 steps (N shapes included)."""
    n = draw(st.integers(1, 6))
    steps = []
    for i in range(n):
        deps = draw(st.lists(st.sampled_from([f"s{j}" for j in range(i)]),
                             unique=True, max_size=i)) if i else []
        steps.append(Step(name=f"s{i}", participant="p", action="do",
                          compensation="undo", depends_on=tuple(deps)))
    return Saga(name="g", steps=tuple(steps))


def closure(saga: Saga) -> set[tuple[str, str]]:
    out = {(d, s.name) for s in saga.steps for d in s.depends_on}
    while True:
        more = {(a, c) for a, b in out for b2, c in out if b == b2} - out
        if not more:
            return out
        out |= more


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(saga=random_dags())
def test_export_keeps_the_dependency_order_exactly_or_refuses_an_n(
        saga: Saga, tmp_path: Path) -> None:
    if has_n(saga):
        with pytest.raises(ExportError):
            to_asl(saga)
        return
    assert closure(roundtrip(saga, tmp_path)) == closure(saga)


def test_export_refuses_an_n_shaped_dag_with_a_located_diagnostic(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "n.saga.yaml"
    src.write_text(
        "saga: n\nsteps:\n"
        "  - {name: a, participant: p, action: x, compensation: u}\n"
        "  - {name: b, participant: p, action: x, compensation: u, depends_on: []}\n"
        "  - {name: c, participant: p, action: x, compensation: u,\n"
        "     depends_on: [a, b]}\n"
        "  - {name: d, participant: p, action: x, compensation: u,\n"
        "     depends_on: [b]}\n")
    with pytest.raises(ExportError) as info:
        to_asl(load(src))
    d = info.value.diagnostics[0]
    assert d.code == "EXPORT101" and d.span.file == str(src) and d.span.line >= 5
    assert main(["export", str(src)]) == 2
    err = capsys.readouterr().err
    assert f"{src}:" in err and "EXPORT101" in err


def test_export_refuses_an_imported_saga() -> None:
    with pytest.raises(ExportError) as info:
        to_asl(load_all(FIXTURE)[0])
    assert info.value.diagnostics[0].code == "EXPORT102"


def _diamond() -> Saga:
    def step(name: str, *deps: str) -> Step:
        return Step(name=name, participant=f"p_{name}", action="do",
                    compensation="undo", depends_on=deps, timeout=5.0)
    return Saga(name="diamond", steps=(
        step("a"), step("b", "a"), step("c", "a"), step("e", "a"),
        step("d", "b", "c", "e")))


def test_parallel_export_shape_and_rollback_order() -> None:
    asl = to_asl(_diamond())
    states = asl["States"]
    par = states["Parallel 1"]
    assert [b["StartAt"] for b in par["Branches"]] == ["b", "c", "e"]
    assert par["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
    # every compensation is guarded, and the chain runs in reverse topological
    # order from wherever a Catch enters it
    chain, name = [], "Compensate d"
    while name.startswith("Compensate "):
        assert json.loads(states[name]["Comment"][len("sagaproof:"):])[
            "if_took_effect"] is True
        chain.append(name.removeprefix("Compensate "))
        name = states[name]["Next"]
    assert name == "Saga compensated"
    assert chain[0] == "d" and chain[-1] == "a" and set(chain) == set("abcde")
    assert par["Catch"][-1]["Next"] == "Compensate e"
    assert states["a"]["Catch"][0]["Next"] == "Compensate a"


def test_the_guard_matters(tmp_path: Path) -> None:
    """Seeded bug: the same machine with unguarded compensations (Step
    Functions runs every Task of the route) compensates a sibling that never
    started, which compensation_completeness must catch."""
    saga = _diamond()
    assert verdicts(saga)["compensation_completeness"] == "holds"
    text = dumps_asl(saga).replace('\\"if_took_effect\\":true', '\\"x\\":1')
    assert "if_took_effect" not in text
    path = tmp_path / "unguarded.asl.json"
    path.write_text(text)
    [back] = load_all(path)
    assert verdicts(back)["compensation_completeness"] == "violated"
    assert verdicts(roundtrip(saga, tmp_path)) == verdicts(saga)


def test_exported_rollback_ends_in_fail_and_every_state_is_reachable() -> None:
    asl = to_asl(load(ORDER))
    states = asl["States"]
    targets = {asl["StartAt"]} | {t for s in states.values()
                                   for t in [s.get("Next"),
                                             *(c["Next"] for c in s.get("Catch", []))]
                                   if t}
    assert set(states) == targets
    assert states["Saga compensated"]["Type"] == "Fail"


def test_cli_export_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                               ) -> None:
    out = tmp_path / "trip.asl.json"
    assert main(["export", str(ORDER), "-o", str(out)]) == 0
    assert json.loads(out.read_text())["StartAt"]
    assert main(["mapping", str(out)]) == 0
    assert "annotation" in capsys.readouterr().out


def test_checked_in_parallel_export_verifies_like_its_source() -> None:
    """examples/imported/order_saga.asl.json is `sagaproof export` of
    examples/order_saga.yaml (two Parallel states)."""
    exported = EXAMPLES[0].parent / "imported/order_saga.asl.json"
    source = EXAMPLES[0].parent / "order_saga.yaml"
    if not source.exists():
        pytest.skip("source example removed")
    assert sum(st["Type"] == "Parallel"
               for st in json.loads(exported.read_text())["States"].values()) == 2
    [back] = load_all(exported)
    assert verdicts(back) == verdicts(load(source))

"""Export a native saga to ASL, import it back: the same verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_models import CompensationPolicy, RetryPolicy, Saga, Step, StepKind, load
from saga_models.exporters import ExportError, dumps_asl, to_asl
from saga_models.importers import load_all
from sagaproof.cli import main
from verifier import check

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
FAULTS = "fail,timeout,comp_fail"


def verdicts(saga: Saga) -> dict[str, str]:
    return {r.property: r.verdict.value
            for r in check(saga, faults=FAULTS, max_states=100_000).results}


def roundtrip(saga: Saga, tmp: Path) -> Saga:
    path = tmp / f"{saga.name}.asl.json"
    path.write_text(dumps_asl(saga))
    [back] = load_all(path)
    return back


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_roundtrip_with_same_verdicts(path: Path, tmp_path: Path) -> None:
    saga = load(path)
    back = roundtrip(saga, tmp_path)
    assert [s.name for s in back.steps] == [s.name for s in saga.steps]
    assert not back.import_diagnostics
    assert verdicts(back) == verdicts(saga)


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
            timeout=draw(st.sampled_from([None, 5.0])),
            idempotent=draw(st.booleans()),
            compensation_needs_result=draw(st.booleans())))
    policy = CompensationPolicy(max_attempts=draw(st.sampled_from([None, 1, 2])))
    return Saga(name="gen", steps=tuple(steps), compensation_policy=policy)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(saga=chain_sagas())
def test_generated_sagas_roundtrip_with_same_verdicts(saga: Saga,
                                                      tmp_path: Path) -> None:
    assert verdicts(roundtrip(saga, tmp_path)) == verdicts(saga)


def test_export_refuses_a_dag() -> None:
    a = Step(name="a", participant="p", action="x", compensation="u")
    b = Step(name="b", participant="p", action="x", compensation="u")
    with pytest.raises(ExportError, match="one chain"):
        to_asl(Saga(name="dag", steps=(a, b)))


def test_exported_rollback_ends_in_fail_and_every_state_is_reachable() -> None:
    asl = to_asl(load(EXAMPLES[0]))
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
    assert main(["export", str(EXAMPLES[0]), "-o", str(out)]) == 0
    assert json.loads(out.read_text())["StartAt"]
    assert main(["mapping", str(out)]) == 0
    assert "annotation" in capsys.readouterr().out

"""Seeded-bug sagas the checker must refute, and correct ones where all holds.

Each file names, in its header, the properties it must violate (``# expect:``)
and, where it narrows it, the fault model (``# faults:``). Every counterexample
is replayed through the shared semantics, so a trace the checker prints is a
real execution ending in a state that shows the violation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from saga_models import FaultModel, load
from saga_models import semantics as sem
from tests.expectations import expectation
from verifier import SAGA_PROPERTIES, Verdict, check

HERE = Path(__file__).parent / "sagas"
BUGS = sorted((HERE / "bugs").glob("*.yaml"))
CORRECT = sorted((HERE / "correct").glob("*.yaml"))


def test_corpus_is_big_enough() -> None:
    assert len(BUGS) >= 15
    assert len(CORRECT) >= 10


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_definitions_hold(path: Path) -> None:
    exp = expectation(path)
    assert not exp.violated
    result = check(load(path), faults=exp.faults)
    for r in result.results:
        assert r.verdict is Verdict.HOLDS, (r.property, r.reason)
    assert {r.property for r in result.results} == set(SAGA_PROPERTIES)
    assert all(r.fault_model == FaultModel.parse(exp.faults).describe()
               for r in result.results)


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_seeded_bugs_are_refuted(path: Path) -> None:
    exp = expectation(path)
    assert exp.violated, f"{path.name} names no property it must violate"
    saga = load(path)
    faults = FaultModel.parse(exp.faults)
    result = check(saga, faults=faults)
    violated = {r.property for r in result.results if r.verdict is Verdict.VIOLATED}
    assert exp.violated <= violated, (exp.violated, violated)
    for r in result.results:
        assert r.verdict is not Verdict.UNKNOWN, r.reason
        if r.verdict is Verdict.VIOLATED and r.counterexample is not None:
            _replay(saga, faults, r.counterexample)


def _replay(saga, faults, cex) -> None:  # type: ignore[no-untyped-def]
    """The trace is a path of the semantics, step by step."""
    state = sem.initial_state(saga)
    names = [s.name for s in saga.steps]
    for step in cex.steps[1:]:
        ev = step.event
        match = [
            e for e in sem.enabled(saga, state, faults)
            if e.kind.value == ev["kind"]
            and (names[e.step] if e.step >= 0 else None) == ev["step"]
            and (e.outcome.value if e.outcome else None) == ev["outcome"]
            and e.delta == ev["effect_delta"]
        ]
        assert len(match) == 1, f"{step.action!r} is not enabled here"
        state = sem.apply(saga, state, match[0])
        assert sem.view(saga, state).to_json() == step.state

"""SpiffWorkflow differential: every run SpiffWorkflow takes on a generated
BPMN process (service tasks, exclusive gateways, error boundary events, error
end events), with BPMN errors injected into service tasks, is a run the model
allows, ending the same way with the same effects in place.

Like moto for ASL: SpiffWorkflow is the engine here, the model must agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_models.importers import graph_semantics as gs

from .bpmn_build import Process
from .spiff_oracle import Generated, processes, replay, run_spiff


def check(gen: Generated, data: st.DataObject) -> None:
    run = run_spiff(gen, lambda options: data.draw(st.sampled_from(options)))
    disagreement = replay(gen, run)
    assert disagreement is None, (disagreement, gen.process.xml(), run)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(gen=processes(), data=st.data())
def test_spiff_runs_are_model_runs_sample(gen: Generated,
                                          data: st.DataObject) -> None:
    check(gen, data)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(gen=processes(), data=st.data())
def test_spiff_runs_are_model_runs(gen: Generated, data: st.DataObject) -> None:
    check(gen, data)


def fixed() -> Generated:
    """T1 (boundary E1 -> stop) -> T2 -> ok, with T1 failing."""
    p = Process(pid="gen").start().task("T1").task("T2").end("ok")
    p.boundary_error("B1", "T1", "E1").end("stop").flow("B1", "stop")
    p.flow("start", "T1", "T2", "ok")
    return Generated(process=p, data={}, codes={"T1": ["E1"], "T2": []},
                     gateways=set())


def ready(ident: str) -> Callable[[list[Any]], Any]:
    """The answer "run the ready task ``ident``"."""
    return lambda tasks: next(t for t in tasks
                              if t.task_spec.bpmn_id == ident)


def scripted(*answers: Any) -> Callable[[list[Any]], Any]:
    """Answers the run's choices in order (a callable answer picks from the
    options)."""
    it = iter(answers)

    def choose(options: list[Any]) -> Any:
        answer = next(it)
        return answer(options) if callable(answer) else answer

    return choose


def test_the_oracle_agrees_on_a_hand_checked_run() -> None:
    run = run_spiff(fixed(), scripted(ready("T1"), "E1"))
    assert run.decisions == [("error", "T1", "E1")]
    assert run.reached == {"start", "T1", "B1", "stop"}
    assert run.completed == set() and run.uncaught is None
    assert replay(fixed(), run) is None


def test_a_seeded_model_bug_is_a_disagreement(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Seeded bug: the model says a failed attempt took effect.
    real = gs.apply

    def buggy(t: gs.Tables, s: tuple[int, ...], ev: gs.Event
              ) -> tuple[int, ...]:
        if ev.kind == "error":
            ev = dataclasses.replace(ev, effect=True)
        return real(t, s, ev)

    monkeypatch.setattr(gs, "apply", buggy)
    run = run_spiff(fixed(), scripted(ready("T1"), "E1"))
    assert replay(fixed(), run) is not None


def test_a_seeded_routing_bug_is_a_disagreement() -> None:
    # The model is given a process whose boundary event leads elsewhere.
    run = run_spiff(fixed(), scripted(ready("T1"), "E1"))
    other = fixed()
    other.process.lines = [line.replace('targetRef="stop"', 'targetRef="T2"')
                           for line in other.process.lines]
    assert replay(other, run) is not None

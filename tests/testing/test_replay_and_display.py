"""Model counterexamples replayed through the runtime, and the Jupyter
display objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from saga_models import FaultModel, load
from sagaproof.jupyter import CheckView, CounterexampleView, Graph, show
from sagaproof.testing import (
    recording_binding,
    run_schedule,
    schedule_from_counterexample,
)
from verifier import Verdict, check

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = [("payment_double_charge.yaml", "compensation_completeness"),
         ("payment_double_charge.yaml", "eventual_consistency"),
         ("shipping_after_pivot.yaml", "eventual_consistency")]


@pytest.mark.parametrize(("name", "prop"), CASES)
def test_the_runtime_reproduces_a_model_counterexample(name: str, prop: str) -> None:
    saga = load(EXAMPLES / name)
    result = check(saga)[prop]
    assert result.verdict is Verdict.VIOLATED and result.counterexample
    schedule = schedule_from_counterexample(result.counterexample)
    report = run_schedule(saga, recording_binding(saga), schedule, settle=False)
    (outcome,) = report.outcomes.values()
    assert outcome == result.counterexample.steps[-1].state["phase"]
    assert any(prop in v for v in report.violations), report.text()


def test_a_correct_saga_replayed_fault_free_holds() -> None:
    saga = load(EXAMPLES / "trip_booking.saga.yaml")
    from sagaproof.testing import FaultSchedule, Start

    report = run_schedule(saga, recording_binding(saga),
                          FaultSchedule(ops=(Start(),)))
    assert report.ok and list(report.outcomes.values()) == ["COMPLETED"]


def test_counterexample_table_highlights_the_failing_transition() -> None:
    saga = load(EXAMPLES / "payment_double_charge.yaml")
    cex = check(saga)["eventual_consistency"].counterexample
    assert cex is not None
    view = show(cex)
    assert isinstance(view, CounterexampleView)
    html = view._repr_html_()
    assert html.count("<tr") == len(cex.steps) + 1
    last = html.rsplit("<tr", 1)[1]
    assert "font-weight:bold" in last and "ship: ok" in last
    assert "**7**" in view._repr_markdown_()
    assert len(view.step(3).rows()) == 4


def test_check_view_shows_every_property() -> None:
    saga = load(EXAMPLES / "payment_double_charge.yaml")
    view = show(check(saga))
    assert isinstance(view, CheckView)
    html = view._repr_html_()
    for prop in ("compensation_completeness", "termination",
                 "eventual_consistency", "structure"):
        assert prop in html
    assert "VIOLATED" in view._repr_markdown_()


def test_graphs_render_without_graphviz() -> None:
    saga = load(EXAMPLES / "trip_booking.saga.yaml")
    g = Graph(saga, engine="python")
    svg = g.svg()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    nodes, _edges, _, cut = g.explore()
    assert svg.count("<circle") == len(nodes) and not cut
    big = Graph(saga, faults=FaultModel(), max_states=30, engine="python")
    assert "cut off" in big._repr_markdown_()
    wf = load(EXAMPLES / "workflows" / "order_saga.workflow.yaml")
    assert show(wf)._repr_svg_().startswith("<svg")
    assert "orders" in show(wf)._repr_markdown_()


def test_highlighted_path_follows_the_counterexample() -> None:
    saga = load(EXAMPLES / "payment_double_charge.yaml")
    cex = check(saga)["eventual_consistency"].counterexample
    svg = Graph(saga, faults=FaultModel(), highlight=cex, max_states=400,
                engine="python").svg()
    assert svg.count("stroke-width='2.5'") == len(cex)


def test_a_compensation_timeout_replays_as_one() -> None:
    """A compensation whose call times out is an unknown compensation outcome
    in the model; the schedule turns it into an UNKNOWN delivery to the
    compensation call, and the runtime, under that schedule, ends where the
    model does (here STUCK: the policy escalates after one attempt)."""
    from saga_models import SagaBuilder
    from sagaproof.testing import Deliver, FaultSchedule, Outcome, Start

    saga = (SagaBuilder("comp_timeout")
            .step("a", participant="p", action="x", compensation="undo",
                  timeout=1.0)
            .step("b", participant="q", action="y", compensation="undo2",
                  depends_on=["a"])
            .compensation_policy(max_attempts=1)
            .build())
    schedule = FaultSchedule(ops=(
        Start(),
        Deliver(saga=0, step="a", outcome=Outcome.OK),
        Deliver(saga=0, step="b", outcome=Outcome.FAIL),
        Deliver(saga=0, step="a", kind="compensation", outcome=Outcome.UNKNOWN),
    ))
    report = run_schedule(saga, recording_binding(saga), schedule, settle=False)
    assert list(report.outcomes.values()) == ["STUCK"], report.text()
    assert not [v for v in report.violations if "conform" in v], report.text()
    (trace,) = report.traces.values()
    assert any("compensation of a" in line and "unknown" in line for line in trace), (
        report.text())
    # A model path through that timeout maps back to the same schedule.
    from saga_models import semantics as sem
    from verifier import Counterexample, SagaTransitionSystem, TraceStep

    ts = SagaTransitionSystem(saga, FaultModel())
    E, K, R = sem.Event, sem.EventKind, sem.Outcome
    state = sem.initial_state(saga)
    steps = [TraceStep(action="init", event=None, state=ts.state_json(state))]
    for e in (E(K.DISPATCH, 0), E(K.REPLY, 0, R.OK, 1), E(K.DISPATCH, 1),
              E(K.REPLY, 1, R.FAILED, 0), E(K.COMP_DISPATCH, 0),
              E(K.COMP_REPLY, 0, R.UNKNOWN)):
        assert e in sem.enabled(saga, state, FaultModel()), e
        state = sem.apply(saga, state, e)
        steps.append(TraceStep(action=ts.label_text(e), event=ts.label_json(e),
                               state=ts.state_json(state)))
    assert sem.view(saga, state).phase.name == "STUCK"
    cex = Counterexample(steps=tuple(steps), loop_start=None, violation="stuck")
    assert schedule_from_counterexample(cex) == schedule

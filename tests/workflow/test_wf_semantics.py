"""The pure workflow semantics and its transition system."""

from __future__ import annotations

from pathlib import Path

import pytest

from saga_models import FaultModel, load
from saga_models.workflow import Workflow, WorkflowBuilder, to_dot, to_mermaid
from saga_models.workflow import semantics as sem
from saga_models.workflow.semantics import StepKind
from verifier import Verdict, check, explore, render
from verifier._workflow_ts import WORKFLOW_PROPERTIES, WorkflowTransitionSystem

CORPUS = Path(__file__).parents[1] / "quality" / "workflows"


def reachable(wf: Workflow, *, duplicates: int = 1) -> set[tuple[int, ...]]:
    seen = {sem.initial_state(wf, duplicates=duplicates)}
    todo = list(seen)
    while todo:
        st = todo.pop()
        for step in sem.enabled(wf, st):
            nxt = sem.apply(wf, st, step)
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.stem)
def test_states_pack_into_bytes(path: Path) -> None:
    wf = load(path)
    for st in reachable(wf):
        assert all(0 <= x <= 255 for x in st)
        assert tuple(bytes(st)) == st


def pingpong(delivery: str = "exactly_once", order: str = "unordered",
             dedup: bool = False) -> Workflow:
    return (WorkflowBuilder("pp", delivery=delivery, order=order)
            .start("ping")
            .service("a", initial="W", final=["D"], dedup=dedup)
            .on("W", "pong", to="D")
            .service("b", initial="I", dedup=dedup)
            .on("I", "ping", to="R", emit=["pong"])
            .outcome(a="D", b="R")
            .build())


def test_exactly_once_has_no_duplicates() -> None:
    wf = pingpong()
    st = sem.initial_state(wf, duplicates=5)
    assert st[sem.DUPS] == 0
    assert all(not s.keep and not s.duplicate for s in sem.enabled(wf, st))


def test_at_least_once_redelivers_and_dedup_drops() -> None:
    wf = pingpong("at_least_once", dedup=True)
    st = sem.initial_state(wf, duplicates=1)
    kept = [s for s in sem.enabled(wf, st) if s.keep]
    assert len(kept) == 1
    st = sem.apply(wf, st, kept[0])
    assert sem.service_state(wf, st, 1) == "R"
    (dup,) = [s for s in sem.enabled(wf, st) if s.duplicate]
    assert dup.kind is StepKind.DROP
    after = sem.apply(wf, st, dup)
    assert sem.service_state(wf, after, 1) == "R"
    assert ("ping", "b", True) not in sem.pending(wf, after)
    assert after[sem.DUPS] == 0


def test_without_dedup_a_duplicate_is_unhandled() -> None:
    wf = pingpong("at_least_once")
    res = check(wf)
    r = res["no_unhandled_event"]
    assert r.verdict is Verdict.VIOLATED
    assert r.counterexample is not None
    assert r.counterexample.steps[-1].action == (
        "b <- ping (duplicate): UNHANDLED in R (no transition for it, not ignored)")


def test_fifo_delivers_in_order_per_channel() -> None:
    wf = load(CORPUS / "ok_fifo_protocol.yaml")
    st = sem.initial_state(wf)
    (first,) = sem.enabled(wf, st)
    st = sem.apply(wf, st, first)
    steps = sem.enabled(wf, st)
    assert [sem.step_json(wf, s)["event"] for s in steps] == ["authorized"]
    assert sem.describe(wf, steps[0]) == (
        "payments -> orders <- authorized => WAIT_CAPTURE")


def test_timer_fires_once_per_entry() -> None:
    wf = (WorkflowBuilder("t").start("go")
          .service("a", initial="I", final=["D"])
          .on("I", "go", to="W")
          .timer("W", "5s", to="W", emit=["tick"])
          .on("W", "tick", to="D")
          .build())
    st = sem.initial_state(wf)
    st = sem.apply(wf, st, sem.enabled(wf, st)[0])
    (timer,) = sem.enabled(wf, st)
    assert timer.kind is StepKind.TIMER
    st = sem.apply(wf, st, timer)
    assert [s.kind for s in sem.enabled(wf, st)] == [StepKind.DELIVER]
    assert check(wf).verdict is Verdict.HOLDS


def test_counters_saturate_at_cap() -> None:
    wf = (WorkflowBuilder("c").start("go")
          .service("a", initial="I")
          .on("I", "go", to="J", add={"n": 5})
          .counter("n", cap=2)
          .invariant("n <= 2")
          .build())
    st = sem.initial_state(wf)
    st = sem.apply(wf, st, sem.enabled(wf, st)[0])
    assert sem.counter_values(wf, st) == {"n": 2}
    assert "counters capped at n<=2" in check(wf).results[0].fault_model


def test_guards_pick_the_first_transition_that_holds() -> None:
    wf = load(CORPUS / "ok_payment_retries.yaml")
    assert check(wf)["invariants"].verdict is Verdict.HOLDS
    bug = load(CORPUS / "bug_retry_off_by_one.yaml")
    r = check(bug)["invariants"]
    assert r.verdict is Verdict.VIOLATED
    assert r.reason == "invariant 'attempts <= 3' is broken (attempts=4)"


def test_six_properties_and_registration() -> None:
    res = check(pingpong())
    assert res.kind == "workflow"
    assert tuple(r.property for r in res.results) == WORKFLOW_PROPERTIES
    assert res.verdict is Verdict.HOLDS


def test_dedup_reduction_preserves_verdicts_and_shrinks() -> None:
    for path in sorted(CORPUS.glob("*.yaml")):
        wf = load(path)
        full = explore(WorkflowTransitionSystem(wf, FaultModel(duplicates=2)))
        red = explore(WorkflowTransitionSystem(wf, FaultModel(duplicates=2),
                                               reduce=True))
        assert [r.verdict for r in full] == [r.verdict for r in red], path.name
        assert red[0].stats.states <= full[0].stats.states
    wf = load(CORPUS / "ok_order_saga_compensation.yaml")
    full = explore(WorkflowTransitionSystem(wf, FaultModel(duplicates=2)))
    red = explore(WorkflowTransitionSystem(wf, FaultModel(duplicates=2),
                                           reduce=True))
    assert red[0].stats.states < full[0].stats.states


def test_golden_message_sequence() -> None:
    res = check(CORPUS / "bug_no_dedup_choreography.yaml")
    cex = res["eventual_consistency"].counterexample
    assert cex is not None
    assert render.counterexample_text(cex) == "\n".join([
        "    1. orders <- order_placed => PENDING, emits reserve_credit",
        "    2. customers <- reserve_credit (not acknowledged: will be delivered "
        "again) => IDLE, emits credit_limit_exceeded, choice 2 of 2",
        "    3. orders <- credit_limit_exceeded => REJECTED",
        "    4. customers <- reserve_credit (duplicate) => RESERVED, emits "
        "credit_reserved, choice 1 of 2",
        "    5. orders <- credit_reserved: UNHANDLED in REJECTED (no transition "
        "for it, not ignored)",
    ])
    itf = cex.to_itf()
    assert itf["states"][-1]["services"] == {"orders": "REJECTED",  # type: ignore[index]
                                             "customers": "RESERVED"}


def test_drawings() -> None:
    wf = load(CORPUS / "ok_payment_timeout.yaml")
    m = to_mermaid(wf)
    assert 'subgraph orders["orders"]' in m
    assert 'orders_PAYING -.->|"after 30s / cancel_payment"| orders_CANCELLING' in m
    d = to_dot(wf)
    assert 'subgraph "cluster_payments"' in d
    assert ('"payments.IDLE" -> "payments.CHARGED" '
            '[label="charge / charged charged+1"];') in d

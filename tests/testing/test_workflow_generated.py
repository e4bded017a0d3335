"""Generated stateful tests of event-workflow handlers find seeded bugs in
handler code and pass on the correct version of the same handlers.

The fast tier replays one known bad schedule per pair and runs one small
Hypothesis search; the slow tier lets Hypothesis search and shrink every pair
(``-m slow``). Every workflow here verifies, so whatever the generated tests
report is the handlers' fault.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from examples.workflows import handlers as example_handlers
from runtime.workflow import LogEntry
from saga_models import FaultModel, load
from sagaproof.testing import (
    AdvanceClock,
    CrashWorker,
    DeliverEvent,
    EventFault,
    ScheduleFailure,
    StartWorkflow,
    WorkflowBinding,
    WorkflowHarness,
    WorkflowSchedule,
    check_handlers,
    coverage_report,
    run_workflow_schedule,
    shrink_schedule,
    workflow_reachable,
)
from tests.testing.handlers import (
    double_charge,
    late_payment,
    refund_first,
    reminder_twice,
    shared_key,
)
from verifier import Verdict, check

PAIRS = [double_charge, shared_key, refund_first, late_payment, reminder_twice]
IDS = [m.__name__.rsplit(".", 1)[-1] for m in PAIRS]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"

FAST = settings(max_examples=25, stateful_step_count=12, derandomize=True,
                database=None, deadline=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow],
                # The failure text explains the schedule; Hypothesis's explain
                # phase would re-run the shrunk case hundreds of times.
                phases=[p for p in Phase if p is not Phase.explain])
SLOW = settings(FAST, max_examples=200, stateful_step_count=25)


def _ref(pair: ModuleType) -> str:
    return f"python:{pair.__name__}:WORKFLOW"


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_the_workflow_itself_verifies(pair: ModuleType) -> None:
    assert check(pair.WORKFLOW).verdict is Verdict.HOLDS


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_the_bug_shows_on_its_schedule_and_the_fix_survives_it(
        pair: ModuleType) -> None:
    buggy = run_workflow_schedule(pair.WORKFLOW, pair.buggy, pair.SCHEDULE)
    assert not buggy.ok and pair.EXPECT in buggy.text(), buggy.text()
    correct = run_workflow_schedule(pair.WORKFLOW, pair.correct, pair.SCHEDULE)
    assert correct.ok, correct.text()


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_crash_between_handler_and_commit_redelivers(store: str) -> None:
    # Exactly the double charge, via the worker dying rather than the bus.
    wf, schedule = double_charge.WORKFLOW, double_charge.CRASH_SCHEDULE
    buggy = run_workflow_schedule(wf, double_charge.buggy, schedule, store=store)
    assert not buggy.ok and "charged 2x" in buggy.text(), buggy.text()
    correct = run_workflow_schedule(wf, double_charge.correct, schedule,
                                    store=store)
    assert correct.ok, correct.text()
    assert list(correct.outcomes.values()) == ["consistent"]


def test_a_search_finds_the_reordering_bug_and_shrinks_it() -> None:
    # No crashes and no duplicates: only the order of delivery can show it
    # (with crashes the search may first find the refund re-run after one).
    only_order = FaultModel(crashes=0, duplicates=0)
    with pytest.raises(ScheduleFailure) as info:
        check_handlers(refund_first.WORKFLOW, refund_first.buggy, settings=FAST,
                       faults=only_order, definition_ref=_ref(refund_first))
    text = str(info.value)
    assert refund_first.EXPECT in text
    assert "workflow schedule (2 decisions):" in text
    assert "cancel #1 -> payments (out of order" in text
    check_handlers(refund_first.WORKFLOW, refund_first.correct, settings=FAST)
    check_handlers(refund_first.WORKFLOW, refund_first.correct, settings=FAST,
                   faults=only_order)


def test_a_failing_schedule_shrinks_by_replay() -> None:
    padded = WorkflowSchedule(ops=(
        StartWorkflow(),
        CrashWorker(),
        StartWorkflow(),
        *late_payment.SCHEDULE.ops[1:],
    ))
    report = run_workflow_schedule(late_payment.WORKFLOW, late_payment.buggy,
                                   padded)
    assert not report.ok
    smaller = shrink_schedule(late_payment.WORKFLOW, late_payment.buggy, report)
    assert smaller.violations[0] == report.violations[0]
    assert smaller.schedule.ops[:3] == late_payment.SCHEDULE.ops
    assert len(smaller.schedule) == 5 < len(report.schedule)
    # A passing report has nothing to shrink.
    ok = run_workflow_schedule(late_payment.WORKFLOW, late_payment.correct,
                               padded)
    assert shrink_schedule(late_payment.WORKFLOW, late_payment.correct, ok) is ok


def test_the_printed_script_replays_the_failure() -> None:
    report = run_workflow_schedule(double_charge.WORKFLOW, double_charge.buggy,
                                   double_charge.SCHEDULE,
                                   definition_ref=_ref(double_charge))
    script = report.script
    assert "fault=EventFault.DUPLICATE" in script
    out: list[str] = []
    exec(compile(script, "<replay>", "exec"), {"print": out.append})
    assert out and out[0].startswith("property violated:")
    assert "charged 2x" in out[0]


def test_the_model_trace_is_the_message_sequence() -> None:
    report = run_workflow_schedule(double_charge.WORKFLOW, double_charge.buggy,
                                   double_charge.SCHEDULE)
    (trace,) = report.traces.values()
    assert trace == (
        "orders <- order_created => PAYING, emits charge",
        "payments <- charge (not acknowledged: will be delivered again) => "
        "CHARGED, emits charged, charged += 1",
        "orders <- charged => PAID",
        "payments <- charge (duplicate) => CHARGED",
        "=> orders=PAID, payments=CHARGED; counters: charged=1; handlers' "
        "records: charged=2",
    )


def test_a_log_that_is_not_a_model_path_is_reported() -> None:
    h = WorkflowHarness(double_charge.WORKFLOW, double_charge.correct)
    try:
        h.start()
        assert h.violations() == []
        # A step the model never allows: payments jumps to CHARGED unasked.
        h.store.commit_step(
            h.instances[0].wid,
            entry=LogEntry(seq=1, kind="deliver", service="payments",
                           event="charged", event_id="x:9", sender="orders",
                           duplicate=False, from_state="IDLE",
                           to_state="CHARGED", emitted=(), at=0.0),
            consumed=None, service_row=("CHARGED", False, None),
            counters={"charged": 0}, emitted=[], next_event=9)
        (msg,) = h.violations()
        assert "is not a path of the model" in msg
    finally:
        h.close()


def test_a_fifo_bus_offers_only_channel_heads_and_no_duplicates() -> None:
    h = WorkflowHarness(shared_key.WORKFLOW, shared_key.correct)
    try:
        h.start()
        assert [e.event for e in h.candidates(0)] == ["book"]
        assert not h.allowed(EventFault.DUPLICATE)  # exactly-once bus
        assert h.allowed(EventFault.CRASH)
    finally:
        h.close()


def test_timers_fire_when_the_clock_is_advanced() -> None:
    wf = load(EXAMPLES / "order_lifecycle.workflow.yaml")
    binding = WorkflowBinding(handlers=lambda: example_handlers.order_lifecycle)
    late_payment = WorkflowSchedule(ops=(
        StartWorkflow(),
        DeliverEvent(instance=0, event="order_created", receiver="orders",
                     number=0),
        DeliverEvent(instance=0, event="awaiting_payment", receiver="customer",
                     number=1),
        AdvanceClock(),  # the 15 minutes run out before the payment arrives
        CrashWorker(),
    ))
    h = WorkflowHarness(wf, binding)
    try:
        for op in late_payment.ops:
            if isinstance(op, StartWorkflow):
                h.start()
            elif isinstance(op, DeliverEvent):
                h.deliver(op.instance, h.find(op))
            elif isinstance(op, AdvanceClock):
                h.advance()
            else:
                h.crash()
        assert h.store.load(h.instances[0].wid).states["orders"] == "EXPIRED"
        h.settle()
        report = h.report(final=True)
        assert report.ok, report.text()
        reached = h.reached()
    finally:
        h.close()
    assert "transition:orders:AWAITING_PAYMENT--timer->EXPIRED" in reached
    assert ("outcome:orders=REFUNDED, customer=REFUNDED_CUST, warehouse=IDLE"
            in reached)
    assert reached <= workflow_reachable(wf)


def test_workflow_coverage_reports_what_was_never_reached() -> None:
    wf = load(EXAMPLES / "order_saga.workflow.yaml")
    binding = WorkflowBinding(handlers=lambda: example_handlers.order_saga)
    h = WorkflowHarness(wf, binding)
    try:
        h.start()
        h.settle()
        reached = h.reached()
    finally:
        h.close()
    report = coverage_report(wf, reached)
    assert "outcome:orders=COMPLETED, payments=CHARGED, inventory=RESERVED" \
        in report.reached
    # The example handlers always charge and always find stock.
    assert "transition:payments:IDLE--charge->DECLINED" in report.missing
    assert 0 < report.ratio < 1


def test_example_handlers_pass_their_generated_tests() -> None:
    wf = load(EXAMPLES / "order_saga.workflow.yaml")
    check_handlers(wf, WorkflowBinding(
        handlers=lambda: example_handlers.order_saga), settings=FAST)


def test_a_choice_handler_returning_a_non_choice_is_reported() -> None:
    wf = load(EXAMPLES / "order_saga.workflow.yaml")
    binding = WorkflowBinding(handlers=lambda: {
        **example_handlers.order_saga, "payments": {"charge": lambda ctx: "OK"}})
    report = run_workflow_schedule(wf, binding, WorkflowSchedule(ops=(
        StartWorkflow(),)))
    assert not report.ok
    assert "returned 'OK'; a choice handler returns one of" in report.text()


def test_inputs_drawn_from_a_strategy_are_in_the_schedule() -> None:
    wf = load(EXAMPLES / "order_saga.workflow.yaml")

    def charge(ctx: Any) -> str:
        if ctx.input["amount"] > 150:
            raise OverflowError("amount above the card limit")
        return "CHARGED" if ctx.input["amount"] <= 100 else "DECLINED"

    binding = WorkflowBinding(
        handlers=lambda: {**example_handlers.order_saga,
                          "payments": {"charge": charge}},
        inputs=st.fixed_dictionaries({"amount": st.integers(1, 200)}))
    with pytest.raises(ScheduleFailure) as info:
        check_handlers(wf, binding, settings=FAST)
    text = str(info.value)
    assert "raised OverflowError: amount above the card limit" in text
    assert "start a workflow instance with input {'amount': 151}" in text


@pytest.mark.slow
@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_seeded_bug_is_found_and_shrunk(pair: ModuleType) -> None:
    with pytest.raises(ScheduleFailure) as info:
        check_handlers(pair.WORKFLOW, pair.buggy, settings=SLOW,
                       definition_ref=_ref(pair))
    text = str(info.value)
    assert pair.EXPECT in text
    assert "workflow schedule" in text and "model trace of" in text
    assert "replay it with:" in text
    shown = int(text.split("workflow schedule (", 1)[1].split(" ", 1)[0])
    assert shown <= 5  # shrunk: the known schedules need at most five


@pytest.mark.slow
@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_correct_handlers_pass(pair: ModuleType) -> None:
    check_handlers(pair.WORKFLOW, pair.correct, settings=SLOW)


@pytest.mark.slow
def test_correct_handlers_pass_with_a_sqlite_store() -> None:
    # FAST: a file store syncs every commit, so each case costs more.
    check_handlers(double_charge.WORKFLOW, double_charge.correct, settings=FAST,
                   store="sqlite")

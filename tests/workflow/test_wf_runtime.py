"""The workflow runtime: runs, persists, de-duplicates, fires timers on the
injected clock, and every log it writes replays through the model."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from runtime._clock import VirtualClock
from runtime.workflow import (
    InProcessBus,
    WorkflowEngine,
    WorkflowRuntimeError,
    WorkflowStore,
    conforms,
    run_cli,
)
from saga_models import load

CORPUS = Path(__file__).parents[1] / "quality" / "workflows"
EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"


def random_choices(rng: random.Random) -> Any:
    """Handlers that pick a random outcome for every 'choose'."""

    class Any_:
        def __getattr__(self, name: str) -> Any:
            return lambda ctx: rng.randrange(len(ctx.choices))

    class Services:
        def __getattr__(self, name: str) -> Any:
            return Any_()

    return Services()


def run(wf: Any, *, seed: int, rate: float = 0.0, dups: int = 1,
        store: WorkflowStore | None = None, handlers: Any = None,
        wid: str = "w") -> tuple[Any, WorkflowStore]:
    rng = random.Random(seed)
    store = store or WorkflowStore()
    clock = VirtualClock()
    engine = WorkflowEngine(
        wf, handlers if handlers is not None else random_choices(rng), store=store,
        bus=InProcessBus(wf, rng=rng, duplicate_rate=rate, max_duplicates=dups),
        clock=clock, rng=rng)
    return clock.run(engine.run(workflow_id=wid)), store


@pytest.mark.parametrize("name", ["ok_order_saga_compensation",
                                  "ok_order_choreography_dedup",
                                  "ok_order_lifecycle", "ok_payment_timeout",
                                  "ok_idempotent_charge", "ok_payment_retries"])
def test_correct_workflows_run_consistent_and_conform(name: str) -> None:
    wf = load(CORPUS / f"{name}.yaml")
    kinds = set()
    for seed in range(25):
        result, store = run(wf, seed=seed, rate=0.5)
        assert result.status == "consistent", (seed, result)
        assert not result.unhandled
        log = store.log("w")
        kinds.update(e.kind for e in log)
        verdict = conforms(wf, log)
        assert verdict.ok, verdict.message
        for inv in wf.invariants:
            assert inv.expr.evaluate(result.counters, result.states)
    assert "deliver" in kinds


def test_dedup_inbox_drops_repeats_in_the_runtime() -> None:
    wf = load(CORPUS / "ok_order_choreography_dedup.yaml")
    _, store = run(wf, seed=1, rate=1.0, dups=3)
    log = store.log("w")
    assert [e.kind for e in log].count("drop") >= 1
    assert all(e.duplicate for e in log if e.kind == "drop")
    assert conforms(wf, log).ok


def test_the_bug_the_checker_found_happens_at_runtime() -> None:
    wf = load(CORPUS / "bug_non_idempotent_charge.yaml")
    result, store = run(wf, seed=3, rate=1.0, dups=3)
    assert result.counters["charges"] >= 2  # charged twice, as the checker said
    assert conforms(wf, store.log("w")).ok


def test_timer_fires_on_the_virtual_clock() -> None:
    wf = load(CORPUS / "ok_payment_timeout.yaml")
    handlers = {"payments": {"charge": lambda ctx: "LOST"}}
    clock = VirtualClock()
    store = WorkflowStore()
    engine = WorkflowEngine(wf, handlers, store=store, clock=clock)
    result = clock.run(engine.run(workflow_id="t"))
    assert result.states == {"orders": "CANCELLED", "payments": "LOST"}
    assert clock.now() == pytest.approx(30.0)
    timer = [e for e in store.log("t") if e.kind == "timer"]
    assert len(timer) == 1 and timer[0].to_state == "CANCELLING"
    assert conforms(wf, store.log("t")).ok


def test_tampered_log_does_not_conform() -> None:
    wf = load(CORPUS / "ok_order_saga_compensation.yaml")
    _, store = run(wf, seed=0)
    log = store.log("w")
    bad = [*log[:1], dataclasses.replace(log[1], to_state="COMPLETED"), *log[2:]]
    verdict = conforms(wf, bad)
    assert not verdict.ok
    assert "seq=1" in verdict.message and "COMPLETED" in verdict.message
    skipped = log[:1] + log[2:]
    assert not conforms(wf, skipped).ok


def test_resume_after_a_crash(tmp_path: Path) -> None:
    wf = load(CORPUS / "ok_order_saga_compensation.yaml")
    db = tmp_path / "wf.db"
    store = WorkflowStore(db)
    handlers = {"payments": {"charge": lambda ctx: "CHARGED"},
                "inventory": {"reserve_stock": lambda ctx: "IDLE"}}
    engine = WorkflowEngine(wf, handlers, store=store, max_steps=3)
    with pytest.raises(WorkflowRuntimeError, match="more than 3 steps"):
        asyncio.run(engine.run(workflow_id="r"))
    store.close()
    store = WorkflowStore(db)  # a new process: only the file survives
    result = asyncio.run(WorkflowEngine(wf, handlers, store=store).run(
        workflow_id="r"))
    assert result.states == {"orders": "CANCELLED", "payments": "REFUNDED",
                             "inventory": "IDLE"}
    log = store.log("r")
    assert [e.seq for e in log] == list(range(len(log)))
    assert conforms(wf, log).ok
    with pytest.raises(WorkflowRuntimeError, match="belongs to workflow"):
        other = load(CORPUS / "ok_fifo_protocol.yaml")
        asyncio.run(WorkflowEngine(other, store=store).run(workflow_id="r"))


def test_choose_needs_a_handler_and_a_valid_answer() -> None:
    wf = load(CORPUS / "ok_order_saga_compensation.yaml")
    with pytest.raises(WorkflowRuntimeError, match=r"payments\.charge"):
        WorkflowEngine(wf, {})
    bad = {"payments": {"charge": lambda ctx: "MAYBE"},
           "inventory": {"reserve_stock": lambda ctx: 0}}
    result = asyncio.run(WorkflowEngine(wf, bad).run(workflow_id="b"))
    assert result.status == "stuck"
    assert result.dead_letters and "MAYBE" in result.dead_letters[0]


def test_async_handlers_and_context() -> None:
    wf = load(CORPUS / "ok_order_saga_compensation.yaml")
    seen: list[Any] = []
    changes: list[Any] = []

    async def charge(ctx: Any) -> str:
        seen.append(ctx)
        return "DECLINED"

    result = asyncio.run(WorkflowEngine(
        wf, {"payments": {"charge": charge}, "inventory": {
            "reserve_stock": lambda ctx: 0}}, listeners=[changes.append]).run(
                workflow_id="a", input={"x": 1}))
    assert result.states["orders"] == "CANCELLED"
    (ctx,) = seen
    assert ctx.state == "IDLE" and ctx.event == "charge" and ctx.input == {"x": 1}
    assert ctx.choices == ("CHARGED", "DECLINED") and not ctx.duplicate
    assert [(c.service, c.from_state, c.to_state) for c in changes] == [
        ("orders", "NEW", "PAYING"), ("payments", "IDLE", "DECLINED"),
        ("orders", "PAYING", "CANCELLED")]


def test_run_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parents[2])
    wf = load(EXAMPLES / "order_saga.workflow.yaml")
    args = argparse.Namespace(
        participants="examples.workflows.handlers:order_saga",
        db=str(tmp_path / "w.db"), input='{"amount": 500}', saga_id="c1",
        json=False)
    assert run_cli(args, wf) == 0
    out = capsys.readouterr().out
    assert "consistent (orders=CANCELLED, payments=DECLINED" in out
    store = WorkflowStore(tmp_path / "w.db")
    assert conforms(wf, store.log("c1")).ok

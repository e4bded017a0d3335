"""The read model: the projector's fold against replay, restarts, staleness,
and the model of its checkpoint argument, both ways."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import Script

from runtime import Engine, SQLiteLog, replay
from runtime._projection import Projector, ViewStore
from saga_models import FaultModel, SagaBuilder
from verifier._explicit import explore
from verifier.projection import ProjectionSystem

SAGA = (SagaBuilder("v")
        .step("a", participant="p", action="do_a", compensation="undo_a")
        .step("b", participant="p", action="do_b", compensation="undo_b",
              timeout=1.0)
        .step("c", participant="p", action="do_c", kind="pivot")
        .build())


@pytest.fixture(params=["sqlite", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        lg: Any = SQLiteLog(tmp_path / "v.db")
    else:
        from runtime._postgres import PostgresLog

        lg = PostgresLog(request.getfixturevalue("pg_url"),
                         schema=request.getfixturevalue("pg_schema"))
    yield lg
    lg.close()


def _run(log: Any, plans: list[dict[Any, list[Any]]]) -> list[str]:
    ids = []

    async def main() -> None:
        for k, plan in enumerate(plans):
            engine = Engine(SAGA, Script(plan).participants(SAGA), log=log)
            ids.append((await engine.run({}, saga_id=f"v-{k}")).saga_id)
    asyncio.run(main())
    return ids


def test_rows_equal_replay_and_say_how_stale(log: Any) -> None:
    ids = _run(log, [{}, {("c", "action"): ["fatal"]},
                     {("b", "action"): ["fail", "fail", "fail"]}])
    proj = Projector(log, definitions=lambda info: SAGA)
    view, behind = proj.staleness(ids[0])
    assert view is None and behind == log.get(ids[0]).next_seq  # stale, shown
    assert proj.catch_up() == 3
    assert proj.catch_up() == 0  # idempotent: nothing moves twice
    for sid in ids:
        row, behind = proj.staleness(sid)
        assert row is not None and behind == 0
        assert list(row.state) == list(replay(SAGA, log.records(sid)).state)
    rows = {r.saga_id: r for r in ViewStore(log).all()}
    assert rows["v-0"].status == "COMPLETED" and rows["v-0"].held == ("a", "b", "c")
    assert rows["v-1"].status == "COMPENSATED" and rows["v-1"].held == ()
    assert rows["v-1"].last_error is not None


def test_restart_from_each_rows_checkpoint(log: Any) -> None:
    [sid] = _run(log, [{("c", "action"): ["fatal"]}])
    records = log.records(sid)
    proj = Projector(log, definitions=lambda info: SAGA)
    # A projector that stopped half-way: its row reflects only a prefix.
    from runtime._projection import fold

    half = fold(SAGA, None, log.get(sid), records[:4])
    assert proj.store.put(half, expect_seq=0)
    assert proj.staleness(sid)[1] == len(records) - 4
    # A second projector with a stale idea of the row cannot overwrite it.
    assert not proj.store.put(half, expect_seq=0)
    assert Projector(log, definitions=lambda info: SAGA).catch_up() == 1
    row = proj.store.get(sid)
    assert row is not None and row.seq == len(records)
    assert list(row.state) == list(replay(SAGA, records).state)


FAULTS = FaultModel(fail=True, timeout=True, comp_fail=False, crashes=1,
                    duplicates=0)


def test_model_atomic_checkpoint_holds() -> None:
    ts = ProjectionSystem(SAGA, FAULTS, lag=2, atomic=True)
    results = {r.property: r for r in explore(ts)}
    assert results["view_is_a_prefix"].verdict.value == "holds"
    assert results["view_converges"].verdict.value == "holds"


def test_model_separate_checkpoint_applies_a_record_twice() -> None:
    ts = ProjectionSystem(SAGA, FAULTS, lag=2, atomic=False)
    results = {r.property: r for r in explore(ts)}
    bad = results["view_is_a_prefix"]
    assert bad.verdict.value == "violated"
    assert bad.counterexample is not None
    labels = [step.action for step in bad.counterexample.steps]
    assert "projector crash" in str(labels)


def test_cli_project_then_status_view(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, SAGAPROOF_LEDGER=str(tmp_path / "l.db"),
               PYTHONPATH=str(root))
    db = str(tmp_path / "s.db")

    def cli(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sagaproof", *a], cwd=root,
                              env=env, capture_output=True, text=True, timeout=120,
                              check=False)

    run = cli("run", "examples/trip_booking.saga.yaml", "--participants",
              "examples.participants.trip", "--db", db, "--saga-id", "t1")
    assert run.returncode == 0, run.stderr
    before = cli("status", "--db", db, "--view")
    assert "not projected" in before.stdout and "behind the log" in before.stdout
    assert cli("project", "--db", db, "--once").returncode == 0
    after = cli("status", "--db", db, "--view")
    assert "t1  trip_booking  COMPLETED" in after.stdout
    assert "behind" not in after.stdout


def test_postgres_appends_wake_the_projector(pg_url: str, pg_schema: str) -> None:
    import threading

    from runtime._postgres import PostgresLog

    log = PostgresLog(pg_url, schema=pg_schema)
    writer = PostgresLog(pg_url, schema=pg_schema)
    try:
        assert not log.wait_for_appends(0.05)  # nothing yet
        t = threading.Timer(0.2, lambda: _run(writer, [{}]))
        t.start()
        assert log.wait_for_appends(30.0)
        t.join()
    finally:
        log.close()
        writer.close()

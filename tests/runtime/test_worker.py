"""Workers sharing one log: each free instance goes to one worker, orphans are
recovered once their lease runs out, and a worker that lost its lease cannot
append. The same tests run on the in-memory, SQLite and PostgreSQL logs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import Script

from runtime import Engine, LeaseLost, LogRecord, MemoryLog, SagaInfo, SQLiteLog
from runtime._worker import Worker
from saga_models import SagaBuilder
from saga_models import semantics as sem
from verifier.conformance import conform

SAGA = (SagaBuilder("w")
        .step("a", participant="p", action="do_a", compensation="undo_a")
        .step("b", participant="p", action="do_b", compensation="undo_b")
        .step("c", participant="p", action="do_c", kind="pivot")
        .build())


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def logs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory of connections to one shared log."""
    opened: list[Any] = []
    if request.param == "memory":
        shared = MemoryLog()

        def make() -> Any:
            return shared
    elif request.param == "sqlite":
        def make() -> Any:
            opened.append(SQLiteLog(tmp_path / "w.db"))
            return opened[-1]
    else:
        from runtime._postgres import PostgresLog

        url = request.getfixturevalue("pg_url")
        schema = request.getfixturevalue("pg_schema")

        def make() -> Any:
            opened.append(PostgresLog(url, schema=schema))
            return opened[-1]
    yield make
    for log in opened:
        log.close()


def _info(sid: str) -> SagaInfo:
    return SagaInfo(saga_id=sid, name="n", definition_hash="h", created_at=float(
        sid[1:]))


def test_each_free_instance_is_claimed_once(logs: Any) -> None:
    first, second = logs(), logs()
    for k in range(10):
        first.create(_info(f"s{k}"), LogRecord(saga_id=f"s{k}", seq=0, kind="start",
                                               definition_hash="h"))
    a = first.claimable(owner="A", lease_until=50.0, now=1.0, limit=4)
    b = second.claimable(owner="B", lease_until=50.0, now=1.0, limit=100)
    assert [i.saga_id for i in a] == ["s0", "s1", "s2", "s3"]
    assert {i.saga_id for i in b} == {f"s{k}" for k in range(4, 10)}
    assert second.claimable(owner="B", lease_until=50.0, now=2.0) == []
    # Once A's leases run out, its instances are free again.
    again = second.claimable(owner="B", lease_until=200.0, now=60.0)
    assert {i.saga_id for i in again} == {f"s{k}" for k in range(10)}
    assert {first.get(f"s{k}").owner for k in range(10)} == {"B"}


def _engine_for(log: Any, script: Script) -> Any:
    engines: dict[str, Engine] = {}

    def resolve(info: SagaInfo, worker_id: str) -> Engine:
        if worker_id not in engines:
            engines[worker_id] = Engine(SAGA, script.participants(SAGA), log=log,
                                        worker_id=worker_id, lease_seconds=30.0)
        return engines[worker_id]
    return resolve


def test_two_workers_drive_every_submitted_saga_once(logs: Any) -> None:
    script = Script({("b", "action"): ["fail"] * 3 * 4})  # four sagas abort at b
    submitter = Engine(SAGA, script.participants(SAGA), log=logs())
    for k in range(12):
        submitter.submit({"n": k}, saga_id=f"w-{k:02d}")

    async def main() -> list[Any]:
        workers = [Worker(logs(), _engine_for(logs(), script), capacity=3,
                          poll=0.01) for _ in range(2)]
        return await asyncio.gather(*(w.run(idle_exit=0.2) for w in workers))

    stats = asyncio.run(main())
    log = logs()
    infos = log.instances()
    assert len(infos) == 12
    assert all(i.status in {"COMPLETED", "COMPENSATED"} for i in infos), infos
    assert sum(s.claimed for s in stats) == 12  # each claimed by exactly one
    assert sum(s.outcomes.total() for s in stats) == 12
    assert sum(s.recovered for s in stats) == 0
    for info in infos:
        result = conform(SAGA, log.records(info.saga_id))
        assert result.conforms, result.message
    # every completed action ran once per key (idempotent participants record)
    assert sum(len(keys) for keys in script.applied.values()) >= 12


def test_orphan_is_recovered_and_the_old_owner_is_fenced(logs: Any) -> None:
    script = Script()
    log_a, log_b = logs(), logs()
    a = Engine(SAGA, script.participants(SAGA), log=log_a, worker_id="A")
    a.submit({}, saga_id="o-1")
    [_claimed] = log_a.claimable(owner="A", lease_until=10.0, now=0.0)
    # A logs a dispatch, then stalls (SIGSTOP) past its lease.
    log_a.append("o-1", [LogRecord(saga_id="o-1", seq=1, kind="dispatch", step="a",
                                   step_index=0, attempt=1,
                                   definition_hash=SAGA.content_hash)],
                 owner="A", now=1.0)
    [orphan] = log_b.claimable(owner="B", lease_until=1e12, now=11.0)
    assert orphan.saga_id == "o-1" and orphan.next_seq == 2

    async def drive_b() -> Any:
        worker = Worker(log_b, _engine_for(log_b, script), worker_id="B", poll=0.01)
        engine = worker.resolve(orphan, "B")
        engine.adopt(orphan)
        return await engine.wait("o-1")

    result = asyncio.run(drive_b())
    assert result.outcome.value == "COMPLETED"
    records = log_b.records("o-1")
    assert [r.kind for r in records].count("recover") == 1
    assert conform(SAGA, records).conforms
    # A wakes up and tries to go on: the append is refused, nothing is logged.
    with pytest.raises(LeaseLost):
        log_a.append("o-1", [LogRecord(saga_id="o-1", seq=2, kind="reply",
                                       step="a", step_index=0, outcome="ok",
                                       definition_hash=SAGA.content_hash)],
                     owner="A", now=12.0)
    assert log_b.records("o-1") == records
    assert sem.Phase[log_b.get("o-1").status] is sem.Phase.COMPLETED

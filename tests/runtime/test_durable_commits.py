"""What the runtime commits, and when: every command's record is durable (seen
by another connection) before the command reaches its participant, and a
sequential saga pays one commit per command plus one (issue 18, item 6)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from runtime import (
    CorruptLog,
    Engine,
    EventType,
    InProcessBus,
    LogRecord,
    SagaEvent,
    SagaInfo,
    SagaOutcome,
    SQLiteLog,
    StepContext,
)
from runtime._log import Create
from saga_models import Saga, SagaBuilder


class Boom(Exception):
    """The failure that sends a saga down its compensating path."""


def _chain() -> Saga:
    return (SagaBuilder("chain")
            .step("a", participant="p", action="a", compensation="ua")
            .step("b", participant="p", action="b", compensation="ub")
            .step("c", participant="p", action="c", compensation="uc")
            .build())


class Probe:
    """Participants that, when called, look for their own dispatch record
    through a second connection: it sees only what has committed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0
        self.unlogged: list[tuple[str, str, int]] = []

    def _check(self, ctx: StepContext, kind: str) -> None:
        self.calls += 1
        with sqlite3.connect(self.path) as db:
            row = db.execute(
                "SELECT count(*) FROM log WHERE saga_id=? AND kind=? AND step=? "
                "AND attempt=?", (ctx.saga_id, kind, ctx.step, ctx.attempt)
            ).fetchone()
        if row[0] != 1:
            self.unlogged.append((ctx.saga_id, f"{kind}:{ctx.step}", ctx.attempt))

    def participants(self) -> dict[str, dict[str, Any]]:
        async def act(ctx: StepContext) -> dict[str, str]:
            self._check(ctx, "dispatch")
            if ctx.step == "c" and ctx.input.get("fail"):
                raise Boom("no")
            return {"ref": ctx.idempotency_key}

        async def undo(ctx: StepContext) -> None:
            self._check(ctx, "comp_dispatch")

        return {"p": {"a": act, "b": act, "c": act,
                      "ua": undo, "ub": undo, "uc": undo}}


class LateCreate(SQLiteLog):
    """A seeded bug: ``create`` commits the start record but leaves the first
    dispatches for the next transaction, after the command may have left."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, durability="full")
        self.late: dict[str, tuple[list[LogRecord], str]] = {}

    def create(self, info: SagaInfo, first: LogRecord,
               more: Sequence[LogRecord] = ()) -> None:
        super().create(info, first)
        self.late[info.saga_id] = (list(more), info.owner or "")

    def _write_late(self) -> None:
        for sid, (more, owner) in self.late.items():
            if more:
                super().append(sid, more, owner=owner)
        self.late = {}

    def append(self, saga_id: str, records: Sequence[LogRecord], *, owner: str,
               status: str = "running", now: float = 0.0,
               sync: bool = True) -> None:
        self._write_late()
        super().append(saga_id, records, owner=owner, status=status, now=now,
                       sync=sync)

    def append_many(self, batches: Sequence[tuple[str, Sequence[LogRecord], str]],
                    *, owner: str, now: float = 0.0, sync: bool = True,
                    creates: Sequence[Create] = ()) -> list[Exception | None]:
        self._write_late()
        errors: list[Exception | None] = []
        for info, first, more in creates:  # the same bug in a group commit
            try:
                self.create(info, first, more)
                errors.append(None)
            except CorruptLog as exc:
                errors.append(exc)
        return errors + super().append_many(batches, owner=owner, now=now,
                                            sync=sync)


def _run_many(engine: Engine, n: int, *, concurrent: int) -> list[SagaOutcome]:
    async def main() -> list[SagaOutcome]:
        sem = asyncio.Semaphore(concurrent)

        async def one(i: int) -> SagaOutcome:
            async with sem:
                return (await engine.run({"fail": i % 3 == 0})).outcome

        try:
            return list(await asyncio.gather(*(one(i) for i in range(n))))
        finally:
            await engine.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("concurrent", [1, 8])
@pytest.mark.parametrize("durability", ["commands", "full"])
def test_every_command_is_durable_before_it_is_sent(
        tmp_path: Path, durability: str, concurrent: int) -> None:
    path = tmp_path / "s.db"
    log = SQLiteLog(path, durability=durability)
    probe = Probe(path)
    outcomes = _run_many(Engine(_chain(), probe.participants(), log=log), 12,
                         concurrent=concurrent)
    log.close()
    assert outcomes.count(SagaOutcome.COMPENSATED) == 4
    assert outcomes.count(SagaOutcome.COMPLETED) == 8
    assert probe.calls == 8 * 3 + 4 * 5
    assert probe.unlogged == []


def test_the_probe_catches_a_dispatch_committed_after_its_command(
        tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    log = LateCreate(path)
    probe = Probe(path)
    _run_many(Engine(_chain(), probe.participants(), log=log), 3, concurrent=1)
    log.close()
    # The first step of every saga left before its dispatch was durable.
    assert sorted(k for _, k, _ in probe.unlogged) == ["dispatch:a"] * 3


def _commits(log: SQLiteLog) -> list[str]:
    seen: list[str] = []
    # The statements the log's own connection runs (a test-only look inside).
    log._db.set_trace_callback(seen.append)
    return seen


@pytest.mark.parametrize("fail", [False, True])
def test_a_sequential_saga_commits_once_per_command_plus_once(
        tmp_path: Path, fail: bool) -> None:
    log = SQLiteLog(tmp_path / "s.db", durability="full")
    probe = Probe(tmp_path / "s.db")
    bus = InProcessBus()
    events: list[SagaEvent] = []
    bus.subscribe(events.append)
    engine = Engine(_chain(), probe.participants(), log=log, bus=bus)
    statements = _commits(log)

    async def main() -> SagaOutcome:
        try:
            return (await engine.run({"fail": fail})).outcome
        finally:
            await engine.aclose()

    outcome = asyncio.run(main())
    log.close()
    assert outcome is (SagaOutcome.COMPENSATED if fail else SagaOutcome.COMPLETED)
    commands = sum(e.type in (EventType.STEP_STARTED,
                              EventType.COMPENSATION_STARTED) for e in events)
    assert commands == (5 if fail else 3)
    # start + first dispatch; each reply with the next command; the last
    # reply with the end marker. Before, the start record had its own.
    assert statements.count("COMMIT") == commands + 1


def test_a_refused_start_sends_nothing(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "s.db")
    probe = Probe(tmp_path / "s.db")
    engine = Engine(_chain(), probe.participants(), log=log)

    async def main() -> None:
        try:
            await engine.run({}, saga_id="x")
            assert probe.calls == 3
            with pytest.raises(CorruptLog, match="already exists"):
                await engine.start({}, saga_id="x")
            await asyncio.sleep(0.01)
        finally:
            await engine.aclose()

    asyncio.run(main())
    log.close()
    assert probe.calls == 3  # the duplicate's first command never left
    assert probe.unlogged == []


@pytest.mark.parametrize(("durability", "level"),
                         [("os", 1), ("commands", 1), ("full", 2)])
def test_synchronous_level_is_the_one_asked_for(
        tmp_path: Path, durability: str, level: int) -> None:
    log = SQLiteLog(tmp_path / "s.db", durability=durability)
    # SQLite's default is FULL (2): a log that assumed otherwise kept it.
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == level
    log.close()


@pytest.mark.parametrize("group_commit", [True, False])
def test_sagas_started_together_share_one_commit(
        tmp_path: Path, group_commit: bool) -> None:
    log = SQLiteLog(tmp_path / "s.db", durability="full")
    probe = Probe(tmp_path / "s.db")
    engine = Engine(_chain(), probe.participants(), log=log,
                    group_commit=group_commit)
    statements = _commits(log)

    async def main() -> list[SagaOutcome]:
        try:
            ids = await asyncio.gather(*(engine.start({}) for _ in range(8)))
            started = statements.count("COMMIT")
            assert started == (1 if group_commit else 8)
            return [(await engine.wait(i)).outcome for i in ids]
        finally:
            await engine.aclose()

    assert asyncio.run(main()) == [SagaOutcome.COMPLETED] * 8
    log.close()
    assert probe.unlogged == []


def test_a_duplicate_id_in_a_group_is_refused_alone(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "s.db")
    probe = Probe(tmp_path / "s.db")
    engine = Engine(_chain(), probe.participants(), log=log)

    async def main() -> list[object]:
        try:
            out = await asyncio.gather(
                engine.run({}, saga_id="x"), engine.run({}, saga_id="x"),
                engine.run({}, saga_id="y"), return_exceptions=True)
            await asyncio.sleep(0.01)
            return list(out)
        finally:
            await engine.aclose()

    first, second, other = asyncio.run(main())
    log.close()
    assert getattr(first, "outcome", None) is SagaOutcome.COMPLETED
    assert isinstance(second, CorruptLog)
    assert getattr(other, "outcome", None) is SagaOutcome.COMPLETED
    assert probe.calls == 6  # the duplicate's first command never left
    assert probe.unlogged == []


def test_a_start_cancelled_after_its_commit_is_still_driven(
        tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "s.db")
    probe = Probe(tmp_path / "s.db")
    engine = Engine(_chain(), probe.participants(), log=log)

    async def main() -> SagaOutcome:
        try:
            starting = asyncio.create_task(engine.start({}, saga_id="x"))
            await asyncio.sleep(0)  # start() has queued its group commit
            starting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await starting
            # The commit wrote its start and first dispatch: it is driven
            # (a log with nobody driving it would say "recover it" here).
            return (await engine.wait("x")).outcome
        finally:
            await engine.aclose()

    assert asyncio.run(main()) is SagaOutcome.COMPLETED
    log.close()
    assert probe.calls == 3
    assert probe.unlogged == []


@pytest.mark.parametrize(("durability", "level"),
                         [("os", 1), ("commands", 1), ("full", 2)])
def test_a_claim_is_fsynced_only_when_every_commit_is(
        tmp_path: Path, durability: str, level: int) -> None:
    log = SQLiteLog(tmp_path / "s.db", durability=durability)
    info = SagaInfo(saga_id="s", name="n", definition_hash="h", owner=None)
    log.create(info, LogRecord(saga_id="s", seq=0, kind="start",
                               definition_hash="h"))
    assert log.claim("s", owner="w", lease_until=10.0, now=1.0)
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == level
    assert [i.saga_id for i in log.claimable(owner="v", lease_until=20.0,
                                             now=11.0)] == ["s"]
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == level
    log.close()

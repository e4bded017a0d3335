"""The Redis Streams bus on a real server (scripts/redis.sh): its protocol,
the refusals, and a workflow whose services run as separate processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.workflow import (
    BusError,
    Envelope,
    LogEntry,
    RedisBus,
    ServiceProcess,
    WorkflowStore,
    conforms,
    process_diagnostics,
    start_instance,
)
from saga_models import InvalidDefinition, load
from saga_models.workflow import Workflow, WorkflowBuilder
from tests.workflow import redis_participants as rp

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "examples" / "workflows" / "order_saga.workflow.yaml"
PARTICIPANTS = "tests.workflow.redis_participants:order_saga"


def _order_saga() -> Workflow:
    wf = load(ORDER)
    assert isinstance(wf, Workflow)
    return wf


def _ping() -> Workflow:
    return (WorkflowBuilder("ping").start("ping")
            .service("a", initial="W", final=["D"]).on("W", "pong", to="D")
            .service("b", initial="I").on("I", "ping", to="I", emit=["pong"])
            .outcome(a="D").build())


def _fields(wid: str, seq: int, event: str, receiver: str) -> dict[str, str]:
    return {"wid": wid, "seq": str(seq), "eid": f"{wid}:{seq}", "event": event,
            "sender": "env", "receiver": receiver}


# --- the protocol ----------------------------------------------------------------
def test_group_read_ack(redis_url: str, stream_prefix: str) -> None:
    wf = _ping()
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    bus.ensure_group("b")
    bus.ensure_group("b")  # idempotent: BUSYGROUP is not an error
    env = Envelope(event_id="w:0", event="ping", receiver="b", sender="env")
    assert bus.publish([("w", env)]) == 1
    got = bus.read("b", "c1", block_ms=100)
    assert [f["event"] for _, f in got] == ["ping"]
    assert bus.read("b", "c2", block_ms=50) == []  # a group delivers once
    assert bus.pending("b") == 1
    bus.ack("b", got[0][0])
    assert bus.pending("b") == 0
    assert bus.client.xlen(bus.stream("b")) == 0  # acked entries are deleted
    bus.close()


def test_reclaim_after_min_idle(redis_url: str, stream_prefix: str) -> None:
    """An entry a consumer took and never acknowledged (it died) goes to
    another consumer once idle past min-idle, and not before."""
    wf = _ping()
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    bus.ensure_group("b")
    bus.publish([("w", Envelope(event_id="w:0", event="ping", receiver="b",
                                sender="env"))])
    (entry, _), = bus.read("b", "dead", block_ms=100)
    assert bus.reclaim("b", "alive", min_idle_ms=60_000) == []
    time.sleep(0.15)
    got = bus.reclaim("b", "alive", min_idle_ms=100)
    assert [i for i, _ in got] == [entry]
    bus.close()


def test_unreachable_server_is_rt010() -> None:
    with pytest.raises(BusError, match=r"^\[RT010\].*redis.sh start"):
        RedisBus("redis://127.0.0.1:1/0", _ping())


def test_slow_server_is_rt012(redis_url: str, stream_prefix: str) -> None:
    bus = RedisBus(redis_url, _ping(), prefix=stream_prefix, socket_timeout=0.05)
    bus.ensure_group("b")
    with pytest.raises(BusError, match=r"^\[RT012\]"):
        bus.read("b", "c1", block_ms=1000)  # the server answers after 1 s
    bus.close()


def test_service_process_rides_out_bus_errors(
        redis_url: str, stream_prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing server (RT012/RT013) is retried with backoff: the process
    neither dies nor loses the event."""
    wf = _ping()
    store = WorkflowStore(tmp_path / "s.db")
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    start_instance(wf, store, bus, "w1")
    real = RedisBus.reclaim
    failures = iter([True, True])

    def flaky(self: RedisBus, *a: object, **kw: int) -> object:
        if next(failures, False):
            raise BusError("RT012", "injected", fix="none")
        return real(self, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(RedisBus, "reclaim", flaky)
    procs = [ServiceProcess(wf, s, None, store=store, bus=bus, min_idle=60)
             for s in ("a", "b")]

    async def go() -> None:
        await asyncio.gather(*(p.run(idle_exit=1.0) for p in procs))

    asyncio.run(go())
    assert sum(p.bus_errors for p in procs) == 2
    assert store.instances() == {"w1": "consistent"}
    assert conforms(wf, store.log("w1")).ok
    bus.close()


def test_bad_url_is_rt011() -> None:
    with pytest.raises(BusError, match=r"^\[RT011\]"):
        RedisBus("http://nowhere", _ping())


# --- what the model cannot see is refused ----------------------------------------
def test_process_diagnostics_both_ways() -> None:
    assert process_diagnostics(_order_saga(), "orders") == []
    assert process_diagnostics(_ping()) == []
    fifo = (WorkflowBuilder("f", order="fifo").start("ping")
            .service("a", initial="I").on("I", "ping", to="I").build())
    timer = (WorkflowBuilder("t").start("ping")
             .service("a", initial="I", final=["D"]).on("I", "ping", to="W")
             .timer("W", 5.0, to="D").build())
    assert [d.code for d in process_diagnostics(fifo)] == ["WF130"]
    assert process_diagnostics(timer) == []  # service processes fire timers
    bad = process_diagnostics(_ping(), "nobody")
    assert [d.code for d in bad] == ["WF132"] and "['a', 'b']" in bad[0].help


def test_service_process_refuses_fifo(redis_url: str, stream_prefix: str,
                                      tmp_path: Path) -> None:
    fifo = (WorkflowBuilder("f", order="fifo").start("ping")
            .service("a", initial="I").on("I", "ping", to="I").build())
    bus = RedisBus(redis_url, fifo, prefix=stream_prefix)
    with pytest.raises(InvalidDefinition, match="WF130"):
        ServiceProcess(fifo, "a", None, store=WorkflowStore(tmp_path / "s.db"),
                       bus=bus)
    bus.close()


# --- handling: once per outbox envelope ------------------------------------------
def _drain(procs: list[ServiceProcess], *, rounds: int = 50) -> None:
    async def go() -> None:
        for _ in range(rounds):
            busy = False
            for p in procs:
                busy = bool(await p.poll(block_ms=20)) or busy
            store = procs[0].store
            if not busy and "running" not in store.instances().values():
                return
    asyncio.run(go())


def test_second_relay_copy_is_no_step(redis_url: str, stream_prefix: str,
                                      tmp_path: Path) -> None:
    """A relay repeated after a crash puts a second entry for one outbox row on
    the stream: it is acknowledged without a model step."""
    wf = _ping()
    store = WorkflowStore(tmp_path / "s.db")
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    start_instance(wf, store, bus, "w1")
    snap = store.load("w1")
    assert snap is not None
    bus.publish([("w1", snap.outbox[0])])  # the crashed relay's second copy
    procs = [ServiceProcess(wf, s, None, store=store, bus=bus, min_idle=60)
             for s in ("a", "b")]
    _drain(procs)
    assert [p.steps for p in procs] == [1, 1]
    assert procs[1].stale == 1
    log = store.log("w1")
    assert [(e.service, e.event) for e in log] == [("b", "ping"), ("a", "pong")]
    assert conforms(wf, log).ok
    assert store.instances() == {"w1": "consistent"}
    assert bus.pending("a") == bus.pending("b") == 0
    bus.close()


def test_failed_handler_is_rolled_back_and_retried(
        redis_url: str, stream_prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that raises leaves no trace in the store and the entry
    pending; it is reclaimed after min-idle and handled once."""
    wf = _order_saga()
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(rp.LEDGER, str(ledger))
    monkeypatch.setenv(rp.FAIL_ONCE, str(tmp_path / "failed"))
    store = WorkflowStore(tmp_path / "s.db")
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    wid = "ok-1"
    assert rp.expected_states(wid)["orders"] == "COMPLETED"
    start_instance(wf, store, bus, wid)
    procs = [ServiceProcess(wf, s.name, rp.order_saga, store=store, bus=bus,
                            min_idle=0.05) for s in wf.services]
    _drain(procs, rounds=200)
    assert sum(p.failed for p in procs) == 1
    assert sum(p.reclaimed for p in procs) >= 1
    snap = store.load(wid)
    assert snap is not None and snap.states == rp.expected_states(wid)
    log = store.log(wid)
    assert len({(e.service, e.event_id) for e in log}) == len(log) == 5
    assert conforms(wf, log).ok
    bus.close()


def test_exactly_once_handling_seeded_bug(redis_url: str, stream_prefix: str,
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The check the kill test relies on can fail: without the outbox check a
    second relay copy is handled again and the log shows the event twice (and
    the model refuses the log)."""
    wf = _ping()
    store = WorkflowStore(tmp_path / "s.db")
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    start_instance(wf, store, bus, "w1")
    snap = store.load("w1")
    assert snap is not None
    bus.publish([("w1", snap.outbox[0])])
    monkeypatch.setattr(WorkflowStore, "is_pending", lambda *a: True)
    procs = [ServiceProcess(wf, s, None, store=store, bus=bus, min_idle=60)
             for s in ("a", "b")]
    _drain(procs)
    log = store.log("w1")
    assert [e.event for e in log].count("ping") == 2
    assert not conforms(wf, log).ok
    bus.close()


REMINDER = Path(__file__).with_name("reminder.workflow.yaml")


@pytest.mark.parametrize("fire", [True, False])
def test_timers_fire_in_service_processes(
        redis_url: str, stream_prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, fire: bool) -> None:
    """``a`` gives up on a silent ``b`` when its timer fires in a's process;
    the seeded bug (no process fires timers) leaves those instances waiting."""
    wf = load(REMINDER)
    assert isinstance(wf, Workflow)
    if not fire:
        async def never(self: ServiceProcess) -> int:
            return 0
        monkeypatch.setattr(ServiceProcess, "fire_timers", never)
    store = WorkflowStore(tmp_path / "s.db")
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    wids = ["r0", "r4"]  # b replies to r0, stays silent for r4
    assert [rp.silent(w) for w in wids] == [False, True]
    for w in wids:
        start_instance(wf, store, bus, w)
    procs = [ServiceProcess(wf, s, rp.reminder, store=store, bus=bus,
                            min_idle=60) for s in ("a", "b")]
    if not fire:
        time.sleep(0.4)  # past a's timer (0.3s), which would have fired
    _drain(procs, rounds=30 if fire else 5)
    states = {w: store.load(w).states for w in wids}  # type: ignore[union-attr]
    if not fire:
        assert store.instances()["r4"] == "running"
        assert states["r4"] == {"a": "WAITING", "b": "SILENT"}
        return
    assert store.instances() == {"r0": "consistent", "r4": "consistent"}
    assert states["r4"] == {"a": "GAVE_UP", "b": "SILENT"}
    assert states["r0"]["b"] == "REPLIED"  # a may have given up first: allowed
    assert procs[0].timers >= 1 and procs[1].timers == 0
    for w in wids:
        log = store.log(w)
        assert "timer" in [e.kind for e in log] or states[w]["a"] == "ANSWERED"
        assert conforms(wf, log).ok, conforms(wf, log).message
    bus.close()


# --- services as separate processes ------------------------------------------------
def _cli(*args: str, env: dict[str, str] | None = None
         ) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "sagaproof", *args], cwd=ROOT,
                            env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_services_as_processes_conform(redis_url: str, stream_prefix: str,
                                       tmp_path: Path) -> None:
    """Three instances, one process per service: every instance reaches the
    outcome its handlers choose, each event is handled once, logs conform."""
    wf = _order_saga()
    db = tmp_path / "wf.db"
    common = ["--bus", redis_url, "--db", str(db), "--stream-prefix", stream_prefix]
    wids = ["i0", "i1", "i4"]  # refunded, charged, declined
    outcomes = {rp.expected_states(w)["payments"] for w in wids}
    assert outcomes == {"CHARGED", "DECLINED", "REFUNDED"}  # every path
    start = _cli("workflow-start", str(ORDER), *common,
                 *[a for w in wids for a in ("--id", w)])
    _, err = start.communicate(timeout=120)
    assert start.returncode == 0, err
    procs = [_cli("workflow-service", str(ORDER), *common, "--service", s.name,
                  "--participants", PARTICIPANTS)
             for s in wf.services]
    store = WorkflowStore(db)
    deadline = time.monotonic() + 120
    while "running" in store.instances().values() and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in procs:
        p.send_signal(signal.SIGTERM)  # a clean stop prints the counts
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert store.instances() == dict.fromkeys(sorted(wids), "consistent")
    assert store.outbox_size() == 0
    for w in wids:
        snap = store.load(w)
        assert snap is not None and snap.states == rp.expected_states(w)
        log = store.log(w)
        assert len({(e.service, e.event_id) for e in log}) == len(log)
        assert conforms(wf, log).ok, conforms(wf, log).message
    steps = [int(m) for o, _ in outs for m in re.findall(r"(\d+) steps", o)]
    assert sum(steps) == 7 + 5 + 3  # each path's deliveries, once
    # workflow-status replays the shared store's logs; a tampered log fails.
    status = _cli("workflow-status", str(ORDER), "--db", str(db), "--conform")
    out, err = status.communicate(timeout=120)
    assert status.returncode == 0, err
    assert out.count("consistent") == 3 and out.count("log conforms") == 3
    raw = sqlite3.connect(db)
    with raw:
        raw.execute("UPDATE wf_log SET to_state='DECLINED' WHERE "
                    "workflow_id='i1' AND service='payments'")
    raw.close()
    status = _cli("workflow-status", str(ORDER), "--db", str(db), "--conform")
    out, _ = status.communicate(timeout=120)
    assert status.returncode == 1 and out.count("DOES NOT CONFORM") == 1, out


def test_input_reaches_handlers_in_every_process(
        redis_url: str, stream_prefix: str, tmp_path: Path) -> None:
    """The example handlers decline a charge over 100 and find no stock when
    ``in_stock`` is false: the input given at start reaches both services."""
    from examples.workflows.handlers import order_saga as handlers

    wf = _order_saga()
    store = WorkflowStore(tmp_path / "s.db")
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    start_instance(wf, store, bus, "big", input={"amount": 500})
    start_instance(wf, store, bus, "nostock", input={"in_stock": False})
    start_instance(wf, store, bus, "plain")
    procs = [ServiceProcess(wf, s.name, handlers, store=store, bus=bus,
                            min_idle=60) for s in wf.services]
    _drain(procs, rounds=100)
    got = {w: store.load(w).states["payments"]  # type: ignore[union-attr]
           for w in ("big", "nostock", "plain")}
    assert got == {"big": "DECLINED", "nostock": "REFUNDED", "plain": "CHARGED"}
    bus.close()


RACE = Path(__file__).with_name("race.workflow.yaml")


def test_cross_service_guards_stay_atomic(redis_url: str, stream_prefix: str,
                                          tmp_path: Path) -> None:
    """x and y each take the prize only if the other has not (a guard over the
    other's state), in separate processes whose handlers overlap in time: one
    winner per instance, every log a path of the model."""
    wf = load(RACE)
    assert isinstance(wf, Workflow)
    db = tmp_path / "wf.db"
    store = WorkflowStore(db)
    bus = RedisBus(redis_url, wf, prefix=stream_prefix)
    wids = [f"r{i}" for i in range(20)]
    for w in wids:
        start_instance(wf, store, bus, w)
    common = ["--bus", redis_url, "--db", str(db), "--stream-prefix", stream_prefix]
    env = {rp.DELAY: "0.02"}
    procs = [_cli("workflow-service", str(RACE), *common, "--service", s,
                  "--participants", "tests.workflow.redis_participants:race",
                  env=env) for s in ("x", "y")]
    deadline = time.monotonic() + 120
    while "running" in store.instances().values() and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert set(store.instances().values()) == {"consistent"}
    for w in wids:
        snap = store.load(w)
        assert snap is not None
        assert sorted(snap.states.values()) == ["FIRST", "SECOND"]
        assert conforms(wf, store.log(w)).ok
    bus.close()


def test_two_winners_do_not_conform() -> None:
    """The check above can fail: a log where both services read the other as
    IDLE (a guard evaluated outside the step's transaction) is no path of the
    model."""
    wf = load(RACE)
    assert isinstance(wf, Workflow)
    log = [LogEntry(seq=i, kind="deliver", service=s, event="go",
                    event_id=f"w:{i}", sender="env", duplicate=False,
                    from_state="IDLE", to_state="FIRST", emitted=(), at=0.0)
           for i, s in enumerate(("x", "y"))]
    assert conforms(wf, log[:1]).ok
    verdict = conforms(wf, log)
    assert not verdict.ok and "SECOND" in verdict.message


def test_cli_refuses_bad_input(redis_url: str, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.workflow.yaml"
    fifo.write_text("workflow: f\nbus: {order: fifo}\nstart: [ping]\n"
                    "services:\n  a:\n    initial: I\n    transitions:\n"
                    "      - {from: I, on: ping, to: I}\n")
    cases = [
        (["workflow-service", str(fifo), "--service", "a"], "WF130"),
        (["workflow-service", str(ORDER), "--service", "nobody"], "WF132"),
        (["workflow-start", str(ORDER), "--bus", "redis://127.0.0.1:1/0",
          "--id", "x"], "RT010"),
        (["workflow-start", str(ROOT / "examples" / "trip_booking.saga.yaml"),
          "--id", "x"], "WF133"),
        (["workflow-status", str(ORDER)], "RT001"),
        (["workflow-start", str(ORDER), "--id", "x", "--input", "{bad"],
         "WF134"),
    ]
    for args, code in cases:
        p = _cli(*args, "--db", str(tmp_path / "x.db"))
        _, err = p.communicate(timeout=120)
        assert p.returncode == 2 and code in err and "Traceback" not in err, err

"""Crash scenarios with real processes, and the figures the project keeps.

Each scenario drives ``kill_worker.py`` processes against one SQLite log and one
participant ledger, hurts them (SIGKILL at random points, during compensation,
during recovery; two recoverers at once; SIGSTOP past the lease), lets a last
worker finish, and then measures from the files alone (:func:`analyse`):

- ``re_executions``: participant calls beyond the first per step (re-sends of an
  in-flight step with its idempotency key: allowed, counted);
- ``lost_steps``: a call the log never ordered, or an ok reply whose effect the
  participant does not have (must be 0);
- ``completed_rerun``: a step sent again after its ok reply was logged (must be
  0);
- ``non_terminal``: sagas not finished at the end (must be 0);
- ``conform_rejections``: logs the model or the summary audit rejects (must be 0).

Used by ``test_reliability.py`` (asserts) and ``bench/reliability.py`` (prints
the table kept in bench/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = HERE / "kill_worker.py"
sys.path.insert(0, str(HERE))
from kill_worker import trip  # noqa: E402


@dataclass(slots=True)
class Figures:
    """One scenario's run, as measured from the log and the ledger."""

    scenario: str
    kills: int = 0
    sagas: int = 0
    recovered: int = 0
    """Sagas with at least one ``recover`` record."""
    kills_in_compensation: int = 0
    """Recoveries that found the saga COMPENSATING (a kill landed during its
    compensation; one kill interrupts every saga the worker drove)."""
    re_executions: int = 0
    lost_steps: int = 0
    completed_rerun: int = 0
    non_terminal: int = 0
    conform_rejections: int = 0
    double_claims: int = 0
    """Sagas recovered twice by one phase of concurrent recoverers (must be 0)."""
    taken_over: int = 0
    """Sagas a second worker took from a SIGSTOPped one whose lease ran out."""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def row(self) -> str:
        """A Markdown table row (see :data:`HEADER`)."""
        return (f"| {self.scenario} | {self.kills} | {self.sagas} | {self.recovered} "
                f"| {self.kills_in_compensation} | {self.re_executions} "
                f"| {self.lost_steps} | {self.completed_rerun} | {self.non_terminal} "
                f"| {self.conform_rejections} | {self.double_claims} "
                f"| {self.taken_over} | {self.seconds:.0f} |")

    def ok(self) -> bool:
        """Whether every must-be-zero figure is zero."""
        return not (self.lost_steps or self.completed_rerun or self.non_terminal
                    or self.conform_rejections or self.double_claims
                    or self.problems)


HEADER = ("| scenario | kills | sagas | recovered | recovered mid-compensation "
          "| re-executions | lost steps | completed re-run | non-terminal "
          "| conform rejections | double claims | taken over | s |\n"
          "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")


class Worker:
    """One ``kill_worker.py`` process."""

    def __init__(self, db: Path, ledger: Path, *, total: int, delay: float,
                 mode: str = "mixed", lease: float = 60.0) -> None:
        err = (db.parent / "worker.err").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), "--db", str(db), "--ledger", str(ledger),
             "--total", str(total), "--delay", str(delay), "--mode", mode,
             "--lease", str(lease)], stdout=subprocess.PIPE, stderr=err, text=True)
        err.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.kill()
            tail = (db.parent / "worker.err").read_text()[-3000:]
            raise RuntimeError(f"worker did not start (said {line!r}):\n{tail}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.finish(timeout=60)

    def finish(self, timeout: float = 600) -> int:
        """Wait for the worker to exit; its exit code."""
        self.proc.communicate(timeout=timeout)
        return self.proc.returncode


def _kills(db: Path, ledger: Path, rng: random.Random, *, kills: int, total: int,
           delay: float, mode: str, window: tuple[float, float]) -> int:
    done = 0
    while done < kills:
        comps = _comp_dispatches(db) if mode == "compensate" else 0
        w = Worker(db, ledger, total=total, delay=delay, mode=mode)
        if mode == "compensate":
            # Aim at compensation (not at a time, which a loaded machine
            # shifts): wait for a new compensation to be sent, then kill
            # within the next call or two.
            give_up = time.monotonic() + 20.0
            while (_comp_dispatches(db) <= comps and w.alive()
                   and time.monotonic() < give_up):
                time.sleep(0.005)
        time.sleep(rng.uniform(*window))
        if not w.alive():
            w.finish()
            break  # all sagas finished: fewer kills than asked, reported as such
        w.kill()
        done += 1
    return done


def _finish(db: Path, ledger: Path, total: int) -> None:
    w = Worker(db, ledger, total=total, delay=0.0)
    code = w.finish()
    if code != 0:
        raise RuntimeError(f"the last worker exited {code}")


def random_kills(tmp: Path, *, kills: int, total: int, delay: float = 0.02,
                 mode: str = "mixed", seed: int = 1) -> Figures:
    """SIGKILL a worker at a random point, ``kills`` times, then finish."""
    started = time.monotonic()
    db, ledger = tmp / "saga.db", tmp / "ledger.db"
    window = (0.0, 0.25) if mode == "mixed" else (0.0, 0.04)
    n = _kills(db, ledger, random.Random(seed), kills=kills, total=total,
               delay=delay, mode=mode, window=window)
    _finish(db, ledger, total)
    name = "SIGKILL, random points" if mode == "mixed" else (
        "SIGKILL, every saga compensating")
    return analyse(db, ledger, name, kills=n, seconds=time.monotonic() - started)


def recover_kills(tmp: Path, *, kills: int, total: int, delay: float = 0.02,
                  seed: int = 2) -> Figures:
    """Leave many sagas unfinished, then SIGKILL recovering workers within
    30 ms of their start (while ``recover`` replays and re-sends), then finish.
    Workers here start no new sagas (``--total`` is already reached)."""
    started = time.monotonic()
    db, ledger = tmp / "saga.db", tmp / "ledger.db"
    rng = random.Random(seed)
    n = _kills(db, ledger, rng, kills=kills // 2, total=total, delay=delay,
               mode="mixed", window=(0.1, 0.25))
    m = 0
    for _ in range(kills - n):
        existing = _count(db)
        w = Worker(db, ledger, total=existing, delay=delay)
        time.sleep(rng.uniform(0.0, 0.03))
        if not w.alive():
            w.finish()
            continue
        w.kill()
        m += 1
    _finish(db, ledger, _count(db))
    fig = analyse(db, ledger, "SIGKILL during recover", kills=n + m,
                  seconds=time.monotonic() - started)
    return fig


def concurrent_recover(tmp: Path, *, kills: int, total: int,
                       delay: float = 0.02, seed: int = 3) -> Figures:
    """Kills leave sagas unfinished; then two recovering workers start at once
    (their predecessors are dead, so both may claim): no saga is taken twice."""
    started = time.monotonic()
    db, ledger = tmp / "saga.db", tmp / "ledger.db"
    n = _kills(db, ledger, random.Random(seed), kills=kills, total=total,
               delay=delay, mode="mixed", window=(0.1, 0.25))
    before = _recover_counts(db)
    existing = _count(db)
    a = Worker(db, ledger, total=existing, delay=delay)
    b = Worker(db, ledger, total=existing, delay=delay)
    codes = (a.finish(), b.finish())
    after = _recover_counts(db)
    _finish(db, ledger, existing)
    fig = analyse(db, ledger, "two concurrent recovers", kills=n,
                  seconds=time.monotonic() - started)
    fig.double_claims = sum(1 for sid, c in after.items() if c - before.get(sid, 0) > 1)
    if codes != (0, 0):
        fig.problems.append(f"recoverers exited {codes}")
    return fig


def sigstop_past_lease(tmp: Path, *, rounds: int, total: int,
                       delay: float = 0.05, lease: float = 1.0) -> Figures:
    """SIGSTOP a worker (short lease) mid-run, wait past its lease, let a second
    worker take its sagas over, then SIGCONT the first: it must not log or send
    anything more for them (its appends fail with LeaseLost)."""
    started = time.monotonic()
    db, ledger = tmp / "saga.db", tmp / "ledger.db"
    taken = 0
    for _ in range(rounds):
        a = Worker(db, ledger, total=total, delay=delay, lease=lease)
        time.sleep(0.3)
        if not a.alive():
            a.finish()
            break
        os.kill(a.proc.pid, signal.SIGSTOP)
        before = _recover_counts(db)
        time.sleep(lease * 1.5)
        b = Worker(db, ledger, total=_count(db), delay=delay, lease=lease)
        time.sleep(0.5)  # b has claimed a's expired leases and re-sent
        after = _recover_counts(db)
        taken += sum(1 for sid, c in after.items() if c > before.get(sid, 0))
        # a wakes up: whatever it logs for those sagas now fails its
        # compare-and-set on the owner (LeaseLost), so it sends nothing more.
        os.kill(a.proc.pid, signal.SIGCONT)
        time.sleep(1.0)
        a.kill()
        b.kill()
    _finish(db, ledger, total)
    fig = analyse(db, ledger, f"SIGSTOP past a {lease:g} s lease", kills=rounds,
                  seconds=time.monotonic() - started)
    fig.taken_over = taken
    return fig


def _comp_dispatches(db: Path) -> int:
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
        return int(con.execute(
            "SELECT count(*) FROM log WHERE kind='comp_dispatch'").fetchone()[0])


def _count(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return int(con.execute("SELECT count(*) FROM sagas").fetchone()[0])


def _recover_counts(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return dict(con.execute("SELECT saga_id, count(*) FROM log WHERE "
                                "kind='recover' GROUP BY saga_id").fetchall())


def analyse(db: Path, ledger: Path, scenario: str, *, kills: int,
            seconds: float) -> Figures:
    """The figures, from the log and the participants' ledger alone."""
    from runtime import SQLiteLog
    from runtime._replay import Replayed, _apply_record, audit
    from saga_models import semantics as sem
    from verifier.conformance import conform

    saga = trip()
    fig = Figures(scenario=scenario, kills=kills, seconds=seconds)
    with contextlib.closing(sqlite3.connect(ledger)) as con:
        effects = con.execute(
            "SELECT saga_id, step, calls, undone FROM effects").fetchall()
    seen: dict[str, dict[str, int]] = defaultdict(dict)
    for sid, step, calls, _undone in effects:
        seen[sid][step] = calls
    log = SQLiteLog(db, create=False)
    try:
        infos = log.instances()
        fig.sagas = len(infos)
        for info in infos:
            records = log.records(info.saga_id)
            if not conform(saga, records).conforms or audit(saga, info, records):
                fig.conform_rejections += 1
            sends: dict[str, int] = defaultdict(int)
            ok: set[str] = set()
            rep = Replayed(state=sem.initial_state(saga))
            recovered = False
            for r in records:
                if r.kind == "recover":
                    recovered = True
                    if sem.phase(rep.state) is sem.Phase.COMPENSATING:
                        fig.kills_in_compensation += 1
                    for i, step in enumerate(saga.steps):
                        if sem.field(rep.state, i, sem.ST) == sem.Status.RUNNING:
                            sends[step.name] += 1
                if r.kind == "dispatch" and r.step is not None:
                    if r.step in ok:
                        fig.completed_rerun += 1
                    sends[r.step] += 1
                if r.kind == "reply" and r.outcome == "ok" and r.step is not None:
                    ok.add(r.step)
                try:
                    rep.state = _apply_record(saga, rep, r)
                except ValueError:
                    break  # the model refuses the log: a conform rejection
            fig.recovered += recovered
            if sem.phase(rep.state) not in sem.TERMINAL:
                fig.non_terminal += 1
            mine = seen.get(info.saga_id, {})
            for step, calls in mine.items():
                fig.re_executions += max(0, calls - 1)
                if calls > sends[step]:
                    fig.lost_steps += 1  # a call the log never ordered
            fig.lost_steps += len(ok - set(mine))  # logged ok, no effect
    finally:
        log.close()
    return fig

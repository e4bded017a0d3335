"""Budgets for every backend: ``--timeout``, ``--max-states``, ``--max-memory``.

Each budget is tested both ways: a definition far beyond it ends ``unknown``
with the budget named (exit 3), and the same definition without the budget (or
a small one within it) gets its real verdict. Time bounds here only separate
"honoured" from "ignored" (the 4x8 saga runs for many minutes unbudgeted), so
they hold on a loaded CI machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from saga_models import Saga, SagaBuilder
from sagaproof.budget import parse_count, parse_seconds, parse_size
from sagaproof.cli import main
from verifier import Verdict, check
from verifier.smt import _z3

ROOT = Path(__file__).resolve().parent.parent
HOTEL = str(ROOT / "examples" / "hotel_cancel_needs_id.yaml")
TRIP = str(ROOT / "examples" / "trip_booking.saga.yaml")
WORKFLOW = str(ROOT / "examples" / "workflows" / "order_saga.workflow.yaml")
GENEROUS = 90.0
"""Seconds: far above a honoured 1-2 s budget, far below an ignored one."""


def _branches(k: int, m: int) -> Saga:
    """k parallel branches of m steps: explicit search and z3 both need minutes.
    Correct under every knob (the timed steps declare the late countermeasures),
    so only a budget can stop the search early."""
    b = SagaBuilder(f"branches{k}x{m}")
    for j in range(k):
        for i in range(m):
            b.step(f"b{j}s{i}", participant=f"p{j}", action="do",
                   compensation="undo", timeout=1.0, retry={"max_attempts": 2},
                   depends_on=[f"b{j}s{i - 1}"] if i else [],
                   empty_rollback=True, anti_suspension=True)
    return b.build()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process: memory budgets count RSS growth from its start."""
    return subprocess.run(
        [sys.executable, "-m", "sagaproof", *args, "--no-progress"],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


# --- units -------------------------------------------------------------------------
def test_units_parse() -> None:
    assert parse_size("100M") == 100 * 1024**2
    assert parse_size("2GiB") == 2 * 1024**3
    assert parse_size("1.5G") == int(1.5 * 1024**3)
    assert parse_size("100MB") == 100_000_000
    assert parse_size("4096") == 4096
    assert parse_count("5M") == 5_000_000
    assert parse_count("100_000") == 100_000
    assert parse_seconds("30s") == 30.0
    assert parse_seconds("1m30s") == 90.0
    assert parse_seconds("0.5") == 0.5


@pytest.mark.parametrize(("parse", "text", "code"), [
    (parse_count, "0", "SAGA191"), (parse_count, "-5", "SAGA191"),
    (parse_count, "lots", "SAGA190"), (parse_size, "0M", "SAGA191"),
    (parse_size, "100X", "SAGA190"), (parse_size, "-1G", "SAGA191"),
    (parse_seconds, "0s", "SAGA191"), (parse_seconds, "soon", "SAGA190"),
    (parse_seconds, "-3", "SAGA191"), (parse_seconds, "inf", "SAGA191"),
    (parse_seconds, "nan", "SAGA191"),
])
def test_nonsense_is_refused(parse: object, text: str, code: str) -> None:
    with pytest.raises(ValueError, match=code):
        parse(text)  # type: ignore[operator]


@pytest.mark.parametrize("flag", [
    ["--max-states", "0"], ["--max-states", "-5"], ["--max-memory", "100X"],
    ["--timeout", "0"], ["--timeout", "never"],
])
def test_cli_nonsense_budget_is_usage_error(
    flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", TRIP, *flag])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag[0] in err and "SAGA19" in err and "write e.g." in err
    assert "Traceback" not in err


def test_cli_units_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", TRIP, "--max-memory", "100M", "--max-states", "1M",
                 "--timeout", "2m", "--no-progress"])
    assert code == 0, capsys.readouterr()


def test_library_refuses_nonpositive_budgets() -> None:
    saga = _branches(1, 1)
    for kw in ({"max_states": 0}, {"max_memory": -1}, {"timeout": 0.0}):
        with pytest.raises(ValueError, match="positive"):
            check(saga, **kw)


# --- --timeout, per backend ----------------------------------------------------------
@pytest.mark.parametrize("backend", ["explicit", "smt", "auto"])
def test_timeout_honoured_on_saga(backend: str) -> None:
    started = time.monotonic()
    r = check(_branches(4, 8), backend=backend, timeout=1.5)
    elapsed = time.monotonic() - started
    assert elapsed < GENEROUS, f"--timeout ignored: {elapsed:.0f}s"
    assert r.verdict is Verdict.UNKNOWN
    unknown = [p for p in r.results if p.verdict is Verdict.UNKNOWN]
    assert unknown and all("--timeout 1.5s" in p.reason for p in unknown)


@pytest.mark.parametrize("backend", ["explicit", "smt", "auto"])
def test_timeout_generous_gives_the_real_verdict(backend: str) -> None:
    r = check(HOTEL, backend=backend, timeout=600)
    assert r["termination"].verdict is Verdict.VIOLATED


@pytest.mark.parametrize("backend", ["explicit", "smt", "auto"])
def test_timeout_honoured_on_workflow(backend: str) -> None:
    prop = ["deadlock_freedom"]
    r = check(WORKFLOW, backend=backend, properties=prop, timeout=0.001)
    assert r.verdict is Verdict.UNKNOWN
    unknown = [p for p in r.results if p.verdict is Verdict.UNKNOWN]
    assert unknown and all("--timeout 0.001s" in p.reason for p in unknown)
    generous = check(WORKFLOW, backend=backend, properties=prop, timeout=600)
    assert not any("--timeout" in p.reason for p in generous.results)


def test_cli_timeout_exit_3() -> None:
    started = time.monotonic()
    out = _cli("check", "examples/hotel_cancel_needs_id.yaml", "--backend", "smt",
               "--timeout", "1ms")
    assert time.monotonic() - started < GENEROUS
    assert out.returncode == 3, out.stderr
    assert "time budget reached: --timeout 0.001s" in out.stdout


# --- --max-states, per backend ----------------------------------------------------
@pytest.mark.parametrize("backend", ["explicit", "smt", "auto"])
def test_max_states_honoured(backend: str) -> None:
    """The livelock needs 8 events; 3 states (explicit) or 3 BMC frames (z3)
    cannot show it, and neither can prove termination: unknown, not violated."""
    r = check(HOTEL, backend=backend, max_states=3)
    term = r["termination"]
    assert term.verdict is Verdict.UNKNOWN, term.reason
    assert "--max-states" in term.reason
    assert check(HOTEL, backend=backend)["termination"].verdict is Verdict.VIOLATED


def test_max_states_bounds_workflow_bmc() -> None:
    r = check(WORKFLOW, backend="smt", max_states=2)
    assert r.verdict is Verdict.UNKNOWN
    assert any("BMC depth limited to 2 frames by --max-states" in p.reason
               for p in r.results)


# --- --max-memory, per backend -----------------------------------------------------
@pytest.mark.parametrize("backend", ["explicit", "smt", "auto"])
def test_max_memory_honoured(backend: str, tmp_path: Path) -> None:
    """1 MiB of growth is far below what 4x8 needs in any backend."""
    f = tmp_path / "wide.py"
    f.write_text(
        "import sys\nsys.path.insert(0, sys.argv[1])\n"
        "from tests.test_budgets import _branches\n"
        "from verifier import check\n"
        "r = check(_branches(4, 8), backend=sys.argv[2], max_memory=1024**2)\n"
        "for p in r.results: print(p.verdict.value, p.reason)\n"
    )
    started = time.monotonic()
    out = subprocess.run([sys.executable, str(f), str(ROOT), backend], check=False,
                         capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT)})
    assert time.monotonic() - started < GENEROUS
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines and all(not line.startswith("holds") for line in lines[:3])
    assert any("memory budget reached" in line and "--max-memory" in line
               for line in lines), out.stdout


def test_cli_max_memory_smt_exit_3_and_without_it_violated() -> None:
    low = _cli("check", "examples/hotel_cancel_needs_id.yaml", "--backend", "smt",
               "--max-memory", "1M")
    assert low.returncode == 3, low.stdout + low.stderr
    assert "memory budget reached" in low.stdout
    assert "Traceback" not in low.stderr
    high = _cli("check", "examples/hotel_cancel_needs_id.yaml", "--backend", "smt",
                "--max-memory", "4GiB")
    assert high.returncode == 1, high.stdout + high.stderr


def test_z3_memory_limit_is_cleared_after_the_check() -> None:
    """z3's memory limit is process-wide; left set, it would refuse later work."""
    import z3

    with _z3.budget(max_memory=1024**2):
        assert z3.get_param("memory_max_size") != "0"
    assert z3.get_param("memory_max_size") == "0"
    slv = _z3.new_solver()
    slv.add(z3.Int("x") > 1)
    assert slv.check() == z3.sat


# --- graph --states explores too ------------------------------------------------
def test_graph_states_honours_timeout_and_refuses_nonsense(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["graph", HOTEL, "--states", "--faults", "all", "--max-states",
                 "100000", "--timeout", "1ms"])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("stateDiagram-v2")
    assert "(raise --timeout)" in err
    main(["graph", HOTEL, "--states", "--faults", "all", "--max-states", "5"])
    assert "cut at 5 states (raise --max-states)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["graph", HOTEL, "--states", "--max-states", "0"])
    assert exc.value.code == 2


# --- sagaproof coverage explores the model too ------------------------------------
def _coverage_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sagaproof", "coverage", *args], check=False,
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_coverage_honours_its_budgets_and_says_it_was_cut(tmp_path: Path) -> None:
    data = tmp_path / "none.json"
    full = _coverage_cli("examples/trip_booking.saga.yaml", "--data", str(data),
                "--fail-under", "0")
    assert full.returncode == 0, full.stderr
    assert "incomplete" not in full.stdout
    cut = _coverage_cli("examples/trip_booking.saga.yaml", "--data", str(data),
               "--fail-under", "0", "--max-states", "10")
    assert cut.returncode == 0, cut.stderr
    assert "incomplete: state budget reached" in cut.stdout
    started = time.monotonic()
    slow = _coverage_cli("examples/trip_booking.saga.yaml", "--data", str(data),
                "--fail-under", "0", "--timeout", "1ms", "--json")
    assert time.monotonic() - started < GENEROUS
    assert slow.returncode == 0, slow.stderr
    assert "time budget reached" in slow.stdout
    bad = _coverage_cli("examples/trip_booking.saga.yaml", "--max-states", "0")
    assert bad.returncode == 2 and "SAGA191" in bad.stderr

"""Hostile and broken input: a located diagnostic and exit code 2, never a
traceback, never a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_models import InvalidDefinition, Saga, load, loads
from saga_models._source import MAX_BYTES
from sagaproof.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOOD = """\
saga: trip
steps:
  - name: reserve
    participant: flights
    compensation: cancel
    retry: {max_attempts: 3, initial_interval: 1s}
    timeout: 10s
  - name: charge
    participant: payments
    kind: pivot
compensation_policy: {retry: forever}
"""


def _diagnostics(path: Path) -> list[tuple[str, int]]:
    with pytest.raises(InvalidDefinition) as info:
        load(path)
    return [(d.code, d.span.line) for d in info.value.diagnostics]


def _write(tmp_path: Path, text: str | bytes, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert _diagnostics(tmp_path / "nope.yaml") == [("SAGA001", 0)]
    assert _diagnostics(tmp_path) == [("SAGA001", 0)]


def test_fifty_megabyte_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        chunk = b"# padding " * 100_000
        for _ in range(50 * 1024 * 1024 // len(chunk) + 1):
            fh.write(chunk)
    assert path.stat().st_size >= 50 * 1024 * 1024
    start = time.perf_counter()
    with pytest.raises(InvalidDefinition) as info:
        load(path)
    # A hang guard, not a speed target: parsing 50 MB of YAML takes minutes,
    # refusing it by size takes milliseconds; the bound only separates the two.
    assert time.perf_counter() - start < 10.0
    (d,) = info.value.diagnostics
    assert d.code == "SAGA002"
    assert "over the" in d.message and str(path) in d.span.file


def test_just_over_the_limit_in_memory() -> None:
    with pytest.raises(InvalidDefinition, match="SAGA002"):
        loads("#" * (MAX_BYTES + 1))


def test_billion_laughs_is_bounded(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    lines.append("saga: *a9")
    path = _write(tmp_path, "\n".join(lines) + "\n")
    start = time.perf_counter()
    found = _diagnostics(path)
    # A hang guard (expanding 9**9 aliases never ends), not a speed target.
    assert time.perf_counter() - start < 30.0
    assert [c for c, _ in found] == ["SAGA005"]


def test_merge_key_bomb_is_bounded(tmp_path: Path) -> None:
    lines = ["k0: &k0 {x0: 1, y0: 2}"]
    for i in range(1, 25):
        lines.append(f"k{i}: &k{i} {{a{i}: *k{i - 1}, b{i}: *k{i - 1}, "
                     f"<<: *k{i - 1}}}")
    path = _write(tmp_path, "\n".join(lines) + "\n")
    start = time.perf_counter()
    assert [c for c, _ in _diagnostics(path)] == ["SAGA005"]
    # A hang guard (2**24 merged keys), not a speed target.
    assert time.perf_counter() - start < 30.0


@pytest.mark.parametrize("text", [
    "a: &a [*a]\n",
    "a: &a {b: *a}\n",
    "a: &a {<<: *a}\n",
])
def test_recursive_aliases(tmp_path: Path, text: str) -> None:
    assert [c for c, _ in _diagnostics(_write(tmp_path, text))] == ["SAGA005"]


@pytest.mark.parametrize(("text", "name"), [
    ("[" * 5000 + "]" * 5000, "deep.yaml"),
    ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), "deep2.yaml"),
    ("[" * 100_000 + "]" * 100_000, "deep.json"),
    ("[" * 100 + "]" * 100, "shallow_but_too_deep.json"),
])
def test_deep_nesting(tmp_path: Path, text: str, name: str) -> None:
    assert [c for c, _ in _diagnostics(_write(tmp_path, text, name))] == ["SAGA005"]


@pytest.mark.parametrize(("text", "name", "expected"), [
    (b"saga: t\n\xff\xfe", "s.yaml", [("SAGA003", 0)]),
    ("", "s.yaml", [("SAGA006", 0)]),
    ("# only a comment\n", "s.yaml", [("SAGA006", 0)]),
    ("   \n", "s.json", [("SAGA006", 0)]),
    ("saga: t\nsteps: [\n", "s.yaml", [("SAGA004", 3)]),
    ("saga: t\n  steps: x\n", "s.yaml", [("SAGA004", 2)]),
    ('{"saga": "t",\n "steps": [}', "s.json", [("SAGA004", 2)]),
    ('{"saga": NaN}', "s.json", [("SAGA004", 0)]),
    ("saga: t\nsaga: u\n", "s.yaml", [("SAGA007", 2)]),
    ('{"saga": "t",\n "saga": "u"}', "s.json", [("SAGA007", 2)]),
    ("saga: !!python/object/apply:os.system [echo hi]\n", "s.yaml",
     [("SAGA008", 1)]),
    ("saga: !custom x\n", "s.yaml", [("SAGA008", 1)]),
    ("saga: t\nsteps:\n  - {name: a, participant: p, at: 2024-13-45}\n", "s.yaml",
     [("SAGA008", 3)]),
    ("? [a, b]\n: c\n", "s.yaml", [("SAGA004", 1)]),
    ("- just\n- a list\n", "s.yaml", [("SAGA121", 1)]),
    ("42\n", "s.yaml", [("SAGA121", 1)]),
    ('"saga"', "s.json", [("SAGA121", 1)]),
    ("saga: t\n", "s.yaml", [("SAGA123", 1)]),
    ("saga: t\nsteps: 3\n", "s.yaml", [("SAGA124", 2)]),
    ("saga: [t]\nsteps: []\n", "s.yaml", [("SAGA100", 1), ("SAGA124", 1)]),
    ("saga: !!set {a, b}\n", "s.yaml", [("SAGA008", 1)]),
    ("saga: !!omap [a: 1]\n", "s.yaml", [("SAGA008", 1)]),
    ("saga: t\nsteps:\n  - 5\n", "s.yaml", [("SAGA120", 3)]),
])
def test_malformed_files(tmp_path: Path, text: str | bytes, name: str,
                         expected: list[tuple[str, int]]) -> None:
    assert _diagnostics(_write(tmp_path, text, name)) == expected


def test_a_fifo_cannot_hang_the_loader(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    writer = subprocess.Popen(
        [sys.executable, "-c",
         f"f = open({str(fifo)!r}, 'wb')\n"
         f"chunk = b'#' * 65536\n"
         f"try:\n    [f.write(chunk) for _ in range({MAX_BYTES // 65536 + 40})]\n"
         f"except BrokenPipeError:\n    pass\n"])
    try:
        assert [c for c, _ in _diagnostics(fifo)] == ["SAGA002"]
    finally:
        writer.kill()
        writer.wait(timeout=10)


# --- the CLI ---------------------------------------------------------------------
def test_cli_bad_input_exits_2_with_located_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "saga: t\nsteps:\n  - name: a\n    participant: p\n"
                  "    compensation: u\n    timeout: fast\n    retyr: {}\n")
    assert main(["check", "--no-progress", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6:14: error SAGA126: step 'a': timeout='fast'" in err
    assert f"{path}:7:5: error SAGA122: unknown key 'retyr'" in err
    assert "help: did you mean 'retry'?" in err
    assert "Traceback" not in err


def test_cli_missing_file_among_good_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, GOOD, "good.yaml")
    assert main(["check", "--no-progress", str(good),
                 str(tmp_path / "missing.yaml")]) == 2
    captured = capsys.readouterr()
    assert "error SAGA001: no such file" in captured.err
    assert "trip" in captured.out  # the good file was still checked


@pytest.mark.parametrize("make", ["bomb", "huge", "binary"])
def test_cli_process_never_shows_a_traceback(tmp_path: Path, make: str) -> None:
    path = tmp_path / "bad.yaml"
    if make == "bomb":
        lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol"]']
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]"
                  for i in range(1, 12)]
        path.write_text("\n".join(lines) + "\n")
    elif make == "huge":
        with path.open("wb") as fh:
            fh.truncate(50 * 1024 * 1024)  # sparse: 50 MB by size
    else:
        path.write_bytes(bytes(range(256)) * 64)
    proc = subprocess.run(
        [sys.executable, "-m", "sagaproof", "check", "--no-progress", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{path}" in proc.stderr and "error SAGA0" in proc.stderr


# --- fuzz: any edit of a good file is a saga or a diagnostic ---------------------
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_edits_of_a_good_file_never_crash(data: st.DataObject) -> None:
    text = GOOD
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 12)))
        new = data.draw(st.text(alphabet=" \n\t:-[]{}&*!?|>#'\"0123456789a.,",
                                max_size=6))
        text = text[:i] + new + text[j:]
    try:
        result = loads(text)
    except InvalidDefinition as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.code.startswith("SAGA") and d.message and d.help
    else:
        assert isinstance(result, Saga)


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(
        ["saga", "steps", "name", "participant", "action", "compensation", "kind",
         "depends_on", "retry", "max_attempts", "timeout", "breaker",
         "compensation_policy", "retry_", "idempotency_key", "then"]),
        children, max_size=5),
    max_leaves=25))
def test_any_json_shape_is_a_saga_or_a_diagnostic(value: object) -> None:
    import json

    data = {"saga": "t", "steps": value}
    try:
        result = loads(json.dumps(data), fmt="json")
    except InvalidDefinition as exc:
        assert all(d.code.startswith("SAGA") for d in exc.diagnostics)
    else:
        assert isinstance(result, Saga)

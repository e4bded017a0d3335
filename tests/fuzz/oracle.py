"""The fuzzing oracle: what every input, however broken, must lead to.

Either a located diagnostic with a code and a help line (``InvalidDefinition``,
CLI exit code 2), or a verdict (exit 0, 1 or 3). Never a traceback, never exit
code 1 without a verdict, and within bounded time and memory: the CLI runs in a
child process under an address-space limit (``RLIMIT_AS``) and a timeout.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saga_models import FaultModel, InvalidDefinition
from verifier import check

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 1536 * 1024**2
"""Address space of one CLI run: a check of a small definition needs a few
hundred MB (z3 and numpy mapped); gigabytes mean something grew without bound."""
TIME_LIMIT = 60.0
"""Seconds for one CLI run (start-up included) on a loaded machine."""
MAX_STATES = 3_000
"""States explored per fuzzed definition: a verdict or ``unknown`` either way;
the oracle is about crashes, not about the verdicts of mutants."""

_VERDICT_OF = {0: "HOLDS", 1: "VIOLATED", 3: "UNKNOWN"}
_CODE = re.compile(r": (?:error|warning) [A-Z]+\d{3}: ")
_LOCATED = re.compile(r"^\S.*?: (?:error|warning) [A-Z]+\d{3}: ", re.M)
"""``file:line:col: error CODE: ...``, or ``file: error CODE: ...`` for a
problem of the whole file (too large, empty, not UTF-8)."""


@dataclass(frozen=True, slots=True)
class CliRun:
    """What one CLI run produced."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def traceback(self) -> bool:
        """Whether Python printed a traceback (always a bug)."""
        return "Traceback (most recent call last)" in self.stderr


def _limit_memory() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(args: list[str], *, timeout: float = TIME_LIMIT) -> CliRun:
    """``sagaproof check ARGS`` in a child process under the memory limit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "sagaproof", "check", "--no-progress",
         "--max-states", str(MAX_STATES), *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
        preexec_fn=_limit_memory, check=False,
    )
    return CliRun(exit_code=proc.returncode, stdout=proc.stdout,
                  stderr=proc.stderr)


def cli_problems(run: CliRun) -> list[str]:
    """Every way ``run`` breaks the oracle (empty when it keeps it)."""
    out = []
    if run.traceback:
        out.append("traceback")
    if run.exit_code == 2:
        if not _LOCATED.search(run.stderr) and "sagaproof check: --" not in \
                run.stderr:
            out.append("exit 2 without a located, coded diagnostic")
        elif _CODE.search(run.stderr) and "\n  help: " not in run.stderr:
            out.append("a diagnostic without a help line")
    elif run.exit_code in _VERDICT_OF:
        # Exit 1 only with a VIOLATED verdict: a crash must not read as one.
        if not re.search(rf": {_VERDICT_OF[run.exit_code]}$", run.stdout, re.M):
            out.append(f"exit {run.exit_code} without a "
                       f"{_VERDICT_OF[run.exit_code]} verdict")
    else:
        out.append(f"exit code {run.exit_code} (killed or crashed: memory or "
                   "time limit?)")
    return out


def diagnostic_problems(exc: InvalidDefinition) -> list[str]:
    """Every diagnostic of ``exc`` has a code, a location and a help line."""
    out = []
    if not exc.diagnostics:
        out.append("InvalidDefinition without diagnostics")
    for d in exc.diagnostics:
        if not re.fullmatch(r"[A-Z]+\d{3}", d.code):
            out.append(f"bad code {d.code!r}")
        if not d.help:
            out.append(f"{d.code} without a help line: {d.message}")
        if not d.span.file:
            out.append(f"{d.code} without a location: {d.message}")
    return out


def load_path(path: Path) -> list[Any]:
    """Every definition in ``path``, loaded as ``sagaproof check`` loads it."""
    from saga_models import importers
    from saga_models._load import load_document
    from saga_models._source import read_document

    doc = read_document(path)
    if importers.detect(doc.data) is not None:
        return list(importers.load_all_document(doc))
    return [load_document(doc)]


_FAULTS = FaultModel()


def in_process(path: Path) -> tuple[str, list[str]]:
    """Load and check ``path`` in this process: ``("invalid" | "verdict",
    problems)``. Only the project's :class:`InvalidDefinition` may escape the
    loaders; anything else (and any exception from the checker) propagates
    and fails the calling test with its traceback."""
    try:
        definitions = load_path(path)
    except InvalidDefinition as exc:
        return "invalid", diagnostic_problems(exc)
    for definition in definitions:
        check(definition, faults=_FAULTS, max_states=MAX_STATES)
    return "verdict", []

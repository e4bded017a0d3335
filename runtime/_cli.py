"""What the ``run``, ``status``, ``recover``, ``resume`` and ``conform``
commands share: opening the log, binding, rendering outcomes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from saga_models import Saga, SagaError, load

from ._engine import SagaOutcome, SagaResult
from ._errors import DefinitionMismatch

EXIT_COMPLETED = 0
EXIT_ROLLED_BACK = 1
"""COMPENSATED or FAILED: the saga did not complete (and undid what it did)."""
EXIT_USAGE = 2
EXIT_STUCK = 3
"""STUCK: a person must fix the cause and ``sagaproof resume`` it."""

DEFAULT_DB = "saga.db"


class NotASaga(SagaError, ValueError):
    """The definition is an event workflow where a saga is needed."""


def load_saga(path: str) -> Saga:
    """Load ``path`` and insist it is a saga."""
    definition = load(path)
    if not isinstance(definition, Saga):
        raise NotASaga(f"definition={path!r} is a {type(definition).__name__}, "
                       "not a saga")
    return definition


def parse_input(text: str | None) -> Any:
    """``--input``: JSON text, or ``@file.json``."""
    if text is None:
        return {}
    try:
        if text.startswith("@"):
            return json.loads(Path(text[1:]).read_text())
        return json.loads(text)
    except (OSError, ValueError) as exc:
        raise InputError(f"--input={text!r} is not JSON or a readable @file: "
                         f"{exc}") from None


class InputError(SagaError, ValueError):
    """Bad ``--input``."""


def exit_code(result: SagaResult) -> int:
    """0 completed, 1 compensated or failed, 3 stuck."""
    return {SagaOutcome.COMPLETED: EXIT_COMPLETED,
            SagaOutcome.COMPENSATED: EXIT_ROLLED_BACK,
            SagaOutcome.FAILED: EXIT_ROLLED_BACK,
            SagaOutcome.STUCK: EXIT_STUCK}[result.outcome]


def render(result: SagaResult, *, as_json: bool = False) -> str:
    """One result, for people or as JSON."""
    if as_json:
        return json.dumps({"saga_id": result.saga_id,
                           "outcome": result.outcome.value,
                           "results": dict(result.results),
                           "errors": dict(result.errors)}, default=str)
    lines = [f"{result.saga_id}: {result.outcome.value}"]
    for name, value in result.results.items():
        lines.append(f"  {name}: {json.dumps(value, default=str)}")
    for name, err in result.errors.items():
        lines.append(f"  {name} error: {err}")
    return "\n".join(lines)


def check_pinned(saga: Saga, stored_hash: str, saga_id: str) -> None:
    """Raise :class:`DefinitionMismatch` unless ``saga`` is the pinned one."""
    if saga.content_hash != stored_hash:
        raise DefinitionMismatch(
            f"saga_id={saga_id!r} is pinned to definition hash {stored_hash[:12]}..., "
            f"but the definition given has hash {saga.content_hash[:12]}...; pass "
            "the definition file it started with (--definition)")


def err(message: str) -> None:
    """Print a one-line error to stderr."""
    print(message, file=sys.stderr)

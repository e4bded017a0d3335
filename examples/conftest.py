"""Binds the examples' participants and handlers, so that
``pytest --sagaproof examples/`` runs, besides one item per property of each
definition, Hypothesis-generated stateful tests of the example participants
(the ledger services) and of the example workflow handlers.

Copy this file next to your own definitions and bind your own code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from examples.participants.ledger import AnyParticipant, Ledger
from examples.workflows import handlers
from sagaproof.testing import Binding, WorkflowBinding


def _participants() -> AnyParticipant:
    # A fresh in-memory ledger per generated test case: no state leaks between
    # cases, nothing written to disk.
    return AnyParticipant(Ledger(":memory:"))


def _effects(world: AnyParticipant, saga_id: str) -> dict[str, int]:
    """How many times each step's action is in effect, from the ledger."""
    out: dict[str, int] = {}
    for row in world.ledger.effects():
        if row["saga_id"] == saga_id:
            out[row["step"]] = out.get(row["step"], 0) + (0 if row["undone"] else 1)
    return out


def _no_double_undo(world: AnyParticipant) -> str | None:
    """A participant's own invariant: an effect is undone at most once."""
    for row in world.ledger.effects():
        if row["undone"] and row["undo_calls"] > 1 and row["calls"] < 1:
            return f"{row['step']} undone without ever acting"
    return None


_SAGAS = {"trip_booking", "order_saga"}
"""The examples that verify (``# expect: holds``); the seeded bugs have no
participants worth testing."""


def pytest_sagaproof_binding(saga: Any, path: Path) -> Binding | None:
    if saga.name in _SAGAS:
        return Binding(participants=_participants, effects=_effects,
                       invariants=(_no_double_undo,),
                       name="examples.conftest:pytest_sagaproof_binding")
    return None


def pytest_sagaproof_workflow_binding(
    workflow: Any, path: Path
) -> WorkflowBinding | None:
    bound = {"order_saga": handlers.order_saga,
             "order_lifecycle": handlers.order_lifecycle}.get(workflow.name)
    if bound is None:
        return None
    return WorkflowBinding(handlers=lambda: bound)

"""Participants for any example saga: bound by participant name.

``sagaproof run examples/X.saga.yaml --participants
examples.participants.generic:participants``
"""

from __future__ import annotations

from .ledger import AnyParticipant, Service

participants = AnyParticipant()
"""Every participant name resolves to a ledger-backed service."""


class _Fixed(AnyParticipant):
    """The same services after a person fixed what the input breaks: failures
    and hangs injected through the saga's input are ignored."""

    def __getattr__(self, participant: str) -> Service:
        svc = super().__getattr__(participant)
        svc.ignore_faults = True
        return svc


participants_fixed = _Fixed()
"""For ``sagaproof resume`` / ``recover`` demos after the cause is fixed."""

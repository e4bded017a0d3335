"""Participants for any example saga: bound by participant name.

``sagaproof run examples/X.saga.yaml --participants
examples.participants.generic:participants``
"""

from __future__ import annotations

from .ledger import AnyParticipant

participants = AnyParticipant()
"""Every participant name resolves to a ledger-backed service."""

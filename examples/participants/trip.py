"""Participants of ``examples/trip_booking.saga.yaml``, one object each.

``sagaproof run examples/trip_booking.saga.yaml --participants
examples.participants.trip``
"""

from __future__ import annotations

from .ledger import AnyParticipant, Service

_all = AnyParticipant()

flights: Service = _all.flights
"""reserve, cancel, confirm."""
cars: Service = _all.cars
"""reserve, cancel."""
payments: Service = _all.payments
"""charge (the pivot)."""

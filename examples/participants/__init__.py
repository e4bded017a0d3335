"""Example participants for the example sagas (``examples/*.yaml``).

A participant is bound by its name: ``generic.participants`` answers for any
participant name, and ``trip`` names the trip booking's participants
explicitly. Effects are recorded in a ledger (SQLite, one file) so you can see
that nothing ran twice and that compensations undid what they should.
"""

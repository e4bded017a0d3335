"""The result every proof module returns (modules never print)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    """What became of a claim."""

    PROVED = "proved"
    """The claim holds as stated; ``statement`` is the claim."""
    REFUTED_AND_CORRECTED = "refuted and corrected"
    """The claim is false (``counterexample``); ``statement`` is the corrected
    claim, which is proved."""
    UNKNOWN = "unknown"
    """A solver gave up; ``detail`` says why. Never counts as a pass."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofResult:
    """One claim of the seed document, proved or refuted.

    Attributes are plain data so a notebook or the tests can inspect them.
    """

    name: str
    """Short identifier, e.g. ``saga_correctness``."""
    claim: str
    """The claim as the seed document states it (translated)."""
    status: Status
    statement: str
    """What is proved: the claim itself, or its corrected form."""
    assumptions: tuple[str, ...]
    """Every hypothesis the proof uses, formalised."""
    counterexample: object = None
    """For a refuted claim: a concrete run or model that breaks it."""
    witness: object = None
    """Evidence for the proved statement (a closed form, an invariant, an unsat
    check's description)."""
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the status is not unknown."""
        return self.status is not Status.UNKNOWN

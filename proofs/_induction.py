"""Checking a parametric inductive invariant with z3 (for every size ``n``).

Proof modules describe a small symbolic model (``n`` is a free integer, arrays
hold per-step values) and ask three validity questions: the invariant holds
initially, is preserved by every transition, and implies the goal. Each is
checked as "the negation is unsat" on a solver from :func:`verifier.smt.new_solver`
(fixed seeds, resource limit). z3 is used directly here, inside ``proofs/``
only, because these models are not sagas and have no encoding in the backend.
"""

from __future__ import annotations

from collections.abc import Sequence

import z3

from verifier.smt import new_solver

RLIMIT = 20_000_000


def valid(
    label: str, claim: z3.BoolRef, *, axioms: Sequence[z3.BoolRef] = ()
) -> str | None:
    """None when ``claim`` is valid (given ``axioms``); else why not.

    Returns:
        None, or ``"<label>: counterexample <model>"`` or ``"<label>: unknown
        (<reason>)"``.
    """
    slv = new_solver(rlimit=RLIMIT)
    slv.add(*axioms)
    lit = slv.track(label, z3.Not(claim))
    res = slv.check([lit])
    if res == z3.unsat:
        return None
    if res == z3.sat:
        return f"{label}: counterexample {slv.solver.model()}"
    return f"{label}: unknown ({slv.reason_unknown()})"


def inductive(
    *,
    init: z3.BoolRef,
    trans: z3.BoolRef,
    inv: z3.BoolRef,
    inv_next: z3.BoolRef,
    goal: z3.BoolRef,
    axioms: Sequence[z3.BoolRef] = (),
) -> list[str]:
    """The three obligations; an empty list means all are proved."""
    problems = [
        valid("initiation", z3.Implies(init, inv), axioms=axioms),
        valid("consecution", z3.Implies(z3.And(inv, trans), inv_next), axioms=axioms),
        valid("goal", z3.Implies(inv, goal), axioms=axioms),
    ]
    return [p for p in problems if p is not None]

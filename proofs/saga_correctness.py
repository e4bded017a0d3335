"""Theorem 5.1 (saga correctness), refuted as stated and proved corrected.

Seed claim: if every transaction is idempotent and each compensation undoes its
transaction, the saga guarantees eventual consistency (all effects or none).

Refuted: under the fault model a compensation can fail, and with an escalating
compensation policy the saga ends ``STUCK`` with some effects applied and some
not (a concrete run of the shared semantics, found by BMC). Idempotency is also
necessary: without it a duplicate delivery applies an effect twice.

Corrected and proved for every length ``n`` (a parametric model, induction over
the execution with ``n`` a free integer, checked by z3): a chain of ``n``
compensatable steps whose actions are idempotent, whose compensations undo one
application and are safe when the action never took effect, do not need the
action's reply, and are retried until they succeed (strong fairness), ends
``COMPLETED`` with every effect applied once or ``COMPENSATED``/``FAILED`` with
none, and terminates.
"""

from __future__ import annotations

import z3

from saga_models import CompensationPolicy, FaultModel, Saga, Step
from verifier.smt import find_counterexample

from ._induction import inductive, valid
from ._result import ProofResult, Status

CLAIM = (
    "if every step is idempotent and each compensation undoes its step, a "
    "saga ends with every effect applied or none"
)

RUN, COMP, ALL, NONE = 0, 1, 2, 3


def counterexample_saga() -> Saga:
    """Two idempotent steps with compensations; compensations escalate after one
    failed attempt (the default ``escalate`` policy with ``max_attempts=1``)."""
    return Saga(
        name="idempotent_but_stuck",
        steps=(
            Step(
                name="reserve",
                participant="inventory",
                action="reserve",
                compensation="release",
            ),
            Step(
                name="charge",
                participant="payments",
                action="charge",
                compensation="refund",
                depends_on=("reserve",),
            ),
        ),
        compensation_policy=CompensationPolicy(max_attempts=1),
    )


def _model(idempotent: bool) -> dict[str, z3.BoolRef]:
    """The parametric chain: phase, forward pointer k, compensation pointer j,
    per-step effect counts E (participants' side of the world)."""
    n, k, j, ph = z3.Ints("n k j ph")
    k2, j2, ph2 = z3.Ints("k2 j2 ph2")
    E = z3.Array("E", z3.IntSort(), z3.IntSort())
    E2 = z3.Array("E2", z3.IntSort(), z3.IntSort())
    i = z3.Int("i")
    b = z3.Int("b")
    took = z3.If(idempotent, 1, E[k] + 1) if idempotent else E[k] + 1

    def inv_of(
        E: z3.ArrayRef, k: z3.ArithRef, j: z3.ArithRef, ph: z3.ArithRef
    ) -> z3.BoolRef:
        in_range = z3.And(i >= 0, i < n)
        return z3.And(
            k >= 0,
            k <= n,
            j >= 0,
            j <= n,
            z3.Or(ph == RUN, ph == COMP, ph == ALL, ph == NONE),
            z3.Implies(
                ph == RUN,
                z3.And(
                    k < n,
                    z3.ForAll(
                        [i],
                        z3.Implies(
                            in_range,
                            z3.And(
                                z3.Implies(i < k, E[i] == 1),
                                z3.Implies(i > k, E[i] == 0),
                                z3.Implies(i == k, z3.And(E[i] >= 0, E[i] <= 1)),
                            ),
                        ),
                    ),
                ),
            ),
            z3.Implies(
                ph == COMP,
                z3.ForAll(
                    [i],
                    z3.Implies(
                        in_range,
                        z3.And(
                            z3.Implies(i < j, z3.And(E[i] >= 0, E[i] <= 1)),
                            z3.Implies(i >= j, E[i] == 0),
                        ),
                    ),
                ),
            ),
            z3.Implies(ph == ALL, z3.ForAll([i], z3.Implies(in_range, E[i] == 1))),
            z3.Implies(ph == NONE, z3.ForAll([i], z3.Implies(in_range, E[i] == 0))),
        )

    # Attempt outcomes at step k: ok (took effect), failed (no effect), unknown
    # (took effect or not). Idempotent: a repeated delivery sets the effect to
    # 1, not +1. Retries stay at k; an exhausted step aborts and compensates
    # 0..k (compensation is safe when the action never took effect).
    ok = z3.And(
        ph == RUN,
        z3.Store(E, k, 1 if idempotent else E[k] + 1) == E2,
        k2 == k + 1,
        j2 == j,
        ph2 == z3.If(k + 1 == n, ALL, RUN),
    )
    dup = z3.And(ph == RUN, z3.Store(E, k, took) == E2, k2 == k, j2 == j, ph2 == RUN)
    retry = z3.And(
        ph == RUN,
        z3.Or(b == E[k], b == (1 if idempotent else E[k] + 1)),
        z3.Store(E, k, b) == E2,
        k2 == k,
        j2 == j,
        ph2 == RUN,
    )
    abort = z3.And(
        ph == RUN,
        z3.Or(b == E[k], b == (1 if idempotent else E[k] + 1)),
        z3.Store(E, k, b) == E2,
        k2 == k,
        j2 == k + 1,
        ph2 == COMP,
    )
    comp = z3.And(
        ph == COMP,
        j > 0,
        z3.Store(E, j - 1, z3.If(E[j - 1] > 0, E[j - 1] - 1, 0)) == E2,
        k2 == k,
        j2 == j - 1,
        ph2 == z3.If(j - 1 == 0, NONE, COMP),
    )
    trans = z3.And(n >= 1, z3.Or(ok, dup, retry, abort, comp))
    init = z3.And(n >= 1, ph == RUN, k == 0, j == 0, z3.ForAll([i], E[i] == 0))
    goal = z3.And(
        z3.Implies(
            ph == ALL, z3.ForAll([i], z3.Implies(z3.And(i >= 0, i < n), E[i] == 1))
        ),
        z3.Implies(
            ph == NONE, z3.ForAll([i], z3.Implies(z3.And(i >= 0, i < n), E[i] == 0))
        ),
    )

    # Ranking: ok, abort and comp (the helpful events) decrease it; dup and
    # retry keep it level while ok stays enabled (strong fairness takes it).
    def rank(k: z3.ArithRef, j: z3.ArithRef, ph: z3.ArithRef) -> z3.ArithRef:
        return z3.If(ph == RUN, 2 * n + 1 - k, z3.If(ph == COMP, j, 0))

    inv, inv2 = inv_of(E, k, j, ph), inv_of(E2, k2, j2, ph2)
    decreasing = z3.Implies(
        z3.And(inv, z3.Or(ok, abort, comp)),
        z3.And(rank(k2, j2, ph2) < rank(k, j, ph), rank(k2, j2, ph2) >= 0),
    )
    level = z3.Implies(
        z3.And(inv, z3.Or(dup, retry)), rank(k2, j2, ph2) == rank(k, j, ph)
    )
    return {
        "init": init,
        "trans": trans,
        "inv": inv,
        "inv_next": inv2,
        "goal": goal,
        "decreasing": decreasing,
        "level": level,
    }


def run() -> ProofResult:
    """Refute the claim on a concrete saga, then prove the corrected statement."""
    cex = find_counterexample(
        counterexample_saga(),
        "eventual_consistency",
        faults=FaultModel(crashes=0, duplicates=0),
    )
    m = _model(idempotent=True)
    problems = inductive(
        init=m["init"],
        trans=m["trans"],
        inv=m["inv"],
        inv_next=m["inv_next"],
        goal=m["goal"],
    )
    for label in ("decreasing", "level"):
        if (p := valid(label, m[label])) is not None:
            problems.append(p)
    # Idempotency is necessary: the same model without it is not inductive.
    bad = _model(idempotent=False)
    needed = inductive(
        init=bad["init"],
        trans=bad["trans"],
        inv=bad["inv"],
        inv_next=bad["inv_next"],
        goal=bad["goal"],
    )
    status = Status.REFUTED_AND_CORRECTED
    detail = ""
    if cex is None or problems or not needed:
        status = Status.UNKNOWN
        detail = "; ".join(problems) or (
            "no counterexample found"
            if cex is None
            else "idempotency not shown necessary"
        )
    return ProofResult(
        name="saga_correctness",
        claim=CLAIM,
        status=status,
        statement=(
            "for every n >= 1, a chain of n compensatable steps whose actions are "
            "idempotent and whose compensations undo one application, are safe when "
            "the action never took effect, do not need the action's reply and are "
            "retried until they succeed, terminates under strong fairness and ends "
            "COMPLETED with every effect applied exactly once, or COMPENSATED/FAILED "
            "with none"
        ),
        assumptions=(
            "idempotent actions: a repeated delivery leaves the effect at 1",
            "a compensation decrements the effect, never below 0",
            "compensation policy: retry until success (no escalation to STUCK)",
            "compensations do not need the action's reply",
            "strong fairness: a retried action or compensation eventually succeeds",
        ),
        counterexample=cex,
        witness=(
            "inductive invariant over symbolic n with per-step effect array; "
            "ranking 2n+1-k while running, j while compensating; without "
            "idempotency consecution fails: " + (needed[0] if needed else "")
        ),
        detail=detail,
    )

"""Theorem 5.2 (event-driven correctness), refuted and corrected.

Seed claim: if event handlers are deterministic and the bus delivers at least
once, the event-driven workflow is correct.

Model (our own, small, in this module): a service with state ``s`` consumes the
events ``e_0..e_{n-1}`` through a handler ``f(s, e)``; correctness means the
final state equals exactly-once processing, ``F(n)`` where ``F(0) = s0`` and
``F(k+1) = f(F(k), e_k)``. At-least-once delivery may repeat an event at any
later point.

Refuted (z3 finds the models): a deterministic debit handler ``s - e`` applied
to a redelivered event debits twice; and even an idempotent handler (``f(f(s,
e), e) = f(s, e)``: "set to e") is wrong when a duplicate of an earlier event
arrives after a later one. Corrected and proved for every n and every
delivery sequence, for an arbitrary (uninterpreted) deterministic handler: with
de-duplication by event id and first deliveries in order (an ordered
at-least-once bus), the final state is exactly-once processing.
"""

from __future__ import annotations

import z3

from verifier.smt import new_solver

from ._induction import inductive
from ._result import ProofResult, Status

CLAIM = (
    "deterministic handlers and at-least-once delivery give a correct "
    "event-driven workflow"
)


def _refute_debit() -> dict[str, int] | None:
    """Two deliveries of one debit event versus one."""
    s0, amount = z3.Ints("s0 amount")

    def f(s: z3.ArithRef, e: z3.ArithRef) -> z3.ArithRef:
        return s - e  # a deterministic debit handler

    slv = new_solver(rlimit=5_000_000)
    lit = slv.track(
        "duplicate changes the result", f(f(s0, amount), amount) != f(s0, amount)
    )
    if slv.check([lit]) != z3.sat:
        return None
    m = slv.solver.model()
    return {
        "initial": m.eval(s0, model_completion=True).as_long(),
        "debit": m.eval(amount, model_completion=True).as_long(),
        "deliveries": 2,
    }


def _refute_idempotent() -> dict[str, int] | None:
    """Events e0, e1 delivered as e0, e1, e0 to the idempotent handler 'set'."""
    s0, e0, e1 = z3.Ints("s0 e0 e1")

    def f(s: z3.ArithRef, e: z3.ArithRef) -> z3.ArithRef:
        return e  # "set to e": idempotent, f(f(s, e), e) == f(s, e)

    once = f(f(s0, e0), e1)
    redelivered = f(f(f(s0, e0), e1), e0)
    slv = new_solver(rlimit=5_000_000)
    lit = slv.track("late duplicate changes the result", redelivered != once)
    if slv.check([lit]) != z3.sat:
        return None
    m = slv.solver.model()
    return {
        "e0": m.eval(e0, model_completion=True).as_long(),
        "e1": m.eval(e1, model_completion=True).as_long(),
        "delivery": "e0, e1, e0",
    }


def prove_dedup(*, dedup: bool = True) -> list[str]:
    """Invariant ``s == F(k)`` where k counts distinct events processed.

    With ``dedup=False`` a duplicate is handled again; the obligations then
    fail (the tests use this to show the proof is not vacuous)."""
    S = z3.DeclareSort("S")
    f = z3.Function("f", S, z3.IntSort(), S)  # any deterministic handler
    ev = z3.Function("ev", z3.IntSort(), z3.IntSort())  # event payloads
    F = z3.Function("F", z3.IntSort(), S)  # exactly-once prefix fold
    s0 = z3.Const("s0", S)
    s, s2 = z3.Consts("s s2", S)
    k, k2, n, d = z3.Ints("k k2 n d")
    x = z3.Int("x")
    axioms = [
        F(0) == s0,
        z3.ForAll(
            [x], z3.Implies(x >= 0, F(x + 1) == f(F(x), ev(x))), patterns=[F(x + 1)]
        ),
    ]
    # Delivery of event d: a duplicate (d < k) is dropped by the processed-id
    # set; a first delivery must be the next in order (d == k).
    trans = z3.And(
        d >= 0,
        d < n,
        d <= k,
        k < n + 1,
        z3.If(
            d < k,
            z3.And(s2 == (s if dedup else f(s, ev(d))), k2 == k),
            z3.And(s2 == f(s, ev(d)), k2 == k + 1),
        ),
    )
    inv = z3.And(k >= 0, k <= n, s == F(k))
    inv2 = z3.And(k2 >= 0, k2 <= n, s2 == F(k2))
    init = z3.And(n >= 0, k == 0, s == s0)
    goal = z3.Implies(k == n, s == F(n))
    return inductive(
        init=init, trans=trans, inv=inv, inv_next=inv2, goal=goal, axioms=axioms
    )


def run() -> ProofResult:
    """Both refutations, then the corrected statement."""
    debit = _refute_debit()
    late = _refute_idempotent()
    problems = prove_dedup()
    ok = debit is not None and late is not None and not problems
    return ProofResult(
        name="event_driven",
        claim=CLAIM,
        status=Status.REFUTED_AND_CORRECTED if ok else Status.UNKNOWN,
        statement=(
            "for every n, every deterministic handler f and every delivery "
            "sequence in which each event arrives at least once and first "
            "arrivals are in order, a consumer that de-duplicates by event "
            "id ends in exactly-once state F(n)"
        ),
        assumptions=(
            "handler deterministic (a function f: state x event -> state)",
            "at-least-once: every event delivered one or more times",
            "ordered bus: first deliveries in publication order",
            "de-duplication: a durable set of processed event ids",
        ),
        counterexample={
            "non_idempotent_handler": debit,
            "idempotent_handler_reordered_duplicate": late,
        },
        witness="inductive invariant s == F(k) with F the exactly-once fold",
        detail="; ".join(problems),
    )

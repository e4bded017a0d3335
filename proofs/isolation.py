"""Theorems 5.1 and 5.3 with many sagas: isolation, refuted and corrected.

Seed claims (5.1, and 5.3's "compensations undo"): a compensation undoes its
step, so an aborted saga leaves the state as it found it, and the participants
end consistent.

Refuted once two sagas share a resource: a compensation that restores the value
its step saw ("by value", a before-image) wipes out what another saga did in
between. The counterexample is a run of the composition of the shared
semantics (two instances, found by the explicit checker): both end, one
COMPLETED, one COMPENSATED, and the stock is not the initial value plus the
completed saga's effect. A z3 counterexample to induction of the conservation
invariant shows the same for every size.

Corrected and proved for any number ``K`` of instances, any number of steps,
any initial value and any amount per step (``K``, ``TOTAL``, ``c`` free): with
the countermeasure *commutative updates* (a step takes ``c`` units, its
compensation gives ``c`` back, both relative to the current value),
``stock + c * sum(held) = TOTAL`` is inductive under every interleaving of
takes (guarded ``stock >= c``) and gives. With per-instance compensation
completeness (Theorem 5.1 corrected, proved in :mod:`proofs.saga_correctness`:
an instance that ends compensated holds nothing), a final state has ``stock =
TOTAL - c * (units held by completed instances)``: conservation. The sum over a
symbolic ``K`` is a recursive function; its point-update lemma is itself proved
by induction over ``K`` (base and step, each a z3 validity check).
"""

from __future__ import annotations

import z3

from ._induction import inductive, valid
from ._result import ProofResult, Status

CLAIM = ("a compensation undoes its step, so an aborted saga leaves the "
         "resources as it found them and the participants end consistent "
         "(Thm 5.1; 5.3's 'compensations undo')")

BY_VALUE = """\
saga: restore_by_value
instances: 2
resources: {stock: {initial: 2}}
steps:
  - name: take
    participant: inventory
    compensation: restore
    effect: {read: {before: stock}, guard: "stock >= 1", update: {stock: "stock - 1"}}
    compensation_effect: {update: {stock: "before"}}
  - {name: charge, participant: payments, kind: pivot}
"""


def isolation_counterexample() -> list[str]:
    """A run of two instances (shared semantics, explicit checker) where the
    by-value compensation breaks conservation; the printed trace lines."""
    from saga_models import loads
    from verifier import Verdict, check

    res = check(loads(BY_VALUE), faults="fail", properties=["conservation"])
    (r,) = res.results
    if r.verdict is not Verdict.VIOLATED or r.counterexample is None:
        return []
    return [r.reason] + [f"{s.action} {s.state.get('resources')}"
                         for s in r.counterexample.steps[1:]]


def _sum_lemma() -> list[str]:
    """sum(Store(h, i, v), K) = sum(h, K) - h[i] + v for 0 <= i < K (and
    unchanged for i >= K), by induction over K."""
    arr = z3.ArraySort(z3.IntSort(), z3.IntSort())
    total = z3.Function("sum", arr, z3.IntSort(), z3.IntSort())
    h = z3.Array("h", z3.IntSort(), z3.IntSort())
    i, v, k = z3.Ints("i v k")
    h2 = z3.Store(h, i, v)

    def lemma(kk: z3.ArithRef) -> z3.BoolRef:
        return z3.If(z3.And(i >= 0, i < kk),
                     total(h2, kk) == total(h, kk) - h[i] + v,
                     total(h2, kk) == total(h, kk))

    def unfold(x: z3.ArrayRef, kk: z3.ArithRef) -> z3.BoolRef:
        return total(x, kk + 1) == total(x, kk) + x[kk]

    defs = [total(h, 0) == 0, total(h2, 0) == 0, unfold(h, k), unfold(h2, k)]
    problems = [
        valid("sum lemma, base", lemma(z3.IntVal(0)), axioms=defs),
        valid("sum lemma, step",
              z3.Implies(z3.And(k >= 0, lemma(k)), lemma(k + 1)), axioms=defs),
    ]
    return [p for p in problems if p is not None]


def _conservation(commutative: bool) -> list[str]:
    """Inductiveness of ``stock + c * sum(held, K) = TOTAL`` over a symbolic
    number ``K`` of instances; ``commutative=False`` is the by-value
    compensation (restore the value seen before the step)."""
    arr = z3.ArraySort(z3.IntSort(), z3.IntSort())
    total = z3.Function("sum", arr, z3.IntSort(), z3.IntSort())
    held = z3.Array("held", z3.IntSort(), z3.IntSort())
    before = z3.Array("before", z3.IntSort(), z3.IntSort())
    kk, c, stock, stock2, grand, i, n = z3.Ints("K c stock stock2 TOTAL i N")
    held2 = z3.Array("held2", z3.IntSort(), z3.IntSort())
    # The instance that moves is any i in range (every interleaving).
    take = z3.And(stock >= c, held[i] < n,
                  stock2 == stock - c, held2 == z3.Store(held, i, held[i] + 1))
    give_back = stock + c if commutative else before[i]
    give = z3.And(held[i] > 0, stock2 == give_back,
                  held2 == z3.Store(held, i, held[i] - 1))
    trans = z3.And(i >= 0, i < kk, z3.Or(take, give))
    lemma = [
        # The point-update lemma (proved by _sum_lemma), instantiated at the
        # two updates the transitions make.
        z3.Implies(z3.And(i >= 0, i < kk),
                   total(z3.Store(held, i, held[i] + 1), kk)
                   == total(held, kk) + 1),
        z3.Implies(z3.And(i >= 0, i < kk),
                   total(z3.Store(held, i, held[i] - 1), kk)
                   == total(held, kk) - 1),
    ]
    zero = z3.K(z3.IntSort(), z3.IntVal(0))
    axioms = [*lemma, kk >= 1, c >= 1, n >= 1, total(zero, kk) == 0]
    return inductive(
        init=z3.And(stock == grand, held == zero, grand >= 0),
        trans=trans,
        inv=stock + c * total(held, kk) == grand,
        inv_next=stock2 + c * total(held2, kk) == grand,
        goal=stock + c * total(held, kk) == grand,
        axioms=axioms,
    )


def run() -> ProofResult:
    """Refute the claim with the isolation counterexample; prove it corrected
    (commutative updates as hypothesis) for every K, TOTAL and c."""
    cex = isolation_counterexample()
    lemma = _sum_lemma()
    proved = _conservation(commutative=True)
    refuted = _conservation(commutative=False)
    detail = "; ".join(lemma + proved)
    if (not cex or lemma or proved or not any("consecution" in p
                                             for p in refuted)):
        return ProofResult(
            name="isolation", claim=CLAIM, status=Status.UNKNOWN,
            statement="", assumptions=(),
            detail=detail or "the by-value counterexample was not found")
    return ProofResult(
        name="isolation",
        claim=CLAIM,
        status=Status.REFUTED_AND_CORRECTED,
        statement=(
            "for any number K >= 1 of instances over one counter with any "
            "initial TOTAL >= 0, every interleaving of guarded takes (stock >= "
            "c: stock -= c) and compensations that give back relative to the "
            "current value (stock += c) keeps stock + c * sum(held) = TOTAL; "
            "with per-instance compensation completeness (Thm 5.1 corrected), "
            "every final state has stock = TOTAL - c * (units held by the "
            "COMPLETED instances)"),
        assumptions=(
            "countermeasure: commutative updates (action and compensation "
            "relative to the current value, not a value read earlier)",
            "each instance follows the shared single-saga semantics; an "
            "instance that ends COMPENSATED or FAILED holds nothing (Thm 5.1 "
            "corrected)",
            "sum over instances: recursive definition; point-update lemma "
            "proved by induction over K",
        ),
        counterexample=cex,
        witness=("inductive invariant stock + c * sum(held, K) = TOTAL; "
                 "without the countermeasure (by-value compensation) "
                 "consecution fails: " + "; ".join(refuted)[:300]),
    )

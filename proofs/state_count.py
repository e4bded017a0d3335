"""A closed form for the number of reachable states of a chain of n steps,
per fault knob (sympy), checked against explicit state counts for n = 1..10.

The form is found by interpolation through the first points (the lowest
degree that fits) and then must predict every other count exactly; a knob whose
counts no polynomial of degree <= 4 fits is reported unknown.
"""

from __future__ import annotations

import sympy as sp

from saga_models import FaultModel, Saga, SagaBuilder
from verifier import check

from ._result import ProofResult, Status

n = sp.Symbol("n", integer=True, positive=True)

KNOBS: dict[str, FaultModel] = {
    "none": FaultModel.parse("none"),
    "fail": FaultModel.parse("fail"),
    "timeout": FaultModel.parse("timeout"),
    "comp_fail": FaultModel.parse("fail,comp_fail"),
    "crash": FaultModel.parse("crash"),
    "duplicate": FaultModel.parse("duplicate"),
    "all": FaultModel(),
}


def chain(size: int, *, idempotent: bool) -> Saga:
    """The counted chain: compensatable steps, a timeout, two attempts each,
    compensations retried forever."""
    b = SagaBuilder(f"chain{size}")
    for i in range(size):
        b.step(
            f"s{i}",
            participant=f"p{i}",
            action="do",
            compensation="undo",
            timeout=1.0,
            retry={"max_attempts": 2},
            idempotent=idempotent,
        )
    return b.build()


def reachable(saga: Saga, faults: FaultModel) -> int:
    """Number of reachable states, as the explicit checker counts them."""
    res = check(saga, faults=faults, backend="explicit", properties=["structure"])
    return res.results[0].stats.states


def closed_form(counts: list[int]) -> sp.Expr | None:
    """The lowest-degree polynomial in n through ``counts`` (n = 1, 2, ...)."""
    for degree in range(5):
        pts = [(i + 1, counts[i]) for i in range(degree + 1)]
        poly = sp.expand(sp.interpolate(pts, n))
        if all(poly.subs(n, i + 1) == counts[i] for i in range(len(counts))):
            return poly
    return None


def run(max_n: int = 10) -> ProofResult:
    """Count, fit and check every knob."""
    forms: dict[str, sp.Expr] = {}
    counts: dict[str, list[int]] = {}
    missing = []
    for knob, faults in KNOBS.items():
        idem = knob != "duplicate"  # duplicates only matter for non-idempotent steps
        counts[knob] = [
            reachable(chain(k, idempotent=idem), faults) for k in range(1, max_n + 1)
        ]
        form = closed_form(counts[knob])
        if form is None:
            missing.append(knob)
        else:
            forms[knob] = form
    return ProofResult(
        name="state_count",
        claim="closed form for the reachable states of an n-step chain, per fault knob",
        status=Status.PROVED if not missing else Status.UNKNOWN,
        statement="; ".join(f"{k}: {v}" for k, v in forms.items()),
        assumptions=(
            "chain of compensatable steps, timeout declared, max_attempts=2, "
            "compensations retried forever; idempotent except for the duplicate knob",
            f"checked against explicit counts for n = 1..{max_n}",
        ),
        witness={"forms": forms, "counts": counts},
        detail=f"no polynomial fits: {missing}" if missing else "",
    )

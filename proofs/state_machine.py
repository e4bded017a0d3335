"""Definition 5.2 (the abstract saga state machine): does the runtime semantics
refine it?

Seed machine: S = {PENDING, RUNNING, COMPLETED, FAILED, COMPENSATING},
Sigma = {START, SUCCESS, FAILURE, COMPENSATE}, s0 = PENDING, F = {COMPLETED,
FAILED}. The seed gives no delta; the natural one is PENDING -START-> RUNNING,
RUNNING -SUCCESS-> COMPLETED, RUNNING -FAILURE-> COMPENSATING, RUNNING
-FAILURE-> FAILED (nothing to compensate), COMPENSATING -COMPENSATE-> FAILED,
plus stuttering for internal steps (retries, crashes, replies of siblings).

The abstraction map: PENDING when running and nothing started, RUNNING,
COMPENSATING, COMPLETED as is; COMPENSATED and FAILED to FAILED; STUCK has no
image. Refuted: a run of the shared semantics reaches STUCK (a compensation
escalated), which the seed machine cannot express (BMC counterexample).
Corrected machine: add COMPENSATED and STUCK (event ESCALATE) and make F =
{COMPLETED, COMPENSATED, FAILED, STUCK}; every transition from every state
satisfying the backend's inductive step lemmas maps to a step or a stutter of
it (checked by z3 on sagas that exercise every step kind and fault).
"""

from __future__ import annotations

import z3

from saga_models import CompensationPolicy, FaultModel, Saga, Step, StepKind
from saga_models.semantics import PHASE, ST, Phase, Status
from verifier.smt import LocalInvariant, encode, local_invariant, new_solver, reach

from ._result import ProofResult
from ._result import Status as ProofStatus

PENDING, RUNNING, COMPLETED, FAILED, COMPENSATING, COMPENSATED, STUCK = range(7)
NAMES = (
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "COMPENSATING",
    "COMPENSATED",
    "STUCK",
)
SEED_DELTA = {
    (PENDING, RUNNING),
    (RUNNING, COMPLETED),
    (RUNNING, COMPENSATING),
    (RUNNING, FAILED),
    (COMPENSATING, FAILED),
}
CORRECTED_DELTA = SEED_DELTA | {
    (COMPENSATING, COMPENSATED),
    (RUNNING, STUCK),
    (COMPENSATING, STUCK),
}

CLAIM = (
    "the saga runs as the state machine PENDING/RUNNING/COMPLETED/FAILED/"
    "COMPENSATING with events START/SUCCESS/FAILURE/COMPENSATE and final "
    "states COMPLETED, FAILED"
)


def _alpha(enc, s, corrected: bool) -> z3.ArithRef:  # type: ignore[no-untyped-def]
    ph = s[PHASE]
    nothing = z3.And(*[enc.at(s, i, ST) == Status.PENDING for i in range(enc.n)])
    return z3.If(
        ph == Phase.RUNNING,
        z3.If(nothing, PENDING, RUNNING),
        z3.If(
            ph == Phase.COMPENSATING,
            COMPENSATING,
            z3.If(
                ph == Phase.COMPLETED,
                COMPLETED,
                z3.If(
                    ph == Phase.FAILED,
                    FAILED,
                    z3.If(
                        ph == Phase.COMPENSATED,
                        COMPENSATED if corrected else FAILED,
                        STUCK if corrected else -1,
                    ),
                ),
            ),
        ),
    )


def _name(v: int) -> str:
    return NAMES[v] if v >= 0 else "(no image)"


def family() -> list[Saga]:
    """Sagas exercising every step kind, parallel steps and both policies."""

    def step(
        name: str,
        kind: StepKind = StepKind.COMPENSATABLE,
        deps: tuple[str, ...] = (),
        comp: bool = True,
    ) -> Step:
        return Step(
            name=name,
            participant="p",
            action="a",
            kind=kind,
            depends_on=deps,
            compensation="u" if comp else None,
            timeout=1.0,
        )

    return [
        Saga(
            name="chain",
            steps=(step("a"), step("b", deps=("a",))),
            compensation_policy=CompensationPolicy(max_attempts=1),
        ),
        Saga(
            name="pivot",
            steps=(
                step("a"),
                step("p", StepKind.PIVOT, ("a",), False),
                step("r", StepKind.RETRIABLE, ("p",), False),
            ),
        ),
        Saga(
            name="parallel",
            steps=(step("a"), step("b")),
            compensation_policy=CompensationPolicy(max_attempts=2),
        ),
    ]


def refines(saga: Saga, delta: set[tuple[int, int]], corrected: bool) -> str | None:
    """None when every invariant-state transition of ``saga`` maps into
    ``delta`` or stutters; else a description of the offending step."""
    enc = encode(saga, FaultModel())
    inv = local_invariant(enc, rlimit=20_000_000)
    if not isinstance(inv, LocalInvariant):
        return f"{saga.name}: {inv}"
    slv = new_solver(rlimit=20_000_000)
    s, s2, c = enc.frame("a"), enc.frame("b"), enc.choice("e")
    slv.add(inv.holds(s), enc.transition(s, c, s2))
    a, a2 = _alpha(enc, s, corrected), _alpha(enc, s2, corrected)
    allowed = z3.Or(a == a2, *[z3.And(a == x, a2 == y) for x, y in delta])
    lit = slv.track(
        f"{saga.name}: abstract step", z3.Or(a < 0, a2 < 0, z3.Not(allowed))
    )
    res = slv.check([lit])
    if res == z3.unsat:
        return None
    if res == z3.sat:
        mdl = slv.solver.model()
        x, y = mdl.eval(a).as_long(), mdl.eval(a2).as_long()
        ev = enc.alternatives[mdl.eval(c).as_long()]
        return f"{saga.name}: '{ev.describe(saga)}' goes {_name(x)} -> {_name(y)}"
    return f"{saga.name}: unknown ({slv.reason_unknown()})"


def run() -> ProofResult:
    """Refute with a run to STUCK; prove the corrected machine on the family."""
    sagas = family()
    cex = reach(
        sagas[0],
        lambda enc, s: s[PHASE] == Phase.STUCK,
        faults=FaultModel(crashes=0, duplicates=0),
        message="STUCK has no image in the seed state machine",
    )
    seed_gap = refines(sagas[0], SEED_DELTA, corrected=False)
    problems = [p for sg in sagas if (p := refines(sg, CORRECTED_DELTA, True))]
    ok = cex is not None and seed_gap is not None and not problems
    return ProofResult(
        name="state_machine",
        claim=CLAIM,
        status=ProofStatus.REFUTED_AND_CORRECTED if ok else ProofStatus.UNKNOWN,
        statement=(
            "the runtime semantics refines the machine with states PENDING, "
            "RUNNING, COMPENSATING, COMPLETED, COMPENSATED, FAILED, STUCK, "
            "events START, SUCCESS, FAILURE, COMPENSATE, ESCALATE and final "
            "states COMPLETED, COMPENSATED, FAILED, STUCK: "
            + ", ".join(f"{NAMES[x]}->{NAMES[y]}" for x, y in sorted(CORRECTED_DELTA))
        ),
        assumptions=(
            "every fault on (fail, timeout, comp_fail, one crash, one duplicate)",
            "checked for the sagas of family(): chain, pivot+retriable, parallel",
            "one-step simulation from every state of the inductive step lemmas",
        ),
        counterexample=cex,
        witness=f"seed machine gap: {seed_gap}",
        detail="; ".join(problems),
    )

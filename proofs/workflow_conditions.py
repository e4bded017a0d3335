"""Theorem 5.3 (workflow correctness under four conditions), refuted and
corrected.

Seed claim: a microservice workflow whose (1) operations are idempotent, (2)
compensations undo their operations, (3) event handlers are deterministic and
(4) network partitions are detected and handled, is eventually consistent.

Formalised on the IR and the shared semantics: (1) every step has
``idempotent=True``; (2) every compensatable step has a compensation, and a
compensation takes one application back (``semantics.apply``); (3) the step
semantics is a function of state and event (``apply`` is pure); (4) every step
declares a timeout (a partition is detected as an unknown outcome) and unknown
outcomes are handled by the semantics (retried, then compensated).

Refuted: a saga meeting all four whose compensation needs the action's reply
(a reservation id) cannot compensate after a partition: with an escalating
policy it ends STUCK, even when compensations never fail on their own (BMC run
of the shared semantics). Corrected: add (5) a compensation never needs the
action's reply (or the reply is persisted before the action runs) and (6)
compensations are retried until they succeed, and, since a command whose
attempt timed out may still arrive after its compensation (late delivery), (7)
every compensatable step with a timeout declares the participant's
countermeasures (empty rollback and anti-suspension); then a chain of any length is
eventually consistent and terminates under fairness (the parametric proof of
:mod:`proofs.saga_correctness`, whose model has unknown outcomes), and the
z3 backend proves it unboundedly for the definitions in :func:`instances`.
"""

from __future__ import annotations

from saga_models import CompensationPolicy, FaultModel, Saga, Step
from verifier.smt import find_counterexample

from . import saga_correctness
from ._result import ProofResult, Status

CLAIM = (
    "idempotent operations, compensations that undo, deterministic handlers "
    "and partitions detected and handled give eventual consistency"
)


def conditions(saga: Saga) -> dict[str, bool]:
    """The four seed conditions, and the two added ones, on a definition."""
    return {
        "1_idempotent": all(s.idempotent for s in saga.steps),
        "2_compensations_undo": all(
            s.compensation is not None
            for s in saga.steps
            if s.kind.value == "compensatable"
        ),
        "3_deterministic": True,  # semantics.apply is a pure function
        "4_partitions_detected": all(s.timeout is not None for s in saga.steps),
        "5_compensation_without_reply": not any(
            s.compensation_needs_result for s in saga.steps
        ),
        "6_compensations_until_success": saga.compensation_policy.forever,
        "7_late_countermeasures": all(
            s.empty_rollback and s.anti_suspension for s in saga.steps
            if s.compensation is not None and s.timeout is not None),
    }


def counterexample_saga() -> Saga:
    """Meets conditions 1 to 4; the hotel's cancellation needs the booking id."""
    return Saga(
        name="partitioned_booking",
        steps=(
            Step(
                name="book_hotel",
                participant="hotel",
                action="book",
                compensation="cancel",
                timeout=2.0,
                compensation_needs_result=True,
            ),
            Step(
                name="charge",
                participant="payments",
                action="charge",
                compensation="refund",
                timeout=2.0,
                depends_on=("book_hotel",),
            ),
        ),
        compensation_policy=CompensationPolicy(max_attempts=3),
    )


def instances() -> list[Saga]:
    """Definitions meeting all seven conditions (chain and parallel), for the
    backend's unbounded check in the tests."""

    def step(name: str, deps: tuple[str, ...] = ()) -> Step:
        return Step(
            name=name,
            participant=name,
            action="do",
            compensation="undo",
            timeout=1.0,
            depends_on=deps,
            empty_rollback=True,
            anti_suspension=True,
        )

    return [
        Saga(name="chain3", steps=(step("a"), step("b", ("a",)), step("c", ("b",)))),
        Saga(name="fork", steps=(step("a"), step("b", ("a",)), step("c", ("a",)))),
    ]


def run() -> ProofResult:
    """Refute on the partitioned booking; prove the corrected chain statement."""
    saga = counterexample_saga()
    holds = conditions(saga)
    seed_ok = all(v for k, v in holds.items() if k[0] in "1234")
    cex = find_counterexample(
        saga,
        "eventual_consistency",
        faults=FaultModel(comp_fail=False, crashes=0, duplicates=0),
    )
    chain = saga_correctness.run()
    ok = seed_ok and cex is not None and chain.status is Status.REFUTED_AND_CORRECTED
    return ProofResult(
        name="workflow_conditions",
        claim=CLAIM,
        status=Status.REFUTED_AND_CORRECTED if ok else Status.UNKNOWN,
        statement=(
            "conditions 1-4 plus (5) no compensation needs its action's reply "
            "and (6) compensations are retried until they succeed and (7) timed "
            "compensatable steps declare empty rollback and anti-suspension "
            "(late delivery) give, for a "
            "chain of any length, eventual consistency and termination under "
            "strong fairness; " + chain.statement
        ),
        assumptions=(
            "1: Step.idempotent",
            "2: compensation present, undoes one application",
            "3: semantics.apply is pure",
            "4: every step declares a timeout",
            "5: not compensation_needs_result",
            "6: compensation policy forever",
            "7: empty_rollback and anti_suspension on timed compensatable steps",
            "fault model: action failures, timeouts; compensations never "
            "fail on their own (comp_fail off) in the refutation",
        ),
        counterexample=cex,
        witness={
            "conditions_of_counterexample": holds,
            "parametric_proof": chain.witness,
        },
        detail=chain.detail,
    )

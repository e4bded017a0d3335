"""A saga compiled into a transition system under a fault model.

The successor relation is exactly :func:`saga_models.semantics.enabled` followed
by :func:`saga_models.semantics.apply`; this module only adds what the checker
needs: fairness families, renderings and the four properties of DESIGN.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from saga_models import FaultModel, Saga, Severity
from saga_models import semantics as sem
from saga_models._validate import structure_diagnostics
from saga_models.semantics import (
    CS,
    EF,
    HEADER,
    PHASE,
    ST,
    WIDTH,
    CompStatus,
    Event,
    EventKind,
    Outcome,
    Phase,
    Status,
)

from ._ts import Property, StateT

SAGA_PROPERTIES = (
    "compensation_completeness",
    "termination",
    "eventual_consistency",
    "structure",
)

FAIRNESS = (
    "strong fairness: an action or compensation retried infinitely often "
    "eventually succeeds, the orchestrator eventually sends every command it may "
    "send and eventually recovers; crashes and duplicates are bounded by the "
    "fault model"
)

_TOOK_EFFECT = (Status.OK, Status.UNKNOWN, Status.RETRY_UNKNOWN)


def fairness_family(n: int, e: Event) -> int:
    """Strong-fairness family of an event of an ``n``-step saga, or -1.

    Shared by the explicit checker and the SMT encoding, so both check
    termination under the same fairness.
    """
    k = e.kind
    if k is EventKind.DISPATCH:
        return e.step
    if k is EventKind.REPLY and e.outcome is Outcome.OK:
        return n + e.step
    if k is EventKind.COMP_DISPATCH:
        return 2 * n + e.step
    if k is EventKind.COMP_REPLY and e.outcome is Outcome.OK:
        return 3 * n + e.step
    if k is EventKind.RECOVER:
        return 4 * n
    return -1


class SagaTransitionSystem:
    """The transition system of one saga under one fault model."""

    transition_kinds = frozenset({EventKind.COMP_DISPATCH})
    """The only kinds of event whose transitions a property's
    ``on_transition`` looks at (the compiled search keeps just those)."""

    def __init__(self, saga: Saga, faults: FaultModel = sem.ALL_FAULTS) -> None:
        self.saga = saga
        self.faults = faults
        self.name = saga.name
        self.fault_model = faults.describe()
        self.fairness = FAIRNESS
        self._n = len(saga.steps)
        self.properties = self._properties()
        self.compiled_properties = self.properties
        """The properties as made here, which the compiled property pass
        (``verifier._kernel_props``) mirrors; one put in ``properties`` later
        is checked in Python."""

    # --- the protocol ----------------------------------------------------------
    def initial(self) -> list[StateT]:
        return [tuple(int(x) for x in sem.initial_state(self.saga))]

    def successors(self, state: StateT) -> list[tuple[Any, StateT]]:
        saga, apply = self.saga, sem.apply
        events = sem.enabled(saga, state, self.faults)
        return [(e, apply(saga, state, e)) for e in events]

    def is_terminal(self, state: StateT) -> bool:
        return sem.is_terminal(state)

    def fairness_family(self, label: Any) -> int:
        return fairness_family(self._n, label)

    def label_text(self, label: Any) -> str:
        return str(label.describe(self.saga))

    def label_json(self, label: Any) -> dict[str, object]:
        return dict(label.to_json(self.saga))

    def state_json(self, state: StateT) -> dict[str, object]:
        return sem.view(self.saga, state).to_json()

    # --- properties --------------------------------------------------------------
    def _properties(self) -> tuple[Property, ...]:
        saga = self.saga
        names = [s.name for s in saga.steps]
        n = self._n
        has_comp = [s.compensation is not None for s in saga.steps]
        effect_steps = sem.effect_steps(saga)

        def left_uncompensated(state: StateT) -> str | None:
            if state[PHASE] not in (Phase.COMPENSATED, Phase.FAILED):
                return None
            for i in effect_steps:
                b = HEADER + WIDTH * i
                if state[b + EF] > 0 and state[b + CS] != CompStatus.DONE:
                    why = (
                        "has no compensation"
                        if not has_comp[i]
                        else "was never compensated"
                    )
                    return (
                        f"saga ended {Phase(state[PHASE]).name} but step "
                        f"{names[i]!r} took effect and {why}"
                    )
            return None

        def compensated_unstarted(state: StateT) -> str | None:
            for i in range(n):
                b = HEADER + WIDTH * i
                cs, st = state[b + CS], state[b + ST]
                if cs != CompStatus.NONE and st == Status.PENDING:
                    return (
                        f"the compensation of {names[i]!r} ran although "
                        f"{names[i]!r} never started"
                    )
            return None

        def out_of_order(src: StateT, label: Any, dst: StateT) -> str | None:
            e: Event = label
            if e.kind is not EventKind.COMP_DISPATCH:
                return None
            for j in sem.compensate_after(saga, e.step):
                b = HEADER + WIDTH * j
                # What the orchestrator knows, not the hidden world: an effect it
                # cannot see is a completeness violation at the end, not an
                # ordering one.
                needs = has_comp[j] and src[b + ST] in _TOOK_EFFECT
                if needs and src[b + CS] != CompStatus.DONE:
                    return (
                        f"compensation of {names[e.step]!r} started before that "
                        f"of {names[j]!r}, which depends on it"
                    )
            return None

        def completeness_state(state: StateT) -> str | None:
            return compensated_unstarted(state)

        def consistent(state: StateT) -> str | None:
            ph = state[PHASE]
            if ph == Phase.STUCK:
                return (
                    "saga can end STUCK (a compensation or a step after the pivot "
                    "could not finish): a person must resume it, and until then "
                    "the participants disagree"
                )
            for i in effect_steps:
                eff = state[HEADER + WIDTH * i + EF]
                if ph == Phase.COMPLETED and eff != 1:
                    return (
                        f"saga ended COMPLETED but step {names[i]!r} took effect "
                        f"{'twice' if eff > 1 else 'never'}"
                    )
                if ph in (Phase.COMPENSATED, Phase.FAILED) and eff:
                    return (
                        f"saga ended {Phase(ph).name} but the effect of "
                        f"{names[i]!r} is still in place"
                        + (" (undone once, but it took effect again: a second "
                           "delivery, or a late one after the compensation)"
                           if state[HEADER + WIDTH * i + CS] == CompStatus.DONE
                           else "")
                    )
            return None

        structural = [
            d
            for d in (*structure_diagnostics(saga), *saga.import_diagnostics)
            if d.severity is Severity.ERROR
        ]

        def unreachable(states: Sequence[StateT]) -> str | None:
            reached = [False] * n
            for st in states:
                for i in range(n):
                    if st[HEADER + WIDTH * i + ST] != Status.PENDING:
                        reached[i] = True
            never = [names[i] for i in range(n) if not reached[i]]
            if never:
                return "step(s) never reached in any execution: " + ", ".join(never)
            return None

        return (
            Property(
                name="compensation_completeness",
                description="after an abort every step that took effect is "
                "compensated, dependents first, and nothing that never started",
                on_state=completeness_state,
                on_terminal=left_uncompensated,
                on_transition=out_of_order,
            ),
            Property(
                name="termination",
                description="every fair execution reaches a terminal outcome",
                liveness=True,
            ),
            Property(
                name="eventual_consistency",
                description="in every terminal state the participants agree with "
                "the outcome; STUCK is reported as such",
                on_terminal=consistent,
            ),
            Property(
                name="structure",
                description="pivot rules, compensations present, retriable steps "
                "unbounded, no unreachable step",
                static_violation="\n".join(d.render() for d in structural) or None,
                on_complete=unreachable,
            ),
        )

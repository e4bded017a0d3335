"""An event workflow compiled into a transition system under its bus contract.

The successor relation is exactly :func:`saga_models.workflow.semantics.enabled`
followed by :func:`~saga_models.workflow.semantics.apply`; this module adds the
fairness families, the message-sequence renderings and the six properties:

- ``eventual_consistency``: every quiescent state matches a declared outcome;
- ``deadlock_freedom``: no quiescent state is neither final nor an outcome;
- ``termination``: no fair infinite execution (event ping-pong, timer loops),
  and the bus stays within its capacity;
- ``no_unhandled_event``: no event reaches a state that neither handles nor
  ignores it;
- ``idempotency``: a duplicate handled by a transition declared idempotent
  changes neither the service's state nor a counter;
- ``invariants``: every user invariant holds in every reachable state.

A state is *quiescent* when nothing can happen: the bus is empty and no timer
is armed. Those are the ends of executions (:meth:`is_terminal`).
"""

from __future__ import annotations

from typing import Any

from saga_models import FaultModel, Severity
from saga_models.workflow import Workflow, structure_diagnostics
from saga_models.workflow import semantics as sem
from saga_models.workflow.semantics import HEADER, OVERFLOW, Step, StepKind

from ._ts import Property, StateT

WORKFLOW_PROPERTIES = (
    "eventual_consistency",
    "deadlock_freedom",
    "termination",
    "no_unhandled_event",
    "idempotency",
    "invariants",
    "structure",
)

_DEFAULT_FAULTS = FaultModel()

FAIRNESS = (
    "strong fairness: an event pending for a service infinitely often is "
    "eventually delivered to it, and a timer armed infinitely often eventually "
    "fires; duplicates are bounded by the fault model"
)


class WorkflowTransitionSystem:
    """The transition system of one workflow under one fault model."""

    transition_kinds = frozenset({(StepKind.UNHANDLED, False),
                                  (StepKind.UNHANDLED, True),
                                  (StepKind.DELIVER, True)})
    """The only (kind, duplicate) pairs of steps whose transitions a
    property's ``on_transition`` looks at (the compiled search keeps just
    those)."""

    def __init__(self, wf: Workflow, faults: FaultModel = _DEFAULT_FAULTS, *,
                 reduce: bool = False) -> None:
        self.wf = wf
        self.reduce = reduce
        self.name = wf.name
        self._t = sem.tables(wf)
        self.duplicates = faults.duplicates if self._t.at_least_once else 0
        self.fault_model = self._describe()
        self.fairness = FAIRNESS
        self._n_slots = len(self._t.channels if self._t.fifo else self._t.slots)
        self.properties = self._properties()

    def _describe(self) -> str:
        t, bus = self._t, self.wf.bus
        parts = [f"bus {bus.delivery.value}"]
        if t.at_least_once:
            parts[0] += f" (up to {self.duplicates} duplicate deliveries)"
        parts.append("fifo per sender-receiver channel" if t.fifo
                     else "unordered")
        parts.append(f"capacity {bus.capacity}")
        if any(tr.is_timer for s in self.wf.services for tr in s.transitions):
            parts.append("timers fire at any time")
        if self.wf.counters:
            parts.append("counters capped at " + ", ".join(
                f"{c.name}<={c.cap}" for c in self.wf.counters))
        if self.reduce:
            parts.append("dedup reduction")
        return "; ".join(parts)

    # --- the protocol ------------------------------------------------------------
    def initial(self) -> list[StateT]:
        return [sem.initial_state(self.wf, duplicates=self.duplicates)]

    def successors(self, state: StateT) -> list[tuple[Any, StateT]]:
        wf = self.wf
        return [(s, sem.apply(wf, state, s))
                for s in sem.enabled(wf, state, reduce=self.reduce)]

    def is_terminal(self, state: StateT) -> bool:
        return sem.is_quiescent(self.wf, state)

    def fairness_family(self, label: Any) -> int:
        s: Step = label
        t = self._t
        if s.kind is StepKind.TIMER:
            return self._n_slots + s.service
        if t.fifo:
            return t.channel_of[(s.sender, s.service)]
        return t.slot_of[(s.service, s.event)]

    def label_text(self, label: Any) -> str:
        return sem.describe(self.wf, label)

    def label_json(self, label: Any) -> dict[str, object]:
        return sem.step_json(self.wf, label)

    def state_json(self, state: StateT) -> dict[str, object]:
        return sem.view(self.wf, state)

    # --- properties ---------------------------------------------------------------
    def _properties(self) -> tuple[Property, ...]:
        wf, t = self.wf, self._t
        n = len(t.services)
        outcomes = [
            tuple((t.services.index(svc), t.state_names[t.services.index(svc)]
                   .index(st)) for svc, st in o.states)
            for o in wf.outcomes
        ]
        finals = [frozenset(s.states.index(f) for f in s.final)
                  for s in wf.services]

        def matches_outcome(state: StateT) -> bool:
            return any(all(state[HEADER + 2 * i] == v for i, v in o)
                       for o in outcomes)

        def all_final(state: StateT) -> bool:
            return all(not finals[i] or state[HEADER + 2 * i] in finals[i]
                       for i in range(n))

        def where(state: StateT) -> str:
            return ", ".join(f"{k}={v}" for k, v in
                             sem.state_names(wf, state).items())

        def consistent(state: StateT) -> str | None:
            if state[OVERFLOW] or matches_outcome(state):
                return None
            if not outcomes:
                if all_final(state):
                    return None
                return (f"the workflow comes to rest in ({where(state)}), which "
                        "is not final, and no outcomes are declared")
            return (f"the workflow comes to rest in ({where(state)}), which "
                    "matches no declared outcome ("
                    + " | ".join(o.describe() for o in wf.outcomes) + ")")

        def deadlock(state: StateT) -> str | None:
            if state[OVERFLOW] or matches_outcome(state) or all_final(state):
                return None
            waiting = [
                f"{svc} waits in {st}"
                for i, (svc, st) in enumerate(sem.state_names(wf, state).items())
                if finals[i] and state[HEADER + 2 * i] not in finals[i]
            ]
            return ("deadlock: " + ", ".join(waiting or [where(state)]) +
                    "; nothing is on the bus and no timer is armed")

        def overflow(state: StateT) -> str | None:
            if not state[OVERFLOW]:
                return None
            return (f"the bus exceeded its capacity ({wf.bus.capacity} pending "
                    "per subscriber and event, or per fifo channel): the workflow "
                    "may emit without bound (raise bus.capacity if it does not)")

        def unhandled(src: StateT, label: Any, dst: StateT) -> str | None:
            s: Step = label
            if s.kind is not StepKind.UNHANDLED:
                return None
            return (f"event {t.events[s.event]!r} reaches service "
                    f"{t.services[s.service]!r} in state "
                    f"{sem.service_state(wf, src, s.service)!r}, which has no "
                    "transition for it and does not ignore it")

        counter_slice = slice(t.counter_base, t.bus_base)

        def idempotent(src: StateT, label: Any, dst: StateT) -> str | None:
            s: Step = label
            if not s.duplicate or s.kind is not StepKind.DELIVER:
                return None
            tr = t.transition(s.service, s.transition)
            if not tr.idempotent:
                return None
            b = HEADER + 2 * s.service
            changed = []
            if src[b] != dst[b]:
                changed.append(f"state {sem.service_state(wf, src, s.service)} -> "
                               f"{sem.service_state(wf, dst, s.service)}")
            for name, (x, y) in zip(t.counters, zip(src[counter_slice],
                                                    dst[counter_slice],
                                                    strict=True), strict=True):
                if x != y:
                    changed.append(f"{name} {x} -> {y}")
            if not changed:
                return None
            return (f"a duplicate of {t.events[s.event]!r} to service "
                    f"{t.services[s.service]!r}, handled by a transition declared "
                    "idempotent, changed " + ", ".join(changed))

        def invariants(state: StateT) -> str | None:
            if not wf.invariants:
                return None
            counters = sem.counter_values(wf, state)
            states = sem.state_names(wf, state)
            for inv in wf.invariants:
                if not inv.expr.evaluate(counters, states):
                    shown = ", ".join(
                        [f"{c}={counters[c]}" for c in sorted(inv.expr.counters)]
                        + [f"{s}.state={states[s]}"
                           for s in sorted(inv.expr.services)])
                    return f"invariant {inv.name!r} is broken ({shown})"
            return None

        structural = [d for d in structure_diagnostics(wf)
                      if d.severity is Severity.ERROR]

        return (
            Property(name="eventual_consistency",
                     description="every quiescent state matches a declared outcome",
                     on_terminal=consistent),
            Property(name="deadlock_freedom",
                     description="no quiescent state is neither final nor an "
                     "outcome", on_terminal=deadlock),
            Property(name="termination",
                     description="no fair infinite execution; the bus stays "
                     "within its capacity", liveness=True, on_state=overflow),
            Property(name="no_unhandled_event",
                     description="no event reaches a state that neither handles "
                     "nor ignores it", on_transition=unhandled),
            Property(name="idempotency",
                     description="a duplicate handled by an idempotent transition "
                     "changes no state and no counter", on_transition=idempotent),
            Property(name="invariants",
                     description="every user invariant holds in every reachable "
                     "state", on_state=invariants),
            # Definition bugs are verdicts, as for sagas (docs/errors.md).
            Property(name="structure",
                     description="every event emitted is handled, every handled "
                     "event is emitted, no dead transition, no unreachable state",
                     static_violation="; ".join(d.render() for d in structural)
                     or None),
        )


def compile_workflow(wf: Any, faults: FaultModel) -> WorkflowTransitionSystem:
    """The compiler :func:`verifier.check` uses for a :class:`Workflow`
    (registered by the package, ``verifier/__init__.py``)."""
    return WorkflowTransitionSystem(wf, faults)

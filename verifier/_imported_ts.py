"""An imported state machine (ASL) compiled into a transition system.

The successor relation is exactly
:func:`saga_models.importers.graph_semantics.enabled` followed by
:func:`~saga_models.importers.graph_semantics.apply`, over the file's own graph;
this module adds the fairness families, the renderings and the properties:

- ``compensation_completeness``: an execution that fails (or times out) leaves
  no forward Task's effect in place;
- ``eventual_consistency``: an execution that succeeds has undone nothing (a
  rollback that ends in Succeed masks the failure), and one that fails has not
  undone only part of what it did;
- ``termination``: every fair execution ends (under the fairness below);
- ``unconditional_termination``: termination without the assumptions about
  the outside world that ``termination`` makes: that a polled service
  eventually changes what it reports (a Choice eventually takes its exit) and
  that a callback (``.waitForTaskToken`` with no timeout) eventually comes.
  Timers (Wait states), Task outcomes and the engine's own steps stay fair.
"""

from __future__ import annotations

from typing import Any

from saga_models import FaultModel
from saga_models.importers import graph_semantics as gs
from saga_models.importers.graph_semantics import Event, ImportedMachine

from ._ts import Property, StateT

IMPORTED_PROPERTIES = (
    "compensation_completeness",
    "eventual_consistency",
    "termination",
    "unconditional_termination",
)

UNCONDITIONAL_BUDGET = 1_000_000
"""States explored for ``unconditional_termination`` (a second exploration)."""

FAIRNESS = (
    "strong fairness: a Task attempted infinitely often eventually succeeds, and "
    "a Choice evaluated infinitely often eventually takes each of its branches "
    "(a polled service eventually changes what it reports)"
)


class ImportedTransitionSystem:
    """The transition system of one imported machine under one fault model."""

    def __init__(self, im: ImportedMachine, faults: FaultModel = FaultModel(),
                 *, environment_fair: bool = True,
                 explore_unconditional: bool = True) -> None:
        """``explore_unconditional=False`` leaves ``unconditional_termination``
        to the caller (the z3 backend decides it itself rather than by an
        explicit search)."""
        self.im = im
        self._explore_unconditional = explore_unconditional
        self.faults = faults
        self.environment_fair = environment_fair
        self.name = im.name
        self._t = gs.tables(im, fail=faults.fail, timeout=faults.timeout,
                            comp_fail=faults.comp_fail)
        knobs = [n for n in ("fail", "timeout", "comp_fail") if getattr(faults, n)]
        # The engine's state is durable and its task calls are at-least-once
        # from the service's side only through Retry: crashes and duplicate
        # deliveries of the orchestrator are not the engine's to model.
        self.fault_model = ",".join(knobs) or "none"
        if im.bpmn_dialect is not None:
            # The compensation rules differ between the engines: a verdict
            # holds under the one it was checked for.
            self.fault_model += f"; BPMN dialect {im.bpmn_dialect}"
        if self._t.machine_timeout is not None:
            self.fault_model += (f"; machine TimeoutSeconds "
                                 f"{self._t.machine_timeout:g}s may expire")
        elif (faults.timeout and im.machine_timeout is not None
              and not gs.machine_timeout_can_expire(im)):
            # Left out of the model: say why, so the verdict is read right.
            self.fault_model += (
                f"; machine TimeoutSeconds {im.machine_timeout:g}s cannot "
                f"expire (every run ends within {im.worst_case:g}s)")
        self.fairness = FAIRNESS
        self._families: dict[tuple[str, int, int, int], int] = {}
        self.properties = self._properties()

    @property
    def tables(self) -> gs.Tables:
        """The graph semantics' tables under this fault model."""
        return self._t

    # --- the protocol ------------------------------------------------------------
    def initial(self) -> list[StateT]:
        return [gs.initial_state(self._t)]

    def successors(self, state: StateT) -> list[tuple[Any, StateT]]:
        t = self._t
        return [(e, gs.apply(t, state, e)) for e in gs.enabled(t, state)]

    def is_terminal(self, state: StateT) -> bool:
        return gs.is_terminal(self._t, state)

    def fairness_family(self, label: Any) -> int:
        e: Event = label
        env = self.environment_fair
        if e.kind == "ok":
            if not env and (e.region, e.node) in self._t.callbacks:
                return -1
            key = ("ok", e.region, e.node, 0)
        elif e.kind == "choose":
            if not env:
                return -1
            key = ("choose", e.region, e.node, e.arg)
        elif e.kind in ("step", "branch_failed", "comp_ok", "comp_skip"):
            key = (e.kind, e.region, e.node, 0)
        else:
            return -1
        return self._families.setdefault(key, len(self._families))

    def label_text(self, label: Any) -> str:
        return gs.describe(self._t, label)

    def label_json(self, label: Any) -> dict[str, object]:
        return gs.event_json(self._t, label)

    def state_json(self, state: StateT) -> dict[str, object]:
        return gs.view(self._t, state)

    # --- properties ----------------------------------------------------------------
    def _ending(self, state: StateT) -> str:
        t = self._t
        if state[0] == gs.TIMED_OUT:
            return "the execution times out (machine TimeoutSeconds)"
        if state[0] == gs.SUCCEEDED:
            return "the workflow ends after compensating"
        if state[0] == gs.STUCK and t.errors[state[1] // 2 - 1] != gs.INCIDENT:
            return (f"{t.errors[state[1] // 2 - 1]} is caught nowhere: Zeebe "
                    "raises an incident and the instance waits for an operator")
        if state[0] == gs.STUCK:
            return ("the compensation stops at an incident (it waits for an "
                    "operator)")
        error = t.errors[state[1] // 2 - 1] if state[1] else "an error"
        return f"the execution fails with {error}"

    def _properties(self) -> tuple[Property, ...]:
        t = self._t

        rolled_ok = self.im.rollback_end_ok

        def rolled_back(state: StateT) -> bool:
            return aborted(self.im, t, state)

        def complete(state: StateT) -> str | None:
            if not rolled_back(state):
                return None
            left = gs.held(t, state)
            if not left:
                return None
            return (f"{self._ending(state)} with the effect of "
                    + ", ".join(map(repr, left)) + " in place: nothing undoes "
                    + ("it" if len(left) == 1 else "them") + " on this path")

        def consistent(state: StateT) -> str | None:
            undone = gs.held(t, state, gs.UNDONE)
            if state[0] == gs.SUCCEEDED and undone and not rolled_ok:
                return ("the execution succeeds after undoing "
                        + ", ".join(map(repr, undone)) + ": the rollback ends in "
                        "success and masks the failure from the caller")
            if state[0] == gs.SUCCEEDED and state[2] == 1 and not rolled_ok:
                return ("the execution succeeds although a Task failed: its "
                        "Catch route runs only handlers and ends in success, "
                        "so the caller cannot tell the failure from success")
            left = gs.held(t, state)
            if rolled_back(state) and undone and left:
                return (f"{self._ending(state)} part-way through the rollback: "
                        + ", ".join(map(repr, undone)) + " undone, "
                        + ", ".join(map(repr, left)) + " still in place")
            return None

        return (
            Property(name="compensation_completeness",
                     description="an execution that fails or times out leaves no "
                     "forward Task's effect in place", on_terminal=complete),
            Property(name="eventual_consistency",
                     description="a succeeding execution undid nothing; a failing "
                     "one undid all or nothing", on_terminal=consistent),
            Property(name="termination",
                     description="every fair execution ends", liveness=True),
            Property(name="unconditional_termination",
                     description="every execution ends even if a polled service "
                     "never changes what it reports and a callback never comes",
                     static_violation=self._unconditional()),
        )

    def _unconditional(self) -> str | None:
        """Termination of the same system with the environment unfair."""
        if not self.environment_fair or not self._explore_unconditional:
            return None
        from ._explicit import explore

        other = ImportedTransitionSystem(self.im, self.faults,
                                         environment_fair=False)
        [result] = explore(other, properties=["termination"],
                           max_states=UNCONDITIONAL_BUDGET)
        if result.verdict.value == "holds":
            return None
        if result.counterexample is None:
            # Unknown never passes: a budget that runs out is reported.
            return ("could not be decided within "
                    f"{UNCONDITIONAL_BUDGET:,} states: " + (result.reason or ""))
        trace = result.counterexample
        loop = [s.action for s in trace.steps[(trace.loop_start or 0) + 1:]]
        what = trace.violation.split(" (strong fairness")[0]
        return ("without assuming that polled services change and callbacks "
                "come: " + what + "; the cycle: " + "; ".join(loop))


def aborted(im: ImportedMachine, t: gs.Tables, state: StateT) -> bool:
    """Whether a terminal ``state`` ends a run that gave up: it failed, timed
    out or is stuck; or (formats that end a rolled-back run normally) it
    undid something; or (BPMN) it caught an error or a cancel and no forward
    task succeeded after that (a normal end after an error route)."""
    if state[0] in (gs.FAILED, gs.TIMED_OUT, gs.STUCK):
        return True
    if state[0] != gs.SUCCEEDED or not im.rollback_end_ok:
        return False
    return bool(gs.held(t, state, gs.UNDONE)) or (
        im.bpmn_dialect is not None and state[2] == 1)


def compile_imported(im: Any, faults: FaultModel) -> ImportedTransitionSystem:
    """The compiler :func:`verifier.check` uses for an imported machine."""
    return ImportedTransitionSystem(im, faults)



def findings(im: ImportedMachine, faults: FaultModel = FaultModel(), *,
             max_states: int = 1_000_000) -> frozenset[str]:
    """Every distinct finding on ``im``, not only the first per property.

    One id per fact a reviewer would list: ``left_in_place:<Task>`` (some
    failing or timed-out end leaves its effect), ``masked_rollback`` and
    ``masked_failure`` (a success after a rollback, or after a Catch route of
    handlers only), ``machine_timeout`` (the machine timeout cuts a run with
    effects in place), ``termination`` and ``unconditional_termination``.

    Raises:
        ValueError: the state budget ran out (a partial list is no list).
    """
    from ._explicit import explore

    ts = ImportedTransitionSystem(im, faults)
    t = ts._t
    seen = set(ts.initial())
    todo = list(seen)
    out: set[str] = set()
    while todo:
        state = todo.pop()
        if gs.is_terminal(t, state):
            failed = aborted(im, t, state)
            left = gs.held(t, state)
            if failed:
                out.update(f"left_in_place:{task}" for task in left)
                if state[0] == gs.TIMED_OUT and left:
                    out.add("machine_timeout")
            elif gs.held(t, state, gs.UNDONE):
                out.add("masked_rollback")
            elif state[2] == 1 and not im.rollback_end_ok:
                out.add("masked_failure")
            continue
        for _, nxt in ts.successors(state):
            if nxt not in seen:
                if len(seen) >= max_states:
                    raise ValueError(f"more than {max_states:,} states")
                seen.add(nxt)
                todo.append(nxt)
    for r in explore(ts, properties=["termination", "unconditional_termination"],
                     max_states=max_states):
        if r.verdict.value != "holds":
            out.add(r.property)
    return frozenset(out)

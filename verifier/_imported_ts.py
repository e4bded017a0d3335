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
- ``termination_without_fair_choice``: no loop through a Choice, whose exit
  depends on an external service eventually changing what it reports (a
  polling loop ends only under that assumption, which ``termination`` makes).
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from saga_models import FaultModel
from saga_models.importers import graph_semantics as gs
from saga_models.importers.graph_semantics import Event, ImportedMachine

from ._check import register_model
from ._ts import Property, StateT

IMPORTED_PROPERTIES = (
    "compensation_completeness",
    "eventual_consistency",
    "termination",
    "termination_without_fair_choice",
)

FAIRNESS = (
    "strong fairness: a Task attempted infinitely often eventually succeeds, and "
    "a Choice evaluated infinitely often eventually takes each of its branches "
    "(a polled service eventually changes what it reports)"
)


class ImportedTransitionSystem:
    """The transition system of one imported machine under one fault model."""

    def __init__(self, im: ImportedMachine, faults: FaultModel = FaultModel()
                 ) -> None:
        self.im = im
        self.name = im.name
        self._t = gs.tables(im, fail=faults.fail, timeout=faults.timeout,
                            comp_fail=faults.comp_fail)
        knobs = [n for n in ("fail", "timeout", "comp_fail") if getattr(faults, n)]
        # The engine's state is durable and its task calls are at-least-once
        # from the service's side only through Retry: crashes and duplicate
        # deliveries of the orchestrator are not the engine's to model.
        self.fault_model = ",".join(knobs) or "none"
        if self._t.machine_timeout is not None:
            self.fault_model += (f"; machine TimeoutSeconds "
                                 f"{self._t.machine_timeout:g}s may expire")
        self.fairness = FAIRNESS
        self._families: dict[tuple[str, int, int, int], int] = {}
        self.properties = self._properties()

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
        if e.kind == "ok":
            key = ("ok", e.region, e.node, 0)
        elif e.kind == "choose":
            key = ("choose", e.region, e.node, e.arg)
        elif e.kind == "step":
            key = ("step", e.region, e.node, 0)
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
        error = t.errors[state[1] - 1] if state[1] else "an error"
        return f"the execution fails with {error}"

    def _properties(self) -> tuple[Property, ...]:
        t = self._t

        def complete(state: StateT) -> str | None:
            if state[0] not in (gs.FAILED, gs.TIMED_OUT):
                return None
            left = gs.held(t, state)
            if not left:
                return None
            return (f"{self._ending(state)} with the effect of "
                    + ", ".join(map(repr, left)) + " in place: nothing undoes it "
                    "on this path")

        def consistent(state: StateT) -> str | None:
            undone = gs.held(t, state, gs.UNDONE)
            if state[0] == gs.SUCCEEDED and undone:
                return ("the execution succeeds after undoing "
                        + ", ".join(map(repr, undone)) + ": the rollback ends in "
                        "success and masks the failure from the caller")
            left = gs.held(t, state)
            if state[0] in (gs.FAILED, gs.TIMED_OUT) and undone and left:
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
            Property(name="termination_without_fair_choice",
                     description="no loop through a Choice (whose exit needs an "
                     "external service to change what it reports)",
                     static_violation=choice_loop(self.im)),
        )


def choice_loop(im: ImportedMachine) -> str | None:
    """A loop through a Choice state, in words, or None."""
    for graph in _graphs(im.machine.top):
        g: nx.DiGraph[str] = nx.DiGraph()
        for node in graph.nodes.values():
            for target in (node.next, *node.choices, node.default,
                           *(c.next for c in node.catches)):
                if target is not None and target in graph.nodes:
                    g.add_edge(node.name, target)
        for scc in nx.strongly_connected_components(g):
            if len(scc) < 2 and not any(g.has_edge(n, n) for n in scc):
                continue
            choices = [n for n in graph.nodes if n in scc
                       and graph.nodes[n].kind == "choice"]
            if choices:
                c = graph.nodes[choices[0]]
                loop = [n for n in graph.nodes if n in scc]
                return (f"the loop {' -> '.join(loop)} exits only when Choice "
                        f"{c.name!r} (line {c.span.line}) takes its exit: it "
                        "ends only if the service it polls eventually changes "
                        "what it reports (no bound on the number of rounds)")
    return None


def _graphs(top: Any) -> list[Any]:
    out = [top]
    for node in top.nodes.values():
        for b in node.branches:
            out.extend(_graphs(b))
    return out


def compile_imported(im: Any, faults: FaultModel) -> ImportedTransitionSystem:
    """The compiler :func:`verifier.check` uses for an imported machine."""
    return ImportedTransitionSystem(im, faults)


register_model(ImportedMachine, "state machine", compile_imported)

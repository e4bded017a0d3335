"""The Python builder: the third way to write a workflow, same IR.

The builder assembles the same plain data a YAML file holds and lowers it with
the same code, so a builder definition is validated exactly like a file.

>>> wf = (WorkflowBuilder("ping", delivery="exactly_once")
...       .start("ping")
...       .service("pinger", initial="WAIT", final=["DONE"])
...       .on("WAIT", "pong", to="DONE")
...       .service("ponger", initial="IDLE")
...       .on("IDLE", "ping", to="IDLE", emit=["pong"])
...       .outcome(pinger="DONE")
...       .build())
>>> [s.name for s in wf.services]
['pinger', 'ponger']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._ir import Workflow
from ._loader import load_workflow_data


class WorkflowBuilder:
    """A mutable builder that freezes into a :class:`Workflow`."""

    def __init__(self, name: str, *, delivery: str = "exactly_once",
                 order: str = "unordered", capacity: int = 3) -> None:
        self._data: dict[str, Any] = {
            "workflow": name,
            "bus": {"delivery": delivery, "order": order, "capacity": capacity},
            "start": [], "services": {}, "counters": {}, "outcomes": [],
            "invariants": [],
        }
        self._current: dict[str, Any] | None = None

    def start(self, *events: str) -> WorkflowBuilder:
        """Events on the bus at the start."""
        self._data["start"].extend(events)
        return self

    def service(self, name: str, *, initial: str, final: Sequence[str] = (),
                dedup: bool = False, ignore: Sequence[str] = ()) -> WorkflowBuilder:
        """Add a service; the following :meth:`on` and :meth:`timer` calls add
        its transitions."""
        self._current = {"initial": initial, "final": list(final), "dedup": dedup,
                         "ignore": list(ignore), "transitions": []}
        self._data["services"][name] = self._current
        return self

    def on(self, state: str, event: str, *, to: str | None = None,
           emit: Sequence[str] = (), add: Mapping[str, int] | None = None,
           choose: Sequence[Mapping[str, Any]] | None = None,
           guard: str | None = None, idempotent: bool = False,
           handler: str | None = None) -> WorkflowBuilder:
        """A transition of the current service on ``event`` in ``state``."""
        return self._transition({"from": state, "on": event}, to=to, emit=emit,
                                add=add, choose=choose, guard=guard,
                                idempotent=idempotent, handler=handler)

    def timer(self, state: str, after: str | float, *, to: str | None = None,
              emit: Sequence[str] = (), add: Mapping[str, int] | None = None,
              choose: Sequence[Mapping[str, Any]] | None = None,
              guard: str | None = None, handler: str | None = None
              ) -> WorkflowBuilder:
        """A timer of the current service: fires ``after`` entering ``state``."""
        return self._transition({"from": state, "after": after}, to=to, emit=emit,
                                add=add, choose=choose, guard=guard,
                                idempotent=False, handler=handler)

    def _transition(self, t: dict[str, Any], *, to: str | None,
                    emit: Sequence[str], add: Mapping[str, int] | None,
                    choose: Sequence[Mapping[str, Any]] | None, guard: str | None,
                    idempotent: bool, handler: str | None) -> WorkflowBuilder:
        if self._current is None:
            raise ValueError("call .service(name, initial=...) before adding "
                             "transitions")
        if choose is not None:
            t["choose"] = [dict(c) for c in choose]
        else:
            if to is not None:
                t["to"] = to
            if emit:
                t["emit"] = list(emit)
            if add:
                t["add"] = dict(add)
        if guard is not None:
            t["guard"] = guard
        if idempotent:
            t["idempotent"] = True
        if handler is not None:
            t["handler"] = handler
        self._current["transitions"].append(t)
        return self

    def counter(self, name: str, *, initial: int = 0, cap: int = 3
                ) -> WorkflowBuilder:
        """A bounded counter transitions can add to."""
        self._data["counters"][name] = {"initial": initial, "cap": cap}
        return self

    def outcome(self, **states: str) -> WorkflowBuilder:
        """A consistent end state, ``service=STATE`` for each named service."""
        self._data["outcomes"].append(dict(states))
        return self

    def invariant(self, expr: str, *, name: str | None = None) -> WorkflowBuilder:
        """An expression that must hold in every reachable state."""
        self._data["invariants"].append({"expr": expr, "name": name or expr})
        return self

    def build(self) -> Workflow:
        """Validate and freeze (raises :class:`InvalidDefinition`)."""
        return load_workflow_data(self._data)

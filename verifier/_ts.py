"""The transition-system protocol every explored model implements.

A saga and an event workflow both compile to a :class:`TransitionSystem`; the
explicit checker (and the z3 backend) only know this protocol. States are tuples
of small ints, so they pack into ``bytes`` for compact storage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

StateT = tuple[int, ...]

StateCheck = Callable[[StateT], "str | None"]
TransitionCheck = Callable[[StateT, Any, StateT], "str | None"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Property:
    """A property, as the checker sees it.

    A property is any combination of: an invariant (``on_state``, every reachable
    state), a check of terminal states (``on_terminal``), a check of each
    transition (``on_transition``), liveness (``liveness``: no deadlock and no
    fair non-terminating cycle), and a verdict known before exploring
    (``static_violation``, e.g. structure rules). The first violation found in
    breadth-first order has a shortest counterexample.
    """

    name: str
    description: str
    on_state: StateCheck | None = None
    on_terminal: StateCheck | None = None
    on_transition: TransitionCheck | None = None
    liveness: bool = False
    static_violation: str | None = None
    on_complete: Callable[[Sequence[StateT]], str | None] | None = None
    """Run over all reachable states once exploration is complete (e.g. a
    step that is never reached); the message, or None."""


class TransitionSystem(Protocol):
    """What the checkers need to know about a model."""

    name: str
    fault_model: str
    fairness: str
    """The fairness assumption termination is checked under, in words."""
    properties: tuple[Property, ...]

    def initial(self) -> list[StateT]:
        """The initial states."""
        ...

    def successors(self, state: StateT) -> list[tuple[Any, StateT]]:
        """Every (label, next state) pair."""
        ...

    def is_terminal(self, state: StateT) -> bool:
        """Whether ``state`` is an accepted end (not a deadlock)."""
        ...

    def fairness_family(self, label: Any) -> int:
        """Strong-fairness family of a label, or -1 if it carries none."""
        ...

    def label_text(self, label: Any) -> str:
        """Human rendering of a label."""
        ...

    def label_json(self, label: Any) -> dict[str, object]:
        """A label as data."""
        ...

    def state_json(self, state: StateT) -> dict[str, object]:
        """A state as data."""
        ...

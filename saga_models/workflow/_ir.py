"""The frozen intermediate representation of an event workflow.

A workflow is a set of services, each a state machine, that talk only through
an event bus with a declared delivery contract. Every loader (YAML, JSON, the
Python builder) lowers to these values; the verifier and the runtime read only
these values, through :mod:`saga_models.workflow.semantics`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .._span import UNKNOWN_SPAN, Span
from ._expr import Expr

ENV = "env"
"""The sender of the ``start`` events (the outside world)."""


class Delivery(enum.Enum):
    """How many times the bus delivers each event to each subscriber."""

    EXACTLY_ONCE = "exactly_once"
    AT_LEAST_ONCE = "at_least_once"
    """A delivery may be repeated (the consumer did not acknowledge it)."""


class Order(enum.Enum):
    """In which order the bus delivers."""

    FIFO = "fifo"
    """Per (sender, receiver) channel, in the order sent."""
    UNORDERED = "unordered"
    """Any pending event may be delivered next."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Bus:
    """The event bus's delivery contract."""

    delivery: Delivery = Delivery.EXACTLY_ONCE
    order: Order = Order.UNORDERED
    capacity: int = 3
    """Copies of one event pending for one subscriber (unordered), or events
    pending on one channel (fifo), that the model tracks. A send beyond it is
    reported by the ``termination`` property (the workflow emits without
    bound, or the capacity is too small for it)."""
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch:
    """One possible outcome of a handler: the next state, what it emits, and
    which counters it adds to."""

    to: str
    emit: tuple[str, ...] = ()
    add: tuple[tuple[str, int], ...] = ()
    """``(counter, amount)`` pairs."""
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """A reaction of one service: on an event (or a timer) in a state."""

    source: str
    """The state it leaves (``from:`` in the file)."""
    on: str | None = None
    """The event that triggers it; None for a timer."""
    after: float | None = None
    """For a timer: seconds after entering ``source``. The model lets a timer
    fire at any time while the service stays in ``source`` (once per entry)."""
    guard: Expr | None = None
    """Taken only when this holds; the first transition (in file order) whose
    guard holds handles the event."""
    branches: tuple[Branch, ...] = ()
    """The possible outcomes; more than one only when written as ``choose``."""
    choose: bool = False
    idempotent: bool = False
    """Declares that a duplicate delivery handled here changes nothing (no
    state change, no counter change); the ``idempotency`` property checks it."""
    handler: str | None = None
    """Name of the runtime callable; defaults to the event name (or
    ``timer_<state>``)."""
    span: Span = UNKNOWN_SPAN

    @property
    def is_timer(self) -> bool:
        """True for a timer transition (``after:`` instead of ``on:``)."""
        return self.on is None

    @property
    def handler_name(self) -> str:
        """The name a runtime handler is bound by."""
        return self.handler or (self.on if self.on else f"timer_{self.source}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """One service: a state machine with an inbox."""

    name: str
    initial: str
    final: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    """Every state, in order of first mention (initial first)."""
    transitions: tuple[Transition, ...] = ()
    ignore: tuple[str, ...] = ()
    """Events this service may drop in any state without handling them."""
    dedup: bool = False
    """An inbox drops events whose id it has seen (so duplicates are dropped)."""
    span: Span = UNKNOWN_SPAN

    @property
    def events(self) -> tuple[str, ...]:
        """Events it subscribes to: handled somewhere, or ignored."""
        seen: dict[str, None] = {}
        for t in self.transitions:
            if t.on is not None:
                seen.setdefault(t.on)
        for e in self.ignore:
            seen.setdefault(e)
        return tuple(seen)


@dataclass(frozen=True, slots=True, kw_only=True)
class Counter:
    """A bounded counter transitions add to (e.g. how often a card is charged)."""

    name: str
    initial: int = 0
    cap: int = 3
    """Values saturate at ``cap`` (and at 0): the model stores ``cap`` for
    "cap or more". Pick a cap above every bound an invariant mentions."""
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeSpec:
    """A consistent end state: the named services in the named states (services
    not named may be in any state)."""

    states: tuple[tuple[str, str], ...]
    span: Span = UNKNOWN_SPAN

    def describe(self) -> str:
        """``orders=APPROVED, customers=RESERVED``."""
        return ", ".join(f"{s}={v}" for s, v in self.states)


@dataclass(frozen=True, slots=True, kw_only=True)
class Invariant:
    """An expression that must hold in every reachable state."""

    name: str
    expr: Expr
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    """An event workflow: services over a bus, with what counts as consistent."""

    name: str
    services: tuple[Service, ...]
    bus: Bus = Bus()
    start: tuple[str, ...] = ()
    """Events on the bus at the start (sent by :data:`ENV`)."""
    counters: tuple[Counter, ...] = ()
    outcomes: tuple[OutcomeSpec, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    source_format: str = "builder"
    span: Span = UNKNOWN_SPAN

    def service(self, name: str) -> Service:
        """The service called ``name``."""
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(f"no service={name!r}; services are "
                       f"{[s.name for s in self.services]}")

    @property
    def events(self) -> tuple[str, ...]:
        """Every event name (started, emitted or subscribed), in first-mention
        order."""
        seen: dict[str, None] = dict.fromkeys(self.start)
        for s in self.services:
            for t in s.transitions:
                if t.on is not None:
                    seen.setdefault(t.on)
                for b in t.branches:
                    for e in b.emit:
                        seen.setdefault(e)
            for e in s.ignore:
                seen.setdefault(e)
        return tuple(seen)

    def subscribers(self, event: str) -> tuple[str, ...]:
        """Services that receive ``event`` (each gets its own copy)."""
        return tuple(s.name for s in self.services if event in s.events)

"""The one shared, pure step semantics of an event workflow.

The verifier enumerates :func:`enabled` steps and follows them with
:func:`apply`; the runtime's conformance check replays its log through the same
two functions. No I/O, no clock, no randomness.

A state is a flat tuple of small ints (each 0..255, so it packs into bytes)::

    overflow, duplicates_left,
    state_0, timer_fired_0, ..., state_{S-1}, timer_fired_{S-1},   # services
    counter_0, ..., counter_{C-1},
    bus...

The bus, unordered: for every (subscriber, event) slot, ``fresh`` copies not
yet delivered and ``seen`` copies already delivered once that the bus will
deliver again (at-least-once). Fifo: for every (sender, receiver) channel, a
queue of ``capacity`` cells, each ``0`` (empty) or ``2*event + 1 + seen``.

A delivery to a subscriber may be *kept* (not acknowledged) under
at-least-once delivery while duplicates are left in the budget; the kept copy is
delivered again later (unordered: at any time; fifo: next on its channel) and
that delivery is a duplicate. A timer fires at any time while its service stays
in the timer's state, once per entry into the state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from ._ir import ENV, Delivery, Order, Transition, Workflow

State = tuple[int, ...]

OVERFLOW, DUPS = 0, 1
HEADER = 2


class StepKind(enum.Enum):
    """What a step of the global system is."""

    DELIVER = "deliver"
    """An event handled by a transition of the receiving service."""
    IGNORE = "ignore"
    """An event the receiving service lists under ``ignore``."""
    DROP = "drop"
    """A duplicate dropped by a de-duplicating inbox."""
    UNHANDLED = "unhandled"
    """An event arriving in a state with no transition for it (not ignored)."""
    TIMER = "timer"
    """A timer fires."""


class Step(NamedTuple):
    """One transition label of the global system."""

    kind: StepKind
    service: int
    """Index of the receiving (or timing) service."""
    event: int = -1
    """Index of the event delivered; -1 for a timer."""
    transition: int = -1
    """Index of the service's transition taken; -1 if none."""
    branch: int = 0
    """Which outcome of a ``choose``."""
    duplicate: bool = False
    """This delivery repeats one already made."""
    keep: bool = False
    """Not acknowledged: the bus will deliver this event again."""
    sender: int = -1
    """Fifo only: the channel's sender (a service index, or S for ``env``)."""
    at: int = 0
    """The receiving service's state (index) when the step happens; carried so
    a label renders on its own."""


@dataclass(frozen=True, slots=True)
class Tables:
    """Indexes derived once per workflow (and per duplicate budget)."""

    wf: Workflow
    services: tuple[str, ...]
    events: tuple[str, ...]
    state_names: tuple[tuple[str, ...], ...]
    counters: tuple[str, ...]
    caps: tuple[int, ...]
    slots: tuple[tuple[int, int], ...]
    """Unordered bus: (service, event) pairs, in state order."""
    slot_of: dict[tuple[int, int], int]
    channels: tuple[tuple[int, int], ...]
    """Fifo bus: (sender, receiver) pairs, in state order."""
    channel_of: dict[tuple[int, int], int]
    subscribers: tuple[tuple[int, ...], ...]
    """Per event, the receiving services."""
    handlers: dict[tuple[int, int, int], tuple[int, ...]]
    """(service, state, event) -> candidate transitions in file order."""
    timers: dict[tuple[int, int], int]
    """(service, state) -> its timer transition."""
    ignore: tuple[frozenset[int], ...]
    dedup: tuple[bool, ...]
    fifo: bool
    at_least_once: bool
    capacity: int
    counter_base: int
    bus_base: int
    width: int

    def transition(self, service: int, index: int) -> Transition:
        """The IR transition ``index`` of ``service``."""
        return self.wf.services[service].transitions[index]


_TABLES: dict[int, tuple[Workflow, Tables]] = {}


def tables(wf: Workflow) -> Tables:
    """The index tables of ``wf`` (cached; the IR is frozen)."""
    hit = _TABLES.get(id(wf))
    if hit is not None and hit[0] is wf:
        return hit[1]
    services = tuple(s.name for s in wf.services)
    events = wf.events
    ev = {e: i for i, e in enumerate(events)}
    subscribers = tuple(
        tuple(i for i, s in enumerate(wf.services) if e in s.events) for e in events
    )
    slots = tuple((s, e) for e in range(len(events)) for s in subscribers[e])
    slots = tuple(sorted(slots))
    senders: dict[int, set[int]] = {}
    n = len(services)
    for i, s in enumerate(wf.services):
        for t in s.transitions:
            for b in t.branches:
                for e in b.emit:
                    senders.setdefault(i, set()).update(subscribers[ev[e]])
    for e in wf.start:
        senders.setdefault(n, set()).update(subscribers[ev[e]])
    channels = tuple(sorted((a, b) for a, rs in senders.items() for b in rs))
    handlers: dict[tuple[int, int, int], list[int]] = {}
    timers: dict[tuple[int, int], int] = {}
    for i, s in enumerate(wf.services):
        idx = {name: k for k, name in enumerate(s.states)}
        for k, t in enumerate(s.transitions):
            if t.on is None:
                timers[(i, idx[t.source])] = k
            else:
                handlers.setdefault((i, idx[t.source], ev[t.on]), []).append(k)
    fifo = wf.bus.order is Order.FIFO
    counter_base = HEADER + 2 * n
    bus_base = counter_base + len(wf.counters)
    width = (len(channels) * wf.bus.capacity) if fifo else 2 * len(slots)
    tab = Tables(
        wf=wf, services=services, events=events,
        state_names=tuple(s.states for s in wf.services),
        counters=tuple(c.name for c in wf.counters),
        caps=tuple(c.cap for c in wf.counters),
        slots=slots, slot_of={p: i for i, p in enumerate(slots)},
        channels=channels, channel_of={p: i for i, p in enumerate(channels)},
        subscribers=subscribers,
        handlers={k: tuple(v) for k, v in handlers.items()}, timers=timers,
        ignore=tuple(frozenset(ev[e] for e in s.ignore) for s in wf.services),
        dedup=tuple(s.dedup for s in wf.services), fifo=fifo,
        at_least_once=wf.bus.delivery is Delivery.AT_LEAST_ONCE,
        capacity=wf.bus.capacity, counter_base=counter_base, bus_base=bus_base,
        width=bus_base + width,
    )
    _TABLES[id(wf)] = (wf, tab)
    return tab


# --- reading a state ---------------------------------------------------------------
def service_state(wf: Workflow, state: State, service: int) -> str:
    """The name of ``service``'s current state."""
    return tables(wf).state_names[service][state[HEADER + 2 * service]]


def counter_values(wf: Workflow, state: State) -> dict[str, int]:
    """Counter name -> value."""
    t = tables(wf)
    return {c: state[t.counter_base + i] for i, c in enumerate(t.counters)}


def state_names(wf: Workflow, state: State) -> dict[str, str]:
    """Service name -> state name."""
    t = tables(wf)
    return {s: t.state_names[i][state[HEADER + 2 * i]]
            for i, s in enumerate(t.services)}


def pending(wf: Workflow, state: State) -> list[tuple[str, str, bool]]:
    """Events on the bus as (event, receiver, already delivered once)."""
    t = tables(wf)
    out: list[tuple[str, str, bool]] = []
    b = t.bus_base
    if t.fifo:
        for c, (_, r) in enumerate(t.channels):
            for q in range(t.capacity):
                code = state[b + c * t.capacity + q]
                if code:
                    out.append((t.events[(code - 1) // 2], t.services[r],
                                bool((code - 1) % 2)))
    else:
        for k, (s, e) in enumerate(t.slots):
            out += [(t.events[e], t.services[s], False)] * state[b + 2 * k]
            out += [(t.events[e], t.services[s], True)] * state[b + 2 * k + 1]
    return out


def bus_empty(wf: Workflow, state: State) -> bool:
    """No event pending on the bus."""
    return not any(state[tables(wf).bus_base:])


# --- the semantics ---------------------------------------------------------
def initial_state(wf: Workflow, *, duplicates: int = 1) -> State:
    """The start: every service in its initial state, counters at their
    initial values, the ``start`` events on the bus. ``duplicates`` is how many
    repeated deliveries an at-least-once bus may make (ignored when exactly-once).
    """
    t = tables(wf)
    st = [0] * t.width
    st[DUPS] = min(duplicates, 255) if t.at_least_once else 0
    for i, c in enumerate(wf.counters):
        st[t.counter_base + i] = c.initial
    n = len(t.services)
    ev = {e: i for i, e in enumerate(t.events)}
    for e in wf.start:
        _send(t, st, n, ev[e])
    return tuple(st)


def _send(t: Tables, st: list[int], sender: int, event: int) -> None:
    for r in t.subscribers[event]:
        if t.fifo:
            base = t.bus_base + t.channel_of[(sender, r)] * t.capacity
            for q in range(t.capacity):
                if st[base + q] == 0:
                    st[base + q] = 2 * event + 1
                    break
            else:
                st[OVERFLOW] = 1
        else:
            k = t.bus_base + 2 * t.slot_of[(r, event)]
            if st[k] + st[k + 1] >= t.capacity:
                st[OVERFLOW] = 1
            else:
                st[k] += 1


def _env(t: Tables, state: State) -> tuple[dict[str, int], dict[str, str]]:
    counters = {c: state[t.counter_base + i] for i, c in enumerate(t.counters)}
    states = {s: t.state_names[i][state[HEADER + 2 * i]]
              for i, s in enumerate(t.services)}
    return counters, states


def _handle(t: Tables, state: State, service: int, event: int, *,
            duplicate: bool) -> list[Step]:
    """How ``service`` reacts to ``event`` in ``state`` (before bus choices)."""
    here = state[HEADER + 2 * service]
    if duplicate and t.dedup[service]:
        return [Step(StepKind.DROP, service, event, duplicate=True, at=here)]
    for k in t.handlers.get((service, here, event), ()):
        tr = t.transition(service, k)
        if tr.guard is not None and not tr.guard.evaluate(*_env(t, state)):
            continue
        return [Step(StepKind.DELIVER, service, event, k, b, duplicate, at=here)
                for b in range(len(tr.branches))]
    kind = StepKind.IGNORE if event in t.ignore[service] else StepKind.UNHANDLED
    return [Step(kind, service, event, duplicate=duplicate, at=here)]


def enabled(wf: Workflow, state: State, *, reduce: bool = False) -> list[Step]:
    """Every step the global system can take in ``state``.

    With ``reduce``, copies are never kept for redelivery to a de-duplicating
    inbox (it would drop them, so they change nothing but the bus): a
    de-duplication reduction that preserves every property's verdict.
    """
    t = tables(wf)
    if state[OVERFLOW]:
        return []
    out: list[Step] = []
    can_keep = state[DUPS] > 0
    b = t.bus_base

    def expand(steps: list[Step], sender: int) -> None:
        for s in steps:
            sent = s._replace(sender=sender)
            out.append(sent)
            if can_keep and not (reduce and t.dedup[s.service]):
                out.append(sent._replace(keep=True))

    if t.fifo:
        cap = t.capacity
        for c, (snd, r) in enumerate(t.channels):
            code = state[b + c * cap]
            if code:
                e, seen = (code - 1) // 2, bool((code - 1) % 2)
                expand(_handle(t, state, r, e, duplicate=seen), snd)
    else:
        for k, (s, e) in enumerate(t.slots):
            if state[b + 2 * k]:
                expand(_handle(t, state, s, e, duplicate=False), -1)
            if state[b + 2 * k + 1]:
                expand(_handle(t, state, s, e, duplicate=True), -1)
    out += timers_enabled(wf, state)
    return out


def apply(wf: Workflow, state: State, step: Step) -> State:
    """The state after ``step`` (which must be enabled in ``state``)."""
    t = tables(wf)
    st = list(state)
    b = t.bus_base
    if step.kind is not StepKind.TIMER:
        if step.keep:
            st[DUPS] -= 1
        if t.fifo:
            cap = t.capacity
            base = b + t.channel_of[(step.sender, step.service)] * cap
            if step.keep:
                st[base] = 2 * step.event + 2  # same head, now marked seen
            else:
                st[base:base + cap] = [*st[base + 1:base + cap], 0]
        else:
            k = b + 2 * t.slot_of[(step.service, step.event)]
            st[k + (1 if step.duplicate else 0)] -= 1
            if step.keep:
                st[k + 1] += 1
    _effect(t, st, state, step, send=True)
    return tuple(st)


def _effect(t: Tables, st: list[int], before: State, step: Step, *,
            send: bool) -> None:
    """What a handled step does to its service, the counters and (with
    ``send``) the bus."""
    if step.kind not in (StepKind.DELIVER, StepKind.TIMER):
        return
    tr = t.transition(step.service, step.transition)
    br = tr.branches[step.branch]
    base = HEADER + 2 * step.service
    to = t.state_names[step.service].index(br.to)
    if to != st[base]:
        st[base], st[base + 1] = to, 0  # entering a state re-arms its timer
    if step.kind is StepKind.TIMER:
        st[base + 1] = 1 if to == before[base] else 0
    for name, amount in br.add:
        i = t.counters.index(name)
        v = st[t.counter_base + i] + amount
        st[t.counter_base + i] = max(0, min(t.caps[i], v))
    if send:
        ev = {e: i for i, e in enumerate(t.events)}
        for e in br.emit:
            _send(t, st, step.service, ev[e])


def react(wf: Workflow, state: State, service: int, event: int, *,
          duplicate: bool) -> list[Step]:
    """How ``service`` reacts to ``event`` in ``state``: the steps it may take
    (several for a ``choose``). The runtime asks this for every delivery."""
    return _handle(tables(wf), state, service, event, duplicate=duplicate)


def effect(wf: Workflow, state: State, step: Step) -> State:
    """``step``'s effect on services and counters only (the runtime carries
    the bus itself and publishes the branch's ``emit`` events)."""
    st = list(state)
    _effect(tables(wf), st, state, step, send=False)
    return tuple(st)


def timers_enabled(wf: Workflow, state: State) -> list[Step]:
    """The timer steps enabled in ``state`` (whatever is on the bus)."""
    t = tables(wf)
    out: list[Step] = []
    for i in range(len(t.services)):
        base = HEADER + 2 * i
        k = t.timers.get((i, state[base]), -1)
        if state[base + 1] or k < 0:
            continue
        tr = t.transition(i, k)
        if tr.guard is not None and not tr.guard.evaluate(*_env(t, state)):
            continue
        out += [Step(StepKind.TIMER, i, -1, k, br, at=state[base])
                for br in range(len(tr.branches))]
    return out


def is_quiescent(wf: Workflow, state: State) -> bool:
    """Nothing can happen any more: the bus is empty and no timer is armed
    (or the bus overflowed, which ends exploration)."""
    return not enabled(wf, state)


def describe(wf: Workflow, step: Step) -> str:
    """A message-sequence line, e.g.
    ``customers <- reserve_credit (duplicate) => RESERVED, emits credit_reserved``.
    """
    t = tables(wf)
    svc = t.services[step.service]
    here = t.state_names[step.service][step.at]
    tags = []
    if step.duplicate:
        tags.append("duplicate")
    if step.keep:
        tags.append("not acknowledged: will be delivered again")
    tag = f" ({'; '.join(tags)})" if tags else ""
    if step.kind is StepKind.TIMER:
        tr = t.transition(step.service, step.transition)
        head = f"{svc}: timer after {tr.after:g}s fires in {here}"
    else:
        sender = ""
        if step.sender >= 0:
            sender = (ENV if step.sender == len(t.services)
                      else t.services[step.sender]) + " -> "
        head = f"{sender}{svc} <- {t.events[step.event]}{tag}"
    if step.kind is StepKind.DROP:
        return f"{head}: dropped by the inbox (event id already seen)"
    if step.kind is StepKind.IGNORE:
        return f"{head}: ignored in {here}"
    if step.kind is StepKind.UNHANDLED:
        return f"{head}: UNHANDLED in {here} (no transition for it, not ignored)"
    tr = t.transition(step.service, step.transition)
    br = tr.branches[step.branch]
    parts = [f"{head} => {br.to}"]
    if br.emit:
        parts.append("emits " + ", ".join(br.emit))
    for name, amount in br.add:
        parts.append(f"{name} {'+' if amount >= 0 else '-'}= {abs(amount)}")
    if tr.choose:
        parts.append(f"choice {step.branch + 1} of {len(tr.branches)}")
    return ", ".join(parts)


def step_json(wf: Workflow, step: Step) -> dict[str, object]:
    """A step as data (the runtime log uses the same fields)."""
    t = tables(wf)
    to = None
    if step.kind in (StepKind.DELIVER, StepKind.TIMER):
        to = t.transition(step.service, step.transition).branches[step.branch].to
    return {
        "kind": step.kind.value,
        "service": t.services[step.service],
        "event": t.events[step.event] if step.event >= 0 else None,
        "to": to,
        "duplicate": step.duplicate,
        "redelivered_later": step.keep,
        "sender": (None if step.sender < 0 else
                   ENV if step.sender == len(t.services)
                   else t.services[step.sender]),
    }


def view(wf: Workflow, state: State) -> dict[str, object]:
    """A state as data: services, counters, the bus and the duplicate budget."""
    return {
        "services": state_names(wf, state),
        "counters": counter_values(wf, state),
        "bus": [f"{e} -> {r}" + (" (again)" if seen else "")
                for e, r, seen in pending(wf, state)],
        "duplicates_left": state[DUPS],
        "bus_overflow": bool(state[OVERFLOW]),
    }

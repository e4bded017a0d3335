"""The one shared, pure step semantics of an event workflow.

The verifier enumerates :func:`enabled` steps and follows them with
:func:`apply`; the runtime asks :func:`react`, :func:`effect` and
:func:`timers_enabled` for each delivery and timer, and its conformance check
replays its log through :func:`enabled` and :func:`apply`. All five run the
integer kernel :mod:`saga_models._wf_kernel` interpreted on the state tuple
(the explicit checker's fast path runs the same functions compiled); this
module lowers the definition for it (:func:`tables`) and turns its step codes
into :class:`Step` values. No I/O, no clock, no randomness.

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

from .. import _wf_kernel as _k
from ._ir import ENV, Delivery, Order, Transition, Workflow
from ._lower import lower as _lower

State = tuple[int, ...]

OVERFLOW, DUPS, HEADER = _k.OVERFLOW, _k.DUPS, _k.HEADER


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
    ktab: tuple[int, ...]
    """The kernel's flat table (``_wf_kernel`` documents the layout)."""
    max_codes: int
    """Room for the steps enabled in one state."""
    stack: int
    """Room for a guard's evaluation stack."""

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
    at_least_once = wf.bus.delivery is Delivery.AT_LEAST_ONCE
    # The state layout is the kernel's: its header has the bases and width.
    ktab = _lower(wf, slots=channels if fifo else slots, fifo=fifo,
                  at_least_once=at_least_once)
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
        at_least_once=at_least_once, capacity=wf.bus.capacity,
        counter_base=ktab[_k.W_CBASE], bus_base=ktab[_k.W_BBASE],
        width=ktab[_k.W_WIDTH], ktab=ktab, max_codes=_k.max_codes(ktab),
        stack=ktab[_k.W_STACK],
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


# --- the semantics: the integer kernel, interpreted -------------------------
# The successor relation itself lives in ``saga_models._wf_kernel`` (integer
# tables, integer step codes) so that the explicit checker can compile the very
# same functions with numba; here it runs interpreted on the tuple state, and
# the codes are turned back into :class:`Step` values.
_KINDS = (StepKind.DELIVER, StepKind.IGNORE, StepKind.DROP, StepKind.UNHANDLED,
          StepKind.TIMER)
_KIND_CODE = {k: i for i, k in enumerate(_KINDS)}
_DECODED: dict[int, Step] = {}


def encode_step(step: Step) -> int:
    """The kernel's int code of ``step``."""
    return _k.encode(_KIND_CODE[step.kind], step.service, step.event,
                     step.transition, step.branch, int(step.duplicate),
                     int(step.keep), step.sender, step.at)


def decode_step(code: int) -> Step:
    """The :class:`Step` of a kernel code."""
    hit = _DECODED.get(code)
    if hit is None:
        hit = Step(_KINDS[code & 7], (code >> _k.B_SERVICE) & 1023,
                   ((code >> _k.B_EVENT) & 255) - 1,
                   ((code >> _k.B_TRANS) & 8191) - 1,
                   (code >> _k.B_BRANCH) & 255, bool((code >> _k.B_DUP) & 1),
                   bool((code >> _k.B_KEEP) & 1),
                   ((code >> _k.B_SENDER) & 2047) - 1, (code >> _k.B_AT) & 255)
        _DECODED[code] = hit
    return hit


def _steps(buf: list[int], count: int) -> list[Step]:
    decoded = _DECODED
    out = []
    for x in range(count):
        s = decoded.get(buf[x])
        out.append(s if s is not None else decode_step(buf[x]))
    return out


def initial_state(wf: Workflow, *, duplicates: int = 1) -> State:
    """The start: every service in its initial state, counters at their
    initial values, the ``start`` events on the bus. ``duplicates`` is how many
    repeated deliveries an at-least-once bus may make (ignored when exactly-once).
    """
    t = tables(wf)
    st = [0] * t.width
    _k.initial_into(st, t.ktab, duplicates)
    return tuple(st)


def enabled(wf: Workflow, state: State, *, reduce: bool = False) -> list[Step]:
    """Every step the global system can take in ``state``.

    With ``reduce``, copies are never kept for redelivery to a de-duplicating
    inbox (it would drop them, so they change nothing but the bus): a
    de-duplication reduction that preserves every property's verdict.
    """
    t = tables(wf)
    # Fresh buffers per call: the runtime may call this from several threads.
    buf = [0] * t.max_codes
    count = _k.enabled_codes(state, t.ktab, int(reduce), buf, [0] * t.stack)
    return _steps(buf, count)


def apply(wf: Workflow, state: State, step: Step) -> State:
    """The state after ``step``, which must be enabled in ``state`` (a step
    that cannot happen there raises ``ValueError``)."""
    t = tables(wf)
    st = list(state)
    if _k.step_into(st, t.ktab, encode_step(step)):
        raise ValueError(f"step {step!r} is not enabled in this state")
    return tuple(st)


def react(wf: Workflow, state: State, service: int, event: int, *,
          duplicate: bool) -> list[Step]:
    """How ``service`` reacts to ``event`` in ``state``: the steps it may take
    (several for a ``choose``). The runtime asks this for every delivery."""
    t = tables(wf)
    buf = [0] * t.max_codes
    count = _k.handle_codes(state, t.ktab, service, event, int(duplicate), -1, 0,
                            buf, 0, [0] * t.stack)
    return _steps(buf, count)


def effect(wf: Workflow, state: State, step: Step) -> State:
    """``step``'s effect on services and counters only (the runtime carries
    the bus itself and publishes the branch's ``emit`` events)."""
    st = list(state)
    if _k.effect_into(st, tables(wf).ktab, encode_step(step), 0):
        raise ValueError(f"step {step!r} cannot happen in this state")
    return tuple(st)


def timers_enabled(wf: Workflow, state: State) -> list[Step]:
    """The timer steps enabled in ``state`` (whatever is on the bus)."""
    t = tables(wf)
    buf = [0] * t.max_codes
    count = _k.timer_codes(state, t.ktab, buf, 0, [0] * t.stack)
    return _steps(buf, count)


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

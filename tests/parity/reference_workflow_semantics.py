"""The event-workflow step semantics as it was before its core became a kernel.

A frozen copy of ``saga_models.workflow.semantics`` (``initial_state``,
``enabled``, ``apply``, ``react``, ``effect``, ``timers_enabled``) from before
``saga_models._wf_kernel``, with guards evaluated by walking the expression tree
(``Expr.evaluate``). Only the step type and the index tables are shared with the
package (rebound below): an independent oracle, so that the parity tests check
that the kernel, interpreted and compiled, gives exactly the successors the
hand-written semantics gave. Never imported by the package; do not "fix" it to
follow the kernel.
"""
# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

from saga_models.workflow import Workflow
from saga_models.workflow.semantics import (
    DUPS, HEADER, OVERFLOW, State, Step, StepKind, Tables, tables,
)


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



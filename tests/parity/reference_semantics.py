"""The step semantics as it was before its core became an integer kernel.

A frozen copy of ``saga_models.semantics.enabled`` and ``apply`` from before
``saga_models._kernel`` (only the table lookups are rebound): an independent
oracle, so that the parity tests check that the kernel, interpreted and
compiled, gives exactly the successors the hand-written semantics gave.
Never imported by the package; do not "fix" it to follow the kernel.
"""
# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

from saga_models import Saga
from saga_models._ir import StepKind
from saga_models.semantics import (
    ALL_FAULTS, CHAIN_POS, CRASHES, DL, DOWN, DUPS, EF, EFFECT_CAP, HEADER,
    LT, PHASE, ST, TRIGGER, WIDTH, AT, CS, CA, Event, EventKind, FaultModel,
    Outcome, Phase, State, Status, _Tables, _tables,
)

# Plain-int aliases for the hot paths (enum attribute lookups cost as much as
# the work itself in the explicit checker's inner loop).
_PENDING, _RUN, _OK, _FAILED, _UNKNOWN, _RETRY_F, _RETRY_U = range(7)
_C_NONE, _C_RUN, _C_DONE, _C_RETRY = range(4)
(_P_RUNNING, _P_COMPENSATING, _P_COMPLETED, _P_COMPENSATED, _P_FAILED,
 _P_STUCK) = range(6)
_TOOK_EFFECT = (_OK, _UNKNOWN, _RETRY_U)
_RECOVER = Event(EventKind.RECOVER)
_CRASH = Event(EventKind.CRASH)


def enabled(saga: Saga, state: State, faults: FaultModel = ALL_FAULTS) -> list[Event]:
    """Every event that may happen next, under ``faults``.

    The order is deterministic (orchestrator commands first, by step index), so
    the explicit checker's shortest counterexamples are stable.
    """
    ph = state[PHASE]
    if ph >= _P_COMPLETED:
        return _late(saga, state, faults) if faults.late else []
    if state[DOWN]:
        return [_RECOVER]
    t = _tables(saga)
    events: list[Event] = []
    sts = state[HEADER + ST :: WIDTH]
    css = state[HEADER + CS :: WIDTH]
    running_actions = _RUN in sts
    if running_actions or ph == _P_RUNNING:
        deps = t.deps
        dispatch = t.dispatch_events
        for i, st in enumerate(sts):
            if st == _RUN:
                base = HEADER + WIDTH * i
                events.extend(_replies(t, state, i, base, faults))
                if (ph == _P_COMPENSATING and t.has_timeout[i]
                        and not faults.timeout):
                    # An abort cuts off an in-flight sibling that has a
                    # per-attempt timeout (runtime _cancel_sibling): an unknown
                    # outcome that is runtime behaviour, not a timeout fault.
                    events.extend(_cut_off(t, state, i, base))
                if (
                    not t.idempotent[i]
                    and state[base + DL] == 1
                    and state[DUPS] < faults.duplicates
                ):
                    events.append(t.duplicate_events[i])
            elif ph == _P_RUNNING and (
                st in (_RETRY_F, _RETRY_U)
                or (st == _PENDING and all(sts[d] == _OK for d in deps[i]))
            ):
                events.append(dispatch[i])
    if _C_RUN in css:
        for i, cs in enumerate(css):
            if cs == _C_RUN:
                if t.needs_result[i] and sts[i] != _OK:
                    # The action's reply never came, so the compensation has
                    # nothing to work from (no reservation id): it can only fail.
                    events.append(t.comp_failed_events[i])
                else:
                    events.append(t.comp_ok_events[i])
                    if faults.comp_fail:
                        events.append(t.comp_failed_events[i])
                        if faults.timeout and t.has_timeout[i]:
                            events.append(t.comp_unknown_events[i])
                    elif t.has_breaker[i] and (faults.fail or faults.timeout):
                        # An open breaker fails the compensation fast
                        # (docs/runtime_behaviours.md).
                        events.append(t.comp_failed_events[i])
    if ph == _P_COMPENSATING and not running_actions:
        if saga.compensation_chains:
            j = _next_compensation(saga, t, state, sts, css)
            if j is not None:
                events.insert(0, t.comp_dispatch_events[j])
        else:
            # Independent compensations may run at the same time (DESIGN.md):
            # every one whose dependents are all undone is ready.
            events[:0] = [
                t.comp_dispatch_events[j]
                for j in _ready_compensations(t, sts, css)
            ]
    if state[CRASHES] < faults.crashes:
        events.append(_CRASH)
    if faults.late:
        events += _late(saga, state, faults)
    return events


def _late(saga: Saga, state: State, faults: FaultModel) -> list[Event]:
    """Late deliveries that may happen now (knob ``late``): one per step whose
    late flag is set."""
    lts = state[HEADER + LT :: WIDTH]
    if 1 not in lts:
        return []
    t = _tables(saga)
    out = []
    for i, lt in enumerate(lts):
        if lt:
            # Anti-suspension: the participant recorded the key when the
            # compensation reached it (empty rollback when it came first),
            # and refuses the action.
            refused = t.anti_suspension[i] and (
                state[HEADER + WIDTH * i + CS] == _C_DONE)
            out.append(t.late_events[i][1 if refused else 0])
    return out


def _replies(
    t: _Tables, state: State, i: int, base: int, faults: FaultModel
) -> tuple[Event, ...]:
    effect = state[base + EF]
    dl = state[base + DL]
    key = (i, effect, dl, faults)
    hit = t.reply_cache.get(key)
    if hit is not None:
        return hit
    out: list[Event] = []
    fail = faults.fail or (t.has_breaker[i] and faults.timeout)
    # The total budget is spent by time, and retries of failures take time
    # too: it can expire with only ``fail`` on (docs/runtime_behaviours.md).
    expires = (faults.timeout or faults.fail) and t.has_total[i]
    if t.idempotent[i]:
        # The idempotency key makes the participant apply the action at most once
        # and answer every later attempt with the recorded result.
        out.append(Event(EventKind.REPLY, i, Outcome.OK, 0 if effect else 1))
        if effect == 0:
            if fail:
                out.append(Event(EventKind.REPLY, i, Outcome.FAILED, 0))
                if t.has_fatal[i]:
                    out.append(Event(EventKind.REPLY, i, Outcome.FATAL, 0))
            if faults.timeout and t.has_timeout[i]:
                out.append(Event(EventKind.REPLY, i, Outcome.UNKNOWN, 0))
                out.append(Event(EventKind.REPLY, i, Outcome.UNKNOWN, 1))
            if expires:
                out.append(Event(EventKind.REPLY, i, Outcome.EXPIRED, 0))
                out.append(Event(EventKind.REPLY, i, Outcome.EXPIRED, 1))
        else:
            if faults.timeout and t.has_timeout[i]:
                out.append(Event(EventKind.REPLY, i, Outcome.UNKNOWN, 0))
            if expires:
                out.append(Event(EventKind.REPLY, i, Outcome.EXPIRED, 0))
    else:
        # Not idempotent: each delivery of the command may take effect.
        for delta in range(1, dl + 1):
            out.append(Event(EventKind.REPLY, i, Outcome.OK, delta))
        if fail:
            for delta in range(dl):
                out.append(Event(EventKind.REPLY, i, Outcome.FAILED, delta))
                if t.has_fatal[i]:
                    out.append(Event(EventKind.REPLY, i, Outcome.FATAL, delta))
        if faults.timeout and t.has_timeout[i]:
            for delta in range(dl + 1):
                out.append(Event(EventKind.REPLY, i, Outcome.UNKNOWN, delta))
        if expires:
            for delta in range(dl + 1):
                out.append(Event(EventKind.REPLY, i, Outcome.EXPIRED, delta))
    result = tuple(out)
    t.reply_cache[key] = result
    return result


def _cut_off(t: _Tables, state: State, i: int, base: int) -> list[Event]:
    """The unknown replies of a sibling cut off by an abort (as a timeout's)."""
    if t.idempotent[i]:
        if state[base + EF]:
            return [Event(EventKind.REPLY, i, Outcome.UNKNOWN, 0)]
        return [Event(EventKind.REPLY, i, Outcome.UNKNOWN, d) for d in (0, 1)]
    return [Event(EventKind.REPLY, i, Outcome.UNKNOWN, d)
            for d in range(state[base + DL] + 1)]


def _ready_compensations(
    t: _Tables, sts: tuple[int, ...], css: tuple[int, ...]
) -> list[int]:
    """Every native compensation that may be sent now: its step took effect (as
    far as the orchestrator knows) and every step that depends on it, directly
    or transitively, is undone or has nothing to undo."""
    has_comp = t.has_comp
    return [
        i
        for i, cs in enumerate(css)
        if cs in (_C_NONE, _C_RETRY)
        and has_comp[i]
        and sts[i] in _TOOK_EFFECT
        and all(
            css[j] == _C_DONE or not (has_comp[j] and sts[j] in _TOOK_EFFECT)
            for j in t.dependents[i]
        )
    ]


def _next_compensation(
    saga: Saga,
    t: _Tables,
    state: State,
    sts: tuple[int, ...],
    css: tuple[int, ...],
) -> int | None:
    """The next compensation of a hand-wired chain, or None (chains run one at
    a time, in their written order)."""
    if _C_RUN in css:
        return None
    chain = _chain(saga, state)
    pos = state[CHAIN_POS]
    if chain is None or pos >= len(chain.steps):
        return None
    i = saga.index(chain.steps[pos])
    return i if css[i] in (_C_NONE, _C_RETRY) else None


def _needs_comp(state: State, base: int) -> bool:
    return state[base + ST] in (Status.OK, Status.UNKNOWN, Status.RETRY_UNKNOWN)


def _chain(saga: Saga, state: State):  # type: ignore[no-untyped-def]
    trig = state[TRIGGER] - 1
    return saga.chain_for(trig if trig >= 0 else None)


def apply(saga: Saga, state: State, event: Event) -> State:
    """The state after ``event``. ``event`` must be enabled (the runtime may
    also apply a reply it observed; an impossible event raises ``ValueError``)."""
    t = _tables(saga)
    s = list(state)
    k = event.kind
    i = event.step
    base = HEADER + WIDTH * i
    if k is EventKind.DISPATCH:
        _require(s[base + ST] != _RUN and s[PHASE] == _P_RUNNING, event)
        s[base + ST] = _RUN
        s[base + AT] = min(s[base + AT] + 1, t.attempt_cap[i])
        s[base + DL] = 1
    elif k is EventKind.REPLY:
        _require(s[base + ST] == _RUN, event)
        _reply(t, s, i, base, event)
    elif k is EventKind.DUPLICATE:
        _require(s[base + ST] == _RUN, event)
        s[base + DL] = 2
        s[DUPS] += 1
    elif k is EventKind.CRASH:
        s[DOWN] = 1
        s[CRASHES] += 1
    elif k is EventKind.RECOVER:
        _require(s[DOWN] == 1, event)
        s[DOWN] = 0
        for j in range(t.n):
            b = HEADER + WIDTH * j
            if s[b + ST] == _RUN and not t.idempotent[j]:
                s[b + DL] = 2  # re-sent with the same key; both may take effect
    elif k is EventKind.LATE:
        _require(s[base + LT] == 1, event)
        s[base + EF] = min(s[base + EF] + event.delta, EFFECT_CAP)
        s[base + LT] = 0  # one late copy per step: delivered
        return tuple(s)  # the orchestrator does not see it: nothing to settle
    elif k is EventKind.COMP_DISPATCH:
        _require(s[PHASE] == _P_COMPENSATING, event)
        s[base + CS] = _C_RUN
    elif k is EventKind.COMP_REPLY:
        _require(s[base + CS] == _C_RUN, event)
        if event.outcome is Outcome.OK:
            s[base + CS] = _C_DONE
            s[base + CA] = 0  # dead from here on
            if s[base + EF] > 0:
                s[base + EF] -= 1  # a compensation undoes one application
            if saga.compensation_chains:
                s[CHAIN_POS] += 1
        else:
            # FAILED or UNKNOWN (a compensation attempt that timed out). A
            # timed-out compensation may have undone the action, but it is
            # retried exactly like a failure, under the compensation policy
            # and with the same idempotency key: DESIGN.md requires a
            # compensation to be safe when re-run, so if the timed-out attempt
            # did undo, the retry answers ok and undoes nothing more. The one
            # undo is therefore booked at the first ok reply, which gives every
            # ending but STUCK the same world; a saga that escalates to STUCK
            # after a timed-out compensation may already be undone at that
            # participant (STUCK is never reported as consistent, and resuming
            # re-sends the compensation, which then answers ok).
            s[base + CA] = min(s[base + CA] + 1, t.comp_cap)
            if t.comp_max is not None and s[base + CA] >= t.comp_max:
                s[PHASE] = _P_STUCK
                s[base + CS] = _C_RETRY
            else:
                s[base + CS] = _C_RETRY
    _settle(saga, t, s)
    return tuple(s)


def _require(ok: bool, event: Event) -> None:
    if not ok:
        raise ValueError(f"event {event!r} is not enabled in this state")


def _reply(t: _Tables, s: list[int], i: int, base: int, event: Event) -> None:
    outcome = event.outcome
    s[base + EF] = min(s[base + EF] + event.delta, EFFECT_CAP)
    timed_out = outcome in (Outcome.UNKNOWN, Outcome.EXPIRED)
    if t.idempotent[i]:
        # The key makes the participant act on it at most once: a copy still
        # in the network matters only while nothing has acted on it, and a
        # definite reply means the participant has answered the key already.
        s[base + LT] = 1 if timed_out and s[base + EF] == 0 else 0
    elif timed_out and event.delta < s[base + DL]:
        s[base + LT] = 1  # a delivery that did not act yet may still arrive
    s[base + DL] = 1
    kind = t.kinds[i]
    attempts = s[base + AT]
    bounded = t.max_attempts[i]
    expired = outcome is Outcome.EXPIRED
    # The total budget spends the step whatever the attempt count says.
    exhausted = expired or (bounded is not None and attempts >= bounded)
    if outcome is Outcome.OK:
        s[base + ST] = _OK
        s[base + AT] = 0  # dead from here on (see _forget)
        return
    unknown = outcome is Outcome.UNKNOWN or expired
    if s[PHASE] != _P_RUNNING:
        # Cancelled sibling settling during an abort: no retry.
        s[base + ST] = _UNKNOWN if unknown else _FAILED
        s[base + AT] = 0
        return
    if kind is StepKind.COMPENSATABLE:
        if exhausted or outcome is Outcome.FATAL:
            s[base + ST] = _UNKNOWN if unknown else _FAILED
            s[base + AT] = 0
            _abort(s, i)
        else:
            s[base + ST] = _RETRY_U if unknown else _RETRY_F
    elif kind is StepKind.PIVOT:
        # Retried until its outcome is definite; a definite failure aborts.
        if expired:
            # The budget ran out before the outcome became definite: the pivot
            # may have taken effect (so no abort) or not (so no going on).
            s[base + ST] = _UNKNOWN
            s[base + AT] = 0
            s[PHASE] = _P_STUCK
        elif unknown:
            s[base + ST] = _RETRY_U
        elif exhausted or outcome is Outcome.FATAL:
            s[base + ST] = _FAILED
            s[base + AT] = 0
            _abort(s, i)
        else:
            s[base + ST] = _RETRY_F
    # RETRIABLE: retried until it succeeds, or STUCK when the bound runs out
    elif exhausted or outcome is Outcome.FATAL:
        s[base + ST] = _UNKNOWN if unknown else _FAILED
        s[PHASE] = _P_STUCK
    else:
        s[base + ST] = _RETRY_U if unknown else _RETRY_F


def _abort(s: list[int], i: int) -> None:
    s[PHASE] = _P_COMPENSATING
    s[TRIGGER] = i + 1
    s[CHAIN_POS] = 0


def _settle(saga: Saga, t: _Tables, s: list[int]) -> None:
    """Derived transitions: completion, skipping chain entries, the end of an
    abort."""
    ph = s[PHASE]
    if ph == _P_RUNNING:
        if s[HEADER + ST :: WIDTH].count(_OK) == t.n:
            s[PHASE] = _P_COMPLETED
        return
    if ph != _P_COMPENSATING:
        return
    sts = s[HEADER + ST :: WIDTH]
    if _RUN in sts:
        return
    css = s[HEADER + CS :: WIDTH]
    if _C_RUN in css:
        return
    if saga.compensation_chains:
        chain = _chain(saga, tuple(s))
        steps = chain.steps if chain is not None else ()
        while s[CHAIN_POS] < len(steps):
            j = saga.index(steps[s[CHAIN_POS]])
            b = HEADER + WIDTH * j
            if chain.unconditional or s[b + ST] in _TOOK_EFFECT:
                if s[b + CS] == _C_DONE:
                    s[CHAIN_POS] += 1  # listed twice: already done
                    continue
                return
            s[CHAIN_POS] += 1
        css = s[HEADER + CS :: WIDTH]
    else:
        has_comp = t.has_comp
        for j, cs in enumerate(css):
            if cs != _C_DONE and has_comp[j] and sts[j] in _TOOK_EFFECT:
                return
    s[PHASE] = _P_COMPENSATED if _C_DONE in css else _P_FAILED



"""The saga step semantics as a kernel over integer tables.

This is the core of :mod:`saga_models.semantics`: :func:`enabled_codes` and
:func:`step_into` are the one definition of what a saga may do next and what an
event does. They are written in the subset of Python that numba compiles (flat
integer tables, integer event codes, no objects), so the very same functions run
interpreted in the runtime (``semantics.enabled`` and ``semantics.apply`` call
them on tuples and lists) and compiled in the explicit checker's fast path
(``verifier._kernel_bfs`` hands them to ``numba.njit``). Nothing here imports
numba: the runtime never needs it.

A definition is lowered once by :func:`lower` into one flat table of ints:

* ``tab[0:G]``: the number of steps, the compensation policy's bound (-1 for
  forever), its cap, whether the saga has hand-wired chains, and the offsets
  of the parts below;
* per step, ``NC`` columns (:data:`K_KIND` ... :data:`K_BREAKER`);
* the direct dependencies and the transitive dependents of each step, as
  compressed rows;
* per abort trigger (``-1`` for "any", then each step), its chain of
  compensations, whether there is one, and whether it is unconditional.

An event is one int (:func:`encode`): kind, outcome, effect delta and step.
"""

# Chained ``==`` rather than ``in (...)``: the compiled form stays plain integer
# compares, and the interpreted form does not build a tuple per test.
# ruff: noqa: SIM109, PLR1714

from __future__ import annotations

from collections.abc import MutableSequence, Sequence

# --- state layout (semantics.py documents it) ----------------------------------
PHASE, DOWN, CRASHES, DUPS, TRIGGER, CHAIN_POS = 0, 1, 2, 3, 4, 5
HEADER = 6
WIDTH = 7
ST, AT, DL, EF, CS, CA, LT = 0, 1, 2, 3, 4, 5, 6
EFFECT_CAP = 2

# --- enumerations as ints (the enums of semantics.py have these values) ------
PENDING, RUN, OK, FAILED, UNKNOWN, RETRY_F, RETRY_U = 0, 1, 2, 3, 4, 5, 6
C_NONE, C_RUN, C_DONE, C_RETRY = 0, 1, 2, 3
P_RUNNING, P_COMPENSATING, P_COMPLETED, P_COMPENSATED, P_FAILED, P_STUCK = (
    0, 1, 2, 3, 4, 5)
SK_COMPENSATABLE, SK_PIVOT, SK_RETRIABLE = 0, 1, 2

# event kinds and outcomes as codes
E_DISPATCH, E_REPLY, E_DUPLICATE, E_CRASH, E_RECOVER = 0, 1, 2, 3, 4
E_COMP_DISPATCH, E_COMP_REPLY, E_LATE = 5, 6, 7
O_NONE, O_OK, O_FAILED, O_FATAL, O_UNKNOWN, O_EXPIRED = 0, 1, 2, 3, 4, 5

# --- the fault-model vector ------------------------------------------------------
F_FAIL, F_TIMEOUT, F_COMP_FAIL, F_CRASHES, F_DUPS, F_LATE = 0, 1, 2, 3, 4, 5

# --- table layout ----------------------------------------------------------------
T_N, T_COMP_MAX, T_COMP_CAP, T_CHAINS = 0, 1, 2, 3
T_STEPS, T_DEP_PTR, T_DEP_IDX, T_DESC_PTR, T_DESC_IDX = 4, 5, 6, 7, 8
T_CH_PTR, T_CH_IDX, T_CH_VALID, T_CH_UNCOND = 9, 10, 11, 12
G = 13
K_KIND, K_MAX, K_CAP, K_IDEM, K_TIMEOUT, K_TOTAL, K_FATAL = 0, 1, 2, 3, 4, 5, 6
K_COMP, K_NEEDS_RESULT, K_ANTI, K_BREAKER = 7, 8, 9, 10
NC = 11


def encode(kind: int, step: int, outcome: int, delta: int) -> int:
    """One event as an int: kind (4 bits), outcome (4), delta (2), step + 1."""
    return kind | (outcome << 4) | (delta << 8) | ((step + 1) << 10)


def max_events(n: int) -> int:
    """An upper bound on the events enabled in one state of an ``n``-step saga
    (the size of the buffer :func:`enabled_codes` writes into)."""
    return 24 * n + 8


# --- the successor relation --------------------------------------------------------
def _replies(  # noqa: PLR0917 - numba compiles positional calls only
    s: Sequence[int], tab: Sequence[int], fm: Sequence[int], i: int,
    out: MutableSequence[int], k: int,
) -> int:
    """The replies an in-flight attempt of step ``i`` may come back with."""
    row = tab[T_STEPS] + i * NC
    base = HEADER + WIDTH * i
    effect = s[base + EF]
    dl = s[base + DL]
    fail = fm[F_FAIL] != 0 or (tab[row + K_BREAKER] != 0 and fm[F_TIMEOUT] != 0)
    # The total budget is spent by time, and retries of failures take time
    # too: it can expire with only ``fail`` on (docs/runtime_behaviours.md).
    expires = (fm[F_TIMEOUT] != 0 or fm[F_FAIL] != 0) and tab[row + K_TOTAL] != 0
    times_out = fm[F_TIMEOUT] != 0 and tab[row + K_TIMEOUT] != 0
    fatal = tab[row + K_FATAL] != 0
    if tab[row + K_IDEM] != 0:
        # The idempotency key makes the participant apply the action at most
        # once and answer every later attempt with the recorded result.
        out[k] = encode(E_REPLY, i, O_OK, 0 if effect else 1)
        k += 1
        if effect == 0:
            if fail:
                out[k] = encode(E_REPLY, i, O_FAILED, 0)
                k += 1
                if fatal:
                    out[k] = encode(E_REPLY, i, O_FATAL, 0)
                    k += 1
            if times_out:
                out[k] = encode(E_REPLY, i, O_UNKNOWN, 0)
                out[k + 1] = encode(E_REPLY, i, O_UNKNOWN, 1)
                k += 2
            if expires:
                out[k] = encode(E_REPLY, i, O_EXPIRED, 0)
                out[k + 1] = encode(E_REPLY, i, O_EXPIRED, 1)
                k += 2
        else:
            if times_out:
                out[k] = encode(E_REPLY, i, O_UNKNOWN, 0)
                k += 1
            if expires:
                out[k] = encode(E_REPLY, i, O_EXPIRED, 0)
                k += 1
        return k
    # Not idempotent: each delivery of the command may take effect.
    for delta in range(1, dl + 1):
        out[k] = encode(E_REPLY, i, O_OK, delta)
        k += 1
    if fail:
        for delta in range(dl):
            out[k] = encode(E_REPLY, i, O_FAILED, delta)
            k += 1
            if fatal:
                out[k] = encode(E_REPLY, i, O_FATAL, delta)
                k += 1
    if times_out:
        for delta in range(dl + 1):
            out[k] = encode(E_REPLY, i, O_UNKNOWN, delta)
            k += 1
    if expires:
        for delta in range(dl + 1):
            out[k] = encode(E_REPLY, i, O_EXPIRED, delta)
            k += 1
    return k


def _took_effect(st: int) -> bool:
    return st == OK or st == UNKNOWN or st == RETRY_U


def _late(s: Sequence[int], tab: Sequence[int], out: MutableSequence[int],
          k: int) -> int:
    """Late deliveries that may happen now: one per step whose flag is set."""
    n = tab[T_N]
    for i in range(n):
        base = HEADER + WIDTH * i
        if s[base + LT] != 0:
            # Anti-suspension: the participant recorded the key when the
            # compensation reached it (empty rollback when it came first),
            # and refuses the action.
            refused = (tab[tab[T_STEPS] + i * NC + K_ANTI] != 0
                       and s[base + CS] == C_DONE)
            out[k] = encode(E_LATE, i, O_NONE, 0 if refused else 1)
            k += 1
    return k


def enabled_codes(s: Sequence[int], tab: Sequence[int], fm: Sequence[int],
                  out: MutableSequence[int]) -> int:
    """Write the codes of every event enabled in ``s`` into ``out``; return how
    many. The order is deterministic (orchestrator commands first, by step
    index), so the explicit checker's shortest counterexamples are stable."""
    ph = s[PHASE]
    k = 0
    if ph >= P_COMPLETED:
        # Enabled in terminal states too: the network does not know the saga
        # has ended.
        return _late(s, tab, out, 0) if fm[F_LATE] != 0 else 0
    if s[DOWN] != 0:
        out[0] = encode(E_RECOVER, -1, O_NONE, 0)
        return 1
    n = tab[T_N]
    steps = tab[T_STEPS]
    running_actions = False
    comp_running = False
    for i in range(n):
        if s[HEADER + WIDTH * i + ST] == RUN:
            running_actions = True
        if s[HEADER + WIDTH * i + CS] == C_RUN:
            comp_running = True
    if ph == P_COMPENSATING and not running_actions:
        if tab[T_CHAINS] != 0:
            # Hand-wired chains run one at a time, in their written order.
            if not comp_running:
                j = _chain_step(s, tab)
                if j >= 0:
                    cs = s[HEADER + WIDTH * j + CS]
                    if cs == C_NONE or cs == C_RETRY:
                        out[k] = encode(E_COMP_DISPATCH, j, O_NONE, 0)
                        k += 1
        else:
            # Independent compensations may run at the same time (DESIGN.md):
            # every one whose dependents are all undone is ready.
            for i in range(n):
                b = HEADER + WIDTH * i
                cs = s[b + CS]
                if not ((cs == C_NONE or cs == C_RETRY)
                        and tab[steps + i * NC + K_COMP] != 0
                        and _took_effect(s[b + ST])):
                    continue
                ready = True
                p = tab[T_DESC_PTR] + i
                for x in range(tab[p], tab[p + 1]):
                    j = tab[tab[T_DESC_IDX] + x]
                    bj = HEADER + WIDTH * j
                    if s[bj + CS] != C_DONE and (
                            tab[steps + j * NC + K_COMP] != 0
                            and _took_effect(s[bj + ST])):
                        ready = False
                        break
                if ready:
                    out[k] = encode(E_COMP_DISPATCH, i, O_NONE, 0)
                    k += 1
    if running_actions or ph == P_RUNNING:
        for i in range(n):
            base = HEADER + WIDTH * i
            st = s[base + ST]
            row = steps + i * NC
            if st == RUN:
                k = _replies(s, tab, fm, i, out, k)
                if (ph == P_COMPENSATING and tab[row + K_TIMEOUT] != 0
                        and fm[F_TIMEOUT] == 0):
                    # An abort cuts off an in-flight sibling that has a
                    # per-attempt timeout (runtime _cancel_sibling): an unknown
                    # outcome that is runtime behaviour, not a timeout fault.
                    if tab[row + K_IDEM] != 0:
                        out[k] = encode(E_REPLY, i, O_UNKNOWN, 0)
                        k += 1
                        if s[base + EF] == 0:
                            out[k] = encode(E_REPLY, i, O_UNKNOWN, 1)
                            k += 1
                    else:
                        for d in range(s[base + DL] + 1):
                            out[k] = encode(E_REPLY, i, O_UNKNOWN, d)
                            k += 1
                if (tab[row + K_IDEM] == 0 and s[base + DL] == 1
                        and s[DUPS] < fm[F_DUPS]):
                    out[k] = encode(E_DUPLICATE, i, O_NONE, 0)
                    k += 1
            elif ph == P_RUNNING:
                go = st == RETRY_F or st == RETRY_U
                if st == PENDING:
                    go = True
                    p = tab[T_DEP_PTR] + i
                    for x in range(tab[p], tab[p + 1]):
                        d = tab[tab[T_DEP_IDX] + x]
                        if s[HEADER + WIDTH * d + ST] != OK:
                            go = False
                            break
                if go:
                    out[k] = encode(E_DISPATCH, i, O_NONE, 0)
                    k += 1
    if comp_running:
        for i in range(n):
            base = HEADER + WIDTH * i
            if s[base + CS] != C_RUN:
                continue
            row = steps + i * NC
            if tab[row + K_NEEDS_RESULT] != 0 and s[base + ST] != OK:
                # The action's reply never came, so the compensation has
                # nothing to work from (no reservation id): it can only fail.
                out[k] = encode(E_COMP_REPLY, i, O_FAILED, 0)
                k += 1
                continue
            out[k] = encode(E_COMP_REPLY, i, O_OK, 0)
            k += 1
            if fm[F_COMP_FAIL] != 0:
                out[k] = encode(E_COMP_REPLY, i, O_FAILED, 0)
                k += 1
                if fm[F_TIMEOUT] != 0 and tab[row + K_TIMEOUT] != 0:
                    out[k] = encode(E_COMP_REPLY, i, O_UNKNOWN, 0)
                    k += 1
            elif tab[row + K_BREAKER] != 0 and (fm[F_FAIL] != 0
                                                or fm[F_TIMEOUT] != 0):
                # An open breaker fails the compensation fast
                # (docs/runtime_behaviours.md).
                out[k] = encode(E_COMP_REPLY, i, O_FAILED, 0)
                k += 1
    if s[CRASHES] < fm[F_CRASHES]:
        out[k] = encode(E_CRASH, -1, O_NONE, 0)
        k += 1
    if fm[F_LATE] != 0:
        k = _late(s, tab, out, k)
    return k


def _chain_step(s: Sequence[int], tab: Sequence[int]) -> int:
    """The step at the current position of the abort's chain, or -1."""
    t = s[TRIGGER]  # trigger + 1: row 0 is the chain for any trigger
    if tab[tab[T_CH_VALID] + t] == 0:
        return -1
    p = tab[T_CH_PTR] + t
    start = tab[p]
    pos = s[CHAIN_POS]
    if pos >= tab[p + 1] - start:
        return -1
    return tab[tab[T_CH_IDX] + start + pos]


def step_into(d: MutableSequence[int], tab: Sequence[int], code: int) -> int:
    """Apply the event ``code`` to the state ``d`` in place. Returns 0, or 1
    when the event is not enabled (``d`` is then partly written: discard it).
    The runtime may also apply a reply it observed: any outcome is accepted."""
    kind = code & 15
    outcome = (code >> 4) & 15
    delta = (code >> 8) & 3
    i = (code >> 10) - 1
    base = HEADER + WIDTH * i
    row = tab[T_STEPS] + i * NC
    if kind == E_DISPATCH:
        if d[base + ST] == RUN or d[PHASE] != P_RUNNING:
            return 1
        d[base + ST] = RUN
        d[base + AT] = min(d[base + AT] + 1, tab[row + K_CAP])
        d[base + DL] = 1
    elif kind == E_REPLY:
        if d[base + ST] != RUN:
            return 1
        _reply(d, tab, i, outcome, delta)
    elif kind == E_DUPLICATE:
        if d[base + ST] != RUN:
            return 1
        d[base + DL] = 2
        d[DUPS] += 1
    elif kind == E_CRASH:
        d[DOWN] = 1
        d[CRASHES] += 1
    elif kind == E_RECOVER:
        if d[DOWN] != 1:
            return 1
        d[DOWN] = 0
        for j in range(tab[T_N]):
            b = HEADER + WIDTH * j
            if d[b + ST] == RUN and tab[tab[T_STEPS] + j * NC + K_IDEM] == 0:
                d[b + DL] = 2  # re-sent with the same key; both may take effect
    elif kind == E_LATE:
        if d[base + LT] != 1:
            return 1
        d[base + EF] = min(d[base + EF] + delta, EFFECT_CAP)
        d[base + LT] = 0  # one late copy per step: delivered
        return 0  # the orchestrator does not see it: nothing to settle
    elif kind == E_COMP_DISPATCH:
        if d[PHASE] != P_COMPENSATING:
            return 1
        d[base + CS] = C_RUN
    elif kind == E_COMP_REPLY:
        if d[base + CS] != C_RUN:
            return 1
        if outcome == O_OK:
            d[base + CS] = C_DONE
            d[base + CA] = 0  # dead from here on
            if d[base + EF] > 0:
                d[base + EF] -= 1  # a compensation undoes one application
            if tab[T_CHAINS] != 0:
                d[CHAIN_POS] += 1
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
            d[base + CA] = min(d[base + CA] + 1, tab[T_COMP_CAP])
            comp_max = tab[T_COMP_MAX]
            if comp_max >= 0 and d[base + CA] >= comp_max:
                d[PHASE] = P_STUCK
            d[base + CS] = C_RETRY
    else:
        return 1
    settle(d, tab)
    return 0


def _reply(d: MutableSequence[int], tab: Sequence[int], i: int, outcome: int,
           delta: int) -> None:
    base = HEADER + WIDTH * i
    row = tab[T_STEPS] + i * NC
    d[base + EF] = min(d[base + EF] + delta, EFFECT_CAP)
    timed_out = outcome == O_UNKNOWN or outcome == O_EXPIRED
    if tab[row + K_IDEM] != 0:
        # The key makes the participant act on it at most once: a copy still
        # in the network matters only while nothing has acted on it, and a
        # definite reply means the participant has answered the key already.
        d[base + LT] = 1 if timed_out and d[base + EF] == 0 else 0
    elif timed_out and delta < d[base + DL]:
        d[base + LT] = 1  # a delivery that did not act yet may still arrive
    d[base + DL] = 1
    kind = tab[row + K_KIND]
    bounded = tab[row + K_MAX]
    expired = outcome == O_EXPIRED
    # The total budget spends the step whatever the attempt count says.
    exhausted = expired or (bounded >= 0 and d[base + AT] >= bounded)
    if outcome == O_OK:
        d[base + ST] = OK
        d[base + AT] = 0  # dead from here on
        return
    unknown = outcome == O_UNKNOWN or expired
    fatal = outcome == O_FATAL
    if d[PHASE] != P_RUNNING:
        # Cancelled sibling settling during an abort: no retry.
        d[base + ST] = UNKNOWN if unknown else FAILED
        d[base + AT] = 0
        return
    if kind == SK_COMPENSATABLE:
        if exhausted or fatal:
            d[base + ST] = UNKNOWN if unknown else FAILED
            d[base + AT] = 0
            _abort(d, i)
        else:
            d[base + ST] = RETRY_U if unknown else RETRY_F
    elif kind == SK_PIVOT:
        # Retried until its outcome is definite; a definite failure aborts.
        if expired:
            # The budget ran out before the outcome became definite: the pivot
            # may have taken effect (so no abort) or not (so no going on).
            d[base + ST] = UNKNOWN
            d[base + AT] = 0
            d[PHASE] = P_STUCK
        elif unknown:
            d[base + ST] = RETRY_U
        elif exhausted or fatal:
            d[base + ST] = FAILED
            d[base + AT] = 0
            _abort(d, i)
        else:
            d[base + ST] = RETRY_F
    # RETRIABLE: retried until it succeeds, or STUCK when the bound runs out
    elif exhausted or fatal:
        d[base + ST] = UNKNOWN if unknown else FAILED
        d[PHASE] = P_STUCK
    else:
        d[base + ST] = RETRY_U if unknown else RETRY_F


def _abort(d: MutableSequence[int], i: int) -> None:
    d[PHASE] = P_COMPENSATING
    d[TRIGGER] = i + 1
    d[CHAIN_POS] = 0


def settle(d: MutableSequence[int], tab: Sequence[int]) -> None:
    """Derived transitions: completion, skipping chain entries, the end of an
    abort."""
    n = tab[T_N]
    steps = tab[T_STEPS]
    ph = d[PHASE]
    if ph == P_RUNNING:
        for i in range(n):
            if d[HEADER + WIDTH * i + ST] != OK:
                return
        d[PHASE] = P_COMPLETED
        return
    if ph != P_COMPENSATING:
        return
    for i in range(n):
        b = HEADER + WIDTH * i
        if d[b + ST] == RUN or d[b + CS] == C_RUN:
            return
    if tab[T_CHAINS] != 0:
        t = d[TRIGGER]
        if tab[tab[T_CH_VALID] + t] != 0:
            p = tab[T_CH_PTR] + t
            start = tab[p]
            length = tab[p + 1] - start
            uncond = tab[tab[T_CH_UNCOND] + t] != 0
            while d[CHAIN_POS] < length:
                j = tab[tab[T_CH_IDX] + start + d[CHAIN_POS]]
                b = HEADER + WIDTH * j
                if uncond or _took_effect(d[b + ST]):
                    if d[b + CS] == C_DONE:
                        d[CHAIN_POS] += 1  # listed twice: already done
                        continue
                    return
                d[CHAIN_POS] += 1
    else:
        for j in range(n):
            b = HEADER + WIDTH * j
            if (d[b + CS] != C_DONE and tab[steps + j * NC + K_COMP] != 0
                    and _took_effect(d[b + ST])):
                return
    any_done = False
    for j in range(n):
        if d[HEADER + WIDTH * j + CS] == C_DONE:
            any_done = True
    d[PHASE] = P_COMPENSATED if any_done else P_FAILED

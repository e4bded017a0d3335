"""The saga properties' state and transition checks, compiled.

The properties of :class:`verifier.SagaTransitionSystem` are Python closures
over unpacked states; they stay the specification. After the compiled search
(:mod:`verifier._kernel_bfs`) this module finds, in compiled code over the
packed states, *where* each one is first violated: the first state index (in
discovery order) for the state and terminal checks, the first watched
transition (in search order) for the compensation-order check, and one
witness state per step for the reachability check. The caller then runs the
Python predicate on just those states, which gives the message and confirms
the compiled finding (a disagreement is an error, never a verdict).

The compiled predicates below mirror ``_saga_ts.SagaTransitionSystem``'s
closures field by field, over a small table lowered from the same definition
(which steps' effects are judged, which have a compensation, which steps must
be compensated first); ``tests/parity/test_kernel_props.py`` checks them
against the closures state by state on generated definitions.
"""

# Chained ``==`` rather than ``in (...)``: plain integer compares when compiled.
# ruff: noqa: SIM109, PLR1714

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from saga_models import semantics as sem
from saga_models._ir import Saga
from saga_models._kernel import (
    C_DONE,
    C_NONE,
    CS,
    E_COMP_DISPATCH,
    EF,
    HEADER,
    OK,
    P_COMPENSATED,
    P_COMPLETED,
    P_FAILED,
    P_STUCK,
    PENDING,
    PHASE,
    RETRY_U,
    ST,
    T_N,
    UNKNOWN,
    WIDTH,
    enabled_codes,
)

np: Any = None
"""numpy, bound in the compiled functions' namespace."""

# What the state pass is asked for and answers (indices into ``want``/``first``).
W_COMPLETENESS, W_CONSISTENCY, W_REACHED = 0, 1, 2


# --- the predicates (compiled; mirror _saga_ts's closures) ---------------------
def _compensated_unstarted(s: Any, n: int) -> bool:
    for i in range(n):
        b = HEADER + WIDTH * i
        if s[b + CS] != C_NONE and s[b + ST] == PENDING:
            return True
    return False


def _left_uncompensated(s: Any, n: int, eff: Any) -> bool:
    ph = s[PHASE]
    if ph != P_COMPENSATED and ph != P_FAILED:
        return False
    for i in range(n):
        b = HEADER + WIDTH * i
        if eff[i] != 0 and s[b + EF] > 0 and s[b + CS] != C_DONE:
            return True
    return False


def _inconsistent(s: Any, n: int, eff: Any) -> bool:
    ph = s[PHASE]
    if ph == P_STUCK:
        return True
    for i in range(n):
        if eff[i] == 0:
            continue
        e = s[HEADER + WIDTH * i + EF]
        if ph == P_COMPLETED and e != 1:
            return True
        if (ph == P_COMPENSATED or ph == P_FAILED) and e != 0:
            return True
    return False


def _out_of_order(s: Any, i: int, has_comp: Any, aptr: Any, aidx: Any) -> bool:
    for x in range(aptr[i], aptr[i + 1]):
        j = aidx[x]
        b = HEADER + WIDTH * j
        st = s[b + ST]
        took = st == OK or st == UNKNOWN or st == RETRY_U
        if has_comp[j] != 0 and took and s[b + CS] != C_DONE:
            return True
    return False


def _words(states: Any, cvals: Any, idx: int, w: int, words: Any) -> None:
    """The 64-bit words of state ``idx`` into ``words``: the search stores
    each word as an index into the table ``cvals`` of distinct words."""
    b = idx * w
    for x in range(w):
        words[x] = cvals[states[b + x]]


def _unpack(  # noqa: PLR0917 - numba compiles positional calls only
    words: Any, fword: Any, fshift: Any, fmax: Any, need: Any, s: Any,
) -> None:
    """The fields ``need`` of the state whose words are ``words`` into ``s``
    (the checks read only the phase and each step's status, compensation and
    effect)."""
    for x in range(len(need)):
        f = need[x]
        s[f] = (words[fword[f]] >> fshift[f]) & fmax[f]


def _state_pass(  # noqa: PLR0917 - numba compiles positional calls only
    states: Any, cvals: Any, count: int, w: int, fword: Any, fshift: Any,
    fmax: Any, need: Any, need_term: Any, n: int, eff: Any, want: Any,
    first: Any, reached: Any,
) -> None:
    """Fill ``first`` (first violating index per check, or -1) and
    ``reached`` (first index where each step has left PENDING, or -1),
    stopping as soon as everything asked for is found."""
    s = np.zeros(len(fword), np.int64)
    words = np.zeros(w, np.int64)
    left = n if want[W_REACHED] != 0 else 0
    for idx in range(count):
        todo = left > 0
        if want[W_COMPLETENESS] != 0 and first[W_COMPLETENESS] < 0:
            todo = True
        if want[W_CONSISTENCY] != 0 and first[W_CONSISTENCY] < 0:
            todo = True
        if not todo:
            return
        _words(states, cvals, idx, w, words)
        _unpack(words, fword, fshift, fmax, need, s)
        term = s[PHASE] >= P_COMPLETED
        if term:  # the effects are read in terminal states only
            _unpack(words, fword, fshift, fmax, need_term, s)
        if want[W_COMPLETENESS] != 0 and first[W_COMPLETENESS] < 0 and (
                _compensated_unstarted(s, n)
                or (term and _left_uncompensated(s, n, eff))):
            first[W_COMPLETENESS] = idx
        if (want[W_CONSISTENCY] != 0 and first[W_CONSISTENCY] < 0 and term
                and _inconsistent(s, n, eff)):
            first[W_CONSISTENCY] = idx
        if left > 0:
            for i in range(n):
                if reached[i] < 0 and s[HEADER + WIDTH * i + ST] != PENDING:
                    reached[i] = idx
                    left -= 1


def _transition_pass(  # noqa: PLR0917 - numba compiles positional calls only
    tab: Any, fm: Any, states: Any, cvals: Any, w: int, fword: Any,
    fshift: Any, fmax: Any, need: Any, has_comp: Any, aptr: Any, aidx: Any,
    wsrc: Any, wpos: Any,
) -> int:
    """The first watched transition (its position in ``wsrc``) that starts a
    compensation before that of a step depending on it, or -1.

    The search keeps a watched transition's source and its event's position
    among the source's events, not the event. A source's watched transitions
    are consecutive, so each source is read once: when no step's
    compensation would start out of order in it (the fields ``need`` say),
    none of its transitions can, and its events are not needed; otherwise
    the kernel offers them again (as ``Searched.watched_block`` does) and
    each watched one is checked."""
    n = tab[T_N]
    s = np.zeros(len(fword), np.int64)
    words = np.zeros(w, np.int64)
    buf = np.zeros(24 * n + 8, np.int64)
    src = -1
    suspect = False
    for q in range(len(wsrc)):
        if wsrc[q] != src:
            src = wsrc[q]
            _words(states, cvals, src, w, words)
            _unpack(words, fword, fshift, fmax, need, s)
            suspect = False
            for i in range(n):
                if _out_of_order(s, i, has_comp, aptr, aidx):
                    suspect = True
                    break
            if suspect:
                for f in range(len(fword)):
                    s[f] = (words[fword[f]] >> fshift[f]) & fmax[f]
                enabled_codes(s, tab, fm, buf)
        if not suspect:
            continue
        code = buf[wpos[q]]
        if code & 15 != E_COMP_DISPATCH:
            continue
        if _out_of_order(s, (code >> 10) - 1, has_comp, aptr, aidx):
            return q
    return -1


@functools.cache
def compiled() -> dict[str, Any] | None:
    """The compiled property pass (and the search's namespace it lives in), or
    None when numba is not installed."""
    from . import _kernel_bfs as kb

    return kb.extend(__file__, globals(), (
        _compensated_unstarted, _left_uncompensated, _inconsistent,
        _out_of_order, _words, _unpack, _state_pass, _transition_pass))


# --- the tables and the pass --------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Firsts:
    """Where the compiled pass found each check first violated (-1: never)."""

    completeness_state: int
    """First state index violating completeness's state or terminal check."""
    consistency_state: int
    """First state index violating eventual consistency (terminal check)."""
    out_of_order: int
    """First watched transition (index into ``Searched.watched``) starting a
    compensation too early."""
    reached: tuple[int, ...]
    """Per step, the first state index where it has left PENDING."""


def tables(saga: Saga) -> tuple[Any, Any, Any, Any]:
    """What the compiled predicates read of ``saga``, as int64 arrays: whether
    each step's effect is judged, whether it has a compensation, and (as
    compressed rows) the steps whose compensations must finish before its
    own may start."""
    g = compiled()
    assert g is not None
    np = g["np"]
    n = len(saga.steps)
    effect = set(sem.effect_steps(saga))
    eff = np.array([int(i in effect) for i in range(n)], np.int64)
    has_comp = np.array([int(s.compensation is not None) for s in saga.steps],
                        np.int64)
    after = [sem.compensate_after(saga, i) for i in range(n)]
    aptr = np.array([0, *np.cumsum([len(a) for a in after]).tolist()], np.int64)
    aidx = np.array([j for a in after for j in a] or [0], np.int64)
    return eff, has_comp, aptr, aidx


def property_pass(
    saga: Saga, searched: Any, *, completeness: bool, consistency: bool,
    reached: bool, transitions: bool,
) -> Firsts | None:
    """Run the compiled checks asked for over ``searched`` (a
    ``_kernel_bfs.Searched`` of ``saga``); None when numba is missing."""
    g = compiled()
    if g is None:
        return None
    np = g["np"]
    n = len(saga.steps)
    eff, has_comp, aptr, aidx = tables(saga)
    p = searched.pack
    fword, fshift, fmax = p.arrays(np)
    want = np.array([int(completeness), int(consistency), int(reached)],
                    np.int64)
    steps = [HEADER + WIDTH * i + f for i in range(n) for f in (ST, CS)]
    need = np.array([PHASE, *steps], np.int64)
    need_tr = np.array(steps, np.int64)
    need_term = np.array([HEADER + WIDTH * i + EF for i in range(n)], np.int64)
    first = np.full(2, -1, np.int64)
    seen = np.full(n, -1, np.int64)
    if completeness or consistency or reached:
        g["_state_pass"](searched.states, searched.cvals, searched.count,
                         p.words, fword, fshift, fmax, need, need_term, n, eff,
                         want, first, seen)
    q = -1
    if transitions:
        wsrc, wpos = searched.watched
        q = int(g["_transition_pass"](searched.tab, searched.fm,
                                      searched.states, searched.cvals, p.words,
                                      fword, fshift, fmax, need_tr, has_comp,
                                      aptr, aidx, wsrc, wpos))
    return Firsts(completeness_state=int(first[0]),
                  consistency_state=int(first[1]), out_of_order=q,
                  reached=tuple(int(x) for x in seen))


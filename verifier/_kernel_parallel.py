"""The compiled breadth-first search on several cores, with the results of
one core.

The search of :mod:`verifier._kernel_bfs` takes its states a chunk at a time
(a few thousand discovered states, in index order). Each chunk is searched
in two phases:

1. *Expand*, in parallel (``numba.prange``, one contiguous block of the chunk
   per thread): every successor of every state of the block is computed with
   the semantics kernel, packed, and looked up (read only) in the table of
   distinct words and in the visited table. Each thread writes its own
   buffer: per successor, its event code, its words, and the index of the
   state when it is already stored.
2. *Merge*, on one core, in index order of the sources and, per source, in
   the kernel's order of events: exactly the bookkeeping the one-core search
   does at the same point (layers, deadlocks, budget, edges, watched
   transitions), storing the successors that are still new.

The merge sees the successors in the very order the one-core search would,
so it stores the same states under the same indices: counts, depths,
verdicts and counterexamples (parents included) are identical, whatever the
number of threads. The merge is the sequential part (a lookup for each
successor the expansion did not find stored, and a store per new state).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from saga_models._kernel import (
    HEADER,
    P_COMPLETED,
    T_N,
    WIDTH,
    enabled_codes,
    step_into,
)

from . import _kernel_bfs as kb
from ._kernel_bfs import (
    _intern,
    _note,
    _pack,
    _room,
    _slot,
    _store,
    _word_slot,
)

np: Any = None
prange: Any = range
"""``numba.prange`` in the compiled namespace."""

CHUNK = 2048
"""Sources expanded per chunk (the per-thread buffers hold their successors)."""


def _lookup(cvals: Any, ctab: Any, v: int) -> int:
    """The index of the word ``v`` among the distinct words, or -1 (read only)."""
    return int(ctab[_word_slot(cvals, ctab, v)] - 1)


def _expand(  # noqa: PLR0917 - numba compiles positional calls only
    tab: Any, fm: Any, fword: Any, fshift: Any, fmax: Any, w: int,
    states: Any, table: Any, cvals: Any, ctab: Any, lo: int, hi: int,
    threads: int, nsucc: Any, dead: Any, rcode: Any, rfound: Any,
    rwords: Any, rids: Any, rbad: Any, rcap: int,
) -> None:
    """Phase 1: the successors of sources ``lo`` to ``hi``, one block per
    thread, each into its own stretch of the record buffers."""
    n = tab[T_N]
    length = HEADER + WIDTH * n
    m = 24 * n + 8
    span = (hi - lo + threads - 1) // threads
    for t in prange(threads):
        buf = np.zeros(m, np.int64)
        s = np.zeros(length, np.int64)
        d = np.zeros(length, np.int64)
        words = np.zeros(w, np.int64)
        ids = np.zeros(w, np.int64)
        r = t * rcap
        a = lo + t * span
        b = min(hi, a + span)
        for src in range(a, b):
            for x in range(w):
                words[x] = cvals[states[src * w + x]]
            for f in range(length):
                s[f] = (words[fword[f]] >> fshift[f]) & fmax[f]
            k = enabled_codes(s, tab, fm, buf)
            nsucc[src - lo] = k
            dead[src - lo] = 1 if k == 0 and s[0] < P_COMPLETED else 0
            for e in range(k):
                code = buf[e]
                rcode[r] = code
                rbad[r] = 0
                rfound[r] = -1
                for f in range(length):
                    d[f] = s[f]
                if step_into(d, tab, code) != 0:
                    rbad[r] = 5
                    r += 1
                    continue
                if not _pack(d, length, fword, fshift, fmax, words, w):
                    rbad[r] = 4  # reported by the merge, before any use
                known = True
                for x in range(w):
                    rwords[r * w + x] = words[x]
                    c = _lookup(cvals, ctab, words[x])
                    rids[r * w + x] = c
                    ids[x] = c
                    if c < 0:
                        known = False
                if known and rbad[r] == 0:
                    rfound[r] = table[_slot(states, table, ids, w)] - 1
                r += 1


def _merge(  # noqa: PLR0917 - one loop, as the one-core search's
    tab: Any, w: int, states: Any, layers: Any, table: Any,
    estart: Any, edst: Any, ecode: Any, graph: bool,
    watch: int, wsrc: Any, wpos: Any, ctl: Any, max_states: int,
    cvals: Any, ctab: Any, idmax: int, lo: int, hi: int, threads: int,
    nsucc: Any, dead: Any, rcode: Any, rfound: Any, rwords: Any, rids: Any,
    rbad: Any, rcap: int,
) -> int:
    """Phase 2: the one-core search's bookkeeping for sources ``lo`` to
    ``hi``, in its order; a status as ``_search`` returns, or -1 when the
    chunk is merged."""
    n = tab[T_N]
    m = 24 * n + 8
    ids = np.zeros(w, np.int64)
    span = (hi - lo + threads - 1) // threads
    r_next = 0
    for src in range(lo, hi):
        room = _room(ctl, m, w, states, layers, table, edst, wsrc, cvals, ctab,
                     idmax)
        if room != 0:
            ctl[0] = src
            return room
        count = ctl[1]
        if src == ctl[6]:
            ctl[5] += 1
            ctl[6] = count
            layers[ctl[5]] = src
        if graph:
            estart[src] = ctl[3]
        if dead[src - lo] != 0:
            if ctl[7] == 0:
                ctl[8] = src
            ctl[7] += 1
        # The records of ``src``: at the start of its thread's stretch, or
        # after those of the source before it in the same block.
        r = ((src - lo) // span) * rcap if (src - lo) % span == 0 else r_next
        r_next = r + nsucc[src - lo]
        for e in range(nsucc[src - lo]):
            q = r + e
            code = rcode[q]
            if rbad[q] != 0:
                ctl[0] = src
                ctl[9] = code
                return int(rbad[q])
            ctl[2] += 1
            j = rfound[q]
            if j < 0:
                for x in range(w):
                    c = rids[q * w + x]
                    if c < 0:
                        c = _intern(cvals, ctab, ctl, rwords[q * w + x])
                    ids[x] = c
                j = _store(states, table, ids, w, ctl, max_states)
                if j < 0:
                    ctl[0] = src
                    return 3
            _note(ctl, code, src, e, j, watch, wsrc, wpos, graph, edst, ecode)
    return -1


@functools.cache
def _compiled() -> dict[str, Any] | None:
    """The two phases, compiled in the kernel's namespace (cached on disk
    beside it), or None without numba."""
    if kb.compiled() is None:
        return None
    import os

    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        # The OpenMP and TBB layers keep their threads spinning between the
        # many short parallel regions (one per chunk), which doubles the CPU
        # time on a busy machine; the workqueue layer lets them sleep.
        cfg: Any = numba.config
        cfg.THREADING_LAYER = "workqueue"
    return kb.extend(__file__, globals(), (_lookup, _expand, _merge),
                     extra={"prange": numba.prange}, parallel=(_expand,))


def available_threads() -> int:
    """How many threads numba may run (``NUMBA_NUM_THREADS``, by default the
    machine's cores)."""
    import numba

    cfg: Any = numba.config
    return int(cfg.NUMBA_NUM_THREADS)


def runner(workers: int, n_steps: int) -> Callable[..., int] | None:
    """A stand-in for the compiled one-core ``_search`` of an ``n_steps``-step
    saga (same arguments, same statuses, same effect on every array) that
    expands on ``workers`` threads; None without numba."""
    g = _compiled()
    if g is None:
        return None
    import numba

    threads = max(1, min(workers, available_threads()))
    np_ = g["np"]
    m = 24 * n_steps + 8
    rcap = ((CHUNK + threads - 1) // threads) * m
    total = rcap * threads
    nsucc = np_.zeros(CHUNK, np_.int64)
    dead = np_.zeros(CHUNK, np_.uint8)
    rcode = np_.zeros(total, np_.int64)
    rfound = np_.zeros(total, np_.int64)
    rbad = np_.zeros(total, np_.int64)
    per_word: list[Any] = []  # rwords, rids: sized at the first call

    def run(  # noqa: PLR0917 - the one-core search's positional signature
        tab: Any, fm: Any, fword: Any, fshift: Any, fmax: Any, w: int,
        states: Any, layers: Any, table: Any, estart: Any, edst: Any,
        ecode: Any, graph: bool, watch: int, wsrc: Any, wpos: Any, ctl: Any,
        max_states: int, head_stop: int, cvals: Any, ctab: Any, idmax: int,
    ) -> int:
        numba.set_num_threads(threads)
        if not per_word:
            per_word.extend(np_.zeros(total * w, np_.int64) for _ in range(2))
        rwords, rids = per_word
        while int(ctl[0]) < int(ctl[1]):
            lo = int(ctl[0])
            if lo >= head_stop:
                return kb.S_PAUSED
            hi = min(int(ctl[1]), lo + CHUNK, head_stop)
            g["_expand"](tab, fm, fword, fshift, fmax, w, states, table, cvals,
                         ctab, lo, hi, threads, nsucc, dead, rcode, rfound,
                         rwords, rids, rbad, rcap)
            status = int(g["_merge"](
                tab, w, states, layers, table, estart, edst, ecode, graph,
                watch, wsrc, wpos, ctl, max_states, cvals, ctab, idmax, lo, hi,
                threads, nsucc, dead, rcode, rfound, rwords, rids, rbad, rcap))
            if status >= 0:
                return status
            ctl[0] = hi
        return kb.S_DONE

    return run


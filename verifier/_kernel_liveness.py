"""Termination on the compiled search's graph: fair cycles, compiled.

The compiled search (:mod:`verifier._kernel_bfs`) keeps the state graph as
flat arrays: for state ``v`` its edges are ``edge_dst[edge_start[v]:
edge_start[v + 1]]`` (compressed rows, in the order the semantics offered the
events) with their event codes. This module looks for a fair cycle on those
arrays in compiled code, with the very algorithm of
``verifier._explicit._fair_cycle`` (which stays the reference, and runs
on every graph the interpreted search builds):

* the non-trivial strongly connected components, by an iterative Tarjan
  search, taken in the order of their smallest state;
* in each, strong fairness per family (Emerson-Lei): when the component
  enables a family it never takes inside itself, drop the states enabling
  it and look again in what is left, depth first;
* for the first fair component found, the lasso: the BFS path to its
  smallest state, then a cycle through one edge of every family it takes.

Every choice (roots in increasing state order, edges in stored order, the
families in increasing order) is the reference's, so both give the same
verdict and the same counterexample; ``tests/parity/test_kernel_liveness.py``
checks it. The fairness family of each event comes from the transition
system's own ``fairness_family``, tabulated per event code.
"""

from __future__ import annotations

import functools
from typing import Any

np: Any = None
"""numpy, bound in the compiled functions' namespace."""


# --- compiled ----------------------------------------------------------------------
def _lookup(codes: Any, lut: Any) -> Any:
    out = np.empty(len(codes), np.int32)
    for e in range(len(codes)):
        out[e] = lut[codes[e]]
    return out


def _tarjan(  # noqa: PLR0917 - numba compiles positional calls only
    start: Any, dst: Any, nodes: Any, mark: Any, label: int, order: Any,
    low: Any, onstk: Any, stk: Any, wv: Any, wp: Any,
    out: Any, ob: int, bnd: Any, bb: int,
) -> int:
    """The non-trivial SCCs of the subgraph on ``nodes`` (increasing; each
    has ``mark == label`` and ``order == -1``), in the order Tarjan's search
    finishes them: their states go to ``out[ob:]``, the k-th component ends
    at ``out[ob + bnd[bb + k + 1]]`` (``bnd[bb] = 0``). Returns how many."""
    counter = 0
    sp = 0
    nout = 0
    ncomp = 0
    bnd[bb] = 0
    for r in range(len(nodes)):
        root = nodes[r]
        if order[root] != -1:
            continue
        order[root] = counter
        low[root] = counter
        counter += 1
        stk[sp] = root
        sp += 1
        onstk[root] = 1
        top = 0
        wv[0] = root
        wp[0] = start[root]
        while top >= 0:
            v = wv[top]
            pos = wp[top]
            if pos < start[v + 1]:
                wp[top] = pos + 1
                w = dst[pos]
                if mark[w] != label:
                    continue
                if order[w] == -1:
                    order[w] = counter
                    low[w] = counter
                    counter += 1
                    stk[sp] = w
                    sp += 1
                    onstk[w] = 1
                    top += 1
                    wv[top] = w
                    wp[top] = start[w]
                elif onstk[w] != 0 and order[w] < low[v]:
                    low[v] = order[w]
                continue
            top -= 1
            if top >= 0:
                u = wv[top]
                low[u] = min(low[u], low[v])
            if low[v] == order[v]:
                begin = nout
                while True:
                    sp -= 1
                    w = stk[sp]
                    onstk[w] = 0
                    out[ob + nout] = w
                    nout += 1
                    if w == v:
                        break
                keep = nout - begin > 1
                if not keep:
                    for e in range(start[v], start[v + 1]):
                        if dst[e] == v:
                            keep = True
                            break
                if keep:
                    ncomp += 1
                    bnd[bb + ncomp] = nout
                else:
                    nout = begin
    return ncomp


def _grow(a: Any, need: int) -> Any:
    if need <= len(a):
        return a
    b = np.empty(max(need, 2 * len(a)), a.dtype)
    b[:len(a)] = a
    return b


def _fair(start: Any, dst: Any, fam: Any, n: int, nfam: int) -> Any:
    """The states of the first fair component, in the reference's order of
    search, or an empty array."""
    mark = np.ones(n, np.int64)
    order = np.full(n, -1, np.int64)
    low = np.zeros(n, np.int64)
    onstk = np.zeros(n, np.int8)
    stk = np.zeros(n, np.int64)
    wv = np.zeros(n, np.int64)
    wp = np.zeros(n, np.int64)
    pool = np.zeros(n + 16, np.int64)
    bpool = np.zeros(n + 16, np.int64)
    nodes = np.arange(n)
    ncomp = _tarjan(start, dst, nodes, mark, 1, order, low, onstk, stk, wv, wp,
                    pool, 0, bpool, 0)
    # The top level takes its components by their smallest state.
    mins = np.empty(ncomp, np.int64)
    for c in range(ncomp):
        mins[c] = pool[bpool[c]:bpool[c + 1]].min()
    by_min = np.argsort(mins, kind="mergesort")
    sorted_pool = np.empty(bpool[ncomp] + 16, np.int64)
    sorted_bnd = np.zeros(ncomp + 16, np.int64)
    at = 0
    for k in range(ncomp):
        c = by_min[k]
        size = bpool[c + 1] - bpool[c]
        sorted_pool[at:at + size] = pool[bpool[c]:bpool[c + 1]]
        at += size
        sorted_bnd[k + 1] = at
    pool = _grow(sorted_pool, at + n + 16)
    bpool = _grow(sorted_bnd, ncomp + n + 16)
    depth_cap = nfam + 3
    fbase = np.zeros(depth_cap, np.int64)
    fbb = np.zeros(depth_cap, np.int64)
    fn = np.zeros(depth_cap, np.int64)
    fci = np.zeros(depth_cap, np.int64)
    fn[0] = ncomp
    enabled = np.zeros(max(nfam, 1), np.int8)
    taken = np.zeros(max(nfam, 1), np.int8)
    label = 1
    d = 0
    while d >= 0:
        if fci[d] == fn[d]:
            d -= 1
            continue
        c = fci[d]
        fci[d] += 1
        cb = fbase[d] + bpool[fbb[d] + c]
        ce = fbase[d] + bpool[fbb[d] + c + 1]
        label += 1
        comp = label
        for x in range(cb, ce):
            mark[pool[x]] = comp
        enabled[:] = 0
        taken[:] = 0
        for x in range(cb, ce):
            v = pool[x]
            for e in range(start[v], start[v + 1]):
                f = fam[e]
                if f < 0:
                    continue
                enabled[f] = 1
                if mark[dst[e]] == comp:
                    taken[f] = 1
        unfair = False
        for f in range(nfam):
            if enabled[f] != 0 and taken[f] == 0:
                unfair = True
                break
        if not unfair:
            return pool[cb:ce].copy()
        label += 1
        kept = label
        count = 0
        for x in range(cb, ce):
            v = pool[x]
            ok = True
            for e in range(start[v], start[v + 1]):
                f = fam[e]
                if f >= 0 and enabled[f] != 0 and taken[f] == 0:
                    ok = False
                    break
            if ok:
                mark[v] = kept
                count += 1
        if count == 0:
            continue
        keep = np.empty(count, np.int64)
        k = 0
        for x in range(cb, ce):
            v = pool[x]
            if mark[v] == kept:
                keep[k] = v
                k += 1
                order[v] = -1
        keep.sort()
        top = fbase[d] + bpool[fbb[d] + fn[d]]
        btop = fbb[d] + fn[d] + 1
        pool = _grow(pool, top + count + 16)
        bpool = _grow(bpool, btop + count + 16)
        nsub = _tarjan(start, dst, keep, mark, kept, order, low, onstk, stk,
                       wv, wp, pool, top, bpool, btop)
        d += 1
        if d >= depth_cap:
            raise AssertionError("fair-cycle search deeper than its families")
        fbase[d] = top
        fbb[d] = btop
        fn[d] = nsub
        fci[d] = 0
    return np.zeros(0, np.int64)


def _path(  # noqa: PLR0917 - numba compiles positional calls only
    src: int, goal_flag: Any, goal_stamp: int, goal_node: int, nonempty: bool,
    start: Any, dst: Any, member: Any, seen: Any, stamp: int, prev: Any,
    queue: Any,
) -> Any:
    """``_explicit._bfs_path`` within the component (``member`` set): to a
    state with ``goal_flag == goal_stamp`` or, when ``goal_node >= 0``, to
    that state."""
    hit = goal_node == src if goal_node >= 0 else goal_flag[src] == goal_stamp
    if hit and not nonempty:
        return np.array([src], np.int64)
    seen[src] = stamp
    prev[src] = -1
    qh = 0
    qt = 1
    queue[0] = src
    while qh < qt:
        v = queue[qh]
        qh += 1
        for e in range(start[v], start[v + 1]):
            w = dst[e]
            if member[w] == 0:
                continue
            hit = goal_node == w if goal_node >= 0 else goal_flag[w] == goal_stamp
            if hit:
                rev = [np.int64(w), np.int64(v)]
                x = v
                while prev[x] != -1:
                    x = prev[x]
                    rev.append(np.int64(x))
                out = np.empty(len(rev), np.int64)
                for i in range(len(rev)):
                    out[i] = rev[len(rev) - 1 - i]
                return out
            if seen[w] != stamp:
                seen[w] = stamp
                prev[w] = v
                queue[qt] = w
                qt += 1
    return np.zeros(0, np.int64)


def _cycle(  # noqa: PLR0917 - numba compiles positional calls only
    start: Any, dst: Any, fam: Any, comp: Any, n: int, nfam: int,
) -> Any:
    """``_explicit._lasso``'s cycle: from the component's smallest state
    through one edge of every family it takes, back to that state."""
    member = np.zeros(n, np.int8)
    for x in range(len(comp)):
        member[comp[x]] = 1
    entry = comp.min()
    needed = np.zeros(max(nfam, 1), np.int8)
    for x in range(len(comp)):
        v = comp[x]
        for e in range(start[v], start[v + 1]):
            if fam[e] >= 0 and member[dst[e]] != 0:
                needed[fam[e]] = 1
    flag = np.zeros(n, np.int64)
    seen = np.zeros(n, np.int64)
    prev = np.zeros(n, np.int64)
    queue = np.zeros(n, np.int64)
    cycle = [np.int64(entry)]
    here = np.int64(entry)
    stamp = 0
    for f in range(nfam):
        if needed[f] == 0:
            continue
        stamp += 1
        for x in range(len(comp)):
            v = comp[x]
            for e in range(start[v], start[v + 1]):
                if fam[e] == f and member[dst[e]] != 0:
                    flag[v] = stamp
                    break
        hop = _path(here, flag, stamp, -1, False, start, dst, member, seen,
                    stamp, prev, queue)
        for i in range(1, len(hop)):
            cycle.append(hop[i])
        here = hop[len(hop) - 1]
        for e in range(start[here], start[here + 1]):
            if fam[e] == f and member[dst[e]] != 0:
                here = np.int64(dst[e])
                break
        cycle.append(here)
    stamp += 1
    back = _path(here, flag, -1, entry, len(cycle) == 1, start, dst, member,
                 seen, stamp, prev, queue)
    for i in range(1, len(back)):
        cycle.append(back[i])
    out = np.empty(len(cycle), np.int64)
    for i in range(len(cycle)):
        out[i] = cycle[i]
    return out


@functools.cache
def compiled() -> dict[str, Any] | None:
    """The compiled fair-cycle search, or None when numba is not installed."""
    from . import _kernel_bfs as kb

    return kb.extend(__file__, globals(),
                     (_lookup, _tarjan, _grow, _fair, _path, _cycle))


def family_table(ts: Any, n: int) -> Any:
    """``ts.fairness_family`` of every event code an ``n``-step saga can have,
    indexed by code (-1 for codes that are no event)."""
    from saga_models import _kernel as K
    from saga_models import semantics as sem

    g = compiled()
    assert g is not None
    lut = g["np"].full((n + 1) << 10, -1, g["np"].int32)
    for kind in range(K.E_LATE + 1):
        for outcome in range(K.O_EXPIRED + 1):
            for delta in range(4):
                for step in range(-1, n):
                    code = K.encode(kind, step, outcome, delta)
                    lut[code] = ts.fairness_family(sem.decode_event(code))
    return lut


def fair_cycle(ts: Any, searched: Any, *, lut: Any = None,
               ) -> tuple[list[int], int] | None:
    """A reachable fair cycle of the graph ``searched`` (a
    ``_kernel_bfs.Searched`` made with ``graph=True``) of ``ts``, as
    ``_explicit._fair_cycle`` returns it: (prefix path + cycle, index where
    the cycle starts), or None. ``lut`` replaces the family table (tests)."""
    g = compiled()
    assert g is not None and searched.edge_code is not None
    if lut is None:
        lut = family_table(ts, len(ts.saga.steps))
    fam = g["_lookup"](searched.edge_code, lut)
    return fair_cycle_arrays(searched.edge_start, searched.edge_dst, fam,
                             searched.parent, int(lut.max()) + 1)


def fair_cycle_arrays(start: Any, dst: Any, fam: Any, parent: Any, nfam: int,
                      ) -> tuple[list[int], int] | None:
    """The same on bare arrays: ``len(start) - 1`` states numbered in BFS
    order from state 0, ``parent`` their BFS tree (-1 at the root), ``fam``
    each edge's family (-1 for none, else below ``nfam``)."""
    g = compiled()
    assert g is not None
    count = len(start) - 1
    comp = g["_fair"](start, dst, fam, count, nfam)
    if not len(comp):
        return None
    cycle = g["_cycle"](start, dst, fam, comp, count, nfam).tolist()
    prefix = []
    i = cycle[0]
    while i != -1:
        prefix.append(i)
        i = int(parent[i])
    prefix.reverse()
    return prefix + cycle[1:], len(prefix) - 1

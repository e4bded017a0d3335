"""The compiled fast path of the explicit checker, for event workflows.

The successor relation is the workflow semantics' own kernel
(``saga_models._wf_kernel``): the functions the runtime runs interpreted are
handed here, unchanged, to ``numba.njit``. Around them sits the same kind of
breadth-first search the saga fast path runs (``verifier._kernel_bfs``, whose
hashing helpers it shares): bit-packed states stored once, an open-addressing
hash table, parent indices for shortest counterexamples, the edges only when a
liveness property needs the graph, and the transitions a property looks at.

Compiled code is cached on disk (``verifier._kernel_bfs.compile_into``, in a
folder keyed by a hash of this kernel's sources), so a second check pays no
JIT time. Nothing here decides a verdict: :func:`kernel_search` hands what the
search found to the same property checks :mod:`verifier._explicit` runs on its
own search, in the same order.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saga_models import _wf_kernel as K
from saga_models._wf_kernel import (
    B_DUP,
    W_STACK,
    W_WIDTH,
    enabled_codes,
    max_codes,
    step_into,
)
from saga_models.workflow import semantics as sem

from . import _kernel_bfs as kb
from ._kernel_bfs import (
    _equal,
    _hash,
    _pack,
    _rehash,
    _slot,
    _store,
    _tuples,
    _unpack_words,
)

if TYPE_CHECKING:
    from ._ts import Property
    from ._workflow_ts import WorkflowTransitionSystem

np: Any = None
"""numpy, bound in the compiled functions' namespace only."""

C_HEAD, C_COUNT, C_TRANS, C_NEDGE, C_NWATCH, C_DEPTH, C_NEXT_LAYER = range(7)
C_BAD_CODE = 7
NCTL = 8
S_DONE, S_PAUSED, S_GROW, S_BUDGET, S_OVERFLOW, S_IMPOSSIBLE = range(6)
MAX_WORDS = 8
"""States wider than this many 64-bit words take the interpreted path."""
_KERNEL_FUNCS = ("encode", "max_codes", "guard_holds", "_passes", "_send",
                 "initial_into", "handle_codes", "timer_codes", "enabled_codes",
                 "effect_into", "step_into")


def watch_bit(kind: sem.StepKind, duplicate: bool) -> int:
    """The bit of the watch mask for steps of ``kind`` (duplicates or not)."""
    return 1 << (sem.encode_step(sem.Step(kind, 0)) & 7) + 5 * int(duplicate)


# --- the search (compiled; the names it calls are bound in compiled()) ---------
def _search(  # noqa: PLR0917 - numba compiles positional calls only
    tab: Any, reduce: int, fword: Any, fshift: Any, fmax: Any, w: int,
    states: Any, parent: Any, table: Any, quiet: Any,
    estart: Any, edst: Any, ecode: Any, graph: bool,
    watch: int, wsrc: Any, wpos: Any, wcode: Any, wdst: Any,
    ctl: Any, max_states: int, head_stop: int,
) -> int:
    length = tab[W_WIDTH]
    m = max_codes(tab)
    buf = np.zeros(m, np.int64)
    stack = np.zeros(tab[W_STACK], np.int64)
    s = np.zeros(length, np.int64)
    d = np.zeros(length, np.int64)
    words = np.zeros(w, np.int64)
    cap = len(parent)
    head = ctl[0]
    while head < ctl[1]:
        if head >= head_stop:
            ctl[0] = head
            return 1
        count = ctl[1]
        if (count + m > cap or ctl[3] + m > len(edst) or ctl[4] + m > len(wsrc)
                or (count + m) * 10 > len(table) * 7):
            ctl[0] = head
            return 2
        if head == ctl[6]:
            ctl[5] += 1
            ctl[6] = count
        b = head * w
        for f in range(length):
            s[f] = (states[b + fword[f]] >> fshift[f]) & fmax[f]
        k = enabled_codes(s, tab, reduce, buf, stack)
        quiet[head] = 1 if k == 0 else 0
        if graph:
            estart[head] = ctl[3]
        for e in range(k):
            code = buf[e]
            for f in range(length):
                d[f] = s[f]
            if step_into(d, tab, code) != 0:
                ctl[0] = head
                ctl[7] = code
                return 5
            ctl[2] += 1
            if not _pack(d, length, fword, fshift, fmax, words, w):
                ctl[0] = head
                return 4
            stored = ctl[1]
            j = _store(states, table, words, w, ctl, max_states)
            if j < 0:
                ctl[0] = head
                return 3
            if j == stored:  # new: every state found before has a lower index
                parent[j] = head
            if (watch >> ((code & 7) + 5 * ((code >> B_DUP) & 1))) & 1:
                q = ctl[4]
                wsrc[q] = head
                wpos[q] = e
                wcode[q] = code
                wdst[q] = j
                ctl[4] = q + 1
            if graph:
                q = ctl[3]
                edst[q] = j
                ecode[q] = code
                ctl[3] = q + 1
        head += 1
    ctl[0] = head
    return 0


@functools.cache
def compiled() -> dict[str, Any] | None:
    """The compiled search and kernel, or None when numba is not installed
    (compiled once per process, cached on disk beside the saga kernel's)."""
    try:
        import numba  # noqa: F401 - only whether it is there
        import numpy
    except ImportError:
        return None
    g: dict[str, Any] = dict(vars(K))
    g["np"] = numpy
    funcs = [getattr(K, name) for name in _KERNEL_FUNCS]
    funcs += [_hash, _equal, _rehash, _pack, _slot, _store, _search,
              _unpack_words]
    return kb.compile_into(g, funcs, where=cache_folder())


def cache_folder() -> Path:
    """The cache folder of :func:`compiled`, keyed by the workflow kernel,
    this search and the saga search it borrows functions from."""
    return kb.cache_dir("wf", K.__file__, __file__, kb.__file__)


def packing(wf: Any, duplicates: int) -> kb.Packing | None:
    """Bit widths from each field's bound (``semantics`` documents the
    layout); None when a state needs more than :data:`MAX_WORDS` words."""
    t = sem.tables(wf)
    bounds = [1, duplicates]
    for names in t.state_names:
        bounds += [len(names) - 1, 1]
    bounds += list(t.caps)
    if t.fifo:
        bounds += [2 * len(t.events)] * (len(t.channels) * t.capacity)
    else:
        bounds += [t.capacity] * (2 * len(t.slots))
    return kb.layout(bounds, MAX_WORDS)


@dataclass(slots=True, kw_only=True)
class Found:
    """What the compiled search found (numpy arrays, indices in BFS order)."""

    pack: kb.Packing
    states: Any
    parent: Any
    quiet: Any
    """1 where the state has no successor (quiescent); known for the first
    ``expanded`` states only."""
    expanded: int
    count: int
    transitions: int
    depth: int
    edge_start: Any | None
    edge_dst: Any | None
    edge_code: Any | None
    watched: tuple[Any, Any, Any, Any]
    budget_reason: str

    def rows(self, lo: int, hi: int) -> list[tuple[int, ...]]:
        """States ``lo`` to ``hi`` (exclusive), unpacked."""
        return self._unpack(self.states, lo, hi)

    def take(self, indices: Any) -> list[tuple[int, ...]]:
        """The states at ``indices`` (an int array), unpacked."""
        words = self.states.reshape(-1, self.pack.words)[indices].reshape(-1)
        return self._unpack(words, 0, len(indices))

    def state(self, i: int) -> tuple[int, ...]:
        """State ``i``, unpacked."""
        return self.rows(i, i + 1)[0]

    def _unpack(self, words: Any, lo: int, hi: int) -> list[tuple[int, ...]]:
        g = compiled()
        assert g is not None
        arr = g["_unpack_words"](words, lo, hi, self.pack.words,
                                 *self.pack.arrays(g["np"]))
        return _tuples(arr, max(self.pack.fmax))


def search(
    ts: WorkflowTransitionSystem, *, graph: bool, watch: int, max_states: int,
    check: Callable[[int, int], str] | None = None, chunk: int = 1 << 16,
) -> Found | None:
    """Breadth-first search of ``ts`` with the compiled kernel, or None when
    it cannot run here (numba missing, a state too wide, a field outgrowing
    its bits). ``watch`` is a mask of :func:`watch_bit` values; the other
    arguments are those of ``verifier._kernel_bfs.search``."""
    g = compiled()
    init = ts.initial()[0]
    pack = packing(ts.wf, init[sem.DUPS])
    if g is None or pack is None:
        return None
    n = g["np"]
    t = sem.tables(ts.wf)
    tab = n.array(t.ktab, n.int64)
    fw, fs, fm = pack.arrays(n)
    w = pack.words
    m = t.max_codes
    cap = min(max_states, 1 << 14) + m + 1
    states = n.zeros(cap * w, n.int64)
    parent = n.zeros(cap, n.int32)
    quiet = n.zeros(cap, n.uint8)
    table = n.zeros(1 << max(4, (4 * cap).bit_length()), n.int32)
    estart = n.zeros(cap + 1 if graph else 0, n.int64)
    edst = n.zeros(cap * 4 if graph else m + 1, n.int32)
    ecode = n.zeros(cap * 4 if graph else 0, n.int64)
    watched = [n.zeros(4 * m, n.int32), n.zeros(4 * m, n.int32),
               n.zeros(4 * m, n.int64), n.zeros(4 * m, n.int32)]
    for f, v in enumerate(init):
        if v > pack.fmax[f]:
            return None
        states[pack.fword[f]] |= v << pack.fshift[f]
    ctl = n.zeros(NCTL, n.int64)
    ctl[C_COUNT] = 1
    ctl[C_NEXT_LAYER] = 1
    parent[0] = -1
    g["_rehash"](states, 1, w, table)
    budget = ""
    status = S_DONE
    while True:
        status = g["_search"](tab, int(ts.reduce), fw, fs, fm, w, states, parent,
                              table, quiet, estart, edst, ecode, graph, watch,
                              *watched, ctl, max_states, int(ctl[C_HEAD]) + chunk)
        count = int(ctl[C_COUNT])
        if status == S_DONE:
            break
        if status == S_PAUSED:
            if check is not None:
                budget = check(count, int(ctl[C_DEPTH]))
                if budget:
                    break
            continue
        if status == S_GROW:
            if count + m > len(parent):
                cap = max(min(2 * len(parent), max_states + m + 1), count + m + 1)
                # In place, as the saga search grows its arrays (realloc:
                # no second copy at the peak; the new items are zero).
                states.resize(cap * w, refcheck=False)
                parent.resize(cap, refcheck=False)
                quiet.resize(cap, refcheck=False)
                if graph:
                    estart.resize(cap + 1, refcheck=False)
            if (count + m) * 10 > len(table) * 7:
                table = n.zeros(2 * len(table), n.int32)
                g["_rehash"](states, count, w, table)
            if graph and int(ctl[C_NEDGE]) + m > len(edst):
                edst.resize(2 * len(edst), refcheck=False)
                ecode.resize(2 * len(ecode), refcheck=False)
            if int(ctl[C_NWATCH]) + m > len(watched[0]):
                for a in watched:
                    a.resize(2 * len(a), refcheck=False)
            continue
        if status == S_BUDGET:
            budget = (f"state budget reached: {count:,} states stored "
                      f"(--max-states {max_states:,}) at depth "
                      f"{int(ctl[C_DEPTH]) + 1}")
            break
        if status == S_OVERFLOW:
            return None
        raise RuntimeError(
            f"the compiled workflow kernel rejected step code "
            f"{int(ctl[C_BAD_CODE])} that it offered: the kernel disagrees "
            "with itself")
    count = int(ctl[C_COUNT])
    nedge, nwatch = int(ctl[C_NEDGE]), int(ctl[C_NWATCH])
    if graph:
        estart[count] = nedge
    return Found(
        pack=pack, states=states[:count * w], parent=parent[:count],
        quiet=quiet[:count],
        # A state budget stops inside the expansion of the state at the head
        # (its successors were being stored): that one is known too.
        expanded=int(ctl[C_HEAD]) + (1 if status == S_BUDGET else 0),
        count=count, transitions=int(ctl[C_TRANS]),
        depth=int(ctl[C_DEPTH]),
        edge_start=estart[:count + 1] if graph else None,
        edge_dst=edst[:nedge] if graph else None,
        edge_code=ecode[:nedge] if graph else None,
        watched=(watched[0][:nwatch], watched[1][:nwatch], watched[2][:nwatch],
                 watched[3][:nwatch]),
        budget_reason=budget)


Violation = tuple[int, str, Any, Any]
"""(state index, message, label, target) of a property's first violation, as
``verifier._explicit`` records it (label and target for a transition's)."""


@dataclass(slots=True, kw_only=True)
class Checked:
    """What :func:`kernel_search` hands back to the explicit checker."""

    states: Sequence[bytes]
    parent: array[int]
    found: dict[str, Violation]
    edges: tuple[array[int], array[int], array[int]]
    transitions: int
    depth: int
    budget_reason: str


def kernel_search(
    ts: WorkflowTransitionSystem, props: list[Property], *, need_graph: bool,
    max_states: int, check: Callable[[int, int], str],
) -> Checked | None:
    """The compiled search, then the property checks of
    ``verifier._explicit._python_search`` in the same order (so the first
    violation of each property, and its counterexample, are the same); None
    when the compiled search cannot run on ``ts``. ``check`` is called
    between chunks, as by :func:`search`: a non-empty return is a budget
    reason that stops the search."""
    trans_props = [p for p in props if p.on_transition is not None]
    watch = 0
    if trans_props:
        for kind, dup in ts.transition_kinds:
            watch |= watch_bit(kind, dup)
    found = search(ts, graph=need_graph, watch=watch, max_states=max_states,
                   check=check)
    if found is None:
        return None
    states = kb.PackedStates(found)
    first: dict[str, Violation] = {}
    state_props = [p for p in props if p.on_state is not None
                   or p.on_terminal is not None]
    if state_props:
        quiet = found.quiet.tolist()
        for idx, st in enumerate(states.iter_rows()):
            for p in state_props:
                if p.name in first:
                    continue
                msg = p.on_state(st) if p.on_state is not None else None
                if (not msg and p.on_terminal is not None
                        and (quiet[idx] if idx < found.expanded
                             else ts.is_terminal(st))):
                    msg = p.on_terminal(st)
                if msg:
                    first[p.name] = (idx, msg, None, None)
            if len(first) == len(state_props):
                break
    trans_first: dict[str, tuple[tuple[int, int], Violation]] = {}
    wsrc, wpos, wcode, wdst = found.watched
    block = 1 << 14
    for lo in range(0, len(wsrc) if trans_props else 0, block):
        if len(trans_first) == len(trans_props):
            break
        hi = lo + block
        srcs, dsts = found.take(wsrc[lo:hi]), found.take(wdst[lo:hi])
        for q, (src, pos, code) in enumerate(zip(
                wsrc[lo:hi].tolist(), wpos[lo:hi].tolist(),
                wcode[lo:hi].tolist(), strict=True)):
            label = sem.decode_step(code)
            for p in trans_props:
                if p.name not in trans_first:
                    msg = p.on_transition(srcs[q], label, dsts[q])  # type: ignore[misc]
                    if msg:
                        trans_first[p.name] = ((src, pos),
                                               (src, msg, label, dsts[q]))
    # A state is checked when the transition that discovers it is taken, just
    # before that transition's own checks: keep whichever came first.
    for name, (when, f) in trans_first.items():
        sf = first.get(name)
        if sf is None or _discovered_at(ts, found, sf[0]) > when:
            first[name] = f
    edges = (array("q"), array("q"), array("q"))
    if need_graph:
        assert found.edge_code is not None
        codes = found.edge_code
        fam = codes.copy()
        for c in set(codes.tolist()):
            fam[codes == c] = ts.fairness_family(sem.decode_step(c))
        edges = (_int_array(found.edge_start), _int_array(found.edge_dst),
                 _int_array(fam))
    return Checked(states=states, parent=_int_array(found.parent), found=first,
                   edges=edges, transitions=found.transitions, depth=found.depth,
                   budget_reason=found.budget_reason)


def _int_array(a: Any) -> array[int]:
    out = array("q")
    out.frombytes(a.astype("int64").tobytes())
    return out


def _discovered_at(ts: WorkflowTransitionSystem, found: Found,
                   idx: int) -> tuple[int, int]:
    """(parent, position among its successors) of the transition that
    discovered state ``idx``; (-1, -1) for the initial state."""
    if idx == 0:
        return (-1, -1)
    par = int(found.parent[idx])
    target = found.state(idx)
    for k, (_, nxt) in enumerate(ts.successors(found.state(par))):
        if tuple(nxt) == target:
            return (par, k)
    raise AssertionError("a state's parent has no transition to it")

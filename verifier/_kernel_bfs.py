"""The compiled fast path of the explicit checker, for single sagas.

The successor relation is the semantics' own kernel (``saga_models._kernel``):
the functions the runtime runs interpreted are handed here, unchanged, to
``numba.njit``. Around them sits a breadth-first search over bit-packed states:
each state is a few 64-bit words (every field gets just the bits its bound
needs), and each word is stored as the index of its value in a table of the
distinct words seen (SPIN's ``-DCOLLAPSE``: a model has few distinct values
per word, so a state takes ``w`` 16-bit indices, widened to 32 bits when more
than 65,535 distinct words turn up), once in a flat array, found again
through an open-addressing hash table of 32-bit indices. No parent index is
kept: states are stored in breadth-first order, so a state's parent is the
first state of the layer before it with a transition to it, found again when
a counterexample is rebuilt (:class:`Parents`); it is the parent the search
would have recorded, so counterexamples stay shortest and the same. The edges
(with the event code) are kept only when a liveness property needs the
graph; of the transitions a property looks at, the source and the event's
position are kept (:meth:`Searched.watched_block` gives the rest).

Compiled code is cached on disk (under the user's cache directory, in a folder
named by a hash of the sources it is compiled from: :func:`compile_into`, for
this search and every compiled module beside it), so a second check pays no
JIT time.
Nothing here decides a verdict: :mod:`verifier._explicit` evaluates the
properties on what this search returns, exactly as on its own search.
"""

from __future__ import annotations

import functools
import hashlib
import os
import types
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from saga_models import _kernel as K
from saga_models import semantics as sem
from saga_models._ir import Saga
from saga_models._kernel import (
    HEADER,
    P_COMPLETED,
    T_N,
    WIDTH,
    enabled_codes,
    step_into,
)

np: Any = None
"""numpy, bound in the compiled functions' namespace (imported only there:
the runtime never needs it)."""

# --- control block indices (ctl array) -----------------------------------------
C_HEAD, C_COUNT, C_TRANS, C_NEDGE, C_NWATCH, C_DEPTH, C_NEXT_LAYER = range(7)
C_NDEAD, C_FIRST_DEAD, C_BAD_CODE, C_NCOMP = 7, 8, 9, 10
NCTL = 11
# --- statuses the search returns ---------------------------------------------------
S_DONE, S_PAUSED, S_GROW, S_BUDGET, S_OVERFLOW, S_IMPOSSIBLE, S_WIDEN = range(7)

MAX_WORDS = 8
"""States wider than this many 64-bit words take the interpreted path."""
_KERNEL_FUNCS = ("encode", "_took_effect", "_replies", "_late", "_chain_step",
                 "enabled_codes", "_reply", "_abort", "settle", "step_into")


# --- the search (compiled; the names it calls are bound in _compile) ------------
def _hash(words: Any, base: int, w: int) -> int:
    h = 0x2545F4914F6CDD1D
    for x in range(w):
        h ^= words[base + x]
        h *= -7046029254386353131  # 0x9E3779B97F4A7C15; wraps like uint64
        h ^= h >> 31
    return h


def _equal(states: Any, idx: int, words: Any, w: int) -> bool:
    b = idx * w
    for x in range(w):  # noqa: SIM110 - a loop numba compiles to compares
        if states[b + x] != words[x]:
            return False
    return True


def _word_slot(cvals: Any, ctab: Any, v: int) -> int:
    """The slot of the word ``v`` in the table of distinct words: the one
    that holds it, or the free one where it would go (``ctab[slot] - 1`` is
    its index, or -1)."""
    mask = len(ctab) - 1
    h = v * -7046029254386353131
    h ^= (h >> 29) & 0x7FFFFFFFF
    h &= mask
    while ctab[h] != 0 and cvals[ctab[h] - 1] != v:
        h = (h + 1) & mask
    return int(h)


def _intern(cvals: Any, ctab: Any, ctl: Any, v: int) -> int:
    """The index of the word ``v`` in the table of distinct words (added when
    new)."""
    h = _word_slot(cvals, ctab, v)
    if ctab[h] != 0:
        return int(ctab[h] - 1)
    c = ctl[10]
    cvals[c] = v
    ctab[h] = c + 1
    ctl[10] = c + 1
    return int(c)


def _rehash_words(cvals: Any, n: int, ctab: Any) -> None:
    mask = len(ctab) - 1
    ctab[:] = 0
    for c in range(n):
        h = cvals[c] * -7046029254386353131
        h ^= (h >> 29) & 0x7FFFFFFFF
        h &= mask
        while ctab[h] != 0:
            h = (h + 1) & mask
        ctab[h] = c + 1


def _rehash(states: Any, count: int, w: int, table: Any) -> None:
    mask = len(table) - 1
    table[:] = 0
    for idx in range(count):
        h = _hash(states, idx * w, w) & mask
        while table[h] != 0:
            h = (h + 1) & mask
        table[h] = idx + 1


def _room(  # noqa: PLR0917 - numba compiles positional calls only
    ctl: Any, m: int, w: int, states: Any, layers: Any, table: Any, edst: Any,
    wsrc: Any, cvals: Any, ctab: Any, idmax: int,
) -> int:
    """0 when every array has room for the successors of one more source (at
    most ``m``), else the status that makes it: ``S_GROW`` (2), or
    ``S_WIDEN`` (6) when the distinct words may outgrow the indices' type.
    The one-core search and the parallel merge both ask before a source."""
    count = ctl[1]
    if (count + m > len(states) // w or ctl[3] + m > len(edst)
            or ctl[4] + m > len(wsrc) or (count + m) * 10 > len(table) * 7
            or ctl[10] + m * w > len(cvals) or ctl[5] + 2 > len(layers)
            or (ctl[10] + m * w) * 10 > len(ctab) * 7):
        return 2
    if ctl[10] + m * w > idmax:
        return 6
    return 0


def _pack(  # noqa: PLR0917 - numba compiles positional calls only
    d: Any, length: int, fword: Any, fshift: Any, fmax: Any, words: Any, w: int,
) -> bool:
    """Pack the field values ``d`` into the ``w`` words ``words``; False when
    a value is outside its field's range (the search's ``S_OVERFLOW``). The
    saga, workflow and lossy searches all pack with it."""
    for x in range(w):
        words[x] = 0
    for f in range(length):
        v = d[f]
        if v < 0 or v > fmax[f]:
            return False
        words[fword[f]] |= v << fshift[f]
    return True


def _slot(states: Any, table: Any, ids: Any, w: int) -> int:
    """The slot of the state whose word indices are ``ids`` in the hash
    table: the one that holds it, or the free one where it would go
    (``table[slot] - 1`` is its index, or -1)."""
    mask = len(table) - 1
    h = _hash(ids, 0, w) & mask
    while table[h] != 0 and not _equal(states, table[h] - 1, ids, w):
        h = (h + 1) & mask
    return int(h)


def _store(  # noqa: PLR0917 - numba compiles positional calls only
    states: Any, table: Any, ids: Any, w: int, ctl: Any, max_states: int,
) -> int:
    """The index of the state whose word indices are ``ids``, stored (next
    index, in the hash table) when new; -1 when it is new and the state
    budget is spent."""
    h = _slot(states, table, ids, w)
    if table[h] != 0:
        return int(table[h] - 1)
    j = ctl[1]
    if j >= max_states:
        return -1
    table[h] = j + 1
    for x in range(w):
        states[j * w + x] = ids[x]
    ctl[1] = j + 1
    return int(j)


def _note(  # noqa: PLR0917 - numba compiles positional calls only
    ctl: Any, code: int, src: int, e: int, j: int, watch: int, wsrc: Any,
    wpos: Any, graph: bool, edst: Any, ecode: Any,
) -> None:
    """Record the ``e``-th transition of ``src`` (to state ``j``): as a
    watched one when its kind is in ``watch``, and as an edge of the graph
    when the graph is kept. The one-core search and the parallel merge both
    record with it."""
    if (watch >> (code & 15)) & 1:
        q = ctl[4]
        wsrc[q] = src
        wpos[q] = e
        ctl[4] = q + 1
    if graph:
        q = ctl[3]
        edst[q] = j
        ecode[q] = code
        ctl[3] = q + 1


def _search(  # noqa: PLR0917 - numba compiles positional calls only
    tab: Any, fm: Any, fword: Any, fshift: Any, fmax: Any, w: int,
    states: Any, layers: Any, table: Any,
    estart: Any, edst: Any, ecode: Any, graph: bool,
    watch: int, wsrc: Any, wpos: Any,
    ctl: Any, max_states: int, head_stop: int,
    cvals: Any, ctab: Any, idmax: int,
) -> int:
    n = tab[T_N]
    length = HEADER + WIDTH * n
    m = 24 * n + 8
    buf = np.zeros(m, np.int64)
    s = np.zeros(length, np.int64)
    d = np.zeros(length, np.int64)
    words = np.zeros(w, np.int64)
    ids = np.zeros(w, np.int64)
    head = ctl[0]
    while head < ctl[1]:
        if head >= head_stop:
            ctl[0] = head
            return 1
        room = _room(ctl, m, w, states, layers, table, edst, wsrc, cvals, ctab,
                     idmax)
        if room != 0:
            ctl[0] = head
            return room
        count = ctl[1]
        if head == ctl[6]:
            ctl[5] += 1
            ctl[6] = count
            layers[ctl[5]] = head
        # unpack
        b = head * w
        for x in range(w):
            words[x] = cvals[states[b + x]]
        for f in range(length):
            s[f] = (words[fword[f]] >> fshift[f]) & fmax[f]
        k = enabled_codes(s, tab, fm, buf)
        if graph:
            estart[head] = ctl[3]
        if k == 0 and s[0] < P_COMPLETED:
            if ctl[7] == 0:
                ctl[8] = head
            ctl[7] += 1
        for e in range(k):
            code = buf[e]
            for f in range(length):
                d[f] = s[f]
            if step_into(d, tab, code) != 0:
                ctl[0] = head
                ctl[9] = code
                return 5
            ctl[2] += 1
            if not _pack(d, length, fword, fshift, fmax, words, w):
                ctl[0] = head
                return 4
            for x in range(w):
                ids[x] = _intern(cvals, ctab, ctl, words[x])
            j = _store(states, table, ids, w, ctl, max_states)
            if j < 0:
                ctl[0] = head
                return 3
            _note(ctl, code, head, e, j, watch, wsrc, wpos, graph, edst, ecode)
        head += 1
    ctl[0] = head
    return 0


def _find_parent(  # noqa: PLR0917 - compiled: positional only
    tab: Any, fm: Any, fword: Any, fshift: Any, fmax: Any, w: int,
    states: Any, cvals: Any, lo: int, hi: int, target: int,
) -> int:
    """The first state in ``lo`` to ``hi`` with a transition to ``target``
    (the layer before it: its breadth-first parent), or -1."""
    n = tab[T_N]
    length = HEADER + WIDTH * n
    buf = np.zeros(24 * n + 8, np.int64)
    s = np.zeros(length, np.int64)
    d = np.zeros(length, np.int64)
    words = np.zeros(w, np.int64)
    want = np.zeros(w, np.int64)
    for x in range(w):
        want[x] = cvals[states[target * w + x]]
    for src in range(lo, hi):
        for f in range(length):
            s[f] = (cvals[states[src * w + fword[f]]] >> fshift[f]) & fmax[f]
        k = enabled_codes(s, tab, fm, buf)
        for e in range(k):
            for f in range(length):
                d[f] = s[f]
            step_into(d, tab, buf[e])
            for x in range(w):
                words[x] = 0
            for f in range(length):
                words[fword[f]] |= d[f] << fshift[f]
            same = True
            for x in range(w):
                if words[x] != want[x]:
                    same = False
                    break
            if same:
                return src
    return -1


def _watched_detail(  # noqa: PLR0917 - compiled: positional only
    tab: Any, fm: Any, fword: Any, fshift: Any, fmax: Any, w: int,
    states: Any, cvals: Any, wsrc: Any, wpos: Any,
) -> Any:
    """The event code and the target state (unpacked) of each watched
    transition, from its source and position (the search keeps only those)."""
    n = tab[T_N]
    length = HEADER + WIDTH * n
    buf = np.zeros(24 * n + 8, np.int64)
    codes = np.zeros(len(wsrc), np.int64)
    out = np.zeros((len(wsrc), length), np.int64)
    s = np.zeros(length, np.int64)
    for q in range(len(wsrc)):
        b = wsrc[q] * w
        for f in range(length):
            s[f] = (cvals[states[b + fword[f]]] >> fshift[f]) & fmax[f]
        enabled_codes(s, tab, fm, buf)
        code = buf[wpos[q]]
        codes[q] = code
        for f in range(length):
            out[q, f] = s[f]
        step_into(out[q], tab, code)
    return codes, out


def _unpack_words(  # noqa: PLR0917 - compiled: positional only
    words: Any, lo: int, hi: int, w: int, fword: Any, fshift: Any, fmax: Any,
) -> Any:
    """The fields of states ``lo`` to ``hi`` of ``words`` (``w`` whole words
    a state, not indices into a table of distinct words), one row a state."""
    length = len(fword)
    out = np.zeros((hi - lo, length), np.int64)
    for r in range(lo, hi):
        b = r * w
        for f in range(length):
            out[r - lo, f] = (words[b + fword[f]] >> fshift[f]) & fmax[f]
    return out


# --- compilation, cached -------------------------------------------------------------
def cache_dir(name: str, *sources: str) -> Path:
    """Where the compiled code of ``name`` is kept:
    ``$XDG_CACHE_HOME/sagaproof/numba/<name>-<hash>``, the hash covering every
    file in ``sources`` (numba checks only a function's own file before
    reusing what it compiled, and compiled code here calls other files')."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256()
    for path in sources:
        digest.update(Path(path).read_bytes())
    return base / "sagaproof" / "numba" / f"{name}-{digest.hexdigest()[:16]}"


def compile_into(
    g: dict[str, Any], funcs: Iterable[Callable[..., Any]], *, where: Path,
    parallel: Collection[Callable[..., Any]] = (),
) -> dict[str, Any]:
    """Compile each of ``funcs`` with numba into the namespace ``g`` (under
    its own name), cached on disk in ``where``; returns ``g``.

    Every function is a clone whose globals are ``g``: numba resolves the
    names a compiled function calls from its globals, so the kernel, the
    search and its add-ons call one another's compiled versions. Those in
    ``parallel`` are compiled with ``parallel=True`` (``numba.prange``)."""
    import numba

    where.mkdir(parents=True, exist_ok=True)
    config: Any = numba.config
    saved = config.CACHE_DIR
    config.CACHE_DIR = str(where)
    try:
        for fn in funcs:
            clone = types.FunctionType(fn.__code__, g, fn.__name__,
                                       fn.__defaults__, fn.__closure__)
            clone.__module__ = fn.__module__
            clone.__qualname__ = fn.__qualname__
            g[fn.__name__] = numba.njit(cache=True, nogil=True,
                                        parallel=fn in parallel)(clone)
    finally:
        config.CACHE_DIR = saved
    return g


@functools.cache
def compiled() -> dict[str, Any] | None:
    """The compiled search and kernel, or None when numba is not installed
    (compiled once per process)."""
    try:
        import numba  # noqa: F401 - only whether it is there
        import numpy
    except ImportError:
        return None
    g: dict[str, Any] = dict(vars(K))
    g["np"] = numpy
    funcs = [getattr(K, name) for name in _KERNEL_FUNCS]
    funcs += [_hash, _equal, _word_slot, _intern, _rehash_words, _rehash,
              _room, _pack, _slot, _store, _note, _search, _find_parent,
              _watched_detail, _unpack_words]
    return compile_into(g, funcs, where=saga_dir())


def extend(
    source: str, names: dict[str, Any], funcs: Iterable[Callable[..., Any]], *,
    extra: dict[str, Any] | None = None,
    parallel: Collection[Callable[..., Any]] = (),
) -> dict[str, Any] | None:
    """The namespace of :func:`compiled` plus ``funcs`` of the module at
    ``source`` (with its constants, the upper-case ``names``, and ``extra``),
    compiled and cached in a folder keyed by that module too; None without
    numba."""
    base = compiled()
    if base is None:
        return None
    g = dict(base)
    g.update((k, v) for k, v in names.items() if k.isupper())
    g.update(extra or {})
    return compile_into(g, funcs, where=extension_dir(source),
                        parallel=parallel)


def saga_dir() -> Path:
    """The cache folder of :func:`compiled` (the saga kernel and search)."""
    return cache_dir("saga", K.__file__, __file__)


def extension_dir(source: str) -> Path:
    """The cache folder of :func:`extend` for the module at ``source``: named
    after it, keyed by its source and the namespace's."""
    return cache_dir(Path(source).stem.lstrip("_"), K.__file__, __file__,
                     source)


# --- packing ---------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Packing:
    """Where each field of a state lives in its words."""

    words: int
    fword: tuple[int, ...]
    fshift: tuple[int, ...]
    fmax: tuple[int, ...]
    """The largest value the field's bits hold (``2**bits - 1``)."""

    def arrays(self, np: Any) -> tuple[Any, Any, Any]:
        """``fword``, ``fshift`` and ``fmax`` as the int64 arrays the compiled
        code reads (``np`` is numpy, imported by the caller)."""
        return (np.array(self.fword, np.int64), np.array(self.fshift, np.int64),
                np.array(self.fmax, np.int64))


def packing(saga: Saga, faults: sem.FaultModel) -> Packing | None:
    """Bit widths from each field's bound; None when the state needs more
    than :data:`MAX_WORDS` words. A value that outgrows its field anyway stops
    the search (status ``S_OVERFLOW``), which then falls back."""
    t = sem._tables(saga)
    longest = max((len(c.steps) for c in saga.compensation_chains), default=0)
    bounds = [5, 1, faults.crashes, faults.duplicates, t.n, longest]
    for i in range(t.n):
        bounds += [6, t.attempt_cap[i], 2, sem.EFFECT_CAP, 3, t.comp_cap, 1]
    return layout(bounds)


def layout(bounds: Sequence[int], max_words: int = MAX_WORDS) -> Packing | None:
    """Fields with these largest values, each given just the bits its bound
    needs, packed in order into 63-bit words; None past ``max_words`` words.

    >>> layout([1, 5, 2**62]).fshift
    (0, 1, 0)
    """
    fword, fshift, fmax = [], [], []
    word, used = 0, 0
    for bound in bounds:
        bits = max(bound, 0).bit_length()
        if used + bits > 63:  # the sign bit stays clear
            word, used = word + 1, 0
        fword.append(word)
        fshift.append(used)
        fmax.append((1 << bits) - 1)
        used += bits
    if word + 1 > max_words:
        return None
    return Packing(words=word + 1, fword=tuple(fword), fshift=tuple(fshift),
                   fmax=tuple(fmax))


# --- one run ---------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class Searched:
    """What the compiled search found (arrays are numpy; indices are BFS
    order, so index order is discovery order)."""

    pack: Packing
    states: Any
    """``count * words`` indices into :attr:`cvals` (uint16, or int32 past
    65,535 distinct words): word ``x`` of state ``i`` is
    ``cvals[states[i * words + x]]``."""
    cvals: Any
    """The distinct words, int64."""
    parent: Parents
    """Each state's breadth-first parent, found on demand."""
    count: int
    transitions: int
    depth: int
    deadlocks: int
    first_deadlock: int
    edge_start: Any | None
    edge_dst: Any | None
    edge_code: Any | None
    watched: tuple[Any, Any]
    """(source, position among its successors) of every transition whose
    kind a transition property looks at, in search order
    (:meth:`watched_block` gives their events and targets)."""
    tab: Any = None
    fm: Any = None
    budget_reason: str
    table_slots: int
    word_slots: int = 0
    """Slots of the distinct words' hash table (32-bit)."""

    def _fields(self) -> tuple[Any, Any, Any, dict[str, Any]]:
        g = compiled()
        assert g is not None
        return (*self.pack.arrays(g["np"]), g)

    def rows(self, lo: int, hi: int) -> list[tuple[int, ...]]:
        """States ``lo`` to ``hi`` (exclusive), unpacked."""
        w = self.pack.words
        return self._unpack(self.cvals[self.states[lo * w:hi * w]])

    def take(self, indices: Any) -> list[tuple[int, ...]]:
        """The states at ``indices`` (an int array), unpacked."""
        w = self.pack.words
        return self._unpack(self.cvals[self.states.reshape(-1, w)[indices]])

    def _unpack(self, words: Any) -> list[tuple[int, ...]]:
        """Whole words (``words`` a state, one after another) as tuples."""
        fword, fshift, fmax, g = self._fields()
        w = self.pack.words
        arr = g["_unpack_words"](words.reshape(-1), 0, words.size // w, w,
                                 fword, fshift, fmax)
        return _tuples(arr, max(self.pack.fmax))

    def state(self, i: int) -> tuple[int, ...]:
        """State ``i``, unpacked."""
        return self.rows(i, i + 1)[0]

    def watched_block(self, lo: int, hi: int) -> tuple[list[int], list[tuple[
            int, ...]]]:
        """The event codes and the target states of watched transitions
        ``lo`` to ``hi`` (re-derived from source and position)."""
        fword, fshift, fmax, g = self._fields()
        wsrc, wpos = self.watched
        codes, dst = g["_watched_detail"](
            self.tab, self.fm, fword, fshift, fmax, self.pack.words,
            self.states, self.cvals, wsrc[lo:hi], wpos[lo:hi])
        return codes.tolist(), _tuples(dst, max(self.pack.fmax))

    def bytes_used(self) -> int:
        """The bytes of every array the search keeps (states, parents, hash
        table, distinct words and their table, edges, watched transitions)."""
        arrays = [self.states, self.cvals, *self.watched]
        if self.edge_start is not None:
            arrays += [self.edge_start, self.edge_dst, self.edge_code]
        return (int(sum(a.nbytes for a in arrays)) + 4 * self.table_slots
                + 4 * self.word_slots)


def search(
    saga: Saga, faults: sem.FaultModel, *, graph: bool, watch_kinds: int,
    max_states: int, check: Callable[[int, int], str] | None = None,
    chunk: int = 1 << 16, runner: Callable[..., int] | None = None,
) -> Searched | None:
    """Breadth-first search of ``saga`` under ``faults`` with the compiled
    kernel, or None when it cannot run here (numba missing, a state too wide,
    a field outgrowing its bits).

    Args:
        saga: the definition.
        faults: the fault model.
        graph: keep every edge with its event code (for liveness).
        watch_kinds: bit mask of event kinds (``_kernel.E_*``) whose
            transitions are returned in ``watched``.
        max_states: the state budget, honoured exactly as the interpreted
            search does (the same transition stops both).
        check: called with (states, depth) between chunks of expanded
            states; a non-empty return is a budget reason that stops the search.
        chunk: how many states to expand between two calls of ``check``.
        runner: a stand-in for the compiled one-thread search, with its
            arguments and effects (:func:`verifier._kernel_parallel.runner`:
            several threads, the same results).
    """
    g = compiled()
    pack = packing(saga, faults)
    if g is None or pack is None:
        return None
    np = g["np"]
    tab = np.array(sem.lower(saga), np.int64)
    fm = np.array(sem.fault_vector(faults), np.int64)
    fword, fshift, fmax = pack.arrays(np)
    w = pack.words
    m = K.max_events(len(saga.steps))
    cap = min(max_states, 1 << 14) + m + 1
    states = np.zeros(cap * w, np.uint16)
    idmax = 0xFFFF
    cvals = np.zeros(1 << 10, np.int64)
    ctab = np.zeros(1 << 11, np.int32)
    layers = np.zeros(1 << 10, np.int64)
    table = np.zeros(1 << max(4, (4 * cap).bit_length()), np.int32)
    ecap = cap * 4 if graph else 0
    estart = np.zeros(cap + 1 if graph else 0, np.int64)
    edst = np.zeros(ecap if graph else m + 1, np.int32)
    ecode = np.zeros(ecap if graph else 0, np.int32)
    wcap = 4 * m
    watched = [np.zeros(wcap, np.int32), np.zeros(wcap, np.uint16)]
    init = sem.initial_state(saga)
    first = [0] * w
    for f, v in enumerate(init):
        first[pack.fword[f]] |= v << pack.fshift[f]
    ctl = np.zeros(NCTL, np.int64)
    for x, v in enumerate(first):
        states[x] = g["_intern"](cvals, ctab, ctl, v)
    ctl[C_COUNT] = 1
    ctl[C_NEXT_LAYER] = 1
    g["_rehash"](states, 1, w, table)
    budget = ""
    run = g["_search"] if runner is None else runner
    while True:
        status = run(tab, fm, fword, fshift, fmax, w, states, layers,
                              table, estart, edst, ecode, graph, watch_kinds,
                              *watched, ctl, max_states,
                              int(ctl[C_HEAD]) + chunk, cvals, ctab, idmax)
        count = int(ctl[C_COUNT])
        if status == S_DONE:
            break
        if status == S_PAUSED:
            if check is not None:
                budget = check(count, int(ctl[C_DEPTH]))
                if budget:
                    break
            continue
        if status == S_WIDEN:
            # More distinct words than 16-bit indices hold: 32 bits from now.
            states = states.astype(np.int32)
            idmax = (1 << 31) - 1
            continue
        if status == S_GROW:
            if int(ctl[C_DEPTH]) + 2 > len(layers):
                layers.resize(2 * len(layers), refcheck=False)
            if count + m > len(states) // w:
                cap = min(2 * (len(states) // w), max_states + m + 1)
                if cap < count + m:
                    cap = count + m + 1
                # In place (realloc, which moves pages rather than copying a
                # large block): no second copy at the peak.
                states.resize(cap * w, refcheck=False)
                if graph:
                    estart.resize(cap + 1, refcheck=False)
            if (count + m) * 10 > len(table) * 7:
                # Rebuilt from the states: drop the old table first, so the
                # two are never held at once.
                size = 2 * len(table)
                table = None
                table = np.zeros(size, np.int32)
                g["_rehash"](states, count, w, table)
            nwords = int(ctl[C_NCOMP])
            if nwords + m * w > len(cvals):
                cvals.resize(2 * (nwords + m * w), refcheck=False)
            if (nwords + m * w) * 10 > len(ctab) * 7:
                ctab = np.zeros(2 * len(ctab), np.int32)
                g["_rehash_words"](cvals, nwords, ctab)
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
            f"the compiled kernel rejected event code {int(ctl[C_BAD_CODE])} "
            "that it offered: the semantics kernel disagrees with itself")
    count = int(ctl[C_COUNT])
    nedge = int(ctl[C_NEDGE])
    nwatch = int(ctl[C_NWATCH])
    if graph:
        estart[count] = nedge
    starts = layers[:int(ctl[C_DEPTH]) + 1].tolist()
    if int(ctl[C_NEXT_LAYER]) < count:
        starts.append(int(ctl[C_NEXT_LAYER]))  # the layer a budget cut short
    out = Searched(
        pack=pack, states=states[:count * w], tab=tab, fm=fm,
        parent=Parents(starts, count, tab, fm, fword, fshift, fmax, w),
        cvals=cvals[:int(ctl[C_NCOMP])], word_slots=len(ctab),
        count=count, transitions=int(ctl[C_TRANS]), depth=int(ctl[C_DEPTH]),
        deadlocks=int(ctl[C_NDEAD]), first_deadlock=int(ctl[C_FIRST_DEAD]),
        edge_start=estart[:count + 1] if graph else None,
        edge_dst=edst[:nedge] if graph else None,
        edge_code=ecode[:nedge] if graph else None,
        watched=(watched[0][:nwatch], watched[1][:nwatch]),
        budget_reason=budget, table_slots=len(table),
    )
    out.parent.bind(out)
    return out


class Parents(Sequence[int]):
    """The breadth-first parent of each state, found when asked: the first
    state of the layer before with a transition to it (what the search would
    have stored), remembered once found. ``-1`` for the initial state."""

    def __init__(self, layers: list[int], count: int, *args: Any) -> None:
        self.layers = layers
        """Index of the first state of each layer (layer 0 at index 0)."""
        self._count = count
        self._args = args
        self._searched: Searched | None = None
        self._known: dict[int, int] = {}

    def bind(self, searched: Searched) -> None:
        """Attach the search whose states these are the parents of."""
        self._searched = searched

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> int:  # type: ignore[override]
        if not 0 <= i < self._count:
            raise IndexError(i)
        if i == 0:
            return -1
        known = self._known.get(i)
        if known is not None:
            return known
        assert self._searched is not None
        import bisect

        layer = bisect.bisect_right(self.layers, i) - 1
        lo, hi = self.layers[layer - 1], self.layers[layer]
        g = compiled()
        assert g is not None
        tab, fm, fword, fshift, fmax, w = self._args
        got = int(g["_find_parent"](tab, fm, fword, fshift, fmax, w,
                                    self._searched.states,
                                    self._searched.cvals, lo, hi, i))
        if got < 0:
            raise AssertionError(f"state {i} has no parent in its layer")
        self._known[i] = got
        return got


def _tuples(arr: Any, largest: int) -> list[tuple[int, ...]]:
    """Rows of an int matrix as tuples; through bytes when every field fits
    in one (``tuple(bytes)`` runs in C, ``ndarray.tolist`` boxes each int)."""
    if largest > 255 or not arr.size:
        return [tuple(r) for r in arr.tolist()]
    width = arr.shape[1]
    raw = arr.astype("uint8").tobytes()
    return [tuple(raw[b:b + width]) for b in range(0, len(raw), width)]


class _Rows(Protocol):
    """What :class:`PackedStates` reads: a saga search's :class:`Searched` or
    a workflow search's ``Found``."""

    @property
    def count(self) -> int: ...
    def rows(self, lo: int, hi: int) -> list[tuple[int, ...]]: ...
    def state(self, i: int) -> tuple[int, ...]: ...


class PackedStates(Sequence[bytes]):
    """The searched states as the interpreted search keeps them: a sequence of
    ``bytes`` (one per state, unpacked on demand), with ``iter_rows`` for a
    fast pass over all of them as tuples."""

    def __init__(self, searched: _Rows, chunk: int = 1 << 15) -> None:
        self._s = searched
        self._chunk = chunk

    def __len__(self) -> int:
        return self._s.count

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        if not -self._s.count <= i < self._s.count:
            raise IndexError(i)
        return bytes(self._s.state(i % self._s.count))

    def iter_rows(self) -> Iterator[tuple[int, ...]]:
        """Every state as a tuple, in index order, unpacked a chunk at a time."""
        for lo in range(0, self._s.count, self._chunk):
            yield from self._s.rows(lo, min(lo + self._chunk, self._s.count))

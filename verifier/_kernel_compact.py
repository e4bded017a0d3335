"""Hash compaction and bitstate storage for the compiled search (SPIN's
``-DHC`` and ``-DBITSTATE``), for models beyond memory.

The breadth-first search of :mod:`verifier._kernel_bfs` keeps every state.
Here the visited set keeps less:

* **hash compaction**: a 64-bit fingerprint of each packed state, in an
  open-addressing table of fingerprints (8 bytes a slot, load at most 0.7);
* **bitstate** (supertrace): ``k`` bits of a ``2**bits`` bit array per state
  (double hashing from the fingerprint), a fixed size chosen up front.

Two different states may share a fingerprint (or all ``k`` bits): then the
second is taken for visited and never explored, nor anything only it leads
to. So a search that finds no violation proves nothing: every property it
would call ``holds`` is ``unknown``, with the estimated probability that a
state was missed (:class:`Omission`). A violation it finds is real: the
counterexample is rebuilt by replaying, through the interpreted semantics,
the event positions recorded on the way (a 32-bit parent index and a 16-bit
event position per state, 6 bytes), and the property is evaluated again on
the replayed state before it is reported.

Only the two layers being searched are kept in full (the layer expanded and
the layer it discovers), so the properties are evaluated as states are found:
after each chunk of the search, on the chunk's new states and on its watched
transitions, in search order. With no collision the states, their indices,
the counts and the counterexamples are exactly those of the full search. The
fair-cycle search (livelock) needs every edge, which neither mode keeps:
termination is violated here only by a deadlock, else ``unknown``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from saga_models import _kernel as K
from saga_models import semantics as sem
from saga_models._kernel import (
    HEADER,
    P_COMPLETED,
    T_N,
    WIDTH,
    enabled_codes,
    step_into,
)

from . import _kernel_bfs as kb
from ._kernel_bfs import _hash, _pack

if TYPE_CHECKING:
    from ._ts import Property, StateT, TransitionSystem

np: Any = None
"""numpy, bound in the compiled functions' namespace."""

HASH_COMPACT, BITSTATE = 0, 1
DEFAULT_BITS = 30
"""``--bitstate`` without a size: ``2**30`` bits (128 MiB)."""
MIN_BITS, MAX_BITS = 10, 40
DEFAULT_K = 3
"""Bits set per state in bitstate mode (SPIN's default ``-k3``)."""

# --- control block ------------------------------------------------------------
(X_HEAD, X_NCUR, X_COUNT, X_NNEXT, X_TRANS, X_NWATCH, X_NDEAD, X_FIRST_DEAD,
 X_BAD_CODE, X_FILLED, X_LAYER0) = range(11)
NXCTL = 11
S_LAYER = 6
"""Status: the layer being expanded is done (the others are kb.S_*)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Compaction:
    """How the visited set is stored when it is not stored in full."""

    mode: str
    """``hash-compact`` or ``bitstate``."""
    bits: int = DEFAULT_BITS
    """Bitstate only: the bit array has ``2**bits`` bits."""
    hashes: int = DEFAULT_K
    """Bitstate only: bits set per state."""

    def __post_init__(self) -> None:
        if self.mode not in {"hash-compact", "bitstate"}:
            raise ValueError(f"mode={self.mode!r}; use hash-compact or bitstate")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise ValueError(f"bits={self.bits!r} must be from {MIN_BITS} to "
                             f"{MAX_BITS} (the array has 2**bits bits)")
        if not 1 <= self.hashes <= 8:
            raise ValueError(f"hashes={self.hashes!r} must be from 1 to 8")

    @classmethod
    def parse(cls, text: str) -> Compaction:
        """``hash-compact``, ``bitstate`` or ``bitstate=BITS`` (the array has
        ``2**BITS`` bits).

        >>> Compaction.parse("bitstate=28").bits
        28
        """
        mode, _, size = text.partition("=")
        if mode == "hash-compact" and not size:
            return cls(mode=mode)
        if mode == "bitstate":
            if not size:
                return cls(mode=mode)
            if size.isdigit():
                return cls(mode=mode, bits=int(size))
        raise ValueError(f"compaction={text!r}; use hash-compact, bitstate or "
                         f"bitstate=BITS ({MIN_BITS} to {MAX_BITS})")

    def describe(self) -> str:
        """The storage in words, for a verdict."""
        if self.mode == "hash-compact":
            return "hash compaction (64-bit fingerprints)"
        size = (1 << self.bits) // 8
        return (f"bitstate ({self.hashes} bits per state in 2**{self.bits} "
                f"bits, {_size_text(size)})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Omission:
    """The estimate a lossy search reports (SPIN prints the same kind)."""

    storage: str
    """:meth:`Compaction.describe`."""
    stored: int
    """States stored (each distinct as far as the visited set could tell)."""
    expected_missed: float
    """The expected number of states wrongly taken for visited: for each
    stored state, the probability that it would have been, summed."""

    @property
    def probability(self) -> float:
        """An upper bound on the probability that any state was missed
        (Markov's inequality on :attr:`expected_missed`), at most 1."""
        return min(1.0, self.expected_missed)

    def note(self) -> str:
        """One line for the verdict."""
        return (f"{self.storage}: estimated probability that a state was "
                f"missed <= {self.probability:.2g}")


def _size_text(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


# --- compiled (names resolved in the kernel's namespace, see _compiled) --------
def _fingerprint(words: Any, base: int, w: int) -> int:
    """A 64-bit fingerprint of the packed state, never 0 (0 marks a free slot):
    the search's hash, then MurmurHash3's finaliser so every bit depends on
    every word (the low bits pick the slot, all 64 are compared)."""
    h = _hash(words, base, w)
    h ^= (h >> 33) & 0x7FFFFFFF
    h *= -49064778989728563  # 0xff51afd7ed558ccd, wraps like uint64
    h ^= (h >> 33) & 0x7FFFFFFF
    h *= -4265267296055464877  # 0xc4ceb9fe1a85ec53
    h ^= (h >> 33) & 0x7FFFFFFF
    if h == 0:
        h = 1
    return h


def _seen_or_add(  # noqa: PLR0917 - numba compiles positional calls only
    mode: int, table: Any, fp: int, k: int, ctl: Any, add: bool,
) -> bool:
    """Whether ``fp`` is in the visited set; adds it when it is not and
    ``add`` (one function for both, so a lookup probes exactly the slots or
    bits that adding sets)."""
    if mode == 0:
        mask = len(table) - 1
        h = fp & mask
        while table[h] != 0:
            if table[h] == fp:
                return True
            h = (h + 1) & mask
        if add:
            table[h] = fp
            ctl[9] += 1
        return False
    nbits = len(table) * 64
    h2 = fp ^ 0x5BD1E9955BD1E995
    h2 ^= (h2 >> 29) & 0x7FFFFFFFF
    h2 *= -7046029254386353131
    h2 |= 1  # odd: the k probes are distinct
    seen = True
    for i in range(k):
        b = (fp + i * h2) & (nbits - 1)
        word = b >> 6
        bit = 1 << (b & 63)
        if table[word] & bit == 0:
            if not add:
                return False
            seen = False
            table[word] |= bit
            ctl[9] += 1
    return seen


def _regrow(old: Any, new: Any) -> None:
    """Move every fingerprint of ``old`` into the larger table ``new``."""
    mask = len(new) - 1
    for x in range(len(old)):
        fp = old[x]
        if fp != 0:
            h = fp & mask
            while new[h] != 0:
                h = (h + 1) & mask
            new[h] = fp


def _csearch(  # noqa: PLR0917 - numba compiles positional calls only
    tab: Any, fm: Any, fword: Any, fshift: Any, fmax: Any, w: int,
    mode: int, table: Any, k: int, cur: Any, nxt: Any, parent: Any, pos: Any,
    watch: int, wsrc: Any, wpos: Any, wcode: Any, wsw: Any, wdw: Any,
    ctl: Any, missed: Any, max_states: int, head_stop: int,
) -> int:
    n = tab[T_N]
    length = HEADER + WIDTH * n
    m = 24 * n + 8
    buf = np.zeros(m, np.int64)
    s = np.zeros(length, np.int64)
    d = np.zeros(length, np.int64)
    words = np.zeros(w, np.int64)
    head = ctl[0]
    ncur = ctl[1]
    nbits = len(table) * 64.0
    while head < ncur:
        if head >= head_stop:
            ctl[0] = head
            return 1
        if (ctl[2] + m > len(parent) or (ctl[3] + m) * w > len(nxt)
                or ctl[5] + m > len(wsrc)
                or (mode == 0 and (ctl[9] + m) * 10 > len(table) * 7)):
            ctl[0] = head
            return 2
        src = ctl[10] + head
        b = head * w
        for f in range(length):
            s[f] = (cur[b + fword[f]] >> fshift[f]) & fmax[f]
        kk = enabled_codes(s, tab, fm, buf)
        if kk == 0 and s[0] < P_COMPLETED:
            if ctl[6] == 0:
                ctl[7] = src
            ctl[6] += 1
        for e in range(kk):
            code = buf[e]
            for f in range(length):
                d[f] = s[f]
            if step_into(d, tab, code) != 0:
                ctl[0] = head
                ctl[8] = code
                return 5
            ctl[4] += 1
            if not _pack(d, length, fword, fshift, fmax, words, w):
                ctl[0] = head
                return 4
            fp = _fingerprint(words, 0, w)
            if ctl[2] >= max_states:
                # Only a lookup: the budget stops the search at the first
                # state it cannot store, as the full search does.
                if not _seen_or_add(mode, table, fp, k, ctl, False):
                    ctl[0] = head
                    return 3
            elif not _seen_or_add(mode, table, fp, k, ctl, True):
                # The probability that this state would have been taken for
                # visited, had it been one already stored: the expected
                # number of states missed is the sum over stored states.
                if mode == 0:
                    missed[0] += ctl[2] / 18446744073709551616.0
                else:
                    fill = ctl[9] / nbits
                    missed[0] += fill ** k
                j = ctl[2]
                parent[j] = src
                pos[j] = e
                q = ctl[3]
                for x in range(w):
                    nxt[q * w + x] = words[x]
                ctl[3] = q + 1
                ctl[2] = j + 1
            if (watch >> (code & 15)) & 1:
                q = ctl[5]
                wsrc[q] = src
                wpos[q] = e
                wcode[q] = code
                for x in range(w):
                    wsw[q * w + x] = cur[b + x]
                    wdw[q * w + x] = words[x]
                ctl[5] = q + 1
        head += 1
    ctl[0] = head
    return S_LAYER


@functools.cache
def _compiled() -> dict[str, Any] | None:
    """The compiled lossy search, in the namespace of the compiled kernel
    (cached on disk beside it), or None without numba."""
    return kb.extend(__file__, globals(), (
        _fingerprint, _seen_or_add, _regrow, _csearch))


def available(ts: TransitionSystem) -> bool:
    """Whether a lossy search can run on ``ts`` (a single saga, numba
    installed, its state packed in at most :data:`kb.MAX_WORDS` words)."""
    from importlib.util import find_spec

    from ._saga_ts import SagaTransitionSystem

    if type(ts) is not SagaTransitionSystem or find_spec("numba") is None:
        return False
    return kb.packing(ts.saga, ts.faults) is not None


# --- the driver --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Violation:
    """The first violation of a property in search order."""

    index: int
    """The violating state, or the source of the violating transition."""
    message: str
    label: object = None
    """For a transition: the event taken ..."""
    target: tuple[int, ...] | None = None
    """... and the state it led to."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LossySearch:
    """What a lossy search found (see :func:`search`)."""

    states: ReplayedStates
    parent: Any
    """int32 parent index per state (-1 for the initial state)."""
    found: dict[str, Violation]
    deadlock: int | None
    """The first deadlocked state, or None."""
    transitions: int
    depth: int
    budget_reason: str
    omission: Omission


class ReplayedStates(Sequence[bytes]):
    """The states of a lossy search, as far as they can be had: a state is
    rebuilt on demand by replaying, through the interpreted semantics, the
    event positions recorded from the initial state to it (only
    counterexamples ask, a path at a time)."""

    def __init__(self, ts: TransitionSystem, parent: Any, pos: Any,
                 count: int) -> None:
        self._ts = ts
        self._parent = parent
        self._pos = pos
        self._count = count
        self._cache: dict[int, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        if not 0 <= i < self._count:
            raise IndexError(i)
        return bytes(self.state(i))

    def __iter__(self) -> Iterator[bytes]:
        raise TypeError("a lossy search keeps no states to iterate over")

    def state(self, i: int) -> tuple[int, ...]:
        """State ``i``, replayed."""
        return self.step(i)[1]

    def step(self, i: int) -> tuple[object, tuple[int, ...]]:
        """(the event that discovered state ``i``, state ``i``), replayed;
        the event is None for the initial state."""
        chain = []
        while i > 0 and i not in self._cache:
            chain.append(i)
            i = int(self._parent[i])
        here: tuple[int, ...]
        label: object = None
        if i == 0 and 0 not in self._cache:
            (init,) = self._ts.initial()
            self._cache[0] = tuple(init)
        here = self._cache[i]
        for j in reversed(chain):
            succ = self._ts.successors(here)
            label, nxt = succ[int(self._pos[j])]
            here = tuple(nxt)
            self._cache[j] = here
        return label, here


def search(
    ts: TransitionSystem, props: list[Property], compaction: Compaction, *,
    max_states: int, check: Callable[[int, int], str],
    chunk: int = 1 << 15,
) -> LossySearch | None:
    """Search ``ts`` breadth-first with a lossy visited set, evaluating
    ``props`` (safety parts) as states are found; None when it cannot run."""
    g = _compiled()
    pack = kb.packing(ts.saga, ts.faults)  # type: ignore[attr-defined]
    if g is None or pack is None:
        return None
    np_ = g["np"]
    saga, faults = ts.saga, ts.faults  # type: ignore[attr-defined]
    tab = np_.array(sem.lower(saga), np_.int64)
    fm = np_.array(sem.fault_vector(faults), np_.int64)
    fword, fshift, fmax = pack.arrays(np_)
    w = pack.words
    m = K.max_events(len(saga.steps))
    hash_mode = compaction.mode == "hash-compact"
    mode = HASH_COMPACT if hash_mode else BITSTATE
    table = (np_.zeros(1 << 12, np_.int64) if hash_mode
             else np_.zeros(1 << (compaction.bits - 6), np_.int64))
    k = compaction.hashes
    cap = 1 << 12
    cur = np_.zeros(cap * w, np_.int64)
    nxt = np_.zeros(cap * w, np_.int64)
    parent = np_.zeros(cap, np_.int32)
    pos = np_.zeros(cap, np_.uint16)
    wcap = 4 * m
    wsrc = np_.zeros(wcap, np_.int64)
    wpos = np_.zeros(wcap, np_.int64)
    wcode = np_.zeros(wcap, np_.int64)
    wsw = np_.zeros(wcap * w, np_.int64)
    wdw = np_.zeros(wcap * w, np_.int64)
    ctl = np_.zeros(NXCTL, np_.int64)
    missed = np_.zeros(1, np_.float64)

    init = sem.initial_state(saga)
    for f, v in enumerate(init):
        cur[pack.fword[f]] |= v << pack.fshift[f]
    g["_seen_or_add"](mode, table, g["_fingerprint"](cur, 0, w), k, ctl, True)
    parent[0] = -1
    ctl[X_COUNT] = 1
    ctl[X_NCUR] = 1

    state_props = [p for p in props if p.on_state is not None
                   or p.on_terminal is not None]
    trans_props = [p for p in props if p.on_transition is not None]
    watch = 0
    for kind in getattr(ts, "transition_kinds", ()) if trans_props else ():
        watch |= 1 << (sem.encode_event(sem.Event(kind)) & 15)
    first: dict[str, tuple[tuple[int, int], Violation]] = {}
    names = {p.name for p in (*state_props, *trans_props)}

    def unpack(arr: Any, lo: int, hi: int) -> list[tuple[int, ...]]:
        rows = g["_unpack_words"](arr, lo, hi, w, fword, fshift, fmax)
        return kb._tuples(rows, max(pack.fmax))

    def visit_states(rows: list[tuple[int, ...]], idx0: int) -> None:
        for r, st in enumerate(rows):
            if len(first) == len(names):
                return  # nothing later in search order can replace them
            idx = idx0 + r
            term = ts.is_terminal(st)
            when = ((-1, -1) if idx == 0
                    else (int(parent[idx]), int(pos[idx])))
            for p in state_props:
                if p.name in first and first[p.name][0] <= when:
                    continue
                msg = p.on_state(st) if p.on_state is not None else None
                if not msg and term and p.on_terminal is not None:
                    msg = p.on_terminal(st)
                if msg:
                    first[p.name] = (when, Violation(idx, msg))

    def visit_watched(nw: int) -> None:
        if not nw or not trans_props:
            return
        srcs = unpack(wsw, 0, nw)
        dsts = unpack(wdw, 0, nw)
        for q in range(nw):
            when = (int(wsrc[q]), int(wpos[q]))
            label = sem.decode_event(int(wcode[q]))
            for p in trans_props:
                # A state found by this very transition was checked first.
                if p.name in first and first[p.name][0] <= when:
                    continue
                msg = p.on_transition(srcs[q], label, dsts[q])  # type: ignore[misc]
                if msg:
                    first[p.name] = (when, Violation(int(wsrc[q]), msg, label,
                                                     dsts[q]))

    visit_states([tuple(init)], 0)
    seen_next = 0  # rows of ``nxt`` already evaluated
    depth = 0
    budget = ""
    while True:
        status = g["_csearch"](tab, fm, fword, fshift, fmax, w, mode, table, k,
                               cur, nxt, parent, pos, watch, wsrc, wpos, wcode,
                               wsw, wdw, ctl, missed, max_states,
                               int(ctl[X_HEAD]) + chunk)
        # Evaluate what this stretch found, in search order: the watched
        # transitions (whose targets may be old states) and the new states.
        nnext = int(ctl[X_NNEXT])
        count = int(ctl[X_COUNT])
        if nnext > seen_next:
            visit_states(unpack(nxt, seen_next, nnext),
                         count - (nnext - seen_next))
            seen_next = nnext
        visit_watched(int(ctl[X_NWATCH]))
        ctl[X_NWATCH] = 0
        if status == S_LAYER:
            if nnext == 0:
                break
            cur, nxt = nxt, cur
            ctl[X_LAYER0] += ctl[X_NCUR]
            ctl[X_NCUR] = nnext
            ctl[X_NNEXT] = 0
            ctl[X_HEAD] = 0
            seen_next = 0
            depth += 1
            if len(nxt) < len(cur):
                nxt = np_.zeros(len(cur), np_.int64)
            budget = check(count, depth)
            if budget:
                break
            continue
        if status == kb.S_PAUSED:
            budget = check(count, depth)
            if budget:
                break
            continue
        if status == kb.S_GROW:
            if count + m > len(parent):
                parent.resize(2 * (count + m), refcheck=False)
                pos.resize(2 * (count + m), refcheck=False)
            if (nnext + m) * w > len(nxt):
                nxt.resize(2 * (nnext + m) * w, refcheck=False)
            if hash_mode and (int(ctl[X_FILLED]) + m) * 10 > len(table) * 7:
                bigger = np_.zeros(2 * len(table), np_.int64)
                g["_regrow"](table, bigger)
                table = bigger
            continue
        if status == kb.S_BUDGET:
            budget = (f"state budget reached: {count:,} states stored "
                      f"(--max-states {max_states:,}) at depth {depth + 1}")
            break
        if status == kb.S_OVERFLOW:
            return None
        raise RuntimeError(
            f"the compiled kernel rejected event code {int(ctl[X_BAD_CODE])} "
            "that it offered: the semantics kernel disagrees with itself")
    count = int(ctl[X_COUNT])
    states = ReplayedStates(ts, parent, pos, count)
    found = {name: f for name, (_, f) in first.items()}
    _confirm(ts, props, found, states)
    deadlocks = [int(ctl[X_FIRST_DEAD])] if ctl[X_NDEAD] else []
    if deadlocks and ts.successors(states.state(deadlocks[0])):
        raise RuntimeError("a deadlock of the compiled search has successors "
                           "when replayed: the kernel disagrees with the "
                           "semantics")
    omission = Omission(storage=compaction.describe(), stored=count,
                        expected_missed=float(missed[0]))
    return LossySearch(states=states, parent=parent[:count], found=found,
                       deadlock=deadlocks[0] if deadlocks else None,
                       transitions=int(ctl[X_TRANS]), depth=depth,
                       budget_reason=budget, omission=omission)


def _confirm(ts: TransitionSystem, props: list[Property],
             found: dict[str, Violation], states: ReplayedStates) -> None:
    """Replay each violation through the interpreted semantics and evaluate
    the property again there: a lossy search reports only what it confirms
    (a disagreement is a bug in the kernel, not a verdict)."""
    by_name = {p.name: p for p in props}
    for name, f in found.items():
        p = by_name[name]
        st: StateT = states.state(f.index)
        if f.target is not None:
            msg = None
            for label, nxt in ts.successors(st):
                if label == f.label and tuple(nxt) == tuple(f.target):
                    msg = p.on_transition(st, label, tuple(nxt))  # type: ignore[misc]
                    break
        else:
            msg = p.on_state(st) if p.on_state is not None else None
            if not msg and ts.is_terminal(st) and p.on_terminal is not None:
                msg = p.on_terminal(st)
        if msg != f.message:
            raise RuntimeError(
                f"{name}: the violation the compiled search found is not one "
                f"when replayed through the semantics ({f.message!r} against "
                f"{msg!r})")


def lossy_reason(omission: Omission, *, liveness: bool, complete_only: bool,
                 budget: str) -> str:
    """Why a property with no violation found is ``unknown`` after a lossy
    search."""
    if budget:
        return f"{budget}; {omission.note()}"
    if liveness:
        return (f"no deadlock in {omission.stored:,} states, but the fair-cycle "
                f"search needs every edge, which {omission.storage.split(' (')[0]}"
                f" does not keep; {omission.note()}")
    if complete_only:
        return (f"this property needs every reachable state, which "
                f"{omission.storage.split(' (')[0]} does not keep; "
                f"{omission.note()}")
    return (f"no violation in {omission.stored:,} states, but states may have "
            f"been missed: {omission.note()}")


def expected_missed_bound(n: int) -> float:
    """Hash compaction's expected number of missed states after storing ``n``
    (each new state collides with one of the ``i`` stored with probability
    ``i / 2**64``): ``n(n-1)/2**65``.

    >>> f"{expected_missed_bound(10_000_000):.2g}"
    '2.7e-06'
    """
    return n * (n - 1) / math.ldexp(1.0, 65)


"""SagaBench (../shared/bench/SAGABENCH.md) reproduced by a checked mapping.

SagaBench's K sagas share one ``stock`` counter; its state is ``stock`` and,
per saga, ``(phase, k, retries)``. The sagaproof definition
(``sagabench_a.saga.yaml``, or :func:`sagabench_definition`) has an ``open``
step first (participant ``ledger``, retried forever, no effect on the stock)
whose compensation ``mark_aborted`` is SagaBench's ``Abort`` action, then the
N stock steps. It is explored with transient failures only (``--faults fail``)
and no reduction, with ``keep_attempts`` (a step that fails for good keeps its
attempt count: SagaBench keeps an aborted saga's ``retries``, sagaproof's
dead-variable reduction forgets it; see bench/RESULTS.md).

The check, for every configuration it runs on:

1. an independent enumerator of SAGABENCH.md, written here, gives the
   reachable states and transitions;
2. every reachable sagaproof state, projected onto SagaBench's variables by
   :func:`project`, is a SagaBench state, and every SagaBench state is such a
   projection: the two sets are **equal** (no normalisation);
3. every sagaproof transition projects to a stutter or to a SagaBench
   transition, and every SagaBench transition is the projection of one.

For configurations A to C the same check runs on packed states
(:class:`PackedComposition`), and for C up to permutations of the identical
instances (:meth:`PackedComposition.explore_symmetric`, or its numba form
:meth:`PackedComposition.explore_compiled`): one representative per orbit,
the full system's states and transitions counted exactly from orbit sizes,
and the two projected sets compared by their representatives
(:func:`symmetric_packed_check`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from saga_models import loads
from saga_models import semantics as sem
from saga_models._ir import CompensationChain, Saga
from saga_models.instances import BIAS
from saga_models.semantics import (
    AT,
    CS,
    EF,
    HEADER,
    PHASE,
    ST,
    WIDTH,
    CompStatus,
    Phase,
    Status,
)
from verifier._explicit import explore
from verifier._multi_ts import MultiSagaTransitionSystem
from verifier._result import Verdict

FWD, COMP, COMMITTED, ABORTED = range(4)
EXAMPLE = Path(__file__).parent / "sagabench_a.saga.yaml"

SbState = tuple[int, ...]
SbEdges = set[tuple[SbState, SbState]]


def saga_moves(stock: int, phase: int, held: int, retries: int, *, n: int,
               r: int, abort_at: int = 0) -> list[tuple[int, int, int, int]]:
    """SAGABENCH.md's five actions for one saga: every ``(stock, phase, k,
    retries)`` it can move to. ``abort_at=1`` is the seeded bug (``Abort``
    enabled at ``k <= 1``)."""
    out = []
    if phase == FWD and held < n:
        if stock > 0:  # StepOk
            out.append((stock - 1, COMMITTED if held + 1 == n else FWD,
                        held + 1, 0))
        if retries < r:  # Retry
            out.append((stock, FWD, held, retries + 1))
        if retries == r or stock == 0:  # Fail
            out.append((stock, COMP, held, retries))
    if phase == COMP and held > 0:  # Compensate
        out.append((stock + 1, COMP, held - 1, retries))
    if phase == COMP and held <= abort_at:  # Abort
        out.append((stock, ABORTED, held, retries))
    return out


def sagabench_states(k: int, n: int, r: int, total: int, *, abort_at: int = 0,
                     with_edges: bool = True) -> tuple[set[SbState], SbEdges]:
    """SAGABENCH.md's reachable states (and transitions), by plain search.

    A state is ``(stock, phase_1, k_1, retries_1, ..., phase_K, k_K,
    retries_K)``.
    """
    init = (total, *(FWD, 0, 0) * k)
    seen = {init}
    edges: SbEdges = set()
    todo = [init]
    while todo:
        s = todo.pop()
        for i in range(k):
            b = 1 + 3 * i
            for stock, ph, held, retries in saga_moves(s[0], *s[b:b + 3], n=n, r=r,
                                                       abort_at=abort_at):
                t = (stock, *s[1:b], ph, held, retries, *s[b + 3:])
                if with_edges:
                    edges.add((s, t))
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
    return seen, edges


# --- sagaproof's side ------------------------------------------------------------
def sagabench_definition(k: int, n: int, r: int, total: int) -> str:
    """The SagaBench saga as sagaproof YAML (config A is the shipped example)."""
    opener = ("  - {name: open, participant: ledger, action: open, "
              "compensation: mark_aborted, retry: {max_attempts: forever}}\n")
    step = ("  - {{name: s{j}, participant: warehouse, action: take, "
            "compensation: give_back, retry: {{max_attempts: {a}}}, "
            "effect: {{guard: 'stock > 0', update: {{stock: 'stock - 1'}}}}, "
            "compensation_effect: {{update: {{stock: 'stock + 1'}}}}}}\n")
    return (f"saga: sagabench\ninstances: {k}\nresources: {{stock: {{initial: "
            f"{total}}}}}\nsteps:\n" + opener
            + "".join(step.format(j=j + 1, a=r + 1) for j in range(n)))


def sagabench_system(saga: Saga, k: int, *,
                     keep_attempts: bool = True) -> MultiSagaTransitionSystem:
    """K instances, SagaBench's faults (transient failures), no reduction."""
    return MultiSagaTransitionSystem([saga] * k, sem.FaultModel.parse("fail"),
                                     track_anomalies=False,
                                     keep_attempts=keep_attempts)


Step = tuple[int, int, int, int]
"""One step of a single saga state as (status, attempts, effect,
compensation status)."""


@functools.cache
def project_instance(phase: int, steps: tuple[Step, ...]) -> tuple[int, int, int]:
    """One sagaproof instance as SagaBench's ``(phase, k, retries)``.

    ``steps[0]`` is ``open``; ``k`` is the number of stock steps whose effect
    is held; ``retries`` is the failed attempts of the step in progress (an
    attempt in flight has not failed yet) or, once the saga aborts, of the
    step that failed for good (its attempts less the last one). SagaBench's
    ``Abort`` is the dispatch of ``open``'s compensation (``mark_aborted``).
    """
    n = len(steps) - 1
    held = sum(ef for _, _, ef, _ in steps[1:])
    if phase == Phase.COMPLETED:
        return (COMMITTED, n, 0)
    if phase == Phase.RUNNING:
        if steps[0][0] != Status.OK:
            return (FWD, 0, 0)
        st, at, _, _ = steps[1 + held]
        retries = {Status.PENDING: 0, Status.RUNNING: at - 1,
                   Status.RETRY_FAILED: at}[Status(st)]
        return (FWD, held, retries)
    (failed_at,) = [at for st, at, _, _ in steps if st == Status.FAILED]
    assert phase in (Phase.COMPENSATING, Phase.COMPENSATED), Phase(phase)
    aborted = steps[0][3] != CompStatus.NONE
    return (ABORTED if aborted else COMP, held, failed_at - 1)


def project(ts: MultiSagaTransitionSystem, state: Sequence[int]) -> SbState:
    """A sagaproof state as SagaBench's variables."""
    out = [state[0] - BIAS]
    for inst in ts.comp.instances:
        o = inst.off + HEADER
        out += project_instance(state[inst.off + PHASE], tuple(
            (state[b + ST], state[b + AT], state[b + EF], state[b + CS])
            for b in range(o, inst.loc, WIDTH)))
    return tuple(out)


def project_json(state: dict[str, object]) -> SbState:
    """A state of a counterexample (its JSON form) as SagaBench's variables."""
    resources = state["resources"]
    assert isinstance(resources, dict)
    out = [resources["stock"]]
    instances = state["instances"]
    assert isinstance(instances, list)
    for inst in instances:
        out += project_instance(Phase[inst["phase"]], tuple(
            (Status[v["status"]], v["attempts"], v["effect"],
             CompStatus[v["compensation"]])
            for v in inst["steps"].values()))
    return tuple(out)


Reference = Callable[[int, int, int, int], tuple[set[SbState], SbEdges]]


def cross_validate(k: int, n: int, r: int, total: int, *,
                   reference: Reference = sagabench_states,
                   keep_attempts: bool = True) -> tuple[int, int]:
    """Run the three checks; return (SagaBench states, sagaproof states)."""
    ref, ref_edges = reference(k, n, r, total)
    ts = sagabench_system(loads(sagabench_definition(k, n, r, total)), k,
                          keep_attempts=keep_attempts)
    (init,) = ts.initial()
    seen = {bytes(init)}
    todo = [init]
    projected = set()
    moves = set()
    while todo:
        s = todo.pop()
        ps = project(ts, s)
        projected.add(ps)
        for label, t in ts.successors(s):
            pt = project(ts, t)
            if pt != ps:
                if (ps, pt) not in ref_edges:
                    raise AssertionError(f"{ps} -> {pt} by {label} is no "
                                         "SagaBench move")
                moves.add((ps, pt))
            key = bytes(t)
            if key not in seen:
                seen.add(key)
                todo.append(t)
    assert projected == ref, (f"the projected set has {len(projected)} states, "
                              f"SagaBench {len(ref)}")
    assert moves == ref_edges, "some SagaBench move is no projected move"
    return len(ref), len(seen)


# --- the same check, with compact storage, for configurations A to C ----------
BITS = 8
"""Bits per instance block id in a packed state (at most 256 blocks)."""
MASK = (1 << BITS) - 1
SB_BITS = 6
"""Bits per saga in a packed SagaBench state: (phase, k, retries)."""


def pack_reference(states: set[SbState], n: int, r: int) -> np.ndarray:
    """The enumerator's states as sorted uint64, packed like
    :meth:`PackedComposition.projected`."""
    out = np.empty(len(states), dtype=np.uint64)
    for pos, s in enumerate(states):
        p = s[0]
        for i in range(1, len(s), 3):
            ph, held, retries = s[i:i + 3]
            p |= ((ph * (n + 1) + held) * (r + 1) + retries) << (
                8 + SB_BITS * (i // 3))
        out[pos] = p
    out.sort()
    return out


class PackedComposition:
    """The reachable states of K instances of one saga over one counter, as
    packed ints, with the projection and the simulation check built in.

    An instance's block (its single saga state and its resource bookkeeping)
    is numbered; a composite state is the stock byte and the K block numbers
    in one uint64. Without anomaly history or semantic locks an instance's
    moves depend only on its own block and the resource values (the fact
    ``Composition.concrete_successors`` caches on), so they are computed once
    per (block, stock) with the composition's own successor function, and that
    is where each move is checked against SAGABENCH.md's actions (a stutter or
    :func:`saga_moves` of the saga that moves). Search is breadth-first by
    layers over sorted arrays (numpy), so C's states fit in memory.
    """

    def __init__(self, ts: MultiSagaTransitionSystem, n: int, r: int,
                 total: int) -> None:
        comp = ts.comp
        assert comp.r == 1 and not comp.track and not comp.locks
        self.ts = ts
        self.comp = comp
        self.k, self.n, self.r, self.total = comp.k, n, r, total
        self.init = comp.initial()
        self.bias = self.init[0] - total
        first = comp.instances[0]
        self.lo, self.hi, self.length = first.off, first.end, first.length
        self.blocks: list[tuple[int, ...]] = []
        self.ids: dict[tuple[int, ...], int] = {}
        self.codes: list[int] = []
        self.stutters = 0
        self.moves = 0
        self.complete = False
        """Whether the last :meth:`explore` finished."""
        self._table()

    def _id(self, block: tuple[int, ...]) -> int:
        got = self.ids.get(block)
        if got is None:
            got = self.ids[block] = len(self.blocks)
            assert got <= MASK, "more instance blocks than BITS can number"
            self.blocks.append(block)
            ph, held, retries = project_instance(block[PHASE], tuple(
                (block[b + ST], block[b + AT], block[b + EF], block[b + CS])
                for b in range(HEADER, self.length, WIDTH)))
            self.codes.append((ph * (self.n + 1) + held) * (self.r + 1) + retries)
        return got

    def _decode(self, code: int) -> tuple[int, int, int]:
        rest, retries = divmod(code, self.r + 1)
        ph, held = divmod(rest, self.n + 1)
        return ph, held, retries

    def _table(self) -> None:
        """Every instance move from every block reached, at every stock."""
        self._id(self.init[self.lo:self.hi])
        rows: dict[int, list[tuple[int, int]]] = {}
        todo = [0]
        while todo:
            lid = todo.pop()
            before = self._decode(self.codes[lid])
            for stock in range(self.total + 1):
                state = list(self.init)
                state[0] = stock + self.bias
                state[self.lo:self.hi] = self.blocks[lid]
                allowed = set(saga_moves(stock, *before, n=self.n, r=self.r))
                row = rows.setdefault(lid << 8 | (stock + self.bias), [])
                for ev, t in self.comp.concrete_successors(tuple(state)):
                    if ev.instance != 0:
                        continue
                    assert t[self.hi:] == tuple(state[self.hi:]), ev
                    fresh = t[self.lo:self.hi] not in self.ids
                    nid = self._id(t[self.lo:self.hi])
                    if fresh:
                        todo.append(nid)
                    after = self._decode(self.codes[nid])
                    moved = (t[0] - self.bias, *after)
                    if moved == (stock, *before):
                        self.stutters += 1
                    elif moved not in allowed:
                        raise AssertionError(
                            f"{ev}: saga {before} at stock {stock} -> {moved} "
                            "is no SagaBench action")
                    self.moves += 1
                    row.append((nid, t[0]))
        # Number the blocks in the order of their contents, so that sorting a
        # state's block numbers is Composition.canonical (which sorts blocks
        # by content): the symmetric search stores its representatives.
        order = sorted(range(len(self.blocks)), key=self.blocks.__getitem__)
        renum = [0] * len(order)
        for pos, old in enumerate(order):
            renum[old] = pos
        self.blocks = [self.blocks[old] for old in order]
        self.codes = [self.codes[old] for old in order]
        self.ids = {block: pos for pos, block in enumerate(self.blocks)}
        rows = {renum[key >> 8] << 8 | (key & 255): [(renum[nid], ns)
                                                       for nid, ns in row]
                for key, row in rows.items()}
        width = max(len(v) for v in rows.values())
        self.tgt = np.full(((len(self.blocks)) << 8, width), -1, dtype=np.int64)
        self.ns = np.zeros(((len(self.blocks)) << 8, width), dtype=np.uint64)
        for key, row in rows.items():
            for m, (nid, ns) in enumerate(row):
                self.tgt[key, m] = nid
                self.ns[key, m] = ns

    def initial(self) -> int:
        s = self.init[0]
        for i, inst in enumerate(self.comp.instances):
            s |= self.ids[self.init[inst.off:inst.end]] << (8 + BITS * i)
        return s

    def pack(self, state: Sequence[int]) -> int:
        """A composite state (a tuple of the composition) as a packed int."""
        p = state[0]
        for i, inst in enumerate(self.comp.instances):
            p |= self.ids[tuple(state[inst.off:inst.end])] << (8 + BITS * i)
        return p

    def unpack(self, packed: int) -> tuple[int, ...]:
        """The composite state a packed int stands for."""
        state = list(self.init)
        state[0] = packed & 255
        for i, inst in enumerate(self.comp.instances):
            state[inst.off:inst.end] = self.blocks[packed >> (8 + BITS * i) & MASK]
        return tuple(state)

    def explore(self, *, chunk: int = 1 << 20,
                max_states: int | None = None) -> tuple[np.ndarray, int]:
        """Every reachable packed state (sorted) and the transition count.

        With ``max_states``, stops after the first layer that passes it
        (:attr:`complete` says whether the search finished)."""
        frontier = np.array([self.initial()], dtype=np.uint64)
        seen = _Runs(frontier)
        transitions = 0
        stored = 1
        m8 = np.uint64(255)
        self.complete = False
        while frontier.size:
            if max_states is not None and stored > max_states:
                return seen.sorted(), transitions
            parts = []
            for c in range(0, frontier.size, chunk):
                f = frontier[c:c + chunk]
                stock = f & np.uint64(255)
                succ = []
                for i in range(self.k):
                    sh = np.uint64(8 + BITS * i)
                    key = ((f >> sh) & np.uint64(MASK)) << np.uint64(8) | stock
                    tg = self.tgt[key.astype(np.int64)]
                    valid = tg >= 0
                    transitions += int(valid.sum())
                    base = f & ~((np.uint64(MASK) << sh) | m8)
                    cand = (base[:, None] | (np.where(valid, tg, 0).astype(
                        np.uint64) << sh) | self.ns[key.astype(np.int64)])
                    succ.append(cand[valid])
                parts.append(seen.unseen(_distinct(np.concatenate(succ))))
            frontier = _distinct(np.concatenate(parts))
            stored += frontier.size
            seen.add(frontier)
        self.complete = True
        return seen.sorted(), transitions

    def explore_symmetric(self, *, chunk: int = 1 << 20) -> SymmetricSearch:
        """:meth:`explore` up to permutations of the instances.

        The K instances are identical and the initial state is invariant under
        permuting them, so the reachable set is a union of orbits and the
        successors of a permuted state are the permuted successors. The search
        stores one representative per orbit (the block numbers sorted, which
        is ``Composition.canonical``: blocks are numbered in content order)
        and counts the full system exactly: an orbit has ``K! / prod(m!)``
        states (``m`` the multiplicities of equal blocks), and each of them
        has the representative's number of moves.
        """
        k = self.k
        init, _ = canonical_packed(
            np.array([self.initial()], dtype=np.uint64), k, BITS)
        seen = _Runs(init)
        frontier = init
        states = int(orbit_sizes(_fields(init, k, BITS)).sum())
        transitions = moves = 0
        while frontier.size:
            parts = []
            for c in range(0, frontier.size, chunk):
                f = frontier[c:c + chunk]
                fields = _fields(f, k, BITS)
                orbit = orbit_sizes(fields)
                stock = f & np.uint64(255)
                degree = np.zeros(f.size, dtype=np.int64)
                succ = []
                for i in range(k):
                    key = (fields[:, i] << np.uint64(8) | stock).astype(np.int64)
                    tg = self.tgt[key]
                    valid = tg >= 0
                    degree += valid.sum(axis=1)
                    if i:
                        # An instance equal to the one before it moves to the
                        # same successors, up to permutation: count its moves,
                        # do not generate them twice.
                        valid &= (fields[:, i] != fields[:, i - 1])[:, None]
                    rows, cols = np.nonzero(valid)
                    succ.append(self._insert(fields, i, rows,
                                             tg[rows, cols].astype(np.uint64),
                                             self.ns[key[rows], cols]))
                moves += int(degree.sum())
                transitions += int((orbit * degree).sum())
                parts.append(seen.unseen(_distinct(np.concatenate(succ))))
            frontier = _distinct(np.concatenate(parts))
            states += int(orbit_sizes(_fields(frontier, k, BITS)).sum())
            seen.add(frontier)
        self.complete = True
        return SymmetricSearch(representatives=seen.sorted(), states=states,
                               transitions=transitions, moves=moves)

    def explore_compiled(self) -> SymmetricSearch:
        """:meth:`explore_symmetric` compiled with numba (the ``fast`` extra):
        the same representatives (in layer order, not sorted) and the same
        exact counts, found once each through a bitmap over the rank of
        (stock, sorted blocks) instead of sorted runs. The first call in a
        process compiles (:func:`_compiled_layer`)."""
        layer = _compiled_layer()
        k, nb = self.k, len(self.blocks)
        # binom[c, j] = C(c, j): (stock, sorted blocks b_0 <= ... <= b_K-1)
        # is ranked as sum C(b_j + j, j + 1) (the combinatorial number system
        # on b_j + j, strictly increasing), below C(nb + K - 1, K).
        binom = np.array([[math.comb(c, j) for j in range(k + 1)]
                          for c in range(nb + k)], dtype=np.int64)
        per_stock = math.comb(nb + k - 1, k)
        # The compiled layer indexes without bounds checks: the bitmap covers
        # every stock a move of the table lands on (the table has moves from
        # unreachable (block, stock) pairs too, such as a give-back at the
        # full stock), and every move lands on a numbered block.
        landed = self.ns[self.tgt >= 0].astype(np.int64) - self.bias
        assert landed.size and landed.min() >= 0
        assert int(self.tgt.max()) < nb
        visited = np.zeros(((int(landed.max()) + 1) * per_stock + 7) // 8,
                           dtype=np.uint8)
        init, _ = canonical_packed(
            np.array([self.initial()], dtype=np.uint64), k, BITS)
        frontier = init.view(np.int64)
        tgt, ns = self.tgt, self.ns.view(np.int64)
        first = int(init[0])
        rank = sum(math.comb((first >> (8 + BITS * j) & MASK) + j, j + 1)
                   for j in range(k))
        rank += ((first & 255) - self.bias) * per_stock
        visited[rank >> 3] |= 1 << (rank & 7)
        found = [frontier]
        states = transitions = moves = 0
        while frontier.size:
            frontier, orbits, weighted, out = layer(
                frontier, tgt, ns, visited, binom, k, per_stock, self.bias)
            states += orbits
            transitions += weighted
            moves += out
            found.append(frontier)
        self.complete = True
        return SymmetricSearch(
            representatives=np.concatenate(found).view(np.uint64),
            states=states, transitions=transitions, moves=moves)

    def _insert(self, fields: np.ndarray, i: int, rows: np.ndarray,
                block: np.ndarray, stock: np.ndarray) -> np.ndarray:
        """The representatives of the states ``fields[rows]`` (sorted block
        numbers) with instance ``i`` moved to ``block`` and the stock byte
        ``stock``: the other blocks stay sorted, so ``block`` is inserted
        among them (a merge, not a sort: the representatives are those of
        :func:`canonical_packed`, which the tests compare)."""
        out = stock.copy()
        below = np.zeros(rows.size, dtype=np.uint64)
        for pos, j in enumerate(x for x in range(self.k) if x != i):
            other = fields[rows, j]
            # Blocks not below the moved one shift up one place.
            above = (other >= block).astype(np.uint64)
            below += np.uint64(1) - above
            out |= other << (np.uint64(8 + BITS * pos) + above * np.uint64(BITS))
        out |= block << (np.uint64(8) + below * np.uint64(BITS))
        return out

    def projected(self, states: np.ndarray, *, chunk: int = 1 << 22) -> np.ndarray:
        """The states projected onto SagaBench's variables, sorted, distinct."""
        codes = np.array(self.codes, dtype=np.uint64)
        parts = []
        for c in range(0, states.size, chunk):
            f = states[c:c + chunk]
            p = (f & np.uint64(255)) - np.uint64(self.bias)
            for i in range(self.k):
                lid = (f >> np.uint64(8 + BITS * i)) & np.uint64(MASK)
                p |= codes[lid.astype(np.int64)] << np.uint64(8 + SB_BITS * i)
            parts.append(_distinct(p))
        return _distinct(np.concatenate(parts))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SymmetricSearch:
    """What :meth:`PackedComposition.explore_symmetric` found."""

    representatives: np.ndarray
    """One packed state per orbit (block numbers sorted); the array is sorted
    by :meth:`PackedComposition.explore_symmetric`, in layer order by
    :meth:`PackedComposition.explore_compiled`."""
    states: int
    """The full system's reachable states: the sum of the orbit sizes."""
    transitions: int
    """The full system's transitions (instance moves), counted as
    :meth:`PackedComposition.explore` counts them: each representative's
    moves times its orbit size."""
    moves: int
    """The moves out of the representatives alone."""


# Positional parameters: numba compiles no keyword-only ones.
def _symmetric_layer(  # noqa: PLR0917
        frontier: np.ndarray, tgt: np.ndarray, ns: np.ndarray,
        visited: np.ndarray, binom: np.ndarray, k: int, per_stock: int,
        bias: int) -> tuple[np.ndarray, int, int, int]:
    """One breadth-first layer of :meth:`PackedComposition.explore_compiled`
    (compiled by :func:`_compiled_layer`; all int64, since numba turns mixed
    int64 and uint64 arithmetic into floats).

    Returns the next layer (representatives not seen before, marked in
    ``visited``), the orbit sizes of this layer's states summed, their
    moves times their orbit sizes summed, and their moves.
    """
    width = tgt.shape[1]
    out = np.empty(frontier.size * k * width, dtype=np.int64)
    fields = np.empty(k, dtype=np.int64)
    fact = 1
    for j in range(2, k + 1):
        fact *= j
    found = 0
    orbits = 0
    weighted = 0
    moves = 0
    for s in frontier:
        stock = s & 255
        run = 1
        denominator = 1
        for j in range(k):
            fields[j] = (s >> (8 + 8 * j)) & 255
            if j:
                run = run + 1 if fields[j] == fields[j - 1] else 1
                denominator *= run
        orbit = fact // denominator
        degree = 0
        for i in range(k):
            key = fields[i] << 8 | stock
            for w in range(width):
                block = tgt[key, w]
                if block < 0:
                    break
                degree += 1
                if i and fields[i] == fields[i - 1]:
                    continue  # the same successors as instance i - 1
                new_stock = ns[key, w]
                packed = new_stock
                rank = (new_stock - bias) * per_stock
                pos = 0
                placed = False
                for j in range(k):
                    if j == i:
                        continue
                    if not placed and block <= fields[j]:
                        packed |= block << (8 + 8 * pos)
                        rank += binom[block + pos, pos + 1]
                        pos += 1
                        placed = True
                    packed |= fields[j] << (8 + 8 * pos)
                    rank += binom[fields[j] + pos, pos + 1]
                    pos += 1
                if not placed:
                    packed |= block << (8 + 8 * pos)
                    rank += binom[block + pos, pos + 1]
                bit = np.uint8(1 << (rank & 7))
                if visited[rank >> 3] & bit == 0:
                    visited[rank >> 3] |= bit
                    out[found] = packed
                    found += 1
        orbits += orbit
        weighted += orbit * degree
        moves += degree
    return out[:found], orbits, weighted, moves


@functools.cache
def _compiled_layer() -> Callable[..., tuple[np.ndarray, int, int, int]]:
    """:func:`_symmetric_layer` under ``numba.njit`` (compiled once per
    process; the fast extra)."""
    import numba

    assert BITS == 8  # the layer shifts by whole bytes
    compiled: Callable[..., tuple[np.ndarray, int, int, int]] = numba.njit(
        nogil=True)(_symmetric_layer)
    # Compile now, for the argument types explore_compiled passes, so that
    # its time is not the search's (the bench prints them apart).
    compiled(np.zeros(0, dtype=np.int64), np.full((1, 1), -1, dtype=np.int64),
             np.zeros((1, 1), dtype=np.int64), np.zeros(1, dtype=np.uint8),
             np.ones((1, 1), dtype=np.int64), 1, 1, 0)
    return compiled


def _fields(values: np.ndarray, k: int, bits: int) -> np.ndarray:
    """The K fields of ``bits`` bits above the stock byte, as an (m, K)
    array."""
    mask = np.uint64((1 << bits) - 1)
    return np.stack([(values >> np.uint64(8 + bits * i)) & mask
                     for i in range(k)], axis=1)


def canonical_packed(values: np.ndarray, k: int,
                     bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Each packed state's representative under permutations of its K
    fields (sorted ascending, the smallest in field 0), and those sorted
    fields."""
    fields = np.sort(_fields(values, k, bits), axis=1)
    out = values & np.uint64(255)
    for i in range(k):
        out |= fields[:, i] << np.uint64(8 + bits * i)
    return out, fields


def orbit_sizes(fields: np.ndarray) -> np.ndarray:
    """Per row of sorted fields, how many distinct permutations it has:
    ``K! / prod(m!)`` over the multiplicities ``m`` of equal fields."""
    k = fields.shape[1]
    run = np.ones(fields.shape[0], dtype=np.int64)
    denominator = np.ones(fields.shape[0], dtype=np.int64)
    for j in range(1, k):
        # In a run of m equal fields the running length takes 1, 2, ..., m:
        # their product is m!.
        run = np.where(fields[:, j] == fields[:, j - 1], run + 1, 1)
        denominator *= run
    return math.factorial(k) // denominator


def canonical_projection(values: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Packed SagaBench states (as :func:`pack_reference` packs them) up to
    permutations of the sagas: the distinct representatives, sorted, and
    the sum of their orbit sizes (equal to ``values.size`` exactly when the
    distinct ``values`` are closed under permutation)."""
    reps = _distinct(canonical_packed(values, k, SB_BITS)[0])
    return reps, int(orbit_sizes(_fields(reps, k, SB_BITS)).sum())


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (by sorting: numpy's hashing unique is
    several times slower on these arrays)."""
    out = np.sort(values)
    if out.size:
        out = out[np.concatenate(([True], out[1:] != out[:-1]))]
    return out


def _member(sorted_run: np.ndarray, values: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(sorted_run, values)
    idx[idx == sorted_run.size] = 0
    return np.asarray(sorted_run[idx] == values)


class _Runs:
    """The states a layered search has stored: disjoint sorted runs, merged
    so that each is at least twice the size of the next (a few binary
    searches per membership test, and a merge costs amortised log time)."""

    def __init__(self, first: np.ndarray) -> None:
        self.runs = [first]

    def unseen(self, values: np.ndarray) -> np.ndarray:
        """``values`` (sorted, distinct) without the stored ones."""
        for run in self.runs:
            values = values[~_member(run, values)]
        return values

    def add(self, layer: np.ndarray) -> None:
        """Store a new layer (sorted, distinct, none stored before)."""
        runs = self.runs
        runs.append(layer)
        while len(runs) > 1 and runs[-2].size <= 2 * runs[-1].size:
            # Runs are disjoint and sorted: a stable sort merges them.
            top = runs.pop()
            runs[-1] = np.sort(np.concatenate((runs[-1], top)), kind="stable")

    def sorted(self) -> np.ndarray:
        """Every stored state, sorted."""
        return np.sort(np.concatenate(self.runs), kind="stable")


def packed_check(k: int, n: int, r: int, total: int, *,
                 abort_at: int = 0) -> tuple[int, int, int]:
    """The check of :func:`cross_validate` for a large configuration (every
    sagaproof move is checked, not that every SagaBench move is made): returns
    (SagaBench states, sagaproof states, sagaproof transitions).
    ``abort_at`` seeds the bug into the reference."""
    ref, _ = sagabench_states(k, n, r, total, abort_at=abort_at,
                              with_edges=False)
    reference = pack_reference(ref, n, r)
    del ref
    pc = PackedComposition(sagabench_system(
        loads(sagabench_definition(k, n, r, total)), k), n, r, total)
    states, transitions = pc.explore()
    projected = pc.projected(states)
    assert np.array_equal(projected, reference), (
        f"the projected set has {projected.size} states, SagaBench "
        f"{reference.size}")
    return reference.size, states.size, transitions


def symmetric_packed_check(k: int, n: int, r: int, total: int, *,
                           abort_at: int = 0,
                           compiled: bool = False) -> tuple[int, SymmetricSearch]:
    """:func:`packed_check` up to permutations of the instances: returns
    (SagaBench states, what the symmetric search found; ``compiled``: by
    :meth:`PackedComposition.explore_compiled`).

    Both reachable sets are closed under permuting the sagas (sagaproof's
    because its instances are identical and start alike, SagaBench's checked
    here: the orbit sizes of its representatives add up to its count), and
    the projection commutes with the permutation, so the projected set equals
    SagaBench's exactly when their representatives are equal."""
    ref, _ = sagabench_states(k, n, r, total, abort_at=abort_at,
                              with_edges=False)
    reference = pack_reference(ref, n, r)
    del ref
    ref_reps, ref_orbits = canonical_projection(reference, k)
    assert ref_orbits == reference.size, (
        f"SagaBench's {reference.size} states are not closed under permuting "
        f"the sagas (their orbits hold {ref_orbits})")
    pc = PackedComposition(sagabench_system(
        loads(sagabench_definition(k, n, r, total)), k), n, r, total)
    found = pc.explore_compiled() if compiled else pc.explore_symmetric()
    projected, _ = canonical_projection(pc.projected(found.representatives), k)
    assert np.array_equal(projected, ref_reps), (
        f"the projected set has {projected.size} representatives, SagaBench "
        f"{ref_reps.size}")
    return reference.size, found


@pytest.mark.parametrize(("k", "n", "r", "total"), [
    (1, 2, 1, 1), (2, 2, 1, 3), (2, 3, 2, 4), (3, 2, 1, 3), (3, 2, 2, 2),
])
def test_small_configurations_map_exactly(k: int, n: int, r: int,
                                          total: int) -> None:
    cross_validate(k, n, r, total)


def test_the_seeded_bug_breaks_the_mapping() -> None:
    # The check can fail: SagaBench with its seeded bug (Abort at k <= 1)
    # reaches states (aborted with a step held) that sagaproof never does.
    def buggy(k: int, n: int, r: int, total: int) -> tuple[set[SbState],
                                                            SbEdges]:
        return sagabench_states(k, n, r, total, abort_at=1)

    with pytest.raises(AssertionError, match=r"projected|SagaBench"):
        cross_validate(2, 2, 1, 3, reference=buggy)


def test_forgetting_the_retries_breaks_the_mapping() -> None:
    # Without keep_attempts sagaproof forgets an aborted saga's retries (its
    # dead-variable reduction), so the projection cannot be onto.
    with pytest.raises(AssertionError):
        cross_validate(2, 2, 1, 3, keep_attempts=False)


def test_keep_attempts_changes_no_behaviour() -> None:
    # keep_attempts only tells more states apart: forgetting the kept counts
    # gives exactly the default reachable set, with the same moves.
    saga = loads(sagabench_definition(2, 2, 1, 3))
    faults = sem.FaultModel.parse("fail")
    kept = MultiSagaTransitionSystem([saga] * 2, faults, track_anomalies=False,
                                     keep_attempts=True)
    plain = MultiSagaTransitionSystem([saga] * 2, faults, track_anomalies=False)

    def forget(s: tuple[int, ...]) -> tuple[int, ...]:
        out = list(s)
        for inst in kept.comp.instances:
            for b in range(inst.off + HEADER, inst.loc, WIDTH):
                if out[b + ST] in (Status.FAILED, Status.UNKNOWN):
                    out[b + AT] = 0
        return tuple(out)

    def reach(ts: MultiSagaTransitionSystem, f: Callable[[tuple[int, ...]],
              tuple[int, ...]]) -> tuple[set[tuple[int, ...]], set[object]]:
        (init,) = ts.initial()
        seen, todo = {init}, [init]
        edges: set[object] = set()
        while todo:
            s = todo.pop()
            for label, t in ts.successors(s):
                edges.add((f(s), label, f(t)))
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return {f(s) for s in seen}, edges

    kept_states, kept_edges = reach(kept, forget)
    plain_states, plain_edges = reach(plain, lambda s: s)
    assert kept_states == plain_states
    assert kept_edges == plain_edges
    assert len({s for s in kept_states}) < len(reach(kept, lambda s: s)[0])


def test_the_shipped_definition_is_config_a() -> None:
    from saga_models import load

    shipped = load(EXAMPLE)
    assert shipped.instances == 4
    assert shipped.to_dict()["steps"] == loads(
        sagabench_definition(4, 4, 2, 10)).to_dict()["steps"]
    assert shipped.resources[0].initial == 10


def buggy_saga(n: int, r: int, total: int, k: int) -> Saga:
    """SAGABENCH.md's seeded bug in saga terms: the abort's hand-wired
    compensation chain leaves out ``s1``, so a saga aborts holding it."""
    saga = loads(sagabench_definition(k, n, r, total))
    chain = CompensationChain(
        trigger="*", steps=(*(f"s{j}" for j in range(n, 1, -1)), "open"))
    buggy: Saga = dataclasses.replace(saga, compensation_chains=(chain,))
    return buggy


def seeded_bug_trace(k: int, n: int, r: int, total: int, *,
                     symmetry: bool = False) -> list[SbState]:
    """sagaproof's shortest counterexample for the seeded bug, as SagaBench
    states with the stutters dropped (``symmetry``: found up to permutations
    of the instances, which keeps it shortest, and replayed concretely)."""
    ts = MultiSagaTransitionSystem([buggy_saga(n, r, total, k)] * k,
                                   sem.FaultModel.parse("fail"),
                                   track_anomalies=False, keep_attempts=True,
                                   symmetry=symmetry)
    (result,) = explore(ts, properties=["compensation_completeness"])
    assert result.verdict is Verdict.VIOLATED
    assert result.counterexample is not None
    path = [project_json(step.state) for step in result.counterexample.steps]
    return [s for i, s in enumerate(path) if i == 0 or s != path[i - 1]]


@pytest.mark.parametrize("symmetry", [False, True])
def test_seeded_bug_counterexample_small(symmetry: bool) -> None:
    path = seeded_bug_trace(2, 2, 1, 3, symmetry=symmetry)
    _, edges = sagabench_states(2, 2, 1, 3, abort_at=1)
    assert all((a, b) in edges for a, b in itertools.pairwise(path))
    # StepOk, Retry, Fail, Abort with the step still held.
    assert len(path) - 1 == 4
    assert (ABORTED, 1, 1) in {path[-1][1:4], path[-1][4:7]}


@pytest.mark.slow
def test_seeded_bug_counterexample_config_a() -> None:
    # SAGABENCH.md: BFS finds the seeded bug in 5 steps (StepOk, Retry, Retry,
    # Fail, Abort at k = 1); sagaproof's shortest counterexample, in saga
    # events, is those 5 moves and stutters (sends, the open step). Up to
    # symmetry: unreduced, BFS to that depth takes minutes.
    path = seeded_bug_trace(4, 4, 2, 10, symmetry=True)
    _, edges = sagabench_states(4, 4, 2, 10, abort_at=1)
    assert all((a, b) in edges for a, b in itertools.pairwise(path))
    assert len(path) - 1 == 5
    assert (ABORTED, 1, 2) in {path[-1][b:b + 3] for b in range(1, 13, 3)}


@pytest.mark.slow
def test_config_a_reaches_the_published_count() -> None:
    # SAGABENCH.md config A (K=4, N=4, R=2, TOTAL=10): 385,251 states, which
    # TLC, SPIN, Rumur and a plain Python BFS agree on.
    ref, ours, transitions = packed_check(4, 4, 2, 10)
    assert ref == 385_251
    assert ours > ref  # sagaproof's own states: dispatch and reply apart
    # The symmetric path (bench/sagabench.py --symmetric, which C needs) gets
    # the same mapping and exactly the unreduced search's counts.
    sym_ref, found = symmetric_packed_check(4, 4, 2, 10)
    assert sym_ref == ref
    assert (found.states, found.transitions) == (ours, transitions)
    assert found.representatives.size < ours // 20
    _, fast = symmetric_packed_check(4, 4, 2, 10, compiled=True)
    assert (fast.states, fast.transitions) == (ours, transitions)
    assert np.array_equal(np.sort(fast.representatives), found.representatives)


def test_packed_check_agrees_with_the_plain_one() -> None:
    # The compact search finds exactly what the plain one does.
    ref, ours, _ = packed_check(3, 2, 2, 2)
    assert (ref, ours) == cross_validate(3, 2, 2, 2)


def test_packed_check_can_fail() -> None:
    with pytest.raises(AssertionError):
        packed_check(2, 2, 1, 3, abort_at=1)


SMALL = [(3, 2, 2, 2), (4, 2, 1, 3), (2, 3, 2, 4), (5, 1, 1, 2)]


def test_packed_representatives_are_the_compositions_canonical_form() -> None:
    # Sorting a packed state's block numbers is Composition.canonical (the
    # repository's symmetry reduction for instances), state by state.
    pc = PackedComposition(sagabench_system(
        loads(sagabench_definition(3, 2, 2, 2)), 3), 2, 2, 2)
    full, _ = pc.explore()
    reps, _ = canonical_packed(full, 3, BITS)
    moved = 0
    for packed, rep in zip(full.tolist(), reps.tolist(), strict=True):
        state = pc.unpack(packed)
        assert pc.pack(state) == packed
        assert pc.pack(pc.comp.canonical(state)) == rep
        moved += rep != packed
    assert moved > full.size // 2  # most states are not their own representative


def _permuted(ts: MultiSagaTransitionSystem, state: tuple[int, ...],
              perm: tuple[int, ...]) -> tuple[int, ...]:
    """``state`` with instance ``i``'s block moved to instance ``perm[i]``."""
    out = list(state)
    for i, inst in enumerate(ts.comp.instances):
        # No anomaly history: the dirty vectors, which name instances, are 0.
        assert not any(state[inst.dirty:inst.dirty + ts.comp.k])
        dst = ts.comp.instances[perm[i]]
        out[dst.off:dst.end] = state[inst.off:inst.end]
    return tuple(out)


def test_projection_commutes_with_permuting_instances() -> None:
    # project(pi(s)) == pi(project(s)) for every reachable state and every
    # permutation; and pi(s) is reachable (the reachable set is closed).
    k = 3
    pc = PackedComposition(sagabench_system(
        loads(sagabench_definition(k, 2, 1, 2)), k), 2, 1, 2)
    full, _ = pc.explore()
    reachable = set(full.tolist())
    for packed in full.tolist():
        state = pc.unpack(packed)
        image = project(pc.ts, state)
        for perm in itertools.permutations(range(k)):
            moved = _permuted(pc.ts, state, perm)
            assert pc.pack(moved) in reachable
            want = [image[0], *([0, 0, 0] * k)]
            for i in range(k):
                want[1 + 3 * perm[i]:4 + 3 * perm[i]] = image[1 + 3 * i:4 + 3 * i]
            assert project(pc.ts, moved) == tuple(want)


@pytest.mark.parametrize(("k", "n", "r", "total"), SMALL)
def test_symmetric_search_counts_the_full_system_exactly(
        k: int, n: int, r: int, total: int) -> None:
    pc = PackedComposition(sagabench_system(
        loads(sagabench_definition(k, n, r, total)), k), n, r, total)
    full, transitions = pc.explore()
    found = pc.explore_symmetric()
    assert (found.states, found.transitions) == (full.size, transitions)
    assert np.array_equal(_distinct(canonical_packed(full, k, BITS)[0]),
                          found.representatives)
    assert found.representatives.size < full.size
    assert found.moves < transitions


@pytest.mark.parametrize(("k", "n", "r", "total"), SMALL)
def test_symmetric_check_maps_exactly(k: int, n: int, r: int,
                                      total: int) -> None:
    ref, ours, transitions = packed_check(k, n, r, total)
    sym_ref, found = symmetric_packed_check(k, n, r, total)
    assert (sym_ref, found.states, found.transitions) == (ref, ours, transitions)
    if importlib.util.find_spec("numba"):
        _, fast = symmetric_packed_check(k, n, r, total, compiled=True)
        assert (fast.states, fast.transitions) == (ours, transitions)


@pytest.mark.parametrize(("k", "n", "r", "total"), SMALL)
def test_compiled_search_finds_what_the_numpy_one_does(
        k: int, n: int, r: int, total: int) -> None:
    pytest.importorskip("numba")
    pc = PackedComposition(sagabench_system(
        loads(sagabench_definition(k, n, r, total)), k), n, r, total)
    found = pc.explore_symmetric()
    fast = pc.explore_compiled()
    assert (fast.states, fast.transitions, fast.moves) == (
        found.states, found.transitions, found.moves)
    # Each representative once (the bitmap), and the same ones.
    assert np.array_equal(np.sort(fast.representatives), found.representatives)


@pytest.mark.parametrize("compiled", [False, True])
def test_symmetric_check_can_fail(compiled: bool) -> None:
    if compiled:
        pytest.importorskip("numba")
    with pytest.raises(AssertionError, match="representatives"):
        symmetric_packed_check(2, 2, 1, 3, abort_at=1, compiled=compiled)


def test_orbit_sum_detects_a_set_not_closed_under_permutation() -> None:
    ref, _ = sagabench_states(3, 2, 1, 3, with_edges=False)
    packed = pack_reference(ref, 2, 1)
    reps, orbits = canonical_projection(packed, 3)
    assert orbits == packed.size
    assert reps.size < packed.size
    # Drop one state that is not its own representative: its orbit is then
    # only partly there, and the sum says so.
    lone = np.setdiff1d(packed, reps)[0]
    _, orbits = canonical_projection(packed[packed != lone], 3)
    assert orbits == packed.size
    partial = packed[packed != lone]
    assert canonical_projection(partial, 3)[1] != partial.size

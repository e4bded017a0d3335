"""Strengthening lemmas for k-induction: per-step local invariants.

A saga's properties are about one step at a time (did *this* step's effect get
undone when the saga ended COMPENSATED?), so the lemmas are too: for each step
``i`` the projection ``(phase, down, crashes, duplicates, status_i, attempts_i,
deliveries_i, effect_i, comp_i, comp_attempts_i)`` lies in a finite set ``L_i``.
The conjunction over all steps is checked to be inductive by z3, and grown until
it is: whenever a transition from a state inside every ``L_i`` leaves some
``L_j``, the new projection is added (the least inductive invariant in this
Cartesian domain, the "thread-modular" abstraction). Steps with the same
signature (kind, flags, retry bound, has/has not dependencies and dependents)
share one set, which is what lets a 100-step chain be closed in a few queries.

The candidate sets are seeded from states visited by a short breadth-first
search and a few seeded random walks through the shared semantics; the seeds
only save queries, soundness comes from z3's inductiveness check.
"""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import z3

from saga_models import Saga
from saga_models import semantics as sem
from saga_models.semantics import CRASHES, CS, DOWN, DUPS, HEADER, PHASE, ST, WIDTH

from ._encode import LOGIC, Encoding, Frame
from ._z3 import model_int, new_solver

_SEED_STATES = 4000
_WALKS = 24


@dataclass(frozen=True, slots=True)
class LocalInvariant:
    """The inductive per-step invariant of one encoding."""

    enc: Encoding
    classes: tuple[int, ...]
    """Class index of each step; steps of one class share a set."""
    signatures: tuple[tuple[object, ...], ...]
    """Per class, the step signature it stands for."""
    sets: tuple[frozenset[int], ...]
    """Per class, the allowed projection keys."""
    header: tuple[int, ...]
    """Header fields each projection includes (always the phase)."""
    queries: int
    """How many z3 queries closing the invariant took."""

    def key(self, s: Frame, i: int) -> z3.ArithRef:
        """The projection of step ``i`` packed into one integer."""
        return _key_term(_proj_terms(self.enc, s, i, self.header))

    def holds(self, s: Frame) -> z3.BoolRef:
        """``s`` satisfies every lemma (and the field ranges)."""
        return z3.And(
            self.enc.ranges(s),
            self.enc.settled(s),
            *[self.lemma(s, i) for i in range(self.enc.n)],
        )

    def lemma(self, s: Frame, i: int) -> z3.BoolRef:
        """The lemma of step ``i``."""
        k = self.key(s, i)
        return z3.Or(*[k == v for v in sorted(self.sets[self.classes[i]])])

    def size(self) -> int:
        """Total number of allowed local projections."""
        return sum(len(x) for x in self.sets)


COARSE = (PHASE,)
"""Projection header for large definitions: the phase only."""
FINE = (PHASE, DOWN, CRASHES, DUPS)
"""Projection header that also tracks the crash and duplicate budgets."""


PARENTS = -1
"""Marker in a projection header: also include the dependencies' status and
compensation status (relational lemmas along dependency edges)."""
EDGE = (PHASE, DOWN, CRASHES, DUPS, PARENTS)
"""The finest projection: header, the step, and its dependencies' progress."""


def _proj_terms(
    enc: Encoding, s: Frame, i: int, header: tuple[int, ...]
) -> list[z3.BitVecRef]:
    b = HEADER + WIDTH * i
    out = [*(s[h] for h in header if h != PARENTS), *s[b : b + WIDTH]]
    if PARENTS in header:
        for d in enc.saga.deps(i):
            out += [enc.at(s, d, ST), enc.at(s, d, CS)]
    return out


def _proj_values(
    saga: Saga, state: sem.State, i: int, header: tuple[int, ...]
) -> tuple[int, ...]:
    b = HEADER + WIDTH * i
    out = [*(state[h] for h in header if h != PARENTS), *state[b : b + WIDTH]]
    if PARENTS in header:
        for d in saga.deps(i):
            db = HEADER + WIDTH * d
            out += [state[db + ST], state[db + CS]]
    return tuple(out)


def _key_term(terms: list[z3.BitVecRef]) -> z3.BitVecRef:
    # The projection's bytes, concatenated: equality with a constant key is a
    # conjunction of field equalities that bit-blasts cheaply.
    return z3.Concat(*terms)


def _key_value(values: Iterable[int]) -> int:
    return int.from_bytes(bytes(values), "big")


def _signature(saga: Saga, i: int) -> tuple[object, ...]:
    s = saga.steps[i]
    return (
        s.kind,
        s.idempotent,
        s.anti_suspension,
        s.timeout is not None,
        bool(s.retry.retryable_errors or s.retry.non_retryable_errors),
        s.retry.max_attempts,
        s.compensation is not None,
        s.compensation_needs_result,
        len(saga.deps(i)),
        bool(saga.dependents(i)),
    )


def _classes(enc: Encoding) -> tuple[tuple[int, ...], list[tuple[object, ...]]]:
    sigs: dict[tuple[object, ...], int] = {}
    out = []
    for i in range(enc.n):
        out.append(sigs.setdefault(_signature(enc.saga, i), len(sigs)))
    return tuple(out), list(sigs)


def miniature(saga: Saga, *, per_class: int = 3) -> Saga | None:
    """A smaller saga with the same step signatures: the first ``per_class``
    steps of each signature, dependencies re-linked to the nearest kept
    ancestors. None when it would not be smaller."""
    keep: list[int] = []
    count: dict[tuple[object, ...], int] = {}
    for i in range(len(saga.steps)):
        sig = _signature(saga, i)
        if count.get(sig, 0) < per_class:
            count[sig] = count.get(sig, 0) + 1
            keep.append(i)
    if len(keep) >= len(saga.steps) - 1:
        return None
    kept = set(keep)
    steps = []
    for i in keep:
        deps: list[int] = []
        todo = list(saga.deps(i))
        seen: set[int] = set()
        while todo:
            d = todo.pop()
            if d in seen:
                continue
            seen.add(d)
            if d in kept:
                deps.append(d)
            else:
                todo.extend(saga.deps(d))
        steps.append(
            dataclasses.replace(
                saga.steps[i],
                depends_on=tuple(saga.steps[d].name for d in sorted(set(deps))),
            )
        )
    return dataclasses.replace(saga, steps=tuple(steps))


def seed_states(
    enc: Encoding, *, budget: int = _SEED_STATES, walks: int = _WALKS
) -> list[sem.State]:
    """States visited by a bounded BFS and seeded random walks (candidates only)."""
    saga, faults = enc.saga, enc.faults
    init = sem.initial_state(saga)
    seen = {init}
    queue = deque([init])
    while queue and len(seen) < budget:
        st = queue.popleft()
        for e in sem.enabled(saga, st, faults):
            nxt = sem.apply(saga, st, e)
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    rng = random.Random(0)
    limit = 8 * (enc.n + 4) * 4
    for _ in range(walks):
        st = init
        for _ in range(limit):
            evs = sem.enabled(saga, st, faults)
            if not evs:
                break
            st = sem.apply(saga, st, rng.choice(evs))
            seen.add(st)
    return list(seen)


def local_invariant(
    enc: Encoding,
    *,
    rlimit: int,
    header: tuple[int, ...] = FINE,
    max_rounds: int = 60,
    per_round: int = 64,
    initial: dict[tuple[object, ...], frozenset[int]] | None = None,
    split: bool = False,
) -> LocalInvariant | str:
    """Close the per-step invariant under the transition relation with z3.

    Each round fixes the allowed pre-state projections and collects up to
    ``per_round`` new post-state projections (each found model is blocked by
    growing the sets, so the "leaves the sets" constraint stays incremental);
    a round whose first query is unsat proves the sets inductive.

    Returns:
        The inductive invariant, or the reason z3 could not close it.
    """
    classes, sigs = _classes(enc)
    sets: list[set[int]] = [set((initial or {}).get(sig, ())) for sig in sigs]
    members: list[list[int]] = [[] for _ in sets]
    for i, c in enumerate(classes):
        members[c].append(i)
    budget = _SEED_STATES if initial is None else 200
    for st in seed_states(enc, budget=budget, walks=_WALKS if initial is None else 2):
        for i in range(enc.n):
            sets[classes[i]].add(_key_value(_proj_values(enc.saga, st, i, header)))
    if split:
        return _close_by_cases(
            enc, classes, sigs, sets, header=header, rlimit=rlimit,
            max_rounds=max_rounds,
        )
    slv = new_solver(rlimit=rlimit, logic=LOGIC)
    s = enc.frame("s")
    s2 = enc.frame("t")
    c = enc.choice("choice")
    slv.add(enc.ranges(s), enc.settled(s), enc.transition(s, c, s2))
    keys = [_key_term(_proj_terms(enc, s, i, header)) for i in range(enc.n)]
    keys2 = [_key_term(_proj_terms(enc, s2, i, header)) for i in range(enc.n)]
    leaves = [z3.Bool(f"leaves.{enc.saga.steps[i].name}") for i in range(enc.n)]
    any_leaves = z3.Bool("leaves.any")
    slv.add(z3.Implies(any_leaves, z3.Or(*leaves)))
    for i in range(enc.n):
        slv.add(*[z3.Implies(leaves[i], keys2[i] != v) for v in sets[classes[i]]])
    queries = 0
    for r in range(max_rounds):
        act = z3.Bool(f"round{r}")
        slv.add(
            z3.Implies(
                act,
                z3.And(
                    *[
                        z3.Or(*[keys[i] == v for v in sorted(sets[classes[i]])])
                        for i in range(enc.n)
                    ]
                ),
            )
        )
        for q in range(per_round):
            res = slv.check([act, any_leaves])
            queries += 1
            if res == z3.unsat:
                if q == 0:
                    return _closed(enc, classes, sigs, sets, header, queries)
                break
            if res != z3.sat:
                return f"z3 could not close the step invariants: {slv.reason_unknown()}"
            m = slv.solver.model()
            for i in range(enc.n):
                v = model_int(m, keys2[i])
                cls = classes[i]
                if v not in sets[cls]:
                    sets[cls].add(v)
                    slv.add(
                        *[z3.Implies(leaves[j], keys2[j] != v) for j in members[cls]]
                    )
    return f"step invariants not closed after {max_rounds} rounds"


def _closed(  # noqa: PLR0917 (the closure's state, in one call)
    enc: Encoding,
    classes: tuple[int, ...],
    sigs: list[tuple[object, ...]],
    sets: list[set[int]],
    header: tuple[int, ...],
    queries: int,
) -> LocalInvariant:
    return LocalInvariant(
        enc=enc,
        classes=classes,
        signatures=tuple(sigs),
        sets=tuple(frozenset(x) for x in sets),
        header=header,
        queries=queries,
    )


def scaled_invariant(
    enc: Encoding, *, rlimit: int, header: tuple[int, ...] = FINE
) -> LocalInvariant | str:
    """:func:`local_invariant`, first closed on a :func:`miniature` of the saga
    (cheap), then checked, and if need be grown, on the saga itself. Sound
    either way: only the final check on ``enc`` decides."""
    from ._encode import encode

    mini = miniature(enc.saga) if enc.n > 8 else None
    if mini is None:
        return local_invariant(enc, rlimit=rlimit, header=header)
    small = local_invariant(encode(mini, enc.faults), rlimit=rlimit, header=header)
    if isinstance(small, str):
        return local_invariant(enc, rlimit=rlimit, header=header)
    initial = dict(zip(small.signatures, small.sets, strict=True))
    return local_invariant(
        enc, rlimit=rlimit, header=header, initial=initial, split=True
    )


def _close_by_cases(
    enc: Encoding,
    classes: tuple[int, ...],
    sigs: list[tuple[object, ...]],
    sets: list[set[int]],
    *,
    header: tuple[int, ...],
    rlimit: int,
    max_rounds: int,
) -> LocalInvariant | str:
    """:func:`local_invariant` by case-split queries (see :mod:`._cases`): per
    group of events, can a touched step's projection leave its set (phase
    level or not), or can the phase move and any projection leave its set?

    The sets only grow; a round in which no group finds a new projection
    proves them inductive (every group's queries unsat under the same sets).
    """
    from ._cases import refute, shared, touched

    slv = new_solver(rlimit=rlimit, logic=LOGIC)
    sh = shared(enc)
    s, gs = sh.frame, sh.groups
    slv.add(enc.ranges(s), enc.settled(s))
    members: list[list[int]] = [[] for _ in sets]
    for i, c in enumerate(classes):
        members[c].append(i)
    # The phase after the event, shared by every group's "phase moved" case, so
    # that the untouched steps' projections under it are built once.
    np_ = z3.BitVec("t.phase", s[PHASE].size())
    under = list(s)
    under[PHASE] = np_
    out_lit = [z3.Bool(f"out.{enc.saga.steps[j].name}") for j in range(enc.n)]
    out_key = [_key_term(_proj_terms(enc, under, j, header)) for j in range(enc.n)]
    # Per class: (literal, key) pairs that must avoid every member of the set;
    # growing a set adds one disequality per pair (incremental, never retracted).
    watch: list[list[tuple[z3.BoolRef, z3.BitVecRef]]] = [[] for _ in sets]
    for j in range(enc.n):
        watch[classes[j]].append((out_lit[j], out_key[j]))
    queries_of: list[tuple[z3.BoolRef, z3.BoolRef, Frame]] = []
    for g, g_pick in zip(gs, sh.picks, strict=True):
        pick = z3.Bool(f"pick.{g.name}")
        slv.add(z3.Implies(pick, g_pick))
        hit, rest = touched(enc, g, header)
        leave = []
        for j in hit:
            lit = z3.Bool(f"leaves.{g.name}.{enc.saga.steps[j].name}")
            key = _key_term(_proj_terms(enc, g.post, j, header))
            watch[classes[j]].append((lit, key))
            leave.append(lit)
        a_lit = z3.Bool(f"case.level.{g.name}")
        slv.add(z3.Implies(a_lit, z3.Or(z3.BoolVal(False), *leave)))
        b_lit = z3.Bool(f"case.moves.{g.name}")
        slv.add(
            z3.Implies(
                b_lit,
                z3.And(
                    np_ == g.post[PHASE],
                    np_ != s[PHASE],
                    z3.Or(z3.BoolVal(False), *leave, *[out_lit[j] for j in rest]),
                ),
            )
        )
        queries_of += [(pick, a_lit, g.post), (pick, b_lit, g.post)]
    for c, pairs in enumerate(watch):
        for lit, key in pairs:
            slv.add(*[z3.Implies(lit, key != v) for v in sets[c]])
    queries = 0
    lits = []
    for k, (pick, case, _) in enumerate(queries_of):
        lit = z3.Bool(f"case.{k}")
        slv.add(z3.Implies(lit, z3.And(pick, case)))
        lits.append(lit)
    for r in range(max_rounds):
        act = z3.Bool(f"round{r}")
        slv.add(
            z3.Implies(
                act,
                z3.And(
                    *[
                        z3.Or(*[_key_term(_proj_terms(enc, s, i, header)) == v
                                for v in sorted(sets[classes[i]])])
                        for i in range(enc.n)
                    ]
                ),
            )
        )
        grew = False
        while True:
            status, k, m = refute(slv, [act], lits, tag=f"round{r}", memo=sh)
            queries += 1
            if status == "unsat":
                break
            if status != "sat" or m is None:
                why = slv.reason_unknown()
                return f"z3 could not close the step invariants: {why}"
            grew = True
            post = queries_of[k][2]
            for j in range(enc.n):
                v = model_int(m, _key_term(_proj_terms(enc, post, j, header)))
                cls = classes[j]
                if v not in sets[cls]:
                    sets[cls].add(v)
                    slv.add(*[z3.Implies(lit, key != v) for lit, key in watch[cls]])
        if not grew:
            return _closed(enc, classes, sigs, sets, header, queries)
    return f"step invariants not closed after {max_rounds} rounds"

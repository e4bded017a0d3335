"""Many saga instances over shared resources: the composition semantics.

K instances (of one saga or of several) run at once. Each instance's events are
exactly those of the one saga semantics (:func:`saga_models.semantics.enabled`
and :func:`~saga_models.semantics.apply`, unchanged); this module adds only the
shared resources and what the effect declarations say about them:

* a resource effect happens exactly when the participant's side of a step
  changes: when a step's ``effect`` counter goes up the action's effect is
  applied (once per unit), when it goes down the compensation's is. Nothing
  here names the event kinds that move the counter, so any event the single
  semantics gains that takes or undoes an effect is picked up unchanged;
* an action whose guard is false (or that touches a resource another instance
  holds under a semantic lock) cannot take effect: every event that would make
  it take effect is dropped and the business failure (a ``fatal`` reply, not
  retried) is offered instead. The declared countermeasures join the guard (a
  version check, a reread) or the locks (by value, when its high-risk
  condition holds).

A keyed record is one slot per field (``order.total``) plus its version
(``order.version``), which every action or compensation that writes the record
moves on by one.

The composite state is a flat tuple of small ints (so the explicit checker packs
it into bytes): the resources, then one block per instance::

    resources[R] | single saga state | locals[M] | stale | dirty[K] | net[R] | ...

``locals`` are values an instance read (``read: {seen: stock}``); ``stale`` has
a bit per local that another instance has changed the source of since; ``dirty``
has, per other instance, a bit per resource on which this instance decided
while that instance held an uncommitted effect on it; ``net`` is the change the
instance meant to make to each resource (a write computed from a local counts
as if the local were fresh: the serial intent). Signed values are stored with a
bias of 128, so every field fits a byte.

>>> from saga_models import SagaBuilder
>>> saga = (SagaBuilder("take").resource("stock", initial=1)
...         .step("take", participant="p", compensation="give_back",
...               effect={"guard": "stock >= 1", "update": {"stock": "stock - 1"}},
...               compensation_effect={"update": {"stock": "stock + 1"}})
...         .build())
>>> comp = Composition((saga, saga), faults=NO_FAULTS)
>>> comp.resources_of(comp.initial())
{'stock': 1}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from . import semantics as sem
from ._ir import Effect, Saga
from ._resources import (
    guard_text,
    instance_records,
    locals_of,
    records_of,
    slots_of,
)
from .semantics import EF, HEADER, PHASE, WIDTH, Event, EventKind, FaultModel, Outcome
from .workflow._expr import Expr, parse_expr

__all__ = [
    "BIAS",
    "NO_FAULTS",
    "Composition",
    "InstanceEvent",
]

NO_FAULTS = sem.NO_FAULTS
BIAS = 128
"""Signed values are stored as ``value + BIAS`` so a state packs into bytes."""
_LO, _HI = -BIAS, 255 - BIAS
_COMPLETED = int(sem.Phase.COMPLETED)


class InstanceEvent(NamedTuple):
    """One transition of the composition: an event of one instance."""

    instance: int
    """Index of the instance (0-based; rendered 1-based)."""
    event: Event
    """The single-saga event."""
    business: bool = False
    """A business failure forced by a false guard or a held semantic lock."""
    notes: tuple[str, ...] = ()
    """Isolation anomalies this transition commits (dirty read, lost update)."""


@dataclass(frozen=True, slots=True)
class _Update:
    resource: int
    expr: Expr
    locals_used: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Eff:
    guard: Expr | None
    reads: tuple[tuple[int, int], ...]
    """(local index, resource index)."""
    updates: tuple[_Update, ...]
    touches: frozenset[int]
    """Resources read or written: what a semantic lock guards."""
    decides: frozenset[int]
    """Resources its guard decides on (directly, or through a local read from
    them). A decision is a dirty read when its outcome would differ on the
    committed values; reads into locals and updates are not decisions (a
    write from a stale local is a lost update instead)."""
    writes: frozenset[int]
    bumps: tuple[int, ...] = ()
    """Version slots of the records it writes (each goes up by one)."""
    risk: Expr | None = None
    """By value: when this holds, the action runs under ``risk_lock``."""
    risk_lock: frozenset[int] = frozenset()
    sources: frozenset[int] = frozenset()
    """Resources the locals its updates use were read from: a write from a
    local reads its source too (whether it was changed since is a lost
    update, and the serial intent counts its current value)."""


@dataclass(frozen=True, slots=True)
class _Inst:
    saga: Saga
    off: int
    """Offset of the block in the composite state."""
    length: int
    """Length of the single saga state."""
    local_names: tuple[str, ...]
    local_source: tuple[int, ...]
    action: tuple[_Eff | None, ...]
    comp: tuple[_Eff | None, ...]
    effect_steps: tuple[int, ...]
    """Steps with an effect declaration (action or compensation)."""
    writes_any: tuple[frozenset[int], ...]
    """Per step: resources its action writes."""
    reach: tuple[frozenset[int], ...] = ()
    """Per step: every resource its action or compensation reads (directly
    or through a local it writes from), writes, decides on or may lock (what
    relates it to another instance's moves)."""

    @property
    def loc(self) -> int:
        return self.off + self.length

    @property
    def stale(self) -> int:
        return self.loc + len(self.local_names)

    @property
    def dirty(self) -> int:
        return self.stale + 1

    end: int = 0
    """End of the block in the composite state."""


class EffectRangeError(ValueError):
    """A resource, local or net value left the range a state can hold."""


class Composition:
    """K instances over shared resources; see the module docstring.

    Args:
        sagas: The saga each instance runs (repeat a saga for several
            instances of it).
        faults: The fault model every instance is explored under.
        track_anomalies: Keep the history fields the dirty-read and lost-update
            properties need (``stale``, ``dirty``); off, they stay zero, which
            explores fewer states and leaves every other property unchanged.
        symmetry: Store one representative per permutation of identical
            instances (:meth:`canonical`); successors are representatives.
        keep_attempts: A step that fails for good keeps its attempt count
            (``keep_attempts`` of :func:`saga_models.semantics.apply`): the
            same behaviour, more states told apart.
    """

    def __init__(self, sagas: Sequence[Saga], *, faults: FaultModel = sem.ALL_FAULTS,
                 track_anomalies: bool = True, symmetry: bool = False,
                 keep_attempts: bool = False) -> None:
        self.sagas = tuple(sagas)
        self.faults = faults
        self.track = track_anomalies
        self.keep_attempts = keep_attempts
        names: list[str] = []
        initial: dict[str, int] = {}
        locks: set[str] = set()
        records: set[str] = set()
        # A record keyed by instance has one row per instance that declares
        # it: ``order[2].total`` is instance 2's, which its own expressions
        # call ``order.total`` (:attr:`views`).
        views: list[dict[str, str]] = []
        for i, saga in enumerate(self.sagas):
            mine = instance_records(saga)
            view: dict[str, str] = {}
            for name, _ in slots_of(saga):
                rec, dot, field = name.partition(".")
                view[name] = (f"{rec}[{i + 1}].{field}" if dot and rec in mine
                              else name)
            views.append(view)
        for i, saga in enumerate(self.sagas):
            for own, value in slots_of(saga):
                name = views[i][own]
                if name not in initial:
                    names.append(name)
                    initial[name] = value
                elif initial[name] != value:
                    raise ValueError(
                        f"resource {name!r} starts at {initial[name]} in one "
                        f"saga and at {value} in saga {saga.name!r}")
            records |= records_of(saga)
            locks.update(saga.semantic_locks)
        self.records = frozenset(records)
        self.resource_names = tuple(names)
        self.initial_values = tuple(initial[n] for n in names)
        self._rindex = {n: i for i, n in enumerate(names)}
        self.views = tuple({own: self._rindex[slot] for own, slot in v.items()}
                           for v in views)
        """Per instance: the slot index of each resource name its saga's
        expressions use (its own row of a record keyed by instance)."""
        # The inverse, built once: a dirty-read decision names the slots it
        # read by the instance's own names on every such move.
        self._names = tuple({slot: own for own, slot in v.items()}
                            for v in self.views)
        self.per_instance = any(instance_records(s) for s in self.sagas)
        """Whether some record is keyed by instance."""
        # A lock on a record holds every field of it (and its version).
        self.locks = frozenset(i for i, n in enumerate(names)
                               if n in locks or (n.partition(".")[0] in locks
                                                 and n.partition(".")[0] in records))
        self.conserved = tuple(
            not (n.endswith(".version")
                 and n.partition(".")[0].partition("[")[0] in records)
            for n in names)
        """Per resource slot: whether conservation covers it (a record's
        version only ever goes up, compensations included)."""
        self.k = len(self.sagas)
        self.r = len(names)
        insts: list[_Inst] = []
        off = self.r
        for i, saga in enumerate(self.sagas):
            inst = self._compile(saga, off, i)
            off = inst.dirty + self.k + self.r
            insts.append(dataclasses.replace(inst, end=off))
        self.instances = tuple(insts)
        self.width = off
        reach = [frozenset().union(*inst.reach) for inst in insts]
        self.shared = tuple(
            frozenset().union(*(reach[k] for k in range(self.k) if k != i))
            for i in range(self.k))
        """Per instance: the resources some other instance's action or
        compensation may read, write, decide on or lock (a static
        over-approximation of what the other instances can ever touch)."""
        kinds: dict[int, int] = {}
        self._kind = tuple(kinds.setdefault(id(s), len(kinds)) for s in self.sagas)
        # Locks (declared, or chosen by value) make an instance's moves depend
        # on the other instances' blocks.
        self._local = not self.track and not self.locks and not any(
            e is not None and e.risk is not None
            for inst in self.instances for e in inst.action)
        groups: dict[int, list[int]] = {}
        for i, kind in enumerate(self._kind):
            groups.setdefault(kind, []).append(i)
        # Rows keyed by instance sit among the resources, outside the blocks
        # that a permutation exchanges: no symmetry then.
        self._groups = tuple(tuple(g) for g in groups.values()
                             if len(g) > 1 and not self.per_instance)
        self.symmetry = symmetry and bool(self._groups)
        self._cache: dict[tuple[int, tuple[int, ...], tuple[int, ...]],
                          tuple[tuple[Event, bool, tuple[str, ...],
                                      tuple[int, ...], tuple[int, ...]], ...]] = {}

    # --- compilation of effect declarations --------------------------------------
    def _compile(self, saga: Saga, off: int, which: int) -> _Inst:
        view = self.views[which]
        local_names = locals_of(saga)
        source: dict[str, int] = {}
        for step in saga.steps:
            for eff in (step.effect, step.compensation_effect):
                for local, res in eff.reads if eff is not None else ():
                    source.setdefault(local, view[res])
        lindex = {n: i for i, n in enumerate(local_names)}
        action = tuple(self._eff(s.effect, lindex, source, which)
                       for s in saga.steps)
        # Countermeasures become part of the action's guard; a compensation
        # has neither (the loader refuses them there).
        comp = tuple(self._eff(s.compensation_effect, lindex, source, which)
                     for s in saga.steps)
        return _Inst(
            saga=saga, off=off, length=HEADER + WIDTH * len(saga.steps),
            local_names=local_names,
            local_source=tuple(source[n] for n in local_names),
            action=action, comp=comp,
            effect_steps=tuple(j for j in range(len(saga.steps))
                               if action[j] is not None or comp[j] is not None),
            writes_any=tuple(a.writes if a is not None else frozenset()
                             for a in action),
            reach=tuple(_reach(a) | _reach(c)
                        for a, c in zip(action, comp, strict=True)),
        )

    def _eff(self, eff: Effect | None, lindex: dict[str, int],
             source: dict[str, int], which: int) -> _Eff | None:
        if eff is None:
            return None
        ri = view = self.views[which]
        own = self._names[which]
        text = guard_text(eff, {n: own[r] for n, r in source.items()})
        guard = (parse_expr(text, records=self.records) if text is not None
                 else None)
        decides: set[int] = set()
        touches: set[int] = set()
        if guard is not None:
            decides |= {ri[n] for n in guard.counters if n in ri}
            decides |= {source[n] for n in guard.counters if n in lindex}
        reads = tuple((lindex[loc], ri[res]) for loc, res in eff.reads)
        touches |= {r for _, r in reads}
        updates = []
        for res, text in eff.updates:
            expr = parse_expr(text, records=self.records)
            target = ri[res]
            touches |= {ri[n] for n in expr.counters if n in ri}
            touches.add(target)
            updates.append(_Update(
                resource=target, expr=expr,
                locals_used=tuple(sorted(lindex[n] for n in expr.counters
                                         if n in lindex))))
        bumps = tuple(ri[f"{rec}.version"] for rec in sorted(
            {own[u.resource].partition(".")[0] for u in updates}
            & self.records))
        # A version bump is a write of the version slot: whatever relates
        # steps by the slots they touch (locks, independence) must see it.
        touches |= decides | set(bumps)
        risk = (parse_expr(eff.high_risk, records=self.records)
                if eff.high_risk is not None else None)
        if risk is not None:  # the choice reads what it names
            touches |= {ri[n] for n in risk.counters if n in ri}
            touches |= {source[n] for n in risk.counters if n in lindex}
        risk_lock = frozenset(
            r for n, r in view.items()
            if n in eff.high_risk_lock or n.partition(".")[0] in eff.high_risk_lock)
        return _Eff(guard=guard, reads=reads, updates=tuple(updates),
                    touches=frozenset(touches), decides=frozenset(decides),
                    writes=frozenset(u.resource for u in updates) | set(bumps),
                    bumps=bumps, risk=risk, risk_lock=risk_lock,
                    sources=frozenset(source[n] for u in updates
                                      for n in u.expr.counters if n in lindex))

    # --- the semantics -------------------------------------------------------------
    def initial(self) -> tuple[int, ...]:
        """Every instance at its start, every resource at its initial value."""
        s = [v + BIAS for v in self.initial_values]
        for inst in self.instances:
            s += list(sem.initial_state(inst.saga))
            s += [BIAS] * len(inst.local_names) + [0] + [0] * self.k
            s += [BIAS] * self.r
        return tuple(s)

    def is_terminal(self, state: Sequence[int]) -> bool:
        """True when every instance has reached a terminal outcome."""
        return all(state[inst.off + PHASE] >= _COMPLETED for inst in self.instances)

    def single(self, state: Sequence[int], i: int) -> tuple[int, ...]:
        """Instance ``i``'s single-saga state."""
        inst = self.instances[i]
        return tuple(state[inst.off:inst.loc])

    def resources_of(self, state: Sequence[int]) -> dict[str, int]:
        """The resource values, by name."""
        return {n: state[i] - BIAS for i, n in enumerate(self.resource_names)}

    def locals_of(self, state: Sequence[int], i: int) -> dict[str, int]:
        """Instance ``i``'s locals, by name."""
        inst = self.instances[i]
        return {n: state[inst.loc + j] - BIAS
                for j, n in enumerate(inst.local_names)}

    def net_of(self, state: Sequence[int], i: int) -> tuple[int, ...]:
        """The change instance ``i`` meant to make to each resource."""
        base = self.instances[i].dirty + self.k
        return tuple(state[base + r] - BIAS for r in range(self.r))

    def footprint(self, i: int) -> tuple[int, ...]:
        """Positions of instance ``i``'s single-saga state that another
        instance can observe, besides whether ``i`` has ended
        (:meth:`ended`): the effect counter of every step whose action or
        compensation reaches a resource that another instance may touch
        (:attr:`shared`; a change of the counter applies or undoes the
        effect, a held one is what locks and dirty reads see).

        The phase itself is not a position here: outside the instance only
        whether it has ended is read (:meth:`end_seen`), so an abort
        (running to compensating) is seen by nobody else.

        An event of ``i`` that changes none of these and does not end ``i``
        where that is seen (:meth:`end_seen`) writes only ``i``'s own block
        and resources no other instance reads, writes or locks: it is
        independent of every event of every other instance (the footprint
        :mod:`verifier._por` reduces with). Whether a property sees the
        resources it writes is the reduction's concern (visibility).
        """
        inst = self.instances[i]
        shared = self.shared[i]
        return tuple(HEADER + WIDTH * j + EF for j in inst.effect_steps
                     if inst.reach[j] & shared)

    @staticmethod
    def ended(single: Sequence[int]) -> bool:
        """Whether a single-saga state is a terminal outcome (what the rest
        of the composition reads of its phase)."""
        return single[PHASE] >= _COMPLETED

    def end_seen(self, i: int) -> bool:
        """Whether another instance can observe that instance ``i`` ends.

        Only a holder check reads it (an instance that has ended holds
        nothing: a lock is free, a decision no longer reads dirty, and its
        part of the anomaly history is settled), and holder checks ask only
        about resources their own instance reaches. So the end is seen
        exactly when an action of ``i`` writes a resource in
        :attr:`shared`. (The end of the whole composition is a terminal
        state, which the reduction keeps.)
        """
        inst = self.instances[i]
        return any(w & self.shared[i] for w in inst.writes_any)

    def instance_footprint(self, i: int) -> tuple[int, ...]:
        """The coarser footprint without disjoint resources: the phase and
        the effect counter of every step with an effect declaration, as if
        every resource were shared (what :meth:`footprint` was before
        independence over disjoint resources; kept for comparisons)."""
        inst = self.instances[i]
        return (PHASE, *(HEADER + WIDTH * j + EF for j in inst.effect_steps))

    def counter_position(self, j: int) -> int:
        """Position of step ``j``'s effect counter in a single-saga state."""
        return HEADER + WIDTH * j + EF

    def successors(self, state: tuple[int, ...]) -> list[tuple[InstanceEvent,
                                                                tuple[int, ...]]]:
        """Every (event, next state) of the composition (next states are
        representatives when ``symmetry`` is on)."""
        out = self.concrete_successors(state)
        if self.symmetry:
            canon = self.canonical
            return [(ev, canon(t)) for ev, t in out]
        return out

    def concrete_successors(self, state: tuple[int, ...]) -> list[
            tuple[InstanceEvent, tuple[int, ...]]]:
        """Every (event, next state), never replaced by a representative."""
        if self._local:
            return self._successors_cached(state)
        return self._successors(state)

    def canonical(self, state: tuple[int, ...]) -> tuple[int, ...]:
        """A representative of ``state``'s orbit under permutations of
        identical instances: their blocks sorted (the ``dirty`` vectors, which
        name instances, are renumbered to follow).

        Instances whose blocks differ only in ``dirty`` keep their order, so
        an orbit may have more than one representative: that stores a few more
        states but keeps every verdict and every shortest distance, since the
        system and every property are symmetric.
        """
        perm = list(range(self.k))
        blocks = self.instances
        k = self.k
        for group in self._groups:
            keyed = sorted(group, key=lambda i: (
                state[blocks[i].off:blocks[i].dirty],
                state[blocks[i].dirty + k:blocks[i].end]))
            for pos, old in zip(group, keyed, strict=True):
                perm[pos] = old
        if perm == list(range(k)):
            return state
        out = list(state[:self.r])
        for old in perm:  # identical instances have blocks of one layout
            src = blocks[old]
            out += state[src.off:src.dirty]
            out += [state[src.dirty + perm[j]] for j in range(k)]
            out += state[src.dirty + k:src.end]
        return tuple(out)

    def _successors_cached(self, state: tuple[int, ...]) -> list[
            tuple[InstanceEvent, tuple[int, ...]]]:
        """Without semantic locks or anomaly history an instance's moves depend
        only on its own block and the resource values: compute them once per
        such pair and splice them into each state (the same result as
        :meth:`_successors`, which a test checks)."""
        out: list[tuple[InstanceEvent, tuple[int, ...]]] = []
        r = self.r
        res = state[:r]
        cache = self._cache
        for i, inst in enumerate(self.instances):
            lo, hi = inst.off, inst.end
            if state[lo + PHASE] >= _COMPLETED:
                continue
            key = (self._kind[i], res, state[lo:hi])
            moves = cache.get(key)
            if moves is None:
                moves = tuple(
                    (ev.event, ev.business, ev.notes, nxt[:r], nxt[lo:hi])
                    for ev, nxt in self._successors(state, only=i))
                if len(cache) > 1 << 20:
                    cache.clear()
                cache[key] = moves
            head, tail = state[r:lo], state[hi:]
            for event, business, notes, new_res, block in moves:
                out.append((InstanceEvent(i, event, business, notes),
                            new_res + head + block + tail))
        return out

    def _successors(self, state: tuple[int, ...], only: int | None = None
                    ) -> list[tuple[InstanceEvent, tuple[int, ...]]]:
        out: list[tuple[InstanceEvent, tuple[int, ...]]] = []
        faults = self.faults
        for i, inst in enumerate(self.instances):
            if only is not None and i != only:
                continue
            single = tuple(state[inst.off:inst.loc])
            if single[PHASE] >= _COMPLETED:
                continue
            saga = inst.saga
            business: dict[int, bool] = {}
            keep = self.keep_attempts
            for e in sem.enabled(saga, single, faults):
                new = sem.apply(saga, single, e, keep_attempts=keep)
                result = self._step(state, i, single, new)
                if isinstance(result, _Blocked):
                    if e.kind is EventKind.REPLY:
                        # Decided on the value only when the guard (not a
                        # lock) refused.
                        business.setdefault(e.step, result.by_guard)
                    continue
                nxt, notes = result
                out.append((InstanceEvent(i, e, False, notes), nxt))
            for j, by_guard in business.items():
                e = Event(EventKind.REPLY, j, Outcome.FATAL, 0)
                new = sem.apply(saga, single, e, keep_attempts=keep)
                s = list(state)
                s[inst.off:inst.loc] = new
                if by_guard:
                    eff = inst.action[j]
                    assert eff is not None
                    self._mark_dirty(s, i, eff)
                self._settle(s, i, single, new)
                out.append((InstanceEvent(i, e, True, ()), tuple(s)))
        return out

    def _step(self, state: tuple[int, ...], i: int, old: tuple[int, ...],
              new: tuple[int, ...]) -> _Blocked | tuple[tuple[int, ...],
                                                         tuple[str, ...]]:
        inst = self.instances[i]
        s = list(state)
        notes: list[str] = []
        for j in inst.effect_steps:
            b = HEADER + WIDTH * j + EF
            d = new[b] - old[b]
            for _ in range(d):
                eff = inst.action[j]
                if eff is not None:
                    blocked = self._apply_action(s, i, j, eff, notes)
                    if blocked is not None:
                        return blocked
            for _ in range(-d):
                eff = inst.comp[j]
                if eff is not None:
                    self._apply_effect(s, i, j, eff, notes)
                    self._undo_check(s, i, j, eff, notes)
        s[inst.off:inst.loc] = new
        self._settle(s, i, old, new)
        return tuple(s), tuple(notes)

    def _holders(self, s: Sequence[int], i: int, r: int) -> list[int]:
        """Other instances that hold an uncommitted effect on resource ``r``."""
        out = []
        for k, inst in enumerate(self.instances):
            if k == i or s[inst.off + PHASE] >= _COMPLETED:
                continue
            for j in inst.effect_steps:
                if r in inst.writes_any[j] and s[inst.off + HEADER + WIDTH * j + EF]:
                    out.append(k)
                    break
        return out

    def _env(self, s: Sequence[int], i: int) -> dict[str, int]:
        inst = self.instances[i]
        env = {n: s[r] - BIAS for n, r in self.views[i].items()}
        for j, n in enumerate(inst.local_names):
            env[n] = s[inst.loc + j] - BIAS
        return env

    def _apply_action(self, s: list[int], i: int, j: int, eff: _Eff,
                      notes: list[str]) -> _Blocked | None:
        locked = eff.touches & self.locks
        if eff.risk is not None and eff.risk.evaluate(self._env(s, i), {}):
            # By value: a high-risk request takes the lock; a low-risk one
            # goes ahead without it.
            locked |= eff.risk_lock
        for r in locked:
            if self._holders(s, i, r):
                return _Blocked(by_guard=False)
        if eff.guard is not None:
            if not eff.guard.evaluate(self._env(s, i), {}):
                return _Blocked(by_guard=True)
            self._mark_dirty(s, i, eff)
        self._apply_effect(s, i, j, eff, notes)
        return None

    def _mark_dirty(self, s: list[int], i: int, eff: _Eff) -> None:
        """Instance ``i`` decided on ``eff``'s guard: if the decision would have
        gone the other way on the committed values (without the changes other
        instances still hold uncommitted), remember whose changes it read."""
        if not self.track or eff.guard is None:
            return
        held = {r: self._holders(s, i, r) for r in eff.decides}
        if not any(held.values()):
            return
        env = self._env(s, i)
        committed = dict(env)
        own = self._names[i]
        for r, holders in held.items():
            name = own.get(r, "")
            if name in committed:
                committed[name] -= sum(self.net_of(s, k)[r] for k in holders)
        if bool(eff.guard.evaluate(env, {})) == bool(
                eff.guard.evaluate(committed, {})):
            return
        base = self.instances[i].dirty
        for r, holders in held.items():
            for k in holders:
                s[base + k] |= 1 << r

    def _apply_effect(self, s: list[int], i: int, j: int, eff: _Eff,
                      notes: list[str]) -> None:
        inst = self.instances[i]
        env = self._env(s, i)
        fresh = dict(env)
        for loc, src in enumerate(inst.local_source):
            fresh[inst.local_names[loc]] = s[src] - BIAS
        stale = s[inst.stale]
        for loc, r in eff.reads:
            s[inst.loc + loc] = _biased(s[r] - BIAS, inst.local_names[loc])
            stale &= ~(1 << loc)
        if self.track:
            s[inst.stale] = stale
        net = inst.dirty + self.k
        changed: list[int] = []
        values = [(u, int(u.expr.evaluate(env, {})), int(u.expr.evaluate(fresh, {})))
                  for u in eff.updates]
        for u, value, meant in values:
            r = u.resource
            old = s[r] - BIAS
            name = self.resource_names[r]
            for loc in u.locals_used:
                src = inst.local_source[loc]
                if stale >> loc & 1 and env[inst.local_names[loc]] != s[src] - BIAS:
                    notes.append(
                        f"lost update: instance {i + 1} (step "
                        f"{inst.saga.steps[j].name!r}) writes {name}={value} "
                        f"computed from {inst.local_names[loc]}="
                        f"{env[inst.local_names[loc]]}, read before another "
                        f"instance changed {self.resource_names[src]} to "
                        f"{s[src] - BIAS}")
            s[r] = _biased(value, name)
            s[net + r] = _biased(s[net + r] - BIAS + meant - old, f"net {name}")
            if value != old:
                changed.append(r)
        for r in eff.bumps:
            s[r] = _biased(s[r] - BIAS + 1, self.resource_names[r])
            changed.append(r)
        if self.track:
            for k, other in enumerate(self.instances):
                if k == i or s[other.off + PHASE] >= _COMPLETED:
                    continue
                for loc, src in enumerate(other.local_source):
                    if src in changed:
                        s[other.stale] |= 1 << loc

    def _undo_check(self, s: list[int], i: int, j: int, eff: _Eff,
                    notes: list[str]) -> None:
        """Instance ``i`` undid an effect: whoever decided on it read dirty."""
        if not self.track:
            return
        for k, other in enumerate(self.instances):
            if k == i:
                continue
            hit = s[other.dirty + i] & sum(1 << r for r in eff.writes)
            if hit:
                names = [self.resource_names[r] for r in range(self.r)
                         if hit >> r & 1]
                notes.append(
                    f"dirty read: instance {k + 1} decided on {', '.join(names)} "
                    f"while instance {i + 1} held an uncommitted change to it, "
                    f"which instance {i + 1} then compensated (step "
                    f"{self.instances[i].saga.steps[j].name!r})")
                s[other.dirty + i] &= ~hit

    def _settle(self, s: list[int], i: int, old: Sequence[int],
                new: Sequence[int]) -> None:
        """Forget what no one can read again once instance ``i`` ends."""
        if new[PHASE] < _COMPLETED or old[PHASE] >= _COMPLETED:
            return
        inst = self.instances[i]
        for loc in range(len(inst.local_names)):
            s[inst.loc + loc] = BIAS
        s[inst.stale] = 0
        # Its effects are final now: a read of them is no longer dirty.
        for other in self.instances:
            s[other.dirty + i] = 0


@dataclass(frozen=True, slots=True)
class _Blocked:
    by_guard: bool


def _reach(eff: _Eff | None) -> frozenset[int]:
    """Every resource ``eff`` reads (directly or through a local it writes
    from), writes, decides on or may lock."""
    if eff is None:
        return frozenset()
    return eff.touches | eff.writes | eff.risk_lock | eff.sources


def _biased(value: int, what: str) -> int:
    if not _LO <= value <= _HI:
        raise EffectRangeError(
            f"{what}={value} is outside {_LO}..{_HI}, the range the checker "
            "stores; bound it with a guard or use smaller initial values")
    return value + BIAS

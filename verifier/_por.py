"""Partial-order reduction for many saga instances: ample sets.

K instances interleave; many of one instance's events touch nothing another
instance can see (a retry, a timeout, a crash of its orchestrator, an abort,
a compensation of a step without effect declarations, an effect on a
resource that only this instance reaches). Exploring every order of such
events multiplies states without finding anything new. In a state where some
instance ``i`` can only make such moves, the reduced search follows ``i``'s
moves alone (an *ample set*) and leaves the others for later.

What "touch nothing another instance can see" means comes from the semantics
and the effect declarations, not from a list per example:
:meth:`Composition.footprint` names the positions of an instance's
single-saga state that the rest of the composition reads: the effect counter
of every step whose action or compensation reaches (reads, directly or
through a local a write uses; writes; decides on; or may lock by value) a
resource that some *other* instance's action or
compensation may reach (:attr:`Composition.shared`, a static
over-approximation of every future move of the others). A change of a
counter is exactly when a resource effect is applied or undone; besides the
counters, the others read only whether the instance has ended
(:meth:`Composition.ended`). An event of the one saga semantics that leaves
those alone writes only its instance's own block and resources no other
instance reads, writes or locks. The conditions (Clarke, Grumberg, Peled,
*Model Checking*, ch. 10):

* C0: the ample set of a state with successors is not empty (an instance
  with no move is never chosen).
* C1: every move of ``i`` enabled in the state is in the set, and all are
  local: the moves of ``i`` depend only on ``i``'s own block and on
  resources only ``i`` reaches, which the other instances never change, so
  no move dependent on the set (another of ``i``'s, including a fault:
  crash, duplicate, late delivery, timeout) can happen first. An event
  that would take an effect on a shared resource is never local, so a
  guard or lock that blocks it in one state and not in another cannot hide
  a move of ``i``; an event blocked on resources only ``i`` reaches can be
  unblocked by ``i`` alone.
* C2: local moves are invisible: they change no resource a declared
  invariant reads (a step that writes one is in the footprint, whoever
  else reaches it), no other instance's block, end no instance and commit
  no anomaly (an anomaly needs another instance on the same resource).
  Conservation reads resources only in terminal states, which the
  reduction reaches exactly; the per-instance properties read the moving
  instance's own state, and the reduced search reaches every state of each
  instance that the full one does (the argument in docs/properties.md,
  "Partial-order reduction").
* C3, the cycle proviso for breadth-first search: a state is expanded fully
  when one of the ample successors has already been expanded. States are
  expanded in the order they are stored, so the last state expanded on any
  cycle closes it to an expanded state, and is expanded fully: no move is
  postponed around a cycle for ever.

Verdicts are exact; breadth-first depths are not (the reduced graph can reach a
violation later), so :func:`verifier.check` recomputes a counterexample found
with the reduction by an unreduced search bounded by its length. Termination
(strong fairness) is checked unreduced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from saga_models import semantics as sem
from saga_models.instances import Composition, InstanceEvent

from ._result import PropertyResult
from ._ts import StateT, TransitionSystem

Footprint = Callable[[Composition, int], Sequence[int]]
"""Which positions of instance ``i``'s single state the other instances see.
:meth:`Composition.footprint` by default; a test passes a wrong one to check
that the parity suite notices."""


class AmpleSets:
    """Chooses the successors a reduced breadth-first search follows.

    Args:
        comp: The composition explored.
        footprint: See :data:`Footprint` (only tests change it).

    >>> from saga_models import SagaBuilder
    >>> from saga_models.instances import NO_FAULTS
    >>> saga = (SagaBuilder("s").step("a", participant="p", action="x",
    ...         compensation="undo").build())
    >>> comp = Composition((saga, saga), faults=NO_FAULTS)
    >>> ample = AmpleSets(comp)
    >>> s0 = comp.initial()
    >>> full = comp.successors(s0)
    >>> [ev.instance for ev, _ in ample.reduce(s0, full, lambda t: False)]
    [0]
    >>> len(full)
    2
    """

    def __init__(self, comp: Composition, *,
                 footprint: Footprint | None = None,
                 visible: frozenset[int] = frozenset()) -> None:
        self.comp = comp
        pick = footprint or Composition.footprint
        # Visibility: a step whose action or compensation writes a resource a
        # property reads in every state (a declared invariant) is never
        # local, even when no other instance can touch the resource.
        self._seen = tuple(
            tuple(sorted(set(pick(comp, i)) | {
                comp.counter_position(j) for j in inst.effect_steps
                if _writes(inst, j) & visible}))
            for i, inst in enumerate(comp.instances))
        self._end_seen = tuple(comp.end_seen(i) for i in range(comp.k))
        self._local: dict[tuple[int, tuple[int, ...]], bool] = {}

    def local_moves(self, state: StateT, i: int) -> bool:
        """Whether every event the one saga semantics enables for instance
        ``i`` in ``state`` is local (invisible and independent of every other
        instance's). Depends only on ``i``'s single state, so it is computed
        once each. An event that would take or undo an effect on resources
        only ``i`` reaches is local even when the composition blocks it: only
        ``i``'s own moves can change what blocks it."""
        single = self.comp.single(state, i)
        key = (i, single)
        ok = self._local.get(key)
        if ok is None:
            saga = self.comp.instances[i].saga
            ok = all(self._unseen(i, single, sem.apply(saga, single, e))
                     for e in sem.enabled(saga, single, self.comp.faults))
            if len(self._local) > 1 << 20:
                self._local.clear()
            self._local[key] = ok
        return ok

    def _local_move(self, state: StateT, i: int, nxt: StateT) -> bool:
        """Whether one move of ``i`` (e.g. a business failure the composition
        offers in place of a blocked event) leaves the footprint alone."""
        comp = self.comp
        return self._unseen(i, comp.single(state, i), comp.single(nxt, i))

    def _unseen(self, i: int, before: Sequence[int],
                after: Sequence[int]) -> bool:
        """Whether ``i``'s single state going from ``before`` to ``after``
        leaves alone what the others or a property see: the footprint, and
        the end of ``i`` where another instance observes it."""
        if self._end_seen[i] and Composition.ended(after):
            return False
        return all(before[p] == after[p] for p in self._seen[i])

    def reduce(self, state: StateT, succ: list[tuple[Any, StateT]],
               expanded: Callable[[StateT], bool]) -> list[tuple[Any, StateT]]:
        """The ample subset of ``succ`` (all of ``state``'s successors).

        ``expanded(t)`` says whether ``t`` has been expanded already (C3).
        """
        by: dict[int, list[tuple[Any, StateT]]] = {}
        for item in succ:
            ev: InstanceEvent = item[0]
            by.setdefault(ev.instance, []).append(item)
        if len(by) < 2:
            return succ
        # Fewest moves first: the smallest ample set that qualifies.
        for i in sorted(by, key=lambda i: len(by[i])):
            moves = by[i]
            if not self.local_moves(state, i):
                continue  # a move the others can see, or one they can block
            if any(ev.notes for ev, _ in moves):
                continue  # cannot happen for local moves; kept as a guard
            if any(ev.business and not self._local_move(state, i, t)
                   for ev, t in moves):
                continue  # a business failure that ends or aborts ``i``
            if any(expanded(t) for _, t in moves):
                continue  # C3: this choice could close a cycle
            return moves
        return succ


def _writes(inst: Any, j: int) -> frozenset[int]:
    """Resources step ``j``'s action or compensation writes."""
    out: frozenset[int] = frozenset()
    for eff in (inst.action[j], inst.comp[j]):
        if eff is not None:
            out |= eff.writes
    return out


def explore_shortest(reduced: TransitionSystem, plain: TransitionSystem, *,
                     properties: Sequence[str] | None = None,
                     **budgets: Any) -> tuple[PropertyResult, ...]:
    """Explore ``reduced`` (with ample sets); recompute each counterexample it
    finds on ``plain`` (the same system without them), breadth-first and
    bounded by the longest one found, so every counterexample is shortest.

    A verdict keeps the reduced run's fault model (which names the
    reductions) and statistics.

    Args:
        reduced: The system explored through its ample sets.
        plain: The same system without partial-order reduction.
        properties: The properties to check (default: all of ``reduced``).
        **budgets: Passed to :func:`~verifier._explicit.explore`.
    """
    from ._explicit import explore

    results = explore(reduced, properties=properties, **budgets)
    cex = {r.property: r for r in results if r.counterexample is not None}
    if not cex:
        return results
    bound = max(len(r.counterexample) for r in cex.values())  # type: ignore[arg-type]
    again = {r.property: r for r in explore(plain, properties=sorted(cex),
                                            max_depth=bound, **budgets)}
    out = []
    for r in results:
        short = again.get(r.property)
        if r.property not in cex:
            out.append(r)
        elif short is not None and short.counterexample is not None:
            # The verdict is the reduced run's; only the trace is replaced.
            out.append(dataclasses.replace(
                r, counterexample=short.counterexample, reason=short.reason))
        else:
            # A real trace, but maybe not a shortest one: say so.
            why = short.reason if short is not None else "not re-explored"
            out.append(dataclasses.replace(r, reason=(
                f"{r.reason} (counterexample from the reduced search, maybe "
                f"not shortest: {why})")))
    return tuple(out)

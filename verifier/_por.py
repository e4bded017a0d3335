"""Partial-order reduction: ample sets between instances and between branches.

One reduction (``--por``), one chooser, two kinds of independent moves:

* between the *branches* of one instance (a saga is a DAG: the moves of two
  steps with no dependency between them write disjoint blocks of its
  state), for a single saga (:class:`BranchAmple`, K = 1) and inside every
  instance of a composition (:meth:`AmpleSets.reduce` tries one step of one
  instance first); :class:`BranchIndependence` says from the semantics when
  a step's moves may be followed alone. A move of step ``i`` is *local* when
  it is not a duplicate (a global budget) and writes only ``i``'s block (no
  abort, completion, STUCK, end of compensation or chain position: the
  header), and stays invisible to the block-level state property. Local
  moves of different steps commute and disable nothing as long as the
  header stays put, so ``i``'s local moves form an ample set where no other
  step can change the header or enable a new move of ``i`` before ``i``
  moves (:meth:`BranchIndependence.stable`): no crash left in the budget
  (a crash is enabled everywhere and disables every move, so with one left
  nothing is reduced); running, no other unfinished step that does not
  depend on ``i`` can abort or stick, and ``i`` is not OK (else the others
  could complete); compensating, no chains, ``i`` still holds the end of
  the compensation, its own compensation dispatch (the one move of ``i``
  another step can enable) is not still awaited, and under a bounded
  policy no other compensation can fail. C0 and C3 as below; C2 holds
  since no local move changes the phase, and the others cannot either, so
  terminal states, aborts and every first dispatch are reached exactly (the
  argument in docs/properties.md, "Between the branches of one instance").
  In a composition the step must also be private (no other step of any
  instance reaches its resources, no invariant reads them, no locals), its
  instance's end seen by no other instance, and no other step of it may
  deliver late (an ended instance makes no move there, so the end, which a
  local move may become once the other steps are done, disables those).
* between *instances*, below.

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
from ._saga_ts import SagaTransitionSystem
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
                 visible: frozenset[int] = frozenset(),
                 stable: Stable | None = None) -> None:
        self.comp = comp
        self.stable = stable
        # Between branches: per instance, the steps whose action and
        # compensation reach only resources that no other step of any
        # instance reaches and no invariant reads, without locals (a move
        # of such a step writes nothing outside its instance's block but
        # those resources), and the semantics' independence of its steps
        # (a step whose action has an effect declaration may be refused by
        # a guard or a lock: a business failure that aborts).
        self._private: list[tuple[bool, ...]] = []
        self._branches: list[BranchIndependence] = []
        for i, inst in enumerate(comp.instances):
            n = len(inst.saga.steps)
            reach = [_step_reach(inst, j) for j in range(n)]
            self._private.append(tuple(
                not _uses_locals(inst, j) and not reach[j] & (
                    comp.shared[i] | visible
                    | frozenset().union(*(reach[c] for c in range(n) if c != j)))
                for j in range(n)))
            self._branches.append(BranchIndependence(
                inst.saga, comp.faults, may_refuse=frozenset(
                    j for j in range(n) if inst.action[j] is not None),
                end_stops_late=True))
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
        order = sorted(by, key=lambda i: len(by[i]))
        # One step of one instance first (the smaller ample set), then one
        # whole instance; fewest moves first: the smallest that qualifies.
        for i in order:
            got = self._branch(state, i, by[i], expanded)
            if got is not None and len(got) < len(succ):
                return got
        for i in order if len(by) > 1 else ():
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

    def _branch(self, state: StateT, i: int, moves: list[tuple[Any, StateT]],
                expanded: Callable[[StateT], bool]
                ) -> list[tuple[Any, StateT]] | None:
        """The moves of one step of instance ``i`` that form an ample set
        (between branches: :class:`BranchIndependence`), or None. The step
        must be private (its resources reached by no other step of any
        instance), so its moves are independent of the other instances'
        too, and leave the footprint alone."""
        comp = self.comp
        ind = self._branches[i]
        if self._end_seen[i]:
            # A move of one step may become the one that ends ``i`` once
            # its other steps are done, and another instance sees that end
            # (a lock freed, a refusal no longer offered): dependent.
            return None
        single = comp.single(state, i)
        if not ind.quiet(single):
            return None
        groups: dict[int, list[tuple[Any, StateT]]] = {}
        for item in moves:
            ev: InstanceEvent = item[0]
            if ev.notes or ev.business:
                return None  # cannot happen for local moves; kept as a guard
            groups.setdefault(ev.event.step, []).append(item)
        saga = comp.instances[i].saga
        keep = comp.keep_attempts
        events: dict[int, list[tuple[sem.Event, StateT]]] = {}
        for e in sem.enabled(saga, single, comp.faults):
            events.setdefault(e.step, []).append(
                (e, sem.apply(saga, single, e, keep_attempts=keep)))
        private = self._private[i]
        mine = {b: m for b, m in groups.items()
                if b >= 0 and private[b] and b in events}
        if not mine:
            return None
        return branch_ample(ind, single, mine, events, expanded=expanded,
                            stable=self.stable)


def _step_reach(inst: Any, j: int) -> frozenset[int]:
    """Every resource step ``j``'s action or compensation reaches."""
    out: frozenset[int] = inst.reach[j]
    for eff in (inst.action[j], inst.comp[j]):
        if eff is not None:
            out |= eff.touches | eff.writes | eff.decides | set(eff.bumps)
    return out


def _uses_locals(inst: Any, j: int) -> bool:
    """Whether step ``j`` reads into a local or computes from one."""
    return any(eff is not None and (eff.reads or eff.sources or any(
        u.locals_used for u in eff.updates))
        for eff in (inst.action[j], inst.comp[j]))


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


# --- between the branches of one instance ------------------------------------
_HEADER = slice(0, sem.HEADER)
_TOOK_EFFECT = (sem.Status.OK, sem.Status.UNKNOWN, sem.Status.RETRY_UNKNOWN)

Stable = Callable[["BranchIndependence", StateT, int, Sequence[sem.Event]], bool]
"""Whether, in a single-saga state, no move of the *other* steps can change
the header or enable a new move of step ``i`` before ``i`` moves (given
``i``'s enabled events). :meth:`BranchIndependence.stable` by default; a
test passes a wrong one to check that the parity suite notices."""


class BranchIndependence:
    """When the moves of one step (branch) of a saga may be followed alone.

    The state of one saga is a header (phase, orchestrator down, crashes,
    duplicates, abort trigger, chain position) and one block per step
    (status, attempts, deliveries, effect, compensation status and
    attempts, late flag). An event of step ``i`` is *local* in a state when
    it is not a duplicate (which spends the global duplicate budget) and its
    successor differs from the state only in ``i``'s block: no abort, no
    completion, no STUCK, no end of the compensation, no chain position.
    Every event reads its own block; besides, a dispatch reads the phase and
    its dependencies' statuses, a reply the phase, a compensation dispatch
    the phase, the chain position and its dependents' statuses, a late
    delivery whether the orchestrator is down (``saga_models._kernel``).

    Local events of two different steps write disjoint blocks and read the
    other's block only to *enable* (a dependency that becomes OK, a
    dependent whose compensation is done): they commute and neither
    disables the other, as long as the header they read stays put. The
    header is what makes steps dependent: a crash disables every move, an
    abort disables every dispatch and changes what a reply does, the last
    completion or compensation ends the saga, a STUCK ends it. So a step's
    local events may be followed alone only where no other step can change
    the header before ``i`` moves (:meth:`stable`).

    Args:
        saga: The saga.
        faults: The fault model it is explored under.
        may_refuse: Steps whose action may be refused by the composition
            (a guard or a lock on a resource): a business failure that
            aborts even when the fault model has no failures.
        end_stops_late: Whether the end of the saga disables the late
            deliveries still in the network (a composition offers no move
            of an ended instance; the single semantics keeps them enabled).
            Then the last completion or compensation, which any step's move
            may become once the others are done, is dependent on every
            other step's late delivery.
    """

    def __init__(self, saga: Any, faults: sem.FaultModel, *,
                 may_refuse: frozenset[int] = frozenset(),
                 end_stops_late: bool = False) -> None:
        self.saga = saga
        self.faults = faults
        steps = saga.steps
        self.n = len(steps)
        f = faults
        ends = []
        comp_fails = []
        for j, s in enumerate(steps):
            breaker = any(o.breaker is not None and o.participant == s.participant
                          for o in steps)
            fail = f.fail or (breaker and f.timeout)
            times_out = f.timeout and s.timeout is not None
            expires = (f.timeout or f.fail) and s.total_timeout is not None
            fatal = fail and bool(s.retry.retryable_errors
                                  or s.retry.non_retryable_errors)
            bounded = s.retry.max_attempts is not None
            # A reply that is not ok ends the running phase (abort or
            # STUCK) when the step's attempts can run out, or a fatal error
            # or the total timeout spends it: over-approximated per step.
            ends.append(j in may_refuse or (
                (fail or times_out or expires) and (bounded or fatal or expires)))
            comp_fails.append(f.comp_fail or (breaker and (f.fail or f.timeout))
                              or s.compensation_needs_result)
        self.end_stops_late = end_stops_late
        self.can_late = tuple(
            f.late and (s.timeout is not None or s.total_timeout is not None)
            for s in steps)
        """Per step: whether a command of it may be delivered late (a
        timed-out attempt, or a sibling cut off by an abort)."""
        self.can_end = tuple(ends)
        """Per step: whether a reply of it may end the running phase."""
        self.comp_may_fail = tuple(comp_fails)
        """Per step: whether a compensation attempt of it may fail."""
        self.has_comp = tuple(s.compensation is not None for s in steps)
        self.dependents = tuple(frozenset(sem.compensate_after(saga, j))
                                for j in range(self.n))
        self.comp_bounded = saga.compensation_policy.max_attempts is not None
        self.chains = bool(saga.compensation_chains)

    def quiet(self, state: StateT) -> bool:
        """Whether ``state`` may be reduced at all: running or compensating,
        the orchestrator up, and no crash left in the budget (a crash is
        enabled in every such state and disables every other move, so it is
        dependent on all of them: C1 forbids postponing anything past it)."""
        return (state[sem.PHASE] <= sem.Phase.COMPENSATING
                and not state[sem.DOWN]
                and state[sem.CRASHES] >= self.faults.crashes)

    def stable(self, state: StateT, i: int,
               events: Sequence[sem.Event]) -> bool:
        """Whether no move of the other steps can change the header (but
        the duplicate count, which no local move reads), or enable a new
        move of step ``i``, before ``i`` moves; ``events`` are ``i``'s
        enabled events in ``state``.

        Running: the phase changes only by a reply that aborts or sticks
        (:attr:`can_end`; a step that is OK makes no reply, a dependent of
        ``i`` cannot start before ``i`` is OK) or by the last completion,
        which needs ``i`` OK. Compensating: it changes only by the end of
        the compensation, which needs ``i`` settled, or by a compensation
        that fails for good under a bounded policy; hand-wired chains move
        the chain position (header) at every compensation, so they are not
        reduced. The only move of ``i`` another step can enable is its
        compensation dispatch (when its dependents are undone): ``i`` must
        not be waiting for it."""
        b = sem.HEADER + sem.WIDTH * i
        st, cs = state[b + sem.ST], state[b + sem.CS]
        if self.end_stops_late and self._late_elsewhere(state, i):
            return False  # a move of i may end the saga and disable it
        if state[sem.PHASE] == sem.Phase.RUNNING:
            if st == sem.Status.OK:
                return False  # the others may complete the saga
            below = self.dependents[i]
            return not any(
                self.can_end[j]
                and state[sem.HEADER + sem.WIDTH * j + sem.ST] != sem.Status.OK
                for j in range(self.n) if j != i and j not in below)
        if self.chains:
            return False
        needs = (self.has_comp[i] and st in _TOOK_EFFECT
                 and cs in (sem.CompStatus.NONE, sem.CompStatus.RETRY))
        if not (st == sem.Status.RUNNING or cs == sem.CompStatus.RUNNING
                or needs):
            return False  # the others may end the compensation without i
        if needs and not any(e.kind is sem.EventKind.COMP_DISPATCH
                             for e in events):
            return False  # waiting for others to enable its compensation
        if self.comp_bounded:
            for j in range(self.n):
                bj = sem.HEADER + sem.WIDTH * j
                if (j != i and self.has_comp[j] and self.comp_may_fail[j]
                        and state[bj + sem.CS] != sem.CompStatus.DONE):
                    return False  # another compensation may end STUCK
        return True

    def _late_elsewhere(self, state: StateT, i: int) -> bool:
        """Whether another step has a late delivery pending, or may get one
        before ``i`` moves (an attempt in flight, or one it may still send
        while running; a dependent of ``i`` cannot start before ``i``)."""
        running = state[sem.PHASE] == sem.Phase.RUNNING
        below = self.dependents[i]
        for j in range(self.n):
            if j == i:
                continue
            bj = sem.HEADER + sem.WIDTH * j
            if state[bj + sem.LT]:
                return True
            st = state[bj + sem.ST]
            if self.can_late[j] and (st == sem.Status.RUNNING or (
                    running and j not in below and st in (
                        sem.Status.PENDING, sem.Status.RETRY_FAILED,
                        sem.Status.RETRY_UNKNOWN))):
                return True
        return False

    def local(self, before: StateT, event: sem.Event, after: StateT) -> bool:
        """Whether ``event`` (of step ``event.step``) from ``before`` to
        ``after`` is local: no duplicate, no header change, nothing but its
        own block written, and invisible to the one property that reads a
        block in every state (a compensation of a step that never started:
        ``compensation_completeness``)."""
        i = event.step
        if i < 0 or event.kind is sem.EventKind.DUPLICATE:
            return False
        if before[_HEADER] != after[_HEADER]:
            return False
        lo = sem.HEADER + sem.WIDTH * i
        hi = lo + sem.WIDTH
        if before[:lo] != after[:lo] or before[hi:] != after[hi:]:
            return False
        return _unstarted(before, lo) == _unstarted(after, lo)


def _unstarted(state: StateT, b: int) -> bool:
    """A compensation of a step that never started (what
    ``compensation_completeness`` reads in every state)."""
    return (state[b + sem.CS] != sem.CompStatus.NONE
            and state[b + sem.ST] == sem.Status.PENDING)


def branch_ample(ind: BranchIndependence, state: StateT,
                 groups: dict[int, list[tuple[Any, StateT]]],
                 events: dict[int, list[tuple[sem.Event, StateT]]], *,
                 expanded: Callable[[StateT], bool], stable: Stable | None
                 ) -> list[tuple[Any, StateT]] | None:
    """The moves of one step that form an ample set, or None.

    ``state`` is the single-saga state; ``groups`` the moves to return, by
    step; ``events`` the same moves as single-saga events and successors
    (for a composition, the instance's own part), by step."""
    check = stable or BranchIndependence.stable
    for i in sorted(groups, key=lambda i: len(groups[i])):
        if i < 0:
            continue
        mine = events[i]
        if not all(ind.local(state, e, t) for e, t in mine):
            continue  # C1/C2: a move the other steps can see
        if not check(ind, state, i, [e for e, _ in mine]):
            continue  # C1: another step may change the header first
        moves = groups[i]
        if any(expanded(t) for _, t in moves):
            continue  # C3: this choice could close a cycle
        return moves
    return None


class BranchAmple:
    """The ample sets of one saga (K = 1): the moves of one step whose
    moves are all local where no other step can change the header
    (:class:`BranchIndependence`).

    Args:
        saga: The saga.
        faults: Its fault model.
        stable: See :data:`Stable` (only tests change it).

    >>> from saga_models import SagaBuilder
    >>> from saga_models.semantics import NO_FAULTS
    >>> saga = (SagaBuilder("s").step("a", participant="p", action="x",
    ...         compensation="undo").step("b", participant="q", action="y",
    ...         compensation="undo").build())
    >>> ts = ReducedSagaTransitionSystem(saga, NO_FAULTS)
    >>> s0 = ts.initial()[0]
    >>> [e.describe(saga) for e, _ in ts.reduce_successors(
    ...     s0, ts.successors(s0), lambda t: False)]
    ['send a']
    """

    def __init__(self, saga: Any, faults: sem.FaultModel, *,
                 stable: Stable | None = None) -> None:
        self.ind = BranchIndependence(saga, faults)
        self.stable = stable

    def reduce(self, state: StateT, succ: list[tuple[Any, StateT]],
               expanded: Callable[[StateT], bool]) -> list[tuple[Any, StateT]]:
        """The ample subset of ``succ`` (all of ``state``'s successors)."""
        if not self.ind.quiet(state):
            return succ
        by: dict[int, list[tuple[Any, StateT]]] = {}
        for item in succ:
            by.setdefault(item[0].step, []).append(item)
        if len(by) < 2 or -1 in by:
            return succ
        got = branch_ample(self.ind, state, by, by, expanded=expanded,
                           stable=self.stable)
        return succ if got is None else got


class ReducedSagaTransitionSystem(SagaTransitionSystem):
    """One saga explored through :class:`BranchAmple` (its safety properties
    only: termination is checked on the unreduced system)."""

    def __init__(self, saga: Any, faults: sem.FaultModel = sem.ALL_FAULTS, *,
                 stable: Stable | None = None) -> None:
        super().__init__(saga, faults)
        self.por = BranchAmple(saga, faults, stable=stable)
        self.fault_model += "; reductions=por"
        self.properties = tuple(p for p in self.properties if not p.liveness)
        self.compiled_properties = self.properties

    def reduce_successors(self, state: StateT, succ: list[tuple[Any, StateT]],
                          expanded: Callable[[StateT], bool],
                          ) -> list[tuple[Any, StateT]]:
        """The successors the reduced search follows."""
        return self.por.reduce(state, succ, expanded)

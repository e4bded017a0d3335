"""Many saga instances over shared resources, as a transition system.

The successor relation is :class:`saga_models.instances.Composition`'s (which is
the single saga semantics per instance plus the resource effects); this module
adds what the checker needs: per-instance fairness families, renderings with
instance ids and resource values, the single-saga properties applied to every
instance, and the isolation properties (conservation, no dirty read, no lost
update, declared resource invariants).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from saga_models import FaultModel, Saga
from saga_models import semantics as sem
from saga_models.instances import BIAS, Composition, InstanceEvent
from saga_models.semantics import PHASE, Phase
from saga_models.workflow._expr import parse_expr

from ._por import AmpleSets, Footprint
from ._saga_ts import FAIRNESS, SagaTransitionSystem, fairness_family
from ._ts import Property, StateT

ISOLATION_PROPERTIES = ("conservation", "no_dirty_read", "no_lost_update")


class MultiSagaTransitionSystem:
    """The transition system of K saga instances over shared resources.

    Args:
        sagas: The saga each instance runs.
        faults: The fault model of every instance.
        track_anomalies: See :class:`~saga_models.instances.Composition`; off,
            the dirty-read and lost-update properties are not offered.
        symmetry: Explore one representative per permutation of identical
            instances. Only the safety properties are offered then (strong
            fairness is not preserved by the quotient); :func:`verifier.check`
            checks termination on the unreduced system.
        por: Partial-order reduction (:mod:`verifier._por`): where an
            instance can only make local moves, follow them alone. Only the
            safety properties are offered then, as with ``symmetry``; the two
            combine.
        footprint: Test-only: a wrong footprint for the reduction (see
            :data:`verifier._por.Footprint`).
        keep_attempts: See :class:`~saga_models.instances.Composition`.
    """

    def __init__(self, sagas: Sequence[Saga], faults: FaultModel = sem.ALL_FAULTS,
                 *, track_anomalies: bool = True, symmetry: bool = False,
                 por: bool = False, footprint: Footprint | None = None,
                 keep_attempts: bool = False) -> None:
        self.comp = Composition(sagas, faults=faults,
                                track_anomalies=track_anomalies,
                                symmetry=symmetry, keep_attempts=keep_attempts)
        self.sagas = self.comp.sagas
        self.faults = faults
        names = []
        for s in self.sagas:
            if s.name not in names:
                names.append(s.name)
        self.name = "+".join(names)
        self.fault_model = faults.describe() + f"; instances={len(self.sagas)}"
        self.reduced = self.comp.symmetry
        """Whether states are representatives (the checker then replays a
        counterexample with :meth:`concretize`)."""
        self.por = (AmpleSets(self.comp, footprint=footprint,
                              visible=self._invariant_reads())
                    if por else None)
        """The ample sets the explorer follows (:meth:`reduce_successors`)."""
        ran = [name for name, on in (("symmetry", self.reduced),
                                     ("por", self.por is not None)) if on]
        if ran:
            self.fault_model += "; reductions=" + ",".join(ran)
        if keep_attempts:
            self.fault_model += "; keep_attempts"
        self.fairness = FAIRNESS + ", per instance"
        self._singles = tuple(SagaTransitionSystem(s, faults) for s in self.sagas)
        self._fam_off: list[int] = []
        off = 0
        for s in self.sagas:
            self._fam_off.append(off)
            off += 4 * len(s.steps) + 1
        props = self._properties(track_anomalies)
        if self.comp.symmetry or por:
            props = tuple(p for p in props if not p.liveness)
        self.properties = props

    def _invariant_reads(self) -> frozenset[int]:
        """Resources a declared invariant reads: the only ones a property
        looks at in every state (conservation looks at terminal states,
        which the reduction keeps; the anomaly properties look at labels of
        moves on shared resources, never at a local move's)."""
        comp = self.comp
        out: set[int] = set()
        for saga in self.sagas:
            for inv in saga.invariants:
                expr = parse_expr(inv.expr, records=comp.records)
                for view in comp.views:
                    out |= {view[n] for n in expr.counters if n in view}
        return frozenset(out)

    # --- the protocol ----------------------------------------------------------
    def initial(self) -> list[StateT]:
        return [self.comp.initial()]

    def successors(self, state: StateT) -> list[tuple[Any, StateT]]:
        return list(self.comp.successors(state))

    def reduce_successors(self, state: StateT, succ: list[tuple[Any, StateT]],
                          expanded: Callable[[StateT], bool],
                          ) -> list[tuple[Any, StateT]]:
        """The successors a reduced search follows (all without ``por``)."""
        if self.por is None:
            return succ
        return self.por.reduce(state, succ, expanded)

    def is_terminal(self, state: StateT) -> bool:
        return self.comp.is_terminal(state)

    def concretize(self, path: Sequence[StateT]) -> list[tuple[Any, StateT]]:
        """A real execution through the representatives ``path`` (from the
        initial state): each step picks the successor of the previous real
        state whose representative is the next one, so instance ids stay the
        same from line to line. Returns (label, state) per step after the
        first."""
        comp = self.comp
        real = path[0]
        out: list[tuple[Any, StateT]] = []
        for rep in path[1:]:
            for label, t in comp.concrete_successors(real):
                if self.canonical(t) == rep:
                    out.append((label, t))
                    real = t
                    break
            else:
                raise AssertionError("no real step to the next representative")
        return out

    def concrete_successors(self, state: StateT) -> list[tuple[Any, StateT]]:
        """Successors that are not replaced by representatives."""
        return list(self.comp.concrete_successors(state))

    def canonical(self, state: StateT) -> StateT:
        """The representative the reduced exploration stores for ``state``."""
        return self.comp.canonical(state) if self.comp.symmetry else state

    def fairness_family(self, label: Any) -> int:
        ev: InstanceEvent = label
        fam = fairness_family(len(self.sagas[ev.instance].steps), ev.event)
        return -1 if fam < 0 else self._fam_off[ev.instance] + fam

    def label_text(self, label: Any) -> str:
        ev: InstanceEvent = label
        text = ev.event.describe(self.sagas[ev.instance])
        if ev.business:
            text = text.replace("fatal (no effect)",
                                "business failure (guard or lock refused)")
        return f"[{ev.instance + 1}] {text}"

    def label_json(self, label: Any) -> dict[str, object]:
        ev: InstanceEvent = label
        out = dict(ev.event.to_json(self.sagas[ev.instance]))
        out["instance"] = ev.instance + 1
        out["business_failure"] = ev.business
        if ev.notes:
            out["anomalies"] = list(ev.notes)
        return out

    def state_json(self, state: StateT) -> dict[str, object]:
        comp = self.comp
        return {
            "resources": comp.resources_of(state),
            "instances": [
                {"instance": i + 1, "saga": inst.saga.name,
                 **sem.view(inst.saga, comp.single(state, i)).to_json(),
                 "locals": comp.locals_of(state, i)}
                for i, inst in enumerate(comp.instances)
            ],
        }

    # --- properties --------------------------------------------------------------
    def _properties(self, track: bool) -> tuple[Property, ...]:
        comp = self.comp
        out = [self._per_instance(name) for name in (
            "compensation_completeness", "termination", "eventual_consistency",
            "structure")]
        if not comp.r:
            return tuple(out)

        def conservation(state: StateT) -> str | None:
            expected = list(comp.initial_values)
            for i, inst in enumerate(comp.instances):
                if state[inst.off + PHASE] == Phase.COMPLETED:
                    for r, d in enumerate(comp.net_of(state, i)):
                        expected[r] += d
            actual = comp.resources_of(state)
            for r, name in enumerate(comp.resource_names):
                if comp.conserved[r] and actual[name] != expected[r]:
                    return (
                        f"every instance ended but {name}={actual[name]}, not "
                        f"{expected[r]} (initial {comp.initial_values[r]} plus "
                        "the effects of the completed instances only)")
            return None

        out.append(Property(
            name="conservation",
            description="when every instance has ended, each resource equals its "
            "initial value plus the effects of the completed instances only",
            on_terminal=conservation))
        if track:
            def note(kind: str) -> Any:
                def check(src: StateT, label: Any, dst: StateT) -> str | None:
                    ev: InstanceEvent = label
                    for n in ev.notes:
                        if n.startswith(kind):
                            return n
                    return None
                return check

            out.append(Property(
                name="no_dirty_read",
                description="no instance decides on a resource value that "
                "another instance later compensates",
                on_transition=note("dirty read")))
            out.append(Property(
                name="no_lost_update",
                description="no instance overwrites a resource from a value it "
                "read before another instance changed it",
                on_transition=note("lost update")))
            out += self._countermeasures()
            out += self._pessimistic_views()
            out += self._by_values()
        seen: set[str] = set()
        for saga in self.sagas:
            for inv in saga.invariants:
                if inv.name in seen:
                    continue
                seen.add(inv.name)
                out.append(self._invariant(inv.name, inv.expr))
        return tuple(out)

    def _countermeasures(self) -> list[Property]:
        """One property per declared version check or reread: the step makes
        no lost update (what the countermeasure is there to remove). It is
        violated, with the anomaly's counterexample, when the countermeasure
        does not cover what the step writes (e.g. the version was read after
        the value, or another local feeds the write)."""
        out: list[Property] = []
        done: set[int] = set()
        for saga in self.sagas:
            if id(saga) in done:
                continue
            done.add(id(saga))
            for step in saga.steps:
                eff = step.effect
                if eff is None:
                    continue
                for kind, what in (
                        ("version_check", ", ".join(
                            f"{rec}.version == {loc}"
                            for rec, loc in eff.version_checks)),
                        ("reread", ", ".join(eff.rereads))):
                    if what:
                        out.append(self._countermeasure(saga, step.name, kind,
                                                        what))
        return out

    def _countermeasure(self, saga: Saga, step: str, kind: str,
                        what: str) -> Property:
        tag = f"(step {step!r})"
        sagas = self.sagas

        def check(src: StateT, label: Any, dst: StateT) -> str | None:
            ev: InstanceEvent = label
            if sagas[ev.instance] is not saga:
                return None
            for n in ev.notes:
                if n.startswith("lost update") and tag in n:
                    return (f"the {kind} ({what}) in step {step!r} does not "
                            f"remove the lost update: {n}")
            return None

        prefix = f"{saga.name}." if len({s.name for s in sagas}) > 1 else ""
        return Property(
            name=f"{kind}:{prefix}{step}",
            description=f"countermeasure: the {kind} ({what}) in step {step!r} "
            "removes the step's lost updates",
            on_transition=check)

    def _pessimistic_views(self) -> list[Property]:
        """One property per resource a saga declares its order a pessimistic
        view of: no other instance decides on a change of it by this saga
        that is then compensated (a dirty read of it)."""
        out: list[Property] = []
        done: set[int] = set()
        several = len({s.name for s in self.sagas}) > 1
        for saga in self.sagas:
            if id(saga) in done:
                continue
            done.add(id(saga))
            for res in saga.pessimistic_view:
                prefix = f"{saga.name}." if several else ""
                out.append(Property(
                    name=f"pessimistic_view:{prefix}{res}",
                    description=f"countermeasure: saga {saga.name!r} writes "
                    f"{res} only in steps that are never compensated, so no "
                    "instance reads its changes of it dirty",
                    on_transition=self._view_check(saga, res)))
        return out

    def _view_check(self, saga: Saga, res: str) -> Any:
        sagas = self.sagas
        # The static reason, named in the report: steps that write the
        # resource and can still be compensated (they run before the pivot).
        risky = [s.name for s in saga.steps
                 if s.compensation is not None and s.effect is not None
                 and any(r == res or r.startswith(f"{res}.")
                         for r, _ in s.effect.updates)]
        why = (f"step(s) {', '.join(map(repr, risky))} write {res} and can be "
               "compensated (make them retriable steps after the pivot); "
               if risky else "")

        def check(src: StateT, label: Any, dst: StateT) -> str | None:
            ev: InstanceEvent = label
            if sagas[ev.instance] is not saga:
                return None
            for n in ev.notes:
                if not n.startswith("dirty read"):
                    continue
                decided = n.split("decided on ", 1)[1].split(" while", 1)[0]
                if any(r == res or r.startswith(f"{res}.")
                       for r in decided.split(", ")):
                    return (f"the order of saga {saga.name!r} is not a "
                            f"pessimistic view of {res}: {why}{n}")
            return None

        return check

    def _by_values(self) -> list[Property]:
        """One property per step that chooses its lock by value: no instance
        of its saga makes a dirty read of what the step decides on. It is
        violated when the high-risk condition lets a request that can read
        dirty through without the lock (or the lock misses a resource the
        step decides on)."""
        out: list[Property] = []
        comp = self.comp
        several = len({s.name for s in self.sagas}) > 1
        done: set[int] = set()
        for inst in comp.instances:
            saga = inst.saga
            if id(saga) in done:
                continue
            done.add(id(saga))
            for j, step in enumerate(saga.steps):
                eff, compiled = step.effect, inst.action[j]
                if eff is None or eff.high_risk is None or compiled is None:
                    continue
                decided = {comp.resource_names[r] for r in compiled.decides}
                prefix = f"{saga.name}." if several else ""
                what = (f"high risk when {eff.high_risk}: lock "
                        f"{', '.join(eff.high_risk_lock)}")
                out.append(Property(
                    name=f"by_value:{prefix}{step.name}",
                    description=f"countermeasure: step {step.name!r} chooses "
                    f"its lock by value ({what}) so that no instance reads "
                    "dirty what it decides on",
                    on_transition=self._by_value_check(saga, step.name, what,
                                                       decided)))
        return out

    def _by_value_check(self, saga: Saga, step: str, what: str,
                        decided: set[str]) -> Any:
        sagas = self.sagas

        def check(src: StateT, label: Any, dst: StateT) -> str | None:
            for n in label.notes:
                if not n.startswith("dirty read: instance "):
                    continue
                reader = int(n.removeprefix("dirty read: instance ")
                             .split(" ", 1)[0]) - 1
                names = n.split("decided on ", 1)[1].split(" while", 1)[0]
                if sagas[reader] is saga and decided & set(names.split(", ")):
                    return (f"the by value choice in step {step!r} ({what}) "
                            f"does not remove the dirty read: {n}")
            return None

        return check

    def _invariant(self, name: str, text: str) -> Property:
        comp = self.comp
        expr = parse_expr(text, records=comp.records)
        wanted = sorted(n for n in expr.counters
                        if any(n in view for view in comp.views))
        # One evaluation per distinct row an instance sees: a record keyed by
        # instance makes the invariant one per instance (for all of them).
        idx = list(dict.fromkeys(
            tuple((n, view[n]) for n in wanted) for view in comp.views
            if all(n in view for n in wanted)))

        def holds(state: StateT) -> str | None:
            for one in idx:
                env = {n: state[r] - BIAS for n, r in one}
                if expr.evaluate(env, {}):
                    continue
                values = ", ".join(f"{comp.resource_names[r]}={env[n]}"
                                   for n, r in sorted(one))
                return f"invariant {name!r} ({text}) is false: {values}"
            return None

        return Property(name=f"invariant:{name}",
                        description=f"declared resource invariant: {text}",
                        on_state=holds)

    def _per_instance(self, name: str) -> Property:
        """A single-saga property, checked on every instance's part."""
        comp = self.comp
        parts = [next(p for p in ts.properties if p.name == name)
                 for ts in self._singles]

        def on_state(state: StateT) -> str | None:
            for i, p in enumerate(parts):
                if p.on_state is not None:
                    msg = p.on_state(comp.single(state, i))
                    if msg:
                        return f"instance {i + 1}: {msg}"
            return None

        def on_terminal(state: StateT) -> str | None:
            for i, p in enumerate(parts):
                if p.on_terminal is not None:
                    msg = p.on_terminal(comp.single(state, i))
                    if msg:
                        return f"instance {i + 1}: {msg}"
            return None

        def on_transition(src: StateT, label: Any, dst: StateT) -> str | None:
            ev: InstanceEvent = label
            p = parts[ev.instance]
            if p.on_transition is None:
                return None
            msg = p.on_transition(comp.single(src, ev.instance), ev.event,
                                  comp.single(dst, ev.instance))
            return f"instance {ev.instance + 1}: {msg}" if msg else None

        def on_complete(states: Sequence[StateT]) -> str | None:
            # Instances of one saga are identical: what one reaches, any of
            # them can, so their parts are pooled (which also keeps the
            # verdict when only representatives of permutations are stored).
            done: set[int] = set()
            for i, p in enumerate(parts):
                if p.on_complete is None or i in done:
                    continue
                same = [j for j in range(len(parts))
                        if self.sagas[j] is self.sagas[i]]
                done.update(same)
                msg = p.on_complete([comp.single(s, j) for s in states
                                     for j in same])
                if msg:
                    return f"instance {i + 1}: {msg}"
            return None

        first = parts[0]
        static = "; ".join(dict.fromkeys(
            p.static_violation for p in parts if p.static_violation)) or None
        return Property(
            name=name, description=first.description,
            on_state=on_state if any(p.on_state for p in parts) else None,
            on_terminal=on_terminal if any(p.on_terminal for p in parts) else None,
            on_transition=(on_transition if any(p.on_transition for p in parts)
                           else None),
            liveness=first.liveness, static_violation=static,
            on_complete=(on_complete if any(p.on_complete for p in parts)
                         else None),
        )

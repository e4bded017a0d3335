"""The z3 backend for imported graphs (ASL, Seata, Serverless Workflow).

The transition relation is the graph semantics' own, tabulated by
:mod:`._imported_encode`; the properties are the explicit transition system's
own checks, tabulated the same way. The questions and answers match
:mod:`verifier._imported_ts` under the explicit checker:

* **compensation_completeness**, **eventual_consistency** (checks of terminal
  states): bounded model checking on one unrolling, asking at each depth k
  for a violation at exactly k steps, so the first one found is a shortest
  counterexample (the breadth-first search's length). When no loop-free path
  of k steps exists, every reachable state lies within k - 1 steps and was
  checked (complete BMC, Sheeran, Singh and Stalmarck 2000): ``holds``.
* **termination** (strong fairness, the families of
  ``ImportedTransitionSystem.fairness_family``): a reachable deadlock is a
  violation; so is a *trap*, a reachable state where a step that changes
  nothing is enabled and every fairness family enabled there can be taken by
  such a step (a fair run may stay there forever: a retry that never
  succeeds is not one, its ``ok`` family is enabled and changes the state).
  With neither, every fair run that does not end eventually only stutters,
  unless some run changes the state forever: z3 proves there is none when no
  path of d + 1 state-changing steps exists (d: the loop-free depth above).
  Otherwise a shortest fair lasso is searched for; none within the bound is
  ``unknown``, never a pass.
* **unconditional_termination**: the same with the environment unfair (a
  polled service need not change, a callback need not come).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import z3

from saga_models.importers.graph_semantics import Event

from .._budget import BudgetExhausted
from .._imported_ts import ImportedTransitionSystem
from .._result import Counterexample, PropertyResult, Stats, TraceStep, Verdict
from .._ts import Property
from ._encode import EncodingError, Unsupported
from ._imported_encode import Frame, ImportedEncoding
from ._z3 import DEFAULT_RLIMIT, budget_reason, new_solver

DEFAULT_MAX_DEPTH = 80
"""BMC bound (frames): no verdict from a longer unrolling is attempted."""

DEADLOCK = ("deadlock: the saga can make no further move and has not reached a "
            "terminal outcome")
"""The explicit checker's words for a deadlock."""

StateBad = Callable[[Frame], z3.BoolRef]


@dataclass(slots=True)
class _Goal:
    """One reachability question: is a ``bad`` state reachable?"""

    name: str
    bad: StateBad
    trace: tuple[list[tuple[int, ...]], list[Event]] | None = None
    stalled: str = ""


@dataclass(slots=True)
class _Bmc:
    """How far the unrolling got."""

    diameter: int | None = None
    """Every reachable state is within this many steps (all were checked)."""
    checked: int = -1
    gave_up: str = ""
    goals: dict[str, _Goal] = field(default_factory=dict)


class _Run:
    """One z3 check of one imported machine."""

    def __init__(self, ts: ImportedTransitionSystem, *, max_depth: int,
                 rlimit: int) -> None:
        self.ts = ts
        self.max_depth = max_depth
        self.rlimit = rlimit
        self.unfair = ImportedTransitionSystem(ts.im, ts.faults,
                                               environment_fair=False)
        self.enc = ImportedEncoding(ts, unfair=self.unfair)
        self._cycle: dict[int, bool | str] = {}

    # --- formulas -------------------------------------------------------------------
    def deadlock(self, s: Frame) -> z3.BoolRef:
        enc = self.enc
        return z3.And(z3.Not(enc.terminal(s)), z3.Not(enc.enabled_any(s)))

    def trap(self, families: Sequence[int]) -> StateBad:
        """A state a fair run may stay in forever by steps that change nothing."""
        enc = self.enc

        def bad(s: Frame) -> z3.BoolRef:
            stay = [enc.stutter(s, cmd) for cmd in enc.commands]
            fams: dict[int, tuple[list[z3.BoolRef], list[z3.BoolRef]]] = {}
            for cmd, st in zip(enc.commands, stay, strict=True):
                f = families[cmd.alt]
                if f < 0:
                    continue
                en, stays = fams.setdefault(f, ([], []))
                en.append(enc.cube(s, cmd.cube))
                stays.append(st)
            fair = [z3.Implies(z3.Or(*en), z3.Or(*stays))
                    for en, stays in fams.values()]
            return z3.And(z3.Not(enc.terminal(s)), z3.Or(False, *stay), *fair)

        return enc.lift(("trap", tuple(families)), bad)

    # --- BMC ---------------------------------------------------------------------
    def bmc(self, goals: Sequence[_Goal], *, need_diameter: bool) -> _Bmc:
        """Shortest path to each goal; complete when no loop-free path is
        longer than the depth reached."""
        enc = self.enc
        slv = new_solver(rlimit=self.rlimit, logic="QF_BV")
        frames = [enc.frame("s0")]
        choices: list[z3.ArithRef] = []
        slv.add(enc.initial(frames[0]))
        out = _Bmc(goals={g.name: g for g in goals})
        open_ = list(goals)
        simple = z3.Bool("loop-free path")
        for k in range(self.max_depth + 1):
            if k > 0:
                frames.append(enc.frame(f"s{k}"))
                choices.append(enc.choice(f"c{k - 1}"))
                slv.add(enc.transition(frames[k - 1], choices[k - 1], frames[k]))
            for g in list(open_):
                lit = slv.track(f"{g.name} at depth {k}", g.bad(frames[k]))
                res = slv.check([lit])
                if res == z3.sat:
                    m = slv.solver.model()
                    states = [enc.values(m, f) for f in frames]
                    events = [enc.event(m, c) for c in choices]
                    enc.replay(states, events)
                    g.trace = (states, events)
                    open_.remove(g)
                elif res != z3.unsat:
                    g.stalled = (f"BMC at depth {k}: z3 gave up "
                                 f"({slv.reason_unknown()})")
                    open_.remove(g)
            out.checked = k
            if k > 0:
                for j in range(k):
                    slv.add(z3.Implies(simple, z3.Not(enc.equal(frames[j],
                                                                frames[k]))))
            res = slv.check([simple])
            if res == z3.unsat:
                # No loop-free path of k steps: every reachable state is
                # within k - 1 steps, and each was checked above.
                out.diameter = k - 1
                return out
            if res != z3.sat:
                out.gave_up = (f"BMC at depth {k}: z3 gave up on the "
                               f"completeness test ({slv.reason_unknown()})")
                return out
            if not open_ and not need_diameter:
                return out
        return out

    def moving_cycle(self, diameter: int) -> bool | str:
        """Whether some run changes the state forever: a path of
        ``diameter + 1`` state-changing steps must repeat a state."""
        if diameter not in self._cycle:
            self._cycle[diameter] = self._moving_cycle(diameter)
        return self._cycle[diameter]

    def _moving_cycle(self, diameter: int) -> bool | str:
        enc = self.enc
        slv = new_solver(rlimit=self.rlimit, logic="QF_BV")
        frames = [enc.frame("m0")]
        slv.add(enc.initial(frames[0]))
        for k in range(1, diameter + 2):
            frames.append(enc.frame(f"m{k}"))
            slv.add(enc.moves(frames[k - 1], enc.choice(f"mc{k - 1}"), frames[k]))
            res = slv.check()
            if res == z3.unsat:
                return False
            if res != z3.sat:
                return f"z3 gave up on the cycle test ({slv.reason_unknown()})"
        return True

    def fair_lasso(self, families: Sequence[int], bound: int
                   ) -> tuple[tuple[list[tuple[int, ...]], list[Event], int] | None,
                              str]:
        """A shortest fair lasso ``s0..sk`` with ``sk == sL`` within the bound."""
        enc = self.enc
        slv = new_solver(rlimit=self.rlimit, logic="QF_BV")
        frames = [enc.frame("l0")]
        choices: list[z3.ArithRef] = []
        slv.add(enc.initial(frames[0]))
        fams: dict[int, list[int]] = {}
        for a, f in enumerate(families):
            if f >= 0:
                fams.setdefault(f, []).append(a)

        def en(k: int) -> dict[int, z3.BoolRef]:
            return {f: z3.Or(*[enc.guard(frames[k], a) for a in alts])
                    for f, alts in fams.items()}

        enabled = [en(0)]
        for k in range(1, bound + 1):
            frames.append(enc.frame(f"l{k}"))
            choices.append(enc.choice(f"lc{k - 1}"))
            slv.add(enc.transition(frames[k - 1], choices[k - 1], frames[k]))
            enabled.append(en(k))
            loop = z3.BitVec(f"loop{k}", 16)
            parts = [z3.ULT(loop, k), z3.Not(enc.terminal(frames[k])),
                     z3.Or(*[z3.And(loop == j, enc.equal(frames[k], frames[j]))
                             for j in range(k)])]
            for f, alts in fams.items():
                was = z3.Or(*[z3.And(z3.ULE(loop, m), enabled[m][f])
                              for m in range(k)])
                taken = z3.Or(*[z3.And(z3.ULE(loop, m),
                                       z3.Or(*[choices[m] == a for a in alts]))
                                for m in range(k)])
                parts.append(z3.Implies(was, taken))
            lit = slv.track(f"fair lasso of length {k}", z3.And(*parts))
            res = slv.check([lit])
            if res == z3.sat:
                m = slv.solver.model()
                states = [enc.values(m, f) for f in frames]
                events = [enc.event(m, c) for c in choices]
                enc.replay(states, events)
                return (states, events,
                        m.eval(loop, model_completion=True).as_long()), ""
            if res != z3.unsat:
                return None, (f"lasso search at depth {k}: z3 gave up "
                              f"({slv.reason_unknown()})")
        return None, ""

    # --- rendering ------------------------------------------------------------------
    def counterexample(self, states: Sequence[tuple[int, ...]],
                       events: Sequence[Event], violation: str,
                       loop_start: int | None = None) -> Counterexample:
        ts = self.ts
        out = [TraceStep(action="init", event=None, state=ts.state_json(states[0]))]
        for e, st in zip(events, states[1:], strict=True):
            out.append(TraceStep(action=ts.label_text(e), event=ts.label_json(e),
                                 state=ts.state_json(st)))
        return Counterexample(steps=tuple(out), loop_start=loop_start,
                              violation=violation)


def _stutter_step(enc: ImportedEncoding, state: tuple[int, ...],
                  families: Sequence[int]) -> Event:
    """A step that leaves ``state`` unchanged (closing a trap's loop),
    preferring one that carries a fairness family."""
    from saga_models.importers import graph_semantics as gs

    stays = [e for e in gs.enabled(enc.t, state) if gs.apply(enc.t, state, e)
             == state]
    if not stays:
        raise EncodingError("z3 found a trap state with no step that stays")
    stays.sort(key=lambda e: families[enc.alternatives.index(e)] < 0)
    return stays[0]


def check_imported(
    ts: ImportedTransitionSystem,
    *,
    properties: Sequence[str] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    rlimit: int = DEFAULT_RLIMIT,
    note: str = "",
) -> tuple[PropertyResult, ...]:
    """Every requested property of an imported machine, decided with z3.

    A budget running out leaves the undecided properties ``unknown`` with the
    budget named; ``note`` is appended to every other unknown reason.
    """
    props = [p for p in ts.properties if properties is None or p.name in properties]
    started = time.perf_counter()

    def result(p: Property, verdict: Verdict, reason: str,
               cex: Counterexample | None = None, depth: int = 0) -> PropertyResult:
        if verdict is Verdict.UNKNOWN:
            reason += note
        return PropertyResult(
            property=p.name, verdict=verdict, reason=reason,
            fault_model=ts.fault_model, counterexample=cex,
            stats=Stats(seconds=time.perf_counter() - started, depth=depth),
            backend="smt")

    try:
        run = _Run(ts, max_depth=max_depth, rlimit=rlimit)
        return tuple(_decide(run, props, result))
    except Unsupported as exc:
        return tuple(result(p, Verdict.UNKNOWN, f"z3 backend: {exc}") for p in props)
    except (BudgetExhausted, z3.Z3Exception) as exc:
        if (why := budget_reason(exc)) is None:
            raise
        return tuple(result(p, Verdict.UNKNOWN, why) for p in props)


_Result = Callable[..., PropertyResult]


def _decide(run: _Run, props: Sequence[Property], result: _Result
            ) -> list[PropertyResult]:
    enc = run.enc
    goals: list[_Goal] = []
    for p in props:
        if p.on_terminal is not None:
            goals.append(_Goal(name=p.name, bad=enc.bad_terminal(p.on_terminal)))
    live = {p.name for p in props} & {"termination", "unconditional_termination"}
    if live:
        goals.append(_Goal(name="deadlock", bad=enc.lift("deadlock", run.deadlock)))
    if "termination" in live:
        goals.append(_Goal(name="trap", bad=run.trap(enc.families)))
    if "unconditional_termination" in live:
        goals.append(_Goal(name="unfair trap", bad=run.trap(enc.unfair_families)))
    bmc = run.bmc(goals, need_diameter=bool(live))
    complete = bmc.diameter is not None

    def undecided(g: _Goal | None = None) -> str:
        if g is not None and g.stalled:
            return g.stalled
        return bmc.gave_up or (f"no violation within {bmc.checked} steps (BMC "
                               "bound), and loop-free paths go on beyond it")

    out: list[PropertyResult] = []
    for p in props:
        if p.name in ("termination", "unconditional_termination"):
            fair = p.name == "termination"
            trap = bmc.goals["trap" if fair else "unfair trap"]
            families = enc.families if fair else enc.unfair_families
            verdict, reason, cex, depth = _termination(
                run, bmc, bmc.goals["deadlock"], trap, families, fair=fair)
            out.append(result(p, verdict, reason, cex, depth))
            continue
        g = bmc.goals.get(p.name)
        if g is None:
            out.append(result(p, Verdict.UNKNOWN,
                              f"property {p.name!r} is not encoded for z3"))
            continue
        if g.trace is not None:
            states, events = g.trace
            assert p.on_terminal is not None
            msg = p.on_terminal(states[-1])
            if msg is None:
                raise EncodingError(f"z3 reported {p.name} violated, but the "
                                    "property does not see it at the trace's end")
            out.append(result(p, Verdict.VIOLATED, msg,
                              run.counterexample(states, events, msg),
                              len(events)))
        elif complete and not g.stalled:
            out.append(result(p, Verdict.HOLDS, (
                "bounded model checking is complete: no loop-free path is "
                f"longer than {bmc.diameter} steps, so every reachable state "
                "was checked, and none violates it"), depth=bmc.checked))
        else:
            out.append(result(p, Verdict.UNKNOWN, undecided(g), depth=bmc.checked))
    return out


def _termination(run: _Run, bmc: _Bmc, deadlock: _Goal, trap: _Goal,
                 families: Sequence[int], *, fair: bool
                 ) -> tuple[Verdict, str, Counterexample | None, int]:
    """Termination under the fairness ``families`` give."""
    ts = run.ts if fair else run.unfair
    words = f"under {ts.fairness}" if fair else (
        "without assuming that polled services change and callbacks come")

    def violated(msg: str, states: list[tuple[int, ...]], events: list[Event],
                 loop: int | None) -> tuple[Verdict, str, Counterexample, int]:
        cex = run.counterexample(states, events, msg, loop)
        if not fair:
            cycle = [s.action for s in cex.steps[(loop or 0) + 1:]] \
                if loop is not None else []
            msg = (f"{words}: " + msg.split(" (strong fairness", maxsplit=1)[0]
                   + ("; the cycle: " + "; ".join(cycle) if cycle else ""))
            cex = dataclasses.replace(cex, violation=msg)
        return Verdict.VIOLATED, msg, cex, len(events)

    if deadlock.trace is not None:
        states, events = deadlock.trace
        return violated(DEADLOCK, states, events, None)
    livelock = f"livelock: a cycle that never terminates, and is fair ({ts.fairness})"
    if trap.trace is not None:
        states, events = trap.trace
        last = states[-1]
        step = _stutter_step(run.enc, last, families)
        return violated(livelock, [*states, last], [*events, step],
                        len(states) - 1)
    if bmc.diameter is None or deadlock.stalled or trap.stalled:
        why = deadlock.stalled or trap.stalled or bmc.gave_up or (
            f"loop-free paths go on beyond {bmc.checked} steps (BMC bound)")
        return Verdict.UNKNOWN, f"no deadlock or stuck state found: {why}", None, 0
    cycle = run.moving_cycle(bmc.diameter)
    if cycle is False:
        return (Verdict.HOLDS, (
            f"every reachable state is within {bmc.diameter} steps; none is a "
            "deadlock or a state a fair run can stay in, and no run changes the "
            f"state forever (z3 proved no path of {bmc.diameter + 1} "
            f"state-changing steps exists); {words}"), None, bmc.diameter)
    # A lasso's stem is within the loop-free depth; its cycle is searched
    # for up to as long again (a longer one is not ruled out: unknown).
    bound = min(run.max_depth, 2 * (bmc.diameter + 1))
    lasso, why = run.fair_lasso(families, bound)
    if lasso is not None:
        states, events, loop = lasso
        return violated(livelock, states, events, loop)
    return (Verdict.UNKNOWN, (
        "the state graph has a cycle of state-changing steps (a loop in the "
        f"definition) and z3 found no fair lasso within {bound} steps, "
        "but a longer one is not ruled out"
        + (f": {cycle}" if isinstance(cycle, str) else "")
        + (f" ({why})" if why else "")), None, run.max_depth)

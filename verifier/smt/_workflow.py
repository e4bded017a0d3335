"""The z3 backend for event workflows: BMC, k-induction, fair lassos.

Same questions as :mod:`verifier._workflow_ts` asks the explicit checker, same
answers in the same shapes:

* **Safety** (``eventual_consistency``, ``deadlock_freedom``,
  ``no_unhandled_event``, ``idempotency``, ``invariants``, and the bus-capacity
  half of ``termination``): first 1-induction strengthened by the lemmas of
  :meth:`WorkflowEncoding.lemmas`; then bounded model checking on one shared
  unrolling, asking at each depth k for a violation at exactly k steps (so the
  first one is a shortest counterexample, the explicit BFS's length) and whether
  any path of k steps exists at all (if not, every reachable state was checked:
  an unbounded ``holds``); then k-induction up to :data:`MAX_K` over simple
  paths.
* **Termination**: the bus never overflows (safety, above), and either a
  linear ranking function that z3 synthesises and checks drops on every step
  (:mod:`._workflow_rank`), or no execution is longer than some k (z3 proves
  that no path of k steps exists), or a fair lasso (a cycle under the same
  strong fairness as ``WorkflowTransitionSystem.fairness_family``) is a
  counterexample. Neither
  within the bound: ``unknown`` with the reason.

Every counterexample is decoded as a list of semantics ``Step`` labels and
replayed through :mod:`saga_models.workflow.semantics`, then rendered by the
transition system the explicit checker uses, so the two backends' message
sequences are the same text.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import z3

from saga_models import FaultModel
from saga_models.workflow import Workflow
from saga_models.workflow import semantics as sem
from saga_models.workflow.semantics import HEADER, OVERFLOW, Step, StepKind

from .._budget import BudgetExhausted
from .._result import Counterexample, PropertyResult, Stats, TraceStep, Verdict
from .._ts import Property, TransitionSystem
from ._encode import EncodingError, Unsupported
from ._workflow_encode import Frame, WorkflowEncoding, replay
from ._workflow_expr import compile_truth
from ._workflow_invariant import Strengthening, houdini
from ._workflow_rank import RankResult, synthesise
from ._z3 import DEFAULT_RLIMIT, Labelled, budget_reason, new_solver

DEFAULT_MAX_DEPTH = 40
"""BMC bound: no verdict from a longer unrolling is attempted."""
MAX_K = 6
"""Largest k tried by k-induction (over simple paths) after BMC stops."""
SAMPLE_STATES = 2_000
"""Reachable states sampled (breadth first) to seed Houdini and the rank."""

StateBad = Callable[[Frame], z3.BoolRef]
TransBad = Callable[[Frame, z3.ArithRef, Frame], z3.BoolRef]


def _false(*_: object) -> z3.BoolRef:
    return z3.BoolVal(False)


@dataclass(slots=True)
class _Bmc:
    """How far one BMC unrolling got."""

    bound: int | None = None
    """The longest execution's length, when z3 proved none is longer."""
    diameter: int | None = None
    """Every reachable state is within this many steps (no loop-free path is
    longer): every state and transition was checked."""
    checked: int = -1
    """Every depth up to this one was checked for every open goal."""
    gave_up: str = ""
    """Why z3 stopped early, if it did."""
    stalled: list[_Goal] = field(default_factory=list)
    """Goals z3 gave up on at some depth (their ``reason`` says where)."""


@dataclass(slots=True)
class _Goal:
    """One safety question: a bad state, a bad transition, or both."""

    prop: Property
    state_bad: StateBad
    trans_bad: TransBad
    verdict: Verdict = Verdict.UNKNOWN
    reason: str = ""
    trace: tuple[list[sem.State], list[Step]] | None = None
    depth: int = 0


class _Run:
    """One z3 check of one workflow: the encoding and the property formulas."""

    def __init__(self, wf: Workflow, ts: TransitionSystem, *, max_depth: int,
                 rlimit: int) -> None:
        self.wf = wf
        self.ts = ts
        self.max_depth = max_depth
        self.rlimit = rlimit
        self.enc = WorkflowEncoding(wf, duplicates=int(getattr(ts, "duplicates", 0)),
                                    reduce=bool(getattr(ts, "reduce", False)))
        t = self.enc.t
        self.outcomes = [
            [(t.services.index(svc), t.state_names[t.services.index(svc)].index(st))
             for svc, st in o.states]
            for o in wf.outcomes
        ]
        self.finals = [[s.states.index(f) for f in s.final] for s in wf.services]
        self._strength: Strengthening | None = None
        self._samples: tuple[list[sem.State],
                             list[tuple[sem.State, sem.State]]] | None = None
        # Compile every expression up front: an unsupported one makes the
        # whole workflow unsupported (a guard shapes every property).
        probe = self.enc.frame("probe")
        for s in wf.services:
            for tr in s.transitions:
                if tr.guard is not None:
                    compile_truth(tr.guard, self.enc.scope(probe))
        for inv in wf.invariants:
            compile_truth(inv.expr, self.enc.scope(probe))

    # --- property formulas ----------------------------------------------------------
    def quiescent(self, s: Frame) -> z3.BoolRef:
        return z3.Not(self.enc.enabled_any(s))

    def matches_outcome(self, s: Frame) -> z3.BoolRef:
        return z3.Or(*[z3.And(*[s[HEADER + 2 * i] == v for i, v in o])
                       for o in self.outcomes]) if self.outcomes else z3.BoolVal(False)

    def all_final(self, s: Frame) -> z3.BoolRef:
        return z3.And(*[z3.Or(*[s[HEADER + 2 * i] == f for f in fs])
                        for i, fs in enumerate(self.finals) if fs])

    def consistency_bad(self, s: Frame) -> z3.BoolRef:
        parts = [self.quiescent(s), s[OVERFLOW] == 0, z3.Not(self.matches_outcome(s))]
        if not self.outcomes:
            parts.append(z3.Not(self.all_final(s)))
        return z3.And(*parts)

    def deadlock_bad(self, s: Frame) -> z3.BoolRef:
        return z3.And(self.quiescent(s), s[OVERFLOW] == 0,
                      z3.Not(self.matches_outcome(s)), z3.Not(self.all_final(s)))

    def overflow_bad(self, s: Frame) -> z3.BoolRef:
        return s[OVERFLOW] != 0

    def invariant_bad(self, s: Frame) -> z3.BoolRef:
        sc = self.enc.scope(s)
        return z3.Or(*[z3.Not(compile_truth(inv.expr, sc))
                       for inv in self.wf.invariants])

    def unhandled_bad(self, s: Frame, c: z3.ArithRef, s2: Frame) -> z3.BoolRef:
        hits = [c == a for a, st in enumerate(self.enc.alternatives)
                if st.kind is StepKind.UNHANDLED]
        return z3.Or(*hits) if hits else z3.BoolVal(False)

    def idempotency_bad(self, s: Frame, c: z3.ArithRef, s2: Frame) -> z3.BoolRef:
        t = self.enc.t
        hits = []
        for a, st in enumerate(self.enc.alternatives):
            if not (st.duplicate and st.kind is StepKind.DELIVER
                    and t.transition(st.service, st.transition).idempotent):
                continue
            b = HEADER + 2 * st.service
            changed = [s[b] != s2[b]] + [s[j] != s2[j]
                                         for j in range(t.counter_base, t.bus_base)]
            hits.append(z3.And(c == a, z3.Or(*changed)))
        return z3.Or(*hits) if hits else z3.BoolVal(False)

    def goal(self, p: Property) -> _Goal:
        bads: dict[str, tuple[StateBad, TransBad]] = {
            "eventual_consistency": (self.consistency_bad, _false),
            "deadlock_freedom": (self.deadlock_bad, _false),
            "termination": (self.overflow_bad, _false),
            "no_unhandled_event": (_false, self.unhandled_bad),
            "idempotency": (_false, self.idempotency_bad),
            "invariants": (self.invariant_bad, _false),
        }
        if p.name not in bads:
            raise Unsupported(f"property {p.name!r} is not encoded for z3")
        state_bad, trans_bad = bads[p.name]
        return _Goal(prop=p, state_bad=state_bad, trans_bad=trans_bad)

    # --- induction ------------------------------------------------------------------
    def samples(self) -> tuple[list[sem.State], list[tuple[sem.State, sem.State]]]:
        """Reachable states and transitions of the shared semantics, breadth
        first up to :data:`SAMPLE_STATES` states: hints for Houdini and the
        rank synthesis (they speed the search; z3 still checks every claim)."""
        if self._samples is None:
            init = self.ts.initial()
            seen = dict.fromkeys(init)
            edges: list[tuple[sem.State, sem.State]] = []
            todo = list(init)
            while todo and len(seen) < SAMPLE_STATES:
                st = todo.pop(0)
                for _, nxt in self.ts.successors(st):
                    edges.append((st, nxt))
                    if nxt not in seen:
                        seen[nxt] = None
                        todo.append(nxt)
            self._samples = (list(seen), edges)
        return self._samples

    @property
    def strengthening(self) -> Strengthening:
        """Houdini's inductive lemmas, found once per run (on first use)."""
        if self._strength is None:
            self._strength = houdini(self.enc, rlimit=self.rlimit,
                                     samples=self.samples()[0])
        return self._strength

    def rank(self) -> RankResult:
        """A ranking function every step lowers, on every invariant state."""
        return synthesise(self.enc, lambda f: [x for _, x in self.lemmas(f)],
                          rlimit=self.rlimit, samples=self.samples()[1])

    def lemmas(self, f: Frame) -> list[tuple[str, z3.BoolRef]]:
        """The fixed range lemmas and Houdini's, on frame ``f`` (labelled)."""
        out = self.enc.checked_lemmas(f, rlimit=self.rlimit)
        n = len(self.strengthening.lemmas)
        if n:
            out.append((f"{n} inductive state-bus relations (Houdini)",
                        self.enc.cached("houdini", lambda a, b, c: z3.And(
                            *[lemma for _, lemma in self.strengthening.at(a)]), f)))
        return out

    def _lemma_solver(self, frames: list[Frame]) -> tuple[Labelled, list[z3.BoolRef]]:
        slv = new_solver(rlimit=self.rlimit)
        lits = []
        for k, f in enumerate(frames):
            for label, lemma in self.lemmas(f):
                lits.append(slv.track(f"{label} (step {k})", lemma))
        return slv, lits

    def induction(self, g: _Goal, *, max_k: int, simple: bool) -> tuple[bool, str]:
        """k-induction for ``g`` (k = 1..max_k); (proved, detail)."""
        enc = self.enc
        # Base case at depth 0 (the step case below constrains its first
        # state to have a successor, so it does not cover a dead-end initial
        # state). Deeper base cases are BMC's: the caller keeps max_k within
        # the depth BMC has checked.
        base = new_solver(rlimit=self.rlimit)
        s0 = enc.frame("b0")
        base.add(enc.initial(s0), g.state_bad(s0))
        res0 = base.check()
        if res0 != z3.unsat:
            return False, ("the initial state violates it" if res0 == z3.sat
                           else f"z3 gave up on the base case: {base.reason_unknown()}")
        frames = [enc.frame("i0")]
        choices: list[z3.ArithRef] = []
        slv, lits = self._lemma_solver(frames)
        detail = ""
        for k in range(1, max_k + 1):
            frames.append(enc.frame(f"i{k}"))
            choices.append(z3.Int(f"ic{k - 1}"))
            slv.add(enc.transition(frames[k - 1], choices[k - 1], frames[k]))
            for label, lemma in self.lemmas(frames[k]):
                lits.append(slv.track(f"{label} (step {k})", lemma))
            if simple:
                # Simple paths only: k-induction is then complete at the
                # length of the longest loop-free path.
                for j in range(k):
                    slv.add(z3.Not(enc.equal(frames[j], frames[k])))
            bad = z3.Or(g.state_bad(frames[k]),
                        g.trans_bad(frames[k - 1], choices[k - 1], frames[k]))
            if k == 1:
                bad = z3.Or(bad, g.state_bad(frames[0]))
            lit = slv.track(f"violation after {k} steps", bad)
            res = slv.check([lit, *lits])
            if res == z3.unsat:
                used = sorted({c.split(" (step")[0] for c in slv.core_labels()
                               if not c.startswith("violation")})
                used_text = ", ".join(used) if used else (
                    "no lemma (it holds in every state with a successor)")
                return True, f"{k}-induction, strengthened by {used_text}"
            if res != z3.sat:
                return False, f"z3 gave up at k={k}: {slv.reason_unknown()}"
            if not detail:
                m = slv.solver.model()
                src = enc.values(m, frames[-2])
                step = enc.alternatives[m.eval(choices[-1],
                                               model_completion=True).as_long()]
                detail = ("counterexample to induction: from "
                          f"{_where(self.wf, src)}, step "
                          f"{_step_text(self.wf, step)!r}")
            slv.add(z3.Not(g.state_bad(frames[k])),
                    z3.Not(g.trans_bad(frames[k - 1], choices[k - 1], frames[k])))
            if k == 1:
                slv.add(z3.Not(g.state_bad(frames[0])))
        return False, detail

    # --- bounded model checking -------------------------------------------------------
    def bmc(self, goals: Sequence[_Goal], *,
            keep_going: Callable[[], bool]) -> _Bmc:
        """Shortest violations for every goal, on one unrolling.

        Unrolls until every goal is settled and ``keep_going()`` is false, until
        no path of the current length exists (the execution-length bound), or
        to ``max_depth``.
        """
        enc = self.enc
        slv = new_solver(rlimit=self.rlimit)
        frames = [enc.frame("s0")]
        choices: list[z3.ArithRef] = []
        slv.add(enc.initial(frames[0]))
        open_ = list(goals)
        out = _Bmc()
        simple = z3.Bool("loop-free path")
        loop_free = True
        for k in range(self.max_depth + 1):
            if k > 0:
                frames.append(enc.frame(f"s{k}"))
                choices.append(z3.Int(f"c{k - 1}"))
                slv.add(enc.transition(frames[k - 1], choices[k - 1], frames[k]))
                res = slv.check()
                if res == z3.unsat:
                    out.bound = k - 1
                    out.checked = self.max_depth  # nothing deeper exists
                    return out
                if res != z3.sat:
                    out.gave_up = (f"BMC at depth {k}: z3 gave up "
                                   f"({slv.reason_unknown()})")
                    return out
            for g in list(open_):
                bad = g.state_bad(frames[k])
                if k > 0:
                    bad = z3.Or(bad, g.trans_bad(frames[k - 1], choices[k - 1],
                                                 frames[k]))
                lit = slv.track(f"{g.prop.name} violated at depth {k}", bad)
                res = slv.check([lit])
                if res == z3.sat:
                    m = slv.solver.model()
                    states = [enc.values(m, f) for f in frames]
                    steps = [enc.alternatives[m.eval(c, model_completion=True)
                                              .as_long()] for c in choices]
                    replay(enc, states, steps)
                    g.verdict, g.trace, g.depth = Verdict.VIOLATED, (states, steps), k
                    open_.remove(g)
                elif res != z3.unsat:
                    # This goal stays open (unknown); the others go on.
                    g.reason = (f"BMC at depth {k}: z3 gave up "
                                f"({slv.reason_unknown()})")
                    open_.remove(g)
                    out.stalled.append(g)
            out.checked = k
            if not open_ and not keep_going():
                return out
            if k > 0 and loop_free:
                # Complete BMC (Sheeran, Singh, Stalmarck 2000): a shortest path
                # is loop-free, so when no loop-free path of k steps exists,
                # every reachable state is within k - 1 steps and every
                # transition out of one was checked above.
                for j in range(k):
                    slv.add(z3.Implies(simple, z3.Not(enc.equal(frames[j],
                                                                frames[k]))))
                res = slv.check([simple])
                if res == z3.unsat and not out.stalled:
                    out.diameter = k - 1
                    out.checked = self.max_depth
                    return out
                if res != z3.sat:
                    # Too hard to decide: go on without the completeness test.
                    loop_free = False
        return out

    def fair_lasso(self) -> tuple[tuple[list[sem.State], list[Step], int] | None,
                                  bool, str]:
        """Shortest fair lasso ``s0..sk`` with ``sk == sL`` (a livelock under
        strong fairness: a family enabled on the cycle is taken on it).

        Returns (lasso or None, whether z3 proved no longer path exists, why z3
        gave up).
        """
        enc = self.enc
        slv = new_solver(rlimit=self.rlimit)
        frames = [enc.frame("l0")]
        choices: list[z3.ArithRef] = []
        slv.add(enc.initial(frames[0]))
        fams: dict[int, list[int]] = {}
        for a, f in enumerate(enc.families):
            fams.setdefault(f, []).append(a)
        enabled: list[dict[int, z3.BoolRef]] = []

        def en(k: int) -> dict[int, z3.BoolRef]:
            return {f: enc.enabled_family(frames[k], alts)
                    for f, alts in fams.items()}

        enabled.append(en(0))
        for k in range(1, self.max_depth + 1):
            frames.append(enc.frame(f"l{k}"))
            choices.append(z3.Int(f"lc{k - 1}"))
            slv.add(enc.transition(frames[k - 1], choices[k - 1], frames[k]))
            enabled.append(en(k))
            loop = z3.Int(f"loop{k}")
            parts = [loop >= 0, loop < k,
                     z3.Or(*[z3.And(loop == j, enc.equal(frames[k], frames[j]))
                             for j in range(k)])]
            for f, alts in fams.items():
                was = z3.Or(*[z3.And(loop <= m, enabled[m][f]) for m in range(k)])
                taken = z3.Or(*[z3.And(loop <= m,
                                       z3.Or(*[choices[m] == a for a in alts]))
                                for m in range(k)])
                parts.append(z3.Implies(was, taken))
            lit = slv.track(f"fair lasso of length {k}", z3.And(*parts))
            res = slv.check([lit])
            if res == z3.sat:
                m = slv.solver.model()
                states = [enc.values(m, f) for f in frames]
                steps = [enc.alternatives[m.eval(c, model_completion=True).as_long()]
                         for c in choices]
                replay(enc, states, steps)
                return (states, steps,
                        m.eval(loop, model_completion=True).as_long()), False, ""
            if res != z3.unsat:
                return None, False, (f"lasso search at depth {k}: z3 gave up "
                                     f"({slv.reason_unknown()})")
            res = slv.check()
            if res == z3.unsat:
                return None, True, ""
        return None, False, ""

    # --- rendering ------------------------------------------------------------------
    def counterexample(self, states: list[sem.State], steps: list[Step],
                       violation: str, loop_start: int | None = None
                       ) -> Counterexample:
        ts = self.ts
        out = [TraceStep(action="init", event=None, state=ts.state_json(states[0]))]
        for step, st in zip(steps, states[1:], strict=True):
            out.append(TraceStep(action=ts.label_text(step),
                                 event=ts.label_json(step),
                                 state=ts.state_json(st)))
        return Counterexample(steps=tuple(out), loop_start=loop_start,
                              violation=violation)

    def message(self, p: Property, states: list[sem.State],
                steps: list[Step]) -> str:
        """The explicit property's own message for the violation at the end."""
        last = states[-1]
        if p.on_state is not None and (msg := p.on_state(last)):
            return msg
        if (p.on_terminal is not None and self.ts.is_terminal(last)
                and (msg := p.on_terminal(last))):
            return msg
        if (p.on_transition is not None and steps
                and (msg := p.on_transition(states[-2], steps[-1], last))):
            return msg
        # An encoding bug: the decoded trace was replayed, but the explicit
        # property does not see a violation at its end.
        raise EncodingError(f"z3 reported {p.name} violated, but the semantics "
                             "does not agree at the end of the decoded trace")


def _where(wf: Workflow, state: sem.State) -> str:
    v = sem.view(wf, state)
    return (", ".join(f"{k}={x}" for k, x in sem.state_names(wf, state).items())
            + f"; bus {v['bus']}; counters {v['counters']}")


def _step_text(wf: Workflow, step: Step) -> str:
    return sem.describe(wf, step)


def _static(p: Property, ts: TransitionSystem) -> PropertyResult:
    """A property known from the definition alone (the structure rules)."""
    if p.static_violation:
        return PropertyResult(property=p.name, verdict=Verdict.VIOLATED,
                              reason=p.static_violation,
                              fault_model=ts.fault_model, backend="smt")
    return PropertyResult(property=p.name, verdict=Verdict.HOLDS,
                          reason="no structure rule is broken",
                          fault_model=ts.fault_model, backend="smt")


def check_workflow(
    wf: Workflow,
    ts: TransitionSystem,
    *,
    properties: Sequence[str] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    rlimit: int = DEFAULT_RLIMIT,
    note: str = "",
) -> tuple[PropertyResult, ...]:
    """Every requested property of ``wf`` decided with z3 (or unknown, with why).

    A budget running out (see :func:`~verifier.smt._z3.budget`) keeps the
    violations and safety proofs found so far; the rest is ``unknown`` with the
    budget named. ``note`` is appended to every other unknown reason.
    """
    props = [p for p in ts.properties if properties is None or p.name in properties]
    if any(p.name == "structure" for p in props):
        # Structure is decided from the definition, before any encoding.
        rest = [p.name for p in props if p.name != "structure"]
        dynamic = {r.property: r for r in (
            check_workflow(wf, ts, properties=rest, max_depth=max_depth,
                           rlimit=rlimit, note=note) if rest else ())}
        return tuple(dynamic[p.name] if p.name in dynamic else _static(p, ts)
                     for p in props)
    started = time.perf_counter()

    def result(p: Property, verdict: Verdict, reason: str,
               cex: Counterexample | None = None, depth: int = 0) -> PropertyResult:
        return PropertyResult(
            property=p.name, verdict=verdict, reason=reason,
            fault_model=ts.fault_model, counterexample=cex,
            stats=Stats(seconds=time.perf_counter() - started, depth=depth),
            backend="smt")

    try:
        run = _Run(wf, ts, max_depth=max_depth, rlimit=rlimit)
        goals = {p.name: run.goal(p) for p in props}
    except Unsupported as exc:
        return tuple(result(p, Verdict.UNKNOWN, f"z3 backend: {exc}") for p in props)
    except (BudgetExhausted, z3.Z3Exception) as exc:
        if (why := budget_reason(exc)) is None:
            raise
        return tuple(result(p, Verdict.UNKNOWN, why) for p in props)

    def pipeline() -> tuple[PropertyResult, ...]:
        # 1. Plain induction, strengthened by the lemmas: unbounded and cheap.
        for g in goals.values():
            proved, detail = run.induction(g, max_k=1, simple=False)
            if proved:
                g.verdict, g.reason = Verdict.HOLDS, (
                    f"proved for executions of every length by {detail}")
        # Termination, when the bus provably stays within capacity: a ranking
        # function z3 synthesises and checks makes the execution-length bound
        # (and the lasso search) unnecessary.
        term = goals.get("termination")
        rank = RankResult(False, "")
        if term is not None and term.verdict is Verdict.HOLDS:
            rank = run.rank()
        # 2. BMC on one unrolling: shortest violations, or the execution-length bound.
        open_ = [g for g in goals.values() if g.verdict is Verdict.UNKNOWN]

        def want_bound() -> bool:
            return (term is not None and term.verdict is not Verdict.VIOLATED
                    and not rank.proved)

        res = _Bmc()
        if open_ or want_bound():
            res = run.bmc(open_, keep_going=want_bound)
        bound = res.bound
        for g in open_:
            if g.verdict is Verdict.VIOLATED:
                continue
            if g in res.stalled:
                continue  # unknown, with the depth where z3 gave up
            if bound is not None:
                g.verdict, g.reason = Verdict.HOLDS, (
                    "bounded model checking is complete: no execution is longer than "
                    f"{bound} steps, and none violates it")
                continue
            if res.diameter is not None:
                g.verdict, g.reason = Verdict.HOLDS, (
                    "bounded model checking is complete: no loop-free path is longer "
                    f"than {res.diameter} steps, so every reachable state and "
                    "transition was checked, and none violates it")
                continue
            # 3. k-induction over simple paths; its base case is what BMC checked.
            max_k = min(MAX_K, res.checked + 1)
            proved, detail = (run.induction(g, max_k=max_k, simple=True) if max_k > 0
                              else (False, ""))
            if proved:
                g.verdict, g.reason = Verdict.HOLDS, (
                    f"no violation within {res.checked} steps, and proved by {detail} "
                    "over simple paths")
            else:
                g.reason = (res.gave_up
                            or f"no violation within {res.checked} steps (BMC "
                            f"bound) and not proved by {max_k}-induction: {detail}")
        reached = max(res.checked, 0)

        out: list[PropertyResult] = []
        for p in props:
            g = goals[p.name]
            if g.verdict is Verdict.VIOLATED:
                assert g.trace is not None
                states, steps = g.trace
                msg = run.message(p, states, steps)
                out.append(result(p, Verdict.VIOLATED, msg,
                                  run.counterexample(states, steps, msg), g.depth))
                continue
            if p.name != "termination":
                out.append(result(p, g.verdict, g.reason, depth=reached))
                continue
            # Termination: the bus stays within capacity (g), and no fair cycle.
            if g.verdict is not Verdict.HOLDS:
                out.append(result(p, Verdict.UNKNOWN, f"bus capacity: {g.reason}"))
                continue
            if rank.proved:
                out.append(result(p, Verdict.HOLDS, (
                    f"the bus stays within its capacity ({g.reason}); every execution "
                    f"ends: {rank.detail}")))
                continue
            if bound is not None:
                out.append(result(p, Verdict.HOLDS, (
                    f"the bus stays within its capacity ({g.reason}); every execution "
                    f"ends within {bound} steps (z3 proved that no execution of "
                    f"{bound + 1} steps exists)"), depth=bound))
                continue
            if res.diameter is None and not rank.detail:
                rank = run.rank()
                if rank.proved:
                    out.append(result(p, Verdict.HOLDS, (
                        f"the bus stays within its capacity ({g.reason}); every "
                        f"execution ends: {rank.detail}")))
                    continue
            lasso, complete, why = run.fair_lasso()
            if lasso is not None:
                states, steps, loop = lasso
                msg = ("livelock: a cycle that never terminates, and is fair "
                       f"({ts.fairness})")
                out.append(result(p, Verdict.VIOLATED, msg,
                                  run.counterexample(states, steps, msg, loop),
                                  len(steps)))
            elif complete:
                out.append(result(p, Verdict.HOLDS, (
                    f"the bus stays within its capacity; no fair cycle, and every "
                    f"execution ends (z3 found no path beyond {run.max_depth} steps)")))
            else:
                out.append(result(p, Verdict.UNKNOWN, (
                    f"the bus stays within its capacity, but executions longer than "
                    f"{run.max_depth} steps exist and no fair cycle was found within "
                    "that bound"
                    + (f"; the reachable states have a cycle (each is within "
                       f"{res.diameter} steps, yet longer executions exist), so no "
                       "ranking function exists" if res.diameter is not None else "")
                    + (f"; ranking: {rank.detail}" if rank.detail else "")
                    + (f" ({why})" if why else ""))))
        return tuple(out)

    try:
        decided = pipeline()
    except (BudgetExhausted, z3.Z3Exception) as exc:
        if (why := budget_reason(exc)) is None:
            raise
    else:
        return tuple(
            r if r.verdict is not Verdict.UNKNOWN
            else dataclasses.replace(r, reason=r.reason + note)
            for r in decided)
    # A budget ran out: keep what was decided (violations, and safety proofs;
    # a termination goal that holds only bounds the bus), the rest is unknown.
    kept: list[PropertyResult] = []
    for p in props:
        g = goals[p.name]
        if g.verdict is Verdict.VIOLATED and g.trace is not None:
            states, steps = g.trace
            msg = run.message(p, states, steps)
            kept.append(result(p, Verdict.VIOLATED, msg,
                               run.counterexample(states, steps, msg), g.depth))
        elif g.verdict is Verdict.HOLDS and p.name != "termination":
            kept.append(result(p, g.verdict, g.reason))
        else:
            kept.append(result(p, Verdict.UNKNOWN, why))
    return tuple(kept)


def check_definition(definition: Workflow, faults: FaultModel = FaultModel(), *,
                     properties: Sequence[str] | None = None,
                     max_depth: int = DEFAULT_MAX_DEPTH,
                     rlimit: int = DEFAULT_RLIMIT) -> tuple[PropertyResult, ...]:
    """Compile ``definition`` as ``verifier.check`` does and check it with z3."""
    from .._workflow_ts import WorkflowTransitionSystem

    ts = WorkflowTransitionSystem(definition, faults)
    return check_workflow(definition, ts, properties=properties,
                          max_depth=max_depth, rlimit=rlimit)

"""BMC, k-induction and ranking-function termination over the saga encoding.

* **BMC** unrolls the transition relation from the initial state one step at a
  time and asks for a violation at exactly that depth, so the first one found
  is a shortest counterexample (the same length as the explicit checker's BFS).
  When no path of the current length exists at all, every reachable state has
  been checked and the verdict is an unbounded *holds*.
* **k-induction** is strengthened with the per-step lemmas of
  :mod:`._invariant`; a property that follows from them holds for every
  execution, whatever its length.
* **Termination** (under the strong fairness of ``SagaTransitionSystem``): no
  reachable deadlock, and a lexicographic ranking function that z3 checks
  never increases, strictly decreases on every *helpful* transition (a reply
  ``ok``, a compensation ``ok``, a recovery) and, where it stays level, leaves
  a helpful transition enabled. A fair run that never terminates would have to
  stay level forever with helpful transitions enabled infinitely often, and
  strong fairness then takes one of them. Where the ranking obligations fail,
  a fair lasso is searched for by BMC; otherwise the verdict is unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import z3

from saga_models import semantics as sem
from saga_models.semantics import (
    AT,
    CA,
    CRASHES,
    CS,
    DOWN,
    DUPS,
    EF,
    LT,
    PHASE,
    ST,
    CompStatus,
    Event,
    EventKind,
    Outcome,
    Phase,
    Status,
)

from ._encode import LOGIC, Encoding, Frame, replay
from ._invariant import LocalInvariant
from ._z3 import Labelled, model_int, new_solver

_TOOK = (Status.OK, Status.UNKNOWN, Status.RETRY_UNKNOWN)
_RANK_BITS = 16

StateBad = Callable[[Encoding, Frame], z3.BoolRef]


class TransBad(Protocol):
    """A bad transition: from ``s`` by the alternative ``c`` picks, optionally
    known to be one of ``alts`` (so the formula need only cover those)."""

    def __call__(
        self,
        enc: Encoding,
        s: Frame,
        c: z3.ArithRef,
        alts: Sequence[int] | None = None,
    ) -> z3.BoolRef: ...


# --- the properties as formulas ---------------------------------------------------
def completeness_state_bad(enc: Encoding, s: Frame) -> z3.BoolRef:
    """``compensation_completeness``: the state and terminal checks."""
    n = enc.n
    unstarted = [
        z3.And(enc.at(s, i, CS) != CompStatus.NONE, enc.at(s, i, ST) == Status.PENDING)
        for i in range(n)
    ]
    left = z3.And(
        z3.Or(s[PHASE] == Phase.COMPENSATED, s[PHASE] == Phase.FAILED),
        z3.Or(
            False,
            *[
                z3.And(enc.at(s, i, EF) > 0, enc.at(s, i, CS) != CompStatus.DONE)
                for i in sem.effect_steps(enc.saga)
            ],
        ),
    )
    return z3.Or(*unstarted, left)


def completeness_trans_bad(
    enc: Encoding, s: Frame, c: z3.ArithRef, alts: Sequence[int] | None = None
) -> z3.BoolRef:
    """``compensation_completeness``: a compensation started before a dependent's."""
    saga = enc.saga
    out = []
    for a in range(len(enc.alternatives)) if alts is None else alts:
        e = enc.alternatives[a]
        if e.kind is not EventKind.COMP_DISPATCH:
            continue
        bad = [
            z3.And(
                z3.Or(*[enc.at(s, j, ST) == v for v in _TOOK]),
                enc.at(s, j, CS) != CompStatus.DONE,
            )
            for j in sem.compensate_after(saga, e.step)
            if saga.steps[j].compensation is not None
        ]
        if bad:
            out.append(z3.And(c == a, z3.Or(*bad)))
    return z3.Or(*out) if out else z3.BoolVal(False)


def consistency_bad(enc: Encoding, s: Frame) -> z3.BoolRef:
    """``eventual_consistency``: a terminal state that disagrees with its outcome."""
    steps = sem.effect_steps(enc.saga)
    ph = s[PHASE]
    return z3.Or(
        ph == Phase.STUCK,
        z3.And(
            ph == Phase.COMPLETED,
            z3.Or(False, *[enc.at(s, i, EF) != 1 for i in steps]),
        ),
        z3.And(
            z3.Or(ph == Phase.COMPENSATED, ph == Phase.FAILED),
            z3.Or(False, *[enc.at(s, i, EF) != 0 for i in steps]),
        ),
    )


def deadlock_bad(enc: Encoding, s: Frame) -> z3.BoolRef:
    """A state that is not terminal and has no enabled event."""
    return z3.And(z3.Not(enc.terminal(s)), z3.Not(enc.enabled_any(s)))


def no_trans_bad(
    enc: Encoding, s: Frame, c: z3.ArithRef, alts: Sequence[int] | None = None
) -> z3.BoolRef:
    """No transition check."""
    return z3.BoolVal(False)


# --- BMC ---------------------------------------------------------------------------
@dataclass(slots=True)
class Trace:
    """A decoded path: ``len(events) == len(states) - 1``."""

    states: list[sem.State]
    events: list[Event]
    loop_start: int | None = None


@dataclass(slots=True)
class BmcOutcome:
    """What a BMC run found."""

    trace: Trace | None = None
    complete: bool = False
    """No path of length ``depth`` exists: every reachable state was checked."""
    depth: int = 0
    unknown: str = ""
    queries: int = 0


@dataclass(slots=True)
class Unrolling:
    """Frames ``s0..sk`` and choices ``c0..c(k-1)`` asserted on one solver."""

    enc: Encoding
    slv: Labelled
    frames: list[Frame] = field(default_factory=list)
    choices: list[z3.ArithRef] = field(default_factory=list)

    @classmethod
    def start(cls, enc: Encoding, rlimit: int, tag: str = "") -> Unrolling:
        """An unrolling of depth 0, in the initial state (label ``init``)."""
        u = cls(enc=enc, slv=new_solver(rlimit=rlimit, logic=LOGIC))
        s0 = enc.frame(f"{tag}s0")
        u.frames.append(s0)
        u.slv.add(enc.initial(s0))
        return u

    def extend(self) -> None:
        """Add one transition (its choice variable names the step number)."""
        k = len(self.frames)
        s = self.enc.frame(f"s{k}")
        c = self.enc.choice(f"event{k - 1}")
        self.slv.add(self.enc.transition(self.frames[-1], c, s))
        self.frames.append(s)
        self.choices.append(c)

    def decode(self, model: z3.ModelRef, upto: int) -> Trace:
        """The trace to frame ``upto``, replayed through the shared semantics."""
        enc = self.enc
        states = [
            tuple(model_int(model, v) for v in self.frames[k]) for k in range(upto + 1)
        ]
        events = [
            enc.alternatives[model_int(model, self.choices[k])] for k in range(upto)
        ]
        # TRIGGER and CHAIN_POS are decoded like any field; replay checks all.
        replay(enc, states, events)
        return Trace(states=states, events=events)


def bmc(
    enc: Encoding,
    *,
    state_bad: StateBad,
    trans_bad: TransBad = no_trans_bad,
    max_depth: int,
    rlimit: int,
) -> BmcOutcome:
    """Shortest path to a bad state or a bad transition, up to ``max_depth``."""
    u = Unrolling.start(enc, rlimit)
    out = BmcOutcome()
    for k in range(max_depth + 1):
        if k > 0:
            u.extend()
        out.depth = k
        goal = state_bad(enc, u.frames[k])
        if k > 0:
            goal = z3.Or(goal, trans_bad(enc, u.frames[k - 1], u.choices[k - 1]))
        lit = u.slv.track(f"bad at depth {k}", goal)
        res = u.slv.check([lit])
        out.queries += 1
        if res == z3.sat:
            out.trace = u.decode(u.slv.solver.model(), k)
            return out
        if res != z3.unsat:
            out.unknown = f"BMC at depth {k}: z3 gave up ({u.slv.reason_unknown()})"
            return out
        res = u.slv.check()
        out.queries += 1
        if res == z3.unsat:
            out.complete = True
            return out
        if res != z3.sat:
            out.unknown = f"BMC at depth {k}: z3 gave up ({u.slv.reason_unknown()})"
            return out
    return out


# --- induction -------------------------------------------------------------------
@dataclass(slots=True)
class InductionOutcome:
    """The result of trying to prove a safety property by induction."""

    proved: bool
    k: int = 0
    detail: str = ""
    """Unsat-core labels on success; the counterexample to induction otherwise."""
    unknown: str = ""


def k_induction(
    enc: Encoding,
    inv: LocalInvariant,
    *,
    state_bad: StateBad,
    trans_bad: TransBad = no_trans_bad,
    max_k: int,
    rlimit: int,
) -> InductionOutcome:
    """Prove ``state_bad``/``trans_bad`` unreachable, strengthened by ``inv``.

    Assumes the base case (no violation within ``max_k`` steps) is established
    by BMC when ``k > 1`` is needed; the caller runs BMC first in that case.
    """
    slv = new_solver(rlimit=rlimit, logic=LOGIC)
    frames = [enc.frame("i0")]
    choices: list[z3.ArithRef] = []
    lemmas = [slv.track("step lemmas at step 0", inv.holds(frames[0]))]
    cti = ""
    for k in range(1, max_k + 1):
        frames.append(enc.frame(f"i{k}"))
        choices.append(enc.choice(f"ievent{k - 1}"))
        slv.add(enc.transition(frames[k - 1], choices[k - 1], frames[k]))
        lemmas.append(slv.track(f"step lemmas at step {k}", inv.holds(frames[k])))
        # k-induction: k good steps force the (k+1)-th to be good.
        goal = z3.Or(
            state_bad(enc, frames[k]), trans_bad(enc, frames[k - 1], choices[k - 1])
        )
        if k == 1:
            goal = z3.Or(goal, state_bad(enc, frames[0]))
        lit = slv.track(f"violation after {k} steps", goal)
        res = slv.check([lit, *lemmas])
        if res == z3.unsat:
            core = [c for c in slv.core_labels() if c.startswith("step lemmas")]
            return InductionOutcome(
                proved=True, k=k, detail=", ".join(core) or "ranges"
            )
        if res != z3.sat:
            return InductionOutcome(
                proved=False,
                k=k,
                unknown=f"z3 gave up at k={k}: {slv.reason_unknown()}",
            )
        if not cti:
            cti = _describe_cti(enc, slv.solver.model(), frames, choices)
        # Assume this step good for the next k.
        slv.add(
            z3.Not(state_bad(enc, frames[k])),
            z3.Not(trans_bad(enc, frames[k - 1], choices[k - 1])),
        )
        if k == 1:
            slv.add(z3.Not(state_bad(enc, frames[0])))
    return InductionOutcome(proved=False, k=max_k, detail=cti)


def _describe_cti(
    enc: Encoding, m: z3.ModelRef, frames: list[Frame], choices: list[z3.ArithRef]
) -> str:
    """A counterexample to induction, in terms of steps and source locations."""
    s0 = tuple(model_int(m, v) for v in frames[0])
    e = enc.alternatives[model_int(m, choices[0])]
    v = sem.view(enc.saga, s0)
    busy = [
        f"{sv.name}={sv.status.name}/{sv.comp_status.name}"
        for sv in v.steps
        if sv.status is not Status.PENDING or sv.comp_status is not CompStatus.NONE
    ]
    where = ""
    if e.step >= 0:
        span = enc.saga.steps[e.step].span
        where = f" at {span}"
    return (
        f"counterexample to induction: from phase {v.phase.name} with "
        f"{', '.join(busy) or 'nothing started'}, event "
        f"'{e.describe(enc.saga)}'{where}"
    )


# --- termination ----------------------------------------------------------------
def _rank(enc: Encoding, s: Frame, step: int) -> list[z3.BitVecRef]:
    """Lexicographic rank as seen by an event on ``step`` (-1: none).

    Components: crashes left, duplicates left, phase, work left, down. Work
    left is a sum over steps of attempts left and where the action is, then
    where its compensation is; a retry loop that may go on forever (unbounded
    retries, a pivot's unknown outcome, compensations retried forever) stays
    level. An event writes the fields of the one step it names (a recovery
    writes only deliveries, which the rank ignores; see ``Encoding.post``), so
    the sum changes exactly as that step's term does: comparing that term is
    comparing the sums, without building an adder over every step.
    """
    t = sem._tables(enc.saga)

    def k(v: int) -> z3.BitVecRef:
        return z3.BitVecVal(v, _RANK_BITS)

    def wide(x: z3.BitVecRef) -> z3.BitVecRef:
        return z3.ZeroExt(_RANK_BITS - x.size(), x)

    work: z3.BitVecRef = k(0)
    if step >= 0:
        i = step
        st, at = enc.at(s, i, ST), wide(enc.at(s, i, AT))
        cap = t.attempt_cap[i]
        retry = z3.Or(st == Status.RETRY_FAILED, st == Status.RETRY_UNKNOWN)
        w = z3.If(
            st == Status.PENDING,
            k(3),
            z3.If(
                st == Status.RUNNING,
                k(2),
                z3.If(retry, z3.If(at == cap, k(2), k(1)), k(0)),
            ),
        )
        final = z3.Or(st == Status.OK, st == Status.FAILED, st == Status.UNKNOWN)
        action = z3.If(final, k(0), k(3) * (k(cap) - at) + w)
        cs, ca = enc.at(s, i, CS), wide(enc.at(s, i, CA))
        ccap = t.comp_cap
        u = z3.If(
            cs == CompStatus.NONE,
            k(3),
            z3.If(cs == CompStatus.RUNNING, k(1), z3.If(ca == ccap, k(1), k(2))),
        )
        comp = z3.If(cs == CompStatus.DONE, k(0), k(3) * (k(ccap) - ca) + u)
        work = action + comp
    phase = z3.If(
        s[PHASE] == Phase.RUNNING,
        k(2),
        z3.If(s[PHASE] == Phase.COMPENSATING, k(1), k(0)),
    )
    # Last, the step's late copy in flight: a late delivery changes nothing
    # else (it may happen in a terminal state, where nothing helpful is
    # enabled), and only a timed-out reply, which is level or lower in the
    # first five components, sets it again.
    late = wide(enc.at(s, step, LT)) if step >= 0 else k(0)
    return [
        k(enc.faults.crashes) - wide(s[CRASHES]),
        k(enc.faults.duplicates) - wide(s[DUPS]),
        phase,
        work,
        wide(s[DOWN]),
        late,
    ]


def _lex_lt(a: Sequence[z3.ArithRef], b: Sequence[z3.ArithRef]) -> z3.BoolRef:
    if not a:
        return z3.BoolVal(False)
    return z3.Or(a[0] < b[0], z3.And(a[0] == b[0], _lex_lt(a[1:], b[1:])))


def _helpful(enc: Encoding) -> list[int]:
    out = []
    for a, e in enumerate(enc.alternatives):
        if (
            e.kind in (EventKind.REPLY, EventKind.COMP_REPLY)
            and e.outcome is Outcome.OK
        ) or e.kind is EventKind.RECOVER:
            out.append(a)
    return out


@dataclass(slots=True)
class RankOutcome:
    """Whether the ranking obligations hold."""

    proved: bool
    detail: str = ""
    unknown: str = ""


def no_deadlock(enc: Encoding, inv: LocalInvariant, *, rlimit: int) -> bool | str:
    """True when no invariant state is a deadlock; else False or a z3 reason."""
    slv = new_solver(rlimit=rlimit, logic=LOGIC)
    s = enc.frame("d0")
    slv.add(inv.holds(s), deadlock_bad(enc, s))
    res = slv.check()
    if res == z3.unsat:
        return True
    if res == z3.sat:
        return False
    return slv.reason_unknown()


def fair_lasso(enc: Encoding, *, max_depth: int, rlimit: int) -> BmcOutcome:
    """Shortest fair lasso ``s0..sk`` with ``sk == sL``: a livelock under strong
    fairness (every family enabled somewhere on the cycle is taken on it)."""
    u = Unrolling.start(enc, rlimit)
    fams: dict[int, list[int]] = {}
    for a in range(len(enc.alternatives)):
        f = enc.family(a)
        if f >= 0:
            fams.setdefault(f, []).append(a)
    enabled: list[dict[int, z3.BoolRef]] = []
    out = BmcOutcome()

    def en(k: int) -> dict[int, z3.BoolRef]:
        return {
            f: z3.Or(*[enc.guard(u.frames[k], a) for a in alts])
            for f, alts in fams.items()
        }

    enabled.append(en(0))
    for k in range(1, max_depth + 1):
        u.extend()
        enabled.append(en(k))
        out.depth = k
        loop = enc.choice(f"loop{k}")
        parts = [
            loop >= 0,
            loop < k,
            z3.Or(
                *[
                    z3.And(loop == j, enc.equal(u.frames[k], u.frames[j]))
                    for j in range(k)
                ]
            ),
            z3.Not(enc.terminal(u.frames[k])),
        ]
        for f, alts in fams.items():
            was_enabled = z3.Or(*[z3.And(loop <= m, enabled[m][f]) for m in range(k)])
            taken = z3.Or(
                *[
                    z3.And(loop <= m, z3.Or(*[u.choices[m] == a for a in alts]))
                    for m in range(k)
                ]
            )
            parts.append(z3.Implies(was_enabled, taken))
        lit = u.slv.track(f"fair lasso of length {k}", z3.And(*parts))
        res = u.slv.check([lit])
        out.queries += 1
        if res == z3.sat:
            m = u.slv.solver.model()
            tr = u.decode(m, k)
            tr.loop_start = model_int(m, loop)
            out.trace = tr
            return out
        if res != z3.unsat:
            out.unknown = (
                f"lasso search at depth {k}: z3 gave up ({u.slv.reason_unknown()})"
            )
            return out
        res = u.slv.check()
        if res == z3.unsat:
            out.complete = True
            return out
    return out


# --- case-split versions (large definitions; see ._cases) --------------------------
def induction_by_cases(
    enc: Encoding,
    inv: LocalInvariant,
    *,
    state_bad: StateBad,
    trans_bad: TransBad = no_trans_bad,
    rlimit: int,
) -> InductionOutcome:
    """1-induction over the inductive ``inv``, one query per group of events.

    ``inv`` is inductive and holds initially, so every reachable state but the
    initial one is the successor of an ``inv`` state: the property holds if the
    initial state is good and no event from an ``inv`` state reaches a bad
    state or is a bad transition. Same obligations as :func:`k_induction` with
    ``k = 1``, split so that each query sees one step's events.
    """
    from ._cases import refute, shared

    init = sem.initial_state(enc.saga)
    check0 = new_solver(rlimit=rlimit, logic=LOGIC)
    s0 = enc.frame("b0")
    check0.add(enc.initial(s0), state_bad(enc, s0))
    if check0.check() != z3.unsat:
        return InductionOutcome(proved=False, k=1, detail=f"bad initial state {init}")
    slv = new_solver(rlimit=rlimit, logic=LOGIC)
    sh = shared(enc)
    s, gs = sh.frame, sh.groups
    lemmas = slv.track("step lemmas at step 0", inv.holds(s))
    lits = []
    for g, pick in zip(gs, sh.picks, strict=True):
        goal = z3.Or(state_bad(enc, g.post), trans_bad(enc, s, g.choice, g.alts))
        lits.append(slv.track(f"violation after an event of {g.name}",
                              z3.And(pick, goal)))
    status, k, m = refute(slv, [lemmas], lits, tag="induction", memo=sh)
    if status == "unsat":
        return InductionOutcome(
            proved=True, k=1, detail=f"step lemmas, {len(gs)} event groups"
        )
    if status == "sat" and m is not None:
        return InductionOutcome(
            proved=False, k=1, detail=_describe_cti(enc, m, [s], [gs[k].choice])
        )
    return InductionOutcome(
        proved=False, k=1, unknown=f"z3 gave up at k=1: {slv.reason_unknown()}"
    )


def ranking_by_cases(enc: Encoding, inv: LocalInvariant, *, rlimit: int) -> RankOutcome:
    """Check the ranking-function obligations over every invariant state, one
    group of events at a time.

    O1: no transition raises the rank, and one that keeps it level has a
    helpful event enabled before or after it. O2: every helpful event lowers
    the rank. Components are non-negative by the field ranges, so the order is
    well-founded. The last component (a late copy in flight) is not part of
    "level" or of O2: a transition that keeps the first five level and lowers
    it needs no helpful event (late deliveries, bounded by the timed-out
    replies that set the flag, each of which must have a helpful event
    enabled), but a helpful event must lower the first five.
    """
    from ._cases import refute, shared

    slv = new_solver(rlimit=rlimit, logic=LOGIC)
    sh = shared(enc)
    s = sh.frame
    lemmas = slv.track("step lemmas", inv.holds(s))
    helpful = set(_helpful(enc))
    h_pre = z3.Or(z3.BoolVal(False), *[enc.guard(s, a) for a in helpful])
    o1: list[z3.BoolRef] = []
    o2: list[z3.BoolRef] = []
    gs = sh.groups
    o2_groups = []
    for g, pick in zip(gs, sh.picks, strict=True):
        c, post = g.choice, g.post
        h_post = z3.Or(z3.BoolVal(False), *[enc.guard(post, a) for a in helpful])
        r, r2 = _rank(enc, s, g.step), _rank(enc, post, g.step)
        down = _lex_lt(r2, r)
        down5 = _lex_lt(r2[:5], r[:5])
        level = z3.And(*[x == y for x, y in zip(r[:5], r2[:5], strict=True)])
        bad1, bad2 = [], []
        for a in g.alts:
            bad1.append(z3.And(c == a, z3.Not(down), z3.Not(level)))
            if a in helpful:
                bad2.append(z3.And(c == a, z3.Not(down5)))
            else:
                bad1.append(z3.And(c == a, level, z3.Not(down), z3.Not(h_pre),
                                   z3.Not(h_post)))
        o1.append(slv.track(f"O1 {g.name}", z3.And(pick, z3.Or(*bad1))))
        if bad2:
            o2.append(slv.track(f"O2 {g.name}", z3.And(pick, z3.Or(*bad2))))
            o2_groups.append(g)
    for lits, what in ((o1, "O1"), (o2, "O2")):
        status, k, m = refute(slv, [lemmas], lits, tag=what, memo=sh)
        if status == "sat" and m is not None:
            g = gs[k] if what == "O1" else o2_groups[k]
            return RankOutcome(
                proved=False,
                detail=f"ranking obligation {what} fails: "
                + _describe_cti(enc, m, [s], [g.choice]),
            )
        if status != "unsat":
            return RankOutcome(proved=False, unknown=slv.reason_unknown())
    return RankOutcome(
        proved=True,
        detail="lexicographic rank (crashes left, "
        "duplicates left, phase, attempts and compensations left, down), "
        f"checked per group of events ({len(gs)} groups)",
    )

"""The saga semantics as z3 terms: one frame of state, one transition.

This mirrors :mod:`saga_models.semantics` line by line (``enabled``,
``_replies``, ``apply``, ``_reply``, ``_settle``), so the two backends explore the
same transition system. A transition is one *alternative*: a concrete
:class:`~saga_models.semantics.Event` (kind, step, outcome, effect delta) chosen
by an integer variable. The statically impossible alternatives (a timeout on a
step without one, a fault the model switches off) are never generated; the
state-dependent part of ``enabled`` is each alternative's guard. Decoding a
model is then just ``alternatives[value]``, and every decoded trace is replayed
through the real semantics (:func:`replay`) so an encoding bug cannot produce a
wrong counterexample silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import z3

from saga_models import FaultModel, Saga, SagaError, StepKind
from saga_models import semantics as sem
from saga_models.semantics import (
    AT,
    CA,
    CHAIN_POS,
    CRASHES,
    CS,
    DL,
    DOWN,
    DUPS,
    EF,
    HEADER,
    LT,
    PHASE,
    ST,
    TRIGGER,
    WIDTH,
    CompStatus,
    Event,
    EventKind,
    Outcome,
    Phase,
    Status,
)

from .._saga_ts import fairness_family

FIELD_NAMES = ("status", "attempts", "deliveries", "effect", "comp", "comp_attempts",
               "late")
HEADER_NAMES = ("phase", "down", "crashes", "duplicates", "trigger", "chain_pos")

_TOOK = (Status.OK, Status.UNKNOWN, Status.RETRY_UNKNOWN)
_RETRY = (Status.RETRY_FAILED, Status.RETRY_UNKNOWN)


class EncodingError(SagaError, RuntimeError):
    """The z3 encoding and the shared semantics disagree (a bug in sagaproof)."""


class Unsupported(SagaError, ValueError):
    """A definition the z3 encoding does not cover; the reason says which part."""


FIELD_BITS = 8
TRIGGER_BITS = 16
CHOICE_BITS = 16

Frame = list[z3.BitVecRef]
"""One state: the same flat layout as :data:`saga_models.semantics.State`."""

LOGIC = "QF_BV"
"""The logic of every query over this encoding (bit-vectors and Booleans
only). z3 answers it with its incremental bit-blasting SAT solver, which on
these queries (BMC unrollings, invariant closure) does several times less
work than the general SMT core a solver without a logic falls back to once it
is used incrementally."""


def _bv(value: int) -> z3.BitVecRef:
    return z3.BitVecVal(int(value), FIELD_BITS)


def _const(value: int, like: z3.BitVecRef) -> z3.BitVecRef:
    return z3.BitVecVal(int(value), like.size())


def _in(term: z3.ArithRef, values: Sequence[int]) -> z3.BoolRef:
    return z3.Or(*[term == int(v) for v in values]) if values else z3.BoolVal(False)


class _SettleBase:
    """``_settle``'s per-step conjunctions of one frame, and of all steps but
    one, built lazily and shared by every alternative's post-state."""

    def __init__(self, enc: Encoding, frame: Frame) -> None:
        self.enc = enc
        self.frame = frame
        self._atoms = [enc._settle_atoms(frame, j) for j in range(enc.n)]
        self._others: dict[int, tuple[z3.BoolRef, ...]] = {}
        self._all: tuple[z3.BoolRef, ...] | None = None

    def _fold(self, atoms: list[tuple[z3.BoolRef, ...]]) -> tuple[z3.BoolRef, ...]:
        return (
            z3.And(*[x[0] for x in atoms]),
            z3.And(*[x[1] for x in atoms]),
            z3.And(*[x[2] for x in atoms]),
            z3.Or(z3.BoolVal(False), *[x[3] for x in atoms]),
        )

    def all(self) -> tuple[z3.BoolRef, ...]:
        """ok, quiet, done and compensated over every step."""
        if self._all is None:
            self._all = self._fold(self._atoms)
        return self._all

    def others(self, j: int) -> tuple[z3.BoolRef, ...]:
        """The same over every step but ``j``."""
        if j not in self._others:
            self._others[j] = self._fold(self._atoms[:j] + self._atoms[j + 1 :])
        return self._others[j]


@dataclass(frozen=True, slots=True)
class Encoding:
    """Static facts of one saga under one fault model, and term builders."""

    saga: Saga
    faults: FaultModel
    alternatives: tuple[Event, ...]
    """Every event that can ever be enabled; a transition picks one by index."""

    @property
    def n(self) -> int:
        """Number of steps."""
        return len(self.saga.steps)

    @property
    def width(self) -> int:
        """Number of integers in a state."""
        return HEADER + WIDTH * self.n

    # --- frames --------------------------------------------------------------------
    def frame(self, tag: str) -> Frame:
        """Fresh state variables, named ``<tag>.<step>.<field>``.

        Fields are 8-bit vectors (the trigger 16-bit): every field is a small
        bounded counter, and bit-blasting them to SAT is far faster than linear
        integer arithmetic on the disjunctive transition relation. Comparisons
        are signed, which is exact because every value is far below 127.
        """
        names = [f"{tag}.{h}" for h in HEADER_NAMES]
        for s in self.saga.steps:
            names += [f"{tag}.{s.name}.{f}" for f in FIELD_NAMES]
        return [
            z3.BitVec(x, TRIGGER_BITS if k == TRIGGER else FIELD_BITS)
            for k, x in enumerate(names)
        ]

    def index_of(self, e: Event) -> int:
        """The alternative that takes semantics event ``e``: its index in
        :attr:`alternatives`, except that a timed-out compensation is taken
        by the failed one (same guard, implied; same writes), which keeps
        the relation one alternative per step smaller.

        Raises:
            ValueError: ``e`` can never be enabled under this fault model.
        """
        if e.kind is EventKind.COMP_REPLY and e.outcome is Outcome.UNKNOWN:
            e = Event(EventKind.COMP_REPLY, e.step, Outcome.FAILED)
        return self.alternatives.index(e)

    def choice(self, name: str) -> z3.BitVecRef:
        """A fresh variable that picks one of :attr:`alternatives`."""
        return z3.BitVec(name, CHOICE_BITS)

    def at(self, s: Frame, i: int, off: int) -> z3.ArithRef:
        """Field ``off`` of step ``i``."""
        return s[HEADER + WIDTH * i + off]

    def ranges(self, s: Frame) -> z3.BoolRef:
        """Every field within the range the semantics can produce."""
        t = sem._tables(self.saga)
        cs: list[z3.BoolRef] = [
            s[PHASE] >= 0,
            s[PHASE] <= 5,
            s[DOWN] >= 0,
            s[DOWN] <= 1,
            s[CRASHES] >= 0,
            s[CRASHES] <= self.faults.crashes,
            s[DUPS] >= 0,
            s[DUPS] <= self.faults.duplicates,
            s[TRIGGER] >= 0,
            s[TRIGGER] <= self.n,
            s[CHAIN_POS] == 0,
        ]
        for i in range(self.n):
            st, at, dl, ef, c, ca, lt = (self.at(s, i, o) for o in range(WIDTH))
            cs += [
                st >= 0,
                st <= 6,
                at >= 0,
                at <= t.attempt_cap[i],
                dl >= 1,
                dl <= 2,
                ef >= 0,
                ef <= sem.EFFECT_CAP,
                c >= 0,
                c <= 3,
                ca >= 0,
                ca <= t.comp_cap,
                lt >= 0,
                lt <= 1,
            ]
        return z3.And(*cs)

    def initial(self, s: Frame) -> z3.BoolRef:
        """``s`` is the initial state."""
        init = sem.initial_state(self.saga)
        return z3.And(*[v == int(x) for v, x in zip(s, init, strict=True)])

    def equal(self, a: Frame, b: Frame) -> z3.BoolRef:
        """The two states are the same."""
        return z3.And(*[x == y for x, y in zip(a, b, strict=True)])

    def terminal(self, s: Frame) -> z3.BoolRef:
        """One of the four outcomes."""
        return s[PHASE] >= int(Phase.COMPLETED)

    # --- enabled -------------------------------------------------------------------
    def _needs(self, s: Frame, j: int) -> z3.BoolRef:
        return _in(self.at(s, j, ST), _TOOK)

    def _running_actions(self, s: Frame) -> z3.BoolRef:
        return z3.Or(*[self.at(s, j, ST) == Status.RUNNING for j in range(self.n)])

    def _eligible(self, s: Frame, i: int) -> z3.BoolRef:
        """Step ``i`` passes ``_next_compensation``'s test (chains excluded)."""
        t = sem._tables(self.saga)
        if not t.has_comp[i]:
            return z3.BoolVal(False)
        parts = [
            _in(self.at(s, i, CS), (CompStatus.NONE, CompStatus.RETRY)),
            self._needs(s, i),
        ]
        for j in t.dependents[i]:
            if t.has_comp[j]:
                parts.append(
                    z3.Or(
                        self.at(s, j, CS) == CompStatus.DONE, z3.Not(self._needs(s, j))
                    )
                )
        return z3.And(*parts)

    def guard(self, s: Frame, a: int) -> z3.BoolRef:
        """Alternative ``a`` is enabled in ``s`` (``semantics.enabled``)."""
        e = self.alternatives[a]
        t = sem._tables(self.saga)
        live = s[PHASE] < int(Phase.COMPLETED)
        k = e.kind
        if k is EventKind.LATE:
            # semantics._late: also in terminal states (never while down,
            # which no terminal state is).
            lt = self.at(s, e.step, LT) == 1
            refused = (
                self.at(s, e.step, CS) == CompStatus.DONE
                if t.anti_suspension[e.step]
                else z3.BoolVal(False)
            )
            return z3.And(
                s[DOWN] == 0, lt, refused if e.delta == 0 else z3.Not(refused)
            )
        if k is EventKind.RECOVER:
            return z3.And(live, s[DOWN] == 1)
        up = z3.And(live, s[DOWN] == 0)
        if k is EventKind.CRASH:
            return z3.And(up, s[CRASHES] < self.faults.crashes)
        i = e.step
        st = self.at(s, i, ST)
        running = st == Status.RUNNING
        if k is EventKind.DISPATCH:
            pending_ready = z3.And(
                st == Status.PENDING,
                *[self.at(s, d, ST) == Status.OK for d in t.deps[i]],
            )
            return z3.And(
                up, s[PHASE] == Phase.RUNNING, z3.Or(_in(st, _RETRY), pending_ready)
            )
        if k is EventKind.DUPLICATE:
            return z3.And(
                up, running, self.at(s, i, DL) == 1, s[DUPS] < self.faults.duplicates
            )
        if k is EventKind.REPLY:
            g = z3.And(up, running, self._reply_guard(s, i, e))
            if e.outcome is Outcome.UNKNOWN and not self.faults.timeout:
                # semantics._cut_off: only a sibling cut off by an abort
                g = z3.And(g, s[PHASE] == Phase.COMPENSATING)
            return g
        if k is EventKind.COMP_REPLY:
            cs_running = self.at(s, i, CS) == CompStatus.RUNNING
            no_result = (
                z3.And(st != Status.OK) if t.needs_result[i] else z3.BoolVal(False)
            )
            if e.outcome is Outcome.OK:
                return z3.And(up, cs_running, z3.Not(no_result))
            f = self.faults
            # semantics.enabled: an open breaker fails a compensation fast
            breaker = t.has_breaker[i] and (f.fail or f.timeout)
            fail = z3.BoolVal(True) if f.comp_fail or breaker else no_result
            return z3.And(up, cs_running, fail)
        if k is EventKind.COMP_DISPATCH:
            # Every eligible compensation is enabled at once (independent ones
            # run concurrently), as in semantics._ready_compensations.
            return z3.And(
                up,
                s[PHASE] == Phase.COMPENSATING,
                z3.Not(self._running_actions(s)),
                self._eligible(s, i),
            )
        raise EncodingError(f"no guard for event {e!r}")

    def _reply_guard(self, s: Frame, i: int, e: Event) -> z3.BoolRef:
        t = sem._tables(self.saga)
        ef = self.at(s, i, EF)
        dl = self.at(s, i, DL)
        o, d = e.outcome, e.delta
        timed_out = o in (Outcome.UNKNOWN, Outcome.EXPIRED)
        if t.idempotent[i]:
            if o is Outcome.OK:
                return ef == 0 if d == 1 else ef != 0
            if timed_out and d == 0:
                return z3.BoolVal(True)
            return ef == 0  # failed, fatal, unknown-that-took-effect
        if o is Outcome.OK:
            return dl >= d
        if timed_out:
            return dl >= d
        return dl > d  # failed or fatal with delta < deliveries

    def enabled_any(self, s: Frame) -> z3.BoolRef:
        """Some event is enabled (the negation is a deadlock if not terminal)."""
        return z3.Or(*[self.guard(s, a) for a in range(len(self.alternatives))])

    # --- apply ---------------------------------------------------------------------
    def post(self, s: Frame, choice: z3.ArithRef) -> Frame:
        """The state after alternative ``choice`` (``semantics.apply``), as terms.

        The guard is not included; see :meth:`transition`.
        """
        writes, phase_writes = self._writes(s)
        out: Frame = []
        for idx in range(self.width):
            term: z3.ArithRef = s[idx]
            for a, val in reversed(writes.get(idx, [])):
                term = z3.If(choice == a, val, term)
            out.append(term)
        mid_phase: z3.BitVecRef = s[PHASE]
        for a, val in reversed(phase_writes):
            mid_phase = z3.If(choice == a, val, mid_phase)
        out[PHASE] = mid_phase
        self._settle(out)
        return out

    def posts(self, s: Frame) -> list[Frame]:
        """The state after each alternative: ``posts(s)[a]`` is :meth:`post`
        with ``choice == a``, built directly rather than selected by a choice
        variable. Fields the alternative does not write are the very terms of
        ``s`` (``posts(s)[a][k] is s[k]``), which is what lets a case-split query
        skip the lemmas of steps an event cannot touch."""
        writes, phase_writes = self._writes(s)
        per: list[dict[int, z3.ArithRef]] = [{} for _ in self.alternatives]
        for idx, lst in writes.items():
            for a, val in lst:
                per[a][idx] = val
        mid: dict[int, z3.ArithRef] = dict(phase_writes)
        base = _SettleBase(self, s)
        out: list[Frame] = []
        for a in range(len(self.alternatives)):
            m = list(s)
            for idx, val in per[a].items():
                m[idx] = _const(val, s[idx]) if isinstance(val, int) else val
            if a in mid:
                m[PHASE] = mid[a]
            self._settle(m, base=base)
            out.append(m)
        return out

    def _writes(
        self, s: Frame
    ) -> tuple[dict[int, list[tuple[int, z3.ArithRef]]], list[tuple[int, z3.ArithRef]]]:
        """Per field, the alternatives that write it and the value they write;
        and the alternatives that set the phase before ``_settle``."""
        t = sem._tables(self.saga)
        n = self.n
        writes: dict[int, list[tuple[int, z3.ArithRef]]] = {}
        phase_writes: list[tuple[int, z3.ArithRef]] = []

        def w(idx: int, a: int, val: z3.ArithRef | int) -> None:
            writes.setdefault(idx, []).append((a, val))

        for a, e in enumerate(self.alternatives):
            k, i = e.kind, e.step
            b = HEADER + WIDTH * i
            if k is EventKind.DISPATCH:
                w(b + ST, a, int(Status.RUNNING))
                w(
                    b + AT,
                    a,
                    z3.If(
                        s[b + AT] + 1 < t.attempt_cap[i],
                        s[b + AT] + 1,
                        t.attempt_cap[i],
                    ),
                )
                w(b + DL, a, 1)
            elif k is EventKind.DUPLICATE:
                w(b + DL, a, 2)
                w(DUPS, a, s[DUPS] + 1)
            elif k is EventKind.CRASH:
                w(DOWN, a, 1)
                w(CRASHES, a, s[CRASHES] + 1)
            elif k is EventKind.RECOVER:
                w(DOWN, a, 0)
                for j in range(n):
                    if not t.idempotent[j]:
                        bj = HEADER + WIDTH * j
                        w(
                            bj + DL,
                            a,
                            z3.If(s[bj + ST] == Status.RUNNING, 2, s[bj + DL]),
                        )
            elif k is EventKind.COMP_DISPATCH:
                w(b + CS, a, int(CompStatus.RUNNING))
            elif k is EventKind.LATE:
                if e.delta:
                    ef = s[b + EF] + 1
                    w(b + EF, a, z3.If(ef < sem.EFFECT_CAP, ef, sem.EFFECT_CAP))
                w(b + LT, a, 0)
            elif k is EventKind.COMP_REPLY:
                if e.outcome is Outcome.OK:
                    w(b + CS, a, int(CompStatus.DONE))
                    w(b + CA, a, 0)  # dead from here on
                    w(b + EF, a, z3.If(s[b + EF] > 0, s[b + EF] - 1, s[b + EF]))
                else:
                    ca1 = z3.If(s[b + CA] + 1 < t.comp_cap, s[b + CA] + 1, t.comp_cap)
                    w(b + CA, a, ca1)
                    w(b + CS, a, int(CompStatus.RETRY))
                    if t.comp_max is not None:
                        phase_writes.append(
                            (a, z3.If(ca1 >= t.comp_max, int(Phase.STUCK), s[PHASE]))
                        )
            elif k is EventKind.REPLY:
                self._post_reply(s, a, e, w, phase_writes)
        return writes, phase_writes

    def _post_reply(self, s: Frame, a: int, e: Event, w, phase_writes) -> None:  # type: ignore[no-untyped-def]
        t = sem._tables(self.saga)
        i = e.step
        b = HEADER + WIDTH * i
        ef = s[b + EF] + e.delta
        ef_new = z3.If(ef < sem.EFFECT_CAP, ef, sem.EFFECT_CAP)
        w(b + EF, a, ef_new)
        timed_out = e.outcome in (Outcome.UNKNOWN, Outcome.EXPIRED)
        # semantics._reply's late flag
        if t.idempotent[i]:
            w(b + LT, a, z3.If(ef_new == 0, _bv(1), _bv(0)) if timed_out else 0)
        elif timed_out:
            w(b + LT, a, z3.If(s[b + DL] > e.delta, 1, s[b + LT]))
        w(b + DL, a, 1)
        if e.outcome is Outcome.OK:
            w(b + ST, a, int(Status.OK))
            w(b + AT, a, 0)  # dead from here on (semantics' dead-variable reset)
            return
        expired = e.outcome is Outcome.EXPIRED
        unknown = e.outcome is Outcome.UNKNOWN or expired
        fatal = e.outcome is Outcome.FATAL
        bounded = t.max_attempts[i]
        exhausted = (s[b + AT] >= bounded) if bounded is not None else z3.BoolVal(False)
        if fatal or expired:
            exhausted = z3.BoolVal(True)
        running = s[PHASE] == Phase.RUNNING
        settle_st = _bv(Status.UNKNOWN if unknown else Status.FAILED)
        retry_st = _bv(Status.RETRY_UNKNOWN if unknown else Status.RETRY_FAILED)
        kind = t.kinds[i]
        st_run: z3.ArithRef
        if kind is StepKind.PIVOT and expired:
            # semantics._reply: the budget ran out before the outcome became
            # definite, so the pivot ends STUCK (below), not compensating
            st_run = settle_st
            stop = z3.BoolVal(True)
        elif kind is StepKind.PIVOT and unknown:
            st_run = z3.BitVecVal(int(Status.RETRY_UNKNOWN), FIELD_BITS)
            stop = z3.BoolVal(False)
        elif kind is StepKind.PIVOT:
            st_run = z3.If(exhausted, _bv(Status.FAILED), _bv(Status.RETRY_FAILED))
            stop = exhausted
        else:
            st_run = z3.If(exhausted, settle_st, retry_st)
            stop = exhausted
        w(b + ST, a, z3.If(running, st_run, settle_st))
        # Attempts are reset once the action is settled (cancelled sibling, or
        # an abort); a retriable step keeps them (it ends STUCK, resumable).
        if kind is StepKind.RETRIABLE:
            w(b + AT, a, z3.If(running, s[b + AT], 0))
        else:
            w(b + AT, a, z3.If(z3.Or(z3.Not(running), stop), 0, s[b + AT]))
        if kind is StepKind.RETRIABLE or (kind is StepKind.PIVOT and expired):
            phase_writes.append(
                (a, z3.If(z3.And(running, stop), int(Phase.STUCK), s[PHASE]))
            )
        else:
            aborts = z3.And(running, stop)
            phase_writes.append((a, z3.If(aborts, int(Phase.COMPENSATING), s[PHASE])))
            w(TRIGGER, a, z3.If(aborts, i + 1, s[TRIGGER]))
            w(CHAIN_POS, a, z3.If(aborts, 0, s[CHAIN_POS]))

    def settled(self, s: Frame) -> z3.BoolRef:
        """``_settle`` has nothing left to do in ``s``: true of the initial state
        and, by construction, of every state ``apply`` returns. A global lemma
        the per-step ones cannot express (it ties all steps to the phase)."""
        m = list(s)
        self._settle(m)
        return m[PHASE] == s[PHASE]

    def _settle_atoms(self, m: Frame, j: int) -> tuple[z3.BoolRef, ...]:
        """Step ``j``'s part of ``_settle``: ok, quiet, compensated-or-nothing-
        to-undo, compensated."""
        t = sem._tables(self.saga)
        st, cs = self.at(m, j, ST), self.at(m, j, CS)
        done = (
            z3.Or(cs == CompStatus.DONE, z3.Not(self._needs(m, j)))
            if t.has_comp[j]
            else z3.BoolVal(True)
        )
        return (
            st == Status.OK,
            z3.And(st != Status.RUNNING, cs != CompStatus.RUNNING),
            done,
            cs == CompStatus.DONE,
        )

    def _settle(self, m: Frame, *, base: _SettleBase | None = None) -> None:
        """``semantics._settle`` on the intermediate state, in place.

        With ``base`` (built once per frame by :meth:`posts`), a state that
        differs from the frame in at most one step reuses the frame's other
        steps' conjunctions: one build per step, not one per alternative, which
        is the difference between seconds and milliseconds at 100 steps."""
        n = self.n
        changed = [
            j
            for j in range(n)
            if base is None
            or any(
                m[k] is not base.frame[k]
                for k in range(HEADER + WIDTH * j, HEADER + WIDTH * (j + 1))
            )
        ]
        if base is not None and len(changed) <= 1:
            own = [self._settle_atoms(m, j) for j in changed]
            rest = base.others(changed[0]) if changed else base.all()
            parts = [z3.And(r, *[x[k] for x in own]) for k, r in enumerate(rest[:3])]
            parts.append(z3.Or(rest[3], *[x[3] for x in own]))
            all_ok, quiet, done, compensated = parts
        else:
            # The flat form (not the per-step atoms): the same formula, but z3's
            # search on the monolithic relation is several times faster on it
            # (workflow_conditions' proofs: 0.75 s against 4.7 s).
            t = sem._tables(self.saga)
            all_ok = z3.And(*[self.at(m, j, ST) == Status.OK for j in range(n)])
            quiet = z3.And(
                *[self.at(m, j, ST) != Status.RUNNING for j in range(n)],
                *[self.at(m, j, CS) != CompStatus.RUNNING for j in range(n)],
            )
            done = z3.And(
                *[
                    z3.Or(
                        self.at(m, j, CS) == CompStatus.DONE,
                        z3.Not(self._needs(m, j)),
                    )
                    for j in range(n)
                    if t.has_comp[j]
                ]
            )
            compensated = z3.Or(
                *[self.at(m, j, CS) == CompStatus.DONE for j in range(n)]
            )
        ph = m[PHASE]
        m[PHASE] = z3.If(
            ph == Phase.RUNNING,
            z3.If(all_ok, _bv(Phase.COMPLETED), _bv(Phase.RUNNING)),
            z3.If(
                z3.And(ph == Phase.COMPENSATING, quiet, done),
                z3.If(compensated, _bv(Phase.COMPENSATED), _bv(Phase.FAILED)),
                ph,
            ),
        )

    def transition(self, s: Frame, choice: z3.ArithRef, s2: Frame) -> z3.BoolRef:
        """``s --alternatives[choice]--> s2``."""
        guard = z3.Or(
            *[
                z3.And(choice == a, self.guard(s, a))
                for a in range(len(self.alternatives))
            ]
        )
        post = self.post(s, choice)
        return z3.And(guard, *[x == y for x, y in zip(s2, post, strict=True)])

    def family(self, a: int) -> int:
        """Fairness family of alternative ``a`` (-1 for none), the same function
        the explicit checker uses."""
        return fairness_family(self.n, self.alternatives[a])


def encode(saga: Saga, faults: FaultModel) -> Encoding:
    """The encoding of ``saga`` under ``faults``.

    Raises:
        Unsupported: for hand-wired compensation chains (imported ASL/Seata),
            whose order the encoding does not cover yet.
    """
    if saga.compensation_chains:
        raise Unsupported(
            f"saga {saga.name!r} has hand-wired compensation_chains (imported "
            f"{saga.source_format}); the z3 encoding covers native reverse-"
            "topological compensation only: use backend='explicit'"
        )
    if not saga.steps:
        raise Unsupported(f"saga {saga.name!r} has no steps")
    t = sem._tables(saga)
    alts: list[Event] = []
    for i in range(t.n):
        alts.append(Event(EventKind.DISPATCH, i))
        if not t.idempotent[i] and faults.duplicates > 0:
            alts.append(Event(EventKind.DUPLICATE, i))
        outs: list[tuple[Outcome, int]] = []
        # with the timeout knob off, unknown replies remain for a sibling cut
        # off by an abort (guarded by the phase, see Encoding.guard)
        timeout = t.has_timeout[i]
        # semantics._replies: retries of failures spend the total budget too
        total = (faults.timeout or faults.fail) and t.has_total[i]
        # semantics._replies: an open breaker fails an attempt fast
        fail = faults.fail or (t.has_breaker[i] and faults.timeout)
        if t.idempotent[i]:
            outs += [(Outcome.OK, 1), (Outcome.OK, 0)]
            if fail:
                outs.append((Outcome.FAILED, 0))
                if t.has_fatal[i]:
                    outs.append((Outcome.FATAL, 0))
            if timeout:
                outs += [(Outcome.UNKNOWN, 0), (Outcome.UNKNOWN, 1)]
            if total:
                outs += [(Outcome.EXPIRED, 0), (Outcome.EXPIRED, 1)]
        else:
            outs += [(Outcome.OK, 1), (Outcome.OK, 2)]
            if fail:
                outs += [(Outcome.FAILED, 0), (Outcome.FAILED, 1)]
                if t.has_fatal[i]:
                    outs += [(Outcome.FATAL, 0), (Outcome.FATAL, 1)]
            if timeout:
                outs += [
                    (Outcome.UNKNOWN, 0),
                    (Outcome.UNKNOWN, 1),
                    (Outcome.UNKNOWN, 2),
                ]
            if total:
                outs += [
                    (Outcome.EXPIRED, 0),
                    (Outcome.EXPIRED, 1),
                    (Outcome.EXPIRED, 2),
                ]
        alts += [Event(EventKind.REPLY, i, o, d) for o, d in outs]
        if faults.late and (timeout or total):
            # only a timed-out attempt sets the late flag
            alts.append(Event(EventKind.LATE, i, None, 1))
            if t.anti_suspension[i]:
                alts.append(Event(EventKind.LATE, i, None, 0))
        if t.has_comp[i]:
            alts.append(Event(EventKind.COMP_DISPATCH, i))
            alts.append(Event(EventKind.COMP_REPLY, i, Outcome.OK))
            # A timed-out compensation (COMP_REPLY UNKNOWN in the semantics)
            # has the same writes as a failed one, and its guard implies the
            # failed one's: the failed alternative stands for both, so the
            # relation over states is the same without another alternative
            # per step (see Encoding.index_of).
            alts.append(Event(EventKind.COMP_REPLY, i, Outcome.FAILED))
    if faults.crashes > 0:
        alts += [Event(EventKind.CRASH), Event(EventKind.RECOVER)]
    return Encoding(saga=saga, faults=faults, alternatives=tuple(alts))


def replay(enc: Encoding, states: Sequence[sem.State], events: Sequence[Event]) -> None:
    """Check a decoded trace against the shared semantics.

    Raises:
        EncodingError: naming the first step where the z3 model and
            ``semantics.apply`` disagree.
    """
    saga, faults = enc.saga, enc.faults
    if tuple(states[0]) != sem.initial_state(saga):
        raise EncodingError("decoded trace does not start in the initial state")
    for k, (src, e, dst) in enumerate(zip(states, events, states[1:], strict=False)):
        if e not in sem.enabled(saga, src, faults):
            raise EncodingError(f"step {k + 1}: {e!r} is not enabled in {src!r}")
        nxt = sem.apply(saga, src, e)
        if tuple(nxt) != tuple(dst):
            raise EncodingError(
                f"step {k + 1}: {e!r} leads to {nxt!r}, the z3 model says {dst!r}"
            )

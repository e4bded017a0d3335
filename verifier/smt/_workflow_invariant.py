"""Inductive strengthening for workflow k-induction, found by Houdini.

The fixed lemmas of :meth:`WorkflowEncoding.lemmas` bound each field; they say
nothing about how the fields relate, so induction fails on unreachable states
such as "the service still waits in IDLE but its event is gone from the bus".
Houdini (Flanagan and Leino, 2001) finds the relations: start from a finite
set of candidate lemmas from fixed templates, drop those false in the initial
state, then repeatedly ask z3 for a transition from a state satisfying all the
remaining candidates to one violating some; drop every candidate the target
violates. What remains when z3 finds no such transition is inductive: true
initially and preserved by every step, so true in every reachable state.

Templates (``i``, ``j`` services, ``q`` a state, ``k`` a bus slot or a fifo
channel's event, ``c`` a counter, ``v`` a value): ``s_i = q -> slot_k`` is empty,
has no fresh copy, has no repeated copy, is not empty, or holds at most one;
``s_i = q -> s_j != q'``; ``s_i = q -> c != v``; and the same bus facts
unconditionally.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import z3

from saga_models.workflow import semantics as sem
from saga_models.workflow.semantics import HEADER

from ._workflow_encode import Frame, WorkflowEncoding
from ._z3 import new_solver

Lemma = Callable[[Frame], z3.BoolRef]

MAX_CANDIDATES = 3000
"""Templates beyond this are not tried (the rounds would cost too much)."""


@dataclass(frozen=True, slots=True)
class Strengthening:
    """The inductive lemmas Houdini kept, and how it went."""

    lemmas: tuple[tuple[str, Lemma], ...]
    candidates: int
    rounds: int
    note: str = ""
    """Why Houdini stopped early (then ``lemmas`` is empty)."""

    def at(self, s: Frame) -> list[tuple[str, z3.BoolRef]]:
        """Every kept lemma instantiated on frame ``s``."""
        return [(label, lemma(s)) for label, lemma in self.lemmas]


@dataclass(frozen=True, slots=True)
class _Fact:
    """A fact about one bus position: ``kind`` on slot ``k`` (unordered) or on
    event ``e`` of fifo channel ``k``."""

    kind: str
    k: int
    e: int = -1

    def label(self, enc: WorkflowEncoding) -> str:
        t = enc.t
        if t.fifo:
            return f"{self.kind} {t.events[self.e]} on channel {self.k}"
        svc, e = t.slots[self.k]
        return f"{self.kind} {t.events[e]} for {t.services[svc]}"

    def _pos(self, enc: WorkflowEncoding) -> int:
        t = enc.t
        return t.bus_base + (self.k * t.capacity if t.fifo else 2 * self.k)

    def z3(self, enc: WorkflowEncoding, s: Frame) -> z3.BoolRef:
        j = self._pos(enc)
        if enc.t.fifo:
            codes = (2 * self.e + 1, 2 * self.e + 2)
            present = z3.Or(*[z3.Or(s[j + q] == codes[0], s[j + q] == codes[1])
                              for q in range(enc.t.capacity)])
            return present if self.kind == "some" else z3.Not(present)
        f, sn = s[j], s[j + 1]
        return {"no fresh": f == 0, "no repeated": sn == 0, "no": f + sn == 0,
                "some": f + sn >= 1, "at most one": f + sn <= 1}[self.kind]

    def holds(self, enc: WorkflowEncoding, st: tuple[int, ...]) -> bool:
        j = self._pos(enc)
        if enc.t.fifo:
            codes = (2 * self.e + 1, 2 * self.e + 2)
            present = any(st[j + q] in codes for q in range(enc.t.capacity))
            return present if self.kind == "some" else not present
        f, sn = st[j], st[j + 1]
        return {"no fresh": f == 0, "no repeated": sn == 0, "no": f + sn == 0,
                "some": f + sn >= 1, "at most one": f + sn <= 1}[self.kind]


@dataclass(frozen=True, slots=True)
class Candidate:
    """``if service i is in state q`` (or always, when ``i < 0``) then: a bus
    fact, another service not in a state, or a counter not at a value."""

    i: int
    q: int
    fact: _Fact | None = None
    j: int = -1
    """Another service (or a counter, with ``counter``) ..."""
    v: int = -1
    """... not in this state (or not at this value)."""
    counter: bool = False

    def label(self, enc: WorkflowEncoding) -> str:
        t = enc.t
        head = (f"{t.services[self.i]}={t.state_names[self.i][self.q]} -> "
                if self.i >= 0 else "")
        if self.fact is not None:
            return head + self.fact.label(enc)
        if self.counter:
            return head + f"{t.counters[self.j]}!={self.v}"
        return head + f"{t.services[self.j]}!={t.state_names[self.j][self.v]}"

    def z3(self, enc: WorkflowEncoding, s: Frame) -> z3.BoolRef:
        t = enc.t
        if self.fact is not None:
            then = self.fact.z3(enc, s)
        elif self.counter:
            then = s[t.counter_base + self.j] != self.v
        else:
            then = s[HEADER + 2 * self.j] != self.v
        if self.i < 0:
            return then
        return z3.Implies(s[HEADER + 2 * self.i] == self.q, then)

    def holds(self, enc: WorkflowEncoding, st: tuple[int, ...]) -> bool:
        t = enc.t
        if self.i >= 0 and st[HEADER + 2 * self.i] != self.q:
            return True
        if self.fact is not None:
            return self.fact.holds(enc, st)
        if self.counter:
            return st[t.counter_base + self.j] != self.v
        return st[HEADER + 2 * self.j] != self.v


def _facts(enc: WorkflowEncoding) -> list[_Fact]:
    t = enc.t
    if t.fifo:
        return [_Fact(kind, ch, e)
                for ch, (snd, r) in enumerate(t.channels)
                for e in enc._channel_events(snd, r)
                for kind in ("no", "some")]
    return [_Fact(kind, k) for k in range(len(t.slots))
            for kind in ("no fresh", "no repeated", "no", "some", "at most one")]


def candidates(enc: WorkflowEncoding) -> list[Candidate]:
    """Every template instance for ``enc``'s workflow."""
    t, wf = enc.t, enc.wf
    facts = _facts(enc)
    out = [Candidate(-1, -1, f) for f in facts]
    n = len(t.services)
    for i in range(n):
        for q in range(len(t.state_names[i])):
            out += [Candidate(i, q, f) for f in facts]
            out += [Candidate(i, q, j=j, v=q2) for j in range(i + 1, n)
                    for q2 in range(len(t.state_names[j]))]
            out += [Candidate(i, q, j=ci, v=v, counter=True)
                    for ci, c in enumerate(wf.counters)
                    for v in range(min(0, c.initial), max(c.cap, c.initial) + 1)]
    return out


def houdini(enc: WorkflowEncoding, *, rlimit: int,
            samples: Sequence[tuple[int, ...]] = ()) -> Strengthening:
    """The largest inductive subset of :func:`candidates` (relative to the
    fixed range lemmas).

    ``samples`` are reachable states (from the shared semantics): a candidate
    false in one of them cannot be invariant, so it is dropped before z3 is
    asked anything. Soundness does not depend on them; speed does.
    """
    cands = candidates(enc)
    if len(cands) > MAX_CANDIDATES:
        return Strengthening(lemmas=(), candidates=len(cands), rounds=0,
                             note=f"{len(cands)} candidate lemmas, over "
                             f"{MAX_CANDIDATES}")
    init = sem.initial_state(enc.wf, duplicates=enc.duplicates)
    live = [c for c in cands if c.holds(enc, init)
            and all(c.holds(enc, st) for st in samples)]
    slv = new_solver(rlimit=rlimit)
    s, s2, ch = enc.frame("h0"), enc.frame("h1"), z3.Int("hc")
    slv.add(enc.transition(s, ch, s2))
    slv.add(*[lemma for _, lemma in enc.checked_lemmas(s, rlimit=rlimit)])
    rounds = 0
    before = {c: c.z3(enc, s) for c in live}
    after_of = {c: c.z3(enc, s2) for c in live}
    while live:
        rounds += 1
        slv.solver.push()
        slv.add(*[before[c] for c in live])
        after = [after_of[c] for c in live]
        slv.add(z3.Or(*[z3.Not(a) for a in after]))
        res = slv.check()
        if res == z3.unsat:
            slv.solver.pop()
            break
        if res != z3.sat:
            why = slv.reason_unknown()
            slv.solver.pop()
            return Strengthening(lemmas=(), candidates=len(cands), rounds=rounds,
                                 note=f"z3 gave up finding lemmas: {why}")
        m = slv.solver.model()
        st2 = enc.values(m, s2)
        slv.solver.pop()
        live = [c for c in live if c.holds(enc, st2)]
    lemmas = tuple((c.label(enc), functools.partial(Candidate.z3, c, enc))
                   for c in live)
    return Strengthening(lemmas=lemmas, candidates=len(cands), rounds=rounds)

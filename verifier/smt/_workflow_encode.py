"""An event workflow's global transition system as z3 terms.

This mirrors :mod:`saga_models.workflow.semantics` (``enabled``, ``_handle``,
``apply``, ``_effect``, ``_send``, ``timers_enabled``) over the same flat state
layout, one integer variable per position. A transition is one *alternative*:
a concrete :class:`~saga_models.workflow.semantics.Step` label (kind, service,
event, transition, branch, duplicate, keep, sender, and the receiver's state
``at``), chosen by an integer variable. The label fixes everything ``apply``
decides by control flow, so each alternative is a guard (the state-dependent
part of ``enabled``: what is on the bus, the receiver's state, the guards of
the candidate transitions in file order) and a symbolic ``apply`` (whose only
data-dependent parts are counter saturation, bus capacity and the first free
cell of a fifo queue). Decoding a model is then ``alternatives[value]``, and
every decoded trace is replayed through the real semantics
(:func:`replay`), so an encoding bug cannot produce a wrong counterexample
silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import z3

from saga_models.workflow import Workflow
from saga_models.workflow import semantics as sem
from saga_models.workflow.semantics import DUPS, HEADER, OVERFLOW, Step, StepKind

from ._encode import EncodingError, Unsupported
from ._workflow_expr import Scope, StrVal, compile_truth
from ._z3 import new_solver

Frame = list[z3.ArithRef]
"""One state: the same flat layout as :data:`saga_models.workflow.semantics.State`."""

MAX_ALTERNATIVES = 20_000
"""Beyond this many transition labels the encoding is refused (``unknown``)."""


@dataclass(slots=True)
class WorkflowEncoding:
    """The symbolic transition system of one workflow under one duplicate budget."""

    wf: Workflow
    duplicates: int
    reduce: bool = False
    t: sem.Tables = field(init=False)
    alternatives: list[Step] = field(init=False)
    families: list[int] = field(init=False)
    """Per alternative, its strong-fairness family (as ``fairness_family``)."""
    width: int = field(init=False)
    _init: sem.State = field(init=False)
    _a: Frame = field(init=False)
    _b: Frame = field(init=False)
    _c: z3.ArithRef = field(init=False)
    _cache: dict[str, object] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.t = sem.tables(self.wf)
        self.width = self.t.width
        self._init = sem.initial_state(self.wf, duplicates=self.duplicates)
        self.alternatives = self._alternatives()
        if len(self.alternatives) > MAX_ALTERNATIVES:
            raise Unsupported(
                f"{len(self.alternatives):,} transition labels, over the "
                f"{MAX_ALTERNATIVES:,} the z3 encoding takes; use the explicit "
                "checker"
            )
        # Terms are built once over template frames and instantiated by
        # substitution (in z3's C++), which is far cheaper than rebuilding
        # them through the Python API for every frame of every unrolling.
        self._a, self._b = self.frame("__a"), self.frame("__b")
        self._c = z3.Int("__c")
        n_slots = len(self.t.channels if self.t.fifo else self.t.slots)
        self.families = [
            n_slots + s.service if s.kind is StepKind.TIMER
            else self.t.channel_of[(s.sender, s.service)] if self.t.fifo
            else self.t.slot_of[(s.service, s.event)]
            for s in self.alternatives
        ]

    # --- frames -------------------------------------------------------------------
    def frame(self, tag: str) -> Frame:
        """Fresh integer variables for one state."""
        return [z3.Int(f"{tag}[{j}]") for j in range(self.width)]

    def initial(self, s: Frame) -> z3.BoolRef:
        """``s`` is :func:`~saga_models.workflow.semantics.initial_state`."""
        return z3.And(*[v == x for v, x in zip(s, self._init, strict=True)])

    def equal(self, a: Frame, b: Frame) -> z3.BoolRef:
        """The two frames are the same state."""
        return z3.And(*[x == y for x, y in zip(a, b, strict=True)])

    def scope(self, s: Frame) -> Scope:
        """Names an expression reads, in frame ``s``."""
        t = self.t
        return Scope(
            counters={c: s[t.counter_base + i] for i, c in enumerate(t.counters)},
            states={name: StrVal(s[HEADER + 2 * i], t.state_names[i])
                    for i, name in enumerate(t.services)},
        )

    def values(self, model: z3.ModelRef, s: Frame) -> sem.State:
        """The concrete state of ``s`` in ``model``."""
        return tuple(int(model.eval(v, model_completion=True).as_long()) for v in s)

    def instantiate(self, term: z3.BoolRef, s: Frame, s2: Frame | None = None,
                    c: z3.ArithRef | None = None) -> z3.BoolRef:
        """``term`` built over the template frames, on frames ``s`` (``s2``)
        and choice ``c``."""
        pairs = list(zip(self._a, s, strict=True))
        if s2 is not None:
            pairs += list(zip(self._b, s2, strict=True))
        if c is not None:
            pairs.append((self._c, c))
        return z3.substitute(term, *pairs)

    def cached(self, key: str, build: Callable[[Frame, Frame, z3.ArithRef],
                                               z3.BoolRef],
               s: Frame, s2: Frame | None = None,
               c: z3.ArithRef | None = None) -> z3.BoolRef:
        """``build(s, s2, c)``, built once over the templates under ``key``."""
        term = self._cache.get(key)
        if term is None:
            term = build(self._a, self._b, self._c)
            self._cache[key] = term
        return self.instantiate(term, s, s2, c)

    # --- the labels -------------------------------------------------------------
    def _reactions(self, service: int, event: int, *,
                   duplicate: bool) -> list[tuple[int, Step]]:
        """``_handle`` for every state of the receiver: (state, step) pairs."""
        t = self.t
        out: list[tuple[int, Step]] = []
        for here in range(len(t.state_names[service])):
            if duplicate and t.dedup[service]:
                out.append((here, Step(StepKind.DROP, service, event,
                                       duplicate=True, at=here)))
                continue
            cands = t.handlers.get((service, here, event), ())
            for k in cands:
                tr = t.transition(service, k)
                out += [(here, Step(StepKind.DELIVER, service, event, k, b,
                                    duplicate, at=here))
                        for b in range(len(tr.branches))]
            # Reached when no candidate's guard holds (always possible to
            # state; the guard says when).
            if all(t.transition(service, k).guard is not None for k in cands):
                kind = (StepKind.IGNORE if event in t.ignore[service]
                        else StepKind.UNHANDLED)
                out.append((here, Step(kind, service, event, duplicate=duplicate,
                                       at=here)))
        return out

    def _alternatives(self) -> list[Step]:
        t = self.t
        dups = self.duplicates > 0
        out: list[Step] = []

        def expand(steps: list[tuple[int, Step]], sender: int) -> None:
            for _, s in steps:
                sent = s._replace(sender=sender)
                out.append(sent)
                if dups and not (self.reduce and t.dedup[s.service]):
                    out.append(sent._replace(keep=True))

        if t.fifo:
            for snd, r in t.channels:
                for e in self._channel_events(snd, r):
                    for seen in (False, True) if dups else (False,):
                        expand(self._reactions(r, e, duplicate=seen), snd)
        else:
            for s, e in t.slots:
                for seen in (False, True) if dups else (False,):
                    expand(self._reactions(s, e, duplicate=seen), -1)
        for (i, here), k in sorted(t.timers.items()):
            tr = t.transition(i, k)
            out += [Step(StepKind.TIMER, i, -1, k, b, at=here)
                    for b in range(len(tr.branches))]
        return out

    def _channel_events(self, sender: int, receiver: int) -> list[int]:
        """Events that can travel on the fifo channel ``sender -> receiver``."""
        t = self.t
        ev = {e: i for i, e in enumerate(t.events)}
        sent: set[int] = set()
        if sender == len(t.services):
            sent.update(ev[e] for e in self.wf.start)
        else:
            for tr in self.wf.services[sender].transitions:
                for b in tr.branches:
                    sent.update(ev[e] for e in b.emit)
        return sorted(e for e in sent if receiver in t.subscribers[e])

    # --- guards -------------------------------------------------------------------
    def _tr_guard(self, s: Frame, service: int, k: int) -> z3.BoolRef:
        g = self.t.transition(service, k).guard
        return z3.BoolVal(True) if g is None else compile_truth(g, self.scope(s))

    def guard(self, s: Frame, a: int) -> z3.BoolRef:
        """Alternative ``a`` is enabled in ``s`` (mirrors ``enabled``)."""
        t = self.t
        step = self.alternatives[a]
        base = HEADER + 2 * step.service
        parts = [s[OVERFLOW] == 0, s[base] == step.at]
        if step.kind is StepKind.TIMER:
            parts += [s[base + 1] == 0, self._tr_guard(s, step.service,
                                                        step.transition)]
            return z3.And(*parts)
        if step.keep:
            parts.append(s[DUPS] > 0)
        if t.fifo:
            head = t.bus_base + t.channel_of[(step.sender, step.service)] * t.capacity
            parts.append(s[head] == 2 * step.event + 1 + int(step.duplicate))
        else:
            k = t.bus_base + 2 * t.slot_of[(step.service, step.event)]
            parts.append(s[k + int(step.duplicate)] > 0)
        if step.kind is not StepKind.DROP:
            # The first candidate in file order whose guard holds handles it.
            cands = t.handlers.get((step.service, step.at, step.event), ())
            for k2 in cands:
                if step.kind is StepKind.DELIVER and k2 == step.transition:
                    parts.append(self._tr_guard(s, step.service, k2))
                    break
                parts.append(z3.Not(self._tr_guard(s, step.service, k2)))
        return z3.And(*parts)

    def enabled_any(self, s: Frame) -> z3.BoolRef:
        """Some step is enabled (``not is_quiescent``)."""
        return self.cached("enabled_any", lambda a, b, c: z3.Or(
            *[self.guard(a, k) for k in range(len(self.alternatives))]), s)

    def enabled_family(self, s: Frame, alts: list[int]) -> z3.BoolRef:
        """Some alternative in ``alts`` is enabled in ``s``."""
        return self.cached(f"enabled{alts}", lambda a, b, c: z3.Or(
            *[self.guard(a, k) for k in alts]), s)

    # --- effects ------------------------------------------------------------------
    def post(self, s: Frame, a: int) -> list[z3.ArithRef]:
        """The state after alternative ``a`` from ``s`` (mirrors ``apply``)."""
        t = self.t
        step = self.alternatives[a]
        st: list[z3.ArithRef] = list(s)
        if step.kind is not StepKind.TIMER:
            if step.keep:
                st[DUPS] = st[DUPS] - 1
            if t.fifo:
                cap = t.capacity
                base = t.bus_base + t.channel_of[(step.sender, step.service)] * cap
                if step.keep:
                    st[base] = z3.IntVal(2 * step.event + 2)
                else:
                    st[base:base + cap] = [*st[base + 1:base + cap], z3.IntVal(0)]
            else:
                k = t.bus_base + 2 * t.slot_of[(step.service, step.event)]
                j = k + int(step.duplicate)
                st[j] = st[j] - 1
                if step.keep:
                    st[k + 1] = st[k + 1] + 1
        self._effect(st, step)
        return st

    def _effect(self, st: list[z3.ArithRef], step: Step) -> None:
        t = self.t
        if step.kind not in (StepKind.DELIVER, StepKind.TIMER):
            return
        tr = t.transition(step.service, step.transition)
        br = tr.branches[step.branch]
        base = HEADER + 2 * step.service
        to = t.state_names[step.service].index(br.to)
        # The guard fixed the receiver's state to `at`, and nothing above
        # writes a service field, so `to != st[base]` is decided statically.
        if to != step.at:
            st[base], st[base + 1] = z3.IntVal(to), z3.IntVal(0)
        if step.kind is StepKind.TIMER:
            st[base + 1] = z3.IntVal(1 if to == step.at else 0)
        for name, amount in br.add:
            i = t.counter_base + t.counters.index(name)
            v = st[i] + amount
            cap = t.caps[t.counters.index(name)]
            low = z3.If(v < cap, v, z3.IntVal(cap))  # min(cap, v)
            st[i] = z3.If(low > 0, low, z3.IntVal(0))  # max(0, ...)
        ev = {e: i for i, e in enumerate(t.events)}
        for e in br.emit:
            self._send(st, step.service, ev[e])

    def _send(self, st: list[z3.ArithRef], sender: int, event: int) -> None:
        t = self.t
        for r in t.subscribers[event]:
            if t.fifo:
                cap = t.capacity
                base = t.bus_base + t.channel_of[(sender, r)] * cap
                cells = st[base:base + cap]
                busy = [c != 0 for c in cells]
                for q in range(cap):
                    free_here = z3.And(cells[q] == 0, *busy[:q])
                    st[base + q] = z3.If(free_here, z3.IntVal(2 * event + 1),
                                         cells[q])
                st[OVERFLOW] = z3.If(z3.And(*busy), z3.IntVal(1), st[OVERFLOW])
            else:
                k = t.bus_base + 2 * t.slot_of[(r, event)]
                full = st[k] + st[k + 1] >= t.capacity
                st[OVERFLOW] = z3.If(full, z3.IntVal(1), st[OVERFLOW])
                st[k] = z3.If(full, st[k], st[k] + 1)

    def transition(self, s: Frame, c: z3.ArithRef, s2: Frame) -> z3.BoolRef:
        """``s --alternatives[c]--> s2``."""
        return self.cached("transition", self._transition, s, s2, c)

    def _transition(self, s: Frame, s2: Frame, c: z3.ArithRef) -> z3.BoolRef:
        n = len(self.alternatives)
        parts: list[z3.BoolRef] = [c >= 0, c < n]
        # Per position, only the alternatives that write it appear in its
        # If-chain; every other alternative leaves it as it was.
        nxt: list[z3.ArithRef] = list(s)
        for a in range(n):
            parts.append(z3.Implies(c == a, self.guard(s, a)))
            post = self.post(s, a)
            for j in range(self.width):
                if post[j] is not s[j]:
                    nxt[j] = z3.If(c == a, post[j], nxt[j])
        parts += [x == y for x, y in zip(s2, nxt, strict=True)]
        return z3.And(*parts)

    # --- strengthening lemmas -----------------------------------------------------
    def lemmas(self, s: Frame) -> list[tuple[str, z3.BoolRef]]:
        """Invariants of every reachable state, each with why it holds.

        Each is preserved by every alternative (``initial`` satisfies it and
        ``post`` keeps it): ``tests/smt/test_workflow_smt.py`` checks them on
        every explicitly reachable state of the corpus.
        """
        tmpl = self._cache.get("lemmas")
        if tmpl is None:
            tmpl = self._lemmas(self._a)
            self._cache["lemmas"] = tmpl
        return [(label, self.instantiate(term, s))
                for label, term in tmpl]  # type: ignore[attr-defined]

    def checked_lemmas(self, s: Frame, *, rlimit: int
                       ) -> list[tuple[str, z3.BoolRef]]:
        """:meth:`lemmas`, once z3 has confirmed they are inductive (true
        initially, kept by every step); none if it could not, so a proof
        never rests on a lemma that was only argued for."""
        ok = self._cache.get("lemmas_ok")
        if ok is None:
            a, b = self._a, self._b
            slv = new_solver(rlimit=rlimit)
            before = z3.And(*[x for _, x in self.lemmas(a)])
            after = z3.And(*[x for _, x in self.lemmas(b)])
            # Satisfiable: a lemma fails initially, or some step breaks one.
            slv.add(z3.Or(z3.And(self.initial(a), z3.Not(before)),
                          z3.And(before, self.transition(a, self._c, b),
                                 z3.Not(after))))
            ok = slv.check() == z3.unsat
            self._cache["lemmas_ok"] = ok
        return self.lemmas(s) if ok else []

    def _lemmas(self, s: Frame) -> list[tuple[str, z3.BoolRef]]:
        t, wf = self.t, self.wf
        out: list[tuple[str, z3.BoolRef]] = [
            ("overflow is a flag", z3.And(s[OVERFLOW] >= 0, s[OVERFLOW] <= 1)),
            ("duplicate budget only shrinks",
             z3.And(s[DUPS] >= 0, s[DUPS] <= self._init[DUPS])),
        ]
        for i, svc in enumerate(wf.services):
            base = HEADER + 2 * i
            # A timer sets its fired flag only when it stays in its state.
            stays = [here for (j, here), k in t.timers.items() if j == i
                     and any(b.to == t.state_names[i][here]
                             for b in t.transition(i, k).branches)]
            fired = z3.Or(s[base + 1] == 0,
                          z3.And(s[base + 1] == 1,
                                 z3.Or(*[s[base] == h for h in stays])
                                 if stays else z3.BoolVal(False)))
            out.append((f"service {svc.name} is in one of its states",
                        z3.And(s[base] >= 0, s[base] < len(svc.states), fired)))
        for i, c in enumerate(wf.counters):
            v = s[t.counter_base + i]
            out.append((f"counter {c.name} saturates",
                        z3.And(v >= min(0, c.initial), v <= max(c.cap, c.initial))))
        b = t.bus_base
        seen_total: list[z3.ArithRef] = []
        if t.fifo:
            cap = t.capacity
            for ch, (snd, r) in enumerate(t.channels):
                cells = s[b + ch * cap:b + (ch + 1) * cap]
                evs = self._channel_events(snd, r)
                for q, cell in enumerate(cells):
                    ok = [cell == 0] + [cell == 2 * e + 1 for e in evs]
                    if q == 0 and self._init[DUPS] > 0:
                        # Only a kept head is marked seen.
                        ok += [cell == 2 * e + 2 for e in evs]
                        seen_total.append(z3.If(z3.Or(*[cell == 2 * e + 2
                                                        for e in evs])
                                                if evs else z3.BoolVal(False),
                                                z3.IntVal(1), z3.IntVal(0)))
                    out.append((f"fifo channel {ch} cell {q} holds its events",
                                z3.Or(*ok)))
                for q in range(1, cap):
                    out.append((f"fifo channel {ch} is contiguous",
                                z3.Implies(cells[q - 1] == 0, cells[q] == 0)))
        else:
            for k in range(len(t.slots)):
                fresh, seen = s[b + 2 * k], s[b + 2 * k + 1]
                out.append((f"bus slot {k} within capacity",
                            z3.And(fresh >= 0, seen >= 0,
                                   fresh + seen <= t.capacity)))
                seen_total.append(seen)
        # Every kept copy took one from the budget; delivering it gives none back.
        total = z3.Sum(*seen_total) if seen_total else z3.IntVal(0)
        out.append(("kept copies come from the duplicate budget",
                    s[DUPS] + total <= self._init[DUPS]))
        return out


def replay(enc: WorkflowEncoding, states: list[sem.State],
           steps: list[Step]) -> None:
    """Check a decoded trace against the shared semantics, step by step.

    Raises :class:`EncodingError` naming the first step where the z3 model and
    :func:`~saga_models.workflow.semantics.apply` disagree.
    """
    wf = enc.wf
    state = sem.initial_state(wf, duplicates=enc.duplicates)
    if states[0] != state:
        raise EncodingError(f"z3 initial state {states[0]} is not the semantics' "
                            f"{state}")
    for i, step in enumerate(steps):
        if step not in sem.enabled(wf, state, reduce=enc.reduce):
            raise EncodingError(f"z3 step {i + 1} {sem.describe(wf, step)!r} is not "
                                f"enabled in {sem.view(wf, state)}")
        state = sem.apply(wf, state, step)
        if states[i + 1] != state:
            raise EncodingError(f"after step {i + 1} {sem.describe(wf, step)!r} z3 "
                                f"has {states[i + 1]}, the semantics {state}")

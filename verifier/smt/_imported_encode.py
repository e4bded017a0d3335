"""The transition relation of an imported graph (ASL, Seata, Serverless
Workflow) as z3 formulas, tabulated from the graph semantics itself.

Nothing here restates a rule of the engine. :mod:`._symbolic` runs
``graph_semantics.region_events`` (one region at a time), ``machine_events``,
``apply``, ``is_terminal`` and the transition system's own property checks on
symbolic states, and each case they split into becomes one guarded command:
a cube over the state slots (the guard), the event, and the next state's slots
as functions of the current ones. The slot domains come from the layout
:class:`~saga_models.importers.graph_semantics.Tables` documents, and the
tabulation checks that every command keeps every slot inside its domain, so
the relation is closed over the states it was derived for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import z3

from saga_models.importers import graph_semantics as gs
from saga_models.importers.graph_semantics import Event, Tables

from .._imported_ts import ImportedTransitionSystem
from ._encode import EncodingError, Unsupported
from ._symbolic import Case, Cube, NotSymbolic, Sym, TooManyCases, cases, values

Frame = tuple[z3.ArithRef, ...]

SLOT_BITS = 8
"""Bits per state slot: the semantics packs every slot into one byte."""
CHOICE_BITS = 16
"""Bits of the variable naming the event taken."""



@dataclass(frozen=True, slots=True)
class Lookup:
    """A next-state slot that depends on one slot of the current state."""

    src: int
    table: tuple[tuple[int, int], ...]
    """(value of ``src``, the slot's next value), for every value in the cube."""


Slot = int | Lookup
"""A next-state slot: a constant, or a lookup on one current slot."""


def domains(t: Tables) -> list[frozenset[int]]:
    """The values each slot of ``t``'s layout may hold."""
    errs = frozenset([0, *(2 * (e + 1) + b for e in range(len(t.errors))
                           for b in (0, 1))])
    d: list[frozenset[int]] = [frozenset()] * t.width
    d[0] = frozenset(range(len(gs.STATUS_NAMES)))
    d[1] = errs
    d[2] = frozenset(range(3))
    for r in t.regions:
        d[r.base] = frozenset(range(gs.AT + len(r.names)))
        d[r.base + 1] = errs
        for k in range(t.width_counters[r.index]):
            d[r.base + 2 + k] = frozenset(range(gs.CAP + 1))
    n = len(t.effects)
    for k in range(n):
        d[t.effect_base + k] = frozenset(range(len(gs.EFFECT_NAMES)))
    if t.seata or t.bpmn:
        # Seata's compensation stack; BPMN's list of completed activities
        # whose handlers are still to run (the same slots).
        for k in range(n):
            d[t.stack_base + k] = frozenset(range(n + 1))
    if t.bpmn:
        d[t.incident_slot] = frozenset((0, 1))  # a handler's incident
    if any(not x for x in d):
        raise EncodingError("a state slot is outside the documented layout")
    return d


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One guarded transition: in ``cube``, event ``alt`` leads to ``out``."""

    alt: int
    cube: Cube
    out: tuple[tuple[int, Slot], ...]
    """(slot, its next value) for every slot that changes or is set."""


def _concrete_events(evs: list[Event]) -> list[Event]:
    """Events with every field concrete (deciding the slots they came from)."""
    out = []
    for e in evs:
        fixed: dict[str, Any] = {}
        for f in dataclasses.fields(e):
            v = getattr(e, f.name)
            if isinstance(v, Sym):
                fixed[f.name] = bool(v) if f.type == "bool" else int(v)
        out.append(dataclasses.replace(e, **fixed) if fixed else e)
    return out


class ImportedEncoding:
    """The guarded commands of one imported transition system, and the z3
    formulas over frames of its state slots."""

    def __init__(self, ts: ImportedTransitionSystem, *,
                 unfair: ImportedTransitionSystem | None = None) -> None:
        self.ts = ts
        self.t = t = ts.tables
        self.width = t.width
        self.dom = domains(t)
        self.alternatives: list[Event] = []
        self._index: dict[Event, int] = {}
        self.commands: list[Command] = []
        try:
            self._tabulate()
            self.terminal_cases = cases(lambda s: gs.is_terminal(t, s), self.dom,
                                        finish=bool)
        except TooManyCases as exc:
            raise Unsupported(f"the graph semantics splits into {exc} for one "
                              "region; too many guarded transitions to encode") \
                from exc
        except NotSymbolic as exc:  # a semantics change this module cannot follow
            raise EncodingError(f"cannot tabulate the graph semantics: {exc}") \
                from exc
        # Formulas are built once over these template frames and instantiated
        # per frame by substitution (in z3's C code): building them anew for
        # every frame of an unrolling costs more than solving.
        self._x, self._y = self.frame("x"), self.frame("y")
        self._c = self.choice("c")
        self._templates: dict[object, z3.BoolRef] = {}
        self._members: dict[tuple[int, frozenset[int]], z3.BoolRef] = {}
        self.families = [ts.fairness_family(e) for e in self.alternatives]
        self.unfair_families = (
            [unfair.fairness_family(e) for e in self.alternatives]
            if unfair is not None else self.families)

    # --- tabulation -----------------------------------------------------------------
    def _alt(self, e: Event) -> int:
        if e not in self._index:
            self._index[e] = len(self.alternatives)
            self.alternatives.append(e)
        return self._index[e]

    def _tabulate(self) -> None:
        t = self.t
        sources: list[Callable[[tuple[Any, ...]], list[Event]]] = [
            (lambda s, r=r: gs.region_events(t, s, r))  # type: ignore[misc]
            for r in t.regions]
        sources.append(lambda s: gs.machine_events(t, s))
        for fn in sources:
            for guard in cases(fn, self.dom, finish=_concrete_events):
                for e in guard.result:
                    a = self._alt(e)
                    for step in cases(lambda s, e=e: gs.apply(t, s, e),  # type: ignore[misc]
                                      guard.cube):
                        self.commands.append(self._command(a, step))

    def _command(self, alt: int, case: Case) -> Command:
        out: list[tuple[int, Slot]] = []
        result = case.result
        if len(result) != self.width:
            raise EncodingError("apply changed the width of the state")
        for i, x in enumerate(result):
            if isinstance(x, Sym) and x.is_slot and x.slot == i:
                continue  # unchanged
            v = values(x, case.cube)
            if isinstance(v, dict):
                assert isinstance(x, Sym)
                if any(w not in self.dom[i] for w in v.values()):
                    raise EncodingError(f"slot {i} leaves its domain")
                if x.slot != i or any(k != w for k, w in v.items()):
                    out.append((i, Lookup(src=x.slot, table=tuple(v.items()))))
                continue
            if v not in self.dom[i]:
                raise EncodingError(f"slot {i} is set to {v}, outside its domain")
            if case.cube[i] == frozenset([v]):
                continue  # it holds that value already
            out.append((i, v))
        return Command(alt=alt, cube=case.cube, out=tuple(out))

    # --- formulas ---------------------------------------------------------------------
    def frame(self, name: str) -> Frame:
        """Fresh variables for one state."""
        # Bit-vectors: every slot is a small unsigned value, and bit-blasting
        # these equality-heavy formulas is far faster than integer reasoning.
        return tuple(z3.BitVec(f"{name}_{i}", SLOT_BITS) for i in range(self.width))

    def choice(self, name: str) -> z3.ArithRef:
        """A fresh variable naming the event taken."""
        return z3.BitVec(name, CHOICE_BITS)

    def in_domain(self, s: Frame) -> z3.BoolRef:
        """Every slot within its domain (a range lemma for induction)."""
        return z3.And(*[self._member(s[i], d) for i, d in enumerate(self.dom)])

    @staticmethod
    def _member(x: z3.ArithRef, vals: frozenset[int]) -> z3.BoolRef:
        lo, hi = min(vals), max(vals)
        if len(vals) == hi - lo + 1:
            return z3.And(z3.UGE(x, lo), z3.ULE(x, hi)) if lo != hi else x == lo
        return z3.Or(*[x == v for v in sorted(vals)])

    def cube(self, s: Frame, cube: Cube) -> z3.BoolRef:
        """The states of ``s`` in ``cube`` (slots at their full domain are free)."""
        if s is not self._x:
            return self.at(s, self.cube(self._x, cube))
        parts = []
        for i, c in enumerate(cube):
            if c != self.dom[i]:
                key = (i, c)
                if key not in self._members:
                    self._members[key] = self._member(s[i], c)
                parts.append(self._members[key])
        return z3.And(True, *parts)

    # --- templates ----------------------------------------------------------------
    def template(self, key: object,
                 build: Callable[[Frame, z3.ArithRef, Frame], z3.BoolRef]
                 ) -> z3.BoolRef:
        """``build`` over the template frames, built once per ``key``."""
        if key not in self._templates:
            self._templates[key] = build(self._x, self._c, self._y)
        return self._templates[key]

    def at(self, s: Frame, expr: z3.BoolRef, c: z3.ArithRef | None = None,
           s2: Frame | None = None) -> z3.BoolRef:
        """A template formula instantiated on frames ``s`` (and ``c``, ``s2``)."""
        pairs = list(zip(self._x, s, strict=True))
        if c is not None:
            pairs.append((self._c, c))
        if s2 is not None:
            pairs.extend(zip(self._y, s2, strict=True))
        return z3.substitute(expr, *pairs)

    def lift(self, key: object, fn: Callable[[Frame], z3.BoolRef]
             ) -> Callable[[Frame], z3.BoolRef]:
        """A state predicate built once and instantiated per frame."""
        def on(s: Frame) -> z3.BoolRef:
            return self.at(s, self.template(key, lambda x, c, y: fn(x)))
        return on

    def _next(self, s: Frame, slot: Slot, i: int) -> z3.ArithRef:
        if isinstance(slot, int):
            return z3.BitVecVal(slot, SLOT_BITS)
        items = slot.table
        expr: z3.ArithRef = z3.BitVecVal(items[-1][1], SLOT_BITS)
        for k, v in reversed(items[:-1]):
            expr = z3.If(s[slot.src] == k, z3.BitVecVal(v, SLOT_BITS), expr)
        return expr

    def post(self, s: Frame, cmd: Command) -> list[z3.ArithRef]:
        """The next state's slots under ``cmd``, as terms over ``s``."""
        nxt = list(s)
        for i, slot in cmd.out:
            nxt[i] = self._next(s, slot, i)
        return nxt

    def step(self, s: Frame, cmd: Command, s2: Frame) -> z3.BoolRef:
        """``cmd`` is enabled in ``s`` and leads to ``s2``."""
        return z3.And(self.cube(s, cmd.cube),
                      *[a == b for a, b in zip(s2, self.post(s, cmd), strict=True)])

    def transition(self, s: Frame, c: z3.ArithRef, s2: Frame) -> z3.BoolRef:
        """Some command, whose event is ``c``, leads from ``s`` to ``s2``."""
        t = self.template("transition", lambda x, c_, y: z3.Or(*[
            z3.And(c_ == cmd.alt, self.step(x, cmd, y)) for cmd in self.commands]))
        return self.at(s, t, c, s2)

    def guard(self, s: Frame, alt: int) -> z3.BoolRef:
        """Event ``alt`` is enabled in ``s``."""
        t = self.template(("guard", alt), lambda x, c_, y: z3.Or(False, *[
            self.cube(x, cmd.cube) for cmd in self.commands if cmd.alt == alt]))
        return self.at(s, t)

    def enabled_any(self, s: Frame) -> z3.BoolRef:
        """Some event is enabled in ``s``."""
        t = self.template("enabled", lambda x, c_, y: z3.Or(False, *[
            self.cube(x, cmd.cube) for cmd in self.commands]))
        return self.at(s, t)

    def terminal(self, s: Frame) -> z3.BoolRef:
        """``s`` has ended (``graph_semantics.is_terminal``)."""
        t = self.template("terminal", lambda x, c_, y: z3.Or(False, *[
            self.cube(x, c.cube) for c in self.terminal_cases if c.result]))
        return self.at(s, t)

    def equal(self, a: Frame, b: Frame) -> z3.BoolRef:
        """The two frames hold the same state."""
        return z3.And(*[x == y for x, y in zip(a, b, strict=True)])

    def initial(self, s: Frame) -> z3.BoolRef:
        """``s`` is the initial state."""
        init = gs.initial_state(self.t)
        return z3.And(*[x == v for x, v in zip(s, init, strict=True)])

    def bad_terminal(self, check: Callable[[tuple[int, ...]], str | None]
                     ) -> Callable[[Frame], z3.BoolRef]:
        """The terminal states where ``check`` reports a violation, as a
        predicate over a frame (the check itself, tabulated)."""
        cubes: list[Cube] = []
        try:
            for term in self.terminal_cases:
                if not term.result:
                    continue
                cubes.extend(c.cube for c in cases(check, term.cube)
                             if c.result is not None)
        except TooManyCases as exc:
            raise Unsupported(f"a property check splits into {exc}") from exc

        return self.lift(("terminal check", id(check)), lambda s: z3.Or(
            False, *[self.cube(s, c) for c in cubes]))

    def stutter(self, s: Frame, cmd: Command) -> z3.BoolRef:
        """``cmd`` is enabled in ``s`` and leaves it unchanged."""
        post = self.post(s, cmd)
        return z3.And(self.cube(s, cmd.cube),
                      *[a == b for a, b in zip(s, post, strict=True)
                        if a is not b])

    def moves(self, s: Frame, c: z3.ArithRef, s2: Frame) -> z3.BoolRef:
        """A transition that changes the state."""
        return z3.And(self.transition(s, c, s2), z3.Not(self.equal(s, s2)))

    # --- decoding -----------------------------------------------------------------
    def values(self, m: z3.ModelRef, s: Frame) -> tuple[int, ...]:
        """The state a model gives a frame."""
        return tuple(m.eval(x, model_completion=True).as_long() for x in s)

    def event(self, m: z3.ModelRef, c: z3.ArithRef) -> Event:
        """The event a model gives a choice variable."""
        k: int = m.eval(c, model_completion=True).as_long()
        return self.alternatives[k]

    def replay(self, states: Sequence[tuple[int, ...]],
               events: Sequence[Event]) -> None:
        """Check a decoded path against the graph semantics itself.

        Raises:
            EncodingError: a step the semantics does not take.
        """
        t = self.t
        if tuple(states[0]) != gs.initial_state(t):
            raise EncodingError("the decoded path does not start initially")
        for k, e in enumerate(events):
            if e not in gs.enabled(t, states[k]) or \
                    gs.apply(t, states[k], e) != tuple(states[k + 1]):
                raise EncodingError(
                    f"the z3 encoding and the graph semantics disagree at step "
                    f"{k + 1} ({gs.describe(t, e)})")

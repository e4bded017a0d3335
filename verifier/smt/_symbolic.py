"""Run a pure function of a small-int state on every state at once.

The z3 backend for imported graphs must not carry a second, hand-written copy
of :mod:`saga_models.importers.graph_semantics`. Instead, the semantics' own
functions (``region_events``, ``apply``, the properties' checks) are run on a
*symbolic* state: each slot is a :class:`Sym` that stands for every value the
slot may hold. A branch on a slot (``if pc == RAISED``), a use as an index
(``t.errors[e]``) or a truth test splits the set of values the slot may hold,
and the run is repeated for each part (depth first, by re-running with a
recorded prefix of decisions). Each finished run is one *case*: a cube (per
slot, the set of values it may hold) and the function's result, in which any
slot still symbolic is a function of one slot's value.

The cases partition the cube the run started from, and within a case the
function computes exactly its result for every state in the cube, because
every read of the state went through a :class:`Sym` and every decision split
the cube. So the cases are the function, tabulated by guard.

Values are one slot's value mapped through a Python function; an operation on
two slots' values concretises the second (a decision), so every result stays
a function of one slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Cube = tuple[frozenset[int], ...]
"""Per slot, the values it may hold."""

MAX_CASES = 200_000
"""Cases per tabulated function: past it the encoding is refused (unknown)."""


class TooManyCases(Exception):
    """The function splits into more than :data:`MAX_CASES` cases."""


class NotSymbolic(TypeError):
    """The function used a symbolic slot in a way this module cannot split on."""


def _ident(v: int) -> int:
    return v


@dataclass(slots=True)
class _Run:
    """One run: the decisions taken so far and the cube they narrowed."""

    prefix: list[int]
    cube: list[frozenset[int]]
    taken: list[int]
    widths: list[int]

    def choose(self, n: int) -> int:
        k = len(self.taken)
        c = self.prefix[k] if k < len(self.prefix) else 0
        self.taken.append(c)
        self.widths.append(n)
        return c

    def split(self, slot: int, key: Callable[[int], object]) -> object:
        """Narrow ``slot`` to one class of ``key`` (a decision if several)."""
        groups: dict[object, set[int]] = {}
        for v in sorted(self.cube[slot]):
            groups.setdefault(key(v), set()).add(v)
        if not groups:
            raise NotSymbolic(f"slot {slot} has no possible value")
        keys = list(groups)
        pick = keys[self.choose(len(keys))] if len(keys) > 1 else keys[0]
        self.cube[slot] = frozenset(groups[pick])
        return pick


class SymBool:
    """A condition on one slot; only its truth value may be asked for."""

    __slots__ = ("_fn", "_run", "_slot")

    def __init__(self, run: _Run, slot: int, fn: Callable[[int], bool]) -> None:
        self._run, self._slot, self._fn = run, slot, fn

    def __bool__(self) -> bool:
        fn = self._fn
        return bool(self._run.split(self._slot, lambda v: bool(fn(v))))


class Sym:
    """A slot's value mapped through ``fn``: what the state holds there."""

    __slots__ = ("fn", "run", "slot")

    def __init__(self, run: _Run, slot: int, fn: Callable[[int], int] = _ident
                 ) -> None:
        self.run, self.slot, self.fn = run, slot, fn

    @property
    def is_slot(self) -> bool:
        """Whether this is the slot's own value, unchanged."""
        return self.fn is _ident

    # --- concretising -----------------------------------------------------------
    def _value(self) -> int:
        v = self.run.split(self.slot, self.fn)
        assert isinstance(v, int)
        return v

    def __index__(self) -> int:
        return self._value()

    def __int__(self) -> int:
        return self._value()

    def __hash__(self) -> int:
        return hash(self._value())

    def __bool__(self) -> bool:
        fn = self.fn
        return bool(self.run.split(self.slot, lambda v: fn(v) != 0))

    def __repr__(self) -> str:
        return f"Sym(slot={self.slot})"

    # --- arithmetic -------------------------------------------------------------
    def _other(self, other: object) -> Callable[[int], int] | None:
        """``other`` as a function of this slot's value, or None."""
        if isinstance(other, Sym):
            if other.run is not self.run:
                raise NotSymbolic("values of two runs mixed")
            if other.slot == self.slot:
                return other.fn
            c = other._value()  # a second slot: decide its value
            return lambda v: c
        if isinstance(other, bool) or not isinstance(other, int):
            return None
        c = other
        return lambda v: c

    def _map(self, other: object, op: Callable[[int, int], int]) -> Any:
        g = self._other(other)
        if g is None:
            return NotImplemented
        f = self.fn
        return Sym(self.run, self.slot, lambda v: op(f(v), g(v)))

    def _rmap(self, other: object, op: Callable[[int, int], int]) -> Any:
        g = self._other(other)
        if g is None:
            return NotImplemented
        f = self.fn
        return Sym(self.run, self.slot, lambda v: op(g(v), f(v)))

    def __add__(self, o: object) -> Any:
        return self._map(o, lambda a, b: a + b)

    def __radd__(self, o: object) -> Any:
        return self._rmap(o, lambda a, b: a + b)

    def __sub__(self, o: object) -> Any:
        return self._map(o, lambda a, b: a - b)

    def __rsub__(self, o: object) -> Any:
        return self._rmap(o, lambda a, b: a - b)

    def __mul__(self, o: object) -> Any:
        return self._map(o, lambda a, b: a * b)

    def __rmul__(self, o: object) -> Any:
        return self._rmap(o, lambda a, b: a * b)

    def __floordiv__(self, o: object) -> Any:
        return self._map(o, lambda a, b: a // b)

    def __mod__(self, o: object) -> Any:
        return self._map(o, lambda a, b: a % b)

    # --- comparisons ------------------------------------------------------------
    def _cmp(self, other: object, op: Callable[[int, int], bool]) -> Any:
        g = self._other(other)
        if g is None:
            return NotImplemented
        f = self.fn
        return SymBool(self.run, self.slot, lambda v: op(f(v), g(v)))

    def __eq__(self, o: object) -> Any:
        return self._cmp(o, lambda a, b: a == b)

    def __ne__(self, o: object) -> Any:
        return self._cmp(o, lambda a, b: a != b)

    def __lt__(self, o: object) -> Any:
        return self._cmp(o, lambda a, b: a < b)

    def __le__(self, o: object) -> Any:
        return self._cmp(o, lambda a, b: a <= b)

    def __gt__(self, o: object) -> Any:
        return self._cmp(o, lambda a, b: a > b)

    def __ge__(self, o: object) -> Any:
        return self._cmp(o, lambda a, b: a >= b)


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One way a function runs: for the states in ``cube``, it returns
    ``result`` (in which a :class:`Sym` is a function of one slot)."""

    cube: Cube
    result: Any


def cases(fn: Callable[[tuple[Any, ...]], Any], cube: Sequence[frozenset[int]],
          *, finish: Callable[[Any], Any] = lambda x: x,
          limit: int = MAX_CASES) -> list[Case]:
    """Every case of ``fn`` over the states in ``cube``.

    ``finish`` runs on the result inside the same run (it may still decide, e.g.
    concretise a symbolic field of an event).

    Raises:
        TooManyCases: more than ``limit`` cases.
        NotSymbolic: ``fn`` used a slot in a way that cannot be split on.
    """
    out: list[Case] = []
    todo: list[list[int]] = [[]]
    while todo:
        prefix = todo.pop()
        run = _Run(prefix=prefix, cube=list(cube), taken=[], widths=[])
        state = tuple(Sym(run, i) for i in range(len(cube)))
        result = finish(fn(state))
        out.append(Case(cube=tuple(run.cube), result=result))
        if len(out) > limit:
            raise TooManyCases(f"more than {limit:,} cases")
        # Siblings of every decision taken past the replayed prefix.
        for k in range(len(prefix), len(run.taken)):
            for alt in range(1, run.widths[k]):
                todo.append([*run.taken[:k], alt])
    return out


def values(x: object, cube: Cube) -> dict[int, int] | int:
    """A result slot over ``cube``: a constant, or {slot value: result}."""
    if isinstance(x, Sym):
        table = {v: x.fn(v) for v in sorted(cube[x.slot])}
        if len(set(table.values())) == 1:
            return next(iter(table.values()))
        return table
    if isinstance(x, bool) or not isinstance(x, int):
        raise NotSymbolic(f"a state slot holds {x!r}, not an int")
    return x

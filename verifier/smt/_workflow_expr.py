"""Guards and invariants of event workflows compiled to z3 terms (never ``eval``).

The expression language of :mod:`saga_models.workflow._expr` is Python's syntax
evaluated by a small tree walker with Python's operators, so the compiler keeps
the walker's value types: an integer, a Boolean (which Python also treats as
the integer 0 or 1), or a string (a literal, or a service's state, which is an
index into that service's state names). ``and``/``or`` give a Boolean, as the
walker's ``all``/``any`` do. Whatever cannot be mirrored exactly (ordering
comparisons on strings, arithmetic on strings) raises
:class:`~verifier.smt._encode.Unsupported`, so the backend answers ``unknown``
instead of risking a wrong verdict; the typed check of the loader refuses all
of these (WF120), so for a loaded definition those paths are a guard only
(``tests/fuzz`` checks on generated expressions that both walkers agree)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import z3

from saga_models.workflow._expr import Expr

from ._encode import Unsupported


@dataclass(frozen=True, slots=True)
class StrVal:
    """A string value: ``names[index]``; a literal has one name and index 0."""

    index: z3.ArithRef
    names: tuple[str, ...]


Value: TypeAlias = Any
"""A compiled sub-expression: a z3 ``ArithRef``, a z3 ``BoolRef`` or a
:class:`StrVal` (z3's Python API is untyped, so this is ``Any`` to mypy)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Where names in an expression live in one frame of the encoding."""

    counters: Mapping[str, z3.ArithRef]
    states: Mapping[str, StrVal]


def truth(v: Value) -> z3.BoolRef:
    """Python's truthiness of ``v`` (``if v:``)."""
    if isinstance(v, StrVal):
        # Only the empty string is falsy; a state name is never empty.
        return _str_in(v, lambda name: name != "")
    if z3.is_bool(v):
        return v
    return v != 0


def compile_expr(expr: Expr, scope: Scope) -> Value:
    """``expr`` as a z3 term over ``scope``."""
    return _compile(expr.tree, scope, expr.text)


def compile_truth(expr: Expr, scope: Scope) -> z3.BoolRef:
    """``bool(expr)`` as a z3 formula over ``scope``."""
    return truth(compile_expr(expr, scope))


def _str_in(v: StrVal, pred: Callable[[str], bool]) -> z3.BoolRef:
    hits = [v.index == i for i, name in enumerate(v.names) if pred(name)]
    return z3.Or(*hits) if hits else z3.BoolVal(False)


def _as_int(v: Value, text: str) -> z3.ArithRef:
    if isinstance(v, StrVal):
        raise Unsupported(f"expression {text!r} does arithmetic on a string; the "
                          "z3 backend mirrors only integer arithmetic")
    if z3.is_bool(v):
        return z3.If(v, z3.IntVal(1), z3.IntVal(0))
    return v


def _equal(a: Value, b: Value) -> z3.BoolRef:
    if isinstance(a, StrVal) or isinstance(b, StrVal):
        if not (isinstance(a, StrVal) and isinstance(b, StrVal)):
            return z3.BoolVal(False)  # Python: 'x' == 1 is False
        pairs = [
            z3.And(a.index == i, b.index == j)
            for i, x in enumerate(a.names)
            for j, y in enumerate(b.names)
            if x == y
        ]
        return z3.Or(*pairs) if pairs else z3.BoolVal(False)
    if z3.is_bool(a) and z3.is_bool(b):
        return a == b
    return _as_int(a, "") == _as_int(b, "")


def _compare(op: ast.cmpop, a: Value, b: Value | Sequence[Value],
             text: str) -> z3.BoolRef:
    if isinstance(op, (ast.In, ast.NotIn)):
        if not isinstance(b, tuple):
            raise Unsupported(f"expression {text!r}: 'in' needs a literal tuple or "
                              "list on its right")
        hit = z3.Or(*[_equal(a, x) for x in b]) if b else z3.BoolVal(False)
        return hit if isinstance(op, ast.In) else z3.Not(hit)
    if isinstance(b, tuple):
        raise Unsupported(f"expression {text!r} compares with a tuple")
    if isinstance(op, ast.Eq):
        return _equal(a, b)
    if isinstance(op, ast.NotEq):
        return z3.Not(_equal(a, b))
    if isinstance(a, StrVal) or isinstance(b, StrVal):
        raise Unsupported(f"expression {text!r} orders strings; the z3 backend "
                          "compares states only with == and !=")
    x, y = _as_int(a, text), _as_int(b, text)
    if isinstance(op, ast.Lt):
        return x < y
    if isinstance(op, ast.LtE):
        return x <= y
    if isinstance(op, ast.Gt):
        return x > y
    if isinstance(op, ast.GtE):
        return x >= y
    raise Unsupported(f"expression {text!r}: comparison "
                      f"{type(op).__name__} is not encoded")


def _compile(node: ast.expr, scope: Scope, text: str) -> Value:
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            return z3.BoolVal(v)
        if isinstance(v, int):
            return z3.IntVal(v)
        if isinstance(v, str):
            return StrVal(z3.IntVal(0), (v,))
        raise Unsupported(f"expression {text!r}: literal {v!r} is not encoded")
    if isinstance(node, ast.Name):
        if node.id in ("true", "True"):
            return z3.BoolVal(True)
        if node.id in ("false", "False"):
            return z3.BoolVal(False)
        if node.id not in scope.counters:
            raise Unsupported(f"expression {text!r} reads unknown counter "
                              f"{node.id!r}")
        return scope.counters[node.id]
    if isinstance(node, ast.Attribute):
        assert isinstance(node.value, ast.Name)
        if node.value.id not in scope.states:
            raise Unsupported(f"expression {text!r} reads unknown service "
                              f"{node.value.id!r}")
        return scope.states[node.value.id]
    if isinstance(node, ast.BoolOp):
        # The reference evaluator takes all()/any() of the operands, so the
        # value is a Boolean (not Python's "returns an operand").
        vals = [truth(_compile(v, scope, text)) for v in node.values]
        return z3.And(*vals) if isinstance(node.op, ast.And) else z3.Or(*vals)
    if isinstance(node, ast.UnaryOp):
        v = _compile(node.operand, scope, text)
        if isinstance(node.op, ast.Not):
            return z3.Not(truth(v))
        if isinstance(node.op, ast.USub):
            return -_as_int(v, text)
        raise Unsupported(f"expression {text!r}: unary "
                          f"{type(node.op).__name__} is not encoded")
    if isinstance(node, ast.BinOp):
        a = _as_int(_compile(node.left, scope, text), text)
        b = _as_int(_compile(node.right, scope, text), text)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        raise Unsupported(f"expression {text!r}: operator "
                          f"{type(node.op).__name__} is not encoded")
    if isinstance(node, ast.Compare):
        left: Value = _compile(node.left, scope, text)
        parts: list[z3.BoolRef] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _operand(right_node, scope, text)
            parts.append(_compare(op, left, right, text))
            if isinstance(right, tuple):
                break  # Python would go on comparing with a tuple; refused above
            left = right
        return z3.And(*parts)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args: list[Value] = []
        for a in node.args:
            arg = _operand(a, scope, text)
            args.extend(arg if isinstance(arg, tuple) else [arg])
        ints = [_as_int(x, text) for x in args]
        fn = node.func.id
        if fn == "abs" and len(ints) == 1:
            return z3.If(ints[0] < 0, -ints[0], ints[0])
        if fn in ("min", "max") and ints:
            acc = ints[0]
            for v in ints[1:]:
                # Python's min/max keep the first of equal values; for ints the
                # value is the same either way.
                acc = z3.If(v < acc, v, acc) if fn == "min" else z3.If(v > acc, v, acc)
            return acc
        raise Unsupported(f"expression {text!r}: call {fn}() with these arguments "
                          "is not encoded")
    if isinstance(node, (ast.Tuple, ast.List)):
        raise Unsupported(f"expression {text!r}: a tuple is only encoded on the "
                          "right of 'in' or as min/max arguments")
    raise Unsupported(f"expression {text!r}: {type(node).__name__} is not encoded")


def _operand(node: ast.expr, scope: Scope, text: str) -> Value | tuple[Value, ...]:
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_compile(e, scope, text) for e in node.elts)
    return _compile(node, scope, text)

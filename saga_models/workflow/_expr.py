"""A small, side-effect-free expression language for guards and invariants.

Text is parsed with :func:`ast.parse` (the standard library's parser, so the
grammar is Python's and needs no hand-written lexer) and then checked against a
whitelist of node kinds; nothing is ever passed to ``eval``. What is allowed:
integer, boolean and string literals; counter names; ``service.state``;
``+ - *``; comparisons (chains too, and ``in`` / ``not in`` a literal tuple);
``and``, ``or``, ``not``; and ``min``/``max``/``abs`` calls.

>>> e = parse_expr("charges <= 1 and orders.state != 'REJECTED'")
>>> e.evaluate({"charges": 1}, {"orders": "APPROVED"})
True
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import SagaError

_MAX_LEN = 500
"""Guards are one-liners; a longer text is refused before it is parsed."""
_MAX_NODES = 200

_CMP: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_BIN: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}
_CALLS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs}


class ExprError(SagaError, ValueError):
    """An expression that is not in the language (or names something unknown)."""


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed, checked expression; compare and hash by its text."""

    text: str
    tree: ast.expr = field(compare=False, hash=False, repr=False)
    counters: frozenset[str] = field(default=frozenset(), compare=False)
    """Counter names it reads."""
    services: frozenset[str] = field(default=frozenset(), compare=False)
    """Services whose state it reads."""

    def evaluate(self, counters: Mapping[str, int], states: Mapping[str, str]) -> Any:
        """The value under ``counters`` and service ``states`` (names to names)."""
        return _eval(self.tree, counters, states)

    def __str__(self) -> str:
        return self.text


def parse_expr(text: str) -> Expr:
    """Parse and whitelist-check ``text``; raise :class:`ExprError` if it is not
    in the language.

    >>> parse_expr("__import__('os')")
    Traceback (most recent call last):
    ...
    saga_models.workflow._expr.ExprError: call of '__import__' is not allowed; \
use min, max or abs
    """
    if not isinstance(text, str) or not text.strip():
        raise ExprError(f"expression={text!r} must be a non-empty string")
    if len(text) > _MAX_LEN:
        raise ExprError(f"expression is {len(text)} characters, over {_MAX_LEN}")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExprError(f"expression={text!r} is not valid: {exc.msg}") from None
    counters: set[str] = set()
    services: set[str] = set()
    for count, node in enumerate(ast.walk(tree), 1):
        if count > _MAX_NODES:
            raise ExprError(f"expression={text!r} is too large")
        _check_node(node, counters, services)
    return Expr(text=text.strip(), tree=tree, counters=frozenset(counters),
                services=frozenset(services))


_ALLOWED = (
    ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.BinOp,
    ast.Compare, ast.Name, ast.Load, ast.Attribute, ast.Constant, ast.Tuple,
    ast.List, ast.Call, ast.Store, *_CMP, *_BIN,
)


def _check_node(node: ast.AST, counters: set[str], services: set[str]) -> None:
    if not isinstance(node, _ALLOWED):
        raise ExprError(f"{type(node).__name__} is not allowed in an expression; "
                        "use counters, service.state, literals, + - *, "
                        "comparisons, and/or/not")
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, str)):
        raise ExprError(f"literal {node.value!r} is not allowed; use an integer, "
                        "true/false or a quoted state name")
    if isinstance(node, ast.Attribute):
        if node.attr != "state" or not isinstance(node.value, ast.Name):
            raise ExprError(f"attribute .{node.attr} is not allowed; write "
                            "'service.state'")
        services.add(node.value.id)
        # Mark the inner name as consumed so it is not also read as a counter.
        node.value.ctx = ast.Store()
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        if node.id in ("true", "false", "True", "False"):
            return
        if node.id not in _CALLS:
            counters.add(node.id)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _CALLS:
            name = getattr(node.func, "id", type(node.func).__name__)
            raise ExprError(f"call of {name!r} is not allowed; use min, max or abs")
        if node.keywords:
            raise ExprError("keyword arguments are not allowed in an expression")
        counters.discard(node.func.id)


def _eval(node: ast.expr, counters: Mapping[str, int],
          states: Mapping[str, str]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("true", "True"):
            return True
        if node.id in ("false", "False"):
            return False
        return counters[node.id]
    if isinstance(node, ast.Attribute):
        assert isinstance(node.value, ast.Name)
        return states[node.value.id]
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, counters, states) for v in node.values)
        return any(_eval(v, counters, states) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, counters, states)
        return (not v) if isinstance(node.op, ast.Not) else -v
    if isinstance(node, ast.BinOp):
        return _BIN[type(node.op)](_eval(node.left, counters, states),
                                   _eval(node.right, counters, states))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, counters, states)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, counters, states)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(e, counters, states) for e in node.elts)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _CALLS[node.func.id](*(_eval(a, counters, states) for a in node.args))
    raise ExprError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover

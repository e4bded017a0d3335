"""A small, side-effect-free expression language for guards and invariants.

Text is parsed with :func:`ast.parse` (the standard library's parser, so the
grammar is Python's and needs no hand-written lexer) and then checked against a
whitelist of node kinds; nothing is ever passed to ``eval``. What is allowed:
integer, boolean and string literals; counter names; ``service.state``;
``+ - *``; comparisons (chains too, and ``in`` / ``not in`` a literal tuple);
``and``, ``or``, ``not``; and ``min``/``max``/``abs`` calls.

Then the tree is type-checked (:func:`_type`): numbers (counters, integers,
booleans) take ``+ - *``, orderings and ``min``/``max``/``abs``; a string is a
state name and only meets ``service.state`` in ``==``, ``!=`` or ``in`` a
literal list; the whole expression is a condition. Every literal and every
intermediate value is bounded (:data:`MAX_INT`, with counters at most
:data:`COUNTER_MAX`; strings at most :data:`MAX_STR` characters), so no
operation can allocate without bound. Both evaluators, :meth:`Expr.evaluate`
here and the z3 encoding (``verifier.smt._workflow_expr``), walk this one
checked tree, so neither meets an ill-typed node at run time.

>>> e = parse_expr("charges <= 1 and orders.state != 'REJECTED'")
>>> e.evaluate({"charges": 1}, {"orders": "APPROVED"})
True
"""

from __future__ import annotations

import ast
import enum
import itertools
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
    """An expression that is not in the language (or names something unknown).

    ``code`` is the diagnostic code the loader reports it with: ``WF110`` for
    syntax outside the language, ``WF120`` for a type error, ``WF121`` for a
    value over the size bounds.
    """

    def __init__(self, message: str, *, code: str = "WF110") -> None:
        super().__init__(message)
        self.code = code


class _Ty(enum.Enum):
    """The types of the language (Python's ``bool`` is a number, as in the
    evaluator and the z3 encoding)."""

    NUM = "a number"
    STR = "a string"
    SEQ = "a literal list"


MAX_INT = 2**31 - 1
"""Bound on every literal and every intermediate value an expression can take
(counters are 0..255): no evaluation allocates more than a machine word, and the
z3 encoding stays in the range the explicit evaluator computes."""
MAX_STR = 64
"""A string literal is a state name; no state name is longer in practice."""
COUNTER_MAX = 255
"""The largest value a counter holds (its cap is at most 255)."""


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


def parse_expr(text: str, *, records: frozenset[str] = frozenset()) -> Expr:
    """Parse and whitelist-check ``text``; raise :class:`ExprError` if it is not
    in the language.

    ``record.field`` for a name in ``records`` (a keyed record of the shared
    resources) is a number: the counter named ``"record.field"``, not a
    service's state.

    >>> sorted(parse_expr("order.total - 1 >= 0", records=frozenset({"order"}))
    ...        .counters)
    ['order.total']

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
    except (ValueError, MemoryError, RecursionError):
        # NUL bytes (ValueError before 3.12) or nesting beyond the parser's
        # stack: both are malformed input, not a crash.
        raise ExprError(f"expression={text!r} is not valid: it nests too deeply "
                        "or holds a NUL byte") from None
    if records:
        tree = _RecordFields(records).visit(tree)
    counters: set[str] = set()
    services: set[str] = set()
    for count, node in enumerate(ast.walk(tree), 1):
        if count > _MAX_NODES:
            raise ExprError(f"expression={text!r} is too large")
        _check_node(node, counters, services)
    ty, _ = _type(tree, text)
    if ty is not _Ty.NUM:
        raise ExprError(f"expression={text!r} is {ty.value}, not a condition; "
                        "compare it, e.g. orders.state == 'PAID'", code="WF120")
    return Expr(text=text.strip(), tree=tree, counters=frozenset(counters),
                services=frozenset(services))


_Range = tuple[int, int]


class _RecordFields(ast.NodeTransformer):
    """``record.field`` becomes the counter ``Name("record.field")``: one
    name per field, so both evaluators read it like any counter."""

    def __init__(self, records: frozenset[str]) -> None:
        self.records = records

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if isinstance(node.value, ast.Name) and node.value.id in self.records:
            return ast.copy_location(
                ast.Name(id=f"{node.value.id}.{node.attr}", ctx=ast.Load()), node)
        return node


def _bounded(lo: int, hi: int, text: str) -> _Range:
    if lo < -MAX_INT or hi > MAX_INT:
        raise ExprError(f"expression={text!r} can reach {hi if hi > MAX_INT else lo}"
                        f", beyond the bound +-{MAX_INT}; use smaller numbers",
                        code="WF121")
    return lo, hi


def _type(node: ast.expr, text: str) -> tuple[_Ty, _Range]:
    """The type of ``node`` and the range of its value (numbers only).

    Raises :class:`ExprError` (``WF120``) for an ill-typed node, and
    (``WF121``) for a literal or intermediate value beyond :data:`MAX_INT` or
    a string longer than :data:`MAX_STR`: the language has no operation whose
    result can outgrow these, so evaluation cannot allocate without bound.
    """
    def num(sub: ast.expr, what: str) -> _Range:
        ty, rng = _type(sub, text)
        if ty is not _Ty.NUM:
            raise ExprError(f"expression={text!r}: {what} needs a number, got "
                            f"{ty.value} ({ast.unparse(sub)})", code="WF120")
        return rng

    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, str):
            if len(v) > MAX_STR:
                raise ExprError(f"expression={text!r}: a string of {len(v)} "
                                f"characters, over {MAX_STR}", code="WF121")
            return _Ty.STR, (0, 0)
        assert isinstance(v, int)  # the whitelist admits int and str only
        return _Ty.NUM, _bounded(int(v), int(v), text)
    if isinstance(node, ast.Name):
        if node.id in ("true", "false", "True", "False"):
            return _Ty.NUM, (0, 1)
        if node.id in _CALLS:  # a function is not a value: min < 1
            raise ExprError(f"expression={text!r}: {node.id} is a function; "
                            f"call it, e.g. {node.id}(a, b)", code="WF120")
        return _Ty.NUM, (0, COUNTER_MAX)
    if isinstance(node, ast.Attribute):
        return _Ty.STR, (0, 0)
    if isinstance(node, (ast.Tuple, ast.List)):
        return _Ty.SEQ, (0, 0)
    if isinstance(node, ast.BoolOp):
        for operand in node.values:
            num(operand, type(node.op).__name__.lower())
        return _Ty.NUM, (0, 1)
    if isinstance(node, ast.UnaryOp):
        lo, hi = num(node.operand, "not" if isinstance(node.op, ast.Not)
                     else "unary -")
        return (_Ty.NUM, (0, 1)) if isinstance(node.op, ast.Not) else (
            _Ty.NUM, (-hi, -lo))
    if isinstance(node, ast.BinOp):
        sym = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}[type(node.op)]
        (a, b), (c, d) = num(node.left, sym), num(node.right, sym)
        if isinstance(node.op, ast.Add):
            return _Ty.NUM, _bounded(a + c, b + d, text)
        if isinstance(node.op, ast.Sub):
            return _Ty.NUM, _bounded(a - d, b - c, text)
        corners = (a * c, a * d, b * c, b * d)
        return _Ty.NUM, _bounded(min(corners), max(corners), text)
    if isinstance(node, ast.Compare):
        _compare_types(node, text)
        return _Ty.NUM, (0, 1)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        fn = node.func.id
        args = list(node.args)
        one_list = len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List))
        if one_list:
            args = list(args[0].elts)  # type: ignore[attr-defined]
        if fn == "abs" and (one_list or len(args) != 1):
            raise ExprError(f"expression={text!r}: abs() takes exactly one "
                            "number", code="WF120")
        if fn != "abs" and len(args) < (1 if one_list else 2):
            raise ExprError(f"expression={text!r}: {fn}() takes two or more "
                            f"numbers (or one non-empty list), got "
                            f"{ast.unparse(node)}", code="WF120")
        rngs = [num(x, f"{fn}()") for x in args]
        if fn == "abs":
            ((lo, hi),) = rngs
            low = 0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
            return _Ty.NUM, (low, max(abs(lo), abs(hi)))
        pick = min if fn == "min" else max
        return _Ty.NUM, (pick(r[0] for r in rngs), pick(r[1] for r in rngs))
    raise ExprError(f"{type(node).__name__} is not allowed in an "  # pragma: no cover
                    "expression")


def _compare_types(node: ast.Compare, text: str) -> None:
    """Orderings compare numbers; ``==``/``!=`` compare two numbers or a
    service's state with a state name; ``in`` tests membership in a literal
    list of the left side's type."""
    left = node.left
    for op, right in zip(node.ops, node.comparators, strict=True):
        lt, _ = _type(left, text)
        rt, _ = _type(right, text)
        shown = f"{ast.unparse(left)} {_OP_TEXT[type(op)]} {ast.unparse(right)}"
        if isinstance(op, (ast.In, ast.NotIn)):
            if rt is not _Ty.SEQ or lt is _Ty.SEQ:
                raise ExprError(f"expression={text!r}: in {shown!r}, 'in' needs a "
                                "value on its left and a literal list on its "
                                "right, e.g. orders.state in ('PAID', 'SHIPPED')",
                                code="WF120")
            assert isinstance(right, (ast.Tuple, ast.List))
            for e in right.elts:
                et, _ = _type(e, text)
                if et is not lt:
                    raise ExprError(f"expression={text!r}: in {shown!r}, "
                                    f"{ast.unparse(e)} is {et.value}, the left "
                                    f"side {lt.value}", code="WF120")
                if lt is _Ty.STR and not _is_state(left):
                    raise ExprError(f"expression={text!r}: in {shown!r}, strings "
                                    "are only compared with a service's state",
                                    code="WF120")
        elif lt is _Ty.SEQ or rt is _Ty.SEQ:
            raise ExprError(f"expression={text!r}: in {shown!r}, a list is only "
                            "allowed after 'in'", code="WF120")
        elif isinstance(op, (ast.Eq, ast.NotEq)):
            if lt is not rt:
                raise ExprError(f"expression={text!r}: {shown!r} compares "
                                f"{lt.value} with {rt.value}, which is never "
                                "equal", code="WF120")
            if lt is _Ty.STR and not (_is_state(left) or _is_state(right)):
                raise ExprError(f"expression={text!r}: {shown!r} compares two "
                                "literals; strings are only compared with a "
                                "service's state", code="WF120")
        elif lt is not _Ty.NUM or rt is not _Ty.NUM:
            raise ExprError(f"expression={text!r}: {shown!r} orders "
                            f"{lt.value} and {rt.value}; only numbers are "
                            "ordered (states compare with == and !=)",
                            code="WF120")
        left = right


def _is_state(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute)


def state_literals(expr: Expr) -> tuple[tuple[str, str], ...]:
    """Every ``(service, literal)`` pair where a string literal is compared
    with ``service.state`` (a literal that is not one of the service's states
    is a typo the validator reports)."""
    out: list[tuple[str, str]] = []
    for node in ast.walk(expr.tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for a, b in itertools.pairwise(operands):
            for x, y in ((a, b), (b, a)):
                if isinstance(x, ast.Attribute) and isinstance(x.value, ast.Name):
                    lits = (y.elts if isinstance(y, (ast.Tuple, ast.List))
                            else [y])
                    out.extend((x.value.id, e.value) for e in lits
                               if isinstance(e, ast.Constant)
                               and isinstance(e.value, str))
    return tuple(out)


_OP_TEXT: dict[type[ast.cmpop], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
    ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in",
}


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

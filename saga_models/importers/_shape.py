"""Input types of imported documents, checked at the parse boundary.

The ASL and Seata importers index their documents (``raw["Type"]``,
``c.get("ErrorEquals")``, ``float(r["IntervalSeconds"])``). Before they run,
:func:`shape_diagnostics` walks the document against a small declarative
grammar of the keys they read and reports every value of the wrong type as a
located diagnostic (``ASL230``-``ASL232``, ``SEATA330``-``SEATA332``), so the
importers only ever see the types they expect, and a wrongly typed sub-node is
exit code 2 with a fix, never a traceback. Keys the grammar does not name are
left to the importers (they read them defensively or not at all).

>>> from saga_models._source import Document
>>> doc = Document(data={"StartAt": "a", "States": {"a": {"Type": ["Task"]}}},
...                file="m.json", fmt="json")
>>> [d.code for d in shape_diagnostics(doc, ASL, "")]
['ASL230']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import Diagnostic
from .._source import Document
from ._lower import escape

MAX_NUMBER = 1e12
"""Numbers (seconds, rates, attempts) beyond this are not meant; they would
overflow a float conversion or the model's counters."""


@dataclass(frozen=True, slots=True)
class Shape:
    """The type a value must have.

    ``kind`` is one of ``str``, ``name`` (a string or a whole number, as YAML
    reads state names), ``num`` (a finite number), ``int`` (a whole number),
    ``num|str`` and ``int|str`` (a number, or a placeholder string), ``list``
    (of ``item``), ``map`` (any keys, values of ``item``), ``obj`` (``fields``
    typed, other keys free) and ``ref`` (the grammar entry ``ref``).
    """

    kind: str
    item: Shape | None = None
    fields: tuple[tuple[str, Shape], ...] = ()
    ref: str = ""


@dataclass(frozen=True, slots=True)
class Grammar:
    """The shapes of one format, its codes and whether keys match in any case
    (seata-go's YAML wrote ``serviceName``)."""

    entries: Mapping[str, Shape]
    root: str
    type_code: str
    """Wrong type (a list where a name belongs)."""
    number_code: str
    """A number that is not finite or out of range."""
    any_case: bool = False


def _obj(**fields: Shape) -> Shape:
    return Shape("obj", fields=tuple(fields.items()))


def _list(item: Shape) -> Shape:
    return Shape("list", item=item)


_S, _N, _NAME = Shape("str"), Shape("num"), Shape("name")
_INT = Shape("int")
_STRS = _list(_S)

ASL = Grammar(
    entries={
        "machine": _obj(StartAt=_NAME, States=Shape("map", item=Shape(
            "ref", ref="state"))),
        "state": _obj(
            Type=_S, Next=_NAME, Default=_NAME,
            Choices=_list(Shape("obj")),
            Catch=_list(_obj(ErrorEquals=_STRS, Next=_NAME)),
            Retry=_list(_obj(ErrorEquals=_STRS, IntervalSeconds=Shape("num|str"),
                             MaxAttempts=Shape("int|str"),
                             BackoffRate=Shape("num|str"),
                             MaxDelaySeconds=Shape("num|str"))),
            TimeoutSeconds=Shape("num|str"), HeartbeatSeconds=Shape("num|str"),
            Branches=_list(Shape("ref", ref="machine")),
            Iterator=Shape("ref", ref="machine"),
            ItemProcessor=Shape("ref", ref="machine"),
        ),
    },
    root="machine", type_code="ASL230", number_code="ASL231")

SEATA = Grammar(
    entries={
        "machine": _obj(Name=_S, StartState=_NAME, trans_operation_timeout=_N,
                        States=Shape("map", item=Shape("ref", ref="state"))),
        "state": _obj(
            Type=_S, Next=_NAME, Default=_NAME, CompensateState=_NAME,
            ServiceName=_S, ServiceMethod=_S, StateMachineName=_S,
            Choices=_list(Shape("obj")),
            Catch=_list(_obj(Exceptions=_STRS, Next=_NAME)),
            Retry=_list(_obj(Exceptions=_STRS, IntervalSeconds=_N,
                             MaxAttempts=_INT, BackoffRate=_N)),
        ),
    },
    root="machine", type_code="SEATA330", number_code="SEATA331", any_case=True)

_WHAT = {
    "str": "a string", "name": "a state name", "num": "a number",
    "int": "a whole number", "num|str": "a number (or a placeholder string)",
    "int|str": "a whole number (or a placeholder string)", "list": "a list",
    "map": "a mapping", "obj": "a mapping",
}


def shape_diagnostics(doc: Document, grammar: Grammar,
                      pointer: str) -> tuple[Diagnostic, ...]:
    """Every value under ``pointer`` in ``doc`` whose type the importer of
    ``grammar`` cannot read (empty when all are well typed)."""
    value: Any = doc.data
    for part in pointer.split("/")[1:]:
        value = value[part.replace("~1", "/").replace("~0", "~")]
    out: list[Diagnostic] = []
    _walk(doc, grammar, grammar.entries[grammar.root], value, pointer, out=out)
    return tuple(out)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _walk(doc: Document, g: Grammar, shape: Shape, value: Any, ptr: str, *,
          out: list[Diagnostic]) -> None:
    kind = shape.kind
    if kind == "ref":
        _walk(doc, g, g.entries[shape.ref], value, ptr, out=out)
        return
    if "|str" in kind and isinstance(value, str):
        return
    base = kind.split("|")[0]
    ok = {
        "str": isinstance(value, str),
        "name": isinstance(value, str) or (isinstance(value, int)
                                           and not isinstance(value, bool)),
        "num": _number(value),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "list": isinstance(value, list),
        "map": isinstance(value, Mapping),
        "obj": isinstance(value, Mapping),
    }[base]
    key = _label(ptr)
    if not ok:
        out.append(Diagnostic(
            code=g.type_code, message=f"{key}={_short(value)} must be "
            f"{_WHAT[kind]}", span=doc.span(ptr),
            help=f"write {key} as {_WHAT[kind]} (see the engine's reference "
            "for this key)"))
        return
    # A chained comparison, not float(): an int of 400 digits overflows a
    # float, and NaN compares false.
    if base in ("num", "int") and not -MAX_NUMBER <= value <= MAX_NUMBER:
        out.append(Diagnostic(
            code=g.number_code, message=f"{key}={_short(value)} is not a finite "
            f"number of at most {MAX_NUMBER:,.0f}", span=doc.span(ptr),
            help=f"write a number no larger than {MAX_NUMBER:,.0f}"))
        return
    if base == "list":
        assert shape.item is not None
        for i, v in enumerate(value):
            _walk(doc, g, shape.item, v, f"{ptr}/{i}", out=out)
    elif base == "map":
        assert shape.item is not None
        for k, v in value.items():
            _walk(doc, g, shape.item, v, f"{ptr}/{escape(str(k))}", out=out)
    elif base == "obj":
        fields = dict(shape.fields)
        lower = {k.lower(): s for k, s in shape.fields} if g.any_case else {}
        for k, v in value.items():
            sub = fields.get(str(k)) or lower.get(str(k).lower())
            if sub is not None:
                _walk(doc, g, sub, v, f"{ptr}/{escape(str(k))}", out=out)


def _label(ptr: str) -> str:
    """``Catch[0]`` for ``.../Catch/0``, ``Type`` for ``.../Type``."""
    parts = ptr.split("/")
    if len(parts) >= 3 and parts[-1].isdigit():
        return f"{parts[-2]}[{parts[-1]}]"
    return parts[-1] or "the document"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

"""The JSON Schema of the saga format, and its errors as located diagnostics.

The schema (``saga_models/schema/saga.schema.json``) is the one description of the
file format's shape: which keys exist, their types, the allowed words. Editors can
use it for completion. Its errors become :class:`Diagnostic` values that point at
the offending key or value, name it as ``field=value!r`` and say what to write
(``did you mean`` for a misspelt key or word). Value ranges and cross-field rules
are not here: they are checked on the IR (:mod:`saga_models._validate`), so the
builder and the importers get them too.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ._errors import Diagnostic
from ._fastschema import is_valid
from ._source import Document, escape

if TYPE_CHECKING:
    import jsonschema

SCHEMA_RESOURCE = "schema/saga.schema.json"
"""Where the schema lives inside the ``saga_models`` package."""

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


@cache
def saga_schema() -> Mapping[str, Any]:
    """The saga format's JSON Schema (draft 2020-12) as a mapping."""
    text = resources.files("saga_models").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema

    schema = dict(saga_schema())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_diagnostics(doc: Document) -> list[Diagnostic]:
    """Every schema violation in ``doc``, located, deduplicated, in file order."""
    if is_valid("saga", doc.data):
        return []  # without importing jsonschema (most of a check's start-up)
    seen: set[tuple[str, str, str]] = set()
    out: list[Diagnostic] = []
    for error in _validator().iter_errors(doc.data):
        for d in _diagnose(doc, error):
            key = (d.code, d.span.pointer, d.message)
            if key not in seen:
                seen.add(key)
                out.append(d)
    return out


def _diagnose(doc: Document, error: jsonschema.ValidationError) -> Iterator[Diagnostic]:
    path = tuple(error.absolute_path)
    pointer = "".join(f"/{escape(str(p))}" for p in path)
    raw_schema = error.schema
    schema: Mapping[str, Any] = raw_schema if isinstance(raw_schema, Mapping) else {}
    instance = error.instance
    where = _where(doc.data, path)
    if error.validator == "additionalProperties":
        yield from _unknown_keys(doc, pointer, where, schema, instance)
        return
    if error.validator == "required":
        yield from _missing_keys(doc, pointer, where, schema, instance)
        return
    help_text = str(schema.get("x-help", ""))
    value = f"={_short(instance)}"
    if error.validator in ("enum", "const"):
        allowed = [str(v) for v in _words(schema)]
        yield Diagnostic(
            code="SAGA125",
            message=f"{where}{value} is not one of {', '.join(allowed)}",
            span=doc.span(pointer),
            help=_join(_did_you_mean(instance, allowed), help_text),
        )
        return
    expected = str(schema.get("x-expected") or _expected_type(schema, error))
    code = str(schema.get("x-code")
               or ("SAGA120" if schema.get("type") == "object" else "SAGA124"))
    if error.validator == "minLength":
        expected = "a non-empty string"
    words = [str(v) for v in _words(schema)]
    yield Diagnostic(
        code=code,
        message=f"{where}{value} is not {expected}",
        span=doc.span(pointer),
        help=_join(_did_you_mean(instance, words) if words else "",
                   help_text or _type_help(instance) or f"write {expected}"),
    )


def _unknown_keys(doc: Document, pointer: str, where: str,
                  schema: Mapping[str, Any], instance: Any) -> Iterator[Diagnostic]:
    known = list(schema.get("properties", {}))
    if not isinstance(instance, Mapping):
        return
    for key in instance:
        if key in known:
            continue
        hint = _did_you_mean(key, known)
        yield Diagnostic(
            code="SAGA122",
            message=f"unknown key {key!r} in {where or 'the definition'}",
            span=doc.key_span(f"{pointer}/{escape(str(key))}"),
            help=hint or f"known keys: {', '.join(sorted(known))}",
        )


def _missing_keys(doc: Document, pointer: str, where: str,
                  schema: Mapping[str, Any], instance: Any) -> Iterator[Diagnostic]:
    if not isinstance(instance, Mapping):
        return
    known = list(schema.get("properties", {}))
    # A misspelt key is reported once, as unknown with a "did you mean", not
    # again as a missing one.
    meant = {m for k in instance if k not in known
             for m in difflib.get_close_matches(str(k), known, n=1)}
    for key in schema.get("required", ()):
        if key in instance or key in meant:
            continue
        yield Diagnostic(
            code="SAGA123",
            message=f"{where or 'the definition'} is missing the required key "
            f"{key!r}",
            span=doc.span(pointer),
            help=f"add '{key}: ...'"
            + (f" ({schema['properties'][key]['description']})"
               if "description" in schema["properties"].get(key, {}) else ""),
        )


def _where(data: Any, path: Sequence[str | int]) -> str:
    """``step 'charge': retry.max_attempts`` style name of the node at ``path``."""
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        steps = data.get("steps") if isinstance(data, Mapping) else None
        step = steps[path[1]] if isinstance(steps, list) and path[1] < len(steps) \
            else None
        name = step.get("name") if isinstance(step, Mapping) else None
        label = f"step {name!r}" if isinstance(name, str) else f"steps[{path[1]}]"
        rest = _dotted(path[2:])
        return f"{label}: {rest}" if rest else label
    return _dotted(path)


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text


def _words(schema: Mapping[str, Any]) -> list[Any]:
    """The literal words a schema (or its ``anyOf`` branches) allows."""
    if "enum" in schema:
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    return [w for branch in schema.get("anyOf", ()) for w in _words(branch)]


def _expected_type(schema: Mapping[str, Any], error: jsonschema.ValidationError) -> str:
    t = schema.get("type")
    if isinstance(t, str):
        return _TYPE_WORDS.get(t, t)
    return error.message


def _type_help(instance: Any) -> str:
    if isinstance(instance, (bool, int, float)) or instance is None:
        return "quote the value if it is meant as a string"
    return ""


def _did_you_mean(value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def _join(*parts: str) -> str:
    text = ""
    for part in filter(None, parts):
        text += ("" if not text else " " if text.endswith("?") else "; ") + part
    return text


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""Precompiled validators of the shipped JSON Schemas: the fast "is it valid?".

A check of a valid file needs one answer from the schema, yes; only a file that
is not valid needs jsonschema's every error, located (``_schema.py``). Importing
jsonschema (with referencing, attrs and its format checkers) is most of a small
check's start-up, so the yes comes from plain Python code that fastjsonschema
generated from the very same schema files (``_saga.py``, ``_workflow.py``,
``_scenario.py``: generated, not edited; ``python -m saga_models._fastschema``
writes them again, and ``tests/test_fastschema.py`` fails when they are stale).

The generated modules are self-contained (fastjsonschema is needed only to
write them again: the ``dev`` extra). A no sends the caller to jsonschema,
which then reports every problem as before, or none: the fast validator can
only be stricter than jsonschema (``$`` in a pattern is end-of-text to it),
never more lenient, which ``tests/test_fastschema.py`` checks on generated
documents.
"""

from __future__ import annotations

import importlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

KINDS = ("saga", "workflow", "scenario")
"""The shipped schemas (``saga_models/schema/<kind>.schema.json``)."""


def is_valid(kind: str, data: Any) -> bool:
    """True only when ``data`` matches the ``kind`` schema for certain; False
    when it does not (or, for a value no loader makes, may not)."""
    module = importlib.import_module(f"{__name__}._{kind}")
    try:
        module.validate(data)
    except Exception:
        return False
    return True


# Keywords that mean the same to fastjsonschema's draft 7 as to jsonschema's
# 2020-12 (annotations, and ``x-*`` keys, mean nothing to either). A schema
# edit that uses another keyword must be looked at before a fast validator is
# trusted with it: draft 7 may ignore it (``unevaluatedProperties``,
# ``dependentRequired``) or read it otherwise (``items`` as a list), and an
# ignored keyword would make the fast yes wrong.
_SUBSCHEMA = frozenset({"additionalProperties", "items", "not"})
_SUBSCHEMA_LIST = frozenset({"anyOf", "oneOf", "allOf"})
_SUBSCHEMA_MAP = frozenset({"properties", "$defs"})
_PLAIN = frozenset({
    "type", "required", "minLength", "maxLength", "pattern", "minimum",
    "maximum", "minItems", "maxItems", "minProperties", "maxProperties",
    "enum", "const",
})
_ANNOTATION = frozenset({"$schema", "$id", "title", "description", "default"})


def _inert(key: str) -> bool:
    return key in _ANNOTATION or key.startswith("x-")


def draft7_problems(schema: Any, where: str = "") -> list[str]:
    """Where fastjsonschema's draft-7 reading of ``schema`` could accept a
    value that jsonschema's 2020-12 reading refuses (empty: none).

    >>> draft7_problems({"$ref": "#/$defs/name", "minLength": 2})
    ["/: 'minLength' beside '$ref' (draft 7 ignores it)"]
    """
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [f"{where or '/'}: a schema that is not a mapping"]
    out: list[str] = []
    for key, value in schema.items():
        at = f"{where}/{key}"
        if key in _SUBSCHEMA and not (key == "items" and isinstance(value, list)):
            out += draft7_problems(value, at)
        elif key in _SUBSCHEMA_LIST and isinstance(value, list):
            for n, sub in enumerate(value):
                out += draft7_problems(sub, f"{at}/{n}")
        elif key in _SUBSCHEMA_MAP and isinstance(value, dict):
            for name, sub in value.items():
                out += draft7_problems(sub, f"{at}/{name}")
        elif key in ("enum", "const") and any(
                not isinstance(v, str) for v in
                (value if key == "enum" and isinstance(value, list) else [value])):
            # fastjsonschema compares with ==, so True == 1; jsonschema does not.
            out.append(f"{at}: a value that is not a string")
        elif key == "$ref":
            beside = [k for k in schema if not _inert(k) and k != "$ref"]
            if beside:
                out.append(f"{where or '/'}: {beside[0]!r} beside '$ref' "
                           "(draft 7 ignores it)")
        elif not (key in _PLAIN or _inert(key)):
            out.append(f"{at}: keyword {key!r} is not read alike by draft 7")
    return out


def generate(kind: str) -> str:
    """The validator module of ``kind``, as fastjsonschema writes it.

    Raises:
        RuntimeError: the schema uses a keyword the draft-7 validator would
            read otherwise (:func:`draft7_problems`), or fastjsonschema's code
            changed shape.
    """
    import fastjsonschema

    text = (resources.files("saga_models").joinpath(f"schema/{kind}.schema.json")
            .read_text("utf-8"))
    schema = json.loads(text)
    problems = draft7_problems(schema)
    if problems:
        raise RuntimeError(f"schema/{kind}.schema.json cannot be precompiled: "
                           + "; ".join(problems))
    # fastjsonschema knows drafts 4, 6 and 7; the keywords these schemas use
    # mean the same in draft 7 as in 2020-12 ($defs is reached by $ref).
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    code: str = fastjsonschema.compile_to_code(schema)
    # Self-contained: the exceptions it raises are defined here, so a check
    # imports neither fastjsonschema nor decimal (no loader makes a Decimal;
    # were one given, the stand-in refuses it and jsonschema decides).
    for line, local in (
        ("from fastjsonschema import JsonSchemaValueException, "
         "JsonSchemaValuesException",
         "class JsonSchemaValueException(ValueError):\n"
         "    def __init__(self, message, *args, **kwargs):\n"
         "        super().__init__(message)\n\n\n"
         "JsonSchemaValuesException = JsonSchemaValueException"),
        ("from decimal import Decimal",
         "class Decimal:  # a stand-in: see saga_models._fastschema\n    pass"),
    ):
        if line not in code:
            raise RuntimeError(f"fastjsonschema's code no longer has {line!r}")
        code = code.replace(line, local)
    main = code.split("\ndef ", 1)[1].split("(", 1)[0]  # the first, top level
    return (f"# Generated by `python -m saga_models._fastschema` from "
            f"schema/{kind}.schema.json\n# with fastjsonschema: do not edit.\n"
            "# ruff: noqa\n# mypy: ignore-errors\n"
            f"{code}\n\nvalidate = {main}\n")


def main() -> None:
    """Write the three validator modules next to this file."""
    here = Path(__file__).parent
    for kind in KINDS:
        (here / f"_{kind}.py").write_text(generate(kind), encoding="utf-8")


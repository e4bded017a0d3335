"""The JSON Schema of the event-workflow format (``schema/workflow.schema.json``).

It ships in the package for editors (completion and validation as one types)
and the loader validates files with it, after its own checks, so that the
published schema and the loader cannot drift apart: a file the loader would
take but the schema refuses is reported (``WF102``) instead of loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .._errors import Diagnostic
from .._fastschema import is_valid
from .._source import Document, escape

if TYPE_CHECKING:
    import jsonschema

SCHEMA_RESOURCE = "schema/workflow.schema.json"
"""Where the schema lives inside the ``saga_models`` package."""


@cache
def workflow_schema() -> Mapping[str, Any]:
    """The workflow format's JSON Schema (draft 2020-12) as a mapping."""
    text = (resources.files("saga_models").joinpath(SCHEMA_RESOURCE)
            .read_text("utf-8"))
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema

    schema = dict(workflow_schema())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def workflow_schema_diagnostics(doc: Document) -> list[Diagnostic]:
    """Every place ``doc`` departs from the schema, located, in file order."""
    if is_valid("workflow", doc.data):
        return []  # without importing jsonschema
    out: list[Diagnostic] = []
    for error in sorted(_validator().iter_errors(doc.data),
                        key=lambda e: [str(p) for p in e.absolute_path]):
        pointer = "".join(f"/{escape(str(p))}" for p in error.absolute_path)
        out.append(Diagnostic(
            code="WF102",
            message=f"{pointer or 'the workflow'} does not match the workflow "
            f"schema: {error.message}",
            span=doc.span(pointer),
            help="see saga_models/schema/workflow.schema.json (point your "
            "editor at it to validate as you type)"))
    return out

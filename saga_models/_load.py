"""Loading a definition file, whatever it holds: a native saga or event
workflow (:mod:`._native`), or an AWS Step Functions or Seata state machine
(:mod:`.importers`), recognised by its shape.

The top of the loading layer: it imports the loaders and the importers, and
none of them imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._native import load_native_document
from ._source import Document, parse_document, read_document


def load(path: str | Path, *, scenarios: bool = False) -> Any:
    """Load a definition file (saga or workflow) into its IR; with
    ``scenarios``, a scenario file (several sagas with counts) too.

    Raises:
        InvalidDefinition: every problem found, located (exit code 2 in the CLI);
            ``SAGA176`` for a scenario when ``scenarios`` is off.
    """
    from ._formats import check_file

    check_file(path)  # BPMN: say what it is, not "invalid YAML"
    return load_document(read_document(path), scenarios=scenarios)


def loads(text: str, *, fmt: str = "yaml", file: str = "<memory>") -> Any:
    """Load a definition from a string.

    >>> saga = loads("saga: t\\nsteps:\\n  - {name: a, participant: p, "
    ...              "compensation: undo, timeout: 2s}")
    >>> saga.steps[0].timeout, str(saga.steps[0].span_of("timeout"))
    (2.0, '<memory>:3:60')

    Raises:
        InvalidDefinition: every problem found, located.
    """
    return load_document(parse_document(text, file=file, fmt=fmt))


def load_document(doc: Document, *, scenarios: bool = False) -> Any:
    """Lower a parsed document into a Saga (or hand it to the workflow loader,
    an importer or, with ``scenarios``, the scenario loader, by its shape)."""
    data = doc.data
    if isinstance(data, dict) and "scenario" in data and "saga" not in data:
        if not scenarios:
            from ._errors import Diagnostic, InvalidDefinition

            # Only the checker composes several sagas; running, drawing or
            # exporting takes one definition.
            raise InvalidDefinition((Diagnostic(
                code="SAGA176", message="a scenario file, not one saga or "
                "workflow definition", span=doc.span("/scenario"),
                help="check it with 'sagaproof check FILE'; other commands "
                "take one of the saga files it names"),))
        from ._scenario import load_scenario_document

        return load_scenario_document(doc, load_member=load)
    if isinstance(data, dict) and "workflow" not in data and "saga" not in data:
        from . import importers  # ASL and Seata files, detected by their shape

        if importers.detect(data) is not None:
            return importers.load_document(doc)
    return load_native_document(doc)

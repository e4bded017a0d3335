"""A native definition document to its IR: a saga or an event workflow.

Below both the file-level dispatch (:mod:`._load`, which also recognises ASL
and Seata files) and the importers (whose ``load`` accepts a native file too),
so neither has to import the other.
"""

from __future__ import annotations

from typing import Any

from ._errors import Diagnostic, InvalidDefinition
from ._loader import lower_saga
from ._source import Document


def load_native_document(doc: Document) -> Any:
    """Lower a parsed native document into a Saga, or hand it to the workflow
    loader when it declares ``workflow:``.

    Raises:
        InvalidDefinition: every problem found, located; ``SAGA121`` when the
            document is neither a saga nor a workflow.
    """
    data = doc.data
    if isinstance(data, dict) and "workflow" in data:
        from .workflow import load_workflow_document

        return load_workflow_document(doc)
    if not isinstance(data, dict) or "saga" not in data:
        from ._formats import check_data

        check_data(data, file=doc.file)  # BPMN, Serverless Workflow: SAGA017
        raise InvalidDefinition((Diagnostic(
            code="SAGA121", message="not a saga or workflow definition",
            span=doc.span(""),
            help="start the file with 'saga: <name>' and a 'steps:' list"),))
    return lower_saga(doc)

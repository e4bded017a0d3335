"""Workflow formats sagaproof recognises but does not import (yet).

A BPMN 2.0 or Serverless Workflow file is a definition, just not one of ours:
telling its author to "start the file with 'saga: <name>'" would be wrong.
These files get SAGA017, which names the format and says what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import Diagnostic, InvalidDefinition
from ._span import Span

_BPMN_NS = "http://www.omg.org/spec/BPMN/"
_HEAD = 8192
"""Bytes read to recognise an XML file (the namespace is on the root element)."""


def _unsupported(file: str, fmt: str, line: int = 1) -> InvalidDefinition:
    return InvalidDefinition((Diagnostic(
        code="SAGA017",
        message=f"this is a {fmt} file: sagaproof recognises the format but "
        "cannot check it yet",
        span=Span(file=file, line=line, column=1),
        help="write the process as a sagaproof saga ('saga: <name>' and "
        "'steps:') or event workflow ('workflow: <name>'), or export it as AWS "
        "Step Functions (ASL) or Seata JSON, which sagaproof imports "
        "(docs/importers.md)"),))


def graph_only(file: str, fmt: str) -> InvalidDefinition:
    """SAGA017 for a format ``sagaproof check`` explores as its own graph but
    that has no native saga form (to run, export or lower)."""
    return InvalidDefinition((Diagnostic(
        code="SAGA017",
        message=f"this is a {fmt} file: `sagaproof check` explores it as its "
        "own graph, but it has no native saga form to run or export",
        span=Span(file=file, line=1, column=1),
        help="check it with `sagaproof check FILE`; to run it, write it as a "
        "sagaproof saga ('saga: <name>' and 'steps:') or as ASL"),))


def format_of(data: Any) -> str | None:
    """The name of a recognised foreign format of parsed ``data``, or None."""
    if isinstance(data, str) and _BPMN_NS in data:
        return "BPMN 2.0"
    if not isinstance(data, Mapping):
        return None
    document = data.get("document")
    if isinstance(document, Mapping) and "dsl" in document:
        return "Serverless Workflow"
    if "specVersion" in data and "states" in data:
        return "Serverless Workflow"
    return None


def looks_like_bpmn(path: str | Path) -> bool:
    """Whether ``path`` is a BPMN 2.0 file (its suffix, or the BPMN namespace
    near the start of an XML file)."""
    p = Path(path)
    if not p.is_file():
        # A FIFO or device can be read once: leave it to the reader, which
        # bounds what it reads (SAGA002) and reports what it finds there.
        return False
    try:
        with p.open("rb") as fh:
            head = fh.read(_HEAD).decode("utf-8", errors="replace")
    except OSError:
        return False  # the reader reports a missing or unreadable file
    return p.suffix.lower() == ".bpmn" or (head.lstrip().startswith("<")
                                           and _BPMN_NS in head)


def check_file(path: str | Path) -> None:
    """Raise SAGA017 for a BPMN file before it is parsed (XML is rarely valid
    YAML, so the parser's error would hide what the file is).

    Raises:
        InvalidDefinition: SAGA017, for a file that is BPMN.
    """
    if looks_like_bpmn(path):
        raise graph_only(str(path), "BPMN 2.0")


def check_data(data: Any, *, file: str) -> None:
    """Raise SAGA017 when parsed ``data`` is a recognised foreign format.

    Raises:
        InvalidDefinition: SAGA017.
    """
    fmt = format_of(data)
    if fmt is not None:
        raise _unsupported(file, fmt)

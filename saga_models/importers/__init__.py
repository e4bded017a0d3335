"""Importers for definitions written for other engines: AWS Step Functions
(Amazon States Language, JSON or YAML, raw or inside a Serverless Framework file)
and Seata sagas (the Java engine's state language and the Go engine's dialect).

They lower to the same IR as native sagas, so every checker, the runtime and the
CLI work on imported files unchanged. A definition with Choice states has several
forward paths; each is one alternative :class:`~saga_models.Saga`:
:func:`load_all` returns them all, :func:`load` / :func:`load_document` the first
(with an ``ASL120``/``SEATA120`` warning saying there are more).

>>> from saga_models.importers import detect
>>> detect({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})
'asl'
>>> detect({"StartState": "A", "States": {}}) , detect({"saga": "x"})
('seata', None)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._ir import Saga
from .._source import Document, read_document
from ._mapping import CompensationMap as CompensationMap
from ._mapping import MappingEntry as MappingEntry
from ._mapping import Sidecar, read_sidecar

__all__ = [
    "CompensationMap",
    "MappingEntry",
    "detect",
    "graph_mapping",
    "load",
    "load_all",
    "load_all_document",
    "load_document",
    "mapping",
]

MapArg = str | Path | Sidecar | None
"""``--compensations``: a sidecar path (or an already-read sidecar)."""


def detect(data: Any) -> str | None:
    """The format name of ``data`` (``asl``, ``seata``, ``sw``), or None.

    A Serverless Workflow (``sw``) is only checked as its own graph
    (:mod:`.graph_semantics`); it has no lowering to a saga."""
    if not isinstance(data, dict) or not (
            "States" in data or "states" in data or "stepFunctions" in data):
        # Every format below needs one of these keys: a native definition is
        # told apart without importing the importers (a check's start-up).
        return None
    from ._asl import find_machine

    if "StartState" in data and "States" in data:
        return "seata"
    from ._sw import detect as is_sw

    if is_sw(data):
        return "sw"
    if find_machine(data) is not None:
        return "asl"
    return None


def _sidecar(compensations: MapArg) -> Sidecar | None:
    if compensations is None or isinstance(compensations, Sidecar):
        return compensations
    return read_sidecar(compensations)


def check_shape(doc: Document, fmt: str | None) -> None:
    """Refuse wrongly typed sub-nodes before an importer indexes them (every
    entry point that parses an ASL or Seata document calls this first)."""
    from .._errors import InvalidDefinition
    from ._shape import ASL, SEATA, shape_diagnostics

    if fmt == "asl":
        from ._asl import find_machine

        found = find_machine(doc.data)
        problems = shape_diagnostics(doc, ASL, found[0]) if found else ()
    elif fmt == "seata":
        problems = shape_diagnostics(doc, SEATA, "")
    else:
        return
    if problems:
        raise InvalidDefinition(problems)


def load_all_document(doc: Document, *, compensations: MapArg = None) -> list[Saga]:
    """Every alternative saga of a parsed ASL or Seata document."""
    fmt = detect(doc.data)
    check_shape(doc, fmt)
    sidecar = _sidecar(compensations)
    if fmt == "asl":
        from . import _asl

        return _asl.lower_paths(_asl.parse(doc, sidecar=sidecar))
    if fmt == "seata":
        from ._seata import lower_paths, parse

        return lower_paths(parse(doc, sidecar=sidecar))
    if fmt == "sw":
        from .._formats import graph_only

        raise graph_only(doc.file, "Serverless Workflow 0.8")
    from .._errors import Diagnostic, InvalidDefinition

    raise InvalidDefinition((Diagnostic(
        code="IMPORT101", message="not an ASL state machine or a Seata saga",
        span=doc.span(""),
        help="ASL has 'StartAt' and 'States'; Seata has 'StartState' and "
        "'States'; a native saga starts with 'saga: <name>'"),))


def load_document(doc: Document, *, compensations: MapArg = None) -> Saga:
    """The first (primary) alternative saga of a parsed ASL or Seata document."""
    return load_all_document(doc, compensations=compensations)[0]


def load_all(path: str | Path, *, compensations: MapArg = None) -> list[Saga]:
    """Every alternative saga of the ASL or Seata file at ``path``."""
    return load_all_document(read_document(path), compensations=compensations)


def load(path: str | Path, *, compensations: MapArg = None) -> Saga:
    """The primary alternative saga of the file at ``path``; a native saga file
    is loaded as usual (so ``--compensations`` can be passed for any file)."""
    doc = read_document(path)
    if detect(doc.data) is None:
        from .._native import load_native_document

        result: Saga = load_native_document(doc)
        return result
    return load_document(doc, compensations=compensations)


def mapping(path: str | Path, *, compensations: MapArg = None) -> CompensationMap:
    """The forward-task -> compensation mapping of an imported file, inferred
    and completed by the sidecar; print it with :meth:`CompensationMap.to_yaml`."""
    doc = read_document(path)
    check_shape(doc, detect(doc.data))
    sidecar = _sidecar(compensations)
    if detect(doc.data) == "seata":
        from ._seata import parse as parse_seata

        return parse_seata(doc, sidecar=sidecar).mapping
    from . import _asl

    return _asl.parse(doc, sidecar=sidecar).mapping


def graph_mapping(path: str | Path, *, compensations: MapArg = None
                  ) -> CompensationMap:
    """The mapping ``sagaproof check`` uses on an imported file, which explores
    the file as its own graph: for ASL read from the structure of the file
    (Catch routes and rollback chains; see ``_structure``), for Seata declared
    by CompensateState. :func:`mapping` is the one the lowering uses."""
    doc = read_document(path)
    check_shape(doc, detect(doc.data))
    sidecar = _sidecar(compensations)
    if detect(doc.data) == "seata":
        from ._seata import parse as parse_seata

        return parse_seata(doc, sidecar=sidecar, enumerate_paths=False).mapping
    from . import _asl
    from ._structure import as_map, infer

    m = _asl.parse(doc, sidecar=sidecar, enumerate_paths=False)
    return as_map(m, infer(m, sidecar))

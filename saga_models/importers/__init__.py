"""Importers for definitions written for other engines (placeholder until the
importer work lands): ``detect`` recognises nothing yet."""

from __future__ import annotations

from typing import Any


def detect(data: Any) -> str | None:
    """The format name of ``data`` (``asl``, ``seata``), or None."""
    return None


def load_document(doc: Any, *, compensations: Any = None) -> Any:
    raise NotImplementedError

"""Source spans: where an IR node came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A location in a definition.

    Lines and columns are 1-based; 0 means unknown. ``pointer`` is a JSON pointer
    into the document (``/steps/2/compensation``), which survives reformatting.
    """

    file: str = "<memory>"
    """Path of the file, or ``<builder>``/``<memory>``."""
    line: int = 0
    column: int = 0
    pointer: str = ""
    """JSON pointer of the node inside the document."""

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        if self.pointer:
            return f"{self.file}#{self.pointer}"
        return self.file

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping (SARIF-friendly field names)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
        }


UNKNOWN_SPAN = Span()

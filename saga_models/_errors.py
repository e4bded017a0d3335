"""Errors and located diagnostics.

One exception root (:class:`SagaError`); errors a user can fix also subclass the
builtin they resemble, so ``except ValueError`` keeps working for callers that do
not know sagaproof.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ._span import Span


class Severity(enum.Enum):
    """How bad a diagnostic is."""

    ERROR = "error"
    """The definition cannot be lowered to an IR, or breaks a structure rule."""
    WARNING = "warning"
    """Legal, but almost certainly not what the author meant."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One problem in a definition, with where it is and how to fix it."""

    code: str
    """Stable identifier, e.g. ``SAGA103``; listed in ``docs/diagnostics.md``."""
    message: str
    """What is wrong, naming the bad value as ``name=value!r``."""
    span: Span
    """Where it is."""
    help: str = ""
    """What to write instead."""
    severity: Severity = Severity.ERROR

    def render(self) -> str:
        """Render as ``file:line:col: CODE message`` plus a help line.

        >>> from saga_models import Span
        >>> d = Diagnostic(code="SAGA101", message="duplicate step name 'a'",
        ...                span=Span(file="s.yaml", line=3, column=5),
        ...                help="rename one")
        >>> print(d.render())
        s.yaml:3:5: error SAGA101: duplicate step name 'a'
          help: rename one
        """
        text = f"{self.span}: {self.severity.value} {self.code}: {self.message}"
        if self.help:
            text += f"\n  help: {self.help}"
        return text

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "help": self.help,
            "location": self.span.to_json(),
        }


class SagaError(Exception):
    """Root of every error sagaproof raises."""


@dataclass(eq=False)
class InvalidDefinition(SagaError, ValueError):
    """The definition could not be loaded; carries every diagnostic found."""

    diagnostics: tuple[Diagnostic, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        """All diagnostics, one block each."""
        return "\n".join(d.render() for d in self.diagnostics)

    def __str__(self) -> str:
        return self.render()

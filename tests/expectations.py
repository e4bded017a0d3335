"""Reading the ``# expect:`` and ``# faults:`` header lines of definition files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    """What a definition file promises."""

    violated: frozenset[str]
    """Properties that must be violated; empty means every property holds."""
    faults: str
    refused: str | None = None
    """The diagnostic code a definition that must be refused (exit 2) has."""


def expectation(path: Path) -> Expectation:
    """Parse the header comments of ``path``."""
    violated: set[str] = set()
    faults = "all"
    refused: str | None = None
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        body = line.lstrip("#").strip()
        if body.startswith("expect:"):
            what = body.removeprefix("expect:").strip()
            if what.startswith("violated"):
                names = what.removeprefix("violated").split(",")
                violated.update(n.strip() for n in names if n.strip())
            elif what.startswith("refused"):
                refused = what.removeprefix("refused").strip()
            elif what != "holds":
                raise ValueError(f"{path}: bad expect line {line!r}")
        elif body.startswith("faults:"):
            faults = body.removeprefix("faults:").strip()
    return Expectation(violated=frozenset(violated), faults=faults,
                       refused=refused)

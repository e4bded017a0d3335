"""Coverage witnesses: what generated tests reached, and what they never did.

A witness is a short string in the model's vocabulary:

- ``step:NAME``: the step's action was sent;
- ``outcome:NAME:OUTCOME``: an attempt of it came back ``ok``, ``failed``,
  ``fatal`` or ``unknown``;
- ``compensation:NAME``: its compensation was sent;
- ``comp_outcome:NAME:OUTCOME``: a compensation attempt came back so;
- ``terminal:PHASE``: an instance ended ``COMPLETED``, ``COMPENSATED``,
  ``FAILED`` or ``STUCK``;
- ``recovery``: an instance was recovered after a crash.

The runtime's log yields the witnesses a test reached; the model (explored
under the same fault model) yields the ones that can be reached at all; the
difference is what the tests never exercised.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saga_models import FaultModel, Saga
from saga_models import semantics as sem
from saga_models.semantics import EventKind

DEFAULT_PATH = Path(".sagaproof") / "coverage.json"
"""Where the pytest plugin stores witnesses, beside the project."""

_MODEL_BUDGET = 200_000


def witnesses(records: Iterable[Any]) -> set[str]:
    """The witnesses in one instance's log records."""
    out: set[str] = set()
    for r in records:
        kind = r.kind
        if kind == "dispatch":
            out.add(f"step:{r.step}")
        elif kind == "reply":
            out.add(f"outcome:{r.step}:{r.outcome}")
        elif kind == "comp_dispatch":
            out.add(f"compensation:{r.step}")
        elif kind == "comp_reply":
            out.add(f"comp_outcome:{r.step}:{r.outcome}")
        elif kind == "end":
            out.add(f"terminal:{r.outcome}")
        elif kind == "recover":
            out.add("recovery")
    return out


def reachable(saga: Saga, faults: FaultModel = sem.ALL_FAULTS) -> set[str]:
    """Every witness some execution of the model reaches under ``faults``.

    A breadth-first walk of the shared semantics (capped at 200,000 states:
    beyond that, the set found so far is returned, so the report can only
    under-state what is reachable).
    """
    names = [s.name for s in saga.steps]
    start = sem.initial_state(saga)
    seen = {start}
    todo = deque([start])
    out: set[str] = set()
    while todo and len(seen) < _MODEL_BUDGET:
        s = todo.popleft()
        if sem.is_terminal(s):
            out.add(f"terminal:{sem.phase(s).name}")
            continue
        for e in sem.enabled(saga, s, faults):
            k = e.kind
            if k is EventKind.DISPATCH:
                out.add(f"step:{names[e.step]}")
            elif k is EventKind.REPLY and e.outcome is not None:
                out.add(f"outcome:{names[e.step]}:{e.outcome.value}")
            elif k is EventKind.COMP_DISPATCH:
                out.add(f"compensation:{names[e.step]}")
            elif k is EventKind.COMP_REPLY and e.outcome is not None:
                out.add(f"comp_outcome:{names[e.step]}:{e.outcome.value}")
            elif k is EventKind.RECOVER:
                out.add("recovery")
            d = sem.apply(saga, s, e)
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageReport:
    """Reached and never-reached witnesses of one definition."""

    definition: str
    reachable: frozenset[str]
    reached: frozenset[str]

    @property
    def missing(self) -> tuple[str, ...]:
        """Reachable in the model, never reached by a test."""
        return tuple(sorted(self.reachable - self.reached))

    @property
    def ratio(self) -> float:
        """Share of the reachable witnesses reached (1.0 when none exist)."""
        if not self.reachable:
            return 1.0
        return len(self.reachable & self.reached) / len(self.reachable)

    def text(self) -> str:
        """The report for people."""
        hit = len(self.reachable & self.reached)
        lines = [f"{self.definition}: {hit}/{len(self.reachable)} witnesses "
                 f"reached ({self.ratio:.0%})"]
        if self.missing:
            lines.append("  never reached:")
            lines += [f"    {m}" for m in self.missing]
        return "\n".join(lines)


def coverage_report(saga: Saga, reached: Iterable[str], *,
                    faults: FaultModel = sem.ALL_FAULTS) -> CoverageReport:
    """Compare what tests ``reached`` with what the model can reach."""
    return CoverageReport(definition=saga.name,
                          reachable=frozenset(reachable(saga, faults)),
                          reached=frozenset(reached))


class CoverageStore:
    """Witnesses by definition, merged across test runs in one JSON file.

    Keyed by the definition's content hash, so editing a definition starts
    its coverage afresh.
    """

    def __init__(self, path: Path | str = DEFAULT_PATH) -> None:
        self.path = Path(path)
        self._data: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            raw = json.loads(self.path.read_text())
            self._data = dict(raw.get("definitions", {}))

    def add(self, saga: Saga, reached: Iterable[str], *, faults: FaultModel) -> None:
        """Merge ``reached`` into the record of ``saga``."""
        entry = self._data.setdefault(saga.content_hash, {
            "name": saga.name, "faults": faults.describe(), "reached": []})
        entry["reached"] = sorted(set(entry["reached"]) | set(reached))

    def reached(self, saga: Saga) -> set[str]:
        """Every witness recorded for ``saga`` (by content hash)."""
        entry = self._data.get(saga.content_hash)
        return set(entry["reached"]) if entry else set()

    def faults(self, saga: Saga) -> FaultModel:
        """The fault model the witnesses of ``saga`` were recorded under."""
        entry = self._data.get(saga.content_hash)
        return FaultModel.parse(entry["faults"]) if entry else sem.ALL_FAULTS

    def entries(self) -> Mapping[str, Mapping[str, Any]]:
        """The raw records, by content hash."""
        return self._data

    def save(self) -> None:
        """Write the store (merging with what another run wrote meanwhile)."""
        if self.path.exists():
            other = json.loads(self.path.read_text()).get("definitions", {})
            for key, entry in other.items():
                mine = self._data.setdefault(key, entry)
                mine["reached"] = sorted(set(mine["reached"]) | set(entry["reached"]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"definitions": self._data}, indent=2,
                                        sort_keys=True) + "\n")

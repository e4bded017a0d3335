"""Verdicts, property results and counterexamples (ITF-shaped)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from saga_models import SagaError


class Verdict(enum.Enum):
    """The three verdicts. ``UNKNOWN`` never counts as a pass."""

    HOLDS = "holds"
    VIOLATED = "violated"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceStep:
    """One step of a counterexample: the event taken and the state it led to."""

    action: str
    """Human rendering of the event (``init`` for the first state)."""
    event: dict[str, object] | None
    """The event as data, or None for the initial state."""
    state: dict[str, object]
    """The state after the event, as data."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Counterexample:
    """A shortest trace to a violation; ``loop_start`` marks a lasso's cycle."""

    steps: tuple[TraceStep, ...]
    loop_start: int | None = None
    """Index in ``steps`` where the repeating cycle starts (liveness), or None."""
    violation: str = ""
    """What is wrong in the last state (or on the cycle)."""

    def __len__(self) -> int:
        """Number of events (transitions) in the trace."""
        return len(self.steps) - 1

    def to_itf(self, *, source: str = "") -> dict[str, object]:
        """The trace in the ITF JSON shape used by Apalache and Quint.

        Every state has every variable (ITF requires it): the state's own
        fields, ``action_taken`` (the event in words) and ``event`` (the event
        as data; the ``Nil`` variant for the initial state). Values are
        written by :func:`verifier.itf.itf_value` (integers as ``#bigint``, no
        ``null``), so itf-py and Quint read the trace back unchanged.
        """
        from .itf import itf_value

        names = sorted({k for s in self.steps for k in s.state})
        vars_ = [*names, "action_taken", "event"]
        states = []
        for i, step in enumerate(self.steps):
            entry: dict[str, object] = {"#meta": {"index": i}}
            for name in names:
                entry[name] = itf_value(step.state.get(name))
            entry["action_taken"] = step.action
            entry["event"] = itf_value(step.event)
            states.append(entry)
        meta: dict[str, object] = {
            "format": "ITF",
            "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "source": source,
            "description": self.violation,
        }
        out: dict[str, object] = {"#meta": meta, "vars": vars_, "states": states}
        if self.loop_start is not None:
            out["loop"] = self.loop_start
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    """How much work a check took."""

    states: int = 0
    transitions: int = 0
    seconds: float = 0.0
    depth: int = 0
    peak_memory_bytes: int = 0
    engine: str = "python"
    """Which search ran: ``kernel`` (the semantics kernel compiled with numba,
    over packed states) or ``python`` (``successors`` interpreted)."""
    search_note: str = ""
    """What a lossy search (hash compaction, bitstate) may have missed: its
    storage and the estimated probability that a state was missed; "" for a
    search that kept every state."""
    omission_probability: float | None = None
    """That probability, as a number (None: no state can have been missed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PropertyResult:
    """The verdict for one property of one definition."""

    property: str
    verdict: Verdict
    reason: str = ""
    fault_model: str = ""
    counterexample: Counterexample | None = None
    stats: Stats = field(default_factory=Stats)
    backend: str = "explicit"

    def to_json(self, *, source: str = "") -> dict[str, object]:
        """The JSON shape the CLI prints."""
        return {
            "property": self.property,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "fault_model": self.fault_model,
            "backend": self.backend,
            "counterexample": (
                self.counterexample.to_itf(source=source)
                if self.counterexample is not None
                else None
            ),
            "stats": {
                "states": self.stats.states,
                "transitions": self.stats.transitions,
                "seconds": round(self.stats.seconds, 6),
                "depth": self.stats.depth,
                "engine": self.stats.engine,
                **({"storage": self.stats.search_note,
                    "omission_probability": self.stats.omission_probability}
                   if self.stats.search_note else {}),
            },
        }


class PropertyViolated(SagaError, AssertionError):
    """Raised by :meth:`CheckResult.raise_for_violation`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """Every property's verdict for one definition."""

    definition: str
    """The definition's name."""
    source: str
    """Where it came from (a path, or ``<builder>``)."""
    results: tuple[PropertyResult, ...]
    kind: str = "saga"
    """``saga`` or ``workflow``."""

    @property
    def verdict(self) -> Verdict:
        """Violated if any is, else unknown if any is, else holds."""
        verdicts = {r.verdict for r in self.results}
        if Verdict.VIOLATED in verdicts:
            return Verdict.VIOLATED
        if Verdict.UNKNOWN in verdicts or not verdicts:
            return Verdict.UNKNOWN
        return Verdict.HOLDS

    def __getitem__(self, prop: str) -> PropertyResult:
        for r in self.results:
            if r.property == prop:
                return r
        raise KeyError(f"no result for property={prop!r}")

    def raise_for_violation(self) -> None:
        """Raise :class:`PropertyViolated` unless every property holds."""
        bad = [r for r in self.results if r.verdict is not Verdict.HOLDS]
        if bad:
            lines = [f"{r.property}: {r.verdict.value}: {r.reason}" for r in bad]
            raise PropertyViolated(f"{self.definition}: " + "; ".join(lines))

    def to_json(self) -> dict[str, object]:
        """The JSON shape the CLI prints, one entry per definition."""
        return {
            "definition": self.definition,
            "kind": self.kind,
            "source": self.source,
            "verdict": self.verdict.value,
            "results": [r.to_json(source=self.source) for r in self.results],
        }

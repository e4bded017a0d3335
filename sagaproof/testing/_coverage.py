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

For an event workflow:

- ``transition:SERVICE:FROM--EVENT->TO``: a transition was taken (``timer``
  for a timer);
- ``duplicate:SERVICE:EVENT``: a duplicate delivery was handled again;
- ``drop:SERVICE:EVENT``: a duplicate was dropped by the inbox;
- ``unhandled:SERVICE:EVENT``: an event reached a state without a transition;
- ``outcome:DESCRIPTION``: an instance came to rest in a declared outcome
  (``outcome:none`` when in none).

The runtime's log yields the witnesses a test reached; the model (explored
under the same fault model) yields the ones that can be reached at all; the
difference is what the tests never exercised.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saga_models import FaultModel, Saga
from saga_models import semantics as sem
from saga_models.semantics import EventKind
from saga_models.workflow import Workflow
from saga_models.workflow import semantics as wsem
from verifier._budget import Deadline

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
    under-state what is reachable; :func:`coverage_report` says so).
    """
    return _reachable(saga, faults)[0]


def _reachable(saga: Saga, faults: FaultModel, *,
               max_states: int = _MODEL_BUDGET,
               deadline: Deadline | None = None) -> tuple[set[str], str]:
    """The witnesses, and why the walk stopped early ("" when it did not)."""
    names = [s.name for s in saga.steps]
    start = sem.initial_state(saga)
    seen = {start}
    todo = deque([start])
    out: set[str] = set()
    while todo:
        if (cut := _cut(len(seen), max_states, deadline)):
            return out, cut
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
    return out, ""


def _cut(states: int, max_states: int, deadline: Deadline | None) -> str:
    if states >= max_states:
        return (f"state budget reached: the model was explored to {states:,} "
                "states (--max-states)")
    if deadline is not None and deadline.expired():
        return deadline.reason(f"after {states:,} model states")
    return ""


def workflow_witnesses(wf: Workflow, log: Iterable[Any]) -> set[str]:
    """The witnesses in one workflow instance's runtime log."""
    out: set[str] = set()
    for e in log:
        if e.kind in ("deliver", "timer"):
            out.add(f"transition:{e.service}:{e.from_state}--"
                    f"{e.event or 'timer'}->{e.to_state}")
            if e.duplicate:
                out.add(f"duplicate:{e.service}:{e.event}")
        elif e.kind in ("drop", "unhandled"):
            out.add(f"{e.kind}:{e.service}:{e.event}")
    return out


def workflow_reachable(wf: Workflow, faults: FaultModel = sem.ALL_FAULTS) -> set[str]:
    """Every workflow witness some execution of the model reaches (with
    ``faults.duplicates`` repeated deliveries on an at-least-once bus; capped
    at 200,000 states like :func:`reachable`)."""
    return _workflow_reachable(wf, faults)[0]


def _workflow_reachable(wf: Workflow, faults: FaultModel, *,
                        max_states: int = _MODEL_BUDGET,
                        deadline: Deadline | None = None) -> tuple[set[str], str]:
    t = wsem.tables(wf)
    start = wsem.initial_state(wf, duplicates=faults.duplicates)
    seen = {start}
    todo = deque([start])
    out: set[str] = set()
    while todo:
        if (cut := _cut(len(seen), max_states, deadline)):
            return out, cut
        s = todo.popleft()
        steps = wsem.enabled(wf, s)
        if not steps:
            states = wsem.state_names(wf, s)
            hit = [o.describe() for o in wf.outcomes
                   if all(states[k] == v for k, v in o.states)]
            out.add(f"outcome:{hit[0]}" if hit else "outcome:none")
            continue
        for step in steps:
            svc = t.services[step.service]
            ev = t.events[step.event] if step.event >= 0 else "timer"
            k = step.kind
            if k in (wsem.StepKind.DELIVER, wsem.StepKind.TIMER):
                tr = t.transition(step.service, step.transition)
                here = t.state_names[step.service][step.at]
                out.add(f"transition:{svc}:{here}--{ev}->"
                        f"{tr.branches[step.branch].to}")
                if step.duplicate:
                    out.add(f"duplicate:{svc}:{ev}")
            elif k in (wsem.StepKind.DROP, wsem.StepKind.UNHANDLED):
                out.add(f"{k.value}:{svc}:{ev}")
            d = wsem.apply(wf, s, step)
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return out, ""


def definition_key(definition: Saga | Workflow) -> str:
    """The key coverage is stored under: a saga's content hash, or the
    sha256 of a workflow's meaning (its IR without source spans)."""
    if isinstance(definition, Saga):
        return definition.content_hash
    blob = json.dumps(_meaning(definition), sort_keys=True, default=str)
    return "workflow:" + hashlib.sha256(blob.encode()).hexdigest()


def _meaning(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "text") and hasattr(value, "tree"):
            return value.text  # an expression: its source is its meaning
        return {f.name: _meaning(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.name not in ("span", "source_format")}
    if isinstance(value, (tuple, list)):
        return [_meaning(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageReport:
    """Reached and never-reached witnesses of one definition."""

    definition: str
    reachable: frozenset[str]
    reached: frozenset[str]
    cut: str = ""
    """Why the model's exploration stopped early ("" when it did not): then
    ``reachable`` is a subset of what the model can reach."""

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
        if self.cut:
            lines.append(f"  incomplete: {self.cut}; the model may reach more "
                         "than listed")
        if self.missing:
            lines.append("  never reached:")
            lines += [f"    {m}" for m in self.missing]
        return "\n".join(lines)


def coverage_report(definition: Saga | Workflow, reached: Iterable[str], *,
                    faults: FaultModel = sem.ALL_FAULTS,
                    max_states: int = _MODEL_BUDGET,
                    deadline: Deadline | None = None) -> CoverageReport:
    """Compare what tests ``reached`` with what the model can reach (a saga
    or an event workflow), within a state budget and an optional deadline;
    a report cut short says so (``cut``)."""
    can, cut = (
        _workflow_reachable(definition, faults, max_states=max_states,
                            deadline=deadline)
        if isinstance(definition, Workflow)
        else _reachable(definition, faults, max_states=max_states,
                        deadline=deadline))
    return CoverageReport(definition=definition.name, reachable=frozenset(can),
                          reached=frozenset(reached), cut=cut)


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

    def add(self, saga: Saga | Workflow, reached: Iterable[str], *,
            faults: FaultModel) -> None:
        """Merge ``reached`` into the record of ``saga`` (or a workflow)."""
        entry = self._data.setdefault(definition_key(saga), {
            "name": saga.name, "faults": faults.describe(), "reached": []})
        entry["reached"] = sorted(set(entry["reached"]) | set(reached))

    def reached(self, saga: Saga | Workflow) -> set[str]:
        """Every witness recorded for ``saga`` (by content hash)."""
        entry = self._data.get(definition_key(saga))
        return set(entry["reached"]) if entry else set()

    def faults(self, saga: Saga | Workflow) -> FaultModel:
        """The fault model the witnesses of ``saga`` were recorded under."""
        entry = self._data.get(definition_key(saga))
        return FaultModel.parse(entry["faults"]) if entry else sem.ALL_FAULTS

    def entries(self) -> Mapping[str, Mapping[str, Any]]:
        """The raw records, by content hash."""
        return self._data

    def save(self) -> None:
        """Write the store (merging with what another run wrote meanwhile).

        Parallel test workers (pytest-xdist) save the same file at the end of
        their sessions: the read-merge-write holds an exclusive lock where the
        platform has one, and the file is replaced whole, so a reader never
        sees half of it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.with_name(self.path.name + ".lock")):
            if self.path.exists():
                other = json.loads(self.path.read_text()).get("definitions", {})
                for key, entry in other.items():
                    mine = self._data.setdefault(key, entry)
                    mine["reached"] = sorted(set(mine["reached"])
                                             | set(entry["reached"]))
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"definitions": self._data}, indent=2,
                                      sort_keys=True) + "\n")
            os.replace(tmp, self.path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (none where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic replace still avoids torn files
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

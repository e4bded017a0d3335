"""Scenario files: several different sagas, each with a count of instances,
composed over the shared resources they declare.

A scenario names saga definition files (paths relative to the scenario file)::

    scenario: credit
    sagas:
      - {path: create_order.saga.yaml, count: 1}
      - {path: cancel_order.saga.yaml, count: 1}

Every saga keeps its own resources, effects, invariants and countermeasures; a
resource (or an invariant) that two sagas both declare must be declared alike,
since the composition has one of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ._errors import Diagnostic, InvalidDefinition
from ._fastschema import is_valid
from ._ir import Saga
from ._resources import MAX_INSTANCES
from ._source import Document, escape
from ._span import UNKNOWN_SPAN, Span

__all__ = ["Scenario", "ScenarioMember", "load_scenario_document"]

SCHEMA_RESOURCE = "schema/scenario.schema.json"
"""Where the scenario format's JSON Schema lives inside ``saga_models``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioMember:
    """One saga of a scenario and how many instances of it run."""

    path: str
    """The definition file, as written in the scenario."""
    saga: Saga
    count: int = 1
    """Instances of this saga in the composition (the scenario's ``count:``,
    else the saga's own ``instances:``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """Several sagas with their counts, composed over shared resources."""

    name: str
    members: tuple[ScenarioMember, ...]
    span: Span = UNKNOWN_SPAN
    """The scenario file."""

    @property
    def sagas(self) -> tuple[Saga, ...]:
        """The saga of each instance, in order (one entry per instance)."""
        return tuple(m.saga for m in self.members for _ in range(m.count))


@cache
def scenario_schema() -> Mapping[str, Any]:
    """The scenario format's JSON Schema (draft 2020-12) as a mapping."""
    text = (resources.files("saga_models").joinpath(SCHEMA_RESOURCE)
            .read_text("utf-8"))
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_scenario_document(doc: Document, *,
                           load_member: Callable[[Path], Any]) -> Scenario:
    """Load the scenario in ``doc`` and every saga it names, with
    ``load_member`` (the file loader, passed in by the loading layer above
    this module).

    Raises:
        InvalidDefinition: a scenario that does not match its schema (SAGA171),
            a member that cannot be loaded or is not a saga (SAGA172, or the
            member's own diagnostics), a resource or invariant two sagas
            declare differently (SAGA173), a total count out of range
            (SAGA174).
    """
    problems: list[Diagnostic] = []
    for error in _schema_errors(doc.data):
        pointer = "".join(f"/{escape(str(p))}" for p in error.absolute_path)
        problems.append(Diagnostic(
            code="SAGA171",
            message=f"{pointer or 'the scenario'}: {error.message}",
            span=doc.span(pointer),
            help="write 'scenario: <name>' and 'sagas:', a list of "
            "{path: <saga file>, count: N} (saga_models/schema/"
            "scenario.schema.json)"))
    if problems:
        raise InvalidDefinition(tuple(problems))
    data = doc.data
    base = Path(doc.file).parent
    members: list[ScenarioMember] = []
    # One file named twice is one saga (its instances are interchangeable,
    # which symmetry reduction relies on).
    loaded: dict[Path, Any] = {}
    names: dict[str, tuple[Path, int]] = {}
    for i, raw in enumerate(data["sagas"]):
        ptr = f"/sagas/{i}"
        path = str(raw["path"])
        if not (base / path).is_file():
            problems.append(Diagnostic(
                code="SAGA172", message=f"sagas[{i}]: no saga definition at "
                f"path={path!r}", span=doc.span(f"{ptr}/path"),
                help=f"write the path relative to the scenario file's folder "
                f"({str(base)!r})"))
            continue
        where = (base / path).resolve()
        try:
            saga = loaded.get(where) or load_member(base / path)
        except InvalidDefinition as exc:
            problems += exc.diagnostics
            continue
        loaded[where] = saga
        if not isinstance(saga, Saga):
            problems.append(Diagnostic(
                code="SAGA172",
                message=f"sagas[{i}]: path={path!r} is a "
                f"{type(saga).__name__}, not a saga",
                span=doc.span(f"{ptr}/path"),
                help="a scenario composes saga definitions ('saga:' files)"))
            continue
        first = names.setdefault(saga.name, (where, i))
        if first[0] != where:
            problems.append(Diagnostic(
                code="SAGA178",
                message=f"sagas[{i}]: path={path!r} is saga {saga.name!r}, "
                f"the name of sagas[{first[1]}] too",
                span=doc.span(f"{ptr}/path"),
                help="rename one of the sagas: properties and counterexamples "
                "name instances by their saga"))
            continue
        # Without a count, the saga's own 'instances:' says how many.
        members.append(ScenarioMember(
            path=path, saga=saga, count=int(raw.get("count", saga.instances))))
    if problems:
        raise InvalidDefinition(tuple(problems))
    problems += _conflicts(doc, members)
    total = sum(m.count for m in members)
    if total > MAX_INSTANCES:
        problems.append(Diagnostic(
            code="SAGA174",
            message=f"the counts add up to {total} instances, over "
            f"{MAX_INSTANCES}",
            span=doc.span("/sagas"),
            help="lower the counts; past a few instances, use --symmetry and "
            "expect a large state space"))
    if problems:
        raise InvalidDefinition(tuple(problems))
    return Scenario(name=str(data["scenario"]), members=tuple(members),
                    span=doc.span(""))


def _conflicts(doc: Document, members: list[ScenarioMember]
               ) -> Iterator[Diagnostic]:
    """A resource or an invariant declared differently by two sagas."""
    resources_seen: dict[str, tuple[_Shape, int]] = {}
    invariants_seen: dict[str, tuple[str, int]] = {}
    for i, m in enumerate(members):
        for r in m.saga.resources:
            shape: _Shape = (r.kind, r.initial, r.fields, r.key)
            first = resources_seen.setdefault(r.name, (shape, i))
            if first[0] != shape:
                yield Diagnostic(
                    code="SAGA173",
                    message=f"resource {r.name!r} is {_shape(first[0])} in "
                    f"{members[first[1]].path!r} but {_shape(shape)} in "
                    f"{m.path!r}",
                    span=doc.span(f"/sagas/{i}/path"),
                    help="a scenario has one of each resource: declare it "
                    "alike in every saga that uses it")
        for inv in m.saga.invariants:
            got = invariants_seen.setdefault(inv.name, (inv.expr, i))
            if got[0] != inv.expr:
                yield Diagnostic(
                    code="SAGA173",
                    message=f"invariant {inv.name!r} is {got[0]!r} in "
                    f"{members[got[1]].path!r} but {inv.expr!r} in {m.path!r}",
                    span=doc.span(f"/sagas/{i}/path"),
                    help="give the invariants different names, or the same "
                    "condition")


_Shape = tuple[str, int, tuple[tuple[str, int], ...], str]


def _shape(shape: _Shape) -> str:
    kind, initial, fields, key = shape
    if kind == "counter":
        return f"a counter from {initial}"
    per = "a record keyed by instance" if key == "instance" else "a record"
    return f"{per} with " + ", ".join(f"{f}={v}" for f, v in fields)


def _schema_errors(data: Any) -> list[Any]:
    """jsonschema's errors for a scenario, in file order; none, without
    importing jsonschema, when the precompiled validator accepts it."""
    if is_valid("scenario", data):
        return []
    import jsonschema

    schema = dict(scenario_schema())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(validator.iter_errors(data),
                  key=lambda e: [str(p) for p in e.absolute_path])

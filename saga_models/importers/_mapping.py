"""Which task compensates which: inference from names and wiring, and the
``--compensations`` sidecar that overrides or completes it.

ASL has no notion of compensation, so the mapping is inferred: a handler task
whose verb undoes the forward task's verb (Cancel/Reserve, Refund/Process,
Compensate/anything) and whose object shares a word with it. A forward task with
no candidate is reported, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .._errors import Diagnostic, InvalidDefinition
from .._ir import StepKind
from .._source import read_document

NONE_VALUES = frozenset({"none", "null", "~", ""})
"""Sidecar values meaning "this task has no effect to undo"."""

_ANY = frozenset({"*"})
_UNDOES: dict[str, frozenset[str]] = {
    "cancel": frozenset({"reserve", "book", "create", "place", "order", "hold",
                         "schedule", "submit", "start", "open", "allocate"}),
    "refund": frozenset({"process", "charge", "pay", "debit", "capture",
                         "collect", "bill"}),
    "release": frozenset({"reserve", "hold", "allocate", "lock", "acquire"}),
    "unreserve": frozenset({"reserve"}),
    "unbook": frozenset({"book"}),
    "delete": frozenset({"create", "add", "insert", "put"}),
    "remove": frozenset({"add", "insert", "create", "put"}),
    "void": frozenset({"authorize", "charge", "capture", "issue"}),
    "credit": frozenset({"debit", "charge"}),
    "restore": frozenset({"reduce", "deduct", "decrease", "consume"}),
    "increase": frozenset({"reduce", "decrease", "deduct"}),
    "compensate": _ANY,
    "rollback": _ANY,
    "undo": _ANY,
    "revert": _ANY,
}
"""Verb of a compensation -> verbs of the forward actions it can undo."""

_NOUN_OF_VERB = {"reservation": "reserve", "booking": "book", "order": "order",
                 "payment": "pay", "charge": "charge", "hold": "hold",
                 "allocation": "allocate"}
_NOISE = frozenset({"task", "state", "lambda", "function", "step", "the", "a",
                    "call", "invoke", "do"})


def words(name: str) -> list[str]:
    """Lower-case words of a state name (camelCase, spaces, _ and - split).

    >>> words("TaskCancelFlight_reservation")
    ['cancel', 'flight', 'reservation']
    """
    parts = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\b|[^A-Za-z])|[A-Z]?[a-z]+|\d+",
                       name)
    return [p.lower() for p in parts if p.lower() not in _NOISE]


def _verb_object(name: str) -> tuple[str, set[str]]:
    w = words(name)
    return (w[0], set(w[1:])) if w else ("", set())


def undo_verb(name: str) -> bool:
    """True when ``name`` reads like a compensation (starts with an undo verb)."""
    return _verb_object(name)[0] in _UNDOES


def match_score(forward: str, compensation: str) -> int:
    """How well ``compensation``'s name says it undoes ``forward`` (0: not at all).

    >>> match_score("ReserveFlight", "CancelFlightReservation")
    2
    >>> match_score("ConfirmFlight", "CancelFlightReservation")
    0
    """
    cverb, cobj = _verb_object(compensation)
    fverb, fobj = _verb_object(forward)
    undoes = _UNDOES.get(cverb)
    if undoes is None:
        return 0
    if undoes is _ANY:
        # "CompensateReduceInventory" undoes exactly "ReduceInventory".
        rest = words(compensation)[1:]
        return 3 if rest == words(forward) else 0
    if fverb not in undoes:
        return 0
    cobj = {o for o in cobj if _NOUN_OF_VERB.get(o) != fverb}
    overlap = len(cobj & fobj)
    if not fobj and not cobj:
        return 1
    return overlap + 1 if overlap else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingEntry:
    """The compensation of one forward task, and where that came from."""

    forward: str
    compensation: str | None
    source: str
    """``CompensateState`` (Seata), ``annotation`` (a ``sagaproof:`` comment),
    ``sidecar``, ``name``, ``name+catch`` (inferred), or ``unmapped``."""
    no_effect: bool = False
    """The sidecar says the task has nothing to undo (a notification)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationMap:
    """The whole mapping of one definition."""

    entries: tuple[MappingEntry, ...]
    kinds: tuple[tuple[str, StepKind], ...] = ()
    handlers: tuple[str, ...] = ()
    """Handler tasks (reached only through Catch) that undo no forward task."""

    def compensation_of(self, forward: str) -> str | None:
        """The task that undoes ``forward``, if known."""
        for e in self.entries:
            if e.forward == forward:
                return e.compensation
        return None

    def entry(self, forward: str) -> MappingEntry | None:
        """The entry of ``forward``."""
        return next((e for e in self.entries if e.forward == forward), None)

    def forwards_of(self, compensation: str) -> list[str]:
        """Forward tasks undone by ``compensation``, in declaration order."""
        return [e.forward for e in self.entries if e.compensation == compensation]

    def kind_of(self, forward: str) -> StepKind | None:
        """A kind set by the sidecar or an annotation."""
        return dict(self.kinds).get(forward)

    def to_yaml(self, *, header: str = "") -> str:
        """The mapping as a sidecar file the user can edit and pass back with
        ``--compensations``."""
        lines = [f"# {line}" for line in header.splitlines()]
        # A machine without forward Tasks maps nothing; '{}' keeps the file
        # a sidecar that reads back (a bare key would be null).
        lines.append("compensations:" if self.entries else "compensations: {}")
        width = max((len(repr(e.forward)) for e in self.entries), default=0)
        for e in self.entries:
            key = _yaml_key(e.forward)
            if e.no_effect:
                value, note = "none", "no effect to undo"
            elif e.compensation is None:
                # '?' is refused when read back: an unmapped task is never
                # silently accepted as having nothing to undo.
                value, note = "'?'", ("UNMAPPED: name the task that undoes it, or "
                                      "write 'none' if it has no effect to undo")
            else:
                value, note = _yaml_key(e.compensation), f"from {e.source}"
            pad = " " * max(1, width - len(key) + 1)
            lines.append(f"  {key}:{pad}{value}   # {note}")
        if self.kinds:
            lines.append("kinds:")
            lines.extend(f"  {_yaml_key(n)}: {k.value}" for n, k in self.kinds)
        if self.handlers:
            lines.append("# handler tasks that undo no forward task: "
                         + ", ".join(self.handlers))
        return "\n".join(lines) + "\n"


def _yaml_key(name: str) -> str:
    dumped = yaml.safe_dump(name, default_style=None).strip()
    return dumped.removesuffix("\n...").strip()


def infer(
    forwards: Sequence[str],
    candidates: Sequence[str],
    *,
    catch_entry: Mapping[str, str] | None = None,
) -> dict[str, tuple[str | None, str]]:
    """Infer forward -> (compensation, source) from names, ``catch_entry``
    (forward -> first task its Catch runs) breaking ties."""
    catch_entry = catch_entry or {}
    out: dict[str, tuple[str | None, str]] = {}
    for f in forwards:
        scored = sorted(((match_score(f, c), c) for c in candidates),
                        key=lambda sc: -sc[0])
        best = [c for s, c in scored if s and s == scored[0][0]]
        if len(best) == 1:
            src = "name+catch" if catch_entry.get(f) == best[0] else "name"
            out[f] = (best[0], src)
        elif len(best) > 1 and catch_entry.get(f) in best:
            out[f] = (catch_entry[f], "name+catch")
        else:
            out[f] = (None, "unmapped")
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Sidecar:
    """A parsed ``--compensations`` file."""

    compensations: dict[str, str | None]
    kinds: dict[str, StepKind]
    file: str
    spans: dict[str, Any]


def read_sidecar(path: str | Path) -> Sidecar:
    """Read a sidecar map (YAML): ``compensations: {Forward: Compensation}`` and
    optionally ``kinds: {Forward: pivot|retriable|compensatable}``."""
    doc = read_document(path)
    data = doc.data
    problems: list[Diagnostic] = []
    if not isinstance(data, dict) or not isinstance(data.get("compensations"),
                                                    dict):
        raise InvalidDefinition((Diagnostic(
            code="IMPORT110", message="the compensation map needs a "
            "'compensations:' mapping", span=doc.span(""),
            help="write 'compensations:' then one 'ForwardTask: CompensationTask' "
            "line per task ('none' if it has nothing to undo)"),))
    unknown_keys = set(data) - {"compensations", "kinds"}
    for key in sorted(map(str, unknown_keys)):
        problems.append(Diagnostic(
            code="IMPORT111", message=f"unknown key key={key!r} in the "
            "compensation map", span=doc.key_span(f"/{key}"),
            help="use 'compensations:' and 'kinds:'"))
    comps: dict[str, str | None] = {}
    for fwd, comp in data["compensations"].items():
        if comp is None or (isinstance(comp, str) and comp.lower() in NONE_VALUES):
            comps[str(fwd)] = None
        elif isinstance(comp, str):
            comps[str(fwd)] = comp
        else:
            problems.append(Diagnostic(
                code="IMPORT112", message=f"compensation of {fwd!r} must be a "
                f"task name, got {comp!r}", span=doc.span(f"/compensations/{fwd}"),
                help="write the state name of the compensating task, or 'none'"))
    kinds: dict[str, StepKind] = {}
    for fwd, kind in (data.get("kinds") or {}).items():
        try:
            kinds[str(fwd)] = StepKind(str(kind))
        except ValueError:
            problems.append(Diagnostic(
                code="IMPORT112", message=f"unknown kind={kind!r} for {fwd!r}",
                span=doc.span(f"/kinds/{fwd}"),
                help="use compensatable, pivot or retriable"))
    if problems:
        raise InvalidDefinition(tuple(problems))
    return Sidecar(compensations=comps, kinds=kinds, file=doc.file,
                   spans={k: doc.span(f"/compensations/{k}") for k in comps}
                   | {f"kind:{k}": doc.span(f"/kinds/{k}") for k in kinds})


def check_sidecar_names(sidecar: Sidecar, tasks: Iterable[str]) -> None:
    """Every name in the sidecar must be a task of the definition."""
    names = set(tasks)
    problems: list[Diagnostic] = []
    import difflib

    def bad(name: str, key: str) -> None:
        close = difflib.get_close_matches(name, sorted(names), n=1)
        problems.append(Diagnostic(
            code="IMPORT113", message=f"the compensation map names task "
            f"name={name!r}, which the definition does not have",
            span=sidecar.spans[key],
            help=f"did you mean {close[0]!r}?" if close else
            "use the state names of the definition's tasks"))

    for fwd, comp in sidecar.compensations.items():
        if fwd not in names:
            bad(fwd, fwd)
        if comp is not None and comp not in names:
            bad(comp, fwd)
    for fwd in sidecar.kinds:
        if fwd not in names:
            bad(fwd, f"kind:{fwd}")
    if problems:
        raise InvalidDefinition(tuple(problems))

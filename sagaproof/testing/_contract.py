"""The effect declarations as the participant's contract, checked on real code.

A saga's ``effect`` and ``compensation_effect`` say what a participant does to
the shared resources when a call takes effect. The runtime never reads them:
they are the participant's contract. When a binding exposes the participants'
current resource values (``Binding.resources``), the generated tests check,
around every real participant call, that the change it made is either none (a
refusal, a deduplicated re-delivery, a lock's "try later") or exactly the
declared effect applied to the values before the call; and none at all when
the declared guard (with its version checks and rereads) is false.

A record keyed by instance (``key: instance``) has one row per instance, which
no other instance can see; the binding names the rows by saga id
(``order[trip-0].total``, ``order[trip-0].version``). A call by one instance
sees the shared resources and its own row under the names its expressions use
(``order.total``), may change only those, and changes nobody else's row: a
change to another instance's row (or to a row of no instance, such as one
shared row the participant keeps for all of them) is a violation of its own.
A row the binding leaves out does not exist yet and holds its declared initial
values, as every row does in the model before its instance writes it.

This module is the whole of that check; the harness calls :meth:`before` and
:meth:`after` around each invocation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from saga_models import Saga
from saga_models._ir import Effect
from saga_models._resources import guard_text, instance_records, records_of
from saga_models.workflow._expr import Expr, parse_expr

Resources = Callable[[Any], Mapping[str, int]]
"""``resources(participants)``: the current value of every shared resource the
saga declares, by slot name (``stock``; ``order.total``, ``order.version``),
and each existing row of a record keyed by instance by saga id
(``order[trip-0].total``, ``order[trip-0].version``)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    guard: Expr | None
    reads: tuple[tuple[str, str], ...]
    updates: tuple[tuple[str, Expr], ...]
    bumps: tuple[str, ...]


@dataclass(slots=True)
class Pending:
    """One participant call in progress."""

    instance: int
    saga_id: str
    """The instance's saga id: the key of its own rows."""
    what: str
    action: bool
    """An action (else a compensation, which may find nothing to undo)."""
    eff: _Compiled
    before: dict[str, int]
    overlapped: bool = False
    """Another call ran at the same time: its change cannot be told apart."""


@dataclass(slots=True)
class EffectContract:
    """Checks each participant call against its step's declared effect."""

    saga: Saga
    resources: Resources
    _actions: dict[str, _Compiled] = field(default_factory=dict)
    _comps: dict[str, _Compiled] = field(default_factory=dict)
    _shared: dict[str, int] = field(default_factory=dict)
    """Each shared slot's initial value (counters, fields of shared records)."""
    _rows: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    """Each record keyed by instance: its ``(field, initial)``, version last."""
    _order: tuple[str, ...] = ()
    """Every slot name as an expression says it, in declaration order."""
    _locals: dict[int, dict[str, int]] = field(default_factory=dict)
    _active: list[Pending] = field(default_factory=list)
    _broken: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        records = records_of(self.saga)
        mine = instance_records(self.saga)
        order: list[str] = []
        for r in self.saga.resources:
            if r.kind == "record":
                row = (*r.fields, ("version", 0))
                order += [f"{r.name}.{f}" for f, _ in row]
                if r.name in mine:
                    self._rows[r.name] = row
                else:
                    self._shared.update((f"{r.name}.{f}", v) for f, v in row)
            else:
                order.append(r.name)
                self._shared[r.name] = r.initial
        self._order = tuple(order)
        source = {loc: res for s in self.saga.steps
                  for e in (s.effect, s.compensation_effect) if e is not None
                  for loc, res in e.reads}
        for step in self.saga.steps:
            if step.effect is not None:
                self._actions[step.name] = _compile(step.effect, records, source)
            if step.compensation_effect is not None:
                self._comps[step.name] = _compile(step.compensation_effect,
                                                  records, source)

    def before(self, instance: int, step: str, kind: str, world: Any,
               what: str, *, saga_id: str) -> Pending | None:
        """Snapshot the resources before a call of ``step``'s action (or
        compensation, ``kind``) by ``instance`` (whose rows are keyed by
        ``saga_id``); None when the step declares no effect."""
        eff = (self._actions if kind == "action" else self._comps).get(step)
        before = self._snapshot(world) if eff is not None else None
        if eff is None or before is None:
            return None
        p = Pending(instance=instance, saga_id=saga_id, what=what,
                    action=kind == "action", eff=eff, before=before)
        if self._active:
            for other in self._active:
                other.overlapped = True
            p.overlapped = True
        self._active.append(p)
        return p

    def take(self) -> list[str]:
        """The violations found since the last call (each once)."""
        out, self._broken = self._broken, []
        return out

    def after(self, p: Pending, world: Any, *, returned: bool) -> None:
        """Check the call ``p`` (``returned``: it answered rather than
        raised); a violation is kept for :meth:`take`."""
        self._active.remove(p)
        now = self._snapshot(world)
        if now is None or p.overlapped:
            return
        foreign = self._check_others(p, now)
        # What the call can see, under the names its expressions use.
        seen = {n: self._value(p.before, self._own(n, p.saga_id))
                for n in self._order}
        after = {n: self._value(now, self._own(n, p.saga_id))
                 for n in self._order}
        env = {**seen, **self._locals.get(p.instance, {})}
        allowed = [seen]
        if p.eff.guard is None or p.eff.guard.evaluate(env, {}):
            expected = dict(seen)
            for res, expr in p.eff.updates:
                expected[res] = int(expr.evaluate(env, {}))
            for version in p.eff.bumps:
                expected[version] += 1
            allowed.append(expected)
            if returned and after == expected:
                # The effect took place, so its reads did (as in the model);
                # a deduplicated re-delivery that changed nothing reads
                # nothing, or it would overwrite what the first one read.
                mine = self._locals.setdefault(p.instance, {})
                for local, res in p.eff.reads:
                    mine[local] = seen[res]
            if returned and p.action and not foreign:
                self._check_written(p, now)
        if after in allowed:
            return
        names = " or ".join(self._show(a, p.saga_id) for a in allowed)
        what = ("the shared resources and its own rows" if self._rows
                else "the shared resources")
        self._broken.append(
            f"instance {p.instance}: {p.what} changed {what} from "
            f"{self._show(seen, p.saga_id)} to {self._show(after, p.saga_id)}; "
            f"its declared effect allows {names} (the effect declaration is "
            "the participant's contract)")

    def _check_others(self, p: Pending, now: Mapping[str, int]) -> bool:
        """Any change to a row of a record keyed by instance that is not
        ``p``'s own (another instance's, or one of no instance: a row the
        participant shares out among all of them): no other instance can see
        such a row, let alone write it. True when there was one."""
        changed = []
        for key in sorted({*p.before, *now} - self._shared.keys()):
            if _split(key)[1] == p.saga_id:
                continue
            was, got = self._value(p.before, key), self._value(now, key)
            if was != got:
                changed.append(f"{key} from {was} to {got}")
        if changed:
            self._broken.append(
                f"instance {p.instance} (saga {p.saga_id!r}): {p.what} changed "
                f"rows that are not its own: {', '.join(changed)}; a record keyed "
                "by instance has one row per instance, which no other instance "
                "sees, so a call may change only the shared resources and its "
                f"own rows ({', '.join(self._own_rows(p.saga_id))}) (the effect "
                "declaration is the participant's contract)")
        return bool(changed)

    def _check_written(self, p: Pending, now: Mapping[str, int]) -> None:
        """An action that answered, with its guard true and a declared effect
        that writes one of its own rows, leaves that row behind: without one
        in the binding's answer its write could not be seen at all (and a
        compensation is exempt: it may find no action to undo)."""
        for rec in sorted({b.partition(".")[0] for b in p.eff.bumps}
                          & self._rows.keys()):
            key = f"{rec}[{p.saga_id}]"
            if not any(k.startswith(f"{key}.") for k in now):
                self._broken.append(
                    f"Binding.resources returned no value for row {key!r} "
                    f"after instance {p.instance}'s {p.what} answered, whose "
                    f"declared effect writes it; return each instance's row of "
                    f"{rec!r} (keyed by instance) by saga id: "
                    + ", ".join(f"'{rec}[<saga id>].{f}'"
                                for f, _ in self._rows[rec])
                    + " (if it does, the participant wrote no row)")

    def _own(self, name: str, saga_id: str) -> str:
        """The slot ``name`` (as an expression says it) is for ``saga_id``."""
        rec, _, fld = name.partition(".")
        return f"{rec}[{saga_id}].{fld}" if rec in self._rows else name

    def _own_rows(self, saga_id: str) -> list[str]:
        return [f"{rec}[{saga_id}]" for rec in self._rows]

    def _value(self, snap: Mapping[str, int], key: str) -> int:
        """``key``'s value in ``snap``; a row left out holds its initial
        values (it does not exist yet)."""
        if key in snap:
            return snap[key]
        rec, _, fld = _split(key)
        return dict(self._rows[rec])[fld]

    def _show(self, values: Mapping[str, int], saga_id: str) -> str:
        return "{" + ", ".join(f"{self._own(k, saga_id)}={v}"
                               for k, v in values.items()) + "}"

    def _snapshot(self, world: Any) -> dict[str, int] | None:
        got = dict(self.resources(world))
        missing = [n for n in self._shared if n not in got]
        out = {n: int(got[n]) for n in self._shared if n in got}
        seen: dict[tuple[str, str], set[str]] = {}
        for key, value in got.items():
            rec, rid, fld = _split(key)
            if rid and rec in self._rows and fld in dict(self._rows[rec]):
                seen.setdefault((rec, rid), set()).add(fld)
                out[key] = int(value)
        for (rec, rid), fields in sorted(seen.items()):
            # A row exists whole or not at all; part of one is the binding's
            # mistake, never a value the model could give it.
            missing += [f"{rec}[{rid}].{f}" for f, _ in self._rows[rec]
                        if f not in fields]
        shared_names = [k for k in got for rec in self._rows
                        if k.startswith(f"{rec}.")]
        if missing or shared_names:
            # The binding's fault, not the participant's: said once, plainly.
            msg = (f"Binding.resources returned no value for {missing!r}; "
                   "return every resource the saga declares (records as "
                   "'name.field' and 'name.version'")
            if self._rows:
                msg += (", each row of a record keyed by instance as "
                        "'name[<saga id>].field' and 'name[<saga id>].version'")
            msg += ")"
            if shared_names:
                msg = (f"Binding.resources returned {sorted(shared_names)!r}, "
                       "but " + ", ".join(repr(r) for r in sorted(self._rows))
                       + " is keyed by instance: name each instance's row by "
                       "its saga id, e.g. " + ", ".join(
                           f"'{r}[<saga id>].{f}'" for r in sorted(self._rows)
                           for f, _ in self._rows[r][:1]))
            self._broken.append(msg)
            return None
        return out


def _split(key: str) -> tuple[str, str, str]:
    """``('order', 'trip-0', 'total')`` for ``order[trip-0].total``; an empty
    id for a name that is not a row key."""
    rec, bracket, rest = key.partition("[")
    rid, sep, fld = rest.rpartition("].")
    if not bracket or not sep:
        return key.partition(".")[0], "", key.partition(".")[2]
    return rec, rid, fld


def effect_contract(saga: Saga, resources: Resources | None
                    ) -> EffectContract | None:
    """The contract checker for ``saga``, or None when the binding exposes no
    resources or the saga declares no effects."""
    if resources is None or not any(s.effect or s.compensation_effect
                                    for s in saga.steps):
        return None
    return EffectContract(saga=saga, resources=resources)


def _compile(eff: Effect, records: frozenset[str],
             source: Mapping[str, str]) -> _Compiled:
    text = guard_text(eff, source)
    written = {res.partition(".")[0] for res, _ in eff.updates} & records
    return _Compiled(
        guard=parse_expr(text, records=records) if text is not None else None,
        reads=eff.reads,
        updates=tuple((res, parse_expr(e, records=records))
                      for res, e in eff.updates),
        bumps=tuple(f"{r}.version" for r in sorted(written)))

"""The effect declarations as the participant's contract, checked on real code.

A saga's ``effect`` and ``compensation_effect`` say what a participant does to
the shared resources when a call takes effect. The runtime never reads them:
they are the participant's contract. When a binding exposes the participants'
current resource values (``Binding.resources``), the generated tests check,
around every real participant call, that the change it made is either none (a
refusal, a deduplicated re-delivery, a lock's "try later") or exactly the
declared effect applied to the values before the call; and none at all when
the declared guard (with its version checks and rereads) is false.

This module is the whole of that check; the harness calls :meth:`before` and
:meth:`after` around each invocation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from saga_models import Saga
from saga_models._ir import Effect
from saga_models._resources import guard_text, records_of, slots_of
from saga_models.workflow._expr import Expr, parse_expr

Resources = Callable[[Any], Mapping[str, int]]
"""``resources(participants)``: the current value of every shared resource the
saga declares, by slot name (``stock``; ``order.total``, ``order.version``)."""


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
    what: str
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
    _locals: dict[int, dict[str, int]] = field(default_factory=dict)
    _active: list[Pending] = field(default_factory=list)
    _broken: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        records = records_of(self.saga)
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
               what: str) -> Pending | None:
        """Snapshot the resources before a call of ``step``'s action (or
        compensation, ``kind``); None when the step declares no effect."""
        eff = (self._actions if kind == "action" else self._comps).get(step)
        before = self._snapshot(world) if eff is not None else None
        if eff is None or before is None:
            return None
        p = Pending(instance=instance, what=what, eff=eff, before=before)
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
        env = {**p.before, **self._locals.get(p.instance, {})}
        allowed = [p.before]
        if p.eff.guard is None or p.eff.guard.evaluate(env, {}):
            expected = dict(p.before)
            for res, expr in p.eff.updates:
                expected[res] = int(expr.evaluate(env, {}))
            for version in p.eff.bumps:
                expected[version] += 1
            allowed.append(expected)
            if returned:
                mine = self._locals.setdefault(p.instance, {})
                for local, res in p.eff.reads:
                    mine[local] = p.before[res]
        if now in allowed:
            return
        shown = " or ".join(_show(a) for a in allowed)
        self._broken.append(
            f"instance {p.instance}: {p.what} changed the shared resources "
            f"from {_show(p.before)} to {_show(now)}; its declared effect "
            f"allows {shown} (the effect declaration is the participant's "
            "contract)")

    def _snapshot(self, world: Any) -> dict[str, int] | None:
        got = dict(self.resources(world))
        missing = [n for n, _ in slots_of(self.saga) if n not in got]
        if missing:
            # The binding's fault, not the participant's: said once, plainly.
            self._broken.append(
                f"Binding.resources returned no value for {missing!r}; return "
                "every resource the saga declares (records as 'name.field' "
                "and 'name.version')")
            return None
        return {n: int(got[n]) for n, _ in slots_of(self.saga)}


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


def _show(values: Mapping[str, int]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in values.items()) + "}"

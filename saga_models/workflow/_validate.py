"""Validation of a lowered workflow: small pure checks, every problem at once.

Codes are listed in ``docs/workflow_diagnostics.md``. These are static rules
(the definition is wrong whatever the bus does); what depends on executions
(an event arriving in a state that cannot handle it, a deadlock) is a verdict
of the checker instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator

from .._errors import Diagnostic
from .._wf_kernel import MAX_BRANCHES, MAX_SERVICES, MAX_TRANSITIONS
from ._expr import state_literals
from ._ir import Workflow

MAX_EVENTS = 120
"""Events pack into one byte per bus slot in the model's state."""
MAX_STATES = 255


def workflow_diagnostics(wf: Workflow) -> tuple[Diagnostic, ...]:
    """Every problem that leaves ``wf`` without a meaning (empty when it is
    well-formed): loading raises them (exit 2). See ``docs/errors.md``."""
    return tuple(d for check in _CHECKS for d in check(wf))


def structure_diagnostics(wf: Workflow) -> tuple[Diagnostic, ...]:
    """Every definition bug in a well-formed ``wf``: the semantics can run it,
    but it is wrong (dead transitions, unhandled emissions, unreachable
    states). They are the verdict of the ``structure`` property (exit 1), as
    the saga structure rules are; see ``docs/errors.md``."""
    return tuple(d for check in _STRUCTURE for d in check(wf))


def _hint(name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}?" if close else (
        f"known: {', '.join(known)}" if known else "declare it first")


def _shape(wf: Workflow) -> Iterator[Diagnostic]:
    if not wf.services:
        yield Diagnostic(code="WF100", message=f"workflow {wf.name!r} has no "
                         "services", span=wf.span,
                         help="add services under 'services:'")
    if len(wf.events) > MAX_EVENTS:
        yield Diagnostic(code="WF114", message=f"{len(wf.events)} events, over the "
                         f"{MAX_EVENTS} the model can pack", span=wf.span,
                         help="split the workflow")
    if len(wf.services) > MAX_SERVICES:
        # A step of the semantics kernel is one 64-bit int with a field for
        # the service, its transition and the outcome (saga_models._wf_kernel).
        yield Diagnostic(code="WF114", message=f"{len(wf.services)} services, "
                         f"over the {MAX_SERVICES} the model can pack",
                         span=wf.span, help="split the workflow")
    for s in wf.services:
        if len(s.states) > MAX_STATES:
            yield Diagnostic(code="WF114", message=f"service {s.name!r} has "
                             f"{len(s.states)} states, over {MAX_STATES}",
                             span=s.span, help="split the service")
        if len(s.transitions) > MAX_TRANSITIONS:
            yield Diagnostic(code="WF114", message=f"service {s.name!r} has "
                             f"{len(s.transitions)} transitions, over "
                             f"{MAX_TRANSITIONS}", span=s.span,
                             help="split the service")
        for t in s.transitions:
            if len(t.branches) > MAX_BRANCHES:
                yield Diagnostic(code="WF114", message=f"service {s.name!r}: a "
                                 f"'choose' with {len(t.branches)} outcomes, "
                                 f"over {MAX_BRANCHES}", span=t.span,
                                 help="split the choice over two transitions")


def _no_start(wf: Workflow) -> Iterator[Diagnostic]:
    if not wf.start:
        yield Diagnostic(code="WF115", message=f"workflow {wf.name!r} starts with "
                         "no event on the bus, so nothing ever happens",
                         span=wf.span, help="write 'start: [order_placed]'")


def _unknown_states(wf: Workflow) -> Iterator[Diagnostic]:
    for s in wf.services:
        known = set(s.states)
        for f in s.final:
            if f not in known:
                yield Diagnostic(code="WF103", message=f"service {s.name!r}: "
                                 f"final state={f!r} is not a state of it",
                                 span=s.span, help=_hint(f, s.states))
        for t in s.transitions:
            for name in (t.source, *(b.to for b in t.branches)):
                if name not in known:
                    yield Diagnostic(code="WF103", message=f"service {s.name!r}: "
                                     f"unknown state={name!r}", span=t.span,
                                     help=_hint(name, s.states) +
                                     " (or add it to 'states:')")
    names = {s.name: s for s in wf.services}
    for o in wf.outcomes:
        for svc, state in o.states:
            if svc not in names:
                yield Diagnostic(code="WF109", message=f"outcome names unknown "
                                 f"service={svc!r}", span=o.span,
                                 help=_hint(svc, names))
            elif state not in names[svc].states:
                yield Diagnostic(code="WF103", message=f"outcome: service "
                                 f"{svc!r} has no state={state!r}", span=o.span,
                                 help=_hint(state, names[svc].states))


def _events(wf: Workflow) -> Iterator[Diagnostic]:
    emitted = set(wf.start)
    for s in wf.services:
        for t in s.transitions:
            for b in t.branches:
                emitted.update(b.emit)
    for s in wf.services:
        for t in s.transitions:
            if t.on is not None and t.on not in emitted:
                yield Diagnostic(code="WF104", message=f"service {s.name!r} "
                                 f"handles event={t.on!r}, which nothing emits",
                                 span=t.span, help=_hint(t.on, sorted(emitted)) +
                                 " (or add it to 'start:')")
        for e in s.ignore:
            if e not in emitted:
                yield Diagnostic(code="WF104", message=f"service {s.name!r} "
                                 f"ignores event={e!r}, which nothing emits",
                                 span=s.span, help=_hint(e, sorted(emitted)))
    for e in sorted(emitted):
        if not wf.subscribers(e):
            where = wf.span
            for s in wf.services:
                for t in s.transitions:
                    if any(e in b.emit for b in t.branches):
                        where = t.span
            yield Diagnostic(code="WF107", message=f"event={e!r} is emitted but no "
                             "service handles or ignores it", span=where,
                             help="add a transition 'on: " + e + "' to the service "
                             "that must react, or list it under 'ignore:'")


def _finals(wf: Workflow) -> Iterator[Diagnostic]:
    for s in wf.services:
        for t in s.transitions:
            if t.source in s.final:
                yield Diagnostic(code="WF105", message=f"service {s.name!r}: "
                                 f"final state={t.source!r} has an outgoing "
                                 "transition", span=t.span,
                                 help="remove the transition, or make the state "
                                 "non-final (list ignored events under 'ignore:')")


def _timers(wf: Workflow) -> Iterator[Diagnostic]:
    # Malformed, not a definition bug: the model keeps one timer per state,
    # so a second one would have no meaning.
    for s in wf.services:
        timers: set[str] = set()
        for t in s.transitions:
            if t.is_timer:
                if t.source in timers:
                    yield Diagnostic(code="WF113", message=f"service {s.name!r}: "
                                     f"two timers in state={t.source!r}",
                                     span=t.span, help="keep one timer per state; "
                                     "use 'choose' for several outcomes")
                timers.add(t.source)


def _determinism(wf: Workflow) -> Iterator[Diagnostic]:
    for s in wf.services:
        open_: dict[tuple[str, str | None], int] = {}
        for i, t in enumerate(s.transitions):
            if t.is_timer:
                continue
            key = (t.source, t.on)
            if key in open_:
                yield Diagnostic(code="WF106", message=f"service {s.name!r}: two "
                                 f"transitions on (state={t.source!r}, "
                                 f"event={t.on!r}); the first has no guard, so "
                                 "this one is never taken", span=t.span,
                                 help="write the outcomes as one transition with "
                                 "'choose:', or give the first a guard")
            if t.guard is None:
                open_[key] = i


def _names(wf: Workflow) -> Iterator[Diagnostic]:
    counters = {c.name for c in wf.counters}
    services = {s.name for s in wf.services}
    by_name = {s.name: s for s in wf.services}
    exprs = [(inv.expr, inv.span) for inv in wf.invariants]
    for s in wf.services:
        for t in s.transitions:
            if t.guard is not None:
                exprs.append((t.guard, t.span))
            for b in t.branches:
                for c, _ in b.add:
                    if c not in counters:
                        yield Diagnostic(code="WF111", message=f"unknown "
                                         f"counter={c!r} in 'add'", span=b.span,
                                         help=_hint(c, sorted(counters)) +
                                         f" (declare it under 'counters: {{{c}: 0}}')")
    for e, span in exprs:
        for c in sorted(e.counters - counters):
            yield Diagnostic(code="WF110", message=f"expression {e.text!r} reads "
                             f"unknown counter={c!r}", span=span,
                             help=_hint(c, sorted(counters)))
        for svc in sorted(e.services - services):
            yield Diagnostic(code="WF110", message=f"expression {e.text!r} reads "
                             f"the state of unknown service={svc!r}", span=span,
                             help=_hint(svc, sorted(services)))
        for svc, literal in state_literals(e):
            known = by_name[svc].states if svc in by_name else None
            if known is not None and literal not in known:
                yield Diagnostic(code="WF122", message=f"expression {e.text!r} "
                                 f"compares {svc}.state with {literal!r}, which "
                                 f"is not a state of service {svc!r}", span=span,
                                 help=_hint(literal, known))


def _reachable(wf: Workflow) -> Iterator[Diagnostic]:
    for s in wf.services:
        seen = {s.initial}
        frontier = [s.initial]
        while frontier:
            here = frontier.pop()
            for t in s.transitions:
                if t.source == here:
                    for b in t.branches:
                        if b.to not in seen:
                            seen.add(b.to)
                            frontier.append(b.to)
        for state in s.states:
            if state not in seen:
                yield Diagnostic(code="WF108", message=f"service {s.name!r}: "
                                 f"state={state!r} is unreachable from "
                                 f"initial={s.initial!r}", span=s.span,
                                 help="add a transition into it, or remove it")


_CHECKS: tuple[Callable[[Workflow], Iterator[Diagnostic]], ...] = (
    _shape, _unknown_states, _timers, _names,
)
_STRUCTURE: tuple[Callable[[Workflow], Iterator[Diagnostic]], ...] = (
    _no_start, _events, _finals, _determinism, _reachable,
)

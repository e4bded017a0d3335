"""Shared resources and the effects steps declare on them: lowering from plain
data (files and the builder share it) and the checks that make them meaningful.

Expressions are the workflow expression language's
(:func:`saga_models.workflow._expr.parse_expr`): parsed into the same AST, never
passed to ``eval``. A name in an effect is a resource or a local that some step
of the same saga reads (``read: {seen: stock}``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._errors import Diagnostic
from ._ir import Effect, Saga
from ._span import Span


def effect_from_data(raw: Mapping[str, Any], span: Span) -> Effect:
    """An :class:`Effect` from ``{guard, read, update}`` plain data (already
    shape-checked by the schema or the builder).

    >>> effect_from_data({"guard": "stock >= 1", "update": {"stock": "stock - 1"}},
    ...                  Span()).updates
    (('stock', 'stock - 1'),)
    """
    guard = raw.get("guard")
    reads = raw.get("read") or {}
    updates = raw.get("update") or {}
    return Effect(
        guard=str(guard) if guard is not None else None,
        reads=tuple((str(k), str(v)) for k, v in reads.items()),
        updates=tuple((str(k), str(v)) for k, v in updates.items()),
        span=span,
    )


def locals_of(saga: Saga) -> tuple[str, ...]:
    """Every local name some step of ``saga`` reads into, in step order."""
    out: list[str] = []
    for step in saga.steps:
        for eff in (step.effect, step.compensation_effect):
            for local, _ in eff.reads if eff is not None else ():
                if local not in out:
                    out.append(local)
    return tuple(out)


MAX_INSTANCES = 64
"""Most instances a composition holds (each a block of the packed state)."""


def resource_diagnostics(saga: Saga) -> Iterator[Diagnostic]:
    """Problems with the resources, effects, invariants and locks of ``saga``:
    an expression outside the language (SAGA160), a name that is neither a
    resource nor a local (SAGA161), a guard on a compensation (SAGA162), a
    cached step that touches resources (SAGA164), an initial value the state
    cannot hold (SAGA165)."""
    from .workflow._expr import ExprError, parse_expr

    resources = {r.name for r in saga.resources}
    local_names = set(locals_of(saga))
    for r in saga.resources:
        # A resource value is one field of the packed state (signed, biased
        # by 128): an initial value outside it is a bound of the encoding.
        if not -128 <= r.initial <= 127:
            yield Diagnostic(
                code="SAGA165",
                message=f"resource {r.name!r}: initial={r.initial} is outside "
                "-128..127, the range a resource value has in the model",
                span=r.span, help="model the quantity in units that fit (e.g. "
                "tens of seats), or only the part of it the sagas contend for")
    for local in local_names & resources:
        yield Diagnostic(
            code="SAGA161", message=f"local {local!r} has the name of a resource",
            span=saga.span, help="rename the local in 'read:', e.g. 'seen_"
            f"{local}: {local}'")

    def names(text: str, span: Span, where: str) -> Iterator[Diagnostic]:
        try:
            expr = parse_expr(text)
        except ExprError as exc:
            yield Diagnostic(code="SAGA160", message=f"{where}: {exc}", span=span,
                             help="write an expression over resources and locals "
                             "with + - *, comparisons and and/or/not")
            return
        if expr.services:
            yield Diagnostic(
                code="SAGA160",
                message=f"{where}: {text!r} reads a service state",
                span=span, help="effects read resources and locals only")
        for name in sorted(expr.counters - resources - local_names):
            yield Diagnostic(
                code="SAGA161",
                message=f"{where}: name={name!r} is not a resource or a local",
                span=span,
                help="declare it under 'resources:' or read it into a local with "
                f"'read: {{{name}: <resource>}}'"
                + (f"; resources: {', '.join(sorted(resources))}"
                   if resources else ""))

    for step in saga.steps:
        for field, eff in (("effect", step.effect),
                           ("compensation_effect", step.compensation_effect)):
            if eff is None:
                continue
            where = f"step {step.name!r}: {field}"
            span = step.span_of(field)
            if eff.guard is not None:
                if field == "compensation_effect":
                    yield Diagnostic(
                        code="SAGA162",
                        message=f"{where} has guard={eff.guard!r}",
                        span=span,
                        help="a compensation must always be able to undo; move "
                        "the guard to the action's effect")
                yield from names(eff.guard, span, where)
            for local, res in eff.reads:
                if res not in resources:
                    yield Diagnostic(
                        code="SAGA161",
                        message=f"{where}: read {local!r} from unknown "
                        f"resource={res!r}",
                        span=span, help="declare it under 'resources:'")
            for res, text in eff.updates:
                if res not in resources:
                    yield Diagnostic(
                        code="SAGA161",
                        message=f"{where}: update of unknown resource={res!r}",
                        span=span, help="declare it under 'resources:'")
                yield from names(text, span, f"{where}.update.{res}")
    for step in saga.steps:
        if step.cache_ttl is not None and (step.effect or step.compensation_effect):
            yield Diagnostic(
                code="SAGA164",
                message=f"step {step.name!r}: cache_ttl={step.cache_ttl!r} on a "
                "step with a resource effect",
                span=step.span_of("cache_ttl"),
                help="a cached reply is another instance's earlier read of a "
                "shared resource, which the model cannot see; drop cache_ttl, "
                "or the step's effect if it does not touch shared resources")
    for inv in saga.invariants:
        yield from names(inv.expr, inv.span, f"invariant {inv.name!r}")
        try:
            used = parse_expr(inv.expr).counters
        except ExprError:
            continue
        for name in sorted(used & local_names - resources):
            yield Diagnostic(
                code="SAGA161",
                message=f"invariant {inv.name!r}: name={name!r} is a local, "
                "not a resource",
                span=inv.span, help="an invariant reads resources only")
    for lock in saga.semantic_locks:
        if lock not in resources:
            yield Diagnostic(
                code="SAGA161",
                message=f"semantic lock on unknown resource={lock!r}",
                span=saga.span, help="name a resource declared under 'resources:'")
    if not 1 <= saga.instances <= MAX_INSTANCES:
        yield Diagnostic(code="SAGA163",
                         message=f"instances={saga.instances!r} must be from 1 to "
                         f"{MAX_INSTANCES}",
                         span=saga.span, help="write e.g. 'instances: 2'; past a "
                         "few instances, use --symmetry and expect a large state "
                         "space")

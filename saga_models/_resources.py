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
    checks = raw.get("version_check") or {}
    by_value = raw.get("by_value") or {}
    risk = by_value.get("high_risk")
    return Effect(
        guard=str(guard) if guard is not None else None,
        reads=tuple((str(k), str(v)) for k, v in reads.items()),
        updates=tuple((str(k), str(v)) for k, v in updates.items()),
        version_checks=tuple((str(k), str(v)) for k, v in checks.items()),
        rereads=tuple(str(x) for x in raw.get("reread") or ()),
        high_risk=str(risk) if risk is not None else None,
        high_risk_lock=tuple(str(x) for x in by_value.get("lock") or ()),
        span=span,
    )


def slots_of(saga: Saga) -> tuple[tuple[str, int], ...]:
    """The ``(name, initial value)`` of each integer the resources of ``saga``
    hold: a counter is one (its name); a record is one per field
    (``order.total``) and its version (``order.version``, from 0).

    >>> from saga_models import SagaBuilder
    >>> slots_of(SagaBuilder("s").record("order", total=3).resource("stock")
    ...          .step("a", participant="p").build())
    (('order.total', 3), ('order.version', 0), ('stock', 0))
    """
    out: list[tuple[str, int]] = []
    for r in saga.resources:
        if r.kind == "record":
            out += [(f"{r.name}.{f}", v) for f, v in r.fields]
            out.append((f"{r.name}.version", 0))
        else:
            out.append((r.name, r.initial))
    return tuple(out)


def records_of(saga: Saga) -> frozenset[str]:
    """Names of the keyed records of ``saga`` (what ``record.field`` may name
    in an expression)."""
    return frozenset(r.name for r in saga.resources if r.kind == "record")


def instance_records(saga: Saga) -> frozenset[str]:
    """Names of the records of ``saga`` keyed by instance (``key:
    instance``): each instance has its own row.

    >>> from saga_models import SagaBuilder
    >>> sorted(instance_records(SagaBuilder("s").instance_record("order", total=1)
    ...        .record("catalog", price=2).step("a", participant="p").build()))
    ['order']
    """
    return frozenset(r.name for r in saga.resources
                     if r.kind == "record" and r.key == "instance")


def guard_text(eff: Effect, source: Mapping[str, str]) -> str | None:
    """The one condition under which ``eff`` can take effect: its guard, and
    each declared countermeasure's check (``order.version == v`` for a version
    check, ``seen == seats`` for a reread of a local read from ``seats``).
    ``source`` maps each local to the resource slot it was read from."""
    parts = [f"({eff.guard})"] if eff.guard is not None else []
    parts += [f"{rec}.version == {local}" for rec, local in eff.version_checks]
    parts += [f"{local} == {source[local]}" for local in eff.rereads
              if local in source]
    return " and ".join(parts) or None


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
    resources = {n for n, _ in slots_of(saga)}
    records = records_of(saga)
    versions = {f"{r}.version" for r in records}
    local_names = set(locals_of(saga))
    source = {loc: res for step in saga.steps
              for eff in (step.effect, step.compensation_effect) if eff is not None
              for loc, res in eff.reads}
    yield from _record_diagnostics(saga)
    for name, initial in slots_of(saga):
        # A resource value is one field of the packed state (signed, biased
        # by 128): an initial value outside it is a bound of the encoding.
        if not -128 <= initial <= 127:
            r = next(r for r in saga.resources
                     if name == r.name or name.startswith(f"{r.name}."))
            yield Diagnostic(
                code="SAGA165",
                message=f"resource {name!r}: initial={initial} is outside "
                "-128..127, the range a resource value has in the model",
                span=r.span, help="model the quantity in units that fit (e.g. "
                "tens of seats), or only the part of it the sagas contend for")
    for local in local_names & resources:
        yield Diagnostic(
            code="SAGA161", message=f"local {local!r} has the name of a resource",
            span=saga.span, help="rename the local in 'read:', e.g. 'seen_"
            f"{local}: {local}'")

    def names(text: str, span: Span, where: str, *,
              resources_only: bool = False) -> Iterator[Diagnostic]:
        # Imported only when there is an expression: a saga without any
        # does not load the workflow package (a check's start-up).
        from .workflow._expr import ExprError, parse_expr

        try:
            expr = parse_expr(text, records=records)
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
        if resources_only:
            for name in sorted(expr.counters & local_names - resources):
                yield Diagnostic(
                    code="SAGA161",
                    message=f"{where}: name={name!r} is a local, not a resource",
                    span=span, help="an invariant reads resources only")

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
                    yield _unknown_slot(saga, where, f"read {local!r} from", res,
                                        span)
            for res, text in eff.updates:
                if res in versions:
                    yield Diagnostic(
                        code="SAGA167",
                        message=f"{where}: update of {res!r}",
                        span=span, help="a record's version goes up by itself "
                        "with every write of the record; update its fields")
                elif res not in resources:
                    yield _unknown_slot(saga, where, "update of", res, span)
                yield from names(text, span, f"{where}.update.{res}")
            yield from _countermeasure_diagnostics(
                eff, field, where, span, records=records, source=source)
            if eff.high_risk is not None:
                yield from _by_value_diagnostics(eff, field, where, span,
                                                 resources | records)
                yield from names(eff.high_risk, span, f"{where}.by_value")
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
        yield from names(inv.expr, inv.span, f"invariant {inv.name!r}",
                         resources_only=True)
    for lock in saga.semantic_locks:
        if lock not in resources and lock not in records:
            yield Diagnostic(
                code="SAGA161",
                message=f"semantic lock on unknown resource={lock!r}",
                span=saga.span, help="name a resource declared under 'resources:'")
    for res in saga.pessimistic_view:
        if res not in resources and res not in records:
            yield Diagnostic(
                code="SAGA170",
                message=f"pessimistic view of unknown resource={res!r}",
                span=saga.span, help="name a resource declared under "
                "'resources:'" + (f": {', '.join(sorted(resources))}"
                                  if resources else ""))
    if not 1 <= saga.instances <= MAX_INSTANCES:
        yield Diagnostic(code="SAGA163",
                         message=f"instances={saga.instances!r} must be from 1 to "
                         f"{MAX_INSTANCES}",
                         span=saga.span, help="write e.g. 'instances: 2'; past a "
                         "few instances, use --symmetry and expect a large state "
                         "space")


def _unknown_slot(saga: Saga, where: str, what: str, name: str,
                  span: Span) -> Diagnostic:
    """An effect names a resource that is not declared (SAGA161), or a whole
    record or a field the record does not have (SAGA167)."""
    records = {r.name: r for r in saga.resources if r.kind == "record"}
    head, _, field = name.partition(".")
    if head in records:
        fields = [f for f, _ in records[head].fields] + ["version"]
        return Diagnostic(
            code="SAGA167",
            message=f"{where}: {what} {name!r}: record {head!r} has "
            + (f"no field {field!r}" if field else "fields, not a value"),
            span=span,
            help="name one field: " + ", ".join(f"{head}.{f}" for f in fields))
    return Diagnostic(code="SAGA161",
                      message=f"{where}: {what} unknown resource={name!r}",
                      span=span, help="declare it under 'resources:'")


def _record_diagnostics(saga: Saga) -> Iterator[Diagnostic]:
    """A record without fields, a counter with fields, a field named
    ``version`` (SAGA166); a key on a counter (SAGA153); a lock or a
    pessimistic view of a record keyed by instance (SAGA154)."""
    for r in saga.resources:
        if r.kind == "counter" and r.key != "shared":
            yield Diagnostic(
                code="SAGA153",
                message=f"counter {r.name!r} has key={r.key!r}",
                span=r.span, help="only a record is keyed: write "
                f"'{r.name}: {{kind: record, key: instance, fields: {{...}}}}' "
                "for one row per instance, or drop 'key:' for a counter every "
                "instance shares")
        if r.kind == "record" and not r.fields:
            yield Diagnostic(
                code="SAGA166", message=f"record {r.name!r} has no fields",
                span=r.span, help=f"write e.g. '{r.name}: {{kind: record, "
                "fields: {status: 0, total: 10}}'")
        if r.kind == "counter" and r.fields:
            yield Diagnostic(
                code="SAGA166",
                message=f"counter {r.name!r} has fields="
                f"{[f for f, _ in r.fields]!r}",
                span=r.span, help="write 'kind: record' for a keyed record, or "
                "'initial: N' for a counter")
        for f, _ in r.fields:
            if f == "version":
                yield Diagnostic(
                    code="SAGA166",
                    message=f"record {r.name!r}: field 'version' is reserved",
                    span=r.span, help="every record has a version the model "
                    "keeps; rename the field")
    mine = instance_records(saga)
    wanted = [("semantic lock on", lock) for lock in saga.semantic_locks]
    wanted += [("pessimistic view of", res) for res in saga.pessimistic_view]
    wanted += [(f"step {step.name!r}: by_value lock on", res)
               for step in saga.steps if step.effect is not None
               for res in step.effect.high_risk_lock]
    for what, res in wanted:
        if res.partition(".")[0] in mine:
            yield Diagnostic(
                code="SAGA154",
                message=f"{what} {res!r}, a record keyed by instance",
                span=saga.span, help="no other instance can see a row keyed by "
                "instance, so there is nothing to lock or to read dirty: drop "
                f"{res!r} here, or declare the record 'key: shared' if the "
                "instances share one row")


def _countermeasure_diagnostics(
    eff: Effect, field: str, where: str, span: Span, *,
    records: frozenset[str], source: Mapping[str, str],
) -> Iterator[Diagnostic]:
    """A version check must name a record and a local read from its version
    (SAGA168); a reread must name a local read from a resource (SAGA169); both
    are checks before an action takes effect, never on a compensation."""
    if (eff.version_checks or eff.rereads) and field == "compensation_effect":
        yield Diagnostic(
            code="SAGA168" if eff.version_checks else "SAGA169",
            message=f"{where} has a version check or reread",
            span=span, help="a compensation must always be able to undo; put "
            "the check on the action's effect")
    for rec, local in eff.version_checks:
        if rec not in records:
            yield Diagnostic(
                code="SAGA168",
                message=f"{where}: version_check on {rec!r}, which is not a "
                "record",
                span=span, help="declare it as '{kind: record, fields: ...}' "
                "(a counter has no version: reread it instead)")
        elif source.get(local) != f"{rec}.version":
            yield Diagnostic(
                code="SAGA168",
                message=f"{where}: version_check {rec}: {local!r}, but no step "
                f"reads {local!r} from {rec}.version",
                span=span, help=f"read the version in an earlier step: "
                f"'read: {{{local}: {rec}.version}}'")
    for local in eff.rereads:
        if local not in source:
            yield Diagnostic(
                code="SAGA169",
                message=f"{where}: reread of {local!r}, which no step reads",
                span=span, help=f"read it in an earlier step, e.g. "
                f"'read: {{{local}: <resource>}}'")


def _by_value_diagnostics(eff: Effect, field: str, where: str, span: Span,
                          known: set[str] | frozenset[str]
                          ) -> Iterator[Diagnostic]:
    """By value chooses a lock before an action takes effect: not on a
    compensation, and only on declared resources (SAGA177)."""
    if field == "compensation_effect":
        yield Diagnostic(
            code="SAGA177", message=f"{where} has by_value",
            span=span, help="a compensation must always be able to undo; put "
            "by_value on the action's effect")
    if not eff.high_risk_lock:
        yield Diagnostic(
            code="SAGA177", message=f"{where}: by_value locks nothing",
            span=span, help="write e.g. 'by_value: {high_risk: \"stock <= 1\", "
            "lock: [stock]}'")
    for res in eff.high_risk_lock:
        if res not in known:
            yield Diagnostic(
                code="SAGA177",
                message=f"{where}: by_value lock on unknown resource={res!r}",
                span=span, help="name a resource declared under 'resources:'")


def pessimistic_view_diagnostics(saga: Saga) -> Iterator[Diagnostic]:
    """A declared pessimistic view that the saga's order is not (SAGA179, a
    structure rule): a compensatable step writes one of its resources, so the
    write can be rolled back after another saga has read it. The composed
    check shows the dirty read itself (``pessimistic_view:<resource>``)."""
    from ._ir import StepKind

    for res in saga.pessimistic_view:
        for step in saga.steps:
            eff = step.effect
            if step.kind is not StepKind.COMPENSATABLE or eff is None:
                continue
            if any(r == res or r.startswith(f"{res}.") for r, _ in eff.updates):
                yield Diagnostic(
                    code="SAGA179",
                    message=f"pessimistic_view of {res!r}, but compensatable "
                    f"step {step.name!r} writes it (its write can be rolled "
                    "back after another saga read it)",
                    span=step.span_of("effect"),
                    help="move the write to a retriable step after the pivot "
                    "(run the steps that can fail first), or drop "
                    f"{res!r} from pessimistic_view")

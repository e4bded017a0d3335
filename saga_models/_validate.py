"""Validation: small pure checks over the IR, every problem reported at once.

Two tiers. *Lowering* errors (duplicate names, unknown dependencies, a cycle)
mean there is no meaningful IR: the loader raises :class:`InvalidDefinition`
(exit code 2). *Structure* rules (a compensatable step with no compensation, pivot
rules, bounded retry after the pivot) describe a saga that can run but is wrong:
they are a verdict of the ``structure`` property, with the same diagnostics, so a
bug in a definition is a verdict and not a crash. Codes are listed in
``docs/diagnostics.md``.
"""

from __future__ import annotations

import graphlib
import math
import string
from collections.abc import Callable, Iterable, Iterator

from ._errors import Diagnostic, Severity
from ._ir import RetryPolicy, Saga, Step, StepKind
from ._span import Span

IDEMPOTENCY_KEY_FIELDS = ("saga_id", "step", "attempt_kind")
"""Placeholders an ``idempotency_key`` template may use (see :class:`Step`)."""


def lowering_diagnostics(saga: Saga) -> tuple[Diagnostic, ...]:
    """Problems that make the definition meaningless (raise, exit 2)."""
    return tuple(_run(saga, _LOWERING))


def structure_diagnostics(saga: Saga) -> tuple[Diagnostic, ...]:
    """Structure-rule violations of a saga that can still be explored."""
    return tuple(_run(saga, _STRUCTURE))


def _run(
    saga: Saga, checks: Iterable[Callable[[Saga], Iterator[Diagnostic]]]
) -> Iterator[Diagnostic]:
    for check in checks:
        yield from check(saga)


def _no_steps(saga: Saga) -> Iterator[Diagnostic]:
    if not saga.steps:
        yield Diagnostic(
            code="SAGA100",
            message=f"saga {saga.name!r} has no steps",
            span=saga.span,
            help="add at least one entry under 'steps:'",
        )


def _unique_names(saga: Saga) -> Iterator[Diagnostic]:
    seen: dict[str, int] = {}
    for step in saga.steps:
        if step.name in seen:
            first = saga.steps[seen[step.name]].span
            yield Diagnostic(
                code="SAGA101",
                message=f"duplicate step name={step.name!r} (first defined at {first})",
                span=step.span_of("name"),
                help="give every step a unique name",
            )
        else:
            seen[step.name] = len(seen)


def _known_dependencies(saga: Saga) -> Iterator[Diagnostic]:
    import difflib

    names = [s.name for s in saga.steps]
    known = set(names)  # a list lookup per dependency is quadratic
    for step in saga.steps:
        for dep in step.depends_on:
            if dep not in known:
                close = difflib.get_close_matches(dep, names, n=1)
                hint = f"did you mean {close[0]!r}?" if close else (
                    f"known steps: {', '.join(names)}"
                )
                yield Diagnostic(
                    code="SAGA102",
                    message=f"step {step.name!r} depends on unknown step dep={dep!r}",
                    span=step.span_of("depends_on"),
                    help=hint,
                )
            elif dep == step.name:
                yield Diagnostic(
                    code="SAGA103",
                    message=f"step {step.name!r} depends on itself",
                    span=step.span_of("depends_on"),
                    help="remove the step's own name from 'depends_on'",
                )


def _no_cycle(saga: Saga) -> Iterator[Diagnostic]:
    # The standard library's topological sort (linear time) finds a cycle;
    # self-dependencies are left out: they are SAGA103, and a cycle through
    # one would hide a longer cycle behind it.
    preds = {s.name: [d for d in s.depends_on if d != s.name] for s in saga.steps}
    try:
        graphlib.TopologicalSorter(preds).prepare()
    except graphlib.CycleError as exc:
        # [n1, ..., nk, n1], each a dependency of the next
        names = list(exc.args[1][:-1])
    else:
        return
    first = saga.step(names[0])
    yield Diagnostic(
        code="SAGA104",
        message="dependency cycle: " + " -> ".join([*names, names[0]]),
        span=first.span_of("depends_on"),
        help="a saga is a DAG: remove one of these dependencies",
    )


def _compensation_present(saga: Saga) -> Iterator[Diagnostic]:
    for step in saga.steps:
        if step.kind is StepKind.COMPENSATABLE and not step.compensation:
            if step.read_only:
                continue  # nothing to undo: a read changes nothing
            yield Diagnostic(
                code="SAGA110",
                message=f"compensatable step {step.name!r} has no compensation",
                span=step.span,
                help="add 'compensation: <undo action>', or mark the step "
                "'kind: pivot' or 'kind: retriable' if it cannot be undone",
            )
        elif step.kind is not StepKind.COMPENSATABLE and step.compensation:
            yield Diagnostic(
                code="SAGA111",
                message=f"{step.kind.value} step {step.name!r} has a compensation "
                f"compensation={step.compensation!r} that will never run",
                span=step.span_of("compensation"),
                help="remove the compensation, or make the step compensatable",
                severity=Severity.WARNING,
            )


def _pivot_rules(saga: Saga) -> Iterator[Diagnostic]:
    pivots = [s for s in saga.steps if s.kind is StepKind.PIVOT]
    for extra in pivots[1:]:
        yield Diagnostic(
            code="SAGA112",
            message=f"second pivot {extra.name!r} (first is {pivots[0].name!r})",
            span=extra.span_of("kind"),
            help="a saga has at most one pivot: make the later ones retriable",
        )
    if pivots:
        pivot = pivots[0].name
        before = _reach(saga, pivot, forward=False)
        after = _reach(saga, pivot, forward=True)
        for step in saga.steps:
            if step.name == pivot:
                continue
            if step.name in after and step.kind is StepKind.COMPENSATABLE:
                yield Diagnostic(
                    code="SAGA113",
                    message=f"compensatable step {step.name!r} comes after the "
                    f"pivot {pivot!r}; it can fail when the saga can no longer "
                    "abort",
                    span=step.span_of("kind"),
                    help="steps after the pivot must be 'kind: retriable' with "
                    "'retry: {max_attempts: forever}'",
                )
            elif step.name not in before and step.name not in after:
                yield Diagnostic(
                    code="SAGA114",
                    message=f"step {step.name!r} runs in parallel with the pivot "
                    f"{pivot!r}: it is neither before nor after the point of no "
                    "return",
                    span=step.span_of("depends_on"),
                    help=f"make it depend on {pivot!r}, or make {pivot!r} "
                    "depend on it",
                )
            elif step.name in before and step.kind is StepKind.RETRIABLE:
                yield Diagnostic(
                    code="SAGA115",
                    message=f"retriable step {step.name!r} runs before the pivot "
                    f"{pivot!r}; it cannot be undone if the saga aborts",
                    span=step.span_of("kind"),
                    help="make it compensatable, or move it after the pivot",
                )
    elif any(s.kind is StepKind.RETRIABLE for s in saga.steps) and any(
        s.kind is StepKind.COMPENSATABLE for s in saga.steps
    ):
        for step in saga.steps:
            if step.kind is StepKind.RETRIABLE:
                yield Diagnostic(
                    code="SAGA115",
                    message=f"retriable step {step.name!r} in a saga without a "
                    "pivot; it cannot be undone if another step aborts the saga",
                    span=step.span_of("kind"),
                    help="declare the point of no return with 'kind: pivot' and "
                    "put retriable steps after it",
                )


def _retriable_unbounded(saga: Saga) -> Iterator[Diagnostic]:
    for step in saga.steps:
        if step.kind is StepKind.RETRIABLE and not step.retry.unbounded:
            yield Diagnostic(
                code="SAGA116",
                message=f"retriable step {step.name!r} has bounded retry "
                f"max_attempts={step.retry.max_attempts!r}",
                span=step.span_of("retry"),
                help="write 'retry: {max_attempts: forever}': a retriable step is "
                "retried until it succeeds",
            )


def _chains_name_steps(saga: Saga) -> Iterator[Diagnostic]:
    names = {s.name for s in saga.steps}
    for chain in saga.compensation_chains:
        for name in (chain.trigger, *chain.steps):
            if name != "*" and name not in names:
                yield Diagnostic(
                    code="SAGA105",
                    message=f"compensation chain names unknown step {name!r}",
                    span=chain.span,
                    help="use the name of a step of this saga",
                )


def _field_span(step: Step, dotted: str) -> Span:
    """The span of ``retry.max_attempts``, else of ``retry``, else of the step."""
    while True:
        for name, span in step.field_spans:
            if name == dotted:
                return span
        if "." not in dotted:
            return step.span
        dotted = dotted.rsplit(".", 1)[0]


def _finite(value: object) -> bool:
    # Comparisons, not math.isfinite: an int of 400 digits overflows a float.
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and -math.inf < value < math.inf)


def _nonneg(value: object) -> bool:
    return _finite(value) and value >= 0  # type: ignore[operator]


def _positive(value: object) -> bool:
    return _finite(value) and value > 0  # type: ignore[operator]


def _optional_positive(value: object) -> bool:
    return value is None or _positive(value)


def _attempts(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool)
                             and value >= 1)


def _name(value: object) -> bool:
    return isinstance(value, str) and bool(value)


_DURATION_HELP = "write a positive duration such as 10s, 250ms or 2m"
_ATTEMPTS_HELP = "write a whole number of attempts (1 or more), or 'forever'"

_STEP_RULES: tuple[tuple[str, Callable[[object], bool], str, str], ...] = (
    ("name", _name, "a non-empty string", "give the step a name"),
    ("participant", _name, "a non-empty string", "name the service the action "
     "is sent to"),
    ("action", _name, "a non-empty string", "name the action"),
    ("compensation", lambda v: v is None or _name(v), "a non-empty string",
     "name the undo action, or leave it out"),
    ("timeout", _optional_positive, "a positive duration", _DURATION_HELP),
    ("total_timeout", _optional_positive, "a positive duration", _DURATION_HELP),
    ("cache_ttl", _optional_positive, "a positive duration", _DURATION_HELP),
    ("idempotent", lambda v: isinstance(v, bool), "true or false",
     "write true or false"),
    ("compensation_needs_result", lambda v: isinstance(v, bool), "true or false",
     "write true or false"),
    ("read_only", lambda v: isinstance(v, bool), "true or false",
     "write true or false"),
    ("empty_rollback", lambda v: isinstance(v, bool), "true or false",
     "write true or false"),
    ("anti_suspension", lambda v: isinstance(v, bool), "true or false",
     "write true or false"),
)

_RETRY_RULES: tuple[tuple[str, Callable[[object], bool], str, str], ...] = (
    ("max_attempts", _attempts, "at least 1 (or forever)", _ATTEMPTS_HELP),
    ("initial_interval", _nonneg, "a duration of 0 or more", _DURATION_HELP),
    ("backoff", lambda v: _finite(v) and v >= 1,  # type: ignore[operator]
     "a number of at least 1", "write 1.0 for a fixed interval, 2.0 to double it "
     "after each retry"),
    ("max_interval", _nonneg, "a duration of 0 or more", _DURATION_HELP),
    ("jitter", lambda v: _finite(v) and 0 <= v <= 1,  # type: ignore[operator]
     "a fraction between 0 and 1", "write e.g. 0.1 for 10% random spread"),
)


def _bad(where: str, field: str, value: object, need: str, help: str,  # noqa: PLR0917
         span: Span, code: str = "SAGA127") -> Diagnostic:
    return Diagnostic(code=code, message=f"{where}{field}={value!r} must be {need}",
                      span=span, help=help)


def _retry_values(policy: RetryPolicy, where: str, prefix: str,
                  span_of: Callable[[str], Span]) -> Iterator[Diagnostic]:
    for field, good, need, help in _RETRY_RULES:
        value = getattr(policy, field, None)
        if not good(value):
            yield _bad(where, prefix + field, value, need, help,
                       span_of(prefix + field))
    if (_finite(policy.max_interval) and _finite(policy.initial_interval)
            and policy.max_interval < policy.initial_interval):
        yield _bad(where, prefix + "max_interval", policy.max_interval,
                   f"at least initial_interval={policy.initial_interval!r}",
                   "raise max_interval, or lower initial_interval",
                   span_of(prefix + "max_interval"))


def _values(saga: Saga) -> Iterator[Diagnostic]:
    """Types and ranges of every value, for all front ends (the file loader's
    schema catches types earlier; the builder and importers rely on this)."""
    if not _name(saga.name):
        yield _bad("", "saga", saga.name, "a non-empty string", "name the saga",
                   saga.span, "SAGA124")
    for step in saga.steps:
        where = f"step {step.name!r}: "
        for field, good, need, help in _STEP_RULES:
            value = getattr(step, field)
            if not good(value):
                code = "SAGA124" if need in ("a non-empty string",
                                             "true or false") else "SAGA127"
                yield _bad(where, field, value, need, help,
                           _field_span(step, field), code)
        for dep in step.depends_on:
            if not _name(dep):
                yield _bad(where, "depends_on", dep, "a step name",
                           "list the names of steps", _field_span(step,
                                                                  "depends_on"),
                           "SAGA124")
        yield from _retry_values(step.retry, where, "retry.",
                                 lambda f, s=step: _field_span(s, f))  # type: ignore[misc]
        if step.breaker is not None:
            b = step.breaker
            if not (isinstance(b.failure_threshold, int)
                    and b.failure_threshold >= 1):
                yield _bad(where, "breaker.failure_threshold", b.failure_threshold,
                           "a whole number of at least 1", "write e.g. 5",
                           _field_span(step, "breaker.failure_threshold"))
            if not _positive(b.recovery_timeout):
                yield _bad(where, "breaker.recovery_timeout", b.recovery_timeout,
                           "a positive duration", _DURATION_HELP,
                           _field_span(step, "breaker.recovery_timeout"))
        if step.idempotency_key is not None:
            yield from _key_template(step)
    policy = saga.compensation_policy
    yield from _retry_values(policy.as_retry(), "", "compensation_policy.",
                             lambda f: policy.span)


MAX_ATTEMPTS = 255
"""Attempts are counted in one byte of the model's packed state (``attempts``,
``comp_attempts``); ``forever`` needs no count."""
MAX_STEPS = 254
"""A step index + 1 is stored in one byte (the abort's ``trigger``)."""
MAX_CHAIN = 255
"""A position in a compensation chain is stored in one byte (``chain_pos``)."""


def _bounds(saga: Saga) -> Iterator[Diagnostic]:
    """Every bound of the state encoding (``saga_models.semantics``) as a rule
    with a fix, so none surfaces as an internal error during exploration."""
    if len(saga.steps) > MAX_STEPS:
        yield Diagnostic(
            code="SAGA141",
            message=f"saga {saga.name!r} has {len(saga.steps)} steps, over the "
            f"{MAX_STEPS} the model can index",
            span=saga.span,
            help="split the saga into smaller sagas (one per bounded context)",
        )
    for step in saga.steps:
        n = step.retry.max_attempts
        if isinstance(n, int) and not isinstance(n, bool) and n > MAX_ATTEMPTS:
            yield Diagnostic(
                code="SAGA140",
                message=f"step {step.name!r}: retry.max_attempts={n!r} is over "
                f"the {MAX_ATTEMPTS} attempts the model counts",
                span=_field_span(step, "retry.max_attempts"),
                help=f"write at most {MAX_ATTEMPTS}, or 'forever' (retry until "
                "it succeeds)",
            )
    n = saga.compensation_policy.max_attempts
    if isinstance(n, int) and not isinstance(n, bool) and n > MAX_ATTEMPTS:
        yield Diagnostic(
            code="SAGA140",
            message=f"compensation_policy.max_attempts={n!r} is over the "
            f"{MAX_ATTEMPTS} attempts the model counts",
            span=saga.compensation_policy.span,
            help=f"write at most {MAX_ATTEMPTS}, or 'retry: forever'",
        )
    for chain in saga.compensation_chains:
        if len(chain.steps) > MAX_CHAIN:
            yield Diagnostic(
                code="SAGA142",
                message=f"compensation chain of {chain.trigger!r} has "
                f"{len(chain.steps)} steps, over the {MAX_CHAIN} the model "
                "can track",
                span=chain.span,
                help="compensate fewer steps per chain (split the saga)",
            )


def _key_template(step: Step) -> Iterator[Diagnostic]:
    import difflib

    span = _field_span(step, "idempotency_key")
    key = step.idempotency_key
    if not _name(key):
        yield _bad(f"step {step.name!r}: ", "idempotency_key", key,
                   "a non-empty string", "write e.g. '{saga_id}:{step}'", span,
                   "SAGA124")
        return
    assert isinstance(key, str)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(key) if f is not None]
    except ValueError as exc:
        yield Diagnostic(code="SAGA129", message=f"step {step.name!r}: "
                         f"idempotency_key={key!r} is not a valid template: {exc}",
                         span=span, help="write '{{' for a literal brace")
        return
    for f in fields:
        if f not in IDEMPOTENCY_KEY_FIELDS:
            close = difflib.get_close_matches(f, IDEMPOTENCY_KEY_FIELDS, n=1)
            yield Diagnostic(
                code="SAGA129",
                message=f"step {step.name!r}: idempotency_key={key!r} uses unknown "
                f"placeholder {{{f}}}",
                span=span,
                help=(f"did you mean {{{close[0]}}}? " if close else "")
                + "placeholders: "
                + ", ".join(f"{{{n}}}" for n in IDEMPOTENCY_KEY_FIELDS),
            )


def _cache_only_for_reads(saga: Saga) -> Iterator[Diagnostic]:
    """A cached reply is served without calling the participant. The model
    cannot see that, so it is sound only where a call changes nothing: a second
    saga served the first saga's reply of a step with an effect never takes
    that effect, and its compensation would undo the first saga's."""
    for step in saga.steps:
        if step.cache_ttl is None or not _optional_positive(step.cache_ttl):
            continue  # absent, or a bad value already reported as SAGA127
        if step.compensation is not None:
            yield Diagnostic(
                code="SAGA130",
                message=f"step {step.name!r}: cache_ttl={step.cache_ttl!r} on a "
                f"step with compensation={step.compensation!r}; a cached reply "
                "skips the participant, and the compensation would then undo "
                "another saga's effect",
                span=_field_span(step, "cache_ttl"),
                help="remove cache_ttl (cache only idempotent reads), or make "
                "the step a read: 'read_only: true' and no compensation",
            )
        elif not step.read_only:
            yield Diagnostic(
                code="SAGA130",
                message=f"step {step.name!r}: cache_ttl={step.cache_ttl!r} on a "
                "step not declared read-only; a cached reply skips the "
                "participant, so a second saga would never take the effect",
                span=_field_span(step, "cache_ttl"),
                help="add 'read_only: true' if the action changes nothing, or "
                "remove cache_ttl",
            )


def _late_countermeasures(saga: Saga) -> Iterator[Diagnostic]:
    """Anti-suspension refuses an action whose key the participant recorded as
    compensated; when the compensation arrives before the action, only the
    empty rollback makes that record, so one without the other protects
    nothing in the case it is for."""
    for step in saga.steps:
        if step.anti_suspension is True and step.empty_rollback is not True:
            yield Diagnostic(
                code="SAGA131",
                message=f"step {step.name!r}: anti_suspension=True without "
                "empty_rollback; a compensation that arrives before its action "
                "leaves no record for anti-suspension to refuse the action by",
                span=_field_span(step, "anti_suspension"),
                help="add 'empty_rollback: true' (the participant records the "
                "key of a compensation for an action it never saw)",
            )
        if (step.anti_suspension is True or step.empty_rollback is True) and (
                step.compensation is None):
            which = "anti_suspension" if step.anti_suspension else "empty_rollback"
            yield Diagnostic(
                code="SAGA132",
                message=f"step {step.name!r}: {which}=True on a step without a "
                "compensation; these countermeasures concern a compensation "
                "and its action arriving out of order",
                span=_field_span(step, which),
                help="remove it, or give the step a compensation",
            )


def _reach(saga: Saga, start: str, *, forward: bool) -> set[str]:
    """The steps that depend on ``start`` (``forward``), directly or not, or
    those it depends on; never ``start`` itself."""
    nxt: dict[str, list[str]] = {s.name: [] for s in saga.steps}
    for step in saga.steps:
        for dep in step.depends_on:
            if forward:
                nxt.setdefault(dep, []).append(step.name)
            else:
                nxt[step.name].append(dep)
    seen: set[str] = set()
    todo = [start]
    while todo:
        for m in nxt.get(todo.pop(), ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    seen.discard(start)
    return seen


def _resources(saga: Saga) -> Iterator[Diagnostic]:
    from ._resources import resource_diagnostics

    yield from resource_diagnostics(saga)


_LOWERING = (_no_steps, _unique_names, _known_dependencies, _no_cycle,
             _chains_name_steps, _values, _bounds, _resources,
             _cache_only_for_reads, _late_countermeasures)
def _pessimistic_view(saga: Saga) -> Iterator[Diagnostic]:
    from ._resources import pessimistic_view_diagnostics

    yield from pessimistic_view_diagnostics(saga)


_STRUCTURE = (_compensation_present, _pivot_rules, _retriable_unbounded,
              _pessimistic_view)

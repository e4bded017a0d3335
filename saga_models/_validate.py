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

from collections.abc import Callable, Iterable, Iterator

import networkx as nx

from ._errors import Diagnostic, Severity
from ._ir import Saga, StepKind


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
    for step in saga.steps:
        for dep in step.depends_on:
            if dep not in names:
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
    graph = dependency_graph(saga)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    names = [u for u, _ in cycle]
    if len(names) == 1:
        return  # a self-dependency, reported as SAGA103
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
    graph = dependency_graph(saga)
    if pivots:
        pivot = pivots[0].name
        before = nx.ancestors(graph, pivot)
        after = nx.descendants(graph, pivot)
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


def dependency_graph(saga: Saga) -> nx.DiGraph:
    """The steps as a networkx DAG, edges from dependency to dependent."""
    graph = nx.DiGraph()
    for step in saga.steps:
        graph.add_node(step.name)
        for dep in step.depends_on:
            graph.add_edge(dep, step.name)
    return graph


_LOWERING = (_no_steps, _unique_names, _known_dependencies, _no_cycle,
             _chains_name_steps)
_STRUCTURE = (_compensation_present, _pivot_rules, _retriable_unbounded)

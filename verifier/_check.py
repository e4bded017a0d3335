"""The one checking API: ``check(definition, *, properties=..., backend=...)``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

from saga_models import FaultModel, Saga

from ._budget import deadline_after
from ._explicit import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_STATES,
    CompactionUnsupported,
    Progress,
    explore,
)
from ._result import CheckResult, PropertyResult
from ._saga_ts import SagaTransitionSystem
from ._ts import TransitionSystem

Compiler = Callable[[Any, FaultModel], TransitionSystem]
_COMPILERS: list[tuple[type | str, str, Compiler | str]] = [
    (Saga, "saga", SagaTransitionSystem),
]


def _explore_reduced(
    ts: TransitionSystem, *, symmetry: bool, por: bool,
    properties: Sequence[str] | None, max_states: int, max_memory: int,
    progress: Progress | None, deadline: Any = None,
) -> tuple[PropertyResult, ...]:
    """Safety properties on the reduced system (symmetry, partial-order
    reduction or both), liveness on the full one (strong fairness survives
    neither). With partial-order reduction each counterexample is recomputed
    by a bounded unreduced search, so it stays shortest."""
    from ._multi_ts import MultiSagaTransitionSystem
    from ._por import ReducedSagaTransitionSystem, explore_shortest

    reduced: TransitionSystem
    plain: TransitionSystem
    if isinstance(ts, MultiSagaTransitionSystem):
        reduced = MultiSagaTransitionSystem(ts.sagas, ts.faults,
                                            symmetry=symmetry, por=por)
        plain = MultiSagaTransitionSystem(ts.sagas, ts.faults,
                                          symmetry=symmetry)
    else:
        # One saga (K = 1): only the reduction between its branches.
        # (symmetry needs several instances: nothing to permute here).
        assert isinstance(ts, SagaTransitionSystem) and por
        reduced = ReducedSagaTransitionSystem(ts.saga, ts.faults)
        plain = ts
    wanted = [p.name for p in ts.properties
              if properties is None or p.name in properties]
    safe = {p.name for p in reduced.properties}
    budgets = {"max_states": max_states, "max_memory": max_memory,
               "progress": progress, "deadline": deadline}
    by_name = {}
    if safe & set(wanted):
        names = [n for n in wanted if n in safe]
        if por:
            found = explore_shortest(reduced, plain, properties=names, **budgets)
        else:
            found = explore(reduced, properties=names, **budgets)
        for r in found:
            by_name[r.property] = r
    rest = [n for n in wanted if n not in safe]
    if rest:
        for r in explore(ts, properties=rest, **budgets):
            by_name[r.property] = r
    return tuple(by_name[n] for n in wanted)


def _composed(ts: TransitionSystem) -> bool:
    from ._multi_ts import MultiSagaTransitionSystem

    return isinstance(ts, MultiSagaTransitionSystem)


def register_model(kind: type | str, name: str, compiler: Compiler | str) -> None:
    """Teach :func:`check` a new kind of definition (event workflows use this).

    ``kind`` and ``compiler`` may be named ``"module:attribute"`` instead: then
    neither module is imported until a definition of that kind is checked (a
    definition's class is imported by whatever made it, so a kind whose module
    is not loaded yet cannot be the one asked about). That keeps a saga's
    check from importing the other kinds (start-up time).
    """
    _COMPILERS.append((kind, name, compiler))


def _loaded_class(kind: type | str) -> type | None:
    if not isinstance(kind, str):
        return kind
    module, _, attr = kind.partition(":")
    found = sys.modules.get(module)
    return None if found is None else getattr(found, attr)


def _compiler(compiler: Compiler | str) -> Compiler:
    if not isinstance(compiler, str):
        return compiler
    module, _, attr = compiler.partition(":")
    return getattr(import_module(module), attr)  # type: ignore[no-any-return]


def compile_model(
    definition: Any, faults: FaultModel = FaultModel(), *,
    instances: int | None = None,
) -> tuple[str, TransitionSystem]:
    """The transition system of ``definition`` (a saga or a workflow).

    A saga that declares shared resources, or runs as several ``instances``
    (given here or in the definition), is composed over its resources.
    """
    from saga_models._scenario import Scenario

    if isinstance(definition, Scenario):
        if instances is not None:
            raise ValueError("--instances applies to one saga; a scenario gives "
                             "each saga its count")
        from ._multi_ts import MultiSagaTransitionSystem

        return "saga", MultiSagaTransitionSystem(definition.sagas, faults)
    if isinstance(definition, Saga):
        count = instances if instances is not None else definition.instances
        if count < 1:
            raise ValueError(f"instances={count!r} must be at least 1")
        from saga_models._resources import MAX_INSTANCES

        if count > MAX_INSTANCES:
            raise ValueError(f"instances={count!r} must be at most {MAX_INSTANCES}")
        if count > 1 or definition.resources:
            from ._multi_ts import MultiSagaTransitionSystem

            return "saga", MultiSagaTransitionSystem([definition] * count, faults)
    elif instances is not None and instances != 1:
        raise ValueError(f"--instances applies to sagas, not to a "
                         f"{type(definition).__name__}")
    for kind, name, compiler in reversed(_COMPILERS):
        cls = _loaded_class(kind)
        if cls is not None and isinstance(definition, cls):
            return name, _compiler(compiler)(definition, faults)
    raise TypeError(f"cannot check a {type(definition).__name__}")


def _load_path(path: str | Path) -> Any:
    """The definition in the file at ``path``; an imported file is checked as
    its own graph, as the CLI does."""
    from saga_models import load
    from saga_models._formats import looks_like_bpmn
    from saga_models._source import read_document
    from saga_models.importers import detect
    from saga_models.importers.graph_semantics import (
        load_bpmn,
        load_machine,
        load_seata,
        load_sw,
    )

    if looks_like_bpmn(path):
        return load_bpmn(str(path))
    doc = read_document(path)
    fmt = detect(doc.data)
    if fmt in ("asl", "seata", "sw"):
        return {"asl": load_machine, "seata": load_seata,
                "sw": load_sw}[fmt](doc)
    return load(path, scenarios=True)


def check(
    definition: Any,
    *,
    properties: Sequence[str] | None = None,
    faults: FaultModel | str = FaultModel(),
    backend: str = "explicit",
    max_states: int = DEFAULT_MAX_STATES,
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: Progress | None = None,
    source: str | None = None,
    timeout: float | None = None,
    instances: int | None = None,
    symmetry: bool = False,
    por: bool = False,
    compaction: Any = None,
    workers: int = 1,
) -> CheckResult:
    """Check every property of ``definition`` (a :class:`Saga`, a workflow, or a
    path to a file) under ``faults``; ``instances`` composes that many
    instances of a saga over its shared resources (default: the definition's
    ``instances``); ``symmetry`` explores identical instances up to
    permutation (safety properties; termination is checked unreduced);
    ``por`` adds partial-order reduction between instances and between the
    parallel steps of one saga, also for a single saga (the same,
    counterexamples recomputed shortest); each verdict's fault model says
    ``reductions=symmetry``, ``reductions=por`` or both where they ran.

    >>> from saga_models import SagaBuilder
    >>> saga = (SagaBuilder("t").step("a", participant="p", action="x",
    ...         compensation="undo").build())
    >>> check(saga).verdict.value
    'holds'

    Budgets, honoured by every backend: ``max_states`` (states stored; for z3
    also the BMC depth in frames), ``max_memory`` (bytes), ``timeout`` (seconds
    of wall clock for the whole check, or None). One that runs out leaves the
    undecided properties ``unknown``, with the budget named.

    ``compaction`` (``"hash-compact"``, ``"bitstate"`` or
    ``"bitstate=BITS"``, for ``2**BITS`` bits; explicit backend, a single
    saga) keeps a lossy
    visited set for models beyond memory: a violation it finds is real (and
    replayed through the semantics), and every other property is
    ``unknown``, with the estimated probability that a state was missed.

    ``workers`` > 1 expands states on that many threads where the compiled
    search runs (a single saga past a few thousand states); verdicts, counts
    and counterexamples are those of one.

    Raises:
        ValueError: a budget is not positive, or an unknown property or
            backend, or ``compaction`` where it cannot run.
    """
    for name, value in (("max_states", max_states), ("max_memory", max_memory),
                        ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}={value!r} must be a positive integer")
    # The clock starts before loading and compiling: they count too.
    deadline = deadline_after(timeout)
    if isinstance(definition, (str, Path)):
        source = source or str(definition)
        definition = _load_path(definition)
    if isinstance(faults, str):
        faults = FaultModel.parse(faults)
    ts: TransitionSystem
    if backend == "smt" and _is_imported_machine(definition):
        # z3 decides unconditional termination itself: no explicit search.
        from ._imported_ts import ImportedTransitionSystem

        kind, ts = "state machine", ImportedTransitionSystem(
            definition, faults, explore_unconditional=False)
    else:
        kind, ts = compile_model(definition, faults, instances=instances)
    if properties is not None:
        known = {p.name for p in ts.properties}
        unknown = [p for p in properties if p not in known]
        if unknown:
            raise ValueError(
                f"unknown properties={unknown!r}; this {kind} has {sorted(known)}"
            )
    if backend in {"smt", "auto"} and _composed(ts):
        # The z3 encoding knows one instance and no resources: answering from
        # it would ignore every isolation anomaly.
        if backend == "smt":
            raise ValueError("the smt backend checks one instance without shared "
                             "resources; use --backend explicit (or auto)")
        backend = "explicit"
    if isinstance(compaction, str):
        from ._kernel_compact import Compaction

        compaction = Compaction.parse(compaction)
    if compaction is not None and (backend != "explicit" or _composed(ts)):
        raise CompactionUnsupported(
            "hash compaction and bitstate are storage modes of the explicit "
            "search of a single saga (not --backend smt or auto, not composed "
            "instances or shared resources)")
    if por and backend == "smt":
        raise ValueError("partial-order reduction (por) is a reduction of the "
                         "explicit search; use --backend explicit or auto")
    if backend == "explicit" and (
            ((symmetry or por) and _composed(ts))
            or (por and type(ts) is SagaTransitionSystem
                and compaction is None)):
        results = _explore_reduced(ts, symmetry=symmetry, por=por,
                                   properties=properties, max_states=max_states,
                                   max_memory=max_memory, progress=progress,
                                   deadline=deadline)
    elif backend == "explicit":
        results = explore(
            ts,
            properties=properties,
            max_states=max_states,
            max_memory=max_memory,
            progress=progress,
            deadline=deadline,
            compaction=compaction,
            workers=workers,
        )
    elif backend in {"smt", "auto"}:
        from . import smt  # the only place z3 is imported

        results = smt.check_backend(
            definition, ts, properties=properties, faults=faults, backend=backend,
            max_states=max_states, max_memory=max_memory, progress=progress,
            deadline=deadline,
        )
    else:
        raise ValueError(f"unknown backend={backend!r}; use explicit, smt or auto")
    span = getattr(definition, "span", None)
    return CheckResult(
        definition=definition.name,
        source=source or (span.file if span is not None else "<memory>"),
        results=results,
        kind=kind,
    )


def _is_imported_machine(definition: object) -> bool:
    """Whether ``definition`` is an imported state machine (its module is
    imported only to ask: a saga's check does without it)."""
    from saga_models.importers.graph_semantics import ImportedMachine

    return isinstance(definition, ImportedMachine)

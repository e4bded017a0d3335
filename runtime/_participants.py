"""Binding participants' actions and compensations to user callables.

The IR names actions (``flights.reserve``); only the runtime binds them to code
(DESIGN.md). A callable takes one :class:`StepContext` and returns a JSON value
(or an awaitable of one). Sync callables run on the event loop, so they must not
block: make long calls ``async``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from saga_models import Saga

from ._errors import BindingError

ACTION = "action"
COMPENSATION = "compensation"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepContext:
    """What one call of an action or compensation receives."""

    saga_id: str
    saga_name: str
    step: str
    participant: str
    operation: str
    """The action or compensation name being called."""
    attempt_kind: str
    """``action`` or ``compensation``."""
    attempt: int
    """1-based attempt number of this kind for this step (a re-send after a
    crash repeats the number)."""
    idempotency_key: str
    """Same for every attempt of the same kind: ``saga_id:step:attempt_kind``
    unless the step gives a template. Participants deduplicate by it."""
    action_key: str = ""
    """The idempotency key of the step's action, also in a compensation's
    context: the key an empty rollback records (a compensation for an action
    the participant never saw) and anti-suspension refuses a late action by.
    The steps that declare ``empty_rollback`` / ``anti_suspension`` promise
    exactly that; the generated stateful tests check it."""
    input: Mapping[str, Any]
    """The saga's input data."""
    results: Mapping[str, Any]
    """Outputs of the steps that completed before this call, by step name."""
    result: Any = None
    """For a compensation: the action's output, or None if its reply never came."""
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the saga aborts while this call is in flight; a long action may
    check it and return early (its reply is still recorded)."""


Operation: TypeAlias = Callable[[StepContext], Any]
"""A bound action or compensation: ``fn(ctx) -> JSON`` or ``async``."""


class Participants:
    """A registry of callables, by (participant, operation name).

    >>> reg = Participants()
    >>> @reg.operation("flights", "reserve")
    ... def reserve(ctx: StepContext) -> dict[str, str]:
    ...     return {"seat": "12A"}
    >>> reg.resolve("flights", "reserve") is reserve
    True
    """

    def __init__(self) -> None:
        self._ops: dict[tuple[str, str], Operation] = {}
        self._objects: dict[str, Any] = {}

    def register(self, participant: str, name: str, fn: Operation) -> None:
        """Bind ``participant.name`` to ``fn``."""
        if not callable(fn):
            raise BindingError(
                f"participant={participant!r} operation={name!r}: {fn!r} is not "
                "callable; pass a function taking a StepContext"
            )
        self._ops[(participant, name)] = fn

    def operation(self, participant: str,
                  name: str) -> Callable[[Operation], Operation]:
        """Decorator form of :meth:`register`."""

        def deco(fn: Operation) -> Operation:
            self.register(participant, name, fn)
            return fn

        return deco

    def participant(self, name: str, obj: Any) -> None:
        """Bind every operation of participant ``name`` to ``obj``'s method of the
        same name (``obj.reserve`` for ``flights.reserve``)."""
        self._objects[name] = obj

    def resolve(self, participant: str, name: str) -> Operation | None:
        """The callable bound to ``participant.name``, or None."""
        fn = self._ops.get((participant, name))
        if fn is not None:
            return fn
        obj = self._objects.get(participant)
        if obj is None:
            return None
        found = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name,
                                                                      None)
        return found if callable(found) else None

    def bind(self, saga: Saga) -> dict[tuple[str, str], Operation]:
        """Every operation ``saga`` calls, bound; raises :class:`BindingError`
        naming every missing one at once."""
        bound: dict[tuple[str, str], Operation] = {}
        missing: list[str] = []
        for step in saga.steps:
            for name in (step.action, step.compensation):
                if name is None:
                    continue
                fn = self.resolve(step.participant, name)
                if fn is None:
                    missing.append(f"{step.participant}.{name} (step {step.name!r})")
                else:
                    bound[(step.participant, name)] = fn
        if missing:
            raise BindingError(
                f"saga {saga.name!r}: no callable bound for " + ", ".join(missing)
                + "; register them with Participants.register(participant, name, "
                "fn) or give an object per participant with a method per operation"
            )
        return bound


ParticipantsLike: TypeAlias = "Participants | Mapping[str, Any] | Any"
"""A :class:`Participants`, a mapping from participant name to an object (or a
mapping of operation name to callable), or any object with one attribute per
participant (e.g. a module)."""


def as_participants(obj: ParticipantsLike) -> Participants:
    """Normalise what a user passes into a :class:`Participants`."""
    if isinstance(obj, Participants):
        return obj
    reg = _LazyParticipants(obj)
    return reg


class _LazyParticipants(Participants):
    """Looks participants up on a mapping or object by name when binding."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self._source = source

    def resolve(self, participant: str, name: str) -> Operation | None:
        fn = super().resolve(participant, name)
        if fn is not None:
            return fn
        src = self._source
        obj = src.get(participant) if isinstance(src, Mapping) else getattr(
            src, participant, None)
        if obj is None:
            return None
        found = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        return found if callable(found) else None


def load_participants(spec: str) -> Participants:
    """Import ``module:object`` (or ``module``) and bind it as participants.

    The current directory is put on ``sys.path`` first, as ``uvicorn`` does, so
    ``examples.participants.trip`` resolves from a clone's root.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise BindingError(f"participants={spec!r}: write module:object")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BindingError(
            f"participants={spec!r}: cannot import module {module_name!r} ({exc}); "
            "check the module path and that it is importable from here"
        ) from None
    obj: Any = module
    for part in filter(None, attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BindingError(
                f"participants={spec!r}: module {module_name!r} has no {attr!r}"
            ) from None
    if callable(obj) and not isinstance(obj, Participants) and (
        inspect.isfunction(obj) or inspect.ismethod(obj)
    ):
        obj = obj()  # a factory
    return as_participants(obj)


async def invoke(fn: Operation, ctx: StepContext) -> Any:
    """Call ``fn`` and await its result if it is awaitable."""
    out = fn(ctx)
    if inspect.isawaitable(out):
        aw: Awaitable[Any] = out
        out = await aw
    return out


def error_names(exc: BaseException) -> list[str]:
    """Every class name ``exc`` is an instance of, short and qualified: what a
    retry policy's error lists are matched against."""
    return sorted({c.__name__ for c in type(exc).__mro__}
                  | {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__})


def is_fatal(retry: Any, names: Iterable[str]) -> bool:
    """Whether a step's retry policy gives up on an error with these class
    names (listed non-retryable, or not among the listed retryable ones).
    The one rule of every runtime (the engine, the Temporal workflow)."""
    got = set(names)
    return bool(got & set(retry.non_retryable_errors)) or bool(
        retry.retryable_errors and not got & set(retry.retryable_errors))

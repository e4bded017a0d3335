"""Shared lowering helpers: a path's tasks as DAG steps, diagnostics, names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .._errors import Diagnostic, Severity
from .._ir import CompensationChain, Saga
from .._span import Span
from ._graph import Par, Path


def escape(key: str) -> str:
    """A JSON-pointer segment for ``key``."""
    return key.replace("~", "~0").replace("/", "~1")


def layout(path: Path, include: Callable[[str], bool]
           ) -> list[tuple[str, tuple[str, ...]]]:
    """``(task, depends_on)`` for every included task of ``path``, in order.

    Sequence becomes a dependency on the previous task; a Parallel's branches
    depend on what came before it, and what follows depends on every branch's
    last task. Excluded tasks (no effect) are transparent.
    """
    out: list[tuple[str, tuple[str, ...]]] = []

    def walk(items: tuple[object, ...], frontier: tuple[str, ...]
             ) -> tuple[str, ...]:
        for item in items:
            if isinstance(item, Par):
                leaves: list[str] = []
                for branch in item.branches:
                    leaves.extend(walk(branch.items, frontier))
                frontier = tuple(dict.fromkeys(leaves)) or frontier
            elif isinstance(item, str) and include(item):
                out.append((item, frontier))
                frontier = (item,)
        return frontier

    walk(path.items, ())
    return out


@dataclass(slots=True)
class Diags:
    """Collects import diagnostics, once per (code, location, message)."""

    items: list[Diagnostic] = field(default_factory=list)
    _seen: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, code: str, message: str, span: Span, help: str,
            *, warning: bool = False) -> None:
        key = (code, str(span), message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(Diagnostic(
            code=code, message=message, span=span, help=help,
            severity=Severity.WARNING if warning else Severity.ERROR))


def alternative_name(base: str, path: Path, many: bool) -> str:
    """``Machine`` or ``Machine[Choice=Target,...]`` when there are several."""
    if not many or not path.choices:
        return base
    return base + "[" + ",".join(f"{c}={t}" for c, t in path.choices
                                 if t != "<loop>") + "]"


def dedupe_names(sagas: list[Saga]) -> list[Saga]:
    """Make alternative names unique (``#2``, ``#3``) where paths differ only
    in ways the name does not show."""
    seen: dict[str, int] = {}
    out: list[Saga] = []
    for saga in sagas:
        n = seen.get(saga.name, 0) + 1
        seen[saga.name] = n
        out.append(saga if n == 1 else replace(saga, name=f"{saga.name}#{n}"))
    return out


LAMBDA_ALL = frozenset({"Lambda.ServiceException", "Lambda.AWSLambdaException",
                        "Lambda.SdkClientException",
                        "Lambda.TooManyRequestsException"})


def error_label(errors: tuple[str, ...]) -> str:
    """``States.Timeout|Lambda.*``: the uncaught errors, the whole set of Lambda
    service errors shortened to ``Lambda.*``.

    >>> error_label(("States.Timeout", "Lambda.ServiceException"))
    'States.Timeout|Lambda.ServiceException'
    """
    names = list(errors)
    if set(names) >= LAMBDA_ALL:
        names = [n for n in names if n not in LAMBDA_ALL] + ["Lambda.*"]
    return "|".join(names)


def uncaught_variant(saga: Saga, step: str, errors: tuple[str, ...],
                     attempts: int | None, diagnostic: Diagnostic) -> Saga:
    """The alternative in which ``step`` raises one of ``errors`` and nothing
    catches it: every abort from ``step`` ends the execution with an empty
    compensation chain (whatever took effect stays in place), and the step is
    attempted as often as the Retry entry for those errors allows.

    The alternative over-approximates which outcome raised the error (the model's
    ``failed`` and ``unknown`` both stand for it), which adds no violation the
    uncaught error cannot cause: an unknown outcome leaves at most the step's own
    effect, which an uncaught error after a timed-out attempt leaves too.
    """
    i = saga.index(step)
    old = saga.steps[i]
    retry = replace(old.retry, max_attempts=attempts, retryable_errors=(),
                    non_retryable_errors=())
    steps = tuple(replace(s, retry=retry) if k == i else s
                  for k, s in enumerate(saga.steps))
    chains = tuple(c for c in saga.compensation_chains if c.trigger != step)
    span = next((c.span for c in saga.compensation_chains if c.trigger == step),
                old.span)
    chains += (CompensationChain(trigger=step, steps=(), span=span),)
    return replace(
        saga, name=f"{saga.name}[uncaught {error_label(errors)} at {step}]",
        steps=steps, compensation_chains=chains,
        import_diagnostics=(*saga.import_diagnostics, diagnostic))

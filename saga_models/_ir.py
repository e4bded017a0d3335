"""The frozen intermediate representation of a saga.

Every loader (YAML, JSON, the Python builder, the ASL and Seata importers) lowers
to these values, and both compilations (the runtime and the verifier) read only
these values. Durations are seconds as floats.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from ._errors import Diagnostic
from ._span import UNKNOWN_SPAN, Span


class StepKind(enum.Enum):
    """Garcia-Molina and Salem's kinds of saga step."""

    COMPENSATABLE = "compensatable"
    """Has a compensation; undone on abort."""
    PIVOT = "pivot"
    """The point of no return: once it succeeds the saga only goes forward."""
    RETRIABLE = "retriable"
    """After the pivot; retried until it succeeds, never compensated."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How an action is retried (the shape of Temporal's ``RetryPolicy``)."""

    max_attempts: int | None = 1
    """Attempts in all, the first included; ``None`` means retry until success."""
    initial_interval: float = 1.0
    """Seconds before the first retry."""
    backoff: float = 2.0
    """Multiplier applied to the interval after each retry."""
    max_interval: float = 100.0
    """Cap on the interval, in seconds."""
    jitter: float = 0.0
    """Fraction (0..1) of each interval drawn at random, to spread retries."""
    retryable_errors: tuple[str, ...] = ()
    """Error names that are retried; empty means every error."""
    non_retryable_errors: tuple[str, ...] = ()
    """Error names never retried, whatever ``retryable_errors`` says."""
    span: Span = UNKNOWN_SPAN

    @property
    def unbounded(self) -> bool:
        """True when the action is retried until it succeeds."""
        return self.max_attempts is None

    def interval(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based), without jitter.

        >>> RetryPolicy(initial_interval=1.0, backoff=2.0, max_interval=5.0).interval(4)
        5.0
        >>> RetryPolicy(max_interval=30.0).interval(100_000)
        30.0
        """
        try:
            raw = self.initial_interval * self.backoff ** max(0, retry_number - 1)
        except OverflowError:  # thousands of retries: long past the cap
            return float(self.max_interval)
        return float(min(raw, self.max_interval))


class AfterExhausted(enum.Enum):
    """What happens when a compensation keeps failing."""

    ESCALATE = "escalate"
    """Stop and persist the saga as ``STUCK`` for a person to resume."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationPolicy:
    """How failing compensations are retried."""

    max_attempts: int | None = None
    """Attempts per compensation; ``None`` means retry forever."""
    then: AfterExhausted = AfterExhausted.ESCALATE
    initial_interval: float = 1.0
    backoff: float = 2.0
    max_interval: float = 60.0
    span: Span = UNKNOWN_SPAN

    @property
    def forever(self) -> bool:
        """True when compensations are retried until they succeed."""
        return self.max_attempts is None

    def as_retry(self) -> RetryPolicy:
        """The equivalent retry policy, for the runtime's backoff schedule."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            initial_interval=self.initial_interval,
            backoff=self.backoff,
            max_interval=self.max_interval,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreaker:
    """A circuit breaker on the step's participant."""

    failure_threshold: int = 5
    """Consecutive failures that open the breaker."""
    recovery_timeout: float = 30.0
    """Seconds the breaker stays open before letting one trial call through."""
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """A shared resource many saga instances act on: a bounded integer counter
    (stock, balance, seats), or a keyed record with a version (an order row, a
    reservation; its name is its key).

    A record's fields are read and written as ``name.field``; ``name.version``
    starts at 0 and goes up by one with every action or compensation that
    writes the record (the participant's row version, which a step can check).
    """

    name: str
    initial: int = 0
    """A counter's value before any instance has run."""
    kind: str = "counter"
    """``counter`` or ``record``."""
    fields: tuple[tuple[str, int], ...] = ()
    """A record's ``(field, initial value)`` pairs."""
    key: str = "shared"
    """A record's key: ``shared`` (one row every instance reads and writes)
    or ``instance`` (one row per instance, with its own version, which no
    other instance can see: e.g. the order row an instance creates)."""
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class Effect:
    """What an action (or a compensation) does to the shared resources when it
    takes effect at its participant: the participant's contract.

    Expressions are in the workflow expression language (parsed, never
    evaluated with ``eval``); they name resources and the step's instance's
    local values (see ``reads``).
    """

    guard: str | None = None
    """A condition on the resources; when it is false the action cannot take
    effect and the step fails as a business failure (never retried)."""
    reads: tuple[tuple[str, str], ...] = ()
    """``(local, resource)``: the instance remembers the resource's value under
    the local name, for a later step to write from (the lost-update shape)."""
    updates: tuple[tuple[str, str], ...] = ()
    """``(resource, expression)``: assignments, all evaluated in the state
    before the effect."""
    version_checks: tuple[tuple[str, str], ...] = ()
    """``(record, local)``: the version file countermeasure. The action takes
    effect only if the record's version is still the one read into the local
    (``read: {v: order.version}``); otherwise it fails as a business failure."""
    rereads: tuple[str, ...] = ()
    """Locals the action rereads (the reread value countermeasure): it takes
    effect only if each still equals its resource's current value."""
    high_risk: str | None = None
    """The by value countermeasure: a condition on the resources and locals
    when the action would take effect. When it holds (a high-risk request) the
    action runs under a semantic lock on ``high_risk_lock``; otherwise without
    one (the low-risk path accepts the anomaly)."""
    high_risk_lock: tuple[str, ...] = ()
    """Resources the high-risk path locks."""
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceInvariant:
    """A declared invariant over the shared resources, e.g. ``stock >= 0``."""

    name: str
    expr: str
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One step of a saga: an action on a participant, and how to undo it."""

    name: str
    participant: str
    action: str
    compensation: str | None = None
    """Name of the undo action on the same participant; None for pivot/retriable."""
    kind: StepKind = StepKind.COMPENSATABLE
    depends_on: tuple[str, ...] = ()
    """Steps that must complete first. Lowered explicitly: loaders resolve the
    'no depends_on follows the previous step' rule before building the IR."""
    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = None
    """Per-attempt timeout in seconds. Only a step with a timeout can end an
    attempt with an unknown outcome."""
    total_timeout: float | None = None
    """Budget for all attempts together, in seconds."""
    idempotent: bool = True
    """Whether delivering the same command twice has the effect of once."""
    compensation_needs_result: bool = False
    """The compensation needs the action's reply (e.g. a reservation id), so it
    cannot run when the outcome was unknown."""
    idempotency_key: str | None = None
    """Template for the key; default ``{saga_id}:{step}:{attempt_kind}``."""
    breaker: CircuitBreaker | None = None
    cache_ttl: float | None = None
    """For read-only steps without a compensation: seconds the runtime may
    reuse a result (SAGA130 refuses it anywhere else: a cached reply skips the
    participant, which the model cannot see for a step with an effect)."""
    empty_rollback: bool = False
    """Countermeasure against late delivery (Seata TCC's "empty rollback"): the
    participant answers a compensation for a key it never saw with OK, and
    records the key as compensated."""
    anti_suspension: bool = False
    """Countermeasure against late delivery (Seata TCC's "suspension"): the
    participant refuses, with no effect, an action whose key it has recorded as
    compensated. Needs ``empty_rollback`` (which makes that record when the
    compensation arrives first)."""
    read_only: bool = False
    """The action reads and changes nothing at its participant: it has no effect
    to undo (so needs no compensation) and its reply may be cached."""
    effect: Effect | None = None
    """The action's effect on shared resources, if it touches any."""
    compensation_effect: Effect | None = None
    """The compensation's effect on shared resources (it undoes ``effect``)."""
    span: Span = UNKNOWN_SPAN
    field_spans: tuple[tuple[str, Span], ...] = ()
    """Spans of individual fields, for diagnostics that point inside the step."""

    def span_of(self, field_name: str) -> Span:
        """The span of one field, or of the whole step when it is not known."""
        for name, span in self.field_spans:
            if name == field_name:
                return span
        return self.span


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationChain:
    """An explicit, hand-wired compensation sequence (imported ASL or Seata).

    Native sagas leave chains empty and compensate in reverse topological order.
    """

    trigger: str
    """The failing step that enters this chain, or ``*`` for any."""
    steps: tuple[str, ...]
    """Steps whose compensations run, in this order, one at a time."""
    unconditional: bool = False
    """Run every listed compensation even if its step never took effect
    (ASL chains do; Seata compensates only states that ended SU or UN)."""
    span: Span = UNKNOWN_SPAN


@dataclass(frozen=True, slots=True, kw_only=True)
class Saga:
    """A whole saga definition, validated and frozen."""

    name: str
    steps: tuple[Step, ...]
    compensation_policy: CompensationPolicy = CompensationPolicy()
    compensation_chains: tuple[CompensationChain, ...] = ()
    import_diagnostics: tuple[Diagnostic, ...] = ()
    """Problems an importer found in hand-wired input (an ASL Catch that misses
    ``States.Timeout``, a rollback that ends in Succeed); reported by the
    ``structure`` property with their source locations."""
    source_format: str = "builder"
    """``yaml``, ``json``, ``builder``, ``asl``, ``seata``."""
    resources: tuple[Resource, ...] = ()
    """Shared resources that instances of this saga act on."""
    invariants: tuple[ResourceInvariant, ...] = ()
    """Declared invariants over the resources, checked in every state."""
    instances: int = 1
    """How many instances of this saga run at once over the resources."""
    semantic_locks: tuple[str, ...] = ()
    """Countermeasure: resources under a semantic lock. While an instance holds
    an uncommitted effect on one, another instance's step that reads or writes
    it fails as a business failure instead of seeing the pending value."""
    pessimistic_view: tuple[str, ...] = ()
    """Countermeasure: resources this saga's order is a pessimistic view of.
    Its writes to them are made only by steps that are never compensated (the
    pivot and retriable steps, run last), so no other instance can decide on
    a change of them that is later rolled back; the composed check verifies
    it (property ``pessimistic_view:<resource>``)."""
    span: Span = UNKNOWN_SPAN
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)
    _dependents: tuple[tuple[int, ...], ...] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _deps: tuple[tuple[int, ...], ...] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _content_hash: str | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        index = {s.name: i for i, s in enumerate(self.steps)}
        deps = tuple(
            tuple(index[d] for d in s.depends_on if d in index) for s in self.steps
        )
        dependents: list[list[int]] = [[] for _ in self.steps]
        for i, ds in enumerate(deps):
            for d in ds:
                dependents[d].append(i)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_deps", deps)
        object.__setattr__(self, "_dependents", tuple(tuple(d) for d in dependents))

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def index(self, name: str) -> int:
        """Position of the step called ``name``."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no step name={name!r} in saga {self.name!r}") from None

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        return self.steps[self.index(name)]

    def deps(self, i: int) -> tuple[int, ...]:
        """Indices of the steps step ``i`` depends on."""
        return self._deps[i]

    def dependents(self, i: int) -> tuple[int, ...]:
        """Indices of the steps that depend directly on step ``i``."""
        return self._dependents[i]

    @property
    def pivot(self) -> int | None:
        """Index of the pivot step, if there is one."""
        for i, s in enumerate(self.steps):
            if s.kind is StepKind.PIVOT:
                return i
        return None

    def chain_for(self, trigger: int | None) -> CompensationChain | None:
        """The hand-wired compensation chain entered when ``trigger`` fails."""
        if not self.compensation_chains:
            return None
        name = self.steps[trigger].name if trigger is not None else None
        fallback = None
        for chain in self.compensation_chains:
            if chain.trigger == name:
                return chain
            if chain.trigger == "*":
                fallback = chain
        return fallback

    def to_dict(self) -> dict[str, object]:
        """The definition's meaning as plain data (no spans), e.g. for export."""
        return _semantic_dict(self)

    @property
    def content_hash(self) -> str:
        """sha256 of the definition's meaning; a runtime instance is pinned to it."""
        # Conformance checks hash the same definition once per log (thousands
        # of times in a generated test): computed once per saga, kept beside
        # the other derived fields (a replace() makes a new saga, unhashed).
        digest = self._content_hash
        if digest is None:
            blob = json.dumps(self.to_dict(), sort_keys=True,
                              separators=(",", ":"))
            digest = hashlib.sha256(blob.encode()).hexdigest()
            object.__setattr__(self, "_content_hash", digest)
        return digest


def _semantic_dict(value: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in value.__dataclass_fields__:  # type: ignore[attr-defined]
        # Where a definition came from (spans, its file format) is not part of
        # its meaning: YAML, JSON and the builder hash alike.
        if name.startswith("_") or name in {"span", "field_spans",
                                            "import_diagnostics", "source_format"}:
            continue
        if ((name in _ISOLATION_FIELDS and getattr(value, name) in ((), None, 1))
                or (isinstance(value, Resource) and name == "kind"
                    and value.kind == "counter")):
            # Left out when unused, so every definition without shared
            # resources keeps the hash it had before they existed.
            continue
        out[name] = _plain(getattr(value, name))
    return out


_ISOLATION_FIELDS = frozenset({"resources", "invariants", "instances",
                               "semantic_locks", "effect", "compensation_effect",
                               "fields", "version_checks", "rereads",
                               "high_risk", "high_risk_lock",
                               "pessimistic_view"})


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _semantic_dict(value)
    return value

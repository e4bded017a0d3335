"""The one shared, pure step semantics of a saga.

Both compilations drive this module: the runtime asks :func:`enabled` which
commands it may send and feeds what it observes back through :func:`apply`; the
verifier enumerates every enabled event under a :class:`FaultModel`. Nothing else
decides what a saga does. No I/O, no clock, no randomness.

A state is a flat tuple of small ints (cheap to hash and copy, which the explicit
checker needs); :func:`view` turns it into a readable :class:`StateView`.

Layout: six header fields, then seven fields per step::

    phase, down, crashes, duplicates, trigger+1, chain_pos,
    status_0, attempts_0, deliveries_0, effect_0, comp_status_0, comp_attempts_0,
    late_0, ...

Counters are reset to 0 as soon as nothing can read them again (the attempts of
a step whose action is settled, the failed attempts of a finished compensation):
a dead-variable reduction. It changes no behaviour and no property, and keeps
a chain's state space linear instead of exponential in its length.

``effect`` is the participant's side of the world (how many times the action has
taken effect, capped at 2); the orchestrator never reads it. The runtime keeps
it at what it can observe; the verifier explores every possibility. ``late`` is
the network's side: 1 while a command of the step whose attempt timed out may
still reach the participant (a late delivery, see :attr:`EventKind.LATE`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from ._ir import Saga, StepKind

State = tuple[int, ...]
"""A saga state; see the module docstring for the layout."""

# --- header fields -----------------------------------------------------------
PHASE, DOWN, CRASHES, DUPS, TRIGGER, CHAIN_POS = range(6)
HEADER = 6
WIDTH = 7
# --- per-step field offsets --------------------------------------------------
ST, AT, DL, EF, CS, CA, LT = range(7)

MAX_FAULT_COUNT = 255
"""Crashes and duplicates are counted in one byte each of the packed state."""
EFFECT_CAP = 2
"""Effects are counted up to 2: twice is already inconsistent for any step."""


class Phase(enum.IntEnum):
    """Where the saga as a whole is. The last four are terminal outcomes."""

    RUNNING = 0
    COMPENSATING = 1
    COMPLETED = 2
    COMPENSATED = 3
    FAILED = 4
    """An abort with nothing to compensate."""
    STUCK = 5
    """A compensation (or a step after the pivot) could not finish; a person must
    resume the saga."""


TERMINAL = frozenset({Phase.COMPLETED, Phase.COMPENSATED, Phase.FAILED, Phase.STUCK})


class Status(enum.IntEnum):
    """Where one step's action is."""

    PENDING = 0
    RUNNING = 1
    """An attempt is in flight."""
    OK = 2
    FAILED = 3
    """The last attempt failed (no effect) and no retry is left."""
    UNKNOWN = 4
    """The last attempt timed out and no retry is left."""
    RETRY_FAILED = 5
    """Waiting to retry after a failed attempt."""
    RETRY_UNKNOWN = 6
    """Waiting to retry after an attempt whose outcome is unknown."""


class CompStatus(enum.IntEnum):
    """Where one step's compensation is."""

    NONE = 0
    RUNNING = 1
    DONE = 2
    RETRY = 3
    """Waiting to retry after a failed compensation attempt."""


class Outcome(enum.Enum):
    """What one attempt of an action or compensation came back with."""

    OK = "ok"
    FAILED = "failed"
    """A retryable failure; the attempt had no effect."""
    FATAL = "fatal"
    """A failure with an error the retry policy does not retry."""
    UNKNOWN = "unknown"
    """The per-attempt timeout fired: the effect may or may not have happened.
    For a compensation (whose per-attempt timeout is its step's): it may or may
    not have undone the action; see :func:`apply`."""
    EXPIRED = "expired"
    """The step's total timeout ran out on this attempt: an unknown outcome that
    also spends the step, however many attempts its retry policy has left
    (a compensatable step aborts; a pivot or retriable one ends STUCK, since
    its outcome is still not definite). Offered only for steps that declare a
    ``total_timeout``, under the ``timeout`` or the ``fail`` fault knob (retries
    of failures spend the budget too)."""


class EventKind(enum.Enum):
    """The kinds of transition."""

    DISPATCH = "dispatch"
    """The orchestrator sends an attempt of a step's action."""
    REPLY = "reply"
    """The attempt's outcome arrives (or its timeout fires)."""
    DUPLICATE = "duplicate"
    """The transport delivers the in-flight command a second time."""
    CRASH = "crash"
    """The orchestrator process dies."""
    RECOVER = "recover"
    """The orchestrator restarts from its durable log and re-sends what was in
    flight, with the same idempotency keys."""
    COMP_DISPATCH = "comp_dispatch"
    COMP_REPLY = "comp_reply"
    LATE = "late_delivery"
    """The network delivers, late, a command of the step whose attempt timed out
    without taking effect: after a retry, or after the step's compensation
    (Seata TCC's suspension). ``delta`` is 1 when it takes effect, 0 when the
    participant refuses it (``anti_suspension``: the key was compensated). The
    orchestrator never sees it; the runtime never logs it. Enabled in terminal
    states too: the network does not know the saga has ended."""


CONTROLLED = frozenset({EventKind.DISPATCH, EventKind.COMP_DISPATCH})
"""Events the orchestrator chooses; the rest come from the environment."""


class Event(NamedTuple):
    """One transition label."""

    kind: EventKind
    step: int = -1
    """Index of the step, or -1 for crash and recover."""
    outcome: Outcome | None = None
    delta: int = 0
    """How many more times the action took effect at the participant (a
    non-idempotent step delivered twice can take effect twice). Only the model
    knows it; the runtime reports 0 and lets conformance accept any value."""

    def describe(self, saga: Saga) -> str:
        """A short human rendering, e.g. ``reply charge: unknown (took effect)``."""
        name = saga.steps[self.step].name if self.step >= 0 else ""
        k = self.kind
        if k is EventKind.CRASH:
            return "orchestrator crashes"
        if k is EventKind.RECOVER:
            return "orchestrator recovers from the log, re-sends in-flight commands"
        if k is EventKind.DISPATCH:
            return f"send {name}"
        if k is EventKind.DUPLICATE:
            return f"{name}: command delivered twice"
        if k is EventKind.COMP_DISPATCH:
            return f"send compensation of {name}"
        if k is EventKind.LATE:
            return (f"{name}: an earlier command is delivered late (took effect)"
                    if self.delta else f"{name}: an earlier command is delivered "
                    "late (refused: its key was compensated)")
        assert self.outcome is not None
        if k is EventKind.COMP_REPLY:
            return f"compensation of {name}: {self.outcome.value}"
        took = {0: "no effect", 1: "took effect", 2: "took effect twice"}[self.delta]
        return f"{name}: {self.outcome.value} ({took})"

    def to_json(self, saga: Saga) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "kind": self.kind.value,
            "step": saga.steps[self.step].name if self.step >= 0 else None,
            "outcome": self.outcome.value if self.outcome else None,
            "effect_delta": self.delta,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultModel:
    """Which faults are explored (and which the runtime must survive).

    Every knob is on by default; a check that narrows it says so in its verdict.
    """

    fail: bool = True
    """Action attempts may fail (no effect)."""
    # A circuit breaker opens only on failures and timeouts, and an open one
    # fails an attempt (or a compensation) fast: so a step with a breaker may
    # fail whenever ``fail`` or ``timeout`` is on, even with ``fail`` (or
    # ``comp_fail``) off. See docs/runtime_behaviours.md.
    timeout: bool = True
    """Attempts of steps that declare a timeout may end unknown (and, with a
    total timeout, expired); with ``comp_fail`` also on, their compensations
    may time out."""
    comp_fail: bool = True
    """Compensation attempts may fail, and are retried or escalated by policy."""
    crashes: int = 1
    """How many orchestrator crashes (each followed by recovery) may happen."""
    duplicates: int = 1
    """How many commands may be delivered twice (matters for non-idempotent
    steps only; a duplicate of an idempotent command changes nothing and is
    not explored)."""
    late: bool = True
    """A command whose attempt timed out without taking effect may still be
    delivered later, before or after its compensation (matters only together
    with ``timeout``, or ``fail`` for a total timeout, for steps that declare
    one)."""

    def __post_init__(self) -> None:
        # Both counts are packed into one byte of the model's state.
        for name in ("crashes", "duplicates"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= MAX_FAULT_COUNT:
                raise ValueError(f"fault knob {name}={value!r} must be a whole "
                                 f"number from 0 to {MAX_FAULT_COUNT}")

    def describe(self) -> str:
        """The names of the knobs that are on, e.g. ``fail,timeout,crash=1``."""
        parts = [n for n in ("fail", "timeout", "comp_fail", "late")
                 if getattr(self, n)]
        if self.crashes:
            parts.append(f"crash={self.crashes}")
        if self.duplicates:
            parts.append(f"duplicate={self.duplicates}")
        return ",".join(parts) or "none"

    @classmethod
    def parse(cls, text: str) -> FaultModel:
        """Parse ``--faults``: ``all``, ``none``, or a comma list of knobs.

        >>> FaultModel.parse("fail,crash=2").describe()
        'fail,crash=2'
        """
        text = text.strip()
        if text in {"all", ""}:
            return cls()
        knobs: dict[str, object] = {
            "fail": False,
            "timeout": False,
            "comp_fail": False,
            "late": False,
            "crashes": 0,
            "duplicates": 0,
        }
        if text == "none":
            return cls(**knobs)  # type: ignore[arg-type]
        for raw in text.split(","):
            name, _, value = raw.strip().replace("-", "_").partition("=")
            if name in {"fail", "timeout", "comp_fail", "late"}:
                if value:
                    raise ValueError(f"fault knob {name!r} takes no value")
                knobs[name] = True
            elif name in {"crash", "crashes", "duplicate", "duplicates"}:
                key = "crashes" if name.startswith("crash") else "duplicates"
                try:
                    count = int(value) if value else 1
                except ValueError:
                    raise ValueError(
                        f"fault knob {name}={value!r} needs a whole number"
                    ) from None
                if count < 0:
                    raise ValueError(f"fault knob {name}={count} must be >= 0")
                knobs[key] = count
            else:
                raise ValueError(
                    f"unknown fault knob {name!r}; use fail, timeout, comp_fail, "
                    "late, crash[=N], duplicate[=N], all or none"
                )
        return cls(**knobs)  # type: ignore[arg-type]


ALL_FAULTS = FaultModel()
NO_FAULTS = FaultModel(fail=False, timeout=False, comp_fail=False, crashes=0,
                       duplicates=0, late=False)


# --- static tables derived once per saga -------------------------------------
@dataclass(frozen=True, slots=True)
class _Tables:
    n: int
    kinds: tuple[StepKind, ...]
    deps: tuple[tuple[int, ...], ...]
    dependents: tuple[tuple[int, ...], ...]
    """Every step that depends on step i, directly or through other steps: its
    compensation must come first (with X -> Y -> Z and Y needing no
    compensation, Z is still undone before X)."""
    max_attempts: tuple[int | None, ...]
    attempt_cap: tuple[int, ...]
    idempotent: tuple[bool, ...]
    has_timeout: tuple[bool, ...]
    has_total: tuple[bool, ...]
    has_fatal: tuple[bool, ...]
    has_comp: tuple[bool, ...]
    needs_result: tuple[bool, ...]
    anti_suspension: tuple[bool, ...]
    has_breaker: tuple[bool, ...]
    late_events: tuple[tuple[Event, Event], ...]
    """Per step: the late delivery that takes effect, and the refused one."""
    comp_max: int | None
    comp_cap: int
    dispatch_events: tuple[Event, ...]
    duplicate_events: tuple[Event, ...]
    comp_dispatch_events: tuple[Event, ...]
    comp_ok_events: tuple[Event, ...]
    comp_failed_events: tuple[Event, ...]
    comp_unknown_events: tuple[Event, ...]
    reply_cache: dict[tuple[int, int, int, FaultModel], tuple[Event, ...]]


_TABLES: dict[int, tuple[Saga, _Tables]] = {}


def _tables(saga: Saga) -> _Tables:
    hit = _TABLES.get(id(saga))
    if hit is not None and hit[0] is saga:
        return hit[1]
    steps = saga.steps
    n = len(steps)
    comp_max = saga.compensation_policy.max_attempts
    t = _Tables(
        n=n,
        kinds=tuple(s.kind for s in steps),
        deps=tuple(saga.deps(i) for i in range(n)),
        dependents=tuple(_descendants(saga, i) for i in range(n)),
        max_attempts=tuple(s.retry.max_attempts for s in steps),
        attempt_cap=tuple(s.retry.max_attempts or 1 for s in steps),
        idempotent=tuple(s.idempotent for s in steps),
        has_timeout=tuple(s.timeout is not None for s in steps),
        has_total=tuple(s.total_timeout is not None for s in steps),
        has_fatal=tuple(
            bool(s.retry.retryable_errors or s.retry.non_retryable_errors)
            for s in steps
        ),
        has_comp=tuple(s.compensation is not None for s in steps),
        needs_result=tuple(s.compensation_needs_result for s in steps),
        anti_suspension=tuple(s.anti_suspension for s in steps),
        # The runtime keeps one breaker per participant, declared on any of
        # its steps: it fails the calls of all of them.
        has_breaker=tuple(
            any(o.breaker is not None and o.participant == s.participant
                for o in steps)
            for s in steps
        ),
        late_events=tuple(
            (Event(EventKind.LATE, i, None, 1), Event(EventKind.LATE, i, None, 0))
            for i in range(n)
        ),
        comp_max=comp_max,
        comp_cap=comp_max or 1,
        dispatch_events=tuple(Event(EventKind.DISPATCH, i) for i in range(n)),
        duplicate_events=tuple(Event(EventKind.DUPLICATE, i) for i in range(n)),
        comp_dispatch_events=tuple(
            Event(EventKind.COMP_DISPATCH, i) for i in range(n)
        ),
        comp_ok_events=tuple(
            Event(EventKind.COMP_REPLY, i, Outcome.OK) for i in range(n)
        ),
        comp_failed_events=tuple(
            Event(EventKind.COMP_REPLY, i, Outcome.FAILED) for i in range(n)
        ),
        comp_unknown_events=tuple(
            Event(EventKind.COMP_REPLY, i, Outcome.UNKNOWN) for i in range(n)
        ),
        reply_cache={},
    )
    if len(_TABLES) > 256:
        _TABLES.clear()
    _TABLES[id(saga)] = (saga, t)
    return t


def _descendants(saga: Saga, i: int) -> tuple[int, ...]:
    seen: set[int] = set()
    stack = list(saga.dependents(i))
    while stack:
        j = stack.pop()
        if j not in seen:
            seen.add(j)
            stack.extend(saga.dependents(j))
    return tuple(sorted(seen))


def effect_steps(saga: Saga) -> tuple[int, ...]:
    """The steps whose effect the properties judge: all but ``read_only`` ones
    (a read changes nothing at its participant, whatever the model's effect
    counter says, so it is neither kept on completion nor undone on abort)."""
    return tuple(i for i, s in enumerate(saga.steps) if not s.read_only)


def compensate_after(saga: Saga, i: int) -> tuple[int, ...]:
    """The steps whose compensations must finish before step ``i``'s may start:
    every step that depends on it, directly or transitively."""
    return _tables(saga).dependents[i]


# --- the semantics ------------------------------------------------------------
def initial_state(saga: Saga) -> State:
    """The state before anything has happened."""
    return (0, 0, 0, 0, 0, 0) + (_PENDING, 0, 1, 0, _C_NONE, 0, 0) * len(saga.steps)


def is_terminal(state: State) -> bool:
    """True when the saga has reached one of its four outcomes."""
    return state[PHASE] >= Phase.COMPLETED


def phase(state: State) -> Phase:
    """The saga's phase."""
    return Phase(state[PHASE])


def needs_compensation(saga: Saga, state: State, i: int) -> bool:
    """Whether step ``i`` must be compensated on abort: its last outcome was ok
    or unknown (DESIGN.md: "A compensatable step whose last outcome is ok or
    unknown must be compensated")."""
    st = state[HEADER + WIDTH * i + ST]
    return st in (Status.OK, Status.UNKNOWN, Status.RETRY_UNKNOWN) and (
        saga.steps[i].compensation is not None
    )


# Plain-int aliases for the hot paths (enum attribute lookups cost as much as
# the work itself in the explicit checker's inner loop).
_PENDING, _RUN, _OK, _FAILED, _UNKNOWN, _RETRY_F, _RETRY_U = range(7)
_C_NONE, _C_RUN, _C_DONE, _C_RETRY = range(4)
(_P_RUNNING, _P_COMPENSATING, _P_COMPLETED, _P_COMPENSATED, _P_FAILED,
 _P_STUCK) = range(6)
_TOOK_EFFECT = (_OK, _UNKNOWN, _RETRY_U)
_RECOVER = Event(EventKind.RECOVER)
_CRASH = Event(EventKind.CRASH)


def enabled(saga: Saga, state: State, faults: FaultModel = ALL_FAULTS) -> list[Event]:
    """Every event that may happen next, under ``faults``.

    The order is deterministic (orchestrator commands first, by step index), so
    the explicit checker's shortest counterexamples are stable.
    """
    ph = state[PHASE]
    if ph >= _P_COMPLETED:
        return _late(saga, state, faults) if faults.late else []
    if state[DOWN]:
        return [_RECOVER]
    t = _tables(saga)
    events: list[Event] = []
    sts = state[HEADER + ST :: WIDTH]
    css = state[HEADER + CS :: WIDTH]
    running_actions = _RUN in sts
    if running_actions or ph == _P_RUNNING:
        deps = t.deps
        dispatch = t.dispatch_events
        for i, st in enumerate(sts):
            if st == _RUN:
                base = HEADER + WIDTH * i
                events.extend(_replies(t, state, i, base, faults))
                if (ph == _P_COMPENSATING and t.has_timeout[i]
                        and not faults.timeout):
                    # An abort cuts off an in-flight sibling that has a
                    # per-attempt timeout (runtime _cancel_sibling): an unknown
                    # outcome that is runtime behaviour, not a timeout fault.
                    events.extend(_cut_off(t, state, i, base))
                if (
                    not t.idempotent[i]
                    and state[base + DL] == 1
                    and state[DUPS] < faults.duplicates
                ):
                    events.append(t.duplicate_events[i])
            elif ph == _P_RUNNING and (
                st in (_RETRY_F, _RETRY_U)
                or (st == _PENDING and all(sts[d] == _OK for d in deps[i]))
            ):
                events.append(dispatch[i])
    if _C_RUN in css:
        for i, cs in enumerate(css):
            if cs == _C_RUN:
                if t.needs_result[i] and sts[i] != _OK:
                    # The action's reply never came, so the compensation has
                    # nothing to work from (no reservation id): it can only fail.
                    events.append(t.comp_failed_events[i])
                else:
                    events.append(t.comp_ok_events[i])
                    if faults.comp_fail:
                        events.append(t.comp_failed_events[i])
                        if faults.timeout and t.has_timeout[i]:
                            events.append(t.comp_unknown_events[i])
                    elif t.has_breaker[i] and (faults.fail or faults.timeout):
                        # An open breaker fails the compensation fast
                        # (docs/runtime_behaviours.md).
                        events.append(t.comp_failed_events[i])
    if ph == _P_COMPENSATING and not running_actions:
        if saga.compensation_chains:
            j = _next_compensation(saga, t, state, sts, css)
            if j is not None:
                events.insert(0, t.comp_dispatch_events[j])
        else:
            # Independent compensations may run at the same time (DESIGN.md):
            # every one whose dependents are all undone is ready.
            events[:0] = [
                t.comp_dispatch_events[j]
                for j in _ready_compensations(t, sts, css)
            ]
    if state[CRASHES] < faults.crashes:
        events.append(_CRASH)
    if faults.late:
        events += _late(saga, state, faults)
    return events


def _late(saga: Saga, state: State, faults: FaultModel) -> list[Event]:
    """Late deliveries that may happen now (knob ``late``): one per step whose
    late flag is set."""
    lts = state[HEADER + LT :: WIDTH]
    if 1 not in lts:
        return []
    t = _tables(saga)
    out = []
    for i, lt in enumerate(lts):
        if lt:
            # Anti-suspension: the participant recorded the key when the
            # compensation reached it (empty rollback when it came first),
            # and refuses the action.
            refused = t.anti_suspension[i] and (
                state[HEADER + WIDTH * i + CS] == _C_DONE)
            out.append(t.late_events[i][1 if refused else 0])
    return out


def _replies(
    t: _Tables, state: State, i: int, base: int, faults: FaultModel
) -> tuple[Event, ...]:
    effect = state[base + EF]
    dl = state[base + DL]
    key = (i, effect, dl, faults)
    hit = t.reply_cache.get(key)
    if hit is not None:
        return hit
    out: list[Event] = []
    fail = faults.fail or (t.has_breaker[i] and faults.timeout)
    # The total budget is spent by time, and retries of failures take time
    # too: it can expire with only ``fail`` on (docs/runtime_behaviours.md).
    expires = (faults.timeout or faults.fail) and t.has_total[i]
    if t.idempotent[i]:
        # The idempotency key makes the participant apply the action at most once
        # and answer every later attempt with the recorded result.
        out.append(Event(EventKind.REPLY, i, Outcome.OK, 0 if effect else 1))
        if effect == 0:
            if fail:
                out.append(Event(EventKind.REPLY, i, Outcome.FAILED, 0))
                if t.has_fatal[i]:
                    out.append(Event(EventKind.REPLY, i, Outcome.FATAL, 0))
            if faults.timeout and t.has_timeout[i]:
                out.append(Event(EventKind.REPLY, i, Outcome.UNKNOWN, 0))
                out.append(Event(EventKind.REPLY, i, Outcome.UNKNOWN, 1))
            if expires:
                out.append(Event(EventKind.REPLY, i, Outcome.EXPIRED, 0))
                out.append(Event(EventKind.REPLY, i, Outcome.EXPIRED, 1))
        else:
            if faults.timeout and t.has_timeout[i]:
                out.append(Event(EventKind.REPLY, i, Outcome.UNKNOWN, 0))
            if expires:
                out.append(Event(EventKind.REPLY, i, Outcome.EXPIRED, 0))
    else:
        # Not idempotent: each delivery of the command may take effect.
        for delta in range(1, dl + 1):
            out.append(Event(EventKind.REPLY, i, Outcome.OK, delta))
        if fail:
            for delta in range(dl):
                out.append(Event(EventKind.REPLY, i, Outcome.FAILED, delta))
                if t.has_fatal[i]:
                    out.append(Event(EventKind.REPLY, i, Outcome.FATAL, delta))
        if faults.timeout and t.has_timeout[i]:
            for delta in range(dl + 1):
                out.append(Event(EventKind.REPLY, i, Outcome.UNKNOWN, delta))
        if expires:
            for delta in range(dl + 1):
                out.append(Event(EventKind.REPLY, i, Outcome.EXPIRED, delta))
    result = tuple(out)
    t.reply_cache[key] = result
    return result


def _cut_off(t: _Tables, state: State, i: int, base: int) -> list[Event]:
    """The unknown replies of a sibling cut off by an abort (as a timeout's)."""
    if t.idempotent[i]:
        if state[base + EF]:
            return [Event(EventKind.REPLY, i, Outcome.UNKNOWN, 0)]
        return [Event(EventKind.REPLY, i, Outcome.UNKNOWN, d) for d in (0, 1)]
    return [Event(EventKind.REPLY, i, Outcome.UNKNOWN, d)
            for d in range(state[base + DL] + 1)]


def _ready_compensations(
    t: _Tables, sts: tuple[int, ...], css: tuple[int, ...]
) -> list[int]:
    """Every native compensation that may be sent now: its step took effect (as
    far as the orchestrator knows) and every step that depends on it, directly
    or transitively, is undone or has nothing to undo."""
    has_comp = t.has_comp
    return [
        i
        for i, cs in enumerate(css)
        if cs in (_C_NONE, _C_RETRY)
        and has_comp[i]
        and sts[i] in _TOOK_EFFECT
        and all(
            css[j] == _C_DONE or not (has_comp[j] and sts[j] in _TOOK_EFFECT)
            for j in t.dependents[i]
        )
    ]


def _next_compensation(
    saga: Saga,
    t: _Tables,
    state: State,
    sts: tuple[int, ...],
    css: tuple[int, ...],
) -> int | None:
    """The next compensation of a hand-wired chain, or None (chains run one at
    a time, in their written order)."""
    if _C_RUN in css:
        return None
    chain = _chain(saga, state)
    pos = state[CHAIN_POS]
    if chain is None or pos >= len(chain.steps):
        return None
    i = saga.index(chain.steps[pos])
    return i if css[i] in (_C_NONE, _C_RETRY) else None


def _needs_comp(state: State, base: int) -> bool:
    return state[base + ST] in (Status.OK, Status.UNKNOWN, Status.RETRY_UNKNOWN)


def _chain(saga: Saga, state: State):  # type: ignore[no-untyped-def]
    trig = state[TRIGGER] - 1
    return saga.chain_for(trig if trig >= 0 else None)


def apply(saga: Saga, state: State, event: Event, *,
          keep_attempts: bool = False) -> State:
    """The state after ``event``. ``event`` must be enabled (the runtime may
    also apply a reply it observed; an impossible event raises ``ValueError``).

    ``keep_attempts`` turns off one part of the dead-variable reduction: a step
    whose action ends failed or unknown keeps its attempt count (how many
    attempts it took, which the runtime's log records too) instead of resetting
    it to 0. Nothing reads that count again, so every enabled event and every
    property is the same either way; only more states are told apart (a
    cross-check against a model that keeps it, ``bench/sagabench.py``, needs
    them). The runtime, z3 and SPIN use the default.
    """
    t = _tables(saga)
    s = list(state)
    k = event.kind
    i = event.step
    base = HEADER + WIDTH * i
    if k is EventKind.DISPATCH:
        _require(s[base + ST] != _RUN and s[PHASE] == _P_RUNNING, event)
        s[base + ST] = _RUN
        s[base + AT] = min(s[base + AT] + 1, t.attempt_cap[i])
        s[base + DL] = 1
    elif k is EventKind.REPLY:
        _require(s[base + ST] == _RUN, event)
        _reply(t, s, i, base, event, keep=keep_attempts)
    elif k is EventKind.DUPLICATE:
        _require(s[base + ST] == _RUN, event)
        s[base + DL] = 2
        s[DUPS] += 1
    elif k is EventKind.CRASH:
        s[DOWN] = 1
        s[CRASHES] += 1
    elif k is EventKind.RECOVER:
        _require(s[DOWN] == 1, event)
        s[DOWN] = 0
        for j in range(t.n):
            b = HEADER + WIDTH * j
            if s[b + ST] == _RUN and not t.idempotent[j]:
                s[b + DL] = 2  # re-sent with the same key; both may take effect
    elif k is EventKind.LATE:
        _require(s[base + LT] == 1, event)
        s[base + EF] = min(s[base + EF] + event.delta, EFFECT_CAP)
        s[base + LT] = 0  # one late copy per step: delivered
        return tuple(s)  # the orchestrator does not see it: nothing to settle
    elif k is EventKind.COMP_DISPATCH:
        _require(s[PHASE] == _P_COMPENSATING, event)
        s[base + CS] = _C_RUN
    elif k is EventKind.COMP_REPLY:
        _require(s[base + CS] == _C_RUN, event)
        if event.outcome is Outcome.OK:
            s[base + CS] = _C_DONE
            s[base + CA] = 0  # dead from here on
            if s[base + EF] > 0:
                s[base + EF] -= 1  # a compensation undoes one application
            if saga.compensation_chains:
                s[CHAIN_POS] += 1
        else:
            # FAILED or UNKNOWN (a compensation attempt that timed out). A
            # timed-out compensation may have undone the action, but it is
            # retried exactly like a failure, under the compensation policy
            # and with the same idempotency key: DESIGN.md requires a
            # compensation to be safe when re-run, so if the timed-out attempt
            # did undo, the retry answers ok and undoes nothing more. The one
            # undo is therefore booked at the first ok reply, which gives every
            # ending but STUCK the same world; a saga that escalates to STUCK
            # after a timed-out compensation may already be undone at that
            # participant (STUCK is never reported as consistent, and resuming
            # re-sends the compensation, which then answers ok).
            s[base + CA] = min(s[base + CA] + 1, t.comp_cap)
            if t.comp_max is not None and s[base + CA] >= t.comp_max:
                s[PHASE] = _P_STUCK
                s[base + CS] = _C_RETRY
            else:
                s[base + CS] = _C_RETRY
    _settle(saga, t, s)
    return tuple(s)


def _require(ok: bool, event: Event) -> None:
    if not ok:
        raise ValueError(f"event {event!r} is not enabled in this state")


def _reply(t: _Tables, s: list[int], i: int, base: int, event: Event, *,
           keep: bool = False) -> None:
    outcome = event.outcome
    s[base + EF] = min(s[base + EF] + event.delta, EFFECT_CAP)
    timed_out = outcome in (Outcome.UNKNOWN, Outcome.EXPIRED)
    if t.idempotent[i]:
        # The key makes the participant act on it at most once: a copy still
        # in the network matters only while nothing has acted on it, and a
        # definite reply means the participant has answered the key already.
        s[base + LT] = 1 if timed_out and s[base + EF] == 0 else 0
    elif timed_out and event.delta < s[base + DL]:
        s[base + LT] = 1  # a delivery that did not act yet may still arrive
    s[base + DL] = 1
    kind = t.kinds[i]
    attempts = s[base + AT]
    bounded = t.max_attempts[i]
    expired = outcome is Outcome.EXPIRED
    # The total budget spends the step whatever the attempt count says.
    exhausted = expired or (bounded is not None and attempts >= bounded)
    if outcome is Outcome.OK:
        s[base + ST] = _OK
        s[base + AT] = 0  # dead from here on (see _forget)
        return
    unknown = outcome is Outcome.UNKNOWN or expired
    if s[PHASE] != _P_RUNNING:
        # Cancelled sibling settling during an abort: no retry.
        s[base + ST] = _UNKNOWN if unknown else _FAILED
        if not keep:
            s[base + AT] = 0
        return
    if kind is StepKind.COMPENSATABLE:
        if exhausted or outcome is Outcome.FATAL:
            s[base + ST] = _UNKNOWN if unknown else _FAILED
            if not keep:
                s[base + AT] = 0
            _abort(s, i)
        else:
            s[base + ST] = _RETRY_U if unknown else _RETRY_F
    elif kind is StepKind.PIVOT:
        # Retried until its outcome is definite; a definite failure aborts.
        if expired:
            # The budget ran out before the outcome became definite: the pivot
            # may have taken effect (so no abort) or not (so no going on).
            s[base + ST] = _UNKNOWN
            if not keep:
                s[base + AT] = 0
            s[PHASE] = _P_STUCK
        elif unknown:
            s[base + ST] = _RETRY_U
        elif exhausted or outcome is Outcome.FATAL:
            s[base + ST] = _FAILED
            if not keep:
                s[base + AT] = 0
            _abort(s, i)
        else:
            s[base + ST] = _RETRY_F
    # RETRIABLE: retried until it succeeds, or STUCK when the bound runs out
    elif exhausted or outcome is Outcome.FATAL:
        s[base + ST] = _UNKNOWN if unknown else _FAILED
        s[PHASE] = _P_STUCK
    else:
        s[base + ST] = _RETRY_U if unknown else _RETRY_F


def _abort(s: list[int], i: int) -> None:
    s[PHASE] = _P_COMPENSATING
    s[TRIGGER] = i + 1
    s[CHAIN_POS] = 0


def _settle(saga: Saga, t: _Tables, s: list[int]) -> None:
    """Derived transitions: completion, skipping chain entries, the end of an
    abort."""
    ph = s[PHASE]
    if ph == _P_RUNNING:
        if s[HEADER + ST :: WIDTH].count(_OK) == t.n:
            s[PHASE] = _P_COMPLETED
        return
    if ph != _P_COMPENSATING:
        return
    sts = s[HEADER + ST :: WIDTH]
    if _RUN in sts:
        return
    css = s[HEADER + CS :: WIDTH]
    if _C_RUN in css:
        return
    if saga.compensation_chains:
        chain = _chain(saga, tuple(s))
        steps = chain.steps if chain is not None else ()
        while s[CHAIN_POS] < len(steps):
            j = saga.index(steps[s[CHAIN_POS]])
            b = HEADER + WIDTH * j
            if chain.unconditional or s[b + ST] in _TOOK_EFFECT:
                if s[b + CS] == _C_DONE:
                    s[CHAIN_POS] += 1  # listed twice: already done
                    continue
                return
            s[CHAIN_POS] += 1
        css = s[HEADER + CS :: WIDTH]
    else:
        has_comp = t.has_comp
        for j, cs in enumerate(css):
            if cs != _C_DONE and has_comp[j] and sts[j] in _TOOK_EFFECT:
                return
    s[PHASE] = _P_COMPENSATED if _C_DONE in css else _P_FAILED


# --- a readable view ------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class StepView:
    """One step's part of a state, by name."""

    name: str
    status: Status
    attempts: int
    deliveries: int
    effect: int
    comp_status: CompStatus
    comp_attempts: int
    late: int = 0
    """1 while an earlier command may still be delivered late."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StateView:
    """A state, readable."""

    phase: Phase
    down: bool
    crashes: int
    duplicates: int
    trigger: str | None
    steps: tuple[StepView, ...]

    def to_json(self) -> dict[str, object]:
        """ITF-friendly plain data."""
        return {
            "phase": self.phase.name,
            "orchestrator_down": self.down,
            "crashes": self.crashes,
            "duplicates": self.duplicates,
            "abort_trigger": self.trigger,
            "steps": {
                s.name: {
                    "status": s.status.name,
                    "attempts": s.attempts,
                    "effect": s.effect,
                    "compensation": s.comp_status.name,
                    "compensation_attempts": s.comp_attempts,
                    "late_command_in_flight": bool(s.late),
                }
                for s in self.steps
            },
        }


def view(saga: Saga, state: State) -> StateView:
    """A readable view of ``state``."""
    trig = state[TRIGGER] - 1
    return StateView(
        phase=Phase(state[PHASE]),
        down=bool(state[DOWN]),
        crashes=state[CRASHES],
        duplicates=state[DUPS],
        trigger=saga.steps[trig].name if trig >= 0 else None,
        steps=tuple(
            StepView(
                name=step.name,
                status=Status(state[HEADER + WIDTH * i + ST]),
                attempts=state[HEADER + WIDTH * i + AT],
                deliveries=state[HEADER + WIDTH * i + DL],
                effect=state[HEADER + WIDTH * i + EF],
                comp_status=CompStatus(state[HEADER + WIDTH * i + CS]),
                comp_attempts=state[HEADER + WIDTH * i + CA],
                late=state[HEADER + WIDTH * i + LT],
            )
            for i, step in enumerate(saga.steps)
        ),
    )


def field(state: State, i: int, offset: int) -> int:
    """One per-step field of ``state`` (``offset`` is ST, AT, DL, EF, CS, CA or
    LT)."""
    return state[HEADER + WIDTH * i + offset]


def resume(saga: Saga, state: State) -> State:
    """The state a ``STUCK`` saga continues from after a person fixed the cause.

    Not an explored event (the verifier already reports that STUCK is
    reachable); the runtime's ``resume`` and conformance both go through here so
    they cannot disagree. A saga stuck in compensation goes back to
    compensating with fresh compensation attempts; one stuck on a step after
    the pivot goes back to running it with fresh attempts. Anything in flight
    when it got stuck stays in flight and is re-sent, as after a crash.
    """
    if state[PHASE] != Phase.STUCK:
        raise ValueError(f"only a STUCK saga can be resumed, not {phase(state).name}")
    t = _tables(saga)
    s = list(state)
    compensating = s[TRIGGER] > 0
    s[PHASE] = Phase.COMPENSATING if compensating else Phase.RUNNING
    for j in range(t.n):
        b = HEADER + WIDTH * j
        if compensating:
            s[b + CA] = 0
        elif s[b + ST] in (Status.FAILED, Status.UNKNOWN):
            s[b + ST] = (Status.RETRY_UNKNOWN if s[b + ST] == Status.UNKNOWN
                         else Status.RETRY_FAILED)
            s[b + AT] = 0
    _settle(saga, t, s)
    return tuple(s)

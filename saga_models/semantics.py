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
from dataclasses import dataclass, replace
from typing import NamedTuple

from . import _kernel as _k
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
    ktab: tuple[int, ...] = ()
    """The kernel's flat integer table (``_kernel`` documents the layout)."""
    max_events: int = 0
    """The size of the event buffer :func:`enabled` lends the kernel."""


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
    t = replace(t, ktab=_lower(saga, t), max_events=_k.max_events(n))
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
    return (0, 0, 0, 0, 0, 0) + (_k.PENDING, 0, 1, 0, _k.C_NONE, 0, 0) * len(saga.steps)


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


# --- the semantics: the integer kernel, interpreted ------------------------------
# The successor relation itself lives in ``_kernel`` (integer tables, integer
# event codes) so that the explicit checker can compile the very same functions
# with numba; here it runs interpreted on the tuple state, and the codes are
# turned back into :class:`Event` values.
_KIND_CODE = {
    EventKind.DISPATCH: _k.E_DISPATCH, EventKind.REPLY: _k.E_REPLY,
    EventKind.DUPLICATE: _k.E_DUPLICATE, EventKind.CRASH: _k.E_CRASH,
    EventKind.RECOVER: _k.E_RECOVER, EventKind.COMP_DISPATCH: _k.E_COMP_DISPATCH,
    EventKind.COMP_REPLY: _k.E_COMP_REPLY, EventKind.LATE: _k.E_LATE,
}
_OUTCOME_CODE = {
    None: _k.O_NONE, Outcome.OK: _k.O_OK, Outcome.FAILED: _k.O_FAILED,
    Outcome.FATAL: _k.O_FATAL, Outcome.UNKNOWN: _k.O_UNKNOWN,
    Outcome.EXPIRED: _k.O_EXPIRED,
}
_CODE_KIND = {v: k for k, v in _KIND_CODE.items()}
_CODE_OUTCOME = {v: k for k, v in _OUTCOME_CODE.items()}


def encode_event(event: Event) -> int:
    """The kernel's int code of ``event``."""
    if not 0 <= event.delta <= 3:
        raise ValueError(f"event {event!r} has an impossible effect delta")
    return _k.encode(_KIND_CODE[event.kind], event.step,
                     _OUTCOME_CODE[event.outcome], event.delta)


def decode_event(code: int) -> Event:
    """The :class:`Event` of a kernel code."""
    hit = _DECODED.get(code)
    if hit is None:
        hit = Event(_CODE_KIND[code & 15], (code >> 10) - 1,
                    _CODE_OUTCOME[(code >> 4) & 15], (code >> 8) & 3)
        _DECODED[code] = hit
    return hit


_DECODED: dict[int, Event] = {}


def fault_vector(faults: FaultModel) -> tuple[int, ...]:
    """``faults`` as the kernel reads it (indices ``_kernel.F_*``)."""
    return (int(faults.fail), int(faults.timeout), int(faults.comp_fail),
            faults.crashes, faults.duplicates, int(faults.late))


def lower(saga: Saga) -> tuple[int, ...]:
    """The kernel's flat integer table of ``saga`` (layout: ``_kernel``)."""
    return _tables(saga).ktab


def _lower(saga: Saga, t: _Tables) -> tuple[int, ...]:
    n = t.n
    kind_code = {StepKind.COMPENSATABLE: _k.SK_COMPENSATABLE,
                 StepKind.PIVOT: _k.SK_PIVOT, StepKind.RETRIABLE: _k.SK_RETRIABLE}
    steps: list[int] = []
    for i in range(n):
        row = [0] * _k.NC
        row[_k.K_KIND] = kind_code[t.kinds[i]]
        bound = t.max_attempts[i]
        row[_k.K_MAX] = -1 if bound is None else bound
        row[_k.K_CAP] = t.attempt_cap[i]
        row[_k.K_IDEM] = int(t.idempotent[i])
        row[_k.K_TIMEOUT] = int(t.has_timeout[i])
        row[_k.K_TOTAL] = int(t.has_total[i])
        row[_k.K_FATAL] = int(t.has_fatal[i])
        row[_k.K_COMP] = int(t.has_comp[i])
        row[_k.K_NEEDS_RESULT] = int(t.needs_result[i])
        row[_k.K_ANTI] = int(t.anti_suspension[i])
        row[_k.K_BREAKER] = int(t.has_breaker[i])
        steps += row

    def csr(rows: list[tuple[int, ...]]) -> tuple[list[int], list[int]]:
        ptr: list[int] = [0]
        idx: list[int] = []
        for r in rows:
            idx += r
            ptr.append(len(idx))
        return ptr, idx

    dep_ptr, dep_idx = csr(list(t.deps))
    desc_ptr, desc_idx = csr(list(t.dependents))
    chains: list[tuple[int, ...]] = []
    valid: list[int] = []
    uncond: list[int] = []
    for trig in range(-1, n):
        chain = saga.chain_for(trig if trig >= 0 else None)
        chains.append(tuple(saga.index(s) for s in chain.steps) if chain else ())
        valid.append(int(chain is not None))
        uncond.append(int(chain is not None and chain.unconditional))
    ch_ptr, ch_idx = csr(chains)
    parts = [steps, dep_ptr, dep_idx, desc_ptr, desc_idx, ch_ptr, ch_idx, valid,
             uncond]
    head = [n, -1 if t.comp_max is None else t.comp_max, t.comp_cap,
            int(bool(saga.compensation_chains))]
    offsets, at = [], _k.G
    for p in parts:
        offsets.append(at)
        at += len(p)
    return tuple(head + offsets + [x for p in parts for x in p])


def enabled(saga: Saga, state: State, faults: FaultModel = ALL_FAULTS) -> list[Event]:
    """Every event that may happen next, under ``faults``.

    The order is deterministic (orchestrator commands first, by step index), so
    the explicit checker's shortest counterexamples are stable.
    """
    t = _tables(saga)
    fm = _FAULTS.get(faults)
    if fm is None:
        fm = _FAULTS[faults] = fault_vector(faults)
    # A fresh buffer per call: the runtime may call this from several threads.
    buf = [0] * t.max_events
    count = _k.enabled_codes(state, t.ktab, fm, buf)
    decoded = _DECODED
    out = []
    for x in range(count):
        e = decoded.get(buf[x])
        out.append(e if e is not None else decode_event(buf[x]))
    return out


_FAULTS: dict[FaultModel, tuple[int, ...]] = {}


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
    if not -1 <= event.step < t.n or (event.step < 0 and event.kind not in (
            EventKind.CRASH, EventKind.RECOVER)):
        raise ValueError(f"event {event!r} names no step of saga {saga.name!r}")
    s = list(state)
    if _k.step_into(s, t.ktab, encode_event(event)):
        raise ValueError(f"event {event!r} is not enabled in this state")
    if keep_attempts and event.kind is EventKind.REPLY \
            and event.outcome is not Outcome.OK:
        # The kernel's reply only ever zeroes the attempt count (when the
        # step's action is over): keep the count it had instead.
        at = HEADER + WIDTH * event.step + AT
        s[at] = state[at]
    return tuple(s)


def _settle(saga: Saga, t: _Tables, s: list[int]) -> None:
    _k.settle(s, t.ktab)


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

"""A native saga, under a fault model, as a Promela model for SPIN.

The export is a guarded-command table with one command per event label of
:func:`saga_models.semantics.enabled`: the guard is the condition under which
``enabled`` lists the event, the body is :func:`saga_models.semantics.apply`
(with its dead-variable resets and ``_settle``). Every command is one
``d_step`` of the single process's loop, so the process's program counter never
changes and SPIN's stored states are exactly sagaproof's states (the same
variables, the same layout as the flat tuple). Guards and bodies are generated
from the same static tables the semantics reads (step kinds, dependencies,
retry bounds, idempotency, timeouts, the compensation policy) and from the
fault model; the parity suite (``tests/parity/test_spin.py``) is the proof that
the two agree, state for state.

Safety properties are assertions at the end of every ``d_step`` (and, for the
ordering of compensations, at the start of the compensation command, over the
source state, as the checker's transition check does). Each assertion begins
with a hidden tag variable named after its property, so pan's messages say
which property failed. A deadlock (a non-terminal state where nothing is
enabled) fires a ``timeout`` command that asserts ``deadlock``. docs/spin.md
says which properties are compared and why liveness is not.

To add an event kind, add a generator to ``_GENERATORS``: it receives the
context and returns the commands of that kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .._errors import Diagnostic
from .._ir import Saga, StepKind
from ..semantics import (
    ALL_FAULTS,
    EFFECT_CAP,
    HEADER,
    WIDTH,
    CompStatus,
    EventKind,
    FaultModel,
    Outcome,
    Phase,
    Status,
    compensate_after,
    effect_steps,
)
from ._asl import ExportError

MAX_BOUND = 200
"""Crash and duplicate bounds are stored in a Promela ``byte``."""

_KNOWN_KNOBS = frozenset({"fail", "timeout", "comp_fail", "crashes", "duplicates",
                          "late"})
"""The fault knobs the command table encodes."""

LAYOUT = (6, 7)
"""The state layout the variables mirror: ``(semantics.HEADER, semantics.WIDTH)``."""

TAGS = ("compensation_completeness", "eventual_consistency", "deadlock")
"""The hidden tag variables; each assertion names its property with one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One guarded command: one event label of the semantics."""

    name: str
    """The event, e.g. ``reply s0 unknown +1``."""
    guard: str
    """Promela boolean expression: when ``enabled`` lists the event."""
    body: tuple[str, ...]
    """Promela statements: what ``apply`` does, before settling."""
    pre: tuple[str, ...] = ()
    """Assertions over the source state (transition properties)."""
    settle: bool = True
    """Whether ``apply`` settles after the event (a late delivery, which the
    orchestrator never sees, does not)."""


@dataclass(frozen=True, slots=True)
class _Ctx:
    saga: Saga
    faults: FaultModel

    @property
    def n(self) -> int:
        return len(self.saga.steps)

    def has_breaker(self, i: int) -> bool:
        """As ``semantics._tables``: one breaker per participant, declared on
        any of its steps, fails the calls of all of them."""
        p = self.saga.steps[i].participant
        return any(o.breaker is not None and o.participant == p
                   for o in self.saga.steps)

    def fail(self, i: int) -> bool:
        """Whether attempts of step ``i`` may fail: the knob, or an open breaker
        (timeouts trip it too)."""
        return self.faults.fail or (self.has_breaker(i) and self.faults.timeout)


# --- small expression helpers ----------------------------------------------------
def _any(parts: list[str], empty: str = "false") -> str:
    return "(" + " || ".join(parts) + ")" if parts else empty


def _all(parts: list[str], empty: str = "true") -> str:
    return "(" + " && ".join(parts) + ")" if parts else empty


def _took(i: int) -> str:
    """Step ``i`` took effect as far as the orchestrator knows."""
    return (f"(st[{i}] == S_OK || st[{i}] == S_UNKNOWN || "
            f"st[{i}] == S_RETRY_UNKNOWN)")


def _running_actions(ctx: _Ctx) -> str:
    return _any([f"st[{j}] == S_RUNNING" for j in range(ctx.n)])


LIVE = "phase < P_COMPLETED && !down"


# --- the commands, one generator per event kind ----------------------------------
def _dispatch(ctx: _Ctx) -> Iterator[Command]:
    saga = ctx.saga
    for i, step in enumerate(saga.steps):
        deps = _all([f"st[{d}] == S_OK" for d in saga.deps(i)])
        cap = step.retry.max_attempts or 1
        yield Command(
            name=f"send {step.name}",
            guard=(f"{LIVE} && phase == P_RUNNING && (st[{i}] == S_RETRY_FAILED"
                   f" || st[{i}] == S_RETRY_UNKNOWN || (st[{i}] == S_PENDING"
                   f" && {deps}))"),
            body=(f"st[{i}] = S_RUNNING",
                  f"at[{i}] = (at[{i}] < {cap} -> at[{i}] + 1 : {cap})",
                  f"dl[{i}] = 1"),
        )


def _reply_labels(ctx: _Ctx, i: int) -> Iterator[tuple[Outcome, int, str]]:
    """(outcome, effect delta, extra guard) for each reply label of step ``i``,
    as ``semantics._replies`` lists them."""
    f = ctx.faults
    step = ctx.saga.steps[i]
    fatal = bool(step.retry.retryable_errors or step.retry.non_retryable_errors)
    fail = ctx.fail(i)
    timeout = f.timeout and step.timeout is not None
    # Retries of failures spend the total budget too: it may expire with only
    # ``fail`` on (``semantics._replies``).
    total = (f.timeout or f.fail) and step.total_timeout is not None
    # An abort cuts off an in-flight sibling with a per-attempt timeout
    # (``semantics._cut_off``): its unknown replies, offered during the abort
    # when the timeout knob does not offer them anyway.
    cut_off = not f.timeout and step.timeout is not None
    if step.idempotent:
        # Applied at most once: an ok reply adds an effect only if none yet.
        yield Outcome.OK, 1, f"ef[{i}] == 0"
        yield Outcome.OK, 0, f"ef[{i}] != 0"
        none = f"ef[{i}] == 0"
        if fail:
            yield Outcome.FAILED, 0, none
            if fatal:
                yield Outcome.FATAL, 0, none
        for outcome, on in ((Outcome.UNKNOWN, timeout), (Outcome.EXPIRED, total)):
            if on:
                yield outcome, 0, "true"
                yield outcome, 1, none
        if cut_off:
            yield Outcome.UNKNOWN, 0, _CUT_OFF
            yield Outcome.UNKNOWN, 1, f"{_CUT_OFF} && {none}"
        return
    # Not idempotent: each of the dl[i] deliveries may take effect.
    twice = f"dl[{i}] == 2"
    yield Outcome.OK, 1, "true"
    yield Outcome.OK, 2, twice
    if fail:
        for outcome in (Outcome.FAILED, Outcome.FATAL) if fatal else (Outcome.FAILED,):
            yield outcome, 0, "true"
            yield outcome, 1, twice
    for outcome, on in ((Outcome.UNKNOWN, timeout), (Outcome.EXPIRED, total)):
        if on:
            yield outcome, 0, "true"
            yield outcome, 1, "true"
            yield outcome, 2, twice
    if cut_off:
        yield Outcome.UNKNOWN, 0, _CUT_OFF
        yield Outcome.UNKNOWN, 1, _CUT_OFF
        yield Outcome.UNKNOWN, 2, f"{_CUT_OFF} && {twice}"


_CUT_OFF = "phase == P_COMPENSATING"


def _timed_out_replies(ctx: _Ctx, i: int) -> bool:
    """Whether step ``i`` has a reply that can leave a late copy behind."""
    return any(o in (Outcome.UNKNOWN, Outcome.EXPIRED)
               for o, _, _ in _reply_labels(ctx, i))


def _if(cond: str | bool, then: list[str], other: list[str]) -> list[str]:
    """A Promela ``if`` over ``cond``, folded when ``cond`` is static."""
    if cond is True:
        return then
    if cond is False:
        return other
    return [f"if :: ({cond}) -> " + "; ".join(then or ["skip"])
            + " :: else -> " + "; ".join(other or ["skip"]) + " fi"]


def _reply_effect(ctx: _Ctx, i: int, outcome: Outcome) -> list[str]:
    """``semantics._reply`` for one outcome, with its static parts folded."""
    step = ctx.saga.steps[i]
    if outcome is Outcome.OK:
        return [f"st[{i}] = S_OK", f"at[{i}] = 0"]
    expired = outcome is Outcome.EXPIRED
    unknown = outcome is Outcome.UNKNOWN or expired
    bound = step.retry.max_attempts
    exhausted: str | bool = (True if expired else
                             False if bound is None else f"at[{i}] >= {bound}")
    spent: str | bool = True if outcome is Outcome.FATAL else exhausted
    gave_up = "S_UNKNOWN" if unknown else "S_FAILED"
    retry = "S_RETRY_UNKNOWN" if unknown else "S_RETRY_FAILED"
    abort = ["phase = P_COMPENSATING", f"trigger = {i + 1}", "chain_pos = 0"]
    if step.kind is StepKind.COMPENSATABLE:
        running = _if(spent, [f"st[{i}] = {gave_up}", f"at[{i}] = 0", *abort],
                      [f"st[{i}] = {retry}"])
    elif step.kind is StepKind.PIVOT:
        if expired:
            running = [f"st[{i}] = S_UNKNOWN", f"at[{i}] = 0", "phase = P_STUCK"]
        elif unknown:
            running = [f"st[{i}] = S_RETRY_UNKNOWN"]
        else:
            running = _if(spent, [f"st[{i}] = S_FAILED", f"at[{i}] = 0", *abort],
                          [f"st[{i}] = S_RETRY_FAILED"])
    else:
        running = _if(spent, [f"st[{i}] = {gave_up}", "phase = P_STUCK"],
                      [f"st[{i}] = {retry}"])
    # A cancelled sibling settling during an abort is not retried.
    return _if("phase != P_RUNNING", [f"st[{i}] = {gave_up}", f"at[{i}] = 0"],
               running)


def _late_flag(ctx: _Ctx, i: int, outcome: Outcome, delta: int) -> list[str]:
    """``semantics._reply``'s late flag, after the effect, before ``dl`` resets.

    Set whatever the ``late`` knob says, as the semantics does (the knob only
    decides whether the late delivery is offered)."""
    timed_out = outcome in (Outcome.UNKNOWN, Outcome.EXPIRED)
    if ctx.saga.steps[i].idempotent:
        # The key: a copy matters only while nothing has acted on it.
        # (After an effect of 1, ef is not 0: folded.)
        if timed_out and delta == 0:
            return [f"lt[{i}] = (ef[{i}] == 0 -> 1 : 0)"]
        return [f"lt[{i}] = 0"]
    if not timed_out:
        return []
    # A delivery that did not act (delta < dl) may still arrive.
    if delta == 0:
        return [f"lt[{i}] = 1"]
    if delta == 1:
        return [f"if :: dl[{i}] == 2 -> lt[{i}] = 1 :: else -> skip fi"]
    return []


def _reply(ctx: _Ctx) -> Iterator[Command]:
    for i, step in enumerate(ctx.saga.steps):
        for outcome, delta, extra in _reply_labels(ctx, i):
            body = []
            if delta:
                body.append(f"ef[{i}] = (ef[{i}] + {delta} > {EFFECT_CAP} -> "
                            f"{EFFECT_CAP} : ef[{i}] + {delta})")
            body.extend(_late_flag(ctx, i, outcome, delta))
            body.append(f"dl[{i}] = 1")
            body.extend(_reply_effect(ctx, i, outcome))
            yield Command(
                name=f"reply {step.name} {outcome.value} +{delta}",
                guard=f"{LIVE} && st[{i}] == S_RUNNING && ({extra})",
                body=tuple(body),
            )


def _duplicate(ctx: _Ctx) -> Iterator[Command]:
    if not ctx.faults.duplicates:
        return
    for i, step in enumerate(ctx.saga.steps):
        if step.idempotent:
            continue  # a duplicate of an idempotent command changes nothing
        yield Command(
            name=f"duplicate {step.name}",
            guard=(f"{LIVE} && st[{i}] == S_RUNNING && dl[{i}] == 1 && "
                   f"dups < {ctx.faults.duplicates}"),
            body=(f"dl[{i}] = 2", "dups++"),
        )


def _crash(ctx: _Ctx) -> Iterator[Command]:
    if not ctx.faults.crashes:
        return
    yield Command(name="crash",
                  guard=f"{LIVE} && crashes < {ctx.faults.crashes}",
                  body=("down = 1", "crashes++"))


def _recover(ctx: _Ctx) -> Iterator[Command]:
    if not ctx.faults.crashes:
        return
    # Re-sent with the same key: a non-idempotent step may take effect twice.
    body = ["down = 0"] + [
        _if(f"st[{j}] == S_RUNNING", [f"dl[{j}] = 2"], [])[0]
        for j, step in enumerate(ctx.saga.steps) if not step.idempotent
    ]
    yield Command(name="recover", guard="phase < P_COMPLETED && down",
                  body=tuple(body))


def _undone_or_nothing(ctx: _Ctx, j: int) -> str:
    if ctx.saga.steps[j].compensation is None:
        return "true"
    return f"(cs[{j}] == C_DONE || !{_took(j)})"


def _comp_dispatch(ctx: _Ctx) -> Iterator[Command]:
    saga = ctx.saga
    for i, step in enumerate(saga.steps):
        if step.compensation is None:
            continue
        after = _all([_undone_or_nothing(ctx, j) for j in compensate_after(saga, i)])
        yield Command(
            name=f"send compensation of {step.name}",
            guard=(f"{LIVE} && phase == P_COMPENSATING && !{_running_actions(ctx)}"
                   f" && (cs[{i}] == C_NONE || cs[{i}] == C_RETRY) && {_took(i)}"
                   f" && {after}"),
            # The checker's transition check, over the source state.
            pre=(f"assert(compensation_completeness == 0 && {after})",),
            body=(f"cs[{i}] = C_RUNNING",),
        )


def _comp_reply(ctx: _Ctx) -> Iterator[Command]:
    f = ctx.faults
    policy = ctx.saga.compensation_policy
    cap = policy.max_attempts or 1
    for i, step in enumerate(ctx.saga.steps):
        if step.compensation is None:
            continue
        # Without the action's reply the compensation can only fail.
        blind = f"st[{i}] != S_OK" if step.compensation_needs_result else "false"
        sighted = f"st[{i}] == S_OK" if step.compensation_needs_result else "true"
        running = f"{LIVE} && cs[{i}] == C_RUNNING"
        failed = [f"ca[{i}] = (ca[{i}] < {cap} -> ca[{i}] + 1 : {cap})",
                  f"cs[{i}] = C_RETRY"]
        if policy.max_attempts is not None:
            failed.append(f"if :: ca[{i}] >= {policy.max_attempts} -> "
                          "phase = P_STUCK :: else -> skip fi")
        yield Command(
            name=f"compensation of {step.name} ok",
            guard=f"{running} && {sighted}",
            body=(f"cs[{i}] = C_DONE", f"ca[{i}] = 0",
                  f"if :: ef[{i}] > 0 -> ef[{i}]-- :: else -> skip fi"),
        )
        # An open breaker fails a compensation fast, even with comp_fail off.
        breaker = ctx.has_breaker(i) and (f.fail or f.timeout)
        fail_when = "true" if f.comp_fail or breaker else blind
        if fail_when != "false":
            yield Command(name=f"compensation of {step.name} failed",
                          guard=f"{running} && {fail_when}", body=tuple(failed))
        if f.comp_fail and f.timeout and step.timeout is not None:
            yield Command(name=f"compensation of {step.name} unknown",
                          guard=f"{running} && {sighted}", body=tuple(failed))


def _late(ctx: _Ctx) -> Iterator[Command]:
    """``semantics._late``: a late copy of a timed-out command arrives. Offered
    in terminal phases too (the network does not know the saga ended); never
    while the orchestrator is down, when ``enabled`` offers only the recovery
    (and it is never down in a terminal phase). Not settled: the orchestrator
    does not see it."""
    if not ctx.faults.late:
        return
    for i, step in enumerate(ctx.saga.steps):
        if not _timed_out_replies(ctx, i):
            continue  # its late flag is never set
        guard = f"!down && lt[{i}] == 1"
        # Anti-suspension: the participant refuses an action whose key it
        # recorded as compensated.
        refused = f"cs[{i}] == C_DONE" if step.anti_suspension else "false"
        yield Command(
            name=f"late {step.name} +1",
            guard=guard if refused == "false" else f"{guard} && !({refused})",
            body=(f"ef[{i}] = (ef[{i}] + 1 > {EFFECT_CAP} -> {EFFECT_CAP} : "
                  f"ef[{i}] + 1)", f"lt[{i}] = 0"),
            settle=False,
        )
        if refused != "false":
            yield Command(name=f"late {step.name} +0 (refused)",
                          guard=f"{guard} && {refused}",
                          body=(f"lt[{i}] = 0",), settle=False)


_GENERATORS: dict[EventKind, Callable[[_Ctx], Iterator[Command]]] = {
    EventKind.DISPATCH: _dispatch,
    EventKind.REPLY: _reply,
    EventKind.DUPLICATE: _duplicate,
    EventKind.CRASH: _crash,
    EventKind.RECOVER: _recover,
    EventKind.COMP_DISPATCH: _comp_dispatch,
    EventKind.COMP_REPLY: _comp_reply,
    EventKind.LATE: _late,
}
"""One generator per event kind of the semantics; a new kind adds one entry
(an event kind missing here is refused with SAGA181, never silently dropped)."""


def commands(saga: Saga, *, faults: FaultModel = ALL_FAULTS) -> tuple[Command, ...]:
    """The guarded-command table of ``saga`` under ``faults``."""
    _refuse_outside_subset(saga, faults)
    ctx = _Ctx(saga, faults)
    return tuple(c for kind in EventKind for c in _GENERATORS[kind](ctx))


def _refuse_outside_subset(saga: Saga, faults: FaultModel) -> None:
    problems = []
    if saga.compensation_chains:
        problems.append(Diagnostic(
            code="SAGA180",
            message=f"saga {saga.name!r} has hand-wired compensation chains "
            "(it was imported), which the Promela export does not model",
            span=saga.compensation_chains[0].span,
            help="export a native saga (compensations in reverse dependency "
            "order), or check this one with sagaproof's own backends",
        ))
    missing = [k.value for k in EventKind if k not in _GENERATORS]
    # A knob the table does not know may change what existing events do, and
    # a changed state layout changes every command: both are refused rather
    # than exported wrong.
    missing += [f"{f.name}={getattr(faults, f.name)!r}"
                for f in dataclasses.fields(faults)
                if f.name not in _KNOWN_KNOBS and getattr(faults, f.name)]
    if (HEADER, WIDTH) != LAYOUT:
        missing.append(f"state layout HEADER={HEADER}, WIDTH={WIDTH}")
    if missing:
        problems.append(Diagnostic(
            code="SAGA181",
            message=f"the Promela export has no command for "
            f"{', '.join(missing)}",
            span=saga.span,
            help="check with sagaproof's own backends until the exporter "
            "learns them",
        ))
    for knob, value in (("crash", faults.crashes), ("duplicate", faults.duplicates)):
        if value > MAX_BOUND:
            problems.append(Diagnostic(
                code="SAGA182",
                message=f"fault bound {knob}={value} does not fit the Promela "
                f"export (at most {MAX_BOUND})",
                span=saga.span,
                help=f"use --faults {knob}=N with N <= {MAX_BOUND}",
            ))
    if problems:
        raise ExportError(tuple(problems))


# --- the text ---------------------------------------------------------------------
def _defines() -> list[str]:
    # The constants are the semantics' own enums, so they cannot drift.
    out = [f"#define P_{p.name} {int(p)}" for p in Phase]
    out += [f"#define S_{s.name} {int(s)}" for s in Status]
    out += [f"#define C_{c.name} {int(c)}" for c in CompStatus]
    return out


def _settle(ctx: _Ctx) -> list[str]:
    """``semantics._settle`` without chains: completion and the end of an abort."""
    n = ctx.n
    all_ok = _all([f"st[{j}] == S_OK" for j in range(n)])
    comp_run = _any([f"cs[{j}] == C_RUNNING" for j in range(n)])
    owed = _any([f"(cs[{j}] != C_DONE && {_took(j)})"
                 for j, s in enumerate(ctx.saga.steps) if s.compensation is not None])
    some_done = _any([f"cs[{j}] == C_DONE" for j in range(n)])
    return [
        "inline settle() {",
        "  if",
        f"  :: phase == P_RUNNING && {all_ok} -> phase = P_COMPLETED",
        f"  :: phase == P_COMPENSATING && !{_running_actions(ctx)} && !{comp_run}"
        f" && !{owed} ->",
        f"     phase = ({some_done} -> P_COMPENSATED : P_FAILED)",
        "  :: else -> skip",
        "  fi",
        "}",
    ]


def _check(ctx: _Ctx) -> list[str]:
    """The state and terminal-state checks of ``verifier._saga_ts``."""
    n = ctx.n
    # Only steps with an effect are judged (``semantics.effect_steps``).
    judged = effect_steps(ctx.saga)
    unstarted = _all([f"!(cs[{j}] != C_NONE && st[{j}] == S_PENDING)"
                      for j in range(n)])
    rolled_back = "(phase == P_COMPENSATED || phase == P_FAILED)"
    left = _all([f"!(ef[{j}] > 0 && cs[{j}] != C_DONE)" for j in judged])
    once = _all([f"ef[{j}] == 1" for j in judged])
    none = _all([f"ef[{j}] == 0" for j in judged])
    return [
        "inline check() {",
        f"  assert(compensation_completeness == 0 && {unstarted} && "
        f"(!{rolled_back} || {left}));",
        "  assert(eventual_consistency == 0 && phase != P_STUCK && "
        f"(phase != P_COMPLETED || {once}) && (!{rolled_back} || {none}))",
        "}",
    ]


def _wrap(text: str, width: int = 88, indent: str = "      ") -> list[str]:
    """Break a long guard at ``&&`` so the model stays readable."""
    parts = text.split(" && ")
    lines: list[str] = []
    cur = ""
    for p in parts:
        piece = p if not cur else cur + " && " + p
        if cur and len(indent) + len(piece) > width:
            lines.append(cur + " &&")
            cur = p
        else:
            cur = piece
    lines.append(cur)
    return lines


def to_promela(saga: Saga, *, faults: FaultModel = ALL_FAULTS) -> str:
    """``saga`` under ``faults`` as a Promela model.

    Raises:
        ExportError: the saga is outside the exportable subset (SAGA180-182).

    >>> from saga_models import SagaBuilder
    >>> from saga_models.semantics import NO_FAULTS
    >>> saga = SagaBuilder("t").step("a", participant="p", action="do",
    ...                              compensation="undo").build()
    >>> for c in commands(saga, faults=NO_FAULTS): print(c.name)
    send a
    reply a ok +1
    reply a ok +0
    send compensation of a
    compensation of a ok
    >>> to_promela(saga, faults=NO_FAULTS).count("d_step {")  # and the deadlock
    6
    """
    table = commands(saga, faults=faults)
    ctx = _Ctx(saga, faults)
    n = ctx.n
    names = ", ".join(s.name for s in saga.steps)
    out = [
        f"/* saga {saga.name!r} under faults {faults.describe()}, exported by "
        "sagaproof.",
        f"   Steps (index order): {names}.",
        "   One d_step per event of saga_models.semantics; the variables are the",
        "   semantics' flat state tuple, so SPIN's stored states are sagaproof's",
        "   states. Check with: spin -o2 -a; gcc -DSAFETY -DNOREDUCE; ./pan -c0 */",
        "",
        *_defines(),
        "",
        "/* header of the state tuple */",
        "byte phase; bit down; byte crashes; byte dups; byte trigger; "
        "byte chain_pos;",
        "/* seven fields per step */",
        "/* dl starts at 1, as in semantics.initial_state */",
        f"byte st[{n}]; byte at[{n}]; byte dl[{n}] = 1; byte ef[{n}]; "
        f"byte cs[{n}]; byte ca[{n}]; bit lt[{n}];",
        "/* assertion tags: pan's message names the property; not in the state */",
        *(f"hidden byte {t};" for t in TAGS),
        "",
        *_settle(ctx),
        "",
        *_check(ctx),
        "",
    ]
    out += [
        "active proctype saga() {",
        "end:",
        "  do",
    ]
    for c in table:
        out.append(f"  :: d_step {{ /* {c.name} */")
        guard = _wrap(c.guard)
        out.append("       " + guard[0])
        out += ["       " + g for g in guard[1:]]
        out.append("       ->")
        out += [f"       {s};" for s in c.pre]
        out += [f"       {s};" for s in c.body]
        out.append("       settle(); check()" if c.settle else "       check()")
        out.append("     }")
    out += [
        "  :: d_step { /* nothing enabled before a terminal phase */",
        "       timeout && phase < P_COMPLETED -> assert(deadlock != 0)",
        "     }",
        "  od",
        "}",
        "",
    ]
    return "\n".join(out)


def dumps_promela(saga: Saga, *, faults: FaultModel = ALL_FAULTS) -> str:
    """Alias of :func:`to_promela` (the name the other exporters use)."""
    return to_promela(saga, faults=faults)

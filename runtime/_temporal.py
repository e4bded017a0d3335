"""Sagas on Temporal: the definition runs as a Temporal workflow, and Temporal's
history is the durable log.

The workflow does not re-implement the saga: it drives the one shared
semantics (``saga_models.semantics``) exactly as :class:`~runtime.Engine` does:
it sends every command :func:`~saga_models.semantics.enabled` offers (one
activity per attempt of an action or compensation, parallel branches as
concurrent activities), and feeds each outcome back through
:func:`~saga_models.semantics.apply`. The semantics is pure and deterministic,
so the workflow replays; a test runs temporalio's ``Replayer`` on real
histories.

What maps to what:

* an attempt is one activity; its outcome is ``ok`` (completed), ``failed`` or
  ``fatal`` (the participant raised; classified by the step's retry policy, as
  the engine does), or ``unknown`` (the step's ``timeout`` as the activity's
  start-to-close timeout fired, or an abort cancelled it);
* the definition's retry policy (attempts, backoff, cap, jitter) is the
  semantics' own retry loop, with durable workflow timers between attempts.
  Temporal's ``RetryPolicy`` plays the transport: a step without a timeout has
  no unknown outcome in the semantics ("the transport re-sends until a reply
  comes"), so its activity is retried by Temporal on timeouts only (the
  participant's errors are non-retryable there), with the same idempotency key.
  Temporal's server-side retries of failures are not used, because the
  history would then hide the failed attempts and could not be checked
  against the model;
* compensation in reverse order, its policy and ``STUCK`` come from the
  semantics.

:func:`history_records` translates a workflow history into the runtime's log
records, so :func:`verifier.conformance.conform` checks that Temporal ran a
path of the model. Steps with a ``total_timeout``, a circuit breaker or a
``cache_ttl`` are refused (:class:`TemporalUnsupported`): their runtime state
lives in one process, which a Temporal workflow does not have.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
)

from saga_models import Saga, SagaError
from saga_models import semantics as sem
from saga_models.semantics import (
    CS,
    HEADER,
    NO_FAULTS,
    PHASE,
    ST,
    WIDTH,
    CompStatus,
    Event,
    EventKind,
    Outcome,
    Phase,
    Status,
)

from ._log import LogRecord
from ._participants import (
    ACTION,
    COMPENSATION,
    Operation,
    StepContext,
    error_names,
    invoke,
    is_fatal,
)

WORKFLOW = "sagaproof.saga"
ACTIVITY = "sagaproof.call"
TRANSPORT_TIMEOUT = timedelta(minutes=5)
"""Start-to-close of an attempt of a step without a timeout: past it, Temporal
re-sends the command (same key), as the transport does in the model."""

_REGISTRY: dict[str, Saga] = {}
"""Definitions this worker process runs, by content hash. Workflow code looks
the definition up here (its hash is the workflow's input), so the history
pins the definition the way the SQLite log does."""


class TemporalUnsupported(SagaError, ValueError):
    """The definition uses a feature the Temporal backend does not run."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SagaRun:
    """The workflow's input."""

    definition_hash: str
    saga_id: str
    input: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One attempt of an action or compensation: the activity's input."""

    saga_id: str
    saga_name: str
    step: str
    step_index: int
    participant: str
    operation: str
    attempt_kind: str
    attempt: int
    idempotency_key: str
    input: Any = None
    results: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    refuse: str | None = None
    """Set when the semantics says the call can only fail without reaching the
    participant (a compensation that needs a reply that never came): the
    activity raises it, so the failed attempt is in the history too."""


def register(saga: Saga) -> None:
    """Make ``saga`` runnable by workflows in this process; refuse what the
    backend does not run."""
    bad = [f"{s.name} ({what})" for s in saga.steps for what, on in (
        ("total_timeout", s.total_timeout is not None),
        ("breaker", s.breaker is not None), ("cache_ttl", s.cache_ttl is not None))
        if on]
    if bad:
        raise TemporalUnsupported(
            f"saga {saga.name!r}: the Temporal backend does not run "
            f"{', '.join(bad)}; their state lives in one process. Remove them or "
            "use the SQLite/PostgreSQL runtime")
    _REGISTRY[saga.content_hash] = saga


def classify(saga: Saga, i: int, names: Sequence[str]) -> Outcome:
    """``fatal`` if step ``i``'s retry policy does not retry an error with
    these class names, else ``failed``: the engine's rule (:func:`is_fatal`)."""
    return Outcome.FATAL if is_fatal(saga.steps[i].retry, names) else Outcome.FAILED


class Activities:
    """The one activity, bound to this worker's participants."""

    def __init__(self, ops: Mapping[tuple[str, str], Operation]) -> None:
        self._ops = dict(ops)

    @activity.defn(name=ACTIVITY)
    async def call(self, call: Call) -> Any:
        """Invoke the participant; its exception becomes a non-retryable
        application error carrying the error's class names."""
        if call.refuse is not None:
            raise ApplicationError(call.refuse, [], type="Refused",
                                   non_retryable=True)
        ctx = StepContext(
            saga_id=call.saga_id, saga_name=call.saga_name, step=call.step,
            participant=call.participant, operation=call.operation,
            attempt_kind=call.attempt_kind, attempt=call.attempt,
            idempotency_key=call.idempotency_key,
            input=call.input if isinstance(call.input, Mapping) else {},
            results=call.results, result=call.result)
        try:
            out = await invoke(self._ops[(call.participant, call.operation)], ctx)
            json.dumps(out)
        except Exception as exc:
            raise ApplicationError(f"{type(exc).__name__}: {exc}", error_names(exc),
                                   type=type(exc).__name__,
                                   non_retryable=True) from None
        return out


@workflow.defn(name=WORKFLOW, sandboxed=False)
class SagaWorkflow:
    """Drives the shared semantics; see the module docstring."""

    @workflow.run
    async def run(self, run: SagaRun) -> dict[str, Any]:
        saga = _REGISTRY[run.definition_hash]
        self.saga, self.run_ = saga, run
        self.state = sem.initial_state(saga)
        self.results: dict[int, Any] = {}
        self.errors: dict[int, str] = {}
        self.attempts: dict[tuple[str, int], int] = {}
        self.not_before: dict[tuple[str, int], float] = {}
        self.tasks: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.timers: set[asyncio.Task[None]] = set()
        self.queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        while True:
            self._advance()
            if sem.is_terminal(self.state):
                break
            self._handle(await self.queue.get())
        names = [s.name for s in saga.steps]
        return {"saga_id": run.saga_id, "outcome": sem.phase(self.state).name,
                "results": {names[i]: v for i, v in self.results.items()},
                "errors": {names[i]: e for i, e in self.errors.items()}}

    def _advance(self) -> None:
        now = workflow.time()
        while not sem.is_terminal(self.state):
            chosen = next((ev for ev in sem.enabled(self.saga, self.state, NO_FAULTS)
                           if ev.kind in sem.CONTROLLED
                           and self.not_before.get(_key(ev), 0.0) <= now), None)
            if chosen is None:
                return
            self.state = sem.apply(self.saga, self.state, chosen)
            key = _key(chosen)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            self.tasks[key] = asyncio.create_task(self._attempt(key))

    async def _attempt(self, key: tuple[str, int]) -> None:
        kind, i = key
        saga, step = self.saga, self.saga.steps[key[1]]
        action = kind == "a"
        attempt_kind = ACTION if action else COMPENSATION
        op = step.action if action else step.compensation
        assert op is not None
        template = step.idempotency_key or "{saga_id}:{step}:{attempt_kind}"
        refuse = None
        if not action and step.compensation_needs_result and i not in self.results:
            refuse = (f"compensation {step.participant}.{op} needs the result of "
                      f"{step.name!r}, whose reply never came")
        call = Call(saga_id=self.run_.saga_id, saga_name=saga.name, step=step.name,
                    step_index=i, participant=step.participant, operation=op,
                    attempt_kind=attempt_kind, attempt=self.attempts[key],
                    idempotency_key=template.format(
                        saga_id=self.run_.saga_id, step=step.name,
                        attempt_kind=attempt_kind),
                    input=self.run_.input,
                    results={saga.steps[j].name: v for j, v in self.results.items()},
                    result=None if action else self.results.get(i), refuse=refuse)
        timeout = (timedelta(seconds=step.timeout) if step.timeout is not None
                   else TRANSPORT_TIMEOUT)
        # With a timeout, a timed-out attempt is an unknown outcome for the
        # semantics to retry; without one, Temporal re-sends (the transport).
        policy = RetryPolicy(maximum_attempts=1 if step.timeout is not None else 0)
        outcome, payload, error = Outcome.OK, None, None
        try:
            payload = await workflow.execute_activity(
                ACTIVITY, call, start_to_close_timeout=timeout, retry_policy=policy)
        except ActivityError as exc:
            outcome, error = _outcome(saga, i, exc, action)
        except asyncio.CancelledError:
            # An abort cut the attempt off (only one with a timeout is cut
            # off): an unknown outcome, as in the engine.
            outcome, error = Outcome.UNKNOWN, "cancelled by the abort"
        self.queue.put_nowait((kind, i, outcome, payload, error))

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind, i, outcome, payload, error = msg
        if kind == "timer":
            self.not_before.pop((outcome, i), None)
            return
        saga, base = self.saga, HEADER + WIDTH * i
        self.tasks.pop((kind, i), None)
        if kind == "a":
            if self.state[base + ST] != Status.RUNNING:
                return
            was_running = self.state[PHASE] == Phase.RUNNING
            self.state = sem.apply(saga, self.state, Event(EventKind.REPLY, i, outcome))
            if outcome is Outcome.OK:
                self.results[i] = payload
                self.errors.pop(i, None)
            else:
                self.results.pop(i, None)
                self.errors[i] = error
            if self.state[base + ST] in (Status.RETRY_FAILED, Status.RETRY_UNKNOWN):
                retry = saga.steps[i].retry
                delay = _interval(retry, self.attempts[("a", i)])
                if retry.jitter:
                    delay -= delay * retry.jitter * workflow.random().random()
                self._wake(("a", i), delay)
            if was_running and self.state[PHASE] != Phase.RUNNING:
                for (k, j), task in list(self.tasks.items()):
                    if k == "a" and saga.steps[j].timeout is not None:
                        task.cancel()
        else:
            if self.state[base + CS] != CompStatus.RUNNING:
                return
            self.state = sem.apply(saga, self.state,
                                   Event(EventKind.COMP_REPLY, i, outcome))
            if outcome is not Outcome.OK:
                self.errors[i] = error
            if self.state[base + CS] == CompStatus.RETRY:
                self._wake(("c", i), _interval(saga.compensation_policy.as_retry(),
                                               self.attempts[("c", i)]))

    def _wake(self, key: tuple[str, int], delay: float) -> None:
        if delay <= 0:
            return
        self.not_before[key] = workflow.time() + delay

        async def timer() -> None:
            await workflow.sleep(delay)
            self.queue.put_nowait(("timer", key[1], key[0], None, None))

        self.timers.add(asyncio.create_task(timer()))


def _key(ev: Event) -> tuple[str, int]:
    return ("a" if ev.kind is EventKind.DISPATCH else "c", ev.step)


def _interval(policy: Any, n: int) -> float:
    try:
        return float(policy.interval(n))
    except OverflowError:
        return float(policy.max_interval)


def _outcome(saga: Saga, i: int, exc: ActivityError,
             action: bool) -> tuple[Outcome, str]:
    cause = exc.cause
    if isinstance(cause, TimeoutError):
        return Outcome.UNKNOWN, (
            f"TimeoutError: no reply within {saga.steps[i].timeout}s")
    if isinstance(cause, CancelledError):
        return Outcome.UNKNOWN, "cancelled by the abort"
    if isinstance(cause, ApplicationError):
        names = [str(n) for n in cause.details[0]] if cause.details else []
        out = classify(saga, i, names) if action else Outcome.FAILED
        return out, cause.message
    return Outcome.FAILED, str(exc)


# --- histories as model paths -----------------------------------------------------
async def history_records(saga: Saga, history: Any, *,
                          converter: Any = None) -> list[LogRecord]:
    """The log records (``start``, dispatches, replies, ``end``) that a
    workflow's history shows, in history order, for
    :func:`verifier.conformance.conform`.

    Outcomes are read the way the workflow read them: a completed activity is
    ``ok``; a failed one is ``failed`` or ``fatal`` by the step's retry policy
    (``failed`` for a compensation); a timed-out or cancelled one is
    ``unknown``. A timeout that Temporal itself retried (a step without a
    timeout) is a re-send by the transport, not an outcome, and adds nothing.
    """
    from temporalio.api.enums.v1 import EventType
    from temporalio.converter import DataConverter

    dc = converter or DataConverter.default
    sid = ""
    recs: list[LogRecord] = []
    scheduled: dict[int, Call] = {}

    def add(kind: str, **kw: Any) -> None:
        recs.append(LogRecord(saga_id=sid, seq=len(recs), kind=kind,
                              definition_hash=saga.content_hash, **kw))

    for ev in history.events:
        t = ev.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            [run] = await dc.decode(
                ev.workflow_execution_started_event_attributes.input.payloads,
                [SagaRun])
            sid = run.saga_id
            add("start", data=json.dumps(run.input))
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            [call] = await dc.decode(
                ev.activity_task_scheduled_event_attributes.input.payloads, [Call])
            scheduled[ev.event_id] = call
            add("dispatch" if call.attempt_kind == ACTION else "comp_dispatch",
                step=call.step, step_index=call.step_index, attempt=call.attempt)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
            # The workflow took the cancel request as the attempt's (unknown)
            # outcome at once; whatever the activity reports later is not read.
            sched = ev.activity_task_cancel_requested_event_attributes
            call = scheduled.pop(sched.scheduled_event_id)
            add("reply" if call.attempt_kind == ACTION else "comp_reply",
                step=call.step, step_index=call.step_index, attempt=call.attempt,
                outcome=Outcome.UNKNOWN.value)
        elif t in _ENDS:
            attrs = getattr(ev, _ENDS[t])
            if attrs.scheduled_event_id not in scheduled:
                continue
            call = scheduled.pop(attrs.scheduled_event_id)
            outcome = Outcome.OK
            if t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                info = attrs.failure.application_failure_info
                names: list[str] = []
                if info.details.payloads:
                    [first, *_] = await dc.decode(info.details.payloads)
                    names = [str(n) for n in first or []]
                outcome = (classify(saga, call.step_index, names)
                           if call.attempt_kind == ACTION else Outcome.FAILED)
            elif t != EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                outcome = Outcome.UNKNOWN
            add("reply" if call.attempt_kind == ACTION else "comp_reply",
                step=call.step, step_index=call.step_index, attempt=call.attempt,
                outcome=outcome.value)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            [result] = await dc.decode(
                ev.workflow_execution_completed_event_attributes.result.payloads,
                [dict])
            add("end", outcome=str(result["outcome"]))
    return recs


def _ends() -> dict[int, str]:
    from temporalio.api.enums.v1 import EventType

    return {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            "activity_task_completed_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            "activity_task_failed_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            "activity_task_timed_out_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            "activity_task_canceled_event_attributes",
    }


_ENDS = _ends()


def bind(sagas: Saga | Sequence[Saga], participants: Any) -> Activities:
    """The activities for ``sagas`` with the given participants (the same
    binding rules as :class:`~runtime.Engine`: every operation bound)."""
    from ._participants import as_participants

    bound = as_participants(participants)
    ops: dict[tuple[str, str], Operation] = {}
    for saga in [sagas] if isinstance(sagas, Saga) else sagas:
        ops.update(bound.bind(saga))
    return Activities(ops)

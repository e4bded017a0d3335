"""A native saga as an Amazon States Language state machine.

Each step is a Task (a Lambda invoke whose function is a deploy-time
placeholder); its retry policy becomes Retry; a timeout becomes TimeoutSeconds;
its Catch enters one shared backward chain of compensation Tasks that ends in a
Fail state, so a rollback never reports success. The chain is entered so that
it undoes exactly what sagaproof's semantics undoes: a step that failed
definitely (no effect) is skipped, a step that timed out (its effect may have
happened) is compensated too (``States.Timeout`` enters the chain one Task
earlier). Facts ASL cannot say (kind, idempotency, the participant) travel in a
``sagaproof:`` annotation in each state's Comment, which the importer reads
back, so the exported file, imported again, verifies with the same verdicts.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .._errors import SagaError
from .._ir import RetryPolicy, Saga, Step, StepKind

FOREVER = 99_999_999
"""ASL's largest MaxAttempts, read back as "until it succeeds"."""
COMPLETED = "Saga completed"
COMPENSATED = "Saga compensated"
FAILED = "Saga failed"
STUCK = "Saga stuck"
ANNOTATION = "sagaproof:"


class ExportError(SagaError, ValueError):
    """The saga cannot be written in the target format."""


def _linear(saga: Saga) -> list[Step]:
    steps = list(saga.steps)
    for i, step in enumerate(steps):
        want = (steps[i - 1].name,) if i else ()
        if tuple(step.depends_on) != want:
            raise ExportError(
                f"step {step.name!r} depends_on={list(step.depends_on)!r}: ASL "
                "export supports sagas whose steps form one chain (each step "
                "depends on the one before); write the steps in order, or split "
                "parallel work into its own saga")
    if saga.compensation_chains:
        raise ExportError(f"saga {saga.name!r} has hand-wired compensation chains "
                          "(it was imported); export native sagas")
    return steps


def _annotate(data: dict[str, Any]) -> str:
    return ANNOTATION + json.dumps(data, sort_keys=True, separators=(",", ":"))


def _seconds(x: float) -> int:
    """ASL intervals and timeouts are whole seconds (at least 1)."""
    return max(1, math.ceil(x))


def _retrier(errors: list[str], policy: RetryPolicy, retries: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ErrorEquals": errors,
        "IntervalSeconds": _seconds(policy.initial_interval),
        "MaxAttempts": retries,
        "BackoffRate": float(policy.backoff),
    }
    if policy.max_interval and retries:
        out["MaxDelaySeconds"] = _seconds(policy.max_interval)
    if policy.jitter > 0:
        out["JitterStrategy"] = "FULL"
    return out


def _retry(policy: RetryPolicy) -> list[dict[str, Any]]:
    if policy.max_attempts is None:
        return [_retrier(["States.ALL"], policy, FOREVER)]
    if policy.max_attempts <= 1:
        return []
    out = []
    if policy.non_retryable_errors:
        out.append(_retrier(list(policy.non_retryable_errors), policy, 0))
    errors = list(policy.retryable_errors) or ["States.ALL"]
    out.append(_retrier(errors, policy, policy.max_attempts - 1))
    return out


def _comp_name(step: Step) -> str:
    return f"Compensate {step.name}"


def to_asl(saga: Saga) -> dict[str, Any]:
    """The ASL state machine of a native saga (a dict ready for ``json.dumps``)."""
    steps = _linear(saga)
    states: dict[str, Any] = {}
    undoable = [s for s in steps if s.kind is StepKind.COMPENSATABLE
                and s.compensation]

    def entry_before(i: int) -> str:
        """Where the rollback starts when step ``i`` aborts without effect."""
        prior = [s for s in steps[:i] if s in undoable]
        return _comp_name(prior[-1]) if prior else FAILED

    for i, step in enumerate(steps):
        state: dict[str, Any] = {
            "Type": "Task",
            "Comment": _annotate({
                "participant": step.participant, "action": step.action,
                "kind": step.kind.value, "idempotent": step.idempotent,
                "compensation_needs_result": step.compensation_needs_result,
                "compensation": step.compensation,
            }),
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": f"${{{step.participant}}}",
                           "Payload": {"action": step.action, "input.$": "$"}},
            "ResultPath": f"$.results.{i}",
        }
        if step.timeout is not None:
            state["TimeoutSeconds"] = _seconds(step.timeout)
        retry = _retry(step.retry)
        if retry:
            state["Retry"] = retry
        if step.kind is not StepKind.RETRIABLE:
            catch: list[dict[str, Any]] = []
            if step in undoable and step.timeout is not None:
                # Timed out: the effect may be in place, so undo this step too.
                catch.append({"ErrorEquals": ["States.Timeout"],
                              "ResultPath": "$.error", "Next": _comp_name(step)})
            catch.append({"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                          "Next": entry_before(i)})
            state["Catch"] = catch
        if i + 1 < len(steps):
            state["Next"] = steps[i + 1].name
        else:
            state["Next"] = COMPLETED
        states[step.name] = state
    policy = saga.compensation_policy
    for k, step in enumerate(undoable):
        retry_policy = RetryPolicy(
            max_attempts=policy.max_attempts, initial_interval=policy.initial_interval,
            backoff=policy.backoff, max_interval=policy.max_interval)
        retries = FOREVER if policy.max_attempts is None else policy.max_attempts - 1
        states[_comp_name(step)] = {
            "Type": "Task",
            "Comment": _annotate({"compensates": step.name}),
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": f"${{{step.participant}}}",
                           "Payload": {"action": step.compensation,
                                       "input.$": "$"}},
            "ResultPath": None,
            "Retry": [_retrier(["States.ALL"], retry_policy, retries)],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                       "Next": STUCK}],
            "Next": _comp_name(undoable[k - 1]) if k else COMPENSATED,
        }
    terminals = {
        COMPLETED: {"Type": "Succeed"},
        COMPENSATED: {"Type": "Fail", "Error": "sagaproof.Compensated",
                      "Cause": "the saga was rolled back"},
        FAILED: {"Type": "Fail", "Error": "sagaproof.Failed",
                 "Cause": "the saga aborted before any step took effect"},
        STUCK: {"Type": "Fail", "Error": "sagaproof.Stuck",
                "Cause": "a compensation kept failing: resume by hand"},
    }
    targets = {t for st in states.values()
               for t in [st.get("Next"), *(c["Next"] for c in st.get("Catch", []))]}
    # Step Functions refuses a definition with unreachable states.
    states.update((k, v) for k, v in terminals.items() if k in targets)
    return {
        "Comment": f"sagaproof export of saga {saga.name!r}",
        "StartAt": steps[0].name,
        "States": states,
    }


def dumps_asl(saga: Saga) -> str:
    """:func:`to_asl` as indented JSON text."""
    return json.dumps(to_asl(saga), indent=2) + "\n"

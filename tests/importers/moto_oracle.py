"""moto's ASL interpreter as an oracle for the imported graph semantics.

moto (pinned in pyproject's ``test`` extra) executes a state machine offline
when ``execute_state_machine`` is on. Its interpreter already supports Step
Functions Local's mocked responses (per state, per retry attempt: a result or
an error), but moto reads no mock configuration file; :func:`run` hands the
execution worker a mock test case built from a failure schedule instead, and
turns off the retry back-off sleeps. Both touch moto internals, hence the pin.

:func:`model_allows` replays what moto did through the model: the sequence of
Task attempts and their outcomes must be a path of the graph semantics, ending
with the same status and the same effects in place.
"""

from __future__ import annotations

import json
import time
import types
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
RESOURCE = "arn:aws:states:::sqs:sendMessage"
"""A service integration moto mocks without rewriting the error name."""


@dataclass(frozen=True)
class Run:
    """What moto did: each Task attempt in order, and how it ended."""

    attempts: tuple[tuple[str, str], ...]
    """(Task state, ``ok`` or the error raised)."""
    status: str
    """SUCCEEDED or FAILED."""


@contextmanager
def mocked_moto() -> Iterator[Oracle]:
    """One moto session whose executions follow :attr:`Oracle.schedule`
    (per Task state, the outcome of each attempt; past the end, success)."""
    import boto3  # type: ignore[import-untyped]
    from moto import mock_aws
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.eval.evaluation_details import (
        EvaluationDetails,
    )
    from moto.stepfunctions.parser.backend import execution as mexec
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.mocking.mock_config import (
        MockedResponse,
        MockedResponseReturn,
        MockedResponseThrow,
        MockTestCase,
        StateMockedResponses,
    )

    oracle = Oracle()

    def case() -> MockTestCase:
        states = []
        for state, outcomes in oracle.schedule.items():
            # Enough answers for any retry count the machine can reach.
            padded = [*outcomes, *[OK] * 8]
            responses: list[MockedResponse] = [
                MockedResponseReturn(i, i, {"ok": True}) if o == OK else
                MockedResponseThrow(i, i, o, "injected by sagaproof's test")
                for i, o in enumerate(padded)]
            states.append(StateMockedResponses(state, f"{state}-r", responses))
        return MockTestCase("m", "t", states)

    def worker(self: Any) -> Any:
        return ExecutionWorker(
            evaluation_details=EvaluationDetails(
                aws_execution_details=self._get_start_aws_execution_details(),
                execution_details=self.get_start_execution_details(),
                state_machine_details=self.get_start_state_machine_details()),
            exec_comm=self._get_start_execution_worker_comm(),
            cloud_watch_logging_session=self._cloud_watch_logging_session,
            activity_store=self._activity_store, mock_test_case=case())

    saved = (mexec.Execution._get_start_execution_worker,
             getattr(retrier_decl, "time"))  # noqa: B009 (not re-exported)
    mexec.Execution._get_start_execution_worker = worker  # type: ignore[method-assign]
    setattr(retrier_decl, "time", types.SimpleNamespace(  # noqa: B010
        sleep=lambda _s: None))
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            oracle.client = boto3.client("stepfunctions", region_name="us-east-1")
            yield oracle
    finally:
        mexec.Execution._get_start_execution_worker = saved[0]  # type: ignore[method-assign]
        setattr(retrier_decl, "time", saved[1])  # noqa: B010


@dataclass
class Oracle:
    """A moto session (see :func:`mocked_moto`)."""

    client: Any = None
    schedule: dict[str, list[str]] = field(default_factory=dict)
    count: int = 0

    def run(self, definition: Mapping[str, Any],
            schedule: Mapping[str, Sequence[str]],
            execution_input: Mapping[str, Any] | None = None) -> Run:
        """Execute ``definition`` under ``schedule`` (a Task it does not name
        succeeds: no Task reaches a real or emulated service)."""
        self.schedule = {name: list(schedule.get(name, ()))
                         for name in _tasks(definition)}
        self.count += 1
        sf = self.client
        arn = sf.create_state_machine(
            name=f"m{self.count}", definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        ex = sf.start_execution(stateMachineArn=arn,
                                input=json.dumps(execution_input or {}))
        for _ in range(4000):
            d = sf.describe_execution(executionArn=ex["executionArn"])
            if d["status"] != "RUNNING":
                break
            time.sleep(0.002)
        else:
            raise AssertionError("moto's execution did not end")
        events = sf.get_execution_history(executionArn=ex["executionArn"],
                                          maxResults=1000)["events"]
        return _attempts(events, d["status"])


def run(definition: Mapping[str, Any], schedule: Mapping[str, Sequence[str]],
        execution_input: Mapping[str, Any] | None = None) -> Run:
    """Execute ``definition`` in a fresh moto session under ``schedule``."""
    with mocked_moto() as oracle:
        return oracle.run(definition, schedule, execution_input)


def _attempts(events: list[dict[str, Any]], status: str) -> Run:
    by_id = {e["id"]: e for e in events}

    def state_of(e: dict[str, Any]) -> str:
        # Branches interleave: follow the event's own chain back to the state
        # it belongs to.
        while not e["type"].endswith("StateEntered"):
            e = by_id[e["previousEventId"]]
        name: str = e["stateEnteredEventDetails"]["name"]
        return name

    attempts: list[tuple[str, str]] = []
    for e in events:
        if e["type"] == "TaskSucceeded":
            attempts.append((state_of(e), OK))
        elif e["type"] == "TaskFailed":
            attempts.append((state_of(e), e["taskFailedEventDetails"]["error"]))
    return Run(attempts=tuple(attempts), status=status)


def _tasks(machine: Mapping[str, Any]) -> Iterator[str]:
    for name, state in machine["States"].items():
        if state.get("Type") == "Task":
            yield name
        for branch in state.get("Branches") or []:
            yield from _tasks(branch)
        for key in ("Iterator", "ItemProcessor"):
            if isinstance(state.get(key), dict):
                yield from _tasks(state[key])


def model_allows(im: Any, observed: Run) -> str | None:
    """None when the model has a path doing exactly ``observed`` (same Task
    attempts and outcomes, same end status, same effects in place as the
    compensation map says); else why not."""
    from saga_models.importers import graph_semantics as gs

    t = gs.tables(im, timeout=False)
    attempts = observed.attempts
    start = (gs.initial_state(t), 0)
    seen = {start}
    todo = deque([start])
    ends: list[str] = []
    while todo:
        state, k = todo.popleft()
        if gs.is_terminal(t, state):
            if k == len(attempts):
                status = gs.STATUS_NAMES[state[0]]
                if status == observed.status and \
                        set(gs.held(t, state)) == _held(im, attempts):
                    return None
                ends.append(f"{status} holding {sorted(gs.held(t, state))}")
            continue
        if k < len(attempts) and attempts[k][1] == "States.Runtime" and \
                attempts[k][0] not in gs.view(t, state)["at"]:  # type: ignore[operator]
            # moto records the stopped attempt of a cancelled Parallel
            # sibling as a States.Runtime failure once the Parallel has
            # moved on; in the model that attempt never ends.
            nxt = (state, k + 1)
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
            continue
        for ev in gs.enabled(t, state):
            nk = _consume(t, ev, attempts, k)
            if nk is None:
                continue
            nxt = (gs.apply(t, state, ev), nk)
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return (f"moto: {observed.status} after {list(attempts)}, holding "
            f"{sorted(_held(im, attempts))}; the model's runs with those "
            f"attempts end {ends or 'nowhere'}")


def _consume(t: Any, ev: Any, attempts: Sequence[tuple[str, str]], k: int
             ) -> int | None:
    """The index after ``ev`` if it agrees with ``attempts[k]``."""
    from saga_models.importers import graph_semantics as gs

    if ev.kind == "machine_timeout":
        return None
    if ev.kind not in ("ok", "error"):
        return k
    if k >= len(attempts):
        return None
    r = t.regions[ev.region]
    node = r.node(ev.node)
    state, outcome = attempts[k]
    if state != node.name + r.suffix:
        return None
    if ev.kind == "ok":
        return k + 1 if outcome == OK else None
    if outcome == OK:
        return None
    # Same error, or one every Retry/Catch on the way handles alike.
    for h in _handlers(t, r, node):
        for entries in (h.retriers, h.catches):
            if gs._first(entries, outcome) != gs._first(entries, t.errors[ev.arg]):
                return None
    return k + 1


def _handlers(t: Any, r: Any, node: Any) -> list[Any]:
    out = [node]
    while r.parent is not None:
        out.append(t.regions[r.parent].node(r.owner))
        r = t.regions[r.parent]
    return out


def _held(im: Any, attempts: Sequence[tuple[str, str]]) -> set[str]:
    """Effects in place after ``attempts``, by the compensation map."""
    undoes = dict(im.undoes.undoes)
    held: set[str] = set()
    for state, outcome in attempts:
        if outcome != OK:
            continue
        if state in im.forward and state not in im.undoes.no_effect:
            held.add(state)
        held -= set(undoes.get(state, ()))
    return held

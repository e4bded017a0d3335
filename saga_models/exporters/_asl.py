"""A native saga as an Amazon States Language state machine.

Each step is a Task (a Lambda invoke whose function is a deploy-time
placeholder); its retry policy becomes Retry; a timeout becomes TimeoutSeconds.
Steps that do not depend on each other run in the branches of a Parallel state:
the dependency graph is decomposed into series and parallel parts, which is
exactly what nested Parallel states can say (a graph that is not series-parallel
is refused with a located diagnostic, :class:`ExportError`).

On failure, a top-level Task's Catch, or a Parallel's Catch for every Task in its
branches (Step Functions cancels the sibling branches first, as sagaproof's
semantics does), enters one backward chain of compensation Tasks in reverse
topological order that ends in a Fail state, so a rollback never reports
success. Each compensation Task is guarded: it receives the execution and the
step and undoes what that step recorded under them, doing nothing when the step
never took effect (DESIGN.md: a compensation must be safe when the action never
took effect). That is the conditional compensation of sagaproof's semantics,
announced to the importer by ``if_took_effect`` in the annotation. A retriable
step that runs out of retries ends in the Fail state ``Saga stuck``.

Facts ASL cannot say (kind, idempotency, the participant) travel in a
``sagaproof:`` annotation in each state's Comment, which the importer reads
back, so the exported file, imported again, verifies with the same verdicts.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from .._errors import Diagnostic, InvalidDefinition, Severity
from .._ir import RetryPolicy, Saga, Step, StepKind
from .._validate import structure_diagnostics

FOREVER = 99_999_999
"""ASL's largest MaxAttempts, read back as "until it succeeds"."""
COMPLETED = "Saga completed"
COMPENSATED = "Saga compensated"
FAILED = "Saga failed"
STUCK = "Saga stuck"
STUCK_ERROR = "sagaproof.Stuck"
"""The error a branch raises when a retriable step in it runs out of retries;
the Parallel routes it to ``Saga stuck``, not to the rollback."""
ANNOTATION = "sagaproof:"


class ExportError(InvalidDefinition):
    """The saga cannot be written in the target format; carries located
    diagnostics (the CLI prints them and exits 2)."""


def _refuse(code: str, message: str, step: Step | None, saga: Saga, *,
            help: str) -> ExportError:
    span = step.span_of("depends_on") if step is not None else saga.span
    return ExportError((Diagnostic(code=code, message=message, span=span,
                                   help=help),))


# --- series-parallel decomposition ------------------------------------------------
@dataclass(frozen=True, slots=True)
class Seq:
    """Parts that run one after the other."""

    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Par:
    """Parts that run at the same time (the branches of a Parallel state)."""

    branches: tuple[Part, ...]


Part = str | Seq | Par
"""A step name, a sequence or a parallel composition."""


def decompose(saga: Saga) -> Part:
    """The series-parallel form of the saga's dependency graph.

    The order the graph induces on steps is series-parallel exactly when, in
    every part of two or more steps, either the "comparable" relation or its
    complement is disconnected; the components are then the branches, or the
    stages in order. Otherwise four steps form an ``N`` (a depends on b and on
    c, d depends on c only), which no nesting of Parallel states can express
    without adding or dropping a dependency: refused (EXPORT101).
    """
    names = [s.name for s in saga.steps]
    anc: dict[str, set[str]] = {}
    for s in saga.steps:  # the IR is topologically valid, not necessarily sorted
        _ancestors(saga, s.name, anc)
    order = {n: i for i, n in enumerate(names)}

    def comparable(a: str, b: str) -> bool:
        return a in anc[b] or b in anc[a]

    def build(part: list[str]) -> Part:
        if len(part) == 1:
            return part[0]
        together = _components(part, comparable)
        if len(together) > 1:
            return Par(tuple(build(c) for c in sorted(
                together, key=lambda c: min(order[n] for n in c))))
        stages = _components(part, lambda a, b: not comparable(a, b))
        if len(stages) > 1:
            inside = set(part)
            stages.sort(key=lambda c: min(len(anc[n] & inside) for n in c))
            flat: list[Part] = []
            for stage in stages:
                sub = build(stage)
                flat.extend(sub.parts if isinstance(sub, Seq) else (sub,))
            return Seq(tuple(flat))
        raise _not_series_parallel(saga, part, comparable, anc)

    return build(names)


def _ancestors(saga: Saga, name: str, memo: dict[str, set[str]]) -> set[str]:
    hit = memo.get(name)
    if hit is not None:
        return hit
    out: set[str] = set()
    for dep in saga.step(name).depends_on:
        out |= {dep} | _ancestors(saga, dep, memo)
    memo[name] = out
    return out


def _components(part: list[str], linked: Any) -> list[list[str]]:
    left = list(part)
    out: list[list[str]] = []
    while left:
        comp = [left.pop(0)]
        grew = True
        while grew:
            grew = False
            for n in list(left):
                if any(linked(n, m) for m in comp):
                    comp.append(n)
                    left.remove(n)
                    grew = True
        out.append(comp)
    return out


def _not_series_parallel(saga: Saga, part: list[str], comparable: Any,
                         anc: dict[str, set[str]]) -> ExportError:
    # A part that splits neither way holds an induced path a-b-c-d of the
    # comparability graph (cographs are exactly the graphs without one).
    for a, b, c, d in itertools.permutations(part, 4):
        if comparable(a, b) and comparable(b, c) and comparable(c, d) and not (
                comparable(a, c) or comparable(b, d) or comparable(a, d)):
            late = max((a, b, c, d), key=lambda n: len(anc[n]))
            pairs = [(x, y) if x in anc[y] else (y, x)
                     for x, y in ((a, b), (b, c), (c, d))]
            text = ", ".join(f"{y!r} after {x!r}" for x, y in pairs)
            return _refuse(
                "EXPORT101",
                f"steps {a!r}, {b!r}, {c!r}, {d!r} are ordered as {text} and "
                "in no other way: ASL's nested Parallel states cannot express "
                "this dependency graph without adding or dropping a dependency",
                saga.step(late), saga,
                help="add the missing dependency (so one step waits for both), or "
                "remove one, and check the saga again before exporting")
    raise AssertionError("unsplittable part without an induced P4")  # cograph


# --- writing --------------------------------------------------------------------
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


def _flatten(part: Part) -> list[str]:
    if isinstance(part, str):
        return [part]
    inner = part.parts if isinstance(part, Seq) else part.branches
    return [n for p in inner for n in _flatten(p)]


@dataclass(slots=True)
class _Writer:
    saga: Saga
    position: dict[str, int]
    """Each step's place in the forward (topological) order."""
    undoable: list[Step]
    """Steps with a compensation, in rollback order (reverse topological)."""
    names: set[str]
    parallels: int = 0

    def entry(self, last: int) -> str:
        """Where the rollback starts when something at or before forward
        position ``last`` fails: the first compensation, in rollback order, of
        a step placed no later (the guard skips those without effect)."""
        for step in self.undoable:
            if self.position[step.name] <= last:
                return _comp_name(step)
        return FAILED

    def parallel_name(self) -> str:
        self.parallels += 1
        return self.unique(f"Parallel {self.parallels}")

    def unique(self, name: str) -> str:
        """``name``, primed until no state has it (names are machine-wide)."""
        while name in self.names:
            name += "'"
        self.names.add(name)
        return name

    def task(self, step: Step, *, top: bool, states: dict[str, Any]) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Task",
            "Comment": _annotate({
                "participant": step.participant, "action": step.action,
                "kind": step.kind.value, "idempotent": step.idempotent,
                "compensation_needs_result": step.compensation_needs_result,
                "compensation": step.compensation,
                **({"total_timeout": step.total_timeout}
                   if step.total_timeout is not None else {}),
                # the late-delivery countermeasures, a promise of the
                # participant that ASL has no field for
                **{f: True for f in ("empty_rollback", "anti_suspension")
                   if getattr(step, f)},
            }),
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": f"${{{step.participant}}}",
                           "Payload": {"action": step.action, "step": step.name,
                                       "execution.$": "$$.Execution.Name",
                                       "input.$": "$"}},
            "ResultPath": f"$.results.{self.position[step.name]}",
        }
        if step.timeout is not None:
            state["TimeoutSeconds"] = _seconds(step.timeout)
        retry = _retry(step.retry)
        if retry:
            state["Retry"] = retry
        if step.kind is StepKind.RETRIABLE:
            # Out of retries after the point of no return: STUCK, not rollback.
            target = STUCK
            if not top:
                target = self.unique(f"{step.name} stuck")
                states[target] = {"Type": "Fail", "Error": STUCK_ERROR,
                                  "Cause": f"retriable step {step.name!r} kept "
                                  "failing: resume by hand"}
            state["Catch"] = [{"ErrorEquals": ["States.ALL"],
                               "ResultPath": "$.error", "Next": target}]
        elif top:
            state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                               "Next": self.entry(self.position[step.name])}]
        # In a branch, a compensatable or pivot Task has no Catch of its own:
        # the error fails the branch, Step Functions cancels the siblings, and
        # the Parallel's Catch starts the rollback of everything that ran.
        return state

    def sequence(self, parts: tuple[Part, ...], *, top: bool
                 ) -> tuple[str, dict[str, Any]]:
        """The states of ``parts`` run in order; returns the first state's name."""
        states: dict[str, Any] = {}
        heads: list[str] = []
        for part in parts:
            if isinstance(part, str):
                step = self.saga.step(part)
                extra: dict[str, Any] = {}
                states[part] = self.task(step, top=top, states=extra)
                states.update(extra)
                heads.append(part)
            else:
                assert isinstance(part, Par)
                name = self.parallel_name()
                states[name] = self.parallel(part, top=top)
                heads.append(name)
        for here, after in zip(heads, [*heads[1:], None], strict=True):
            if after is not None:
                states[here]["Next"] = after
            elif top:
                states[here]["Next"] = COMPLETED
            else:
                states[here]["End"] = True
        return heads[0], states

    def parallel(self, part: Par, *, top: bool) -> dict[str, Any]:
        branches = []
        for branch in part.branches:
            inner = branch.parts if isinstance(branch, Seq) else (branch,)
            start, states = self.sequence(inner, top=False)
            branches.append({"StartAt": start, "States": states})
        state: dict[str, Any] = {"Type": "Parallel", "Branches": branches,
                                 "ResultPath": None}
        if top:
            steps = _flatten(part)
            catch: list[dict[str, Any]] = []
            if any(self.saga.step(n).kind is StepKind.RETRIABLE for n in steps):
                catch.append({"ErrorEquals": [STUCK_ERROR], "ResultPath": "$.error",
                              "Next": STUCK})
            last = max(self.position[n] for n in steps)
            catch.append({"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                          "Next": self.entry(last)})
            state["Catch"] = catch
        # A nested Parallel has no Catch: its failure fails the enclosing
        # branch, and the top-level Parallel's Catch handles it.
        return state


def _native(saga: Saga) -> None:
    if saga.compensation_chains:
        raise _refuse("EXPORT102", f"saga {saga.name!r} has hand-wired "
                      "compensation chains (it was imported from ASL or Seata)",
                      None, saga, help="export native sagas; an imported ASL file is "
                      "already a state machine")


def _carried(saga: Saga) -> None:
    """Refuse what ASL and the graph semantics cannot carry.

    ``sagaproof check`` runs an ASL file as its own graph, which reads the
    annotation only to pair tasks with compensations. A native fact that
    changes verdicts but that graph cannot see would let a broken saga be
    certified after export (``compensation_needs_result`` made a saga that
    never terminates hold), so it is refused rather than silently dropped.
    """
    if saga.resources or saga.invariants or saga.semantic_locks \
            or saga.pessimistic_view or saga.instances != 1:
        raise _refuse(
            "SAGA188", f"saga {saga.name!r} declares shared resources, "
            "invariants, locks or instances, which an ASL state machine "
            "cannot carry", None, saga,
            help="check the saga with sagaproof itself; export a saga without "
            "shared resources")
    # A saga that breaks the structure rules is broken natively; the graph
    # has no structure property, so its export could be certified.
    broken = tuple(d for d in structure_diagnostics(saga)
                   if d.severity is Severity.ERROR)
    if broken:
        raise ExportError(broken)
    for step in saga.steps:
        if not step.idempotent and step.retry.max_attempts != 1:
            # A retry after a timed-out attempt that took effect takes it
            # again; the graph tracks an effect as held or not, never twice.
            raise _field(
                "SAGA189", step, "idempotent",
                f"step {step.name!r} is not idempotent and is retried: a retry "
                "after an attempt that took effect takes it twice, which the "
                "imported graph cannot count", saga,
                help="make the step idempotent (an idempotency key), set "
                "retry.max_attempts: 1, or check the saga natively")
        if step.kind is StepKind.PIVOT and step.timeout is not None:
            # sagaproof retries a pivot until its outcome is definite, and an
            # idempotent retry reports the earlier attempt's effect; an ASL
            # Retry spends attempts on timeouts and may then fail with the
            # effect in place, so the graph would judge another saga.
            raise _field(
                "SAGA189", step, "timeout",
                f"pivot {step.name!r} has a timeout: sagaproof retries a pivot "
                "until its outcome is definite, which ASL's Retry cannot say",
                saga, help="drop the pivot's timeout, or check the saga "
                "natively")
        if step.compensation_needs_result and step.compensation:
            raise _field(
                "SAGA184", step, "compensation_needs_result",
                f"step {step.name!r}: a compensation that needs the action's "
                "reply fails when the reply never came; ASL and the imported "
                "graph cannot say so, and would certify a saga that never ends",
                saga, help="make the compensation work from the saga's own "
                "key (drop compensation_needs_result), or check it natively")
        if step.total_timeout is not None:
            raise _field(
                "SAGA185", step, "total_timeout",
                f"step {step.name!r}: ASL has no budget for all attempts "
                "together, so total_timeout would be dropped", saga,
                help="drop total_timeout (TimeoutSeconds bounds each attempt), "
                "or check the saga natively")
        if step.breaker is not None:
            raise _field(
                "SAGA186", step, "breaker",
                f"step {step.name!r}: a circuit breaker fails calls without "
                "reaching the participant; ASL has no breaker", saga,
                help="drop the breaker, or check the saga natively")
        if step.read_only or step.cache_ttl is not None:
            raise _field(
                "SAGA187", step, "read_only" if step.read_only else "cache_ttl",
                f"step {step.name!r}: a read-only (or cached) step has no "
                "effect, but an imported Task is judged as one that has",
                saga, help="drop read_only/cache_ttl, or check the saga "
                "natively")
        if step.effect is not None or step.compensation_effect is not None:
            raise _field(
                "SAGA188", step, "effect" if step.effect is not None
                else "compensation_effect",
                f"step {step.name!r} has an effect on shared resources, which "
                "an ASL state machine cannot carry", saga,
                help="check the saga with sagaproof itself; export a saga "
                "without shared resources")


def _field(code: str, step: Step, name: str, message: str, saga: Saga, *,
           help: str) -> ExportError:
    # the field when the loader recorded it, else the whole step
    return ExportError((Diagnostic(code=code, message=message,
                                   span=step.span_of(name), help=help),))


def to_asl(saga: Saga) -> dict[str, Any]:
    """The ASL state machine of a native saga (a dict ready for ``json.dumps``).

    Raises:
        ExportError: the saga has hand-wired chains (EXPORT102), its
            dependency graph is not series-parallel (EXPORT101), it breaks a
            structure rule (SAGA11x), or it has a fact ASL and the graph
            semantics cannot carry (SAGA184-SAGA189).
    """
    _native(saga)
    tree = decompose(saga)
    _carried(saga)
    forward = _flatten(tree)
    position = {n: i for i, n in enumerate(forward)}
    undoable = [saga.step(n) for n in reversed(forward)
                if saga.step(n).kind is StepKind.COMPENSATABLE
                and saga.step(n).compensation]
    reserved = {s.name for s in saga.steps} | {_comp_name(s) for s in undoable}
    reserved |= {COMPLETED, COMPENSATED, FAILED, STUCK}
    writer = _Writer(saga=saga, position=position, undoable=undoable,
                     names=reserved)
    parts = tree.parts if isinstance(tree, Seq) else (tree,)
    start, states = writer.sequence(parts, top=True)
    policy = saga.compensation_policy
    retry_policy = RetryPolicy(
        max_attempts=policy.max_attempts, initial_interval=policy.initial_interval,
        backoff=policy.backoff, max_interval=policy.max_interval)
    retries = FOREVER if policy.max_attempts is None else policy.max_attempts - 1
    for k, step in enumerate(undoable):
        states[_comp_name(step)] = {
            "Type": "Task",
            "Comment": _annotate({"compensates": step.name, "if_took_effect": True}),
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": f"${{{step.participant}}}",
                           "Payload": {"action": step.compensation,
                                       "undo_step": step.name,
                                       "execution.$": "$$.Execution.Name",
                                       "input.$": "$"}},
            "ResultPath": None,
            "Retry": [_retrier(["States.ALL"], retry_policy, retries)],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                       "Next": STUCK}],
            "Next": (_comp_name(undoable[k + 1]) if k + 1 < len(undoable)
                     else COMPENSATED),
        }
    terminals = {
        COMPLETED: {"Type": "Succeed"},
        COMPENSATED: {"Type": "Fail", "Error": "sagaproof.Compensated",
                      "Cause": "the saga was rolled back"},
        FAILED: {"Type": "Fail", "Error": "sagaproof.Failed",
                 "Cause": "the saga aborted before any step took effect"},
        STUCK: {"Type": "Fail", "Error": STUCK_ERROR,
                "Cause": "a compensation or a step after the pivot kept "
                "failing: resume by hand"},
    }
    targets = {start} | set(_targets(states))
    # Step Functions refuses a definition with unreachable states.
    states.update((k, v) for k, v in terminals.items() if k in targets)
    return {
        "Comment": f"sagaproof export of saga {saga.name!r}",
        "StartAt": start,
        "States": states,
    }


def _targets(states: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for st in states.values():
        out.extend(t for t in [st.get("Next"), *(c["Next"] for c in st.get(
            "Catch", []))] if t)
        for b in st.get("Branches", []):
            out.extend(_targets(b["States"]))
    return out


def dumps_asl(saga: Saga) -> str:
    """:func:`to_asl` as indented JSON text."""
    return json.dumps(to_asl(saga), indent=2) + "\n"

"""Hypothesis strategies for saga definitions (public API).

They generate valid definitions with size controls and shrink towards small,
readable sagas: fewer steps, chains rather than DAGs, default options.

>>> from hypothesis import given
>>> from saga_models.strategies import sagas
>>> @given(sagas(max_steps=3))
... def test_names_are_unique(saga):
...     assert len({s.name for s in saga.steps}) == len(saga.steps)
>>> test_names_are_unique()
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from . import semantics as sem
from ._builder import SagaBuilder
from ._ir import Saga, StepKind
from .semantics import Event, FaultModel
from .workflow import Workflow, WorkflowBuilder
from .workflow import semantics as wsem

__all__ = [
    "FAULT_KINDS",
    "FaultPlan",
    "InvalidDocument",
    "ScheduledFault",
    "event_sequences",
    "fault_models",
    "fault_plans",
    "invalid_saga_documents",
    "saga_documents",
    "sagas",
    "well_formed_sagas",
    "random_workflows",
    "workflow_step_sequences",
    "workflows",
]


@st.composite
def sagas(
    draw: st.DrawFn,
    *,
    min_steps: int = 1,
    max_steps: int = 4,
    kinds: bool = True,
    dags: bool = True,
    timeouts: bool = True,
    total_timeouts: bool = False,
    non_idempotent: bool = True,
    needs_result: bool = True,
    escalate: bool = True,
    all_compensations: bool = False,
    countermeasures: bool | None = None,
) -> Saga:
    """Any valid saga (it loads; it may well be wrong, which is the point).

    Args:
        min_steps: Fewest steps.
        max_steps: Most steps.
        kinds: Draw pivot and retriable steps as well as compensatable ones.
        dags: Draw dependencies other than "follow the previous step".
        timeouts: Draw per-attempt timeouts (so unknown outcomes).
        total_timeouts: Draw total timeouts (so expired outcomes, which spend
            a step whatever its attempts); only where ``timeouts`` is on. Off
            by default: the ASL export has no total budget and drops it, so
            export round trips would change verdicts.
        non_idempotent: Draw ``idempotent: false`` steps.
        needs_result: Draw ``compensation_needs_result: true``.
        escalate: Draw an escalating compensation policy.
        all_compensations: Give every step kind compensatable with a compensation.
        countermeasures: Declare ``empty_rollback`` and ``anti_suspension`` on
            every step with a compensation (True), on none (False), or draw
            them per step (None).
    """
    n = draw(st.integers(min_steps, max_steps))
    b = SagaBuilder(f"generated_{n}")
    names = [f"s{i}" for i in range(n)]
    for i, name in enumerate(names):
        kind = StepKind.COMPENSATABLE
        if kinds and not all_compensations:
            kind = draw(st.sampled_from(list(StepKind)))
        comp = "undo" if kind is StepKind.COMPENSATABLE else None
        if kind is StepKind.COMPENSATABLE and not all_compensations:
            comp = draw(st.sampled_from(["undo", "undo", None]))
        deps = None
        if dags and i > 0 and draw(st.booleans()):
            deps = draw(st.lists(st.sampled_from(names[:i]), unique=True,
                                 max_size=min(i, 2)))
        attempts = draw(st.sampled_from([1, 2, 3, None]))
        guarded = comp is not None and (
            draw(st.booleans()) if countermeasures is None else countermeasures)
        b.step(
            name,
            participant=f"p{i}",
            action="do",
            compensation=comp,
            kind=kind,
            depends_on=deps,
            retry={"max_attempts": attempts},
            timeout=draw(st.sampled_from([None, 1.0])) if timeouts else None,
            total_timeout=(draw(st.sampled_from([None, None, 2.5]))
                           if timeouts and total_timeouts else None),
            idempotent=draw(st.booleans()) if non_idempotent else True,
            compensation_needs_result=(draw(st.booleans()) if needs_result
                                       else False),
            empty_rollback=guarded,
            anti_suspension=guarded,
        )
    if escalate and draw(st.booleans()):
        b.compensation_policy(max_attempts=draw(st.integers(1, 3)))
    return b.build()


def well_formed_sagas(
    *, max_steps: int = 4, timeouts: bool = True
) -> st.SearchStrategy[Saga]:
    """Sagas that should satisfy every property: compensatable, idempotent steps
    with compensations retried forever and not needing the action's reply, at
    participants that declare the late-delivery countermeasures."""
    return sagas(max_steps=max_steps, kinds=False, timeouts=timeouts,
                 non_idempotent=False, needs_result=False, escalate=False,
                 all_compensations=True, countermeasures=True)


@st.composite
def fault_models(draw: st.DrawFn, *, max_crashes: int = 1,
                 max_duplicates: int = 1) -> FaultModel:
    """Any combination of the fault knobs."""
    return FaultModel(
        fail=draw(st.booleans()),
        timeout=draw(st.booleans()),
        comp_fail=draw(st.booleans()),
        late=draw(st.booleans()),
        crashes=draw(st.integers(0, max_crashes)),
        duplicates=draw(st.integers(0, max_duplicates)),
    )


# --- definitions as documents (for loader tests) ---------------------------------
def saga_document(saga: Saga) -> dict[str, Any]:
    """``saga`` in the file format (a mapping ``loads`` accepts as JSON).

    >>> from saga_models import SagaBuilder
    >>> doc = saga_document(SagaBuilder("t").step("a", participant="p",
    ...     action="x", compensation="u").build())
    >>> doc["steps"][0]["compensation"]
    'u'
    """
    steps: list[dict[str, Any]] = []
    for step in saga.steps:
        entry: dict[str, Any] = {
            "name": step.name, "participant": step.participant,
            "action": step.action, "kind": step.kind.value,
            "depends_on": list(step.depends_on),
            "retry": {"max_attempts": (step.retry.max_attempts
                                       if step.retry.max_attempts is not None
                                       else "forever")},
            "idempotent": step.idempotent,
            "compensation_needs_result": step.compensation_needs_result,
        }
        if step.compensation is not None:
            entry["compensation"] = step.compensation
        for flag in ("empty_rollback", "anti_suspension", "read_only"):
            if getattr(step, flag):
                entry[flag] = True
        if step.timeout is not None:
            entry["timeout"] = step.timeout
        if step.total_timeout is not None:
            entry["total_timeout"] = step.total_timeout
        steps.append(entry)
    policy: dict[str, Any] = (
        {"retry": "forever"} if saga.compensation_policy.max_attempts is None
        else {"max_attempts": saga.compensation_policy.max_attempts,
              "then": "escalate"})
    return {"saga": saga.name, "steps": steps, "compensation_policy": policy}


def saga_documents(**kwargs: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Valid saga documents (plain data); takes the options of :func:`sagas`."""
    return sagas(**kwargs).map(saga_document)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidDocument:
    """A saga document the loader must refuse, and the code it must report."""

    document: dict[str, Any]
    code: str
    """The diagnostic code (``SAGA101`` ...) that names the mistake."""
    mistake: str
    """What was broken, in words."""


def _duplicate_name(doc: dict[str, Any], i: int) -> str:
    steps = doc["steps"]
    steps.append({**copy.deepcopy(steps[i]), "depends_on": []})
    return f"step {steps[i]['name']!r} defined twice"


def _unknown_dependency(doc: dict[str, Any], i: int) -> str:
    doc["steps"][i]["depends_on"] = [*doc["steps"][i]["depends_on"], "nowhere"]
    return f"step {doc['steps'][i]['name']!r} depends on a step that does not exist"


def _self_dependency(doc: dict[str, Any], i: int) -> str:
    step = doc["steps"][i]
    step["depends_on"] = [*step["depends_on"], step["name"]]
    return f"step {step['name']!r} depends on itself"


def _cycle(doc: dict[str, Any], i: int) -> str:
    steps = doc["steps"]
    if len(steps) < 2:
        return _self_dependency(doc, i)
    a, b = steps[0], steps[-1]
    # b already depends on a transitively only in chains; force both edges.
    b["depends_on"] = sorted({*b["depends_on"], a["name"]})
    a["depends_on"] = sorted({*a["depends_on"], b["name"]})
    return f"steps {a['name']!r} and {b['name']!r} depend on each other"


def _bad_duration(doc: dict[str, Any], i: int) -> str:
    doc["steps"][i]["timeout"] = "soon"
    return f"step {doc['steps'][i]['name']!r} has timeout 'soon'"


def _unknown_key(doc: dict[str, Any], i: int) -> str:
    doc["steps"][i]["retires"] = {"max_attempts": 2}
    return f"step {doc['steps'][i]['name']!r} misspells 'retry'"


def _zero_attempts(doc: dict[str, Any], i: int) -> str:
    doc["steps"][i]["retry"] = {"max_attempts": 0}
    return f"step {doc['steps'][i]['name']!r} allows 0 attempts"


def _no_steps(doc: dict[str, Any], i: int) -> str:
    doc["steps"] = []
    return "the saga has no steps"


_MISTAKES: tuple[tuple[str, Callable[[dict[str, Any], int], str]], ...] = (
    ("SAGA100", _no_steps),
    ("SAGA101", _duplicate_name),
    ("SAGA102", _unknown_dependency),
    ("SAGA103", _self_dependency),
    ("SAGA104", _cycle),
    ("SAGA122", _unknown_key),
    ("SAGA126", _bad_duration),
    ("SAGA127", _zero_attempts),
)


@st.composite
def invalid_saga_documents(draw: st.DrawFn, *, max_steps: int = 3) -> InvalidDocument:
    """A valid document with one seeded mistake, and the code it must raise.

    Shrinks towards one-step sagas and the first mistakes in the table.
    """
    doc = draw(saga_documents(max_steps=max_steps))
    index = draw(st.integers(0, len(_MISTAKES) - 1))
    code, mutate = _MISTAKES[index]
    i = draw(st.integers(0, len(doc["steps"]) - 1))
    if code == "SAGA104" and len(doc["steps"]) < 2:
        code = "SAGA103"
    mistake = mutate(doc, i)
    return InvalidDocument(document=doc, code=code, mistake=mistake)


# --- fault plans and event sequences -----------------------------------------------
FAULT_KINDS = ("fail", "unknown", "unknown_after_effect", "duplicate", "crash")
"""What a scheduled fault does to one attempt: it fails before reaching the
participant, times out before or after the participant acted, is delivered
twice, or the orchestrator crashes after the participant acted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledFault:
    """Attempt ``attempt`` of ``step``'s action (or compensation) meets ``fault``."""

    step: str
    attempt: int = 1
    fault: str = "fail"
    """One of :data:`FAULT_KINDS`."""
    compensation: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    """Which attempts of which steps meet which fault; every other attempt is
    delivered normally."""

    faults: tuple[ScheduledFault, ...] = ()

    def fault_for(self, step: str, attempt: int, *,
                  compensation: bool = False) -> str | None:
        """The fault of that attempt, or None."""
        for f in self.faults:
            if (f.step, f.attempt, f.compensation) == (step, attempt, compensation):
                return f.fault
        return None


@st.composite
def fault_plans(draw: st.DrawFn, saga: Saga, *, faults: FaultModel = sem.ALL_FAULTS,
                max_faults: int = 3) -> FaultPlan:
    """Fault plans for ``saga`` that stay within ``faults``.

    Unknown outcomes only for steps with a timeout; compensation faults only
    ``fail`` (or ``crash`` / ``duplicate``); at most ``faults.crashes`` crashes
    and ``faults.duplicates`` duplicates. Shrinks towards fewer faults on
    earlier steps and first attempts.

    >>> from hypothesis import given
    >>> from saga_models import SagaBuilder
    >>> saga = SagaBuilder("t").step("a", participant="p", action="x",
    ...     compensation="u").build()
    >>> @given(fault_plans(saga))
    ... def test_plans_name_real_steps(plan):
    ...     assert all(f.step == "a" for f in plan.faults)
    >>> test_plans_name_real_steps()
    """
    budget = {"crash": faults.crashes, "duplicate": faults.duplicates}
    out: list[ScheduledFault] = []
    seen: set[tuple[str, int, bool]] = set()
    for _ in range(draw(st.integers(0, max_faults))):
        step = saga.steps[draw(st.integers(0, len(saga.steps) - 1))]
        comp = step.compensation is not None and draw(st.booleans())
        cap = (saga.compensation_policy.max_attempts or 3) if comp else (
            step.retry.max_attempts or 3)
        attempt = draw(st.integers(1, cap))
        kinds = [k for k in FAULT_KINDS if budget.get(k, 1) > 0]
        if comp or step.timeout is None or not faults.timeout:
            kinds = [k for k in kinds if not k.startswith("unknown")]
        if not (faults.comp_fail if comp else faults.fail):
            kinds = [k for k in kinds if k != "fail"]
        if not kinds or (step.name, attempt, comp) in seen:
            continue
        kind = draw(st.sampled_from(kinds))
        if kind in budget:
            budget[kind] -= 1
        seen.add((step.name, attempt, comp))
        out.append(ScheduledFault(step=step.name, attempt=attempt, fault=kind,
                                  compensation=comp))
    return FaultPlan(faults=tuple(out))


@st.composite
def event_sequences(draw: st.DrawFn, saga: Saga, *,
                    faults: FaultModel = sem.ALL_FAULTS,
                    max_length: int = 40) -> tuple[Event, ...]:
    """A path of the shared semantics from the initial state: every event is
    enabled where it is taken. Shrinks towards the first enabled event at each
    point (orchestrator commands and ok replies come first), so towards the
    fault-free run.
    """
    state = sem.initial_state(saga)
    out: list[Event] = []
    for _ in range(max_length):
        events = sem.enabled(saga, state, faults)
        if not events:
            break
        e = events[draw(st.integers(0, len(events) - 1))]
        out.append(e)
        state = sem.apply(saga, state, e)
    return tuple(out)


# --- event workflows -----------------------------------------------------------------
@st.composite
def workflows(draw: st.DrawFn, *, max_services: int = 3,
              deliveries: tuple[str, ...] = ("exactly_once", "at_least_once"),
              dedup: bool = True) -> Workflow:
    """A valid event workflow: a chain of services passing a token along.

    Service ``k`` waits in ``IDLE`` for ``e{k}``, goes to ``DONE`` and emits
    ``e{k+1}``; the first event is on the bus at the start. Drawn options: the
    bus's delivery contract and order, de-duplicating inboxes, and services
    that ignore the duplicate (in ``DONE``) rather than leaving it unhandled.
    Shrinks towards one service on an exactly-once bus.
    """
    n = draw(st.integers(1, max_services))
    delivery = draw(st.sampled_from(deliveries))
    order = draw(st.sampled_from(["unordered", "fifo"]))
    b = WorkflowBuilder(f"generated_{n}", delivery=delivery, order=order)
    b.start("e0")
    for k in range(n):
        emit = [f"e{k + 1}"] if k + 1 < n else []
        ignore = [f"e{k}"] if draw(st.booleans()) else []
        b.service(f"s{k}", initial="IDLE", final=["DONE"],
                  dedup=dedup and draw(st.booleans()), ignore=ignore)
        b.on("IDLE", f"e{k}", to="DONE", emit=emit)
    b.outcome(**{f"s{k}": "DONE" for k in range(n)})
    return b.build()


@st.composite
def workflow_step_sequences(draw: st.DrawFn, wf: Workflow, *,
                            duplicates: int = 1,
                            max_length: int = 30) -> tuple[wsem.Step, ...]:
    """A path of the workflow semantics (deliveries, duplicates, timers) from
    the initial state; shrinks towards the first enabled step each time."""
    state = wsem.initial_state(wf, duplicates=duplicates)
    out: list[wsem.Step] = []
    for _ in range(max_length):
        steps = wsem.enabled(wf, state)
        if not steps:
            break
        step = steps[draw(st.integers(0, len(steps) - 1))]
        out.append(step)
        state = wsem.apply(wf, state, step)
    return tuple(out)


_GUARDS = ("c0 < 2", "c0 >= 1", "not c0", "c0 + 1 != 2", "s0.state == 'S1'",
           "s0.state != 'S0' and c0 <= 1", "c0 in (0, 2)", "max(c0, 1) == 1")
_INVARIANTS = ("c0 <= 2", "c0 != 1 or s0.state != 'S0'", "min(c0, 2) < 2",
               "s0.state in ('S0', 'S1')")


@st.composite
def random_workflows(draw: st.DrawFn, *, max_services: int = 2,
                     max_states: int = 3, max_events: int = 3,
                     timers: bool = True) -> Workflow:
    """A valid event workflow with arbitrary structure: random transitions over
    random events, ``choose`` outcomes, guards and invariants over a counter
    and service states, timers, ``ignore`` lists, de-duplicating inboxes,
    declared-idempotent transitions, every bus contract and capacity.

    Valid by construction: every state is entered by an earlier one, every
    handled event is emitted by someone (or is on the bus at the start), every
    emitted event has a subscriber (a service ignores it otherwise), final
    states have no outgoing transitions, and only the last transition on a
    (state, event) pair may lack a guard. Shrinks towards one service, two
    states, one event, no guards, exactly-once unordered delivery.
    """
    n = draw(st.integers(1, max_services))
    n_events = draw(st.integers(1, max_events))
    events = [f"e{k}" for k in range(n_events)]
    delivery = draw(st.sampled_from(["exactly_once", "at_least_once"]))
    order = draw(st.sampled_from(["unordered", "fifo"]))
    capacity = draw(st.integers(1, 3))
    use_counter = draw(st.booleans())
    services: dict[str, dict[str, Any]] = {}
    handled: set[str] = set()
    emitted: set[str] = {"e0"}
    branches_all: list[dict[str, Any]] = []

    def guard() -> str | None:
        if not use_counter or not draw(st.booleans()):
            return None
        return draw(st.sampled_from(_GUARDS))

    def branch(m: int, to: int | None = None) -> dict[str, Any]:
        target = draw(st.integers(0, m - 1)) if to is None else to
        b: dict[str, Any] = {"to": f"S{target}"}
        emit = draw(st.lists(st.sampled_from(events), max_size=2))
        if emit:
            b["emit"] = emit
            emitted.update(emit)
        if use_counter and draw(st.booleans()):
            b["add"] = {"c0": draw(st.sampled_from([1, -1, 2]))}
        branches_all.append(b)
        return b

    for i in range(n):
        m = draw(st.integers(2, max_states))
        final = [f"S{m - 1}"] if draw(st.booleans()) else []
        trans: list[dict[str, Any]] = []
        timer_states: set[int] = set()

        def transition(src: int, to: int | None, m: int = m,
                       trans: list[dict[str, Any]] = trans,
                       timer_states: set[int] = timer_states) -> None:
            t: dict[str, Any] = {"from": f"S{src}"}
            if timers and src not in timer_states and draw(st.integers(0, 4)) == 0:
                t["after"] = "5s"
                timer_states.add(src)
            else:
                e = draw(st.sampled_from(events))
                t["on"] = e
                handled.add(e)
                if draw(st.integers(0, 3)) == 0:
                    t["idempotent"] = True
            g = guard()
            if g is not None:
                t["guard"] = g
            if draw(st.integers(0, 3)) == 0:
                t["choose"] = [branch(m, to), branch(m)]
            else:
                t.update(branch(m, to))
            trans.append(t)

        sources = [j for j in range(m) if f"S{j}" not in final]
        for j in range(1, m):
            # Every state is entered from an earlier, non-final one.
            transition(draw(st.sampled_from([x for x in sources if x < j])), j)
        for _ in range(draw(st.integers(0, 2))):
            transition(draw(st.sampled_from(sources)), None)
        # Only the last transition on a (state, event) pair may be unguarded.
        last: dict[tuple[str, str], int] = {}
        for k, t in enumerate(trans):
            if "on" in t:
                last[(t["from"], t["on"])] = k
        for k, t in enumerate(trans):
            if "on" in t and last[(t["from"], t["on"])] != k and "guard" not in t:
                t["guard"] = "c0 < 1" if use_counter else "false"
        services[f"s{i}"] = {
            "initial": "S0", "final": final, "transitions": trans,
            "dedup": draw(st.booleans()), "ignore": [],
        }
    # Every handled event is emitted by someone (or starts on the bus).
    start = ["e0"]
    for e in sorted(handled - emitted):
        start.append(e)
        emitted.add(e)
    # Every emitted event reaches a subscriber.
    names = sorted(services)
    for e in sorted(emitted - handled):
        services[draw(st.sampled_from(names))]["ignore"].append(e)
    for s in services.values():
        extra = draw(st.lists(st.sampled_from(sorted(emitted)), max_size=1))
        s["ignore"] = sorted(set(s["ignore"]) | set(extra))
    outcomes = []
    for _ in range(draw(st.integers(0, 2))):
        picked = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        outcomes.append({
            svc: f"S{draw(st.integers(0, len(_states(services[svc])) - 1))}"
            for svc in picked
        })
    invariants = []
    if use_counter and draw(st.booleans()):
        invariants.append({"name": "inv", "expr": draw(st.sampled_from(_INVARIANTS))})
    doc: dict[str, Any] = {
        "workflow": "random", "start": start, "services": services,
        "bus": {"delivery": delivery, "order": order, "capacity": capacity},
        "counters": ({"c0": {"initial": 0, "cap": draw(st.integers(1, 3))}}
                     if use_counter else {}),
        "outcomes": outcomes, "invariants": invariants,
    }
    from .workflow import load_workflow_data

    return load_workflow_data(doc)


def _states(service: dict[str, Any]) -> set[str]:
    out = {service["initial"]}
    for t in service["transitions"]:
        out.add(t["from"])
        for b in t.get("choose", [t]):
            out.add(b["to"])
    return out

"""The step semantics of an imported ASL state machine, explored as its own graph.

Lowering a state machine into a saga (``_lower.py``) keeps only its forward
paths; the Catch routes, Choices on rollback routes, loops and the machine's
own timeout are lost on the way. This module runs the parsed graph itself, with
the engine's rules (Amazon States Language specification, "Errors",
"Retrying after an error", "Fallback states", "Parallel", "Map"):

- a Task attempt succeeds, or raises one of the errors it can raise (the
  generic ``States.TaskFailed``, ``States.Timeout`` when it has a
  ``TimeoutSeconds``/``HeartbeatSeconds``, the Lambda service errors for a
  Lambda, and every custom name its own Retry/Catch or an enclosing Parallel's
  names); a timed-out attempt may or may not have taken effect;
- the first Retry entry (declaration order) matching the error retries it while
  its ``MaxAttempts`` allow; counts are abstracted (exact up to :data:`CAP`,
  then "more, or exhausted": later attempts reach nothing new);
- then the first matching Catch entry routes it; otherwise the region raises:
  a Parallel/Map branch's error stops its siblings and is the Parallel's error
  (its own Retry and Catch apply), and at the top the execution fails;
- ``States.ALL`` matches every error but ``States.Runtime`` and
  ``States.DataLimitExceeded``; ``States.TaskFailed`` every one but those and
  ``States.Timeout``;
- every Choice branch is possible (its conditions are over data the model
  does not have), and a Choice without Default may raise
  ``States.NoChoiceMatched``;
- the machine-level ``TimeoutSeconds`` may fire at any point: it cannot be
  caught and leaves every effect in place; unless it is longer than the
  worst case of every run (:mod:`._duration`), when it cannot fire at all
  and is left out; it fires only while the run is in a top-level state some
  run may still be in when it expires.

Each forward Task's effect is tracked (none, held, undone); a Task that the
compensation map names as undoing it undoes it. The state is a flat tuple of
small ints (it packs into ``bytes``): see :class:`Tables` for the layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .._errors import Diagnostic, InvalidDefinition
from ._asl import (
    FOREVER,
    GENERIC,
    LAMBDA_ERRORS,
    MAP_ITEMS,
    TIMEOUT,
    _timeout,
    matches,
)
from ._graph import BPMN_CANCEL, TASK_KINDS, Catcher, Graph, Node, Retrier
from ._imported import ImportedMachine, load_machine, load_seata, load_sw
from ._mapping import CompensationMap, MappingEntry
from ._seata import CATCH_ALL as SEATA_CATCH_ALL


def load_bpmn(path: str, *, dialect: str = "camunda7") -> ImportedMachine:
    """A BPMN 2.0 file as its own graph (see :mod:`._bpmn`).

    Raises:
        InvalidDefinition: located ``BPMN1xx`` diagnostics; BPMN108 when the
            ``bpmn`` extra (SpiffWorkflow, lxml) is not installed.
    """
    try:
        from ._bpmn import load_bpmn as load
    except ImportError as exc:
        from .._span import Span

        raise InvalidDefinition((Diagnostic(
            code="BPMN108", span=Span(file=path, line=1, column=1),
            message=f"BPMN import needs {exc.name or 'lxml'}, which is not "
            "installed", help="pip install 'sagaproof[bpmn]'"),)) from None
    return load(path, dialect=dialect)


def bpmn_mapping(path: str) -> CompensationMap:
    """A BPMN file's mapping, as ``sagaproof mapping`` prints it: each task's
    compensation handler, as its compensation boundary event's association
    names it; a task with none is ``unmapped`` (reported, never guessed)."""
    return declared_mapping(load_bpmn(path), "compensation boundary event")


def declared_mapping(im: ImportedMachine, declared_by: str) -> CompensationMap:
    """The mapping a file declares itself (BPMN's compensation associations,
    Serverless Workflow's ``compensatedBy``), as the checker reads it from
    ``im``: each forward task's handler, ``declared_by`` as its source; a task
    with none is ``unmapped`` (reported, never guessed)."""
    entries = []
    for task in im.forward:
        handlers = im.undoes.compensations_of(task)
        entries.append(MappingEntry(
            forward=task, compensation=handlers[0] if handlers else None,
            source=declared_by if handlers else "unmapped",
            no_effect=task in im.undoes.no_effect))
    return CompensationMap(entries=tuple(entries))


CAP = 2
"""Retry counts are exact up to this many retries. Past it an attempt's outcome
does not depend on how many came before (a failed attempt changes nothing but
the count), so "one more retry" and "retries exhausted" are both explored."""

NO_MATCH = "States.NoChoiceMatched"
SEATA_GENERIC = "<any exception>"
"""Seata: an exception of the service no Catch/Retry entry names."""
STATUS_FA = "<status FA>"
"""Seata: the call returned, and the Status map says FA; the engine raises an
EngineExecutionException (a RuntimeException) for it."""
COMP_FAILED = "<compensation failed>"
"""Seata: a compensation failed; the engine stops the unwind there."""

# Status of the execution (state[0]). STUCK (BPMN): a compensation handler
# raised an incident, and the rollback waits for an operator.
RUNNING, SUCCEEDED, FAILED, TIMED_OUT, STUCK = 0, 1, 2, 3, 4
STATUS_NAMES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STUCK")
INCIDENT = "<incident>"
"""BPMN: a compensation handler failed past its job retries."""

# Program counter of a region: IDLE (not started), DONE, RAISED, or a node.
IDLE, DONE, RAISED, AT = 0, 1, 2, 3

# Effect of a forward Task.
NONE, HELD, UNDONE = 0, 1, 2
EFFECT_NAMES = ("none", "held", "undone")

HEADER = 3
"""state[0] status; state[1] the error the execution failed with, as a region's
error slot holds it (``2 * (index + 1) + raised_by_a_Task``); state[2] is 1 once
a Catch of the top machine handled an error a Task raised, 2 once a forward
Task succeeded after that (a fallback, not only handlers: a later success is
then not a failure reported as success)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Region:
    """The top machine, or one branch (one Map iteration) of a Parallel/Map."""

    index: int
    graph: Graph
    parent: int | None
    """The region the owning Parallel/Map state is in."""
    owner: int | None
    """The owning Parallel/Map state's node index in ``parent``."""
    suffix: str
    """`` (item 2)`` for a Map iteration's copy, else empty."""
    names: tuple[str, ...]
    base: int
    """Offset of this region's slots: pc, error, then the retry counters."""
    children: tuple[tuple[int, ...], ...]
    """Per node: the regions of its branches (a Parallel or Map), else ()."""

    def node(self, i: int) -> Node:
        """The node at index ``i``."""
        return self.graph.nodes[self.names[i]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One transition label.

    ``kind`` is ``ok`` (a Task attempt succeeds), ``error`` (a Task attempt
    raises ``arg``), ``wait`` (a callback Task with no timeout is still waiting
    for its token), ``choose`` (a Choice takes target ``arg``; -1: no rule
    matched), ``step`` (a Pass, Wait, Succeed or Fail state, or a Parallel/Map
    starting or joining its branches), ``branch_failed`` (a branch raised
    ``arg``: its siblings stop, the Parallel handles it) or ``machine_timeout``.
    """

    kind: str
    region: int = 0
    node: int = 0
    arg: int = 0
    effect: bool = False
    """For a timed-out forward Task attempt: it took effect nonetheless."""
    exhaust: bool = False
    """Retries are past :data:`CAP`: this attempt is the last one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tables:
    """Everything the semantics needs, computed once per machine."""

    regions: tuple[Region, ...]
    errors: tuple[str, ...]
    width_counters: tuple[int, ...]
    """Retry-counter slots per region."""
    effects: tuple[tuple[int, str], ...]
    """Effect slots: (region, forward Task state name)."""
    effect_base: int
    width: int
    undoes: tuple[tuple[tuple[int, int], tuple[int, ...]], ...]
    """((region, node) of a compensation Task, effect slots it undoes)."""
    task_errors: tuple[tuple[tuple[int, int], tuple[int, ...]], ...]
    """((region, node), the errors (indices) a Task attempt may raise)."""
    errors_of: dict[tuple[int, int], tuple[int, ...]] = field(
        default_factory=dict, compare=False, hash=False)
    """``task_errors`` as a mapping (looked up for every state explored)."""
    forward: frozenset[str]
    unknowns: frozenset[tuple[int, int, int]] = frozenset()
    """(region, node, error): that error of that Task ends it ``UN`` (Seata):
    the attempt may still have taken effect."""
    seata: bool = False
    """Seata's rules: exception matching, and a compensation stack."""
    stack_base: int = 0
    comp_of: tuple[int, ...] = ()
    """Per effect slot (Seata): its compensation's node index in the top
    region, -2 for a sub-machine's (the engine compensates it), -1 none."""
    fallbacks: frozenset[str]
    """Tasks that do work (not a notice, not a compensation): one succeeding
    after a Catch makes the route a fallback rather than a rollback."""
    callbacks: frozenset[tuple[int, int]]
    """Tasks that wait for a task token with no timeout: the callback may
    never come."""
    machine_timeout: float | None
    timeout_at: tuple[bool, ...] = ()
    """Per top-level state: whether the machine timeout can expire while the
    run is there (some run may still be there when it does)."""
    fail: bool = True
    timeout: bool = True
    comp_fail: bool = True
    bpmn: str | None = None
    """BPMN dialect (``camunda7``, ``zeebe``): the compensation stack holds
    only activities with a handler, and an incident stops the rollback."""
    decided: dict[tuple[int, int], int] = field(
        default_factory=dict, compare=False, hash=False)
    """(region, node) of a Choice -> index of a rule known to be true when
    it is reached (Seata: the Status map already decided it)."""
    incident_slot: int = -1
    """Zeebe: 1 once a handler raised an incident (the others go on)."""

    def effect_name(self, slot: int) -> str:
        """``Task`` or ``Task (item 2)``."""
        r, name = self.effects[slot]
        return name + self.regions[r].suffix


# --- tables --------------------------------------------------------------------
def tables(im: ImportedMachine, *, fail: bool = True, timeout: bool = True,
           comp_fail: bool = True) -> Tables:
    """The layout and lookup tables of ``im`` under the given fault knobs."""
    regions: list[Region] = []
    pending: list[tuple[Graph, int | None, int | None, str]] = [
        (im.top, None, None, "")]
    # Regions are numbered breadth-first; children are known once the parent
    # region is numbered, so build in two passes.
    specs: list[tuple[Graph, int | None, int | None, str]] = []
    kids: list[list[tuple[int, ...]]] = []
    while pending:
        graph, parent, owner, suffix = pending.pop(0)
        idx = len(specs)
        specs.append((graph, parent, owner, suffix))
        names = tuple(graph.nodes)
        per_node: list[tuple[int, ...]] = []
        for i, n in enumerate(names):
            node = graph.nodes[n]
            if node.kind != "parallel":
                per_node.append(())
                continue
            start = len(specs) + len(pending)
            if node.raw.get("Type") == "Map":
                copies = [(node.branches[0], idx, i, f"{suffix} (item {k + 1})")
                          for k in range(MAP_ITEMS)]
            else:
                copies = [(b, idx, i, suffix) for b in node.branches]
            pending.extend(copies)
            per_node.append(tuple(range(start, start + len(copies))))
        kids.append(per_node)
    base = HEADER
    widths: list[int] = []
    for idx, (graph, parent, owner, suffix) in enumerate(specs):
        k = max((len(n.retriers) for n in graph.nodes.values()), default=0)
        widths.append(k)
        regions.append(Region(index=idx, graph=graph, parent=parent, owner=owner,
                              suffix=suffix, names=tuple(graph.nodes), base=base,
                              children=tuple(kids[idx])))
        base += 2 + k
    no_effect = im.undoes.no_effect
    undoes_of = dict(im.undoes.undoes)
    forward = frozenset(im.forward)
    effects: list[tuple[int, str]] = []
    for r in regions:
        for n in r.names:
            if n in forward and n not in no_effect and \
                    r.graph.nodes[n].kind in TASK_KINDS:
                effects.append((r.index, n))
    errors: dict[str, None] = {}
    task_errors: list[tuple[tuple[int, int], tuple[int, ...]]] = []
    undoes: list[tuple[tuple[int, int], tuple[int, ...]]] = []
    for r in regions:
        for i, n in enumerate(r.names):
            node = r.graph.nodes[n]
            if node.kind not in TASK_KINDS:
                continue
            fwd = n in forward
            if im.raises is not None:
                # BPMN: the error codes the file's catch events name, and a
                # timer boundary event's firing (a timeout).
                es = [e for e in dict(im.raises).get(n, ())
                      if (timeout if e == TIMEOUT else fail)]
            else:
                es = _task_errors(regions, r, node, seata=im.stack,
                                  un_names=dict(im.unknowns).get(n, ()),
                                  fa_status=n in im.fa_status,
                                  fail=(fail and fwd) or (comp_fail and not fwd),
                                  timeout=timeout and (fwd or comp_fail))
            for e in es:
                errors.setdefault(e, None)
            task_errors.append(((r.index, i), tuple(list(errors).index(e)
                                                    for e in es)))
            undone = set(undoes_of.get(n, ()))
            if undone:
                slots = tuple(
                    s for s, (er, en) in enumerate(effects) if en in undone
                    # A compensation inside a Map iteration undoes that
                    # iteration's copy; elsewhere it undoes every copy.
                    and (not r.suffix or regions[er].suffix == r.suffix))
                undoes.append(((r.index, i), slots))
    for r in regions:
        for node in r.graph.nodes.values():
            if node.kind == "fail":
                errors.setdefault(node.error or "States.Fail", None)
            if node.kind == "choice" and node.default is None:
                errors.setdefault(NO_MATCH, None)
    comp_of: list[int] = []
    stacked = im.stack or im.bpmn_dialect is not None
    if im.bpmn_dialect is not None:
        errors.setdefault(INCIDENT, None)
    if stacked:
        if im.bpmn_dialect is None:
            errors.setdefault(COMP_FAILED, None)
        top = regions[0]
        for _, n in effects:
            comp = next((c for c, fs in im.undoes.undoes if n in fs), None)
            if comp is not None and comp in top.names:
                comp_of.append(top.names.index(comp))
            else:
                # A Task inside a parallel block (BPMN) is in a branch.
                sub = n in top.graph.nodes and top.graph.nodes[n].kind == "sub"
                comp_of.append(-2 if sub else -1)
    stack_base = base + len(effects)
    biggest = max((len(r.names) for r in regions), default=0)
    if AT + biggest > 255 or 2 * (len(errors) + 1) + 1 > 255 or \
            len(effects) + 1 > 255:
        # The checker packs each state slot into one byte.
        raise InvalidDefinition((Diagnostic(
            code="ASL242", span=im.span,
            message=f"the machine is too large to explore: {biggest} states in "
            f"one region, {len(errors)} distinct error names, {len(effects)} "
            "Tasks with effects (at most 252, 126 and 254)",
            help="split the state machine into smaller ones (a Task that "
            "starts a child execution) and check each"),))
    return Tables(
        unknowns=frozenset(
            (r.index, i, k) for r in regions for i, n in enumerate(r.names)
            for task, names in im.unknowns if task == n
            for k, e in enumerate(errors)
            if e != STATUS_FA and ("*" in names or e in names)),
        seata=im.stack, stack_base=stack_base, comp_of=tuple(comp_of),
        regions=tuple(regions), errors=tuple(errors),
        width_counters=tuple(widths), effects=tuple(effects), effect_base=base,
        width=stack_base + (len(effects) if stacked else 0)
        + (im.bpmn_dialect is not None),
        bpmn=im.bpmn_dialect,
        incident_slot=(stack_base + len(effects)
                       if im.bpmn_dialect is not None else -1),
        undoes=tuple(undoes),
        task_errors=tuple(task_errors), errors_of=dict(task_errors),
        decided={(r.index, r.names.index(c)): k for c, k in im.decided_choices
                 for r in regions if c in r.names},
        forward=forward,
        fallbacks=frozenset(
            n for r in regions for n, node in r.graph.nodes.items()
            if node.kind in TASK_KINDS and n not in undoes_of
            and n not in im.notices),
        callbacks=frozenset(
            (r.index, i) for r in regions for i, n in enumerate(r.names)
            if ".waitForTaskToken" in str(r.graph.nodes[n].raw.get("Resource", ""))
            and _timeout(r.graph.nodes[n]) is None),
        machine_timeout=(im.machine_timeout if timeout
                         and machine_timeout_can_expire(im) else None),
        timeout_at=_timeout_at(im, regions[0].names),
        fail=fail, timeout=timeout, comp_fail=comp_fail)


def machine_timeout_can_expire(im: ImportedMachine) -> bool:
    """Whether the machine-level ``TimeoutSeconds`` can end some run: it has
    one, and it is not longer than the worst case of every run (unbounded
    when a Task has no timeout, a retry is forever, or a loop polls).

    Only a timeout strictly longer than the worst case is left out: the
    engine's own transitions take time too, so a run may last a little
    longer than the sum of its attempts, waits and retry delays.
    """
    if im.machine_timeout is None:
        return False
    return im.worst_case is None or im.worst_case >= im.machine_timeout


def _timeout_at(im: ImportedMachine, names: Sequence[str]
                ) -> tuple[bool, ...]:
    """Per top-level state: whether a run may still be in it when the
    machine timeout expires (the latest it leaves the state is not before
    the timeout; unbounded counts as later)."""
    ends = dict(im.latest_ends)
    limit = im.machine_timeout
    if limit is None:
        return (False,) * len(names)
    # A state without a bound (after a loop, or not in the table) is late.
    return tuple((end := ends.get(n)) is None or end >= limit for n in names)


def _task_errors(regions: Sequence[Region], r: Region, node: Node, *, fail: bool,
                 timeout: bool, seata: bool = False,
                 un_names: tuple[str, ...] = (), fa_status: bool = False
                 ) -> list[str]:
    """The errors an attempt of ``node`` may raise, one per way they are
    handled: two errors every Retry/Catch on the way treats alike lead to the
    same states, so one of them stands for both."""
    lam = "lambda" in str(node.raw.get("Resource", ""))
    handlers: list[Node] = [node]
    at = r
    while at.parent is not None and at.owner is not None:
        handlers.append(regions[at.parent].node(at.owner))
        at = regions[at.parent]
    candidates: list[str] = []
    if fail:
        candidates.append(SEATA_GENERIC if seata else GENERIC)
        if lam:
            candidates.extend(LAMBDA_ERRORS)
        for h in handlers:
            names = [e for r in h.retriers for e in r.errors]
            names += [e for c in h.catches for e in c.errors]
            candidates.extend(
                e for e in names if not e.startswith("States.")
                and (lam or not e.startswith("Lambda."))
                and (not seata or e not in SEATA_CATCH_ALL))
    if fail and seata:
        candidates.extend(n for n in un_names if n != "*")
        if fa_status:
            candidates.append(STATUS_FA)
    if timeout and _timeout(node) is not None:
        candidates.append(TIMEOUT)
    seen: dict[tuple[int, ...], str] = {}
    for e in dict.fromkeys(candidates):
        sig: list[int] = []
        for h in handlers:
            sig.append(_first(h.retriers, e, seata=seata))
            sig.append(_first(h.catches, e, seata=seata))
        # Ends UN, or FA (a returned FA status is never UN).
        sig.append(e != STATUS_FA and ("*" in un_names or e in un_names))
        seen.setdefault(tuple(sig), e)
    # Timeout stands apart: a timed-out attempt may have taken effect.
    out = list(seen.values())
    if TIMEOUT in dict.fromkeys(candidates) and TIMEOUT not in out:
        out.append(TIMEOUT)
    return out


def _first(entries: Sequence[Retrier | Catcher], error: str, *,
           seata: bool = False) -> int:
    for i, entry in enumerate(entries):
        if seata:
            # Seata (EngineUtils.handleException, ServiceTaskHandlerInterceptor
            # findMatchedRetryConfig): a Retry without Exceptions retries every
            # exception; a Catch without Exceptions catches none.
            if (not entry.errors and isinstance(entry, Retrier)) or any(
                    seata_matches(p, error) for p in entry.errors):
                return i
        elif any(matches(p, error) for p in entry.errors):
            return i
    return -1


def seata_matches(pattern: str, error: str) -> bool:
    """Whether a Seata exception class name matches ``error``: the catch-all
    classes match every exception; ``RuntimeException`` stands for every
    exception a service's code throws that no entry names."""
    if pattern in SEATA_CATCH_ALL or pattern == error:
        return True
    if error == STATUS_FA and pattern.endswith("EngineExecutionException"):
        return True
    return error in (SEATA_GENERIC, STATUS_FA) and pattern.endswith(
        "RuntimeException")


# --- the semantics -------------------------------------------------------------
def initial_state(t: Tables) -> tuple[int, ...]:
    """The execution about to run its ``StartAt`` state."""
    s = [0] * t.width
    top = t.regions[0]
    s[top.base] = AT + top.names.index(top.graph.start)
    return tuple(s)


def is_terminal(t: Tables, state: tuple[int, ...]) -> bool:
    """Whether the execution has ended (succeeded, failed or timed out)."""
    return state[0] != RUNNING


def enabled(t: Tables, state: tuple[int, ...]) -> list[Event]:
    """Every event possible in ``state``: each region's, then the machine's."""
    out: list[Event] = []
    for r in t.regions:
        out.extend(region_events(t, state, r))
    out.extend(machine_events(t, state))
    return out


def region_events(t: Tables, state: tuple[int, ...], r: Region) -> list[Event]:
    """The events of one region in ``state`` (what :func:`enabled` collects).

    Split out so that a checker can derive each region's guarded transitions
    on its own (the z3 backend runs this function on symbolic states; one
    region at a time keeps that linear in the regions, not a product).
    """
    if state[0] != RUNNING:
        return []
    out: list[Event] = []
    pc = state[r.base]
    if pc == RAISED and r.parent is not None and r.owner is not None:
        # The first raising branch is the Parallel's error (another
        # raising at the same time is one of the interleavings).
        p = t.regions[r.parent]
        if state[p.base] == AT + r.owner:
            out.extend(_handled(t, state, p, r.owner, kind="branch_failed",
                                error=state[r.base + 1] // 2 - 1,
                                effect=bool(state[r.base + 1] % 2)))
        return out
    if pc < AT:
        return out
    i = pc - AT
    node = r.node(i)
    kind = node.kind
    if kind in TASK_KINDS:
        out.append(Event(kind="ok", region=r.index, node=i))
        if (r.index, i) in t.callbacks:
            out.append(Event(kind="wait", region=r.index, node=i))
        for e in t.errors_of[(r.index, i)]:
            maybe = t.errors[e] == TIMEOUT or (r.index, i, e) in t.unknowns
            took = (False, True) if maybe and node.name in t.forward \
                else (False,)
            for eff in took:
                out.extend(_handled(t, state, r, i, kind="error", error=e,
                                    effect=eff))
    elif kind == "choice":
        known = t.decided.get((r.index, i))
        if known is not None:
            # Seata (ChoiceStateHandler.process): the rules are tried in
            # order and rule ``known`` is true here, so the Choice takes it
            # or an earlier one; never a later one, nor its Default.
            targets = _targets(node)
            for k in sorted({targets.index(c) for c in node.choices[:known + 1]}):
                out.append(Event(kind="choose", region=r.index, node=i, arg=k))
            return out
        for k in range(len(_targets(node))):
            out.append(Event(kind="choose", region=r.index, node=i, arg=k))
        if node.default is None:
            out.append(Event(kind="choose", region=r.index, node=i, arg=-1))
    elif kind == "trigger" and (t.seata or t.bpmn):
        out.extend(_unwind(t, state, r, i))
    elif kind == "parallel":
        kids = r.children[i]
        states = [state[t.regions[c].base] for c in kids]
        if all(s == IDLE for s in states) or all(s == DONE for s in states):
            out.append(Event(kind="step", region=r.index, node=i))
    else:
        out.append(Event(kind="step", region=r.index, node=i))
    return out


def machine_events(t: Tables, state: tuple[int, ...]) -> list[Event]:
    """Events of the execution as a whole: its ``TimeoutSeconds`` expiring."""
    if state[0] != RUNNING or t.machine_timeout is None:
        return []
    pc = state[t.regions[0].base]
    if pc >= AT and not t.timeout_at[pc - AT]:
        # Every run leaves this state before the timeout can expire.
        return []
    return [Event(kind="machine_timeout")]


def _handled(t: Tables, state: tuple[int, ...], r: Region, i: int, *, kind: str,
             error: int, effect: bool) -> list[Event]:
    """The error event, twice when its Retry count is past :data:`CAP` (one
    more retry, or the last)."""
    node = r.node(i)
    k = _first(node.retriers, t.errors[error], seata=t.seata)
    ev = Event(kind=kind, region=r.index, node=i, arg=error, effect=effect)
    if k >= 0:
        most = node.retriers[k].max_retries
        if CAP < most < FOREVER and state[r.base + 2 + k] >= CAP:
            return [ev, Event(kind=kind, region=r.index, node=i, arg=error,
                              effect=effect, exhaust=True)]
    return [ev]


def _stack(t: Tables, state: Sequence[int]) -> list[int]:
    """Seata's compensation stack: effect slots, oldest first."""
    n = len(t.effects)
    return [v - 1 for v in state[t.stack_base:t.stack_base + n] if v]


def _unwind(t: Tables, state: tuple[int, ...], r: Region, i: int
            ) -> list[Event]:
    """A CompensationTrigger (Seata's CompensationTriggerStateHandler): pop the
    newest executed state and run its compensation; with the stack empty, go
    on to the trigger's Next."""
    stack = _stack(t, state)
    if t.bpmn:
        return _bpmn_unwind(t, stack, r, i)
    if not stack:
        return [Event(kind="step", region=r.index, node=i)]
    top = stack[-1]
    if t.comp_of[top] == -1:
        return [Event(kind="comp_skip", region=r.index, node=i, arg=top)]
    out = [Event(kind="comp_ok", region=r.index, node=i, arg=top)]
    if t.comp_fail:
        out.append(Event(kind="comp_error", region=r.index, node=i, arg=top))
    return out


def _bpmn_unwind(t: Tables, stack: list[int], r: Region, i: int
                 ) -> list[Event]:
    """A BPMN compensation throw or end event: it compensates the completed
    activities of its scope that have a handler (only ``activityRef``'s, if
    it names one). Camunda 7 invokes the handlers one at a time, the newest
    completion first; Zeebe invokes every handler at once, so any of them
    may finish (or raise its incident) first."""
    raw = r.node(i).raw
    ref = raw.get("activityRef")
    # Inside a sub-process (or cancelling a transaction) only its own
    # activities are in scope.
    scope = raw.get("scope")
    entries = [k for k in stack if (not ref or t.effects[k][1] == ref)
               and (scope is None or t.effects[k][1] in scope)]
    if not entries:
        return [Event(kind="step", region=r.index, node=i)]
    picks = entries if t.bpmn == "zeebe" else entries[-1:]
    out: list[Event] = []
    for k in picks:
        out.append(Event(kind="comp_ok", region=r.index, node=i, arg=k))
        if t.comp_fail:
            out.append(Event(kind="comp_error", region=r.index, node=i, arg=k))
    return out


def _push(t: Tables, s: list[int], slot: int) -> None:
    """Record an executed state on the compensation stack (once: a state run
    again in a loop is compensated once, its newest run's place)."""
    k = slot - t.effect_base
    entries = [e for e in _stack(t, s) if e != k] + [k]
    n = len(t.effects)
    for j in range(n):
        s[t.stack_base + j] = entries[j] + 1 if j < len(entries) else 0


def _pop(t: Tables, s: list[int], entry: int) -> None:
    entries = [e for e in _stack(t, s) if e != entry]
    for j in range(len(t.effects)):
        s[t.stack_base + j] = entries[j] + 1 if j < len(entries) else 0


def _targets(node: Node) -> list[str]:
    targets = list(dict.fromkeys(node.choices))
    if node.default is not None and node.default not in targets:
        targets.append(node.default)
    return targets


def apply(t: Tables, state: tuple[int, ...], ev: Event) -> tuple[int, ...]:
    """The state after ``ev`` (one of :func:`enabled`)."""
    s = list(state)
    if ev.kind == "machine_timeout":
        s[0] = TIMED_OUT
        return tuple(s)
    r = t.regions[ev.region]
    node = r.node(ev.node)
    if ev.kind == "comp_error" and t.bpmn == "zeebe":
        # The handler's job failed past its retries: an incident stops it;
        # the other handlers (invoked at the same time) go on.
        _pop(t, s, ev.arg)
        s[t.incident_slot] = 1
        return tuple(s)
    if ev.kind == "comp_error" and t.bpmn:
        # Camunda 7: the handlers run one after the other in one job; the
        # incident stops the compensation here, the older ones never run.
        s[0] = STUCK
        s[1] = 2 * (t.errors.index(INCIDENT) + 1)
        return tuple(s)
    if ev.kind == "comp_error":
        # The engine stops compensating and reports compensation status FA;
        # the TC then retries the rollback (DbAndReportTcStateLogStore
        # reportTransactionFinished: RollbackRetrying; SagaResourceManager
        # branchRollback calls engine.compensate again): nothing is lost.
        return tuple(s)
    if ev.kind in ("comp_ok", "comp_skip"):
        _pop(t, s, ev.arg)
        if ev.kind == "comp_ok":
            s[t.effect_base + ev.arg] = UNDONE
        return tuple(s)
    if ev.kind == "ok":
        slot = _slot(t, r.index, node.name)
        if slot is not None:
            s[slot] = HELD
            if _stacks(t, slot):
                _push(t, s, slot)
        if s[2] == 1 and node.name in t.fallbacks:
            s[2] = 2
        for key, undone in t.undoes:
            if key == (r.index, ev.node):
                for u in undone:
                    if s[t.effect_base + u] == HELD:
                        s[t.effect_base + u] = UNDONE
        _goto(t, s, r, node.next)
    elif ev.kind == "wait":
        pass  # the callback has not come (yet)
    elif ev.kind == "error":
        slot = _slot(t, r.index, node.name)
        if ev.effect and slot is not None:
            s[slot] = HELD
            # BPMN compensates completed activities only: an interrupted
            # one that took effect is not on the stack (§10.7).
            if _stacks(t, slot) and not t.bpmn:
                _push(t, s, slot)  # UN: compensated like a state that ran
        _error(t, s, r, ev.node, error=ev.arg, exhaust=ev.exhaust, task=True,
               unknown=(r.index, ev.node, ev.arg) in t.unknowns)
    elif ev.kind == "branch_failed":
        # ``effect`` carries whether the branch's error came from a Task (a
        # failure) rather than a Fail state (a signal).
        if t.bpmn and node.raw.get("subprocess") and \
                t.errors[ev.arg] != BPMN_CANCEL:
            # BPMN: an interrupted sub-process did not complete, so nothing
            # inside it is compensated later (§10.7); a cancelled
            # transaction compensates its own first (its cancel trigger).
            for k in list(_stack(t, s)):
                if t.effects[k][1] in node.raw.get("scope", ()):
                    _pop(t, s, k)
        _reset_children(t, s, r, ev.node)
        _error(t, s, r, ev.node, error=ev.arg, exhaust=ev.exhaust,
               task=ev.effect)
    elif ev.kind == "choose":
        if ev.arg < 0:
            _raise(t, s, r, t.errors.index(NO_MATCH), task=False)
        else:
            _goto(t, s, r, _targets(node)[ev.arg])
    elif node.kind == "parallel":
        kids = r.children[ev.node]
        if kids and all(s[t.regions[c].base] == IDLE for c in kids):
            for c in kids:
                g = t.regions[c]
                s[g.base] = AT + g.names.index(g.graph.start)
        else:
            _reset_children(t, s, r, ev.node)
            _goto(t, s, r, node.next)
    elif node.kind == "trigger" and t.bpmn and s[t.incident_slot]:
        # Zeebe: every handler has ended, one in an incident; the throw event
        # waits for it (an operator) and never completes on its own.
        s[0] = STUCK
        s[1] = 2 * (t.errors.index(INCIDENT) + 1)
    elif node.kind == "trigger" and node.next is None:
        s[0] = FAILED  # compensated; the machine ends failed
    elif node.kind == "succeed":
        _goto(t, s, r, None)
    elif node.kind == "fail":
        # BPMN: an error or cancel end event is a failure of the run (the
        # process aborts), not a signal the caller reads.
        _raise(t, s, r, t.errors.index(node.error or "States.Fail"),
               task=bool(t.bpmn))
    else:  # pass, wait
        _goto(t, s, r, node.next)
    return tuple(s)


def _stacks(t: Tables, slot: int) -> bool:
    """Whether a completed Task goes on the compensation stack: every one in
    Seata and Serverless Workflow; in BPMN only one with a handler."""
    if t.bpmn:
        return t.comp_of[slot - t.effect_base] >= 0
    return t.seata


def _slot(t: Tables, region: int, name: str) -> int | None:
    try:
        return t.effect_base + t.effects.index((region, name))
    except ValueError:
        return None


def _clear_counters(t: Tables, s: list[int], r: Region) -> None:
    for k in range(t.width_counters[r.index]):
        s[r.base + 2 + k] = 0


def _goto(t: Tables, s: list[int], r: Region, target: str | None) -> None:
    _clear_counters(t, s, r)
    if target is None:
        s[r.base] = DONE
        if r.index == 0:
            s[0] = SUCCEEDED
        return
    s[r.base] = AT + r.names.index(target)


def _raise(t: Tables, s: list[int], r: Region, error: int, *, task: bool
           ) -> None:
    _clear_counters(t, s, r)
    s[r.base] = RAISED
    s[r.base + 1] = 2 * (error + 1) + task
    if r.index == 0:
        # Zeebe raises an incident for an error nothing catches (the
        # instance waits); Camunda 7 and the others end the execution.
        s[0] = STUCK if t.bpmn == "zeebe" else FAILED
        s[1] = s[r.base + 1]


def _error(t: Tables, s: list[int], r: Region, i: int, *, error: int,
           exhaust: bool, task: bool, unknown: bool = False) -> None:
    """Retry, else Catch, else raise ``error`` out of region ``r``."""
    node = r.node(i)
    name = t.errors[error]
    k = _first(node.retriers, name, seata=t.seata)
    if k >= 0 and not exhaust:
        most = node.retriers[k].max_retries
        count = s[r.base + 2 + k]
        if most >= FOREVER or count < min(most, CAP) or count >= CAP < most:
            s[r.base + 2 + k] = min(count + 1, CAP)
            return  # attempted again from the same state
    c = _first(node.catches, name, seata=t.seata)
    if c >= 0:
        if task and r.index == 0:
            s[2] = 1
        _goto(t, s, r, node.catches[c].next)
        return
    if t.seata and unknown and r.index == 0:
        # Seata: an uncaught exception of a state that ended UN leaves the
        # machine UN; the TC retries it forward (reportTransactionFinished:
        # CommitRetrying; SagaResourceManager.branchCommit -> engine.forward),
        # which runs the failed state again.
        _clear_counters(t, s, r)
        return
    _raise(t, s, r, error, task=task)


def _reset_children(t: Tables, s: list[int], r: Region, i: int) -> None:
    for c in r.children[i]:
        g = t.regions[c]
        s[g.base] = IDLE
        s[g.base + 1] = 0
        _clear_counters(t, s, g)
        for j in range(len(g.names)):
            _reset_children(t, s, g, j)


# --- renderings ----------------------------------------------------------------
def _where(t: Tables, r: Region, i: int) -> str:
    node = r.node(i)
    line = f" (line {node.span.line})" if node.span.line else ""
    label = node.raw.get("name")
    if t.bpmn and isinstance(label, str) and label != node.name:
        # BPMN: the element's name as drawn, and its id.
        return f"{label!r} [{node.name}]{line}"
    return f"{node.name}{r.suffix}{line}"


def describe(t: Tables, ev: Event) -> str:
    """A label in the file's own state names, with line numbers."""
    if ev.kind == "machine_timeout":
        return (f"the state machine's TimeoutSeconds ({t.machine_timeout:g}s) "
                "expires")
    r = t.regions[ev.region]
    at = _where(t, r, ev.node)
    node = r.node(ev.node)
    if ev.kind == "ok":
        return f"{at}: succeeds"
    if ev.kind == "wait":
        return f"{at}: still waits for its task token"
    if ev.kind in ("comp_ok", "comp_error", "comp_skip"):
        what = t.effect_name(ev.arg)
        c = t.comp_of[ev.arg]
        comp = (repr(t.regions[0].names[c]) if c >= 0 else
                "the sub-machine's compensation")
        if ev.kind == "comp_skip":
            return f"{at}: {what!r} has no CompensateState; skipped"
        if ev.kind == "comp_error" and t.bpmn:
            return (f"{at}: compensation handler {comp} fails to undo "
                    f"{what!r}; its job retries run out and an incident stops it")
        verb = "undoes" if ev.kind == "comp_ok" else "fails to undo"
        return f"{at}: {comp} {verb} {what!r}"
    if ev.kind in ("error", "branch_failed"):
        what = "raises" if ev.kind == "error" else "fails: a branch raised"
        text = f"{at} {what} {t.errors[ev.arg]}"
        if t.bpmn and t.errors[ev.arg] == TIMEOUT:
            text = f"{at}: its timer boundary event fires"
        if ev.effect and ev.kind == "error":
            text += " (after taking effect)"
        return text + (" (retries exhausted)" if ev.exhaust else "")
    if ev.kind == "choose":
        if ev.arg < 0:
            return f"{at}: no Choice rule matches"
        return f"{at}: takes the branch to {_targets(node)[ev.arg]!r}"
    return f"{at}: {node.raw.get('Type', node.kind)}"


def event_json(t: Tables, ev: Event) -> dict[str, object]:
    """An event as data."""
    out: dict[str, object] = {"kind": ev.kind}
    if ev.kind != "machine_timeout":
        r = t.regions[ev.region]
        out["state"] = r.node(ev.node).name + r.suffix
        out["line"] = r.node(ev.node).span.line
    if ev.kind in ("error", "branch_failed"):
        out["error"] = t.errors[ev.arg]
        out["took_effect" if ev.kind == "error" else "raised_by_task"] = ev.effect
        out["retries_exhausted"] = ev.exhaust
    if ev.kind in ("comp_ok", "comp_error", "comp_skip"):
        out["compensates"] = t.effect_name(ev.arg)
    if ev.kind == "choose":
        r = t.regions[ev.region]
        out["target"] = (_targets(r.node(ev.node))[ev.arg] if ev.arg >= 0
                         else NO_MATCH)
    return out


def view(t: Tables, state: tuple[int, ...]) -> dict[str, object]:
    """A state as data: status, the active states, every effect."""
    active = []
    for r in t.regions:
        pc = state[r.base]
        if pc >= AT:
            active.append(r.node(pc - AT).name + r.suffix)
    return {
        "status": STATUS_NAMES[state[0]],
        "error": t.errors[state[1] // 2 - 1] if state[1] else None,
        "caught_a_task_error": bool(state[2]),
        "at": active,
        "effects": {t.effect_name(k): EFFECT_NAMES[state[t.effect_base + k]]
                    for k in range(len(t.effects))},
        **({"compensation_stack": [t.effect_name(k) for k in _stack(t, state)]}
           if t.seata or t.bpmn else {}),
    }


def held(t: Tables, state: tuple[int, ...], value: int = HELD) -> list[str]:
    """Forward Tasks whose effect is ``value`` in ``state``."""
    return [t.effect_name(k) for k in range(len(t.effects))
            if state[t.effect_base + k] == value]


__all__ = [
    "CAP",
    "Event",
    "ImportedMachine",
    "Tables",
    "apply",
    "bpmn_mapping",
    "declared_mapping",
    "describe",
    "enabled",
    "event_json",
    "held",
    "initial_state",
    "is_terminal",
    "load_bpmn",
    "load_machine",
    "load_seata",
    "load_sw",
    "machine_events",
    "machine_timeout_can_expire",
    "region_events",
    "tables",
    "view",
]

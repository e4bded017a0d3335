"""The explicit-state checker: breadth-first search, SCC liveness, budgets.

Follows TLC's reasoning: states are stored once, packed as ``bytes``, with a
parent index, so a counterexample is rebuilt by walking parents (BFS order makes
it shortest) and re-deriving each label from the parent's successors. Liveness
is checked on the stored graph: a deadlock is a non-terminal state with no
successor; a livelock is a strongly connected component that is fair under
strong fairness (Emerson-Lei: drop the states where a family is enabled that the
component never takes, and look again).
"""

from __future__ import annotations

import resource
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ._budget import Deadline, current_rss
from ._result import Counterexample, PropertyResult, Stats, TraceStep, Verdict
from ._ts import Property, StateT, TransitionSystem

DEFAULT_MAX_STATES = 5_000_000
DEFAULT_MAX_MEMORY = 8 * 1024**3
_CHECK_EVERY = 8192
_CLOCK_EVERY = 512
"""The clock is read more often than RSS: a state can be slow to expand."""

class CompactionUnsupported(ValueError):
    """Hash compaction or bitstate asked of a check that cannot use them
    (the CLI reports it as SAGA194)."""


Progress = Callable[[int, int], None]
"""Called with (states explored, current depth) every few thousand states."""


@dataclass(slots=True)
class _Found:
    index: int
    """State index of the violating state (or the transition's source)."""
    message: str
    label: object = None
    target: StateT | None = None
    """For transition violations: the label taken and the state it led to."""


@dataclass(slots=True, kw_only=True)
class _Searched:
    """What a search leaves for the verdicts: states in BFS order (as bytes),
    parent indices, the first violation of each property in search order,
    deadlocks, the edges (when liveness needs them) and the counts."""

    states: Sequence[bytes]
    parent: Sequence[int]
    found: dict[str, _Found]
    deadlocks: Sequence[int]
    edges: tuple[array[int], array[int], array[int]]
    """(start of each state's edges, target, fairness family)."""
    transitions: int
    depth: int
    budget_reason: str
    engine: str
    state_budget_hit: bool = False
    """The search stopped at ``max_states`` (not at another budget)."""
    complete_states: Sequence[StateT] | None = None
    """What ``on_complete`` checks are run on, when not every state: the
    compiled pass's witnesses (one state per step reached)."""
    fair_cycle: Callable[[], tuple[list[int], int] | None] | None = None
    """The fair-cycle search on a graph kept elsewhere than ``edges`` (the
    compiled search's arrays); :func:`_fair_cycle` on ``edges`` otherwise."""
    omission: object = None
    """A lossy search's :class:`verifier._kernel_compact.Omission` (then no
    property holds), or None."""


class _AsTuples(Sequence[StateT]):
    """States as tuples, made one at a time (a list of every state as a tuple
    would cost far more than the states themselves)."""

    def __init__(self, states: Sequence[bytes]) -> None:
        self._states = states

    def __len__(self) -> int:
        return len(self._states)

    def __getitem__(self, i: int) -> StateT:  # type: ignore[override]
        return tuple(self._states[i])

    def __iter__(self) -> Iterator[StateT]:
        rows = getattr(self._states, "iter_rows", None)
        if rows is not None:
            yield from rows()
            return
        for s in self._states:
            yield tuple(s)


def _rss_bytes() -> int:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb if sys.platform == "darwin" else kb * 1024


def explore(
    ts: TransitionSystem,
    *,
    properties: Sequence[str] | None = None,
    max_states: int = DEFAULT_MAX_STATES,
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: Progress | None = None,
    deadline: Deadline | None = None,
    max_depth: int | None = None,
    engine: str = "auto",
    compaction: object = None,
    workers: int = 1,
) -> tuple[PropertyResult, ...]:
    """Explore ``ts`` breadth-first and return one result per property.

    Every budget that runs out (``max_states``, ``max_memory``, ``deadline``)
    leaves the undecided properties ``unknown``, with the budget named;
    ``max_depth`` stops before expanding a state that many steps deep (a
    search for a counterexample known to be that short), and the undecided
    properties are ``unknown`` too.

    A system with a ``reduce_successors(state, successors, expanded)``
    method (partial-order reduction, :mod:`verifier._por`) is explored
    through it: it returns the subset of the successors to follow, and
    ``expanded(t)`` says whether ``t`` has been expanded already (its cycle
    proviso).

    ``engine``: ``auto`` searches a single saga of more than
    :data:`KERNEL_AFTER` states with the compiled semantics kernel when numba
    is installed (``verifier._kernel_bfs``; an event workflow with
    ``verifier._wf_kernel_bfs``) and anything else with
    ``ts.successors``; ``kernel`` insists on the first, ``python``
    on the second. Verdicts, counts and counterexamples are the same either
    way; ``Stats.engine`` says which ran.

    ``workers`` > 1 expands states on that many threads in the compiled
    search (:mod:`verifier._kernel_parallel`), with identical results.

    ``compaction`` (a :class:`verifier._kernel_compact.Compaction`) stores
    the visited set lossily (hash compaction or bitstate, compiled search
    only): a violation found is real, and every other property is
    ``unknown``, with the estimated probability that a state was missed.
    """
    if engine not in {"auto", "kernel", "python"}:
        raise ValueError(f"engine={engine!r}; use auto, kernel or python")
    if engine == "kernel" and max_depth is not None:
        raise ValueError("max_depth needs engine='python' or 'auto'")
    props = [p for p in ts.properties if properties is None or p.name in properties]
    started = time.perf_counter()
    rss0 = _rss_bytes()
    now0 = current_rss()
    need_graph = any(p.liveness for p in props)

    searched = None
    if compaction is not None:
        searched = _lossy_search(ts, props, compaction, engine=engine,
                                 max_states=max_states, max_memory=max_memory,
                                 progress=progress, deadline=deadline, now0=now0)
        need_graph = False
        engine = "lossy"
    if engine == "auto" and (max_states <= KERNEL_AFTER or max_depth is not None
                             or not _kernel_may_run(ts)):
        engine = "python"
    if engine == "auto":
        # Small models are done before numba is even imported (its import and
        # the cached code's load cost more than searching them); a model
        # that outgrows the first KERNEL_AFTER states starts over compiled.
        searched = _python_search(ts, props, need_graph=need_graph,
                                  max_states=KERNEL_AFTER, max_memory=max_memory,
                                  progress=progress, deadline=deadline, now0=now0)
        if searched.state_budget_hit:
            searched = None
        else:
            engine = "python"
    if searched is None and engine not in {"python", "lossy"}:
        searched = _kernel_search(ts, props, need_graph=need_graph,
                                  max_states=max_states, max_memory=max_memory,
                                  progress=progress, deadline=deadline, now0=now0,
                                  workers=workers)
        if searched is None and engine == "kernel":
            raise ValueError("engine='kernel' cannot check this model (numba is "
                             "not installed, or it is not a single saga or "
                             "workflow)")
    if searched is None:
        searched = _python_search(ts, props, need_graph=need_graph,
                                  max_states=max_states, max_memory=max_memory,
                                  progress=progress, deadline=deadline, now0=now0,
                                  max_depth=max_depth)
    states = searched.states
    parent = searched.parent
    found = searched.found
    deadlocks = searched.deadlocks
    edge_start, edge_dst, edge_fam = searched.edges
    transitions = searched.transitions
    depth = searched.depth
    budget_reason = searched.budget_reason
    complete = not budget_reason

    # --- liveness ---------------------------------------------------------------
    lasso: tuple[list[int], int] | None = None
    if complete and need_graph and not deadlocks and deadline is not None \
            and deadline.expired():
        # The fair-cycle search is the other long phase: don't start it late.
        budget_reason = deadline.reason(
            f"after exploring all {len(states):,} states, before the "
            "fair-cycle search")
        complete = False
    if complete and need_graph and not deadlocks:
        lasso = (searched.fair_cycle() if searched.fair_cycle is not None
                 else _fair_cycle(len(states), edge_start, edge_dst, edge_fam))
    elapsed = time.perf_counter() - started
    stats = Stats(
        states=len(states),
        transitions=transitions,
        seconds=elapsed,
        depth=depth,
        peak_memory_bytes=max(0, _rss_bytes() - rss0),
        engine=searched.engine,
        search_note=(searched.omission.note()  # type: ignore[attr-defined]
                     if searched.omission is not None else ""),
        omission_probability=(
            searched.omission.probability  # type: ignore[attr-defined]
            if searched.omission is not None else None),
    )

    def path_to(i: int) -> list[int]:
        out = []
        while i != -1:
            out.append(i)
            i = parent[i]
        out.reverse()
        return out

    def trace(indices: list[int], *, tail: tuple[object, StateT] | None = None,
              loop_start: int | None = None, violation: str = "") -> Counterexample:
        steps = [TraceStep(action="init", event=None,
                           state=ts.state_json(tuple(states[indices[0]])))]
        concretize = getattr(ts, "concretize", None)
        if getattr(ts, "reduced", False) and concretize and loop_start is None:
            # A symmetry-reduced system stores representatives: replay them as
            # one real execution, so an instance keeps its id on every line.
            path = [tuple(states[i]) for i in indices]
            real = concretize(path)
            for label, st in real:
                steps.append(TraceStep(action=ts.label_text(label),
                                       event=ts.label_json(label),
                                       state=ts.state_json(st)))
            if tail is not None:
                last = real[-1][1] if real else path[0]
                tail = _concrete_tail(ts, last, tail)
            indices = indices[:1]
        for a, b in pairwise(indices):
            label = _label_between(ts, tuple(states[a]), states[b])
            steps.append(TraceStep(action=ts.label_text(label),
                                   event=ts.label_json(label),
                                   state=ts.state_json(tuple(states[b]))))
        if tail is not None:
            label, nxt = tail
            steps.append(TraceStep(action=ts.label_text(label),
                                   event=ts.label_json(label),
                                   state=ts.state_json(nxt)))
        return Counterexample(steps=tuple(steps), loop_start=loop_start,
                              violation=violation)

    results: list[PropertyResult] = []
    for p in props:
        common = {"property": p.name, "fault_model": ts.fault_model, "stats": stats}
        if p.static_violation:
            results.append(PropertyResult(verdict=Verdict.VIOLATED,
                                          reason=p.static_violation, **common))  # type: ignore[arg-type]
            continue
        f = found.get(p.name)
        if f is not None:
            tail = (f.label, f.target) if f.target is not None else None
            cex = trace(path_to(f.index), tail=tail, violation=f.message)
            results.append(PropertyResult(verdict=Verdict.VIOLATED, reason=f.message,
                                          counterexample=cex, **common))  # type: ignore[arg-type]
            continue
        if p.liveness and deadlocks:
            d = deadlocks[0]
            msg = ("deadlock: the saga can make no further move and has not "
                   "reached a terminal outcome")
            results.append(PropertyResult(
                verdict=Verdict.VIOLATED, reason=msg,
                counterexample=trace(path_to(d), violation=msg), **common))  # type: ignore[arg-type]
            continue
        if p.liveness and lasso is not None:
            prefix, loop_at = lasso
            msg = ("livelock: a cycle that never terminates, and is fair "
                   f"({ts.fairness})")
            results.append(PropertyResult(
                verdict=Verdict.VIOLATED, reason=msg,
                counterexample=trace(prefix, loop_start=loop_at, violation=msg),
                **common))  # type: ignore[arg-type]
            continue
        if searched.omission is not None:
            # A lossy search may have missed states: nothing it did not
            # find a violation of is known to hold.
            from ._kernel_compact import lossy_reason

            results.append(PropertyResult(
                verdict=Verdict.UNKNOWN, reason=lossy_reason(
                    searched.omission, liveness=p.liveness,  # type: ignore[arg-type]
                    complete_only=p.on_complete is not None,
                    budget=budget_reason), **common))  # type: ignore[arg-type]
            continue
        if not complete:
            results.append(PropertyResult(verdict=Verdict.UNKNOWN,
                                          reason=budget_reason, **common))  # type: ignore[arg-type]
            continue
        if p.on_complete is not None:
            unreached = p.on_complete(
                _AsTuples(states) if searched.complete_states is None
                else searched.complete_states)
            if unreached:
                results.append(PropertyResult(verdict=Verdict.VIOLATED,
                                              reason=unreached,
                                              **common))  # type: ignore[arg-type]
                continue
        reason = f"all {len(states):,} reachable states explored"
        if p.liveness:
            reason += f"; under {ts.fairness}"
        results.append(PropertyResult(verdict=Verdict.HOLDS, reason=reason, **common))  # type: ignore[arg-type]
    return tuple(results)


def _python_search(
    ts: TransitionSystem, props: list[Property], *, need_graph: bool,
    max_states: int, max_memory: int, progress: Progress | None,
    deadline: Deadline | None, now0: int, max_depth: int | None = None,
) -> _Searched:
    """Breadth-first search with ``ts.successors``: every model, any width."""
    index: dict[bytes, int] = {}
    states: list[bytes] = []
    parent = array("q")
    depth_of_layer: list[int] = [0]  # first index of each BFS layer
    edge_start = array("q")
    edge_dst = array("q")
    edge_fam = array("i")
    deadlocks: list[int] = []
    found: dict[str, _Found] = {}
    transitions = 0
    budget_reason = ""

    state_props = [p for p in props if p.on_state is not None]
    term_props = [p for p in props if p.on_terminal is not None]
    trans_props = [p for p in props if p.on_transition is not None]

    def visit(st: StateT, idx: int) -> None:
        for p in state_props:
            if p.name not in found:
                msg = p.on_state(st)  # type: ignore[misc]
                if msg:
                    found[p.name] = _Found(idx, msg)
        if term_props and ts.is_terminal(st):
            for p in term_props:
                if p.name not in found:
                    msg = p.on_terminal(st)  # type: ignore[misc]
                    if msg:
                        found[p.name] = _Found(idx, msg)

    for st in ts.initial():
        key = bytes(st)
        if key not in index:
            index[key] = len(states)
            states.append(key)
            parent.append(-1)
            visit(st, index[key])

    head = 0
    next_layer_at = len(states)
    depth = 0
    fairness_family = ts.fairness_family
    successors = ts.successors
    is_terminal = ts.is_terminal
    reduce = getattr(ts, "reduce_successors", None)

    def expanded(t: StateT) -> bool:
        # States are expanded in index order: stored at or before ``head``.
        return index.get(bytes(t), head + 1) <= head

    while head < len(states):
        # Checked at the first state too: a budget spent loading is spent.
        if (deadline is not None and head % _CLOCK_EVERY == 0
                and deadline.expired()):
            budget_reason = deadline.reason(
                f"at {len(states):,} states, depth {depth}")
            break
        if head == next_layer_at:
            depth += 1
            depth_of_layer.append(head)
            next_layer_at = len(states)
            if max_depth is not None and depth >= max_depth:
                budget_reason = f"depth bound {max_depth} reached"
                break
        st = tuple(states[head])
        succ = successors(st)
        if reduce is not None and len(succ) > 1:
            succ = reduce(st, succ, expanded)
        if need_graph:
            edge_start.append(len(edge_dst))
        if not succ and not is_terminal(st):
            deadlocks.append(head)
        for label, nxt in succ:
            transitions += 1
            key = bytes(nxt)
            j = index.get(key)
            if j is None:
                j = len(states)
                if j >= max_states:
                    budget_reason = (
                        f"state budget reached: {j:,} states stored "
                        f"(--max-states {max_states:,}) at depth {depth + 1}"
                    )
                    break
                index[key] = j
                states.append(key)
                parent.append(head)
                visit(nxt, j)
            if trans_props:
                for p in trans_props:
                    if p.name not in found:
                        msg = p.on_transition(st, label, nxt)  # type: ignore[misc]
                        if msg:
                            found[p.name] = _Found(head, msg, label, nxt)
            if need_graph:
                edge_dst.append(j)
                edge_fam.append(fairness_family(label))
        if budget_reason:
            break
        head += 1
        if head % _CHECK_EVERY == 0:
            if progress is not None:
                progress(len(states), depth)
            if current_rss() - now0 > max_memory:
                budget_reason = (
                    f"memory budget reached: more than {max_memory:,} bytes "
                    "(--max-memory) "
                    f"at {len(states):,} states, depth {depth}"
                )
                break
    if need_graph:
        edge_start.append(len(edge_dst))

    return _Searched(states=states, parent=parent, found=found,
                     deadlocks=deadlocks, edges=(edge_start, edge_dst, edge_fam),
                     transitions=transitions, depth=depth,
                     budget_reason=budget_reason, engine="python",
                     state_budget_hit=budget_reason.startswith("state budget"))


KERNEL_AFTER = 20_000
"""``engine="auto"`` searches this many states interpreted before it starts
over with the compiled kernel (bench/RESULTS.md, "Semantics kernel")."""


def _kernel_may_run(ts: TransitionSystem) -> bool:
    """Whether the compiled search may take ``ts`` (without importing numba)."""
    from importlib.util import find_spec

    from ._saga_ts import SagaTransitionSystem

    # A workflow's system exists only once its module is imported: no import
    # here for a saga check.
    wts = sys.modules.get("verifier._workflow_ts")
    kinds = (SagaTransitionSystem,
             *((wts.WorkflowTransitionSystem,) if wts is not None else ()))
    return type(ts) in kinds and find_spec("numba") is not None


def _budget_check(
    *, progress: Progress | None, deadline: Deadline | None, max_memory: int,
    now0: int,
) -> Callable[[int, int], str]:
    """What a compiled search calls between chunks, with (states, depth):
    reports progress, then returns the reason of the first budget spent (time,
    then memory), or ``""`` to go on."""

    def check(count: int, depth: int) -> str:
        if progress is not None:
            progress(count, depth)
        if deadline is not None and deadline.expired():
            return deadline.reason(f"at {count:,} states, depth {depth}")
        if current_rss() - now0 > max_memory:
            return (f"memory budget reached: more than {max_memory:,} bytes "
                    f"(--max-memory) at {count:,} states, depth {depth}")
        return ""

    return check


def _kernel_search(
    ts: TransitionSystem, props: list[Property], *, need_graph: bool,
    max_states: int, max_memory: int, progress: Progress | None,
    deadline: Deadline | None, now0: int, workers: int = 1,
) -> _Searched | None:
    """The compiled search (``verifier._kernel_bfs``) for a single saga, then
    the same property checks as :func:`_python_search`, in the same order; or
    None when the compiled search cannot run on ``ts``."""
    if deadline is not None and deadline.expired():
        return None  # the interpreted search reports the spent budget
    check = _budget_check(progress=progress, deadline=deadline,
                          max_memory=max_memory, now0=now0)
    wts = sys.modules.get("verifier._workflow_ts")
    if wts is not None and type(ts) is wts.WorkflowTransitionSystem:
        from ._wf_kernel_bfs import kernel_search

        got = kernel_search(ts, props, need_graph=need_graph,  # type: ignore[arg-type]
                            max_states=max_states, check=check)
        if got is None:
            return None
        return _Searched(states=got.states, parent=got.parent,
                         found={n: _Found(*f) for n, f in got.found.items()},
                         deadlocks=[], edges=got.edges,
                         transitions=got.transitions, depth=got.depth,
                         budget_reason=got.budget_reason, engine="kernel")
    from ._saga_ts import SagaTransitionSystem

    if type(ts) is not SagaTransitionSystem:
        return None
    from saga_models import semantics as sem

    from . import _kernel_bfs as kb

    trans_props = [p for p in props if p.on_transition is not None]
    watch = 0
    if trans_props:
        for kind in ts.transition_kinds:
            watch |= 1 << (sem.encode_event(sem.Event(kind)) & 15)

    runner = None
    if workers > 1:
        from . import _kernel_parallel as kp

        runner = kp.runner(workers, len(ts.saga.steps))
    found = kb.search(ts.saga, ts.faults, graph=need_graph, watch_kinds=watch,
                      max_states=max_states, check=check, runner=runner)
    if found is None:
        return None
    states = kb.PackedStates(found)
    witnesses: Sequence[StateT] | None = None
    own = getattr(ts, "compiled_properties", ())
    if all(any(p is q for q in own) for p in props):
        first, trans_first, witnesses = _compiled_checks(ts, found, props)
    else:
        first, trans_first = _python_checks(ts, found, props, states)
    # A state is checked when the transition that discovers it is taken,
    # just before that transition's own checks: keep whichever came first.
    for name, (when, f) in trans_first.items():
        sf = first.get(name)
        if sf is None or _discovered_at(ts, found, sf.index) > when:
            first[name] = f
    deadlocks = [found.first_deadlock] if found.deadlocks else []
    edges = (array("q"), array("q"), array("q"))
    fair_cycle = None
    if need_graph:
        # The graph stays in the search's flat arrays; the fair-cycle
        # search runs compiled on them (verifier._kernel_liveness).
        from . import _kernel_liveness as kl

        def fair_cycle() -> tuple[list[int], int] | None:
            return kl.fair_cycle(ts, found)
    return _Searched(states=states, parent=found.parent,
                     found=first, deadlocks=deadlocks, edges=edges,
                     transitions=found.transitions, depth=found.depth,
                     budget_reason=found.budget_reason, engine="kernel",
                     complete_states=witnesses, fair_cycle=fair_cycle)


def _compiled_checks(
    ts: Any, found: Any, props: list[Property],
) -> tuple[dict[str, _Found], dict[str, tuple[tuple[int, int], _Found]],
           list[StateT] | None]:
    """The saga's own properties checked by the compiled pass
    (:mod:`verifier._kernel_props`), which says where each is first violated;
    the property's Python check then gives the message on that one state (and
    must agree). Returns the state findings, the transition findings and, for
    an ``on_complete`` check, one witness state per step reached."""
    from saga_models import semantics as sem

    from . import _kernel_props as kp

    by = {p.name: p for p in props}
    cc = by.get("compensation_completeness")
    ec = by.get("eventual_consistency")
    sp = by.get("structure")
    firsts = kp.property_pass(
        ts.saga, found, completeness=cc is not None, consistency=ec is not None,
        reached=sp is not None and sp.on_complete is not None,
        transitions=cc is not None and cc.on_transition is not None)
    assert firsts is not None  # the compiled search has just run

    def at_state(p: Property, idx: int) -> _Found:
        st = found.state(idx)
        msg = p.on_state(st) if p.on_state is not None else None
        if not msg and ts.is_terminal(st) and p.on_terminal is not None:
            msg = p.on_terminal(st)
        if not msg:
            raise AssertionError(
                f"the compiled check of {p.name} rejects state {idx} {st}, "
                "which the property's own check accepts")
        return _Found(idx, msg)

    first: dict[str, _Found] = {}
    if cc is not None and firsts.completeness_state >= 0:
        first[cc.name] = at_state(cc, firsts.completeness_state)
    if ec is not None and firsts.consistency_state >= 0:
        first[ec.name] = at_state(ec, firsts.consistency_state)
    trans_first: dict[str, tuple[tuple[int, int], _Found]] = {}
    if cc is not None and firsts.out_of_order >= 0:
        q = firsts.out_of_order
        wsrc, wpos = (int(a[q]) for a in found.watched)
        # The search keeps only source and position: the event and the
        # target are derived again, for this one transition.
        codes, dsts = found.watched_block(q, q + 1)
        label = sem.decode_event(codes[0])
        dst = dsts[0]
        msg = cc.on_transition(found.state(wsrc), label, dst)  # type: ignore[misc]
        if not msg:
            raise AssertionError(
                f"the compiled check of {cc.name} rejects transition "
                f"{label} from state {wsrc}, which the property accepts")
        trans_first[cc.name] = ((wsrc, wpos), _Found(wsrc, msg, label, dst))
    witnesses = None
    if sp is not None and sp.on_complete is not None:
        witnesses = [found.state(i) for i in firsts.reached if i >= 0]
    return first, trans_first, witnesses


def _python_checks(
    ts: TransitionSystem, found: Any, props: list[Property], states: Any,
) -> tuple[dict[str, _Found], dict[str, tuple[tuple[int, int], _Found]]]:
    """The property checks in Python over every state and every watched
    transition of a compiled search (properties the kernel does not know)."""
    from saga_models import semantics as sem

    trans_props = [p for p in props if p.on_transition is not None]
    first: dict[str, _Found] = {}
    # State checks, in index order (the order states were discovered in).
    state_props = [p for p in props if p.on_state is not None
                   or p.on_terminal is not None]
    if state_props:
        for idx, st in enumerate(states.iter_rows()):
            term = ts.is_terminal(st)
            for p in state_props:
                if p.name in first:
                    continue
                msg = p.on_state(st) if p.on_state is not None else None
                if not msg and term and p.on_terminal is not None:
                    msg = p.on_terminal(st)
                if msg:
                    first[p.name] = _Found(idx, msg)
            if len(first) == len(state_props):
                break
    # Transition checks on the transitions of the kinds they look at.
    trans_first: dict[str, tuple[tuple[int, int], _Found]] = {}
    wsrc, wpos = found.watched
    block = 1 << 14
    for lo in range(0, len(wsrc) if trans_props else 0, block):
        if len(trans_first) == len(trans_props):
            break
        hi = lo + block
        codes, dsts = found.watched_block(lo, hi)
        srcs = found.take(wsrc[lo:hi])
        for q, (src, pos, code) in enumerate(zip(
                wsrc[lo:hi].tolist(), wpos[lo:hi].tolist(), codes,
                strict=True)):
            label = sem.decode_event(code)
            for p in trans_props:
                if p.name not in trans_first:
                    msg = p.on_transition(srcs[q], label, dsts[q])  # type: ignore[misc]
                    if msg:
                        trans_first[p.name] = ((src, pos),
                                               _Found(src, msg, label, dsts[q]))
    return first, trans_first


def _lossy_search(
    ts: TransitionSystem, props: list[Property], compaction: object, *,
    engine: str, max_states: int, max_memory: int, progress: Progress | None,
    deadline: Deadline | None, now0: int,
) -> _Searched:
    """The compiled search with a lossy visited set
    (:mod:`verifier._kernel_compact`), with the budgets of the others."""
    from . import _kernel_compact as kc

    if engine == "python" or not kc.available(ts):
        raise CompactionUnsupported(
            "hash compaction and bitstate need the compiled search: a single "
            "saga (no composed instances or shared resources, not a "
            "workflow), with numba installed")

    check = _budget_check(progress=progress, deadline=deadline,
                          max_memory=max_memory, now0=now0)
    got = kc.search(ts, props, compaction, max_states=max_states,  # type: ignore[arg-type]
                    check=check)
    if got is None:
        raise CompactionUnsupported(
            "hash compaction and bitstate need the compiled search: a field "
            "of this saga's state outgrew its bits")
    return _Searched(
        states=got.states, parent=got.parent,
        found={name: _Found(v.index, v.message, v.label, v.target)
               for name, v in got.found.items()},
        deadlocks=[] if got.deadlock is None else [got.deadlock],
        edges=(array("q"), array("q"), array("q")),
        transitions=got.transitions, depth=got.depth,
        budget_reason=got.budget_reason, engine="kernel",
        state_budget_hit=got.budget_reason.startswith("state budget"),
        omission=got.omission)


def _discovered_at(ts: TransitionSystem, found: object, idx: int) -> tuple[int, int]:
    """(parent, position among the parent's successors) of the transition
    that discovered state ``idx``; (-1, -1) for the initial state."""
    if idx == 0:
        return (-1, -1)
    par = int(found.parent[idx])  # type: ignore[attr-defined]
    target = found.state(idx)  # type: ignore[attr-defined]
    for k, (_, nxt) in enumerate(ts.successors(found.state(par))):  # type: ignore[attr-defined]
        if tuple(nxt) == target:
            return (par, k)
    raise AssertionError("a state's parent has no transition to it")


def _concrete_tail(ts: TransitionSystem, real: StateT,
                   tail: tuple[object, StateT]) -> tuple[object, StateT]:
    """The real transition from ``real`` that the representative ``tail``
    stands for: same representative target, same event and anomaly notes up
    to instance renaming (so the same property is violated on it)."""
    label, rep = tail
    canonical = ts.canonical  # type: ignore[attr-defined]
    want = (getattr(label, "event", None), bool(getattr(label, "notes", ())))
    for lab, t in ts.concrete_successors(real):  # type: ignore[attr-defined]
        have = (getattr(lab, "event", None), bool(getattr(lab, "notes", ())))
        if canonical(t) == rep and have == want:
            return lab, t
    return tail  # pragma: no cover - the system is symmetric


def _label_between(ts: TransitionSystem, src: StateT, dst: bytes) -> object:
    for label, nxt in ts.successors(src):
        if bytes(nxt) == dst:
            return label
    raise AssertionError("trace reconstruction: no transition between states")


# --- strongly connected components and fairness ----------------------------------
def _sccs(n: int, start: array[int], dst: array[int]) -> list[list[int]]:
    """Non-trivial SCCs (a cycle of length >= 1), by iterative Tarjan."""
    order = array("q", [-1]) * n
    low = array("q", [0]) * n
    on_stack = bytearray(n)
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in range(n):
        if order[root] != -1:
            continue
        work = [(root, start[root])]
        order[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = 1
        while work:
            v, pos = work[-1]
            end = start[v + 1]
            if pos < end:
                work[-1] = (v, pos + 1)
                w = dst[pos]
                if order[w] == -1:
                    order[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = 1
                    work.append((w, start[w]))
                elif on_stack[w] and order[w] < low[v]:
                    low[v] = order[w]
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == order[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack[w] = 0
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or any(
                    dst[e] == v for e in range(start[v], start[v + 1])
                ):
                    out.append(comp)
    return out


def _fair_cycle(
    n: int, start: array[int], dst: array[int], fam: array[int]
) -> tuple[list[int], int] | None:
    """A reachable fair cycle as (prefix path + cycle, index where the cycle
    starts), or None. Strong fairness per family: a family enabled infinitely
    often must be taken infinitely often."""
    for comp in sorted(_sccs(n, start, dst), key=min):
        fair = _fair_subcomponent(set(comp), start, dst, fam)
        if fair is not None:
            return _lasso(fair, start, dst, fam)
    return None


def _fair_subcomponent(
    nodes: set[int], start: array[int], dst: array[int], fam: array[int]
) -> set[int] | None:
    # The subgraph on ``nodes``, numbered in increasing index order, through
    # the same Tarjan search as the whole graph: no networkx (most of a plain
    # ``sagaproof check``'s start-up time), and an order that does not depend
    # on how a set happens to iterate, so the compiled search over the same
    # graph (verifier._kernel_liveness) picks the same component and lasso.
    order = sorted(nodes)
    index = {v: i for i, v in enumerate(order)}
    sub_start = array("q", [0])
    sub_dst = array("q")
    for v in order:
        for e in range(start[v], start[v + 1]):
            w = index.get(dst[e])
            if w is not None:
                sub_dst.append(w)
        sub_start.append(len(sub_dst))
    for found in _sccs(len(order), sub_start, sub_dst):
        comp = {order[i] for i in found}
        enabled: set[int] = set()
        taken: set[int] = set()
        for v in comp:
            for e in range(start[v], start[v + 1]):
                f = fam[e]
                if f < 0:
                    continue
                enabled.add(f)
                if dst[e] in comp:
                    taken.add(f)
        unfair = enabled - taken
        if not unfair:
            return comp
        keep = {
            v
            for v in comp
            if not any(fam[e] in unfair for e in range(start[v], start[v + 1]))
        }
        if keep:
            sub = _fair_subcomponent(keep, start, dst, fam)
            if sub is not None:
                return sub
    return None


def _lasso(
    comp: set[int], start: array[int], dst: array[int], fam: array[int]
) -> tuple[list[int], int]:
    """A path from the initial state into ``comp`` and a cycle in ``comp`` that
    takes every fairness family the component takes."""
    entry = min(comp)  # smallest BFS index: the shallowest state
    prefix = _bfs_path(0, lambda v: v == entry, start, dst, None)
    assert prefix is not None
    needed = {
        fam[e]
        for v in comp
        for e in range(start[v], start[v + 1])
        if fam[e] >= 0 and dst[e] in comp
    }
    cycle = [entry]
    here = entry
    for f in sorted(needed):
        sources = {
            v for v in comp
            if any(fam[e] == f and dst[e] in comp
                   for e in range(start[v], start[v + 1]))
        }
        hop = _bfs_path(here, lambda v, s=sources: v in s, start, dst, comp)  # type: ignore[misc]
        assert hop is not None
        cycle.extend(hop[1:])
        here = hop[-1]
        e = next(e for e in range(start[here], start[here + 1])
                 if fam[e] == f and dst[e] in comp)
        here = dst[e]
        cycle.append(here)
    back = _bfs_path(here, lambda v: v == entry, start, dst, comp,
                     nonempty=len(cycle) == 1)
    assert back is not None
    cycle.extend(back[1:])
    return prefix + cycle[1:], len(prefix) - 1


def _bfs_path(
    src: int,
    goal: Callable[[int], bool],
    start: array[int],
    dst: array[int],
    within: set[int] | None,
    *,
    nonempty: bool = False,
) -> list[int] | None:
    if goal(src) and not nonempty:
        return [src]
    prev = {src: -1}
    queue = deque([src])
    while queue:
        v = queue.popleft()
        for e in range(start[v], start[v + 1]):
            w = dst[e]
            if within is not None and w not in within:
                continue
            if goal(w):
                path = [w, v]
                while prev[path[-1]] != -1:
                    path.append(prev[path[-1]])
                path.reverse()
                return path
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return None

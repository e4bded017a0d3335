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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from ._budget import Deadline, current_rss
from ._result import Counterexample, PropertyResult, Stats, TraceStep, Verdict
from ._ts import StateT, TransitionSystem

DEFAULT_MAX_STATES = 5_000_000
DEFAULT_MAX_MEMORY = 8 * 1024**3
_CHECK_EVERY = 8192
_CLOCK_EVERY = 512
"""The clock is read more often than RSS: a state can be slow to expand."""

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
) -> tuple[PropertyResult, ...]:
    """Explore ``ts`` breadth-first and return one result per property.

    Every budget that runs out (``max_states``, ``max_memory``, ``deadline``)
    leaves the undecided properties ``unknown``, with the budget named.
    """
    props = [p for p in ts.properties if properties is None or p.name in properties]
    started = time.perf_counter()
    rss0 = _rss_bytes()
    now0 = current_rss()
    need_graph = any(p.liveness for p in props)

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
        st = tuple(states[head])
        succ = successors(st)
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
    complete = not budget_reason
    if need_graph:
        edge_start.append(len(edge_dst))

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
        lasso = _fair_cycle(len(states), edge_start, edge_dst, edge_fam)
    elapsed = time.perf_counter() - started
    stats = Stats(
        states=len(states),
        transitions=transitions,
        seconds=elapsed,
        depth=depth,
        peak_memory_bytes=max(0, _rss_bytes() - rss0),
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
        if not complete:
            results.append(PropertyResult(verdict=Verdict.UNKNOWN,
                                          reason=budget_reason, **common))  # type: ignore[arg-type]
            continue
        if p.on_complete is not None:
            msg = p.on_complete([tuple(s) for s in states])
            if msg:
                results.append(PropertyResult(verdict=Verdict.VIOLATED, reason=msg,
                                              **common))  # type: ignore[arg-type]
                continue
        reason = f"all {len(states):,} reachable states explored"
        if p.liveness:
            reason += f"; under {ts.fairness}"
        results.append(PropertyResult(verdict=Verdict.HOLDS, reason=reason, **common))  # type: ignore[arg-type]
    return tuple(results)


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
    # The subgraph on ``nodes``, numbered in the set's own order, through the
    # same Tarjan search as the whole graph: no networkx (most of a plain
    # ``sagaproof check``'s start-up time), and the components come in the
    # order networkx gave them (a depth-first search from each node in turn,
    # neighbours in edge order, a component when its root finishes), so the
    # lasso chosen is the same.
    order = list(nodes)
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

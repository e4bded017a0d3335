"""The worst-case duration of every run of an ASL state machine.

The machine-level ``TimeoutSeconds`` can end a run only if some run may last
longer. A run's duration is bounded by what the file itself bounds (Amazon
States Language specification, "Task" ``TimeoutSeconds``, "Retry"
``IntervalSeconds``/``BackoffRate``/``MaxDelaySeconds``/``JitterStrategy``,
"Wait" ``Seconds``, "Parallel"):

- a Task attempt lasts at most its ``TimeoutSeconds``; a Task is attempted at
  most ``1 + sum(MaxAttempts)`` times (each Retry entry keeps its own count),
  and the retry delays add up per entry (``IntervalSeconds x BackoffRate^k``,
  capped by ``MaxDelaySeconds``; ``FULL`` jitter only shortens a delay);
- a Wait with literal ``Seconds`` lasts exactly that;
- a Parallel lasts as long as its longest branch, per attempt (its Retry
  re-runs every branch);
- Pass, Choice, Succeed and Fail take no time of their own;
- a run follows ``Next``, Choice targets and Catch routes: its worst case is
  the longest such path.

Anything the file does not bound makes the worst case unbounded (``None``): a
Task without a literal ``TimeoutSeconds`` (``HeartbeatSeconds`` only bounds
the gap between heartbeats; a path or an expression is known at run time), a
Retry value that is not a literal, a retry "forever", a Wait on a path or a
timestamp, a Map (its items, hence its iterations, are known at run time),
and any loop (polling).
"""

from __future__ import annotations

from collections.abc import Callable

from ._asl import FOREVER
from ._graph import TASK_KINDS, Graph, Node


def worst_case(graph: Graph) -> float | None:
    """The longest any run of ``graph`` can last, in seconds; None when the
    file does not bound it.

    >>> from saga_models._span import UNKNOWN_SPAN
    >>> wait = Node(name="W", kind="pass", span=UNKNOWN_SPAN,
    ...             raw={"Type": "Wait", "Seconds": 5})
    >>> worst_case(Graph(start="W", nodes={"W": wait}, span=UNKNOWN_SPAN))
    5.0
    """
    after = {n.name: _edges(n) for n in graph.nodes.values()}
    return _longest(graph, after)(graph.start)


def latest_ends(graph: Graph) -> dict[str, float | None]:
    """Per state of ``graph``: the latest a run can leave it, in seconds
    since the run started (the longest path from the start through it);
    None when unbounded (a loop before it, or an unbounded state on the
    way). A machine timeout of T seconds cannot expire while a run is in a
    state it always leaves before T.

    >>> from saga_models._span import UNKNOWN_SPAN
    >>> def wait(name, seconds, nxt):
    ...     return Node(name=name, kind="pass", span=UNKNOWN_SPAN, next=nxt,
    ...                 raw={"Type": "Wait", "Seconds": seconds})
    >>> g = Graph(start="A", span=UNKNOWN_SPAN,
    ...           nodes={"A": wait("A", 5, "B"), "B": wait("B", 7, None)})
    >>> latest_ends(g)
    {'A': 5.0, 'B': 12.0}
    """
    into: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for n in graph.nodes.values():
        for t in _edges(n):
            if t in into:
                into[t].append(n.name)
    end = _longest(graph, into)
    return {n: end(n) for n in graph.nodes}


def _edges(node: Node) -> list[str]:
    """Where a run may go from ``node``: ``Next``, Choice targets, Catch
    routes."""
    return [t for t in (node.next, *node.choices, node.default,
                        *(c.next for c in node.catches)) if t is not None]


def _longest(graph: Graph, edges: dict[str, list[str]]
             ) -> Callable[[str], float | None]:
    """The longest a path along ``edges`` from a state lasts, the state's
    own cost included (memoised): successors give the worst case of a run
    from there, predecessors the latest a run leaves it. None when a state
    on the way is unbounded, missing, or on a loop (as many rounds as the
    data says): every state on that loop and every one computed through it
    is unbounded too, since the None reaches each of them."""
    done: dict[str, float | None] = {}
    on_path: set[str] = set()

    def longest(name: str) -> float | None:
        if name in done:
            return done[name]
        if name in on_path or name not in graph.nodes:
            return None
        on_path.add(name)
        around = [longest(t) for t in edges[name]]
        on_path.discard(name)
        own = _cost(graph.nodes[name])
        total = None if own is None or None in around else own + max(
            [a for a in around if a is not None], default=0.0)
        done[name] = total
        return total

    return longest


def _cost(node: Node) -> float | None:
    """The longest one visit of ``node`` lasts, all its attempts included."""
    raw = node.raw
    if raw.get("Type") == "Map":
        return None
    if node.kind in TASK_KINDS:
        attempt = _literal(raw.get("TimeoutSeconds"))
        if attempt is None or "TimeoutSecondsPath" in raw:
            return None
    elif node.kind == "parallel":
        branches = [worst_case(b) for b in node.branches]
        if None in branches:
            return None
        attempt = max([b for b in branches if b is not None], default=0.0)
    elif raw.get("Type") == "Wait":
        return _literal(raw.get("Seconds"))
    else:
        return 0.0
    retries = _retries(raw.get("Retry"))
    if retries is None:
        return None
    count, delays = retries
    return (1 + count) * attempt + delays


def _retries(entries: object) -> tuple[int, float] | None:
    """(retries at most, their delays summed) over every Retry entry."""
    count, delays = 0, 0.0
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            return None
        most = _literal(entry.get("MaxAttempts", 3))
        interval = _literal(entry.get("IntervalSeconds", 1))
        rate = _literal(entry.get("BackoffRate", 2.0))
        cap = _literal(entry.get("MaxDelaySeconds", 0)) if \
            "MaxDelaySeconds" in entry else 0.0
        if most is None or interval is None or rate is None or cap is None \
                or most >= FOREVER:
            return None
        spent = _delays(int(most), interval, rate, cap)
        if spent is None:
            return None
        delays += spent
        count += int(most)
    return count, delays


def _delays(most: int, interval: float, rate: float, cap: float
            ) -> float | None:
    """The delays before ``most`` retries summed: ``interval x rate^k``,
    each capped by ``cap`` (0: no cap); None past any machine timeout."""
    if rate == 1.0 or interval == 0.0:
        return most * (min(interval, cap) if cap else interval)
    if rate < 1.0:  # ASL refuses it; the geometric sum still bounds it
        return interval * (1 - rate ** most) / (1 - rate)
    total, delay, k = 0.0, interval, 0
    # Grows geometrically: within a few hundred rounds it reaches the cap
    # (then every later delay is the cap) or passes any timeout (a year).
    while k < most and (not cap or delay < cap):
        total += delay
        delay *= rate
        k += 1
        if total > _BEYOND:
            return None
    return total + (most - k) * cap


_BEYOND = 1e12
"""Seconds past any ``TimeoutSeconds`` (Step Functions caps them at a year)."""


def _literal(value: object) -> float | None:
    """A number written in the file; None for a path, placeholder or
    expression (known only at deploy or run time)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and \
            value >= 0:
        return float(value)
    return None

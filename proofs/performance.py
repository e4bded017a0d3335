"""Theorem 5.4 (performance bound), refuted as stated and made exact.

Seed claim: in a system of n services the saga's worst-case time is O(n^2) and
its space O(n).

Findings, each checked: with unbounded retries or compensations retried
forever there is no worst case at all (the state graph has a cycle: time is
finite only under fairness, and unbounded); with bounded retries the exact
worst case number of transitions of an idempotent chain is the sympy closed
form ``2*n*r + 2*(n - 1 + tau)*m + 2*c`` (r attempts per action, m attempts
per compensation before escalation, c crashes, tau = 1 when steps have a
timeout), checked against the longest path of the explicit state graph. So
the tight bound is Theta(n*(r + m) + c): linear in n, and O(n^2) is true but
not tight. Space: a state is 6 + 6n bounded integers, Theta(n), as claimed.
"""

from __future__ import annotations

import itertools

import networkx as nx
import sympy as sp

from saga_models import FaultModel, Saga, SagaBuilder
from saga_models import semantics as sem

from ._result import ProofResult, Status

n, r, m, c, tau = sp.symbols("n r m c tau", integer=True, nonnegative=True)

CLAIM = "worst-case time O(n^2), space O(n) for a saga of n services"


def worst_case_transitions() -> sp.Expr:
    """The closed form, assembled from the worst path's parts: every action
    uses all r attempts (a dispatch and a reply each); every step whose action
    may have taken effect (all but a definitely failed last step, which with a
    timeout may be unknown) uses all m compensation attempts; every crash adds
    a crash and a recovery; with timeouts, a command whose attempt ended
    unknown may still be delivered late: one late delivery per step whose
    attempt can be superseded by a retry (every step when r > 1), else only
    the last, failing step's."""
    forward = n * r * 2
    compensations = (n - 1 + tau) * m * 2
    crashes = 2 * c
    late = tau * sp.Piecewise((n, r > 1), (1, True))
    return forward + compensations + crashes + late


def chain(
    size: int, attempts: int | None, comp_attempts: int | None, timeout: bool
) -> Saga:
    """An idempotent chain of compensatable steps."""
    b = SagaBuilder(f"chain{size}")
    for i in range(size):
        b.step(
            f"s{i}",
            participant=f"p{i}",
            action="do",
            compensation="undo",
            retry={"max_attempts": attempts},
            timeout=1.0 if timeout else None,
        )
    b.compensation_policy(max_attempts=comp_attempts)
    return b.build()


def state_graph(saga: Saga, faults: FaultModel) -> nx.DiGraph:
    """The explicit state graph, through the shared semantics."""
    g = nx.DiGraph()
    init = sem.initial_state(saga)
    g.add_node(init)
    todo, seen = [init], {init}
    while todo:
        s = todo.pop()
        for e in sem.enabled(saga, s, faults):
            t = sem.apply(saga, s, e)
            g.add_edge(s, t)
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return g


def run(max_n: int = 3) -> ProofResult:
    """Check the closed form on every size up to ``max_n`` and the cycle cases."""
    formula = worst_case_transitions()
    checked, mismatches = 0, []
    for size, att, comp, to, crash in itertools.product(
        range(1, max_n + 1), (1, 2, 3), (1, 2), (False, True), (0, 1, 2)
    ):
        faults = FaultModel(timeout=to, crashes=crash, duplicates=0)
        g = state_graph(chain(size, att, comp, to), faults)
        longest = nx.dag_longest_path_length(g)
        expected = formula.subs({n: size, r: att, m: comp, c: crash, tau: int(to)})
        checked += 1
        if longest != expected:
            mismatches.append((size, att, comp, to, crash, longest, expected))
    cyclic = [
        not nx.is_directed_acyclic_graph(
            state_graph(chain(2, a, p, True), FaultModel(duplicates=0))
        )
        for a, p in ((None, 1), (1, None))
    ]
    width = sp.Integer(sem.HEADER) + sp.Integer(sem.WIDTH) * n
    ok = not mismatches and all(cyclic)
    return ProofResult(
        name="performance",
        claim=CLAIM,
        status=Status.REFUTED_AND_CORRECTED if ok else Status.UNKNOWN,
        statement=(
            f"worst-case transitions = {formula} for bounded retries "
            "(Theta(n*(r+m)+c), linear in n); unbounded when retries or "
            f"compensations are unbounded; state size = {width} integers "
            "(Theta(n))"
        ),
        assumptions=(
            "idempotent compensatable chain, faults fail, comp_fail and late "
            "on, timeouts as tau, crashes c, no duplicates",
            "action retry bound r, compensation policy: escalate after m attempts",
            "time = number of transitions of the longest execution",
        ),
        counterexample=(
            "unbounded: retry forever (or compensations forever) makes "
            "the state graph cyclic, so no finite worst case exists"
        ),
        witness={
            "closed_form": formula,
            "checked_sizes": checked,
            "state_width": width,
        },
        detail=f"mismatches: {mismatches}" if mismatches else "",
    )

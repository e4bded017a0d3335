"""SagaBench (../shared/bench/SAGABENCH.md) cross-validated by a checked mapping.

SagaBench's actions are atomic; sagaproof's steps are a dispatch and a reply,
and its semantics forgets dead counters (the retry count of an aborted saga) and
ends an abort as soon as the last compensation answers (SagaBench has a
separate ``Abort`` move from ``comp`` with ``k = 0``). So the check is:

1. an independent enumerator of SAGABENCH.md, written here, reaches exactly
   the published number of states;
2. every reachable sagaproof state, projected onto SagaBench's variables, is
   the image of a SagaBench state under the normalisation ``norm`` (forget the
   retry count once a saga is compensating or aborted; ``comp`` with ``k = 0``
   is ``aborted``), and every image is reached: the two sets are equal;
3. every sagaproof transition projects to a stutter or to the image of a
   SagaBench transition (sagaproof simulates nothing SagaBench cannot do).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from saga_models import loads
from saga_models import semantics as sem
from saga_models.instances import BIAS
from saga_models.semantics import AT, EF, HEADER, PHASE, ST, WIDTH, Phase, Status
from verifier._multi_ts import MultiSagaTransitionSystem

FWD, COMP, COMMITTED, ABORTED = range(4)
EXAMPLE = Path(__file__).parent / "sagabench_a.saga.yaml"


def sagabench_states(k: int, n: int, r: int, total: int) -> tuple[
        set[tuple[int, ...]], set[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """SAGABENCH.md's reachable states (and transitions), by plain BFS.

    A state is ``(stock, phase_1, k_1, retries_1, ..., phase_K, k_K,
    retries_K)``.
    """
    init = (total, *(FWD, 0, 0) * k)
    seen = {init}
    edges: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    todo = [init]
    while todo:
        s = todo.pop()
        stock = s[0]
        for i in range(k):
            b = 1 + 3 * i
            ph, held, retries = s[b:b + 3]
            nxt: list[tuple[int, ...]] = []

            def put(new_stock: int, phase: int, kk: int, rr: int,
                    _s: tuple[int, ...] = s, _b: int = b) -> tuple[int, ...]:
                return (new_stock, *_s[1:_b], phase, kk, rr, *_s[_b + 3:])

            if ph == FWD and held < n:
                if stock > 0:
                    nxt.append(put(stock - 1, COMMITTED if held + 1 == n else FWD,
                                   held + 1, 0))
                if retries < r:
                    nxt.append(put(stock, FWD, held, retries + 1))
                if retries == r or stock == 0:
                    nxt.append(put(stock, COMP, held, retries))
            if ph == COMP and held > 0:
                nxt.append(put(stock + 1, COMP, held - 1, retries))
            if ph == COMP and held == 0:
                nxt.append(put(stock, ABORTED, held, retries))
            for t in nxt:
                edges.add((s, t))
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
    return seen, edges


def norm(s: tuple[int, ...]) -> tuple[int, ...]:
    """What sagaproof's semantics can see of a SagaBench state."""
    out = [s[0]]
    for b in range(1, len(s), 3):
        ph, held, retries = s[b:b + 3]
        if ph == COMP and held == 0:
            ph = ABORTED
        if ph in (COMP, ABORTED):
            retries = 0
        out += [ph, held, retries]
    return tuple(out)


def project(ts: MultiSagaTransitionSystem, state: tuple[int, ...]) -> tuple[int, ...]:
    """A sagaproof state as SagaBench's variables."""
    out = [state[0] - BIAS]
    for inst in ts.comp.instances:
        out += _project_instance(len(inst.saga.steps), state[inst.off:inst.loc])
    return tuple(out)


@functools.cache
def _project_instance(n: int, single: tuple[int, ...]) -> tuple[int, int, int]:
    ph = single[PHASE]
    if ph == Phase.COMPLETED:
        return (COMMITTED, n, 0)
    if ph in (Phase.COMPENSATED, Phase.FAILED):
        return (ABORTED, 0, 0)
    if ph == Phase.COMPENSATING:
        held = sum(1 for j in range(n) if single[HEADER + WIDTH * j + EF])
        return (COMP, held, 0)
    assert ph == Phase.RUNNING, ph
    sts = [single[HEADER + WIDTH * j + ST] for j in range(n)]
    held = sts.count(Status.OK)
    retries = 0
    if held < n:
        at = single[HEADER + WIDTH * held + AT]
        retries = {Status.PENDING: 0, Status.RUNNING: at - 1,
                   Status.RETRY_FAILED: at}[Status(sts[held])]
    return (FWD, held, retries)


def sagabench_definition(k: int, n: int, r: int, total: int) -> str:
    """The SagaBench saga as sagaproof YAML (config A is the shipped example)."""
    step = ("  - {{name: s{j}, participant: warehouse, action: take, "
            "compensation: give_back, retry: {{max_attempts: {a}}}, "
            "effect: {{guard: 'stock > 0', update: {{stock: 'stock - 1'}}}}, "
            "compensation_effect: {{update: {{stock: 'stock + 1'}}}}}}\n")
    return (f"saga: sagabench\ninstances: {k}\nresources: {{stock: {{initial: "
            f"{total}}}}}\nsteps:\n"
            + "".join(step.format(j=j + 1, a=r + 1) for j in range(n)))


Reference = Callable[[int, int, int, int], tuple[
    set[tuple[int, ...]], set[tuple[tuple[int, ...], tuple[int, ...]]]]]


def cross_validate(k: int, n: int, r: int, total: int, *,
                   reference: Reference = sagabench_states) -> tuple[int, int]:
    """Run the three checks; return (SagaBench states, sagaproof states)."""
    ref, ref_edges = reference(k, n, r, total)
    image = {norm(s) for s in ref}
    image_edges = {(norm(a), norm(b)) for a, b in ref_edges}
    del ref_edges
    saga = loads(sagabench_definition(k, n, r, total))
    ts = MultiSagaTransitionSystem([saga] * k, sem.FaultModel.parse("fail"),
                                   track_anomalies=False)
    (init,) = ts.initial()
    seen = {bytes(init)}
    todo = [init]
    projected = set()
    while todo:
        s = todo.pop()
        ps = project(ts, s)
        projected.add(ps)
        for label, t in ts.successors(s):
            pt = project(ts, t)
            if pt != ps and (ps, pt) not in image_edges:
                raise AssertionError(f"{ps} -> {pt} by {label} is no SagaBench "
                                     "move")
            key = bytes(t)
            if key not in seen:
                seen.add(key)
                todo.append(t)
    assert projected == image
    return len(ref), len(seen)


@pytest.mark.parametrize(("k", "n", "r", "total"), [
    (1, 2, 1, 1), (2, 2, 1, 3), (2, 3, 2, 4), (3, 2, 1, 3), (3, 2, 2, 2),
])
def test_small_configurations_map_exactly(k: int, n: int, r: int,
                                          total: int) -> None:
    cross_validate(k, n, r, total)


def test_the_seeded_bug_breaks_the_mapping() -> None:
    # The check can fail: SagaBench with its seeded bug (a saga aborts with a
    # step still held) reaches states sagaproof's compensation never does.
    def buggy(k: int, n: int, r: int, total: int) -> tuple[
            set[tuple[int, ...]], set[tuple[tuple[int, ...], tuple[int, ...]]]]:
        states, edges = sagabench_states(k, n, r, total)
        for s in list(states):
            for b in range(1, len(s), 3):
                if s[b] == COMP and s[b + 1] == 1:
                    t = (*s[:b], ABORTED, 1, s[b + 2], *s[b + 3:])
                    states.add(t)
                    edges.add((s, t))
        return states, edges

    with pytest.raises(AssertionError):
        cross_validate(2, 2, 1, 3, reference=buggy)


def test_the_shipped_definition_is_config_a() -> None:
    from saga_models import load

    shipped = load(EXAMPLE)
    assert shipped.instances == 4
    assert shipped.to_dict()["steps"] == loads(
        sagabench_definition(4, 4, 2, 10)).to_dict()["steps"]
    assert shipped.resources[0].initial == 10


@pytest.mark.slow
def test_config_a_reaches_the_published_count() -> None:
    # SAGABENCH.md config A (K=4, N=4, R=2, TOTAL=10): 385,251 states, which
    # TLC, SPIN, Rumur and a plain Python BFS agree on. ~2 minutes on one core.
    ref, ours = cross_validate(4, 4, 2, 10)
    assert ref == 385_251
    assert ours == 2_766_984  # sagaproof's own count (dispatch and reply apart)

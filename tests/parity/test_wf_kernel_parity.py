"""The workflow kernel: interpreted, compiled and the hand-written oracle agree.

``saga_models._wf_kernel`` is the core of the workflow semantics: the runtime
runs it interpreted (``semantics.react``/``effect``/``timers_enabled``), the
explicit checker's successor relation is ``semantics.enabled``/``apply`` over
it, and the checker's fast path runs it compiled with numba over packed states.
For generated workflows (random structure, ``choose`` outcomes, timers,
``ignore`` lists, de-duplicating inboxes, counters, guards drawn from the whole
expression language, every bus contract, capacity and duplicate budget, with
and without the de-duplication reduction), these tests check on every reachable
state (a breadth-first prefix for big models) that

* the interpreted kernel gives exactly the successors (steps, order, next
  states) of the pre-kernel semantics (``reference_workflow_semantics``), and
  exactly its ``react``, ``effect`` and ``timers_enabled`` answers;
* every guard's bytecode gives the value of :meth:`Expr.evaluate`;
* the compiled kernel gives exactly the interpreted kernel's successors;

and, per whole run, that the compiled search and the interpreted one give the
same verdicts, reasons, counts and counterexamples. A seeded bug (one entry of
the compiled kernel's table changed) must be caught.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest
import reference_workflow_semantics as ref
from _kernels import compiled_or_skip, compiled_successors, engines_agree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_models import FaultModel
from saga_models import _wf_kernel as K
from saga_models.strategies import random_workflows
from saga_models.workflow import Workflow, WorkflowBuilder, parse_expr
from saga_models.workflow import semantics as sem
from verifier._explicit import explore
from verifier._workflow_ts import WorkflowTransitionSystem

np = pytest.importorskip("numpy")
wkb = pytest.importorskip("verifier._wf_kernel_bfs")


def _compiled() -> dict[str, Any]:
    return compiled_or_skip(wkb)


# --- guards from the whole expression language ----------------------------------
@functools.cache
def _numbers(counters: tuple[str, ...]) -> st.SearchStrategy[str]:
    # One strategy per set of counter names, built once: a recursive strategy
    # built afresh for every guard cost more than half of generating the
    # workflows (Hypothesis draws the same examples from either).
    leaves = st.one_of(st.integers(-3, 4).map(str),
                       st.sampled_from(["true", "false", "True"]),
                       *([st.sampled_from(counters)] if counters else []))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        pair = st.tuples(inner, inner)
        return st.one_of(
            pair.map(lambda p: f"({p[0]} + {p[1]})"),
            pair.map(lambda p: f"({p[0]} - {p[1]})"),
            pair.map(lambda p: f"({p[0]} * {p[1]})"),
            inner.map(lambda a: f"-({a})"),
            inner.map(lambda a: f"abs({a})"),
            pair.map(lambda p: f"min({p[0]}, {p[1]})"),
            st.lists(inner, min_size=1, max_size=3).map(
                lambda xs: f"max(({', '.join(xs)},))"),
        )

    return st.recursive(leaves, extend, max_leaves=4)


@st.composite
def _conditions(draw: st.DrawFn, wf: Workflow) -> str:
    num = _numbers(tuple(c.name for c in wf.counters))
    svc = st.sampled_from(wf.services)
    ops = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])

    def atom() -> str:
        pick = draw(st.integers(0, 6))
        if pick == 0:
            return f"{draw(num)} {draw(ops)} {draw(num)}"
        if pick == 1:
            return f"{draw(num)} {draw(ops)} {draw(num)} {draw(ops)} {draw(num)}"
        if pick == 2:
            items = draw(st.lists(num, max_size=3))
            neg = draw(st.sampled_from(["in", "not in"]))
            return f"{draw(num)} {neg} ({', '.join(items)}{',' if items else ''})"
        if pick in (3, 4):
            s = draw(svc)
            names = [*s.states, "NOWHERE"]
            if pick == 3:
                eq = draw(st.sampled_from(["==", "!="]))
                return f"{s.name}.state {eq} '{draw(st.sampled_from(names))}'"
            lits = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
            neg = draw(st.sampled_from(["in", "not in"]))
            return f"{s.name}.state {neg} ({', '.join(repr(x) for x in lits)},)"
        if pick == 5:
            a, b = draw(svc), draw(svc)
            eq = draw(st.sampled_from(["==", "!="]))
            return f"{a.name}.state {eq} {b.name}.state"
        return draw(num)

    parts = [atom() for _ in range(draw(st.integers(1, 3)))]
    text = f" {draw(st.sampled_from(['and', 'or']))} ".join(f"({p})" for p in parts)
    return f"not ({text})" if draw(st.booleans()) else text


@st.composite
def _workflows(draw: st.DrawFn, max_services: int = 2) -> Workflow:
    """The shared generator, with its guards replaced (on a coin flip each)
    by conditions drawn from the whole language."""
    wf = draw(random_workflows(max_services=max_services, max_states=3,
                               max_events=3))
    services = []
    for s in wf.services:
        trans = []
        for t in s.transitions:
            guard = (parse_expr(draw(_conditions(wf))) if draw(st.booleans())
                     else t.guard)
            trans.append(dataclasses.replace(t, guard=guard))
        services.append(dataclasses.replace(s, transitions=tuple(trans)))
    return dataclasses.replace(wf, services=tuple(services))


# --- the walk ------------------------------------------------------------------------
def first_disagreement(wf: Workflow, duplicates: int, reduce: bool, *,
                       limit: int, tab: Any = None) -> str | None:
    """Walk up to ``limit`` reachable states breadth-first; at each, compare
    the three implementations. The first difference, or None. ``tab``
    replaces the compiled kernel's table (the seeded-bug test)."""
    g = _compiled()
    t = sem.tables(wf)
    ctab = np.array(t.ktab, np.int64) if tab is None else tab
    buf = np.zeros(t.max_codes, np.int64)
    stack = np.zeros(t.stack, np.int64)
    init = sem.initial_state(wf, duplicates=duplicates)
    if init != ref.initial_state(wf, duplicates=duplicates):
        return f"initial states differ: {init} != {ref.initial_state(wf)}"
    guards = [(svc, tr) for svc in range(len(wf.services))
              for tr in range(len(wf.services[svc].transitions))
              if wf.services[svc].transitions[tr].guard is not None]
    seen = {init}
    queue = [init]
    for walked, state in enumerate(queue):
        if walked >= limit:
            break
        succ = [(s, sem.apply(wf, state, s))
                for s in sem.enabled(wf, state, reduce=reduce)]
        oracle = [(s, ref.apply(wf, state, s))
                  for s in ref.enabled(wf, state, reduce=reduce)]
        if succ != oracle:
            return f"interpreted kernel vs oracle at {state}: {succ} != {oracle}"
        problem = _runtime_calls(wf, state, guards)
        if problem:
            return problem
        arr = np.array(state, np.int64)
        count = g["enabled_codes"](arr, ctab, int(reduce), buf, stack)
        compiled = compiled_successors(g, arr, ctab, buf[:count].tolist(),
                                       decode=sem.decode_step, what="step")
        if isinstance(compiled, str):
            return compiled
        if compiled != succ:
            return f"compiled vs interpreted at {state}: {compiled} != {succ}"
        for _, nxt in succ:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return None


def _runtime_calls(wf: Workflow, state: tuple[int, ...],
                   guards: list[tuple[int, int]]) -> str | None:
    """What the runtime asks (``react``, ``effect``, ``timers_enabled``) and
    every guard, against the oracle, in ``state``."""
    t = sem.tables(wf)
    for svc, s in enumerate(wf.services):
        for name in s.events:
            for dup in (False, True):
                ev = t.events.index(name)
                got = sem.react(wf, state, svc, ev, duplicate=dup)
                want = ref.react(wf, state, svc, ev, duplicate=dup)
                if got != want:
                    return f"react at {state}: {got} != {want}"
                for step in got:
                    if sem.effect(wf, state, step) != ref.effect(wf, state, step):
                        return f"effect of {step} at {state}"
    timers = sem.timers_enabled(wf, state)
    if timers != ref.timers_enabled(wf, state):
        return f"timers at {state}: {timers}"
    for step in timers:
        if sem.effect(wf, state, step) != ref.effect(wf, state, step):
            return f"effect of {step} at {state}"
    counters, names = ref._env(ref.tables(wf), state)
    tab = t.ktab
    for svc, tr in guards:
        expr = wf.services[svc].transitions[tr].guard
        assert expr is not None
        row = tab[K.W_TR] + (tab[tab[K.W_TRBASE] + svc] + tr) * K.NTR
        pc = tab[K.W_CODE] + tab[row + K.TR_GUARD]
        got_g = K.guard_holds(state, tab, pc, [0] * t.stack)
        if got_g != bool(expr.evaluate(counters, names)):
            return f"guard {expr.text!r} at {state}: {got_g}"
    return None


def _whole_run(wf: Workflow, duplicates: int, reduce: bool,
               max_states: int) -> None:
    ts = WorkflowTransitionSystem(wf, FaultModel(duplicates=duplicates),
                                  reduce=reduce)
    engines_agree(ts, max_states=max_states)


_SETTINGS: dict[str, Any] = {
    "deadline": None, "derandomize": True, "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}


@given(wf=_workflows(), duplicates=st.integers(0, 2), reduce=st.booleans())
@settings(max_examples=100, **_SETTINGS)
def test_wf_kernel_parity_100_generated(wf: Workflow, duplicates: int,
                                        reduce: bool) -> None:
    """100 generated workflows: successors and the runtime's calls state by
    state (up to 200 states each), then the whole run (up to 2,000 states)
    both ways."""
    assert first_disagreement(wf, duplicates, reduce, limit=200) is None
    _whole_run(wf, duplicates, reduce, 2_000)


@pytest.mark.slow
@given(wf=_workflows(max_services=3), duplicates=st.integers(0, 2),
       reduce=st.booleans())
@settings(max_examples=1_000, **_SETTINGS)
def test_wf_kernel_parity_1000_generated(wf: Workflow, duplicates: int,
                                         reduce: bool) -> None:
    """1,000 generated workflows of up to three services: successors and the
    runtime's calls on up to 500 reachable states each, the whole run up to
    5,000 states."""
    assert first_disagreement(wf, duplicates, reduce, limit=500) is None
    _whole_run(wf, duplicates, reduce, 5_000)


def _retries(*, bound: str = "tries <= 2") -> Workflow:
    return (WorkflowBuilder("seeded", delivery="at_least_once", order="fifo")
            .start("pay")
            .service("payments", initial="IDLE", final=["PAID", "GAVE_UP"])
            .on("IDLE", "pay", to="TRYING", emit=["attempt"], add={"tries": 1})
            .on("TRYING", "ok", to="PAID")
            .on("TRYING", "fail", guard="tries < 2 and payments.state != 'PAID'",
                to="TRYING", emit=["attempt"], add={"tries": 1})
            .on("TRYING", "fail", to="GAVE_UP")
            .service("gateway", initial="IDLE")
            .on("IDLE", "attempt", choose=[{"to": "IDLE", "emit": ["ok"]},
                                           {"to": "IDLE", "emit": ["fail"]}])
            .counter("tries", initial=0, cap=3)
            .invariant(bound, name="bound")
            .outcome(payments="PAID").outcome(payments="GAVE_UP")
            .build())


def _entry(tab: Any, part: int, offset: int) -> int:
    return int(tab[part]) + offset


@pytest.mark.parametrize("where", [
    "branch_target", "guard_constant", "emitted_event", "counter_cap", "dedup",
])
def test_seeded_table_bug_is_caught(where: str) -> None:
    """One entry of the compiled kernel's table changed (an outcome's target,
    a guard's constant, an emitted event, a counter's cap, an inbox's
    de-duplication): the parity walk must report it, and it reports nothing
    with the true table."""
    wf = _retries()
    assert first_disagreement(wf, 1, False, limit=5_000) is None
    tab = np.array(sem.tables(wf).ktab, np.int64)
    if where == "branch_target":
        tab[_entry(tab, K.W_BR, 0 * K.NBR + K.BR_TO)] += 1
    elif where == "guard_constant":
        code = tab[tab[K.W_CODE]:tab[K.W_CODE] + 40].tolist()
        at = next(i for i in range(0, len(code), 2) if code[i] == K.OP_PUSH)
        tab[tab[K.W_CODE] + at + 1] += 1
    elif where == "emitted_event":
        tab[_entry(tab, K.W_EMIT, 0)] = sem.tables(wf).events.index("ok")
    elif where == "counter_cap":
        tab[_entry(tab, K.W_CCAP, 0)] = 1
    else:
        tab[_entry(tab, K.W_DEDUP, 0)] = 1
    assert first_disagreement(wf, 1, False, limit=5_000, tab=tab)


def test_compiled_search_equals_interpreted_on_violations() -> None:
    """A workflow whose invariant is broken by a retry, and whose
    at-least-once bus duplicates deliveries nobody handles: both searches give
    the same shortest counterexamples, and the same budget stop."""
    bad = _retries(bound="tries <= 1")
    ts = WorkflowTransitionSystem(bad, FaultModel(duplicates=2))
    fast = explore(ts, engine="kernel")
    assert any(r.counterexample is not None for r in fast)
    _whole_run(bad, 2, False, 5_000_000)
    _whole_run(bad, 2, True, 5_000_000)
    _whole_run(bad, 2, False, 7)


@pytest.mark.parametrize("budget", [*range(2, 40, 6), *range(40, 61)])
def test_every_budget_stop_is_the_same(budget: int) -> None:
    """A state budget that stops the search anywhere (the model has 60
    states): the states stored but not expanded yet are checked as the
    interpreted search checks them when it stores them (between 45 and 58,
    one of them is quiescent in GAVE_UP, which is no declared outcome)."""
    wf = _retries()
    wf = dataclasses.replace(wf, outcomes=wf.outcomes[:1])
    _whole_run(wf, 1, False, budget)


def test_auto_engine_switches_to_the_kernel_past_its_threshold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``engine="auto"``: a workflow smaller than ``KERNEL_AFTER`` states is
    searched interpreted; a bigger one starts over compiled, with the same
    results."""
    import verifier._explicit as ex

    ts = WorkflowTransitionSystem(_retries(), FaultModel(duplicates=2))
    small = explore(ts)
    assert {r.stats.engine for r in small} == {"python"}
    monkeypatch.setattr(ex, "KERNEL_AFTER", 10)
    big = explore(ts)
    assert {r.stats.engine for r in big} == {"kernel"}
    assert [(r.verdict, r.reason, r.counterexample, r.stats.states)
            for r in big] == [(r.verdict, r.reason, r.counterexample,
                               r.stats.states) for r in small]

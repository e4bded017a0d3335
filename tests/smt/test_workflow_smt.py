"""The z3 backend for event workflows: the same verdicts as the explicit checker.

Parity is the test: on every file of the workflow corpus and on generated
workflows (every bus contract, guards, counters, timers, ``choose``), both
backends give the same verdict per property, and for a safety violation the
same shortest counterexample length. Any disagreement prints the definition.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_models import FaultModel, InvalidDefinition, load
from saga_models.strategies import random_workflows
from saga_models.workflow import Workflow, WorkflowBuilder
from saga_models.workflow import semantics as wsem
from sagaproof.cli import main
from verifier import Verdict, check
from verifier._explicit import explore
from verifier._result import PropertyResult
from verifier._workflow_ts import WorkflowTransitionSystem
from verifier.render import counterexample_text
from verifier.smt._encode import EncodingError
from verifier.smt._workflow import check_definition, check_workflow
from verifier.smt._workflow_encode import WorkflowEncoding, replay
from verifier.smt._z3 import DEFAULT_RLIMIT

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests/quality/workflows").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "examples/workflows").glob("*.yaml"))


def _compare(wf: Workflow, explicit: tuple[PropertyResult, ...],
             smt: tuple[PropertyResult, ...], *, max_depth: int) -> int:
    """Assert agreement; return how many smt verdicts are unknown."""
    unknown = 0
    for e, s in zip(explicit, smt, strict=True):
        where = f"{e.property} on\n{wf}"
        assert e.property == s.property
        assert s.backend == "smt"
        assert s.fault_model == e.fault_model
        if s.verdict is Verdict.UNKNOWN:
            assert s.reason, where
            # A violation BMC can reach is never left unknown.
            if e.verdict is Verdict.VIOLATED and e.property != "termination":
                assert e.counterexample is not None
                assert len(e.counterexample) > max_depth or "gave up" in s.reason, (
                    f"{where}\nexplicit: {e.reason}\nsmt: {s.reason}")
            unknown += 1
            continue
        assert s.verdict is e.verdict, f"{where}\nexplicit: {e.reason}\nsmt: {s.reason}"
        if s.verdict is Verdict.VIOLATED:
            assert s.counterexample is not None and e.counterexample is not None
            if e.property != "termination" or e.counterexample.loop_start is None:
                # BFS and BMC both find shortest violations (a lasso from the
                # explicit SCC search is not shortest, so only its verdict counts).
                assert len(s.counterexample) == len(e.counterexample), where
                assert s.reason == s.counterexample.violation
    return unknown


# --- the corpus ----------------------------------------------------------------
@pytest.mark.parametrize("path", CORPUS + EXAMPLES, ids=lambda p: p.stem)
def test_corpus_parity(path: Path) -> None:
    wf = load(path)
    explicit = check(wf)
    smt = check(wf, backend="smt")
    assert _compare(wf, explicit.results, smt.results, max_depth=40) == 0
    assert smt.verdict is explicit.verdict


def test_seeded_bugs_are_refuted_with_message_sequences() -> None:
    """Each bug's named property is violated by z3, with a message sequence
    rendered by the same code as the explicit checker's."""
    for path in CORPUS:
        if not path.stem.startswith("bug_"):
            continue
        expected = next(line.split(":", 1)[1].strip()
                        for line in path.read_text().splitlines()
                        if line.startswith("# expect:"))
        r = check(path, backend="smt")[expected]
        assert r.verdict is Verdict.VIOLATED, (path.name, r.reason)
        assert r.counterexample is not None
        text = counterexample_text(r.counterexample)
        lines = [ln for ln in text.splitlines() if ln.strip()[:1].isdigit()]
        assert lines, text
        assert all(" <- " in ln or ": timer after " in ln for ln in lines), text


def test_counterexample_is_a_path_of_the_semantics() -> None:
    """The decoded z3 trace replays through the shared semantics, label by label,
    and renders as the explicit checker would render the same labels."""
    wf = load(ROOT / "tests/quality/workflows/bug_no_dedup_choreography.yaml")
    ts = WorkflowTransitionSystem(wf)
    r = check_workflow(wf, ts, properties=["eventual_consistency"])[0]
    assert r.counterexample is not None
    state = ts.initial()[0]
    for step in r.counterexample.steps[1:]:
        labels = {ts.label_text(lbl): (lbl, nxt) for lbl, nxt in ts.successors(state)}
        assert step.action in labels
        lbl, state = labels[step.action]
        assert step.event == ts.label_json(lbl)
        assert step.state == ts.state_json(state)
    assert any("(duplicate)" in s.action for s in r.counterexample.steps)


def test_replay_rejects_a_wrong_trace() -> None:
    """The guard against encoding bugs: a trace the semantics does not take."""
    wf = load(ROOT / "tests/quality/workflows/ok_fifo_protocol.yaml")
    enc = WorkflowEncoding(wf, duplicates=0)
    init = wsem.initial_state(wf)
    step = wsem.enabled(wf, init)[0]
    nxt = wsem.apply(wf, init, step)
    replay(enc, [init, nxt], [step])
    with pytest.raises(EncodingError, match="z3 has"):
        replay(enc, [init, init], [step])


def _lemmas_hold_on_every_reachable_state(wf: Workflow, duplicates: int) -> None:
    ts = WorkflowTransitionSystem(wf, FaultModel(duplicates=duplicates))
    enc = WorkflowEncoding(wf, duplicates=ts.duplicates)
    frame = enc.frame("x")
    lemmas = enc.lemmas(frame)
    # z3 confirms they are inductive (else the backend would not use them) ...
    assert enc.checked_lemmas(frame, rlimit=DEFAULT_RLIMIT) == lemmas
    # ... and each is true in every reachable state of the shared semantics.
    seen = {ts.initial()[0]}
    todo = list(seen)
    while todo:
        state = todo.pop()
        sub = list(zip(frame, [z3.IntVal(v) for v in state], strict=True))
        for label, lemma in lemmas:
            assert z3.is_true(z3.simplify(z3.substitute(lemma, *sub))), (
                label, wsem.view(wf, state))
        for _, nxt in ts.successors(state):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_strengthening_lemmas_are_invariants(path: Path) -> None:
    """The k-induction lemmas are true of every reachable state (so using
    them cannot prove a false property)."""
    _lemmas_hold_on_every_reachable_state(load(path), duplicates=2)


def test_transition_relation_matches_semantics_on_every_edge() -> None:
    """For every reachable state, the z3 successors (by alternative) are exactly
    the semantics' successors."""
    wf = load(ROOT / "tests/quality/workflows/ok_payment_timeout.yaml")
    ts = WorkflowTransitionSystem(wf)
    enc = WorkflowEncoding(wf, duplicates=ts.duplicates)
    s, s2, c = enc.frame("a"), enc.frame("b"), z3.Int("c")
    rel = enc.transition(s, c, s2)
    seen = {ts.initial()[0]}
    todo = list(seen)
    while todo:
        state = todo.pop()
        expected = {(lbl, nxt) for lbl, nxt in ts.successors(state)}
        solver = z3.Solver()
        solver.add(rel, *[v == x for v, x in zip(s, state, strict=True)])
        got = set()
        while solver.check() == z3.sat:
            m = solver.model()
            a = m.eval(c).as_long()
            got.add((enc.alternatives[a], enc.values(m, s2)))
            solver.add(c != a)
        assert got == expected, wsem.view(wf, state)
        for _, nxt in expected:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)


# --- guards and invariants compiled to z3 ---------------------------------------
@pytest.mark.parametrize("expr", [
    "c0 <= 1", "not c0", "c0 and s0.state == 'B'", "(c0 or 2) == 2",
    "c0 * c0 - 1 > 0", "abs(c0 - 2) == 1", "min(c0, 1) + max((c0, 2)) >= 3",
    "s0.state in ('A', 'C')", "s0.state not in ['B']", "0 < c0 < 2",
    "s0.state != 'A' or -c0 < -1", "true and c0 == True",
])
def test_expressions_mean_what_python_means(expr: str) -> None:
    """A guard's z3 term agrees with its Python evaluation in every state."""
    wf = (WorkflowBuilder("g").start("go")
          .service("s0", initial="A")
          .on("A", "go", to="B", add={"c0": 1}, emit=["go"])
          .on("B", "go", to="C", add={"c0": 1}, guard=expr)
          .on("B", "go", to="A")
          .counter("c0", cap=3).build())
    enc = WorkflowEncoding(wf, duplicates=0)
    from verifier.smt._workflow_expr import compile_truth

    guard = next(t.guard for t in wf.services[0].transitions if t.guard)
    s = enc.frame("e")
    term = compile_truth(guard, enc.scope(s))
    t = wsem.tables(wf)
    for c0 in range(4):
        for st_i, name in enumerate(t.state_names[0]):
            state = [0] * t.width
            state[wsem.HEADER] = st_i
            state[t.counter_base] = c0
            want = bool(guard.evaluate({"c0": c0}, {"s0": name}))
            sub = list(zip(s, [z3.IntVal(v) for v in state], strict=True))
            assert z3.is_true(z3.simplify(z3.substitute(term, *sub))) is want, (
                expr, c0, name)


def test_string_ordering_is_refused_at_load() -> None:
    # Ordering states used to reach z3 and end unknown; the typed guard
    # language refuses it when the definition is made (WF120).
    with pytest.raises(InvalidDefinition) as info:
        (WorkflowBuilder("g").start("go")
         .service("s0", initial="A", final=["B"])
         .on("A", "go", to="B", guard="s0.state < 'B'")
         .outcome(s0="B").build())
    assert [d.code for d in info.value.diagnostics] == ["WF120"]


# --- unbounded verdicts beyond the explicit budget -------------------------------
def test_holds_by_induction_where_explicit_runs_out_of_budget() -> None:
    """A workflow whose reachable states exceed a small explicit budget still
    gets unbounded ``holds`` verdicts from z3."""
    b = WorkflowBuilder("fan", delivery="at_least_once", capacity=3)
    b.start(*[f"e{k}" for k in range(5)])
    for k in range(5):
        b.service(f"s{k}", initial="IDLE", final=["DONE"], dedup=True)
        b.on("IDLE", f"e{k}", to="DONE")
    wf = b.outcome(**{f"s{k}": "DONE" for k in range(5)}).build()
    faults = FaultModel(duplicates=3)
    budget = check(wf, faults=faults, max_states=50)
    assert budget["eventual_consistency"].verdict is Verdict.UNKNOWN
    smt = check_definition(wf, faults, properties=["eventual_consistency",
                                                   "termination",
                                                   "no_unhandled_event",
                                                   "idempotency"])
    assert [r.verdict for r in smt] == [Verdict.HOLDS] * 4, [r.reason for r in smt]
    assert "every length" in smt[0].reason  # induction, not exhaustive BMC
    assert "rank " in smt[1].reason  # a z3-checked ranking function
    full = check(wf, faults=faults)
    assert full.verdict is Verdict.HOLDS


def _stop_or_ping_forever() -> Workflow:
    """Ping-pong that only a pending ``stop`` ends: the endless ping-pong is
    unfair (``stop`` is pending all along and never delivered)."""
    return (WorkflowBuilder("stoppable").start("ping", "stop")
            .service("pinger", initial="PLAYING", final=["DONE"], ignore=["pong"])
            .on("PLAYING", "pong", to="PLAYING", emit=["ping"])
            .on("PLAYING", "stop", to="DONE")
            .service("ponger", initial="IDLE")
            .on("IDLE", "ping", to="IDLE", emit=["pong"])
            .outcome(pinger="DONE").build())


def test_unfair_cycle_is_never_a_livelock() -> None:
    """Explicitly, termination holds under strong fairness; z3 finds no fair
    lasso within the bound, and no rank can exist (a reachable cycle does), so
    it says unknown, with why: never a wrong verdict."""
    wf = _stop_or_ping_forever()
    assert check(wf)["termination"].verdict is Verdict.HOLDS
    r = check_definition(wf, properties=["termination"], max_depth=10)[0]
    assert r.verdict is Verdict.UNKNOWN
    assert "no fair cycle was found" in r.reason
    assert "have a cycle" in r.reason


def test_livelock_lasso_is_fair_and_replays() -> None:
    wf = load(ROOT / "tests/quality/workflows/bug_ping_pong.yaml")
    r = check(wf, backend="smt")["termination"]
    cex = r.counterexample
    assert r.verdict is Verdict.VIOLATED and cex is not None
    assert cex.loop_start is not None
    # The cycle closes: the last state is the state where the loop starts.
    assert cex.steps[-1].state == cex.steps[cex.loop_start].state


def test_auto_routes_unknowns_to_z3() -> None:
    wf = load(ROOT / "tests/quality/workflows/bug_no_dedup_choreography.yaml")
    r = check(wf, backend="auto")
    assert r["eventual_consistency"].verdict is Verdict.VIOLATED
    assert r.verdict is check(wf).verdict


# --- generated workflows -----------------------------------------------------------
_FAST_DEPTH = 20
_FAST_RLIMIT = 10_000_000
"""A fifth of the default: a rare hard query ends as unknown (counted below)
instead of holding the fast tier up for half a minute."""


def _parity(wf: Workflow, duplicates: int, *, rlimit: int = _FAST_RLIMIT) -> int:
    ts = WorkflowTransitionSystem(wf, FaultModel(duplicates=duplicates))
    explicit = explore(ts)
    smt = check_workflow(wf, ts, max_depth=_FAST_DEPTH, rlimit=rlimit)
    return _compare(wf, explicit, smt, max_depth=_FAST_DEPTH)


_UNKNOWNS: list[int] = []


@settings(max_examples=50, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_workflows(max_services=2, max_states=3, max_events=2),
       st.integers(0, 2))
def test_parity_on_generated_workflows(wf: Workflow, duplicates: int) -> None:
    _UNKNOWNS.append(_parity(wf, duplicates))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_workflows(max_services=2, max_states=3, max_events=3),
       st.integers(0, 2))
def test_parity_on_generated_workflows_slow(wf: Workflow, duplicates: int) -> None:
    # Two services, three events: three-service workflows of a few thousand
    # states can spend minutes reaching z3's resource limit (then unknown).
    _parity(wf, duplicates)


def test_generated_parity_is_mostly_decided() -> None:
    """Unknown never counts as agreement: most generated verdicts are decided."""
    if not _UNKNOWNS:
        pytest.skip("runs after test_parity_on_generated_workflows")
    verdicts = 6 * len(_UNKNOWNS)
    assert sum(_UNKNOWNS) <= verdicts // 20, (sum(_UNKNOWNS), verdicts)


# --- CLI ----------------------------------------------------------------------------
def test_cli_check_backend_smt_on_workflows(capsys: pytest.CaptureFixture[str]) -> None:
    ok = ROOT / "tests/quality/workflows/ok_payment_timeout.yaml"
    bug = ROOT / "tests/quality/workflows/bug_missing_timer.yaml"
    assert main(["check", str(ok), "--backend", "smt", "--no-progress"]) == 0
    capsys.readouterr()
    code = main(["check", str(bug), "--backend", "smt", "--no-progress",
                 "--format", "json"])
    out = capsys.readouterr().out
    assert code == 1, out
    data = json.loads(out)
    text = json.dumps(data)
    assert "smt" in text and "violated" in text

"""The z3 backend: encoding fidelity, verdicts on seeded bugs, unbounded proofs."""

from __future__ import annotations

import random

import pytest

from saga_models import (
    CompensationChain,
    CompensationPolicy,
    FaultModel,
    Saga,
    SagaBuilder,
    Step,
)
from saga_models import semantics as sem
from sagaproof.cli import main
from verifier import SagaTransitionSystem, Verdict, check, smt
from verifier.render import counterexample_text


def _chain(n: int, **kw: object) -> Saga:
    b = SagaBuilder(f"chain{n}")
    for i in range(n):
        b.step(f"s{i}", participant=f"p{i}", action="do", compensation="undo", **kw)  # type: ignore[arg-type]
    return b.build()


def test_exports() -> None:
    public = {n for n in vars(smt) if n[0].isalpha() and n != "annotations"}
    modules = {n for n in public if type(getattr(smt, n)).__name__ == "module"}
    assert set(smt.__all__) == public - modules


def test_random_walks_replay_through_encoding() -> None:
    """Every step of random walks is a model of the z3 transition relation."""
    import z3

    saga = (
        SagaBuilder("w")
        .step(
            "a",
            participant="p",
            action="x",
            compensation="u",
            timeout=1.0,
            idempotent=False,
            retry={"max_attempts": 2},
        )
        .step(
            "b",
            participant="p",
            action="y",
            compensation="v",
            compensation_needs_result=True,
            timeout=1.0,
            depends_on=[],
        )
        .compensation_policy(max_attempts=2)
        .build()
    )
    enc = smt.encode(saga, FaultModel())
    s, s2, c = enc.frame("a"), enc.frame("b"), enc.choice("c")
    rel = enc.transition(s, c, s2)
    rng = random.Random(1)
    for _ in range(20):
        st = sem.initial_state(saga)
        while evs := sem.enabled(saga, st, FaultModel()):
            e = rng.choice(evs)
            nxt = sem.apply(saga, st, e)
            subst = [
                (v, z3.BitVecVal(int(x), v.size())) for v, x in zip(s, st, strict=True)
            ]
            subst += [
                (v, z3.BitVecVal(int(x), v.size()))
                for v, x in zip(s2, nxt, strict=True)
            ]
            subst.append((c, z3.BitVecVal(enc.index_of(e), c.size())))
            assert z3.is_true(z3.simplify(z3.substitute(rel, *subst))), (st, e)
            st = nxt


def test_non_idempotent_duplicate_is_violated_with_shortest_trace() -> None:
    saga = (
        SagaBuilder("dup")
        .step(
            "pay",
            participant="p",
            action="charge",
            compensation="refund",
            idempotent=False,
        )
        .build()
    )
    e = check(saga, backend="explicit")["eventual_consistency"]
    s = check(saga, backend="smt")["eventual_consistency"]
    assert s.verdict is Verdict.VIOLATED and s.backend == "smt"
    assert s.counterexample is not None and e.counterexample is not None
    assert len(s.counterexample) == len(e.counterexample)
    assert "pay" in s.reason  # both are shortest; which one is found may differ
    text = counterexample_text(s.counterexample)
    assert "command delivered twice" in text or "orchestrator" in text


def test_livelock_found_as_fair_lasso() -> None:
    saga = (
        SagaBuilder("ll")
        .step(
            "hold",
            participant="p",
            action="hold",
            compensation="release",
            timeout=1.0,
            compensation_needs_result=True,
        )
        .build()
    )
    faults = FaultModel(crashes=0, duplicates=0)
    r = check(saga, backend="smt", faults=faults, properties=["termination"])[
        "termination"
    ]
    assert r.verdict is Verdict.VIOLATED
    assert r.counterexample is not None and r.counterexample.loop_start is not None
    assert "livelock" in r.reason


def test_termination_proved_by_ranking() -> None:
    r = check(
        _chain(3, timeout=1.0, retry={"max_attempts": None}),
        backend="smt",
        properties=["termination"],
    )["termination"]
    assert r.verdict is Verdict.HOLDS
    assert "ranking function" in r.reason


def test_missing_compensation_is_violated() -> None:
    saga = Saga(
        name="nocomp",
        steps=(
            Step(name="a", participant="p", action="x"),
            Step(
                name="b",
                participant="p",
                action="y",
                compensation="u",
                depends_on=("a",),
            ),
        ),
    )
    r = check(saga, backend="smt")
    assert r["compensation_completeness"].verdict is Verdict.VIOLATED
    assert r["structure"].verdict is Verdict.VIOLATED


def test_stuck_is_inconsistent() -> None:
    saga = (
        SagaBuilder("st")
        .step("a", participant="p", action="x", compensation="u")
        .step("b", participant="p", action="y", compensation="v")
        .compensation_policy(max_attempts=1)
        .build()
    )
    r = check(saga, backend="smt", properties=["eventual_consistency"])
    assert r.verdict is Verdict.VIOLATED
    assert "STUCK" in r.results[0].reason


def test_compensation_chains_are_unknown_not_holds() -> None:
    saga = Saga(
        name="asl",
        steps=(Step(name="a", participant="p", action="x", compensation="u"),),
        compensation_chains=(CompensationChain(trigger="*", steps=("a",)),),
    )
    r = check(saga, backend="smt")
    assert r.verdict is Verdict.UNKNOWN
    assert "compensation_chains" in r.results[0].reason


def test_auto_uses_explicit_when_small_and_z3_when_over_budget() -> None:
    saga = _chain(3, timeout=1.0)
    assert {r.backend for r in check(saga, backend="auto").results} == {"explicit"}
    r = check(
        _chain(12, timeout=1.0, empty_rollback=True, anti_suspension=True),
        backend="smt", properties=["eventual_consistency"],
    )
    assert r.verdict is Verdict.HOLDS


def test_auto_falls_back_to_smt(monkeypatch: pytest.MonkeyPatch) -> None:
    from verifier.smt import _backend

    monkeypatch.setattr(_backend, "AUTO_EXPLICIT_STATES", 10)
    r = check(
        _chain(3, timeout=1.0), backend="auto", properties=["compensation_completeness"]
    )
    res = r.results[0]
    assert res.backend == "smt" and res.verdict is Verdict.HOLDS
    assert "explicit search stopped" in res.reason


def test_induction_unknown_is_never_holds() -> None:
    """With the BMC bound at 1 and no lemmas, a deep bug is unknown, not holds."""
    saga = _chain(3, idempotent=False)
    ts = SagaTransitionSystem(saga, FaultModel())
    res = smt.smt_check(
        saga, ts, properties=["eventual_consistency"], faults=FaultModel(), max_depth=1
    )
    assert res[0].verdict is Verdict.UNKNOWN


def test_cli_backend_smt(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "s.saga.yaml"
    f.write_text(
        "saga: s\nsteps:\n  - name: a\n    participant: p\n    action: x\n"
        "    compensation: u\n"
    )
    code = main(["check", str(f), "--backend", "smt", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "holds" in out.lower() or "HOLDS" in out


@pytest.mark.slow
def test_hundred_step_chain_all_faults_unbounded() -> None:
    saga = _chain(100, timeout=1.0, retry={"max_attempts": 2})
    r = check(saga, backend="smt", properties=["compensation_completeness"])
    assert r.verdict is Verdict.HOLDS, r.results[0].reason
    assert "every length" in r.results[0].reason


@pytest.mark.slow
def test_six_branches_of_eight_unbounded_where_explicit_runs_out() -> None:
    b = SagaBuilder("branches6x8")
    for j in range(6):
        for i in range(8):
            b.step(f"b{j}s{i}", participant=f"p{j}", action="do", compensation="undo",
                   timeout=1.0, retry={"max_attempts": 2},
                   depends_on=[f"b{j}s{i - 1}"] if i else [])
    saga = b.build()
    prop = ["compensation_completeness"]
    explicit = check(saga, properties=prop, max_states=200_000)
    assert explicit.verdict is Verdict.UNKNOWN  # the state space is far larger
    r = check(saga, backend="smt", properties=prop)
    assert r.verdict is Verdict.HOLDS, r.results[0].reason
    assert "every length" in r.results[0].reason


def test_policy_objects_unchanged() -> None:
    assert CompensationPolicy().forever

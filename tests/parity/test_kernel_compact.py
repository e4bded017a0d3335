"""Hash compaction and bitstate (``verifier._kernel_compact``) against the
full compiled search.

Both ways: a seeded bug is still refuted, with the very counterexample the
full search gives (replayed through the semantics); a correct saga is never
``holds`` under a lossy store, but ``unknown`` with the estimated probability
that a state was missed. With a store too small, states are missed, and still
nothing holds. The command line's flags and configuration keys, and their
diagnostics (SAGA192-SAGA195), are covered too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from saga_models import FaultModel, Saga, load
from saga_models.strategies import fault_models, sagas
from sagaproof.cli import main
from tests.expectations import expectation
from verifier import PropertyResult, SagaTransitionSystem, Verdict, check
from verifier._explicit import CompactionUnsupported, explore

kb = pytest.importorskip("verifier._kernel_bfs")
kc = pytest.importorskip("verifier._kernel_compact")
pytest.importorskip("numba")

ROOT = Path(__file__).parents[2]
QUALITY = ROOT / "tests" / "quality" / "sagas"
HASH = kc.Compaction(mode="hash-compact")
BITS = kc.Compaction(mode="bitstate", bits=24)
_SETTINGS: dict[str, Any] = {
    "deadline": None, "derandomize": True, "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}


def _agrees(ts: SagaTransitionSystem, full: tuple[PropertyResult, ...],
            lossy: tuple[PropertyResult, ...]) -> None:
    """What a lossy search must report, given the full search's results."""
    static = {p.name for p in ts.properties if p.static_violation}
    for a, b in zip(full, lossy, strict=True):
        assert a.property == b.property
        assert b.verdict is not Verdict.HOLDS, b.property
        assert b.stats.omission_probability is not None
        assert "estimated probability that a state was missed" in (
            b.stats.search_note)
        assert (a.stats.states, a.stats.transitions, a.stats.depth) == (
            b.stats.states, b.stats.transitions, b.stats.depth)
        cex = a.counterexample
        if a.verdict is Verdict.VIOLATED and (
                a.property in static if cex is None else cex.loop_start is None):
            # A safety violation, a deadlock or a rule broken by the
            # definition itself: found, the same trace.
            assert (b.verdict, b.reason) == (a.verdict, a.reason), a.property
            assert b.counterexample == cex, a.property
        else:
            # Held, a livelock, or a finding that needs every state: unknown,
            # naming what may have been missed.
            assert b.verdict is Verdict.UNKNOWN, (a.property, b.reason)
            assert "estimated probability that a state was missed <=" in b.reason


@pytest.mark.parametrize("compaction", [HASH, BITS], ids=["hash", "bitstate"])
@given(saga=sagas(max_steps=3, total_timeouts=True),
       faults=fault_models(max_crashes=2, max_duplicates=2))
@settings(max_examples=40, **_SETTINGS)
def test_lossy_search_agrees_with_the_full_one(
        compaction: Any, saga: Saga, faults: FaultModel) -> None:
    """40 generated definitions each way: with no collision (all but certain
    at these sizes) the counts and every violation found are the full
    search's; nothing holds."""
    ts = SagaTransitionSystem(saga, faults)
    full = explore(ts, engine="kernel", max_states=3_000)
    lossy = explore(ts, compaction=compaction, max_states=3_000)
    _agrees(ts, full, lossy)


@pytest.mark.parametrize("path", sorted((QUALITY / "bugs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_seeded_bugs_are_still_refuted(path: Path) -> None:
    """Every seeded-bug saga under hash compaction: each property the full
    search refutes with a safety trace or a deadlock is refuted with the same
    trace; the file's expected violations that are not livelocks are all
    found."""
    exp = expectation(path)
    saga = load(path)
    faults = FaultModel.parse(exp.faults)
    ts = SagaTransitionSystem(saga, faults)
    full = explore(ts, engine="kernel")
    lossy = explore(ts, compaction=HASH)
    _agrees(ts, full, lossy)
    violated = {r.property for r in lossy if r.verdict is Verdict.VIOLATED}
    livelocks = {r.property for r in full if r.counterexample is not None
                 and r.counterexample.loop_start is not None}
    assert exp.violated - livelocks <= violated


@pytest.mark.parametrize("path", sorted((QUALITY / "correct").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_correct_sagas_are_unknown_never_holds(path: Path) -> None:
    """A correct saga: every property holds in full; under bitstate each is
    unknown, with the probability in its reason (exit 3 territory)."""
    exp = expectation(path)
    result = check(load(path), faults=exp.faults, compaction="bitstate=24")
    full = check(load(path), faults=exp.faults)
    assert full.verdict is Verdict.HOLDS
    assert result.verdict is Verdict.UNKNOWN
    for r in result.results:
        assert r.verdict is Verdict.UNKNOWN
        assert "bitstate (3 bits per state in 2**24 bits" in r.reason


def test_a_tiny_bit_array_misses_states_and_still_claims_nothing() -> None:
    """1,024 bits for thousands of states: most are taken for visited; the
    estimate says so (probability 1), and no property holds."""
    path = QUALITY / "correct" / "wide_parallel.yaml"
    ts = SagaTransitionSystem(load(path), FaultModel())
    full = explore(ts, engine="kernel")
    tiny = explore(ts, compaction=kc.Compaction(mode="bitstate", bits=10))
    assert tiny[0].stats.states < full[0].stats.states
    assert tiny[0].stats.omission_probability == 1.0
    assert {r.verdict for r in full} == {Verdict.HOLDS}
    assert {r.verdict for r in tiny} == {Verdict.UNKNOWN}


def test_a_violation_is_confirmed_by_replay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay is what makes a lossy violation real: when the replayed
    state does not show the violation (here: the replay is broken to return
    the initial state), the search refuses to report it."""
    saga = load(QUALITY / "bugs" / "missing_compensation.yaml")
    ts = SagaTransitionSystem(saga, FaultModel())
    assert any(r.verdict is Verdict.VIOLATED and r.counterexample is not None
               for r in explore(ts, compaction=HASH))
    monkeypatch.setattr(kc.ReplayedStates, "state",
                        lambda self, i: self.step(0)[1])
    with pytest.raises(RuntimeError, match="not one when replayed"):
        explore(ts, compaction=HASH)


def test_budgets_still_apply() -> None:
    """A state budget stops a lossy search too: unknown, naming the budget
    and the estimate."""
    ts = SagaTransitionSystem(load(QUALITY / "correct" / "wide_parallel.yaml"),
                              FaultModel())
    full = explore(ts, engine="kernel", max_states=500)
    lossy = explore(ts, compaction=HASH, max_states=500)
    for a, b in zip(full, lossy, strict=True):
        assert b.verdict is Verdict.UNKNOWN
        assert b.reason.startswith(a.reason)
        assert "state budget reached" in b.reason
        assert b.stats.states == a.stats.states == 500


def test_lossy_storage_refuses_what_it_cannot_search() -> None:
    """Composed sagas (shared resources) and the smt backend: refused."""
    saga = load(QUALITY / "correct" / "single_step.yaml")
    with pytest.raises(CompactionUnsupported):
        check(saga, instances=2, compaction="hash-compact")
    with pytest.raises(CompactionUnsupported):
        check(saga, backend="auto", compaction="hash-compact")
    with pytest.raises(ValueError, match="bitstate=BITS"):
        check(saga, compaction="bitstate=lots")
    with pytest.raises(ValueError, match="from 10 to 40"):
        check(saga, compaction="bitstate=50")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """--hash-compact and --bitstate: exit 1 on a bug (with its trace), 3 on
    a correct saga, the estimate in text, JSON and SARIF."""
    good = str(ROOT / "examples" / "trip_booking.saga.yaml")
    bug = str(QUALITY / "bugs" / "missing_compensation.yaml")
    code, out, _ = _run(capsys, "check", good, "--hash-compact")
    assert code == 3
    assert "storage: hash compaction (64-bit fingerprints): estimated " \
        "probability that a state was missed <= " in out
    code, out, _ = _run(capsys, "check", bug, "--bitstate=20")
    assert code == 1
    assert "counterexample (" in out
    code, out, _ = _run(capsys, "check", good, "--bitstate", "--format", "json")
    stats = json.loads(out)[0]["results"][0]["stats"]
    assert code == 3
    assert stats["storage"].startswith("bitstate (3 bits per state in 2**30")
    assert 0 <= stats["omission_probability"] < 1e-9
    code, out, _ = _run(capsys, "check", "--bitstate", good, "--format", "sarif")
    assert code == 3
    props = json.loads(out)["runs"][0]["results"][0]["properties"]
    assert props["omissionProbability"] < 1e-9
    assert props["storage"].startswith("bitstate")


@pytest.mark.parametrize(("argv", "code"), [
    (["--hash-compact", "--bitstate"], "SAGA192"),
    (["--hash-compact", "--backend", "smt"], "SAGA193"),
    (["--bitstate=22", "--por"], "SAGA193"),
    (["--bitstate=9"], "SAGA195"),
    (["--bitstate=many"], "SAGA195"),
])
def test_cli_usage_diagnostics(capsys: pytest.CaptureFixture[str],
                               argv: list[str], code: str) -> None:
    good = str(ROOT / "examples" / "trip_booking.saga.yaml")
    exit_code, _, err = _run(capsys, "check", good, *argv)
    assert exit_code == 2
    assert f"error {code}:" in err
    assert "help:" in err


def test_cli_unsupported_definition(capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    """A definition the lossy search cannot take: SAGA194, exit 2."""
    saga = QUALITY / "correct" / "single_step.yaml"
    exit_code, _, err = _run(capsys, "check", str(saga), "--hash-compact",
                             "--instances", "2")
    assert exit_code == 2
    assert "error SAGA194:" in err
    assert "help:" in err


def test_configuration_keys(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``hash-compact`` and ``bitstate`` under [tool.sagaproof]; a flag
    overrides them; a bad value is SAGA014."""
    good = str(ROOT / "examples" / "trip_booking.saga.yaml")
    conf = tmp_path / "pyproject.toml"
    monkeypatch.chdir(tmp_path)
    conf.write_text("[tool.sagaproof]\nbitstate = 21\n")
    code, out, _ = _run(capsys, "check", good)
    assert code == 3
    assert "2**21 bits" in out
    code, out, _ = _run(capsys, "check", good, "--hash-compact")
    assert code == 3
    assert "hash compaction" in out
    conf.write_text("[tool.sagaproof]\nhash-compact = true\n")
    code, out, _ = _run(capsys, "check", good)
    assert (code, "hash compaction" in out) == (3, True)
    conf.write_text("[tool.sagaproof]\nbitstate = 99\n")
    code, _, err = _run(capsys, "check", good)
    assert code == 2
    assert "SAGA014" in err

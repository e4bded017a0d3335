"""The fuzzing suite: generated malformed definitions keep the oracle.

Two generators. The mutation fuzzer (:mod:`tests.fuzz.mutate`) edits the
shipped examples and ``../shared/corpus`` structurally (wrong types at every
JSON pointer, deletions, duplications, truncation, byte flips, unicode) and
feeds every loader and importer through the CLI's own loading path, in
process; a sample also goes through the CLI as a subprocess under an
address-space limit. Hypothesis generates guard expressions from the grammar
of the language (well- and ill-typed) for the typed checker and both
evaluators (the explicit walker and the z3 encoding must agree). The oracle
(:mod:`tests.fuzz.oracle`): a located, coded diagnostic with a help line, or a
verdict; never a traceback, never exit code 1 without a ``VIOLATED`` verdict,
bounded time and memory.

Why not atheris: it needs a coverage-instrumented interpreter build and runs
until stopped, which CI cannot gate on; a seeded mutation fuzzer gives the same
input for the same number on every machine (a failure is reproduced by its
number), and Hypothesis, already the project's test engine, covers the
expression grammar with shrinking. Hypothesis' ``fuzz_one_input`` only helps
when an external coverage-guided fuzzer drives it.

Fast tier: 300 mutants in process, 6 CLI runs, 200 generated documents, 200
expressions. Slow tier: 5,000 mutants in process and 60 CLI runs.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_models.workflow import ExprError, parse_expr
from verifier.smt._workflow_expr import Scope, StrVal, compile_truth

from .mutate import Mutant, mutants, seeds
from .oracle import cli_problems, in_process, run_cli

PER_INPUT_SECONDS = 20
"""Wall-clock bound for loading and checking one mutant in process (each takes
milliseconds; a hang or an unbounded computation trips it)."""


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"over {seconds}s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _write(tmp: Path, m: Mutant) -> Path:
    path = tmp / f"mutant{m.number}{m.suffix}"
    path.write_bytes(m.content)
    return path


def _run_in_process(tmp_path: Path, count: int, start: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    failures = []
    for m in mutants(count, start=start):
        path = _write(tmp_path, m)
        try:
            with _deadline(PER_INPUT_SECONDS):
                outcome, problems = in_process(path)
        except Exception as exc:  # the point: nothing else may escape
            failures.append(f"mutant {m.number} of {m.seed.name}: "
                            f"{type(exc).__name__}: {exc}")
            continue
        outcomes[outcome] += 1
        failures += [f"mutant {m.number} of {m.seed.name}: {p}" for p in problems]
        path.unlink()
    assert not failures, "\n".join(failures[:20])
    return outcomes


def _run_cli(tmp_path: Path, numbers: list[int]) -> None:
    failures = []
    for n in numbers:
        (m,) = mutants(1, start=n)
        run = run_cli([str(_write(tmp_path, m))])
        failures += [f"mutant {n} of {m.seed.name}: {p}\n{run.stderr[-2000:]}"
                     for p in cli_problems(run)]
    assert not failures, "\n".join(failures)


def test_there_are_seeds_of_every_format() -> None:
    names = [p.name for p in seeds()]
    assert any(n.endswith(".asl.json") for n in names)
    assert any("seata" in str(p) and p.suffix == ".json" for p in seeds())
    assert any(p.suffix in (".yaml", ".yml") and "seata" in str(p) for p in seeds())
    assert any("workflow" in n for n in names)
    assert any(n.endswith(".serverless.yml") for n in names)


def test_mutants_in_process_fast(tmp_path: Path) -> None:
    outcomes = _run_in_process(tmp_path, 300, start=0)
    # Both sides of the oracle are exercised (a fuzzer whose every mutant is
    # rejected, or accepted, tests nothing).
    assert outcomes["invalid"] >= 50 and outcomes["verdict"] >= 20, outcomes


def test_mutants_through_the_cli_fast(tmp_path: Path) -> None:
    _run_cli(tmp_path, [0, 1, 2, 7, 11, 13])


@pytest.mark.slow
def test_mutants_in_process_slow(tmp_path: Path) -> None:
    started = time.perf_counter()
    outcomes = _run_in_process(tmp_path, 5_000, start=10_000)
    assert sum(outcomes.values()) == 5_000
    assert outcomes["invalid"] >= 500 and outcomes["verdict"] >= 200, outcomes
    # A budget for the tier, not a speed claim (bench/ has no figure for it).
    assert time.perf_counter() - started < 600


@pytest.mark.slow
def test_mutants_through_the_cli_slow(tmp_path: Path) -> None:
    _run_cli(tmp_path, list(range(20_000, 20_060)))


# --- documents from scratch, from each format's vocabulary ------------------------
_KEYS = (
    "saga", "steps", "name", "participant", "action", "compensation", "kind",
    "depends_on", "retry", "max_attempts", "timeout", "compensation_policy",
    "workflow", "services", "start", "initial", "final", "transitions", "from",
    "on", "to", "emit", "guard", "counters", "cap", "bus", "capacity",
    "invariants", "StartAt", "States", "Type", "Next", "End", "Catch", "Retry",
    "ErrorEquals", "MaxAttempts", "Branches", "StartState", "ServiceName",
    "CompensateState", "Exceptions", "IntervalSeconds",
)
_SCALARS = (st.sampled_from(["Task", "ServiceTask", "pivot", "retriable", "a",
                             "b", "forever", "10s", "charges < 1"])
            | st.integers(-3, 300) | st.booleans() | st.none()
            | st.floats(allow_nan=False) | st.text(max_size=8))
_DOCS = st.recursive(
    _SCALARS,
    lambda sub: st.lists(sub, max_size=4)
    | st.dictionaries(st.sampled_from(_KEYS), sub, max_size=5),
    max_leaves=25,
)
_ROOTS = st.sampled_from([
    {"saga": "s"}, {"workflow": "w"}, {"StartAt": "a"}, {"StartState": "a"}])


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(root=_ROOTS, body=st.dictionaries(st.sampled_from(_KEYS), _DOCS,
                                         max_size=6),
       fmt=st.sampled_from([".json", ".yaml"]))
def test_generated_documents_keep_the_oracle(
        tmp_path_factory: pytest.TempPathFactory, root: dict[str, object],
        body: dict[str, object], fmt: str) -> None:
    """Hypothesis builds documents from the formats' own keys (shrinking a
    failure to the smallest document), in every format the loaders take."""
    import json

    import yaml

    data = {**root, **body}
    text = (json.dumps(data) if fmt == ".json"
            else yaml.safe_dump(data, allow_unicode=True))
    path = tmp_path_factory.mktemp("doc") / f"d{fmt}"
    path.write_text(text)
    with _deadline(PER_INPUT_SECONDS):
        _, problems = in_process(path)
    assert not problems


# --- the guard language, from its grammar ---------------------------------------
_LEAVES = st.sampled_from([
    "c0", "c1", "s0.state", "s1.state", "true", "false", "0", "1", "255",
    "2147483647", "99999999999", "'A'", "'B'", "'x' * 3", "(1, 2)", "['A']",
    "()", "min", "abs",
])


def _expr() -> st.SearchStrategy[str]:
    def grow(sub: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binop = st.tuples(sub, st.sampled_from(
            ["+", "-", "*", "<", "<=", "==", "!=", ">", "in", "not in", "and",
             "or"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        unop = st.tuples(st.sampled_from(["-", "not "]), sub).map("".join)
        call = st.tuples(st.sampled_from(["min", "max", "abs"]),
                         st.lists(sub, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})")
        return binop | unop | call
    return st.recursive(_LEAVES, grow, max_leaves=8)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=_expr(), c0=st.integers(0, 255), c1=st.integers(0, 255),
       s0=st.sampled_from(["A", "B"]), s1=st.sampled_from(["A", "B"]))
def test_guards_are_typed_or_refused(text: str, c0: int, c1: int, s0: str,
                                     s1: str) -> None:
    """Every generated expression is refused with a code, or evaluates
    without an exception to a value within the bound."""
    try:
        e = parse_expr(text)
    except ExprError as exc:
        assert exc.code in ("WF110", "WF120", "WF121")
        return
    value = e.evaluate({"c0": c0, "c1": c1}, {"s0": s0, "s1": s1})
    assert isinstance(value, (bool, int))
    assert -(2**31) < int(value) < 2**31
    # The z3 encoding walks the same checked tree and means the same thing
    # (an accepted expression is never Unsupported there).
    names = ("A", "B")
    ints = {n: z3.Int(n) for n in ("c0", "c1", "s0", "s1")}
    scope = Scope(counters={"c0": ints["c0"], "c1": ints["c1"]},
                  states={s: StrVal(ints[s], names) for s in ("s0", "s1")})
    term = compile_truth(e, scope)
    at = {"c0": c0, "c1": c1, "s0": names.index(s0), "s1": names.index(s1)}
    got = z3.simplify(z3.substitute(term, *[(ints[k], z3.IntVal(v))
                                            for k, v in at.items()]))
    assert z3.is_true(got) is bool(value), (text, at)


def test_guard_fuzz_reaches_both_sides() -> None:
    # The grammar above produces accepted and refused expressions alike.
    assert parse_expr("(c0 + 1) < 2") is not None
    with pytest.raises(ExprError):
        parse_expr("('x' * 3) == s0.state")

"""Validation: each rule fires on a seeded bug, stays quiet on a correct saga, and
every code is in the one table of docs/diagnostics.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from saga_models import (
    InvalidDefinition,
    Saga,
    Severity,
    loads,
    structure_diagnostics,
)
from saga_models._validate import lowering_diagnostics
from verifier import Verdict, check

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "diagnostics.md"

GOOD = """\
saga: trip
steps:
  - {name: reserve, participant: flights, compensation: cancel}
  - {name: car, participant: cars, compensation: cancel}
  - {name: charge, participant: payments, kind: pivot}
  - {name: confirm, participant: flights, kind: retriable,
     retry: {max_attempts: forever}}
"""


def _codes(text: str) -> list[tuple[str, int]]:
    with pytest.raises(InvalidDefinition) as info:
        loads(text, file="s.yaml")
    return [(d.code, d.span.line) for d in info.value.diagnostics]


def _saga(steps: str, extra: str = "") -> Saga:
    result: Saga = loads("saga: t\nsteps:\n" + steps + extra)
    return result


def test_a_correct_saga_has_no_diagnostics() -> None:
    saga = loads(GOOD)
    assert lowering_diagnostics(saga) == ()
    assert structure_diagnostics(saga) == ()


# --- load tier: no meaningful IR, raised -----------------------------------------
@pytest.mark.parametrize(("steps", "expected"), [
    ("steps: []\n", [("SAGA100", 1)]),
    ("steps:\n  - {name: a, participant: p, compensation: u}\n"
     "  - {name: a, participant: p, compensation: u}\n", [("SAGA101", 4)]),
    ("steps:\n  - {name: a, participant: p, compensation: u}\n"
     "  - {name: b, participant: p, compensation: u, depends_on: [c]}\n",
     [("SAGA102", 4)]),
    ("steps:\n  - {name: a, participant: p, compensation: u, depends_on: [a]}\n",
     [("SAGA103", 3)]),
    ("steps:\n  - {name: a, participant: p, compensation: u, depends_on: [b]}\n"
     "  - {name: b, participant: p, compensation: u, depends_on: [a]}\n",
     [("SAGA104", 3)]),
    ("steps:\n  - {name: a, participant: p, compensation: u}\n"
     "compensation_chains: [{trigger: a, steps: [x]}]\n", [("SAGA105", 4)]),
])
def test_lowering_rules(steps: str, expected: list[tuple[str, int]]) -> None:
    assert _codes("saga: t\n" + steps) == expected


def test_unknown_dependency_suggests_the_close_name() -> None:
    with pytest.raises(InvalidDefinition) as info:
        loads("saga: t\nsteps:\n  - {name: reserve_flight, participant: p, "
              "compensation: u}\n  - {name: b, participant: p, compensation: u, "
              "depends_on: [reserve_flght]}\n")
    (d,) = info.value.diagnostics
    assert d.help == "did you mean 'reserve_flight'?"
    assert d.span.pointer == "/steps/1/depends_on"


STEP = "  - {name: a, participant: p, compensation: u, %s}\n"


@pytest.mark.parametrize(("field", "code"), [
    ("retry: {max_attempts: 0}", "SAGA127"),
    ("retry: {max_attempts: -1}", "SAGA127"),
    ("retry: {backoff: 0.5}", "SAGA127"),
    ("retry: {jitter: 1.5}", "SAGA127"),
    ("retry: {jitter: -0.1}", "SAGA127"),
    ("retry: {initial_interval: 5s, max_interval: 1s}", "SAGA127"),
    ("retry: {initial_interval: -1}", "SAGA127"),
    ("timeout: 0", "SAGA127"),
    ("timeout: -5", "SAGA127"),
    ("timeout: .inf", "SAGA127"),
    ("total_timeout: 0s", "SAGA127"),
    ("cache_ttl: -1", "SAGA127"),
    ("breaker: {failure_threshold: 0}", "SAGA127"),
    ("breaker: {recovery_timeout: 0}", "SAGA127"),
    ("idempotency_key: '{saga}:{step}'", "SAGA129"),
    ("idempotency_key: '{saga_id'", "SAGA129"),
    ("timeout: fast", "SAGA126"),
    ("retry: {max_attempts: many}", "SAGA124"),
    ("idempotent: maybe", "SAGA124"),
    ("kind: maybe", "SAGA125"),
    ("retry: 3", "SAGA120"),
    ("retyr: {}", "SAGA122"),
])
def test_value_rules_are_located(field: str, code: str) -> None:
    assert _codes("saga: t\nsteps:\n" + STEP % field) == [(code, 3)]


@pytest.mark.parametrize("field", [
    "retry: {max_attempts: 1}", "retry: {backoff: 1}", "retry: {jitter: 0}",
    "retry: {jitter: 1}", "retry: {initial_interval: 0}", "timeout: 250ms",
    "breaker: {failure_threshold: 1, recovery_timeout: 1s}",
    "idempotency_key: 'order-{saga_id}-{step}-{{x}}'",
])
def test_values_at_the_edge_of_their_range_are_accepted(field: str) -> None:
    assert loads("saga: t\nsteps:\n" + STEP % field).steps[0].name == "a"


def test_conflicting_compensation_policy() -> None:
    assert _codes("saga: t\nsteps:\n  - {name: a, participant: p, compensation: u}\n"
                  "compensation_policy: {retry: forever, max_attempts: 3}\n") == [
        ("SAGA128", 4)]


def test_compensation_policy_values() -> None:
    assert _codes("saga: t\nsteps:\n  - {name: a, participant: p, compensation: u}\n"
                  "compensation_policy: {max_attempts: 0}\n") == [("SAGA127", 4)]
    assert _codes("saga: t\nsteps:\n  - {name: a, participant: p, compensation: u}\n"
                  "compensation_policy: {then: retry}\n") == [("SAGA125", 4)]


def test_misspelt_required_key_is_reported_once() -> None:
    assert _codes("saga: t\nstpes: []\n") == [("SAGA122", 2)]
    assert _codes("saga: t\nsteps:\n  - {name: a}\n") == [("SAGA123", 3)]


# --- structure tier: a verdict, not an exception ---------------------------------
@pytest.mark.parametrize(("steps", "code", "severity"), [
    ("  - {name: a, participant: p}\n", "SAGA110", Severity.ERROR),
    ("  - {name: a, participant: p, compensation: u}\n"
     "  - {name: b, participant: p, kind: pivot, compensation: u}\n",
     "SAGA111", Severity.WARNING),
    ("  - {name: a, participant: p, compensation: u}\n"
     "  - {name: b, participant: p, kind: pivot}\n"
     "  - {name: c, participant: p, kind: pivot}\n", "SAGA112", Severity.ERROR),
    ("  - {name: a, participant: p, kind: pivot}\n"
     "  - {name: b, participant: p, compensation: u}\n", "SAGA113", Severity.ERROR),
    ("  - {name: a, participant: p, kind: pivot}\n"
     "  - {name: b, participant: p, compensation: u, depends_on: []}\n",
     "SAGA114", Severity.ERROR),
    ("  - {name: a, participant: p, kind: retriable, retry: {max_attempts: forever}}"
     "\n  - {name: b, participant: p, kind: pivot}\n", "SAGA115", Severity.ERROR),
    ("  - {name: a, participant: p, compensation: u}\n"
     "  - {name: b, participant: p, kind: retriable, "
     "retry: {max_attempts: forever}}\n", "SAGA115", Severity.ERROR),
    ("  - {name: a, participant: p, kind: pivot}\n"
     "  - {name: b, participant: p, kind: retriable, retry: {max_attempts: 3}}\n",
     "SAGA116", Severity.ERROR),
])
def test_structure_rules(steps: str, code: str, severity: Severity) -> None:
    saga = _saga(steps)  # loads: structure problems do not raise
    found = structure_diagnostics(saga)
    assert code in {d.code for d in found}
    d = next(d for d in found if d.code == code)
    assert d.severity is severity
    assert d.span.line >= 3  # located at a step, not at the top of the file
    assert d.help


def test_structure_violation_is_a_verdict() -> None:
    good = loads(GOOD)
    result = check(good, properties=["structure"])
    assert result.verdict is Verdict.HOLDS
    bad = _saga("  - {name: a, participant: p}\n  - {name: b, participant: p, "
                "compensation: u}\n")
    result = check(bad, properties=["structure"])
    assert result.verdict is Verdict.VIOLATED
    (structure,) = result.results
    assert "SAGA110" in structure.reason
    assert "compensatable step 'a' has no compensation" in structure.reason


# --- the one table ---------------------------------------------------------------
_CODE = re.compile(r"\b((?:SAGA|WF)\d{3})\b")


def _documented() -> set[str]:
    return {m.group(1) for line in DOCS.read_text().splitlines()
            if line.startswith("| ") for m in [_CODE.search(line)] if m}


def _used() -> set[str]:
    pkg = ROOT / "saga_models"
    # The commands raise their own usage codes (e.g. sagaproof status).
    files = [*pkg.rglob("*.py"), *pkg.rglob("*.json"),
             *(ROOT / "sagaproof").rglob("*.py")]
    return {c for f in files for c in _CODE.findall(f.read_text())
            if not c.endswith("xx")}


def test_every_code_in_use_is_documented() -> None:
    missing = _used() - _documented()
    assert not missing, f"add {sorted(missing)} to docs/diagnostics.md"


def test_every_documented_saga_code_is_in_use() -> None:
    stale = {c for c in _documented() - _used() if c.startswith("SAGA")}
    assert not stale, f"{sorted(stale)} documented but never raised"


@pytest.mark.parametrize("step", [
    # a cached reply of a step with an effect: the second saga never reserves
    "  - {name: a, participant: p, compensation: u, cache_ttl: 60s}\n",
    "  - {name: a, participant: p, compensation: u, read_only: true, "
    "cache_ttl: 60s}\n",
    "  - {name: a, participant: p, kind: pivot, cache_ttl: 60s}\n",
])
def test_cache_is_refused_on_a_step_with_an_effect(step: str) -> None:
    assert _codes("saga: t\nsteps:\n" + step) == [("SAGA130", 3)]


def test_cache_on_a_read_only_step_is_accepted_and_verifies() -> None:
    saga = loads("saga: t\nsteps:\n"
                 "  - {name: quote, participant: p, read_only: true, "
                 "cache_ttl: 60s}\n"
                 "  - {name: reserve, participant: p, compensation: release}\n"
                 "  - {name: charge, participant: q, kind: pivot}\n")
    assert saga.steps[0].read_only
    assert structure_diagnostics(saga) == ()
    # the read is neither kept nor undone: aborts after it are consistent
    for backend in ("explicit", "smt"):
        assert check(saga, backend=backend).verdict is Verdict.HOLDS, backend


@pytest.mark.parametrize(("fields", "code"), [
    ("compensation: u, anti_suspension: true", "SAGA131"),
    ("kind: pivot, empty_rollback: true", "SAGA132"),
    ("compensation: u, anti_suspension: maybe", "SAGA124"),
])
def test_late_countermeasures_are_checked(fields: str, code: str) -> None:
    assert _codes(f"saga: t\nsteps:\n  - {{name: a, participant: p, {fields}}}\n"
                  ) == [(code, 3)]


def test_declared_late_countermeasures_are_accepted() -> None:
    step = loads("saga: t\nsteps:\n  - {name: a, participant: p, compensation: u, "
                 "empty_rollback: true, anti_suspension: true}\n").steps[0]
    assert step.empty_rollback and step.anti_suspension

"""Seeded-bug and correct workflow definitions: every bug is refuted by the
property its file names (``# expect: <property>``), with a message-sequence
counterexample; every correct definition holds on every property."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from saga_models import load
from verifier import Verdict, check, render

HERE = Path(__file__).parent
BUGS = sorted(HERE.glob("bug_*.yaml"))
OKS = sorted(HERE.glob("ok_*.yaml"))
_EXPECT = re.compile(r"^# expect: (\w+)$", re.M)


def test_corpus_is_large_enough() -> None:
    assert len(BUGS) >= 10
    assert len(OKS) >= 6


@pytest.mark.parametrize("path", BUGS, ids=lambda p: p.stem)
def test_seeded_bug_is_refuted(path: Path) -> None:
    expected = _EXPECT.search(path.read_text())
    assert expected, f"{path.name} must name its property in '# expect: ...'"
    result = check(path)
    assert result.kind == "workflow"
    r = result[expected.group(1)]
    assert r.verdict is Verdict.VIOLATED, r.reason
    assert "bus " in r.fault_model  # the verdict names the delivery contract
    cex = r.counterexample
    assert cex is not None and len(cex) >= 1
    text = render.counterexample_text(cex)
    # A message sequence: every line is a delivery (svc <- event) or a timer.
    for line in text.splitlines():
        if re.match(r"\s+\d+\. ", line):
            assert " <- " in line or ": timer after " in line, line
    assert result.verdict is Verdict.VIOLATED


@pytest.mark.parametrize("path", OKS, ids=lambda p: p.stem)
def test_correct_definition_holds(path: Path) -> None:
    result = check(path)
    bad = [(r.property, r.verdict.value, r.reason) for r in result.results
           if r.verdict is not Verdict.HOLDS]
    assert not bad
    assert len(result.results) == 7  # the six properties and structure


def test_fifo_protocol_is_correct_only_on_fifo() -> None:
    ok = check(HERE / "ok_fifo_protocol.yaml")
    bad = check(HERE / "bug_fifo_only_on_unordered.yaml")
    assert ok.verdict is Verdict.HOLDS
    assert bad["no_unhandled_event"].verdict is Verdict.VIOLATED
    cex = bad["no_unhandled_event"].counterexample
    assert cex is not None
    assert "orders <- captured" in cex.steps[-1].action


def test_dedup_fixes_the_issue_example() -> None:
    fixed = load(HERE / "ok_order_choreography_dedup.yaml")
    broken = load(HERE / "bug_no_dedup_choreography.yaml")
    assert [s.dedup for s in fixed.services] == [True, True]
    assert [s.dedup for s in broken.services] == [False, False]
    r = check(broken)["eventual_consistency"]
    assert r.counterexample is not None
    actions = [s.action for s in r.counterexample.steps]
    assert any("(duplicate)" in a for a in actions)


def test_exactly_once_narrowing_is_visible() -> None:
    # The same buggy file is correct if the bus really were exactly-once; the
    # fault model text says which contract a verdict holds under.
    r = check(HERE / "bug_no_dedup_choreography.yaml", faults="none")
    assert r.verdict is Verdict.HOLDS
    assert "up to 0 duplicate deliveries" in r.results[0].fault_model


def test_invariant_message_lists_counters_and_states_apart(tmp_path: Path) -> None:
    """An invariant over a counter and a service state names both, separated
    (they used to run together: 'shipments=2orders.state=PAID')."""
    src = (HERE / "bug_double_ship.yaml").read_text().replace(
        "expr: shipments <= 1}", "expr: shipments <= 1 or orders.state == 'DONE'}")
    path = tmp_path / "double_ship.yaml"
    path.write_text(src)
    r = check(path)["invariants"]
    assert r.verdict is Verdict.VIOLATED, r.reason
    assert re.search(r"shipments=\d+, orders\.state=PAID", r.reason), r.reason

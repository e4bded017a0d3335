"""BPMN 2.0 import: hand-checked golden processes for each compensation rule,
under both dialects and both ways (the property holds / is violated), and the
located diagnostics for what the importer refuses.

The goldens are in ``bpmn/`` (written by ``bpmn_build.goldens``). Each
expectation below was worked out by hand from the rule it pins (docs/
importers.md, "BPMN", cites the BPMN 2.0 section or Camunda page), not read
off sagaproof's output.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest

from saga_models import FaultModel, InvalidDefinition
from saga_models.importers import graph_semantics as gs
from saga_models.importers._bpmn import parse_bpmn
from saga_models.importers.graph_semantics import load_bpmn
from sagaproof.cli import main
from verifier._imported_ts import ImportedTransitionSystem, findings

from .bpmn_build import Process, goldens

HERE = Path(__file__).parent / "bpmn"
DIALECTS = ("camunda7", "zeebe")
NO_COMP_FAIL = FaultModel(comp_fail=False)


def found(name: str, dialect: str, faults: FaultModel = FaultModel()
          ) -> set[str]:
    return set(findings(load_bpmn(str(HERE / f"{name}.bpmn"), dialect=dialect),
                        faults))


def reachable(name: str, dialect: str, faults: FaultModel = FaultModel()
              ) -> tuple[gs.Tables, list[tuple[int, ...]], list[gs.Event]]:
    """Every reachable state, and every event taken, of a golden."""
    im = load_bpmn(str(HERE / f"{name}.bpmn"), dialect=dialect)
    ts = ImportedTransitionSystem(im, faults)
    t = ts._t
    seen = set(ts.initial())
    todo = list(seen)
    events: list[gs.Event] = []
    while todo:
        s = todo.pop()
        for ev, nxt in ts.successors(s):
            events.append(ev)
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return t, sorted(seen), events


def test_golden_files_are_what_the_builder_writes() -> None:
    for name, proc in goldens().items():
        assert (HERE / f"{name}.bpmn").read_text() == proc.xml(), name


# --- compensation rules, both dialects, both ways ------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("name", "expected"), [
    # C fails (error boundary) -> compensation of A and B; ends 'failed'.
    ("reverse_order", set()),
    # M completed between B and C and has no handler: nothing undoes it.
    ("not_compensated", {"left_in_place:M"}),
    # activityRef="B" compensates B only; A stays.
    ("activity_ref_one", {"left_in_place:A"}),
    ("activity_ref_both", set()),
    # A compensation end event compensates, then ends the process.
    ("compensation_end", set()),
    ("compensation_end_ref", {"left_in_place:B"}),
    # An error end event nothing catches ends the process (Camunda 7) or
    # raises an incident (Zeebe): either way A's effect stays.
    ("uncaught_error_end", {"left_in_place:A"}),
    ("caught_error_end", set()),
    # C failed (not completed): its handler is not invoked; A is undone.
    ("only_completed", set()),
    ("completed_then", set()),
    # C's timer fires after C's call took effect: C did not complete, so its
    # handler is not invoked; its effect stays.
    ("timer_interrupts", {"left_in_place:C"}),
    # C's error in one branch stops B's branch and goes to the event
    # sub-process; A and a completed B are compensated, unless B has no
    # handler.
    ("parallel_esp", set()),
    ("parallel_no_handler", {"left_in_place:B"}),
    # A cancel end event cancels the transaction: what completed inside is
    # compensated, then the cancel boundary event leads on (B has a handler,
    # or not).
    ("transaction_cancel", set()),
    ("transaction_no_handler", {"left_in_place:B"}),
    # An error interrupts sub-process S after B completed: S did not
    # complete, so a compensation thrown outside does not reach B.
    ("subprocess_interrupted", {"left_in_place:B"}),
    ("subprocess_completed", set()),
])
def test_rules_without_compensation_failures(name: str, expected: set[str],
                                            dialect: str) -> None:
    assert found(name, dialect, NO_COMP_FAIL) == expected


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_timer_that_cannot_fire_late_holds(dialect: str) -> None:
    assert found("timer_interrupts", dialect,
                 FaultModel(timeout=False, comp_fail=False)) == set()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_failing_handler_leaves_effects_in_place(dialect: str) -> None:
    # UndoB, then UndoA, can each fail into an incident.
    assert found("reverse_order", dialect) == {"left_in_place:A",
                                               "left_in_place:B"}
    assert found("caught_error_end", dialect) == {"left_in_place:A"}
    # B then C's handler, or C then B's, or A's can fail.
    assert found("parallel_esp", dialect) == {"left_in_place:A",
                                              "left_in_place:B",
                                              "left_in_place:C"}


def stuck_held(dialect: str) -> set[frozenset[str]]:
    t, states, _ = reachable("reverse_order", dialect)
    return {frozenset(gs.held(t, s)) for s in states if s[0] == gs.STUCK}


def test_camunda7_compensates_newest_first_and_an_incident_stops_the_rest(
        ) -> None:
    # C fails: UndoB runs first; its incident leaves A and B; UndoA's leaves A.
    # B fails: never (B has no catch event), so no other combination.
    assert stuck_held("camunda7") == {frozenset({"A", "B"}), frozenset({"A"})}
    t, states, _ = reachable("reverse_order", "camunda7", NO_COMP_FAIL)
    a, b = (t.effects.index((0, n)) + t.effect_base for n in ("A", "B"))
    assert not [s for s in states if s[a] == gs.UNDONE and s[b] == gs.HELD]


def test_zeebe_invokes_every_handler_at_once() -> None:
    # UndoB's incident does not stop UndoA: B alone can be left.
    assert stuck_held("zeebe") == {frozenset({"A", "B"}), frozenset({"A"}),
                                   frozenset({"B"})}
    t, states, _ = reachable("reverse_order", "zeebe", NO_COMP_FAIL)
    a, b = (t.effects.index((0, n)) + t.effect_base for n in ("A", "B"))
    assert [s for s in states if s[a] == gs.UNDONE and s[b] == gs.HELD]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_only_completed_activities_are_compensated(dialect: str) -> None:
    def undoes_c(name: str) -> bool:
        t, _, events = reachable(name, dialect, NO_COMP_FAIL)
        return any(e.kind == "comp_ok" and t.effects[e.arg][1] == "C"
                   for e in events)

    assert not undoes_c("only_completed")  # C threw: it never completed
    assert undoes_c("completed_then")  # C completed before D threw


# --- the command line ------------------------------------------------------------
def test_cli_names_the_dialect_and_the_file_elements(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = str(HERE / "reverse_order.bpmn")
    assert main(["check", path, "--bpmn-dialect", "zeebe", "--format",
                 "json"]) == 1
    out = capsys.readouterr().out
    assert "BPMN dialect zeebe" in out
    assert main(["check", path, "--faults", "fail,timeout"]) == 0
    text = capsys.readouterr().out
    assert "BPMN dialect camunda7" in text
    assert main(["check", path, "--format", "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    results = sarif["runs"][0]["results"]
    assert results and all(r["locations"] for r in results)


# --- located diagnostics ---------------------------------------------------------
def codes(xml: str) -> list[tuple[str, int, str]]:
    with pytest.raises(InvalidDefinition) as exc:
        parse_bpmn(xml.encode(), file="x.bpmn")
    return [(d.code, d.span.line, d.message) for d in exc.value.diagnostics]


def saga() -> Process:
    return Process().start().task("A").end()


def test_malformed_xml_is_located() -> None:
    [(code, line, _)] = codes(saga().xml().replace("</bpmn:process>", ""))
    assert code == "BPMN101" and line > 1


@pytest.mark.parametrize(("extra", "element"), [
    ('<bpmn:inclusiveGateway id="fork"/>', "inclusiveGateway 'fork'"),
    ('<bpmn:boundaryEvent id="late" attachedToRef="A" cancelActivity="false">'
     '<bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration>'
     '</bpmn:timerEventDefinition></bpmn:boundaryEvent>',
     "boundaryEvent 'late' with timerEventDefinition (non-interrupting)"),
    ('<bpmn:boundaryEvent id="msg" attachedToRef="A"><bpmn:messageEventDefinition/>'
     '</bpmn:boundaryEvent>', "boundaryEvent 'msg' with messageEventDefinition"),
    ('<bpmn:adHocSubProcess id="inner"/>', "adHocSubProcess 'inner'"),
    ('<bpmn:callActivity id="call"/>', "callActivity 'call'"),
    ('<bpmn:serviceTask id="each"><bpmn:multiInstanceLoopCharacteristics/>'
     '</bpmn:serviceTask>',
     "serviceTask 'each' with multiInstanceLoopCharacteristics"),
])
def test_unsupported_constructs_are_named_and_located(extra: str,
                                                      element: str) -> None:
    p = saga().flow("start", "A", "end").add(extra)
    [(code, line, message)] = codes(p.xml())
    assert code == "BPMN110" and element in message
    assert p.xml().splitlines()[line - 1].strip() == extra


def test_implicit_parallel_split_is_refused() -> None:
    # Out of a start event our check refuses it; out of a task SpiffWorkflow
    # does; both name the element and its line.
    p = saga().task("B").flow("start", "A", "end").flow("start", "B", "end")
    [(code, line, message)] = codes(p.xml())
    assert code == "BPMN111" and "'start'" in message
    assert 'id="start"' in p.xml().splitlines()[line - 1]
    p = saga().task("B").flow("start", "A", "end").flow("A", "B", "end")
    [(code, line, message)] = codes(p.xml())
    assert code == "BPMN103" and "'A'" in message
    assert 'id="A"' in p.xml().splitlines()[line - 1]


def test_spiff_refusal_is_located_on_the_element() -> None:
    p = saga().gateway("g").task("B").flow("start", "A", "g", "end")
    p.flow("g", "B", "end")  # two unconditional flows out of a gateway
    [(code, line, message)] = codes(p.xml())
    assert code == "BPMN103" and "SpiffWorkflow" in message
    assert "sequenceFlow" in p.xml().splitlines()[line - 1]


def test_association_to_a_task_that_is_not_a_handler() -> None:
    p = saga().task("B").flow("start", "A", "B", "end")
    p.add('<bpmn:boundaryEvent id="cA" attachedToRef="A">'
          '<bpmn:compensateEventDefinition/></bpmn:boundaryEvent>')
    p.add('<bpmn:association id="as" sourceRef="cA" targetRef="B"/>')
    [(code, line, _)] = codes(p.xml())
    assert code == "BPMN104" and 'id="as"' in p.xml().splitlines()[line - 1]


def test_other_refusals() -> None:
    only_literal = Process().start().task("A", literal=True).end()
    [(code, _, _)] = codes(only_literal.flow("start", "A", "end").xml())
    assert code == "BPMN100"
    two = saga().flow("start", "A", "end").xml().replace(
        "</bpmn:definitions>", '<bpmn:process id="q"/></bpmn:definitions>')
    [(code, _, _)] = codes(two)
    assert code == "BPMN102"
    with pytest.raises(InvalidDefinition) as exc:
        parse_bpmn(saga().flow("start", "A", "end").xml().encode(),
                   dialect="camunda9")
    assert exc.value.diagnostics[0].code == "BPMN109"


def test_cli_refusal_exits_2_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.bpmn"
    path.write_text(saga().flow("start", "A", "end")
                    .add('<bpmn:inclusiveGateway id="fork"/>').xml())
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "BPMN110" in err and "fork" in err and "Traceback" not in err
    assert "help:" in err


def test_mapping_lists_each_task_and_its_handler(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mapping", str(HERE / "not_compensated.bpmn")]) == 0
    out = capsys.readouterr().out
    assert "A:" in out and "UndoA" in out and "B:" in out and "UndoB" in out
    # M has no compensation boundary event: reported, never guessed.
    assert [line for line in out.splitlines() if line.strip().startswith("M:")
            and "?" in line]
    assert "takes no sidecar" in out


def test_a_sidecar_is_refused_for_bpmn(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    side = tmp_path / "map.yaml"
    side.write_text("compensations: {A: UndoA}\n")
    assert main(["check", str(HERE / "reverse_order.bpmn"),
                 "--compensations", str(side)]) == 2
    assert "BPMN112" in capsys.readouterr().err


def test_dialect_from_the_configuration(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "pyproject.toml"
    cfg.write_text('[tool.sagaproof]\nbpmn-dialect = "zeebe"\n')
    path = str(HERE / "reverse_order.bpmn")
    assert main(["check", path, "--config", str(cfg)]) == 1
    assert "BPMN dialect zeebe" in capsys.readouterr().out
    cfg.write_text('[tool.sagaproof]\nbpmn-dialect = "camunda9"\n')
    assert main(["check", path, "--config", str(cfg)]) == 2
    assert "SAGA014" in capsys.readouterr().err


def test_unstructured_parallel_blocks_are_refused() -> None:
    # The fork's branches end at two different joins.
    p = saga().task("B").task("C").gateway("fork", "parallel")
    p.gateway("j1", "parallel").gateway("j2", "parallel")
    p.flow("start", "fork", "A", "j1", "j2", "end").flow("fork", "B", "j1")
    p.flow("fork", "C", "j2")
    [(code, line, message)] = codes(p.xml())
    assert code == "BPMN113" and "'fork'" in message
    assert 'id="fork"' in p.xml().splitlines()[line - 1]
    # A branch that ends in a none end event: the join waits forever.
    p = saga().task("B").gateway("fork", "parallel").gateway("join", "parallel")
    p.gateway("x").end("early").flow("start", "fork", "A", "join", "end")
    p.flow("fork", "B", "x").branch("x", "join", "v == 0")
    p.branch("x", "early", "v == 1")
    [(code, line, message)] = codes(p.xml())
    assert code == "BPMN113" and "'early'" in message
    assert 'id="early"' in p.xml().splitlines()[line - 1]


@pytest.mark.parametrize("name", ["parallel_esp", "timer_interrupts"])
def test_broken_references_are_located_never_a_traceback(name: str) -> None:
    """Point references (flows, attachments, errors, associations) at other
    ids or at nothing: every outcome is a verdict or located diagnostics."""
    src = (HERE / f"{name}.bpmn").read_text()
    ids = re.findall(r' id="([^"]+)"', src)
    rng = random.Random(name)
    codes_seen: set[str] = set()
    for _ in range(120):
        text = src
        for _ in range(rng.randint(1, 2)):
            attr = rng.choice(["sourceRef", "targetRef", "attachedToRef",
                               "errorRef", "id"])
            starts = [m.end() for m in re.finditer(f' {attr}="', text)]
            if not starts:
                continue
            k = rng.choice(starts)
            text = (text[:k] + rng.choice([*ids, "nope", ""])
                    + text[text.index('"', k):])
        for dialect in DIALECTS:
            try:
                findings(parse_bpmn(text.encode(), file="m.bpmn",
                                    dialect=dialect))
            except InvalidDefinition as exc:
                for d in exc.diagnostics:
                    assert d.code.startswith("BPMN") and d.span.line > 0, d
                    assert d.help, d
                    codes_seen.add(d.code)
    assert len(codes_seen) >= 3  # the mutations reach several checks


def test_a_sub_process_needs_one_plain_start_event() -> None:
    p = saga().flow("start", "A", "end").add('<bpmn:subProcess id="inner"/>')
    [(code, line, message)] = codes(p.xml())
    assert code == "BPMN114" and "'inner'" in message
    assert 'id="inner"' in p.xml().splitlines()[line - 1]


def test_the_documented_counterexample_is_what_the_cli_prints(
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """docs/importers.md shows the corpus file's counterexample: pinned."""
    root = Path(__file__).parents[2]
    if not (root / ".." / "shared" / "corpus").is_dir():
        if os.environ.get("CI"):
            raise RuntimeError("the corpus is missing (../shared/corpus)")
        pytest.skip("corpus not present (../shared/corpus)")
    command = ("sagaproof check ../shared/corpus/bpmn/trip-compensation-bernd"
               ".bpmn --property compensation_completeness")
    doc = (root / "docs" / "importers.md").read_text()
    block = doc.split(f"$ {command}\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(root)
    assert main(command.split()[1:]) == 1
    out = capsys.readouterr().out
    # The last line carries the time taken.
    assert out.splitlines()[:-1] == block.splitlines()[:-1]


def test_an_uncaught_error_ends_camunda7_and_halts_zeebe() -> None:
    def ends(dialect: str) -> set[str]:
        t, states, _ = reachable("uncaught_error_end", dialect)
        return {gs.STATUS_NAMES[s[0]] for s in states if gs.is_terminal(t, s)}

    assert ends("camunda7") == {"SUCCEEDED", "FAILED"}
    assert ends("zeebe") == {"SUCCEEDED", "STUCK"}

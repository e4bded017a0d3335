"""Every corpus file imports or is rejected with a located diagnostic, and the
hand-wiring bugs SOURCES.md describes are reported by named properties."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from saga_models import InvalidDefinition, Severity, load
from saga_models.importers import detect, load_all, mapping
from verifier import check

# ../shared/corpus from the repository root; CI always has it, so there a
# missing corpus fails the tests instead of skipping them.
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
_ABSENT = not CORPUS.exists() and not os.environ.get("CI")
_WHERE = "corpus not present: put it at ../shared/corpus beside the repository"
EXAMPLES = Path(__file__).parents[2] / "examples"
FILES = sorted(p for d in ("asl", "seata") for p in (CORPUS / d).glob("*.*")
               if p.suffix in {".json", ".yml", ".yaml"})
INVALID = sorted((CORPUS / "seata" / "invalid").glob("*.json"))
SMALL = "fail,comp_fail"

pytestmark = pytest.mark.skipif(_ABSENT, reason=_WHERE)


def codes(saga):  # type: ignore[no-untyped-def]
    return {d.code for d in saga.import_diagnostics
            if d.severity is Severity.ERROR}


def verdicts(saga, faults=SMALL):  # type: ignore[no-untyped-def]
    return {r.property: r.verdict.value
            for r in check(saga, faults=faults, max_states=200_000).results}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_imports_or_is_rejected_with_a_location(path: Path) -> None:
    try:
        sagas = load_all(path)
    except InvalidDefinition as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.span.file == str(path) and d.span.line > 0, d.render()
        return
    assert sagas and len({s.name for s in sagas}) == len(sagas)
    for saga in sagas:
        assert saga.source_format in {"asl", "seata"}
        for d in saga.import_diagnostics:
            assert d.span.file == str(path), d.render()
    # load() (the CLI's path) gives the primary alternative
    assert load(path).name == sagas[0].name


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_seata_invalid_files_are_rejected(path: Path) -> None:
    with pytest.raises(InvalidDefinition) as info:
        load_all(path)
    d = info.value.diagnostics[0]
    assert d.code in {"SEATA301", "SEATA302", "SEATA303"}
    assert d.span.line > 0


def test_task_free_machine_is_rejected_with_its_reason() -> None:
    with pytest.raises(InvalidDefinition) as info:
        load_all(CORPUS / "asl/either-or-parallel.asl.json")
    assert info.value.diagnostics[0].code == "ASL100"


def test_detect_recognises_formats() -> None:
    assert detect({"StartAt": "a", "States": {}}) == "asl"
    assert detect({"StartState": "a", "States": {}}) == "seata"
    assert detect({"saga": "x", "steps": []}) is None
    assert detect({"stepFunctions": {"stateMachines": {"m": {
        "definition": {"StartAt": "a", "States": {}}}}}}) == "asl"


# --- the known hand-wiring bugs --------------------------------------------------
def test_aws_travel_rollback_without_catch_is_reported() -> None:
    [saga] = load_all(CORPUS / "asl/aws-travel-saga.asl.json")
    assert {"ASL204", "ASL210", "ASL202"} <= codes(saga)
    # the SNS success notice has no Catch: its failure leaves every booking
    names = [d.message for d in saga.import_diagnostics if d.code == "ASL202"]
    assert any("SendingSMSSuccess" in m for m in names)


def test_aws_travel_confirm_steps_are_reported_unmapped_not_guessed() -> None:
    cmap = mapping(CORPUS / "asl/aws-travel-saga.asl.json")
    assert cmap.compensation_of("ReserveFlight") == "CancelFlightReservation"
    assert cmap.compensation_of("ProcessPayment") == "RefundPayment"
    assert cmap.compensation_of("ConfirmFlight") is None


def test_bernd_cancels_without_retry_can_end_stuck() -> None:
    for name in ("trip-booking-bernd.asl.json", "trip-booking-bernd.serverless.yml"):
        [saga] = load_all(CORPUS / "asl" / name)
        assert {"ASL203", "ASL204"} <= codes(saga)
        v = verdicts(saga)
        assert v["eventual_consistency"] == "violated"  # a cancel fails: STUCK
        assert v["structure"] == "violated"
        # the chains themselves cover every booking in reverse order
        assert verdicts(saga, "fail")["compensation_completeness"] == "holds"
        assert verdicts(saga, "fail")["eventual_consistency"] == "holds"


def test_common_error_handler_rollback_ends_in_succeed() -> None:
    [saga] = load_all(CORPUS / "asl/common-error-handling-option1.asl.json")
    assert "ASL205" in codes(saga)
    assert verdicts(saga, "fail")["compensation_completeness"] == "violated"


def test_selective_checkpointing_failure_notices_end_as_success() -> None:
    [saga] = load_all(CORPUS / "asl/selective-checkpointing-parent.asl.json")
    assert {"ASL205", "ASL202"} <= codes(saga)
    assert verdicts(saga, "fail")["compensation_completeness"] == "violated"


def test_parallel_failure_leaves_sibling_effects() -> None:
    sagas = load_all(CORPUS / "asl/explicit-failure-with-parallel-states.asl.json")
    assert len(sagas) == 2
    v = verdicts(sagas[0], "fail")
    assert v["compensation_completeness"] == "violated"
    assert "ASL206" in codes(sagas[0])


def test_seata_go_catches_key_is_ignored_like_the_engine_does() -> None:
    for name in ("seata-go-order_saga.json", "seata-go-order_saga.yaml"):
        sagas = load_all(CORPUS / "seata" / name)
        primary = sagas[0]
        warn = {d.code for d in primary.import_diagnostics}
        assert "SEATA310" in warn and "SEATA202" in codes(primary)
        assert verdicts(primary, "fail")["compensation_completeness"] == "violated"
        # the business branch into CancelOrder runs compensation as forward work
        assert any("SEATA311" in codes(s) for s in sagas)


def test_seata_sub_machine_dangling_compensate_state() -> None:
    sagas = load_all(
        CORPUS / "seata/simple_statelang_with_compensation_and_sub_machine.json")
    assert "SEATA212" in codes(sagas[0])


def test_seata_compensation_trigger_chain_is_reverse_and_conditional() -> None:
    sagas = load_all(CORPUS / "seata/reduce_inventory_and_balance.json")
    primary = sagas[0]
    chain = primary.chain_for(primary.index("ReduceBalance"))
    assert chain is not None and not chain.unconditional
    assert chain.steps == ("ReduceBalance", "ReduceInventory")
    assert primary.compensation_policy.max_attempts == 1  # stops at first failure
    assert verdicts(primary, "fail,timeout")["eventual_consistency"] == "violated"
    # ReduceInventory has no Catch: an UN outcome there is never compensated
    assert verdicts(primary, "fail,timeout")["compensation_completeness"] == \
        "violated"


def test_sidecar_completes_the_mapping() -> None:
    [saga] = load_all(CORPUS / "asl/aws-travel-saga.asl.json",
                      compensations=EXAMPLES / "imported/aws-travel-saga.map.yaml")
    assert saga.step("ConfirmFlight").compensation == "CancelFlightReservation"
    assert "SendingSMSSuccess" not in [s.name for s in saga.steps]
    assert "ASL210" not in codes(saga)


def test_sidecar_naming_an_unknown_task_is_located(tmp_path: Path) -> None:
    side = tmp_path / "m.yaml"
    side.write_text("compensations:\n  ReserveFlight: CancelFlight\n")
    with pytest.raises(InvalidDefinition) as info:
        load_all(CORPUS / "asl/aws-travel-saga.asl.json", compensations=side)
    d = info.value.diagnostics[0]
    assert d.code == "IMPORT113" and d.span.line == 2
    assert "CancelFlightReservation" in d.help


def test_printed_mapping_with_unmapped_tasks_is_refused_when_read_back(
        tmp_path: Path) -> None:
    side = tmp_path / "m.yaml"
    side.write_text(mapping(CORPUS / "asl/aws-travel-saga.asl.json").to_yaml())
    with pytest.raises(InvalidDefinition):
        load_all(CORPUS / "asl/aws-travel-saga.asl.json", compensations=side)

"""Serverless Workflow 0.8 explored as its own graph (each rule both ways)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from saga_models import InvalidDefinition
from saga_models._source import read_document
from saga_models.importers.graph_semantics import ImportedMachine, load_sw
from verifier import check


def op(name: str, nxt: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": "operation", "actions": [
        {"functionRef": {"refName": name}}]}
    out.update({"transition": nxt} if nxt is not None else {"end": True})
    out.update(extra)
    return out


def workflow(*states: dict[str, Any]) -> dict[str, Any]:
    return {"id": "w", "specVersion": "0.8", "start": states[0]["name"],
            "errors": [{"name": "failed"}], "states": list(states)}


ROLLBACK = {"name": "Rollback", "type": "inject", "data": {},
            "transition": {"nextState": "Notify", "compensate": True}}


def good() -> dict[str, Any]:
    on = [{"errorRef": "failed", "transition": "Rollback"}]
    return workflow(
        op("Reserve", "Pay", compensatedBy="Unreserve", onErrors=on),
        op("Pay", None, compensatedBy="Refund", onErrors=on),
        op("Unreserve", usedForCompensation=True),
        op("Refund", usedForCompensation=True),
        ROLLBACK, op("Notify"))


def load(tmp: Path, data: dict[str, Any]) -> ImportedMachine:
    path = tmp / "w.sw.json"
    path.write_text(json.dumps(data, indent=2))
    return load_sw(read_document(path))


def verdict(im: ImportedMachine, prop: str = "compensation_completeness",
            faults: str = "fail") -> str:
    [r] = [r for r in check(im, faults=faults).results if r.property == prop]
    return r.verdict.value


def test_named_errors_compensate_and_end_normally(tmp_path: Path) -> None:
    im = load(tmp_path, good())
    # Only the declared error is raised here: the rollback covers it, and
    # ending normally after compensating is not a masked failure.
    data = good()
    assert verdict(im, "eventual_consistency") == "holds"
    data["states"][1]["compensatedBy"] = "Missing"
    with pytest.raises(InvalidDefinition) as info:
        load(tmp_path, data)
    assert info.value.diagnostics[0].code == "SW104"


def test_an_undeclared_error_fails_the_workflow(tmp_path: Path) -> None:
    # Pay raises an error its onErrors do not name: Reserve stays.
    assert verdict(load(tmp_path, good())) == "violated"
    data = good()
    for s in data["states"][:2]:
        s["onErrors"].append({"errorRef": "other", "transition": "Rollback"})
    data["errors"].append({"name": "other"})
    # Still violated: an error that no entry names at all is always possible.
    assert verdict(load(tmp_path, data)) == "violated"
    data["states"][1]["onErrors"] = []
    data["states"][1].pop("compensatedBy")
    data["states"][0]["end"] = True
    data["states"][0].pop("transition")
    # One operation, rolled back on its named errors: nothing else to undo.
    assert verdict(load(tmp_path, data)) == "holds"


def test_a_compensation_that_is_not_a_state_type_we_model(tmp_path: Path
                                                          ) -> None:
    data = good()
    data["states"].append({"name": "E", "type": "event", "end": True})
    with pytest.raises(InvalidDefinition) as info:
        load(tmp_path, data)
    d = info.value.diagnostics[0]
    assert d.code == "SW101" and d.span.line > 0 and d.help

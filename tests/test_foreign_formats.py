"""BPMN and Serverless Workflow files are recognised (SAGA017, naming the
format), not told to start with 'saga: <name>' (SAGA121)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saga_models import InvalidDefinition, load
from sagaproof.cli import main

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="order" name="Order: reserve, charge" isExecutable="true">
    <bpmn:startEvent id="start"/>
  </bpmn:process>
</bpmn:definitions>
"""
SW10 = """document: {dsl: '1.0.0', namespace: shop, name: order, version: '0.1.0'}
do:
  - reserve: {call: http, with: {method: post, endpoint: 'https://inv/reserve'}}
"""
SW08 = json.dumps({"id": "order", "version": "1.0", "specVersion": "0.8",
                   "start": "Reserve", "states": [{"name": "Reserve",
                                                   "type": "operation",
                                                   "end": True}]})


@pytest.mark.parametrize(("name", "text", "fmt"), [
    ("order.bpmn", BPMN, "BPMN 2.0"),
    ("order.xml", BPMN, "BPMN 2.0"),
    ("order.sw.yaml", SW10, "Serverless Workflow"),
])
def test_recognised_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            name: str, text: str, fmt: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidDefinition) as exc:
        load(path)
    (d,) = exc.value.diagnostics
    assert d.code == "SAGA017" and fmt in d.message
    assert "saga: <name>" in d.help and "ASL" in d.help
    assert main(["check", str(path), "--format", "json"]) == 2
    (entry,) = json.loads(capsys.readouterr().out)
    # BPMN is checked as its own graph: this process has nothing to check.
    code = "BPMN100" if fmt == "BPMN 2.0" else "SAGA017"
    assert [x["code"] for x in entry["diagnostics"]] == [code]


def test_serverless_workflow_08_is_checked_as_its_graph(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "order.sw.json"
    path.write_text(SW08)
    assert main(["check", str(path), "--format", "json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["verdict"] == "holds"
    # It has no native saga form: loading it as one names the format.
    with pytest.raises(InvalidDefinition) as exc:
        load(path)
    (d,) = exc.value.diagnostics
    assert d.code == "SAGA017" and "sagaproof check" in d.message


def test_other_files_are_still_not_a_definition(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services: {web: {image: nginx}}\nversion: '3'\n")
    with pytest.raises(InvalidDefinition) as exc:
        load(path)
    assert [d.code for d in exc.value.diagnostics] == ["SAGA121"]

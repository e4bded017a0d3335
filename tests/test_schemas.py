"""The published JSON Schemas: shipped in the package, valid, accepted by every
shipped definition, refusing wrong ones, and used by the loaders."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from saga_models import InvalidDefinition, load, loads
from saga_models._source import read_document

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"


def _schema(name: str) -> dict[str, Any]:
    text = resources.files("saga_models").joinpath(f"schema/{name}").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = _schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _files(kind: str) -> list[Path]:
    out = []
    for path in sorted([*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("*/*.yaml"),
                        *(ROOT / "tests" / "quality").glob("*/*.yaml"),
                        *(ROOT / "tests" / "quality").glob("*/*/*.yaml")]):
        data = read_document(path).data
        if isinstance(data, dict) and kind in data:
            out.append(path)
    return out


@pytest.mark.parametrize(("schema", "kind"), [("saga.schema.json", "saga"),
                                              ("workflow.schema.json", "workflow")])
def test_every_shipped_definition_matches_its_schema(schema: str, kind: str) -> None:
    validator = _validator(schema)
    files = _files(kind)
    assert len(files) >= 5
    for path in files:
        errors = [e.message for e in validator.iter_errors(read_document(path).data)]
        assert errors == [], path


def test_the_workflow_schema_refuses_wrong_shapes() -> None:
    validator = _validator("workflow.schema.json")
    good = read_document(EXAMPLES / "workflows" / "order_saga.workflow.yaml").data
    assert validator.is_valid(good)
    for bad in (
        {**good, "servics": {}},                                   # misspelt key
        {**good, "bus": {"delivery": "twice"}},                    # unknown word
        {**good, "services": {"a": {"transitions": []}}},          # no initial
        {**good, "services": {"a": {"initial": "X", "transitions": [
            {"from": "X", "on": "e", "after": "1s", "to": "Y"}]}}},  # both on/after
    ):
        assert not validator.is_valid(bad)


def test_workflow_loader_validates_with_the_schema(tmp_path: Path) -> None:
    # The loader's own checks take a numeric description; the schema says it
    # is text, and the loader reports the schema's verdict.
    text = (EXAMPLES / "workflows" / "order_saga.workflow.yaml").read_text()
    path = tmp_path / "w.workflow.yaml"
    path.write_text(text + "\ndescription: 42\n")
    with pytest.raises(InvalidDefinition) as exc:
        load(path)
    (d,) = exc.value.diagnostics
    assert d.code == "WF102" and "schema" in d.message
    assert d.span.pointer == "/description" and d.span.line > 1
    path.write_text(text + "\ndescription: an order saga\n")
    assert load(path).name


def test_schema_key_is_accepted_in_json_files(tmp_path: Path) -> None:
    data = read_document(EXAMPLES / "workflows" / "order_saga.workflow.yaml").data
    wf = tmp_path / "w.json"
    wf.write_text(json.dumps({"$schema": "workflow.schema.json", **data}))
    assert load(wf).name == data["workflow"]
    saga = loads('{"$schema": "saga.schema.json", "saga": "t", "steps": '
                 '[{"name": "a", "participant": "p", "compensation": "u"}]}',
                 fmt="json")
    assert saga.name == "t"

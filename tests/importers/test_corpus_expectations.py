"""Goldens for ../shared/corpus: each file's findings, as a careful reviewer
lists them from the engine's documented semantics (one expectations file per
corpus file, in ``corpus_expectations/``), against what sagaproof reports.

Every expected finding must be reported and nothing else may be reported as a
violation. A disagreement sagaproof is known to have is written down in the
expectations file (``known_misses``, ``known_false_alarms``) with its reason,
so the test pins it and ``bench/corpus_bench.py`` counts it in precision and
recall; it is never silently dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from saga_models import InvalidDefinition
from saga_models._source import read_document
from saga_models.importers.graph_semantics import (
    load_bpmn,
    load_machine,
    load_seata,
    load_sw,
)
from verifier._imported_ts import findings

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / ".." / "shared" / "corpus"
EXPECTATIONS = Path(__file__).parent / "corpus_expectations"
FILES = sorted(EXPECTATIONS.glob("*.yaml"))

if not CORPUS.is_dir():
    if os.environ.get("CI"):
        raise RuntimeError(f"the corpus is missing at {CORPUS} (CI=true)")
    pytest.skip(f"corpus not present at {CORPUS} (../shared/corpus from the "
                "repository root)", allow_module_level=True)


def expectation(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def reported(exp: dict[str, Any], *, dialect: str = "camunda7"
             ) -> tuple[set[str], str | None]:
    """(finding ids, refusal code) for the corpus file ``exp`` names (a BPMN
    file under ``dialect``)."""
    fmt = exp["file"].split("/")[0]
    loader = {"seata": load_seata, "sw": load_sw}.get(fmt, load_machine)
    try:
        if fmt == "bpmn":
            im = load_bpmn(str(CORPUS / exp["file"]), dialect=dialect)
        else:
            im = loader(read_document(CORPUS / exp["file"]))
    except InvalidDefinition as exc:
        return set(), exc.diagnostics[0].code
    return set(findings(im)), None


def test_every_corpus_file_has_expectations() -> None:
    have = {expectation(p)["file"] for p in FILES}
    files = {f"{d}/{p.name}" for d in ("asl", "seata", "sw", "bpmn")
             for p in (CORPUS / d).iterdir() if p.is_file()}
    assert files <= have


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name.removesuffix(".yaml"))
def test_findings_match_the_reviewer(path: Path) -> None:
    exp = expectation(path)
    expected = {f["id"] for f in exp.get("findings") or []}
    misses = {f["id"] for f in exp.get("known_misses") or []}
    false_alarms = {f["id"] for f in exp.get("known_false_alarms") or []}
    assert misses <= expected and not false_alarms & expected
    got, refused = reported(exp)
    assert refused == exp.get("refused")
    assert got == (expected - misses) | false_alarms


@pytest.mark.parametrize("path", [p for p in FILES if "zeebe_findings" in
                                  expectation(p)],
                         ids=lambda p: p.name.removesuffix(".yaml"))
def test_bpmn_findings_under_zeebe_match_the_reviewer(path: Path) -> None:
    exp = expectation(path)
    got, refused = reported(exp, dialect="zeebe")
    assert refused is None
    assert got == {f["id"] for f in exp["zeebe_findings"]}

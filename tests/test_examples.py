"""``sagaproof check examples/*.yaml --format json`` gives the promised verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sagaproof.cli import main
from tests.expectations import expectation

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.yaml"))


def test_there_are_correct_and_buggy_examples() -> None:
    kinds = {bool(expectation(p).violated) for p in EXAMPLES}
    assert kinds == {True, False}


def test_examples_give_the_verdicts_they_promise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check", *map(str, EXAMPLES), "--format", "json", "--no-progress"])
    out = json.loads(capsys.readouterr().out)
    assert len(out) == len(EXAMPLES)
    any_violated = False
    for path, entry in zip(EXAMPLES, out, strict=True):
        exp = expectation(path)
        violated = {r["property"] for r in entry["results"]
                    if r["verdict"] == "violated"}
        assert violated == exp.violated, path.name
        assert all(r["verdict"] != "unknown" for r in entry["results"])
        any_violated |= bool(violated)
    assert code == (1 if any_violated else 0)


REFUSED = sorted((Path(__file__).parents[1] / "examples" / "refused").glob("*.yaml"))


@pytest.mark.parametrize("path", REFUSED, ids=lambda p: p.name)
def test_refused_examples_are_refused_with_their_code(
    path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code = expectation(path).refused
    assert code
    assert main(["check", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"error {code}:" in err
    assert "Traceback" not in err

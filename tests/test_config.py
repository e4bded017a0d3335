"""``[tool.sagaproof]`` in pyproject.toml: defaults for ``check``, overridden by
flags, every problem a located diagnostic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sagaproof.cli import main
from sagaproof.config import parse_config

ROOT = Path(__file__).parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "sagas").mkdir()
    for name in ("trip_booking.saga.yaml", "payment_double_charge.yaml"):
        shutil.copy(ROOT / "examples" / name, tmp_path / "sagas" / name)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # found by walking upwards
    return tmp_path


def _write(project: Path, body: str) -> None:
    (project / "pyproject.toml").write_text(
        '[project]\nname = "shop"\n\n[tool.sagaproof]\n' + body)


def test_configured_defaults_apply(project: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    _write(project, 'paths = ["sagas/*.yaml"]\nformat = "json"\n'
           'faults = "fail"\nproperties = ["eventual_consistency"]\n')
    code = main(["check", "--no-progress"])
    entries = json.loads(capsys.readouterr().out)
    assert sorted(Path(e["source"]).name for e in entries) == [
        "payment_double_charge.yaml", "trip_booking.saga.yaml"]
    for e in entries:
        (r,) = e["results"]
        assert r["property"] == "eventual_consistency"
        assert r["fault_model"] == "fail"
    # Under "fail" alone nothing is charged twice: every file holds.
    assert code == 0


def test_flags_override_the_file(project: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _write(project, 'paths = ["sagas/*.yaml"]\nformat = "json"\nfaults = "fail"\n')
    code = main(["check", str(project / "sagas" / "payment_double_charge.yaml"),
                 "--faults", "all", "--format", "text", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1  # the double charge needs timeouts or crashes
    assert out.startswith(str(project / "sagas" / "payment_double_charge.yaml"))
    assert "trip_booking" not in out


def test_bad_configuration_is_located(project: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    _write(project, 'paths = ["sagas/*.yaml"]\nformat = "json"\n'
           "max_states = 10\nbackend = \"z4\"\n")
    code = main(["check"])
    assert code == 2
    out, err = capsys.readouterr()
    (entry,) = json.loads(out)
    diags = {d["code"]: d for d in entry["diagnostics"]}
    assert diags["SAGA013"]["help"] == "did you mean 'max-states'?"
    assert diags["SAGA013"]["location"]["line"] == 7
    assert diags["SAGA014"]["location"]["line"] == 8
    assert "SAGA013" in err


def test_nothing_to_check(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(project, 'faults = "fail"\n')
    assert main(["check"]) == 2
    assert "SAGA016" in capsys.readouterr().err


def test_explicit_config_and_missing_file(project: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    other = project / "ci.toml"
    other.write_text('[tool.sagaproof]\npaths = ["sagas/trip_booking.saga.yaml"]\n')
    assert main(["check", "--config", str(other), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["check", "--config", str(project / "nope.toml")]) == 2
    assert "SAGA015" in capsys.readouterr().err


def test_parse_config_checks_every_key() -> None:
    cfg = parse_config('[tool.sagaproof]\nmax-states = 0\nformat = "xml"\n'
                       'faults = "fail"\n', file="p.toml")
    assert {d.code for d in cfg.diagnostics} == {"SAGA014"}
    assert dict(cfg.values) == {"faults": "fail"}
    assert parse_config("[tool.other]\n", file="p.toml").values == {}
    bad = parse_config("[tool.sagaproof\n", file="p.toml")
    assert [d.code for d in bad.diagnostics] == ["SAGA015"]


def test_the_bitstate_range_is_the_lossy_searchs() -> None:
    # The file's check repeats the range rather than import the compiled
    # checker at every start; this is what keeps the two the same.
    from verifier._kernel_compact import MAX_BITS, MIN_BITS

    def accepted(bits: int) -> bool:
        cfg = parse_config(f"[tool.sagaproof]\nbitstate = {bits}\n", file="p.toml")
        return not cfg.diagnostics

    assert [accepted(b) for b in (MIN_BITS - 1, MIN_BITS, MAX_BITS, MAX_BITS + 1)
            ] == [False, True, True, False]

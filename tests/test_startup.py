"""Start-up cost: what the command line imports before it does anything.

``sagaproof --help`` and every command's ``--help`` load no definition, so
they must import neither networkx nor jsonschema (issue 16); neither does
loading, validating and checking a valid saga (its schema's yes comes from a
precompiled validator); a file that breaks its schema imports jsonschema for
the located errors. Each check runs in a
fresh interpreter and reads ``sys.modules`` there; the probe itself is shown
to see an import when there is one. Figures: ``bench/startup_bench.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
SMALL = "examples/trip_booking.saga.yaml"
_PROBE = ("import sys\n{body}\n"
          "print(sorted(m for m in ('networkx', 'jsonschema') if m in sys.modules))")


def _loaded(body: str) -> list[str]:
    """The watched modules a fresh interpreter has after running ``body``."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(body=body)], capture_output=True,
        text=True, cwd=ROOT, check=False, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    return [m.strip(" '") for m in last.strip("[]").split(",") if m.strip()]


def test_help_of_every_command_imports_neither_networkx_nor_jsonschema() -> None:
    body = (
        "from sagaproof.cli import build_parser, main\n"
        "names = list(build_parser()._subparsers._group_actions[0].choices)\n"
        "assert len(names) > 5, names\n"
        "for argv in [['--help'], *[[n, '--help'] for n in names]]:\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n")
    assert _loaded(body) == []


def test_the_probe_sees_an_import(tmp_path: Path) -> None:
    # The other way round: drawing a graph does use networkx, and a check of
    # a definition that does not match its JSON schema asks jsonschema for
    # every located error.
    assert "networkx" in _loaded("import verifier.graph")
    bad = tmp_path / "bad.saga.yaml"
    bad.write_text("saga: s\nsteps:\n  - {name: a, participant: p, "
                   "acton: x}\n")
    body = ("from sagaproof.cli import main\n"
            f"assert main(['check', {str(bad)!r}, '--no-progress']) == 2\n")
    assert "jsonschema" in _loaded(body)


def test_checking_a_valid_saga_imports_neither_networkx_nor_jsonschema() -> None:
    # A valid file needs only the schema's yes, from the precompiled
    # validator (saga_models/_fastschema); jsonschema is for the errors.
    body = ("from sagaproof.cli import main\n"
            f"assert main(['check', {SMALL!r}, '--no-progress']) == 0\n")
    assert _loaded(body) == []


def test_loading_and_validating_a_saga_does_not_import_networkx() -> None:
    body = ("from saga_models import load, structure_diagnostics\n"
            f"saga = load({SMALL!r})\n"
            "errors = [d for d in structure_diagnostics(saga)\n"
            "          if d.severity.name == 'ERROR']\n"
            "assert not errors, errors")
    assert _loaded(body) == []

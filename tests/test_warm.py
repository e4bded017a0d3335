"""The numba warm-up (``verifier/_warm.py``, run by ``scripts/test.sh``
before the test tiers) knows every compiled module, and tells a filled
cache folder from an empty one. The warm-up's searches themselves run in
every CI run: ``scripts/test.sh`` fails when one of them leaves its
module's folder empty."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from verifier import _warm

VERIFIER = Path(_warm.__file__).parent


def test_every_compiled_module_has_a_warm_up_folder() -> None:
    # A module compiles into its own folder: one named by a literal
    # cache_dir("name", ...) (the saga and workflow searches), or kb.extend's
    # (named after the module).
    named: set[str] = set()
    for path in sorted(VERIFIER.rglob("*.py")):
        source = path.read_text()
        named |= set(re.findall(r'\bcache_dir\(\s*"(\w+)"', source))
        if re.search(r"\bkb\.extend\(", source):
            named.add(path.stem.lstrip("_"))
    assert named == set(_warm.folders()), named
    assert {"saga", "wf", "kernel_props"} <= named  # the scan sees them


def test_missing_names_the_folders_without_compiled_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folders = _warm.folders()
    assert all(tmp_path in where.parents for where in folders.values())
    assert _warm.missing() == list(folders)
    # numba's layout: an index file per function under a folder per source
    # directory; a folder of older sources (another hash) does not count.
    (folders["saga"] / "verifier_0").mkdir(parents=True)
    (folders["saga"] / "verifier_0" / "_kernel_bfs._search-1.py311.nbi").touch()
    stale = folders["wf"].with_name("wf-0000000000000000") / "verifier_0"
    stale.mkdir(parents=True)
    (stale / "_wf_kernel_bfs._search-1.py311.nbi").touch()
    assert _warm.missing() == [n for n in folders if n != "saga"]

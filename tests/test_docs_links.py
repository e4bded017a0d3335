"""The README stands alone: every link in it and in docs/ resolves to a file
inside the repository (a clone has nothing outside it), and the README itself
links nowhere on the web for what a user needs to know."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            ROOT / "proofs" / "README.md", ROOT / "bench" / "RESULTS.md"]


def broken_links(doc: Path) -> list[str]:
    """Links of ``doc`` that leave the repository or name no file in it."""
    bad = []
    for target in _LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT.resolve()) or not path.exists():
            bad.append(target)
    return bad


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: p.name)
def test_links_stay_inside_the_repository(doc: Path) -> None:
    assert broken_links(doc) == []


def test_a_link_outside_is_caught(tmp_path: Path) -> None:
    # The seeded bug: the README's old link to ../shared/DESIGN.md.
    doc = ROOT / "docs" / "_probe_.md"
    try:
        doc.write_text("See [design](../../shared/DESIGN.md), [x](missing.md)"
                       " and [ok](design.md#properties).")
        assert broken_links(doc) == ["../../shared/DESIGN.md", "missing.md"]
    finally:
        doc.unlink()


def test_readme_has_no_web_links() -> None:
    assert re.findall(r"\]\((https?:[^)]*)\)", (ROOT / "README.md").read_text()) == []


def test_property_anchors_exist() -> None:
    # SARIF rules point at docs/properties.md#<name>; each heading must exist.
    from verifier import SAGA_PROPERTIES
    from verifier._sarif import _help_uri

    headings = {line.lstrip("# ").strip() for line in
                (ROOT / "docs" / "properties.md").read_text().splitlines()
                if line.startswith("#")}
    for prop in SAGA_PROPERTIES:
        assert _help_uri(prop).rsplit("#", 1)[1] in headings

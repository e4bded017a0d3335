"""The slow tier's ordering list (``tests/conftest.py``) names real tests, so
a renamed long pole is not silently started last again."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LONG_POLES

TESTS = Path(__file__).parent


def test_every_long_pole_is_a_test_of_the_slow_tier() -> None:
    for file, name, seconds in LONG_POLES:
        source = (TESTS / file).read_text()
        assert f"def {name}(" in source, (file, name)
        assert "pytest.mark.slow" in source, (file, name)
        assert seconds > 0
    assert len({(f, t) for f, t, _ in LONG_POLES}) == len(LONG_POLES)
    seconds = [s for _, _, s in LONG_POLES]
    assert seconds == sorted(seconds, reverse=True)  # longest first


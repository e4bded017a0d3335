"""The runtime's public API is exactly ``__all__``."""

import runtime


def test_all_is_the_public_names() -> None:
    public = {n for n in dir(runtime) if not n.startswith("_")}
    assert set(runtime.__all__) == public
    assert runtime.__all__ == sorted(runtime.__all__, key=str)

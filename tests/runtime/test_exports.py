"""The runtime's public API is exactly ``__all__``."""

import types

import runtime


def test_all_is_the_public_names() -> None:
    # Subpackages (runtime.workflow) appear as attributes once imported.
    public = {n for n in dir(runtime) if not n.startswith("_")
              and not isinstance(getattr(runtime, n), types.ModuleType)}
    assert set(runtime.__all__) == public
    assert runtime.__all__ == sorted(runtime.__all__, key=str)

"""The hook a ``conftest.py`` implements to bind participants to definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_sagaproof_binding(saga: Any, path: Path) -> Any:
    """Return a :class:`sagaproof.testing.Binding` for ``saga`` (loaded from
    ``path``) to generate stateful tests of its participants, or None.

    Example ``conftest.py``::

        from sagaproof.testing import Binding

        def pytest_sagaproof_binding(saga, path):
            if saga.name == "trip_booking":
                return Binding(participants=make_trip_services)
            return None
    """

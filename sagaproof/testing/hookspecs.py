"""The hooks a ``conftest.py`` implements to bind participants (sagas) and
handlers (event workflows) to definitions."""

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


@pytest.hookspec(firstresult=True)
def pytest_sagaproof_workflow_binding(workflow: Any, path: Path) -> Any:
    """Return a :class:`sagaproof.testing.WorkflowBinding` for ``workflow``
    (loaded from ``path``) to generate stateful tests of its handlers, or None.

    Example ``conftest.py``::

        from examples.workflows import handlers
        from sagaproof.testing import WorkflowBinding

        def pytest_sagaproof_workflow_binding(workflow, path):
            if workflow.name == "order_saga":
                return WorkflowBinding(handlers=lambda: handlers.order_saga)
            return None
    """

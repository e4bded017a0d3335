"""Event-workflow handlers with seeded bugs, each beside its correct version.

Each module defines one workflow (``WORKFLOW``, which verifies: the bug is in
the handlers, not the definition), a ``correct`` and a ``buggy``
:class:`~sagaproof.testing.WorkflowBinding`, ``EXPECT`` (a fragment of the
failure the generated tests must report for the buggy one) and ``SCHEDULE``
(a known schedule that shows the bug).
"""

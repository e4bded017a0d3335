"""Participant code with seeded bugs, each beside its correct version.

Each module defines one saga (``SAGA``), a ``correct`` and a ``buggy``
:class:`~sagaproof.testing.Binding`, and ``EXPECT``: a fragment of the
failure the generated tests must report for the buggy one.
"""

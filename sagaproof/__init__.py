"""The ``sagaproof`` command: wires saga_models, verifier and runtime together.

Only this application package imports every stage; the stages import one way
(DESIGN.md).
"""

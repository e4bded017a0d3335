"""The seed document's theorems, proved or refuted with z3 and sympy.

Each module has ``run() -> ProofResult`` (no printing); :func:`run_all` runs
them in the order of proofs/README.md.
"""

from ._result import ProofResult as ProofResult
from ._result import Status as Status

MODULES = (
    "saga_correctness",
    "state_machine",
    "event_driven",
    "workflow_conditions",
    "performance",
    "state_count",
    "isolation",
    "version_file",
)


def run_all() -> list[ProofResult]:
    """Every proof module's result."""
    import importlib

    return [importlib.import_module(f"proofs.{m}").run() for m in MODULES]


__all__ = ["MODULES", "ProofResult", "Status", "run_all"]

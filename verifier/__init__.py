"""sagaproof's verifier: transition systems, the explicit checker, verdicts."""

from ._check import check as check
from ._check import compile_model as compile_model
from ._check import register_model as register_model
from ._explicit import explore as explore
from ._result import CheckResult as CheckResult
from ._result import Counterexample as Counterexample
from ._result import PropertyResult as PropertyResult
from ._result import PropertyViolated as PropertyViolated
from ._result import Stats as Stats
from ._result import TraceStep as TraceStep
from ._result import Verdict as Verdict
from ._saga_ts import SAGA_PROPERTIES as SAGA_PROPERTIES
from ._saga_ts import SagaTransitionSystem as SagaTransitionSystem
from ._ts import Property as Property
from ._ts import TransitionSystem as TransitionSystem

# The package wires each kind of definition into the one check API, so that a
# transition system never imports the API above it (no import cycle); by name,
# so that checking a saga imports neither of the other kinds.
register_model("saga_models.workflow:Workflow", "workflow",
               "verifier._workflow_ts:compile_workflow")
register_model("saga_models.importers.graph_semantics:ImportedMachine",
               "state machine", "verifier._imported_ts:compile_imported")

__all__ = [
    "SAGA_PROPERTIES",
    "CheckResult",
    "Counterexample",
    "Property",
    "PropertyResult",
    "PropertyViolated",
    "SagaTransitionSystem",
    "Stats",
    "TraceStep",
    "TransitionSystem",
    "Verdict",
    "check",
    "compile_model",
    "explore",
    "register_model",
]

"""Event workflows: services as state machines over an event bus.

Load a workflow from YAML/JSON (any file with a top-level ``workflow:`` key) or
build one in Python; the verifier explores it under the bus's delivery contract
and the runtime in :mod:`runtime.workflow` runs it, both through
:mod:`saga_models.workflow.semantics`.
"""

from ._builder import WorkflowBuilder as WorkflowBuilder
from ._expr import Expr as Expr
from ._expr import ExprError as ExprError
from ._expr import parse_expr as parse_expr
from ._graph import to_dot as to_dot
from ._graph import to_mermaid as to_mermaid
from ._ir import ENV as ENV
from ._ir import Branch as Branch
from ._ir import Bus as Bus
from ._ir import Counter as Counter
from ._ir import Delivery as Delivery
from ._ir import Invariant as Invariant
from ._ir import Order as Order
from ._ir import OutcomeSpec as OutcomeSpec
from ._ir import Service as Service
from ._ir import Transition as Transition
from ._ir import Workflow as Workflow
from ._loader import load_workflow_data as load_workflow_data
from ._loader import load_workflow_document as load_workflow_document
from ._validate import structure_diagnostics as structure_diagnostics
from ._validate import workflow_diagnostics as workflow_diagnostics

__all__ = [
    "ENV",
    "Branch",
    "Bus",
    "Counter",
    "Delivery",
    "Expr",
    "ExprError",
    "Invariant",
    "Order",
    "OutcomeSpec",
    "Service",
    "Transition",
    "Workflow",
    "WorkflowBuilder",
    "load_workflow_data",
    "load_workflow_document",
    "parse_expr",
    "structure_diagnostics",
    "to_dot",
    "to_mermaid",
    "workflow_diagnostics",
]

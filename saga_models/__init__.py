"""sagaproof's definitions: load, validate, the frozen IR and the pure semantics.

>>> from saga_models import SagaBuilder
>>> saga = (SagaBuilder("trip")
...         .step("reserve", participant="flights", action="reserve",
...               compensation="cancel")
...         .step("charge", participant="payments", action="charge",
...               compensation="refund")
...         .build())
>>> [s.name for s in saga.steps]
['reserve', 'charge']
"""

from ._builder import SagaBuilder as SagaBuilder
from ._errors import Diagnostic as Diagnostic
from ._errors import InvalidDefinition as InvalidDefinition
from ._errors import SagaError as SagaError
from ._errors import Severity as Severity
from ._ir import AfterExhausted as AfterExhausted
from ._ir import CircuitBreaker as CircuitBreaker
from ._ir import CompensationChain as CompensationChain
from ._ir import CompensationPolicy as CompensationPolicy
from ._ir import Effect as Effect
from ._ir import Resource as Resource
from ._ir import ResourceInvariant as ResourceInvariant
from ._ir import RetryPolicy as RetryPolicy
from ._ir import Saga as Saga
from ._ir import Step as Step
from ._ir import StepKind as StepKind
from ._load import load as load
from ._load import loads as loads
from ._scenario import Scenario as Scenario
from ._scenario import ScenarioMember as ScenarioMember
from ._span import Span as Span
from ._validate import structure_diagnostics as structure_diagnostics
from .semantics import FaultModel as FaultModel

__all__ = [
    "AfterExhausted",
    "CircuitBreaker",
    "CompensationChain",
    "CompensationPolicy",
    "Diagnostic",
    "Effect",
    "FaultModel",
    "InvalidDefinition",
    "Resource",
    "ResourceInvariant",
    "RetryPolicy",
    "Saga",
    "SagaBuilder",
    "SagaError",
    "Scenario",
    "ScenarioMember",
    "Severity",
    "Span",
    "Step",
    "StepKind",
    "load",
    "loads",
    "structure_diagnostics",
]


"""sagaproof's runtime: runs a saga by driving the shared semantics durably.

>>> import asyncio
>>> from saga_models import SagaBuilder
>>> saga = (SagaBuilder("trip")
...         .step("reserve", participant="flights", action="reserve",
...               compensation="cancel")
...         .build())
>>> reg = Participants()
>>> reg.register("flights", "reserve", lambda ctx: {"seat": "12A"})
>>> reg.register("flights", "cancel", lambda ctx: None)
>>> result = asyncio.run(Engine(saga, reg).run({"who": "ada"}))
>>> result.outcome, result.results["reserve"]
(<SagaOutcome.COMPLETED: 'COMPLETED'>, {'seat': '12A'})
"""

from ._breaker import Breaker as Breaker
from ._breaker import BreakerState as BreakerState
from ._clock import Clock as Clock
from ._clock import RealClock as RealClock
from ._clock import VirtualClock as VirtualClock
from ._clock import VirtualEventLoop as VirtualEventLoop
from ._engine import Engine as Engine
from ._engine import SagaOutcome as SagaOutcome
from ._engine import SagaResult as SagaResult
from ._errors import BindingError as BindingError
from ._errors import CircuitOpen as CircuitOpen
from ._errors import CorruptLog as CorruptLog
from ._errors import DefinitionMismatch as DefinitionMismatch
from ._errors import LeaseLost as LeaseLost
from ._errors import LogError as LogError
from ._errors import NoSuchLog as NoSuchLog
from ._errors import NotResumable as NotResumable
from ._errors import ParticipantContractError as ParticipantContractError
from ._errors import UnknownSaga as UnknownSaga
from ._events import EventBus as EventBus
from ._events import EventType as EventType
from ._events import InProcessBus as InProcessBus
from ._events import SagaEvent as SagaEvent
from ._log import LogRecord as LogRecord
from ._log import MemoryLog as MemoryLog
from ._log import SagaInfo as SagaInfo
from ._log import SagaLog as SagaLog
from ._participants import Participants as Participants
from ._participants import StepContext as StepContext
from ._participants import load_participants as load_participants
from ._replay import replay as replay
from ._sqlite import SQLiteLog as SQLiteLog
from ._telemetry import Telemetry as Telemetry
from ._telemetry import otel_telemetry as otel_telemetry

__all__ = [
    "BindingError",
    "Breaker",
    "BreakerState",
    "CircuitOpen",
    "Clock",
    "CorruptLog",
    "DefinitionMismatch",
    "Engine",
    "EventBus",
    "EventType",
    "InProcessBus",
    "LeaseLost",
    "LogError",
    "LogRecord",
    "MemoryLog",
    "NoSuchLog",
    "NotResumable",
    "ParticipantContractError",
    "Participants",
    "RealClock",
    "SQLiteLog",
    "SagaEvent",
    "SagaInfo",
    "SagaLog",
    "SagaOutcome",
    "SagaResult",
    "StepContext",
    "Telemetry",
    "UnknownSaga",
    "VirtualClock",
    "VirtualEventLoop",
    "load_participants",
    "otel_telemetry",
    "replay",
]

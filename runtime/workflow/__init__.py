"""The event-workflow runtime: persisted state machines over an event bus.

>>> import asyncio
>>> from saga_models.workflow import WorkflowBuilder
>>> wf = (WorkflowBuilder("ping").start("ping")
...       .service("a", initial="W", final=["D"]).on("W", "pong", to="D")
...       .service("b", initial="I").on("I", "ping", to="I", emit=["pong"])
...       .outcome(a="D").build())
>>> engine = WorkflowEngine(wf)
>>> result = asyncio.run(engine.run(workflow_id="w1"))
>>> result.status, result.states
('consistent', {'a': 'D', 'b': 'I'})
>>> conforms(wf, engine.store.log("w1")).ok
True
"""

from ._bus import Envelope as Envelope
from ._bus import EventBus as EventBus
from ._bus import InProcessBus as InProcessBus
from ._cli import run_cli as run_cli
from ._conform import Conformance as Conformance
from ._conform import conforms as conforms
from ._engine import EventContext as EventContext
from ._engine import WorkflowEngine as WorkflowEngine
from ._engine import WorkflowResult as WorkflowResult
from ._engine import WorkflowRuntimeError as WorkflowRuntimeError
from ._engine import create_instance as create_instance
from ._redis_bus import BusError as BusError
from ._redis_bus import RedisBus as RedisBus
from ._redis_bus import ServiceProcess as ServiceProcess
from ._redis_bus import ServiceStats as ServiceStats
from ._redis_bus import process_diagnostics as process_diagnostics
from ._redis_bus import relay as relay
from ._redis_bus import start_instance as start_instance
from ._store import LogEntry as LogEntry
from ._store import WorkflowStore as WorkflowStore

__all__ = [
    "BusError",
    "Conformance",
    "Envelope",
    "EventBus",
    "EventContext",
    "InProcessBus",
    "LogEntry",
    "RedisBus",
    "ServiceProcess",
    "ServiceStats",
    "WorkflowEngine",
    "WorkflowResult",
    "WorkflowRuntimeError",
    "WorkflowStore",
    "conforms",
    "create_instance",
    "process_diagnostics",
    "relay",
    "run_cli",
    "start_instance",
]

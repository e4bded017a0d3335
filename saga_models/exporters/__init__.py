"""Exporters: a verified native saga written out for another engine (ASL for
Step Functions) or another checker (Promela for SPIN).

>>> from saga_models import SagaBuilder
>>> from saga_models.exporters import to_asl
>>> saga = (SagaBuilder("t").step("reserve", participant="hotels", action="reserve",
...         compensation="cancel").build())
>>> for name in sorted(to_asl(saga)["States"]): print(name)
Compensate reserve
Saga compensated
Saga completed
Saga stuck
reserve
"""

from ._asl import ExportError as ExportError
from ._asl import dumps_asl as dumps_asl
from ._asl import to_asl as to_asl
from ._promela import Command as Command
from ._promela import commands as commands
from ._promela import dumps_promela as dumps_promela
from ._promela import to_promela as to_promela

__all__ = [
    "Command",
    "ExportError",
    "commands",
    "dumps_asl",
    "dumps_promela",
    "to_asl",
    "to_promela",
]

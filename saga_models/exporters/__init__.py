"""Exporters: a verified native saga written out for another engine.

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

__all__ = ["ExportError", "dumps_asl", "to_asl"]

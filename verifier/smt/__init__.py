"""The z3 backend: BMC, k-induction and ranking functions over the shared saga
semantics. This package is the only place in ``verifier`` that imports z3.

>>> from saga_models import SagaBuilder
>>> from verifier import check
>>> saga = (SagaBuilder("t").step("a", participant="p", action="x",
...         compensation="undo").build())
>>> check(saga, backend="smt")["compensation_completeness"].verdict.value
'holds'
"""

try:
    import z3 as _z3  # noqa: F401  (only to say which extra is missing)
except ModuleNotFoundError as exc:  # pragma: no cover - exercised in a subprocess
    raise ModuleNotFoundError(
        "the z3 backend needs the 'smt' extra: pip install 'sagaproof[smt]'",
        name=exc.name,
    ) from exc

from ._backend import DEFAULT_MAX_DEPTH as DEFAULT_MAX_DEPTH
from ._backend import check_backend as check_backend
from ._backend import find_counterexample as find_counterexample
from ._backend import reach as reach
from ._backend import smt_check as smt_check
from ._encode import Encoding as Encoding
from ._encode import EncodingError as EncodingError
from ._encode import Unsupported as Unsupported
from ._encode import encode as encode
from ._invariant import LocalInvariant as LocalInvariant
from ._invariant import local_invariant as local_invariant
from ._z3 import DEFAULT_RLIMIT as DEFAULT_RLIMIT
from ._z3 import SEED as SEED
from ._z3 import new_solver as new_solver

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_RLIMIT",
    "SEED",
    "Encoding",
    "EncodingError",
    "LocalInvariant",
    "Unsupported",
    "check_backend",
    "find_counterexample",
    "reach",
    "encode",
    "local_invariant",
    "new_solver",
    "smt_check",
]

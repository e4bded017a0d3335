"""Values in the ITF trace format (Apalache ADR-015, read by Quint and itf-py).

ITF has no ``null`` and writes integers as ``{"#bigint": "42"}`` (JSON numbers
lose precision past 2**53); booleans, strings, lists and records are plain JSON.
A state here is plain data (dicts, lists, ints, strings, ``None``), so the
mapping is small:

* ``int`` -> ``{"#bigint": "<decimal>"}``;
* ``None`` (an absent value, e.g. the outcome of a command not yet answered)
  -> the variant ``{"tag": "Nil", "value": "U_OF_UNIT"}``, Apalache's unit
  variant (``None`` itself is not usable: itf-py turns a tag into a Python
  name);
* ``float`` (no state has one today) -> ``{"#unserializable": repr}``, the ITF
  escape for values it cannot express;
* ``dict`` -> a record (keys are names); ``list``/``tuple`` -> a list.

>>> itf_value({"attempts": 2, "outcome": None})
{'attempts': {'#bigint': '2'}, 'outcome': {'tag': 'Nil', 'value': 'U_OF_UNIT'}}
>>> from_itf_value(itf_value({"attempts": 2, "outcome": None}))
{'attempts': 2, 'outcome': None}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NIL: dict[str, str] = {"tag": "Nil", "value": "U_OF_UNIT"}
"""How an absent value is written."""

__all__ = ["NIL", "from_itf_value", "itf_value"]


def itf_value(value: Any) -> Any:
    """``value`` (plain data) as an ITF JSON value.

    Raises:
        TypeError: a value that is not plain data.
    """
    if value is None:
        return dict(NIL)
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"#bigint": str(value)}
    if isinstance(value, float):
        return {"#unserializable": repr(value)}
    if isinstance(value, Mapping):
        return {str(k): itf_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [itf_value(v) for v in value]
    raise TypeError(f"cannot write value={value!r} in ITF")


def from_itf_value(value: Any) -> Any:
    """The plain data an ITF JSON value written by :func:`itf_value` stands for."""
    if isinstance(value, list):
        return [from_itf_value(v) for v in value]
    if isinstance(value, dict):
        if "#bigint" in value:
            return int(value["#bigint"])
        if "#unserializable" in value:
            return float(value["#unserializable"])
        if value == NIL:
            return None
        return {k: from_itf_value(v) for k, v in value.items()}
    return value

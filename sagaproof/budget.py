"""Budget options shared by every command that explores or solves.

One parser for sizes (``100M``, ``2GiB``), counts (``5M`` states) and durations
(``30s``, ``2m``), so every command accepts the same spellings and refuses the
same nonsense (zero, negative, unknown units) as a usage error, exit 2.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import NoReturn, TypeVar

_SIZE = re.compile(r"(-?\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)", re.IGNORECASE)
_POW = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_COUNT = re.compile(r"(-?\d+(?:\.\d+)?)\s*([kmg]?)", re.IGNORECASE)
_T = TypeVar("_T")


def parse_size(text: str) -> int:
    """Bytes from ``512M``, ``2GiB``, ``1.5G``, ``100MB`` or a plain number.

    ``K``, ``M``, ``G``, ``T`` and ``KiB``... are binary (as ``ulimit`` and
    container runtimes read them); ``KB``, ``MB``... are decimal.

    >>> parse_size("100M"), parse_size("2GiB"), parse_size("1MB"), parse_size("64")
    (104857600, 2147483648, 1000000, 64)

    Raises:
        ValueError: [SAGA190] not a size, or [SAGA191] not positive.
    """
    m = _SIZE.fullmatch(text.strip().replace("_", ""))
    if m is None:
        _reject(text, "a size", "512M, 2GiB, 100MB or a number of bytes")
    number, unit, binary, b = m.groups()
    decimal = bool(b) and not binary and unit != ""
    value = int(float(number) * (1000 if decimal else 1024) ** _POW[unit.lower()])
    if value <= 0:
        _not_positive(text, "512M, 2GiB or a number of bytes")
    return value


def parse_count(text: str) -> int:
    """A number of states: ``100000``, ``100_000``, ``250k``, ``5M`` (decimal).

    >>> parse_count("5M"), parse_count("250k"), parse_count("1_000")
    (5000000, 250000, 1000)

    Raises:
        ValueError: [SAGA190] not a count, or [SAGA191] not positive.
    """
    m = _COUNT.fullmatch(text.strip().replace("_", ""))
    if m is None:
        _reject(text, "a number of states", "100000, 250k or 5M")
    value = int(float(m.group(1)) * 1000 ** _POW[m.group(2).lower()])
    if value <= 0:
        _not_positive(text, "100000, 250k or 5M")
    return value


def parse_seconds(text: str) -> float:
    """Seconds from ``30s``, ``250ms``, ``2m``, ``1h``, ``1m30s`` or a number.

    >>> parse_seconds("1m30s"), parse_seconds("2.5")
    (90.0, 2.5)

    Raises:
        ValueError: [SAGA190] not a duration, or [SAGA191] not positive.
    """
    stripped = text.strip()
    try:
        value = float(stripped)
    except ValueError:
        # The definitions' duration syntax; imported here so building the
        # parser (sagaproof --help) loads no definition code.
        from saga_models._loader import parse_duration

        try:
            value = parse_duration(stripped)
        except ValueError:
            _reject(text, "a duration", "30s, 250ms, 2m, 1h or a number of seconds")
    if not value > 0 or value == float("inf"):
        _not_positive(text, "30s, 2m or a number of seconds")
    return value


def _reject(text: str, what: str, example: str) -> NoReturn:
    raise ValueError(f"[SAGA190] value={text!r} is not {what}; write e.g. {example}")


def _not_positive(text: str, example: str) -> NoReturn:
    raise ValueError(
        f"[SAGA191] value={text!r} must be positive; write e.g. {example}"
    )


def _arg(parse: Callable[[str], _T]) -> Callable[[str], _T]:
    """An argparse ``type``: its error becomes argparse's usage error (exit 2)."""

    def convert(text: str) -> _T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


size_arg = _arg(parse_size)
"""argparse ``type=`` for ``--max-memory``."""
count_arg = _arg(parse_count)
"""argparse ``type=`` for ``--max-states``."""
seconds_arg = _arg(parse_seconds)
"""argparse ``type=`` for ``--timeout``."""


def add_budget_args(
    p: argparse.ArgumentParser,
    *,
    max_states: int | None,
    max_memory: int | None = None,
    memory: bool = False,
) -> None:
    """``--max-states``, ``--timeout`` and (when given a default, or with
    ``memory``) ``--max-memory`` on ``p``, with the shared parsers. A default
    of None leaves the value for the configuration to fill (the help shows
    the built-in default)."""
    p.add_argument("--max-states", type=count_arg, default=max_states, metavar="N",
                   help=f"state budget; for z3 also the BMC depth in frames "
                   f"(default: {max_states or 5_000_000:,}; units: 250k, 5M)")
    if max_memory is not None or memory:
        p.add_argument("--max-memory", type=size_arg, default=max_memory,
                       metavar="SIZE",
                       help="memory budget (default: 8GiB; units: 512M, 2GiB)")
    p.add_argument("--timeout", type=seconds_arg, default=None, metavar="DURATION",
                   help="wall-clock budget for the whole check (30s, 2m); "
                   "running out gives unknown, exit 3")

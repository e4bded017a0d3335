"""Participants of bench/bench.saga.yaml for the scale bench's workers: no I/O,
so the figures measure the engines and their logs."""

from __future__ import annotations

from typing import Any


class ShipFailed(Exception):
    """The injected failure that takes the compensating path."""


async def _ok(ctx: Any) -> dict[str, str]:
    return {"ref": ctx.idempotency_key}


async def _ship(ctx: Any) -> dict[str, str]:
    if ctx.input.get("fail"):
        raise ShipFailed("no courier")
    return {"ref": ctx.idempotency_key}


async def _undo(ctx: Any) -> None:
    return None


participants = {"inventory": {"reserve": _ok, "release": _undo},
                "payments": {"charge": _ok, "refund": _undo},
                "shipping": {"ship": _ship, "recall": _undo}}

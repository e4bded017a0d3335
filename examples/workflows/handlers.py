"""Handlers for the example workflows, bound by service name then handler name
(``sagaproof run examples/workflows/order_saga.workflow.yaml --participants
examples.workflows.handlers:order_saga``).

A handler gets an :class:`runtime.workflow.EventContext`; for a ``choose``
transition it returns the target state (or its index).
"""

from __future__ import annotations

from typing import Any


def _charge(ctx: Any) -> str:
    amount = (ctx.input or {}).get("amount", 10)
    return "CHARGED" if amount <= 100 else "DECLINED"


def _reserve(ctx: Any) -> str:
    in_stock = (ctx.input or {}).get("in_stock", True)
    return "RESERVED" if in_stock else "IDLE"


order_saga: dict[str, dict[str, Any]] = {
    "payments": {"charge": _charge},
    "inventory": {"reserve_stock": _reserve},
}
"""Services to handlers for ``order_saga.workflow.yaml``."""

order_lifecycle: dict[str, dict[str, Any]] = {
    "customer": {"awaiting_payment": lambda ctx: "PAID_IT"},
}
"""Services to handlers for ``order_lifecycle.workflow.yaml``."""

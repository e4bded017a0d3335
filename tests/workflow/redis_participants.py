"""Handlers for the Redis bus tests: every handler of ``order_saga`` records
each invocation (``begin`` before its work, ``end`` after) in a ledger file
outside the store, so a test sees the truth about what ran, even in a process
killed mid-handling. Choices depend only on the instance id, so a handler run
again after a kill chooses the same."""

from __future__ import annotations

import json
import os
import time
import zlib
from typing import Any

LEDGER = "SAGAPROOF_TEST_LEDGER"
"""Environment variable: the ledger file (JSON lines; none: no ledger)."""
DELAY = "SAGAPROOF_TEST_DELAY"
"""Environment variable: seconds each handler takes (widens the window in
which a kill lands mid-handling)."""
FAIL_ONCE = "SAGAPROOF_TEST_FAIL_ONCE"
"""Environment variable: a file; while it does not exist, the first handler
call creates it and raises (a handler failure that a retry gets past)."""


def charge_declined(wid: str) -> bool:
    """Whether payments declines instance ``wid``."""
    return zlib.crc32(wid.encode()) % 4 == 0


def out_of_stock(wid: str) -> bool:
    """Whether inventory has no stock for instance ``wid``."""
    return zlib.crc32(wid.encode()) % 3 == 0


def expected_states(wid: str) -> dict[str, str]:
    """The outcome the handlers' choices lead instance ``wid`` to."""
    if charge_declined(wid):
        return {"orders": "CANCELLED", "payments": "DECLINED", "inventory": "IDLE"}
    if out_of_stock(wid):
        return {"orders": "CANCELLED", "payments": "REFUNDED", "inventory": "IDLE"}
    return {"orders": "COMPLETED", "payments": "CHARGED", "inventory": "RESERVED"}


def _record(ctx: Any, phase: str) -> None:
    path = os.environ.get(LEDGER)
    if not path:
        return
    line = json.dumps({"wid": ctx.workflow_id, "service": ctx.service,
                       "event": ctx.event, "eid": ctx.event_id, "phase": phase,
                       "pid": os.getpid()}) + "\n"
    # One unbuffered append: it survives a SIGKILL of this process.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _handler(choose: Any = None) -> Any:
    def handle(ctx: Any) -> Any:
        _record(ctx, "begin")
        flag = os.environ.get(FAIL_ONCE)
        if flag and not os.path.exists(flag):
            open(flag, "w").close()
            raise RuntimeError("injected handler failure")
        time.sleep(float(os.environ.get(DELAY, "0")))
        out = choose(ctx.workflow_id) if choose else None
        _record(ctx, "end")
        return out
    return handle


order_saga: dict[str, dict[str, Any]] = {
    "orders": {e: _handler() for e in (
        "order_created", "charged", "charge_declined", "stock_reserved",
        "out_of_stock", "refunded")},
    "payments": {
        "charge": _handler(lambda w: "DECLINED" if charge_declined(w) else "CHARGED"),
        "refund": _handler()},
    "inventory": {
        "reserve_stock": _handler(lambda w: "IDLE" if out_of_stock(w) else "RESERVED")},
}
"""Services to handlers for ``examples/workflows/order_saga.workflow.yaml``."""


def silent(wid: str) -> bool:
    """Whether ``b`` of ``reminder.workflow.yaml`` stays silent for ``wid``."""
    return zlib.crc32(wid.encode()) % 2 == 0


reminder: dict[str, dict[str, Any]] = {
    "b": {"ask": _handler(lambda w: "SILENT" if silent(w) else "REPLIED")},
}
"""Services to handlers for ``tests/workflow/reminder.workflow.yaml``."""


race: dict[str, dict[str, Any]] = {
    "x": {"go": _handler()},
    "y": {"go": _handler()},
}
"""Services to handlers for ``tests/workflow/race.workflow.yaml`` (each call
takes ``SAGAPROOF_TEST_DELAY`` seconds, so the two services' steps overlap
unless the store serializes them)."""

"""A plain temporalio saga workflow, written by hand the way the Temporal
samples do: three activities, and on failure the compensations of the ones
that completed, in reverse. The scale bench runs it beside the sagaproof
workflow (which drives the shared semantics) to show what the semantics
costs on Temporal."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn(name="bench.step")
async def step(name: str, fail: bool) -> str:
    """One participant call; ``fail`` raises (the saga compensates)."""
    if fail:
        raise RuntimeError("no courier")
    return name


@workflow.defn(name="bench.handwritten", sandboxed=False)
class HandWritten:
    """reserve, charge, ship; ship fails when asked to."""

    @workflow.run
    async def run(self, fail: bool) -> str:
        """The saga."""
        timeout = timedelta(seconds=30)
        once = RetryPolicy(maximum_attempts=1)
        done: list[str] = []
        try:
            for name in ("reserve", "charge", "ship"):
                await workflow.execute_activity(
                    step, args=[name, fail and name == "ship"],
                    start_to_close_timeout=timeout, retry_policy=once)
                done.append(name)
        except Exception:
            for name in reversed(done):
                await workflow.execute_activity(
                    step, args=[f"undo {name}", False],
                    start_to_close_timeout=timeout, retry_policy=once)
            return "COMPENSATED"
        return "COMPLETED"

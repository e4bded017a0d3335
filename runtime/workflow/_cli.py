"""``sagaproof run WORKFLOW --participants module:obj``: the workflow branch."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

from saga_models.workflow import Workflow

from ._engine import WorkflowEngine
from ._store import WorkflowStore


def run_cli(args: argparse.Namespace, definition: Workflow) -> int:
    """Run ``definition`` once with handlers from ``args.participants``; print
    the result. Exit 0 when it ends in a declared outcome (or every service is
    final and none are declared, or it waits for a far timer), 1 when it is
    stuck or an event went unhandled, 2 on bad input."""
    from runtime._participants import load_participants

    handlers = load_participants(args.participants)
    data = None
    raw = getattr(args, "input", None)
    if raw:
        text = open(raw[1:]).read() if raw.startswith("@") else raw  # noqa: SIM115
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            print(f"sagaproof run: --input is not JSON: {exc}", file=sys.stderr)
            return 2
    store = WorkflowStore(getattr(args, "db", None) or "workflow.db")
    try:
        # A CLI process does not sleep for hours: it stops at a far timer and
        # the next 'run --saga-id ID' resumes (due times are wall-clock).
        engine = WorkflowEngine(definition, handlers, store=store, max_wait=60.0)
        result = asyncio.run(engine.run(
            workflow_id=getattr(args, "saga_id", None), input=data))
    finally:
        store.close()
    if getattr(args, "json", False):
        print(json.dumps(asdict(result), indent=2))
    else:
        print(f"workflow {definition.name!r} instance {result.workflow_id}: "
              f"{result.status}"
              + (f" ({result.outcome})" if result.outcome else ""))
        for svc, st in result.states.items():
            print(f"  {svc}: {st}")
        for c, v in result.counters.items():
            print(f"  {c} = {v}")
        for u in result.unhandled:
            print(f"  unhandled: {u}")
        for d in result.dead_letters:
            print(f"  dead letter: {d}")
    ok = result.status in ("consistent", "final", "waiting") and not result.unhandled
    return 0 if ok else 1

"""``sagaproof run DEFINITION --participants module:obj``: run one saga durably."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

from ..budget import seconds_arg


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "run", help="run a saga durably; exit 0 completed, 1 compensated/failed, "
        "3 stuck",
        description="Run one instance of a saga, logging every transition to a "
        "SQLite file so `sagaproof recover` can finish it after a crash.")
    p.add_argument("definition", metavar="DEFINITION")
    p.add_argument("--participants", required=True, metavar="MODULE:OBJ",
                   help="what binds the participants: a runtime.Participants, a "
                   "mapping or a module with one object per participant name")
    p.add_argument("--db", default="saga.db", help="the log: a SQLite file "
                   "(default saga.db) or postgresql://user@host:port/db")
    p.add_argument("--engine", choices=["local", "temporal"], default="local",
                   help="local: this process with the --db log (default); "
                   "temporal: a Temporal workflow (Temporal's history is the log)")
    p.add_argument("--temporal", default="127.0.0.1:7233", metavar="HOST:PORT",
                   help="Temporal frontend for --engine temporal")
    p.add_argument("--task-queue", default="sagaproof",
                   help="Temporal task queue (a `sagaproof temporal-worker` "
                   "polls it; with --serve this process does)")
    p.add_argument("--serve", action="store_true",
                   help="with --engine temporal: also run a worker in this process "
                   "until the saga ends")
    p.add_argument("--enqueue", action="store_true",
                   help="log the instance and leave it to `sagaproof worker`")
    p.add_argument("--input", metavar="JSON", help="saga input: JSON or @file")
    p.add_argument("--saga-id", metavar="ID", help="instance id (default: new)")
    p.add_argument("--durability", choices=["commands", "full", "os"],
                   default="commands", help="when commits fsync (default: before "
                   "every command is sent)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--lock-timeout", type=seconds_arg, default=30.0,
                   metavar="DURATION", help="how long to wait for another "
                   "process's write lock on the log (default: 30s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from runtime._cli import EXIT_USAGE, err, exit_code, parse_input, render
    from saga_models import Saga, load

    definition = load(args.definition)
    if not isinstance(definition, Saga):
        if importlib.util.find_spec("runtime.workflow") is not None:
            workflow: Any = importlib.import_module("runtime.workflow")
            return int(workflow.run_cli(args, definition))
        err(f"sagaproof run: {args.definition} is an event workflow; this install "
            "has no workflow runtime (runtime.workflow), only sagas can be run")
        return EXIT_USAGE
    if args.engine == "temporal":
        return _run_on_temporal(args, definition)
    from runtime import Engine, load_participants
    from runtime._open import open_log

    participants = load_participants(args.participants)
    data = parse_input(args.input)
    log = open_log(args.db, durability=args.durability,
                   lock_timeout=args.lock_timeout)
    try:
        engine = Engine(definition, participants, log=log,
                        definition_path=str(Path(args.definition).resolve()),
                        participants_spec=args.participants)
        if args.enqueue:
            import uuid

            sid = engine.submit(data, saga_id=args.saga_id or
                                f"{definition.name}-{uuid.uuid4().hex[:12]}")
            print(f"{sid}: enqueued")
            return 0

        async def main() -> Any:
            try:
                return await engine.run(data, saga_id=args.saga_id)
            finally:
                await engine.aclose()

        import asyncio

        result = asyncio.run(main())
    finally:
        log.close()
    print(render(result, as_json=args.json))
    return exit_code(result)


def _run_on_temporal(args: argparse.Namespace, saga: Any) -> int:
    import asyncio
    import contextlib
    import uuid

    from runtime import SagaOutcome, SagaResult, load_participants
    from runtime import _temporal as rt
    from runtime._cli import exit_code, parse_input, render

    from .temporal_worker import serve

    data = parse_input(args.input)
    rt.register(saga)
    saga_id = args.saga_id or f"{saga.name}-{uuid.uuid4().hex[:12]}"

    async def main() -> Any:
        from temporalio.client import Client

        async with contextlib.AsyncExitStack() as stack:
            if args.serve:
                client = await stack.enter_async_context(serve(
                    [saga], load_participants(args.participants),
                    address=args.temporal, namespace="default",
                    task_queue=args.task_queue))
            else:
                client = await Client.connect(args.temporal)
            handle = await client.start_workflow(
                rt.WORKFLOW, rt.SagaRun(definition_hash=saga.content_hash,
                                        saga_id=saga_id, input=data),
                id=saga_id, task_queue=args.task_queue)
            return await handle.result()

    out = asyncio.run(main())
    result = SagaResult(saga_id=saga_id, outcome=SagaOutcome(out["outcome"]),
                        results=out["results"], errors=out["errors"])
    print(render(result, as_json=args.json))
    code = exit_code(result)
    # The outcome is durable on the Temporal server and printed. The SDK's
    # native (Rust) threads can still call into Python while the interpreter
    # finalizes, which aborts the process (seen once in CI: "Fatal Python
    # error: PyGILState_Release ... finalizing", exit -6 instead of the
    # outcome's code). Nothing is left to clean up, so leave without
    # finalizing rather than let a shutdown race change the exit code.
    if getattr(args, "process_entry", False):
        import os
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code

"""``sagaproof temporal-worker DEFINITION... --participants module:obj``: run
the saga workflows and their activities on a Temporal server."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_QUEUE = "sagaproof"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "temporal-worker", help="serve sagas on a Temporal server (workflows and "
        "activities of the given definitions)",
        description="Poll a Temporal task queue and run the sagaproof workflow "
        "(the shared semantics) and its activities (your participants) for the "
        "given definitions. Start sagas with `sagaproof run --engine temporal`.")
    p.add_argument("definitions", nargs="+", metavar="DEFINITION")
    p.add_argument("--participants", required=True, metavar="MODULE:OBJ")
    p.add_argument("--temporal", default=DEFAULT_ADDRESS, metavar="HOST:PORT",
                   help=f"Temporal frontend (default {DEFAULT_ADDRESS})")
    p.add_argument("--namespace", default="default")
    p.add_argument("--task-queue", default=DEFAULT_QUEUE)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Here, not at the top: every command's parser is built on each call,
    # and asyncio is a good part of the start-up time (issue 16).
    import asyncio
    import signal

    from runtime import load_participants
    from runtime._cli import load_saga

    sagas = [load_saga(d) for d in args.definitions]
    participants = load_participants(args.participants)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with serve(sagas, participants, address=args.temporal,
                         namespace=args.namespace, task_queue=args.task_queue):
            print(f"temporal-worker on {args.temporal} queue {args.task_queue!r}: "
                  f"{', '.join(s.name for s in sagas)}", flush=True)
            await stop.wait()

    asyncio.run(main())
    return 0


def serve(sagas: Any, participants: Any, *, address: str, namespace: str,
          task_queue: str) -> Any:
    """An async context manager running a worker for ``sagas``."""
    import contextlib
    import logging

    from runtime import _temporal as rt

    # A participant that fails is an outcome the saga handles, not a worker
    # error: keep the SDK from printing a traceback for every failed attempt.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)

    @contextlib.asynccontextmanager
    async def cm() -> Any:
        from temporalio.client import Client
        from temporalio.worker import Worker

        for saga in sagas:
            rt.register(saga)
        activities = rt.bind(sagas, participants)
        client = await Client.connect(address, namespace=namespace)
        async with Worker(client, task_queue=task_queue,
                          workflows=[rt.SagaWorkflow],
                          activities=[activities.call]):
            yield client

    return cm()

"""``sagaproof worker --db postgresql://...``: claim and drive sagas from a
shared log, on as many hosts as you like."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "worker", help="claim new and orphaned sagas from a shared log and drive "
        "them (many workers may share one PostgreSQL log)",
        description="Claim every saga instance nobody holds (started with `run "
        "--enqueue`, or orphaned by a worker whose lease ran out) and drive it "
        "to a terminal outcome. Stops on SIGTERM/SIGINT, or with --idle-exit.")
    p.add_argument("--db", required=True,
                   help="the shared log: postgresql://user@host:port/db, or a "
                   "SQLite file for workers on one host")
    p.add_argument("--definition", metavar="PATH",
                   help="definition file (default: the one each instance recorded)")
    p.add_argument("--participants", metavar="MODULE:OBJ",
                   help="participants (default: the spec each instance recorded)")
    p.add_argument("--capacity", type=int, default=8,
                   help="instances driven at once (default 8)")
    p.add_argument("--lease", type=float, default=30.0, metavar="SECONDS",
                   help="lease length; an instance of a dead worker is claimed "
                   "again after it (default 30)")
    p.add_argument("--poll", type=float, default=0.2, metavar="SECONDS",
                   help="pause between claims when idle (default 0.2)")
    p.add_argument("--idle-exit", type=float, metavar="SECONDS",
                   help="exit once nothing was claimable for this long")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Here, not at the top: every command's parser is built on each call,
    # and asyncio is a good part of the start-up time (issue 16).
    import asyncio
    import signal

    from runtime import Engine, SagaInfo, load_participants
    from runtime._cli import EXIT_USAGE, check_pinned, err, load_saga
    from runtime._open import open_log
    from runtime._worker import Worker

    if args.capacity < 1 or args.lease <= 0 or args.poll < 0:
        err("sagaproof worker: --capacity must be >= 1, --lease > 0, --poll >= 0")
        return EXIT_USAGE
    log: Any = open_log(args.db)
    if not hasattr(log, "claimable"):
        err(f"sagaproof worker: --db={args.db!r} cannot be shared by workers")
        return EXIT_USAGE
    engines: dict[tuple[str, str, str, str], Engine] = {}

    def resolve(info: SagaInfo, worker_id: str) -> Engine:
        path = args.definition or info.definition_path
        spec = args.participants or info.participants
        if not path or not spec:
            raise SystemExit(f"sagaproof worker: saga_id={info.saga_id!r} recorded "
                             "no definition or participants; pass --definition "
                             "and --participants")
        key = (path, spec, info.definition_hash, worker_id)
        if key not in engines:
            saga = load_saga(path)
            check_pinned(saga, info.definition_hash, info.saga_id)
            engines[key] = Engine(saga, load_participants(spec), log=log,
                                  worker_id=worker_id, lease_seconds=args.lease,
                                  definition_path=path, participants_spec=spec)
        return engines[key]

    async def main() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker = Worker(log, resolve, lease_seconds=args.lease,
                        capacity=args.capacity, poll=args.poll)
        print(f"worker {worker.worker_id} ready", flush=True)
        return await worker.run(stop=stop, idle_exit=args.idle_exit)

    try:
        stats = asyncio.run(main())
    finally:
        log.close()
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items()))
    print(f"claimed {stats.claimed} ({stats.recovered} recovered); "
          f"{outcomes or 'nothing finished'}; lease lost {stats.lease_lost}")
    return 0

"""``sagaproof resume SAGA_ID --db saga.db``: continue a STUCK saga."""

from __future__ import annotations

import argparse
from typing import Any

from ..budget import seconds_arg


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "resume", help="continue a STUCK saga after a person fixed the cause")
    p.add_argument("saga_id", metavar="SAGA_ID")
    p.add_argument("--db", default="saga.db")
    p.add_argument("--definition", metavar="PATH")
    p.add_argument("--participants", metavar="MODULE:OBJ")
    p.add_argument("--json", action="store_true")
    p.add_argument("--lock-timeout", type=seconds_arg, default=30.0,
                   metavar="DURATION", help="how long to wait for another "
                   "process's write lock on the log (default: 30s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from runtime import Engine, load_participants
    from runtime._cli import EXIT_USAGE, check_pinned, err, exit_code, load_saga, render
    from runtime._open import open_log

    log = open_log(args.db, create=False, lock_timeout=args.lock_timeout)
    try:
        info = log.get(args.saga_id)
        path = args.definition or info.definition_path
        spec = args.participants or info.participants
        if not path or not spec:
            err(f"sagaproof resume: saga_id={args.saga_id!r} recorded no definition "
                "or participants; pass --definition and --participants")
            return EXIT_USAGE
        saga = load_saga(path)
        check_pinned(saga, info.definition_hash, args.saga_id)
        engine = Engine(saga, load_participants(spec), log=log, definition_path=path,
                        participants_spec=spec)

        async def main() -> Any:
            try:
                return await engine.resume(args.saga_id)
            finally:
                await engine.aclose()

        import asyncio

        result = asyncio.run(main())
    finally:
        log.close()
    print(render(result, as_json=args.json))
    return exit_code(result)

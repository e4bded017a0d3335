"""``sagaproof recover --db saga.db``: finish every unfinished saga after a crash."""

from __future__ import annotations

import argparse
from typing import Any

from ..budget import seconds_arg


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "recover", help="resume every unfinished saga in a log from where it "
        "stopped (completed steps are not re-run)")
    p.add_argument("--db", default="saga.db")
    p.add_argument("--definition", metavar="PATH",
                   help="definition file (default: the one each instance "
                   "recorded); must have the hash the instance is pinned to")
    p.add_argument("--participants", metavar="MODULE:OBJ",
                   help="participants (default: the spec each instance recorded)")
    p.add_argument("--force", action="store_true",
                   help="take over instances whose lease has not expired")
    p.add_argument("--json", action="store_true")
    p.add_argument("--lock-timeout", type=seconds_arg, default=30.0,
                   metavar="DURATION", help="how long to wait for another "
                   "process's write lock on the log (default: 30s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from runtime import Engine, SagaResult, load_participants
    from runtime._cli import EXIT_USAGE, check_pinned, err, load_saga, render
    from runtime._open import open_log
    from runtime._replay import unfinished

    log = open_log(args.db, create=False, lock_timeout=args.lock_timeout)
    try:
        # Unfinished by the records, or by the summary: each engine replays
        # its candidates and recovers exactly those the records leave open.
        pending = unfinished(log)
        groups: dict[tuple[str, str, str], list[str]] = {}
        for info in pending:
            path = args.definition or info.definition_path
            spec = args.participants or info.participants
            if not path or not spec:
                err(f"sagaproof recover: saga_id={info.saga_id!r} recorded no "
                    "definition or participants; pass --definition and "
                    "--participants")
                return EXIT_USAGE
            groups.setdefault((path, spec, info.definition_hash), []).append(
                info.saga_id)
        engines = []
        for (path, spec, digest), ids in groups.items():
            saga = load_saga(path)
            check_pinned(saga, digest, ids[0])
            engines.append(Engine(saga, load_participants(spec), log=log,
                                  definition_path=path, participants_spec=spec))

        async def main() -> list[SagaResult]:
            out: list[SagaResult] = []
            try:
                for engine in engines:
                    out.extend(await engine.recover(force=args.force))
            finally:
                for engine in engines:
                    await engine.aclose()
            return out

        import asyncio

        results = asyncio.run(main())
    finally:
        log.close()
    for r in results:
        print(render(r, as_json=args.json))
    if not args.json:
        print(f"recovered {len(results)} of {len(pending)} unfinished saga(s)")
    return 0

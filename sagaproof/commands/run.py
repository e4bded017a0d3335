"""``sagaproof run DEFINITION --participants module:obj``: run one saga durably."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
from pathlib import Path
from typing import Any

from saga_models import Saga, load

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
    p.add_argument("--db", default="saga.db", help="SQLite log (default saga.db)")
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

    definition = load(args.definition)
    if not isinstance(definition, Saga):
        if importlib.util.find_spec("runtime.workflow") is not None:
            workflow: Any = importlib.import_module("runtime.workflow")
            return int(workflow.run_cli(args, definition))
        err(f"sagaproof run: {args.definition} is an event workflow; this install "
            "has no workflow runtime (runtime.workflow), only sagas can be run")
        return EXIT_USAGE
    from runtime import Engine, SQLiteLog, load_participants

    participants = load_participants(args.participants)
    data = parse_input(args.input)
    log = SQLiteLog(args.db, durability=args.durability,
                    lock_timeout=args.lock_timeout)
    try:
        engine = Engine(definition, participants, log=log,
                        definition_path=str(Path(args.definition).resolve()),
                        participants_spec=args.participants)

        async def main() -> Any:
            try:
                return await engine.run(data, saga_id=args.saga_id)
            finally:
                await engine.aclose()

        result = asyncio.run(main())
    finally:
        log.close()
    print(render(result, as_json=args.json))
    return exit_code(result)

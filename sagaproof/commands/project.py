"""``sagaproof project --db saga.db``: keep the read model up to date."""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "project", help="fold the saga log into its read model (the table "
        "`status --view` reads); idempotent and restartable",
        description="Project every log record not yet in the read model, then "
        "(unless --once) keep polling for new ones until SIGTERM/SIGINT.")
    p.add_argument("--db", default="saga.db",
                   help="the log: a SQLite file or postgresql://...")
    p.add_argument("--once", action="store_true", help="catch up once and exit")
    p.add_argument("--poll", type=float, default=0.5, metavar="SECONDS")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from runtime._open import open_log
    from runtime._projection import Projector

    log = open_log(args.db)
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        proj = Projector(log)
        moved = proj.catch_up()
        # On PostgreSQL every append notifies: wake at once; SQLite is polled.
        wait = getattr(log, "wait_for_appends", time.sleep)
        while not args.once and not stop:
            wait(args.poll)
            moved += proj.catch_up()
    except KeyboardInterrupt:
        pass
    finally:
        log.close()
    print(f"projected {moved} row update(s)")
    return 0

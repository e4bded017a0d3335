"""A worker process for the multi-worker kill test: claims sagas from a shared
PostgreSQL log and drives them with the ledger participants, until SIGTERM or
until nothing is left to claim for ``--idle-exit`` seconds.

Prints ``ready`` once it polls, and its stats as JSON when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kill_worker import trip  # noqa: E402

from examples.participants.ledger import AnyParticipant, Ledger  # noqa: E402
from runtime import Engine, SagaInfo  # noqa: E402
from runtime._postgres import PostgresLog  # noqa: E402
from runtime._worker import Worker  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    saga = trip()
    log = PostgresLog(args.db, schema=args.schema)
    participants = AnyParticipant(Ledger(args.ledger))
    engines: dict[str, Engine] = {}

    def resolve(info: SagaInfo, worker_id: str) -> Engine:
        if worker_id not in engines:
            engines[worker_id] = Engine(saga, participants, log=log,
                                        worker_id=worker_id,
                                        lease_seconds=args.lease)
        return engines[worker_id]

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = Worker(log, resolve, lease_seconds=args.lease, capacity=8, poll=0.05)
    print("ready", flush=True)
    stats = await worker.run(stop=stop, idle_exit=args.idle_exit)
    log.close()
    print(json.dumps({"claimed": stats.claimed, "recovered": stats.recovered,
                      "lease_lost": stats.lease_lost,
                      "outcomes": dict(stats.outcomes)}), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--ledger", required=True)
    p.add_argument("--lease", type=float, default=1.0)
    p.add_argument("--idle-exit", type=float, default=None)
    asyncio.run(main(p.parse_args()))

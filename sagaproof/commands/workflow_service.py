"""``sagaproof workflow-service`` and ``workflow-start``: a workflow's services
as separate processes over a Redis Streams bus, sharing one store."""

from __future__ import annotations

import argparse
import signal
from typing import Any


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("definition", metavar="DEFINITION")
    p.add_argument("--bus", default="redis://127.0.0.1:63790/0", metavar="URL",
                   help="the Redis server (default: the one `bash "
                   "scripts/redis.sh start` runs, redis://127.0.0.1:63790/0)")
    p.add_argument("--db", default="workflow.db", help="the store every service "
                   "process shares: one SQLite file (default workflow.db)")
    p.add_argument("--stream-prefix", default="sagaproof", metavar="PREFIX",
                   help="stream keys are PREFIX:<workflow>:<service> "
                   "(default sagaproof)")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "workflow-service", help="run one service of an event workflow as a "
        "process consuming its Redis stream",
        description="Consume SERVICE's stream (a consumer group per service; "
        "run as many processes per service as you like), handle each event in "
        "one transaction of the shared store, relay the events it emits, and "
        "reclaim events a dead consumer left pending. Stops on SIGTERM/SIGINT, "
        "or with --idle-exit.")
    _common(p)
    p.add_argument("--service", required=True, metavar="NAME")
    p.add_argument("--participants", metavar="MODULE:OBJ",
                   help="handlers, bound by service then handler name (needed "
                   "for a service with a `choose` transition)")
    p.add_argument("--consumer", metavar="NAME",
                   help="consumer name in the group (default SERVICE-HOST-PID)")
    p.add_argument("--min-idle", type=float, default=5.0, metavar="SECONDS",
                   help="reclaim an event another consumer took and did not "
                   "acknowledge for this long (default 5)")
    p.add_argument("--idle-exit", type=float, metavar="SECONDS",
                   help="exit once nothing arrived for this long")
    p.set_defaults(func=run_service)
    q: argparse.ArgumentParser = sub.add_parser(
        "workflow-start", help="start instances of an event workflow whose "
        "services run as `workflow-service` processes",
        description="Create instances in the shared store (their start events "
        "on its outbox) and relay the start events to the Redis bus.")
    _common(q)
    q.add_argument("--id", dest="ids", action="append", required=True,
                   metavar="ID", help="instance id (repeat for several)")
    q.add_argument("--input", metavar="JSON", help="input of every instance "
                   "started (handlers read it as ctx.input): JSON or @file")
    q.set_defaults(func=run_start)
    r: argparse.ArgumentParser = sub.add_parser(
        "workflow-status", help="the instances in a shared workflow store, "
        "each log replayed through the model with --conform",
        description="List every instance in the store that `workflow-service` "
        "processes share: status and service states. With --conform, replay "
        "each instance's log through the model. Exit 0, or 1 when an instance "
        "is stuck or a log is not a path of the model.")
    r.add_argument("definition", metavar="DEFINITION")
    r.add_argument("--db", default="workflow.db", help="the shared store")
    r.add_argument("--conform", action="store_true",
                   help="replay every instance's log through the model")
    r.set_defaults(func=run_status)


def _workflow(path: str) -> Any:
    """The event workflow at ``path`` (WF133 for a saga)."""
    from saga_models import Diagnostic, InvalidDefinition, Span, load
    from saga_models.workflow import Workflow

    wf = load(path)
    if not isinstance(wf, Workflow):
        raise InvalidDefinition(diagnostics=(Diagnostic(
            code="WF133", span=getattr(wf, "span", None) or Span(file=path),
            message=f"{path} is a saga, not an event workflow",
            help="run a saga with `sagaproof run` or `sagaproof worker`"),))
    return wf


def _open(args: argparse.Namespace, service: str | None) -> Any:
    from runtime.workflow import WorkflowStore
    from runtime.workflow._redis_bus import RedisBus, process_diagnostics
    from saga_models import InvalidDefinition

    wf = _workflow(args.definition)
    bad = process_diagnostics(wf, service)
    if bad:
        raise InvalidDefinition(diagnostics=tuple(bad))
    bus = RedisBus(args.bus, wf, prefix=args.stream_prefix)
    return wf, WorkflowStore(args.db), bus


def run_start(args: argparse.Namespace) -> int:
    from runtime.workflow._redis_bus import start_instance

    data = None
    if args.input:
        import json

        raw = args.input
        try:
            text = open(raw[1:]).read() if raw.startswith("@") else raw  # noqa: SIM115
            data = json.loads(text)
        except (OSError, json.JSONDecodeError) as exc:
            from runtime._cli import err

            err(f"<command line>: error WF134: --input={raw!r} is not JSON "
                f"(or @file): {exc}\n  help: write e.g. --input "
                "'{\"amount\": 120}' or --input @input.json")
            return 2
    wf, store, bus = _open(args, None)
    try:
        for wid in args.ids:
            start_instance(wf, store, bus, wid, input=data)
            print(f"started {wf.name} instance {wid}")
    finally:
        store.close()
        bus.close()
    return 0


def run_service(args: argparse.Namespace) -> int:
    # asyncio only when a service runs: the parser (every command's --help,
    # every check) is built without it.
    import asyncio

    from runtime._participants import load_participants
    from runtime.workflow._redis_bus import ServiceProcess

    if args.min_idle <= 0:
        from runtime._cli import err

        err("sagaproof workflow-service: --min-idle must be > 0")
        return 2
    wf, store, bus = _open(args, args.service)
    handlers = load_participants(args.participants) if args.participants else None
    proc = ServiceProcess(wf, args.service, handlers, store=store, bus=bus,
                          consumer=args.consumer, min_idle=args.min_idle)

    async def main() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"service {args.service} consumer {proc.consumer} ready", flush=True)
        return await proc.run(stop=stop, idle_exit=args.idle_exit)

    try:
        stats = asyncio.run(main())
    finally:
        store.close()
        bus.close()
    print(f"service {args.service}: {stats.steps} steps ({stats.timers} timers), "
          f"{stats.stale} stale "
          f"entries, {stats.reclaimed} reclaimed, {stats.failed} failed handler "
          f"calls, {stats.relayed} relayed", flush=True)
    return 0


def run_status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from runtime._errors import NoSuchLog
    from runtime.workflow import WorkflowStore, conforms

    wf = _workflow(args.definition)
    if not Path(args.db).exists():
        raise NoSuchLog("RT001", f"no such store db={args.db!r}",
                        fix="check the path (workflow-start creates it)")
    store = WorkflowStore(args.db)
    bad = 0
    try:
        for wid, status in store.instances().items():
            snap = store.load(wid)
            assert snap is not None
            states = ", ".join(f"{s}={v}" for s, v in snap.states.items())
            line = f"{wid}: {status} ({states})"
            if status == "stuck":
                bad += 1
            if args.conform:
                verdict = conforms(wf, store.log(wid))
                line += "; log conforms" if verdict.ok else (
                    f"; LOG DOES NOT CONFORM: {verdict.message}")
                bad += not verdict.ok
            print(line)
    finally:
        store.close()
    return 1 if bad else 0

"""``sagaproof status --db saga.db [SAGA_ID]``: what the log says."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "status", help="list saga instances in a log, or one instance's records")
    p.add_argument("saga_id", nargs="?", metavar="SAGA_ID")
    p.add_argument("--db", default="saga.db")
    p.add_argument("--status", dest="only", metavar="STATUS",
                   help="only instances with this status (running, COMPLETED, "
                   "COMPENSATED, FAILED, STUCK)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeline", action="store_true",
                   help="one instance's attempts and recoveries in time, as text")
    p.add_argument("--html", metavar="FILE",
                   help="write one instance's timeline as an HTML page to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from runtime import SQLiteLog

    if (args.timeline or args.html) and not args.saga_id:
        _usage("SAGA030", "--timeline and --html show one instance, and no "
               "SAGA_ID was given", "name the instance: sagaproof status --db "
               "saga.db SAGA_ID --timeline (sagaproof status lists them)")
    log = SQLiteLog(args.db)
    try:
        if args.saga_id:
            info = log.get(args.saga_id)
            records = log.records(args.saga_id)
            if args.timeline or args.html:
                return _timeline(args, info, records)
            if args.json:
                print(json.dumps({"instance": _info(info),
                                  "records": [r.to_json() for r in records]}))
                return 0
            print(f"{info.saga_id}  {info.name}  {info.status}  "
                  f"owner={info.owner}  definition={info.definition_hash[:12]}")
            for r in records:
                what = " ".join(x for x in (r.step, r.outcome) if x)
                attempt = f" attempt {r.attempt}" if r.attempt else ""
                print(f"  {r.seq:4d} {r.kind:<13} {what}{attempt}")
            return 0
        infos = log.instances(status=args.only)
        if args.json:
            print(json.dumps([_info(i) for i in infos]))
            return 0
        counts: dict[str, int] = {}
        for i in infos:
            counts[i.status] = counts.get(i.status, 0) + 1
            print(f"{i.saga_id}  {i.name}  {i.status}")
        print("total: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                           or "0"))
        return 0
    finally:
        log.close()


def _info(info: Any) -> dict[str, Any]:
    return {"saga_id": info.saga_id, "name": info.name, "status": info.status,
            "definition_hash": info.definition_hash,
            "definition_path": info.definition_path, "owner": info.owner,
            "lease_until": info.lease_until, "created_at": info.created_at,
            "updated_at": info.updated_at}


def _usage(code: str, message: str, help: str) -> None:
    from saga_models import Diagnostic, InvalidDefinition, Span

    raise InvalidDefinition((Diagnostic(code=code, message=message,
                                        span=Span(file="<command line>"),
                                        help=help),))


def _timeline(args: argparse.Namespace, info: Any, records: Any) -> int:
    from ._timeline import render_html, render_text, timeline

    tl = timeline(info, records)
    if args.html:
        try:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(render_html(tl))
        except OSError as exc:
            _usage("SAGA031", f"cannot write html={args.html!r}: {exc.strerror}",
                   "pass a writable file path to --html")
        print(f"timeline of {info.saga_id} written to {args.html}")
    if args.timeline or not args.html:
        print(render_text(tl))
    return 0

"""``sagaproof status --db saga.db [SAGA_ID]``: what the log says."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..budget import seconds_arg


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "status", help="list saga instances in a log, or one instance's records")
    p.add_argument("saga_id", nargs="?", metavar="SAGA_ID")
    p.add_argument("--db", default="saga.db")
    p.add_argument("--status", dest="only", metavar="STATUS",
                   help="only instances with this status (running, COMPLETED, "
                   "COMPENSATED, FAILED, STUCK)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--view", action="store_true",
                   help="read the read model (`sagaproof project`) instead of the "
                   "log: each row says how many records it is behind")
    p.add_argument("--lock-timeout", type=seconds_arg, default=30.0,
                   metavar="DURATION", help="how long to wait for another "
                   "process's write lock on the log (default: 30s)")
    p.add_argument("--timeline", action="store_true",
                   help="one instance's attempts and recoveries in time, as text")
    p.add_argument("--html", metavar="FILE",
                   help="write one instance's timeline as an HTML page to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from runtime._open import open_log

    if (args.timeline or args.html) and not args.saga_id:
        _usage("SAGA030", "--timeline and --html show one instance, and no "
               "SAGA_ID was given", "name the instance: sagaproof status --db "
               "saga.db SAGA_ID --timeline (sagaproof status lists them)")
    log = open_log(args.db, create=False, lock_timeout=args.lock_timeout)
    try:
        if args.view:
            return _view(args, log)
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


def _view(args: argparse.Namespace, log: Any) -> int:
    """Rows of the read model, each with its staleness against the log."""
    from runtime._projection import ViewStore

    store = ViewStore(log)
    infos = ([log.get(args.saga_id)] if args.saga_id
             else log.instances(status=args.only))
    rows = []
    for info in infos:
        row = store.get(info.saga_id)
        behind = info.next_seq - (row.seq if row else 0)
        rows.append({"saga_id": info.saga_id, "name": info.name,
                     "status": row.status if row else None,
                     "held": list(row.held) if row else None,
                     "steps": row.steps if row else None,
                     "last_error": row.last_error if row else None,
                     "records_behind": behind})
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        stale = (f"  (stale: {r['records_behind']} record(s) behind the log)"
                 if r["records_behind"] else "")
        held = ", ".join(r["held"] or []) or "-"
        print(f"{r['saga_id']}  {r['name']}  {r['status'] or 'not projected'}  "
              f"held: {held}{stale}")
    return 0


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

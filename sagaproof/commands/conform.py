"""``sagaproof conform DEFINITION LOG``: is every logged run a path of the model?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "conform", help="replay runtime logs through the model; exit 0 every log "
        "conforms, 1 one does not",
        description="LOG is a sagaproof SQLite log (every instance of the "
        "definition is checked) or a JSON / JSON-lines file of records.")
    p.add_argument("definition", metavar="DEFINITION")
    p.add_argument("log", metavar="LOG")
    p.add_argument("--saga-id", metavar="ID", help="check only this instance")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _records_from_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    text = path.read_text()
    try:
        data = json.loads(text)
    except ValueError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        data = data.get("records", [])
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in data:
        out.setdefault(str(rec.get("saga_id", "<log>")), []).append(rec)
    return out


def run(args: argparse.Namespace) -> int:
    from runtime import SQLiteLog
    from runtime._cli import EXIT_USAGE, err, load_saga
    from runtime._replay import audit

    saga = load_saga(args.definition)
    from runtime._postgres import is_postgres_url

    if is_postgres_url(args.log):
        from runtime._postgres import PostgresLog

        url, _, schema = args.log.partition("#")
        pg = PostgresLog(url, schema=schema or "sagaproof", create=False)
        try:
            infos = [i for i in pg.instances() if i.name == saga.name]
            records = {i.saga_id: pg.records(i.saga_id) for i in infos}
            return _report(args, saga, records, {
                i.saga_id: audit(saga, i, records[i.saga_id]) for i in infos})
        finally:
            pg.close()
    path = Path(args.log)
    if not path.exists():
        err(f"sagaproof conform: [RT001] no such log LOG={args.log!r}; check the "
            "path (conform only reads an existing log)")
        return EXIT_USAGE
    with path.open("rb") as fh:
        is_sqlite = fh.read(16) == b"SQLite format 3\x00"
    logs: dict[str, list[Any]]
    # The sagas table is a summary the runtime derives from the records; it is
    # checked against them (a hand-edited status must not pass), not trusted.
    summary: dict[str, list[str]] = {}
    if is_sqlite:
        log = SQLiteLog(path, create=False)
        try:
            infos = [i for i in log.instances() if i.name == saga.name]
            logs = {i.saga_id: log.records(i.saga_id) for i in infos}
            summary = {i.saga_id: audit(saga, i, logs[i.saga_id]) for i in infos}
        finally:
            log.close()
    else:
        logs = _records_from_file(path)
    return _report(args, saga, logs, summary)


def _report(args: argparse.Namespace, saga: Any, logs: dict[str, list[Any]],
            summary: dict[str, list[str]]) -> int:
    from verifier.conformance import conform

    if args.saga_id:
        logs = {k: v for k, v in logs.items() if k == args.saga_id}
    bad = 0
    report = []
    for sid, records in logs.items():
        problems = summary.get(sid, [])
        if problems:
            ok, events, index, message, phases = False, 0, None, problems[0], []
        else:
            res = conform(saga, records)
            ok, events, index = res.conforms, res.events, res.index
            message, phases = res.message, list(res.phases)
        bad += not ok
        report.append({"saga_id": sid, "conforms": ok, "events": events,
                       "index": index, "message": message, "phases": phases,
                       "summary_problems": problems})
        if not args.json and not ok:
            print(f"{sid}: does not conform: {message}")
            for extra in problems[1:]:
                print(f"{sid}:   also: {extra}")
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{len(logs) - bad} of {len(logs)} log(s) of {saga.name!r} conform "
              "to the model")
    return 1 if bad else 0

"""Opening the log that ``--db`` names: a SQLite file or a PostgreSQL URL."""

from __future__ import annotations

from ._log import SagaLog


def open_log(db: str, *, durability: str = "commands", create: bool = True,
             lock_timeout: float = 30.0) -> SagaLog:
    """The log at ``db``: ``postgresql://...`` (or ``postgres://``) is a
    PostgreSQL server, with the tables in schema ``sagaproof`` or in the one
    named after ``#`` (``postgresql://u@host:5432/db#tenant_a``); anything else
    is a SQLite file. ``create=False`` (commands that only read or finish a
    log) refuses a log that does not exist instead of making an empty one."""
    from ._postgres import PostgresLog, is_postgres_url

    if is_postgres_url(db):
        url, _, schema = db.partition("#")
        return PostgresLog(url, schema=schema or "sagaproof", create=create)
    from ._sqlite import SQLiteLog

    return SQLiteLog(db, durability=durability, create=create,
                     lock_timeout=lock_timeout)

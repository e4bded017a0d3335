"""Opening the log that ``--db`` names: a SQLite file or a PostgreSQL URL."""

from __future__ import annotations

from ._log import SagaLog


def open_log(db: str, *, durability: str = "commands") -> SagaLog:
    """The log at ``db``: ``postgresql://...`` (or ``postgres://``) is a
    PostgreSQL server (tables in schema ``sagaproof``), anything else a SQLite
    file."""
    from ._postgres import PostgresLog, is_postgres_url

    if is_postgres_url(db):
        return PostgresLog(db)
    from ._sqlite import SQLiteLog

    return SQLiteLog(db, durability=durability)

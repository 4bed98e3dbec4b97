"""Ordered, append-only schema migrations from ``store/<schema>/NNNN_name.sql``.

Each file is applied once, in order, inside a transaction, and recorded in
``schema_migrations``. Never edit a released migration: add the next number.
Two schemas exist: ``sql`` (the workspace database) and ``sql_private`` (the
anonymization mapping and audit, a separate file so that a workspace can be shared
without it).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import duckdb

__all__ = ["Migration", "migrate", "migrations"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema step: its number, name and SQL text."""

    version: int
    name: str
    sql: str


def migrations(schema: str = "sql") -> list[Migration]:
    """Return the packaged migrations of a schema, in order.

    Parameters
    ----------
    schema : {"sql", "sql_private"}
        The folder of ``dicomflow_lab/store`` holding the schema's SQL files.

    Returns
    -------
    list of Migration
        Sorted by version; versions are unique.
    """
    found: list[Migration] = []
    for entry in resources.files("dicomflow_lab.store").joinpath(schema).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in store/{schema}: {versions}")
    return found


def migrate(con: duckdb.DuckDBPyConnection, schema: str = "sql") -> list[int]:
    """Apply every migration that the database has not recorded yet.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open, writable connection.
    schema : {"sql", "sql_private"}
        Which schema the database holds.

    Returns
    -------
    list of int
        The versions applied by this call (empty when up to date).
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied: list[int] = []
    for step in migrations(schema):
        if step.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(step.sql)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                [step.version, step.name],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        logger.info("applied schema migration %04d_%s", step.version, step.name)
        applied.append(step.version)
    return applied

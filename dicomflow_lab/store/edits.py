"""The ``edits`` table: one row per applied change; it is also the undo journal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

__all__ = ["EDIT_COLUMNS", "journal_rows", "mark_undone", "record_edits"]

#: Columns written by :func:`record_edits`, in table order (``edit_id`` is generated).
EDIT_COLUMNS = (
    "run_id",
    "applied_at",
    "user",
    "file_path",
    "new_file_path",
    "path",
    "tag",
    "keyword",
    "op",
    "old_value",
    "new_value",
    "backup_path",
)


def record_edits(con: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert journal rows in one batch.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A writable connection (inside the caller's transaction if any).
    rows : sequence of dict
        Keys: :data:`EDIT_COLUMNS`.

    Returns
    -------
    int
        Rows written.
    """
    if not rows:
        return 0
    batch = pd.DataFrame(list(rows), columns=list(EDIT_COLUMNS))
    batch["applied_at"] = pd.to_datetime(batch["applied_at"])
    con.register("edits_batch", batch)
    try:
        cols = ", ".join(f'"{c}"' for c in EDIT_COLUMNS)
        con.execute(f"INSERT INTO edits ({cols}) SELECT {cols} FROM edits_batch")
    finally:
        con.unregister("edits_batch")
    return len(rows)


def journal_rows(con: duckdb.DuckDBPyConnection, key: int | str) -> pd.DataFrame:
    """Return the not-yet-undone change rows an undo of `key` covers.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection.
    key : int or str
        An ``edit_id`` (every change of that run to the same file, since a file is
        restored as a whole) or a ``run_id`` (the whole run).

    Returns
    -------
    pandas.DataFrame
        Journal rows ordered by ``edit_id``; empty when nothing is left to undo.
    """
    if isinstance(key, int):
        sql = (
            "SELECT e.* FROM edits e JOIN edits k ON k.edit_id = ? "
            "AND e.run_id = k.run_id AND e.file_path = k.file_path "
            "WHERE e.undone_at IS NULL AND e.op <> 'undo' ORDER BY e.edit_id"
        )
    else:
        sql = (
            "SELECT * FROM edits WHERE run_id = ? AND undone_at IS NULL AND op <> 'undo' "
            "ORDER BY edit_id"
        )
    return con.execute(sql, [key]).df()


def mark_undone(con: duckdb.DuckDBPyConnection, edit_ids: Sequence[int], at: dt.datetime) -> None:
    """Stamp ``undone_at`` on journal rows.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A writable connection.
    edit_ids : sequence of int
        The rows undone.
    at : datetime.datetime
        When (naive UTC).
    """
    if edit_ids:
        con.execute(
            "UPDATE edits SET undone_at = ? WHERE list_contains(?, edit_id)",
            [at, [int(i) for i in edit_ids]],
        )

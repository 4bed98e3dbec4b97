"""The edit journal's other half: undo of saved edits, and selections of files.

Split from :mod:`dicomflow_lab.editor` (which re-exports :func:`undo`); the journal rows
themselves live in the ``edits`` table (:mod:`dicomflow_lab.store.edits`).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dicomflow_lab._fsutil import atomic_write_bytes
from dicomflow_lab.errors import EditError
from dicomflow_lab.store.edits import journal_rows, mark_undone, record_edits

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from dicomflow_lab.workspace import Workspace

__all__ = ["UndoReport", "resolve_selection", "undo"]


@dataclass(frozen=True)
class UndoReport:
    """What :func:`undo` restored.

    Attributes
    ----------
    restored : tuple of pathlib.Path
        Files put back from their backups (in-place edits).
    removed : tuple of pathlib.Path
        Save-as outputs deleted (their originals were never changed).
    edit_ids : tuple of int
        Journal rows marked undone.
    """

    restored: tuple[Path, ...]
    removed: tuple[Path, ...]
    edit_ids: tuple[int, ...]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name (containers)
        return ""


def _reindex_in_place(ws: Workspace, files: Sequence[Path]) -> None:
    """Re-index files written in place through the roots they were indexed under."""
    names = [str(f) for f in files]
    found = ws.sql(
        "SELECT DISTINCT source FROM instances WHERE list_contains(?, file_path)", [names]
    )["source"].tolist()
    roots = found or [str(f) for f in files]
    ws.index(*roots, progress=False)


def undo(ws: Workspace, key: int | str) -> UndoReport:
    """Revert journaled edits: an ``edit_id`` (its file in that run) or a ``run_id``.

    In-place edits are restored from their backups (atomically); save-as outputs are
    deleted (their originals were never changed). The rows are stamped ``undone_at``
    and one ``op='undo'`` row per file records the undo; the index follows.

    Parameters
    ----------
    ws : Workspace
        The workspace holding the journal.
    key : int or str
        ``edit_id`` or ``run_id``.

    Returns
    -------
    UndoReport
        Files restored and removed, journal rows undone.

    Raises
    ------
    EditError
        When nothing matches or a backup is missing.
    """
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise TypeError(f"undo() takes an edit_id (int) or a run_id (str), not {key!r}")
    with ws.db.connect() as con:
        rows = journal_rows(con, key)
    if rows.empty:
        raise EditError(f"nothing to undo for {key!r}: unknown id or already undone")
    with ws.db.connect() as con:  # a later run on the same files must be undone first
        later = con.execute(
            "SELECT DISTINCT run_id FROM edits WHERE edit_id > ? AND undone_at IS NULL "
            "AND op <> 'undo' AND run_id <> ? AND (list_contains(?, file_path) "
            "OR list_contains(?, new_file_path))",
            [
                int(rows["edit_id"].max()),
                str(rows["run_id"].iloc[0]),
                sorted(set(rows["new_file_path"])),
                sorted(set(rows["new_file_path"])),
            ],
        ).fetchall()
    if later:
        runs = ", ".join(r[0] for r in later)
        raise EditError(f"later edit run(s) changed these files: undo {runs} first")
    restored: list[Path] = []
    removed: list[Path] = []
    files = rows.drop_duplicates(["run_id", "file_path", "new_file_path"])
    for row in files.itertuples(index=False):
        backup = row.backup_path if isinstance(row.backup_path, str) else None
        if backup:
            if not os.path.exists(backup):
                raise EditError(f"backup {backup} of {row.file_path} is missing; cannot undo")
            atomic_write_bytes(row.file_path, Path(backup).read_bytes())
            restored.append(Path(row.file_path))
        elif row.new_file_path != row.file_path:
            target = Path(row.new_file_path)
            if target.exists():
                target.unlink()
            removed.append(target)
    now = _now()
    user = _user()
    record = [
        {
            "run_id": row.run_id,
            "applied_at": now,
            "user": user,
            "file_path": row.file_path,
            "new_file_path": row.new_file_path,
            "path": "",
            "tag": None,
            "keyword": None,
            "op": "undo",
            "old_value": None,
            "new_value": None,
            "backup_path": row.backup_path,
        }
        for row in files.itertuples(index=False)
    ]
    ids = [int(i) for i in rows["edit_id"]]
    from dicomflow_lab.store.ingest import delete_files

    with ws.db.transaction() as con:
        mark_undone(con, ids, now)
        record_edits(con, record)
        delete_files(con, [str(p) for p in removed])
    if restored:
        _reindex_in_place(ws, restored)
    for folder in {p.parent for p in removed}:
        shutil.rmtree(folder, ignore_errors=True) if _is_empty_tree(folder) else None
    return UndoReport(tuple(restored), tuple(removed), tuple(ids))


def _is_empty_tree(folder: Path) -> bool:
    try:
        return folder.is_dir() and not any(p.is_file() for p in folder.rglob("*"))
    except OSError:  # pragma: no cover
        return False


def resolve_selection(ws: Workspace, selection: Any) -> list[Path]:
    """Turn a selection into files: a path, paths, a series / study UID or a DataFrame.

    Parameters
    ----------
    ws : Workspace
        For UID look-ups in ``instances``.
    selection : str, os.PathLike, sequence of them, or pandas.DataFrame
        A file or folder (its files, recursively), a list of files, a
        SeriesInstanceUID / StudyInstanceUID, or a DataFrame with a ``file_path`` column.

    Returns
    -------
    list of pathlib.Path
        Sorted files.
    """
    if isinstance(selection, pd.DataFrame):
        if "file_path" not in selection.columns:
            raise ValueError("a DataFrame selection needs a file_path column")
        return [Path(p) for p in selection["file_path"].tolist()]
    if isinstance(selection, (str, os.PathLike)):
        path = Path(selection).expanduser()
        if path.is_file():
            return [path]
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        found = ws.sql(
            "SELECT file_path FROM instances WHERE SeriesInstanceUID = ? "
            "OR StudyInstanceUID = ? ORDER BY file_path",
            [str(selection), str(selection)],
        )
        if found.empty:
            raise ValueError(f"{selection!r} is neither a file, a folder nor an indexed UID")
        return [Path(p) for p in found["file_path"]]
    return [Path(p) for p in selection]

"""Index rows of edited files derived from their sources' rows, without reading the files.

After a batch edit, re-indexing the output means reading and parsing every file just
written, although each differs from its source only in the few top-level elements the
edits replaced (the splice and the fast write path keep every other byte). When the
source's row is in ``instances`` and still describes the file that was read (same size
and modification time), the new row is that row with:

- ``file_path``, ``file_size``, ``file_mtime`` of the written file, ``source`` (the output
  folder, or the old row's for in-place writes) and ``indexed_at``;
- in ``header``, each touched element's key replaced (or added, in tag order, or
  removed) by the value the writer decoded from the new file's bytes with the indexer's
  own code (:func:`dicomflow_lab.core._write.index_values`);
- each touched keyword column converted from that value exactly as the indexer
  converts it (the same text form, the same SQL cast).

Everything else (``TransferSyntaxUID``, the other columns, the rest of the header)
comes from the old row. The rows of one batch are written by one ``INSERT … SELECT``
joining ``instances`` with a DataFrame of the patches (``INSERT OR REPLACE`` in place).

A file is left to the indexer (the caller runs :meth:`Workspace.index` afterwards, which
then skips the patched files as unchanged) when its source has no row or a stale one,
or when the writer did not give index values (see ``index_values``: full pydicom
writes, UID regeneration, character set, file meta, SOP UID or image size changes,
sequences, Pixel Data and what follows it, long values). When every file of an output
folder the save created was patched, :func:`finish_folder` does the rest of what that
index would do (rows of files gone, the ``sources`` row) and the folder is not scanned.
``tests/test_edit_reindex.py`` checks that the rows equal those of a fresh index.

The store otherwise knows nothing of DICOM: the one import from ``core`` is the
indexer's text form of a value (``core.index._value_text``), so that both agree.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pandas as pd
from pydicom.datadict import tag_for_keyword

from dicomflow_lab.core.index import _value_text
from dicomflow_lab.store.ingest import INSTANCE_COLUMNS, text_to_column_sql

if TYPE_CHECKING:  # pragma: no cover
    from dicomflow_lab.core._write import IndexPatch

__all__ = ["finish_folder", "patch_instances"]

logger = logging.getLogger(__name__)


def patch_instances(
    con: duckdb.DuckDBPyConnection,
    items: Sequence[tuple[str, str, IndexPatch]],
    *,
    source: str | None,
    indexed_at: dt.datetime | None = None,
) -> set[str]:
    """Write the index rows of edited files from their sources' rows (one batch).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection, inside the caller's transaction.
    items : sequence of (str, str, IndexPatch)
        Source path, written path and the writer's patch, per file.
    source : str or None
        The ``source`` of the new rows (the indexed output folder); ``None`` keeps the
        old row's (in-place writes, re-indexed under the roots they came from).
    indexed_at : datetime, optional
        Defaults to now (UTC).

    Returns
    -------
    set of str
        The written paths whose rows were written; the others need the indexer.
    """
    usable: dict[str, tuple[str, IndexPatch]] = {}
    for src, dst, patch in items:
        if patch.values is not None:
            usable[dst] = (src, patch)  # a path written twice: its last write counts
    if not usable:
        return set()
    dsts = list(usable)
    keys = pd.DataFrame(
        {
            "k": pd.Series(range(len(dsts)), dtype="int64"),
            "src_path": pd.Series([usable[d][0] for d in dsts], dtype="object"),
            "src_size": pd.Series([usable[d][1].src_size for d in dsts], dtype="int64"),
            "src_mtime_ns": pd.Series([usable[d][1].src_mtime_ns for d in dsts], dtype="int64"),
        }
    )
    with _registered(con, "_dfl_patch_keys", keys):
        found = con.execute(
            "SELECT p.k, o.header FROM _dfl_patch_keys p JOIN instances o"
            " ON o.file_path = p.src_path AND o.file_size = p.src_size"
            " AND epoch_ns(o.file_mtime) = p.src_mtime_ns"
        ).fetchall()
    if not found:
        return set()
    touched = {
        dst: {key for _tag, key, _value in patch.values or ()} | set(patch.deleted)
        for dst, (_src, patch) in usable.items()
    }
    every = set().union(*touched.values())
    names = [n for n in INSTANCE_COLUMNS if n in every]
    rows: dict[str, list[Any]] = {
        name: []
        for name in (
            "src_path",
            "src_size",
            "src_mtime_ns",
            "file_path",
            "file_size",
            "file_mtime_ns",
            "header",
            *names,
            *(f"set:{n}" for n in names),
        )
    }
    for k, text in found:
        dst = dsts[k]
        src, patch = usable[dst]
        header = _patched_header(text, patch)
        rows["src_path"].append(src)
        rows["src_size"].append(patch.src_size)
        rows["src_mtime_ns"].append(patch.src_mtime_ns)
        rows["file_path"].append(dst)
        rows["file_size"].append(patch.size)
        rows["file_mtime_ns"].append(patch.mtime_ns)
        rows["header"].append(orjson.dumps(header).decode("utf-8"))
        for name in names:
            is_set = name in touched[dst]
            # the indexer's text form of the value (then the same SQL cast)
            rows[name].append(_value_text(header.get(name)) if is_set else None)
            rows[f"set:{name}"].append(is_set)
    n = len(rows["file_path"])
    frame = pd.DataFrame(
        {name: pd.Series(values, dtype=_dtype(name)) for name, values in rows.items()}
    )
    select = [
        "p.file_path",
        "p.file_size",
        "make_timestamp_ns(p.file_mtime_ns) AS file_mtime",
        "COALESCE($source, o.source) AS source",
        "$indexed_at AS indexed_at",
        "o.TransferSyntaxUID",
        "p.header::JSON AS header",
    ]
    for name, sql_type in INSTANCE_COLUMNS.items():
        if name in names:
            value = text_to_column_sql(f'p."{name}"', sql_type)
            select.append(f'CASE WHEN p."set:{name}" THEN {value} ELSE o."{name}" END AS "{name}"')
        else:
            select.append(f'o."{name}"')
    when = indexed_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    # in place, the new row replaces the very row it is made from; else the written
    # paths' stale rows (if any) go first and a plain INSERT is much cheaper
    in_place = any(src == dst for src, dst in zip(rows["src_path"], rows["file_path"], strict=True))
    with _registered(con, "_dfl_patch", frame):
        con.execute(
            "DELETE FROM index_errors WHERE file_path IN (SELECT file_path FROM _dfl_patch)"
        )
        if not in_place:
            con.execute(
                "DELETE FROM instances WHERE file_path IN (SELECT file_path FROM _dfl_patch)"
            )
        verb = "INSERT OR REPLACE" if in_place else "INSERT"
        con.execute(
            f"{verb} INTO instances BY NAME SELECT {', '.join(select)}"
            " FROM _dfl_patch p JOIN instances o ON o.file_path = p.src_path"
            " AND o.file_size = p.src_size AND epoch_ns(o.file_mtime) = p.src_mtime_ns",
            {"source": source, "indexed_at": when},
        )
    logger.debug("edit re-index: %d row(s) derived from their sources' rows", n)
    return set(rows["file_path"])


def _dtype(name: str) -> str:
    if name in ("src_size", "src_mtime_ns", "file_size", "file_mtime_ns"):
        return "int64"
    return "bool" if name.startswith("set:") else "object"


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> Any:
    con.register(name, frame)
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


def _patched_header(text: str, patch: IndexPatch) -> dict[str, Any]:
    """Return the old header with the patch's values set, added and deleted."""
    header: dict[str, Any] = orjson.loads(text)
    for key in patch.deleted:
        header.pop(key, None)
    added = []
    for tag, key, value in patch.values or ():
        if key in header:
            header[key] = value  # in place: the element keeps its position
        else:
            added.append((tag, key, value))
    if not added:
        return header
    # a new element goes where the file has it: before the first larger data set tag
    out: dict[str, Any] = {}
    pending = list(added)
    for key, value in header.items():
        tag = _tag_of(key)
        while pending and tag is not None and tag >> 16 > 0x0002 and tag > pending[0][0]:
            out[pending[0][1]] = pending[0][2]
            pending.pop(0)
        out[key] = value
    for _tag, key, value in pending:
        out[key] = value
    return out


@functools.lru_cache(maxsize=4096)
def _tag_of(key: str) -> int | None:
    """Return the tag of a header key: a DICOM keyword or ``GGGGEEEE`` hex (private, unknown)."""
    tag = tag_for_keyword(key)
    if tag is not None:
        return int(tag)
    if len(key) == 8:
        with contextlib.suppress(ValueError):
            return int(key, 16)
    return None


def finish_folder(
    con: duckdb.DuckDBPyConnection,
    folder: str,
    paths: Sequence[str],
    *,
    indexed_at: dt.datetime,
) -> int:
    """Close the index of a new folder whose every file has a row: what an index would add.

    For a folder that a save created and filled, each of whose files got its row from
    :func:`patch_instances`, an index of the folder would find every file unchanged;
    what it would still do is done here: remove the rows of other files under the
    folder (left from files that are gone) and record the folder in ``sources``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection, inside the caller's transaction.
    folder : str
        The folder (absolute, as :meth:`Workspace.index` names a source).
    paths : sequence of str
        Every file in the folder.
    indexed_at : datetime
        The time recorded (the rows' ``indexed_at``).

    Returns
    -------
    int
        The number of instance rows removed.
    """
    prefix = folder.rstrip(os.sep) + os.sep
    frame = pd.DataFrame({"file_path": pd.Series(list(paths), dtype="object")})
    with _registered(con, "_dfl_folder", frame):
        gone = con.execute(
            "SELECT count(*) FROM instances WHERE starts_with(file_path, $prefix)"
            " AND file_path NOT IN (SELECT file_path FROM _dfl_folder)",
            {"prefix": prefix},
        ).fetchone()
        for table in ("instances", "index_errors"):
            con.execute(
                f"DELETE FROM {table} WHERE starts_with(file_path, $prefix)"
                " AND file_path NOT IN (SELECT file_path FROM _dfl_folder)",
                {"prefix": prefix},
            )
    # the statement Workspace.index records a folder with
    con.execute(
        "INSERT INTO sources (source, kind, added_at, last_indexed_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (source) DO UPDATE SET last_indexed_at = excluded.last_indexed_at",
        [folder, "folder", indexed_at, indexed_at],
    )
    return int(gone[0]) if gone else 0

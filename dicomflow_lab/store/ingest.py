"""Writing indexed headers into the ``instances`` and ``index_errors`` tables in batches.

Batches arrive as columns of text (one list per column); DuckDB converts them to the
typed columns in one ``INSERT … SELECT`` per batch, never row by row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd

__all__ = [
    "INSTANCE_COLUMNS",
    "INSTANCE_KEYWORDS",
    "delete_files",
    "known_files",
    "record_problems",
    "text_to_column_sql",
    "upsert_instances",
]

#: DICOM keyword columns of ``instances`` and their SQL types (see sql/0001_init.sql).
INSTANCE_COLUMNS: dict[str, str] = {
    "SOPClassUID": "VARCHAR",
    "SOPInstanceUID": "VARCHAR",
    "PatientName": "VARCHAR",
    "PatientID": "VARCHAR",
    "PatientBirthDate": "DATE",
    "PatientSex": "VARCHAR",
    "PatientAge": "VARCHAR",
    "StudyInstanceUID": "VARCHAR",
    "StudyDate": "DATE",
    "StudyTime": "VARCHAR",
    "StudyDescription": "VARCHAR",
    "StudyID": "VARCHAR",
    "AccessionNumber": "VARCHAR",
    "ReferringPhysicianName": "VARCHAR",
    "InstitutionName": "VARCHAR",
    "SeriesInstanceUID": "VARCHAR",
    "SeriesNumber": "INTEGER",
    "SeriesDescription": "VARCHAR",
    "Modality": "VARCHAR",
    "BodyPartExamined": "VARCHAR",
    "SeriesDate": "DATE",
    "SeriesTime": "VARCHAR",
    "FrameOfReferenceUID": "VARCHAR",
    "Manufacturer": "VARCHAR",
    "ManufacturerModelName": "VARCHAR",
    "StationName": "VARCHAR",
    "InstanceNumber": "INTEGER",
    "AcquisitionNumber": "INTEGER",
    "ContentDate": "DATE",
    "ContentTime": "VARCHAR",
    "ImageType": "VARCHAR",
    "Rows": "INTEGER",
    "Columns": "INTEGER",
    "NumberOfFrames": "INTEGER",
    "SamplesPerPixel": "INTEGER",
    "PhotometricInterpretation": "VARCHAR",
    "BitsAllocated": "INTEGER",
    "BitsStored": "INTEGER",
    "PixelRepresentation": "INTEGER",
    "PixelSpacing": "DOUBLE[]",
    "SliceThickness": "DOUBLE",
    "SpacingBetweenSlices": "DOUBLE",
    "SliceLocation": "DOUBLE",
    "ImagePositionPatient": "DOUBLE[]",
    "ImageOrientationPatient": "DOUBLE[]",
    "WindowCenter": "DOUBLE[]",
    "WindowWidth": "DOUBLE[]",
    "RescaleIntercept": "DOUBLE",
    "RescaleSlope": "DOUBLE",
}
INSTANCE_KEYWORDS: tuple[str, ...] = tuple(INSTANCE_COLUMNS)


def _cast(name: str, sql_type: str) -> str:
    return text_to_column_sql(f'"{name}"', sql_type)


def text_to_column_sql(col: str, sql_type: str) -> str:
    """Return the SQL that turns the text expression `col` into an ``instances`` column.

    The one conversion of the indexer's text values (:data:`INSTANCE_COLUMNS` types):
    used by :func:`upsert_instances` and by the edit re-index
    (:mod:`dicomflow_lab.store.reindex`), so both type a value the same way.

    Parameters
    ----------
    col : str
        A SQL expression of text (a quoted column name, possibly qualified).
    sql_type : str
        The column's type in :data:`INSTANCE_COLUMNS`.

    Returns
    -------
    str
        The SQL expression.
    """
    if sql_type == "VARCHAR":
        return col
    if sql_type == "DATE":
        # DA is YYYYMMDD; ACR-NEMA style YYYY.MM.DD is still met in old files
        parsed = f"COALESCE(TRY_STRPTIME({col}, '%Y%m%d'), TRY_STRPTIME({col}, '%Y.%m.%d'))"
        return f"TRY_CAST({parsed} AS DATE)"
    if sql_type == "DOUBLE[]":
        return (
            f"CASE WHEN {col} IS NULL THEN NULL ELSE "
            f"list_transform(string_split({col}, '\\'), lambda x: TRY_CAST(trim(x) AS DOUBLE)) END"
        )
    if sql_type == "INTEGER":
        # IS may be written "12.0" by some writers; round such values
        return (
            f"COALESCE(TRY_CAST({col} AS INTEGER), TRY_CAST(TRY_CAST({col} AS DOUBLE) AS INTEGER))"
        )
    return f"TRY_CAST({col} AS {sql_type})"


_SELECT_INSTANCES = ", ".join(
    [
        "file_path",
        "file_size",
        "make_timestamp_ns(file_mtime_ns) AS file_mtime",
        "$source AS source",
        "$indexed_at AS indexed_at",
        '"TransferSyntaxUID"',
        *(f'{_cast(name, t)} AS "{name}"' for name, t in INSTANCE_COLUMNS.items()),
        "header::JSON AS header",
    ]
)


def upsert_instances(
    con: duckdb.DuckDBPyConnection,
    columns: Mapping[str, Sequence[Any]],
    *,
    source: str,
    indexed_at: dt.datetime | None = None,
) -> int:
    """Insert (or replace) one batch of parsed instances.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection, ideally inside a transaction (the caller's).
    columns : mapping of str to sequence
        ``file_path``, ``file_size``, ``file_mtime_ns``, ``TransferSyntaxUID``,
        ``header`` (JSON text) and one text column per :data:`INSTANCE_KEYWORDS`.
    source : str
        The source label recorded with each row (the indexed folder, ``scp:AET``, ...).
    indexed_at : datetime, optional
        Defaults to now (UTC).

    Returns
    -------
    int
        The number of rows written.
    """
    frame = pd.DataFrame({k: pd.Series(v, dtype="object") for k, v in columns.items()})
    if frame.empty:
        return 0
    frame["file_size"] = frame["file_size"].astype("int64")
    frame["file_mtime_ns"] = frame["file_mtime_ns"].astype("int64")
    when = indexed_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    con.register("_dfl_batch", frame)
    try:
        con.execute("DELETE FROM instances WHERE file_path IN (SELECT file_path FROM _dfl_batch)")
        con.execute(
            "DELETE FROM index_errors WHERE file_path IN (SELECT file_path FROM _dfl_batch)"
        )
        con.execute(
            f"INSERT INTO instances BY NAME SELECT {_SELECT_INSTANCES} FROM _dfl_batch",
            {"source": source, "indexed_at": when},
        )
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister("_dfl_batch")
    return len(frame)


def record_problems(
    con: duckdb.DuckDBPyConnection,
    problems: Iterable[Any],
    *,
    source: str,
    indexed_at: dt.datetime | None = None,
) -> int:
    """Record files that could not be indexed (replacing earlier records of them).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection.
    problems : iterable
        Objects with ``path``, ``kind``, ``reason``, ``size`` and ``mtime_ns``
        (:class:`dicomflow_lab.core.index.IndexProblem`).
    source : str
        The source label.
    indexed_at : datetime, optional
        Defaults to now (UTC).

    Returns
    -------
    int
        The number of rows written.
    """
    rows = list(problems)
    if not rows:
        return 0
    frame = pd.DataFrame(
        {
            "file_path": pd.Series([p.path for p in rows], dtype="object"),
            "file_size": pd.Series([p.size for p in rows], dtype="Int64"),
            "file_mtime_ns": pd.Series([p.mtime_ns for p in rows], dtype="Int64"),
            "kind": pd.Series([p.kind for p in rows], dtype="object"),
            "reason": pd.Series([p.reason for p in rows], dtype="object"),
        }
    ).drop_duplicates("file_path", keep="last")
    when = indexed_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    con.register("_dfl_problems", frame)
    try:
        con.execute(
            "DELETE FROM index_errors WHERE file_path IN (SELECT file_path FROM _dfl_problems)"
        )
        con.execute(
            "DELETE FROM instances WHERE file_path IN (SELECT file_path FROM _dfl_problems)"
        )
        con.execute(
            "INSERT INTO index_errors BY NAME SELECT file_path, file_size,"
            " make_timestamp_ns(file_mtime_ns) AS file_mtime, $source AS source, kind, reason,"
            " $indexed_at AS indexed_at FROM _dfl_problems",
            {"source": source, "indexed_at": when},
        )
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister("_dfl_problems")
    return len(frame)


def delete_files(con: duckdb.DuckDBPyConnection, paths: Iterable[str]) -> int:
    """Remove the rows (instances and errors) of files that are gone.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection.
    paths : iterable of str
        Absolute file paths.

    Returns
    -------
    int
        The number of instance rows removed.
    """
    frame = pd.DataFrame({"file_path": pd.Series(list(paths), dtype="object")})
    if frame.empty:
        return 0
    con.register("_dfl_gone", frame)
    try:
        removed = con.execute(
            "SELECT count(*) FROM instances WHERE file_path IN (SELECT file_path FROM _dfl_gone)"
        ).fetchone()
        con.execute("DELETE FROM instances WHERE file_path IN (SELECT file_path FROM _dfl_gone)")
        con.execute("DELETE FROM index_errors WHERE file_path IN (SELECT file_path FROM _dfl_gone)")
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister("_dfl_gone")
    return int(removed[0]) if removed else 0


def known_files(
    con: duckdb.DuckDBPyConnection, source: str | None = None
) -> dict[str, tuple[int | None, int | None]]:
    """Return ``path -> (size, mtime_ns)`` of indexed and failed files.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection.
    source : str, optional
        Only the files recorded under this source.

    Returns
    -------
    dict
        Every file already seen, with the size and modification time recorded then.
    """
    where = "WHERE source = $source" if source is not None else ""
    params = {"source": source} if source is not None else {}
    rows = con.execute(
        f"SELECT file_path, file_size, epoch_ns(file_mtime) FROM instances {where} "
        f"UNION ALL SELECT file_path, file_size, epoch_ns(file_mtime) FROM index_errors {where}",
        params,
    ).fetchall()
    return {path: (size, mtime) for path, size, mtime in rows}

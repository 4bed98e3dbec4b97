"""The workspace: a folder with a DuckDB index of DICOM files, settings and a file area.

A :class:`Workspace` is what every panel and script works through: it indexes folders
(:meth:`Workspace.index`), answers queries as pandas DataFrames, and keeps settings.
An ephemeral workspace (``Workspace(ephemeral=True)``) keeps its database in memory and
its files in a temporary folder, and leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dicomflow_lab._paths import default_home
from dicomflow_lab.core.dataset import HeaderReadOptions, is_dicomdir, read_header, sniff_dicom
from dicomflow_lab.core.index import (
    IndexProblem,
    ParsedBatch,
    dicomdir_files,
    parse_files,
    scan,
)
from dicomflow_lab.errors import DicomReadError, StoreError
from dicomflow_lab.store import settings as _settings
from dicomflow_lab.store.db import Database
from dicomflow_lab.store.ingest import (
    INSTANCE_KEYWORDS,
    delete_files,
    known_files,
    record_problems,
    upsert_instances,
)

__all__ = ["IndexReport", "Workspace"]

logger = logging.getLogger(__name__)

DB_NAME = "workspace.duckdb"
PRIVATE_DB_NAME = "anonymization.duckdb"


@dataclass(frozen=True)
class IndexReport:
    """What one :meth:`Workspace.index` run did.

    Attributes
    ----------
    sources : tuple of str
        The indexed roots (absolute paths).
    files_seen : int
        Regular files found.
    indexed : int
        Instances read and written to the index in this run.
    unchanged : int
        Files skipped because their size and modification time had not changed.
    removed : int
        Index rows removed because their files are gone.
    errors : int
        Files or folders recorded in ``index_errors`` in this run.
    error_kinds : dict
        ``kind -> count`` of those errors.
    dicomdirs : tuple of str
        DICOMDIR files met (their referenced files are indexed, they are not instances).
    seconds : float
        Wall-clock time of the run.
    """

    sources: tuple[str, ...]
    files_seen: int
    indexed: int
    unchanged: int
    removed: int
    errors: int
    error_kinds: dict[str, int] = field(default_factory=dict)
    dicomdirs: tuple[str, ...] = ()
    seconds: float = 0.0

    def __str__(self) -> str:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(self.error_kinds.items()))
        lines = [
            f"Indexed {self.indexed} instance(s) from {self.files_seen} file(s) "
            f"in {self.seconds:.2f} s",
            f"  unchanged (skipped): {self.unchanged}",
            f"  removed (files gone): {self.removed}",
            f"  errors: {self.errors}" + (f" ({kinds}); see ws.index_errors()" if kinds else ""),
        ]
        if self.dicomdirs:
            lines.append(f"  DICOMDIR files: {len(self.dicomdirs)}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


class Workspace:
    """A DICOM workspace: an index in DuckDB, settings and a file area.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The workspace folder; default ``$DICOMFLOW_HOME`` or ``~/.dicomflow_lab``.
    ephemeral : bool, optional
        Keep everything in memory and a temporary folder, wiped on :meth:`close`, at the
        end of a ``with`` block, or when the interpreter exits.
    read_only : bool, optional
        Open the database read-only (no indexing or settings changes).
    lock_timeout : float, optional
        Seconds to wait while another process holds the database.

    Examples
    --------
    >>> import dicomflow_lab as dfl
    >>> with dfl.Workspace(ephemeral=True) as ws:
    ...     report = ws.index(dfl.data.testfile("CT_small.dcm"), progress=False)
    ...     ws.sql("SELECT Modality, count(*) AS n FROM instances GROUP BY 1")
      Modality  n
    0       CT  1
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        ephemeral: bool = False,
        read_only: bool = False,
        lock_timeout: float = 30.0,
    ) -> None:
        self.ephemeral = ephemeral
        if ephemeral:
            if path is not None:
                raise ValueError("an ephemeral workspace has no path; pass path=None")
            self.path = Path(tempfile.mkdtemp(prefix="dicomflow-ephemeral-"))
            self.db = Database(None)
            self._private: list[Database] = []  # the mapping database, opened on first use
            self._finalizer = weakref.finalize(self, _wipe, self.db, self.path, self._private)
        else:
            self.path = Path(path).expanduser().resolve() if path else default_home()
            if not read_only:
                self.path.mkdir(parents=True, exist_ok=True)
            self.db = Database(self.path / DB_NAME, read_only=read_only, lock_timeout=lock_timeout)
            self._private = []
            self._read_only = read_only
            self._lock_timeout = lock_timeout
            self._finalizer = weakref.finalize(self, _close_all, self.db, self._private)

    def __repr__(self) -> str:
        kind = "ephemeral" if self.ephemeral else str(self.path)
        return f"<Workspace {kind}>"

    # -- life cycle ----------------------------------------------------------------
    def close(self) -> None:
        """Close the database; an ephemeral workspace also deletes its files."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return not self._finalizer.alive

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def files_dir(self) -> Path:
        """The workspace's own file area (received, anonymized and exported files)."""
        folder = self.path / "files"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- indexing ------------------------------------------------------------------
    def index(
        self,
        *paths: str | os.PathLike[str],
        workers: int | None = None,
        progress: bool = True,
        batch_rows: int = 2000,
    ) -> IndexReport:
        """Index files, folders (recursively) and DICOMDIRs into the workspace.

        Files are recognised by content (the ``DICM`` marker, or a plausible dataset
        start for files without preamble), not by name. A re-run skips files whose size
        and modification time are unchanged and removes the rows of deleted files. A
        file that cannot be read is recorded in :meth:`index_errors` with the reason;
        it never stops the run.

        Parameters
        ----------
        *paths : str or os.PathLike
            Folders, files or DICOMDIR files.
        workers : int, optional
            Header-parsing processes (default: the ``index.workers`` setting, else one
            per core).
        progress : bool, optional
            Show a progress bar (tqdm; a widget in notebooks).
        batch_rows : int, optional
            Rows written to the database per transaction.

        Returns
        -------
        IndexReport
            Counts of what was indexed, skipped, removed and refused.
        """
        if not paths:
            raise TypeError("index() needs at least one file or folder")
        started = time.perf_counter()
        with self.db.connect() as con:
            if workers is None:
                workers = _settings.get_setting(con, "index.workers")
            include_hidden = _settings.get_setting(con, "index.include_hidden")
            ratio = _settings.get_setting(con, "index.max_inflate_ratio")
        options = HeaderReadOptions(max_inflate_ratio=ratio)
        totals = _Totals()
        sources: list[str] = []
        for raw in paths:
            root = os.path.abspath(os.fspath(raw))
            sources.append(root)
            self._index_root(root, totals, options, workers, progress, batch_rows, include_hidden)
        return IndexReport(
            sources=tuple(sources),
            files_seen=totals.files_seen,
            indexed=totals.indexed,
            unchanged=totals.unchanged,
            removed=totals.removed,
            errors=sum(totals.kinds.values()),
            error_kinds=dict(totals.kinds),
            dicomdirs=tuple(totals.dicomdirs),
            seconds=time.perf_counter() - started,
        )

    def _index_root(
        self,
        root: str,
        totals: _Totals,
        options: HeaderReadOptions,
        workers: int | None,
        progress: bool,
        batch_rows: int,
        include_hidden: bool,
    ) -> None:
        dicomdir = os.path.isfile(root) and _looks_like_dicomdir(root)
        if dicomdir:
            paths, problems = dicomdir_files(root)
            found = scan(paths, include_hidden=True)
            files, problems = found.files, problems + found.problems
            totals.dicomdirs.append(root)
            kind = "dicomdir"
        else:
            found = scan([root], include_hidden=include_hidden)
            files, problems = found.files, found.problems
            kind = "folder" if os.path.isdir(root) else "file"
        totals.files_seen += len(files)
        with self.db.connect() as con:
            known = known_files(con)
        seen = {f.path for f in files}
        todo = [f for f in files if known.get(f.path) != (f.size, f.mtime_ns)]
        totals.unchanged += len(files) - len(todo)
        if dicomdir:
            gone = [p for p in self._paths_of_source(root) if p not in seen]
        else:
            prefix = root.rstrip(os.sep) + os.sep
            gone = [p for p in known if (p == root or p.startswith(prefix)) and p not in seen]
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        bar = _progress_bar(len(todo), progress, os.path.basename(root) or root)
        pending: list[ParsedBatch] = []
        pending_rows = 0
        try:
            for batch in parse_files(todo, INSTANCE_KEYWORDS, workers=workers, options=options):
                pending.append(batch)
                pending_rows += batch.n_rows + len(batch.problems)
                if bar is not None:
                    bar.update(batch.n_rows + len(batch.problems) + len(batch.dicomdirs))
                if pending_rows >= batch_rows:
                    self._flush(pending, root, now, totals)
                    pending, pending_rows = [], 0
            self._flush(pending, root, now, totals)
        finally:
            if bar is not None:
                bar.close()
        with self.db.transaction() as con:
            totals.removed += delete_files(con, gone)
            record_problems(con, problems, source=root, indexed_at=now)
            con.execute(
                "INSERT INTO sources (source, kind, added_at, last_indexed_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (source) DO UPDATE SET last_indexed_at = excluded.last_indexed_at",
                [root, kind, now, now],
            )
        for problem in problems:
            totals.kinds[problem.kind] = totals.kinds.get(problem.kind, 0) + 1

    def _flush(
        self, batches: Sequence[ParsedBatch], source: str, now: dt.datetime, totals: _Totals
    ) -> None:
        if not batches:
            return
        columns: dict[str, list[Any]] = {}
        problems: list[IndexProblem] = []
        for batch in batches:
            for name, values in batch.columns.items():
                columns.setdefault(name, []).extend(values)
            problems.extend(batch.problems)
            totals.dicomdirs.extend(batch.dicomdirs)
        try:
            with self.db.transaction() as con:
                if columns.get("file_path"):
                    totals.indexed += upsert_instances(con, columns, source=source, indexed_at=now)
                record_problems(con, problems, source=source, indexed_at=now)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"writing an index batch of {source} failed: {exc}") from exc
        for problem in problems:
            totals.kinds[problem.kind] = totals.kinds.get(problem.kind, 0) + 1
        self.db.release()  # let other processes in between batches

    def _paths_of_source(self, source: str) -> list[str]:
        with self.db.connect() as con:
            rows = con.execute(
                "SELECT file_path FROM instances WHERE source = ?"
                " UNION SELECT file_path FROM index_errors WHERE source = ?",
                [source, source],
            ).fetchall()
        return [r[0] for r in rows]

    # -- queries -------------------------------------------------------------------
    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run any SQL on the workspace database and return a DataFrame.

        Parameters
        ----------
        query : str
            The SQL; use ``?`` (or ``$name`` with a dict) placeholders for values,
            never string formatting.
        params : sequence or dict, optional
            Values for the placeholders.

        Returns
        -------
        pandas.DataFrame
            The result; empty for statements that return no rows.
        """
        return self.db.query(query, params)  # type: ignore[arg-type]

    def studies(self) -> pd.DataFrame:
        """Return one row per study (patient, date, description, modalities, counts)."""
        return self.sql("SELECT * FROM studies ORDER BY StudyDate NULLS LAST, StudyInstanceUID")

    def series(self, study_uid: str | None = None) -> pd.DataFrame:
        """Return one row per series, optionally of one study.

        Parameters
        ----------
        study_uid : str, optional
            A StudyInstanceUID to filter on.

        Returns
        -------
        pandas.DataFrame
            Series sorted by study and series number.
        """
        where, params = ("WHERE StudyInstanceUID = ?", [study_uid]) if study_uid else ("", [])
        return self.sql(
            f"SELECT * FROM series {where} "
            "ORDER BY StudyInstanceUID, SeriesNumber NULLS LAST, SeriesInstanceUID",
            params,
        )

    def instances(
        self,
        series_uid: str | None = None,
        *,
        study_uid: str | None = None,
        with_header: bool = False,
    ) -> pd.DataFrame:
        """Return instance rows, optionally of one series or study.

        Parameters
        ----------
        series_uid : str, optional
            A SeriesInstanceUID to filter on.
        study_uid : str, optional
            A StudyInstanceUID to filter on.
        with_header : bool, optional
            Include the full header JSON column (large).

        Returns
        -------
        pandas.DataFrame
            Instances in series order (instance number, then slice position).
        """
        conds, params = [], []
        if series_uid:
            conds.append("SeriesInstanceUID = ?")
            params.append(series_uid)
        if study_uid:
            conds.append("StudyInstanceUID = ?")
            params.append(study_uid)
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        cols = "*" if with_header else "* EXCLUDE (header)"
        return self.sql(
            f"SELECT {cols} FROM instances {where} ORDER BY StudyInstanceUID, "
            "SeriesNumber NULLS LAST, SeriesInstanceUID, InstanceNumber NULLS LAST, "
            "ImagePositionPatient[3] NULLS LAST, file_path",
            params,
        )

    def index_errors(self, source: str | None = None) -> pd.DataFrame:
        """Return the files that could not be indexed, with the kind and the reason.

        Parameters
        ----------
        source : str, optional
            Only errors met while indexing this root.

        Returns
        -------
        pandas.DataFrame
            Columns ``file_path``, ``file_size``, ``file_mtime``, ``source``, ``kind``,
            ``reason``, ``indexed_at``.
        """
        where, params = ("WHERE source = ?", [os.path.abspath(source)]) if source else ("", [])
        return self.sql(f"SELECT * FROM index_errors {where} ORDER BY file_path", params)

    def sources(self) -> pd.DataFrame:
        """Return the indexed roots with their kind and last index time."""
        return self.sql("SELECT * FROM sources ORDER BY added_at")

    # -- editing -------------------------------------------------------------------
    def edit(self, selection: Any) -> Any:
        """Start a batch edit of a file, files, a series, a study or a query result.

        Parameters
        ----------
        selection : str, os.PathLike, sequence of them, or pandas.DataFrame
            A file or folder, a list of files, a SeriesInstanceUID or StudyInstanceUID
            of the index, or a DataFrame with a ``file_path`` column.

        Returns
        -------
        dicomflow_lab.editor.BatchEdit
            Call ``set`` / ``delete`` / ``add``, then ``preview()`` and ``save()``.
        """
        from dicomflow_lab.editor import BatchEdit, resolve_selection

        return BatchEdit(resolve_selection(self, selection), workspace=self)

    def undo(self, edit_id: int | str) -> Any:
        """Revert saved edits from the ``edits`` journal (an edit_id or a run_id).

        Returns
        -------
        dicomflow_lab.editor.UndoReport
            Files restored from backups and save-as outputs removed.
        """
        from dicomflow_lab.editor import undo

        return undo(self, edit_id)

    def edits(self) -> pd.DataFrame:
        """Return the edit journal, newest first."""
        return self.sql("SELECT * FROM edits ORDER BY edit_id DESC")

    # -- settings ------------------------------------------------------------------
    def settings(self) -> pd.DataFrame:
        """Return every setting with its value, default and description."""
        with self.db.connect() as con:
            return _settings.all_settings(con)

    def get_setting(self, name: str) -> Any:
        """Return one setting's value (see :meth:`settings` for the names)."""
        with self.db.connect() as con:
            return _settings.get_setting(con, name)

    def set_setting(self, name: str, value: Any) -> None:
        """Validate and store a setting (see :meth:`settings` for the names)."""
        with self.db.connect() as con:
            _settings.set_setting(con, name, value)

    def reset_setting(self, name: str) -> None:
        """Return a setting to its default."""
        with self.db.connect() as con:
            _settings.reset_setting(con, name)

    # -- anonymization --------------------------------------------------------------
    @property
    def private_db(self) -> Database:
        """The anonymization mapping and audit database (``anonymization.duckdb``).

        A separate file beside ``workspace.duckdb``, so that the workspace can be shared
        or exported without the link between anonymized data and its originals. Opened on
        first use; in memory for an ephemeral workspace.
        """
        if not self._private:
            if self.ephemeral:
                self._private.append(Database(None, schema="sql_private"))
            else:
                self._private.append(
                    Database(
                        self.path / PRIVATE_DB_NAME,
                        read_only=self._read_only,
                        lock_timeout=self._lock_timeout,
                        schema="sql_private",
                    )
                )
        return self._private[0]

    def anonymize(
        self,
        selection: Any,
        out: str | os.PathLike[str] | None = None,
        *,
        template: Any = "basic",
        key: str | bytes | None = None,
        patient_map: Any = None,
        workers: int | None = None,
        verify: bool = False,
        progress: bool = True,
        cancel: Any = None,
        on_progress: Any = None,
        overwrite: bool = False,
        index: bool | None = None,
    ) -> Any:
        """De-identify files per DICOM PS3.15 into a new folder; originals are not touched.

        Parameters
        ----------
        selection : str, os.PathLike, sequence, pandas.DataFrame, Study or StudyList
            A file or folder, a list of files, a Study/Series Instance UID of the index,
            a DataFrame with a ``file_path`` column (e.g. ``ws.instances(...)``), a
            :class:`~dicomflow_lab.Study` or a viewer (``dfl.open(...)``: its study).
        out : str or os.PathLike, optional
            The output folder (default ``<workspace>/files/anon/<run_id>``). Files are
            written as ``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``
            with the new UIDs.
        template : str, os.PathLike or Template, optional
            A built-in template name (``basic``, ``research``, ``retain-uids``,
            ``clinical-trial``), a template JSON file, or a Template.
        key : str or bytes
            The secret key: the same key gives the same UIDs, date shifts and
            pseudonyms, byte for byte. Required. Only its fingerprint is stored.
        patient_map : dict, pandas.DataFrame or CSV path, optional
            Original PatientID → new PatientID (or (ID, name)); columns ``PatientID``,
            ``new_PatientID`` and optionally ``new_PatientName`` for a table.
        workers : int, optional
            Processes (default: the ``index.workers`` setting, else one per core).
        verify : bool, optional
            Check the output with :func:`dicomflow_lab.anonymize.verify` (independent of
            the engine) and attach the residual table to the report.
        progress : bool, optional
            Show a progress bar.
        cancel : threading.Event, optional
            Set it to stop after the chunks in flight (the report then says
            ``cancelled``; the files it lists were written).
        on_progress : callable, optional
            Called as ``on_progress(done, total)`` after each chunk.
        overwrite : bool, optional
            Replace an output file that exists with other content (default: refuse).
        index : bool, optional
            Index the output folder into this workspace as a new source. Default: yes,
            unless the template retains UIDs (the copies would then share their study and
            series UIDs with the originals in this workspace's views).

        Returns
        -------
        AnonymizationReport
            ``.df`` one row per file (status, new UIDs, action counts, warnings,
            quarantine reason), ``.verification``, ``.run_id``.

        Raises
        ------
        AnonymizationError
            Without a key, with a bad template, or an empty selection. Per-file problems
            do not raise: they are rows of the report.
        """
        from dicomflow_lab import _anonymize_run

        return _anonymize_run.run(
            self,
            selection,
            out=out,
            template=template,
            key=key,
            patient_map=patient_map,
            workers=workers,
            verify=verify,
            progress=progress,
            cancel=cancel,
            on_progress=on_progress,
            overwrite=overwrite,
            index=index,
        )

    def anonymize_panel(
        self, selection: Any = None, *, template: Any = "basic", show_phi: bool | None = None
    ) -> Any:
        """Open the anonymization panel on this workspace (selection, template, key, preview, run).

        Parameters
        ----------
        selection : optional
            A query result (DataFrame with ``file_path``), a Study, files or a UID; default
            the first study (every study and series can be chosen in the panel).
        template : str, os.PathLike or Template, optional
            The starting template.
        show_phi : bool, optional
            Label the choices with patient values (default: the ``display.show_phi`` setting).

        Returns
        -------
        dicomflow_lab.widgets.anonymize_panel.AnonymizePanel
        """
        from dicomflow_lab.widgets.anonymize_panel import AnonymizePanel

        return AnonymizePanel(self, selection, template=template, show_phi=show_phi)

    def anonymization_runs(self) -> pd.DataFrame:
        """Return the anonymization runs, newest first (no patient data, no keys)."""
        return self.sql("SELECT * FROM anonymization_runs ORDER BY started_at DESC")

    def anonymization_map(self, run_id: str, *, key: str | bytes) -> pd.DataFrame:
        """Return a run's mapping (original → new UIDs and patient IDs, date offsets).

        Parameters
        ----------
        run_id : str
            The run, from the report or :meth:`anonymization_runs`.
        key : str or bytes
            The run's key; another key is refused.

        Returns
        -------
        pandas.DataFrame
            Columns ``kind`` (uid / patient), ``original``, ``new``, ``date_offset_days``.
        """
        from dicomflow_lab._anonymize_run import mapping

        return mapping(self, run_id, key)

    def anonymization_audit(self, run_id: str) -> pd.DataFrame:
        """Return a run's per-attribute audit: file, path, tag, action, rule, old value hash.

        Values themselves are never stored, only a keyed hash of each old value.
        """
        return self.private_db.query(
            "SELECT * FROM anonymization_audit WHERE run_id = ? ORDER BY file_path, path",
            [run_id],
        )

    def anonymization_files(self, run_id: str) -> pd.DataFrame:
        """Return a run's per-file results (original path, output path, status, new UIDs)."""
        return self.private_db.query(
            "SELECT * FROM anonymization_files WHERE run_id = ? ORDER BY file_path", [run_id]
        )


@dataclass
class _Totals:
    files_seen: int = 0
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    dicomdirs: list[str] = field(default_factory=list)


def _looks_like_dicomdir(path: str) -> bool:
    if os.path.basename(path).upper() == "DICOMDIR":
        return True
    try:
        with open(path, "rb") as fh:
            if sniff_dicom(fh.read(132)) is None:
                return False
        return is_dicomdir(read_header(path))
    except (OSError, DicomReadError):
        return False


def _progress_bar(total: int, enabled: bool, label: str) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"Indexing {label}", unit="file", leave=True)


def _close_all(db: Database, others: list[Database]) -> None:
    for other in others:
        other.close()
    db.close()


def _wipe(db: Database, folder: Path, others: list[Database]) -> None:
    _close_all(db, others)
    shutil.rmtree(folder, ignore_errors=True)

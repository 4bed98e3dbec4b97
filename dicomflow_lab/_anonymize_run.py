"""Run an anonymization over a selection of files: workers, output, store, verification.

:meth:`dicomflow_lab.Workspace.anonymize` is the public entry point; this module does the
work so that ``workspace.py`` stays a thin facade. The engine
(:mod:`dicomflow_lab.anonymize.engine`) de-identifies one dataset; here files are read,
handed to the engine in chunks (in this process or in the worker pool, both cores),
written atomically under ``<out>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``
(new UIDs only: original folder and file names often hold patient names), and the results
are recorded:

- ``anonymization_runs`` in the workspace database: what was run, with which template and
  which key fingerprint, counts and status — no patient data, safe to share;
- ``anonymization_files``, ``uid_map``, ``patient_map`` and ``anonymization_audit`` in a
  separate database file (``anonymization.duckdb``): the link between originals and
  outputs, kept apart so that the workspace can be shared without it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import secrets
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dicomflow_lab.errors import AnonymizationError, DicomflowError

if TYPE_CHECKING:
    from dicomflow_lab.anonymize.templates import Template
    from dicomflow_lab.workspace import Workspace

__all__ = ["AnonymizationReport", "anonymize_chunk", "run"]

logger = logging.getLogger(__name__)

ACTION_COLUMNS = ("X", "Z", "D", "U", "K", "C", "keep", "replace", "remove", "hash")
FILE_COLUMNS = (
    "file",
    "out_file",
    "status",
    "reason",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    *ACTION_COLUMNS,
    "warnings",
    "pixel_rule",
)


@dataclass
class AnonymizationReport:
    """What :meth:`Workspace.anonymize` did.

    Attributes
    ----------
    run_id : str
        The run's id in ``anonymization_runs`` (and in the mapping tables).
    status : {"done", "cancelled"}
        ``cancelled`` when the cancel event was set; the files listed were written.
    out : pathlib.Path
        The output folder.
    df : pandas.DataFrame
        One row per input file: ``file`` (original), ``out_file``, ``status`` (written,
        quarantined, skipped, failed), ``reason``, the new Study/Series/SOP Instance UIDs,
        a count per action (X Z D U K C and the overrides keep/replace/remove/hash; the
        same counts as ``Anonymizer.preview``, K including the elements the table does
        not list; the audit table lists only the attributes acted on),
        ``warnings`` and ``pixel_rule``.
    verification : pandas.DataFrame or None
        The residual table of :func:`dicomflow_lab.anonymize.verify` (empty = clean), or
        None when not verified.
    seconds : float
        Wall time of the run.
    key_fingerprint : str
        Identifies the key without revealing it.
    """

    run_id: str
    status: str
    out: Path
    df: pd.DataFrame
    verification: pd.DataFrame | None = None
    seconds: float = 0.0
    key_fingerprint: str = ""
    index_report: Any = field(default=None, repr=False)

    def count(self, status: str) -> int:
        """Return how many files ended with ``status`` (written, quarantined ...)."""
        return int((self.df["status"] == status).sum()) if len(self.df) else 0

    @property
    def written(self) -> int:
        """Files written."""
        return self.count("written")

    @property
    def quarantined(self) -> int:
        """Files held back (burned-in text risk without a pixel rule)."""
        return self.count("quarantined")

    @property
    def failed(self) -> int:
        """Files that could not be read or anonymized."""
        return self.count("failed")

    @property
    def verified(self) -> bool | None:
        """True when verification found nothing, False when it found residuals."""
        return None if self.verification is None else self.verification.empty

    def summary(self) -> str:
        """One paragraph: counts, time, verification (no patient data)."""
        n = len(self.df)
        rate = n / self.seconds if self.seconds > 0 else float("nan")
        parts = [
            f"anonymization {self.run_id} {self.status}: {n} file(s) in {self.seconds:.1f} s "
            f"({rate:.0f} files/s) -> {self.written} written, {self.quarantined} quarantined, "
            f"{self.count('skipped')} skipped, {self.failed} failed; out: {self.out}"
        ]
        if self.verification is not None:
            if self.verification.empty:
                parts.append("verification: 0 residual (clean)")
            else:
                parts.append(
                    f"verification: {len(self.verification)} residual row(s) - see .verification"
                )
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    def _repr_html_(self) -> str:
        import html

        head = "<br>".join(html.escape(line) for line in self.summary().splitlines())
        by_status = self.df.groupby("status").size().to_frame("files") if len(self.df) else None
        actions = (
            self.df[list(ACTION_COLUMNS)].sum().to_frame("attributes").T if len(self.df) else None
        )
        tables = "".join(t.to_html() for t in (by_status, actions) if t is not None)
        return f"<div class='dfl-anon-report'><p>{head}</p>{tables}</div>"


# -- worker side ----------------------------------------------------------------------

_ANONYMIZERS: dict[tuple[str, str, str], Any] = {}


def _anonymizer(template_json: str, key: bytes, patient_map: dict[str, Any] | None) -> Any:
    from dicomflow_lab.anonymize.engine import Anonymizer
    from dicomflow_lab.anonymize.keys import fingerprint
    from dicomflow_lab.anonymize.templates import template_from_dict

    cache_key = (
        template_json,
        fingerprint(key),
        json.dumps(patient_map, sort_keys=True, default=str) if patient_map else "",
    )
    found = _ANONYMIZERS.get(cache_key)
    if found is None:
        template = template_from_dict(json.loads(template_json), source="<run>")
        found = Anonymizer(template, key=key, patient_map=patient_map)
        _ANONYMIZERS.clear()  # one run at a time per process: keep a single one
        _ANONYMIZERS[cache_key] = found
    return found


def _read(path: str) -> Any:
    """Read a whole file (pixels kept encoded), refusing truncated or malformed input."""
    from dicomflow_lab.core.dataset import is_dicomdir, read_complete
    from dicomflow_lab.errors import DicomReadError

    try:
        ds = read_complete(path)
    except DicomReadError as exc:
        if exc.kind in ("not_dicom", "empty"):
            raise _Skip(f"not a DICOM file: {exc.reason}") from exc
        raise
    if is_dicomdir(ds):
        raise _Skip("a DICOMDIR (media directory) is not anonymized; its files are")
    return ds


class _Skip(Exception):
    """A file that is deliberately not anonymized (not DICOM, a DICOMDIR)."""


def _target(out_dir: Path, ds: Any) -> Path:
    parts = [str(ds.get(k, "") or "") for k in ("StudyInstanceUID", "SeriesInstanceUID")]
    name = str(ds.get("SOPInstanceUID", "") or "")
    if not all(parts) or not name:
        raise AnonymizationError("the anonymized dataset lacks Study/Series/SOP Instance UID")
    return out_dir.joinpath(*parts, f"{name}.dcm")


def _encode(ds: Any) -> bytes:
    from dicomflow_lab.anonymize.engine import encode

    return encode(ds)


def _one(
    anz: Any, src: str, out_dir: Path, overwrite: bool, writes: list[tuple[Path, bytes]]
) -> dict[str, Any]:
    """Anonymize one file; the bytes to write go to ``writes`` (written by the caller)."""
    row: dict[str, Any] = {"file": src, "out_file": None, "status": "failed", "reason": None}
    try:
        ds = _read(src)
        res = anz.anonymize(ds, source=src)
    except _Skip as exc:
        row.update(status="skipped", reason=str(exc))
        return row
    except (DicomflowError, OSError) as exc:
        row["reason"] = str(exc)
        return row
    except Exception as exc:  # a bug or an unforeseen dataset: one file, not the run
        logger.debug("anonymizing %s failed", src, exc_info=True)
        row["reason"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(
        actions=res.counts(),
        warnings=list(res.warnings),
        pixel_rule=res.pixel_rule,
        records=[
            (
                r.path,
                f"({r.tag >> 16:04X},{r.tag & 0xFFFF:04X})",
                r.keyword,
                r.vr,
                r.action,
                r.rule,
                r.old_hash,
            )
            for r in res.records
        ],
        uid_map=dict(res.uid_map),
        patient=res.patient,
        date_offset_days=res.date_offset_days,
    )
    if res.quarantined:
        row.update(status="quarantined", reason=res.quarantined)
        return row
    out = res.dataset
    try:
        target = _target(out_dir, out)
        data = _encode(out)
        if target.exists() and not overwrite and target.read_bytes() != data:
            raise AnonymizationError(
                f"{target} exists with other content: another input of this run has the same "
                "SOP Instance UID, or an earlier run wrote this folder with another template "
                "or key; pass overwrite=True or another out"
            )
        earlier = next((d for t, d in writes if t == target), None)
        if earlier is not None and earlier != data:
            raise AnonymizationError(
                f"{target}: another input of this run has the same SOP Instance UID with "
                "other content"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        if earlier is None:
            writes.append((target, data))
    except (DicomflowError, OSError, ValueError, TypeError, AttributeError) as exc:
        row["reason"] = f"cannot write the output: {exc}"
        return row
    row.update(
        status="pending",
        checksum=(zlib.crc32(data), len(data)),  # tells apart same-named outputs of a run
        out_file=str(target),
        SOPInstanceUID=str(out.get("SOPInstanceUID", "")),
        SeriesInstanceUID=str(out.get("SeriesInstanceUID", "")),
        StudyInstanceUID=str(out.get("StudyInstanceUID", "")),
    )
    return row


def anonymize_chunk(
    files: Sequence[str],
    out_dir: str,
    template_json: str,
    key: bytes,
    patient_map: dict[str, Any] | None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Anonymize a chunk of files; runs in a worker process or in the caller's.

    Parameters
    ----------
    files : sequence of str
        Original files.
    out_dir : str
        The output folder.
    template_json : str
        The template in its JSON form (``Template.to_dict()``).
    key : bytes
        The secret key.
    patient_map : dict or None
        Original PatientID → new PatientID (or (ID, name)).
    overwrite : bool, optional
        Replace an existing output file whose content differs.

    Returns
    -------
    list of dict
        One result row per file (see ``FILE_COLUMNS``, plus ``records``, ``uid_map``,
        ``patient`` and ``date_offset_days`` for the private tables).
    """
    from dicomflow_lab._fsutil import atomic_write_many, fsync_dir

    anz = _anonymizer(template_json, key, patient_map)
    writes: list[tuple[Path, bytes]] = []
    rows = [_one(anz, src, Path(out_dir), overwrite, writes) for src in files]
    # every file of the chunk durable (parallel fsyncs) before any is renamed into place
    errors = dict(zip((str(t) for t, _ in writes), atomic_write_many(writes), strict=True))
    for row in rows:
        if row["status"] != "pending":
            continue
        error = errors.get(row["out_file"])
        if error is None:
            row["status"] = "written"
        else:
            row.update(status="failed", out_file=None, reason=f"cannot write the output: {error}")
    for folder in sorted({t.parent.parent for t, _ in writes}):
        fsync_dir(folder)
    return rows


# -- caller side ----------------------------------------------------------------------


def _files_of(ws: Workspace, selection: Any) -> list[str]:
    from dicomflow_lab._edit_journal import resolve_selection
    from dicomflow_lab.study import Study, StudyList

    if isinstance(selection, StudyList):
        return [f for s in selection for f in _files_of(ws, s)]
    if isinstance(getattr(selection, "study", None), Study):  # a viewer: its study
        selection = selection.study
    if isinstance(selection, Study):
        return [str(p) for p in selection.instances()["file_path"]]
    files = [str(Path(p).expanduser().absolute()) for p in resolve_selection(ws, selection)]
    if not files:
        raise AnonymizationError(f"the selection {selection!r} holds no file")
    return list(dict.fromkeys(files))


def _as_template(template: Template | str | os.PathLike[str]) -> Template:
    from dicomflow_lab.anonymize.templates import Template, load_template

    return template if isinstance(template, Template) else load_template(template)


def _normalise_patient_map(patient_map: Any) -> dict[str, Any] | None:
    """Read a patient map once (dict, DataFrame or CSV) into a plain, picklable dict."""
    if patient_map is None:
        return None
    from dicomflow_lab.anonymize.pseudonyms import _load_mapping

    return {
        orig: new_id if name is None else (new_id, name)
        for orig, (new_id, name) in _load_mapping(patient_map).items()
    }


def _chunks(files: Sequence[str], workers: int) -> list[list[str]]:
    size = max(1, min(32, math.ceil(len(files) / max(1, workers * 4))))
    return [list(files[i : i + size]) for i in range(0, len(files), size)]


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="anonymize", unit="file")


def _results(
    chunks: list[list[str]],
    args: tuple[Any, ...],
    workers: int,
    cancel: threading.Event | None,
) -> Iterable[list[dict[str, Any]]]:
    """Yield each chunk's rows; stop between waves of chunks when ``cancel`` is set."""
    if workers <= 1:
        for chunk in chunks:
            if cancel is not None and cancel.is_set():
                return
            yield anonymize_chunk(chunk, *args)
        return
    from dicomflow_lab.core._worker import TaskFailed, shared_pool

    pool = shared_pool(workers)
    wave = workers * 2
    for start in range(0, len(chunks), wave):
        if cancel is not None and cancel.is_set():
            return
        batch = chunks[start : start + wave]
        tasks = [(chunk, *args) for chunk in batch]
        for index, result in pool.map_unordered(
            anonymize_chunk, tasks, timeout=lambda task: 120.0 + 10.0 * len(task[0])
        ):
            if isinstance(result, TaskFailed):
                reason = f"the worker process failed on this chunk: {result.reason}"
                yield [
                    {"file": f, "out_file": None, "status": "failed", "reason": reason}
                    for f in batch[index]
                ]
            else:
                yield result


class _Sink:
    """Collects result rows and writes the private tables in batches."""

    def __init__(self, ws: Workspace, run_id: str) -> None:
        self.ws = ws
        self.run_id = run_id
        self.rows: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []
        self.uids: dict[str, str] = {}
        self.patients: dict[str, tuple[str, int | None]] = {}
        self.by_out: dict[str, dict[str, Any]] = {}

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row["status"] == "written":
                self._claim(row)
            self.uids.update(row.pop("uid_map", None) or {})
            patient = row.get("patient")
            if patient and patient[0] is not None:
                self.patients.setdefault(
                    str(patient[0]), (str(patient[1]), row.get("date_offset_days"))
                )
        self.rows.extend(rows)
        self.pending.extend(rows)
        if len(self.pending) >= 256:
            self.flush()

    def _claim(self, row: dict[str, Any]) -> None:
        """Settle two inputs of this run that gave the same output file (same new UIDs).

        Workers write in parallel, so both may have renamed their file into place; the
        file on disk is the one whose checksum it has. The other input becomes
        ``failed`` (or ``skipped`` when both outputs were byte-identical).
        """
        out = row["out_file"]
        earlier = self.by_out.get(out)
        if earlier is None:
            self.by_out[out] = row
            return
        try:
            data = Path(out).read_bytes()
            on_disk = (zlib.crc32(data), len(data))
        except OSError:
            on_disk = None
        if tuple(earlier.get("checksum") or ()) == tuple(row.get("checksum") or ()):
            loser, winner, status = row, earlier, "skipped"
            why = (
                f"has the SOP Instance UID of {Path(winner['file']).name}, another input of "
                "this run, and anonymizes to the same bytes: written once"
            )
        else:
            won = tuple(row.get("checksum") or ()) == on_disk
            winner, loser = (row, earlier) if won else (earlier, row)
            status = "failed"
            why = (
                f"has the SOP Instance UID of {Path(winner['file']).name}, another input of "
                "this run, with other content; that input's output was kept"
            )
        self.by_out[out] = winner
        flushed = not any(r is loser for r in self.pending)
        loser.update(status=status, reason=why, out_file=None, records=[])
        for key in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
            loser[key] = None
        if flushed:
            with self.ws.private_db.transaction() as con:
                con.execute(
                    "UPDATE anonymization_files SET status = ?, reason = ?, out_file = NULL, "
                    "SOPInstanceUID = NULL, SeriesInstanceUID = NULL, StudyInstanceUID = NULL "
                    "WHERE run_id = ? AND file_path = ?",
                    [status, why, self.run_id, loser["file"]],
                )
                con.execute(
                    "DELETE FROM anonymization_audit WHERE run_id = ? AND file_path = ?",
                    [self.run_id, loser["file"]],
                )

    def flush(self) -> None:
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        files = pd.DataFrame(
            {
                "run_id": self.run_id,
                "file_path": [r["file"] for r in rows],
                "out_file": [r.get("out_file") for r in rows],
                "status": [r["status"] for r in rows],
                "reason": [r.get("reason") for r in rows],
                "SOPInstanceUID": [r.get("SOPInstanceUID") for r in rows],
                "SeriesInstanceUID": [r.get("SeriesInstanceUID") for r in rows],
                "StudyInstanceUID": [r.get("StudyInstanceUID") for r in rows],
                "actions": [json.dumps(r.get("actions") or {}, sort_keys=True) for r in rows],
                "warnings": [list(r.get("warnings") or []) for r in rows],
                "pixel_rule": [r.get("pixel_rule") for r in rows],
            }
        )
        # the records go to the audit table and are dropped here: a run of 100,000 files
        # must not keep millions of tuples in memory for its report
        audit = [
            (self.run_id, r["file"], *rec) for r in rows for rec in (r.pop("records", None) or ())
        ]
        audit_df = pd.DataFrame(
            audit,
            columns=[
                "run_id",
                "file_path",
                "path",
                "tag",
                "keyword",
                "vr",
                "action",
                "rule",
                "old_hash",
            ],
        )
        with self.ws.private_db.transaction() as con:
            con.register("files_batch", files)
            con.execute(
                "INSERT INTO anonymization_files SELECT run_id, file_path, out_file, status, "
                "reason, SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID, "
                "CAST(actions AS JSON), CAST(warnings AS VARCHAR[]), pixel_rule FROM files_batch"
            )
            con.unregister("files_batch")
            if len(audit_df):
                con.register("audit_batch", audit_df)
                con.execute("INSERT INTO anonymization_audit SELECT * FROM audit_batch")
                con.unregister("audit_batch")

    def finish(self) -> None:
        self.flush()
        uid_df = pd.DataFrame(
            {
                "run_id": self.run_id,
                "original_uid": list(self.uids),
                "new_uid": list(self.uids.values()),
            }
        )
        pat_df = pd.DataFrame(
            {
                "run_id": self.run_id,
                "original_patient_id": list(self.patients),
                "new_patient_id": [v[0] for v in self.patients.values()],
                "date_offset_days": pd.array([v[1] for v in self.patients.values()], dtype="Int32"),
            }
        )
        with self.ws.private_db.transaction() as con:
            for name, df in (("uid_map", uid_df), ("patient_map", pat_df)):
                if len(df):
                    con.register("map_batch", df)
                    con.execute(f"INSERT INTO {name} SELECT * FROM map_batch")
                    con.unregister("map_batch")

    def report_frame(self) -> pd.DataFrame:
        records = []
        for r in self.rows:
            counts = Counter(r.get("actions") or {})
            records.append(
                {
                    "file": r["file"],
                    "out_file": r.get("out_file"),
                    "status": r["status"],
                    "reason": r.get("reason"),
                    "SOPInstanceUID": r.get("SOPInstanceUID"),
                    "SeriesInstanceUID": r.get("SeriesInstanceUID"),
                    "StudyInstanceUID": r.get("StudyInstanceUID"),
                    **{a: int(counts.get(a, 0)) for a in ACTION_COLUMNS},
                    "warnings": "; ".join(r.get("warnings") or []),
                    "pixel_rule": r.get("pixel_rule"),
                }
            )
        df = pd.DataFrame(records, columns=list(FILE_COLUMNS))
        return df.sort_values("file", kind="stable").reset_index(drop=True)


def run(
    ws: Workspace,
    selection: Any,
    *,
    out: str | os.PathLike[str] | None,
    template: Template | str | os.PathLike[str],
    key: str | bytes | None,
    patient_map: Any,
    workers: int | None,
    verify: bool,
    progress: bool,
    cancel: threading.Event | None,
    on_progress: Callable[[int, int], None] | None,
    overwrite: bool,
    index: bool | None,
) -> AnonymizationReport:
    """Do :meth:`Workspace.anonymize`; see there for the parameters."""
    from dicomflow_lab import __version__
    from dicomflow_lab.anonymize.keys import as_key, fingerprint

    if key is None:
        raise AnonymizationError(
            "anonymize() needs key=...: the secret that makes UIDs, dates and pseudonyms "
            "reproducible (keep it like a password; dfl.anonymize.new_key() makes one)"
        )
    secret = as_key(key)
    tmpl = _as_template(template)
    files = _files_of(ws, selection)
    run_id = f"anon-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    out_dir = Path(out).expanduser().absolute() if out else ws.files_dir / "anon" / run_id
    originals = {os.path.realpath(f) for f in files}
    if os.path.realpath(out_dir) in originals:
        raise AnonymizationError(f"out={out_dir} is one of the input files; choose a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = int(ws.get_setting("index.workers") or os.cpu_count() or 1)
    workers = max(1, min(workers, len(files)))
    started = time.perf_counter()
    template_json = json.dumps(tmpl.to_dict(), sort_keys=True)
    ws.db.query(
        "INSERT INTO anonymization_runs (run_id, started_at, status, template_name, "
        "template_json, key_fingerprint, out_dir, files_in, tool_version) "
        "VALUES (?, now(), 'running', ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            tmpl.name,
            template_json,
            fingerprint(secret),
            str(out_dir),
            len(files),
            __version__,
        ],
    )
    sink = _Sink(ws, run_id)
    bar = _progress(len(files), progress)
    status = "failed"
    try:
        args = (str(out_dir), template_json, secret, _normalise_patient_map(patient_map), overwrite)
        for rows in _results(_chunks(files, workers), args, workers, cancel):
            sink.add(rows)
            if bar is not None:
                bar.update(len(rows))
            if on_progress is not None:
                on_progress(len(sink.rows), len(files))
        status = "cancelled" if cancel is not None and cancel.is_set() else "done"
    finally:
        if bar is not None:
            bar.close()
        sink.finish()
        df = sink.report_frame()
        _record_run(ws, run_id, status, df, started)
    report = AnonymizationReport(
        run_id=run_id,
        status=status,
        out=out_dir,
        df=df,
        seconds=time.perf_counter() - started,
        key_fingerprint=fingerprint(secret),
    )
    written = df[df["status"] == "written"]
    if index is None:
        index = tmpl.uids.remap
    if index and len(written):
        report.index_report = ws.index(out_dir, progress=False)
    if verify:
        report.verification = _verify(df, tmpl, sink.uids)
        ws.db.query(
            "UPDATE anonymization_runs SET verified = ?, residual_rows = ? WHERE run_id = ?",
            [report.verification.empty, len(report.verification), run_id],
        )
    report.seconds = time.perf_counter() - started
    logger.info("%s", report.summary().splitlines()[0])
    return report


def _verify(df: pd.DataFrame, template: Template, uid_map: dict[str, str]) -> pd.DataFrame:
    from dicomflow_lab.anonymize.verify import verify

    written = df[df["status"] == "written"]
    quarantined = df[df["status"] == "quarantined"]["file"].tolist()
    return verify(
        written["file"].tolist(),
        written["out_file"].tolist(),
        template=template,
        uid_map=uid_map,
        quarantined=quarantined,
    )


def _record_run(ws: Workspace, run_id: str, status: str, df: pd.DataFrame, started: float) -> None:
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    ws.db.query(
        "UPDATE anonymization_runs SET finished_at = now(), status = ?, written = ?, "
        "quarantined = ?, skipped = ?, failed = ?, seconds = ? WHERE run_id = ?",
        [
            status,
            int(counts.get("written", 0)),
            int(counts.get("quarantined", 0)),
            int(counts.get("skipped", 0)),
            int(counts.get("failed", 0)),
            time.perf_counter() - started,
            run_id,
        ],
    )


def mapping(ws: Workspace, run_id: str, key: str | bytes) -> pd.DataFrame:
    """Return a run's UID and patient mapping, for the holder of its key.

    Raises
    ------
    AnonymizationError
        If the run is unknown or the key is not the run's key.
    """
    from dicomflow_lab.anonymize.keys import as_key, fingerprint

    found = ws.sql("SELECT key_fingerprint FROM anonymization_runs WHERE run_id = ?", [run_id])
    if found.empty:
        raise AnonymizationError(f"no anonymization run {run_id!r} in this workspace")
    if fingerprint(as_key(key)) != found["key_fingerprint"].iloc[0]:
        raise AnonymizationError(
            f"this key is not the key of run {run_id!r} (fingerprints differ); the mapping "
            "is only given to the holder of the run's key"
        )
    return ws.private_db.query(
        "SELECT 'uid' AS kind, original_uid AS original, new_uid AS new, "
        "NULL::INTEGER AS date_offset_days FROM uid_map WHERE run_id = ? "
        "UNION ALL SELECT 'patient', original_patient_id, new_patient_id, date_offset_days "
        "FROM patient_map WHERE run_id = ? ORDER BY kind, original",
        [run_id, run_id],
    )

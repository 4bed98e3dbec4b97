"""The anonymization panel: a thin widget over :meth:`Workspace.anonymize` and the engine.

The user picks a selection (a study, a series, or the query result the panel was opened
with), a template (a built-in or a JSON text) and the ten PS3.15 options as toggles, types
the secret key, previews the actions on a sample instance, runs, and reads the report and
the verification result (``static/anonymize_panel.js``).

What never enters the synced traits (which a saved notebook keeps):

- the **key**: it travels only inside a ``preview`` or ``run`` request, is used by the
  handler or handed to the job thread, and is dropped when they finish; no reply, trait,
  log line or error message carries it (error texts are scrubbed of it just in case);
- patient values: the preview's before/after values are sent in ``preview_rows`` replies
  only when the user asks for them; selections are named by opaque keys (``"st1"``,
  ``"se2"``, ``"q"``) whose labels hold identifying values only when ``display.show_phi``
  is on; file names, paths and residual rows travel by message on request.

The request kinds and their field rules are
:data:`~dicomflow_lab.widgets._messages.ANONYMIZE_KINDS`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import traitlets as t

from dicomflow_lab.anonymize import (
    Option,
    Template,
    TemplateError,
    list_templates,
    load_template,
    template_from_dict,
    template_from_options,
)
from dicomflow_lab.widgets._base import BaseWidget, Reply
from dicomflow_lab.widgets._messages import ANONYMIZE_KINDS, Request
from dicomflow_lab.widgets._static import panel_module, panel_style

if TYPE_CHECKING:  # pragma: no cover
    from dicomflow_lab.workspace import Workspace

__all__ = ["AnonymizePanel"]

logger = logging.getLogger(__name__)

#: Most studies and series listed as choices (the rest: open the panel on a query result).
MAX_CHOICES = 1000
_MAX_VALUE_CHARS = 256
_PROGRESS_INTERVAL_S = 0.1
_ACTIONS = ("X", "Z", "D", "U", "K", "C", "keep", "replace", "remove", "hash")
_NOT_WRITTEN = ("failed", "skipped")
_DATE_OPTIONS = (Option.RETAIN_LONG_FULL_DATES, Option.RETAIN_LONG_MODIFIED_DATES)
_HIDDEN = "•••"


class AnonymizePanel(BaseWidget):
    """Anonymize a study, a series or a query result with a template, a key and a preview.

    Parameters
    ----------
    workspace : Workspace
        The workspace whose studies and series are offered, and whose
        :meth:`~dicomflow_lab.workspace.Workspace.anonymize` runs the job.
    selection : optional
        A query result (a DataFrame with a ``file_path`` column, e.g. ``ws.instances(...)``),
        a :class:`~dicomflow_lab.study.Study`, a file, a folder, a list of files, or a
        Study/Series Instance UID of the index. It becomes the choice ``"q"`` and is
        selected; default: the first study of the workspace.
    template : Template, str or path-like, optional
        The starting template: a built-in name (``"basic"``, ``"research"`` ...), a
        template JSON file or a :class:`~dicomflow_lab.anonymize.Template`.
    show_phi : bool, optional
        Label the choices with patient name, ID and study date; default the
        ``display.show_phi`` setting. Off, the labels hold descriptions and counts only.

    Attributes
    ----------
    choices : list of dict
        ``{"key", "kind" ("query", "study", "series"), "label", "n_files"}``.
    selection_key : str
        The chosen selection's key.
    template_base, template_name, template_description : str
        The base template (a built-in name or ``"custom"``) and the effective template.
    options : list of str
        The options chosen (:class:`~dicomflow_lab.anonymize.Option` values).
    n_overrides : int
        Per-tag overrides of the effective template.
    preview_total : int
        Rows of the last preview (0: none yet).
    job_state, job_done, job_total, job_message
        The run: ``idle``, ``running``, ``done``, ``error`` or ``cancelled``; files done out
        of total; a message without patient data (an error's full text is in
        :attr:`job_error` and is pushed to the browser as a ``{"kind": "job"}`` message).
    summary : dict
        The last run's report in numbers: ``run_id``, ``files``, ``written``,
        ``quarantined``, ``warnings``, ``counts`` (action → count), ``residual`` (rows
        left by the verification; ``None`` if it did not run).
    """

    _esm = panel_module("anonymize_panel.js")
    _css = panel_style("anonymize_panel.css")
    _request_kinds = ANONYMIZE_KINDS

    choices = t.List(t.Dict()).tag(sync=True)
    selection_key = t.Unicode("").tag(sync=True)
    n_files = t.Int(0).tag(sync=True)
    show_phi = t.Bool(False).tag(sync=True)
    template_base = t.Unicode("basic").tag(sync=True)
    template_name = t.Unicode("basic").tag(sync=True)
    template_description = t.Unicode("").tag(sync=True)
    options = t.List(t.Unicode()).tag(sync=True)
    n_overrides = t.Int(0).tag(sync=True)
    preview_total = t.Int(0).tag(sync=True)
    job_state = t.Unicode("idle").tag(sync=True)
    job_done = t.Int(0).tag(sync=True)
    job_total = t.Int(0).tag(sync=True)
    job_message = t.Unicode("").tag(sync=True)
    summary = t.Dict().tag(sync=True)

    def __init__(
        self,
        workspace: Workspace,
        selection: Any = None,
        *,
        template: Template | str | os.PathLike[str] = "basic",
        show_phi: bool | None = None,
        **kwargs: Any,
    ) -> None:
        self._workspace = workspace
        self._lock = threading.RLock()
        self._query_files: list[str] | None = None
        if selection is not None:
            self._query_files = _resolve(workspace, selection)
        self._uid_of: dict[str, str] = {}
        self._files_cache: dict[str, list[str]] = {}
        self._base: Template = _as_template(template)
        self._template: Template = self._base
        self._preview: pd.DataFrame | None = None
        self._job: threading.Thread | None = None
        self._cancel = threading.Event()
        self._last_progress = 0.0
        #: The last run's :class:`AnonymizationReport` (``ws.anonymize``'s result), or None.
        self.report: Any = None
        #: The last run's error message (also pushed to the browser), or None.
        self.job_error: str | None = None
        if show_phi is None:
            show_phi = bool(workspace.get_setting("display.show_phi"))
        kwargs.setdefault("template_base", _base_label(template))
        super().__init__(show_phi=show_phi, **kwargs)
        self._list_choices()
        first = "q" if self._query_files is not None else ""
        if not first and self.choices:
            first = self.choices[0]["key"]
        if first:
            self.select(first)
        self._show_template()

    # -- Python API ----------------------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        """The workspace the panel works on."""
        return self._workspace

    @property
    def template(self) -> Template:
        """The effective template (the base with the chosen options); settable."""
        return self._template

    @template.setter
    def template(self, value: Template | str | os.PathLike[str]) -> None:
        self._base = self._template = _as_template(value)
        self.template_base = _base_label(value)
        self._preview = None
        self._show_template()

    @property
    def files(self) -> list[str]:
        """The files of the current selection, sorted."""
        return list(self._files(self.selection_key)) if self.selection_key else []

    @property
    def preview_frame(self) -> pd.DataFrame | None:
        """The last preview (patient values included; never synced), or None."""
        return self._preview

    def select(self, key: str) -> int:
        """Choose a selection by its key (see :attr:`choices`); return its file count."""
        files = self._files(key)
        with self.hold_sync():
            self.selection_key = key
            self.n_files = len(files)
            self.preview_total = 0
        self._preview = None
        return len(files)

    def set_options(self, *options: Option | str) -> Template:
        """Set the chosen options (the base template's overrides are kept).

        Raises
        ------
        ValueError
            If an option is unknown, or both date options are chosen.
        """
        chosen = frozenset(Option.parse(o) for o in options)
        if all(o in chosen for o in _DATE_OPTIONS):
            raise ValueError(
                "choose one of the longitudinal temporal options: retain full dates, "
                "or retain modified (shifted) dates"
            )
        self._template = _with_options(self._base, chosen)
        self._preview = None
        self._show_template()
        return self._template

    def preview(self, key: str | bytes, sample: int = 0) -> pd.DataFrame:
        """Return the actions on one instance of the selection (nothing is written).

        Parameters
        ----------
        key : str or bytes
            The secret key (not kept after the call).
        sample : int, optional
            Which file of the selection, from 0.

        Returns
        -------
        pandas.DataFrame
            :meth:`Anonymizer.preview`'s table: path, tag, keyword, vr, action, rule,
            before, after.
        """
        _check_key(key)
        files = self._files(self.selection_key)
        if not files:
            raise ValueError("the selection has no files to preview")
        if sample >= len(files):
            raise LookupError(f"sample {sample} is out of range (0..{len(files) - 1})")
        from dicomflow_lab.anonymize.engine import Anonymizer

        frame = Anonymizer(self._template, key=key).preview(files[sample])
        self._preview = frame.reset_index(drop=True)
        self.preview_total = len(frame)
        return frame

    def run(self, key: str | bytes, out: str | os.PathLike[str] | None = None) -> Path | None:
        """Start anonymizing the selection in a background thread.

        Parameters
        ----------
        key : str or bytes
            The secret key; handed to the job and not kept afterwards.
        out : path-like, optional
            A new (or empty) output folder; relative paths are under the workspace's
            ``files_dir``. Default: the workspace's ``files_dir/anon/<run id>``.

        Returns
        -------
        pathlib.Path or None
            The output folder, or None for the workspace's default (then
            ``panel.report.out`` names it once the run is done).

        Notes
        -----
        Progress is in the ``job_*`` traits; :meth:`wait` joins the job and :attr:`report`
        holds the result (:class:`~dicomflow_lab.AnonymizationReport`).
        """
        _check_key(key)
        if self._job is not None and self._job.is_alive():
            raise ValueError("a run is already going on; wait for it or cancel it")
        files = self._files(self.selection_key) if self.selection_key else []
        if not files:
            raise ValueError("the selection has no files to anonymize")
        if not callable(getattr(self._workspace, "anonymize", None)):
            raise ValueError("this workspace cannot anonymize: Workspace.anonymize is missing")
        folder = self._out_folder("" if out is None else os.fspath(out))
        self._cancel = threading.Event()
        self._last_progress = 0.0
        self.job_error = None
        self.report = None
        with self.hold_sync():
            self.job_state, self.job_done, self.job_total = "running", 0, len(files)
            self.job_message = f"starting: {len(files)} file(s)…"
            self.summary = {}
        self._job = threading.Thread(
            target=self._run_job,
            args=(list(files), folder, self._template, key, self._cancel),
            name="dfl-anonymize-panel",
            daemon=True,
        )
        self._job.start()
        return folder

    def cancel(self) -> None:
        """Ask the running job to stop (it stops between files)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for the running job to end; return :attr:`report` (None if it failed)."""
        if self._job is not None:
            self._job.join(timeout)
        return self.report

    def refresh(self) -> None:
        """List the workspace's studies and series again (e.g. after indexing)."""
        current = self._uid_of.get(self.selection_key)
        self._list_choices()
        if current is not None:
            for key, uid in self._uid_of.items():
                if uid == current and key[:2] == self.selection_key[:2]:
                    if key != self.selection_key:  # same study or series, new key
                        self.select(key)
                    else:
                        self.n_files = len(self._files(key))
                    return
        if self.selection_key in {c["key"] for c in self.choices}:
            return
        if self.choices:
            self.select(self.choices[0]["key"])
        else:
            self._clear_selection()

    # -- state -----------------------------------------------------------------------
    def _clear_selection(self) -> None:
        with self.hold_sync():
            self.selection_key, self.n_files, self.preview_total = "", 0, 0

    def _list_choices(self) -> None:
        ws = self._workspace
        choices: list[dict[str, Any]] = []
        uid_of: dict[str, str] = {}
        if self._query_files is not None:
            n = len(self._query_files)
            label = f"The selection the panel was opened with ({n} file{'s' * (n != 1)})"
            choices.append({"key": "q", "kind": "query", "label": label, "n_files": n})
        studies = ws.studies().head(MAX_CHOICES)
        number_of: dict[str, int] = {}
        for i, row in enumerate(studies.itertuples(index=False), start=1):
            key = f"st{i}"
            uid_of[key] = row.StudyInstanceUID
            number_of[row.StudyInstanceUID] = i
            n = _int(row.n_instances)
            choices.append(
                {"key": key, "kind": "study", "label": self._study_label(i, row), "n_files": n}
            )
        series = ws.series().head(MAX_CHOICES)
        for i, row in enumerate(series.itertuples(index=False), start=1):
            key = f"se{i}"
            uid_of[key] = row.SeriesInstanceUID
            study_no = number_of.get(row.StudyInstanceUID)
            label = " ".join(
                p
                for p in (
                    f"Series {_text(row.SeriesNumber, '?')}",
                    _text(row.Modality),
                    _text(row.SeriesDescription) or "(no description)",
                    f"· {_int(row.n_instances)} inst.",
                    f"(study {study_no})" if study_no else "",
                )
                if p
            )
            choices.append(
                {"key": key, "kind": "series", "label": label, "n_files": _int(row.n_instances)}
            )
        with self._lock:
            self._uid_of = uid_of
            self._files_cache = {}
        self.choices = choices

    def _study_label(self, number: int, row: Any) -> str:
        parts = [f"Study {number}:"]
        if self.show_phi:
            parts.append(
                f"{_text(row.PatientName, _HIDDEN)} ({_text(row.PatientID, _HIDDEN)}) "
                f"{_text(row.StudyDate)} —"
            )
        parts += [
            _text(row.StudyDescription) or "(no description)",
            "·",
            "/".join(m for m in _text(row.modalities).split("\\") if m) or "?",
            f"· {_int(row.n_series)} series, {_int(row.n_instances)} inst.",
        ]
        return " ".join(parts)

    def _files(self, key: str) -> list[str]:
        with self._lock:
            if key in self._files_cache:
                return self._files_cache[key]
            if key == "q" and self._query_files is not None:
                files = self._query_files
            elif key in self._uid_of and key.startswith("st"):
                files = self._workspace.instances(study_uid=self._uid_of[key])["file_path"]
            elif key in self._uid_of:
                files = self._workspace.instances(self._uid_of[key])["file_path"]
            else:
                raise LookupError(f"{key!r} is not a selection of this panel; refresh the list")
            self._files_cache[key] = sorted(str(f) for f in files)
            return self._files_cache[key]

    def _show_template(self) -> None:
        tpl = self._template
        with self.hold_sync():
            self.template_name = tpl.name
            self.template_description = tpl.description
            self.options = [o.value for o in Option if o in tpl.options]
            self.n_overrides = len(tpl.overrides)
            self.preview_total = 0

    def _out_folder(self, typed: str) -> Path | None:
        text = typed.strip()
        if not text:
            return None  # the workspace's default: files_dir/anon/<run id>
        folder = Path(os.path.expanduser(text))
        if not folder.is_absolute():
            folder = self._workspace.files_dir / folder
        folder = Path(os.path.normpath(folder))
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise ValueError(
                f"the output folder {folder} is not empty: choose a new folder for each run"
            )
        return folder

    # -- handlers --------------------------------------------------------------------
    def _handle_info(self, _request: Request) -> Reply:
        return {
            "default_out": str(self._workspace.files_dir / "anon" / "<run id>"),
            "templates": _builtins(),
            "options": [{"value": o.value, "title": o.title, "code": o.code} for o in Option],
        }, []

    def _handle_refresh(self, _request: Request) -> Reply:
        self.refresh()
        return {"n_choices": len(self.choices)}, []

    def _handle_select(self, request: Request) -> Reply:
        return {"n_files": self.select(request["selection"])}, []

    def _handle_template(self, request: Request) -> Reply:
        base = request["base"]
        if base == "custom":
            self._base = _template_from_json(request["json"])
        elif base in _builtins():
            self._base = load_template(base)
        else:
            raise ValueError(f"no built-in template {base!r}; known: {', '.join(_builtins())}")
        self._template = self._base
        self.template_base = base
        self._preview = None
        self._show_template()
        return {"template": self._template_info()}, []

    def _handle_options(self, request: Request) -> Reply:
        self.set_options(*request["options"])
        return {"template": self._template_info()}, []

    def _handle_preview(self, request: Request) -> Reply:
        key = request["key"]
        try:
            frame = self.preview(key, request["sample"])
        except Exception as exc:
            raise _scrubbed(exc, key) from None
        counts = _value_counts(frame["action"]) if "action" in frame else {}
        file = self._files(self.selection_key)[request["sample"]]
        return {
            "total": len(frame),
            "counts": counts,
            "sample": request["sample"],
            "n_files": self.n_files,
            "file": _short(file, self._files(self.selection_key)),
        }, []

    def _handle_preview_rows(self, request: Request) -> Reply:
        frame = self._preview
        if frame is None:
            raise LookupError("no preview yet: type the key and press Preview")
        q = request["query"].strip().lower()
        if q:
            hay = (
                frame[["path", "tag", "keyword", "action", "rule"]]
                .astype(str)
                .agg(" ".join, axis=1)
                .str.lower()
            )
            frame = frame[hay.str.contains(q, regex=False)]
        offset, limit = request["offset"], request["limit"]
        rows = []
        for rec in frame.iloc[offset : offset + limit].to_dict("records"):
            row = {k: _text(rec.get(k)) for k in ("path", "tag", "keyword", "vr", "action", "rule")}
            if request["values"]:
                row["before"] = _value(rec.get("before"))
                row["after"] = _value(rec.get("after"))
            rows.append(row)
        return {"rows": rows, "total": len(frame), "offset": offset}, []

    def _handle_run(self, request: Request) -> Reply:
        key = request["key"]
        try:
            folder = self.run(key, request["out"])
        except Exception as exc:
            raise _scrubbed(exc, key) from None
        return {"started": True, "out": "" if folder is None else str(folder)}, []

    def _handle_cancel(self, _request: Request) -> Reply:
        self.cancel()
        return {"cancelled": self.job_state == "running"}, []

    def _handle_report(self, request: Request) -> Reply:
        rows = self._report_rows(request["section"])
        offset, limit = request["offset"], request["limit"]
        return {
            "rows": rows[offset : offset + limit],
            "total": len(rows),
            "offset": offset,
            "out": _text(getattr(self.report, "out", None)),
        }, []

    def _template_info(self) -> dict[str, Any]:
        return {
            "name": self.template_name,
            "description": self.template_description,
            "options": list(self.options),
            "n_overrides": self.n_overrides,
        }

    # -- the run -----------------------------------------------------------------------
    def _on_progress(self, done: int, total: int) -> None:
        with self._lock:  # the runner may report from several threads
            now = time.monotonic()
            if done < total and now - self._last_progress < _PROGRESS_INTERVAL_S:
                return
            self._last_progress = now
            with self.hold_sync():
                self.job_done, self.job_total = int(done), int(total)
                self.job_message = f"{done} / {total} files"

    def _run_job(
        self,
        files: list[str],
        out: Path | None,
        template: Template,
        key: str | bytes,
        cancel: threading.Event,
    ) -> None:
        try:
            report = self._workspace.anonymize(
                files,
                out=None if out is None else str(out),
                template=template,
                key=key,
                verify=True,
                progress=False,
                cancel=cancel,
                on_progress=self._on_progress,
            )
        except Exception as exc:
            clean = _scrubbed(exc, key)
            # never a traceback that could quote the key: the scrubbed message only
            logger.debug("anonymization stopped: %s: %s", type(exc).__name__, clean)
            if cancel.is_set():
                with self.hold_sync():
                    self.job_state = "cancelled"
                    self.job_message = f"cancelled after {self.job_done} file(s)"
                return
            # the message may name files (patient data): by message, not in the trait
            self.job_error = str(clean)
            with self.hold_sync():
                self.job_state = "error"
                self.job_message = f"failed after {self.job_done} file(s): {type(exc).__name__}"
            self.send({"kind": "job", "state": "error", "message": self.job_error})
            return
        finally:
            del key
        self.report = report
        summary = _summarize(report, len(files), cancel.is_set())
        cancelled = summary["status"] == "cancelled"
        with self.hold_sync():
            self.summary = summary
            self.job_done = self.job_done if cancelled else summary["files"]
            self.job_state = "cancelled" if cancelled else "done"
            verdict = (
                "not verified"
                if summary["residual"] is None
                else f"verified: {summary['residual']} residual"
            )
            failed = f", {summary['failed']} failed or skipped" if summary["failed"] else ""
            self.job_message = (
                ("cancelled: " if cancelled else "")
                + f"wrote {summary['written']} file(s), {summary['quarantined']} quarantined"
                + f"{failed}; {verdict}"
            )
        try:
            self.refresh()  # the output is indexed as a new source
        except Exception:  # the report stands even if the listing fails
            logger.debug("could not refresh the choices after the run", exc_info=True)

    def _report_rows(self, section: str) -> list[dict[str, Any]]:
        report = self.report
        if report is None:
            return []
        df = getattr(report, "df", None)
        if df is None:
            df = pd.DataFrame(columns=["file"])
        files = [str(f) for f in df["file"]] if "file" in df else []
        out = _text(getattr(report, "out", None))

        def name(path: Any) -> str:
            text = _text(path)
            if out and text.startswith(out.rstrip(os.sep) + os.sep):
                return os.path.relpath(text, out)  # an output: new UIDs only
            return _short(text, files)

        if section == "residual":
            ver = getattr(report, "verification", None)
            if ver is None or len(ver) == 0:
                return []
            cols = ("check", "file", "location", "attribute", "kind", "detail")
            rows = []
            for rec in ver.to_dict("records"):
                row = {c: _text(rec.get(c)) for c in cols}
                row["file"] = name(row["file"])
                rows.append(row)
            return rows
        rows = []
        for rec in df.to_dict("records"):
            status = _text(rec.get("status"))
            if section == "warnings":
                rows += [
                    {"file": name(rec.get("file")), "warning": w}
                    for w in _warnings_of(rec.get("warnings"))
                ]
            elif (section == "quarantined" and status == "quarantined") or (
                section == "failed" and status in _NOT_WRITTEN
            ):
                rows.append(
                    {
                        "file": name(rec.get("file")),
                        "status": status,
                        "reason": _text(rec.get("reason")),
                    }
                )
        return rows


# -- helpers ---------------------------------------------------------------------------


def _builtins() -> list[str]:
    return list_templates()


def _base_label(value: Any) -> str:
    """Return the template selector's value: a built-in's name, else ``"custom"``."""
    return value if isinstance(value, str) and value in _builtins() else "custom"


def _as_template(value: Template | str | os.PathLike[str]) -> Template:
    if isinstance(value, Template):
        return value
    return load_template(value)


def _template_from_json(text: str) -> Template:
    source = "the panel's template JSON"
    if not text.strip():
        raise TemplateError(f"{source}: empty: paste a template JSON object")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    return template_from_dict(data, source=source, default_name="custom")


def _with_options(base: Template, chosen: frozenset[Option]) -> Template:
    """Return `base` with the options `chosen`, keeping its overrides and rules."""
    if chosen == base.options:
        return base
    if not (base.overrides or base.safe_private or base.pixel_rules):
        return template_from_options(*chosen)
    data = base.to_dict()
    # dates and uids follow from the options (anything else is a contradiction)
    data.pop("dates", None)
    data.pop("uids", None)
    data["options"] = [o.value for o in Option if o in chosen]
    data["name"] = base.name if base.name.endswith("+options") else f"{base.name}+options"
    return template_from_dict(data, source=f"{base.source} with the panel's options")


def _check_key(key: Any) -> None:
    if not isinstance(key, (str, bytes)) or not key:
        raise ValueError(
            "type the secret key first: it must not be empty (keep it safe: the same key "
            "gives the same UIDs, pseudonyms and date shifts; dfl.anonymize.new_key() makes one)"
        )


def _scrubbed(exc: BaseException, key: Any) -> Exception:
    """Return `exc` (or a copy of its kind) without the key in its message."""
    text = str(exc)
    secret = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key or "")
    if not secret or secret not in text:
        return exc if isinstance(exc, Exception) else RuntimeError(text)
    clean = text.replace(secret, _HIDDEN)
    return ValueError(clean) if not isinstance(exc, LookupError) else LookupError(clean)


def _resolve(workspace: Workspace, selection: Any) -> list[str]:
    if hasattr(selection, "instances") and hasattr(selection, "workspace"):  # a Study
        frame = selection.instances()
        return sorted(str(p) for p in frame["file_path"])
    from dicomflow_lab._edit_journal import resolve_selection

    return sorted(str(p) for p in resolve_selection(workspace, selection))


def _summarize(report: Any, n_files: int, cancel_set: bool = False) -> dict[str, Any]:
    """Return the report in numbers (no patient data): counts by status and action."""
    df = getattr(report, "df", None)
    if df is None:
        df = pd.DataFrame()
    status = df["status"].astype(str) if "status" in df else pd.Series(dtype=str)
    verification = getattr(report, "verification", None)
    run_id = getattr(report, "run_id", None)
    return {
        "run_id": None if run_id is None else str(run_id),
        "status": _text(getattr(report, "status", None), "cancelled" if cancel_set else "done"),
        "files": len(df) if len(df) else n_files,
        "written": int((status == "written").sum()),
        "quarantined": int((status == "quarantined").sum()),
        "failed": int(status.isin(_NOT_WRITTEN).sum()),
        "warnings": int(sum(len(_warnings_of(w)) for w in df["warnings"]))
        if "warnings" in df
        else 0,
        "counts": {
            a: int(pd.to_numeric(df[a]).fillna(0).sum())
            for a in _ACTIONS
            if a in df and pd.to_numeric(df[a]).fillna(0).sum() > 0
        },
        "residual": None if verification is None else len(verification),
    }


def _warnings_of(value: Any) -> list[str]:
    """Split a report's warnings cell (``"; "``-joined text, or a list) into warnings."""
    if isinstance(value, str):
        return [w for w in (p.strip() for p in value.split("; ")) if w]
    if value is None or isinstance(value, float):
        return []
    return [str(w) for w in value if _present(w)]


def _present(value: Any) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def _value_counts(column: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column.astype(str).value_counts().sort_index().items()}


def _short(path: str, files: list[str]) -> str:
    """Name a file relative to the common folder of `files` (paths stay in the kernel)."""
    if not path:
        return ""
    try:
        root = os.path.commonpath([os.path.dirname(f) for f in files]) if files else ""
        rel = os.path.relpath(path, root) if root else os.path.basename(path)
    except ValueError:
        rel = os.path.basename(path)
    return rel if not rel.startswith("..") else os.path.basename(path)


def _text(value: Any, default: str = "") -> str:
    return str(value) if _present(value) else default


def _value(value: Any) -> str | None:
    """Return a display value: None when absent or removed, "" when emptied (Z)."""
    if isinstance(value, str) and not value:
        return ""
    if not _present(value):
        return None
    text = str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def _int(value: Any) -> int:
    try:
        return int(value) if _present(value) else 0
    except (TypeError, ValueError):
        return 0

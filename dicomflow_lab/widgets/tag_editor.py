"""The tag table editor panel: a thin widget over :class:`dicomflow_lab.editor.TagEditor`.

The dataset's values are patient data: they travel by custom message only, a page of rows
at a time, when the browser asks (``static/tag_editor.js``), and never sit in synced
traits (which a notebook saves). Traits hold counts and flags only.

Requests (browser → kernel), each answered by exactly one ``<kind>:reply``::

    {"kind": "rows", "id", "offset", "limit", "query", "field", "expand_all", "toggled"}
        → {"rows": [Row, ...], "total", "offset"}
    {"kind": "info", "id"}              → {"file", "default_out", "can_apply"}
    {"kind": "validate", "id", "path", "value", "vr"}
        → {"valid": bool, "message": str}        (an invalid value is not an error reply)
    {"kind": "edit", "id", "op", "path", "value", "vr", "index"}  → {"pending"}
    {"kind": "undo" | "redo" | "cancel", "id"}                     → {"pending"}
    {"kind": "changes", "id"}  → {"changes": [{"file", "path", "keyword", "old", "new"}], "more"}
    {"kind": "save", "id", "out", "overwrite", "regenerate_uids"}  → {"written", "folder"}
    {"kind": "apply", "id", "scope", "out", "overwrite", "regenerate_uids"} → {"started"}
        (progress in the ``job_*`` traits)

``Row`` is :class:`~dicomflow_lab.core.tags.TagRow` as a dict, plus ``is_item`` (a
synthetic row per sequence item, path ``...[i]``), ``expanded`` and ``changed``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import asdict
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import traitlets as t

from dicomflow_lab.widgets._base import BaseWidget, Reply
from dicomflow_lab.widgets._messages import Field, Kinds, Request
from dicomflow_lab.widgets._static import panel_module, panel_style

if TYPE_CHECKING:  # pragma: no cover
    from dicomflow_lab.editor import TagEditor
    from dicomflow_lab.widgets.viewer import Viewer
    from dicomflow_lab.workspace import Workspace

__all__ = ["TAG_EDITOR_KINDS", "TagEditorPanel"]

logger = logging.getLogger(__name__)

PAGE_LIMIT = 500
_MAX_TEXT = 4096
_PATH_CHARS = 512
_MAX_CHANGES = 500
_HEX = re.compile(r"[^0-9a-f]")

_PATH = Field("str", max_len=_PATH_CHARS)
_VALUE = Field("str_or_null", required=False, max_len=65536)
_VR = Field("str_or_null", required=False, pattern=re.compile(r"[A-Z]{2}"))
_OUT = Field("str", required=False, default="", max_len=_MAX_TEXT)
_FLAG = Field("bool", required=False, default=False)

#: The tag editor's requests and their field rules (see the module docstring).
TAG_EDITOR_KINDS: Kinds = MappingProxyType(
    {
        "rows": {
            "offset": Field("int", min=0, max=10_000_000),
            "limit": Field("int", min=1, max=PAGE_LIMIT),
            "query": Field("str", required=False, default="", max_len=256),
            "field": Field(
                "str", required=False, default="any", choices=("any", "tag", "keyword", "value")
            ),
            "expand_all": Field("bool", required=False, default=True),
            "toggled": Field(
                "str_list", required=False, default=[], max_items=2000, max_len=_PATH_CHARS
            ),
        },
        "info": {},
        "validate": {"path": _PATH, "value": _VALUE, "vr": _VR},
        "edit": {
            "op": Field("str", choices=("set", "add", "delete", "add_item", "remove_item")),
            "path": _PATH,
            "value": _VALUE,
            "vr": _VR,
            "index": Field("int", required=False, default=0, min=0, max=1_000_000),
        },
        "undo": {},
        "redo": {},
        "cancel": {},
        "changes": {},
        "save": {"out": _OUT, "overwrite": _FLAG, "regenerate_uids": _FLAG},
        "apply": {
            "scope": Field("str", choices=("series", "study")),
            "out": _OUT,
            "overwrite": _FLAG,
            "regenerate_uids": _FLAG,
        },
    }
)


class TagEditorPanel(BaseWidget):
    """The whole dataset as an editable table, with validated edits, undo and save-as.

    Parameters
    ----------
    source : path-like, pydicom Dataset, TagEditor, Viewer or Study
        What to edit: a DICOM file, a dataset, an existing
        :class:`~dicomflow_lab.editor.TagEditor`, the viewer's current instance
        (see :meth:`for_viewer`) or the first instance of a study (``dfl.open(...,
        view=False)``).
    workspace : Workspace, optional
        The workspace used for "Apply to series/study" (default: the viewer's or study's,
        else the process-wide default one).

    Attributes
    ----------
    editor : TagEditor
        The backend; its Python API (``set``, ``preview``, ``save`` ...) stays usable.
    n_rows, n_pending : int
        Elements in the dataset; pending edits.
    can_undo, can_redo, can_apply : bool
        Button states.
    revision : int
        Bumped whenever the dataset changes (the browser then reloads its pages).
    job_state, job_done, job_total, job_message
        The "apply to series/study" job: ``idle``, ``running``, ``done``, ``error`` or
        ``cancelled``; files done out of total; a message without patient data (an
        error's full text, which may name files, is in ``job_error`` and is pushed to the
        browser as ``{"kind": "job", "state": "error", "message"}``).
    """

    _esm = panel_module("tag_editor.js")
    _css = panel_style("tag_editor.css")
    _request_kinds = TAG_EDITOR_KINDS

    n_rows = t.Int(0).tag(sync=True)
    n_pending = t.Int(0).tag(sync=True)
    can_undo = t.Bool(False).tag(sync=True)
    can_redo = t.Bool(False).tag(sync=True)
    can_apply = t.Bool(False).tag(sync=True)
    revision = t.Int(0).tag(sync=True)
    job_state = t.Unicode("idle").tag(sync=True)
    job_done = t.Int(0).tag(sync=True)
    job_total = t.Int(0).tag(sync=True)
    job_message = t.Unicode("").tag(sync=True)

    def __init__(self, source: Any, *, workspace: Workspace | None = None, **kwargs: Any) -> None:
        from dicomflow_lab.editor import TagEditor

        self._workspace = workspace
        self._file: str | None = None
        if hasattr(source, "_locate") and hasattr(source, "series_key"):  # a Viewer
            self._workspace = workspace or source.study.workspace
            source = source._locate(source.series_key, source.frame)[0]
        elif hasattr(source, "instances") and hasattr(source, "workspace"):  # a Study
            self._workspace = workspace or source.workspace
            inst = source.instances()
            if inst.empty:
                raise ValueError("the study has no instances to edit")
            source = inst.iloc[0]["file_path"]
        if isinstance(source, TagEditor):
            self._editor = source
        else:
            if isinstance(source, (str, os.PathLike)):
                self._file = os.path.abspath(os.fspath(source))
            self._editor = TagEditor(source, workspace=self._workspace)
        if self._file is None:
            self._file = _editor_file(self._editor)
        self._rows: list[dict[str, Any]] | None = None
        self._redo = 0
        self._visible_key: tuple[Any, ...] | None = None
        self._visible: list[int] = []
        self._job: threading.Thread | None = None
        self._cancel = threading.Event()
        self._lock = threading.RLock()
        #: The last "apply" job's error message (also pushed to the browser), or None.
        self.job_error: str | None = None
        super().__init__(**kwargs)
        self.can_apply = self._file is not None
        self._refresh()

    @classmethod
    def for_viewer(cls, viewer: Viewer, **kwargs: Any) -> TagEditorPanel:
        """Open the tag editor on the instance the viewer shows.

        Parameters
        ----------
        viewer : Viewer
            An inline viewer; its current series and frame name the file.
        **kwargs
            Passed to :class:`TagEditorPanel`.
        """
        path = viewer._locate(viewer.series_key, viewer.frame)[0]
        kwargs.setdefault("workspace", viewer.study.workspace)
        return cls(path, **kwargs)

    @property
    def editor(self) -> TagEditor:
        """The backend :class:`~dicomflow_lab.editor.TagEditor`."""
        return self._editor

    def undo(self) -> None:
        """Take back the last pending edit (like the Undo button)."""
        with self._lock:
            self._editor.undo()
            self._redo += 1
        self._refresh()

    def redo(self) -> None:
        """Apply again the last undone edit (like the Redo button)."""
        with self._lock:
            self._editor.redo()
            self._redo = max(0, self._redo - 1)
        self._refresh()

    def refresh(self) -> None:
        """Show the editor's current state (after editing through :attr:`editor` directly)."""
        self._refresh()

    # -- state -----------------------------------------------------------------------
    def _refresh(self) -> None:
        """Recompute rows and the small state after the dataset changed."""
        with self._lock:
            self._rows = None
            self._visible_key = None
            rows = self._all_rows()
            pending = len(self._editor.pending())
        with self.hold_sync():
            self.n_rows = sum(1 for r in rows if not r["is_item"])
            self.n_pending = pending
            self.can_undo = pending > 0
            self.can_redo = self._redo > 0
            self.revision += 1

    def _all_rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            from dicomflow_lab.core.tags import tag_rows

            changed = _changed_paths(self._editor)
            rows: list[dict[str, Any]] = []
            for row in tag_rows(_editor_dataset(self._editor)):
                item = asdict(row)
                item["is_item"] = False
                item["changed"] = row.path in changed
                rows.append(item)
            self._rows = []
            _with_items(rows, 0, len(rows), self._rows)
        return self._rows

    def _visible_rows(
        self, query: str, field: str, expand_all: bool, toggled: list[str]
    ) -> list[int]:
        key = (query, field, expand_all, tuple(sorted(toggled)))
        if key == self._visible_key:
            return self._visible
        rows = self._all_rows()
        flipped = set(toggled)
        q = query.strip().lower()
        wanted: set[str] | None = None
        if q:  # the matches, with their sequences and items around them for context
            wanted = set()
            for row in rows:
                if not row["is_item"] and _matches(row, q, field):
                    wanted.add(row["path"])
                    wanted.update(_context(row["path"]))
        out: list[int] = []
        for i, row in enumerate(rows):
            if wanted is not None and row["path"] not in wanted:
                continue
            if all((p in flipped) != expand_all for p in _ancestors(row["path"], row["is_item"])):
                out.append(i)
        self._visible_key, self._visible = key, out
        return out

    # -- handlers --------------------------------------------------------------------
    def _handle_rows(self, request: Request) -> Reply:
        with self._lock:
            expand_all = request["expand_all"]
            toggled = request["toggled"]
            visible = self._visible_rows(request["query"], request["field"], expand_all, toggled)
            rows = self._all_rows()
            offset, limit = request["offset"], request["limit"]
            flipped = set(toggled)
            page = []
            for i in visible[offset : offset + limit]:
                row = dict(rows[i])
                row["expanded"] = (row["path"] in flipped) != expand_all
                page.append(row)
        return {"rows": page, "total": len(visible), "offset": offset}, []

    def _handle_info(self, _request: Request) -> Reply:
        return {
            "file": os.path.basename(self._file) if self._file else "",
            "default_out": str(self._default_out()),
            "can_apply": self.can_apply,
        }, []

    def _handle_validate(self, request: Request) -> Reply:
        from dicomflow_lab.errors import DicomflowError

        try:
            with self._lock:
                self._editor.validate(request["path"], request["value"], request["vr"])
        except (DicomflowError, ValueError) as exc:  # the message names tag, VR and rule
            return {"valid": False, "message": str(exc)}, []
        return {"valid": True, "message": "valid"}, []

    def _handle_edit(self, request: Request) -> Reply:
        op, path, value, vr = request["op"], request["path"], request["value"], request["vr"]
        ed = self._editor
        with self._lock:
            if op == "set":
                ed.set(path, value, vr=vr)
            elif op == "add":
                ed.add(path, value, vr=vr)
            elif op == "delete":
                ed.delete(path)
            elif op == "add_item":
                ed.add_item(path)
            else:
                ed.remove_item(path, request["index"])
            self._redo = 0
        self._refresh()
        return {"pending": self.n_pending}, []

    def _handle_undo(self, _request: Request) -> Reply:
        self.undo()
        return {"pending": self.n_pending}, []

    def _handle_redo(self, _request: Request) -> Reply:
        self.redo()
        return {"pending": self.n_pending}, []

    def _handle_cancel(self, _request: Request) -> Reply:
        self._cancel.set()
        return {"pending": self.n_pending}, []

    def _handle_changes(self, _request: Request) -> Reply:
        with self._lock:
            frame = self._editor.preview()
        records = frame.head(_MAX_CHANGES).to_dict("records") if len(frame) else []
        changes = [
            {
                "file": os.path.basename(str(r.get("file") or "")),
                "path": str(r.get("path") or ""),
                "keyword": str(r.get("keyword") or ""),
                "old": _text_or_none(r.get("old")),
                "new": _text_or_none(r.get("new")),
            }
            for r in records
        ]
        return {"changes": changes, "more": max(0, len(frame) - _MAX_CHANGES)}, []

    def _handle_save(self, request: Request) -> Reply:
        overwrite = request["overwrite"]
        out = None if overwrite else self._out_folder(request["out"])
        if not overwrite and self._file is None and out is not None:
            out.mkdir(parents=True, exist_ok=True)
        with self._lock:
            try:
                written = self._editor.save(
                    out, overwrite=overwrite, regenerate_uids=request["regenerate_uids"]
                )
            except FileExistsError as exc:
                raise ValueError(str(exc)) from None
            self._redo = 0
        self._refresh()
        folder = os.path.dirname(os.fspath(written[0])) if written else str(out or "")
        return {"written": len(written), "folder": folder}, []

    def _handle_apply(self, request: Request) -> Reply:
        if self._job is not None and self._job.is_alive():
            raise ValueError("a job is already running; wait for it or cancel it")
        if not self.can_apply or self._file is None:
            raise ValueError("this dataset has no file, so it has no series or study to apply to")
        edits = list(self._editor.pending())
        if not edits:
            raise ValueError("there are no pending edits to apply")
        overwrite = request["overwrite"]
        out = None if overwrite else self._out_folder(request["out"])
        self._cancel.clear()
        self.job_error = None
        with self.hold_sync():
            self.job_state, self.job_done, self.job_total = "running", 0, 0
            self.job_message = f"preparing the {request['scope']}…"
        self._job = threading.Thread(
            target=self._run_apply,
            args=(request["scope"], edits, out, overwrite, request["regenerate_uids"]),
            name="dfl-tag-editor-apply",
            daemon=True,
        )
        self._job.start()
        return {"started": True}, []

    # -- save and apply ----------------------------------------------------------------
    def _default_out(self) -> Path:
        if self._file is None:
            return Path.cwd() / "edited"
        parent = Path(self._file).parent
        return parent.parent / f"{parent.name}_edited"

    def _out_folder(self, typed: str) -> Path:
        text = typed.strip()
        if not text:
            return self._default_out()
        folder = Path(os.path.expanduser(text))
        if not folder.is_absolute():
            base = Path(self._file).parent if self._file else Path.cwd()
            folder = base / folder
        folder = Path(os.path.normpath(folder))
        if self._file is not None and folder == Path(self._file).parent:
            raise ValueError(
                "the output folder is the original's folder: choose another folder, or "
                'tick "overwrite originals (keeps a backup)"'
            )
        return folder

    def _files_of(self, scope: str) -> tuple[Any, list[str]]:
        ws = self._workspace_for_apply()
        column = "SeriesInstanceUID" if scope == "series" else "StudyInstanceUID"
        query = f"SELECT {column} AS uid FROM instances WHERE file_path = ?"
        row = ws.sql(query, [self._file])
        if row.empty:
            self.job_message = "indexing the folder…"
            ws.index(os.path.dirname(self._file), progress=False)
            row = ws.sql(query, [self._file])
        if row.empty or not isinstance(row.iloc[0]["uid"], str):
            raise ValueError(f"the file is not in the workspace index, so its {scope} is unknown")
        files = ws.sql(
            f"SELECT file_path FROM instances WHERE {column} = ? ORDER BY file_path",
            [row.iloc[0]["uid"]],
        )["file_path"].tolist()
        return ws, files

    def _workspace_for_apply(self) -> Workspace:
        ws = self._workspace or getattr(self._editor, "workspace", None)
        if ws is None:
            from dicomflow_lab.study import default_workspace

            ws = default_workspace()
        return ws

    def _run_apply(
        self, scope: str, edits: list[Any], out: Path | None, overwrite: bool, regen: bool
    ) -> None:
        from dicomflow_lab.editor import BatchEdit

        written = 0

        def on_progress(done: int, total: int) -> None:
            with self.hold_sync():
                self.job_done = done
                self.job_message = f"{done} / {total} files"

        try:
            ws, files = self._files_of(scope)
            root = Path(os.path.commonpath([os.path.dirname(f) for f in files]))
            with self.hold_sync():
                self.job_total, self.job_done = len(files), 0
                self.job_message = f"0 / {len(files)} files"
            # one save, so one journal run: ws.undo(run_id) reverts the whole job
            batch = BatchEdit(files, workspace=ws)
            batch.root = root.resolve()  # keep the layout relative to the whole set
            for edit in edits:
                _apply_edit(batch, edit)
            report = batch.save(
                out,
                overwrite=overwrite,
                regenerate_uids=regen,
                progress=False,
                on_progress=on_progress,
                cancel=self._cancel,
            )
            written = len(report.files)
            if report.cancelled:
                raise _Cancelled
        except _Cancelled:
            with self.hold_sync():
                self.job_state = "cancelled"
                self.job_message = f"cancelled after {written} file(s)"
            return
        except Exception as exc:
            # the message may name files (patient data): by message, not in the trait
            logger.debug("apply to %s failed", scope, exc_info=True)
            self.job_error = f"{type(exc).__name__}: {exc}"
            with self.hold_sync():
                self.job_state = "error"
                self.job_message = f"failed after {written} file(s): {type(exc).__name__}"
            self.send({"kind": "job", "state": "error", "message": self.job_error})
            return
        with self.hold_sync():
            self.job_done = written
            self.job_state = "done"
            self.job_message = f"wrote {written} file(s) of the {scope}"


class _Cancelled(Exception):
    """The user cancelled the job."""


# -- helpers ---------------------------------------------------------------------------


def _editor_dataset(editor: Any) -> Any:
    return editor.dataset


def _editor_file(editor: Any) -> str | None:
    for name in ("path", "file", "_path", "source"):
        value = getattr(editor, name, None)
        if isinstance(value, (str, os.PathLike)):
            return os.path.abspath(os.fspath(value))
    return None


def _changed_paths(editor: Any) -> set[str]:
    from dicomflow_lab.core.tags import format_path, parse_path

    out: set[str] = set()
    for edit in editor.pending():
        try:
            out.add(format_path(parse_path(edit.path)))
        except ValueError:
            continue
    return out


def _apply_edit(batch: Any, edit: Any) -> None:
    if edit.op == "set":
        batch.set(edit.path, edit.value, vr=edit.vr)
    elif edit.op == "add":
        batch.add(edit.path, edit.value, vr=edit.vr)
    elif edit.op == "delete":
        batch.delete(edit.path)
    elif edit.op == "add_item":
        batch.add_item(edit.path)
    else:
        batch.remove_item(edit.path, edit.value)


def _with_items(
    rows: list[dict[str, Any]], start: int, end: int, out: list[dict[str, Any]]
) -> None:
    """Copy ``rows[start:end]`` to `out`, with a synthetic row before each sequence item."""
    i = start
    while i < end:
        row = rows[i]
        out.append(row)
        i += 1
        if not row["is_sequence"]:
            continue
        prefix = row["path"] + "["
        stop = i
        while stop < end and rows[stop]["path"].startswith(prefix):
            stop += 1
        k = i
        for n in range(row["vm"]):
            item = f"{row['path']}[{n}]"
            out.append(_item_row(item, row["depth"] + 1))
            m = k
            while m < stop and rows[m]["path"].startswith(item + "."):
                m += 1
            _with_items(rows, k, m, out)
            k = m
        i = stop


def _item_row(path: str, depth: int) -> dict[str, Any]:
    return {
        "path": path,
        "tag": "",
        "keyword": "",
        "name": "",
        "vr": "",
        "vm": 0,
        "length": 0,
        "value": "",
        "private_creator": None,
        "depth": depth,
        "is_meta": False,
        "is_sequence": False,
        "editable": False,
        "is_item": True,
        "changed": False,
    }


def _ancestors(path: str, is_item: bool) -> list[str]:
    """Return the sequence paths that must be expanded for a row to show."""
    parts = path.split(".")
    levels = len(parts) if is_item else len(parts) - 1
    return [".".join([*parts[:k], parts[k].rsplit("[", 1)[0]]) for k in range(levels)]


def _context(path: str) -> list[str]:
    """Return the sequence and item paths that contain the element at `path`."""
    parts = path.split(".")
    out = []
    for k in range(len(parts) - 1):
        item = ".".join(parts[: k + 1])
        out += [item.rsplit("[", 1)[0], item]
    return out


def _matches(row: dict[str, Any], q: str, field: str) -> bool:
    if field in ("any", "tag"):
        bare = re.sub(r"[(),\s]", "", q)
        if q in row["tag"].lower() or (
            bare and not _HEX.search(bare) and bare in _HEX.sub("", row["tag"].lower())
        ):
            return True
    if field in ("any", "keyword") and (
        q in row["keyword"].lower()
        or q in row["name"].lower()
        or q in (row["private_creator"] or "").lower()
    ):
        return True
    return field in ("any", "value") and q in row["value"].lower()


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)

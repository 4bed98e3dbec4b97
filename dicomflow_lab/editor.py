"""The tag editor: validated edits of one dataset or many files, safe writes, undo.

>>> import dicomflow_lab as dfl
>>> ed = dfl.TagEditor(dfl.data.testfile("CT_small.dcm"))       # doctest: +SKIP
>>> ed.set("PatientName", "Doe^Jane")                            # doctest: +SKIP
>>> ed.preview()                                                 # doctest: +SKIP
>>> ed.save(out="edited/")                                       # doctest: +SKIP

Writing rules (issue 4):

- By default files are written to a new folder (save-as), keeping their names and, for
  batches, their layout relative to the files' common folder. With a workspace and no
  `out`, that folder is ``<workspace>/files/edits/<run_id>/``.
- ``overwrite=True`` writes in place after copying each original to a backup: in the
  workspace file area (``files/backups/<run_id>/<relative path>``) or, without a
  workspace, beside the file as ``.<name>.dfl-backup`` (a dot-file, so indexing skips it).
- Every write is atomic (temporary file, fsync, rename). The dataset is read without
  decoding pixels and written with ``enforce_file_format=True`` in its own transfer
  syntax, so Pixel Data bytes (native or encapsulated) are kept byte for byte. When only
  top-level elements change, the original bytes are copied and just those elements are
  replaced by pydicom's encoding of them (:func:`dicomflow_lab.core._write.splice`);
  every other case (file meta or character set changed, group lengths, big endian,
  deflate) is a full pydicom write. Both give the same dataset (tested).
- Group length elements (gggg,0000) are retired; a full pydicom write drops them.
- The usual batch edit (set / add / delete of standard top-level elements) does not
  parse files with pydicom at all: a ``struct`` walk of the top-level elements finds
  them, the values are validated by the same code on the raw elements pydicom would
  decode, and pydicom encodes the new elements
  (:mod:`dicomflow_lab.core._write_fast`; same bytes as the pydicom path, tested).
- Files are written in chunks: every temporary file of a chunk is written, then all are
  made durable (an ``fsync`` of each, several at once), then renamed, then their
  folders flushed. From 500 files on a multi-core machine, chunks run on the package's
  worker processes. A refused file stops its chunk (and, in this process, the run);
  files already written are journaled, so ``ws.undo(run_id)`` reverts them.
- With a workspace, written files are indexed and each change goes to the ``edits``
  journal; :meth:`Workspace.undo` (or :func:`undo`) restores from it. A written file
  whose source is indexed (and unchanged since) is not read again: its row is the
  source's row with the touched elements' new values, decoded from the written bytes
  by the indexer's own code (:mod:`dicomflow_lab.store.reindex`); the usual index of
  the output folder then reads only the other files (full pydicom writes, UID
  regeneration, character set or image size changes, sequence edits, sources not
  indexed). Both give the same rows (``tests/test_edit_reindex.py``).
"""

from __future__ import annotations

import collections
import copy
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydicom.dataset import Dataset

from dicomflow_lab._edit_journal import (
    UndoReport,
    _now,
    _reindex_in_place,
    _user,
    resolve_selection,
    undo,
)
from dicomflow_lab.core import _write
from dicomflow_lab.core._write import read_for_edit, write_dataset
from dicomflow_lab.core.edit import Change, Edit, apply_edits, regenerate_uids, validate
from dicomflow_lab.core.tags import tag_frame
from dicomflow_lab.errors import EditError
from dicomflow_lab.store.edits import record_edits
from dicomflow_lab.store.reindex import finish_folder, patch_instances

if TYPE_CHECKING:  # pragma: no cover
    from dicomflow_lab.workspace import Workspace

__all__ = ["BatchEdit", "EditReport", "TagEditor", "UndoReport", "resolve_selection", "undo"]

logger = logging.getLogger(__name__)

_PROCESS_FROM = 500
_CHUNK = 64  # files made durable together before their renames

PREVIEW_COLUMNS = ["file", "path", "keyword", "op", "old", "new"]


@dataclass(frozen=True)
class EditReport:
    """What one save did.

    Attributes
    ----------
    run_id : str
        Journal key of the run (``ws.undo(run_id)`` reverts it).
    files : tuple of pathlib.Path
        Files written.
    changes : int
        Changes applied over all files.
    backups : tuple of pathlib.Path
        Backups made (in-place writes only).
    seconds : float
        Wall-clock time.
    cancelled : bool
        True when the save was cancelled: ``files`` lists what was written (journaled
        under ``run_id``, so ``ws.undo(run_id)`` still reverts all of it).
    """

    run_id: str
    files: tuple[Path, ...]
    changes: int
    backups: tuple[Path, ...] = ()
    seconds: float = 0.0
    cancelled: bool = False

    def __str__(self) -> str:
        rate = len(self.files) / self.seconds if self.seconds else 0.0
        return (
            f"Edit run {self.run_id}: {self.changes} change(s) in {len(self.files)} file(s) "
            f"in {self.seconds:.2f} s ({rate:.0f} files/s); backups: {len(self.backups)}"
        )


_read = read_for_edit


class _Pending:
    """A list of pending edits with undo / redo."""

    def __init__(self) -> None:
        self.edits: list[Edit] = []
        self.redo_stack: list[Edit] = []

    def push(self, edit: Edit) -> None:
        self.edits.append(edit)
        self.redo_stack.clear()

    def undo(self) -> Edit:
        if not self.edits:
            raise IndexError("no pending edit to undo")
        edit = self.edits.pop()
        self.redo_stack.append(edit)
        return edit

    def redo(self) -> Edit:
        if not self.redo_stack:
            raise IndexError("no undone edit to redo")
        edit = self.redo_stack.pop()
        self.edits.append(edit)
        return edit


class _EditVerbs:
    """The edit verbs shared by :class:`TagEditor` (one file) and :class:`BatchEdit`.

    Each verb is validated at once by the subclass's ``_push`` (a refused value raises
    :class:`~dicomflow_lab.errors.EditError` and changes nothing); a batch applies the
    pending edits to every file when it is saved.
    """

    _pending: _Pending

    def _push(self, edit: Edit) -> None:
        raise NotImplementedError

    def set(self, path: str, value: Any, vr: str | None = None) -> None:
        """Set an element's value (inserting the element when missing).

        Raises
        ------
        EditError
            When the value is refused; nothing is changed.
        """
        self._push(Edit("set", path, value, vr))

    def add(self, path: str, value: Any, vr: str | None = None) -> None:
        """Add an element that does not exist yet (refused where it exists)."""
        self._push(Edit("add", path, value, vr))

    def delete(self, path: str) -> None:
        """Delete an element (deleting a missing one changes nothing)."""
        self._push(Edit("delete", path))

    def add_item(self, seq_path: str) -> None:
        """Append an empty item to a sequence (created when missing)."""
        self._push(Edit("add_item", seq_path))

    def remove_item(self, seq_path: str, index: int) -> None:
        """Remove item `index` of a sequence."""
        self._push(Edit("remove_item", seq_path, index))

    def pending(self) -> list[Edit]:
        """Return the pending edits, oldest first."""
        return list(self._pending.edits)


class TagEditor(_EditVerbs):
    """Edit one dataset's tags with validation, then save safely.

    Parameters
    ----------
    source : str, os.PathLike or pydicom.dataset.Dataset
        A DICOM file (read without decoding pixels) or a dataset (copied; the caller's
        object is never changed).
    workspace : Workspace, optional
        For journaling, indexing and the default output folder.

    Examples
    --------
    >>> import dicomflow_lab as dfl
    >>> ed = dfl.TagEditor(dfl.data.testfile("CT_small.dcm"))
    >>> ed.set("PatientName", "Doe^Jane")
    >>> ed.preview()[["path", "old", "new"]]
              path                    old       new
    0  (0010,0010)  CompressedSamples^CT1  Doe^Jane
    """

    def __init__(
        self, source: str | os.PathLike[str] | Dataset, workspace: Workspace | None = None
    ) -> None:
        if isinstance(source, Dataset):
            self.path: Path | None = None
            self._original = copy.deepcopy(source)
        else:
            self.path = Path(source).expanduser().resolve()
            self._original = _read(self.path)
        self.workspace = workspace
        self._pending = _Pending()
        self._working = copy.deepcopy(self._original)
        self._changes: list[Change] = []

    def __repr__(self) -> str:
        name = self.path.name if self.path else "<dataset>"
        return f"<TagEditor {name}: {len(self._pending.edits)} pending edit(s)>"

    @property
    def dataset(self) -> Dataset:
        """The dataset with the pending edits applied (do not change it directly)."""
        return self._working

    def table(self) -> pd.DataFrame:
        """Return the edited dataset as a tag table (see :func:`core.tags.tag_frame`)."""
        return tag_frame(self._working)

    def validate(self, path: str, value: Any, vr: str | None = None) -> Any:
        """Check a value without applying it (raises :class:`EditError` when refused)."""
        return validate(self._working, path, value, vr)

    def _push(self, edit: Edit) -> None:
        self._changes.extend(apply_edits(self._working, [edit]))
        self._pending.push(edit)

    def _replay(self) -> None:
        self._working = copy.deepcopy(self._original)
        self._changes = apply_edits(self._working, self._pending.edits)

    def undo(self) -> Edit:
        """Take back the last pending edit (before save) and return it."""
        edit = self._pending.undo()
        self._replay()
        return edit

    def redo(self) -> Edit:
        """Apply again the last undone pending edit and return it."""
        edit = self._pending.redo()
        self._replay()
        return edit

    def preview(self) -> pd.DataFrame:
        """Return the pending changes: ``file, path, keyword, op, old, new``."""
        name = str(self.path) if self.path else ""
        rows = [(name, c.path, c.keyword, c.op, c.old, c.new) for c in self._changes]
        return pd.DataFrame(rows, columns=PREVIEW_COLUMNS)

    def save(
        self,
        out: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
        regenerate_uids: bool = False,
    ) -> list[Path]:
        """Write the edited dataset (see the module notes for the rules).

        Parameters
        ----------
        out : str or os.PathLike, optional
            A folder (the file keeps its name) or, for a new name, a file path ending
            in ``.dcm``. Default: the workspace's ``files/edits/<run_id>/``.
        overwrite : bool, optional
            Write over the source file, after a backup.
        regenerate_uids : bool, optional
            Give new study / series / instance / frame-of-reference UIDs (references
            and file meta follow).

        Returns
        -------
        list of pathlib.Path
            The file written.
        """
        if self.path is None:
            if overwrite or out is None:
                raise ValueError("an editor of an in-memory dataset needs out=<file or folder>")
            target = Path(out)
            if target.is_dir() or not target.suffix:
                uid = self._working.get("SOPInstanceUID", "dataset")
                target = target / f"{uid}.dcm"
            ds = copy.deepcopy(self._working)
            if regenerate_uids:
                regenerate_uids_fn(ds, {}, uuid.uuid4().hex)
            write_dataset(ds, target)
            return [target]
        batch = BatchEdit([self.path], workspace=self.workspace)
        batch._pending = self._pending
        report = batch.save(
            out, overwrite=overwrite, regenerate_uids=regenerate_uids, progress=False
        )
        # like "Save as" in a desktop editor: the editor now edits the file it wrote
        self.path = report.files[0]
        self._original = copy.deepcopy(self._working)
        self._pending = _Pending()
        self._changes = []
        return list(report.files)


regenerate_uids_fn = regenerate_uids


class BatchEdit(_EditVerbs):
    """One edit set applied to many files: preview, then save with a journal.

    Parameters
    ----------
    files : iterable of str or os.PathLike
        The DICOM files.
    workspace : Workspace, optional
        For journaling, indexing and default output / backup folders.
    """

    def __init__(
        self, files: Iterable[str | os.PathLike[str]], workspace: Workspace | None = None
    ) -> None:
        self.files = [Path(f).expanduser().resolve() for f in files]
        if not self.files:
            raise ValueError("nothing to edit: the selection has no files")
        self.workspace = workspace
        self._pending = _Pending()
        if len(self.files) == 1:
            self.root = self.files[0].parent
        else:
            self.root = Path(os.path.commonpath([str(f.parent) for f in self.files]))

    def __repr__(self) -> str:
        return f"<BatchEdit {len(self.files)} file(s): {len(self._pending.edits)} pending>"

    def _push(self, edit: Edit) -> None:
        # early feedback against the first file's header; every file is validated again
        apply_edits(_read(self.files[0], stop_before_pixels=True), [*self._pending.edits, edit])
        self._pending.push(edit)

    def undo(self) -> Edit:
        """Take back the last pending edit."""
        return self._pending.undo()

    def redo(self) -> Edit:
        """Apply again the last undone pending edit."""
        return self._pending.redo()

    def preview(self) -> pd.DataFrame:
        """Return ``file, path, keyword, op, old, new`` for every change in every file.

        Headers are read without pixel data; nothing is written.
        """
        rows = []
        for path in self.files:
            try:
                changes = apply_edits(_read(path, stop_before_pixels=True), self._pending.edits)
            except EditError as exc:
                raise EditError(f"{path.name}: {exc}") from exc
            rows.extend((str(path), c.path, c.keyword, c.op, c.old, c.new) for c in changes)
        return pd.DataFrame(rows, columns=PREVIEW_COLUMNS)

    def _out_dir(self, out: str | os.PathLike[str] | None, run_id: str) -> Path:
        if out is not None:
            return Path(out).expanduser().resolve()
        if self.workspace is None:
            raise ValueError(
                "give out=<folder> (save-as), or overwrite=True to write in place with a backup"
            )
        return self.workspace.files_dir / "edits" / run_id

    def _backup_path(self, src: Path, run_id: str) -> Path:
        if self.workspace is not None:
            rel = src.relative_to(self.root) if src.is_relative_to(self.root) else src.name
            return self.workspace.files_dir / "backups" / run_id / rel
        return src.with_name(f".{src.name}.dfl-backup")

    def save(
        self,
        out: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
        regenerate_uids: bool = False,
        progress: bool = True,
        workers: int | None = None,
        processes: int | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> EditReport:
        """Apply the pending edits to every file and write the results.

        Parameters
        ----------
        out : str or os.PathLike, optional
            Output folder (save-as); files keep their names and relative layout.
        overwrite : bool, optional
            Write in place, each original first copied to a backup.
        regenerate_uids : bool, optional
            New instance UIDs, mapped consistently across the files of this run.
        progress : bool, optional
            Show a progress bar.
        workers : int, optional
            Ignored (kept for compatibility): files are edited in chunks, each chunk
            made durable with one file-system write-back before its renames, so
            threads no longer help.
        processes : int, optional
            Worker processes (the package's header-reader pool) for large batches;
            default: one per core from 500 files on, else none (this process).
        on_progress : callable, optional
            Called as ``on_progress(done, total)`` after each chunk of files (from a
            worker thread when processes are used).
        cancel : threading.Event, optional
            Set it to stop after the chunks in flight; the report says ``cancelled``
            and everything written stays one journaled run.

        Returns
        -------
        EditReport
            Run id, files written, number of changes, backups, time.

        Raises
        ------
        EditError
            When a file refuses an edit. Files written before it stay written and are
            journaled under the run id (``ws.undo(report.run_id)`` reverts them).
        """
        if overwrite and out is not None:
            raise ValueError("give either out=<folder> or overwrite=True, not both")
        started = time.perf_counter()
        run_id = uuid.uuid4().hex
        out_dir = None if overwrite else self._out_dir(out, run_id)
        if out_dir is not None and len(self.files) == 1 and out_dir.suffix.lower() == ".dcm":
            targets = [out_dir]
        elif out_dir is not None:
            targets = [out_dir / f.relative_to(self.root) for f in self.files]
        else:
            targets = list(self.files)
        if not overwrite:
            for src, dst in zip(self.files, targets, strict=True):
                if dst == src or dst.exists():
                    raise FileExistsError(
                        f"{dst} exists; choose another out= folder or overwrite=True"
                    )
        new_folder = out_dir is not None and not out_dir.exists()
        user = _user()
        journal: list[dict[str, Any]] = []
        written: list[Path] = []
        backups: list[Path] = []
        edits = list(self._pending.edits)
        tasks = [
            (src, dst, self._backup_path(src, run_id) if overwrite else None)
            for src, dst in zip(self.files, targets, strict=True)
        ]
        bar = _Progress(_progress_bar(len(tasks), progress), on_progress, len(tasks), cancel)
        n_procs = processes if processes is not None else _auto_processes(len(tasks))
        error: BaseException | None = None
        patches = self.workspace is not None
        patched: list[tuple[str, str, _write.IndexPatch]] = []
        try:
            if n_procs > 1:
                results = _in_processes(
                    tasks, edits, regenerate_uids, run_id, n_procs, bar, patches
                )
            else:
                results = _in_process(tasks, edits, regenerate_uids, run_id, bar, patches)
            for (src, dst, backup), result in zip(tasks, results, strict=True):
                if result is None:  # not run: an earlier file of its chunk failed
                    continue
                if isinstance(result, BaseException):
                    error = error or result
                    continue
                written.append(dst)
                if isinstance(result, _write.Written):
                    patched.append((str(src), str(dst), result.patch))
                if backup is not None:
                    backups.append(backup)
                journal.extend(_journal_rows(run_id, user, src, dst, backup, result))
        finally:
            bar.close()
            if self.workspace is not None and journal:
                with self.workspace.db.transaction() as con:
                    record_edits(con, journal)
                self._reindex(written, out_dir, patched, new_folder=new_folder)
        if error is not None:
            raise error
        logger.info("edit run %s wrote %d file(s)", run_id, len(written))
        return EditReport(
            run_id=run_id,
            files=tuple(written),
            changes=sum(1 for j in journal if j["op"] != "write"),
            backups=tuple(backups),
            seconds=time.perf_counter() - started,
            cancelled=bar.cancelled and len(written) < len(tasks),
        )

    def _reindex(
        self,
        written: Sequence[Path],
        out_dir: Path | None,
        patched: Sequence[tuple[str, str, _write.IndexPatch]] = (),
        *,
        new_folder: bool = False,
    ) -> None:
        """Bring the index up to date with the files written.

        The rows of files whose sources are indexed (and unchanged since) are derived
        from the sources' rows (:func:`dicomflow_lab.store.reindex.patch_instances`).
        When that covers every file of an output folder this save created, the folder
        is recorded as a source and that is all an index of it would do
        (:func:`~dicomflow_lab.store.reindex.finish_folder`). Otherwise the output
        folder (or, in place, the roots the files were indexed under) is indexed as
        before, which skips the patched files as unchanged and reads the rest.
        """
        ws = self.workspace
        if ws is None or not written:
            return
        save_as = out_dir is not None and out_dir.is_dir()
        # the source an index would record: the output folder, or the file saved under
        # a new name; in place, the roots the files were indexed under (kept)
        source = os.path.abspath(out_dir) if out_dir is not None else None
        if patched:
            now = _now()
            names = [str(p) for p in written]
            with ws.db.transaction() as con:
                done = patch_instances(con, patched, source=source, indexed_at=now)
                complete = new_folder and save_as and source is not None
                complete = complete and done.issuperset(names)
                if complete and source is not None:
                    finish_folder(con, source, names, indexed_at=now)
            logger.info(
                "edit run: %d of %d index row(s) derived from the sources' rows",
                len(done),
                len(written),
            )
            if complete:
                return
        if save_as and out_dir is not None:
            ws.index(out_dir, progress=False)
            return
        _reindex_in_place(ws, written)


def _auto_processes(n_files: int) -> int:
    cores = os.cpu_count() or 1
    return min(cores, 8) if cores > 1 and n_files >= _PROCESS_FROM else 1


def _in_process(
    tasks: Sequence[_write.Task],
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    bar: Any,
    patches: bool = False,
) -> list[list[Change] | BaseException | None]:
    """Edit files in chunks in this process; stop at the first failure."""
    out: list[list[Change] | BaseException | None] = [None] * len(tasks)
    cache: dict[Any, Any] = {}
    mapping: dict[str, str] = {}
    for start in range(0, len(tasks), _CHUNK):
        if bar is not None and bar.cancelled:
            break
        chunk = _write.run_chunk(
            tasks[start : start + _CHUNK],
            edits,
            regenerate,
            run_id,
            cache,
            mapping,
            index_patches=patches,
        )
        out[start : start + len(chunk)] = chunk
        if bar is not None:
            bar.update(sum(1 for r in chunk if r is not None))
        if any(isinstance(r, BaseException) for r in chunk):
            break
    return out


def _in_processes(
    tasks: Sequence[_write.Task],
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    n_procs: int,
    bar: Any,
    patches: bool = False,
) -> list[list[Change] | BaseException | None]:
    """Edit files in chunks on the worker processes and in this process at once.

    The chunks wait in one queue: a thread hands them to the worker-process pool
    (``n_procs`` at a time, from the front) while this thread edits chunks itself (from
    the back). So this process works while the workers start, and fills the gaps while
    they wait for the disk. After a failure no further chunk is started.
    """
    from dicomflow_lab.core._worker import TaskFailed, shared_pool

    size = max(1, min(_CHUNK, -(-len(tasks) // (n_procs * 4))))
    queue = collections.deque(range(0, len(tasks), size))
    lock = threading.Lock()
    out: list[list[Change] | BaseException | None] = [None] * len(tasks)
    failed: list[BaseException] = []

    def take(n: int, front: bool) -> list[int]:
        with lock:
            if failed or (bar is not None and bar.cancelled):
                return []
            pop = queue.popleft if front else queue.pop
            return [pop() for _ in range(min(n, len(queue)))]

    def record(first: int, results: Sequence[Any]) -> None:
        with lock:
            for k, item in enumerate(results):
                if isinstance(item, str):
                    kind, _, message = item.partition(": ")
                    cls = EditError if kind in ("EditError", "DicomReadError") else OSError
                    item = cls(message if cls is EditError else item)
                if isinstance(item, BaseException) and not failed:
                    failed.append(item)
                out[first + k] = item
            if bar is not None:
                bar.update(sum(1 for item in results if item is not None))

    def drive_pool() -> None:
        pool = shared_pool(n_procs)
        while group := take(n_procs, front=True):
            chunks = [
                (list(tasks[s : s + size]), list(edits), regenerate, run_id, patches) for s in group
            ]
            for index, result in pool.map_unordered(
                _write.edit_chunk, chunks, timeout=lambda args: 60.0 + 5.0 * len(args[0])
            ):
                if isinstance(result, TaskFailed):
                    result = [f"EditError: an edit worker failed: {result.reason}"]
                record(group[index], result)

    errors: list[BaseException] = []

    def driver() -> None:
        try:
            drive_pool()
        except BaseException as exc:  # the chunks left are edited here instead
            errors.append(exc)

    thread = threading.Thread(target=driver, name="dfl-edit-pool", daemon=True)
    thread.start()
    cache: dict[Any, Any] = {}
    mapping: dict[str, str] = {}
    try:
        while group := take(1, front=False):
            start = group[0]
            chunk = _write.run_chunk(
                tasks[start : start + size],
                edits,
                regenerate,
                run_id,
                cache,
                mapping,
                index_patches=patches,
            )
            record(start, chunk)
    finally:
        thread.join()
    if errors and not failed and any(r is None for r in out):
        raise errors[0]
    return out


def _journal_rows(
    run_id: str,
    user: str,
    src: Path,
    dst: Path,
    backup: Path | None,
    changes: Sequence[Change],
) -> list[dict[str, Any]]:
    base = {
        "run_id": run_id,
        "applied_at": _now(),
        "user": user,
        "file_path": str(src),
        "new_file_path": str(dst),
        "backup_path": str(backup) if backup else None,
    }
    if not changes:  # the file was still written: undo must know it
        return [
            {
                **base,
                "path": "",
                "tag": None,
                "keyword": None,
                "op": "write",
                "old_value": None,
                "new_value": None,
            }
        ]
    return [
        {
            **base,
            "path": c.path,
            "tag": c.tag,
            "keyword": c.keyword,
            "op": c.op,
            "old_value": c.old,
            "new_value": c.new,
        }
        for c in changes
    ]


class _Progress:
    """Counts written files for a tqdm bar and an ``on_progress`` callback; knows cancel."""

    def __init__(
        self,
        bar: Any,
        callback: Callable[[int, int], None] | None,
        total: int,
        cancel: threading.Event | None,
    ) -> None:
        self.bar = bar
        self.callback = callback
        self.total = total
        self.done = 0
        self.cancel = cancel

    @property
    def cancelled(self) -> bool:
        """True once the cancel event is set."""
        return self.cancel is not None and self.cancel.is_set()

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled or total < 2:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Saving edits", unit="file", leave=True)

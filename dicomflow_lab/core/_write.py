"""Writing edited datasets: atomically, in their own transfer syntax, bytes kept.

Three ways, same result:

- :func:`encode_dataset` / :func:`write_dataset` hand the whole dataset to pydicom
  (``save_as`` with ``enforce_file_format=True``); Pixel Data and every other value are
  written back from what pydicom read, in the transfer syntax of the file meta.
- :func:`splice` is the fast path after a pydicom read, for the usual case (a few
  top-level elements changed): it copies the original file's bytes and replaces only the
  changed top-level elements by pydicom's own encoding of them
  (``filewriter.write_data_element``). Every other byte, Pixel Data included, is the
  original's. It declines (returns ``None``) whenever the result could differ from a
  full write: no file meta, big endian or deflated transfer syntaxes, a changed file
  meta or Specific Character Set, group length elements in a touched group, or an
  element whose position is not certain.
- :func:`~dicomflow_lab.core._write_fast.fast_edit` gives the splice's bytes without
  the pydicom read, for plain files and top-level value edits (and declines the rest).

:func:`run_chunk` edits a list of files that way and writes them in batches: temporary
files first, then an ``fsync`` of each (several at once, while the next batch is being
edited), then the renames (backups before the files they back up), then the folders'
``fsync``: every file is durable before it replaces anything. Asked to
(``index_patches=True``), it also returns for each file written what the workspace index
needs to build the new file's row from its source's row without reading the new file
(:class:`Written`, :class:`IndexPatch`): the source's size and modification time as read,
the new file's, and the index values of the top-level elements the edits replaced, decoded
from the new file's bytes by the indexer's own code.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import os
import struct
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.charset import convert_encodings
from pydicom.datadict import DicomDictionary, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicomflow_lab._fsutil import atomic_write_bytes, create_temp, fsync_dir
from dicomflow_lab.core import _write_fast as _wf
from dicomflow_lab.core._write_fast import (
    Layout,
    _partial_dataset,
    encode_element,
    fast_edit,
    scan_layout,
)
from dicomflow_lab.core.dataset import HeaderReadOptions, _dict_vr, _keyword, header_to_dict
from dicomflow_lab.core.edit import Change, Edit, apply_edits, regenerate_uids
from dicomflow_lab.core.tags import parse_path
from dicomflow_lab.errors import DicomReadError, EditError

__all__ = [
    "IndexPatch",
    "Snapshot",
    "Task",
    "Written",
    "edit_bytes",
    "edit_chunk",
    "edit_file",
    "encode_dataset",
    "pydicom_edit",
    "read_for_edit",
    "run_chunk",
    "snapshot",
    "splice",
    "write_bytes",
    "write_dataset",
]

_META_FROM_DATASET = (
    ("MediaStorageSOPClassUID", "SOPClassUID"),
    ("MediaStorageSOPInstanceUID", "SOPInstanceUID"),
)
_CHARSET = 0x00080005


def encode_dataset(ds: Dataset, name: str = "dataset") -> bytes:
    """Return `ds` encoded by pydicom as a file, in its own transfer syntax.

    A dataset with file meta is written as a DICOM file (``enforce_file_format=True``)
    in the transfer syntax its meta names (missing Media Storage SOP UIDs are filled from
    the dataset). One read from a file without file meta is written the same way, in its
    original encoding.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset (its file meta may be completed).
    name : str, optional
        The file's name, for the error message.

    Raises
    ------
    EditError
        When pydicom refuses to write the dataset (the reason is in the message).
    """
    meta = getattr(ds, "file_meta", None)
    fh = io.BytesIO()
    try:
        if meta is not None and "TransferSyntaxUID" in meta:
            for meta_kw, kw in _META_FROM_DATASET:
                if not meta.get(meta_kw) and ds.get(kw):
                    meta[meta_kw] = DataElement(tag_for_keyword(meta_kw), "UI", ds[kw].value)
            complete = all(meta.get(k) for k, _ in _META_FROM_DATASET)
            # a meta without SOP UIDs (and a dataset without them) stays as it was read
            ds.save_as(fh, enforce_file_format=complete)
        else:
            implicit, little = ds.original_encoding
            ds.save_as(
                fh,
                implicit_vr=True if implicit is None else implicit,
                little_endian=True if little is None else little,
            )
    except (ValueError, AttributeError, TypeError) as exc:
        raise EditError(f"{name} cannot be written: {exc}") from exc
    return fh.getvalue()


def write_dataset(ds: Dataset, target: Path, *, fsync_folder: bool = True) -> None:
    """Write `ds` to `target` atomically with pydicom (see :func:`encode_dataset`).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.
    target : pathlib.Path
        The file; its folder is created.
    fsync_folder : bool, optional
        Also flush the folder entry (default True).

    Raises
    ------
    EditError
        When pydicom refuses to write the dataset (the reason is in the message).
    """
    data = encode_dataset(ds, target.name)
    write_bytes(data, target, fsync_folder=fsync_folder)


def write_bytes(data: bytes, target: Path, *, fsync_folder: bool = True) -> None:
    """Write `data` to `target` atomically (its folder is created)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data, fsync_folder=fsync_folder)


@dataclass(frozen=True)
class Snapshot:
    """The top-level elements of a dataset as read, before any edit (cheap to take)."""

    keys: list[int]
    elements: dict[int, Any]
    implicit: bool


def snapshot(ds: Dataset) -> Snapshot:
    """Remember `ds`'s top-level elements (freshly read) for :func:`splice`."""
    elements = dict(ds.items())  # raw elements as read, not converted
    return Snapshot(sorted(elements), elements, bool(ds.original_encoding[0]))


def _start(snap: Snapshot, tag: int, data: bytes) -> int | None:
    elem = snap.elements[tag]
    tell = getattr(elem, "value_tell", None)
    if tell is None:
        tell = getattr(elem, "file_tell", None)
    if tell is None:
        return None
    tag_bytes = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    for header in (8,) if snap.implicit else (8, 12):
        start = tell - header
        if start >= 0 and data[start : start + 4] == tag_bytes:
            return start
    return None


def _after(snap: Snapshot, tag: int, data: bytes) -> int | None:
    """Start of the first element with a larger tag (end of the data when none)."""
    k = bisect.bisect_right(snap.keys, tag)
    return _start(snap, snap.keys[k], data) if k < len(snap.keys) else len(data)


def splice(
    data: bytes,
    ds: Dataset,
    touched: Iterable[int],
    before: Snapshot,
    meta_changed: bool,
) -> bytes | None:
    """Return the edited file content by replacing only the `touched` top-level elements.

    Parameters
    ----------
    data : bytes
        The original file content that `ds` was read from.
    ds : pydicom.dataset.Dataset
        The dataset after the edits (only `touched` top-level elements changed).
    touched : iterable of int
        Top-level tags set, added, deleted or whose sequences changed.
    before : Snapshot
        :func:`snapshot` of the dataset as read, before the edits.
    meta_changed : bool
        Whether the edits changed the file meta (then only a full write is right).

    Returns
    -------
    bytes or None
        The new content, or ``None`` when only a full pydicom write is safe.
    """
    meta = getattr(ds, "file_meta", None)
    if meta is None or meta_changed:
        return None
    ts = UID(str(meta.get("TransferSyntaxUID", "")))
    if not ts or not ts.is_transfer_syntax or not ts.is_little_endian or ts.is_deflated:
        return None
    if ts.is_implicit_VR != before.implicit:
        return None
    tags = sorted({int(t) for t in touched})
    if not tags or _CHARSET in tags:
        return None
    if any((t >> 16) << 16 in before.elements for t in tags):
        return None  # a group length would go stale
    encodings = convert_encodings(ds.get("SpecificCharacterSet"))
    out = io.BytesIO()
    cursor = 0
    for tag in tags:
        if tag in before.elements:
            start, end = _start(before, tag, data), _after(before, tag, data)
        else:  # a new element goes before the first element with a larger tag
            start = end = _after(before, tag, data)
        if start is None or end is None or start < cursor or end < start:
            return None
        out.write(data[cursor:start])
        if tag in ds:
            element = encode_element(ds, tag, before.implicit, encodings)
            if element is None:
                return None
            out.write(element)
        cursor = end
    out.write(data[cursor:])
    return out.getvalue()


def read_for_edit(
    path: Path, stop_before_pixels: bool = False, data: bytes | None = None
) -> Dataset:
    """Read a file with pydicom for editing (pixels are not decoded).

    Raises
    ------
    DicomReadError
        When pydicom cannot read it.
    """
    source: Any = io.BytesIO(data) if data is not None else path
    try:
        return dcmread(source, force=True, stop_before_pixels=stop_before_pixels)
    except Exception as exc:
        raise DicomReadError(path, f"cannot be read for editing: {exc}") from exc


def edit_bytes(
    src: Path,
    data: bytes,
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    cache: dict[Any, Any] | None = None,
    mapping: dict[str, str] | None = None,
    *,
    fast: bool = True,
) -> tuple[bytes, list[Change]]:
    """Return the edited content of the file `src` (read as `data`) and the changes.

    Tries :func:`~dicomflow_lab.core._write_fast.fast_edit` (no pydicom parse) first,
    then the pydicom path (:func:`pydicom_edit`); both give the same bytes.

    Raises
    ------
    EditError
        A refused edit, prefixed with the file name.
    DicomReadError
        When pydicom cannot read the file.
    """
    new, changes, _how = _edit_bytes(
        src, data, edits, regenerate, run_id, cache, mapping, fast=fast
    )
    return new, changes


def _edit_bytes(
    src: Path,
    data: bytes,
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    cache: dict[Any, Any] | None,
    mapping: dict[str, str] | None,
    *,
    fast: bool = True,
) -> tuple[bytes, list[Change], str]:
    """:func:`edit_bytes`, also saying how: ``fast``, ``splice`` or ``full`` (a pydicom write).

    ``fast`` and ``splice`` replace only the touched top-level elements; ``fast`` also
    means that the file passed :func:`~dicomflow_lab.core._write_fast.scan_layout`.
    """
    try:
        done = fast_edit(data, edits, cache) if fast and not regenerate else None
        if done is not None:
            return done[0], done[1], "fast"
        return _pydicom_edit(src, data, edits, regenerate, run_id, cache, mapping)
    except EditError as exc:
        raise EditError(
            f"{src.name}: {exc}", path=exc.path, tag=exc.tag, vr=exc.vr, rule=exc.rule
        ) from exc


def pydicom_edit(
    src: Path,
    data: bytes,
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    cache: dict[Any, Any] | None = None,
    mapping: dict[str, str] | None = None,
) -> tuple[bytes, list[Change]]:
    """Edit through a full pydicom read: :func:`splice` when safe, else a full write."""
    new, changes, _how = _pydicom_edit(src, data, edits, regenerate, run_id, cache, mapping)
    return new, changes


def _refuse_mismatched_encoding(ds: Dataset, src: Path) -> None:
    """Refuse to edit a file whose dataset is not encoded as its transfer syntax says.

    pydicom reads such a file (with a warning) by guessing the real encoding, but any
    element written into it would follow the declared one, and the result could be read
    by nothing. An unchanged copy stays possible.
    """
    meta = getattr(ds, "file_meta", None)
    tsuid = meta.get("TransferSyntaxUID") if meta is not None else None
    if tsuid is None or not tsuid.is_transfer_syntax:
        return
    for elem in ds._dict.values():
        implicit = getattr(elem, "is_implicit_VR", None)
        if implicit is not None:
            if implicit != tsuid.is_implicit_VR:
                declared = "implicit" if tsuid.is_implicit_VR else "explicit"
                actual = "implicit" if implicit else "explicit"
                raise EditError(
                    f"its transfer syntax ({tsuid.name}) says {declared} VR but "
                    f"the dataset is encoded {actual} VR; an edited copy would be unreadable, "
                    "so it is refused. Re-encode the file first (e.g. dcmconv +ti/+te)."
                )
            return


def _pydicom_edit(
    src: Path,
    data: bytes,
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    cache: dict[Any, Any] | None,
    mapping: dict[str, str] | None,
) -> tuple[bytes, list[Change], str]:
    ds = read_for_edit(src, data=data)
    before = snapshot(ds)
    changes = apply_edits(ds, edits, cache=cache)
    if regenerate:  # generate_uid(entropy) is deterministic: threads and processes agree
        changes += regenerate_uids(ds, mapping if mapping is not None else {}, run_id)
    touched = {parse_path(c.path)[0][0] for c in changes}
    if touched:
        _refuse_mismatched_encoding(ds, src)
    # the file meta changes only with the SOP Class / Instance UIDs
    meta_changed = regenerate or bool(touched & {0x00080016, 0x00080018})
    spliced = splice(data, ds, touched, before, meta_changed) if touched else data
    if spliced is None:
        return encode_dataset(ds, src.name), changes, "full"
    return spliced, changes, "splice"


Task = tuple[Path, Path, "Path | None"]


@dataclass(frozen=True)
class IndexPatch:
    """What the workspace index needs to derive a written file's row from its source's.

    Attributes
    ----------
    src_size, src_mtime_ns : int
        The source file's size and modification time (ns) when it was read: its index
        row may serve only if it records exactly these.
    size, mtime_ns : int
        The written file's size and modification time (ns).
    values : tuple of (int, str, object), or None
        ``(tag, header key, header value)`` of each top-level element the edits set or
        added, as the indexer shows it (:func:`~dicomflow_lab.core.dataset.header_to_dict`
        on the element's new bytes, with the file's character set), in tag order.
        ``None`` when the file must be read again by the indexer (see
        :func:`index_values`).
    deleted : tuple of str
        Header keys of the top-level elements the edits deleted.
    """

    src_size: int
    src_mtime_ns: int
    size: int
    mtime_ns: int
    values: tuple[tuple[int, str, Any], ...] | None
    deleted: tuple[str, ...] = ()


class Written(list[Change]):
    """The changes applied to one written file, with its :class:`IndexPatch`."""

    def __init__(self, changes: Iterable[Change], patch: IndexPatch) -> None:
        super().__init__(changes)
        self.patch = patch


def _read_with_stat(path: Path) -> tuple[bytes, os.stat_result]:
    """Read a whole file and return its status as of that read."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        return fh.read(), st


#: Top-level elements whose change makes the indexer read the file differently (the
#: character set decodes every text; the SOP UIDs decide whether the file is an
#: instance and a DICOMDIR; the image size attributes are checked against Pixel Data's
#: length) or that the file meta follows: after an edit of one of them the file is
#: indexed afresh.
_REINDEX_TAGS = frozenset(
    {
        0x00080005,  # Specific Character Set
        0x00080016,  # SOP Class UID
        0x00080018,  # SOP Instance UID
        0x00041220,  # Directory Record Sequence
        0x00280002,  # Samples per Pixel
        0x00280008,  # Number of Frames
        0x00280010,  # Rows
        0x00280011,  # Columns
        0x00280100,  # Bits Allocated
    }
)
_PIXEL_GROUP = 0x7FE00000
_INDEX_CACHE_LIMIT = 4096
_DEFER_SIZE = HeaderReadOptions().defer_size  # what Workspace.index reads with


def index_values(
    data: bytes,
    changes: Sequence[Change],
    cache: dict[Any, Any] | None = None,
    how: str = "splice",
) -> tuple[tuple[tuple[int, str, Any], ...], tuple[str, ...]] | None:
    """Return the index values of the top-level elements `changes` touched in `data`.

    `data` must be the edited file, written by replacing only the touched top-level
    elements of a file whose index row is otherwise still right (the splice and the
    fast path; not a full pydicom write, which may change any byte). Each touched
    element present in `data` is decoded by the indexer's own code
    (:func:`~dicomflow_lab.core.dataset.header_to_dict` on a dataset of its raw bytes
    and the file's Specific Character Set, as the indexer reads them).

    Parameters
    ----------
    data : bytes
        The edited file.
    changes : sequence of Change
        The changes that produced it.
    cache : dict, optional
        Shared across the files of a batch, keyed by the exact raw bytes decoded.
    how : str, optional
        ``fast`` when `data` was written by the fast path (so the whole file passes
        :func:`~dicomflow_lab.core._write_fast.scan_layout`, and walking its elements
        up to the last touched one suffices); ``splice`` walks the whole file.

    Returns
    -------
    tuple or None
        ``(values, deleted)`` as in :class:`IndexPatch`, or ``None`` when the file must
        be indexed afresh: edits inside sequences or of sequence items, of file meta,
        group lengths, repeating-group or :data:`_REINDEX_TAGS` elements, of Pixel
        Data or elements after it, a sequence or long (deferred) value, or a file the
        top-level walk
        (:func:`~dicomflow_lab.core._write_fast.scan_layout`) declines.
    """
    tags: set[int] = set()
    for change in changes:
        if change.op not in ("set", "add", "delete"):
            return None
        parts = parse_path(change.path)
        if len(parts) != 1 or parts[0][1] is not None:
            return None
        tags.add(parts[0][0])
    if not tags:
        return (), ()
    for tag in tags:
        if tag >> 16 <= 0x0002 or tag & 0xFFFF == 0 or tag in _REINDEX_TAGS:
            return None
        if tag >= _PIXEL_GROUP:
            return None  # Pixel Data and what follows it: the indexer stops before it
        if keyword_for_tag(tag) and tag not in DicomDictionary:
            return None  # a repeating group (50xx, 60xx): several tags share a key
    layout = _head_layout(data, max(tags)) if how == "fast" else scan_layout(data)
    if layout is None:
        return None
    found: dict[int, int] = {}
    for tag in (_CHARSET, *tags):
        k = bisect.bisect_left(layout.tags, tag)
        if k < len(layout.tags) and layout.tags[k] == tag:
            found[tag] = k
    present = sorted(t for t in tags if t in found)
    deleted = tuple(_keyword(t) for t in sorted(tags) if t not in found)
    raw = tuple(
        (t, layout.vr(data, found[t]), layout.value(data, found[t]))
        for t in sorted(found)  # the character set included
    )
    key = ("index_values", layout.implicit, raw)
    cached = None if cache is None else cache.get(key)
    if cached is None:
        cached = _decode_for_index(data, layout, present)
        if cache is not None:
            if len(cache) >= _INDEX_CACHE_LIMIT:
                cache.clear()
            cache[key] = cached
    if cached is False:
        return None
    return cached, deleted


def _head_layout(data: bytes, upto: int) -> Layout | None:
    """:func:`~dicomflow_lab.core._write_fast.scan_layout`'s walk, stopped after `upto`.

    Only for a file known to pass the whole walk: the layout lists the top-level
    elements up to the first one with a tag above `upto` (each with its end).
    """
    try:
        size = len(data)
        pos, tsuid = _wf._meta(data, 132)
        implicit = bool(UID(tsuid).is_implicit_VR)
        tags: list[int] = []
        starts: list[int] = []
        unpack = _wf._implicit_head if implicit else _wf._explicit_head
        while pos < size:
            if implicit:
                group, elem, length = unpack(data, pos)
                vr, head = None, 8
            else:
                group, elem, vr, length = unpack(data, pos)
                head = 8
                if vr in _wf._LONG_VRS:
                    length, head = _wf._u32(data, pos + 8)[0], 12
            tag = group << 16 | elem
            tags.append(tag)
            starts.append(pos)
            if length == _wf._UNDEFINED:
                if not _wf._undefined_allowed(tag, vr, implicit):
                    return None
                pos = _wf._skip_items(data, pos + head, implicit, 0)
            else:
                pos += head + length
            if tag > upto:
                break
        starts.append(pos)
        return _wf.Layout(implicit, tags, starts)
    except (_wf._Decline, struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None


def _decode_for_index(data: bytes, layout: Layout, present: Sequence[int]) -> Any:
    """Decode elements as the indexer would; ``False`` when it must read the file."""
    for tag in present:
        k = bisect.bisect_left(layout.tags, tag)
        vr = layout.vr(data, k)
        vr_name = vr.decode("ascii") if vr is not None else _dict_vr(tag)
        if vr_name in ("SQ", "UN") or len(layout.value(data, k)) > _DEFER_SIZE:
            return False  # long values: the indexer's readers differ in how they defer
    try:
        ds = _partial_dataset(data, layout, frozenset(present))
        if _CHARSET in ds._dict:
            # a full read (dcmread, as the indexer's) converts Specific Character Set
            # while reading; header_to_dict reads a converted one differently
            ds[_CHARSET]  # the access converts the raw element
        header = header_to_dict(ds)
    except Exception:
        return False
    values = []
    for tag in present:
        key = _keyword(tag)
        if key not in header:
            return False
        values.append((tag, key, header[key]))
    return tuple(values)


def run_chunk(
    tasks: Sequence[Task],
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    cache: dict[Any, Any] | None = None,
    mapping: dict[str, str] | None = None,
    *,
    index_patches: bool = False,
) -> list[list[Change] | BaseException | None]:
    """Edit several files and write them atomically, durable before any rename.

    Each task is ``(src, dst, backup)``. The edited files (and the backups of the
    originals, for in-place edits) are written to temporary files beside their
    targets, a few files (:data:`_BATCH`) at a time. Each such batch is then made
    durable (an ``fsync`` of every file, several at once, on threads, while the next
    batch is being edited); only then are its backups renamed into place and their
    folders flushed, and then its outputs renamed over their targets and their folders
    flushed. After a failure the files not yet started are skipped; those before it are
    still written.

    Returns
    -------
    list
        One entry per task, in order: its changes, the exception that stopped it, or
        ``None`` for a file skipped after a failure. With `index_patches`, the changes
        come as a :class:`Written` list that also carries the file's
        :class:`IndexPatch`.
    """
    cache = {} if cache is None else cache
    mapping = {} if mapping is None else mapping
    out: list[list[Change] | BaseException | None] = [None] * len(tasks)
    batch, flushing = _Batch(), None
    folders: set[Path] = set()  # output folders, flushed once at the end
    try:
        for k, (src, dst, backup) in enumerate(tasks):
            try:
                data, before = _read_with_stat(src)
                new, changes, how = _edit_bytes(
                    src, data, edits, regenerate, run_id, cache, mapping
                )
                if backup is not None:
                    batch.backups.add(backup, data, like=src)
                after = batch.outputs.add(dst, new)
            except Exception as exc:
                out[k] = exc
                break
            if index_patches:
                values = None if how == "full" else index_values(new, changes, cache, how)
                patch = IndexPatch(
                    before.st_size,
                    before.st_mtime_ns,
                    after.st_size,
                    after.st_mtime_ns,
                    None if values is None else values[0],
                    () if values is None else values[1],
                )
                changes = Written(changes, patch)
            out[k] = changes
            batch.done.append(k)
            if len(batch.done) >= _BATCH:
                batch.start_sync()
                if flushing is not None and not flushing.finish(out, folders):
                    batch.finish(out, folders, abort=True)
                    return out
                batch, flushing = _Batch(), batch
        batch.start_sync()
        ok = flushing is None or flushing.finish(out, folders)
        batch.finish(out, folders, abort=not ok)
        return out
    except BaseException:  # e.g. KeyboardInterrupt: leave no temporary file behind
        for pending in (flushing, batch):
            if pending is not None:
                pending.finish(out, folders, abort=True)
        raise
    finally:
        for folder in folders:
            fsync_dir(folder)


_BATCH = 16  # files made durable together; the next batch is edited meanwhile


class _Batch:
    """Backups and outputs of a few files, flushed on threads, then published."""

    def __init__(self) -> None:
        self.backups, self.outputs = _Staged(), _Staged()
        self.done: list[int] = []
        self._syncs: list[Any] = []

    def start_sync(self) -> None:
        """Start the ``fsync`` of every temporary file (on the flush threads)."""
        pool = _fsync_pool()
        fds = [*self.backups.fds(), *self.outputs.fds()]
        self._syncs = [pool.submit(os.fsync, fd) for fd in fds]

    def finish(self, out: list[Any], folders: set[Path], *, abort: bool = False) -> bool:
        """Wait for the flushes, rename backups then outputs; mark failures in `out`.

        The backups' folders are flushed before any output is renamed; the outputs'
        folders are added to `folders` for the caller to flush.

        Returns
        -------
        bool
            Whether every file of the batch was written.
        """
        try:
            # every flush must be over before a descriptor is closed
            failed = [e for e in (sync.exception() for sync in self._syncs) if e is not None]
            if failed:
                raise failed[0]
            if abort:
                raise _Skipped
            self.backups.publish()
            self.outputs.publish(sync_folders=False)
            return True
        except Exception as exc:
            self.backups.abort()
            self.outputs.abort()
            for k in self.done[self.outputs.renamed :]:
                out[k] = None if isinstance(exc, _Skipped) else exc
            return False
        finally:
            if self.outputs.renamed:
                folders.update(self.outputs.folders)


class _Skipped(Exception):
    """An earlier batch failed: this one is not written."""


def edit_chunk(
    tasks: Sequence[Task],
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    index_patches: bool = False,
) -> list[list[Change] | str | None]:
    """:func:`run_chunk` for a worker process: failures become ``"Type: message"``."""
    return [
        f"{type(r).__name__}: {r}" if isinstance(r, BaseException) else r
        for r in run_chunk(tasks, edits, regenerate, run_id, index_patches=index_patches)
    ]


def edit_file(
    src: Path,
    dst: Path,
    backup: Path | None,
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    cache: dict[Any, Any] | None = None,
    mapping: dict[str, str] | None = None,
) -> tuple[Path, Path, Path | None, list[Change]]:
    """Edit one file (see :func:`run_chunk`); return ``(src, dst, backup, changes)``.

    Raises
    ------
    EditError
        A refused edit, prefixed with the file name.
    """
    (result,) = run_chunk([(src, dst, backup)], edits, regenerate, run_id, cache, mapping)
    if isinstance(result, BaseException):
        raise result
    assert result is not None
    return src, dst, backup, result


class _Staged:
    """Temporary files written now, made durable and renamed later by :func:`_commit`."""

    def __init__(self) -> None:
        self._files: list[tuple[int, str, Path]] = []
        self.folders: set[Path] = set()
        self.renamed = 0

    def add(self, target: Path, data: bytes, *, like: Path | None = None) -> os.stat_result:
        """Write `data` to a new temporary file beside `target` (not yet synced).

        The file gets the permissions of `like` (a backup: its original), else of the
        `target` it replaces, else those of a new file.

        Returns the temporary file's status after the write: its size and modification
        time are the target's once renamed (a rename changes neither).
        """
        folder = target.parent
        if folder not in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            self.folders.add(folder)
        fd, tmp = create_temp(target, like=like)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        self._files.append((fd, tmp, target))
        return st

    def fds(self) -> list[int]:
        """Return the descriptors of the temporary files not renamed yet."""
        return [fd for fd, _tmp, _target in self._files]

    def publish(self, *, sync_folders: bool = True) -> None:
        """Rename every (already flushed) file into place, then flush their folders."""
        while self._files:
            fd, tmp, target = self._files[0]
            os.close(fd)
            self._files[0] = (-1, tmp, target)
            os.replace(tmp, target)
            self._files.pop(0)
            self.renamed += 1
        if sync_folders:
            for folder in self.folders:
                fsync_dir(folder)

    def abort(self) -> None:
        """Remove the temporary files not renamed yet."""
        for fd, tmp, _target in self._files:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._files = []


_FSYNC_THREADS = 8
_FSYNC_POOL: ThreadPoolExecutor | None = None


def _fsync_pool() -> ThreadPoolExecutor:
    global _FSYNC_POOL
    if _FSYNC_POOL is None:
        _FSYNC_POOL = ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="dfl-fsync")
    return _FSYNC_POOL

"""Writing edited datasets: atomically, in their own transfer syntax, bytes kept.

Two ways, same result:

- :func:`write_dataset` hands the whole dataset to pydicom (``save_as`` with
  ``enforce_file_format=True``); Pixel Data and every other value are written back from
  what pydicom read, in the transfer syntax of the file meta.
- :func:`splice` is the fast path for the usual case (a few top-level elements
  changed): it copies the original file's bytes and replaces only the changed top-level
  elements by pydicom's own encoding of them (``filewriter.write_data_element``). Every
  other byte, Pixel Data included, is the original's. It declines (returns ``None``)
  whenever the result could differ from a full write: no file meta, big endian or
  deflated transfer syntaxes, a changed file meta or Specific Character Set, group
  length elements in a touched group, or an element whose position is not certain.
"""

from __future__ import annotations

import bisect
import io
import struct
from collections.abc import Iterable, Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.charset import convert_encodings
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import UID

from dicomflow_lab._fsutil import atomic_write_bytes, atomic_writer, fsync_dir
from dicomflow_lab.core.edit import Change, Edit, apply_edits, regenerate_uids
from dicomflow_lab.core.tags import parse_path
from dicomflow_lab.errors import DicomReadError, EditError

__all__ = [
    "Snapshot",
    "edit_chunk",
    "edit_file",
    "read_for_edit",
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


def write_dataset(ds: Dataset, target: Path, *, fsync_folder: bool = True) -> None:
    """Write `ds` to `target` atomically with pydicom, in its own transfer syntax.

    A dataset with file meta is written as a DICOM file (``enforce_file_format=True``)
    in the transfer syntax its meta names (missing Media Storage SOP UIDs are filled from
    the dataset). One read from a file without file meta is written the same way, in its
    original encoding.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.
    target : pathlib.Path
        The file; its folder is created.

    Raises
    ------
    EditError
        When pydicom refuses to write the dataset (the reason is in the message).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = getattr(ds, "file_meta", None)
    try:
        with atomic_writer(target, fsync_folder=fsync_folder) as fh:
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
        raise EditError(f"{target.name} cannot be written: {exc}") from exc


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
            fp = DicomBytesIO()
            fp.is_little_endian = True
            fp.is_implicit_VR = before.implicit
            try:
                write_data_element(fp, ds[tag], encodings)
            except Exception:
                return None
            out.write(fp.getvalue())
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
    """Read `src`, apply `edits`, back it up if asked, and write `dst` atomically.

    The fast path (:func:`splice`) is used when it is safe, else a full pydicom write.

    Returns
    -------
    tuple
        ``(src, dst, backup, changes)``.

    Raises
    ------
    EditError
        A refused edit, prefixed with the file name.
    """
    data = src.read_bytes()
    ds = read_for_edit(src, data=data)
    before = snapshot(ds)
    try:
        changes = apply_edits(ds, edits, cache=cache)
    except EditError as exc:
        raise EditError(
            f"{src.name}: {exc}", path=exc.path, tag=exc.tag, vr=exc.vr, rule=exc.rule
        ) from exc
    if regenerate:  # generate_uid(entropy) is deterministic: threads and processes agree
        changes += regenerate_uids(ds, mapping if mapping is not None else {}, run_id)
    if backup is not None:
        backup.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(backup, data, fsync_folder=False)
    touched = {parse_path(c.path)[0][0] for c in changes}
    # the file meta changes only with the SOP Class / Instance UIDs
    meta_changed = regenerate or bool(touched & {0x00080016, 0x00080018})
    spliced = splice(data, ds, touched, before, meta_changed) if touched else data
    if spliced is None:
        write_dataset(ds, dst, fsync_folder=False)
    else:
        write_bytes(spliced, dst, fsync_folder=False)
    return src, dst, backup, changes


def edit_chunk(
    tasks: Sequence[tuple[Path, Path, Path | None]],
    edits: Sequence[Edit],
    regenerate: bool,
    run_id: str,
    threads: int = 4,
) -> list[tuple[Path, Path, Path | None, list[Change]] | str | None]:
    """Run :func:`edit_file` on several files (a worker-process task).

    Files are handled by a few threads, so that one file's fsync overlaps with the
    next one's parsing. After a failure the files not yet started are skipped.

    Returns
    -------
    list
        One entry per task, in order: the result, the failure as its message
        (``"EditError: ..."``), or ``None`` for a file skipped after a failure.
    """
    cache: dict[Any, Any] = {}
    mapping: dict[str, str] = {}
    out: list[tuple[Path, Path, Path | None, list[Change]] | str | None] = [None] * len(tasks)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [
            pool.submit(edit_file, src, dst, backup, edits, regenerate, run_id, cache, mapping)
            for src, dst, backup in tasks
        ]
        for k, future in enumerate(futures):
            try:
                out[k] = future.result()
            except CancelledError:
                continue
            except Exception as exc:
                out[k] = f"{type(exc).__name__}: {exc}"
                for later in futures[k + 1 :]:
                    later.cancel()
    # files were fsynced one by one; their folder entries once per folder, here
    folders = {p.parent for src, dst, backup in tasks for p in (dst, backup) if p is not None}
    for folder in folders:
        if folder.is_dir():
            fsync_dir(folder)
    return out

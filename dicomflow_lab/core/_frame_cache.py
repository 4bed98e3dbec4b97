"""The caches behind :mod:`dicomflow_lab.core.pixels`.

:class:`FrameCache` (re-exported by ``pixels``) is a thread-safe LRU of decoded frames
bounded by bytes. The private header cache keeps the parsed header of the last files
read, with where their pixel data start, so scrolling through a multi-frame file or back
and forth in a series parses each header once.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicomflow_lab.core.dataset import guess_transfer_syntax, read_header
from dicomflow_lab.errors import DicomReadError, PixelDataError

if TYPE_CHECKING:
    from dicomflow_lab.core.pixels import Frame

__all__ = ["FrameCache", "frame_key"]

logger = logging.getLogger(__name__)


def frame_key(path: str | os.PathLike[str], index: int) -> tuple[str, int, int]:
    """Return the cache key of one frame of a file: ``(path, mtime_ns, index)``.

    The absolute path and the file's modification time are both part of the key, so a
    rewritten file is never served from a stale entry.

    Parameters
    ----------
    path : str or os.PathLike
        The DICOM file.
    index : int
        The frame index (0-based).

    Returns
    -------
    tuple
        ``(absolute path, st_mtime_ns, index)``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    """
    fspath = os.path.abspath(os.fspath(path))
    return (fspath, os.stat(fspath).st_mtime_ns, int(index))


class FrameCache:
    """Least-recently-used cache of :class:`~dicomflow_lab.core.pixels.Frame` objects.

    The bound is on the bytes of the frames' value arrays (``Frame.nbytes``), not on
    their number. A frame larger than the whole limit is not cached. Every method takes
    one lock, so one cache may be shared by the viewer's threads.

    Parameters
    ----------
    limit_bytes : int, optional
        Upper bound of :attr:`bytes_used` (default 512 MiB).

    Examples
    --------
    >>> cache = FrameCache(limit_bytes=64 * 2**20)
    >>> cache.bytes_used
    0
    """

    def __init__(self, limit_bytes: int = 512 * 2**20) -> None:
        if limit_bytes < 0:
            raise ValueError(f"limit_bytes must be >= 0, not {limit_bytes}")
        self.limit_bytes = int(limit_bytes)
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Frame] = OrderedDict()
        self._bytes = 0

    @property
    def bytes_used(self) -> int:
        """Total ``nbytes`` of the cached frames."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: Hashable) -> Frame | None:
        """Return the cached frame for `key` (marking it most recently used), or None."""
        with self._lock:
            frame = self._items.get(key)
            if frame is not None:
                self._items.move_to_end(key)
            return frame

    def put(self, key: Hashable, frame: Frame) -> None:
        """Store `frame` under `key`, evicting least recently used frames to fit."""
        size = int(frame.nbytes)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= int(old.nbytes)
            if size > self.limit_bytes:
                logger.debug("frame of %d bytes exceeds the cache limit; not cached", size)
                return
            while self._items and self._bytes + size > self.limit_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= int(evicted.nbytes)
            self._items[key] = frame
            self._bytes += size

    def clear(self) -> None:
        """Drop every cached frame."""
        with self._lock:
            self._items.clear()
            self._bytes = 0


_PIXEL_KEYWORDS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"})
_HEADER_CACHE_SIZE = 32


@dataclass(frozen=True)
class _PixelElement:
    keyword: str
    vr: str | None  # None when implicit VR
    offset: int  # file offset of the value
    length: int  # 0xFFFFFFFF when undefined (encapsulated)


@dataclass
class _Header:
    path: str
    ds: Dataset  # everything before the pixel data (the whole dataset when deflated)
    transfer_syntax: str
    frames: int
    pixel: _PixelElement | None
    deflated: bool
    memo: dict[str, Any] = field(default_factory=dict)


_headers: OrderedDict[tuple[str, int, int], _Header] = OrderedDict()
_headers_lock = threading.Lock()


def _header(path: str | os.PathLike[str]) -> _Header:
    fspath = os.fspath(path)
    try:
        st = os.stat(fspath)
    except OSError as exc:
        raise PixelDataError(f"{fspath}: cannot open: {exc.strerror or exc}") from exc
    key = (os.path.abspath(fspath), st.st_mtime_ns, st.st_size)
    with _headers_lock:
        found = _headers.get(key)
        if found is not None:
            _headers.move_to_end(key)
            return found
    h = _load_header(fspath)
    with _headers_lock:
        _headers[key] = h
        while len(_headers) > _HEADER_CACHE_SIZE:
            _headers.popitem(last=False)
    return h


def _load_header(fspath: str) -> _Header:
    try:
        ds = read_header(fspath)
    except DicomReadError as exc:
        raise PixelDataError(f"{fspath}: cannot read the file: {exc.reason}") from exc
    ts = guess_transfer_syntax(ds)
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        raise PixelDataError(
            f"{fspath}: invalid Number of Frames (0028,0008) "
            f"{ds.get('NumberOfFrames')!r}; the pixel data cannot be split into frames"
        ) from None
    if ts == DeflatedExplicitVRLittleEndian:
        # read_header has refused deflate bombs; pydicom inflates the whole dataset.
        try:
            full = pydicom.dcmread(fspath)
        except Exception as exc:
            raise PixelDataError(f"{fspath}: cannot inflate the deflated dataset: {exc}") from exc
        kw = next((kw for kw in _PIXEL_KEYWORDS.values() if kw in full), None)
        pixel = _PixelElement(kw, str(full[kw].VR), -1, -1) if kw else None
        return _Header(fspath, full, ts, max(frames, 1), pixel, True)
    try:
        pixel = _locate_pixels(fspath)
    except Exception as exc:  # pydicom raises many types on malformed input
        raise PixelDataError(f"{fspath}: cannot locate the pixel data: {exc}") from exc
    return _Header(fspath, ds, ts, max(frames, 1), pixel, False)


def _locate_pixels(fspath: str) -> _PixelElement | None:
    """Find the top-level pixel data element's value in the file."""
    with open(fspath, "rb") as fh:
        ds = pydicom.dcmread(fh, stop_before_pixels=True, defer_size=256, force=True)
        at = fh.tell()
        hdr = fh.read(12)
    if len(hdr) < 8:
        return None
    little = ds.original_encoding[1] is not False
    end = "<" if little else ">"
    group, elem = struct.unpack(end + "HH", hdr[:4])
    keyword = _PIXEL_KEYWORDS.get(group << 16 | elem)
    if keyword is None:
        return None
    # explicit or implicit from the bytes themselves: some files switch encoding
    vr = hdr[4:6]
    if vr in _LONG_VRS:
        if len(hdr) < 12:
            raise ValueError("the file ends inside the pixel data element header")
        (length,) = struct.unpack(end + "L", hdr[8:12])
        return _PixelElement(keyword, vr.decode("ascii"), at + 12, length)
    (length,) = struct.unpack(end + "L", hdr[4:8])
    return _PixelElement(keyword, None, at + 8, length)

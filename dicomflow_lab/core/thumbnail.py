"""Small static previews (PNG) of a DICOM frame, for summaries and saved notebooks.

The frame goes through the viewer's own display pipeline (:mod:`dicomflow_lab.core.voi`:
modality LUT, the file's first window or an automatic one, MONOCHROME1 inversion,
colour as RGB), then is shrunk by averaging blocks of pixels.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from dicomflow_lab._fsutil import atomic_write_bytes
from dicomflow_lab.core import voi
from dicomflow_lab.core.pixels import read_frame

__all__ = ["cached_thumbnail_png", "thumbnail_png"]


def _shrink(img: np.ndarray, size: int) -> np.ndarray:
    step = max(1, int(np.ceil(max(img.shape[:2]) / size)))
    if step == 1:
        return img
    rows, cols = img.shape[0] // step * step, img.shape[1] // step * step
    if rows == 0 or cols == 0:
        return np.ascontiguousarray(img[::step, ::step])
    blocks = img[:rows, :cols].astype(np.float32)
    blocks = blocks.reshape(rows // step, step, cols // step, step, *img.shape[2:])
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def thumbnail_png(path: str | os.PathLike[str], size: int = 128, frame: int = 0) -> bytes:
    """Render one frame of a file as a PNG no larger than `size` pixels per side.

    Parameters
    ----------
    path : path-like
        The DICOM file.
    size : int, optional
        The longest side of the thumbnail, in pixels.
    frame : int, optional
        The frame index for multi-frame files.

    Returns
    -------
    bytes
        PNG data.

    Raises
    ------
    PixelDataError
        If the file has no pixel data or it cannot be decoded (the message names the
        transfer syntax and what to install).
    IndexError
        If `frame` is out of range.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, not {size}")
    image = voi.render(read_frame(path, frame))
    return voi.to_png(np.ascontiguousarray(_shrink(image, size)))


def cached_thumbnail_png(
    path: str | os.PathLike[str], folder: str | os.PathLike[str], size: int = 96, frame: int = 0
) -> bytes:
    """Like :func:`thumbnail_png`, kept on disk in `folder` (a workspace's thumbnails).

    The cache key is the file's path, size and modification time, the frame and the size,
    so an edited file gets a new thumbnail; entries are written atomically.

    Parameters
    ----------
    path : path-like
        The DICOM file.
    folder : path-like
        The cache folder (created if needed).
    size : int, optional
        The longest side of the thumbnail, in pixels.
    frame : int, optional
        The frame index.

    Returns
    -------
    bytes
        PNG data.
    """
    fspath = os.fspath(path)
    st = os.stat(fspath)
    key = f"{fspath}\0{st.st_mtime_ns}\0{st.st_size}\0{frame}\0{size}".encode()
    cached = Path(folder) / f"{hashlib.sha1(key).hexdigest()}.png"
    if cached.is_file():
        return cached.read_bytes()
    png = thumbnail_png(fspath, size=size, frame=frame)
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(cached, png, fsync=False)
    return png

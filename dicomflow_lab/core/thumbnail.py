"""Small static previews (PNG) of a DICOM frame, for summaries and saved notebooks.

This is a deliberately small path (pydicom's modality and VOI LUTs, then 8 bits); the
viewer's full display pipeline lives in :mod:`dicomflow_lab.core.voi`.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, apply_voi_lut, convert_color_space

from dicomflow_lab.errors import PixelDataError

__all__ = ["thumbnail_png", "to_uint8"]


def to_uint8(ds: pydicom.Dataset, frame: np.ndarray) -> np.ndarray:
    """Map one decoded frame to 8-bit display values (grey or RGB).

    Parameters
    ----------
    ds : pydicom.Dataset
        The dataset the frame belongs to (for the LUT attributes).
    frame : numpy.ndarray
        One frame as returned by ``pydicom.pixels.pixel_array(..., index=i)``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array, 2-D for greyscale, 3-D RGB for colour.
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if frame.ndim == 3 and frame.shape[-1] == 3:
        if photometric.startswith("YBR"):
            frame = convert_color_space(frame, photometric, "RGB")
        return _stretch(frame.astype(np.float64), 0, 2 ** int(ds.get("BitsStored", 8)) - 1)
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(frame, ds)
        return _stretch(rgb.astype(np.float64), 0, float(rgb.max()) or 1.0)
    values = apply_modality_lut(frame, ds).astype(np.float64)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float64)
        low, high = float(values.min()), float(values.max())
        if "WindowCenter" in ds and "VOILUTSequence" not in ds:
            bits = int(ds.get("BitsStored", 16))
            low, high = _window_range(ds, values, bits)
    else:
        low, high = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
    out = _stretch(values, float(low), float(high))
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


def _window_range(ds: pydicom.Dataset, values: np.ndarray, bits: int) -> tuple[float, float]:
    # apply_voi_lut maps into the output range [y_min, y_max] of the stored type
    high = float(values.max())
    if ds.get("PixelRepresentation", 0) == 0:
        return 0.0, float(2**bits - 1) if high > 0 else 1.0
    return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        high = low + 1.0
    scaled = (values - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


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
    """
    from matplotlib import image as mpimg

    try:
        ds = pydicom.dcmread(os.fspath(path))
        if "PixelData" not in ds and "FloatPixelData" not in ds:
            raise PixelDataError(f"{os.fspath(path)}: no pixel data")
        from pydicom.pixels import pixel_array

        arr = (
            pixel_array(ds, index=frame)
            if int(ds.get("NumberOfFrames", 1) or 1) > 1
            else ds.pixel_array
        )
    except PixelDataError:
        raise
    except Exception as exc:
        ts = (
            getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
            if "ds" in locals()
            else "unknown"
        )
        raise PixelDataError(
            f"{os.fspath(path)}: cannot decode pixel data (transfer syntax {ts}): {exc}"
        ) from exc
    img = to_uint8(ds, arr)
    step = max(1, int(np.ceil(max(img.shape[:2]) / size)))
    img = img[::step, ::step]
    buf = io.BytesIO()
    if img.ndim == 2:
        mpimg.imsave(buf, img, cmap="gray", vmin=0, vmax=255, format="png")
    else:
        mpimg.imsave(buf, img, format="png")
    return buf.getvalue()

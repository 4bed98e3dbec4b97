"""The numpy reference of the greyscale display pipeline (PS3.3 C.11).

stored value → modality LUT (Rescale Slope/Intercept or Modality LUT Sequence,
C.11.1) → VOI (window LINEAR / LINEAR_EXACT / SIGMOID, C.11.2.1.2–3, or VOI LUT
Sequence, C.11.2.1.1) → 0–255 → MONOCHROME1 inversion (after the VOI, C.7.6.3.1.2).

This module is the one reference: the viewer's browser code is tested against
:func:`render` and :func:`lut` (±1 grey level), and :func:`render` is tested against
pydicom's ``apply_modality_lut`` / ``apply_voi_lut`` on pydicom's own test files.
"""

from __future__ import annotations

import io
import logging

import numpy as np

from dicomflow_lab.core.pixels import DisplayParams, Frame, WindowPreset

__all__ = [
    "CT_PRESETS",
    "auto_window",
    "lut",
    "modality",
    "presets_for",
    "render",
    "to_png",
    "window",
]

logger = logging.getLogger(__name__)

#: Common CT windows (center/width in HU).
CT_PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset("Brain", 40.0, 80.0, "ct"),
    WindowPreset("Subdural", 75.0, 215.0, "ct"),
    WindowPreset("Stroke", 40.0, 40.0, "ct"),
    WindowPreset("Lung", -600.0, 1500.0, "ct"),
    WindowPreset("Mediastinum", 50.0, 350.0, "ct"),
    WindowPreset("Abdomen", 50.0, 400.0, "ct"),
    WindowPreset("Liver", 30.0, 150.0, "ct"),
    WindowPreset("Bone", 400.0, 1800.0, "ct"),
)

_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
_AUTO_SAMPLE = 1 << 20  # percentiles from at most about this many values


def modality(values: np.ndarray, params: DisplayParams) -> np.ndarray:
    """Apply the Modality LUT (PS3.3 C.11.1): stored values to modality values.

    Parameters
    ----------
    values : numpy.ndarray
        Stored values (any shape).
    params : DisplayParams
        ``modality_lut`` if present (values below its first mapped value take the
        first entry, above its end the last), else ``slope`` and ``intercept``.

    Returns
    -------
    numpy.ndarray
        ``float64`` modality values (e.g. HU for CT).
    """
    if params.modality_lut is not None:
        first, table = params.modality_lut
        lut_values = np.asarray(table, dtype=np.float64)
        idx = np.clip(values.astype(np.int64) - int(first), 0, len(lut_values) - 1)
        return lut_values[idx]
    out = values.astype(np.float64)
    if params.slope != 1.0:
        out *= params.slope
    if params.intercept != 0.0:
        out += params.intercept
    return out


def window(x: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Apply a VOI window function, output range ``[0, 255]`` (PS3.3 C.11.2.1.2).

    Parameters
    ----------
    x : numpy.ndarray
        Modality values.
    center, width : float
        Window Center and Window Width.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
        VOI LUT Function (0028,1056):

        * LINEAR (C.11.2.1.2.1): ``x <= c - 0.5 - (w-1)/2`` → 0,
          ``x > c - 0.5 + (w-1)/2`` → 255, else ``((x - (c-0.5)) / (w-1) + 0.5) * 255``.
          A width below 1 is taken as 1 (a step at ``c - 0.5``).
        * LINEAR_EXACT (C.11.2.1.3.2): ``x <= c - w/2`` → 0, ``x > c + w/2`` → 255,
          else ``((x - c) / w + 0.5) * 255``.
        * SIGMOID (C.11.2.1.3.1): ``255 / (1 + exp(-4 (x - c) / w))``.

        For LINEAR_EXACT and SIGMOID a width <= 0 gives a step at ``c``.

    Returns
    -------
    numpy.ndarray
        ``float64`` values in ``[0, 255]``, not rounded.
    """
    function = function.upper()
    if function not in _FUNCTIONS:
        raise ValueError(f"unknown VOI LUT function {function!r}; use one of {_FUNCTIONS}")
    x = np.asarray(x, dtype=np.float64)
    c, w = float(center), float(width)
    if function == "SIGMOID":
        if w <= 0:
            return np.where(x > c, 255.0, np.where(x < c, 0.0, 127.5))
        # 255 / (1 + exp(t)), without overflow for large |t| (exp(700) is finite)
        with np.errstate(over="ignore", invalid="ignore"):
            t = np.clip(-4.0 * (x - c) / w, -700.0, 700.0)
        return 255.0 / (1.0 + np.exp(t))
    if function == "LINEAR":
        c, w = c - 0.5, max(w, 1.0) - 1.0
    elif w <= 0:
        w = 0.0
    low, high = c - w / 2, c + w / 2
    out = np.empty_like(x)
    below = x <= low
    above = x > high
    out[below] = 0.0
    out[above] = 255.0
    between = ~(below | above)
    if w > 0 and between.any():
        out[between] = ((x[between] - c) / w + 0.5) * 255.0
    return out


def _voi_table(x: np.ndarray, voi_lut: tuple[int, int, tuple[int, ...]]) -> np.ndarray:
    first, bits, table = voi_lut
    lut_values = np.asarray(table, dtype=np.float64)
    idx = np.clip(np.floor(x - first), 0, len(lut_values) - 1).astype(np.int64)
    top = float(2 ** max(int(bits), 1) - 1)
    return np.clip(lut_values[idx] * (255.0 / top), 0.0, 255.0)


def _default_window(params: DisplayParams, x: np.ndarray) -> tuple[float, float]:
    if params.windows:
        return params.windows[0].center, params.windows[0].width
    preset = _auto(x, params.is_float)
    return preset.center, preset.width


def _pipeline(
    x: np.ndarray,
    params: DisplayParams,
    center: float | None,
    width: float | None,
    invert: bool,
    use_voi_lut: bool,
) -> np.ndarray:
    """Modality values → uint8, the VOI and inversion stages."""
    explicit = center is not None or width is not None
    if params.voi_lut is not None and (use_voi_lut or (not explicit and not params.windows)):
        y = _voi_table(x, params.voi_lut)
    else:
        if center is None or width is None:
            c0, w0 = _default_window(params, x)
            center = c0 if center is None else center
            width = w0 if width is None else width
        y = window(x, center, width, params.voi_function)
    if params.invert != bool(invert):
        y = 255.0 - y
    return np.rint(y).astype(np.uint8)


def render(
    frame: Frame,
    center: float | None = None,
    width: float | None = None,
    *,
    invert: bool = False,
    use_voi_lut: bool = False,
) -> np.ndarray:
    """Render a frame to 8-bit display values (PS3.3 C.11).

    Parameters
    ----------
    frame : Frame
        From :func:`dicomflow_lab.core.pixels.read_frame`.
    center, width : float, optional
        The window. Default: the file's first window, else :func:`auto_window`. For
        RGB frames a window is applied to each channel only when given.
    invert : bool, optional
        Invert the display, on top of (XOR) MONOCHROME1's own inversion.
    use_voi_lut : bool, optional
        Use the VOI LUT Sequence instead of a window. Without a window (none given,
        none in the file) the VOI LUT Sequence is used anyway when present.

    Returns
    -------
    numpy.ndarray
        ``uint8``, ``(rows, cols)`` for grey or ``(rows, cols, 3)`` RGB.

    Examples
    --------
    >>> from dicomflow_lab.core.pixels import read_frame
    >>> img = render(read_frame("CT_small.dcm"), -600, 1500)  # doctest: +SKIP
    """
    params = frame.params
    if params.samples == 3:
        rgb = frame.values
        if center is not None or width is not None:
            # LINEAR 128/256 is the identity on 0..255
            c = 128.0 if center is None else center
            w = 256.0 if width is None else width
            rgb = np.rint(window(rgb, c, w, "LINEAR")).astype(np.uint8)
        if invert:
            rgb = 255 - rgb
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    x = modality(frame.values, params)
    return _pipeline(x, params, center, width, invert, use_voi_lut)


def _auto(x: np.ndarray, is_float: bool) -> WindowPreset:
    flat = x.ravel()
    flat = flat[np.isfinite(flat)]
    if flat.size > _AUTO_SAMPLE:
        flat = flat[:: flat.size // _AUTO_SAMPLE + 1]
    if flat.size == 0:
        return WindowPreset("Auto", 0.5, 1.0, "auto")
    low, high = (float(v) for v in np.percentile(flat, [0.5, 99.5]))
    integral = not is_float and bool(np.all(np.floor(flat[:4096]) == flat[:4096]))
    if integral:
        # LINEAR maps [c - 0.5 - (w-1)/2, c - 0.5 + (w-1)/2] = [low, high] onto 0..255
        width = high - low + 1.0
        return WindowPreset("Auto", low + width / 2, width, "auto")
    width = max(high - low, np.finfo(np.float32).eps)
    return WindowPreset("Auto", (low + high) / 2, width, "auto")


def auto_window(frame: Frame) -> WindowPreset:
    """Return a window spanning the 0.5–99.5 percentile range of the modality values.

    Parameters
    ----------
    frame : Frame
        A greyscale frame.

    Returns
    -------
    WindowPreset
        Named ``"Auto"``, ``source="auto"``. For integer modality values the LINEAR
        window maps the 0.5 percentile exactly to 0 and the 99.5 percentile to 255.
    """
    if frame.params.samples == 3:
        return WindowPreset("Auto", 128.0, 256.0, "auto")  # identity on 8-bit RGB
    return _auto(modality(frame.values, frame.params), frame.params.is_float)


def presets_for(frame: Frame) -> tuple[WindowPreset, ...]:
    """Return the file's windows, plus :data:`CT_PRESETS` when the values are HU.

    Parameters
    ----------
    frame : Frame
        A decoded frame.

    Returns
    -------
    tuple of WindowPreset
        ``frame.params.windows`` then the CT presets for CT / ``RescaleType`` HU.
    """
    params = frame.params
    if params.samples == 3:
        return ()
    if params.rescale_type.upper() == "HU":
        return params.windows + CT_PRESETS
    return params.windows


def lut(
    params: DisplayParams,
    center: float,
    width: float,
    *,
    invert: bool = False,
    use_voi_lut: bool = False,
) -> tuple[np.ndarray, int]:
    """Return the whole pipeline as a table over every stored value.

    Parameters
    ----------
    params : DisplayParams
        Of an integer greyscale frame with ``bits_stored <= 16``.
    center, width : float
        The window (ignored when the VOI LUT Sequence is used).
    invert : bool, optional
        As for :func:`render`.
    use_voi_lut : bool, optional
        As for :func:`render`.

    Returns
    -------
    table : numpy.ndarray
        ``uint8`` with ``2**bits_stored`` entries.
    offset : int
        Add it to a stored value to index `table`: ``2**(bits_stored-1)`` for signed
        data, else 0. ``table[v + offset] == render(...)`` for every stored value ``v``.

    Raises
    ------
    ValueError
        For colour, float or more than 16-bit data.
    """
    if params.samples != 1 or params.is_float or not 1 <= params.bits_stored <= 16:
        raise ValueError(
            "lut() needs integer greyscale data with 1..16 bits stored, not "
            f"{params.photometric} with {params.bits_stored} bits"
            + (" (float)" if params.is_float else "")
        )
    bits = params.bits_stored
    offset = 2 ** (bits - 1) if params.signed else 0
    stored = np.arange(-offset, 2**bits - offset, dtype=np.int64)
    x = modality(stored, params)
    return _pipeline(x, params, center, width, invert, use_voi_lut), offset


def to_png(image: np.ndarray) -> bytes:
    """Encode an 8-bit grey or RGB image as PNG (with Pillow), losslessly and fast.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8``, ``(rows, cols)`` or ``(rows, cols, 3)``, e.g. from :func:`render`.

    Returns
    -------
    bytes
        The PNG file.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"to_png needs uint8 values, not {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"to_png needs (rows, cols) or (rows, cols, 3), not {image.shape}")
    buf = io.BytesIO()
    # grey stays one channel ("L"); level 1 compresses a 512² CT in a few ms
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()

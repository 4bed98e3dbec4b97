"""The inline viewer: a thin widget over :mod:`dicomflow_lab.core.pixels` and ``voi``.

Frames travel once, as raw stored values in the buffers of custom messages that the
browser asks for; window/level runs in the browser (``static/viewer.js``). Synced traits
hold small state only — no pixels, and no identifying values: patient and study lines of
the corner annotations come by message, and only when ``show_phi`` is on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import traitlets as t
from ipywidgets import CallbackDispatcher

from dicomflow_lab._fsutil import atomic_write_bytes
from dicomflow_lab.errors import PixelDataError
from dicomflow_lab.widgets._base import BaseWidget, Reply
from dicomflow_lab.widgets._messages import Request
from dicomflow_lab.widgets._static import panel_style

if TYPE_CHECKING:  # pragma: no cover
    from dicomflow_lab.core.pixels import Frame, FrameCache
    from dicomflow_lab.study import Study

__all__ = ["Viewer"]

logger = logging.getLogger(__name__)

_CACHE: FrameCache | None = None
_CACHE_LOCK = threading.Lock()
#: Overlay planes a viewer keeps decoded, in frames and in bytes of masks (the frame
#: reply counts them, the overlay reply sends them: one read serves both).
_OVERLAY_CACHE_FRAMES = 256
_OVERLAY_CACHE_BYTES = 32 << 20


def frame_cache(limit_mb: int) -> FrameCache:
    """Return the process-wide decoded-frame cache (resized to `limit_mb` MiB)."""
    from dicomflow_lab.core.pixels import FrameCache

    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None or _CACHE.limit_bytes != limit_mb << 20:
            _CACHE = FrameCache(limit_mb << 20)
        return _CACHE


@dataclass(frozen=True)
class _SeriesFrames:
    """Where each frame of a series lives: (file path, frame index in the file)."""

    key: str
    frames: tuple[tuple[str, int], ...]


class Viewer(BaseWidget):
    """An inline DICOM viewer of one study, with window/level in the browser.

    Create it with :func:`dicomflow_lab.open` (or :meth:`Study.view`).

    Attributes
    ----------
    series_uid : str or None
        The SeriesInstanceUID on screen (set it to switch). The widget state itself only
        holds an opaque key (``series_key``, ``"s1"``, ...), so a saved notebook carries no
        UIDs.
    frame : int
        The frame index in the series, from 0 (set it to scroll).
    window_center, window_width : float
        The VOI window; the browser updates them when the user drags.
    invert : bool
        Invert grey levels on top of the dataset's own MONOCHROME1 inversion.
    annotations : bool
        Show corner annotations.
    show_phi : bool
        Allow patient and study lines in the annotations (off by default).
    overlays : bool
        Draw the frame's overlay planes (60xx groups) over the image; the toolbar's
        "Overlays" button is enabled for frames that have some.
    """

    _esm = Path(__file__).parent / "static" / "viewer.js"
    _css = panel_style("viewer.css")

    series = t.List(t.Dict()).tag(sync=True)
    series_key = t.Unicode("").tag(sync=True)
    frame = t.Int(0).tag(sync=True)
    n_frames = t.Int(0).tag(sync=True)
    window_center = t.Float(40.0).tag(sync=True)
    window_width = t.Float(400.0).tag(sync=True)
    voi_function = t.Unicode("LINEAR").tag(sync=True)
    invert = t.Bool(False).tag(sync=True)
    presets = t.List(t.Dict()).tag(sync=True)
    annotations = t.Bool(True).tag(sync=True)
    show_phi = t.Bool(False).tag(sync=True)
    overlays = t.Bool(False).tag(sync=True)
    cine_fps = t.Int(10).tag(sync=True)
    prefetch = t.Int(4).tag(sync=True)
    status = t.Unicode("").tag(sync=True)

    def __init__(self, study: Study, **kwargs: Any) -> None:
        self._study = study
        self._active = ""
        self._uid_of: dict[str, str | None] = {}
        self._wl_touched = False
        self._switching = False
        self._series_frames: dict[str, _SeriesFrames] = {}
        self._frame_callbacks = CallbackDispatcher()
        self._overlay_cache: OrderedDict[tuple[Any, ...], list[tuple[int, np.ndarray]]]
        self._overlay_cache = OrderedDict()
        self._overlay_bytes = 0
        self._overlay_lock = threading.Lock()
        ws = study.workspace
        self._cache = frame_cache(int(ws.get_setting("viewer.frame_cache_mb")))
        listing = self._load_series()
        kwargs.setdefault("show_phi", study.show_phi)
        super().__init__(series=listing, **kwargs)
        if listing and not self.series_key:
            self._switch_series(listing[0]["key"])
        self.observe(self._on_series_key, names=["series_key"])
        self.observe(self._on_frame, names=["frame"])
        self.observe(self._on_window, names=["window_center", "window_width"])

    # -- Python API ----------------------------------------------------------------
    @property
    def series_uid(self) -> str | None:
        """The SeriesInstanceUID on screen; set it (or :attr:`series_key`) to switch."""
        return self._uid_of.get(self.series_key)

    @series_uid.setter
    def series_uid(self, uid: str) -> None:
        for key, value in self._uid_of.items():
            if value == uid:
                self.series_key = key
                return
        known = ", ".join(f"{v} ({k})" for k, v in self._uid_of.items())
        raise KeyError(f"series {uid!r} is not part of this viewer; its series: {known}")

    @property
    def study(self) -> Study:
        """The :class:`~dicomflow_lab.study.Study` on screen."""
        return self._study

    def set_preset(self, name: str) -> None:
        """Apply a window preset by name (case-insensitive), e.g. ``"lung"``.

        Parameters
        ----------
        name : str
            One of :attr:`presets`' names (the dataset's own, CT presets, user presets).

        Raises
        ------
        KeyError
            If no preset has that name; the message lists the known ones.
        """
        for preset in self.presets:
            if preset["name"].lower() == name.lower():
                with self.hold_sync():
                    self.window_center = float(preset["center"])
                    self.window_width = float(preset["width"])
                return
        known = ", ".join(p["name"] for p in self.presets)
        raise KeyError(f"no window preset {name!r}; known presets: {known}")

    def on_frame_change(self, callback: Callable[[int], Any], remove: bool = False) -> None:
        """Call ``callback(frame_index)`` whenever the frame changes (or stop with remove).

        Parameters
        ----------
        callback : callable
            Receives the new frame index.
        remove : bool, optional
            Unregister `callback` instead.
        """
        self._frame_callbacks.register_callback(callback, remove=remove)

    def current_frame(self) -> Frame:
        """Decode (or fetch from the cache) the frame on screen."""
        path, index = self._locate(self.series_key, self.frame)
        return self._read(path, index)

    def render(self) -> Any:
        """Render the current view (frame, window, invert) as a uint8 array with core.voi."""
        from dicomflow_lab.core import voi

        frame = self.current_frame()
        # like the browser: a VOI LUT table (and no window) applies until W/L is changed
        use_table = bool(frame.params.voi_lut and not frame.params.windows and not self._wl_touched)
        return voi.render(
            frame,
            self.window_center,
            self.window_width,
            invert=self.invert,
            use_voi_lut=use_table,
        )

    def to_png(self, path: str | os.PathLike[str] | None = None) -> bytes:
        """Render the current view to PNG (no annotations), optionally writing it to `path`.

        Parameters
        ----------
        path : path-like, optional
            Where to write the PNG (atomically).

        Returns
        -------
        bytes
            The PNG data.
        """
        from dicomflow_lab.core import voi

        png = voi.to_png(self.render())
        if path is not None:
            atomic_write_bytes(path, png)
        return png

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        try:
            # a static image for notebooks saved without a kernel (GitHub, nbconvert);
            # it never carries annotations, so no patient data
            data["image/png"] = self.to_png()
        except Exception as exc:  # the live widget still works; say why there is no image
            logger.debug("no static image for the viewer: %s", exc)
        return data, meta

    # -- series and frames ---------------------------------------------------------
    def _load_series(self) -> list[dict[str, Any]]:
        inst = self._study.instances()
        listing: list[dict[str, Any]] = []
        for position, (uid, rows) in enumerate(
            inst.groupby("SeriesInstanceUID", dropna=False, sort=False)
        ):
            key = f"s{position + 1}"  # opaque: no UID in widget state
            self._uid_of[key] = uid if isinstance(uid, str) and uid else None
            frames: list[tuple[str, int]] = []
            for row in rows.itertuples():
                count = _int_or_none(row.NumberOfFrames) or 1
                frames.extend((row.file_path, i) for i in range(max(1, count)))
            self._series_frames[key] = _SeriesFrames(key, tuple(frames))
            first = rows.iloc[0]
            listing.append(
                {
                    "key": key,
                    "number": _int_or_none(first.get("SeriesNumber")),
                    "modality": first.get("Modality") or "",
                    "description": first.get("SeriesDescription") or "",
                    "n_frames": len(frames),
                    "rows": _int_or_none(first.get("Rows")),
                    "columns": _int_or_none(first.get("Columns")),
                }
            )
        return listing

    def _locate(self, series: str, index: int) -> tuple[str, int]:
        try:
            frames = self._series_frames[series].frames
        except KeyError:
            raise LookupError(f"series {series!r} is not part of this viewer") from None
        if not 0 <= index < len(frames):
            raise LookupError(f"frame {index} is out of range (0..{len(frames) - 1})")
        return frames[index]

    def _read(self, path: str, index: int) -> Frame:
        from dicomflow_lab.core.pixels import read_frame

        return read_frame(path, index, cache=self._cache)

    def _overlays(self, path: str, index: int) -> list[tuple[int, np.ndarray]]:
        """Return a frame's overlay planes (:func:`~dicomflow_lab.core.pixels.overlay`), cached."""
        from dicomflow_lab.core.pixels import overlay

        try:
            st = os.stat(path)
        except OSError as exc:
            raise PixelDataError(f"{path}: cannot open: {exc.strerror or exc}") from exc
        key = (path, index, st.st_mtime_ns, st.st_size)
        with self._overlay_lock:
            found = self._overlay_cache.get(key)
            if found is not None:
                self._overlay_cache.move_to_end(key)
                return found
        planes = overlay(path, index)
        with self._overlay_lock:
            if key not in self._overlay_cache:
                self._overlay_cache[key] = planes
                self._overlay_bytes += sum(mask.nbytes for _, mask in planes)
            while len(self._overlay_cache) > 1 and (
                len(self._overlay_cache) > _OVERLAY_CACHE_FRAMES
                or self._overlay_bytes > _OVERLAY_CACHE_BYTES
            ):
                _, dropped = self._overlay_cache.popitem(last=False)
                self._overlay_bytes -= sum(mask.nbytes for _, mask in dropped)
        return planes

    def _overlay_count(self, path: str, index: int) -> int | None:
        """Count the overlay planes of a frame; None when they cannot be read."""
        try:
            return len(self._overlays(path, index))
        except Exception as exc:  # the frame still shows; the overlay request says why
            logger.debug("cannot read the overlays of %s frame %d: %s", path, index, exc)
            return None

    def _switch_series(self, key: str) -> None:
        frames = self._series_frames[key].frames
        self._active = key
        self._wl_touched = False
        self._switching = True
        try:
            self._apply_series(key, frames)
        finally:
            self._switching = False

    def _apply_series(self, key: str, frames: tuple[tuple[str, int], ...]) -> None:
        from dicomflow_lab.core import voi

        middle = len(frames) // 2
        with self.hold_sync():
            self.series_key = key
            self.n_frames = len(frames)
            self.frame = middle
            try:
                frame = self._read(*frames[middle])
            except Exception as exc:  # shown under the viewer; other frames may work
                self.status = str(exc)
                self.presets = [_preset_dict(p) for p in voi.CT_PRESETS]
                return
            presets = [_preset_dict(p) for p in voi.presets_for(frame)]
            presets += [_preset_dict(p) for p in self._user_presets()]
            self.presets = presets
            self.voi_function = frame.params.voi_function
            first = frame.params.windows[0] if frame.params.windows else voi.auto_window(frame)
            self.window_center = float(first.center)
            self.window_width = float(first.width)
            self.status = ""

    def _user_presets(self) -> list[Any]:
        from dicomflow_lab.core.pixels import WindowPreset

        stored = self._study.workspace.get_setting("viewer.presets")
        return [WindowPreset(p["name"], p["center"], p["width"], "user") for p in stored]

    def _on_series_key(self, change: dict[str, Any]) -> None:
        key = change["new"]
        if key == self._active:
            return
        if key not in self._series_frames:
            self.status = f"series {key!r} is not part of this viewer"
            self.series_key = self._active
            return
        self._switch_series(key)

    def _on_frame(self, change: dict[str, Any]) -> None:
        self._frame_callbacks(change["new"])

    def _on_window(self, _change: dict[str, Any]) -> None:
        if not self._switching:
            self._wl_touched = True

    # -- message handlers ----------------------------------------------------------
    def _handle_frame(self, request: Request) -> Reply:
        path, index = self._locate(request.series, request.index)
        frame = self._read(path, index)
        header = _frame_header(request, frame, self._overlay_count(path, index))
        return {"frame": header}, [memoryview(frame.values).cast("B")]

    def _handle_thumb(self, request: Request) -> Reply:
        frames = self._series_frames.get(request.series)
        if frames is None:
            raise LookupError(f"series {request.series!r} is not part of this viewer")
        path, index = frames.frames[len(frames.frames) // 2]
        return {"mime": "image/png"}, [self._thumbnail(path, index)]

    def _handle_annotations(self, request: Request) -> Reply:
        self._locate(request.series, request.index)
        corners: dict[str, list[str]] = {"tl": [], "tr": []}
        if self.show_phi:
            s = self._study.summary_values(show_phi=True)
            corners["tl"] = [
                str(v) for v in (s.get("PatientName"), s.get("PatientID")) if v is not None
            ]
            corners["tr"] = [
                str(v) for v in (s.get("StudyDescription"), s.get("StudyDate")) if v is not None
            ]
        return {"corners": corners}, []

    def _handle_overlay(self, request: Request) -> Reply:
        from dicomflow_lab.core._frame_cache import _header

        path, index = self._locate(request.series, request.index)
        planes = self._overlays(path, index)
        ds = _header(path).ds if planes else None
        headers: list[dict[str, Any]] = []
        buffers: list[bytes | memoryview] = []
        for group, mask in planes:
            headers.append(
                {
                    "group": group,
                    "rows": int(mask.shape[0]),
                    "columns": int(mask.shape[1]),
                    "label": _overlay_label(ds, group),
                }
            )
            buffers.append(memoryview(np.ascontiguousarray(mask, dtype=np.uint8)).cast("B"))
        return {"overlays": headers}, buffers

    def _thumbnail(self, path: str, index: int) -> bytes:
        from dicomflow_lab.core.thumbnail import cached_thumbnail_png

        folder = self._study.workspace.path / "thumbnails"
        return cached_thumbnail_png(path, folder, size=96, frame=index)


def _preset_dict(preset: Any) -> dict[str, Any]:
    return {
        "name": preset.name,
        "center": float(preset.center),
        "width": float(preset.width),
        "source": preset.source,
    }


def _int_or_none(value: Any) -> int | None:
    try:
        return None if pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return None


def _overlay_label(ds: Any, group: int) -> str:
    """Overlay Label (60xx,1500), else Overlay Description (60xx,0022), else the group."""
    for element in (0x1500, 0x0022):
        try:
            value = ds[group, element].value if (group, element) in ds else None
        except Exception:  # an unreadable text value: fall back to the group
            value = None
        if value:
            return str(value).strip()[:64]
    return f"Overlay {group:04X}"


def _frame_header(request: Request, frame: Frame, overlays: int | None = 0) -> dict[str, Any]:
    p = frame.params
    values = frame.values
    return {
        "series": request.series,
        "index": request.index,
        "rows": int(values.shape[0]),
        "columns": int(values.shape[1]),
        "samples": p.samples,
        "dtype": values.dtype.name,
        "photometric": p.photometric,
        "bits_stored": p.bits_stored,
        "signed": p.signed,
        "is_float": p.is_float,
        "slope": p.slope,
        "intercept": p.intercept,
        "rescale_type": p.rescale_type,
        "modality_lut": (
            {"first": p.modality_lut[0], "table": list(p.modality_lut[1])}
            if p.modality_lut
            else None
        ),
        "voi_function": p.voi_function,
        "voi_lut": (
            {"first": p.voi_lut[0], "bits": p.voi_lut[1], "table": list(p.voi_lut[2])}
            if p.voi_lut
            else None
        ),
        "invert": p.invert,
        "windows": [_preset_dict(w) for w in p.windows],
        "min": _num(values.min()) if values.size else 0,
        "max": _num(values.max()) if values.size else 0,
        "position": list(frame.position) if frame.position else None,
        "orientation": list(frame.orientation) if frame.orientation else None,
        "spacing": list(frame.spacing) if frame.spacing else None,
        "thickness": frame.thickness,
        "file": os.path.basename(frame.path),
        "overlays": overlays,
    }


def _num(value: Any) -> float | int:
    return value.item() if hasattr(value, "item") else value

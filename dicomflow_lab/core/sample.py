"""A seeded, deterministic synthetic sample study: a CT chest–abdomen and an MR head.

:func:`write_sample_study` writes one fictitious patient with one study and two series
of uncompressed single-frame images (Explicit VR Little Endian, PS3.10 file format):

``1_CT/IM0001.dcm …``
    CT Image Storage (PS3.3 A.3). Axial slices from the lung apices to the pelvis of a
    contrast-enhanced chest–abdomen phantom. Pixels are signed 16-bit and hold
    ``HU + 1024`` (Rescale Intercept -1024, Rescale Slope 1, Rescale Type ``HU``), so
    every stored value is in ``0..4095`` like a 12-bit scanner. Scrolling down shows
    the trachea and lungs (with vessels), the heart and great vessels, the liver dome
    carving the right lung base, stomach, spleen, kidneys, bowel and the iliac wings;
    the spine, ribs and a table are present throughout.
``2_MR/IM0001.dcm …``
    MR Image Storage (PS3.3 A.4). Axial T1-weighted-looking slices of a head phantom
    (scalp fat, skull with diploë, grey and white matter, sulci, ventricles, deep grey
    nuclei, orbits and cerebellum in the lowest slices), unsigned 16-bit, in its own
    frame of reference.

Everything written is a function of ``seed`` and the sizes only. There is no current
time, no random UUID and no platform-dependent floating-point function in the pixel
path (only ``+ - * /``, ``sqrt`` and comparisons, which IEEE 754 rounds exactly), and
the noise comes from the raw 64-bit output of ``numpy.random.default_rng`` (PCG64),
whose stream numpy keeps stable. The same seed and sizes therefore give byte-identical
files on every run and machine. UIDs are ``2.25.<UUID>`` (PS3.5 B.2) made from
name-based UUIDs (RFC 4122 version 5) of the seed, the sizes, the generator version and
a label, so they are valid and deterministic, and change when the content changes.

All identifiers are fictitious and drawn by the seed from small built-in lists, some
with Latin-1 letters (``SpecificCharacterSet`` is ``ISO_IR 100`` in every file).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import itertools
import json
import logging
import math
import operator
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from dicomflow_lab._fsutil import atomic_writer

__all__ = [
    "GENERATOR_VERSION",
    "IMPLEMENTATION_CLASS_UID",
    "MANIFEST_NAME",
    "SampleSeries",
    "SampleStudy",
    "write_sample_study",
]

logger = logging.getLogger(__name__)

#: Bump whenever a change alters a written byte: it is part of every UID and the manifest.
GENERATOR_VERSION = 1
#: Name of the manifest written last into the study folder.
MANIFEST_NAME = "dicomflow_sample.json"

_UID_NAMESPACE = uuid.UUID("994dcfcb-9e84-5a30-8f9b-74693b8b5e87")
_MANIFEST_FORMAT = "dicomflow_lab.sample"

#: Fixed Implementation Class UID of the generator (PS3.7 D.3.3.2), in the file meta.
IMPLEMENTATION_CLASS_UID = UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, 'implementation').int}")
_IMPLEMENTATION_VERSION_NAME = f"DFL_SAMPLE_{GENERATOR_VERSION}"

_CT_FOV_MM = 400.0  # reconstruction diameter
_CT_COVERAGE_MM = 500.0  # lung apices to pelvis
_MR_FOV_MM = 240.0
_MR_COVERAGE_MM = 120.0  # vertex to skull base
_CT_NOISE_HU = 10.0
_MR_NOISE = 10.0
_TABLE_Y = 112.0  # top of the CT table, mm posterior of the isocentre

# Unit vectors every 22.5 degrees (image x right = patient left, image y down = posterior),
# written out so that no libm function is involved.
_C1, _C2, _C3 = 0.923879532511, 0.707106781187, 0.382683432365
_DIRECTIONS: tuple[tuple[float, float], ...] = (
    (1.0, 0.0), (_C1, _C3), (_C2, _C2), (_C3, _C1), (0.0, 1.0), (-_C3, _C1), (-_C2, _C2),
    (-_C1, _C3), (-1.0, 0.0), (-_C1, -_C3), (-_C2, -_C2), (-_C3, -_C1), (0.0, -1.0),
    (_C3, -_C1), (_C2, -_C2), (_C1, -_C3),
)  # fmt: skip

# Fictitious people and places. Every string is Latin-1 (ISO_IR 100) encodable.
_PATIENTS: tuple[tuple[str, str], ...] = (
    ("Müller^Jürgen", "M"), ("Dupont^Hélène", "F"), ("Núñez^José", "M"),
    ("Østergaard^Søren", "M"), ("Gonçalves^João", "M"), ("Lindqvist^Åsa", "F"),
    ("Häkkinen^Päivi", "F"), ("Ó Briain^Siobhán", "F"), ("Schäfer^Björn", "M"),
    ("García^Lucía", "F"), ("Doe^Jane", "F"), ("Smith^John", "M"), ("Rossi^Giulia", "F"),
    ("Novak^Petra", "F"), ("Okafor^Chidi", "M"), ("Tanaka^Yuki", "F"),
)  # fmt: skip
_PHYSICIANS = (
    "Lefèvre^Marc^^Dr.", "Weber^Anna^^Dr.", "Brennan^Áine^^Dr.", "Kowalski^Jan^^Dr.",
    "Andersson^Märta^^Dr.", "Moreau^Zoé^^Dr.",
)  # fmt: skip
_OPERATORS = ("Tech^Ana", "Tech^Bjørn", "Tech^Chloé", "Tech^Dmitri", "Tech^Eefje")
_INSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("Synthetic General Hospital", "1 Phantom Way, Springfield, Nowhere"),
    ("Klinikum Süd (synthetic)", "Phantomstraße 7, 99999 Nirgendwo, Nowhere"),
    ("Hôpital Fictif Saint-Éloi", "12 rue du Fantôme, 00000 Nullepart, Nowhere"),
    ("Ospedale Immaginario", "Via dei Fantocci 3, 00000 Nessunluogo, Nowhere"),
)


@dataclass(frozen=True)
class SampleSeries:
    """One series of a generated sample study.

    Attributes
    ----------
    path : pathlib.Path
        The series folder, ``<study>/<SeriesNumber>_<Modality>``.
    SeriesNumber : int
        1 for the CT, 2 for the MR.
    Modality : str
        ``"CT"`` or ``"MR"``.
    SeriesInstanceUID : str
        Shared by every instance of the series.
    SeriesDescription : str
        As written in the files.
    FrameOfReferenceUID : str
        Shared by every instance of the series; differs between the series.
    files : tuple of pathlib.Path
        The instance files in InstanceNumber order (``IM0001.dcm``, ``IM0002.dcm`` …).
    """

    path: Path
    SeriesNumber: int
    Modality: str
    SeriesInstanceUID: str
    SeriesDescription: str
    FrameOfReferenceUID: str
    files: tuple[Path, ...]

    @property
    def num_instances(self) -> int:
        """Number of instances (files) in the series."""
        return len(self.files)


@dataclass(frozen=True)
class SampleStudy:
    """A generated sample study: where it is and what it holds.

    Attributes
    ----------
    path : pathlib.Path
        The study folder.
    seed : int
        The seed it was generated from.
    StudyInstanceUID : str
        Shared by every file of the study.
    PatientName : str
        The fictitious patient's name, as written (may hold Latin-1 letters).
    PatientID : str
        The fictitious patient identifier.
    series : tuple of SampleSeries
        The CT series, then the MR series.
    manifest : pathlib.Path
        The manifest, ``<path>/dicomflow_sample.json``.
    reused : bool
        True when a complete study with the same seed and parameters was already there
        and nothing was written.
    """

    path: Path
    seed: int
    StudyInstanceUID: str
    PatientName: str
    PatientID: str
    series: tuple[SampleSeries, ...]
    manifest: Path
    reused: bool = False

    @property
    def files(self) -> tuple[Path, ...]:
        """Every instance file of the study, series after series."""
        return tuple(f for s in self.series for f in s.files)


# ---------------------------------------------------------------------------------------
# Deterministic draws


def _draw(seed: int, label: str) -> int:
    """Return a 64-bit integer that depends only on `seed` and `label`."""
    digest = hashlib.sha256(f"{_MANIFEST_FORMAT}\x1f{seed}\x1f{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _uid(key: str, label: str) -> UID:
    """Return a ``2.25.`` UID from a name-based UUID of `key` and `label` (PS3.5 B.2)."""
    return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, f'{key}|{label}').int}")


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return `n` floats in [0, 1) from the raw bit stream (stable across numpy versions)."""
    raw = rng.bit_generator.random_raw(n)
    return (raw >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


_IRWIN_HALL_STD = 65536.0 * math.sqrt(4.0 / 12.0)


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Return near-Gaussian float32 noise: the sum of four 16-bit uniforms per pixel."""
    n = shape[0] * shape[1]
    parts = rng.bit_generator.random_raw(n).view(np.uint16)
    total = parts[0::4].astype(np.int32)
    for k in (1, 2, 3):  # the four 16-bit parts of one 64-bit draw: endianness-neutral
        total += parts[k::4]
    total -= np.int32(131070)
    return (total.astype(np.float32) * np.float32(sigma / _IRWIN_HALL_STD)).reshape(shape)


# ---------------------------------------------------------------------------------------
# Formatting helpers


def _ds(value: float) -> str:
    """Format a Decimal String (at most 6 decimals, no trailing zeros, <= 16 chars)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _tm(moment: dt.datetime) -> str:
    """Format a TM value, with a fraction only when there is one."""
    text = moment.strftime("%H%M%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text


def _profile(s: float, points: Sequence[tuple[float, float]]) -> float:
    """Piecewise-linear function of depth `s` through `points`, constant outside them."""
    if s <= points[0][0]:
        return points[0][1]
    for (s0, v0), (s1, v1) in itertools.pairwise(points):
        if s <= s1:
            return v0 + (v1 - v0) * (s - s0) / (s1 - s0)
    return points[-1][1]


def _dome(s: float, start: float, end: float) -> float:
    """Cross-section scale of an ellipsoid spanning depths `start`..`end` (0 outside)."""
    if not start < s < end:
        return 0.0
    u = (2.0 * s - start - end) / (end - start)
    return math.sqrt(1.0 - u * u)


# ---------------------------------------------------------------------------------------
# Painting


class _Painter:
    """Paint axis-aligned ellipses and rectangles, in millimetres, into a float32 image."""

    def __init__(self, coords: np.ndarray) -> None:
        self.coords = coords
        self.image = np.empty((coords.size, coords.size), dtype=np.float32)

    def _span(self, lo: float, hi: float) -> tuple[int, int]:
        return (
            int(np.searchsorted(self.coords, lo, "left")),
            int(np.searchsorted(self.coords, hi, "right")),
        )

    def ellipse(
        self,
        cx: float,
        cy: float,
        ax: float,
        ay: float,
        value: float,
        *,
        within: tuple[float, float] | None = None,
        y_max: float | None = None,
    ) -> None:
        """Set pixels inside the ellipse (optionally only where lo <= value < hi)."""
        if ax <= 0.0 or ay <= 0.0:
            return
        c0, c1 = self._span(cx - ax, cx + ax)
        r0, r1 = self._span(cy - ay, cy + ay if y_max is None else min(cy + ay, y_max))
        if c0 >= c1 or r0 >= r1:
            return
        dx = (self.coords[c0:c1] - cx) / ax
        dy = (self.coords[r0:r1] - cy) / ay
        mask = (dy * dy)[:, None] + (dx * dx)[None, :] <= 1.0
        sub = self.image[r0:r1, c0:c1]
        if within is not None:
            mask &= (sub >= within[0]) & (sub < within[1])
        sub[mask] = value

    def ring(
        self, cx: float, cy: float, ax: float, ay: float, wall: float, outer: float, inner: float
    ) -> None:
        """Paint a filled ellipse with a `wall`-thick rim of value `outer`."""
        self.ellipse(cx, cy, ax, ay, outer)
        self.ellipse(cx, cy, ax - wall, ay - wall, inner)

    def rect(self, x0: float, x1: float, y0: float, y1: float, value: float) -> None:
        """Set pixels with x0 <= x <= x1 and y0 <= y <= y1."""
        c0, c1 = self._span(x0, x1)
        r0, r1 = self._span(y0, y1)
        self.image[r0:r1, c0:c1] = value


def _smooth(image: np.ndarray) -> np.ndarray:
    """Blur with a separable [1, 2, 1] / 4 kernel (partial-volume edges), edges replicated."""
    p = np.pad(image, 1, mode="edge")
    rows = (p[:-2, :] + p[1:-1, :] * np.float32(2.0) + p[2:, :]) * np.float32(0.25)
    return (rows[:, :-2] + rows[:, 1:-1] * np.float32(2.0) + rows[:, 2:]) * np.float32(0.25)


# ---------------------------------------------------------------------------------------
# CT chest–abdomen phantom (HU)

_FAT, _CAVITY_FAT, _MUSCLE, _LUNG, _AIR = -100.0, -80.0, 45.0, -850.0, -1000.0
_BONE, _CORTEX, _MARROW = 700.0, 1000.0, 250.0
_ARTERY, _VEIN, _BLOOD, _MYOCARDIUM = 250.0, 140.0, 180.0, 60.0
_LIVER, _SPLEEN, _KIDNEY, _FLUID = 60.0, 50.0, 160.0, 15.0


_CtExtras = tuple[np.ndarray, np.ndarray]


def _ct_extras(rng: np.random.Generator) -> _CtExtras:
    """Draw the seeded parts of the CT anatomy: lung vessels and bowel loops.

    Vessel rows: u, v (lung-relative at s = 130 mm), du, dv (per mm), radius, s0, s1.
    Loop rows: x, y (cavity-relative), radius, s0, s1, gas (1) or fluid (0).
    """
    vessels = _uniform(rng, 7 * 64).reshape(64, 7) * np.array(
        [1.6, 1.6, 0.004, 0.004, 2.2, 180.0, 120.0]
    ) + np.array([-0.8, -0.8, -0.002, -0.002, 0.8, 0.0, 40.0])
    vessels[:, 6] += vessels[:, 5]
    loops = _uniform(rng, 6 * 18).reshape(18, 6) * np.array(
        [1.1, 0.9, 9.0, 190.0, 60.0, 1.0]
    ) + np.array([-0.55, -0.6, 9.0, 290.0, 25.0, 0.0])
    loops[:, 4] += loops[:, 3]
    loops[:, 5] = loops[:, 5] < 0.3
    return vessels, loops


def _paint_ct(p: _Painter, s: float, extras: _CtExtras) -> None:
    """Paint the noiseless HU slice at depth `s` mm below the top of the scan."""
    p.image.fill(_AIR)
    # Table: two carbon-fibre plates with foam between them.
    p.rect(-190.0, 190.0, _TABLE_Y, _TABLE_Y + 4.0, 250.0)
    p.rect(-180.0, 180.0, _TABLE_Y + 4.0, _TABLE_Y + 26.0, -900.0)
    p.rect(-170.0, 170.0, _TABLE_Y + 26.0, _TABLE_Y + 30.0, 250.0)

    a = _profile(s, ((0.0, 150.0), (150.0, 170.0), (300.0, 163.0), (500.0, 172.0)))
    b = _profile(s, ((0.0, 95.0), (150.0, 115.0), (300.0, 120.0), (500.0, 112.0)))
    fat = _profile(s, ((0.0, 9.0), (250.0, 12.0), (500.0, 22.0)))
    cx, cy = 0.0, _TABLE_Y - 1.5 - b
    ai, bi = a - fat, b - fat
    ac, bc = ai - 11.0, bi - 11.0  # body cavity inside the muscle wall
    p.ellipse(cx, cy, a, b, _FAT)
    p.ellipse(cx, cy, ai, bi, _MUSCLE)
    p.ellipse(cx, cy, ac, bc, _CAVITY_FAT)

    vb_r = _profile(s, ((0.0, 14.0), (250.0, 18.0), (500.0, 24.0)))
    vb_y = cy + b - 62.0
    canal_y = vb_y + vb_r + 8.0

    # Lungs, their vessels, the airways.
    lungs = []
    for side, pts in (
        (
            -1.0,
            ((0.0, 0.45), (60.0, 0.85), (110.0, 1.0), (200.0, 0.95), (245.0, 0.5), (262.0, 0.0)),
        ),
        (1.0, ((0.0, 0.45), (60.0, 0.85), (110.0, 1.0), (210.0, 0.95), (255.0, 0.5), (270.0, 0.0))),
    ):
        f = _profile(s, pts)
        lung = (cx + side * 0.5 * ac, cy + 0.04 * bc, 0.4 * ac * f, 0.8 * bc * f)
        p.ellipse(*lung, _LUNG)
        lungs.append(lung)
    vessels, loops = extras
    for u, v, du, dv, r, s0, s1 in vessels:
        if s0 <= s <= s1:
            for lx, ly, lax, lay in lungs:
                uu, vv = u + du * (s - 130.0), v + dv * (s - 130.0)
                p.ellipse(lx + uu * lax, ly + vv * lay, r, r, 30.0, within=(-900.0, -800.0))
    airway_y = vb_y - vb_r - 22.0
    if s < 120.0:
        p.ellipse(cx, airway_y, 11.0, 10.0, _MUSCLE)
        p.ellipse(cx, airway_y, 8.5, 7.5, _AIR)
    elif s < 165.0:
        off = 6.0 + (s - 120.0) * 0.9
        for side in (-1.0, 1.0):
            p.ellipse(cx + side * off, airway_y + 4.0, 7.0, 7.0, _MUSCLE)
            p.ellipse(cx + side * off, airway_y + 4.0, 5.0, 5.0, _AIR)

    # Heart and great vessels.
    h = _dome(s, 95.0, 240.0)
    hx, hy = cx + 0.12 * ac, cy - 0.3 * bc
    p.ellipse(hx, hy, 0.36 * ac * h, 0.45 * bc * h, _MYOCARDIUM)
    p.ellipse(hx + 4.0, hy + 2.0, 0.26 * ac * h, 0.33 * bc * h, _BLOOD)
    if 45.0 <= s <= 120.0:
        p.ellipse(cx - 0.06 * ac, cy - 0.45 * bc, 15.0, 15.0, _ARTERY)
    if 70.0 <= s <= 115.0:
        p.ellipse(cx + 0.12 * ac, cy - 0.42 * bc, 13.0, 13.0, _BLOOD)
    if 15.0 <= s <= 110.0:
        p.ellipse(cx - 0.22 * ac, cy - 0.38 * bc, 9.0, 9.0, _VEIN)
    ao_x = _profile(s, ((100.0, 20.0), (300.0, 10.0)))
    ao_y = vb_y - vb_r - 9.0
    if 35.0 <= s <= 55.0:  # aortic arch, from the ascending to the descending aorta
        top = cy - 0.45 * bc
        p.ellipse(cx + 0.05 * ac, (top + ao_y) * 0.5, 14.0, (ao_y - top) * 0.5 + 10.0, _ARTERY)
    if 35.0 <= s <= 420.0:
        p.ellipse(cx + ao_x, ao_y, 12.0, 12.0, _ARTERY)
    elif s > 420.0:
        off = 9.0 + (s - 420.0) * 0.5
        for side in (-1.0, 1.0):
            p.ellipse(cx + side * off, ao_y - 4.0, 7.0, 7.0, _ARTERY)
    if 200.0 <= s <= 440.0:
        p.ellipse(cx - 24.0, ao_y - 3.0, 11.0, 9.0, _VEIN)

    # Upper abdomen: liver (carving the right lung base), gallbladder, stomach, spleen.
    soft = (-1100.0, 0.0)  # organs displace lung and fat, not muscle or bone
    liv = _profile(
        s,
        (
            (175.0, 0.0), (195.0, 0.55), (230.0, 0.9), (260.0, 1.0), (320.0, 0.85),
            (370.0, 0.45), (390.0, 0.0),
        ),
    )  # fmt: skip
    if liv > 0.0:
        lx, ly = cx - 0.3 * ac, cy - 0.02 * bc
        p.ellipse(lx, ly, 0.62 * ac * liv, 0.82 * bc * liv, _LIVER, within=soft)
        for px, py in ((-0.1, -0.1), (0.25, 0.1), (-0.3, 0.25), (0.05, 0.4)):
            p.ellipse(lx + px * ac * liv, ly + py * bc * liv, 4.5, 4.5, 170.0, within=(59.0, 61.0))
    gb = _dome(s, 265.0, 335.0)
    p.ellipse(cx - 0.28 * ac, cy - 0.55 * bc, 13.0 * gb, 20.0 * gb, 5.0, within=(55.0, 65.0))
    st = _dome(s, 195.0, 305.0)
    if st > 0.0:
        sx, sy, sax, say = cx + 0.32 * ac, cy - 0.35 * bc, 0.24 * ac * st, 0.3 * bc * st
        p.ellipse(sx, sy, sax, say, _MUSCLE, within=soft)
        p.ellipse(sx, sy, sax - 3.5, say - 3.5, _FLUID, within=(_FLUID - 31.0, _FLUID + 31.0))
        p.ellipse(sx, sy, sax - 3.5, say - 3.5, _AIR, within=(14.5, 15.5), y_max=sy - 0.4 * say)
    sp = _dome(s, 210.0, 325.0)
    p.ellipse(cx + 0.6 * ac, cy + 0.32 * bc, 0.2 * ac * sp, 0.32 * bc * sp, _SPLEEN, within=soft)
    pa = _dome(s, 275.0, 325.0)
    p.ellipse(cx + 0.1 * ac, cy - 0.05 * bc, 0.35 * ac * pa, 0.1 * bc * pa, 45.0, within=soft)

    # Retroperitoneum: kidneys, psoas; then bowel and colon.
    for side, start, end in ((-1.0, 300.0, 415.0), (1.0, 285.0, 400.0)):
        k = _dome(s, start, end)
        kx = cx + side * (vb_r + 45.0)
        p.ellipse(kx, vb_y - 3.0, 21.0 * k, 31.0 * k, _KIDNEY, within=soft)
        p.ellipse(kx - side * 4.0, vb_y - 3.0, 11.0 * k, 16.0 * k, 30.0, within=(159.0, 161.0))
    if s > 320.0:
        grow = min(1.0, (s - 320.0) / 120.0)
        for side in (-1.0, 1.0):
            ps_x = cx + side * (vb_r + 6.0 + 10.0 * grow)
            p.ellipse(ps_x, vb_y + 2.0, 6.0 + 17.0 * grow, 12.0 + 8.0 * grow, 50.0, within=soft)
    for x, y, r, s0, s1, gas in loops:
        if s0 <= s <= s1:
            bx, by = cx + x * ac, cy + y * bc
            p.ellipse(bx, by, r, r, _MUSCLE, within=(-90.0, -70.0))
            p.ellipse(bx, by, r - 2.5, r - 2.5, _AIR if gas else _FLUID, within=(44.0, 46.0))
    if s > 330.0:
        for side, r in ((-1.0, 20.0), (1.0, 16.0)):
            colx = cx + side * 0.68 * ac
            p.ellipse(colx, cy + 0.02 * bc, r, r, _MUSCLE, within=soft)
            p.ellipse(colx, cy + 0.02 * bc, r - 2.5, r - 2.5, -500.0, within=(44.0, 46.0))
    if 300.0 <= s <= 330.0:
        p.ellipse(cx, cy - 0.6 * bc, 0.55 * ac, 14.0, _AIR, within=(-90.0, -70.0))

    # Muscles and bones of the trunk.
    for side in (-1.0, 1.0):
        p.ellipse(cx + side * 30.0, canal_y + 10.0, 24.0, 18.0, 50.0)
    if s > 430.0:
        g = min(1.0, (s - 430.0) / 50.0)
        for side in (-1.0, 1.0):
            ix, iy = cx + side * 0.55 * ac, cy + 0.3 * bc
            p.ring(ix, iy, 0.24 * ac * g, 10.0 * g, 2.0, _CORTEX, _BONE)
    if 15.0 <= s <= 330.0:
        for k, (ux, uy) in enumerate(_DIRECTIONS):
            if abs(ux) < 0.3 or (s + 17.0 * k) % 40.0 >= 26.0:
                continue  # no ribs at the spine and sternum; ribs come and go along z
            p.ring(cx + ux * (ai - 5.5), cy + uy * (bi - 5.5), 5.5, 5.5, 2.5, 800.0, _MARROW)
    if 25.0 <= s <= 190.0:
        p.ring(cx, cy - bi + 5.0, 13.0, 5.5, 2.0, _BONE, _MARROW)
    if s < 160.0:  # scapulae, behind the ribs in their muscles
        for side in (-1.0, 1.0):
            p.ellipse(cx + side * 0.64 * a, cy + 0.7 * b, 42.0, 13.0, _MUSCLE, within=(-101.0, 0.0))
            p.ring(cx + side * 0.64 * a, cy + 0.7 * b, 34.0, 4.5, 1.5, _CORTEX, 400.0)
    if (s + 11.0) % 30.0 < 5.0:  # intervertebral disc
        p.ellipse(cx, vb_y, vb_r, vb_r, 90.0)
    else:
        p.ring(cx, vb_y, vb_r, vb_r, 2.0, _CORTEX, _BONE)
    p.ellipse(cx, canal_y, 13.0, 13.0, 900.0)  # posterior arch, cortical ring
    p.ellipse(cx, canal_y, 7.5, 7.5, 15.0)  # spinal canal
    p.ellipse(cx, canal_y + 19.0, 4.0, 12.0, 800.0)  # spinous process
    for side in (-1.0, 1.0):
        p.ellipse(cx + side * (vb_r + 6.0), canal_y - 3.0, 11.0, 4.5, 800.0)


def _ct_slice(p: _Painter, s: float, extras: _CtExtras, rng: np.random.Generator) -> bytes:
    _paint_ct(p, s, extras)
    hu = _smooth(p.image) + _noise(rng, p.image.shape, _CT_NOISE_HU)
    stored = np.clip(np.rint(hu) + np.float32(1024.0), 0.0, 4095.0)
    return stored.astype("<i2").tobytes()


# ---------------------------------------------------------------------------------------
# MR head phantom (T1-weighted-looking arbitrary units)

_M_FAT, _M_BONE, _M_MARROW, _M_CSF, _M_GM, _M_WM = 850.0, 30.0, 450.0, 90.0, 420.0, 620.0


def _paint_mr(p: _Painter, s: float) -> None:
    """Paint the noiseless MR slice at depth `s` mm below the first slice."""
    p.image.fill(0.0)
    u = (s - 80.0) / 95.0
    h = math.sqrt(max(0.0, 1.0 - u * u))
    a, b = 72.0 * h, 92.0 * h
    low = s > 95.0  # skull base: orbits in front, cerebellum behind
    p.ellipse(0.0, 0.0, a, b, _M_FAT)  # scalp
    p.ellipse(0.0, 0.0, a - 5.0, b - 5.0, _M_BONE)  # outer table
    p.ellipse(0.0, 0.0, a - 6.5, b - 6.5, _M_MARROW)  # diploë
    p.ellipse(0.0, 0.0, a - 8.0, b - 8.0, _M_BONE)  # inner table
    p.ellipse(0.0, 0.0, a - 9.5, b - 9.5, _M_CSF)
    p.ellipse(0.0, 0.0, a - 11.0, b - 11.0, _M_GM)
    wm = min(1.0, max(0.0, (h - 0.5) / 0.35))
    p.ellipse(0.0, 0.0 + (6.0 if low else 0.0), (a - 18.0) * wm, (b - 22.0) * wm, _M_WM)
    brain = (_M_GM - 1.0, _M_WM + 1.0)
    shift = int(s / 12.0)
    for k, (ux, uy) in enumerate(_DIRECTIONS):  # sulci
        if (k + shift) % 2:
            continue
        long_x, long_y = (
            (4.5, 1.3) if abs(ux) > 0.9 else (1.3, 4.5) if abs(uy) > 0.9 else (2.2, 2.2)
        )
        p.ellipse(ux * (a - 14.0), uy * (b - 14.0), long_x, long_y, _M_CSF, within=brain)
    if not low:
        p.ellipse(0.0, -0.62 * b, 1.6, 0.36 * b, _M_CSF, within=brain)  # interhemispheric
        p.ellipse(0.0, 0.62 * b, 1.6, 0.34 * b, _M_CSF, within=brain)
    cau = _dome(s, 52.0, 88.0)
    tha = _dome(s, 66.0, 98.0)
    ven = _dome(s, 38.0, 92.0)
    for side in (-1.0, 1.0):
        p.ellipse(side * 14.0, -0.22 * b, 7.0 * cau, 8.0 * cau, 470.0)
        p.ellipse(side * 12.0, 0.06 * b, 9.0 * tha, 13.0 * tha, 470.0)
        p.ellipse(side * 8.0, -0.04 * b, 5.5 * ven, 26.0 * ven, _M_CSF)  # lateral ventricles
    p.ellipse(0.0, 0.03 * b, 2.0 * tha, 10.0 * tha, _M_CSF)  # third ventricle
    if low:
        cb = min(1.0, (s - 95.0) / 10.0)
        p.ellipse(0.0, 0.52 * b, 0.62 * a * cb, 0.34 * b * cb, 440.0)  # cerebellum
        p.ellipse(0.0, 0.52 * b, 0.32 * a * cb, 0.14 * b * cb, 600.0)
        p.ellipse(0.0, 0.12 * b, 17.0, 17.0, _M_CSF)  # prepontine cistern
        p.ellipse(0.0, 0.12 * b, 13.0, 12.0, 560.0)  # brainstem
        p.ellipse(0.0, 0.3 * b, 4.0 * cb, 3.0 * cb, _M_CSF)  # fourth ventricle
        p.ellipse(0.0, -b + 24.0, 9.0, 15.0, 0.0)  # ethmoid air cells
        for side in (-1.0, 1.0):
            p.ellipse(side * 30.0, -b + 22.0, 17.0, 19.0, _M_FAT)  # orbit
            p.ellipse(side * 30.0, -b + 16.0, 11.5, 11.5, 80.0)  # globe
            p.ellipse(side * (a - 12.0), 0.05 * b, 7.0, 20.0, 300.0)  # temporalis


def _mr_volume(coords: np.ndarray, depths: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    p = _Painter(coords)
    out = np.empty((len(depths), coords.size, coords.size), dtype="<u2")
    for k, s in enumerate(depths):
        _paint_mr(p, s)
        signal = _smooth(p.image)
        real = signal + _noise(rng, p.image.shape, _MR_NOISE)
        imag = _noise(rng, p.image.shape, _MR_NOISE)
        magnitude = np.sqrt(real * real + imag * imag)  # Rician background, like a real MR
        out[k] = np.clip(np.rint(magnitude), 0.0, 4095.0)
    return out


def _mr_window(volume: np.ndarray) -> tuple[str, str]:
    """Return (center, width) spanning the 2nd..99.5th percentile of the foreground."""
    fg = volume[volume > 6.0 * _MR_NOISE]
    if fg.size < 2:
        return "500", "1000"
    lo = int(np.partition(fg, fg.size * 2 // 100)[fg.size * 2 // 100])
    hi_k = min(fg.size - 1, fg.size * 995 // 1000)
    hi = int(np.partition(fg, hi_k)[hi_k])
    width = max(hi - lo, 1)
    return _ds(lo + width / 2.0), str(width)


# ---------------------------------------------------------------------------------------
# Headers


@dataclass(frozen=True)
class _Geometry:
    size: int
    spacing: float  # in-plane, mm
    origin: float  # x and y of the first pixel centre, mm
    slice_um: int  # slice spacing and thickness, micrometres
    count: int

    @classmethod
    def make(cls, size: int, fov: float, coverage: float, count: int) -> _Geometry:
        spacing = float(_ds(fov / size))
        origin = float(_ds(-(size - 1) * spacing / 2.0))
        return cls(size, spacing, origin, max(1, round(coverage * 1000.0 / count)), count)

    @property
    def coords(self) -> np.ndarray:
        return self.origin + np.arange(self.size, dtype=np.float64) * self.spacing

    def depth(self, k: int) -> float:
        """Depth of slice `k` below the top of the scanned range, mm."""
        return (k * self.slice_um + self.slice_um // 2) / 1000.0

    def z_mm(self, k: int) -> str:
        """Patient z of slice `k`: slices go from head to feet (z decreasing)."""
        return f"{-self.depth(k):.3f}"

    @property
    def slice_mm(self) -> str:
        return _ds(self.slice_um / 1000.0)


# Attributes that depend on nothing. Type 1/2 attributes of the CT and MR Image IODs
# (PS3.3 A.3, A.4) are all present; the rest are the Type 3 ones a real scanner writes.
# fmt: off
_COMMON_STATIC: dict[str, Any] = {
    "SpecificCharacterSet": "ISO_IR 100", "IssuerOfPatientID": "DICOMFLOW_LAB SYNTHETIC",
    "StudyDescription": "SYNTHETIC CT THORAX ABDOMEN + MR HEAD",
    "Manufacturer": "dicomflow_lab", "ManufacturerModelName": "Synthetic Phantom",
    "DeviceSerialNumber": f"DFL-{GENERATOR_VERSION}",
    "SoftwareVersions": f"dicomflow_lab sample generator {GENERATOR_VERSION}",
    "PatientPosition": "HFS", "PositionReferenceIndicator": "", "AcquisitionNumber": 1,
    "BurnedInAnnotation": "NO", "LossyImageCompression": "00",
    "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2",
    "BitsAllocated": 16, "BitsStored": 16, "HighBit": 15,
    "ImageOrientationPatient": ["1", "0", "0", "0", "1", "0"],
    "ImageComments": "Synthetic phantom by dicomflow_lab; all identifiers are fictitious.",
}
_CT_STATIC: dict[str, Any] = {
    "Modality": "CT", "SOPClassUID": CTImageStorage, "SeriesNumber": 1,
    "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], "StationName": "DFL-CT01",
    "ProtocolName": "CT CHEST ABDOMEN WITH CONTRAST", "BodyPartExamined": "CHESTABDOMEN",
    "ContrastBolusAgent": "Iohexol 350 mgI/ml (synthetic)", "ContrastBolusRoute": "IV",
    "ScanOptions": "HELICAL MODE", "KVP": "120", "DataCollectionDiameter": "500",
    "DistanceSourceToDetector": "1040", "DistanceSourceToPatient": "570",
    "GantryDetectorTilt": "0", "TableHeight": "150", "RotationDirection": "CW",
    "ExposureTime": "500", "XRayTubeCurrent": 200, "Exposure": 100, "GeneratorPower": 24,
    "FilterType": "BODY FILTER", "FocalSpots": "1.2", "ConvolutionKernel": "STANDARD",
    "RevolutionTime": 0.5, "SpiralPitchFactor": 1.0, "PixelRepresentation": 1,
    "RescaleIntercept": "-1024", "RescaleSlope": "1", "RescaleType": "HU",
    "WindowCenter": ["40", "-600"], "WindowWidth": ["400", "1500"],
    "WindowCenterWidthExplanation": ["SOFT TISSUE", "LUNG"],
}
_MR_STATIC: dict[str, Any] = {
    "Modality": "MR", "SOPClassUID": MRImageStorage, "SeriesNumber": 2,
    "ImageType": ["ORIGINAL", "PRIMARY", "OTHER"], "StationName": "DFL-MR01",
    "ProtocolName": "HEAD T1 SE AXIAL", "BodyPartExamined": "HEAD",
    "ScanningSequence": "SE", "SequenceVariant": "NONE", "ScanOptions": "",
    "MRAcquisitionType": "2D", "SequenceName": "se2d1", "AngioFlag": "N",
    "RepetitionTime": "500", "EchoTime": "12", "EchoTrainLength": 1, "EchoNumbers": 1,
    "NumberOfAverages": "2", "ImagingFrequency": "63.87", "ImagedNucleus": "1H",
    "MagneticFieldStrength": "1.5", "PercentSampling": "100", "PercentPhaseFieldOfView": "100",
    "PixelBandwidth": "130", "ReceiveCoilName": "HEAD", "TransmitCoilName": "BODY",
    "InPlanePhaseEncodingDirection": "ROW", "FlipAngle": "90", "VariableFlipAngleFlag": "N",
    "SAR": "0.5", "PixelRepresentation": 0,
    "WindowCenterWidthExplanation": "AUTO (2-99.5 PERCENTILE)",
}
# fmt: on


def _study_header(seed: int, study_uid: UID) -> tuple[dict[str, Any], dt.datetime]:
    """Return the patient, study and equipment attributes and the study's start."""
    name, sex = _PATIENTS[_draw(seed, "patient") % len(_PATIENTS)]
    institution, address = _INSTITUTIONS[_draw(seed, "institution") % len(_INSTITUTIONS)]
    day = dt.date(2019, 1, 7) + dt.timedelta(days=_draw(seed, "study-date") % 1800)
    start = dt.datetime.combine(day, dt.time(7, 30))
    start += dt.timedelta(seconds=_draw(seed, "study-time") % (9 * 3600))
    age = 18 + _draw(seed, "age") % 70
    birth = dt.date(day.year - age, 1 + _draw(seed, "month") % 12, 1 + _draw(seed, "day") % 28)
    if (birth.month, birth.day) > (day.month, day.day):
        age -= 1
    return {
        **_COMMON_STATIC,
        "PatientName": name,
        "PatientID": f"DFL{_draw(seed, 'patient-id') % 10**7:07d}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "PatientSex": sex,
        "PatientAge": f"{age:03d}Y",
        "PatientSize": _ds((150 + _draw(seed, "height") % 45) / 100.0),
        "PatientWeight": str(50 + _draw(seed, "weight") % 50),
        "StudyInstanceUID": study_uid,
        "StudyDate": day.strftime("%Y%m%d"),
        "StudyTime": _tm(start),
        "AccessionNumber": f"ACC{_draw(seed, 'accession') % 10**8:08d}",
        "ReferringPhysicianName": _PHYSICIANS[_draw(seed, "physician") % len(_PHYSICIANS)],
        "StudyID": f"S{_draw(seed, 'study-id') % 10**5:05d}",
        "InstitutionName": institution,
        "InstitutionAddress": address,
        "OperatorsName": _OPERATORS[_draw(seed, "operator") % len(_OPERATORS)],
    }, start


def _instance_header(
    series: dict[str, Any], geo: _Geometry, k: int, series_start: dt.datetime, uid: UID
) -> dict[str, Any]:
    """Return the attributes that change from one instance to the next."""
    # A helical CT acquires slice after slice; 2-D MR slices share one acquisition.
    step = 400 * k if series["Modality"] == "CT" else 0
    acquired = series_start + dt.timedelta(milliseconds=step)
    created = series_start + dt.timedelta(minutes=4)
    z = geo.z_mm(k)
    return {
        "SOPInstanceUID": uid,
        "InstanceNumber": k + 1,
        "AcquisitionDate": acquired.strftime("%Y%m%d"),
        "AcquisitionTime": _tm(acquired),
        "ContentDate": created.strftime("%Y%m%d"),
        "ContentTime": _tm(created),
        "InstanceCreationDate": created.strftime("%Y%m%d"),
        "InstanceCreationTime": _tm(created),
        "ImagePositionPatient": [_ds(geo.origin), _ds(geo.origin), z],
        "SliceLocation": z,
    }


def _encode(header: dict[str, Any], pixels: bytes) -> bytes:
    """Encode one instance as a PS3.10 file (Explicit VR Little Endian)."""
    ds = Dataset()
    ds.update(header)
    ds.add_new(0x7FE00010, "OW", pixels)
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = header["SOPClassUID"]
    meta.MediaStorageSOPInstanceUID = header["SOPInstanceUID"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------
# Manifest and the public function


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if not lo <= number <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {number}")
    return number


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _listed(manifest: dict[str, Any]) -> list[tuple[str, int]]:
    """Return the manifest's (relative path, size) entries that are safe to touch."""
    files = manifest.get("files")
    entries = [e for e in (files if isinstance(files, list) else ()) if isinstance(e, dict)]
    pairs = [(e.get("path"), e.get("size")) for e in entries]
    return [
        (rel, size)
        for rel, size in pairs
        if isinstance(rel, str) and isinstance(size, int) and rel and "\\" not in rel
        and not rel.startswith("/") and ".." not in PurePosixPath(rel).parts
    ]  # fmt: skip


def _is_complete(root: Path, manifest: dict[str, Any], expected: list[str]) -> bool:
    listed = _listed(manifest)
    try:
        sizes_ok = all((root / rel).stat().st_size == size for rel, size in listed)
    except OSError:
        return False
    return sizes_ok and [rel for rel, _ in listed] == expected


def write_sample_study(
    path: str | os.PathLike[str],
    seed: int = 0,
    *,
    ct_slices: int = 100,
    ct_size: int = 512,
    mr_slices: int = 24,
    mr_size: int = 256,
    overwrite: bool = False,
) -> SampleStudy:
    """Write a deterministic synthetic CT + MR study into `path`.

    The study has one fictitious patient, one study and two series: an axial
    contrast-enhanced CT from the lung apices to the pelvis (``1_CT``) and an axial
    T1-weighted-looking MR of the head (``2_MR``), as single-frame CT and MR Image
    Storage files (PS3.3 A.3, A.4) in Explicit VR Little Endian. The same `seed` and
    sizes give byte-identical files on every run and machine; another seed gives other
    UIDs, names, dates and noise.

    Files go to ``path/<SeriesNumber>_<Modality>/IM<InstanceNumber:04d>.dcm``, each
    written atomically; ``path/dicomflow_sample.json`` (seed, sizes, generator version,
    relative names, sizes and SHA-256 of the files) is written last. Other files in
    `path` are left alone; files that an earlier run of this function listed in its
    manifest and that the new study does not have are removed.

    Parameters
    ----------
    path : str or pathlib.Path
        The study folder; created if missing.
    seed : int, optional
        Any non-negative integer (default 0).
    ct_slices : int, optional
        Number of CT slices, 1..9999 (default 100). They always cover 500 mm, so the
        slice spacing is ``500 / ct_slices`` mm (5 mm by default).
    ct_size : int, optional
        CT rows and columns, 16..4096 (default 512) over a 400 mm field of view.
    mr_slices : int, optional
        Number of MR slices, 1..9999 (default 24), covering 120 mm.
    mr_size : int, optional
        MR rows and columns, 16..4096 (default 256) over a 240 mm field of view.
    overwrite : bool, optional
        Write everything again even when the manifest says the study is already
        complete (default False).

    Returns
    -------
    SampleStudy
        Where the files are, with the study's UIDs and the fictitious patient's name
        and ID. ``reused`` is True when nothing had to be written.

    Raises
    ------
    TypeError
        If `seed` or a size is not an integer.
    ValueError
        If `seed` is negative or a size or slice count is out of range.
    OSError
        If the folder or a file cannot be written.

    Notes
    -----
    CT pixels are signed 16-bit holding ``HU + 1024`` (Rescale Intercept -1024, Slope
    1), with two VOI presets, soft tissue (40/400) and lung (-600/1500). MR pixels are
    unsigned 16-bit with one preset spanning the 2nd to 99.5th percentile of the head.
    Complete reuse is judged from the manifest and file sizes only, not by re-hashing.

    Examples
    --------
    >>> from dicomflow_lab.core.sample import write_sample_study
    >>> study = write_sample_study(tmp_path / "study", seed=1, ct_slices=4, ct_size=64,
    ...                            mr_slices=2, mr_size=32)  # doctest: +SKIP
    >>> [(s.Modality, s.num_instances) for s in study.series]  # doctest: +SKIP
    [('CT', 4), ('MR', 2)]
    """
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    ct_slices = _check_int("ct_slices", ct_slices, 1, 9999)
    mr_slices = _check_int("mr_slices", mr_slices, 1, 9999)
    ct_size = _check_int("ct_size", ct_size, 16, 4096)
    mr_size = _check_int("mr_size", mr_size, 16, 4096)
    root = Path(path).expanduser()
    params = dict(ct_slices=ct_slices, ct_size=ct_size, mr_slices=mr_slices, mr_size=mr_size)
    identity = dict(
        format=_MANIFEST_FORMAT, version=GENERATOR_VERSION, seed=seed, parameters=params
    )
    key = json.dumps(identity, sort_keys=True)  # every UID depends on all of it

    study_uid = _uid(key, "study")
    common, start = _study_header(seed, study_uid)
    ct_geo = _Geometry.make(ct_size, _CT_FOV_MM, _CT_COVERAGE_MM, ct_slices)
    mr_geo = _Geometry.make(mr_size, _MR_FOV_MM, _MR_COVERAGE_MM, mr_slices)
    plans: list[tuple[dict[str, Any], _Geometry, dt.datetime]] = []
    series: list[SampleSeries] = []
    for static, geo, minutes, description in (
        (_CT_STATIC, ct_geo, 3, "THORAX ABDOMEN C+"),
        (_MR_STATIC, mr_geo, 25, "T1 SE AX"),
    ):
        number, modality = static["SeriesNumber"], static["Modality"]
        series_start = start + dt.timedelta(minutes=minutes)
        header = {
            **common,
            **static,
            "SeriesInstanceUID": _uid(key, f"series{number}"),
            "FrameOfReferenceUID": _uid(key, f"series{number}-frame-of-reference"),
            "SeriesDate": series_start.strftime("%Y%m%d"),
            "SeriesTime": _tm(series_start),
            "SeriesDescription": f"{description} {geo.slice_mm} mm",
            "ImagesInAcquisition": geo.count,
            "SliceThickness": geo.slice_mm,
            "SpacingBetweenSlices": geo.slice_mm,
            "PixelSpacing": [_ds(geo.spacing), _ds(geo.spacing)],
            "Rows": geo.size,
            "Columns": geo.size,
        }
        plans.append((header, geo, series_start))
        folder = root / f"{number}_{modality}"
        series.append(
            SampleSeries(
                path=folder,
                SeriesNumber=number,
                Modality=modality,
                SeriesInstanceUID=str(header["SeriesInstanceUID"]),
                SeriesDescription=header["SeriesDescription"],
                FrameOfReferenceUID=str(header["FrameOfReferenceUID"]),
                files=tuple(folder / f"IM{k + 1:04d}.dcm" for k in range(geo.count)),
            )
        )
    ct_header, mr_header = plans[0][0], plans[1][0]
    ct_header["ReconstructionDiameter"] = _ds(ct_geo.spacing * ct_geo.size)
    ct_header["CTDIvol"] = 7.0 + (_draw(seed, "ctdi") % 300) / 100.0
    phase = max(1, mr_geo.size * 3 // 4)
    mr_header["NumberOfPhaseEncodingSteps"] = phase
    mr_header["AcquisitionMatrix"] = [mr_geo.size, 0, 0, phase]
    manifest_path = root / MANIFEST_NAME
    study = SampleStudy(
        path=root,
        seed=seed,
        StudyInstanceUID=str(study_uid),
        PatientName=common["PatientName"],
        PatientID=common["PatientID"],
        series=tuple(series),
        manifest=manifest_path,
    )
    expected = [f.relative_to(root).as_posix() for f in study.files]

    root.mkdir(parents=True, exist_ok=True)
    old = _read_manifest(manifest_path)
    if (
        not overwrite
        and old is not None
        and {k: old.get(k) for k in identity} == identity
        and _is_complete(root, old, expected)
    ):
        logger.debug("sample study in %s is complete; nothing written", root)
        return dataclasses.replace(study, reused=True)
    # Drop the old manifest first: an interrupted run must never look complete.
    manifest_path.unlink(missing_ok=True)

    ct_rng = np.random.default_rng([seed, 1])
    ct_extras = _ct_extras(ct_rng)
    ct_painter = _Painter(ct_geo.coords)
    mr_depths = [mr_geo.depth(k) for k in range(mr_slices)]
    mr_volume = _mr_volume(mr_geo.coords, mr_depths, np.random.default_rng([seed, 2]))
    mr_header["WindowCenter"], mr_header["WindowWidth"] = _mr_window(mr_volume)

    entries: list[dict[str, Any]] = []
    for (header, geo, series_start), info in zip(plans, series, strict=True):
        info.path.mkdir(exist_ok=True)
        for k, file in enumerate(info.files):
            uid = _uid(key, f"series{info.SeriesNumber}-instance{k + 1}")
            instance = {**header, **_instance_header(header, geo, k, series_start, uid)}
            if info.Modality == "CT":
                pixels = _ct_slice(ct_painter, geo.depth(k), ct_extras, ct_rng)
            else:
                pixels = mr_volume[k].tobytes()
            data = _encode(instance, pixels)
            with atomic_writer(file) as fh:
                fh.write(data)
            rel = file.relative_to(root).as_posix()
            entries.append(
                {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
        logger.debug("sample study: wrote %d %s instances", info.num_instances, info.Modality)

    if old is not None:
        keep = set(expected)
        for rel, _ in _listed(old):
            if rel not in keep:
                (root / rel).unlink(missing_ok=True)
                logger.debug("sample study: removed stale %s", rel)
    text = json.dumps({**identity, "files": entries}, indent=1, sort_keys=True) + "\n"
    with atomic_writer(manifest_path) as fh:
        fh.write(text.encode("ascii"))
    logger.debug("sample study written to %s", root)
    return study

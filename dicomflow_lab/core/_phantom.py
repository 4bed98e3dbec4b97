"""CT chest–abdomen and MR head phantoms for :mod:`dicomflow_lab.core.sample`.

Slices are painted in millimetres from axis-aligned ellipses and rectangles (CT in HU,
MR in T1-weighted-looking arbitrary units), blurred slightly and given seeded noise.
Only ``+ - * /``, ``sqrt`` and comparisons touch the pixels, and the noise comes from
the raw PCG64 bit stream, so every slice is byte-identical on every machine. A change
here that alters a pixel must bump ``GENERATOR_VERSION`` in :mod:`.sample`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["_Painter", "_ct_extras", "_ct_slice", "_mr_volume", "_mr_window"]

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


# ---------------------------------------------------------------------------------------
# Seeded draws


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
# Shapes along the scan axis


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


def _mr_window(volume: np.ndarray) -> tuple[float, int]:
    """Return (center, width) spanning the 2nd..99.5th percentile of the foreground."""
    fg = volume[volume > 6.0 * _MR_NOISE]
    if fg.size < 2:
        return 500.0, 1000
    lo = int(np.partition(fg, fg.size * 2 // 100)[fg.size * 2 // 100])
    hi_k = min(fg.size - 1, fg.size * 995 // 1000)
    hi = int(np.partition(fg, hi_k)[hi_k])
    width = max(hi - lo, 1)
    return lo + width / 2.0, width

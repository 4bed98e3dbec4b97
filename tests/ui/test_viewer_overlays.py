"""Overlay planes (60xx) in the inline viewer, in a real JupyterLab: the toggle from Python
and from the toolbar, the overlay canvas against :func:`dicomflow_lab.core.pixels.overlay`,
and the image canvas left untouched."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.ui._harness import JupyterLab, run_notebook, wait_for
from tests.ui.test_viewer import (
    assert_matches_reference,
    attrs,
    browser_greys,
    element_shot,
    kernel,
    until,
)
from tests.widgets.test_overlays import Plane, write_overlay_file

READY = '.dfl-viewer[data-dfl-ready="1"]'


def _ring(rows: int, cols: int) -> np.ndarray:
    bits = np.zeros((rows, cols), bool)
    bits[:3, :] = bits[-3:, :] = bits[:, :3] = bits[:, -3:] = True
    for i in range(min(rows, cols)):
        bits[i, max(0, i - 1) : i + 2] = True
    return bits


def _disc(size: int) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    return (x * x + y * y) <= (size / 2) ** 2


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample study plus a third series: a CT slice with two overlay planes."""
    import dicomflow_lab as dfl
    from dicomflow_lab.core import pixels

    base = tmp_path_factory.mktemp("overlay-study")
    folder = Path(dfl.data.sample_study(base, ct_slices=6, ct_size=256, mr_slices=2, mr_size=64))
    ct = sorted((folder / "1_CT").glob("*.dcm"))[3]
    path = write_overlay_file(
        ct,
        folder / "3_OV" / "ov.dcm",
        [
            Plane(0x6000, _ring(100, 140), origin=(41, 61), label="Ring"),
            Plane(0x6002, _disc(40), origin=(170, 30), description="Disc"),
        ],
        SeriesDescription="OVERLAYS",
        SeriesNumber=3,
    )
    planes = pixels.overlay(path, 0)
    return {"folder": folder, "path": path, "planes": planes}


def overlay_alpha(viewer: Any) -> np.ndarray:
    state = viewer.evaluate("el => el.dflViewer.state()")
    rows, cols = state["overlays"]["size"]
    raw = base64.b64decode(viewer.evaluate("el => el.dflViewer.overlayAlpha()"))
    return np.frombuffer(raw, np.uint8).reshape(rows, cols)


def boxes(viewer: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Screen boxes of the image canvas on screen and of the overlay canvas."""
    return viewer.evaluate(
        """el => {
          const box = (n) => { const r = n.getBoundingClientRect();
            return { x: r.x, y: r.y, w: r.width, h: r.height }; };
          return [box(el.querySelector('canvas.dfl-image:not([hidden])')),
                  box(el.querySelector('canvas.dfl-overlay'))];
        }"""
    )


def assert_same_box(viewer: Any) -> None:
    image, overlay = boxes(viewer)
    for key in ("x", "y", "w", "h"):
        assert overlay[key] == pytest.approx(image[key], abs=0.01), (image, overlay)


def test_overlays_toggle_from_python_and_the_toolbar(
    page: Any, jupyterlab: JupyterLab, study: dict[str, Any]
) -> None:
    run_notebook(
        page,
        jupyterlab,
        [
            "import dicomflow_lab as dfl\n"
            f"v = dfl.open({str(study['folder'])!r}, progress=False)\n"
            "ov_uid = next(s['key'] for s in v.series if s['description'] == 'OVERLAYS')\nv",
        ],
        "viewer_overlays",
    )
    viewer = wait_for(page, READY, state="visible")
    button = viewer.locator("button.dfl-overlays")
    # the CT on screen has no overlays: the button is there but disabled
    assert attrs(viewer)["dflOverlays"] == "0"
    assert button.is_disabled()

    # Python switches to the overlay series and turns overlays on
    ov_uid = kernel(page, "print(ov_uid)").strip()
    kernel(page, "v.series_key = ov_uid")
    until(lambda: attrs(viewer)["dflSeries"] == ov_uid, "the overlay series")
    until(lambda: button.is_enabled(), "the Overlays button to be enabled")
    assert attrs(viewer)["dflOverlays"] == "0"  # available but off
    greys_before = browser_greys(viewer)
    kernel(page, "v.overlays = True")
    until(lambda: attrs(viewer)["dflOverlays"] == "2", "both overlay planes drawn")
    assert button.get_attribute("aria-pressed") == "true"
    state = viewer.evaluate("el => el.dflViewer.state()")["overlays"]
    assert state["shown"] and state["size"] == [256, 256]
    assert state["labels"] == "Ring; Disc"

    # the overlay canvas: opaque-ish exactly where a mask is 1, transparent elsewhere
    alpha = overlay_alpha(viewer)
    ring, disc = (mask for _, mask in study["planes"])
    union = ring | disc
    assert union.sum() > 1000
    assert (alpha[union] > 150).all(), "a set overlay bit is not drawn"
    assert (alpha[~union] == 0).all(), "something is drawn where no overlay bit is set"
    r, c = np.argwhere(ring & ~disc)[0]
    assert viewer.evaluate(
        "(el, [r, c]) => el.dflViewer.overlayPixel(r, c)", [int(r), int(c)]
    ) == pytest.approx([255, 224, 0, 204], abs=2)  # yellow: the first plane
    r, c = np.argwhere(disc & ~ring)[0]
    assert viewer.evaluate(
        "(el, [r, c]) => el.dflViewer.overlayPixel(r, c)", [int(r), int(c)]
    ) == pytest.approx([0, 229, 255, 204], abs=2)  # cyan: the second

    # the image canvas is untouched: same greys, still core/voi.py's
    assert np.array_equal(browser_greys(viewer), greys_before)
    assert_matches_reference(page, viewer, "v")
    assert_same_box(viewer)
    element_shot(viewer, "viewer_overlays")

    # zoom, rotation and flips move the overlay with the image
    viewer.locator(".dfl-zoomin").click()
    viewer.locator(".dfl-rotate").click()
    viewer.locator(".dfl-fliph").click()
    assert_same_box(viewer)
    assert np.array_equal(overlay_alpha(viewer), alpha)
    element_shot(viewer, "viewer_overlays_rotated")
    viewer.locator(".dfl-reset").click()

    # the toolbar button toggles the trait both ways
    button.click()
    until(lambda: kernel(page, "print(v.overlays)").strip() == "False", "Python to see off")
    assert attrs(viewer)["dflOverlays"] == "0"
    assert not viewer.locator("canvas.dfl-overlay").is_visible()
    assert button.get_attribute("aria-pressed") == "false"
    button.click()
    until(lambda: kernel(page, "print(v.overlays)").strip() == "True", "Python to see on")
    until(lambda: attrs(viewer)["dflOverlays"] == "2", "overlays drawn again (cached)")
    # ... and so does the O key while the viewer has focus
    viewer.locator(".dfl-viewport").click(position={"x": 20, "y": 20})
    page.keyboard.press("o")
    until(lambda: kernel(page, "print(v.overlays)").strip() == "False", "O to turn them off")
    page.keyboard.press("o")
    until(lambda: attrs(viewer)["dflOverlays"] == "2", "O to turn them on")

    # back to the CT with overlays still on: nothing to draw, the button is disabled
    kernel(page, "v.series_key = v.series[0]['key']")
    until(lambda: attrs(viewer)["dflSeries"] != ov_uid, "the CT again")
    until(lambda: button.is_disabled(), "the button to be disabled on the CT")
    assert attrs(viewer)["dflOverlays"] == "0"
    assert not viewer.locator("canvas.dfl-overlay").is_visible()
    assert attrs(viewer)["dflError"] == ""


_RUNTIME_JS = """async (src) => {
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  const I = (await import(url))._internals;
  const handlers = {};
  const sent = [];
  const model = {
    on: (n, cb) => { handlers[n] = cb; }, off: () => {}, get: () => null, send: (m) => sent.push(m),
  };
  const rt = new I.Runtime(model);
  const reply = (m, overlays, buffers) => handlers['msg:custom'](
    { kind: 'overlay:reply', id: m.id, ok: true, overlays }, buffers);
  const out = {};
  const a = rt.overlays('1.2', 0);
  out.deduplicated = rt.overlays('1.2', 0) === a && sent.length === 1;
  out.kind = sent[0].kind;
  // two 2 x 3 masks in one buffer's slices, at odd byte offsets
  const raw = new Uint8Array([9, 1, 0, 1, 0, 0, 1, 9, 0, 1, 1, 1, 0, 0]).buffer;
  reply(sent[0], [{ group: 0x6000, rows: 2, columns: 3, label: 'A' },
                  { group: 0x6002, rows: 2, columns: 3, label: '' }],
        [new DataView(raw, 1, 6), new DataView(raw, 8, 6)]);
  const planes = await a;
  out.planes = planes.map((p) => [p.group, p.label, Array.from(p.mask)]);
  out.peek = rt.peekOverlays('1.2', 0) === planes;
  // a reply whose buffer does not match its size is an error, and not cached
  const bad = rt.overlays('1.2', 1);
  reply(sent[1], [{ group: 0x6000, rows: 4, columns: 4, label: '' }], [new DataView(raw, 0, 3)]);
  out.bad = await bad.then(() => 'resolved', (e) => e.message);
  out.badEvicted = !rt.overlayCache.has('1.2:1');
  // the LRU keeps at most 32 frames' planes
  for (let i = 2; i < 40; i++) {
    const p = rt.overlays('1.2', i);
    reply(sent[sent.length - 1], [], []);
    await p;
  }
  out.size = rt.overlayCache.size;
  out.oldestGone = !rt.overlayCache.has('1.2:0');
  rt.dispose();
  out.cleared = rt.overlayCache.size === 0;
  return out;
}"""


def test_overlay_runtime_pieces(page: Any) -> None:
    """The runtime's overlay requests in Chromium, without a kernel: masks, LRU, errors."""
    src = (
        Path(__file__).resolve().parents[2] / "dicomflow_lab/widgets/static/viewer.js"
    ).read_text()
    page.set_content("<!doctype html><title>viewer.js</title>")
    out = page.evaluate(_RUNTIME_JS, src)
    assert out["deduplicated"] and out["kind"] == "overlay"
    assert out["planes"] == [
        [0x6000, "A", [1, 0, 1, 0, 0, 1]],
        [0x6002, "", [0, 1, 1, 1, 0, 0]],
    ]
    assert out["peek"]
    assert "holds 3 bytes, expected 16" in out["bad"] and out["badEvicted"]
    assert out["size"] == 32 and out["oldestGone"]
    assert out["cleared"]

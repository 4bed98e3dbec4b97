"""The inline viewer in a real JupyterLab: painting, window/level, scrolling, sync, errors.

The browser's display pipeline (``widgets/static/viewer.js``) is compared with the numpy
reference :mod:`dicomflow_lab.core.voi` (through ``Viewer.render``) within one grey level,
for the 8-bit LUT path (CT int16, MR uint16) and for the path float and very large
images take (WebGL2 when Chromium has it — SwiftShader in headless runs — else the
per-pixel canvas fallback, which is also checked by forcing it).
"""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.ui._harness import ARTIFACTS_DIR, JupyterLab, run_notebook, screenshot, wait_for

READY = '.dfl-viewer[data-dfl-ready="1"]'
SYNC_TIMEOUT_S = 10.0

# --------------------------------------------------------------------------- data


def _derived(src: Path, folder: Path, number: int, description: str) -> Any:
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(src)
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    return ds


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample study, plus a float image, a 2304² image and a copy of the CT series."""
    import pydicom

    import dicomflow_lab as dfl

    base = tmp_path_factory.mktemp("viewer-data")
    sample = Path(
        dfl.data.sample_study(base / "sample", ct_slices=30, ct_size=256, mr_slices=8, mr_size=128)
    )
    ct_files = sorted((sample / "1_CT").glob("*.dcm"))
    src = ct_files[len(ct_files) // 2]
    stored = pydicom.dcmread(src).pixel_array

    # Float Pixel Data (7FE0,0008): no Bits Stored / Pixel Representation / rescale
    ds = _derived(src, base / "float", 8, "FLOAT MAP")
    del ds.PixelData
    for keyword in (
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "RescaleSlope",
        "RescaleIntercept",
        "RescaleType",
        "WindowCenter",
        "WindowWidth",
        "WindowCenterWidthExplanation",
    ):
        if keyword in ds:
            delattr(ds, keyword)
    ds.BitsAllocated = 32
    ds.FloatPixelData = ((stored.astype(np.float32) - 1024.0) / 1000.0).astype("<f4").tobytes()
    ds.save_as(base / "float" / "float.dcm")

    # larger than 2048 x 2048: the viewer's WebGL2 path
    ds = _derived(src, base / "large", 9, "LARGE 2304")
    big = np.tile(stored, (9, 9))[:2304, :2304].astype(np.int16)
    ds.Rows = ds.Columns = 2304
    ds.PixelData = big.tobytes()
    ds.save_as(base / "large" / "large.dcm")

    bad = base / "bad"
    shutil.copytree(sample / "1_CT", bad)
    return {"sample": sample, "float": base / "float", "large": base / "large", "bad": bad}


# --------------------------------------------------------------------------- helpers

_EXEC_JS = """async (code) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = '';
  let err = null;
  future.onIOPub = (msg) => {
    const type = msg.header.msg_type;
    if (type === 'stream') { out += msg.content.text; }
    if (type === 'error') { err = `${msg.content.ename}: ${msg.content.evalue}`; }
  };
  await future.done;
  return { out, err };
}"""


def kernel(page: Any, code: str) -> str:
    """Run `code` in the open notebook's kernel (the one holding the viewers); return stdout."""
    result = page.evaluate(_EXEC_JS, code)
    assert result["err"] is None, f"kernel error running {code!r}: {result['err']}"
    return str(result["out"])


def until(check: Callable[[], Any], what: str, timeout: float = SYNC_TIMEOUT_S) -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


def attrs(viewer: Any) -> dict[str, str]:
    return viewer.evaluate(
        "el => Object.fromEntries(Object.entries(el.dataset).map(([k, v]) => [k, v]))"
    )


def browser_greys(viewer: Any) -> np.ndarray:
    """The image canvas's grey levels at native resolution, as drawn in the browser."""
    state = viewer.evaluate("el => el.dflViewer.state()")
    raw = base64.b64decode(viewer.evaluate("el => el.dflViewer.greys()"))
    return np.frombuffer(raw, np.uint8).reshape(state["rows"], state["columns"])


def reference_greys(page: Any, var: str) -> np.ndarray:
    """``Viewer.render()`` in the kernel: core/voi.py on the viewer's frame, W/L, invert."""
    out = kernel(
        page,
        "import base64 as _b64\n"
        f"_img = {var}.render()\n"
        "print(_img.shape[0], _img.shape[1], _b64.b64encode(_img.tobytes()).decode())",
    )
    rows, cols, payload = out.split()
    return np.frombuffer(base64.b64decode(payload), np.uint8).reshape(int(rows), int(cols))


def assert_matches_reference(page: Any, viewer: Any, var: str) -> int:
    """Browser pixels equal core/voi.py's within one grey level; returns the max diff."""
    ours = browser_greys(viewer).astype(np.int16)
    ref = reference_greys(page, var).astype(np.int16)
    assert ours.shape == ref.shape
    diff = np.abs(ours - ref)
    worst = int(diff.max())
    assert worst <= 1, (
        f"{var}: {int((diff > 1).sum())} pixels differ by more than 1 (max {worst}) "
        f"from core.voi.render"
    )
    assert ref.std() > 5, "the reference image is nearly flat: the comparison proves nothing"
    return worst


def assert_matches_at(page: Any, viewer: Any, var: str, n: int = 300) -> None:
    """Like assert_matches_reference, at `n` random positions (for very large images)."""
    state = viewer.evaluate("el => el.dflViewer.state()")
    rng = np.random.default_rng(7)
    rows = rng.integers(0, state["rows"], n).tolist()
    cols = rng.integers(0, state["columns"], n).tolist()
    ref = json.loads(
        kernel(
            page,
            f"import json\n_img = {var}.render()\nprint(json.dumps(_img[{rows}, {cols}].tolist()))",
        )
    )
    ours = viewer.evaluate(
        "(el, [rs, cs]) => rs.map((r, i) => el.dflViewer.pixel(r, cs[i])[0])", [rows, cols]
    )
    diff = np.abs(np.array(ours, np.int16) - np.array(ref, np.int16))
    assert diff.max() <= 1, f"{var}: max diff {diff.max()} at {int((diff > 1).sum())} positions"
    assert np.std(ref) > 5


def py_window(page: Any, var: str) -> tuple[float, float]:
    center, width = kernel(page, f"print({var}.window_center, {var}.window_width)").split()
    return float(center), float(width)


def view_window(viewer: Any) -> tuple[float, float]:
    a = attrs(viewer)
    return float(a["dflWc"]), float(a["dflWw"])


def element_shot(locator: Any, name: str) -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / f"{name}.png"
    locator.screenshot(path=str(path))
    return path


def viewport_point(viewer: Any, fx: float, fy: float) -> tuple[float, float]:
    box = viewer.locator(".dfl-viewport").bounding_box()
    assert box is not None
    return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy


# --------------------------------------------------------------------------- tests


def test_viewer_ct_paints_windows_scrolls_and_syncs(
    page: Any, jupyterlab: JupyterLab, data: dict[str, Path]
) -> None:
    run_notebook(
        page,
        jupyterlab,
        [
            "import dicomflow_lab as dfl\n"
            f"v = dfl.open({str(data['sample'])!r}, progress=False)\nv",
        ],
        "viewer_ct",
    )
    viewer = wait_for(page, READY, state="visible")
    a = attrs(viewer)
    assert a["dflRenderer"] == "canvas2d"  # 256² int16: the 8-bit LUT path
    assert a["dflError"] == ""
    assert (a["dflWc"], a["dflWw"]) == ("40", "400")
    start_frame = int(a["dflFrame"])
    assert start_frame == 15
    greys = browser_greys(viewer)
    assert greys.std() > 20, "the image canvas looks blank"
    assert_matches_reference(page, viewer, "v")
    # the series strip got both thumbnails from the kernel
    until(
        lambda: viewer.evaluate(
            "el => [...el.querySelectorAll('img.dfl-thumb')]"
            ".every(i => i.complete && i.naturalWidth > 16)"
            " && el.querySelectorAll('img.dfl-thumb').length === 2"
        ),
        "series thumbnails",
    )
    element_shot(viewer, "viewer_ct")

    # W/L from the browser: a right-drag repaints and Python follows on release
    paints = int(attrs(viewer)["dflPaints"])
    x, y = viewport_point(viewer, 0.5, 0.5)
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    for i in range(1, 11):
        page.mouse.move(x + 12 * i, y - 6 * i)
    page.mouse.up(button="right")
    assert page.locator(".lm-Menu").count() == 0, "a context menu opened on the image"
    a = until(
        lambda: (lambda d: d if int(d["dflPaints"]) > paints else None)(attrs(viewer)), "a repaint"
    )
    wc, ww = float(a["dflWc"]), float(a["dflWw"])
    assert ww > 400 and wc < 40, f"right-drag right/up should widen and lower the window: {wc} {ww}"
    assert np.abs(browser_greys(viewer).astype(int) - greys.astype(int)).max() > 10
    until(lambda: py_window(page, "v") == (wc, ww), "Python's window to follow the drag")
    assert_matches_reference(page, viewer, "v")

    # scrolling: the wheel and the keyboard move the frame, and Python's v.frame follows
    page.mouse.move(x, y)
    page.mouse.wheel(0, 100)
    until(lambda: attrs(viewer)["dflFrame"] == str(start_frame + 1), "the wheel to scroll")
    viewer.locator(".dfl-viewport").click(position={"x": 20, "y": 20})
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    until(lambda: attrs(viewer)["dflFrame"] == str(start_frame + 3), "ArrowDown to scroll")
    until(
        lambda: kernel(page, "print(v.frame)").strip() == str(start_frame + 3),
        "Python's frame to follow",
    )
    # the notebook's single-key shortcuts do not act on the cell behind the image
    cells = page.locator(".jp-Cell").count()
    page.keyboard.press("d")
    page.keyboard.press("d")
    page.keyboard.press("m")
    assert page.locator(".jp-Cell").count() == cells
    assert page.locator(".jp-CodeCell").count() == cells
    page.keyboard.press("Home")
    until(lambda: attrs(viewer)["dflFrame"] == "0", "Home")
    page.keyboard.press("End")
    until(lambda: attrs(viewer)["dflFrame"] == "29", "End")
    until(lambda: kernel(page, "print(v.frame)").strip() == "29", "Python's frame after End")
    scroll_ms = viewer.evaluate("el => el.dflViewer.lastPaintMs")
    print(f"\n256x256 int16 frame change: lastPaintMs {scroll_ms:.2f} ms")
    assert_matches_reference(page, viewer, "v")

    # corner annotations: no patient lines unless show_phi; the annotations trait hides all
    name = kernel(page, "print(v.study.summary_values(show_phi=True)['PatientName'])").strip()
    assert name and name not in viewer.inner_text()
    kernel(page, "v.show_phi = True")
    until(lambda: name in viewer.locator(".dfl-tl").inner_text(), "the patient line with show_phi")
    kernel(page, "v.show_phi = False")
    until(lambda: name not in viewer.inner_text(), "the patient line to go")
    kernel(page, "v.annotations = False")
    until(lambda: not viewer.locator(".dfl-tr").is_visible(), "annotations off")
    kernel(page, "v.annotations = True")
    until(lambda: "Im " in viewer.locator(".dfl-tr").inner_text(), "annotations on")
    kernel(page, "v.status = 'kernel says hello'")
    until(lambda: viewer.locator(".dfl-status").inner_text() == "kernel says hello", "status")
    kernel(page, "v.status = ''")

    # Python drives the view: window, frame, invert
    kernel(page, "v.window_center = -600.0\nv.window_width = 1500.0\nv.frame = 10")
    until(
        lambda: (lambda d: d["dflWc"] == "-600" and d["dflWw"] == "1500" and d["dflFrame"] == "10")(
            attrs(viewer)
        ),
        "the view to follow Python's window and frame",
    )
    assert_matches_reference(page, viewer, "v")
    kernel(page, "v.invert = True")
    until(lambda: viewer.evaluate("el => el.dflViewer.state().invert"), "invert")
    until(lambda: kernel(page, "print(v.invert)").strip() == "True", "invert in Python")
    time.sleep(0.1)  # the repaint is on the next animation frame
    assert_matches_reference(page, viewer, "v")
    kernel(page, "v.invert = False")

    # auto window (0.5–99.5 percentile, computed in the browser) equals core/voi.py's
    viewer.locator(".dfl-auto").click()
    ref = tuple(
        float(x)
        for x in kernel(
            page,
            "from dicomflow_lab.core import voi\n"
            "_a = voi.auto_window(v.current_frame())\nprint(_a.center, _a.width)",
        ).split()
    )
    got = until(
        lambda: (lambda w: w if w != (-600.0, 1500.0) else None)(py_window(page, "v")),
        "auto window",
    )
    assert got == pytest.approx(ref, abs=1e-6)
    assert view_window(viewer) == pytest.approx(ref, abs=1e-6)

    # view tools: ctrl+wheel zoom, rotate, flip, fit; the pixel readout under the cursor
    state = viewer.evaluate("el => el.dflViewer.state()")
    page.mouse.move(x, y)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -200)
    page.keyboard.up("Control")
    zoomed = until(
        lambda: (lambda st: st if st["zoom"] > state["zoom"] * 1.2 else None)(
            viewer.evaluate("el => el.dflViewer.state()")
        ),
        "ctrl+wheel to zoom",
    )
    assert zoomed["frame"] == state["frame"]  # ctrl+wheel does not scroll
    viewer.locator(".dfl-rotate").click()
    viewer.locator(".dfl-fliph").click()
    st = viewer.evaluate("el => el.dflViewer.state()")
    assert (st["rotation"], st["flipH"]) == (90, True)
    # screen-space operations: rotating an axial slice puts the patient's right on top,
    # then a horizontal flip swaps the screen's left (P) and right (A)
    markers = [
        viewer.locator(f".dfl-marker-{side}").inner_text()
        for side in ("top", "right", "bottom", "left")
    ]
    assert markers == ["R", "P", "L", "A"], markers
    page.mouse.move(x + 3, y + 3)
    readout = until(lambda: viewer.locator(".dfl-readout").inner_text(), "the readout")
    assert "SV" in readout and "HU" in readout and "mm" in readout, readout
    element_shot(viewer, "viewer_ct_tools")
    viewer.locator(".dfl-reset").click()
    st = viewer.evaluate("el => el.dflViewer.state()")
    assert (st["rotation"], st["flipH"], st["zoom"]) == (0, False, state["zoom"])

    # cine: Space plays, Space stops; Python's frame follows
    viewer.locator(".dfl-viewport").click(position={"x": 20, "y": 20})
    before = attrs(viewer)
    page.keyboard.press(" ")
    until(
        lambda: (
            lambda d: (
                int(d["dflPaints"]) >= int(before["dflPaints"]) + 3
                and d["dflFrame"] != before["dflFrame"]
            )
        )(attrs(viewer)),
        "cine to play a few frames",
    )
    page.keyboard.press(" ")
    stopped = attrs(viewer)["dflFrame"]
    assert not viewer.evaluate("el => el.dflViewer.state().playing")
    until(lambda: kernel(page, "print(v.frame)").strip() == stopped, "Python's frame after cine")

    # 256² paint time: the LUT rebuild + one pass + putImageData
    times = viewer.evaluate(
        "el => Array.from({length: 30}, (_, i) => el.dflViewer.setWindow(40 + i, 400 + 7 * i))"
    )
    median_ms = statistics.median(times)
    print(f"\n256x256 int16 setWindow paint: median {median_ms:.2f} ms, max {max(times):.2f} ms")
    (ARTIFACTS_DIR / "viewer_paint_ms.json").write_text(
        json.dumps({"frame": "256x256 int16", "median_ms": median_ms, "max_ms": max(times)})
    )
    assert median_ms < 50
    viewer.evaluate("el => el.dflViewer.setWindow(-600, 1500)")

    # series switch by the thumbnail strip: the MR (uint16) series paints
    viewer.locator(".dfl-series").nth(1).click()
    mr_uid = kernel(page, "print(v.series[1]['key'])").strip()
    until(
        lambda: (lambda d: d["dflSeries"] == mr_uid and d["dflFrame"] == "4")(attrs(viewer)),
        "the MR series",
    )
    until(lambda: kernel(page, "print(v.series_key)").strip() == mr_uid, "Python's series_key")
    # the kernel answers the switch with the MR window; wait until the browser has it
    until(lambda: py_window(page, "v") == view_window(viewer), "the MR window in the browser")
    assert_matches_reference(page, viewer, "v")
    mx, my = viewport_point(viewer, 0.5, 0.5)
    page.mouse.move(mx, my)
    until(lambda: "SV" in viewer.locator(".dfl-readout").inner_text(), "the MR readout")
    element_shot(viewer, "viewer_mr")

    # and back, from Python: the kernel picks the middle frame and the CT's own window
    ct_uid = kernel(page, "print(v.series[0]['key'])").strip()
    kernel(page, f"v.series_key = {ct_uid!r}")
    until(
        lambda: (
            (lambda d: (d["dflSeries"], d["dflFrame"], d["dflWc"], d["dflWw"]))(attrs(viewer))
            == (ct_uid, "15", "40", "400")
        ),
        "the CT series again",
    )
    assert attrs(viewer)["dflError"] == ""
    assert_matches_reference(page, viewer, "v")
    screenshot(page, "viewer_page")


def test_viewer_float_and_large_images(
    page: Any, jupyterlab: JupyterLab, data: dict[str, Path]
) -> None:
    run_notebook(
        page,
        jupyterlab,
        [
            "import dicomflow_lab as dfl\n"
            f"vf = dfl.open({str(data['float'])!r}, progress=False)\nvf",
            f"vl = dfl.open({str(data['large'])!r}, progress=False)\nvl",
        ],
        "viewer_float_large",
    )
    wait_for(page, READY)
    until(lambda: page.locator(READY).count() == 2, "both viewers to paint", timeout=60)
    float_view = page.locator(".jp-Cell").nth(0).locator(".dfl-viewer")
    large_view = page.locator(".jp-Cell").nth(1).locator(".dfl-viewer")
    state = float_view.evaluate("el => el.dflViewer.state()")
    # WebGL2 when the GPU is real; the CPU canvas path without WebGL2 or with a software
    # rasteriser (headless Chromium's SwiftShader), where it is the faster of the two
    has_gl = page.evaluate("() => !!document.createElement('canvas').getContext('webgl2')")
    assert (state["glDevice"] is not None) == has_gl, "the viewer did not find WebGL2"
    hardware_gl = state["glSoftware"] is False
    expected = "webgl2" if hardware_gl else "canvas2d"
    for view in (float_view, large_view):
        assert attrs(view)["dflRenderer"] == expected
        assert attrs(view)["dflError"] == ""
    print(f"\nWebGL2 device: {state['glDevice']!r}; float32 and 2304² frames use {expected}")
    assert_matches_reference(page, float_view, "vf")
    assert_matches_at(page, large_view, "vl")
    element_shot(float_view, "viewer_float")
    element_shot(large_view, "viewer_large")

    # Python's window reaches the float view
    kernel(page, "vf.window_center = -0.2; vf.window_width = 1.2")
    until(lambda: view_window(float_view) == (-0.2, 1.2), "the float view to follow Python")
    assert_matches_reference(page, float_view, "vf")

    # every path draws the same pixels: the shader (forced even when software) and the
    # canvas fallback
    paths = ["canvas2d", "webgl2"] if has_gl else ["canvas2d"]
    for path in paths:
        for view, var in ((float_view, "vf"), (large_view, "vl")):
            assert view.evaluate("(el, p) => el.dflViewer.forceRenderer(p)", path) == path
            if var == "vf":
                assert_matches_reference(page, view, var)
            else:
                assert_matches_at(page, view, var)
            window = list(py_window(page, var))
            ms = view.evaluate(
                "(el, [c, w]) => Array.from({length: 5},"
                " (_, i) => el.dflViewer.setWindow(c + (i % 2), w))",
                window,
            )
            view.evaluate("(el, [c, w]) => el.dflViewer.setWindow(c, w)", window)
            rows = view.evaluate("el => el.dflViewer.state().rows")
            print(f"{rows}x{rows} {var} {path} setWindow: median {statistics.median(ms):.1f} ms")
        for view in (float_view, large_view):
            view.evaluate("el => el.dflViewer.forceRenderer('auto')")


def test_viewer_shows_a_bad_frame_and_goes_on(
    page: Any, jupyterlab: JupyterLab, data: dict[str, Path]
) -> None:
    # the file is truncated after indexing (as if it changed on disk): its frame fails
    # to decode when the browser asks for it
    run_notebook(
        page,
        jupyterlab,
        [
            "import os\nimport dicomflow_lab as dfl\n"
            f"vb = dfl.open({str(data['bad'])!r}, progress=False)\n"
            "bad_path = vb._locate(vb.series_key, 2)[0]\n"
            "with open(bad_path, 'r+b') as fh:\n"
            "    fh.truncate(os.path.getsize(bad_path) - 4000)\n"
            "vb",
        ],
        "viewer_bad_frame",
    )
    viewer = wait_for(page, READY, state="visible")
    viewer.locator(".dfl-viewport").click(position={"x": 20, "y": 20})
    page.keyboard.press("Home")
    until(lambda: attrs(viewer)["dflFrame"] == "0", "Home")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    error = until(
        lambda: (lambda d: d["dflError"] if d["dflFrame"] == "2" else "")(attrs(viewer)),
        "the frame error",
    )
    assert "IM0003.dcm" in error and "truncated" in error
    message = viewer.locator(".dfl-message")
    assert message.is_visible()
    assert "IM0003.dcm" in message.inner_text()
    assert "IM0003.dcm" in viewer.locator(".dfl-status").inner_text()
    element_shot(viewer, "viewer_bad_frame")
    paints = int(attrs(viewer)["dflPaints"])
    page.keyboard.press("ArrowDown")
    until(
        lambda: (
            lambda d: d["dflFrame"] == "3" and d["dflError"] == "" and int(d["dflPaints"]) > paints
        )(attrs(viewer)),
        "the next frame to paint",
    )
    assert not message.is_visible()
    assert browser_greys(viewer).std() > 20
    assert viewer.locator(".dfl-status").inner_text() == ""


_UNITS_JS = """async ([src, cases]) => {
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  const mod = await import(url);
  const I = mod._internals;
  const out = {};
  // the LUT against core/voi.py's lut() for each case
  out.lut = cases.map((c) => {
    const { lut, offset } = I.buildLut(c.h, c.p);
    let worst = 0;
    c.ref.forEach((v, i) => { worst = Math.max(worst, Math.abs(lut[i - c.off + offset] - v)); });
    return worst;
  });
  // typed arrays honour byteOffset and copy when misaligned
  const raw = new ArrayBuffer(11);
  const bytes = new Uint8Array(raw);
  [0x01, 0x00, 0xff, 0xff, 0x00, 0x80].forEach((b, i) => { bytes[1 + i] = b; });
  out.misaligned = Array.from(I.toTypedArray('int16', new DataView(raw, 1, 6), 3));
  bytes.set([0x02, 0x00, 0x03, 0x00], 2);
  out.aligned = Array.from(I.toTypedArray('uint16', new DataView(raw, 2, 4), 2));
  // the runtime: one request per frame however many ask; errors evicted; bytes bounded
  const handlers = {};
  const sent = [];
  const model = {
    on: (n, cb) => { handlers[n] = cb; }, off: () => {}, get: () => null, send: (m) => sent.push(m),
  };
  const rt = new I.Runtime(model);
  const header = (i) => ({
    series: '1.2', index: i, rows: 2, columns: 2, samples: 1, dtype: 'uint8',
    photometric: 'MONOCHROME2',
  });
  const reply = (m, ok = true) => handlers['msg:custom'](
    ok ? { kind: 'frame:reply', id: m.id, ok: true, frame: header(m.index) }
       : { kind: 'frame:reply', id: m.id, ok: false,
           error: { type: 'PixelDataError', message: 'x.dcm: truncated' } },
    ok ? [new DataView(new Uint8Array([9, 1, 2, 3, 4]).buffer, 1, 4)] : []);
  const a = rt.frame('1.2', 0);
  const b = rt.frame('1.2', 0);
  out.deduplicated = sent.length === 1 && a === b;
  reply(sent[0]);
  out.values = Array.from((await a).data);
  out.peek = !!rt.peek('1.2', 0);
  const bad = rt.frame('1.2', 1);
  reply(sent[1], false);
  out.error = await bad.then(() => 'resolved', (e) => `${e.type}: ${e.message}`);
  out.evicted = !rt.frames.has('1.2:1');
  rt.frame('1.2', 1);
  out.retried = sent.length === 3;
  reply(sent[2]);
  rt.cacheLimit = 8;  // two 4-byte frames
  for (const i of [2, 3]) { rt.frame('1.2', i); reply(sent[sent.length - 1]); }
  await new Promise((r) => setTimeout(r, 0));
  out.cached = [...rt.frames.keys()];
  out.cacheBytes = rt.cacheBytes;
  rt.timeoutMs = 30;
  out.timeout = await rt.frame('1.2', 9).then(() => 'resolved', (e) => e.message);
  handlers['msg:custom']({ kind: 'frame:reply', id: 999, ok: true }, []);
  out.unknownReplyIgnored = true;
  rt.dispose();
  out.auto = I.autoWindow({ header: { dtype: 'uint8', samples: 1, slope: 1, intercept: 0 },
                           data: Uint8Array.from({ length: 201 }, (_, i) => i) });
  return out;
}"""


def _lut_cases() -> list[dict[str, Any]]:
    from dicomflow_lab.core import voi
    from dicomflow_lab.core.pixels import DisplayParams

    def params(**kw: Any) -> DisplayParams:
        base: dict[str, Any] = dict(
            photometric="MONOCHROME2",
            samples=1,
            bits_stored=16,
            signed=True,
            is_float=False,
            slope=1.0,
            intercept=-1024.0,
            rescale_type="HU",
            modality_lut=None,
            voi_function="LINEAR",
            windows=(),
            voi_lut=None,
            invert=False,
        )
        base.update(kw)
        return DisplayParams(**base)

    specs = [
        (params(), 40.0, 400.0, False, False),
        (params(), -600.0, 1500.0, True, False),
        (params(voi_function="LINEAR_EXACT"), 40.3, 399.7, False, False),
        (params(voi_function="SIGMOID"), 40.0, 400.0, False, False),
        (
            params(signed=False, intercept=3.25, slope=1.7, photometric="MONOCHROME1", invert=True),
            1000.0,
            0.5,
            False,
            False,
        ),
        (params(bits_stored=8, signed=False, intercept=0.0), 128.0, 1.0, False, False),
        (params(bits_stored=8, signed=True, intercept=0.0), 0.0, 100.0, True, False),
        (
            params(
                signed=False,
                intercept=0.0,
                modality_lut=(100, tuple(float(i * 3) for i in range(500))),
            ),
            700.0,
            600.0,
            False,
            False,
        ),
        (
            params(signed=False, intercept=0.0, voi_lut=(50, 12, tuple(i * 8 for i in range(512)))),
            0.0,
            0.0,
            False,
            True,
        ),
    ]
    dtypes = {(16, True): "int16", (16, False): "uint16", (8, False): "uint8", (8, True): "int8"}
    cases = []
    for p, center, width, invert, use_voi_lut in specs:
        table, offset = voi.lut(p, center, width, invert=invert, use_voi_lut=use_voi_lut)
        header = {
            "dtype": dtypes[(p.bits_stored, p.signed)],
            "samples": 1,
            "slope": p.slope,
            "intercept": p.intercept,
            "photometric": p.photometric,
            "invert": p.invert,
            "modality_lut": {"first": p.modality_lut[0], "table": list(p.modality_lut[1])}
            if p.modality_lut
            else None,
            "voi_lut": {"first": p.voi_lut[0], "bits": p.voi_lut[1], "table": list(p.voi_lut[2])}
            if p.voi_lut
            else None,
        }
        display = {
            "center": center,
            "width": width,
            "fn": p.voi_function,
            "invert": invert,
            "useVoiLut": use_voi_lut,
        }
        cases.append({"h": header, "p": display, "ref": table.tolist(), "off": offset})
    return cases


def test_viewer_js_pieces(page: Any) -> None:
    """The module's pure pieces in Chromium, without a kernel: LUT, buffers, frame cache."""
    src = (
        Path(__file__).resolve().parents[2] / "dicomflow_lab/widgets/static/viewer.js"
    ).read_text()
    page.set_content("<!doctype html><title>viewer.js</title>")
    out = page.evaluate(_UNITS_JS, [src, _lut_cases()])
    assert out["lut"] == [0] * len(out["lut"]), "the LUT differs from core.voi.lut"
    assert out["misaligned"] == [1, -1, -32768]
    assert out["aligned"] == [2, 3]
    assert out["deduplicated"] and out["values"] == [1, 2, 3, 4] and out["peek"]
    assert out["error"] == "PixelDataError: x.dcm: truncated"
    assert out["evicted"] and out["retried"]
    assert out["cached"] == ["1.2:2", "1.2:3"] and out["cacheBytes"] == 8
    assert "no reply to the frame request" in out["timeout"]
    assert out["unknownReplyIgnored"]
    assert out["auto"] == {"center": 100.5, "width": 199}  # numpy: percentiles 1 and 199

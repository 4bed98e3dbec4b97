"""Benchmark: the inline viewer, kernel side and browser side, in one run.

Kernel side — peer: the naive notebook path (pydicom ``pixel_array`` +
``apply_modality_lut`` + ``apply_voi_lut`` + a matplotlib figure saved to PNG) against
dicomflow_lab serving one 512×512 CT frame ready to send (decode + header + buffer).
Also: kernel memory while paging through a long series, against the frame cache limit.

Browser side (real JupyterLab + headless Chromium through Playwright): window/level
repaint time (median of 60 repaints) at 512², 2048² and 4096²; time from running the cell
to the first painted frame of a 100-slice series; scroll rate through a cached series.

Usage::

    .venv/bin/python benchmarks/viewer.py [--skip-browser] [--pages 1000]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from dicomflow_lab.core.pixels import FrameCache, read_frame
from dicomflow_lab.core.sample import write_sample_study

REPO = Path(__file__).resolve().parents[1]


def naive_png(path: Path) -> bytes:
    """What users write today to look at one slice in a notebook."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ds = pydicom.dcmread(path)
    arr = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    fig = plt.figure(figsize=(5.12, 5.12), dpi=100)
    plt.imshow(arr, cmap="gray")
    plt.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def project_frame(path: Path, cache: FrameCache) -> int:
    """Decode a frame and build exactly what the viewer sends (header + buffer)."""
    from dicomflow_lab.widgets._messages import Request
    from dicomflow_lab.widgets.viewer import _frame_header

    frame = read_frame(str(path), 0, cache=cache)
    header = _frame_header(Request("frame", 1, "1.2", 0), frame)
    buf = memoryview(frame.values).cast("B")
    return len(buf) + len(header)


def kernel_side(work: Path, repeat: int) -> None:
    study = write_sample_study(work / "ct512", ct_slices=100, ct_size=512, mr_slices=1, mr_size=32)
    files = list(study.series[0].files)
    naive_png(files[0])  # warm imports
    project_frame(files[0], FrameCache(1 << 20))
    naive_t, ours_t = [], []
    for i in range(repeat):
        path = files[i % len(files)]
        t0 = time.perf_counter()
        naive_png(path)
        naive_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        project_frame(path, FrameCache(1 << 20))  # a cold cache: a real decode each time
        ours_t.append(time.perf_counter() - t0)
    naive, ours = statistics.median(naive_t), statistics.median(ours_t)
    print("kernel side, one 512x512 CT frame (median of", repeat, "frames)")
    print(f"  naive pixel_array + VOI + matplotlib PNG : {naive * 1e3:8.2f} ms")
    print(f"  dicomflow_lab frame ready to send        : {ours * 1e3:8.2f} ms")
    print(f"  ratio naive / dicomflow_lab              : {naive / ours:8.1f}x")


def paging_memory(work: Path, pages: int, limit_mb: int) -> None:
    ct = min(pages, 9999)
    study = write_sample_study(work / "long", ct_slices=ct, ct_size=256, mr_slices=1, mr_size=32)
    files = list(study.series[0].files)
    cache = FrameCache(limit_mb << 20)

    def rss_mb() -> float:
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith("VmRSS")) / 1024

    before = rss_mb()
    peak_cache = peak_rss = 0.0
    for path in files:
        read_frame(str(path), 0, cache=cache)
        peak_cache = max(peak_cache, cache.bytes_used / 2**20)
        peak_rss = max(peak_rss, rss_mb())
    print(f"paging through {len(files)} frames of 256x256 with a {limit_mb} MiB cache:")
    print(
        f"  cache peak {peak_cache:.1f} MiB (limit {limit_mb}), kernel RSS growth "
        f"{peak_rss - before:.1f} MiB"
    )


REPAINT_JS = """() => { const v = document.querySelector('.dfl-viewer').dflViewer;
    const t = []; for (let i = 0; i < 60; i++) t.push(v.setWindow(40 + 7 * i, 400 + 11 * i));
    t.sort((a, b) => a - b);
    return [t[30], document.querySelector('.dfl-viewer').dataset.dflRenderer]; }"""


def browser_side(work: Path) -> None:
    sys.path.insert(0, str(REPO))
    from tests._peers import require_program
    from tests.ui._harness import chromium_context, run_notebook, running_jupyterlab, wait_for

    chromium = require_program("chromium")
    series100 = write_sample_study(
        work / "s100", ct_slices=100, ct_size=512, mr_slices=1, mr_size=32
    ).path
    big = {
        size: write_sample_study(
            work / f"big{size}", ct_slices=2, ct_size=size, mr_slices=1, mr_size=32
        ).path
        for size in (2048, 4096)
    }
    print("browser side (headless Chromium, software rendering, 2 cores)")
    (work / "lab").mkdir()
    (work / "profile").mkdir()
    with (
        running_jupyterlab(work / "lab") as lab,
        chromium_context(lab, work / "profile", chromium) as ctx,
    ):
        page = ctx.new_page()
        cells = [
            "import time\nimport dicomflow_lab as dfl\n"
            f"ws = dfl.Workspace({str(work / 'ws')!r})\n"
            f"ws.index({str(series100)!r}, progress=False)",
            # the cell whose run starts the clock
            f"t_cell = time.time()\nv = dfl.open({str(series100)!r}, workspace=ws, progress=False)"
            "\nv",
        ]
        run_notebook(page, lab, cells, "bench_first_paint")
        wait_for(page, '.dfl-viewer[data-dfl-ready="1"]', timeout=60)
        first_paint_at = page.evaluate(
            "() => document.querySelector('.dfl-viewer').dflViewer.firstPaintAt"
        )
        t_cell = _kernel_value(page, lab, "print(repr(t_cell))")
        print(
            f"  first paint of a 100-slice 512x512 series: {first_paint_at - t_cell * 1000:.0f} ms "
            "after the cell started (target <= 500 ms)"
        )
        ms, renderer = page.evaluate(REPAINT_JS)
        print(f"  W/L repaint 512x512:   median {ms:6.2f} ms ({renderer}; target <= 2 ms)")
        fps = page.evaluate(
            "async () => await document.querySelector('.dfl-viewer').dflViewer.scrollRate(100)"
        )
        print(f"  scroll through the cached series: {fps:.0f} frames/s")
        page.close()
        for size, folder in big.items():
            tab = ctx.new_page()
            run_notebook(
                tab,
                lab,
                [f"import dicomflow_lab as dfl\nv = dfl.open({str(folder)!r}, progress=False)\nv"],
                f"bench_{size}",
            )
            wait_for(tab, '.dfl-viewer[data-dfl-ready="1"]', timeout=180)
            ms, renderer = tab.evaluate(REPAINT_JS)
            target = {2048: 16, 4096: 40}[size]
            print(
                f"  W/L repaint {size}x{size}: median {ms:6.2f} ms ({renderer}; "
                f"target <= {target} ms)"
            )
            tab.close()


KERNEL_PRINT_JS = """async (code) => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    let out = '';
    const future = kernel.requestExecute({code});
    future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
    await future.done;
    return out; }"""


def _kernel_value(page: object, lab: object, code: str) -> float:
    """Run `code` in the open notebook's kernel and read the number it prints."""
    return float(page.evaluate(KERNEL_PRINT_JS, code).strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--cache-mb", type=int, default=64)
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dfl-bench-viewer-"))
    try:
        print(
            f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
            f"pydicom {pydicom.__version__}, numpy {np.__version__}"
        )
        kernel_side(work, args.repeat)
        paging_memory(work, args.pages, args.cache_mb)
        if not args.skip_browser:
            browser_side(work)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"(benchmark process peak RSS {peak:.0f} MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

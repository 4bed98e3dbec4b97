"""Benchmark: indexing a folder of CT files, dicomflow_lab vs the loop users write today.

Peer: the naive pandas loop (``pydicom.dcmread(stop_before_pixels=True)`` per file,
a dict of ~20 attributes, ``pandas.DataFrame``), on the same generated corpus, in one run.

Prints files/s for both and the ratio (project / peer, higher is better), the re-index
speed-up on the unchanged corpus, and the peak memory of indexing 10,000 files.

Usage::

    .venv/bin/python benchmarks/index.py [--files 1500] [--repeat 3] [--memory-files 10000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pydicom

from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.workspace import Workspace

NAIVE_KEYWORDS = [
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "AccessionNumber",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "SOPInstanceUID",
    "SOPClassUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "PixelSpacing",
    "SliceThickness",
    "ImagePositionPatient",
    "WindowCenter",
    "WindowWidth",
    "RescaleIntercept",
    "RescaleSlope",
]


def naive_index(folder: Path) -> pd.DataFrame:
    """The loop users write today."""
    rows = []
    for path in sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        row = {kw: ds.get(kw) for kw in NAIVE_KEYWORDS}
        row["file_path"] = str(path)
        rows.append(row)
    return pd.DataFrame(rows)


def project_index(folder: Path, ws_dir: Path) -> tuple[float, float, int]:
    """First index and re-index of `folder` into a new workspace; returns timings."""
    shutil.rmtree(ws_dir, ignore_errors=True)
    with Workspace(ws_dir) as ws:
        t0 = time.perf_counter()
        report = ws.index(folder, progress=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ws.index(folder, progress=False)
        second = time.perf_counter() - t0
        assert again.indexed == 0 and again.unchanged == report.files_seen, again
        return first, second, report.indexed


MEMORY_PROBE = textwrap.dedent("""
    import resource, sys, threading
    from dicomflow_lab.core import _worker
    from dicomflow_lab.workspace import Workspace

    # Worker RSS is sampled from /proc: RUSAGE_CHILDREN would count the parent's pages
    # that a forked child shares for an instant before it execs.
    folder, ws_dir = sys.argv[1:3]
    peak, done = {}, threading.Event()

    def watch():
        while not done.wait(0.02):
            for w in list(_worker._SHARED._workers if _worker._SHARED else []):
                try:
                    with open(f"/proc/{w.proc.pid}/status") as fh:
                        kb = next(int(x.split()[1]) for x in fh if x.startswith("VmRSS"))
                    peak[w.proc.pid] = max(peak.get(w.proc.pid, 0), kb)
                except (OSError, StopIteration):
                    pass

    threading.Thread(target=watch, daemon=True).start()
    with Workspace(ws_dir) as ws:
        report = ws.index(folder, progress=False)
    done.set()
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = sorted(round(kb / 1024, 1) for kb in peak.values())
    print(report.indexed, round(me, 1), max(workers or [0]), round(me + sum(workers), 1))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1500, help="CT slices in the corpus")
    parser.add_argument("--size", type=int, default=512, help="CT matrix size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-files", type=int, default=10000)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="dfl-bench-index-"))
    corpus = work / "corpus"
    t0 = time.perf_counter()
    study = write_sample_study(
        corpus, seed=0, ct_slices=args.files, ct_size=args.size, mr_slices=24, mr_size=256
    )
    n_files = sum(len(s.files) for s in study.series)
    print(
        f"corpus: {n_files} files ({args.files} CT {args.size}x{args.size} + 24 MR) "
        f"written in {time.perf_counter() - t0:.1f} s under {corpus}"
    )
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"pydicom {pydicom.__version__}"
    )

    naive_t, first_t, again_t = [], [], []
    for i in range(args.repeat):
        t0 = time.perf_counter()
        frame = naive_index(corpus)
        naive_t.append(time.perf_counter() - t0)
        assert len(frame) == n_files
        first, again, indexed = project_index(corpus, work / f"ws{i}")
        assert indexed == n_files, indexed
        first_t.append(first)
        again_t.append(again)

    naive = statistics.median(naive_t)
    first = statistics.median(first_t)
    again = statistics.median(again_t)
    print()
    print(f"{'':34}{'median s':>10}{'files/s':>10}")
    print(f"{'naive loop (pydicom + DataFrame)':34}{naive:10.3f}{n_files / naive:10.0f}")
    print(f"{'dicomflow_lab index (+ DuckDB)':34}{first:10.3f}{n_files / first:10.0f}")
    print(f"{'dicomflow_lab re-index unchanged':34}{again:10.3f}{n_files / again:10.0f}")
    print()
    print(f"ratio index / naive (files/s):   {naive / first:.2f}x   (target >= 2x)")
    print(f"re-index speed-up over index:    {first / again:.1f}x   (target >= 20x)")

    if args.memory_files:
        mem_corpus = work / "memory-corpus"
        ct = min(args.memory_files, 9999)  # the generator's file names hold 4 digits
        write_sample_study(
            mem_corpus,
            seed=1,
            ct_slices=ct,
            ct_size=64,
            mr_slices=max(1, args.memory_files - ct),
            mr_size=32,
        )
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(mem_corpus), str(work / "ws-mem")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        print(
            f"peak RSS indexing {out[0]} files: main process {out[1]} MB, largest worker "
            f"{out[2]} MB, all processes {out[3]} MB   (target < 500 MB)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(bench process peak RSS {peak:.0f} MB)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: a batch edit of 3 attributes, dicomflow_lab vs dcmtk's ``dcmodify``.

Project: :class:`dicomflow_lab.editor.BatchEdit` sets PatientName, StudyDescription and
InstitutionName on every file, validating every value against its VR, VM and character
set, and writes the results to a new folder (atomic writes with fsync, transfer syntax
and Pixel Data kept). Measured without a workspace, and with an ephemeral one (edit
journal + index of the written files) in which the source files are indexed (not timed),
as they are when a selection comes from the workspace (``ws.edit(series_uid)``): the new
files' rows are then derived from their sources' rows. The same with a workspace that
has not indexed the sources (every written file is read again by the indexer) is
printed apart.

Peer: ``dcmodify -nb -m "(0010,0010)=…" -m "(0008,1030)=…" -m "(0008,0080)=…"`` on a
copy of the same files (in place, no backup), ``--chunk`` files per invocation. The time
to copy the folder for dcmodify is reported apart and not counted.

The runs alternate (project, project with workspace, dcmodify) and the medians are
compared. Every timed section starts with the page cache written back (``os.sync()``,
not timed), so that no run pays for writing back another's output, and dcmodify edits
copies that are on disk, as files to edit usually are. That matters to dcmodify:
it rewrites each file in place (``open(O_TRUNC)``, not atomic), and on ext4 truncating a
file whose blocks are on disk makes its new data be written back at close
(``auto_da_alloc``), while a fresh copy still in the page cache costs nothing of the
kind. dcmodify on fresh, not yet written back copies is measured too and printed
apart: its best case. The project's worker processes start on its first run; that cold
run is printed apart.

Prints files/s for both and the ratio (project / peer, higher is better).

Usage::

    .venv/bin/python benchmarks/tag_edit.py [--files 1500] [--size 128] [--repeat 3] [--chunk 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom

from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.editor import BatchEdit
from dicomflow_lab.workspace import Workspace

EDITS = {
    "PatientName": ("(0010,0010)", "Bench^Mark"),
    "StudyDescription": ("(0008,1030)", "Edited by benchmark"),
    "InstitutionName": ("(0008,0080)", "Benchmark Hospital"),
}


def _ours(files: list[Path], out: Path, workspace: Workspace | None) -> float:
    started = time.perf_counter()
    batch = BatchEdit(files, workspace=workspace)
    for keyword, (_tag, value) in EDITS.items():
        batch.set(keyword, value)
    report = batch.save(out=out, progress=False)
    elapsed = time.perf_counter() - started
    assert len(report.files) == len(files)
    return elapsed


def _dcmodify(dcmodify: str, files: list[Path], chunk: int) -> float:
    args = []
    for _keyword, (tag, value) in EDITS.items():
        args += ["-m", f"{tag}={value}"]
    started = time.perf_counter()
    for i in range(0, len(files), chunk):
        subprocess.run(
            [dcmodify, "-nb", "-q", *args, *[str(f) for f in files[i : i + chunk]]],
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - started


def _check(files: list[Path]) -> None:
    for path in (files[0], files[-1]):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword, (_tag, value) in EDITS.items():
            assert str(ds.get(keyword)) == value, (path, keyword)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=1500)
    parser.add_argument("--size", type=int, default=128, help="CT rows and columns")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=100, help="files per dcmodify call")
    opts = parser.parse_args(argv)
    dcmodify = shutil.which("dcmodify")
    if dcmodify is None:
        print("dcmodify not found (install dcmtk: bash .ci/setup --peers)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="dfl-bench-edit-") as tmp:
        root = Path(tmp)
        write_sample_study(
            root / "src", ct_slices=opts.files, ct_size=opts.size, mr_slices=1, mr_size=32
        )
        files = sorted((root / "src" / "1_CT").glob("*.dcm"))
        size = sum(f.stat().st_size for f in files)
        print(f"corpus: {len(files)} CT files of {opts.size}x{opts.size}, {size / 1e6:.1f} MB")
        ours, ours_ws, ours_cold, peer, hot, copies = [], [], [], [], [], []
        for rep in range(opts.repeat):
            os.sync()
            ours.append(_ours(files, root / f"ours{rep}", None))
            _check(sorted((root / f"ours{rep}").glob("*.dcm")))
            with Workspace(ephemeral=True) as ws:
                ws.index(root / "src" / "1_CT", progress=False)
                os.sync()
                ours_ws.append(_ours(files, root / f"ours_ws{rep}", ws))
                report = ws.index(root / f"ours_ws{rep}", progress=False)
                assert report.indexed == 0 and report.unchanged == len(files), report
            with Workspace(ephemeral=True) as ws:
                os.sync()
                ours_cold.append(_ours(files, root / f"ours_cold{rep}", ws))
            for label, times in (("peer", peer), ("hot", hot)):
                started = time.perf_counter()
                shutil.copytree(root / "src" / "1_CT", root / f"{label}{rep}")
                copies.append(time.perf_counter() - started)
                if label == "peer":
                    os.sync()  # the copies are on disk, as files to edit usually are
                peer_files = sorted((root / f"{label}{rep}").glob("*.dcm"))
                times.append(_dcmodify(dcmodify, peer_files, opts.chunk))
                _check(peer_files)
        n = len(files)
        t_ours, t_ws, t_peer, t_hot = (statistics.median(x) for x in (ours, ours_ws, peer, hot))
        print(f"repetitions: {opts.repeat} (medians); cores: {os.cpu_count()}")
        rows = [
            ("dicomflow_lab BatchEdit -> new folder", t_ours),
            ("dicomflow_lab + workspace (journal, index)", t_ws),
            (f"dcmodify -nb -m x3 in place ({opts.chunk}/call)", t_peer),
            ("dcmodify, on copies not yet written back", t_hot),
        ]
        for label, seconds in rows:
            print(f"{label:<46} {seconds:7.2f} s {n / seconds:8.0f} files/s")
        runs = zip(ours, ours_ws, peer, hot, strict=True)
        each = ", ".join("/".join(f"{n / t:.0f}" for t in run) for run in runs)
        print(f"  each repetition (files/s, in the order above): {each}")
        t_cold = statistics.median(ours_cold)
        print(
            f"  with a workspace that has not indexed the sources: {t_cold:.2f} s, "
            f"{n / t_cold:.0f} files/s ({t_peer / t_cold:.2f}x dcmodify)"
        )
        print(f"  first (cold) project run, worker processes starting: {ours[0]:.2f} s")
        print(
            f"  (copying the folder for dcmodify: {statistics.median(copies):.2f} s, not counted)"
        )
        print(
            f"ratio (project / dcmodify, files/s): {t_peer / t_ours:.2f}x without workspace, "
            f"{t_peer / t_ws:.2f}x with workspace"
        )
        print(
            f"ratio against dcmodify on copies not yet written back: {t_hot / t_ours:.2f}x "
            f"without workspace, {t_hot / t_ws:.2f}x with workspace"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

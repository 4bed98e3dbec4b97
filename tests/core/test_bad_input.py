"""Bad input: every malformed file ends as a recorded error, quickly, in bounded memory.

The acceptance (reliability-anchors B.2 / B.8): every file of pydicom's ``test_files`` is
indexed or recorded with a reason; non-DICOM, empty, over-long element, truncated,
unreadable, symbolic-link-loop, deflate-bomb, over-deep and overflowed files each end in
``index_errors`` within 5 s and 2 x file size + 64 MiB of memory; no partial rows are
written; one bad file never stops the run.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

import dicomflow_lab.workspace as workspace_module
from dicomflow_lab.core import index as index_module
from dicomflow_lab.core.dataset import read_header
from dicomflow_lab.core.index import FileEntry, parse_files
from dicomflow_lab.errors import DicomReadError, StoreError
from dicomflow_lab.workspace import Workspace

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
MiB = 1 << 20
BOMB_INFLATED = 256 * MiB
LIMIT_SECONDS = 5.0


# -- building files --------------------------------------------------------------------
def _dataset(ts: str = ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Bad^Input"
    ds.PatientID = "BAD001"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ts
    ds.file_meta = meta
    return ds


def _image(ds: Dataset, rows: int, cols: int, frames: int = 1, bits: int = 16) -> Dataset:
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored = rows, cols, bits, bits
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = bits - 1, 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    if frames > 1:
        ds.NumberOfFrames = frames
    return ds


def _encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _explicit(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """One Explicit VR Little Endian element, with an optional lying length."""
    n = len(value) if length is None else length
    group, elem = tag >> 16, tag & 0xFFFF
    if vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT"):
        return struct.pack("<HH2sHL", group, elem, vr, 0, n) + value
    return struct.pack("<HH2sH", group, elem, vr, n) + value


def _deep(levels: int, *, undefined: bool) -> bytes:
    """A dataset nesting ContentSequence `levels` deep (written by hand: pydicom's
    writer takes minutes on such depths)."""
    item_end = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
    seq_end = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    content = _explicit(0x00080100, b"SH", b"XX")  # CodeValue
    for _ in range(levels):
        if undefined:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + content + item_end
            content = _explicit(0x0040A730, b"SQ", item + seq_end, 0xFFFFFFFF)
        else:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, len(content)) + content
            content = _explicit(0x0040A730, b"SQ", item)
    return _encode(_dataset()) + content


def _write_deflate_bomb(path: Path) -> None:
    """~250 KB Deflated Explicit VR LE file whose dataset inflates to 256 MiB.

    Compressed in 1 MiB chunks, so building it never holds 256 MiB.
    """
    ds = _dataset(DeflatedExplicitVRLittleEndian)
    whole = _encode(ds)
    assert whole[132:136] == b"\x02\x00\x00\x00"  # (0002,0000) group length first
    meta_end = 144 + struct.unpack("<L", whole[140:144])[0]
    body = _encode(_dataset())  # same elements in Explicit VR LE, not deflated
    body = body[144 + struct.unpack("<L", body[140:144])[0] :]
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(MiB)
    with path.open("wb") as fh:
        fh.write(whole[:meta_end])
        # EncapsulatedDocument (0042,0011) OB of 256 MiB zeros
        fh.write(squeeze.compress(body + _explicit(0x00420011, b"OB", b"", BOMB_INFLATED)))
        for _ in range(BOMB_INFLATED // MiB):
            fh.write(squeeze.compress(zeros))
        fh.write(squeeze.flush())


def _good_files(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"good_{i}.dcm"
        path.write_bytes(
            _encode(_image(_dataset(), 8, 8)) + _explicit(0x7FE00010, b"OW", bytes(128))
        )
        paths.append(path)
    return paths


# expected kind and a regex the reason must match, per crafted file
CASES: dict[str, tuple[str, str]] = {
    "not_dicom.txt": ("not_dicom", r"not a DICOM file"),
    "empty.dcm": ("empty", r"empty file \(0 bytes\)"),
    "huge_lo_implicit.dcm": (
        "truncated",
        r"element \(0040,0254\) declares 4294967280 bytes but only 32 remain",
    ),
    "lo_longer_than_file.dcm": (
        "truncated",
        r"element \(0040,0254\) declares 65535 bytes but only 32 remain",
    ),
    "pixel_truncated.dcm": ("truncated", r"Pixel Data declares 8192 bytes but only \d+ remain"),
    "pixel_overflow.dcm": ("invalid", r"Pixel Data needs 4294971392 bytes .* overflowed 32 bits"),
    "deflate_bomb.dcm": ("deflate_bomb", r"inflates beyond \d+ MiB .* deflate bomb"),
    "deep_undefined.dcm": ("too_deep", r"sequences nested too deeply"),
    "deep_defined.dcm": ("too_deep", r"sequences nested deeper than 64"),
    "pipe.dcm": ("unreadable", r"not a regular file"),
    "sub/loop": ("symlink_loop", r"symbolic link loop: points back to the enclosing folder"),
}


def _build_crafted(folder: Path) -> None:
    (folder / "not_dicom.txt").write_bytes(b"Patient list, exported 2024-01-01\nDoe^John\n" * 50)
    (folder / "empty.dcm").write_bytes(b"")
    # (0040,0254) LO with a length of 0xFFFFFFF0 (Implicit VR: 32-bit length field)
    base = _encode(_dataset(ImplicitVRLittleEndian))
    huge = base + struct.pack("<HHL", 0x0040, 0x0254, 0xFFFFFFF0) + b"A" * 32
    (folder / "huge_lo_implicit.dcm").write_bytes(huge)
    # the same LO in Explicit VR: 65535 bytes declared, the whole file is smaller
    longer = _encode(_dataset()) + _explicit(0x00400254, b"LO", b"A" * 32, 0xFFFF)
    assert len(longer) < 0xFFFF
    (folder / "lo_longer_than_file.dcm").write_bytes(longer)
    image = _encode(_image(_dataset(), 64, 64)) + _explicit(0x7FE00010, b"OW", bytes(8192))
    (folder / "pixel_truncated.dcm").write_bytes(image[:-3000])
    # 4096 x 61681 x 17 frames x 8 bits = 2**32 + 4096 bytes: the 32-bit length says 4096
    # (pydicom#1274); the file holds more pixel bytes after the declared end
    overflow = _encode(_image(_dataset(), 4096, 61681, frames=17, bits=8))
    overflow += _explicit(0x7FE00010, b"OB", bytes(4096)) + bytes(8192)
    (folder / "pixel_overflow.dcm").write_bytes(overflow)
    _write_deflate_bomb(folder / "deflate_bomb.dcm")
    (folder / "deep_undefined.dcm").write_bytes(_deep(300, undefined=True))
    (folder / "deep_defined.dcm").write_bytes(_deep(300, undefined=False))
    os.mkfifo(folder / "pipe.dcm")
    (folder / "sub").mkdir()
    os.symlink(folder, folder / "sub" / "loop")
    shutil.copy(TEST_FILES / "CT_small.dcm", folder / "sub" / "ct.dcm")
    _good_files(folder, 2)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every crafted bad file, plus good ones, in one folder indexed in one run."""
    folder = tmp_path_factory.mktemp("crafted")
    _build_crafted(folder)
    ws = Workspace(ephemeral=True)
    started = time.perf_counter()
    report = ws.index(folder, progress=False)
    seconds = time.perf_counter() - started
    result = {
        "folder": folder,
        "report": report,
        "seconds": seconds,
        "errors": ws.index_errors().set_index("file_path"),
        "instances": ws.instances(),
    }
    yield result
    ws.close()


def _errors_by_name(errors: pd.DataFrame, folder: Path) -> dict[str, pd.Series]:
    return {os.path.relpath(path, folder): row for path, row in errors.iterrows()}


# -- 1. pydicom's bundled test files -----------------------------------------------------
@pytest.fixture(scope="module")
def pydicom_corpus() -> Iterator[dict[str, Any]]:
    files = sorted(str(p) for p in TEST_FILES.rglob("*") if p.is_file() and not p.is_symlink())
    ws = Workspace(ephemeral=True)
    report = ws.index(TEST_FILES, progress=False)
    yield {
        "files": files,
        "report": report,
        "errors": ws.index_errors().set_index("file_path"),
        "instances": ws.instances(),
    }
    ws.close()


def test_every_pydicom_test_file_is_indexed_or_recorded(pydicom_corpus: dict[str, Any]) -> None:
    files, report = pydicom_corpus["files"], pydicom_corpus["report"]
    errors, instances = pydicom_corpus["errors"], pydicom_corpus["instances"]
    indexed = set(instances["file_path"])
    failed = set(errors.index)
    dicomdirs = set(report.dicomdirs)
    assert len(indexed) == len(instances), "one file, one row"
    assert not indexed & failed and not indexed & dicomdirs and not failed & dicomdirs
    assert indexed | failed | dicomdirs == set(files)
    assert report.files_seen == len(files)
    assert report.indexed == len(indexed) and report.errors == len(failed)
    assert (errors["kind"].str.len() > 0).all()
    assert (errors["reason"].str.len() > 10).all()
    assert len(indexed) > 100  # the bulk of the corpus is readable


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("MR_truncated.dcm", "truncated", r"Pixel Data declares 8192 bytes but only 8130 remain"),
        ("rtplan_truncated.dcm", "truncated", r"\(300A,00B0\) declares 976 bytes but only"),
        ("zipMR.gz", "not_dicom", r"gzip-compressed file, not DICOM \(decompress it first\)"),
        # meta without (0002,0010): its dataset holds only private sequences, no instance
        ("meta_missing_tsyntax.dcm", "invalid", r"no SOP Instance UID"),
        ("README.txt", "not_dicom", r"no 'DICM' marker"),
    ],
)
def test_pydicom_bad_files_recorded(
    pydicom_corpus: dict[str, Any], name: str, kind: str, reason: str
) -> None:
    row = pydicom_corpus["errors"].loc[str(TEST_FILES / name)]
    assert row["kind"] == kind
    assert pd.Series([row["reason"]]).str.contains(reason).all(), row["reason"]
    assert row["file_size"] == (TEST_FILES / name).stat().st_size


def test_pydicom_no_meta(pydicom_corpus: dict[str, Any]) -> None:
    path = TEST_FILES / "no_meta.dcm"
    head = path.read_bytes()[:8]
    if head[:4] == b"\x08\x00\x05\x00":  # a clean preamble-less dataset: readable
        assert str(path) in set(pydicom_corpus["instances"]["file_path"])
        return
    # pydicom 3.0's copy starts with a stray 0x20 byte before (0008,0005), so the first
    # "element" is (0820,0500) with a 173 MB length; dcmdump refuses it too.
    assert head[:5] == b" \x08\x00\x05\x00"
    row = pydicom_corpus["errors"].loc[str(path)]
    assert row["kind"] == "not_dicom"
    assert "no DICOM element at the start" in row["reason"]


def test_pydicom_deflated_and_bad_vr_files_are_indexed(pydicom_corpus: dict[str, Any]) -> None:
    instances = pydicom_corpus["instances"].set_index("file_path")
    dfl = instances.loc[str(TEST_FILES / "image_dfl.dcm")]
    assert dfl["TransferSyntaxUID"] == DeflatedExplicitVRLittleEndian
    assert dfl["SOPInstanceUID"] == "1.3.6.1.4.1.5962.1.1.0.0.0.977067309.6001.0"
    ref = pydicom.dcmread(TEST_FILES / "image_dfl.dcm", stop_before_pixels=True)
    assert (dfl["Rows"], dfl["Columns"]) == (ref.Rows, ref.Columns)
    # badVR.dcm: explicit VRs that disagree with the values (an IS of '1A'); the header
    # is still readable, so it is indexed, its UIDs intact
    bad = instances.loc[str(TEST_FILES / "badVR.dcm")]
    assert bad["SOPInstanceUID"] == "1.9.999.999.99.9.9999.9999.20030818153516"
    assert bad["Modality"] == "RTDOSE"
    for name in ("no_meta_group_length.dcm", "UN_sequence.dcm", "priv_SQ.dcm"):
        # small test datasets without SOP Instance UID: refused as non-instances
        assert pydicom_corpus["errors"].loc[str(TEST_FILES / name), "kind"] == "invalid"


def test_pydicom_dicomdirs_reported(pydicom_corpus: dict[str, Any]) -> None:
    dicomdirs = {os.path.relpath(p, TEST_FILES) for p in pydicom_corpus["report"].dicomdirs}
    assert "dicomdirtests/DICOMDIR" in dicomdirs
    assert "dicomdirtests/TINY_ALPHA/DICOMDIR" in dicomdirs


# -- 2. crafted malformed files ----------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CASES))
def test_crafted_file_recorded_with_kind_and_reason(crafted: dict[str, Any], name: str) -> None:
    kind, reason = CASES[name]
    errors = _errors_by_name(crafted["errors"], crafted["folder"])
    assert name in errors, f"{name} not in index_errors: {sorted(errors)}"
    row = errors[name]
    assert row["kind"] == kind, row["reason"]
    assert pd.Series([row["reason"]]).str.contains(reason).all(), row["reason"]
    assert str(crafted["folder"] / name) not in set(crafted["instances"]["file_path"])


def test_crafted_bad_files_never_stop_the_run(crafted: dict[str, Any]) -> None:
    folder, report = crafted["folder"], crafted["report"]
    indexed = {os.path.relpath(p, folder) for p in crafted["instances"]["file_path"]}
    assert indexed == {"good_0.dcm", "good_1.dcm", "sub/ct.dcm"}
    assert set(_errors_by_name(crafted["errors"], folder)) == set(CASES)
    assert report.indexed == 3 and report.errors == len(CASES)
    assert report.error_kinds["truncated"] == 3
    assert crafted["seconds"] < LIMIT_SECONDS, f"indexing took {crafted['seconds']:.2f} s"


def test_deflate_bomb_end_to_end_under_limit(crafted: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "bomb"
    folder.mkdir()
    shutil.copy(crafted["folder"] / "deflate_bomb.dcm", folder)
    _good_files(folder, 1)
    with Workspace(tmp_path / "ws") as ws:
        started = time.perf_counter()
        report = ws.index(folder, progress=False)
        seconds = time.perf_counter() - started
        assert seconds < LIMIT_SECONDS, f"ws.index took {seconds:.2f} s"
        assert report.indexed == 1 and report.error_kinds == {"deflate_bomb": 1}
        assert ws.index_errors()["kind"].tolist() == ["deflate_bomb"]


# -- 3. time and memory of the reader alone, in a fresh process --------------------------
_MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time

    from dicomflow_lab.core.dataset import read_header
    from dicomflow_lab.errors import DicomReadError

    def status(key):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        raise KeyError(key)

    try:  # reset the high-water mark so that imports do not count (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    baseline = status("VmRSS")
    started = time.perf_counter()
    kind = None
    try:
        read_header(sys.argv[1])
    except DicomReadError as exc:
        kind = exc.kind
    seconds = time.perf_counter() - started
    peak = status("VmHWM")
    print(json.dumps({
        "kind": kind, "seconds": seconds, "baseline": baseline, "peak": peak,
        "hwm_reset": reset, "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("deflate_bomb.dcm", "deflate_bomb"),
        ("huge_lo_implicit.dcm", "truncated"),
        ("not_dicom.txt", "not_dicom"),
    ],
)
def test_reader_time_and_memory(crafted: dict[str, Any], name: str, kind: str) -> None:
    path = crafted["folder"] / name
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    m = json.loads(proc.stdout)
    size = path.stat().st_size
    grew = m["peak"] - m["baseline"]
    print(
        f"\n{name}: {size} bytes, {m['seconds'] * 1000:.1f} ms, "
        f"RSS {m['baseline'] / MiB:.1f} MiB -> peak {m['peak'] / MiB:.1f} MiB "
        f"(+{grew / MiB:.2f} MiB, high-water mark reset: {m['hwm_reset']})"
    )
    assert m["kind"] == kind
    assert m["seconds"] < LIMIT_SECONDS
    assert grew < 2 * size + 64 * MiB


# -- 4. unreadable file (permissions) ----------------------------------------------------
_INDEX = textwrap.dedent(
    """
    import sys
    from dicomflow_lab.workspace import Workspace

    with Workspace(sys.argv[1]) as ws:
        ws.index(sys.argv[2], progress=False, workers=1)
    """
)


def _without_dac_capabilities(command: list[str]) -> list[str] | None:
    """`command` run without root's power to ignore file permissions (None: cannot)."""
    if os.geteuid() != 0:
        return command
    caps = "-dac_override,-dac_read_search"
    if shutil.which("setpriv"):
        return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *command]
    if shutil.which("capsh"):
        drop = "--drop=cap_dac_override,cap_dac_read_search"
        return ["capsh", drop, "--", "-c", shlex.join(command)]
    return None


def test_unreadable_file_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    command = _without_dac_capabilities(
        [sys.executable, "-c", _INDEX, str(tmp_path / "ws"), str(folder)]
    )
    if command is None:
        pytest.skip("running as root without setpriv or capsh: cannot drop CAP_DAC_OVERRIDE")
    folder.mkdir()
    _good_files(folder, 1)
    secret = folder / "secret.dcm"
    secret.write_bytes(_encode(_dataset()))  # a valid file, only its permissions are wrong
    secret.chmod(0)
    try:
        subprocess.run(command, check=True, timeout=60, capture_output=True)
    finally:
        secret.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with Workspace(tmp_path / "ws") as ws:
        errors = ws.index_errors()
        assert errors["file_path"].tolist() == [str(secret)]
        assert errors["kind"].tolist() == ["unreadable"]
        assert "permission denied" in errors["reason"][0].lower()
        assert ws.instances()["file_path"].tolist() == [str(folder / "good_0.dcm")]


# -- 5. no partial rows; FIFOs and workers cannot hang the run ---------------------------
def test_failed_batch_write_leaves_no_partial_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    _good_files(folder, 11)
    (folder / "good_5x.txt").write_bytes(b"not DICOM at all")  # an error row in batch 2
    monkeypatch.setattr(
        workspace_module, "parse_files", functools.partial(index_module.parse_files, chunk_size=4)
    )
    real_upsert = workspace_module.upsert_instances
    batches: list[list[str]] = []

    def upsert_then_fail(con: Any, columns: Any, **kwargs: Any) -> int:
        written = real_upsert(con, columns, **kwargs)  # the rows are in, uncommitted
        batches.append(list(columns["file_path"]))
        if len(batches) == 2:
            raise RuntimeError("disk full (simulated)")
        return written

    monkeypatch.setattr(workspace_module, "upsert_instances", upsert_then_fail)
    ws = Workspace(tmp_path / "ws")
    try:
        with pytest.raises(StoreError, match="disk full"):
            ws.index(folder, progress=False, workers=1, batch_rows=4)
        assert len(batches) == 2 and len(batches[0]) == 4
        # the first batch is committed whole, the second rolled back whole
        assert sorted(ws.instances()["file_path"]) == sorted(batches[0])
        assert ws.index_errors().empty
        monkeypatch.undo()
        report = ws.index(folder, progress=False, workers=1)  # still usable afterwards
        assert report.unchanged == 4 and report.indexed == 7 and report.errors == 1
        assert len(ws.instances()) == 11
        assert ws.index_errors()["kind"].tolist() == ["not_dicom"]
    finally:
        ws.close()


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO; if a reader ever blocks on it, a writer opens it after 20 s to free it."""
    path = tmp_path / "pipe.dcm"
    os.mkfifo(path)

    def unblock() -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader is blocked: nothing to free
            return
        os.close(fd)

    guard = threading.Timer(20.0, unblock)
    guard.start()
    yield path
    guard.cancel()


def test_fifo_read_header_does_not_block(fifo: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(DicomReadError) as info:
        read_header(fifo)
    assert time.perf_counter() - started < 1.0
    assert info.value.kind == "unreadable"
    assert "not a regular file" in info.value.reason


def test_fifo_in_scan_and_in_parse_files(fifo: Path, tmp_path: Path) -> None:
    folder = fifo.parent
    goods = _good_files(folder, 47)
    # scan() never hands a FIFO to the reader
    found = index_module.scan([folder])
    assert [p.kind for p in found.problems if p.path == str(fifo)] == ["unreadable"]
    assert str(fifo) not in {f.path for f in found.files}
    # handed one anyway (it was swapped in after the scan), the inline reader and the
    # worker pool both report it without waiting for a writer
    entries = [FileEntry(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in goods]
    entries.insert(10, FileEntry(str(fifo), 0, 0))
    for workers in (1, 2):
        started = time.perf_counter()
        batches = list(
            parse_files(entries, ["SOPInstanceUID"], workers=workers, chunk_size=8, file_timeout=2)
        )
        seconds = time.perf_counter() - started
        problems = [p for b in batches for p in b.problems]
        assert [(p.path, p.kind) for p in problems] == [(str(fifo), "unreadable")]
        assert sum(b.n_rows for b in batches) == 47
        assert seconds < 15, f"workers={workers}: {seconds:.1f} s"


def test_worker_pool_survives_bad_files(crafted: dict[str, Any], tmp_path: Path) -> None:
    """The same bad files, parsed by the worker pool: each one costs only itself."""
    folder = crafted["folder"]
    goods = _good_files(tmp_path, 48)
    bad = [n for n in CASES if n not in ("sub/loop", "pipe.dcm")]
    paths = [*goods[:24], *(folder / n for n in bad), *goods[24:]]
    entries = [FileEntry(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    started = time.perf_counter()
    batches = list(parse_files(entries, ["SOPInstanceUID"], workers=2, chunk_size=4))
    seconds = time.perf_counter() - started
    kinds = {os.path.basename(p.path): p.kind for b in batches for p in b.problems}
    assert kinds == {n: CASES[n][0] for n in bad}
    assert sum(b.n_rows for b in batches) == 48
    assert seconds < 15


# -- 6. truncation sweep ------------------------------------------------------------------
def _cut_offsets(size: int) -> list[int]:
    special = [0, 1, 127, 128, 131, 132, 133, 140, 144]  # preamble, marker, first element
    return sorted({*special, *(round(i * size / 300) for i in range(1, 300))} - {size})


def _indexer_outcome(path: Path) -> str:
    """What the indexer (fast scanner, then read_header) makes of one file."""
    st = path.stat()
    batches = list(parse_files([FileEntry(str(path), st.st_size, st.st_mtime_ns)], [], workers=1))
    problems = [p for b in batches for p in b.problems]
    if problems:
        return problems[0].kind
    return "ok" if sum(b.n_rows for b in batches) == 1 else "dicomdir"


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on half-cut UIDs
@pytest.mark.parametrize("name", ["CT_small.dcm", "image_dfl.dcm"])
def test_truncation_sweep(name: str, tmp_path: Path) -> None:
    data = (TEST_FILES / name).read_bytes()
    if name == "image_dfl.dcm":
        # every cut inside the deflated stream, after the file meta, is truncated
        assert data[132:136] == b"\x02\x00\x00\x00"
        must_truncate = range(144 + struct.unpack("<L", data[140:144])[0], len(data))
    else:
        raw = pydicom.dcmread(TEST_FILES / name, defer_size=1024)._dict[0x7FE00010]
        start = raw.value_tell - 12  # Explicit VR OW: 12-byte element header
        assert data[start : start + 4] == b"\xe0\x7f\x10\x00"
        must_truncate = range(start + 1, raw.value_tell + raw.length)
    cut = tmp_path / "cut.dcm"
    outcomes: dict[str, int] = {}
    slowest = 0.0
    checked = 0
    for offset in _cut_offsets(len(data)):
        cut.write_bytes(data[:offset])
        started = time.perf_counter()
        try:
            read_header(cut)
            kind = "ok"
        except DicomReadError as exc:
            kind = exc.kind
            assert exc.reason
        slowest = max(slowest, time.perf_counter() - started)
        outcomes[kind] = outcomes.get(kind, 0) + 1
        assert _indexer_outcome(cut) == kind, f"cut at {offset}: the indexer disagrees"
        if offset in must_truncate:
            checked += 1
            assert kind == "truncated", f"cut at {offset}: {kind}"
    assert slowest < 1.0, f"slowest cut took {slowest:.3f} s"
    assert checked > 50, outcomes

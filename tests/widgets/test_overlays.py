"""Overlay planes (60xx) in the viewer's kernel side: the ``overlay`` request and the count
the frame reply carries, checked against :func:`dicomflow_lab.core.pixels.overlay`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import pack_bits
from pydicom.uid import generate_uid

import dicomflow_lab as dfl
from dicomflow_lab.core import pixels
from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.widgets.viewer import Viewer
from tests.widgets._capture import Sent


@dataclass(frozen=True)
class Plane:
    """One overlay plane to write: its group, bits (2-D, or 3-D for a multi-frame overlay)."""

    group: int
    bits: np.ndarray
    origin: tuple[int, int] = (1, 1)
    first_frame: int | None = None
    label: str | None = None
    description: str | None = None


def write_overlay_file(
    src: str | os.PathLike[str], dest: str | os.PathLike[str], planes: Sequence[Plane], **attrs: Any
) -> Path:
    """Copy the image `src` to `dest` in a new series, with the overlay `planes` added.

    Parameters
    ----------
    src, dest : path-like
        The image to copy and where to write the copy (parent folders are created).
    planes : sequence of Plane
        The overlays (PS3.3 C.9.2), bit-packed into Overlay Data (60xx,3000).
    **attrs
        Other attributes to set, e.g. ``SeriesDescription="OVERLAYS"``.

    Returns
    -------
    pathlib.Path
        `dest`.
    """
    ds = pydicom.dcmread(src)
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    for p in planes:
        g = p.group
        frames = p.bits if p.bits.ndim == 3 else p.bits[np.newaxis]
        packed = pack_bits(frames.astype(np.uint8).ravel())
        ds.add_new((g, 0x0010), "US", frames.shape[1])
        ds.add_new((g, 0x0011), "US", frames.shape[2])
        ds.add_new((g, 0x0040), "CS", "G")
        ds.add_new((g, 0x0050), "SS", list(p.origin))
        ds.add_new((g, 0x0100), "US", 1)
        ds.add_new((g, 0x0102), "US", 0)
        if p.bits.ndim == 3 or p.first_frame is not None:
            ds.add_new((g, 0x0015), "IS", len(frames))
            ds.add_new((g, 0x0051), "US", p.first_frame or 1)
        if p.description is not None:
            ds.add_new((g, 0x0022), "LO", p.description)
        if p.label is not None:
            ds.add_new((g, 0x1500), "LO", p.label)
        ds.add_new((g, 0x3000), "OW", packed + b"\0" * (len(packed) % 2))
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return out


def _ring(rows: int, cols: int) -> np.ndarray:
    """A rectangle outline two pixels thick with a diagonal: asymmetric, easy to see."""
    bits = np.zeros((rows, cols), bool)
    bits[:2, :] = bits[-2:, :] = bits[:, :2] = bits[:, -2:] = True
    for i in range(min(rows, cols)):
        bits[i, i] = True
    return bits


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """pydicom's overlay example, and a CT slice with two overlays written here."""
    base = tmp_path_factory.mktemp("overlays")
    sample = write_sample_study(base / "sample", ct_slices=3, ct_size=64, mr_slices=1, mr_size=32)
    siemens = base / "siemens" / "examples_overlay.dcm"
    siemens.parent.mkdir()
    shutil.copy(get_testdata_file("examples_overlay.dcm"), siemens)
    ct = sample.series[0].files[1]
    two = write_overlay_file(
        ct,
        base / "two" / "two.dcm",
        [
            # a 20 x 30 plane placed at row 11, column 21 (1-based Overlay Origin)
            Plane(0x6000, _ring(20, 30), origin=(11, 21), label="ROI ring"),
            # runs off the bottom-right corner: clipped to the image
            Plane(0x6002, np.ones((10, 10), bool), origin=(60, 58), description="corner"),
        ],
        SeriesDescription="TWO OVERLAYS",
    )
    return {"sample": Path(sample.path), "siemens": siemens, "two": two, "ct": Path(ct)}


@pytest.fixture
def open_viewer(tmp_path: Path) -> Iterator[Any]:
    """``open_viewer(path)`` → a Viewer on a fresh workspace; closed afterwards."""
    opened: list[Any] = []

    def _open(path: Path) -> Viewer:
        ws = dfl.Workspace(tmp_path / f"ws{len(opened)}")
        v = dfl.open(path, workspace=ws, progress=False)
        opened.append((v, ws))
        return v

    yield _open
    for v, ws in opened:
        v.close()
        ws.close()


def _request(v: Viewer, sent: Sent, kind: str, index: int, msg_id: int = 1) -> Any:
    v._on_message(v, {"kind": kind, "id": msg_id, "series": v.series_key, "index": index}, [])
    return sent.last


def _masks(reply: dict[str, Any], buffers: list[Any]) -> list[np.ndarray]:
    assert len(buffers) == len(reply["overlays"])
    out = []
    for header, buf in zip(reply["overlays"], buffers, strict=True):
        raw = np.frombuffer(bytes(buf), np.uint8)
        assert raw.size == header["rows"] * header["columns"]
        assert set(np.unique(raw).tolist()) <= {0, 1}
        out.append(raw.reshape(header["rows"], header["columns"]))
    return out


def test_overlay_reply_matches_pixels_overlay_for_pydicoms_example(
    files: dict[str, Path], open_viewer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = open_viewer(files["siemens"])
    sent = Sent(v, monkeypatch)
    frame, _ = _request(v, sent, "frame", 0, msg_id=4)
    assert frame["ok"] is True and frame["frame"]["overlays"] == 1
    reply, buffers = _request(v, sent, "overlay", 0, msg_id=5)
    assert reply["kind"] == "overlay:reply" and reply["id"] == 5 and reply["ok"] is True
    assert reply["overlays"] == [
        {"group": 0x6000, "rows": 300, "columns": 484, "label": "Siemens MedCom Object Graphics"}
    ]
    (mask,) = _masks(reply, buffers)
    ((group, expected),) = pixels.overlay(files["siemens"], 0)
    assert group == 0x6000
    assert np.array_equal(mask, expected.astype(np.uint8))
    assert 0 < mask.sum() < mask.size
    # image-sized, as the frame the browser draws it over
    assert mask.shape == (frame["frame"]["rows"], frame["frame"]["columns"])


def test_two_overlays_placed_at_their_origin_with_labels(
    files: dict[str, Path], open_viewer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = open_viewer(files["two"])
    sent = Sent(v, monkeypatch)
    assert _request(v, sent, "frame", 0)[0]["frame"]["overlays"] == 2
    reply, buffers = _request(v, sent, "overlay", 0)
    assert [(o["group"], o["label"]) for o in reply["overlays"]] == [
        (0x6000, "ROI ring"),
        (0x6002, "corner"),
    ]
    ring, corner = _masks(reply, buffers)
    expected_ring = np.zeros((64, 64), np.uint8)
    expected_ring[10:30, 20:50] = _ring(20, 30)
    assert np.array_equal(ring, expected_ring)
    expected_corner = np.zeros((64, 64), np.uint8)
    expected_corner[59:, 57:] = 1  # the 10 x 10 plane clipped at the image's edge
    assert np.array_equal(corner, expected_corner)
    for (group, mask), got in zip(pixels.overlay(files["two"], 0), (ring, corner), strict=True):
        assert np.array_equal(got, mask.astype(np.uint8)), hex(group)


def test_frames_without_overlays_say_so(
    files: dict[str, Path], open_viewer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = open_viewer(files["sample"])
    sent = Sent(v, monkeypatch)
    assert _request(v, sent, "frame", 1)[0]["frame"]["overlays"] == 0
    reply, buffers = _request(v, sent, "overlay", 1)
    assert reply["ok"] is True and reply["overlays"] == [] and buffers == []


def test_a_multiframe_overlay_applies_from_its_image_frame_origin(
    files: dict[str, Path], open_viewer: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a 3-frame image whose one-frame overlay starts at image frame 2 (1-based)
    ds = pydicom.dcmread(files["ct"])
    one = ds.pixel_array
    ds.NumberOfFrames = 3
    ds.PixelData = np.stack([one, one + 1, one + 2]).astype(one.dtype).tobytes()
    src = tmp_path / "mf-src.dcm"
    ds.save_as(src, enforce_file_format=True)
    bits = np.zeros((64, 64), bool)
    bits[5:9, 5:60] = True
    path = write_overlay_file(src, tmp_path / "mf" / "mf.dcm", [Plane(0x6000, bits, first_frame=2)])
    v = open_viewer(path)
    assert v.n_frames == 3
    sent = Sent(v, monkeypatch)
    counts = [_request(v, sent, "frame", i)[0]["frame"]["overlays"] for i in range(3)]
    assert counts == [0, 1, 0]
    reply, buffers = _request(v, sent, "overlay", 1)
    (mask,) = _masks(reply, buffers)
    assert np.array_equal(mask, bits.astype(np.uint8))
    assert _request(v, sent, "overlay", 2)[0]["overlays"] == []


def test_overlays_are_read_once_for_the_frame_and_overlay_replies(
    files: dict[str, Path], open_viewer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = open_viewer(files["two"])
    calls: list[tuple[str, int]] = []
    real = pixels.overlay

    def counting(path: str, index: int = 0) -> Any:
        calls.append((path, index))
        return real(path, index)

    monkeypatch.setattr(pixels, "overlay", counting)
    sent = Sent(v, monkeypatch)
    for msg_id in range(3):
        _request(v, sent, "frame", 0, msg_id)
        assert _request(v, sent, "overlay", 0, msg_id)[0]["ok"] is True
    assert len(calls) == 1


def test_a_malformed_overlay_still_shows_the_frame_and_says_why(
    files: dict[str, Path], open_viewer: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ds = pydicom.dcmread(files["two"])
    ds[0x6000, 0x3000].value = b"\x01\x02"  # far too short for 20 x 30 bits
    bad = tmp_path / "bad" / "bad.dcm"
    bad.parent.mkdir()
    ds.save_as(bad, enforce_file_format=True)
    v = open_viewer(bad)
    sent = Sent(v, monkeypatch)
    frame, buffers = _request(v, sent, "frame", 0)
    assert frame["ok"] is True and len(buffers) == 1
    assert frame["frame"]["overlays"] is None  # unknown: the front end may ask and learn why
    reply, buffers = _request(v, sent, "overlay", 0)
    assert reply["ok"] is False and buffers == []
    assert "6000" in reply["error"]["message"] and "bad.dcm" in reply["error"]["message"]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"kind": "overlay", "id": 1, "series": "s9", "index": 0}, "not part of this viewer"),
        ({"kind": "overlay", "id": 1, "series": "x/../y", "index": 0}, "series key"),
        ({"kind": "overlay", "id": 1, "series": "s1"}, "'index'"),
        ({"kind": "overlay", "id": 1, "series": "s1", "index": True}, "'index'"),
    ],
)
def test_bad_overlay_requests_get_an_error_reply(
    files: dict[str, Path],
    open_viewer: Any,
    monkeypatch: pytest.MonkeyPatch,
    content: dict[str, Any],
    error: str,
) -> None:
    v = open_viewer(files["two"])
    sent = Sent(v, monkeypatch)
    v._on_message(v, content, [])
    reply, buffers = sent.last
    assert reply["kind"] == "overlay:reply" and reply["ok"] is False and buffers == []
    assert error in reply["error"]["message"]


def test_out_of_range_overlay_index(
    files: dict[str, Path], open_viewer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = open_viewer(files["two"])
    sent = Sent(v, monkeypatch)
    assert "out of range" in _request(v, sent, "overlay", 5)[0]["error"]["message"]

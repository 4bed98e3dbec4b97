"""The viewer's kernel side: traits, Python API, the message router, the static image."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

import dicomflow_lab as dfl
from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.widgets.viewer import Viewer
from tests.widgets._capture import Sent


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_study(
        tmp_path_factory.mktemp("s"), ct_slices=12, ct_size=64, mr_slices=3, mr_size=32
    )


@pytest.fixture
def viewer(sample, tmp_path) -> Viewer:
    ws = dfl.Workspace(tmp_path / "ws")
    v = dfl.open(sample.path, workspace=ws, progress=False)
    yield v
    v.close()
    ws.close()


def test_open_returns_a_viewer_of_the_study(viewer, sample):
    assert isinstance(viewer, Viewer)
    assert [s["modality"] for s in viewer.series] == ["CT", "MR"]
    assert viewer.series_uid == sample.series[0].SeriesInstanceUID
    assert viewer.n_frames == 12
    assert viewer.frame == 6  # starts in the middle of the series
    ct_window = next(p for p in viewer.presets if p["source"] == "dataset")
    assert (viewer.window_center, viewer.window_width) == (ct_window["center"], ct_window["width"])
    names = {p["name"].lower() for p in viewer.presets}
    assert {"lung", "bone", "brain", "mediastinum"} <= names


def test_traits_hold_no_identifying_values(viewer, sample):
    ds = pydicom.dcmread(sample.series[0].files[0], stop_before_pixels=True)
    state = repr(viewer.get_state())
    for value in (
        str(ds.PatientName),
        ds.PatientID,
        ds.AccessionNumber,
        str(ds.PatientBirthDate),
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        ds.FrameOfReferenceUID,
        str(sample.path),
    ):
        assert value not in state


def test_frame_request_returns_raw_values_and_header(viewer, monkeypatch, sample):
    sent = Sent(viewer, monkeypatch)
    viewer._on_message(
        viewer, {"kind": "frame", "id": 3, "series": viewer.series_key, "index": 2}, []
    )
    content, buffers = sent.last
    assert content["kind"] == "frame:reply" and content["id"] == 3 and content["ok"] is True
    header = content["frame"]
    assert (header["rows"], header["columns"], header["samples"]) == (64, 64, 1)
    values = np.frombuffer(bytes(buffers[0]), dtype=header["dtype"]).reshape(64, 64)
    expected = pydicom.dcmread(sample.series[0].files[2]).pixel_array
    assert np.array_equal(values, expected)
    assert header["rescale_type"] == "HU" and header["intercept"] == -1024


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"kind": "frame", "id": 1, "series": "s7", "index": 0}, "not part of this viewer"),
        ({"kind": "frame", "id": 1, "series": "../../etc/passwd", "index": 0}, "series key"),
        ({"kind": "frame", "id": 1, "series": "1.2.840.1", "index": 0}, "series key"),
        ({"kind": "frame", "id": 1, "series": None, "index": 0}, "series key"),
        ({"kind": "frame", "id": -1, "series": "s1", "index": 0}, "'id'"),
        ({"kind": "nope", "id": 1}, "unknown message kind"),
        ("not a dict", "must be an object"),
    ],
)
def test_bad_requests_get_an_error_reply(viewer, monkeypatch, content, error):
    sent = Sent(viewer, monkeypatch)
    viewer._on_message(viewer, content, [])
    reply, buffers = sent.last
    assert reply["ok"] is False and buffers == []
    assert error in reply["error"]["message"]


def test_out_of_range_frame_index(viewer, monkeypatch):
    sent = Sent(viewer, monkeypatch)
    viewer._on_message(
        viewer, {"kind": "frame", "id": 9, "series": viewer.series_key, "index": 99}, []
    )
    assert "out of range" in sent.last[0]["error"]["message"]


def test_undecodable_frame_is_reported_and_others_still_work(sample, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(sample.path, copy)
    victim = sorted((copy / "1_CT").glob("*.dcm"))[4]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 3000])  # cut into the pixel data
    ws = dfl.Workspace(tmp_path / "ws")
    v = dfl.open(copy, workspace=ws, progress=False)
    sent = Sent(v, monkeypatch)
    # the truncated file is refused by the indexer, so the series has 11 frames left
    assert v.n_frames == 11
    assert not ws.index_errors().empty
    v._on_message(v, {"kind": "frame", "id": 1, "series": v.series_key, "index": 4}, [])
    assert sent.last[0]["ok"] is True
    v.close()
    ws.close()


def test_python_sets_state_and_presets(viewer):
    viewer.set_preset("LUNG")
    assert (viewer.window_center, viewer.window_width) == (-600.0, 1500.0)
    with pytest.raises(KeyError, match="known presets"):
        viewer.set_preset("no such preset")
    viewer.series_key = viewer.series[1]["key"]
    assert viewer.n_frames == 3 and viewer.frame == 1
    viewer.series_key = "s9"  # unknown (e.g. a tampered front end): refused, stays, says why
    assert viewer.series_key == viewer.series[1]["key"]
    assert "not part of this viewer" in viewer.status
    with pytest.raises(KeyError, match="not part of this viewer"):
        viewer.series_uid = "9.9.9"


def test_series_uid_property_maps_real_uids(viewer, sample):
    mr = sample.series[1].SeriesInstanceUID
    viewer.series_uid = mr
    assert viewer.series_uid == mr and viewer.series_key == "s2"


def test_frame_change_callbacks(viewer):
    seen = []
    viewer.on_frame_change(seen.append)
    viewer.frame = 3
    viewer.frame = 4
    viewer.on_frame_change(seen.append, remove=True)
    viewer.frame = 5
    assert seen == [3, 4]


def test_to_png_renders_the_current_view(viewer, tmp_path):
    from matplotlib import image as mpimg

    from dicomflow_lab.core import voi

    out = tmp_path / "view.png"
    png = viewer.to_png(out)
    assert out.read_bytes() == png
    img = mpimg.imread(io.BytesIO(png))
    assert img.shape[:2] == (64, 64)
    expected = voi.render(viewer.current_frame(), viewer.window_center, viewer.window_width)
    assert np.array_equal(np.rint(img * 255).astype(np.uint8), expected)  # lossless


def test_mimebundle_has_a_static_png_for_saved_notebooks(viewer):
    data, _ = viewer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_constructor_argument_is_refused(viewer):
    with pytest.raises(TypeError, match="unexpected argument"):
        Viewer(viewer.study, zoom_level=3)


def test_annotations_only_carry_phi_when_allowed(viewer, monkeypatch, sample):
    ds = pydicom.dcmread(sample.series[0].files[0], stop_before_pixels=True)
    sent = Sent(viewer, monkeypatch)
    request = {"kind": "annotations", "id": 5, "series": viewer.series_key, "index": 0}
    viewer._on_message(viewer, request, [])
    assert str(ds.PatientName) not in repr(sent.last[0])
    viewer.show_phi = True
    viewer._on_message(viewer, request, [])
    assert str(ds.PatientName) in repr(sent.last[0])


def test_thumbnails_are_cached_on_disk(viewer, monkeypatch):
    sent = Sent(viewer, monkeypatch)
    request = {"kind": "thumb", "id": 1, "series": viewer.series_key}
    viewer._on_message(viewer, request, [])
    first = bytes(sent.last[1][0])
    cached = list((viewer.study.workspace.path / "thumbnails").glob("*.png"))
    assert len(cached) == 1 and cached[0].read_bytes() == first
    viewer._on_message(viewer, request, [])
    assert bytes(sent.last[1][0]) == first


def test_user_presets_from_settings_are_offered(sample, tmp_path):
    ws = dfl.Workspace(tmp_path / "ws")
    ws.set_setting("viewer.presets", [{"name": "Liver narrow", "center": 80, "width": 120}])
    v = dfl.open(sample.path, workspace=ws, progress=False)
    assert {"name": "Liver narrow", "center": 80.0, "width": 120.0, "source": "user"} in v.presets
    v.set_preset("liver narrow")
    assert (v.window_center, v.window_width) == (80.0, 120.0)
    with pytest.raises(ValueError, match="center"):
        ws.set_setting("viewer.presets", [{"name": "x", "center": "a", "width": 1}])
    v.close()
    ws.close()


def test_voi_lut_table_applies_until_the_window_is_changed(tmp_path):
    from pathlib import Path

    from dicomflow_lab.core import voi

    golden = Path(__file__).resolve().parents[1] / "core" / "golden" / "modality_voi_lut.dcm"
    ds = pydicom.dcmread(golden)
    del ds.WindowCenter, ds.WindowWidth  # only the VOI LUT Sequence is left
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "lut.dcm")
    ws = dfl.Workspace(tmp_path / "ws")
    v = dfl.open(tmp_path / "in" / "lut.dcm", workspace=ws, progress=False)
    frame = v.current_frame()
    assert frame.params.voi_lut is not None and not frame.params.windows
    table = voi.render(frame, use_voi_lut=True)
    assert np.array_equal(v.render(), table)
    v.window_width = v.window_width + 10  # the user takes over: the window applies
    assert np.array_equal(v.render(), voi.render(frame, v.window_center, v.window_width))
    v.close()
    ws.close()

"""dfl.open: file, folder or DICOMDIR in; a Study (or StudyList) with a safe display out."""

from __future__ import annotations

import shutil

import pytest

import dicomflow_lab as dfl
from dicomflow_lab.errors import DicomflowError
from tests.conftest import TEST_FILES, write_series


@pytest.fixture
def ws(tmp_path):
    with dfl.Workspace(tmp_path / "ws") as workspace:
        yield workspace


def test_open_folder_returns_a_study_with_its_series(tmp_path, ws):
    write_series(tmp_path / "s", 4, study_uid="1.2.3", series_number=1)
    write_series(tmp_path / "s" / "b", 2, study_uid="1.2.3", series_number=2, modality="MR")
    study = dfl.open(tmp_path / "s", workspace=ws, progress=False, view=False)
    assert isinstance(study, dfl.Study)
    assert study.series()["n_instances"].tolist() == [4, 2]
    assert study.summary["Modalities"] == "CT/MR"


def test_open_single_file(ws):
    study = dfl.open(TEST_FILES / "CT_small.dcm", workspace=ws, progress=False, view=False)
    assert isinstance(study, dfl.Study)
    assert len(study.instances()) == 1


def test_open_dicomdir(tmp_path, ws):
    shutil.copytree(TEST_FILES / "dicomdirtests", tmp_path / "cd")
    opened = dfl.open(tmp_path / "cd" / "DICOMDIR", workspace=ws, progress=False, view=False)
    assert isinstance(opened, dfl.StudyList)
    assert len(opened) >= 2
    assert sum(len(s.instances()) for s in opened) == len(ws.instances())


def test_open_scopes_to_the_path(tmp_path, ws):
    write_series(tmp_path / "a", 3, study_uid="1.2.3")
    write_series(tmp_path / "b", 2, study_uid="1.2.3")
    ws.index(tmp_path, progress=False)
    study = dfl.open(tmp_path / "b", workspace=ws, progress=False, view=False)
    assert len(study.instances()) == 2


def test_display_hides_phi_by_default(tmp_path, ws):
    write_series(tmp_path / "s", 3, patient_id="SECRET-ID-42")
    study = dfl.open(tmp_path / "s", workspace=ws, progress=False, view=False)
    html = study._repr_html_()
    text = repr(study)
    for shown in (html, text):
        assert "SECRET-ID-42" not in shown
        assert "CompressedSamples^CT1" not in shown  # CT_small's patient name
    assert "data-dfl-ready" in html and "<img" in html and "data:image/png;base64," in html
    assert "show_phi=True" in html
    assert "CT" in text and "3 instances" in text


def test_display_shows_phi_when_asked(tmp_path, ws):
    write_series(tmp_path / "s", 1, patient_id="SHOWN-ID")
    study = dfl.open(tmp_path / "s", workspace=ws, progress=False, show_phi=True, view=False)
    assert "SHOWN-ID" in study._repr_html_()
    assert "SHOWN-ID" in repr(study)


def test_open_nothing_dicom_explains(tmp_path, ws):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "readme.txt").write_text("hello")
    with pytest.raises(DicomflowError, match=r"no DICOM instances found.*readme\.txt"):
        dfl.open(tmp_path / "d", workspace=ws, progress=False, view=False)


def test_open_missing_path(tmp_path, ws):
    with pytest.raises(FileNotFoundError, match="no such file"):
        dfl.open(tmp_path / "nope", workspace=ws)


def test_thumbnail_is_a_png_of_the_image():
    import io

    from matplotlib import image as mpimg

    from dicomflow_lab.core.thumbnail import thumbnail_png

    png = thumbnail_png(TEST_FILES / "CT_small.dcm", size=64)
    img = mpimg.imread(io.BytesIO(png))
    assert img.shape[0] <= 64 and img.shape[1] <= 64
    assert img[..., 0].std() > 0.05  # an image, not a flat square

"""Shared fixtures: small generated DICOM series and isolated workspaces."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch) -> None:
    """Never touch the user's ~/.dicomflow_lab from tests."""
    monkeypatch.setenv("DICOMFLOW_HOME", str(tmp_path_factory.mktemp("dfl-home")))


def write_series(
    folder: Path,
    n: int,
    *,
    study_uid: str | None = None,
    series_number: int = 1,
    modality: str = "CT",
    patient_id: str = "PAT001",
    extension: str = ".dcm",
) -> list[Path]:
    """Write `n` small, valid CT_small-based instances of one new series into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    paths = []
    for i in range(n):
        ds = template.copy()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber = series_number
        ds.InstanceNumber = i + 1
        ds.Modality = modality
        ds.PatientID = patient_id
        ds.ImagePositionPatient = [0.0, 0.0, float(i) * 2.5]
        path = folder / f"IM{i + 1:04d}{extension}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture
def series_dir(tmp_path) -> Path:
    """A folder with one 5-instance CT series."""
    folder = tmp_path / "study"
    write_series(folder, 5)
    return folder


@pytest.fixture
def workspace(tmp_path) -> Iterator:
    """A fresh on-disk workspace in a temporary folder."""
    from dicomflow_lab.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    yield ws
    ws.close()


def pytest_report_header(config) -> str:
    return f"DICOMFLOW_REQUIRE_PEERS={os.environ.get('DICOMFLOW_REQUIRE_PEERS', '0')}"

"""The shipped notebooks carry no patient data of the sample study in their saved outputs."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from dicomflow_lab.core.sample import write_sample_study

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "AccessionNumber",
    "StudyDate",
    "ReferringPhysicianName",
    "InstitutionName",
    "InstitutionAddress",
    "OperatorsName",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
)


@pytest.fixture(scope="module")
def sample_values(tmp_path_factory) -> dict[str, str]:
    study = write_sample_study(tmp_path_factory.mktemp("sample"), seed=0)  # the quickstart's
    values = {}
    for series in study.series:
        ds = pydicom.dcmread(series.files[0], stop_before_pixels=True)
        for kw in IDENTIFYING:
            if kw in ds and str(ds[kw].value):
                values[f"{series.Modality}.{kw}"] = str(ds[kw].value)
    return values


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_outputs_hold_no_sample_phi(notebook, sample_values):
    text = notebook.read_text("utf-8")
    assert '"outputs"' in text
    leaked = {k: v for k, v in sample_values.items() if v in text}
    assert leaked == {}
    family = sample_values["CT.PatientName"].split("^")[0]
    assert family not in text


def test_quickstart_exists_with_kernel_metadata():
    import json

    nb = json.loads((NOTEBOOKS[0].parent / "quickstart.ipynb").read_text("utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"

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


def test_a_saved_viewer_output_has_a_static_png_and_no_phi(tmp_path, sample_values):
    """Executed without a browser (like nbconvert), the viewer cell keeps an image/png."""
    import os

    import nbformat
    from nbclient import NotebookClient

    cells = [
        "import dicomflow_lab as dfl\n"
        f"path = dfl.data.sample_study({str(tmp_path / 's')!r}, ct_slices=6, ct_size=64,"
        " mr_slices=2, mr_size=32)",
        "v = dfl.open(path, progress=False)\nv",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    env_home = os.environ.get("DICOMFLOW_HOME")
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert os.environ.get("DICOMFLOW_HOME") == env_home
    data = nb.cells[1].outputs[0]["data"]
    assert data["image/png"]  # base64 PNG: GitHub and nbconvert show it
    assert "application/vnd.jupyter.widget-view+json" in data
    text = nbformat.writes(nb)
    # the sample here has other UIDs than the quickstart's, but the same fake patient
    for key in ("CT.PatientName", "CT.PatientID", "CT.AccessionNumber", "CT.PatientBirthDate"):
        assert sample_values[key] not in text

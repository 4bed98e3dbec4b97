"""The peers the tests rely on are installed and work: Orthanc with DICOMweb, dcmtk."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests._orthanc import running_orthanc
from tests._peers import require_program

pytestmark = pytest.mark.peer


def test_orthanc_starts_with_dicomweb(tmp_path: Path) -> None:
    with (
        running_orthanc(tmp_path) as orthanc,
        httpx.Client(timeout=10.0, trust_env=False) as client,
    ):
        system = client.get(f"{orthanc.http_url}/system")
        assert system.status_code == 200
        info = system.json()
        assert info["Version"]
        assert info["DicomAet"] == orthanc.aet
        assert info["DicomPort"] == orthanc.dicom_port

        studies = client.get(
            f"{orthanc.dicomweb_url}/studies", headers={"Accept": "application/dicom+json"}
        )
        assert studies.status_code in (200, 204), studies.text[:500]
        if studies.status_code == 200:
            assert studies.json() == []
    assert orthanc.process.poll() is not None, "Orthanc must be stopped on exit"


def test_dcmtk_runs() -> None:
    dcmdump = require_program("dcmdump")
    result = subprocess.run(
        [dcmdump, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "dcmtk" in (result.stdout + result.stderr).lower()

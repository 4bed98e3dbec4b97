"""verify() on the engine's real output: sample study, deid-data, the full-table dataset.

The engine and verify share only the profile table and the templates; these tests check
that what the engine writes passes the independent check (an empty residual table), and
that verify still finds what a different template would have removed.
"""

from __future__ import annotations

from pathlib import Path

import deid_data
import pytest

import dicomflow_lab as dfl
from dicomflow_lab.anonymize import table_dataset
from dicomflow_lab.anonymize.engine import Anonymizer
from dicomflow_lab.anonymize.profile import Option
from dicomflow_lab.anonymize.templates import template_from_dict, template_from_options
from dicomflow_lab.anonymize.verify import verify

DEID = Path(deid_data.__file__).parent / "data"
KEY = "verify-test-key"


def run(template, files, out: Path):
    """Anonymize ``files`` into ``out``; return (uid_map, quarantined originals)."""
    out.mkdir(parents=True, exist_ok=True)
    anonymizer = Anonymizer(template, key=KEY)
    uid_map: dict[str, str] = {}
    quarantined = []
    for i, src in enumerate(files):
        result = anonymizer.anonymize_file(src, out / f"{i:04d}.dcm")
        uid_map.update(result.uid_map)
        if result.quarantined:
            quarantined.append(str(src))
    return uid_map, quarantined


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> list[Path]:
    folder = dfl.data.sample_study(tmp_path_factory.mktemp("study") / "s", seed=0)
    return sorted(folder.rglob("*.dcm"))


@pytest.mark.parametrize("template", ["basic", "research", "retain-uids", "clinical-trial"])
def test_engine_output_of_the_sample_study_passes(study, template, tmp_path):
    uid_map, quarantined = run(template, study, tmp_path / "out")
    assert quarantined == []
    residual = verify(study, tmp_path / "out", template=template, uid_map=uid_map)
    assert residual.empty, residual.to_string()
    assert verify(study, tmp_path / "out", template=template).empty


def test_engine_output_checked_against_a_stricter_template_fails(study, tmp_path):
    # research keeps patient characteristics and device identity: the Basic Profile
    # does not, so verify with "basic" must find them in the research output.
    files = study[:3]
    run("research", files, tmp_path / "out")
    residual = verify(files, tmp_path / "out", template="basic")
    assert {"StationName", "DeviceSerialNumber"} <= set(residual.attribute)
    assert set(residual.check) == {"phi"}


ANY_RULE = {"name": "any-rule", "options": [], "pixel_rules": [{"rectangles": [[0, 0, 40, 12]]}]}


@pytest.mark.parametrize("with_rule", [False, True], ids=["basic", "pixel-rule"])
def test_engine_output_of_deid_data_passes(with_rule, tmp_path):
    files = (
        sorted((DEID / "humans").glob("*.dcm"))
        + sorted((DEID / "dicom-cookies").glob("*.dcm"))
        + sorted((DEID / "animals").glob("*.dcm"))
    )
    template = template_from_dict(ANY_RULE) if with_rule else "basic"
    uid_map, quarantined = run(template, files, tmp_path / "out")
    residual = verify(
        files, tmp_path / "out", template=template, uid_map=uid_map, quarantined=quarantined
    )
    assert residual.empty, residual.to_string()
    if with_rule:  # nothing left out: every file was written and checked
        assert quarantined == []
    elif quarantined:  # quarantined instances have no counterpart: verify says so unless told
        missing = verify(files, tmp_path / "out", uid_map=uid_map)
        assert set(missing.file) == set(quarantined)


@pytest.mark.parametrize(
    "options", [(), *[(o,) for o in Option]], ids=lambda o: "+".join(x.value for x in o) or "basic"
)
def test_engine_output_of_the_full_table_dataset_passes(options, tmp_path):
    src = tmp_path / "table.dcm"
    table_dataset.write(src)
    template = template_from_options(*options)
    uid_map, quarantined = run(template, [src], tmp_path / "out")
    assert quarantined == []
    residual = verify(src, tmp_path / "out", template=template, uid_map=uid_map)
    assert residual.empty, residual.to_string()
    # ...and the unanonymized dataset against itself leaks on hundreds of attributes.
    assert verify(src, src, template=template)["attribute"].nunique() > 100


def test_ultrasounds_quarantined_without_rule_and_cleaned_with_one(tmp_path):
    files = [DEID / "ultrasounds" / "GREYSCALE_IMAGE.dcm", DEID / "ultrasounds" / "RGB_IMAGE.dcm"]
    _, quarantined = run("basic", files, tmp_path / "plain")
    assert quarantined == [str(f) for f in files]
    residual = verify(files, tmp_path / "plain")
    assert set(residual.file) == {str(f) for f in files}
    assert all("no anonymized counterpart" in d for d in residual.detail)

    rule = template_from_dict(
        {"name": "us-rule", "options": [], "pixel_rules": [{"rectangles": [[0, 0, 200, 40]]}]}
    )
    uid_map, quarantined = run(rule, files, tmp_path / "rule")
    assert quarantined == []
    residual = verify(files, tmp_path / "rule", template=rule, uid_map=uid_map)
    assert residual.empty, residual.to_string()
    # Checked against a template without the rule, the blacked-out pixels are a change.
    changed = verify(files, tmp_path / "rule", uid_map=uid_map)
    assert set(changed.check) == {"pixels"}

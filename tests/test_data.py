"""dicomflow_lab.data: the sample study wrapper and pydicom's bundled test files."""

from __future__ import annotations

import inspect
from pathlib import Path

import pydicom
import pytest

from dicomflow_lab import data
from dicomflow_lab.core.sample import MANIFEST_NAME, write_sample_study

TINY = {"ct_slices": 2, "ct_size": 16, "mr_slices": 1, "mr_size": 16}


def test_public_names():
    assert data.__all__ == ["sample_study", "testfile", "testfiles"]
    for name in data.__all__:
        doc = inspect.getdoc(getattr(data, name))
        assert doc and "Examples" in doc and "Returns" in doc, name


def test_sample_study_defaults_to_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DICOMFLOW_HOME", str(tmp_path / "home"))
    folder = data.sample_study(seed=3, **TINY)
    assert folder == tmp_path / "home" / "samples" / "study-seed3"
    assert (folder / MANIFEST_NAME).is_file()
    assert sorted(p.name for p in (folder / "1_CT").iterdir()) == ["IM0001.dcm", "IM0002.dcm"]
    assert pydicom.dcmread(folder / "2_MR" / "IM0001.dcm").Modality == "MR"


def test_sample_study_explicit_path_and_reuse(tmp_path):
    folder = data.sample_study(tmp_path / "mine", 4, **TINY)
    assert folder == tmp_path / "mine"
    stamp = (folder / MANIFEST_NAME).stat().st_mtime_ns
    assert data.sample_study(str(tmp_path / "mine"), 4, **TINY) == folder
    assert (folder / MANIFEST_NAME).stat().st_mtime_ns == stamp


def test_sample_study_mirrors_write_sample_study_defaults():
    wrapper = inspect.signature(data.sample_study).parameters
    generator = inspect.signature(write_sample_study).parameters
    assert list(wrapper) == list(generator)
    for name in ("seed", "ct_slices", "ct_size", "mr_slices", "mr_size", "overwrite"):
        assert wrapper[name].default == generator[name].default, name


def test_sample_study_rejects_bad_sizes(tmp_path):
    with pytest.raises(ValueError, match="ct_size must be between 16"):
        data.sample_study(tmp_path / "bad", ct_size=8)


def test_testfile_finds_a_bundled_file():
    path = data.testfile("CT_small.dcm")
    assert isinstance(path, Path)
    assert path.is_file()
    assert path.name == "CT_small.dcm"
    assert pydicom.dcmread(path).Modality == "CT"


def test_testfile_finds_files_in_subfolders():
    path = data.testfile("4648")
    assert path.is_file()
    assert path.parent.name == "MR700"


def test_testfile_returns_files_not_folders():
    with pytest.raises(FileNotFoundError):
        data.testfile("CT2N")  # a folder in pydicom's test data


@pytest.mark.parametrize(("typo", "suggestion"), [("CT_smal.dcm", "CT_small.dcm"),
                                                  ("mr_small.dcm", "MR_small.dcm")])  # fmt: skip
def test_testfile_suggests_close_names(typo, suggestion):
    with pytest.raises(FileNotFoundError) as info:
        data.testfile(typo)
    message = str(info.value)
    assert repr(typo) in message
    assert repr(suggestion) in message


def test_testfile_without_close_names_still_names_the_file():
    with pytest.raises(FileNotFoundError, match=r"'zzzz_qqqq\.xyz' is not one of pydicom"):
        data.testfile("zzzz_qqqq.xyz")


@pytest.mark.parametrize("name", ["", "../CT_small.dcm", "test_files/CT_small.dcm", "*.dcm"])
def test_testfile_rejects_paths_and_patterns(name):
    with pytest.raises(ValueError, match="bare file name"):
        data.testfile(name)


def test_testfiles_matches_a_glob_and_is_sorted():
    assert [p.name for p in data.testfiles("CT_small*")] == ["CT_small.dcm"]
    every = data.testfiles()
    assert every == sorted(every)
    assert all(p.is_file() and p.suffix != ".py" for p in every)
    assert {"CT_small.dcm", "MR_small.dcm", "rtplan.dcm"} <= {p.name for p in every}
    deep = {p.name for p in data.testfiles("**/*")}
    assert "4648" in deep and "4648" not in {p.name for p in every}
    assert "CT2N" not in deep, "folders are not listed"
    assert data.testfiles("no_such_*") == []


def test_testfiles_never_downloads(monkeypatch):
    """pydicom's own get_testdata_files tries the network for its online files."""
    import pydicom.data.data_manager as manager

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(manager, "data_path_with_download", no_network)
    assert data.testfiles("*.dcm")
    online_only = "693_UNCI.dcm"  # in pydicom-data, which pydicom would download
    if "pydicom-data" in pydicom.data.external_data_sources():
        assert data.testfile(online_only).is_file()
    else:
        with pytest.raises(FileNotFoundError):
            data.testfile(online_only)


def test_testfiles_rejects_absolute_patterns(tmp_path):
    with pytest.raises(ValueError, match="relative"):
        data.testfiles(str(tmp_path / "*"))

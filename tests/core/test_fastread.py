"""The indexer's fast header scanner agrees with the pydicom path wherever it applies."""

from __future__ import annotations

import pytest

from dicomflow_lab.core._fastread import fast_header
from dicomflow_lab.core.dataset import header_to_dict, is_dicomdir, read_header
from dicomflow_lab.errors import DicomReadError
from tests.conftest import TEST_FILES, write_series

ALL_FILES = sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def _slow(path):
    ds = read_header(path)
    return header_to_dict(ds), ds


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(TEST_FILES)))
def test_fast_path_equals_pydicom_path_or_declines(path):
    fast = fast_header(path, path.stat().st_size)
    try:
        slow, ds = _slow(path)
    except DicomReadError:
        assert fast is None, "the fast path accepted a file pydicom's path refuses"
        return
    if fast is None:
        return  # declined: the pydicom path is used
    assert not is_dicomdir(ds)
    header, tsuid = fast
    assert tsuid == str(ds.file_meta.TransferSyntaxUID)
    assert header == slow


def test_fast_path_covers_most_bundled_files():
    taken = [p for p in ALL_FILES if fast_header(p, p.stat().st_size) is not None]
    assert len(taken) >= 60, len(taken)


def test_fast_path_takes_generated_files_and_matches(tmp_path):
    for path in write_series(tmp_path, 3):
        fast = fast_header(path, path.stat().st_size)
        assert fast is not None
        assert fast[0] == _slow(path)[0]


def test_fast_path_declines_truncated_files(tmp_path):
    src = (TEST_FILES / "CT_small.dcm").read_bytes()
    for cut in range(140, len(src) - 1, 97):
        p = tmp_path / "cut.dcm"
        p.write_bytes(src[:cut])
        result = fast_header(p, cut)
        if result is not None:
            # only a cut exactly at an element boundary before the pixels may pass,
            # and then it must agree with pydicom's reading
            assert result[0] == _slow(p)[0]


def test_64_bit_vrs_sv_and_uv_have_4_byte_lengths_and_decode_alike(tmp_path):
    """PS3.5 Table 7.1-1: SV and UV are written like OB (2 reserved bytes, 32-bit length)."""
    import pydicom

    paths = write_series(tmp_path, 1)
    ds = pydicom.dcmread(paths[0])
    ds.SelectorSVValue = [-(2**40), 7]
    ds.SelectorUVValue = 2**63 + 5
    ds.save_as(paths[0])
    fast = fast_header(paths[0], paths[0].stat().st_size)
    slow = _slow(paths[0])[0]
    assert slow["SelectorSVValue"] == [-(2**40), 7]
    assert slow["SelectorUVValue"] == 2**63 + 5
    assert fast is not None and fast[0] == slow

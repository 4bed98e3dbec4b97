"""Decoder availability and the messages that say what to install."""

from __future__ import annotations

import pytest
from pydicom import uid
from pydicom.pixels import get_decoder

from dicomflow_lab.core import codecs
from dicomflow_lab.core.codecs import DecoderStatus, check_decoder, decoder_status
from dicomflow_lab.errors import PixelDataError


@pytest.fixture
def no_openjpeg(monkeypatch):
    """Make pydicom believe no JPEG 2000 plug-in is installed (restored afterwards)."""
    decoder = get_decoder(uid.JPEG2000)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(
        decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg>=2.0", "pylibjpeg-openjpeg>=2.0")}
    )
    return decoder


def test_decoder_status_lists_every_decodable_transfer_syntax():
    status = {s.transfer_syntax: s for s in decoder_status()}
    assert all(isinstance(s, DecoderStatus) for s in status.values())
    for ts in (
        uid.ImplicitVRLittleEndian,
        uid.ExplicitVRBigEndian,
        uid.DeflatedExplicitVRLittleEndian,
        uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit,
        uid.JPEGLosslessSV1,
        uid.JPEGLSLossless,
        uid.JPEG2000Lossless,
        uid.JPEG2000,
        uid.HTJ2K,
        uid.RLELossless,
    ):
        assert status[ts].available, status[ts]
        assert status[ts].missing == ""
        assert status[ts].name == uid.UID(ts).name
    # video has no pydicom decoder at all, so it is not listed
    assert uid.MPEG2MPML not in status


def test_decoder_status_names_the_package_of_a_missing_decoder(no_openjpeg):
    status = {s.transfer_syntax: s for s in decoder_status()}
    j2k = status[uid.JPEG2000]
    assert not j2k.available
    assert "pylibjpeg-openjpeg" in j2k.missing.split()
    assert status[uid.JPEG2000Lossless].available  # only the one decoder was patched


def test_check_decoder_passes_when_available():
    check_decoder(uid.JPEG2000, "x.dcm")
    check_decoder(uid.ExplicitVRLittleEndian)


def test_check_decoder_message_names_file_syntax_and_package(no_openjpeg):
    with pytest.raises(PixelDataError) as info:
        check_decoder(uid.JPEG2000, "/data/img.dcm")
    msg = str(info.value)
    assert msg.startswith("/data/img.dcm: ")
    assert "JPEG 2000 Image Compression (1.2.840.10008.1.2.4.91)" in msg
    assert "pip install pylibjpeg pylibjpeg-openjpeg" in msg


def test_check_decoder_lists_only_the_absent_packages(no_openjpeg, monkeypatch):
    monkeypatch.setattr(codecs, "_installed", lambda dist: dist != "pylibjpeg-openjpeg")
    with pytest.raises(PixelDataError, match=r"`pip install pylibjpeg-openjpeg`"):
        check_decoder(uid.JPEG2000)


def test_check_decoder_for_a_syntax_pydicom_cannot_decode():
    with pytest.raises(PixelDataError) as info:
        check_decoder(uid.MPEG2MPML, "movie.dcm")
    msg = str(info.value)
    assert "movie.dcm" in msg and uid.MPEG2MPML in msg and "MPEG2" in msg
    assert "no decoder" in msg and "convert" in msg


def test_check_decoder_without_transfer_syntax():
    with pytest.raises(PixelDataError, match="no Transfer Syntax UID"):
        check_decoder("", "raw.dcm")


def test_packages_for():
    assert codecs.packages_for(uid.JPEGBaseline8Bit) == ("pylibjpeg", "pylibjpeg-libjpeg")
    assert codecs.packages_for(uid.HTJ2KLossless) == ("pylibjpeg", "pylibjpeg-openjpeg")
    assert codecs.packages_for(uid.ExplicitVRLittleEndian) == ()

"""Which pixel data decoders this Python has, and what to install for the missing ones.

pydicom 3 decodes every native transfer syntax itself and hands the compressed ones
(JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE) to plug-ins. dicomflow_lab depends on the
pylibjpeg family for them; :func:`decoder_status` reports, for every transfer syntax
pydicom knows a decoder for, whether one is usable here, and :func:`check_decoder`
raises a :class:`~dicomflow_lab.errors.PixelDataError` that names the file, the transfer
syntax (name and UID) and the ``pip install`` line that fixes it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import metadata

from pydicom import uid as _uid
from pydicom.pixels import get_decoder

from dicomflow_lab.errors import PixelDataError

__all__ = ["DecoderStatus", "check_decoder", "decoder_status", "packages_for"]

logger = logging.getLogger(__name__)

_LIBJPEG = ("pylibjpeg", "pylibjpeg-libjpeg")
_OPENJPEG = ("pylibjpeg", "pylibjpeg-openjpeg")
_RLE = ("pylibjpeg", "pylibjpeg-rle")

#: The pip distributions dicomflow_lab relies on for each compressed transfer syntax.
_PACKAGES: dict[str, tuple[str, ...]] = {
    _uid.JPEGBaseline8Bit: _LIBJPEG,
    _uid.JPEGExtended12Bit: _LIBJPEG,
    _uid.JPEGLossless: _LIBJPEG,
    _uid.JPEGLosslessSV1: _LIBJPEG,
    _uid.JPEGLSLossless: _LIBJPEG,
    _uid.JPEGLSNearLossless: _LIBJPEG,
    _uid.JPEG2000Lossless: _OPENJPEG,
    _uid.JPEG2000: _OPENJPEG,
    _uid.HTJ2KLossless: _OPENJPEG,
    _uid.HTJ2KLosslessRPCL: _OPENJPEG,
    _uid.HTJ2K: _OPENJPEG,
    _uid.RLELossless: _RLE,
}


@dataclass(frozen=True)
class DecoderStatus:
    """Whether pixel data of one transfer syntax can be decoded here.

    Attributes
    ----------
    transfer_syntax : str
        The Transfer Syntax UID (PS3.5 §10, Annex A).
    name : str
        Its name, e.g. ``"JPEG 2000 Image Compression"``.
    available : bool
        True when at least one pydicom decoding plug-in for it is usable.
    missing : str
        Space-separated pip distributions to install when unavailable (for example
        ``"pylibjpeg-openjpeg"``); empty when available.
    """

    transfer_syntax: str
    name: str
    available: bool
    missing: str


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def packages_for(transfer_syntax: str) -> tuple[str, ...]:
    """Return the pip distributions that decode `transfer_syntax` for dicomflow_lab.

    Parameters
    ----------
    transfer_syntax : str
        A Transfer Syntax UID.

    Returns
    -------
    tuple of str
        For example ``("pylibjpeg", "pylibjpeg-openjpeg")`` for JPEG 2000; empty for
        the native (uncompressed) transfer syntaxes, which pydicom decodes itself.
    """
    return _PACKAGES.get(str(transfer_syntax), ())


def _missing(transfer_syntax: str) -> str:
    wanted = packages_for(transfer_syntax)
    absent = [dist for dist in wanted if not _installed(dist)]
    # All present but still unusable (too old, broken build): reinstall all of them.
    return " ".join(absent or wanted)


def _ts_label(transfer_syntax: str) -> str:
    name = _uid.UID(transfer_syntax).name
    if name and name != transfer_syntax:
        return f"{name} ({transfer_syntax})"
    return f"'{transfer_syntax}'"


def decoder_status() -> list[DecoderStatus]:
    """List every transfer syntax pydicom has a pixel data decoder for.

    Returns
    -------
    list of DecoderStatus
        In pydicom's order of transfer syntaxes (native first, then JPEG, JPEG-LS,
        JPEG 2000, HTJ2K, RLE). Video and JPIP transfer syntaxes, which pydicom cannot
        decode at all, are not listed.

    Examples
    --------
    >>> [s.name for s in decoder_status() if not s.available]  # doctest: +SKIP
    []
    """
    out = []
    for ts in _uid.AllTransferSyntaxes:
        try:
            decoder = get_decoder(ts)
        except NotImplementedError:
            continue
        available = bool(decoder.is_available)
        out.append(
            DecoderStatus(
                transfer_syntax=str(ts),
                name=_uid.UID(ts).name,
                available=available,
                missing="" if available else _missing(ts),
            )
        )
    return out


def check_decoder(transfer_syntax: str, path: str | os.PathLike[str] | None = None) -> None:
    """Raise unless pixel data in `transfer_syntax` can be decoded here.

    Parameters
    ----------
    transfer_syntax : str
        The file's (0002,0010) Transfer Syntax UID.
    path : str or os.PathLike, optional
        The file, named in the message.

    Raises
    ------
    PixelDataError
        When pydicom has no decoder for the transfer syntax at all (video, JPIP,
        JPEG 2000 Part 2 …) or none of its plug-ins is installed. The message names
        the file, the transfer syntax (name and UID) and the pip packages to install.
    """
    where = f"{os.fspath(path)}: " if path is not None else ""
    ts = str(transfer_syntax or "").strip()
    if not ts:
        raise PixelDataError(
            f"{where}no Transfer Syntax UID (0002,0010) in the file meta information, "
            "so its pixel data cannot be decoded; rewrite it as a DICOM file (PS3.10), "
            "e.g. with dcmtk's `dcmconv +xe`"
        )
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise PixelDataError(
            f"{where}pixel data in transfer syntax {_ts_label(ts)} cannot be decoded: "
            "pydicom has no decoder for it and no package adds one; convert the file to "
            "an uncompressed transfer syntax (e.g. dcmtk `dcmdjpeg`/`dcmconv` or "
            "`gdcmconv --raw`), or open it in a video-capable viewer"
        ) from None
    if decoder.is_available:
        return
    missing = _missing(ts)
    details = "; ".join(decoder.missing_dependencies)
    install = f"pip install {missing}" if missing else "install a pydicom decoding plug-in"
    raise PixelDataError(
        f"{where}no decoder is available for transfer syntax {_ts_label(ts)}; "
        f"install it with `{install}` and restart the kernel"
        + (f" (pydicom reports: {details})" if details else "")
    )

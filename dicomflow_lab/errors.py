"""The dicomflow_lab error tree.

Programmer errors (a wrong argument type, an unknown option) raise Python's built-in
exceptions. Everything that can go wrong at run time with data, files, the workspace or a
peer raises a subclass of :class:`DicomflowError`, whose message names the file, peer or
table involved and says what to do next.
"""

from __future__ import annotations

import os

__all__ = [
    "AnonymizationError",
    "AssociationError",
    "DicomReadError",
    "DicomflowError",
    "DicomwebError",
    "DimseError",
    "EditError",
    "PixelDataError",
    "StoreError",
    "StoreLockedError",
]


class DicomflowError(Exception):
    """Root of every run-time error raised by dicomflow_lab."""


class DicomReadError(DicomflowError):
    """A file could not be read as DICOM.

    Parameters
    ----------
    path : str or os.PathLike
        The file that failed.
    reason : str
        What is wrong with it, in words a user can act on.
    kind : str, optional
        A short machine-readable class of the failure, stored in ``index_errors.kind``:
        ``not_dicom``, ``empty``, ``truncated``, ``unreadable``, ``deflate_bomb``,
        ``too_deep``, ``invalid`` (default) ...
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, *, kind: str = "invalid"):
        self.path = os.fspath(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")


class PixelDataError(DicomflowError):
    """Pixel data could not be decoded (for example a decoder plug-in is missing)."""


class StoreError(DicomflowError):
    """The workspace database failed or refused an operation."""


class StoreLockedError(StoreError):
    """Another process kept the workspace database locked for longer than the timeout."""


class DicomwebError(DicomflowError):
    """A DICOMweb request failed (method, URL, status and a trimmed body in the message)."""


class DimseError(DicomflowError):
    """A DIMSE operation failed or returned a failure status."""


class AssociationError(DimseError):
    """An association could not be established, was rejected or was aborted."""


class AnonymizationError(DicomflowError):
    """An anonymization template, key or run failed."""


class EditError(DicomflowError):
    """An edit was refused (a VR / VM / character-set rule, or a missing element).

    Parameters
    ----------
    message : str
        The full message (path, keyword, tag, VR and rule).
    path, tag, vr, rule : str, optional
        The parts of the message, for a panel to show next to the field.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        tag: str | None = None,
        vr: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.path = path
        self.tag = tag
        self.vr = vr
        self.rule = rule
        super().__init__(message)

"""Deterministic, keyed UID remapping (original UID → ``2.25.<integer>``).

PS3.5 B.2 allows UIDs of the form ``2.25.<128-bit integer>`` derived from a UUID; we derive
the integer from an HMAC of the original UID under a sub-key of the user's key, so the same
UID always maps to the same new UID under the same key, across files, runs and machines,
and references between instances stay consistent.
"""

from __future__ import annotations

import hashlib
import hmac

from pydicom._uid_dict import UID_dictionary

from .keys import derive

__all__ = ["UidRemapper", "is_well_known_uid"]

_DICOM_ROOT = "1.2.840.10008."


def is_well_known_uid(uid: str) -> bool:
    """Return True for UIDs defined by the standard, which are never remapped.

    These are the UIDs of pydicom's UID dictionary (SOP classes, transfer syntaxes, coding
    schemes, well-known frames of reference ...) and any UID under the DICOM root
    ``1.2.840.10008.`` (PS3.6 Annex A): they name no patient, study or device.
    """
    uid = uid.strip().rstrip("\x00")
    return uid in UID_dictionary or uid.startswith(_DICOM_ROOT)


class UidRemapper:
    """Map original UIDs to new ``2.25.`` UIDs with a keyed hash.

    Parameters
    ----------
    key : str or bytes
        The user's secret key.

    Attributes
    ----------
    mapping : dict of str to str
        Every (original → new) pair this remapper produced, in first-seen order.

    Examples
    --------
    >>> r = UidRemapper("demo")
    >>> r("1.2.3") == UidRemapper("demo")("1.2.3")
    True
    >>> r("1.2.3").startswith("2.25.")
    True
    """

    def __init__(self, key: str | bytes) -> None:
        self._subkey = derive(key, "uid")
        self.mapping: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        """Return the new UID for ``uid`` (whitespace and NUL padding ignored)."""
        uid = str(uid).strip().rstrip("\x00").strip()
        new = self.mapping.get(uid)
        if new is None:
            digest = hmac.new(self._subkey, uid.encode("ascii", "replace"), hashlib.sha256)
            new = "2.25." + str(int.from_bytes(digest.digest()[:16], "big"))
            self.mapping[uid] = new
        return new

    def remap(self, uid: str) -> str:
        """Return ``uid`` itself if it is well known, else its new UID."""
        if not uid or is_well_known_uid(uid):
            return uid
        return self(uid)

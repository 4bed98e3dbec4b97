"""Defence in depth: the patient's own name and IDs masked in free text outside the table.

Table E.1-1 is a list of attributes; text attributes it does not list are kept. Devices
and people still type a patient's name or ID into such text (a Text Value inside a
Referenced Image Sequence, a protocol name, a private-looking comment in a standard
attribute). The engine keeps those attributes, but masks in them — byte for byte, so the
length and every other byte stay — the words that identify this instance's patient:
the components of Patient's Name, Patient ID, Other Patient IDs, Accession Number, Medical
Record Locator and the birth date. Matches are whole words only (``ANN`` does not match
inside ``SCANNER``), case-insensitive, in the ASCII, Latin-1 and UTF-8 encodings of each
token.
"""

from __future__ import annotations

import re
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

__all__ = ["FREE_TEXT_VRS", "mask_bytes", "mask_element", "patient_pattern"]

#: VRs of free text a person may type a name or ID into.
FREE_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})

_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "MedicalRecordLocator",
    "PatientBirthDate",
)
_SPLIT = re.compile(r"[\s^=,]+")
_MIN = 3  # shorter words would mask ordinary text


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value if v is not None]
    return [str(value)]


def patient_pattern(ds: Dataset) -> re.Pattern[bytes] | None:
    """Return a bytes pattern of the patient's identifying words, or None if there are none.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The original instance (top level only: the patient module).
    """
    words: set[str] = set()
    for text in _texts(ds.get("PatientName")):
        words.update(w for w in _SPLIT.split(text) if len(w) >= _MIN)
    for kw in _KEYWORDS:
        for text in _texts(ds.get(kw)):
            text = text.strip()
            if len(text) >= _MIN:
                words.add(text)
    encoded: set[bytes] = set()
    for word in words:
        for codec in ("ascii", "latin-1", "utf-8"):
            try:
                encoded.add(word.encode(codec))
            except UnicodeEncodeError:
                continue
    if not encoded:
        return None
    alternatives = b"|".join(re.escape(w) for w in sorted(encoded, key=lambda b: (-len(b), b)))
    return re.compile(
        rb"(?<![A-Za-z0-9\x80-\xff])(?:" + alternatives + rb")(?![A-Za-z0-9\x80-\xff])",
        re.IGNORECASE,
    )


def mask_bytes(data: bytes, pattern: re.Pattern[bytes]) -> bytes | None:
    """Return ``data`` with every match replaced by ``*`` of the same length, or None if none."""
    masked, count = pattern.subn(lambda m: b"*" * len(m.group(0)), data)
    return masked if count else None


def mask_element(
    elem: DataElement | RawDataElement, pattern: re.Pattern[bytes]
) -> DataElement | RawDataElement | None:
    """Return a copy of a text element with the pattern's words masked, or None if none.

    A raw element (as read from a file) is masked in its encoded bytes, so every other
    byte and the length stay; an element built in memory is masked in its UTF-8 text.
    """
    if isinstance(elem, RawDataElement):
        masked = mask_bytes(bytes(elem.value), pattern)
        return None if masked is None else elem._replace(value=masked)
    texts = _texts(elem.value)
    if not texts:
        return None
    joined = "\\".join(texts).encode("utf-8")
    masked = mask_bytes(joined, pattern)
    if masked is None:
        return None
    parts = masked.decode("utf-8", "replace").split("\\")
    return DataElement(elem.tag, elem.VR, parts[0] if len(parts) == 1 else parts)

"""The C (clean) action: values of similar meaning that do not identify (PS3.15 E.1.1).

What "clean" does depends on the value's VR:

- **text** (LO, SH, ST, LT, UT, UC, CS, UR): every identifying token of the instance is
  masked in place (same length, so VR length limits hold): the components of every
  person name in the instance, the patient's IDs, institution, department, station and
  address words, phone numbers, e-mail addresses, URLs, dates in common formats
  (``2024-03-05``, ``05.03.2024``, ``3/5/24``), and runs of five or more digits
  (IDs, accession numbers, compact dates). Deterministic: the same text and instance
  always give the same result.
- **AE**: a keyed pseudonym ``AE_<10 hex>`` (an application entity title names a device
  on the network, so no part of it can be kept).
- **DA / DT**: shifted by the patient's offset (Retain Longitudinal Temporal Information
  with Modified Dates); a value that does not parse becomes the dummy date.
- **TM**: kept: dates move by whole days, so the time of day reveals nothing new and
  stays consistent with the shifted dates.
- ``TimezoneOffsetFromUTC``: ``+0000``.
- **binary** (OB, OW, UN ...): zero bytes of the same length (a timestamp or overlay
  bitmap cannot be cleaned token by token).
- **PN**: the dummy name.

Sequences are cleaned by the engine, item by item (see :mod:`.engine`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .dates import DUMMY_DA, DUMMY_DT, shift_da, shift_dt

__all__ = ["TEXT_VRS", "Cleaner", "identifying_tokens", "scrub"]

TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "CS", "UR"})
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})

#: Keywords whose values (whole and word by word) are masked in cleaned text.
IDENTIFYING_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "MedicalRecordLocator",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "RegionOfResidence",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "PersonAddress",
    "PersonTelephoneNumbers",
    "ResponsibleOrganization",
    "MilitaryRank",
    "BranchOfService",
    "PatientReligiousPreference",
)
_KEYWORD_TAGS: tuple[int, ...] = ()

_GENERIC = re.compile(
    r"""
    https?://\S+                                   # URLs
  | [\w.+-]+@[\w-]+(?:\.[\w-]+)+                    # e-mail addresses
  | \b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b               # 2024-03-05, 2024/3/5
  | \b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b             # 05.03.2024, 3/5/24
  | \+?\(?\d[\d ()./-]{5,}\d                         # phone numbers
  | \d{5,}                                         # runs of 5+ digits
    """,
    re.VERBOSE,
)
_WORD_SPLIT = re.compile(r"[\s^=,;:/\\()\[\]\"'.-]+")


def _tags() -> tuple[int, ...]:
    global _KEYWORD_TAGS
    if not _KEYWORD_TAGS:
        from pydicom.datadict import tag_for_keyword

        _KEYWORD_TAGS = tuple(t for k in IDENTIFYING_KEYWORDS if (t := tag_for_keyword(k)))
    return _KEYWORD_TAGS


def _values(value: Any) -> Iterable[str]:
    if value is None:
        return ()
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def identifying_tokens(ds: Dataset, *, max_depth: int = 4) -> list[str]:
    """Return the identifying words and phrases of an instance, longest first.

    Person names (every PN element at any level up to ``max_depth``: each component,
    and each word of it), and the values and words of the attributes in
    :data:`IDENTIFYING_KEYWORDS`. Words shorter than 2 characters are left out.
    """
    found: set[str] = set()

    def add(text: str, words: bool) -> None:
        text = text.strip()
        if len(text) >= 2:
            found.add(text)
        if words:
            for w in _WORD_SPLIT.split(text):
                if len(w) >= 2 and not w.isdigit():
                    found.add(w)

    def walk(level: Dataset, depth: int) -> None:
        for elem in level:
            vr = elem.VR
            if vr == "SQ":
                if depth < max_depth:
                    for item in elem.value or ():
                        walk(item, depth + 1)
            elif vr == "PN":
                for v in _values(elem.value):
                    add(v.replace("^", " ").replace("=", " "), True)
            elif elem.tag in tags:
                for v in _values(elem.value):
                    add(v, True)

    tags = set(_tags())
    walk(ds, 0)
    return sorted(found, key=lambda s: (-len(s), s))


def _token_pattern(tokens: Iterable[str]) -> re.Pattern[str] | None:
    parts = []
    for tok in tokens:
        esc = re.escape(tok)
        if len(tok) <= 2:  # short tokens only as whole words
            parts.append(rf"(?<![^\W_]){esc}(?![^\W_])")
        else:
            parts.append(esc)
    if not parts:
        return None
    return re.compile("|".join(parts), re.IGNORECASE)


def scrub(text: str, pattern: re.Pattern[str] | None, fill: str = "*") -> str:
    """Mask identifying tokens and generic identifiers in ``text`` (same length)."""

    def mask(m: re.Match[str]) -> str:
        return "".join(c if c in " ^\\" else fill for c in m.group(0))

    text = _GENERIC.sub(mask, text)
    if pattern is not None:
        text = pattern.sub(mask, text)
    return text


class Cleaner:
    """Clean values of one instance.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The original instance (tokens are collected lazily, on the first text to clean).
    offset_days : int or None
        The patient's date offset; ``None`` gives dummy dates.
    pseudonym : callable
        ``pseudonym(kind, value) -> str`` keyed hash (for AE titles).
    """

    def __init__(
        self,
        ds: Dataset,
        offset_days: int | None,
        pseudonym: Callable[[str, str], str],
    ) -> None:
        self._ds = ds
        self._pattern: re.Pattern[str] | None = None
        self._ready = False
        self.offset_days = offset_days
        self._pseudonym = pseudonym

    @property
    def pattern(self) -> re.Pattern[str] | None:
        """The compiled pattern of this instance's identifying tokens."""
        if not self._ready:
            self._pattern = _token_pattern(identifying_tokens(self._ds))
            self._ready = True
        return self._pattern

    def text(self, value: Any, vr: str) -> Any:
        """Scrub a text value (each value of a multi-valued one)."""
        fill = "X" if vr in ("CS",) else "*"
        out = [scrub(v, self.pattern, fill) for v in _values(value)]
        if vr == "CS":
            out = [v.upper() for v in out]
        return out if len(out) != 1 else out[0]

    def value(self, tag: int, vr: str, value: Any) -> Any:
        """Return the cleaned value of an element (not a sequence)."""
        if tag == 0x00080201:  # TimezoneOffsetFromUTC
            return "+0000"
        if vr == "DA":
            if self.offset_days is None:
                return DUMMY_DA
            return shift_da("\\".join(_values(value)), self.offset_days)
        if vr == "DT":
            if self.offset_days is None:
                return DUMMY_DT
            return shift_dt("\\".join(_values(value)), self.offset_days)
        if vr == "TM":
            return value
        if vr == "AE":
            vals = [self._pseudonym("ae", v)[:13] for v in _values(value)]
            return ["AE_" + v for v in vals] if len(vals) != 1 else "AE_" + vals[0]
        if vr == "PN":
            return "ANONYMIZED"
        if vr in BINARY_VRS:
            data = bytes(value or b"")
            return b"\x00" * len(data)
        if vr in TEXT_VRS:
            return self.text(value, vr)
        return value  # numbers and the like: nothing identifying

"""Results of the engine and the small helpers it shares (element values, display)."""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pydicom.datadict import dictionary_VR, get_entry, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .dates import DUMMY_DA, DUMMY_DT, DUMMY_TM
from .profile import format_tag

__all__ = ["ActionRecord", "InstanceResult", "load_safe_private"]

_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN", "OB or OW", "US or OW"})
DUMMY_TEXT = "ANONYMIZED"
_DUMMY = {"DA": DUMMY_DA, "TM": DUMMY_TM, "DT": DUMMY_DT, "AS": "000Y", "DS": "0", "IS": "0"}


# -- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionRecord:
    """What the engine did to one element (the audit row; never a value unless asked).

    Attributes
    ----------
    path : str
        Element path as :mod:`dicomflow_lab.core.tags` writes it, e.g.
        ``(0008,1115)[0].(0008,1155)``; file meta elements are written as their tag.
    tag : int
    keyword : str
        ``""`` if the dictionary has none.
    vr : str
    action : str
        The simple code applied (``X``, ``Z``, ``D``, ``U``, ``K``, ``C``), an override
        (``keep``, ``replace``, ``remove``, ``hash``), or ``replace`` for the attributes
        the engine adds.
    rule : str
        Why: ``basic:X/Z/D``, ``option:retain_uids:K``, ``override:(0010,0010)``,
        ``private``, ``private:safe``, ``unknown``, ``not-in-table``,
        ``uid-not-in-table``, ``clean-sequence:basic:X``, ``deid-attr`` ...
    old_hash : str or None
        Keyed hash (:func:`.keys.value_hash`) of the old value; ``None`` if absent.
    before, after : str or None
        Display values, only when the anonymizer records values (preview).
    """

    path: str
    tag: int
    keyword: str
    vr: str
    action: str
    rule: str
    old_hash: str | None
    before: str | None = None
    after: str | None = None


@dataclass
class InstanceResult:
    """The outcome of de-identifying one instance."""

    source: str | None
    dataset: Dataset | None
    records: list[ActionRecord]
    quarantined: str | None = None
    warnings: list[str] = field(default_factory=list)
    uid_map: dict[str, str] = field(default_factory=dict)
    patient: tuple[str, str] | None = None
    date_offset_days: int | None = None
    pixel_rule: str | None = None
    kept_unrecorded: int = 0

    def counts(self) -> dict[str, int]:
        """Return how many elements got each action, e.g. ``{"X": 12, "U": 4, ...}``.

        K includes the elements outside the table kept as read, which have no record
        unless values are recorded (preview): the counts are the same either way.
        """
        counts = Counter(r.action for r in self.records)
        if self.kept_unrecorded:
            counts["K"] += self.kept_unrecorded
        return dict(sorted(counts.items()))


# -- safe private list ------------------------------------------------------------------


@functools.cache
def load_safe_private() -> frozenset[tuple[str, int, int]]:
    """Return the packaged safe-private list as ``(creator, group, element byte)`` triples.

    The list (``data/safe-private.json``) holds documented rows of PS3.15 Table E.3.10-1;
    see the file for each entry's meaning and source.
    """
    text = resources.files(__package__).joinpath("data", "safe-private.json").read_text("utf-8")
    out = set()
    for entry in json.loads(text)["entries"]:
        tag = entry["tag"].upper()
        out.add((entry["creator"].strip(), int(tag[1:5], 16), int(tag[8:10], 16)))
    return frozenset(out)


@functools.cache
def dict_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


@functools.cache
def known(tag: int) -> bool:
    try:
        get_entry(tag)
    except KeyError:
        return False
    return True


@functools.cache
def keyword(tag: int) -> str:
    return keyword_for_tag(tag) or ""


def values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def dummy(vr: str, value: Any) -> Any:
    if vr in _DUMMY:
        return _DUMMY[vr]
    if vr in _NUMBER_VRS:
        return 0
    if vr in BINARY_VRS:
        n = len(value) if isinstance(value, bytes | bytearray) else 0
        return b"\x00" * max(2, n + (n % 2))
    if vr == "AT":
        return 0
    return DUMMY_TEXT


def raw_text(raw: RawDataElement) -> str:
    data = raw.value or b""
    return data.decode("ascii", "replace").rstrip("\x00 ")


def display(elem: DataElement | None) -> str | None:
    if elem is None:
        return None
    from ..core.tags import display_value

    return display_value(elem)


def path(prefix: str, tag: int) -> str:
    return prefix + format_tag(tag)


def uid_text(value: Any) -> list[str]:
    return [str(v).strip().rstrip("\x00") for v in values(value)]


def as_display_element(
    raw: DataElement | RawDataElement, src: Dataset, tag: int
) -> DataElement | None:
    """Return ``raw`` as a DataElement for display (values recorded in previews only)."""
    if not isinstance(raw, RawDataElement):
        return raw
    from pydicom.dataelem import convert_raw_data_element

    try:
        return convert_raw_data_element(raw, encoding=src._character_set, ds=None)
    except Exception:  # a malformed value: show its length only
        return DataElement(tag, "OB", bytes(raw.value or b""))


def as_element(elem: DataElement | RawDataElement) -> DataElement | None:
    if isinstance(elem, RawDataElement):
        from pydicom.dataelem import convert_raw_data_element

        try:
            return convert_raw_data_element(elem)
        except Exception:
            return None
    return elem

"""What identifies, and how it is searched for: the rules behind :func:`.verify.verify`.

Private to :mod:`.verify` (split out to keep modules small). The rules are described in
the docstring of :mod:`dicomflow_lab.anonymize.verify`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydicom.charset import TEXT_VR_DELIMS, convert_encodings, decode_bytes, encode_string
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID_dictionary

from .profile import Action, Option, resolve_action, row_for
from .templates import Template, load_template

logger = logging.getLogger(__name__)

_PIXEL_DATA = 0x7FE00010
_SKIP_VALUE_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_DEFLATED = "1.2.840.10008.1.2.1.99"
_DICOM_ROOT = "1.2.840.10008."
_DUMMIES = frozenset({"19000101", "000000", "19000101000000"})
_TRIVIAL_CHARS = frozenset("0 .:-^=\\/,")
# Placeholder words that tell nothing (an engine may write them as dummy values).
_PLACEHOLDERS = frozenset(
    {"unknown", "none", "null", "n/a", "anon", "anonymous", "anonymized", "anonymised"}
    | {"removed", "dummy", "unspecified", "redacted", "deidentified", "de-identified"}
)
# File meta elements the table does not list that still identify a site or device.
_META_IDENTIFYING = frozenset(
    {0x00020016, 0x00020017, 0x00020018, 0x00020026, 0x00020027, 0x00020028, 0x00020102}
)
_TEXT_VRS = frozenset({"LT", "ST", "UT"})
_KIND_PRIORITY = {"name": 0, "id": 1, "date": 2, "address": 3, "text": 4, "other": 5}
_UID_VALUE = re.compile(r"\d+(?:\.\d+){2,}")  # searched for: three components or more
_MIN_ROOT = 12  # an original UID this long or longer is also searched as a UID root
_UID_TOKEN = re.compile(r"\d+(?:\.\d+)+")
_UID_TOKEN_B = re.compile(rb"\d+(?:\.\d+)+")
_WORDS = re.compile(r"[\s,]+")
_LINES = re.compile(r"[\r\n]+")


# -- the original side: what identifies -------------------------------------------------


@dataclass(frozen=True)
class _Origin:
    """Where an identifying value came from (its first, most telling occurrence)."""

    attribute: str
    kind: str


@dataclass
class _Instance:
    """What verify keeps of one original or output (never the whole dataset)."""

    label: str
    path: Path | None
    dataset: Dataset | None
    readable: bool = True
    sop_uid: str = ""
    sop_class: str = ""
    instance_number: str = ""
    media_sop_uid: str | None = None
    ts: str = ""
    rows: int | None = None
    columns: int | None = None
    frames: str = ""
    manufacturer: str = ""
    model: str = ""
    pixel_hash: str | None = None
    burned_in: bool = False  # Burned In Annotation = YES
    uid_paths: dict[str, str] = field(default_factory=dict)
    date_paths: dict[str, str] = field(default_factory=dict)  # DA/DT values by path
    kept_uid_paths: frozenset[str] = frozenset()  # originals: UID elements with action K
    retained: str = ""  # lower-cased text of the retained attributes (originals only)
    retained_uids: frozenset[str] = frozenset()
    cleaned: str = ""  # lower-cased text of the cleaned (C) attributes (originals only)
    identifying: frozenset[str] = frozenset()  # this original's own search values
    whole_keys: frozenset[str] = frozenset()  # of these, the whole element values
    retained_values: frozenset[str] = frozenset()  # whole values of retained attributes
    hits: list[tuple[str, str, str, str]] = field(default_factory=list)
    # (check, location, value key, output attribute)


#: Coded-concept attributes: terminology (CodeValue, CodeMeaning, scheme), not identity.
_TERMINOLOGY_TAGS = frozenset(
    {
        0x00080100,  # CodeValue
        0x00080102,  # CodingSchemeDesignator
        0x00080103,  # CodingSchemeVersion
        0x00080104,  # CodeMeaning
        0x00080105,  # MappingResource
        0x00080119,  # LongCodeValue
        0x00080120,  # URNCodeValue
        0x00080122,  # MappingResourceName
    }
)


def _keyword(tag: int) -> str:
    return keyword_for_tag(tag) or ""


def _fmt(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _attr_name(tag: int) -> str:
    return _keyword(tag) or _fmt(tag)


@functools.lru_cache(maxsize=1)
def _packaged_safe_private() -> frozenset[tuple[str, int, int]]:
    """Read ``data/safe-private.json`` if it exists (written by the engine's author)."""
    try:
        text = (
            resources.files(__package__)
            .joinpath("data", "safe-private.json")
            .read_text(encoding="utf-8")
        )
    except (OSError, FileNotFoundError):
        return frozenset()
    try:
        data = json.loads(text)
    except ValueError:
        logger.warning("data/safe-private.json is not valid JSON; no packaged safe list used")
        return frozenset()
    return frozenset(_parse_safe_items(data))


def _parse_safe_items(data: Any) -> Iterator[tuple[str, int, int]]:
    if isinstance(data, dict):
        for key in ("entries", "safe_private", "elements", "items", "attributes"):
            if isinstance(data.get(key), list):
                yield from _parse_safe_items(data[key])
                return
        return
    if not isinstance(data, list):
        return
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("creator"), str):
            continue
        tag = str(item.get("tag", "")).strip().upper()
        m = re.fullmatch(r"\(?([0-9A-F]{4}),?\s*(?:XX)?([0-9A-F]{2,4})\)?", tag)
        if m is None:
            continue
        yield item["creator"].strip(), int(m.group(1), 16), int(m.group(2), 16) & 0xFF


class _Rules:
    """The template, reduced to what verify needs."""

    def __init__(self, template: Template | str | os.PathLike[str], min_length: int):
        tpl = template if isinstance(template, Template) else load_template(template)
        self.template = tpl
        self.options = tpl.options
        self.safe: frozenset[tuple[str, int, int]] = frozenset()
        if Option.RETAIN_SAFE_PRIVATE in tpl.options:
            self.safe = _packaged_safe_private() | {
                (s.creator.strip(), s.group, s.element) for s in tpl.safe_private
            }
        self.safe_creators = frozenset(c for c, _, _ in self.safe)
        self.retain_uids = Option.RETAIN_UIDS in tpl.options
        self.shifts_dates = Option.RETAIN_LONG_MODIFIED_DATES in tpl.options
        self.min_length = max(1, int(min_length))
        self._cache: dict[tuple[int, str, bool], str] = {}

    def public(self, tag: int, vr: str, is_meta: bool) -> str:
        """Disposition of a public element: K retained, X identifying, C cleaned."""
        key = (tag, vr, is_meta)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._public(tag, vr, is_meta)
        return hit

    def _public(self, tag: int, vr: str, is_meta: bool) -> str:
        ov = self.template.override_for(tag)
        if ov is not None:
            return "K" if ov.action.value == "keep" else "X"
        action = resolve_action(tag, self.options)
        if action is None:
            if is_meta:
                return "X" if tag in _META_IDENTIFYING else "K"
            return "K" if (_keyword(tag) and vr != "UN") else "X"
        if action is Action.K:
            return "K"
        if action is Action.C:
            if vr in ("DA", "DT"):
                return "X"
            return "K" if vr == "TM" else "C"
        if vr == "SQ" and action in (Action.U, Action.X_Z_U):
            return "K"  # items kept, the UIDs inside follow their own action
        return "X"

    def listed(self, tag: int) -> bool:
        """Return True if Table E.1-1 lists ``tag`` (exactly or by a group mask)."""
        return row_for(tag) is not None and not tag >> 16 & 1

    def private(self, tag: int, creator: str | None) -> str:
        ov = self.template.override_for(tag)
        if ov is not None:
            return "K" if ov.action.value == "keep" else "X"
        if not self.safe or creator is None:
            return "X"
        group, elem = tag >> 16, tag & 0xFFFF
        if elem < 0x1000:  # a private creator element
            return "K" if creator in self.safe_creators else "X"
        return "K" if (creator, group, elem & 0xFF) in self.safe else "X"


def _kind(tag: int, vr: str) -> str:
    if vr == "PN":
        return "name"
    if vr in ("DA", "DT", "TM"):
        return "date"
    kw = _keyword(tag)
    if any(w in kw for w in ("Address", "Telephone", "Location", "Country", "Region")):
        return "address"
    if kw.endswith(("ID", "IDs", "Number", "Numbers", "Identifier")) or "ID" in kw[-4:]:
        return "id"
    if vr in _TEXT_VRS or vr == "UC" or any(w in kw for w in ("Comment", "History", "Note")):
        return "text"
    return "other"


def _is_trivial(value: str) -> bool:
    return (
        value in _DUMMIES
        or set(value) <= _TRIVIAL_CHARS
        or len(set(value)) == 1
        or value.lower() in _PLACEHOLDERS
    )


def _is_well_known(uid: str) -> bool:
    return uid.startswith(_DICOM_ROOT) or uid in UID_dictionary


def _strings(value: Any) -> list[str]:
    """Return the element's values as strings (multi-values split), empty ones dropped."""
    if value is None:
        return []
    items = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    out = []
    for item in items:
        text = _bytes_text(bytes(item)) if isinstance(item, (bytes, bytearray)) else str(item)
        text = text.strip(" \x00")
        if text:
            out.append(text)
    return out


def _bytes_text(data: bytes) -> str:
    """Bytes as text when they look like text (a UN element holding a string), else ''."""
    if not data or len(data) > 65536:
        return ""
    printable = sum(32 <= b < 127 or b >= 0xA0 or b in (9, 10, 13) for b in data)
    if printable < 0.9 * len(data.rstrip(b"\x00")):
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _search_values(vr: str, value: Any, min_length: int) -> Iterator[tuple[str, bool, bool]]:
    """Yield ``(value, date_like, whole)`` for each search value of an identifying element.

    ``whole`` marks an element's value itself (not a part of it): such a value stops being
    identifying only when a retained attribute holds exactly it, while a part (a name's
    word, a line of text, the date of a DT) stops when a retained attribute contains it.
    """
    for text in _strings(value):
        if vr == "PN":
            yield from _name_values(text, min_length)
        elif vr == "DA":
            for part in text.split("-"):
                if len(part) >= 8:
                    yield part, True, True
        elif vr == "DT":
            if len(text) >= 8 and text[:8].isdigit():
                yield text, True, True
                yield text[:8], True, False
        elif vr == "TM":
            if len(text) >= 6 and text[:6].isdigit():
                yield text, True, True
                yield text[:6], True, False
        else:
            yield text, False, True
            if vr in _TEXT_VRS:
                for line in _LINES.split(text):
                    yield line.strip(), False, False


def _name_values(text: str, min_length: int) -> Iterator[tuple[str, bool, bool]]:
    yield text.rstrip("^= "), False, True
    for group in text.split("="):
        group = group.strip("^ ")
        yield group, False, True
        for comp in group.split("^"):
            comp = comp.strip()
            yield comp, False, False
            for word in _WORDS.split(comp):
                if len(word) >= min_length:
                    yield word, False, False


def _retained_text(vr: str, value: Any) -> str:
    if vr == "SQ" or value is None:
        return ""
    return "\\".join(_strings(value))


_TEXT_VALUE_VRS = frozenset(
    [
        "AE",
        "AS",
        "CS",
        "DA",
        "DS",
        "DT",
        "IS",
        "LO",
        "LT",
        "PN",
        "SH",
        "ST",
        "TM",
        "UC",
        "UI",
        "UR",
        "UT",
    ]
)
_SINGLE_VALUE_VRS = frozenset({"LT", "ST", "UT", "UR"})
_CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_BYTES_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
_PN_DELIMS = {0x5E, 0x3D}
_DEFAULT_ENCODINGS = ["iso8859"]
_vr_cache: dict[int, str] = {}


def _dict_vr(tag: int) -> str:
    vr = _vr_cache.get(tag)
    if vr is None:
        try:
            vr = dictionary_VR(tag).split(" ")[0] if not tag >> 16 & 1 else "UN"
        except KeyError:
            vr = "UN"
        _vr_cache[tag] = vr
    return vr


def _level_encodings(ds: Dataset, parent: list[str]) -> list[str]:
    """Return the Python codecs of a dataset level (its Specific Character Set or the parent's)."""
    if 0x00080005 not in ds._dict:
        return parent
    try:
        value = ds[0x00080005].value
    except Exception:  # an unreadable character set: fall back to the default
        return _DEFAULT_ENCODINGS
    names = [value] if isinstance(value, str) else list(value or [])
    try:
        return list(convert_encodings(names)) if names else _DEFAULT_ENCODINGS
    except (LookupError, ValueError):
        return _DEFAULT_ENCODINGS


def _decode(vr: str, data: bytes, encodings: list[str]) -> list[str]:
    if data.isascii() or vr not in _CHARSET_VRS:
        text = data.decode("latin-1")
    else:
        try:
            delims = _PN_DELIMS if vr == "PN" else TEXT_VR_DELIMS
            text = decode_bytes(data, encodings, delims)
        except Exception:  # undecodable bytes: keep them searchable as Latin-1
            text = data.decode("latin-1")
    parts = [text] if vr in _SINGLE_VALUE_VRS else text.split("\\")
    return [p.strip(" \x00") for p in parts if p.strip(" \x00")]


def _items(ds: Dataset, encodings: list[str]) -> Iterator[tuple[int, str, Any]]:
    """Yield ``(tag, VR, value)`` for one level, decoding raw elements directly.

    ``value`` is a list of strings for text VRs, bytes for binary VRs, a list of item
    datasets for sequences and None for binary numbers. Decoding raw bytes here avoids
    pydicom's per-element conversion (the bulk of the time on large headers); elements
    that cannot be read are skipped (the raw-bytes search still covers them).
    """
    for tag, elem in list(ds._dict.items()):
        tag = int(tag)
        try:
            if isinstance(elem, RawDataElement):
                vr = str(elem.VR or _dict_vr(tag))
                if vr == "SQ" or (vr == "UN" and elem.length == 0xFFFFFFFF):
                    yield tag, "SQ", list(ds[tag].value or [])
                    continue
                data = elem.value
                if data is None:
                    continue
                if vr in _TEXT_VALUE_VRS:
                    yield tag, vr, _decode(vr, bytes(data), encodings)
                elif vr in _BYTES_VRS:
                    yield tag, vr, bytes(data)
                continue
            vr = str(elem.VR)
            value = elem.value
            if vr == "SQ":
                yield tag, vr, list(value or [])
            elif isinstance(value, (bytes, bytearray)):
                yield tag, vr, bytes(value)
            elif vr in _TEXT_VALUE_VRS:
                yield tag, vr, _strings(value)
        except Exception as exc:  # pydicom raises many kinds on malformed elements
            logger.debug("verify: element %s not readable (%s)", _fmt(tag), type(exc).__name__)


class _OriginalWalker:
    """Collect one original's identifying values, retained text and UID positions."""

    def __init__(self, rules: _Rules):
        self.rules = rules
        self.values: list[tuple[str, _Origin, bool]] = []
        self.retained_values: set[str] = set()
        self.uids: list[tuple[str, _Origin]] = []
        self.retained: list[str] = []
        self.cleaned: list[str] = []
        self.kept_uid_paths: set[str] = set()
        self.date_paths: dict[str, str] = {}
        self.uid_paths: dict[str, str] = {}

    def walk(
        self, ds: Dataset, prefix: str, state: str, is_meta: bool, encodings: list[str]
    ) -> None:
        encodings = _DEFAULT_ENCODINGS if is_meta else _level_encodings(ds, encodings)
        items = list(_items(ds, encodings))
        creators = {
            (tag >> 16, tag & 0xFF): value[0].strip()
            for tag, vr, value in items
            if tag >> 16 & 1 and 0x10 <= tag & 0xFFFF <= 0xFF and vr != "SQ" and value
            if isinstance(value, list) and isinstance(value[0], str)
        }
        for tag, vr, value in items:
            if tag & 0xFFFF == 0 or tag in _SKIP_VALUE_TAGS:
                continue
            path = prefix + _fmt(tag)
            if tag >> 16 & 1:
                if 0x10 <= tag & 0xFFFF <= 0xFF:  # a private creator names its block
                    creator = creators.get((tag >> 16, tag & 0xFF))
                else:
                    creator = creators.get((tag >> 16, (tag >> 8) & 0xFF))
                own = self.rules.private(tag, creator)
            else:
                own = self.rules.public(tag, vr, is_meta)
            if vr == "UI" and own == "K" and self.rules.retain_uids:
                pass  # Retain UIDs keeps UIDs wherever they sit, dummied sequences too
            elif own == "K" and state == "X" and not is_meta and self.rules.listed(tag):
                # an option keeps it (Retain UIDs, full dates, the time of day under
                # modified dates...) inside a dummied sequence too: the table decides
                # for the attributes it lists, wherever they sit
                pass
            elif state == "X":
                own = "X"
            elif state == "C" and own == "K":
                own = "C"
            if vr == "SQ":
                for i, item in enumerate(value):
                    self.walk(item, f"{path}[{i}].", own, is_meta, encodings)
                continue
            if value is None:
                continue
            if vr in ("DA", "DT") and value and not is_meta:
                self.date_paths[path] = value[0]
            if vr == "UI":
                key = ("meta:" if is_meta else "") + path
                for uid in _strings(value):
                    self.uid_paths[key] = uid
                    if own == "K":
                        self.retained.append(uid.lower())
                        self.kept_uid_paths.add(key)
                    elif own == "X" and _UID_VALUE.fullmatch(uid) and not _is_well_known(uid):
                        self.uids.append((uid, _Origin(_attr_name(tag), "uid")))
                continue
            if own in ("K", "C"):
                text = _retained_text(vr, value)
                if text:
                    (self.retained if own == "K" else self.cleaned).append(text.lower())
                    if own == "K":
                        self.retained_values.add(text.lower())
                        self.retained_values.update(t.lower() for t in text.split("\\"))
            elif own == "X":
                if vr in ("OB", "OW", "OD", "OF", "OL", "OV") and not (tag >> 16 & 1):
                    continue  # public bulk data is not text
                if vr in ("CS", "DS", "IS") or tag in _TERMINOLOGY_TAGS:
                    continue  # defined terms, numbers and coded concepts name no one
                origin = _Origin(_attr_name(tag), _kind(tag, vr))
                for text, date_like, whole in _search_values(vr, value, self.rules.min_length):
                    if (date_like or len(text) >= self.rules.min_length) and not _is_trivial(text):
                        self.values.append((text, origin, whole))


def _excluded(inst: _Instance, key: str, whole: bool, *, cleaned: bool = False) -> bool:
    """Whether the original ``inst`` keeps ``key``: exactly (whole values) or within text."""
    if key in inst.retained_values:
        return True
    if whole:
        return False
    return _contains(inst.retained, key) or (cleaned and _contains(inst.cleaned, key))


def _contains(corpus: str, key: str) -> bool:
    """Containment with the same digit-boundary rule as the search."""
    if key not in corpus:
        return False
    if not (key[0].isdigit() or key[-1].isdigit()):
        return True
    return _single_pattern(key).search(corpus) is not None


@functools.lru_cache(maxsize=8192)
def _single_pattern(key: str) -> re.Pattern[str]:
    return re.compile(_guarded(re.escape(key), key))


def _guarded(body: str, key: str) -> str:
    if key.isdigit() and len(key) < 6:
        return rf"(?<![0-9A-Za-z]){body}(?![0-9A-Za-z])"
    before = r"(?<!\d)" if key[0].isdigit() else ""
    after = r"(?!\d)" if key[-1].isdigit() else ""
    return before + body + after


# -- the search: one trie-shaped regex per run ------------------------------------------


def _trie_source(keys: Iterable[Any], esc: Any, sep: Any) -> Any:
    """Build a regex source (str or bytes) matching any of ``keys``, longest first.

    The alternation is shaped like a trie, so the regex engine follows one branch per
    character instead of trying every value at every position.
    """
    root: dict[Any, Any] = {}
    for key in keys:
        node = root
        for ch in key:
            node = node.setdefault(ch, {})
        node[None] = True
    if isinstance(sep, str):
        bar, opn, cls, opt = "|", "(?:", ")", "?"
    else:
        bar, opn, cls, opt = b"|", b"(?:", b")", b"?"

    def emit(node: dict[Any, Any]) -> Any:
        branches = []
        for ch in sorted(k for k in node if k is not None):
            child = node[ch]
            run = [esc(ch)]
            while len(child) == 1 and None not in child:
                (nxt,) = child
                run.append(esc(nxt))
                child = child[nxt]
            branches.append(sep.join(run) + emit(child))
        if not branches:
            return sep
        return opn + bar.join(branches) + cls + (opt if None in node else sep)

    return emit(root)


def _esc_byte(b: int) -> bytes:
    return re.escape(bytes([b]))


def _compile_keys(keys: list[Any]) -> Any:
    """One case-insensitive pattern for ``keys`` (all str or all bytes), with digit guards.

    Pure digit keys shorter than 6 match only between non-alphanumerics; other keys
    starting (ending) with a digit must not be preceded (followed) by a digit.
    """
    if not keys:
        return None
    text = isinstance(keys[0], str)
    esc = re.escape if text else _esc_byte
    sep = "" if text else b""

    def raw(src: str) -> Any:
        return src if text else src.encode("ascii")

    def ends_digit(k: Any) -> bool:
        return k[-1:].isdigit()

    short = [k for k in keys if k.isdigit() and len(k) < 6]
    rest = [k for k in keys if not (k.isdigit() and len(k) < 6)]
    parts = []
    for lead_digit in (True, False):
        for tail_digit in (True, False):
            sub = [k for k in rest if k[:1].isdigit() == lead_digit and ends_digit(k) == tail_digit]
            if sub:
                lead = raw(r"(?<!\d)") if lead_digit else sep
                tail = raw(r"(?!\d)") if tail_digit else sep
                parts.append(lead + _trie_source(sub, esc, sep) + tail)
    if short:
        parts.append(
            raw(r"(?<![0-9A-Za-z])") + _trie_source(short, esc, sep) + raw(r"(?![0-9A-Za-z])")
        )
    return re.compile(raw("|").join(parts), re.IGNORECASE)


class _Matcher:
    """Compiled search for a set of value keys (lower-case), in text and in bytes."""

    def __init__(self, keys: Iterable[str], variants: Mapping[str, set[str]]):
        self.keys = sorted(set(keys))
        self.variants = variants
        self.text: re.Pattern[str] | None = _compile_keys(self.keys)
        self._bytes: dict[tuple[str, ...], tuple[re.Pattern[bytes] | None, dict[bytes, str]]] = {}

    def bytes_for(
        self, codecs: tuple[str, ...]
    ) -> tuple[re.Pattern[bytes] | None, dict[bytes, str]]:
        """Return the bytes pattern and the encoded form → key map for these charsets."""
        cached = self._bytes.get(codecs)
        if cached is not None:
            return cached
        forms: dict[bytes, str] = {}
        for key in self.keys:
            encoded = set()
            if key.isascii():
                encoded.add(key.encode("ascii"))
            else:
                # Bytes patterns fold ASCII case only: add the original spellings too.
                texts = {key, key.upper(), *self.variants.get(key, ())}
                for text in texts:
                    for codec in ("latin-1", "utf-8", *codecs):
                        with contextlib.suppress(UnicodeError, LookupError):
                            encoded.add(text.encode(codec))
                    if codecs:
                        with contextlib.suppress(UnicodeError, LookupError, ValueError):
                            encoded.add(encode_string(text, list(codecs)))
            for form in encoded:
                forms.setdefault(form.lower(), key)
        result = (_compile_keys(sorted(forms)), forms)
        self._bytes[codecs] = result
        return result


def _finditer_overlapping(pattern: re.Pattern[Any], data: Any, start: int, stop: int):
    """Like finditer, but resumes one character after each match's start."""
    pos = start
    while pos < stop:
        m = pattern.search(data, pos, stop)
        if m is None:
            return
        yield m
        pos = m.start() + 1

"""Independent verification of de-identified output against the originals (PS3.15 E.1).

:func:`verify` does not trust the engine: it reads the originals and the outputs again,
decides from the profile table and the template's options alone which original values
identify (names, IDs, dates, times, UIDs, addresses, free text), and searches every output
for them. It imports nothing of the engine (``engine``, ``keys``, ``uids``, ``dates``,
``clean``, ``pseudonyms``), only the table (:mod:`.profile`) and the template
(:mod:`.templates`).

What counts as identifying
--------------------------
An element of an original is *retained* when its effective action is K: a template
override ``keep``; else the table's action under the template's options (K, or C on a
time, since a modified-dates shift keeps the time of day); elements the table does not
list and pydicom's dictionary knows are kept, as the engine keeps them. Unknown public
elements, VR UN and private elements are removed (identifying), except private elements
in the safe-private list (``data/safe-private.json`` plus the template's ``safe_private``)
and their creators when the template has Retain Safe Private. File meta elements follow
the table (Media Storage SOP Instance UID is U); the meta AE titles, presentation
addresses and private information are identifying, the rest is retained. Everything
inside a sequence that is removed, emptied or replaced (X, Z, D) is identifying (under
Retain UIDs its kept UIDs excepted); a sequence with U or ``X/Z/U*`` keeps its items, whose
elements follow their own actions; inside a C sequence only non-K elements identify.
C on text (Clean Descriptors and the like) is neither: the cleaned value may keep words
that identify nobody, and is covered by the search for all the other values.

From each identifying element the search values are: each value of a multi-valued
element; for PN each name, each component group (alphabetic, ideographic, phonetic),
each component and each word of a component; for LT/ST/UT the whole text and each line;
for DT also its date; for TM (6 digits or more) also ``HHMMSS``. Binary numbers, bulk
data, code strings (CS: defined terms such as ``DATE`` or ``IMAGE``), decimal and
integer strings (DS, IS) and coded concepts (Code Value, Code Meaning, Coding Scheme...)
are not search values: they name no one, and searching them finds the standard's own
words in every output. A value is ignored when it is shorter than ``min_length`` (dates
and UIDs excepted), when it is a dummy or placeholder (``19000101``, ``000000``, only
zeros, one repeated character, ``UNKNOWN``, ``ANONYMOUS``...), or when it also occurs in
a retained attribute of the same original (it is then legitimately in the output;
``strict=True`` narrows this for whole values to an exactly equal retained value). A hit
in an output is ignored when the value is not identifying for the output's own original
and that original holds it in a retained or cleaned attribute. Under modified dates, a
date element holding the original's date at the same place shifted by the output's
offset (the most common shift of the pair) is not a hit even when it equals another
original date. Pure digit values match only between non-digits (and between
non-alphanumerics when shorter than 6 digits) so that they are not found inside random
UIDs. Letters match case-insensitively.

UIDs: every UI value (three components or more) of an identifying element that is not
well-known (pydicom's UID dictionary or the DICOM root ``1.2.840.10008.``) must not occur
in an output, whole or as the root of a longer UID, in any element or in the file's bytes.
Under Retain UIDs the UIDs the options keep must instead be unchanged (the others, e.g.
rows added in 2026c, must still be replaced).

Where it searches
-----------------
Every element of every output at every level, file meta and private elements included
(bytes values decoded as Latin-1 and UTF-8), then the raw bytes of each output file (the
preamble, every element and anything after the dataset; only Pixel Data is left out,
which the pixel check covers) for each value encoded as ASCII, Latin-1, UTF-8 and in the
file's Specific Character Set. A value already found in an element of a file is not
reported again from the raw bytes. Deflated outputs and outputs given as datasets have
no raw-bytes search.
"""

from __future__ import annotations

import bisect
import datetime
import hashlib
import io
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset

from ..errors import AnonymizationError
from ._verify_rules import (
    _DEFLATED,
    _KIND_PRIORITY,
    _MIN_ROOT,
    _PIXEL_DATA,
    _SKIP_VALUE_TAGS,
    _UID_TOKEN,
    _UID_TOKEN_B,
    _UID_VALUE,
    _attr_name,
    _excluded,
    _finditer_overlapping,
    _fmt,
    _Instance,
    _is_well_known,
    _items,
    _level_encodings,
    _Matcher,
    _Origin,
    _OriginalWalker,
    _Rules,
)
from .profile import Option
from .templates import Template

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = ["COLUMNS", "assert_clean", "verify"]

logger = logging.getLogger(__name__)

#: Columns of the residual table returned by :func:`verify`.
COLUMNS = ("check", "file", "location", "attribute", "kind", "detail")

Source = "str | os.PathLike[str] | Dataset"
Inputs = "str | os.PathLike[str] | Dataset | Iterable[str | os.PathLike[str] | Dataset]"


# -- reading ------------------------------------------------------------------------------


def _iter_sources(inputs: Inputs) -> Iterator[Source]:
    if isinstance(inputs, Dataset):
        yield inputs
        return
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs)
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                rel = p.relative_to(path).parts
                if p.is_file() and not any(part.startswith(".") for part in rel):
                    yield p
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(f"no such file or folder: {os.fspath(inputs)!r}")
        return
    for item in inputs:
        if isinstance(item, Dataset):
            yield item
        else:
            yield from _iter_sources(item)


def _read(
    source: Source, index: int, *, want_bytes: bool
) -> tuple[_Instance, Dataset | None, bytes | None]:
    if isinstance(source, Dataset):
        label = f"<dataset {index}>" if want_bytes else f"<original dataset {index}>"
        return _Instance(label, None, source), source, None
    path = Path(source)
    data = path.read_bytes()
    inst = _Instance(str(path), path, None)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # any parse failure: not DICOM
        logger.debug("verify: %s is not readable as DICOM (%s)", path, type(exc).__name__)
        inst.readable = False
        return inst, None, data if want_bytes else None
    if "SOPInstanceUID" not in ds and "PixelData" not in ds and len(ds) < 3:
        inst.readable = False
        return inst, None, data if want_bytes else None
    return inst, ds, data if want_bytes else None


def _describe(inst: _Instance, ds: Dataset) -> tuple[int, int] | None:
    """Fill the pairing keys; return the Pixel Data byte range in the file, if known."""
    meta = getattr(ds, "file_meta", None)
    inst.sop_uid = str(ds.get("SOPInstanceUID", "") or "")
    inst.sop_class = str(ds.get("SOPClassUID", "") or "")
    inst.instance_number = str(ds.get("InstanceNumber", "") or "")
    inst.ts = str(getattr(meta, "TransferSyntaxUID", "") or "") if meta is not None else ""
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        inst.media_sop_uid = str(meta.MediaStorageSOPInstanceUID or "")
    inst.rows = _int_or_none(ds.get("Rows"))
    inst.columns = _int_or_none(ds.get("Columns"))
    inst.frames = str(ds.get("NumberOfFrames", "") or "")
    inst.manufacturer = str(ds.get("Manufacturer", "") or "")
    inst.model = str(ds.get("ManufacturerModelName", "") or "")
    inst.burned_in = str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES"
    region = None
    if _PIXEL_DATA in ds:
        raw = ds.get_item(_PIXEL_DATA)
        value = raw.value if raw is not None else None
        if isinstance(value, (bytes, bytearray)):
            inst.pixel_hash = hashlib.sha256(value).hexdigest()
            tell = getattr(raw, "value_tell", None)
            if tell is not None:
                extra = 8 if getattr(raw, "length", 0) == 0xFFFFFFFF else 0
                region = (int(tell), int(tell) + len(value) + extra)
    return region


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _charsets(ds: Dataset) -> tuple[str, ...]:
    value = ds.get("SpecificCharacterSet")
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else list(value)
    try:
        return tuple(convert_encodings(names))
    except (LookupError, ValueError):
        return ()


# -- the output side: where values occur ------------------------------------------------


def _output_segments(ds: Dataset) -> tuple[str, list[int], list[tuple[str, str]], dict[str, str]]:
    """Join every element's text; return text, segment starts, (location, keyword), UIDs."""
    parts: list[str] = []
    starts: list[int] = []
    where: list[tuple[str, str]] = []
    uid_paths: dict[str, str] = {}
    date_paths: dict[str, str] = {}
    pos = 0

    def add(text: str, location: str, kw: str) -> None:
        nonlocal pos
        starts.append(pos)
        where.append((location, kw))
        parts.append(text)
        pos += len(text) + 1

    def walk(node: Dataset, prefix: str, is_meta: bool, encodings: list[str]) -> None:
        encodings = ["iso8859"] if is_meta else _level_encodings(node, encodings)
        for tag, vr, value in _items(node, encodings):
            if tag in _SKIP_VALUE_TAGS:
                continue
            path = prefix + _fmt(tag)
            if vr == "SQ":
                for i, item in enumerate(value):
                    walk(item, f"{path}[{i}].", is_meta, encodings)
                continue
            if not value:
                continue
            location = ("file meta " if is_meta else "") + path
            kw = _attr_name(tag)
            if isinstance(value, bytes):
                texts = [value.decode("latin-1")]
                if not value.isascii():
                    texts.append(value.decode("utf-8", "ignore"))
                add("\x00".join(texts), location, kw)
                continue
            if vr == "UI":
                uid_paths[("meta:" if is_meta else "") + path] = value[0]
            elif vr in ("DA", "DT") and not is_meta:
                date_paths[path] = value[0]
            add("\\".join(value), location, kw)

    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        walk(meta, "", True, [])
    walk(ds, "", False, ["iso8859"])
    return "\x00".join(parts), starts, where, uid_paths, date_paths


# -- verify -------------------------------------------------------------------------------


class _Residual:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str, str]] = []
        self._seen: set[tuple[str, ...]] = set()

    def add(self, check: str, file: str, location: str, attribute: str, kind: str, detail: str):
        row = (check, file, location, attribute, kind, detail)
        if row not in self._seen:
            self._seen.add(row)
            self.rows.append(row)


def _mask(value: str) -> str:
    return f"{value[:1]}*** ({len(value)} chars)"


def verify(
    originals: Inputs,
    anonymized: Inputs,
    *,
    template: Template | str | os.PathLike[str] = "basic",
    uid_map: Mapping[str, str] | None = None,
    min_length: int = 4,
    quarantined: Iterable[str | os.PathLike[str]] = (),
    strict: bool = False,
) -> pd.DataFrame:
    """Check de-identified output against its originals, independently of the engine.

    Parameters
    ----------
    originals, anonymized : str, os.PathLike, pydicom.Dataset or iterable of these
        A folder (searched recursively, dot-files skipped), a file, a dataset, or an
        iterable of files and datasets. Non-DICOM files among the originals are skipped;
        among the outputs they get the raw-bytes search only.
    template : Template, str or os.PathLike
        The template the output was made with (a built-in name, a JSON path or a
        :class:`~dicomflow_lab.anonymize.Template`): its options, overrides and safe
        private list decide what is identifying, its pixel rules where pixels may change.
    uid_map : mapping of str to str, optional
        Original UID → new UID as the engine reports it. Used to pair instances (by SOP
        Instance UID) and to check every reference; without it, instances are paired by
        a hash of the Pixel Data bytes + SOP Class + Instance Number (then by SOP Class,
        Instance Number and image size), and the map is derived from the pairs.
    min_length : int
        Values shorter than this are not searched, except dates, times and UIDs.
    quarantined : iterable of str or os.PathLike
        Originals left out on purpose (burned-in text without a pixel rule): they need no
        counterpart, but their values are still searched for.
    strict : bool
        By default a value that also occurs anywhere in a retained attribute of the same
        original is not identifying (it is legitimately in the output). With ``strict``,
        an element's whole value (a name, an ID, a date) is excused only where a
        retained attribute holds exactly it, so that e.g. a Patient ID quoted inside a
        kept free-text element is reported; parts of values (a word of a name, a line of
        text) keep the containment rule.

    Returns
    -------
    pandas.DataFrame
        The residual table, empty when the output passes. Columns: ``check`` ("phi",
        "uid" or "pixels"), ``file`` (the output file, or the original for a missing
        counterpart), ``location`` (element path, ``file meta (0002,0003)``, ``raw bytes
        @<offset>``), ``attribute`` (keyword or tag of the original attribute whose value
        leaked, or of the element concerned), ``kind`` (name, id, date, uid, address,
        text, other) and ``detail`` (a sentence). No row contains an original value;
        a leaked value is shown masked, as its first character and its length.

    Raises
    ------
    FileNotFoundError
        If a given file or folder does not exist.
    TemplateError
        If the template cannot be loaded.

    Notes
    -----
    The rules for what identifies are in this module's docstring. UID checks: no
    original non-well-known UID of an identifying element survives (under Retain UIDs:
    the UIDs the options keep are unchanged); in each paired output every UID element
    whose original value is mapped (a UID of an instance in the set, or any UID of
    ``uid_map``) holds the mapped value at the same element path; an original UID is
    not replaced by two different UIDs, nor two by one; file meta Media Storage SOP
    Instance UID equals SOP Instance UID. Pixel check: paired outputs keep the Pixel
    Data bytes when the transfer syntax is unchanged, else equal decoded pixels. Where a
    template pixel rule matches the original (manufacturer, model, rows, columns
    compared exactly; None matches any) and the pixels changed, the pixels inside its
    rectangles must be zero and all others unchanged; unchanged pixels are accepted
    (an engine applies rules only to instances at risk) unless the original declares
    Burned In Annotation YES.

    Examples
    --------
    >>> residual = verify("study/", "anon/", template="basic")  # doctest: +SKIP
    >>> residual.empty  # doctest: +SKIP
    True
    """
    import pandas as pd

    rules = _Rules(template, min_length)
    residual = _Residual()
    skipped = {_norm(q) for q in quarantined}

    # 1. originals: identifying values, retained text, pairing keys, UID positions.
    registry: dict[str, _Origin] = {}
    variants: dict[str, set[str]] = defaultdict(set)
    uid_registry: dict[str, _Origin] = {}
    origs: list[_Instance] = []
    for i, source in enumerate(_iter_sources(originals)):
        inst, ds, _ = _read(source, i, want_bytes=False)
        if ds is None:
            continue
        _describe(inst, ds)
        walker = _OriginalWalker(rules)
        walker.walk(ds, "", "K", False, ["iso8859"])
        meta = getattr(ds, "file_meta", None)
        if meta is not None:  # after the dataset: SOPInstanceUID names the UID first
            walker.walk(meta, "", "K", True, [])
        inst.retained = "\x00".join(walker.retained)
        inst.uid_paths = walker.uid_paths
        inst.date_paths = walker.date_paths
        inst.kept_uid_paths = frozenset(walker.kept_uid_paths)
        inst.retained_uids = frozenset(u for u in walker.retained if _UID_VALUE.fullmatch(u))
        inst.cleaned = "\x00".join(walker.cleaned)
        inst.retained_values = frozenset(walker.retained_values)
        whole_keys = {text.lower() for text, _, whole in walker.values if whole}
        own_keys = set()
        for text, origin, _ in walker.values:
            key = text.lower()
            if key in own_keys or _excluded(inst, key, strict and key in whole_keys):
                continue
            own_keys.add(key)
            if not text.isascii():
                variants[key].add(text)
            old = registry.get(key)
            if old is None or _KIND_PRIORITY[origin.kind] < _KIND_PRIORITY[old.kind]:
                registry[key] = origin
        inst.identifying = frozenset(own_keys)
        inst.whole_keys = frozenset(whole_keys)
        for uid, origin in walker.uids:
            if uid not in inst.retained_uids:
                uid_registry.setdefault(uid, origin)
        inst.dataset = ds if isinstance(source, Dataset) else None
        origs.append(inst)
    logger.debug(
        "verify: %d originals, %d identifying values, %d UIDs",
        len(origs),
        len(registry),
        len(uid_registry),
    )

    # 2. outputs: search elements and raw bytes; keep pairing keys and UID positions.
    matcher = _Matcher(registry, variants)
    outs: list[_Instance] = []
    for i, source in enumerate(_iter_sources(anonymized)):
        inst, ds, data = _read(source, i, want_bytes=True)
        region = _describe(inst, ds) if ds is not None else None
        found: set[str] = set()
        if ds is not None:
            found = _search_elements(inst, ds, matcher, uid_registry, rules)
        if data is not None and (ds is None or inst.ts != _DEFLATED):
            codecs = _charsets(ds) if ds is not None else ()
            _search_raw(inst, data, region, codecs, matcher, uid_registry, found, rules)
        inst.dataset = ds if isinstance(source, Dataset) else None
        if ds is not None and inst.readable:
            outs.append(inst)
        else:
            _report_hits(inst, None, registry, uid_registry, residual, rules)

    # 3. pairing, then hits filtered by the paired original's retained values.
    pairs = _pair(origs, outs, uid_map, rules)
    paired_out = {id(a): o for o, a in pairs}
    for a in outs:
        _report_hits(a, paired_out.get(id(a)), registry, uid_registry, residual, rules)
    paired_orig = {id(o) for o, _ in pairs}
    for o in origs:
        if id(o) not in paired_orig and _norm(o.path or o.label) not in skipped:
            residual.add(
                "uid", o.label, "instance", "SOPInstanceUID", "uid",
                "no anonymized counterpart: no output pairs with this original",
            )  # fmt: skip
    for a in outs:
        if id(a) not in paired_out:
            residual.add(
                "uid", a.label, "instance", "SOPInstanceUID", "uid",
                "no original counterpart: pixels and references cannot be checked",
            )  # fmt: skip

    # 4. UIDs: meta == SOP, references consistent (or unchanged under Retain UIDs).
    _check_uids(pairs, outs, uid_map, rules, residual)

    # 5. pixels.
    for o, a in pairs:
        _check_pixels(o, a, rules, residual)

    return pd.DataFrame(residual.rows, columns=list(COLUMNS))


#: Where a de-identifier names what it did (PS3.15 E.1.1, C.7.1.1.1.3 / CID 7050).
_DEID_ATTRIBUTES = ("(0012,0063)", "(0012,0064)")


def _deid_vocabulary(rules: _Rules) -> frozenset[str]:
    """Words the standard (and the template's name) put in the de-identification method.

    An original value equal to one of them ("Patient", "Dates") found there is the
    standard's wording, not a leak; anywhere else it is still reported.
    """
    titles = [o.title for o in Option] + [
        "Basic Application Confidentiality Profile",
        "PS3.15 Basic Profile",
        rules.template.name,
    ]
    return frozenset(w.lower() for t in titles for w in re.split(r"[\s+_\-]+", t) if len(w) >= 3)


def _norm(p: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.abspath(os.fspath(p)))


def _search_elements(
    inst: _Instance,
    ds: Dataset,
    matcher: _Matcher,
    uid_registry: Mapping[str, _Origin],
    rules: _Rules,
) -> set[str]:
    text, starts, where, uid_paths, date_paths = _output_segments(ds)
    inst.uid_paths = uid_paths
    inst.date_paths = date_paths
    found: set[str] = set()
    if matcher.text is not None:
        vocabulary = _deid_vocabulary(rules)
        for m in _finditer_overlapping(matcher.text, text, 0, len(text)):
            key = m.group().lower()
            loc, kw = where[bisect.bisect_right(starts, m.start()) - 1]
            found.add(key)
            if loc.startswith(_DEID_ATTRIBUTES) and key in vocabulary:
                continue  # "Patient" of an ROI name vs "Retain Patient Characteristics"
            inst.hits.append(("phi", loc, key, kw))
    if uid_registry:
        for m in _UID_TOKEN.finditer(text):
            hit = _uid_hit(m.group(), uid_registry)
            if hit is not None:
                loc, kw = where[bisect.bisect_right(starts, m.start()) - 1]
                inst.hits.append(("uid", loc, hit, kw))
                found.add(hit)
    return found


def _uid_hit(token: str, uid_registry: Mapping[str, _Origin]) -> str | None:
    if token in uid_registry:
        return token
    for i, ch in enumerate(token):  # an original UID used as the root of a longer one
        if ch == "." and i >= _MIN_ROOT and token[:i] in uid_registry:
            return token[:i]
    return None


def _search_raw(
    inst: _Instance,
    data: bytes,
    region: tuple[int, int] | None,
    codecs: tuple[str, ...],
    matcher: _Matcher,
    uid_registry: Mapping[str, _Origin],
    found: set[str],
    rules: _Rules,
) -> None:
    spans = [(0, len(data))] if region is None else [(0, region[0]), (region[1], len(data))]
    pattern, forms = matcher.bytes_for(codecs)
    for start, stop in spans:
        if pattern is not None:
            for m in _finditer_overlapping(pattern, data, start, stop):
                key = forms.get(m.group().lower())
                if key is not None and key not in found:
                    inst.hits.append(("phi", f"raw bytes @{m.start()}", key, ""))
                    found.add(key)
        if uid_registry:
            for m in _UID_TOKEN_B.finditer(data, start, stop):
                hit = _uid_hit(m.group().decode("ascii"), uid_registry)
                if hit is not None and hit not in found:
                    inst.hits.append(("uid", f"raw bytes @{m.start()}", hit, ""))
                    found.add(hit)


def _report_hits(
    out: _Instance,
    orig: _Instance | None,
    registry: Mapping[str, _Origin],
    uid_registry: Mapping[str, _Origin],
    residual: _Residual,
    rules: _Rules,
) -> None:
    offset = _date_offset(orig, out) if orig is not None and rules.shifts_dates else None
    for check, location, key, out_attr in out.hits:
        if check == "phi":
            if offset is not None and _is_shifted(orig, out, location, offset):
                continue  # a shifted date that happens to equal another original date
            # Not identifying for this output's own original (a value it keeps), or
            # identifying in another original only and held by this one in a kept or
            # cleaned attribute: it came from there.
            if (
                orig is not None
                and key not in orig.identifying
                and (key in orig.whole_keys or _excluded(orig, key, False, cleaned=True))
            ):
                continue
            origin = registry[key]
            what = f"in {out_attr}" if out_attr else "in the file's bytes"
            detail = (
                f"identifying value of the original {origin.attribute} ({origin.kind}, "
                f"{_mask(key)}) found {what}"
            )
        else:
            if orig is not None and key in orig.retained_uids:
                continue
            origin = uid_registry[key]
            what = f"in {out_attr}" if out_attr else "in the file's bytes"
            detail = f"original UID of {origin.attribute} ({_mask(key)}) survives {what}"
        residual.add(check, out.label, location, origin.attribute, origin.kind, detail)


def _day(value: str) -> datetime.date | None:
    try:
        return datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, IndexError):
        return None


def _date_offset(orig: _Instance, out: _Instance) -> int | None:
    """Return the date shift (days) the output applied: the most common non-zero one."""
    diffs: Counter[int] = Counter()
    for path, old in orig.date_paths.items():
        new = out.date_paths.get(path)
        a, b = (_day(old), _day(new)) if new else (None, None)
        if a is not None and b is not None and a != b:
            diffs[(b - a).days] += 1
    return diffs.most_common(1)[0][0] if diffs else None


def _is_shifted(orig: _Instance, out: _Instance, location: str, offset: int) -> bool:
    """Whether the date element at ``location`` holds the original's date there, shifted."""
    old, new = orig.date_paths.get(location), out.date_paths.get(location)
    a, b = (_day(old), _day(new)) if old and new else (None, None)
    return a is not None and b is not None and (b - a).days == offset


def _pair(
    origs: list[_Instance],
    outs: list[_Instance],
    uid_map: Mapping[str, str] | None,
    rules: _Rules,
) -> list[tuple[_Instance, _Instance]]:
    pairs: list[tuple[_Instance, _Instance]] = []
    free = {id(a): a for a in outs}
    todo = list(origs)

    def take(candidates: list[_Instance], o: _Instance) -> _Instance | None:
        cands = [a for a in candidates if id(a) in free]
        if not cands:
            return None
        same_pixels = [a for a in cands if a.pixel_hash == o.pixel_hash]
        a = (same_pixels or cands)[0]
        del free[id(a)]
        return a

    by_sop: dict[str, list[_Instance]] = defaultdict(list)
    for a in outs:
        by_sop[a.sop_uid].append(a)
    if uid_map or rules.retain_uids:
        rest = []
        for o in todo:
            target = (uid_map or {}).get(o.sop_uid) or (o.sop_uid if rules.retain_uids else None)
            a = take(by_sop.get(target, []), o) if target else None
            if a is None:
                rest.append(o)
            else:
                pairs.append((o, a))
        todo = rest
    keyed: list[Any] = [
        lambda x: (x.pixel_hash, x.sop_class, x.instance_number) if x.pixel_hash else None,
        lambda x: (x.sop_class, x.instance_number, x.rows, x.columns, x.frames),
    ]
    for keyf in keyed:
        index: dict[Any, list[_Instance]] = defaultdict(list)
        for a in outs:
            if id(a) in free:
                index[keyf(a)].append(a)
        rest = []
        for o in todo:
            k = keyf(o)
            a = take(index.get(k, []), o) if k is not None else None
            if a is None:
                rest.append(o)
            else:
                pairs.append((o, a))
        todo = rest
    return pairs


_MAPPED_TOP = ("(0008,0018)", "(0020,000D)", "(0020,000E)", "(0020,0052)")


def _check_uids(
    pairs: list[tuple[_Instance, _Instance]],
    outs: list[_Instance],
    uid_map: Mapping[str, str] | None,
    rules: _Rules,
    residual: _Residual,
) -> None:
    for a in outs:
        if a.media_sop_uid is not None and a.media_sop_uid != a.sop_uid:
            residual.add(
                "uid", a.label, "file meta (0002,0003)", "MediaStorageSOPInstanceUID", "uid",
                "Media Storage SOP Instance UID differs from SOP Instance UID",
            )  # fmt: skip
    if rules.retain_uids:  # the UIDs the options keep (K) must be unchanged
        for o, a in pairs:
            for path in o.kept_uid_paths:
                if path.startswith("meta:") and path != "meta:(0002,0003)":
                    continue  # the implementation UID names the writing software
                old, new = o.uid_paths[path], a.uid_paths.get(path)
                if path == "meta:(0002,0003)" and new == a.sop_uid == o.sop_uid:
                    continue  # a file meta that disagreed with its dataset, made to agree
                if new is not None and new != old and not _is_well_known(old):
                    residual.add(
                        "uid", a.label, _loc(path), _path_attr(path), "uid",
                        "UID changed although the template retains UIDs",
                    )  # fmt: skip
    mapping: dict[str, str] = dict(uid_map or {})
    if not uid_map:
        seen: dict[str, set[str]] = defaultdict(set)
        back: dict[str, set[str]] = defaultdict(set)
        labels: dict[str, str] = {}
        for o, a in pairs:
            for path in _MAPPED_TOP:
                if rules.retain_uids and path in o.kept_uid_paths:
                    continue
                old, new = o.uid_paths.get(path), a.uid_paths.get(path)
                if old and new and not _is_well_known(old):
                    if old in seen and new not in seen[old]:
                        residual.add(
                            "uid", a.label, path, _path_attr(path), "uid",
                            f"the original {_path_attr(path)} was replaced by more than one "
                            "UID across the output",
                        )  # fmt: skip
                    seen[old].add(new)
                    back[new].add(old)
                    labels.setdefault(new, a.label)
                    mapping.setdefault(old, new)
        for new, olds in back.items():
            if len(olds) > 1:
                residual.add(
                    "uid", labels[new], "instance", "SOPInstanceUID", "uid",
                    f"{len(olds)} different original UIDs were mapped to one output UID",
                )  # fmt: skip
    for o, a in pairs:
        for path, old in o.uid_paths.items():
            if path.startswith("meta:") or (rules.retain_uids and path in o.kept_uid_paths):
                continue  # checked above
            new = a.uid_paths.get(path)
            expected = mapping.get(old)
            if new is None or expected is None or new in (old, expected):
                continue
            residual.add(
                "uid", a.label, _loc(path), _path_attr(path), "uid",
                "reference inconsistent: the output does not hold the new UID given to "
                "the original it referred to",
            )  # fmt: skip


def _loc(path: str) -> str:
    return "file meta " + path[5:] if path.startswith("meta:") else path


def _path_attr(path: str) -> str:
    last = path.rsplit(".", 1)[-1][-11:]
    try:
        tag = int(last[1:5] + last[6:10], 16)
    except ValueError:
        return last
    return _attr_name(tag)


# -- pixels -------------------------------------------------------------------------------


def _rule_for(o: _Instance, rules: _Rules) -> Any:
    for rule in rules.template.pixel_rules:
        if rule.manufacturer is not None and rule.manufacturer.strip() != o.manufacturer.strip():
            continue
        if rule.model is not None and rule.model.strip() != o.model.strip():
            continue
        if rule.rows is not None and rule.rows != o.rows:
            continue
        if rule.columns is not None and rule.columns != o.columns:
            continue
        return rule
    return None


def _pixels(inst: _Instance) -> np.ndarray:
    ds = inst.dataset if inst.dataset is not None else pydicom.dcmread(inst.path, force=True)
    return ds.pixel_array


def _check_pixels(o: _Instance, a: _Instance, rules: _Rules, residual: _Residual) -> None:
    import numpy as np

    if o.pixel_hash is None and a.pixel_hash is None:
        return
    if o.pixel_hash is None or a.pixel_hash is None:
        which = "missing from the output" if a.pixel_hash is None else "added to the output"
        residual.add("pixels", a.label, "(7FE0,0010)", "PixelData", "other", f"Pixel Data {which}")
        return
    rule = _rule_for(o, rules) if rules.template.pixel_rules else None
    if o.pixel_hash == a.pixel_hash and o.ts == a.ts:
        # Unchanged pixels are right unless a matching rule had to black out text the
        # original declares (an engine applies rules only to instances at risk).
        if rule is not None and o.burned_in:
            residual.add(
                "pixels", a.label, "(7FE0,0010)", "PixelData", "other",
                "the original declares burned-in annotation and a pixel rule matches, but "
                "the pixels are unchanged",
            )  # fmt: skip
        return
    if rule is None and o.ts == a.ts:
        residual.add(
            "pixels", a.label, "(7FE0,0010)", "PixelData", "other",
            "Pixel Data bytes changed although the transfer syntax is unchanged and no "
            "pixel rule applies",
        )  # fmt: skip
        return
    try:
        before, after = _pixels(o), _pixels(a)
    except Exception as exc:  # any decoder failure
        residual.add(
            "pixels", a.label, "(7FE0,0010)", "PixelData", "other",
            f"pixels could not be decoded for comparison ({type(exc).__name__})",
        )  # fmt: skip
        return
    if before.shape != after.shape:
        residual.add(
            "pixels", a.label, "(7FE0,0010)", "PixelData", "other",
            f"decoded pixels changed shape from {before.shape} to {after.shape}",
        )  # fmt: skip
        return
    inside = np.zeros(before.shape, dtype=bool)
    if rule is not None:
        frame_axis = 1 if (o.frames and int(o.frames or 1) > 1) else 0
        for r in rule.rectangles:
            idx: list[Any] = [slice(None)] * before.ndim
            idx[frame_axis] = slice(r.y, r.y + r.height)
            idx[frame_axis + 1] = slice(r.x, r.x + r.width)
            inside[tuple(idx)] = True
        not_zero = int(np.count_nonzero(after[inside]))
        if not_zero:
            residual.add(
                "pixels", a.label, "(7FE0,0010)", "PixelData", "other",
                f"{not_zero} pixel values inside the pixel rule's rectangles are not zero",
            )  # fmt: skip
    changed = int(np.count_nonzero((before != after) & ~inside))
    if changed:
        where = " outside the pixel rule's rectangles" if rule is not None else ""
        residual.add(
            "pixels", a.label, "(7FE0,0010)", "PixelData", "other",
            f"{changed} decoded pixel values differ from the original{where}",
        )  # fmt: skip


def assert_clean(residual: pd.DataFrame, *, what: str = "the anonymized output") -> None:
    """Raise if a residual table from :func:`verify` is not empty.

    Parameters
    ----------
    residual : pandas.DataFrame
        The table :func:`verify` returned.
    what : str
        Names the output in the message.

    Raises
    ------
    AnonymizationError
        Naming the counts per check and kind and the first few files and locations;
        never a value.
    """
    if residual is None or len(residual) == 0:
        return
    counts = residual.groupby(["check", "kind"]).size()
    summary = ", ".join(f"{n} {check}/{kind}" for (check, kind), n in counts.items())
    first = residual.head(5)
    lines = [
        f"  {r.check}: {r.file} {r.location} ({r.attribute}, {r.kind})"
        for r in first.itertuples(index=False)
    ]
    more = f"\n  … and {len(residual) - 5} more" if len(residual) > 5 else ""
    raise AnonymizationError(
        f"verification failed for {what}: {len(residual)} residual finding(s) ({summary}):\n"
        + "\n".join(lines)
        + more
        + "\nInspect the table returned by verify(); fix the template or the run and re-run."
    )

"""Edits of a dataset as plain values, validated with pydicom's own validators.

An :class:`Edit` says what to do (``set``, ``add``, ``delete``, ``add_item``,
``remove_item``) at an element path (see :mod:`dicomflow_lab.core.tags`).
:func:`validate` checks one value for its VR (pydicom's validators in ``RAISE`` mode,
PS3.5 6.2), its VM (the data dictionary) and the dataset's Specific Character Set
(PS3.5 6.1); :func:`apply_edits` applies a list of edits all-or-nothing and returns the
:class:`Change` of each.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydicom import config
from pydicom.charset import convert_encodings, encode_string
from pydicom.datadict import dictionary_VM, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import UID_dictionary, generate_uid
from pydicom.valuerep import DS, IS, DSdecimal, DSfloat, PersonName, validate_value

from dicomflow_lab.core.tags import display_value, format_path, format_tag, parse_path
from dicomflow_lab.errors import EditError

__all__ = ["Change", "Edit", "EditOp", "apply_edits", "regenerate_uids", "validate"]

logger = logging.getLogger(__name__)

EditOp = Literal["set", "add", "delete", "add_item", "remove_item"]
_OPS = ("set", "add", "delete", "add_item", "remove_item")

# VRs holding one value that may contain a backslash (PS3.5 6.4).
_SINGLE_TEXT = frozenset({"LT", "ST", "UT", "UR"})
# VRs whose text depends on Specific Character Set (PS3.5 6.1.2.3).
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "PN", "UC"})
_INT_VRS = frozenset({"US", "SS", "UL", "SL", "SV", "UV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_NOT_INSTANCE_UIDS = frozenset(
    {
        "TransferSyntaxUID",
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "PrivateInformationCreatorUID",
        "ImplementationClassUID",
    }
)


@dataclass(frozen=True)
class Edit:
    r"""One edit operation, as a plain value.

    Attributes
    ----------
    op : {"set", "add", "delete", "add_item", "remove_item"}
        ``set`` replaces a value (and inserts the element when missing); ``add``
        inserts an element that must not exist yet; ``delete`` removes an element (a
        missing one is no change); ``add_item`` appends an empty item to the sequence at
        `path` (creating the sequence if needed); ``remove_item`` removes item `value`
        (an int) of the sequence at `path`.
    path : str
        Element path, e.g. ``PatientName`` or ``(0008,1115)[0].(0020,000E)``.
    value : Any, optional
        The new value: text (multiple values separated by ``\\``), a number or a list.
    vr : str, optional
        The VR, needed only for private or unknown tags and ambiguous VRs (``US or SS``).
    """

    op: EditOp
    path: str
    value: Any = None
    vr: str | None = None

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"unknown edit op {self.op!r}; use one of {', '.join(_OPS)}")
        parse_path(self.path)


@dataclass(frozen=True)
class Change:
    """What one applied edit changed (display forms of the old and new values).

    Attributes
    ----------
    path, tag, keyword, op : str
        Where and what; `path` is canonical ``(gggg,eeee)`` form.
    old, new : str or None
        ``None`` when the element was absent before (``old``) or after (``new``).
    """

    path: str
    tag: str
    keyword: str
    op: str
    old: str | None
    new: str | None


#: What each VR accepts (PS3.5 Table 6.2-1), added to pydicom's terser messages.
VR_RULES = {
    "AE": "at most 16 characters, no backslash or control characters",
    "AS": "nnnD, nnnW, nnnM or nnnY (e.g. 042Y)",
    "CS": "upper-case letters, digits, space and underscore, at most 16 characters",
    "DA": "a date as YYYYMMDD (e.g. 20240131)",
    "DS": "a decimal number of at most 16 characters (e.g. 1.25 or -3e2)",
    "DT": "YYYYMMDDHHMMSS.FFFFFF&ZZXX, leading parts only allowed",
    "IS": "a whole number from -2147483648 to 2147483647, at most 12 characters",
    "LO": "at most 64 characters, no backslash",
    "LT": "at most 10240 characters",
    "PN": "family^given^middle^prefix^suffix, at most 64 characters per group",
    "SH": "at most 16 characters, no backslash",
    "ST": "at most 1024 characters",
    "TM": "a time as HHMMSS.FFFFFF, leading parts only allowed (e.g. 1405 or 140512.5)",
    "UI": "digits and dots, at most 64 characters, no leading zero in a component",
    "UR": "a URI or URL (RFC 3986) without trailing spaces",
}


def _refuse(path: str, tag: int, vr: str, rule: str) -> EditError:
    keyword = keyword_for_tag(tag) or "private/unknown"
    where = path if path == format_tag(tag) else f"{path} ({format_tag(tag)})"
    expected = VR_RULES.get(vr)
    if expected and rule.startswith("Invalid value for VR"):
        rule = f"{rule.rstrip('.')}; {vr} must be {expected}"
    message = f"{where} {keyword}, VR {vr}: {rule}"
    return EditError(message, path=path, tag=format_tag(tag), vr=vr, rule=rule)


def _container(ds: Dataset, parts: list[tuple[int, int | None]], path: str) -> Dataset:
    current = ds
    for tag, index in parts[:-1]:
        elem = current.get(tag)
        if elem is None or elem.VR != "SQ":
            raise EditError(f"{path}: {format_tag(tag)} is not a sequence in this dataset")
        items = elem.value
        if index is None or not 0 <= index < len(items):
            raise EditError(
                f"{path}: item [{index}] of {format_tag(tag)} does not exist "
                f"(it has {len(items)} item(s)); add one with add_item"
            )
        current = items[index]
    return current


def _charset(ds: Dataset, container: Dataset) -> list[str]:
    value = container.get("SpecificCharacterSet") or ds.get("SpecificCharacterSet")
    encodings = convert_encodings(value)
    terms = list(value) if isinstance(value, MultiValue) else [value]
    # pydicom reads the default repertoire leniently as Latin-1; written values must
    # be ISO-IR 6, i.e. ASCII (PS3.5 6.1.2.2)
    if not terms or terms[0] in (None, "", "ISO_IR 6", "ISO 2022 IR 6"):
        encodings[0] = "ascii"
    return encodings


def _vr_for(container: Dataset, tag: int, vr: str | None, path: str) -> str:
    if vr:
        return vr.upper()
    existing = container.get(tag)
    if existing is not None and "or" not in existing.VR and existing.VR != "UN":
        return str(existing.VR)
    try:
        found = dictionary_VR(tag)
    except KeyError:
        found = ""
    if not found or " or " in found or found == "UN":
        raise ValueError(
            f"{path}: give the VR of {format_tag(tag)} (vr=...); "
            f"the dictionary says {found or 'nothing'}"
        )
    return found


def _vm_allows(spec: str, n: int) -> bool:
    if n == 0:
        return True
    spec = spec.strip()
    if "-" not in spec:
        return n == int(spec)
    low, high = spec.split("-", 1)
    if high.endswith("n"):
        step = int(high[:-1] or "1")
        return n >= int(low) and n % step == 0
    return int(low) <= n <= int(high)


def _items(vr: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    if isinstance(value, str):
        if value == "":
            return []
        return [value] if vr in _SINGLE_TEXT else value.split("\\")
    return [value]


def _convert(vr: str, item: Any, fail: Any) -> Any:
    try:
        if vr in _INT_VRS:
            if isinstance(item, float) and item.is_integer():
                item = int(item)
            if isinstance(item, str):
                item = int(item.strip())
            if not isinstance(item, int) or isinstance(item, bool):
                raise ValueError
            return item
        if vr in _FLOAT_VRS:
            value = float(item)
            if vr == "FL" and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
                raise fail("outside the 32-bit float range")
            return value
        if vr == "AT":
            return int(Tag(item))
    except (ValueError, TypeError, OverflowError) as exc:
        kind = "number" if vr in _FLOAT_VRS else "tag" if vr == "AT" else "integer"
        raise fail(f"{item!r} is not a valid {kind}") from exc
    if vr in ("IS", "DS") and isinstance(item, (IS, DSfloat, DSdecimal)):
        return str(item)
    if vr == "IS" and isinstance(item, int) and not isinstance(item, bool):
        return str(item)
    if vr == "DS" and isinstance(item, (int, float)) and not isinstance(item, bool):
        return str(DS(item, auto_format=True))
    if vr == "PN" and isinstance(item, PersonName):
        return str(item)
    if not isinstance(item, str):
        raise fail(f"a {type(item).__name__} cannot be a {vr} value; give text")
    return item


def validate(ds: Dataset, path: str, value: Any, vr: str | None = None) -> Any:
    r"""Check and convert a value for the element at `path` of `ds`.

    Uses pydicom's validators in ``RAISE`` mode (``pydicom.valuerep.validate_value``,
    and the ``IS`` / ``DS`` / ``PersonName`` classes), the data dictionary's VM, and
    encodes text with the Specific Character Set in force (PS3.5 6.1), refusing values
    that the character set cannot represent instead of writing ``?``.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset the value goes into (for the VR, VM and character set).
    path : str
        Element path.
    value : Any
        Text (``\\`` separates multiple values), a number, a list, or ``None`` / ``""``
        for an empty value.
    vr : str, optional
        VR override, required for private and ambiguous tags.

    Returns
    -------
    Any
        The value to store: ``None`` when empty, one item, or a list of items.

    Raises
    ------
    EditError
        Naming the path, keyword, tag, VR and the rule broken.
    ValueError
        For a malformed path or a tag whose VR must be given.
    """
    parts = parse_path(path)
    canonical = format_path(parts)
    tag = parts[-1][0]
    if tag >> 16 == 0x0002:
        raise EditError(
            f"{canonical}: file meta information (group 0002) is written by "
            "pydicom from the dataset and cannot be edited"
        )
    container = _container(ds, parts, canonical)
    the_vr = _vr_for(container, tag, vr, canonical)

    def fail(rule: str) -> EditError:
        return _refuse(canonical, tag, the_vr, rule)

    if the_vr == "SQ":
        raise fail("a sequence has items, not a value; use add_item / remove_item")
    if the_vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN") or tag in (0x7FE00010,):
        raise fail("bulk data cannot be edited as a value")
    items = [_convert(the_vr, item, fail) for item in _items(the_vr, value)]
    for item in items:
        try:
            if the_vr == "IS":
                IS(item, validation_mode=config.RAISE)
            elif the_vr == "DS":
                if not math.isfinite(float(DS(item, validation_mode=config.RAISE))):
                    raise ValueError(f"Invalid value for VR DS: {item!r} is not finite")
            else:
                validate_value(the_vr, item, config.RAISE)
        except (ValueError, OverflowError) as exc:
            raise fail(str(exc).split(" Please see")[0]) from exc
        if the_vr == "PN":
            for group in item.split("="):
                if len(group.split("^")) > 5:
                    raise fail("a person name group has at most 5 components (PS3.5 6.2.1)")
            if len(item.split("=")) > 3:
                raise fail("a person name has at most 3 component groups (PS3.5 6.2.1)")
    if not Tag(tag).is_private:
        try:
            spec = dictionary_VM(tag)
        except KeyError:
            spec = ""
        if spec and not _vm_allows(spec, len(items)):
            raise fail(f"VM {spec} allowed, got {len(items)} value(s)")
    if the_vr in _CHARSET_VRS and items:
        encodings = _charset(ds, container)
        for item in items:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    if the_vr == "PN":
                        PersonName(item).encode(encodings)
                    else:
                        encode_string(item, encodings)
                except (UnicodeError, UserWarning) as exc:
                    charset = container.get("SpecificCharacterSet") or ds.get(
                        "SpecificCharacterSet", "ISO_IR 6 (default)"
                    )
                    raise fail(
                        f"value not encodable in Specific Character Set {charset}; "
                        "set (0008,0005) to ISO_IR 192 (UTF-8) first"
                    ) from exc
    if not items:
        return None
    return items[0] if len(items) == 1 else items


def _display(elem: DataElement | None) -> str | None:
    return None if elem is None else display_value(elem)


def _sync_meta(ds: Dataset, tag: int) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    if tag == 0x00080018 and "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID")
    elif tag == 0x00080016 and "MediaStorageSOPClassUID" in meta:
        meta.MediaStorageSOPClassUID = ds.get("SOPClassUID")


def _apply_one(
    ds: Dataset, edit: Edit, log: list[Any], cache: dict[Any, Any] | None = None
) -> Change:
    parts = parse_path(edit.path)
    canonical = format_path(parts)
    tag, index = parts[-1]
    keyword = keyword_for_tag(tag) or ""
    if edit.op in ("set", "add"):
        if index is not None:
            raise ValueError(f"{edit.path}: {edit.op} needs an element path, not an item")
        container = _container(ds, parts, canonical) if tag >> 16 != 2 else ds
        old = container.get(tag)
        key = None
        if cache is not None:  # same value, VR and character set: same verdict
            charset = container.get("SpecificCharacterSet") or ds.get("SpecificCharacterSet")
            vr_now = None if old is None else old.VR
            key = (edit.path, repr(edit.value), edit.vr, vr_now, repr(charset))
        if key is not None and key in cache:  # type: ignore[operator]
            value = cache[key]  # type: ignore[index]
        else:
            value = validate(ds, edit.path, edit.value, edit.vr)
            if key is not None:
                cache[key] = value  # type: ignore[index]
        if edit.op == "add" and old is not None:
            raise EditError(f"{canonical}: {keyword or format_tag(tag)} already exists; use set")
        vr = _vr_for(container, tag, edit.vr, canonical)
        log.append(("elem", container, tag, old))
        new = DataElement(tag, vr, value)
        container[tag] = new
        if len(parts) == 1:
            _sync_meta(ds, tag)
        return Change(canonical, format_tag(tag), keyword, edit.op, _display(old), _display(new))
    if edit.op == "delete":
        if index is not None:
            raise ValueError(f"{edit.path}: to remove a sequence item use remove_item")
        if tag >> 16 == 0x0002:
            raise EditError(f"{canonical}: file meta information cannot be edited")
        container = _container(ds, parts, canonical)
        old = container.get(tag)
        if old is not None:
            log.append(("elem", container, tag, old))
            del container[tag]
        return Change(canonical, format_tag(tag), keyword, "delete", _display(old), None)
    # sequence item operations
    seq_parts = parts if edit.op == "add_item" or index is None else [*parts[:-1], (tag, None)]
    if edit.op == "add_item" and index is not None:
        raise ValueError(f"{edit.path}: add_item takes the sequence path, without [index]")
    container = _container(ds, seq_parts, canonical)
    elem = container.get(tag)
    if elem is not None and elem.VR != "SQ":
        raise _refuse(canonical, tag, str(elem.VR), "not a sequence")
    seq_path = format_path([*parts[:-1], (tag, None)])
    if edit.op == "add_item":
        if elem is None:
            vr = _vr_for(container, tag, edit.vr or None, canonical)
            if vr != "SQ":
                raise _refuse(canonical, tag, vr, "not a sequence")
            log.append(("elem", container, tag, None))
            container[tag] = DataElement(tag, "SQ", DicomSequence([]))
            elem = container[tag]
        else:
            log.append(("seq", elem, list(elem.value)))
        elem.value.append(Dataset())
        n = len(elem.value) - 1
        return Change(f"{seq_path}[{n}]", format_tag(tag), keyword, "add_item", None, "<item>")
    position = index if index is not None else edit.value
    if elem is None or not isinstance(position, int) or not 0 <= position < len(elem.value):
        count = 0 if elem is None else len(elem.value)
        raise EditError(f"{seq_path}: no item [{position}] to remove (it has {count} item(s))")
    log.append(("seq", elem, list(elem.value)))
    del elem.value[position]
    return Change(
        f"{seq_path}[{position}]", format_tag(tag), keyword, "remove_item", "<item>", None
    )


def _rollback(log: list[Any]) -> None:
    for entry in reversed(log):
        if entry[0] == "elem":
            _, container, tag, old = entry
            if old is None:
                if tag in container:
                    del container[tag]
            else:
                container[tag] = old
        else:
            _, elem, items = entry
            elem.value = DicomSequence(items)


def apply_edits(
    ds: Dataset, edits: Sequence[Edit], *, cache: dict[Any, Any] | None = None
) -> list[Change]:
    """Apply `edits` to `ds` in order, all or nothing.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Changed in place; on error it is restored to its state before the call.
    edits : sequence of Edit
        The operations; later edits see the effect of earlier ones (an ``add_item``
        followed by a ``set`` inside the new item works).
    cache : dict, optional
        Validation verdicts to reuse across datasets (a batch passes one dict): a value
        is validated once per distinct (path, value, VR, existing VR, character set).

    Returns
    -------
    list of Change
        One per edit, in order.

    Raises
    ------
    EditError
        When a value is refused (the message names the path, tag, VR and rule) or an
        element or item does not exist.
    ValueError
        For malformed paths and ops.
    """
    log: list[Any] = []
    changes: list[Change] = []
    try:
        for edit in edits:
            changes.append(_apply_one(ds, edit, log, cache))
    except BaseException:
        _rollback(log)
        raise
    return changes


def _is_instance_uid(elem: DataElement) -> bool:
    keyword = elem.keyword or ""
    return not (keyword.endswith("ClassUID") or keyword in _NOT_INSTANCE_UIDS)


def regenerate_uids(ds: Dataset, mapping: dict[str, str], salt: str) -> list[Change]:
    """Replace instance UIDs (study, series, SOP instance, frame of reference, references…).

    Every ``UI`` element, in sequences too, whose value is not a registered UID of the
    standard and whose keyword is not a class / transfer syntax UID gets a new value;
    the same old UID always maps to the same new one through `mapping` (share it across
    the files of one run to keep references consistent). The file meta's Media Storage
    SOP Instance UID follows.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Changed in place.
    mapping : dict
        ``old -> new``; read and extended.
    salt : str
        Entropy for :func:`pydicom.uid.generate_uid`, e.g. the run id (same salt and old
        UID give the same new UID).

    Returns
    -------
    list of Change
        One per replaced element.
    """
    changes: list[Change] = []

    def new_uid(old: str) -> str:
        if old not in mapping:
            mapping[old] = str(generate_uid(entropy_srcs=[salt, old]))
        return mapping[old]

    def walk(container: Dataset, prefix: str) -> None:
        for elem in container:
            path = prefix + format_tag(int(elem.tag))
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value):
                    walk(item, f"{path}[{i}].")
                continue
            if elem.VR != "UI" or not elem.value or not _is_instance_uid(elem):
                continue
            values = elem.value if elem.VM > 1 else [elem.value]
            if any(str(v) in UID_dictionary for v in values):
                continue
            old = display_value(elem)
            replaced = [new_uid(str(v)) for v in values]
            elem.value = replaced if elem.VM > 1 else replaced[0]
            changes.append(
                Change(
                    path,
                    format_tag(int(elem.tag)),
                    elem.keyword or "",
                    "set",
                    old,
                    display_value(elem),
                )
            )

    walk(ds, "")
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        old = str(meta.MediaStorageSOPInstanceUID)
        if old in mapping:
            meta.MediaStorageSOPInstanceUID = mapping[old]
    return changes

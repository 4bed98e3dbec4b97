"""A generated dataset holding every attribute of PS3.15 Table E.1-1, for conformance tests.

:func:`build` returns one deterministic dataset with an element for each of the 656 rows
of the packaged table (:func:`~dicomflow_lab.anonymize.profile.profile_rows`), matched by
tag number: the 25 newer attributes without a pydicom keyword are there by tag with their
PS3.6 VR, the masked rows are instantiated in a repeating group (``(5010,0022)``,
``(6000,3000)``, ``(6000,4000)``), and the private row as a private block with a creator
and three elements. Every value is distinctive (no two rows share one), valid for its VR
and looks identifying: text holds the patient's name, ID, birth date, address and phone
number; dates and times are real; UIDs are unique and not well known; sequences hold one
item with a UID reference and a free-text element.

:func:`unchanged_attributes` lists the rows whose attribute still holds its original value
in an anonymized copy although the effective action of the table forbids it: the count a
conformant de-identifier must bring to zero.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
from collections.abc import Iterator

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from .profile import Action, MatchKind, ProfileRow, profile_rows, resolve_action
from .templates import Template, load_template

__all__ = [
    "PATIENT_NAME",
    "PRIVATE_CREATOR",
    "build",
    "row_elements",
    "unchanged_attributes",
    "write",
]

#: The fictitious patient of the generated dataset.
PATIENT_NAME = "MUSTERMANN^ERIKA"
#: The private creator of the generated private block (group 0009).
PRIVATE_CREATOR = "DICOMFLOW TABLE TEST"

_UID_ROOT = "1.2.826.0.1.3680043.9.7433"
_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage

#: VRs of the rows the table gives none for (2026c additions, PS3.6 2026c).
_EXTRA_VR = {
    0x00081301: "SQ",
    0x00081302: "SQ",
    0x00081303: "SQ",
    0x00081304: "SQ",
    0x00100011: "SQ",
    0x00100012: "LT",
    0x00100013: "UT",
    0x00100014: "SQ",
    0x00100015: "SQ",
    0x00100016: "UT",
    0x00100041: "SQ",
    0x00100042: "UT",
    0x00100043: "SQ",
    0x00100044: "SQ",
    0x00100045: "UT",
    0x00100046: "SQ",
    0x00100047: "UR",
    0x00102162: "UC",
    0x0040A034: "DT",
    0x0040A035: "DT",
    0x0040B034: "DT",
    0x0040B036: "DT",
    0x0040B03B: "LO",
    0x0040B03F: "LO",
    0x0040E012: "UR",
}

#: The element instantiating each masked row: (tag, VR).
_MASKED = {
    "(50XX,XXXX)": (0x50100022, "LO"),  # Curve Description
    "(60XX,3000)": (0x60003000, "OW"),
    "(60XX,4000)": (0x60004000, "LT"),
}


def row_elements(row: ProfileRow) -> list[int]:
    """Return the tags :func:`build` writes for ``row`` (one, or the private block's)."""
    if row.match is MatchKind.PRIVATE:
        return [0x00090010, 0x00091001, 0x00091002, 0x00091003]
    if row.match is MatchKind.MASK:
        return [_MASKED[row.tag][0]]
    return [row.value]


def _vr(row: ProfileRow) -> str:
    if row.match is MatchKind.MASK:
        return _MASKED[row.tag][1]
    vr = row.vr or _EXTRA_VR.get(row.value)
    if vr is None:
        raise AssertionError(f"no VR known for {row.tag}")  # pragma: no cover
    return "OW" if vr == "OB or OW" else vr.split()[0]


class _Values:
    """Distinctive, valid, identifying-looking values per VR, numbered by row."""

    def __init__(self, patient_id: str, seed: int) -> None:
        self.pid = patient_id
        self.seed = seed
        self.base = _dt.date(1990, 1, 1) + _dt.timedelta(days=seed % 1000)

    def uid(self, i: int, sub: int = 0) -> str:
        return f"{_UID_ROOT}.{self.seed}.{i}" + (f".{sub}" if sub else "")

    def date(self, i: int) -> str:
        return (self.base + _dt.timedelta(days=7 * i)).strftime("%Y%m%d")

    def time(self, i: int) -> str:
        s = 8 * 3600 + 37 * i
        return f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"

    def text(self, i: int, name: str) -> str:
        return (
            f"Patient Mustermann, Erika (ID {self.pid}), born 1970-05-17, "
            f"12 Lindenstrasse, Springfield, tel +49 30 5550{i:03d}; {name} #{i}"
        )

    def value(self, i: int, vr: str, row_name: str):
        if vr == "PN":
            return f"MUSTERMANN{i:03d}^ERIKA"
        if vr in ("SH", "CS", "AE"):
            return f"MUSTERMANN{i:03d}"
        if vr == "LO":
            return f"MUSTERMANN ERIKA {self.pid} {row_name[:30]} {i}"[:64]
        if vr in ("ST", "LT", "UT", "UC"):
            return self.text(i, row_name)
        if vr == "DA":
            return self.date(i)
        if vr == "TM":
            return self.time(i)
        if vr == "DT":
            return self.date(i) + self.time(i) + ".000123"
        if vr == "UI":
            return self.uid(i)
        if vr == "AS":
            return f"{40 + i % 50:03d}Y"
        if vr == "DS":
            return f"{i}.5"
        if vr == "IS":
            return str(1000 + i)
        if vr in ("US", "UL", "SS", "SL"):
            return 1000 + i
        if vr in ("FL", "FD"):
            return 1000.25 + i
        if vr == "UR":
            return f"https://hospital.example/patients/{self.pid}/{i}"
        if vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
            data = f"MUSTERMANN^ERIKA {self.pid} {self.date(i)} #{i}".encode("ascii")
            return data + b"\x00" * (len(data) % 2)
        if vr == "SQ":
            item = Dataset()
            item.ReferencedSOPClassUID = _SOP_CLASS
            item.ReferencedSOPInstanceUID = self.uid(i, 1)
            item.add_new(0x0040A160, "UT", self.text(i, "TextValue in " + row_name))
            return Sequence([item])
        raise AssertionError(f"no value generator for VR {vr}")  # pragma: no cover


_SPECIAL = {
    0x00100010: lambda v, i: PATIENT_NAME,
    0x00100020: lambda v, i: v.pid,
    0x00080201: lambda v, i: "+0100",
    0x00100040: lambda v, i: "F",
}


def build(patient_id: str = "PAT-0001", seed: int = 0) -> Dataset:
    """Return a dataset holding every attribute of Table E.1-1 (656 rows).

    Parameters
    ----------
    patient_id : str, optional
        The Patient ID (also quoted in the free-text values).
    seed : int, optional
        Varies the UIDs and dates (the same arguments always give the same dataset).

    Returns
    -------
    pydicom.dataset.Dataset
        With file meta (Explicit VR Little Endian, Media Storage SOP Instance UID equal to
        the SOP Instance UID), SOP Class CT Image Storage, no Pixel Data. It holds the two
        command-group elements of the table, so save it with :func:`write`, not
        ``dcmwrite`` (which refuses group 0000).

    Examples
    --------
    >>> ds = build()
    >>> str(ds.PatientName)
    'MUSTERMANN^ERIKA'
    """
    vals = _Values(patient_id, seed)
    ds = Dataset()
    meta = FileMetaDataset()
    sop_uid = ""
    for i, row in enumerate(profile_rows()):
        if row.match is MatchKind.PRIVATE:
            ds.add_new(0x00090010, "LO", PRIVATE_CREATOR)
            ds.add_new(0x00091001, "LO", f"MUSTERMANN ERIKA {patient_id}")
            ds.add_new(0x00091002, "DA", vals.date(i))
            ds.add_new(0x00091003, "UI", vals.uid(i))
            continue
        tag = row_elements(row)[0]
        vr = _vr(row)
        special = _SPECIAL.get(tag)
        value = special(vals, i) if special else vals.value(i, vr, row.name)
        if tag == 0x00080018:
            sop_uid = value
        if tag >> 16 == 0x0002:
            continue  # file meta, below
        ds.add(DataElement(tag, vr, value))
    ds.SOPClassUID = _SOP_CLASS
    ds.Modality = "CT"
    ds.BurnedInAnnotation = "NO"
    meta.MediaStorageSOPClassUID = _SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = f"{_UID_ROOT}.1"
    meta.ImplementationVersionName = "DFL_TABLE_TEST"
    ds.file_meta = meta
    ds.set_original_encoding(False, True, None)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    """Encode ``ds`` as a Part-10 file in Explicit VR Little Endian (group 0000 allowed)."""
    fp = DicomBytesIO()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    return fp.getvalue()


def write(path: str | os.PathLike[str], patient_id: str = "PAT-0001", seed: int = 0) -> str:
    """Write :func:`build`'s dataset to ``path`` and return the path.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (its folder must exist).
    patient_id, seed
        As for :func:`build`.
    """
    data = to_bytes(build(patient_id, seed))
    with io.open(path, "wb") as fh:  # noqa: UP020 - explicit binary write
        fh.write(data)
    return os.fspath(path)


def _elements(ds: Dataset, tags: list[int]) -> Iterator[tuple[int, object]]:
    for tag in tags:
        where = ds.file_meta if tag >> 16 == 0x0002 else ds
        if where is not None and tag in where:
            yield tag, where[tag].value


def _same(a: object, b: object) -> bool:
    if isinstance(a, Sequence) or isinstance(b, Sequence):
        if not (isinstance(a, Sequence) and isinstance(b, Sequence)) or len(a) != len(b):
            return False
        return all(_same_ds(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bytes | bytearray) or isinstance(b, bytes | bytearray):
        return bytes(a or b"").rstrip(b"\x00 ") == bytes(b or b"").rstrip(b"\x00 ")  # type: ignore[arg-type]
    return str(a).strip() == str(b).strip()


def _same_ds(a: Dataset, b: Dataset) -> bool:
    tags = set(a.keys())
    if tags != set(b.keys()):
        return False
    return all(_same(a[t].value, b[t].value) for t in tags)


def unchanged_attributes(
    original: Dataset, anonymized: Dataset, template: Template | str = "basic"
) -> list[str]:
    """List the table rows whose attribute kept its original value where that is forbidden.

    Parameters
    ----------
    original : pydicom.dataset.Dataset
        The dataset before de-identification (e.g. :func:`build`'s).
    anonymized : pydicom.dataset.Dataset
        The de-identified copy.
    template : Template or str, optional
        Whose options give the effective action (default ``basic``).

    Returns
    -------
    list of str
        ``"(GGGG,EEEE) Name"`` for each row at fault, in table order. A row is at fault
        when one of its elements is present, non-empty and equal to the original value
        although the effective action is not K. C allows the original value only where
        nothing identifying is in it: of the generated values only times (TM) qualify, as
        a whole-day date shift keeps the time of day. Empty original values are never
        counted.
    """
    tmpl = template if isinstance(template, Template) else load_template(template)
    opts = tmpl.options
    out: list[str] = []
    for row in profile_rows():
        if row.match is MatchKind.PRIVATE:
            action = _private_action(opts)
            tags = row_elements(row)[1:]
        else:
            tags = row_elements(row)
            action = resolve_action(tags[0], opts)
        if action is Action.K:
            continue
        before = dict(_elements(original, tags))
        after = dict(_elements(anonymized, tags))
        for tag, value in before.items():
            if value in (None, "", b"") or (isinstance(value, Sequence) and not value):
                continue
            if tag not in after:
                continue
            if action is Action.C and _vr_of(original, tag) == "TM":
                continue
            if _same(value, after[tag]):
                out.append(f"{row.tag} {row.name}")
                break
    return out


def _private_action(options) -> Action:
    from .profile import Option

    return Action.C if Option.RETAIN_SAFE_PRIVATE in options else Action.X


def _vr_of(ds: Dataset, tag: int) -> str:
    where = ds.file_meta if tag >> 16 == 0x0002 else ds
    return where[tag].VR

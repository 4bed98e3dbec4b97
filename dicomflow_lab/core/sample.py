"""A seeded, deterministic synthetic sample study: a CT chest–abdomen and an MR head.

:func:`write_sample_study` writes one fictitious patient with one study and two series
of uncompressed single-frame images (Explicit VR Little Endian, PS3.10 file format):

``1_CT/IM0001.dcm …``
    CT Image Storage (PS3.3 A.3). Axial slices from the lung apices to the pelvis of a
    contrast-enhanced chest–abdomen phantom. Pixels are signed 16-bit and hold
    ``HU + 1024`` (Rescale Intercept -1024, Rescale Slope 1, Rescale Type ``HU``), so
    every stored value is in ``0..4095`` like a 12-bit scanner. Scrolling down shows
    the trachea and lungs (with vessels), the heart and great vessels, the liver dome
    carving the right lung base, stomach, spleen, kidneys, bowel and the iliac wings;
    the spine, ribs and a table are present throughout.
``2_MR/IM0001.dcm …``
    MR Image Storage (PS3.3 A.4). Axial T1-weighted-looking slices of a head phantom
    (scalp fat, skull with diploë, grey and white matter, sulci, ventricles, deep grey
    nuclei, orbits and cerebellum in the lowest slices), unsigned 16-bit, in its own
    frame of reference.

Everything written is a function of ``seed`` and the sizes only. There is no current
time, no random UUID and no platform-dependent floating-point function in the pixel
path (only ``+ - * /``, ``sqrt`` and comparisons, which IEEE 754 rounds exactly), and
the noise comes from the raw 64-bit output of ``numpy.random.default_rng`` (PCG64),
whose stream numpy keeps stable. The same seed and sizes therefore give byte-identical
files on every run and machine. UIDs are ``2.25.<UUID>`` (PS3.5 B.2) made from
name-based UUIDs (RFC 4122 version 5) of the seed, the sizes, the generator version and
a label, so they are valid and deterministic, and change when the content changes.

All identifiers are fictitious and drawn by the seed from small built-in lists, some
with Latin-1 letters (``SpecificCharacterSet`` is ``ISO_IR 100`` in every file).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import operator
import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from dicomflow_lab._fsutil import atomic_writer
from dicomflow_lab.core._phantom import (
    _ct_extras,
    _ct_slice,
    _mr_volume,
    _mr_window,
    _Painter,
)

__all__ = [
    "GENERATOR_VERSION",
    "IMPLEMENTATION_CLASS_UID",
    "MANIFEST_NAME",
    "SampleSeries",
    "SampleStudy",
    "write_sample_study",
]

logger = logging.getLogger(__name__)

#: Bump whenever a change alters a written byte: it is part of every UID and the manifest.
GENERATOR_VERSION = 1
#: Name of the manifest written last into the study folder.
MANIFEST_NAME = ".dicomflow_sample.json"

_UID_NAMESPACE = uuid.UUID("994dcfcb-9e84-5a30-8f9b-74693b8b5e87")
_MANIFEST_FORMAT = "dicomflow_lab.sample"

#: Fixed Implementation Class UID of the generator (PS3.7 D.3.3.2), in the file meta.
IMPLEMENTATION_CLASS_UID = UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, 'implementation').int}")
_IMPLEMENTATION_VERSION_NAME = f"DFL_SAMPLE_{GENERATOR_VERSION}"

_CT_FOV_MM = 400.0  # reconstruction diameter
_CT_COVERAGE_MM = 500.0  # lung apices to pelvis
_MR_FOV_MM = 240.0
_MR_COVERAGE_MM = 120.0  # vertex to skull base

# Fictitious people and places. Every string is Latin-1 (ISO_IR 100) encodable.
_PATIENTS: tuple[tuple[str, str], ...] = (
    ("Müller^Jürgen", "M"), ("Dupont^Hélène", "F"), ("Núñez^José", "M"),
    ("Østergaard^Søren", "M"), ("Gonçalves^João", "M"), ("Lindqvist^Åsa", "F"),
    ("Häkkinen^Päivi", "F"), ("Ó Briain^Siobhán", "F"), ("Schäfer^Björn", "M"),
    ("García^Lucía", "F"), ("Doe^Jane", "F"), ("Smith^John", "M"), ("Rossi^Giulia", "F"),
    ("Novak^Petra", "F"), ("Okafor^Chidi", "M"), ("Tanaka^Yuki", "F"),
)  # fmt: skip
_PHYSICIANS = (
    "Lefèvre^Marc^^Dr.", "Weber^Anna^^Dr.", "Brennan^Áine^^Dr.", "Kowalski^Jan^^Dr.",
    "Andersson^Märta^^Dr.", "Moreau^Zoé^^Dr.",
)  # fmt: skip
_OPERATORS = ("Tech^Ana", "Tech^Bjørn", "Tech^Chloé", "Tech^Dmitri", "Tech^Eefje")
_INSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("Synthetic General Hospital", "1 Phantom Way, Springfield, Nowhere"),
    ("Klinikum Süd (synthetic)", "Phantomstraße 7, 99999 Nirgendwo, Nowhere"),
    ("Hôpital Fictif Saint-Éloi", "12 rue du Fantôme, 00000 Nullepart, Nowhere"),
    ("Ospedale Immaginario", "Via dei Fantocci 3, 00000 Nessunluogo, Nowhere"),
)


@dataclass(frozen=True)
class SampleSeries:
    """One series of a generated sample study.

    Attributes
    ----------
    path : pathlib.Path
        The series folder, ``<study>/<SeriesNumber>_<Modality>``.
    SeriesNumber : int
        1 for the CT, 2 for the MR.
    Modality : str
        ``"CT"`` or ``"MR"``.
    SeriesInstanceUID : str
        Shared by every instance of the series.
    SeriesDescription : str
        As written in the files.
    FrameOfReferenceUID : str
        Shared by every instance of the series; differs between the series.
    files : tuple of pathlib.Path
        The instance files in InstanceNumber order (``IM0001.dcm``, ``IM0002.dcm`` …).
    """

    path: Path
    SeriesNumber: int
    Modality: str
    SeriesInstanceUID: str
    SeriesDescription: str
    FrameOfReferenceUID: str
    files: tuple[Path, ...]

    @property
    def num_instances(self) -> int:
        """Number of instances (files) in the series."""
        return len(self.files)


@dataclass(frozen=True)
class SampleStudy:
    """A generated sample study: where it is and what it holds.

    Attributes
    ----------
    path : pathlib.Path
        The study folder.
    seed : int
        The seed it was generated from.
    StudyInstanceUID : str
        Shared by every file of the study.
    PatientName : str
        The fictitious patient's name, as written (may hold Latin-1 letters).
    PatientID : str
        The fictitious patient identifier.
    series : tuple of SampleSeries
        The CT series, then the MR series.
    manifest : pathlib.Path
        The manifest, ``<path>/.dicomflow_sample.json``.
    reused : bool
        True when a complete study with the same seed and parameters was already there
        and nothing was written.
    """

    path: Path
    seed: int
    StudyInstanceUID: str
    PatientName: str
    PatientID: str
    series: tuple[SampleSeries, ...]
    manifest: Path
    reused: bool = False

    @property
    def files(self) -> tuple[Path, ...]:
        """Every instance file of the study, series after series."""
        return tuple(f for s in self.series for f in s.files)


# ---------------------------------------------------------------------------------------
# Deterministic draws


def _draw(seed: int, label: str) -> int:
    """Return a 64-bit integer that depends only on `seed` and `label`."""
    digest = hashlib.sha256(f"{_MANIFEST_FORMAT}\x1f{seed}\x1f{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _uid(key: str, label: str) -> UID:
    """Return a ``2.25.`` UID from a name-based UUID of `key` and `label` (PS3.5 B.2)."""
    return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, f'{key}|{label}').int}")


# ---------------------------------------------------------------------------------------
# Formatting helpers


def _ds(value: float) -> str:
    """Format a Decimal String (at most 6 decimals, no trailing zeros, <= 16 chars)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _tm(moment: dt.datetime) -> str:
    """Format a TM value, with a fraction only when there is one."""
    text = moment.strftime("%H%M%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text


# ---------------------------------------------------------------------------------------
# Headers


@dataclass(frozen=True)
class _Geometry:
    size: int
    spacing: float  # in-plane, mm
    origin: float  # x and y of the first pixel centre, mm
    slice_um: int  # slice spacing and thickness, micrometres
    count: int

    @classmethod
    def make(cls, size: int, fov: float, coverage: float, count: int) -> _Geometry:
        spacing = float(_ds(fov / size))
        origin = float(_ds(-(size - 1) * spacing / 2.0))
        return cls(size, spacing, origin, max(1, round(coverage * 1000.0 / count)), count)

    @property
    def coords(self) -> np.ndarray:
        return self.origin + np.arange(self.size, dtype=np.float64) * self.spacing

    def depth(self, k: int) -> float:
        """Depth of slice `k` below the top of the scanned range, mm."""
        return (k * self.slice_um + self.slice_um // 2) / 1000.0

    def z_mm(self, k: int) -> str:
        """Patient z of slice `k`: slices go from head to feet (z decreasing)."""
        return f"{-self.depth(k):.3f}"

    @property
    def slice_mm(self) -> str:
        return _ds(self.slice_um / 1000.0)


# Attributes that depend on nothing. Type 1/2 attributes of the CT and MR Image IODs
# (PS3.3 A.3, A.4) are all present; the rest are the Type 3 ones a real scanner writes.
# fmt: off
_COMMON_STATIC: dict[str, Any] = {
    "SpecificCharacterSet": "ISO_IR 100", "IssuerOfPatientID": "DICOMFLOW_LAB SYNTHETIC",
    "StudyDescription": "SYNTHETIC CT THORAX ABDOMEN + MR HEAD",
    "Manufacturer": "dicomflow_lab", "ManufacturerModelName": "Synthetic Phantom",
    "DeviceSerialNumber": f"DFL-{GENERATOR_VERSION}",
    "SoftwareVersions": f"dicomflow_lab sample generator {GENERATOR_VERSION}",
    "PatientPosition": "HFS", "PositionReferenceIndicator": "", "AcquisitionNumber": 1,
    "BurnedInAnnotation": "NO", "LossyImageCompression": "00",
    "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2",
    "BitsAllocated": 16, "BitsStored": 16, "HighBit": 15,
    "ImageOrientationPatient": ["1", "0", "0", "0", "1", "0"],
    "ImageComments": "Synthetic phantom by dicomflow_lab; all identifiers are fictitious.",
}
_CT_STATIC: dict[str, Any] = {
    "Modality": "CT", "SOPClassUID": CTImageStorage, "SeriesNumber": 1,
    "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], "StationName": "DFL-CT01",
    "ProtocolName": "CT CHEST ABDOMEN WITH CONTRAST", "BodyPartExamined": "CHESTABDOMEN",
    "ContrastBolusAgent": "Iohexol 350 mgI/ml (synthetic)", "ContrastBolusRoute": "IV",
    "ScanOptions": "HELICAL MODE", "KVP": "120", "DataCollectionDiameter": "500",
    "DistanceSourceToDetector": "1040", "DistanceSourceToPatient": "570",
    "GantryDetectorTilt": "0", "TableHeight": "150", "RotationDirection": "CW",
    "ExposureTime": "500", "XRayTubeCurrent": 200, "Exposure": 100, "GeneratorPower": 24,
    "FilterType": "BODY FILTER", "FocalSpots": "1.2", "ConvolutionKernel": "STANDARD",
    "RevolutionTime": 0.5, "SpiralPitchFactor": 1.0, "PixelRepresentation": 1,
    "RescaleIntercept": "-1024", "RescaleSlope": "1", "RescaleType": "HU",
    "WindowCenter": ["40", "-600"], "WindowWidth": ["400", "1500"],
    "WindowCenterWidthExplanation": ["SOFT TISSUE", "LUNG"],
}
_MR_STATIC: dict[str, Any] = {
    "Modality": "MR", "SOPClassUID": MRImageStorage, "SeriesNumber": 2,
    "ImageType": ["ORIGINAL", "PRIMARY", "OTHER"], "StationName": "DFL-MR01",
    "ProtocolName": "HEAD T1 SE AXIAL", "BodyPartExamined": "HEAD",
    "ScanningSequence": "SE", "SequenceVariant": "NONE", "ScanOptions": "",
    "MRAcquisitionType": "2D", "SequenceName": "se2d1", "AngioFlag": "N",
    "RepetitionTime": "500", "EchoTime": "12", "EchoTrainLength": 1, "EchoNumbers": 1,
    "NumberOfAverages": "2", "ImagingFrequency": "63.87", "ImagedNucleus": "1H",
    "MagneticFieldStrength": "1.5", "PercentSampling": "100", "PercentPhaseFieldOfView": "100",
    "PixelBandwidth": "130", "ReceiveCoilName": "HEAD", "TransmitCoilName": "BODY",
    "InPlanePhaseEncodingDirection": "ROW", "FlipAngle": "90", "VariableFlipAngleFlag": "N",
    "SAR": "0.5", "PixelRepresentation": 0,
    "WindowCenterWidthExplanation": "AUTO (2-99.5 PERCENTILE)",
}
# fmt: on


def _study_header(seed: int, study_uid: UID) -> tuple[dict[str, Any], dt.datetime]:
    """Return the patient, study and equipment attributes and the study's start."""
    name, sex = _PATIENTS[_draw(seed, "patient") % len(_PATIENTS)]
    institution, address = _INSTITUTIONS[_draw(seed, "institution") % len(_INSTITUTIONS)]
    day = dt.date(2019, 1, 7) + dt.timedelta(days=_draw(seed, "study-date") % 1800)
    start = dt.datetime.combine(day, dt.time(7, 30))
    start += dt.timedelta(seconds=_draw(seed, "study-time") % (9 * 3600))
    age = 18 + _draw(seed, "age") % 70
    birth = dt.date(day.year - age, 1 + _draw(seed, "month") % 12, 1 + _draw(seed, "day") % 28)
    if (birth.month, birth.day) > (day.month, day.day):
        age -= 1
    return {
        **_COMMON_STATIC,
        "PatientName": name,
        "PatientID": f"DFL{_draw(seed, 'patient-id') % 10**7:07d}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "PatientSex": sex,
        "PatientAge": f"{age:03d}Y",
        "PatientSize": _ds((150 + _draw(seed, "height") % 45) / 100.0),
        "PatientWeight": str(50 + _draw(seed, "weight") % 50),
        "StudyInstanceUID": study_uid,
        "StudyDate": day.strftime("%Y%m%d"),
        "StudyTime": _tm(start),
        "AccessionNumber": f"ACC{_draw(seed, 'accession') % 10**8:08d}",
        "ReferringPhysicianName": _PHYSICIANS[_draw(seed, "physician") % len(_PHYSICIANS)],
        "StudyID": f"S{_draw(seed, 'study-id') % 10**5:05d}",
        "InstitutionName": institution,
        "InstitutionAddress": address,
        "OperatorsName": _OPERATORS[_draw(seed, "operator") % len(_OPERATORS)],
    }, start


def _instance_header(
    series: dict[str, Any], geo: _Geometry, k: int, series_start: dt.datetime, uid: UID
) -> dict[str, Any]:
    """Return the attributes that change from one instance to the next."""
    # A helical CT acquires slice after slice; 2-D MR slices share one acquisition.
    step = 400 * k if series["Modality"] == "CT" else 0
    acquired = series_start + dt.timedelta(milliseconds=step)
    created = series_start + dt.timedelta(minutes=4)
    z = geo.z_mm(k)
    return {
        "SOPInstanceUID": uid,
        "InstanceNumber": k + 1,
        "AcquisitionDate": acquired.strftime("%Y%m%d"),
        "AcquisitionTime": _tm(acquired),
        "ContentDate": created.strftime("%Y%m%d"),
        "ContentTime": _tm(created),
        "InstanceCreationDate": created.strftime("%Y%m%d"),
        "InstanceCreationTime": _tm(created),
        "ImagePositionPatient": [_ds(geo.origin), _ds(geo.origin), z],
        "SliceLocation": z,
    }


def _encode(header: dict[str, Any], pixels: bytes) -> bytes:
    """Encode one instance as a PS3.10 file (Explicit VR Little Endian)."""
    ds = Dataset()
    ds.update(header)
    ds.add_new(0x7FE00010, "OW", pixels)
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = header["SOPClassUID"]
    meta.MediaStorageSOPInstanceUID = header["SOPInstanceUID"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------
# Manifest and the public function


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if not lo <= number <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {number}")
    return number


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _listed(manifest: dict[str, Any]) -> list[tuple[str, int]]:
    """Return the manifest's (relative path, size) entries that are safe to touch."""
    files = manifest.get("files")
    entries = [e for e in (files if isinstance(files, list) else ()) if isinstance(e, dict)]
    pairs = [(e.get("path"), e.get("size")) for e in entries]
    return [
        (rel, size)
        for rel, size in pairs
        if isinstance(rel, str) and isinstance(size, int) and rel and "\\" not in rel
        and not rel.startswith("/") and ".." not in PurePosixPath(rel).parts
    ]  # fmt: skip


def _is_complete(root: Path, manifest: dict[str, Any], expected: list[str]) -> bool:
    listed = _listed(manifest)
    try:
        sizes_ok = all((root / rel).stat().st_size == size for rel, size in listed)
    except OSError:
        return False
    return sizes_ok and [rel for rel, _ in listed] == expected


def write_sample_study(
    path: str | os.PathLike[str],
    seed: int = 0,
    *,
    ct_slices: int = 100,
    ct_size: int = 512,
    mr_slices: int = 24,
    mr_size: int = 256,
    overwrite: bool = False,
) -> SampleStudy:
    """Write a deterministic synthetic CT + MR study into `path`.

    The study has one fictitious patient, one study and two series: an axial
    contrast-enhanced CT from the lung apices to the pelvis (``1_CT``) and an axial
    T1-weighted-looking MR of the head (``2_MR``), as single-frame CT and MR Image
    Storage files (PS3.3 A.3, A.4) in Explicit VR Little Endian. The same `seed` and
    sizes give byte-identical files on every run and machine; another seed gives other
    UIDs, names, dates and noise.

    Files go to ``path/<SeriesNumber>_<Modality>/IM<InstanceNumber:04d>.dcm``, each
    written atomically; the manifest ``path/.dicomflow_sample.json`` (seed, sizes,
    generator version, relative names, sizes and SHA-256 of the files; a dot-file, so
    indexers skip it) is written last. Other files in
    `path` are left alone; files that an earlier run of this function listed in its
    manifest and that the new study does not have are removed.

    Parameters
    ----------
    path : str or pathlib.Path
        The study folder; created if missing.
    seed : int, optional
        Any non-negative integer (default 0).
    ct_slices : int, optional
        Number of CT slices, 1..9999 (default 100). They always cover 500 mm, so the
        slice spacing is ``500 / ct_slices`` mm (5 mm by default).
    ct_size : int, optional
        CT rows and columns, 16..4096 (default 512) over a 400 mm field of view.
    mr_slices : int, optional
        Number of MR slices, 1..9999 (default 24), covering 120 mm.
    mr_size : int, optional
        MR rows and columns, 16..4096 (default 256) over a 240 mm field of view.
    overwrite : bool, optional
        Write everything again even when the manifest says the study is already
        complete (default False).

    Returns
    -------
    SampleStudy
        Where the files are, with the study's UIDs and the fictitious patient's name
        and ID. ``reused`` is True when nothing had to be written.

    Raises
    ------
    TypeError
        If `seed` or a size is not an integer.
    ValueError
        If `seed` is negative or a size or slice count is out of range.
    OSError
        If the folder or a file cannot be written.

    Notes
    -----
    CT pixels are signed 16-bit holding ``HU + 1024`` (Rescale Intercept -1024, Slope
    1), with two VOI presets, soft tissue (40/400) and lung (-600/1500). MR pixels are
    unsigned 16-bit with one preset spanning the 2nd to 99.5th percentile of the head.
    Complete reuse is judged from the manifest and file sizes only, not by re-hashing.

    Examples
    --------
    >>> from dicomflow_lab.core.sample import write_sample_study
    >>> study = write_sample_study(tmp_path / "study", seed=1, ct_slices=4, ct_size=64,
    ...                            mr_slices=2, mr_size=32)  # doctest: +SKIP
    >>> [(s.Modality, s.num_instances) for s in study.series]  # doctest: +SKIP
    [('CT', 4), ('MR', 2)]
    """
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    ct_slices = _check_int("ct_slices", ct_slices, 1, 9999)
    mr_slices = _check_int("mr_slices", mr_slices, 1, 9999)
    ct_size = _check_int("ct_size", ct_size, 16, 4096)
    mr_size = _check_int("mr_size", mr_size, 16, 4096)
    root = Path(path).expanduser()
    params = dict(ct_slices=ct_slices, ct_size=ct_size, mr_slices=mr_slices, mr_size=mr_size)
    identity = dict(
        format=_MANIFEST_FORMAT, version=GENERATOR_VERSION, seed=seed, parameters=params
    )
    key = json.dumps(identity, sort_keys=True)  # every UID depends on all of it

    study_uid = _uid(key, "study")
    common, start = _study_header(seed, study_uid)
    ct_geo = _Geometry.make(ct_size, _CT_FOV_MM, _CT_COVERAGE_MM, ct_slices)
    mr_geo = _Geometry.make(mr_size, _MR_FOV_MM, _MR_COVERAGE_MM, mr_slices)
    plans: list[tuple[dict[str, Any], _Geometry, dt.datetime]] = []
    series: list[SampleSeries] = []
    for static, geo, minutes, description in (
        (_CT_STATIC, ct_geo, 3, "THORAX ABDOMEN C+"),
        (_MR_STATIC, mr_geo, 25, "T1 SE AX"),
    ):
        number, modality = static["SeriesNumber"], static["Modality"]
        series_start = start + dt.timedelta(minutes=minutes)
        header = {
            **common,
            **static,
            "SeriesInstanceUID": _uid(key, f"series{number}"),
            "FrameOfReferenceUID": _uid(key, f"series{number}-frame-of-reference"),
            "SeriesDate": series_start.strftime("%Y%m%d"),
            "SeriesTime": _tm(series_start),
            "SeriesDescription": f"{description} {geo.slice_mm} mm",
            "ImagesInAcquisition": geo.count,
            "SliceThickness": geo.slice_mm,
            "SpacingBetweenSlices": geo.slice_mm,
            "PixelSpacing": [_ds(geo.spacing), _ds(geo.spacing)],
            "Rows": geo.size,
            "Columns": geo.size,
        }
        plans.append((header, geo, series_start))
        folder = root / f"{number}_{modality}"
        series.append(
            SampleSeries(
                path=folder,
                SeriesNumber=number,
                Modality=modality,
                SeriesInstanceUID=str(header["SeriesInstanceUID"]),
                SeriesDescription=header["SeriesDescription"],
                FrameOfReferenceUID=str(header["FrameOfReferenceUID"]),
                files=tuple(folder / f"IM{k + 1:04d}.dcm" for k in range(geo.count)),
            )
        )
    ct_header, mr_header = plans[0][0], plans[1][0]
    ct_header["ReconstructionDiameter"] = _ds(ct_geo.spacing * ct_geo.size)
    ct_header["CTDIvol"] = 7.0 + (_draw(seed, "ctdi") % 300) / 100.0
    phase = max(1, mr_geo.size * 3 // 4)
    mr_header["NumberOfPhaseEncodingSteps"] = phase
    mr_header["AcquisitionMatrix"] = [mr_geo.size, 0, 0, phase]
    manifest_path = root / MANIFEST_NAME
    study = SampleStudy(
        path=root,
        seed=seed,
        StudyInstanceUID=str(study_uid),
        PatientName=common["PatientName"],
        PatientID=common["PatientID"],
        series=tuple(series),
        manifest=manifest_path,
    )
    expected = [f.relative_to(root).as_posix() for f in study.files]

    root.mkdir(parents=True, exist_ok=True)
    old = _read_manifest(manifest_path)
    if (
        not overwrite
        and old is not None
        and {k: old.get(k) for k in identity} == identity
        and _is_complete(root, old, expected)
    ):
        logger.debug("sample study in %s is complete; nothing written", root)
        return dataclasses.replace(study, reused=True)
    # Drop the old manifest first: an interrupted run must never look complete.
    manifest_path.unlink(missing_ok=True)

    ct_rng = np.random.default_rng([seed, 1])
    ct_extras = _ct_extras(ct_rng)
    ct_painter = _Painter(ct_geo.coords)
    mr_depths = [mr_geo.depth(k) for k in range(mr_slices)]
    mr_volume = _mr_volume(mr_geo.coords, mr_depths, np.random.default_rng([seed, 2]))
    center, width = _mr_window(mr_volume)
    mr_header["WindowCenter"], mr_header["WindowWidth"] = _ds(center), str(width)

    entries: list[dict[str, Any]] = []
    for (header, geo, series_start), info in zip(plans, series, strict=True):
        info.path.mkdir(exist_ok=True)
        for k, file in enumerate(info.files):
            uid = _uid(key, f"series{info.SeriesNumber}-instance{k + 1}")
            instance = {**header, **_instance_header(header, geo, k, series_start, uid)}
            if info.Modality == "CT":
                pixels = _ct_slice(ct_painter, geo.depth(k), ct_extras, ct_rng)
            else:
                pixels = mr_volume[k].tobytes()
            data = _encode(instance, pixels)
            with atomic_writer(file) as fh:
                fh.write(data)
            rel = file.relative_to(root).as_posix()
            entries.append(
                {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
        logger.debug("sample study: wrote %d %s instances", info.num_instances, info.Modality)

    if old is not None:
        keep = set(expected)
        for rel, _ in _listed(old):
            if rel not in keep:
                (root / rel).unlink(missing_ok=True)
                logger.debug("sample study: removed stale %s", rel)
    text = json.dumps({**identity, "files": entries}, indent=1, sort_keys=True) + "\n"
    with atomic_writer(manifest_path) as fh:
        fh.write(text.encode("ascii"))
    logger.debug("sample study written to %s", root)
    return study

"""Data to try dicomflow_lab on: a generated sample study and pydicom's bundled files.

Nothing here touches the network. :func:`sample_study` generates a deterministic
synthetic CT + MR study (see :mod:`dicomflow_lab.core.sample`); :func:`testfile` and
:func:`testfiles` find the small test files that come with pydicom.

Examples
--------
>>> import dicomflow_lab as dfl
>>> folder = dfl.data.sample_study(seed=0)  # doctest: +SKIP
>>> dfl.data.testfile("CT_small.dcm").name
'CT_small.dcm'
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path

import pydicom.data

from dicomflow_lab._paths import default_home
from dicomflow_lab.core.sample import write_sample_study

__all__ = ["sample_study", "testfile", "testfiles"]

logger = logging.getLogger(__name__)

_TEST_FILES_ROOT = Path(pydicom.data.DATA_ROOT) / "test_files"


def sample_study(
    path: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    ct_slices: int = 100,
    ct_size: int = 512,
    mr_slices: int = 24,
    mr_size: int = 256,
    overwrite: bool = False,
) -> Path:
    """Generate (or reuse) the synthetic sample study and return its folder.

    One fictitious patient, one study, two series: an axial contrast-enhanced CT of
    chest and abdomen (``1_CT``, 100 slices of 512×512 by default) and an axial
    T1-weighted-looking MR of the head (``2_MR``, 24 slices of 256×256). The same
    seed and sizes always give byte-identical files; a complete study already in the
    folder is reused without writing anything.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The study folder. Default ``<home>/samples/study-seed<seed>``, where
        ``<home>`` is ``$DICOMFLOW_HOME`` or ``~/.dicomflow_lab``.
    seed : int, optional
        Chooses the UIDs, the fictitious patient, dates and the image noise
        (default 0).
    ct_slices, ct_size, mr_slices, mr_size : int, optional
        Slice counts and image sizes; see
        :func:`dicomflow_lab.core.sample.write_sample_study`.
    overwrite : bool, optional
        Write the files again even if a complete study is there (default False).

    Returns
    -------
    pathlib.Path
        The study folder, holding ``1_CT/IM0001.dcm …``, ``2_MR/IM0001.dcm …`` and
        ``.dicomflow_sample.json``.

    Raises
    ------
    TypeError
        If `seed` or a size is not an integer.
    ValueError
        If `seed` is negative or a size or count is out of range.
    OSError
        If the folder cannot be written.

    Examples
    --------
    >>> import dicomflow_lab as dfl
    >>> folder = dfl.data.sample_study(seed=3)  # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
    ['.dicomflow_sample.json', '1_CT', '2_MR']
    >>> small = dfl.data.sample_study("small", ct_slices=10, ct_size=128)  # doctest: +SKIP
    """
    folder = default_home() / "samples" / f"study-seed{seed}" if path is None else Path(path)
    study = write_sample_study(
        folder,
        seed,
        ct_slices=ct_slices,
        ct_size=ct_size,
        mr_slices=mr_slices,
        mr_size=mr_size,
        overwrite=overwrite,
    )
    return study.path


def testfiles(pattern: str = "*") -> list[Path]:
    """Return pydicom's bundled test files whose names match a glob pattern.

    Only files already on this machine are listed (pydicom's own ``test_files`` and
    any installed data package such as ``pydicom-data``); unlike
    ``pydicom.data.get_testdata_files`` this never tries to download.

    Parameters
    ----------
    pattern : str, optional
        A :meth:`pathlib.Path.glob` pattern relative to pydicom's ``test_files``
        folder (default ``"*"``, the top level; ``"**/*.dcm"`` searches subfolders).

    Returns
    -------
    list of pathlib.Path
        Matching files, sorted, without directories or Python files.

    Raises
    ------
    ValueError
        If `pattern` is absolute.

    Examples
    --------
    >>> import dicomflow_lab as dfl
    >>> [p.name for p in dfl.data.testfiles("CT_small*")]
    ['CT_small.dcm']
    """
    if Path(pattern).is_absolute():
        raise ValueError(
            f"testfiles() takes a pattern relative to pydicom's test files, not {pattern!r}"
        )
    found = {p for p in _TEST_FILES_ROOT.glob(pattern) if p.is_file() and p.suffix != ".py"}
    for source in pydicom.data.external_data_sources().values():
        try:
            found.update(Path(p) for p in source.get_paths(pattern, 0))
        except Exception as exc:  # a third-party plugin may fail in any way
            logger.debug("external pydicom data source failed: %r", exc)
    return sorted(found)


def testfile(name: str) -> Path:
    """Return the path of one of pydicom's bundled test files.

    Parameters
    ----------
    name : str
        The file name, e.g. ``"CT_small.dcm"``, ``"MR_small.dcm"``, ``"rtplan.dcm"``.
        Files in subfolders are found by their name too.

    Returns
    -------
    pathlib.Path
        The file, from pydicom's package data or an installed data package (never
        downloaded).

    Raises
    ------
    ValueError
        If `name` is empty, a path or a glob pattern (use :func:`testfiles` to search).
    FileNotFoundError
        If no such file is bundled; the message suggests close names.

    Examples
    --------
    >>> import dicomflow_lab as dfl
    >>> import pydicom
    >>> ds = pydicom.dcmread(dfl.data.testfile("CT_small.dcm"))
    >>> ds.Modality
    'CT'
    """
    if not name or Path(name).name != name or any(c in name for c in "*?["):
        raise ValueError(
            f"testfile() takes a bare file name such as 'CT_small.dcm', got {name!r}; "
            "use testfiles(pattern) to search"
        )
    found = pydicom.data.get_testdata_file(name, download=False)
    if isinstance(found, str) and Path(found).is_file():
        return Path(found)
    bundled = testfiles("**/*")
    for path in bundled:  # pydicom may have matched a folder of that name first
        if path.name == name:
            return path
    names = sorted({p.name for p in bundled})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise FileNotFoundError(
        f"{name!r} is not one of pydicom's bundled test files.{hint} "
        "dicomflow_lab.data.testfiles() lists them."
    )

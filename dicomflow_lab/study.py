"""``dfl.open(path)``: index a file, folder or DICOMDIR and show what is in it.

Until the inline viewer lands, a :class:`Study` displays as a summary table with a
static thumbnail per series, and reads well in a terminal. Identifying values (names,
IDs, dates, UIDs) are hidden unless the ``display.show_phi`` setting is on or
``show_phi=True`` is passed, so that saved notebooks carry no patient data by accident.
"""

from __future__ import annotations

import base64
import html
import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from dicomflow_lab.errors import DicomflowError
from dicomflow_lab.workspace import Workspace

if TYPE_CHECKING:  # pragma: no cover
    from dicomflow_lab.widgets.viewer import Viewer

__all__ = ["Study", "StudyList", "open"]

logger = logging.getLogger(__name__)

_DEFAULT_WORKSPACE: Workspace | None = None
_HIDDEN = "•••"
_PHI_FIELDS = ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "AccessionNumber")


def default_workspace() -> Workspace:
    """Return the process-wide default :class:`Workspace` (created on first use)."""
    global _DEFAULT_WORKSPACE
    if _DEFAULT_WORKSPACE is None or _DEFAULT_WORKSPACE.closed:
        _DEFAULT_WORKSPACE = Workspace()
    return _DEFAULT_WORKSPACE


class Study:
    """One study of a workspace, as found under an opened path.

    Parameters
    ----------
    workspace : Workspace
        The workspace that indexed it.
    study_uid : str or None
        Its StudyInstanceUID (None groups instances that have none).
    scope : str, optional
        Only instances whose files lie under this path are shown.
    show_phi : bool, optional
        Show identifying values; default: the ``display.show_phi`` setting.
    """

    def __init__(
        self,
        workspace: Workspace,
        study_uid: str | None,
        *,
        scope: str | None = None,
        show_phi: bool | None = None,
    ) -> None:
        self.workspace = workspace
        self.study_uid = study_uid
        self.scope = scope
        self.show_phi = (
            bool(workspace.get_setting("display.show_phi")) if show_phi is None else show_phi
        )

    # -- data ----------------------------------------------------------------------
    def instances(self) -> pd.DataFrame:
        """Return this study's instance rows (within the opened scope)."""
        conds = ["StudyInstanceUID IS NOT DISTINCT FROM ?"]
        params: list[Any] = [self.study_uid]
        if self.scope:
            conds.append("(file_path = ? OR starts_with(file_path, ?))")
            params += [self.scope, self.scope.rstrip(os.sep) + os.sep]
        return self.workspace.sql(
            "SELECT * EXCLUDE (header) FROM instances WHERE "
            + " AND ".join(conds)
            + " ORDER BY SeriesNumber NULLS LAST, SeriesInstanceUID, InstanceNumber NULLS LAST,"
            " ImagePositionPatient[3] NULLS LAST, file_path",
            params,
        )

    def series(self, instances: pd.DataFrame | None = None) -> pd.DataFrame:
        """Return one row per series: number, modality, description, counts, size.

        Parameters
        ----------
        instances : pandas.DataFrame, optional
            This study's :meth:`instances`, if already at hand (saves a query).
        """
        inst = self.instances() if instances is None else instances
        if inst.empty:
            return pd.DataFrame(
                columns=["SeriesNumber", "Modality", "SeriesDescription", "n_instances"]
            )
        grouped = inst.groupby("SeriesInstanceUID", dropna=False, sort=False)
        out = grouped.agg(
            SeriesNumber=("SeriesNumber", "first"),
            Modality=("Modality", "first"),
            SeriesDescription=("SeriesDescription", "first"),
            BodyPartExamined=("BodyPartExamined", "first"),
            Rows=("Rows", "first"),
            Columns=("Columns", "first"),
            n_instances=("file_path", "size"),
            total_bytes=("file_size", "sum"),
        ).reset_index()
        return out

    @property
    def summary(self) -> dict[str, Any]:
        """Study-level values (identifying ones hidden unless ``show_phi``)."""
        return self.summary_values(show_phi=self.show_phi)

    def summary_values(
        self, *, show_phi: bool, instances: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        """Study-level values; identifying ones replaced by a mask unless `show_phi`."""
        inst = self.instances() if instances is None else instances
        first = inst.iloc[0] if not inst.empty else pd.Series(dtype=object)
        values = {
            "PatientName": first.get("PatientName"),
            "PatientID": first.get("PatientID"),
            "PatientBirthDate": first.get("PatientBirthDate"),
            "PatientSex": first.get("PatientSex"),
            "StudyDate": first.get("StudyDate"),
            "StudyDescription": first.get("StudyDescription"),
            "AccessionNumber": first.get("AccessionNumber"),
            "Modalities": "/".join(sorted({m for m in inst.get("Modality", []) if m})),
            "Series": int(inst["SeriesInstanceUID"].nunique(dropna=False)) if not inst.empty else 0,
            "Instances": len(inst),
        }
        if not show_phi:
            values.update({k: _HIDDEN for k in _PHI_FIELDS if values.get(k) is not None})
        return values

    def view(self, **kwargs: Any) -> Viewer:
        """Return an inline :class:`~dicomflow_lab.widgets.viewer.Viewer` of this study.

        Parameters
        ----------
        **kwargs
            Initial viewer state, e.g. ``annotations=False`` or ``invert=True``.

        Returns
        -------
        Viewer
            The widget; display it (last expression of a cell) to see it.
        """
        from dicomflow_lab.widgets.viewer import Viewer

        return Viewer(self, **kwargs)

    # -- display -------------------------------------------------------------------
    def __repr__(self) -> str:
        inst = self.instances()
        s = self.summary_values(show_phi=self.show_phi, instances=inst)
        head = (
            f"<Study {s['StudyDescription'] or '(no description)'} | {s['Modalities']} | "
            f"{s['Series']} series, {s['Instances']} instances"
        )
        if self.show_phi:
            head += f" | {s['PatientName']} ({s['PatientID']}) {s['StudyDate']}"
        lines = [head + ">"]
        for row in self.series(inst).itertuples():
            lines.append(
                f"  #{_fmt(row.SeriesNumber):>4} {_fmt(row.Modality):<3} "
                f"{_fmt(row.SeriesDescription):<32} {row.n_instances:>5} inst. "
                f"{_fmt(row.Rows)}x{_fmt(row.Columns)}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        inst = self.instances()
        s = self.summary_values(show_phi=self.show_phi, instances=inst)
        cells = []
        for row in self.series(inst).itertuples():
            files = inst.loc[
                inst["SeriesInstanceUID"].eq(row.SeriesInstanceUID)
                if row.SeriesInstanceUID is not None
                else inst["SeriesInstanceUID"].isna(),
                "file_path",
            ].tolist()
            thumb = _thumbnail_tag(files[len(files) // 2], self.workspace) if files else ""
            cells.append(
                "<tr>"
                f"<td>{thumb}</td><td>{_e(row.SeriesNumber)}</td><td>{_e(row.Modality)}</td>"
                f"<td>{_e(row.SeriesDescription)}</td><td>{_e(row.BodyPartExamined)}</td>"
                f"<td>{_e(row.Rows)}×{_e(row.Columns)}</td><td>{row.n_instances}</td>"
                f"<td>{_human_bytes(row.total_bytes)}</td></tr>"
            )
        patient = "".join(
            f"<tr><th>{k}</th><td>{_e(v)}</td></tr>"
            for k, v in s.items()
            if k not in ("Series", "Instances")
        )
        hint = (
            ""
            if self.show_phi
            else "<p class='dfl-hint'>Identifying values are hidden "
            "(<code>dfl.open(..., show_phi=True)</code> shows them).</p>"
        )
        return (
            f"<div class='dfl-study' data-dfl-ready='1'>{_STYLE}"
            f"<table class='dfl-study-summary'>{patient}</table>{hint}"
            "<table class='dfl-series'><thead><tr><th></th><th>#</th><th>Modality</th>"
            "<th>Description</th><th>Body part</th><th>Size</th><th>Instances</th>"
            f"<th>Bytes</th></tr></thead><tbody>{''.join(cells)}</tbody></table></div>"
        )


class StudyList(Sequence[Study]):
    """Several studies found under one opened path; indexable and iterable."""

    def __init__(self, studies: Sequence[Study]) -> None:
        self._studies = list(studies)

    def __getitem__(self, index: int) -> Study:  # type: ignore[override]
        return self._studies[index]

    def __len__(self) -> int:
        return len(self._studies)

    def __iter__(self) -> Iterator[Study]:
        return iter(self._studies)

    def __repr__(self) -> str:
        return f"<StudyList of {len(self)} studies>\n" + "\n".join(
            f"[{i}] {s!r}" for i, s in enumerate(self._studies)
        )

    def _repr_html_(self) -> str:
        parts = [f"<h4>[{i}]</h4>{s._repr_html_()}" for i, s in enumerate(self._studies)]
        return f"<div class='dfl-studies'><p>{len(self)} studies</p>{''.join(parts)}</div>"


def open(
    path: str | os.PathLike[str],
    *,
    workspace: Workspace | None = None,
    progress: bool = True,
    show_phi: bool | None = None,
    view: bool = True,
) -> Viewer | Study | StudyList:
    """Index a file, folder or DICOMDIR and show the study (or studies) it holds.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM file, a folder (searched recursively) or a DICOMDIR.
    workspace : Workspace, optional
        Where to index; default the process-wide default workspace.
    progress : bool, optional
        Show a progress bar while indexing.
    show_phi : bool, optional
        Show identifying values in the display; default the ``display.show_phi``
        setting (off).
    view : bool, optional
        Return the inline viewer of a single study (default), else the :class:`Study`.

    Returns
    -------
    Viewer, Study or StudyList
        The :class:`~dicomflow_lab.widgets.viewer.Viewer` of the study when the path holds
        one study (its data API is ``viewer.study``), the :class:`Study` with
        ``view=False``, and a :class:`StudyList` when there are several
        (``studies[i].view()`` opens one).

    Raises
    ------
    DicomflowError
        If nothing under `path` could be indexed (the message gives the first reasons).
    """
    ws = workspace or default_workspace()
    root = os.path.abspath(os.fspath(path))
    if not os.path.exists(root):
        raise FileNotFoundError(f"{root}: no such file or folder")
    report = ws.index(root, progress=progress)
    scope = os.path.dirname(root) if report.dicomdirs and os.path.isfile(root) else root
    uids = ws.sql(
        "SELECT DISTINCT StudyInstanceUID FROM instances"
        " WHERE file_path = ? OR starts_with(file_path, ?) ORDER BY 1",
        [scope, scope.rstrip(os.sep) + os.sep],
    )["StudyInstanceUID"].tolist()
    if not uids:
        errors = ws.index_errors().head(3)
        why = "; ".join(f"{r.file_path}: {r.reason}" for r in errors.itertuples())
        raise DicomflowError(
            f"no DICOM instances found under {root}" + (f" ({why})" if why else "")
        )
    studies = [Study(ws, uid, scope=scope, show_phi=show_phi) for uid in uids]
    if len(studies) > 1:
        return StudyList(studies)
    return studies[0].view() if view else studies[0]


_STYLE = (
    "<style>.dfl-study table td,.dfl-study table th{text-align:left;padding:2px 8px}"
    ".dfl-study .dfl-hint{color:#666;font-size:90%}</style>"
)


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _e(value: Any) -> str:
    return html.escape(_fmt(value))


def _thumbnail_tag(file_path: str, workspace: Workspace) -> str:
    from dicomflow_lab.core.thumbnail import cached_thumbnail_png

    try:
        png = cached_thumbnail_png(file_path, workspace.path / "thumbnails", size=96)
    except DicomflowError as exc:
        logger.debug("no thumbnail for %s: %s", file_path, exc)
        return "<span class='dfl-nothumb'>no preview</span>"
    data = base64.b64encode(png).decode("ascii")
    return f"<img class='dfl-thumb' alt='series preview' src='data:image/png;base64,{data}'/>"

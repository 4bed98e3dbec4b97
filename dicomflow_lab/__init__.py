"""dicomflow_lab: a Jupyter-native DICOM workbench.

>>> import dicomflow_lab as dfl
>>> ws = dfl.Workspace()          # the default workspace
>>> ws.index("study/")            # doctest: +SKIP
>>> dfl.open("study/")            # doctest: +SKIP
"""

from __future__ import annotations

from dicomflow_lab import data
from dicomflow_lab._logging import debug_logger
from dicomflow_lab.errors import (
    DicomflowError,
    DicomReadError,
    PixelDataError,
    StoreError,
    StoreLockedError,
)
from dicomflow_lab.study import Study, StudyList, open
from dicomflow_lab.workspace import IndexReport, Workspace

__version__ = "0.1.0"

__all__ = [
    "DicomReadError",
    "DicomflowError",
    "IndexReport",
    "PixelDataError",
    "StoreError",
    "StoreLockedError",
    "Study",
    "StudyList",
    "Workspace",
    "__version__",
    "data",
    "debug_logger",
    "open",
]

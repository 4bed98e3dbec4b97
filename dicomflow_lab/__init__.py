"""dicomflow_lab: a Jupyter-native DICOM workbench.

>>> import dicomflow_lab as dfl
>>> ws = dfl.Workspace()          # doctest: +SKIP
>>> ws.index("study/")            # doctest: +SKIP
>>> dfl.open("study/")            # doctest: +SKIP

The public names are imported lazily (PEP 562), so that ``import dicomflow_lab.core``
in a worker process stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dicomflow_lab._logging import debug_logger
from dicomflow_lab.errors import (
    AnonymizationError,
    DicomflowError,
    DicomReadError,
    EditError,
    PixelDataError,
    StoreError,
    StoreLockedError,
)

if TYPE_CHECKING:  # pragma: no cover
    from dicomflow_lab import anonymize, data
    from dicomflow_lab._anonymize_run import AnonymizationReport
    from dicomflow_lab.editor import TagEditor
    from dicomflow_lab.study import Study, StudyList, open
    from dicomflow_lab.widgets.anonymize_panel import AnonymizePanel
    from dicomflow_lab.workspace import IndexReport, Workspace

__version__ = "0.1.0"

__all__ = [
    "AnonymizationError",
    "AnonymizationReport",
    "AnonymizePanel",
    "DicomReadError",
    "DicomflowError",
    "EditError",
    "IndexReport",
    "PixelDataError",
    "StoreError",
    "StoreLockedError",
    "Study",
    "StudyList",
    "TagEditor",
    "Workspace",
    "__version__",
    "anonymize",
    "data",
    "debug_logger",
    "open",
]

_LAZY = {
    "data": ("dicomflow_lab.data", None),
    "anonymize": ("dicomflow_lab.anonymize", None),
    "AnonymizationReport": ("dicomflow_lab._anonymize_run", "AnonymizationReport"),
    "Study": ("dicomflow_lab.study", "Study"),
    "StudyList": ("dicomflow_lab.study", "StudyList"),
    "open": ("dicomflow_lab.study", "open"),
    "IndexReport": ("dicomflow_lab.workspace", "IndexReport"),
    "Workspace": ("dicomflow_lab.workspace", "Workspace"),
    "TagEditor": ("dicomflow_lab.editor", "TagEditor"),
    "AnonymizePanel": ("dicomflow_lab.widgets.anonymize_panel", "AnonymizePanel"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'dicomflow_lab' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

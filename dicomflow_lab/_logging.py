"""The library logger: silent by default, opt-in debugging.

Log records never carry DICOM element values (patient data) above DEBUG.
"""

from __future__ import annotations

import logging

__all__ = ["debug_logger"]

logging.getLogger("dicomflow_lab").addHandler(logging.NullHandler())


def debug_logger(level: int = logging.DEBUG) -> logging.Logger:
    """Send dicomflow_lab's log records to stderr.

    Parameters
    ----------
    level : int, optional
        The level to show, ``logging.DEBUG`` by default. DEBUG records may contain
        patient data (element values); use it on your own machine only.

    Returns
    -------
    logging.Logger
        The ``dicomflow_lab`` logger.
    """
    logger = logging.getLogger("dicomflow_lab")
    if not any(getattr(h, "_dfl_debug", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname).1s %(name)s: %(message)s"))
        handler._dfl_debug = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger

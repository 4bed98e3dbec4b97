"""Core DICOM functions: reading, indexing, pixels; no database and no widgets."""

__all__: list[str] = []

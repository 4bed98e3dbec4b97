"""The notebook panels: thin anywidget views over the backend (the only place anywidget is used)."""

from dicomflow_lab.widgets.anonymize_panel import AnonymizePanel
from dicomflow_lab.widgets.tag_editor import TagEditorPanel
from dicomflow_lab.widgets.viewer import Viewer

__all__ = ["AnonymizePanel", "TagEditorPanel", "Viewer"]

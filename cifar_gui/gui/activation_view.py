"""Placeholder for the activation viewer (its issue replaces this module)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from cifar_gui.gui.state import AppState


class ActivationPanel(QWidget):
    """Placeholder panel."""

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Coming soon: the activation viewer."))

    def classify_files(self, paths: list[str]) -> None:
        """Classify dropped or opened image files (placeholder: reports them)."""
        self.state.message.emit(f"{len(paths)} image(s) to classify: coming soon")

"""Placeholder for model evaluation (its issue replaces this module)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from cifar_gui.gui.state import AppState


class EvaluationPanel(QWidget):
    """Placeholder panel."""

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Coming soon: test accuracy, confusion matrix, mistakes."))

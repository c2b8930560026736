"""A frameless area that scrolls a panel's content up and down, never sideways."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget


def vertical_scroll_area(content: QWidget) -> QScrollArea:
    """``content`` in an area that scrolls when the window is shorter than it, so that the
    content never makes the window taller (the default 800 px window, a laptop screen)."""
    area = QScrollArea()
    area.setWidget(content)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area

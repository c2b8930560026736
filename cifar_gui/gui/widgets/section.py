"""A titled section that folds away: a header with an arrow, and its content below it.

The Training tab shows the everyday settings and keeps the rest (training details,
transfer, the offline base, advanced) folded until they are wanted, as Teachable Machine's
"Advanced" does.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QSizePolicy, QToolButton, QVBoxLayout, QWidget


class Section(QWidget):
    """``content`` under a header button that shows or hides it (closed unless ``open``)."""

    toggled = Signal(bool)

    def __init__(self, title: str, content: QWidget, open: bool = False):
        super().__init__()
        self.content = content
        self.header = QToolButton()
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        font = self.header.font()
        font.setBold(True)
        self.header.setFont(font)
        self.header.toggled.connect(self._show)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(content)
        self.header.setChecked(open)
        self._show(open)

    @property
    def is_open(self) -> bool:
        return self.header.isChecked()

    def set_open(self, open: bool) -> None:
        self.header.setChecked(open)

    def _show(self, open: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if open else Qt.ArrowType.RightArrow)
        self.content.setVisible(open)
        self.toggled.emit(open)

"""A fixed grid of a few images with captions (the seed samples, the augmentation preview)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from cifar_gui.gui.widgets.images import to_pixmap


class ImageCell(QWidget):
    """One image over its caption."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.caption.font()
        font.setPointSizeF(font.pointSizeF() * 0.9)
        self.caption.setFont(font)
        layout.addWidget(self.image)
        layout.addWidget(self.caption)

    def set_image(self, image: np.ndarray, caption: str, size: int) -> None:
        self.image.setPixmap(to_pixmap(image, size))
        self.image.setFixedSize(size, size)
        self.caption.setText(caption)
        self.caption.setVisible(bool(caption))


class ImageGrid(QWidget):
    """Shows ``rows * columns`` images; cells are reused when the count stays the same."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._layout = QGridLayout(self)
        self._layout.setSpacing(4)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._cells: list[ImageCell] = []
        self._columns = 0
        self.images = np.zeros((0, 32, 32, 3), np.uint8)  # what is shown, for tests and export
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def count(self) -> int:
        """Number of images shown."""
        return len(self._cells)

    def cells(self) -> list[ImageCell]:
        return list(self._cells)

    def set_images(
        self,
        images: np.ndarray,
        columns: int,
        size: int = 96,
        captions: Sequence[str] | None = None,
    ) -> None:
        """Show ``images`` (N, H, W, 3) uint8, ``columns`` per row, each ``size`` pixels wide."""
        columns = max(1, columns)
        if len(images) != len(self._cells) or columns != self._columns:
            self._rebuild(len(images), columns)
        for i, (cell, image) in enumerate(zip(self._cells, images, strict=True)):
            cell.set_image(image, captions[i] if captions else "", size)
        self.images = np.asarray(images)

    def _rebuild(self, count: int, columns: int) -> None:
        for cell in self._cells:
            self._layout.removeWidget(cell)
            cell.deleteLater()
        self._cells = []
        for i in range(count):
            cell = ImageCell(self)
            self._layout.addWidget(cell, i // columns, i % columns)
            self._cells.append(cell)
        self._columns = columns

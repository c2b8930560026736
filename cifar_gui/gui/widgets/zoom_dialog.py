"""A window that shows one small image large, with nearest-neighbour pixels and a caption."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from cifar_gui.gui.widgets.images import to_pixmap


class ZoomDialog(QDialog):
    """Non-modal: clicking another thumbnail updates the same window."""

    def __init__(self, parent: QWidget | None = None, size: int = 384):
        super().__init__(parent)
        self.setWindowTitle("Image")
        self.size_px = size  # 384 = 12 screen pixels per CIFAR pixel
        layout = QVBoxLayout(self)
        self.image_label = QLabel()
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.setFixedSize(size, size)
        self.caption_label = QLabel()
        self.caption_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(self.image_label)
        layout.addWidget(self.caption_label)
        layout.addWidget(buttons)

    def show_image(self, image: np.ndarray, caption: str) -> None:
        """Show ``image`` upscaled and ``caption`` below it, and raise the window."""
        self.image_label.setPixmap(to_pixmap(image, self.size_px))
        self.caption_label.setText(caption)
        self.setWindowTitle(caption)
        self.show()
        self.raise_()

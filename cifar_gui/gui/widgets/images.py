"""numpy uint8 images to QImage / QPixmap, upscaled nearest-neighbour so the pixels stay visible."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap


def to_qimage(image: np.ndarray) -> QImage:
    """An (H, W, 3) or (H, W) uint8 array as a QImage that owns its pixels."""
    array = np.ascontiguousarray(image, dtype=np.uint8)
    if array.ndim == 2:
        height, width = array.shape
        qimage = QImage(array.data, width, height, width, QImage.Format.Format_Grayscale8)
    elif array.ndim == 3 and array.shape[2] == 3:
        height, width = array.shape[:2]
        qimage = QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    else:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {array.shape}")
    # The QImage above borrows numpy's buffer; the copy owns its pixels.
    return qimage.copy()


def to_pixmap(image: np.ndarray, size: int) -> QPixmap:
    """The image scaled to fit ``size`` x ``size`` pixels with nearest-neighbour sampling."""
    qimage = to_qimage(image)
    scaled = qimage.scaled(
        size,
        size,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.FastTransformation,  # nearest neighbour: crisp 32x32 pixels
    )
    return QPixmap.fromImage(scaled)

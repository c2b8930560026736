"""Pieces of the activation viewer: pixel view, colour bar, channel grid, probability bars."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QSizePolicy, QWidget

from cifar_gui.gui.text import format_probability
from cifar_gui.gui.widgets.colormaps import TERRAIN_12
from cifar_gui.gui.widgets.images import to_qimage


def upscale(rgb: np.ndarray, size: int) -> QPixmap:
    """An RGB array as a pixmap scaled to fit ``size`` pixels, each array pixel a crisp block.

    The factor is an integer so every array pixel covers the same number of screen pixels
    (tests read values back at block centres).
    """
    height, width = rgb.shape[:2]
    factor = max(1, size // max(height, width))
    image = to_qimage(rgb).scaled(
        width * factor,
        height * factor,
        Qt.AspectRatioMode.IgnoreAspectRatio,
        Qt.TransformationMode.FastTransformation,
    )
    return QPixmap.fromImage(image)


class PixelView(QLabel):
    """A small array shown large with nearest-neighbour scaling; keeps the array it shows."""

    def __init__(self, size: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.view_size = size
        self.rgb: np.ndarray | None = None  # what is shown, (H, W, 3) uint8
        self.setFixedSize(size, size)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("background: palette(base); border: 1px solid palette(mid);")

    def show_rgb(self, rgb: np.ndarray | None) -> None:
        """Show an (H, W, 3) uint8 array, or clear the view."""
        self.rgb = rgb
        if rgb is None:
            self.clear()
        else:
            self.setPixmap(upscale(rgb, self.view_size - 2))

    def block_factor(self) -> int:
        """Screen pixels per array pixel."""
        if self.rgb is None:
            return 0
        return max(1, (self.view_size - 2) // max(self.rgb.shape[:2]))


class ColorBar(QWidget):
    """Vertical legend of a binned colour map: one box per colour, value at every break."""

    def __init__(self, lut: np.ndarray = TERRAIN_12, parent: QWidget | None = None):
        super().__init__(parent)
        self.lut = lut
        self.vmin, self.vmax = 0.0, 1.0
        self.setMinimumWidth(78)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)

    def set_range(self, vmin: float, vmax: float) -> None:
        self.vmin, self.vmax = float(vmin), float(vmax)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(78, 288)

    def paintEvent(self, event: QPaintEvent) -> None:
        bins = len(self.lut)
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        top = metrics.height() // 2
        box_h = (self.height() - 2 * top) / bins
        flat = not self.vmax > self.vmin
        for i in range(bins):  # lowest colour at the bottom, as R's legends
            y = top + (bins - 1 - i) * box_h
            r, g, b = (int(v) for v in self.lut[i])
            painter.fillRect(QRectF(0, y, 18, box_h), QColor(r, g, b))
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawRect(QRectF(0, top, 18, bins * box_h))
        edges = [self.vmin] if flat else np.linspace(self.vmin, self.vmax, bins + 1)
        step = max(1, int(np.ceil(metrics.height() / max(box_h, 1))))  # skip labels that collide
        for i, value in enumerate(edges):
            if i % step and i != len(edges) - 1:
                continue
            y = top + (bins - i) * box_h if not flat else top + bins * box_h
            painter.drawLine(18, int(y), 22, int(y))
            painter.drawText(QPoint(25, int(y + metrics.ascent() / 2 - 1)), f"{value:.3g}")
        painter.end()


class ChannelGrid(QLabel):
    """A mosaic of all channels of a layer; a click selects the channel under the cursor."""

    channel_clicked = Signal(int)

    def __init__(self, size: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.view_size = size
        self.setFixedSize(size, size)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._base: QPixmap | None = None
        self._tile = (0, 0)  # tile height, width in array pixels
        self._grid = (0, 0)  # rows, columns
        self._count = 0
        self._factor = 1
        self._gap = 1

    def set_mosaic(
        self,
        mosaic: np.ndarray,
        tile: tuple[int, int],
        grid: tuple[int, int],
        count: int,
        gap: int = 1,
    ) -> None:
        """Show a mosaic from :func:`channel_mosaic`: ``count`` tiles of ``tile`` pixels."""
        self._base = upscale(mosaic, self.view_size)
        self._factor = max(1, self.view_size // max(mosaic.shape[:2]))
        self._tile, self._grid, self._count, self._gap = tile, grid, count, gap

    def block_factor(self) -> int:
        """Screen pixels per mosaic pixel."""
        return self._factor

    def show_plain(self) -> None:
        """Show the mosaic with no tile outlined."""
        if self._base is not None:
            self.setPixmap(self._base)

    def select(self, channel: int) -> None:
        """Outline the tile of ``channel`` (0-based)."""
        if self._base is None:
            return
        pixmap = QPixmap(self._base)
        rect = self.tile_rect(channel)
        painter = QPainter(pixmap)
        painter.setPen(QPen(QColor(220, 0, 0), 2))
        painter.drawRect(rect.adjusted(-1, -1, 1, 1))
        painter.end()
        self.setPixmap(pixmap)

    def tile_rect(self, channel: int) -> QRectF:
        """Screen rectangle of a channel's tile, in this label's pixmap coordinates."""
        (th, tw), (_, cols), f = self._tile, self._grid, self._factor
        row, col = divmod(channel, max(cols, 1))
        return QRectF(col * (tw + self._gap) * f, row * (th + self._gap) * f, tw * f, th * f)

    def channel_at(self, x: float, y: float) -> int | None:
        """The channel under pixmap coordinates (x, y), or None over a gap or outside."""
        (th, tw), (rows, cols), f = self._tile, self._grid, self._factor
        if not self._count or x < 0 or y < 0:
            return None
        col, col_off = divmod(int(x // f), tw + self._gap)
        row, row_off = divmod(int(y // f), th + self._gap)
        if col_off >= tw or row_off >= th or col >= cols or row >= rows:
            return None
        channel = row * cols + col
        return channel if channel < self._count else None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        channel = self.channel_at(event.position().x(), event.position().y())
        if channel is not None:
            self.channel_clicked.emit(channel)


class ProbabilityBars(QWidget):
    """One bar per class with its probability; the winner in bold."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setVerticalSpacing(2)
        self._rows: list[tuple[QLabel, QProgressBar]] = []

    def set_probabilities(self, names: Sequence[str], probabilities: Sequence[float]) -> None:
        """Show ``probabilities`` (one per name); an empty list clears the bars."""
        if len(names) != len(self._rows):
            for label, bar in self._rows:
                label.deleteLater()
                bar.deleteLater()
            self._rows = []
            for i in range(len(names)):
                label, bar = QLabel(), QProgressBar()
                bar.setRange(0, 1000)
                bar.setFixedHeight(14)
                bar.setTextVisible(True)
                self._layout.addWidget(label, i, 0)
                self._layout.addWidget(bar, i, 1)
                self._rows.append((label, bar))
        best = int(np.argmax(probabilities)) if len(probabilities) else -1
        for i, ((label, bar), name, p) in enumerate(
            zip(self._rows, names, probabilities, strict=True)
        ):
            label.setText(f"<b>{name}</b>" if i == best else name)
            bar.setValue(round(1000 * p))
            bar.setFormat(format_probability(p))

    def values(self) -> list[float]:
        """The probabilities shown (for tests)."""
        return [bar.value() / 1000 for _, bar in self._rows]

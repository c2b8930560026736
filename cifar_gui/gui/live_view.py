"""The Live tab: watch the network learn while it trains (the ConvNetJS CIFAR-10 demo's view,
for a real Keras model).

The training process makes each :class:`~cifar_gui.engine.events.LiveSnapshot` (it owns the
model) at the end of every epoch and, when asked, every N batches; this view only draws its
small arrays with the Activations tab's widgets: the probe image and its Grad-CAM map, every
channel of the chosen layer, the first convolution's filters, per-layer health sparklines and
the prediction strip. Changing the image, layer or refresh interval sends a new
:class:`~cifar_gui.engine.events.LiveRequest`; it takes effect at the next refresh.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cifar_gui import tutorial
from cifar_gui.engine.events import LiveRequest, LiveSnapshot
from cifar_gui.gui.text import format_probability
from cifar_gui.gui.widgets.activation_widgets import ChannelGrid, PixelView
from cifar_gui.gui.widgets.colormaps import channel_mosaic, filter_mosaic, heat_overlay
from cifar_gui.gui.widgets.images import to_pixmap

RIGHT, WRONG = "#1a7f37", "#c62828"  # the strip's colours: true class predicted or not
# Health sparklines: (title, LayerHealth field, drawn as log10)
HEALTH = (
    ("mean activation", "mean", False),
    ("zero fraction", "zero_fraction", False),
    ("log10 update / weight per step", "update_ratio", True),
)


class Sparklines(QWidget):
    """One row per layer, one small line per health field, each on its own range, with the
    last value: drawn with one QPainter pass (a refresh of VGG16's 45 lines takes ~2 ms, where
    45 pyqtgraph plots took ~70 ms to repaint and 1.4 s to create)."""

    ROW, LABEL, CELL, HEADER = 38, 92, 110, 18

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: dict[str, list[list[float]]] = {}  # layer -> one list per HEALTH field
        self.setMinimumWidth(self.LABEL + len(HEALTH) * self.CELL)

    def sizeHint(self) -> QSize:
        return QSize(self.LABEL + len(HEALTH) * self.CELL, self.HEADER + self.ROW * len(self.rows))

    def set_rows(self, rows: dict[str, list[list[float]]]) -> None:
        """Show ``rows`` (kept by reference: call again, or update(), after they change)."""
        self.rows = rows
        self.setMinimumHeight(self.HEADER + self.ROW * len(rows))
        self.updateGeometry()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("white"))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = painter.font()
        font.setPointSizeF(7.5)
        painter.setFont(font)
        cell = max(self.CELL, (self.width() - self.LABEL) // len(HEALTH))
        painter.setPen(QColor("#555"))
        for k, (title, _, _) in enumerate(HEALTH):
            painter.drawText(QRectF(self.LABEL + k * cell, 0, cell, self.HEADER),
                             Qt.AlignmentFlag.AlignCenter, title)  # fmt: skip
        for r, (name, fields) in enumerate(self.rows.items()):
            top = self.HEADER + r * self.ROW
            painter.setPen(QColor("#333"))
            painter.drawText(QRectF(2, top, self.LABEL - 4, self.ROW),
                             Qt.AlignmentFlag.AlignVCenter, name.split("/")[-1])  # fmt: skip
            for k, values in enumerate(fields):
                box = QRectF(self.LABEL + k * cell + 4, top + 4, cell - 44, self.ROW - 10)
                self._line(painter, box, values)
        painter.end()

    def _line(self, painter: QPainter, box: QRectF, values: list[float]) -> None:
        painter.setPen(QPen(QColor("#ddd"), 1))
        painter.drawLine(box.bottomLeft(), box.bottomRight())
        known = [(i, v) for i, v in enumerate(values) if math.isfinite(v)]
        if not known:
            return
        lo, hi = min(v for _, v in known), max(v for _, v in known)
        span = hi - lo or 1.0
        steps = max(len(values) - 1, 1)
        points = QPolygonF(
            [
                QPointF(box.left() + box.width() * i / steps,
                        box.bottom() - box.height() * ((v - lo) / span if hi > lo else 0.5))
                for i, v in known
            ]
        )  # fmt: skip
        painter.setPen(QPen(QColor("#1f77b4"), 1.5))
        painter.drawPolyline(points)
        painter.setPen(QColor("#333"))
        painter.drawText(QRectF(box.right() + 2, box.top(), 40, box.height()),
                         Qt.AlignmentFlag.AlignVCenter, f"{known[-1][1]:.3g}")  # fmt: skip


class LiveView(QWidget):
    """Draws live snapshots; emits :attr:`request_changed` when the user asks for another."""

    request_changed = Signal(object)  # LiveRequest

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.snapshot: LiveSnapshot | None = None
        self.refreshes = 0  # snapshots drawn in this run
        # layer name -> one list per HEALTH entry, a value per refresh
        self.health: dict[str, list[list[float]]] = {}
        self._build()

    # -- layout ------------------------------------------------------------------------

    def _build(self) -> None:
        self.status = QLabel(
            "Start a run in the Training tab: its network appears here as it learns."
        )
        self.status.setWordWrap(True)
        self.image_spin = QSpinBox()
        self.image_spin.setRange(1, 1_000_000)
        self.image_spin.setValue(tutorial.TEST_IMAGE)
        self.image_spin.setToolTip("1-based test image of the run, as the seed's p <- 5")
        self.layer_combo = QComboBox()
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo.addItem("first convolution", None)
        self.every_spin = QSpinBox()
        self.every_spin.setRange(0, 100_000)
        self.every_spin.setSpecialValueText("epoch end only")
        self.every_spin.setSuffix(" batches")
        self.every_spin.setToolTip(
            "Also refresh every N training batches (0: only at the end of each epoch, which "
            "costs least: see the README's measured cost)"
        )
        for signal in (
            self.image_spin.valueChanged,
            self.layer_combo.activated,
            self.every_spin.valueChanged,
        ):
            signal.connect(self._emit_request)
        controls = QHBoxLayout()
        for label, widget in (
            ("Test image", self.image_spin),
            ("Layer", self.layer_combo),
            ("Refresh every", self.every_spin),
        ):
            controls.addWidget(QLabel(label))
            controls.addWidget(widget)
        controls.addStretch(1)

        self.input_view = PixelView(128)
        self.cam_view = PixelView(128)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.prediction = QLabel()
        self.prediction.setWordWrap(True)
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Probe image</b>"))
        left.addWidget(self.input_view)
        left.addWidget(self.caption)
        cam_title = QLabel("Grad-CAM of the predicted class")
        cam_title.setWordWrap(True)
        left.addWidget(cam_title)
        left.addWidget(self.cam_view)
        left.addWidget(self.prediction)
        left.addStretch(1)
        left_box = QWidget()
        left_box.setLayout(left)
        left_box.setFixedWidth(170)

        self.channels_title = QLabel()
        self.channels = ChannelGrid(256)
        self.filters_title = QLabel()
        self.filters_title.setWordWrap(True)
        self.filters = ChannelGrid(160)
        self.filters.setCursor(Qt.CursorShape.ArrowCursor)
        middle = QVBoxLayout()
        middle.addWidget(self.channels_title)
        middle.addWidget(self.channels)
        middle.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.filters_title)
        right.addWidget(self.filters)
        right.addStretch(1)

        self.health_view = Sparklines()
        health_area = QScrollArea()
        health_area.setWidget(self.health_view)
        health_area.setWidgetResizable(True)
        health_area.setMinimumWidth(240)
        health_box = QVBoxLayout()
        health_box.addWidget(
            QLabel("<b>Layer health</b> (one row per layer, one point per refresh)")
        )
        health_box.addWidget(health_area, 1)

        views = QHBoxLayout()
        views.addWidget(left_box)
        views.addLayout(middle)
        views.addLayout(right)
        views.addLayout(health_box, 1)

        self.strip_title = QLabel("<b>Prediction strip</b>")
        self.strip_cells: list[tuple[QLabel, QLabel]] = []
        strip = QGridLayout()
        for i in range(8):
            picture, value = QLabel(), QLabel()
            value.setAlignment(Qt.AlignmentFlag.AlignCenter)
            strip.addWidget(picture, 0, i, Qt.AlignmentFlag.AlignCenter)
            strip.addWidget(value, 1, i)
            self.strip_cells.append((picture, value))
        self.running = QLabel()

        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.status)
        layout.addLayout(views, 1)
        layout.addWidget(self.strip_title)
        layout.addLayout(strip)
        layout.addWidget(self.running)

    # -- requests ----------------------------------------------------------------------

    def request(self) -> LiveRequest:
        """What the controls ask for."""
        every = self.every_spin.value()
        return LiveRequest(
            test_index=self.image_spin.value() - 1,
            layer=self.layer_combo.currentData(),
            every_batches=every or None,
        )

    def _emit_request(self, *_args) -> None:
        self.request_changed.emit(self.request())

    # -- snapshots ---------------------------------------------------------------------

    def begin_run(self) -> None:
        """A run starts: forget the previous run's health curves."""
        self.snapshot, self.refreshes, self.health = None, 0, {}
        self.health_view.set_rows(self.health)
        self.status.setText("Waiting for the first refresh (the end of the first epoch)…")

    def show_snapshot(self, snap: LiveSnapshot) -> None:
        """Draw one snapshot."""
        self.snapshot = snap
        self.refreshes += 1
        where = "end" if snap.batch >= snap.steps else f"batch {snap.batch} of {snap.steps}"
        self.status.setText(f"The model at epoch {snap.epoch + 1}, {where}")
        self._fill_layers(snap.layers)
        self.input_view.show_rgb(snap.image)
        self.caption.setText(snap.image_caption)
        self.cam_view.show_rgb(None if snap.cam is None else heat_overlay(snap.image, snap.cam))
        best = int(np.argmax(snap.probabilities))
        names = snap.class_names or tuple(f"class {i}" for i in range(len(snap.probabilities)))
        self.prediction.setText(
            f"Predicted <b>{names[best]}</b> ({format_probability(snap.probabilities[best])})"
        )
        height, width, count = snap.activation.shape
        flat = height == width == 1
        mosaic, grid = channel_mosaic(snap.activation, gap=0 if flat else 1, per_channel=not flat)
        self.channels.set_mosaic(mosaic, (height, width), grid, count, 0 if flat else 1)
        self.channels.show_plain()
        kind = "units" if flat else "channels"
        self.channels_title.setText(f"All {count} {kind} of {snap.layer}")
        if snap.filters is not None:
            mosaic, grid = filter_mosaic(snap.filters)
            fh, fw, _, filters = snap.filters.shape
            self.filters.set_mosaic(mosaic, (fh, fw), grid, filters)
            self.filters.show_plain()
            self.filters_title.setText(f"The {filters} filters of {snap.filters_layer}")
        self.filters.setVisible(snap.filters is not None)
        self._show_strip(snap, names)
        self._add_health(snap)

    def _fill_layers(self, layers: tuple[str, ...]) -> None:
        listed = [self.layer_combo.itemData(i) for i in range(1, self.layer_combo.count())]
        if listed == list(layers):
            return
        current = self.layer_combo.currentData()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItem("first convolution", None)
        for name in layers:
            self.layer_combo.addItem(name, name)
        self.layer_combo.setCurrentIndex(max(self.layer_combo.findData(current), 0))
        self.layer_combo.blockSignals(False)

    def _show_strip(self, snap: LiveSnapshot, names: tuple[str, ...]) -> None:
        for i, (picture, value) in enumerate(self.strip_cells):
            if i >= len(snap.strip_indices):
                picture.clear()
                value.clear()
                continue
            right = snap.strip_correct[i]
            picture.setPixmap(to_pixmap(snap.strip_images[i], 64))
            picture.setToolTip(
                f"Test image {snap.strip_indices[i] + 1}: {names[snap.strip_labels[i]]}"
            )
            probability = format_probability(snap.strip_true_probability[i])
            value.setText(f"{names[snap.strip_labels[i]]}: {probability}")
            value.setStyleSheet(f"color: {RIGHT if right else WRONG}; font-weight: bold;")
        self.running.setText(
            f"Running accuracy over the last {snap.running_count} test predictions: "
            f"{snap.running_accuracy:.1%}"
        )

    def _add_health(self, snap: LiveSnapshot) -> None:
        for layer in snap.health:
            rows = self.health.setdefault(layer.name, [[] for _ in HEALTH])
            for k, (_, field, log) in enumerate(HEALTH):
                value = float(getattr(layer, field))
                if log:
                    value = math.log10(value) if value > 0 else math.nan
                rows[k].append(value)
        self.health_view.set_rows(self.health)

    def health_values(self, name: str, field: str) -> list[float]:
        """The values drawn for one layer and health field, one per refresh."""
        k = [f for _, f, _ in HEALTH].index(field)
        return list(self.health[name][k])

"""The Live tab: watch the network learn while it trains (the ConvNetJS CIFAR-10 demo's view,
for a real Keras model).

The training process makes each :class:`~cifar_gui.engine.events.LiveSnapshot` (it owns the
model) at the end of every epoch and, when asked, every N batches; this view only draws its
small arrays with the Activations tab's widgets: the probe image and its Grad-CAM map, every
channel of the chosen layer, the first convolution's filters, per-layer health sparklines and
the prediction strip, beside the run's loss and accuracy as they are reported. Changing the
image, layer or refresh interval sends a new :class:`~cifar_gui.engine.events.LiveRequest`;
it takes effect at the next refresh. The colour map only re-colours what is shown.
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
from cifar_gui.engine.events import EpochEvent, LiveRequest, LiveSnapshot
from cifar_gui.gui.text import format_probability
from cifar_gui.gui.training.trace import BatchUpdate
from cifar_gui.gui.widgets.activation_widgets import ChannelGrid, ColorBar, PixelView
from cifar_gui.gui.widgets.colormaps import (
    COLOR_MAPS,
    channel_mosaic,
    filter_mosaic,
    heat_overlay,
    jet,
)
from cifar_gui.gui.widgets.images import to_pixmap
from cifar_gui.gui.widgets.training_plots import METRICS, TrainingPlots

PROBE_SIZE = 112  # pixels of the probe image and of its Grad-CAM map
CHANNELS_SIZE = 400  # pixels of the mosaic of the layer's channels (a 32x32 map at 2x)
FILTERS_SIZE = 224  # pixels of the mosaic of the first convolution's filters
CAM_LUT = jet(np.linspace(0.05, 0.95, 10))  # Grad-CAM's colours, as its legend shows them
RIGHT, WRONG = "#1a7f37", "#c62828"  # the strip's colours: true class predicted or not
# Health sparklines: (title, LayerHealth field, drawn as log10)
HEALTH = (
    ("mean activation", "mean", False),
    ("zero fraction", "zero_fraction", False),
    ("log10 update ratio", "update_ratio", True),  # the step's size over the weights' size
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
        self.image_spin.setToolTip(
            "Test image of the run, counted from 1 (the tutorial's p <- 5 is image 5)"
        )
        self.layer_combo = QComboBox()
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo.addItem("first convolution", None)
        self.every_spin = QSpinBox()
        self.every_spin.setRange(0, 100_000)
        self.every_spin.setSpecialValueText("epoch end only")
        self.every_spin.setSuffix(" batches")
        self.every_spin.setToolTip(
            "Also refresh every N training batches (0: only at the end of each epoch, which "
            "costs least: see docs/speed.md)"
        )
        self.colour_combo = QComboBox()
        self.colour_combo.addItems(list(COLOR_MAPS))
        self.colour_combo.setToolTip(
            "Colours of the channels: the tutorial's terrain.colors(12), viridis or grey"
        )
        self.colour_combo.currentIndexChanged.connect(self._recolour)
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
            ("Colours", self.colour_combo),
        ):
            controls.addWidget(QLabel(label))
            controls.addWidget(widget)
        controls.addStretch(1)

        self.input_view = PixelView(PROBE_SIZE)
        self.cam_view = PixelView(PROBE_SIZE)
        self.cam_scale = ColorBar(CAM_LUT)
        self.cam_scale.setFixedHeight(PROBE_SIZE)
        self.cam_scale.setToolTip(
            "Grad-CAM: how much each region moved the predicted class's score (0 to 1)"
        )
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.prediction = QLabel()
        self.prediction.setWordWrap(True)
        self.channels_title = QLabel()
        self.channels = ChannelGrid(CHANNELS_SIZE)
        self.filters_title = QLabel()
        self.filters_title.setWordWrap(True)
        self.filters = ChannelGrid(FILTERS_SIZE)
        self.filters.setCursor(Qt.CursorShape.ArrowCursor)
        probe = QGridLayout()
        probe.addWidget(QLabel("<b>Probe image</b>"), 0, 0)
        probe.addWidget(QLabel("<b>Grad-CAM</b>"), 0, 1)
        probe.addWidget(self.input_view, 1, 0)
        cam = QHBoxLayout()
        cam.addWidget(self.cam_view)
        cam.addWidget(self.cam_scale)
        probe.addLayout(cam, 1, 1)
        probe.addWidget(self.caption, 2, 0)
        probe.addWidget(self.prediction, 2, 1)
        probe.addWidget(self.filters_title, 3, 0, 1, 2)
        probe.addWidget(self.filters, 4, 0, 1, 2)
        probe.setRowStretch(5, 1)
        channels = QVBoxLayout()
        channels.addWidget(self.channels_title)
        channels.addWidget(self.channels)
        channels.addStretch(1)

        self.plots = TrainingPlots(legend=False)
        self.plots.setMinimumHeight(170)
        lines = QLabel(
            "Grey: training loss and accuracy, running and smoothed; dots: training per "
            "epoch; dashed: validation; star: the best epoch."
        )
        lines.setWordWrap(True)
        self.health_view = Sparklines()
        health_area = QScrollArea()
        health_area.setWidget(self.health_view)
        health_area.setWidgetResizable(True)
        right = QVBoxLayout()
        right.addWidget(self.plots, 1)
        right.addWidget(lines)
        health_title = QLabel("<b>Layer health</b> (a point per refresh)")
        health_title.setToolTip(
            "Per layer with weights: the mean of its outputs, the share of outputs that are "
            "zero (a ReLU layer near 1.0 is dying), and log10 of the size of one training "
            "step's change to its kernel over the kernel's size (about -3 is healthy; frozen "
            "layers show nothing)"
        )
        right.addWidget(health_title)
        right.addWidget(health_area, 1)

        views = QHBoxLayout()
        views.addLayout(probe)
        views.addLayout(channels)
        views.addLayout(right, 1)

        self.strip_title = QLabel(
            "<b>Prediction strip</b>: the probability of the true class of eight test images"
        )
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
        """A run starts: forget the previous run's curves."""
        self.snapshot, self.refreshes, self.health = None, 0, {}
        self.health_view.set_rows(self.health)
        self.plots.start_live()
        self.plots.set_epoch_span(None)
        self.status.setText("Waiting for the first refresh (the end of the first epoch)…")

    def add_batches(self, update: BatchUpdate) -> None:
        """New points of the run's smoothed per-batch loss and accuracy."""
        if not self.plots.live_batches["x"]:
            self.plots.set_epoch_span(update.event.epochs)  # fixed while it runs
        self.plots.extend_batches(update.x, {m: getattr(update, m) for m in METRICS})

    def add_epoch(self, event: EpochEvent) -> None:
        """An epoch's training and validation loss and accuracy."""
        self.plots.extend_history(event.metrics)

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
        self._show_channels(snap)
        if snap.filters is not None:
            mosaic, grid = filter_mosaic(snap.filters)
            fh, fw, _, filters = snap.filters.shape
            self.filters.set_mosaic(mosaic, (fh, fw), grid, filters)
            self.filters.show_plain()
            self.filters_title.setText(f"The {filters} filters of {snap.filters_layer}")
        self.filters.setVisible(snap.filters is not None)
        self._show_strip(snap, names)
        self._add_health(snap)

    def _show_channels(self, snap: LiveSnapshot) -> None:
        height, width, count = snap.activation.shape
        flat = height == width == 1
        lut = COLOR_MAPS[self.colour_combo.currentText()]
        mosaic, grid = channel_mosaic(
            snap.activation, gap=0 if flat else 1, per_channel=not flat, lut=lut
        )
        self.channels.set_mosaic(mosaic, (height, width), grid, count, 0 if flat else 1)
        self.channels.show_plain()
        kind = "units" if flat else "channels"
        self.channels_title.setText(f"All {count} {kind} of {snap.layer}")

    def _recolour(self) -> None:
        if self.snapshot is not None:
            self._show_channels(self.snapshot)

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
            f"{format_probability(snap.running_accuracy)}"
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

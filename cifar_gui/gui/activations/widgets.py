"""The Activations tab's own widgets: the input column (the image as the model sees it,
Grad-CAM, the prediction), the first convolution's filters, one channel's filter, and the
table of dropped files. Texts come from :mod:`cifar_gui.gui.activations.model`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.gui.activations import model as rules
from cifar_gui.gui.activations.model import Analysis, LayerView
from cifar_gui.gui.text import format_probability, known_classes_note
from cifar_gui.gui.widgets.activation_widgets import ChannelGrid, PixelView, ProbabilityBars
from cifar_gui.gui.widgets.colormaps import filter_mosaic, filter_slices, heat_overlay
from cifar_gui.gui.widgets.images import to_pixmap


def _column(widget: QWidget, *children: QWidget) -> QVBoxLayout:
    """Stack ``children`` in ``widget`` without margins (it sits in a column of the tab)."""
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    for child in children:
        layout.addWidget(child)
    return layout


class InputColumn(QWidget):
    """The input as the model sees it, its Grad-CAM and the prediction with every class."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.input_view = PixelView(164)
        self.input_note = QLabel(wordWrap=True)
        self.cam_view = PixelView(164)
        self.cam_note = QLabel("Grad-CAM", wordWrap=True)
        self.prediction_label = QLabel(wordWrap=True)
        self.bars = ProbabilityBars()
        title = QLabel("<b>Input as the model sees it</b>")
        children = (self.input_view, self.input_note, self.cam_note, self.cam_view)
        _column(self, title, *children, self.prediction_label, self.bars).addStretch(1)
        self.setFixedWidth(200)

    def show_input(self, image: np.ndarray) -> None:
        """``image`` exactly as the model gets it, with its size and range."""
        shown, note = rules.model_input(image)
        self.input_view.show_rgb(shown)
        self.input_note.setText(note)

    def show_analysis(self, a: Analysis) -> None:
        self.show_input(a.image)
        self.cam_view.show_rgb(heat_overlay(a.image, a.cam) if a.cam is not None else None)
        self.cam_note.setText(rules.cam_title(a))
        self.prediction_label.setText(rules.prediction_text(a))
        self.bars.set_probabilities(a.class_names, a.probabilities)

    def show_without_model(self, image: np.ndarray) -> None:
        """No model: the image at CIFAR-10's size, no map, no prediction."""
        self.show_input(rules.input_only(image))
        self.cam_view.show_rgb(None)
        self.prediction_label.setText("")
        self.bars.set_probabilities([], [])


class FirstFilters(QWidget):
    """The first convolution's filters as colour tiles; a click picks a filter."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel(wordWrap=True)
        self.grid = ChannelGrid(200)
        _column(self, self.title, self.grid)

    def show_filters(self, a: Analysis | None) -> None:
        """Those of ``a``'s model (none for a model without a convolution on colours)."""
        kernel = None if a is None else a.first_filters
        self.grid.setVisible(kernel is not None)
        if kernel is None:
            self.title.setText(rules.NO_FILTERS)
            return
        mosaic, grid = filter_mosaic(kernel)
        height, width, _, count = kernel.shape
        self.grid.set_mosaic(mosaic, (height, width), grid, count)
        self.grid.show_plain()
        self.title.setText(rules.filters_title(a))


class KernelView(QWidget):
    """On request, the filter that makes the selected channel: a grey tile per input."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.check = QCheckBox("Show this channel's filter")
        self.check.setToolTip(
            "For a convolution: the weights that make the selected channel, one grey tile "
            "per input channel, on the filter's common range"
        )
        self.title = QLabel(wordWrap=True)
        self.grid = ChannelGrid(200)
        self.grid.setCursor(Qt.CursorShape.ArrowCursor)
        self.grid.hide()
        _column(self, self.check, self.title, self.grid)

    def wanted(self, layer: LayerView | None) -> bool:
        """Whether to show ``layer``'s filter: ticked and a convolution; the box is only
        enabled for a convolution."""
        filters = layer is not None and layer.has_filters
        wanted = self.check.isChecked() and filters
        self.check.setEnabled(filters)
        self.grid.setVisible(wanted)
        self.title.setVisible(wanted)
        return wanted

    def show_loading(self, layer: str) -> None:
        self.title.setText(f"Loading the filters of {layer}…")

    def show_kernel(self, kernel: np.ndarray, channel: int, layer: str) -> None:
        """Filter ``channel`` (0-based, clamped) of ``layer``'s (H, W, in, out) ``kernel``."""
        channel = min(channel, kernel.shape[-1] - 1)
        mosaic, grid = filter_slices(kernel, channel)
        height, width, inputs, _ = kernel.shape
        self.grid.set_mosaic(mosaic, (height, width), grid, inputs)
        self.grid.show_plain()
        self.title.setText(rules.kernel_title(kernel, channel, layer))


RESULTS_HEIGHT = 150  # pixels of the table: three rows and the header


class DropTable(QGroupBox):
    """Shown when several files were classified; hidden for one or none."""

    row_selected = Signal(int)  # the row's index in the predictions shown

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Dropped files (select a row to inspect it)", parent)
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._on_selected)
        # A fixed height that scrolls: any number of files fits without growing the window.
        self.table.setFixedHeight(RESULTS_HEIGHT)
        self.note = QLabel(wordWrap=True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table)
        self.hide()

    def show_predictions(self, predictions: list) -> None:
        """A row per file (engine Prediction objects) when there are several."""
        self.setVisible(len(predictions) > 1)
        table = self.table
        if len(predictions) <= 1:
            table.setRowCount(0)
            return
        names = predictions[0].class_names
        table.blockSignals(True)
        table.clear()
        table.setColumnCount(3 + len(names))
        table.setHorizontalHeaderLabels(["Input", "File", "Predicted", *names])
        table.setRowCount(len(predictions))
        for row, p in enumerate(predictions):
            icon = QLabel()
            icon.setPixmap(to_pixmap(p.image, 32))
            table.setCellWidget(row, 0, icon)
            file_item = QTableWidgetItem(Path(p.path).name)
            file_item.setToolTip(p.path)
            table.setItem(row, 1, file_item)
            table.setItem(row, 2, QTableWidgetItem(p.label))
            for col, value in enumerate(p.probabilities, start=3):
                item = QTableWidgetItem(format_probability(value))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(row, col, item)
            table.setRowHeight(row, 36)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        table.setColumnWidth(0, 44)
        self.note.setText(known_classes_note(names))
        table.blockSignals(False)

    def _on_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.row_selected.emit(rows[0].row())

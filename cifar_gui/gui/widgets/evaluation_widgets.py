"""The Evaluation tab's pieces: per-class scores, the confusion matrix with counts and
shares, and the histogram of confidence for right and wrong answers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from cifar_gui.engine.models.metrics import ClassScores, ConfidenceHistogram
from cifar_gui.gui.text import format_probability

RIGHT_COLOUR = QColor(46, 160, 67)
WRONG_COLOUR = QColor(215, 58, 73)


def _percent_or_dash(value: float) -> str:
    return "n/a" if math.isnan(value) else format_probability(value)


def _cell(text: str, tip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tip:
        item.setToolTip(tip)
    return item


class _SmallTable(QTableWidget):
    """A read-only table as tall as its rows, its columns sharing the width."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

    def fit_height(self) -> None:
        """As tall as its rows, so a small table does not float in an empty box."""
        self.resizeRowsToContents()
        rows = sum(self.rowHeight(r) for r in range(self.rowCount()))
        self.setFixedHeight(self.horizontalHeader().height() + rows + 2 * self.frameWidth())


class ScoresTable(_SmallTable):
    """One row per class and one for their mean: precision, recall, F1 and test images."""

    COLUMNS = ("precision", "recall", "F1", "images")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setToolTip(
            "Precision: of the images the model calls this class, the share that are.\n"
            "Recall: of the images of this class, the share the model finds.\n"
            "F1: the harmonic mean of the two. Mean: the classes' unweighted mean."
        )

    def show_scores(self, scores: ClassScores, names: Sequence[str]) -> None:
        """Fill the table; the last row is the unweighted (macro) mean over the classes."""
        self.clear()
        self.setColumnCount(len(self.COLUMNS))
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.setRowCount(len(names) + 1)
        self.setVerticalHeaderLabels([*names, "mean"])
        columns = (scores.precision, scores.recall, scores.f1)
        for row in range(len(names)):
            for col, values in enumerate(columns):
                self.setItem(row, col, _cell(_percent_or_dash(float(values[row]))))
            self.setItem(row, 3, _cell(f"{int(scores.support[row]):,}"))
        for col, values in enumerate(columns):
            mean = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
            self.setItem(len(names), col, _cell(_percent_or_dash(mean)))
        self.setItem(len(names), 3, _cell(f"{int(scores.support.sum()):,}"))
        self.fit_height()


class ConfusionTable(_SmallTable):
    """Rows: the true class; columns: the predicted one. Each cell gives its count and its
    share of the row (the true class's images), green on the diagonal and red off it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setToolTip("Rows: true class; columns: predicted. Click a cell to list its images.")
        self._counts = np.zeros((0, 0), dtype=np.int64)

    def show_confusion(self, confusion: np.ndarray, names: Sequence[str]) -> None:
        self.clear()
        k = len(names)
        self._counts = np.asarray(confusion, dtype=np.int64)
        self.setRowCount(k)
        self.setColumnCount(k)
        self.setHorizontalHeaderLabels([f"predicted {n}" for n in names])
        self.setVerticalHeaderLabels([f"true {n}" for n in names])
        totals = self._counts.sum(axis=1)
        for row in range(k):
            for col in range(k):
                count = int(self._counts[row, col])
                share = count / totals[row] if totals[row] else 0.0
                item = _cell(
                    f"{count:,}\n{format_probability(share)}",
                    f"true {names[row]}, predicted {names[col]}: {count:,} images, "
                    f"{format_probability(share)} of the {names[row]} images",
                )
                colour = QColor(RIGHT_COLOUR if row == col else WRONG_COLOUR)
                colour.setAlphaF(0.12 + 0.6 * share if count else 0.0)
                item.setBackground(QBrush(colour))
                self.setItem(row, col, item)
        self.fit_height()

    def count(self, row: int, col: int) -> int:
        """The images counted in a cell (true ``row``, predicted ``col``)."""
        return int(self._counts[row, col])


class ConfidenceChart(pg.PlotWidget):
    """Bars of the predicted class's probability: right answers in green, wrong in red."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, background="w")
        plot = self.getPlotItem()
        plot.setTitle("Confidence of each answer", color="k", size="10pt")
        plot.setLabel("bottom", "probability of the predicted class (%)")
        plot.setLabel("left", "images")
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        for side in ("bottom", "left"):
            plot.getAxis(side).setTextPen("k")
            plot.getAxis(side).setPen("#888")
        self.legend = plot.addLegend(offset=(10, 5), labelTextColor="k")
        self.right_bars = pg.BarGraphItem(x=[], height=[], width=1, brush=RIGHT_COLOUR)
        self.wrong_bars = pg.BarGraphItem(x=[], height=[], width=1, brush=WRONG_COLOUR)
        for bars, name in ((self.right_bars, "right"), (self.wrong_bars, "wrong")):
            plot.addItem(bars)
            self.legend.addItem(bars, name)
        self.setMinimumHeight(160)
        self.histogram: ConfidenceHistogram | None = None

    def show_histogram(self, histogram: ConfidenceHistogram) -> None:
        self.histogram = histogram
        edges = histogram.edges * 100
        width = float(edges[1] - edges[0])
        centres = (edges[:-1] + edges[1:]) / 2
        # Side by side within each bin: right on the left half, wrong on the right half.
        self.right_bars.setOpts(x=centres - width / 4, height=histogram.right, width=width / 2)
        self.wrong_bars.setOpts(x=centres + width / 4, height=histogram.wrong, width=width / 2)
        plot = self.getPlotItem()
        plot.setXRange(float(edges[0]), float(edges[-1]), padding=0.02)
        top = max(int(histogram.right.max(initial=0)), int(histogram.wrong.max(initial=0)), 1)
        plot.setYRange(0, top, padding=0.05)

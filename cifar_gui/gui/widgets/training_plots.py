"""Live loss and accuracy plots (pyqtgraph) with overlays of earlier runs.

The live curves are created once and only ever updated with ``setData``: the smoothed
per-batch training curve, and per-epoch training and validation curves. Overlays of saved
runs (selected in the run table) get one training and one validation curve each.

Redraws are kept cheap, because the training process shares the CPU: the axes are cached as
pixmaps, and during a run the epoch axis spans the whole run (:meth:`set_epoch_span`), so a
new point redraws only the curves. Replaying an axis' tick labels was most of a redraw's
~35 ms (py-spy); with both it is ~10 ms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QWidget

from cifar_gui.engine.record import best_epoch, lowest_loss_epoch

# matplotlib's tab10, so the exported PNG and the screen use the same colours per run; each
# variant has its own (cifar_gui.variant_style), the same in the report.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
METRICS = ("loss", "accuracy")
MARK = {"symbol": "star", "symbolSize": 15, "symbolPen": pg.mkPen("k", width=1)}


def marked_epoch(history: Mapping[str, Sequence[float]], metric: str) -> int | None:
    """0-based epoch marked on ``metric``'s plot: the lowest validation loss on the loss plot,
    the best validation accuracy on the accuracy plot."""
    return lowest_loss_epoch(history) if metric == "loss" else best_epoch(history)


def _mark(curve: pg.PlotDataItem, history: Mapping[str, Sequence[float]], metric: str) -> None:
    epoch = marked_epoch(history, metric)
    if epoch is None:
        curve.setData([], [])
    else:
        curve.setData([epoch + 1], [history[f"val_{metric}"][epoch]])


LEGEND_WIDTH = 210  # pixels beside the plots, at the least
LEGEND_SAMPLE_PX = 60  # an entry's line sample and the legend's margins


class EpochAxis(pg.AxisItem):
    """An epoch axis: ticks at whole epochs only (pyqtgraph would also mark 1.5, 2.5...)."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        levels = super().tickSpacing(minVal, maxVal, size)
        major = max(1.0, float(np.ceil(levels[0][0]))) if levels else 1.0
        return [(major, 0.0)]


class TrainingPlots(QWidget):
    """Two plots side by side, loss and accuracy against epochs, and one legend beside them
    (outside the plotting areas, so no number of overlaid runs hides a curve)."""

    def __init__(self, parent: QWidget | None = None, legend: bool = True):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plots: dict[str, pg.PlotItem] = {}
        self.batch_curves: dict[str, pg.PlotDataItem] = {}
        self.train_curves: dict[str, pg.PlotDataItem] = {}
        self.val_curves: dict[str, pg.PlotDataItem] = {}
        # A star on each validation curve: the lowest loss, the best accuracy.
        self.best_marks: dict[str, pg.PlotDataItem] = {}
        # label -> [(plot, curve)]: training and validation, loss and accuracy
        self._overlays: dict[str, list[tuple[pg.PlotItem, pg.PlotDataItem]]] = {}
        self._span: int | None = None  # epochs of the run in progress
        self.live_batches: dict[str, list[float]] = {"x": [], **{m: [] for m in METRICS}}
        self.live_history: dict[str, list[float]] = {}  # the live run's epochs
        self._overlay_epochs = 0  # epochs of the longest overlay
        # Both plots draw the same series: one legend, of the loss plot's curves, serves both.
        self.legend_view = pg.GraphicsLayoutWidget()
        self.legend_view.setBackground("w")
        self.legend_view.setFixedWidth(LEGEND_WIDTH)
        self.legend = pg.LegendItem(labelTextColor="k", labelTextSize="8pt")
        self.legend_view.addItem(self.legend, row=0, col=0)
        self.legend_view.ci.layout.setRowStretchFactor(1, 1)  # entries from the top
        self.legend_view.ci.addItem(pg.GraphicsWidget(), row=1, col=0)
        for metric in METRICS:
            widget = pg.PlotWidget(background="w", axisItems={"bottom": EpochAxis("bottom")})
            plot = widget.getPlotItem()
            plot.setTitle(metric.capitalize(), color="k")
            plot.setLabel("bottom", "epoch")
            plot.setLabel("left", metric)
            for side in ("bottom", "left"):
                axis = plot.getAxis(side)
                axis.enableAutoSIPrefix(False)  # "loss (x0.001)" reads badly
                axis.setTextPen("k")
                axis.setPen("#888")
                # Drawn again only when its range or size changes, not with every curve update.
                axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            plot.showGrid(x=True, y=True, alpha=0.25)
            self.batch_curves[metric] = plot.plot(
                pen=pg.mkPen("#9a9a9a", width=1), name="training (running, smoothed)"
            )
            # Long runs have thousands of batch points: draw only what the pixels can show.
            self.batch_curves[metric].setDownsampling(auto=True, method="peak")
            self.batch_curves[metric].setClipToView(True)
            self.train_curves[metric] = plot.plot(
                pen=pg.mkPen(PALETTE[0], width=2),
                symbol="o", symbolSize=6, symbolBrush=PALETTE[0], symbolPen=None,
                name="training (epoch)",
            )  # fmt: skip
            self.val_curves[metric] = plot.plot(
                pen=pg.mkPen(PALETTE[1], width=2, style=Qt.PenStyle.DashLine),
                symbol="s", symbolSize=6, symbolBrush=PALETTE[1], symbolPen=None,
                name="validation (epoch)",
            )  # fmt: skip
            self.best_marks[metric] = plot.plot(
                pen=None, symbolBrush=PALETTE[1], name="best epoch (star)", **MARK
            )
            if metric == "accuracy":
                plot.setYRange(0.0, 1.0, padding=0.02)
            self.plots[metric] = plot
            layout.addWidget(widget, 1)
        for curve in (self.batch_curves, self.train_curves, self.val_curves, self.best_marks):
            self._add_to_legend(curve["loss"])
        layout.addWidget(self.legend_view)
        self.legend_view.setVisible(legend)  # without: the owner explains the lines in words

    def _add_to_legend(self, curve: pg.PlotDataItem) -> None:
        self.legend.addItem(curve, curve.name())
        self._fit_legend()

    def _fit_legend(self) -> None:
        """As wide as its longest entry (at least :data:`LEGEND_WIDTH`): names are never cut."""
        labels = [label for _, label in self.legend.items]
        widest = max((label.boundingRect().width() for label in labels), default=0.0)
        self.legend_view.setFixedWidth(max(LEGEND_WIDTH, int(widest) + LEGEND_SAMPLE_PX))

    def legend_labels(self) -> list[str]:
        """The legend's entries, top to bottom."""
        return [label.text for _, label in self.legend.items]

    def set_live_color(self, color: str) -> None:
        """Draw the live run's epoch curves in ``color`` (its variant's): training solid,
        validation dashed, as the overlays."""
        for metric in METRICS:
            self.train_curves[metric].setPen(pg.mkPen(color, width=2))
            self.train_curves[metric].setSymbolBrush(color)
            self.val_curves[metric].setPen(pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine))
            self.val_curves[metric].setSymbolBrush(color)
            self.best_marks[metric].setSymbolBrush(color)

    def clear_live(self) -> None:
        """Empty the live curves (a new run starts)."""
        for curves in (self.batch_curves, self.train_curves, self.val_curves, self.best_marks):
            for curve in curves.values():
                curve.setData([], [])

    def set_epoch_span(self, epochs: int | None) -> None:
        """Fix the epoch axis to ``[0, epochs]`` (or the longest overlay) while a run is in
        progress; ``None`` gives it back to auto-range."""
        self._span = epochs
        self._apply_span()

    def _apply_span(self) -> None:
        for plot in self.plots.values():
            if self._span is None:
                plot.enableAutoRange(x=True)
            else:
                plot.setXRange(0, max(self._span, self._overlay_epochs), padding=0.02)

    def start_live(self, history: Mapping[str, Sequence[float]] | None = None) -> None:
        """A new live run: empty curves, or ``history``'s earlier epochs (a resumed run);
        :meth:`extend_batches` and :meth:`extend_history` then add to them."""
        self.live_batches: dict[str, list[float]] = {"x": [], **{m: [] for m in METRICS}}
        self.live_history = {k: list(v) for k, v in (history or {}).items()}
        self.clear_live()
        self.set_history(self.live_history)

    def extend_batches(self, x: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """Append points to the live per-batch curve (``x`` in fractional epochs)."""
        self.live_batches["x"].extend(np.asarray(x).tolist())
        for metric in METRICS:
            self.live_batches[metric].extend(np.asarray(values[metric]).tolist())
        self.set_batches(
            np.asarray(self.live_batches["x"]),
            {m: np.asarray(self.live_batches[m]) for m in METRICS},
        )

    def extend_history(self, metrics: Mapping[str, float]) -> None:
        """Append one epoch's metrics to the live run's epoch curves."""
        for key, value in metrics.items():
            self.live_history.setdefault(key, []).append(value)
        self.set_history(self.live_history)

    def set_batches(self, x: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """The smoothed per-batch training curve; ``x`` in fractional epochs."""
        for metric in METRICS:
            self.batch_curves[metric].setData(x, values[metric])

    def set_history(self, history: Mapping[str, Sequence[float]]) -> None:
        """The per-epoch training and validation curves of the live run."""
        for metric in METRICS:
            for curve, key in ((self.train_curves[metric], metric),
                               (self.val_curves[metric], f"val_{metric}")):  # fmt: skip
                values = np.asarray(history.get(key, ()), dtype=float)
                curve.setData(np.arange(1, len(values) + 1), values)
            _mark(self.best_marks[metric], history, metric)

    def set_overlays(
        self,
        runs: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
        colors: Mapping[str, str] | None = None,
    ) -> None:
        """Show the epoch curves of these (label, history) runs; others are removed.
        ``colors``: label -> colour (the run's variant's); others take the palette's."""
        wanted = {label for label, _ in runs}
        for label in [k for k in self._overlays if k not in wanted]:
            for plot, curve in self._overlays.pop(label):
                self.legend.removeItem(curve)
                plot.removeItem(curve)
            self._fit_legend()
        for i, (label, history) in enumerate(runs):
            color = (colors or {}).get(label) or PALETTE[(i + 4) % len(PALETTE)]
            curves = self._overlays.get(label)
            if curves is None:
                curves = []
                for metric in METRICS:
                    plot = self.plots[metric]
                    curves.append((plot, plot.plot(name=label)))
                    curves.append((plot, plot.plot(name=f"{label} validation")))
                    curves.append((plot, plot.plot(pen=None, **MARK)))
                # One entry per run, in its colour, named in full; the live run's entries
                # explain the line styles once (solid: training, dashed: validation).
                self._add_to_legend(curves[0][1])
                self._overlays[label] = curves
            for j, metric in enumerate(METRICS):
                train, val, mark = (curve for _, curve in curves[3 * j : 3 * j + 3])
                mark.setSymbolBrush(color)
                _mark(mark, history, metric)
                for curve, key, dash in ((train, metric, False), (val, f"val_{metric}", True)):
                    values = np.asarray(history.get(key, ()), dtype=float)
                    style = Qt.PenStyle.DashLine if dash else Qt.PenStyle.SolidLine
                    curve.setPen(pg.mkPen(color, width=1.5, style=style))
                    curve.setSymbol("s" if dash else "o")
                    curve.setSymbolSize(5)
                    curve.setSymbolBrush(color)
                    curve.setSymbolPen(None)
                    curve.setData(np.arange(1, len(values) + 1), values)
        self._overlay_epochs = max(
            (len(history.get(m, ())) for _, history in runs for m in METRICS), default=0
        )
        if self._span is not None:
            self._apply_span()

    @property
    def overlay_labels(self) -> list[str]:
        """Labels of the runs overlaid now."""
        return list(self._overlays)

    def point_counts(self) -> dict[str, int]:
        """Number of points of each live curve (for tests and the status line)."""

        def count(curve: pg.PlotDataItem) -> int:
            x = curve.getData()[0]
            return 0 if x is None else len(x)

        return {
            "batch": count(self.batch_curves["loss"]),
            "train": count(self.train_curves["loss"]),
            "val": count(self.val_curves["loss"]),
        }

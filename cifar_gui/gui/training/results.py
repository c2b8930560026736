"""What the Training tab shows of runs: the live plots and progress of the run in progress,
its log, the table of saved runs with their curves overlaid, and the export of the curves
as a PNG (matplotlib, loaded on the first export)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextOption
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.engine.runs import SavedRun, discover_runs
from cifar_gui.gui.run_table import RunTable
from cifar_gui.gui.widgets.training_plots import METRICS, TrainingPlots

if TYPE_CHECKING:
    from cifar_gui.engine.training import EpochEvent
    from cifar_gui.gui.training.trace import BatchUpdate

STOPPING = " \u2014 stopping\u2026"


def format_eta(seconds: float) -> str:
    """``1:02:03``: hours, minutes and seconds."""
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class TrainingResults(QSplitter):
    """Plots and progress above; the run table and the log below."""

    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Vertical, parent)
        self.history: dict[str, list[float]] = {}  # per-epoch values of the live run
        self.batches: dict[str, list[float]] = {"x": [], "loss": [], "accuracy": []}
        self.live_sidecar: Path | None = None  # the live run's, once saved
        self.plots = TrainingPlots()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("Idle")
        self.progress.setValue(0)
        self.export_button = QPushButton("Export plots as PNG\u2026")
        self.export_button.clicked.connect(self.export_requested)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.export_button)

        self.table = RunTable()
        self.table.setToolTip("Select runs to overlay their curves (Ctrl/Shift for several)")
        self.table.selection_changed.connect(self._on_runs_selected)
        self.log = QPlainTextEdit(readOnly=True)
        # Lines break between words only: a file name stays whole (it scrolls if too long).
        self.log.setWordWrapMode(QTextOption.WrapMode.WordWrap)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("Epoch summaries appear here.")

        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.table)
        bottom.addWidget(self.log)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 1)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.plots, 1)
        top_layout.addLayout(bar)
        self.addWidget(top)
        self.addWidget(bottom)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 2)

    # ---- the live run

    def begin(self, epochs: int, history: dict[str, list[float]] | None = None) -> None:
        """Reset the live plots (to ``history`` of earlier epochs) for a run of ``epochs``."""
        self.history = history or {}
        self.batches = {"x": [], "loss": [], "accuracy": []}
        self.live_sidecar = None
        self.plots.clear_live()
        self.plots.set_history(self.history)
        self.plots.set_epoch_span(epochs)  # fixed while it runs: no axis redraws
        self.progress.setRange(0, 0)  # busy indicator until the first batch
        self.progress.setFormat("Preparing\u2026")

    def add_batches(self, update: BatchUpdate, stopping: bool) -> None:
        """Draw new points of the per-batch curve; the progress bar shows the last batch."""
        for key, values in (("x", update.x), ("loss", update.loss),
                            ("accuracy", update.accuracy)):  # fmt: skip
            self.batches[key].extend(values.tolist())
        self.plots.set_batches(
            np.asarray(self.batches["x"]), {m: np.asarray(self.batches[m]) for m in METRICS}
        )
        e = update.event
        total = e.epochs * e.steps
        if self.progress.maximum() != total:
            self.progress.setRange(0, total)
        self.progress.setValue(e.epoch * e.steps + e.batch + 1)
        self.progress.setFormat(
            f"Epoch {e.epoch + 1}/{e.epochs} \u00b7 batch {e.batch + 1}/{e.steps} \u00b7 "
            f"{e.images_per_second:,.0f} img/s \u00b7 ETA {format_eta(e.eta_seconds)}"
            + (STOPPING if stopping else "")
        )

    def add_epoch(self, event: EpochEvent) -> None:
        """Draw an epoch's values and log them."""
        for key, value in event.metrics.items():
            self.history.setdefault(key, []).append(value)
        self.plots.set_history(self.history)
        m, nan = event.metrics, math.nan
        self.append_log(
            f"Epoch {event.epoch + 1}/{event.epochs}: loss {m.get('loss', nan):.4f}, "
            f"accuracy {m.get('accuracy', nan):.4f}, val_loss {m.get('val_loss', nan):.4f}, "
            f"val_accuracy {m.get('val_accuracy', nan):.4f} ({event.seconds:.1f} s)"
        )

    def show_stopping(self) -> None:
        self.progress.setFormat(self.progress.format() + STOPPING)
        self.append_log("Stopping after the batches in progress\u2026")

    def end(self, result: str) -> None:
        """The run ended: ``result`` is "Done", "Stopped" or "Failed"."""
        self.plots.set_epoch_span(None)
        self.progress.setRange(0, max(self.progress.maximum(), 1))
        self.progress.setFormat(result)

    def append_log(self, line: str) -> None:
        self.log.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {line}")

    # ---- saved runs

    def show_runs(self, out_dir: str) -> None:
        """List the runs saved in ``out_dir`` (none when it is empty)."""
        self.table.set_runs(discover_runs(out_dir) if out_dir else [])

    def _on_runs_selected(self, runs: list[SavedRun]) -> None:
        self.plots.set_overlays([(run.label, run.history) for run in runs])

    def curves(self) -> dict[str, dict[str, list[float]]]:
        """The epoch curves shown, by label: the live run's and the overlaid runs'; raises
        ValueError when nothing at all is drawn."""
        histories: dict[str, dict[str, list[float]]] = {}
        if self.history:
            histories["current run"] = self.history
        for run in self.table.selected_runs():
            if run.sidecar != self.live_sidecar:  # the current run is already drawn
                histories[run.label] = run.history
        if not histories and not self.batches["x"]:
            raise ValueError("nothing to export yet: train a run or select runs in the table")
        return histories

    def export(self, path: str | Path, title: str) -> Path:
        """Save the curves shown as a PNG at ``path`` (ValueError: nothing to export; OSError:
        it cannot be written)."""
        histories = self.curves()
        from cifar_gui.plots import save_history_plot  # matplotlib loads on first export

        target = Path(path).with_suffix(".png")
        batches = self.batches if self.batches["x"] else None
        try:
            save_history_plot(target, histories, batches, title=title)
        except (OSError, ValueError) as exc:
            raise OSError(f"{target}: cannot write the plot ({exc})") from None
        self.append_log(f"Exported plots to {target}")
        return target

    def ask_export_path(self, out_dir: str) -> str | None:
        """Ask where to save the PNG; None when the user cancels."""
        default = Path(out_dir or ".") / "training_curves.png"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export plots", str(default), "PNG images (*.png)"
        )
        return path or None

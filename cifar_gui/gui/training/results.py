"""What the Training tab shows of runs: the live plots and progress of the run in progress,
its log, the table of saved runs with their curves overlaid, and the export of the curves
as a PNG (matplotlib, loaded on the first export). During a study: which of its runs is in
progress, the time left to the study's end, and its finished runs overlaid."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextOption
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.config import SEED_VARIANTS
from cifar_gui.engine.study.estimate import study_eta
from cifar_gui.engine.study.runs import SavedRun, discover_runs
from cifar_gui.gui.run_table import RunTable
from cifar_gui.gui.text import format_probability
from cifar_gui.gui.widgets.training_plots import METRICS, TrainingPlots
from cifar_gui.variant_style import variant_color

if TYPE_CHECKING:
    from cifar_gui.engine.events import EpochEvent, StudyProgress
    from cifar_gui.gui.training.trace import BatchUpdate

STOPPING = " \u2014 stopping\u2026"
# Folder levels under the runs root listed: its own (older) runs, run and study folders, and
# the folders within those.
RUNS_DEPTH = 2


def format_eta(seconds: float) -> str:
    """``1:02:03``: hours, minutes and seconds."""
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class StudyProgress:
    """Where a study is: its run in progress, and the seconds per epoch measured so far."""

    index: int = 0
    count: int = 0
    variant: str = ""
    epochs: int = 0
    measured: dict[str, float] = field(default_factory=dict)  # variant -> s / epoch
    # Each step's variant and epochs, and its pre-flight estimate (None: not estimated).
    schedule: list[tuple[str, int]] = field(default_factory=list)
    estimates: tuple[float | None, ...] = ()
    seconds: list[float] = field(default_factory=list)  # the epochs of the run in progress
    finished: list[tuple[str, dict[str, list[float]]]] = field(default_factory=list)

    def text(self, epoch: int | None = None, run_eta: float | None = None) -> str:
        """``Study: run 2 of 4 (augmented) · epoch 3/30 · study ETA 1:02:03``."""
        words = f"Study: run {self.index + 1} of {self.count} ({self.variant})"
        if epoch is not None:
            words += f" \u00b7 epoch {epoch + 1}/{self.epochs}"
        if run_eta is not None:
            measured = dict(self.measured)
            if self.seconds:
                measured[self.variant] = float(np.mean(self.seconds))
            eta = study_eta(self.later(), run_eta, measured)
            words += " \u00b7 study ETA " + ("estimating\u2026" if eta is None else format_eta(eta))
        return words

    def later(self) -> list[tuple[str, int, float | None]]:
        """The steps after the one in progress, with their estimates where known (without a
        schedule: the seed's four runs of as many epochs)."""
        if not self.schedule:
            later = SEED_VARIANTS[SEED_VARIANTS.index(self.variant) + 1 :]
            return [(v, self.epochs, None) for v in later]
        estimates = list(self.estimates) + [None] * len(self.schedule)
        return [(v, e, estimates[i]) for i, (v, e) in enumerate(self.schedule) if i > self.index]


class TrainingResults(QSplitter):
    """Plots and progress above; the run table and the log below."""

    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Vertical, parent)
        self.live_sidecar: Path | None = None  # the live run's, once saved
        self.plots = TrainingPlots()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setValue(0)
        self.progress.hide()  # until a run starts: an idle bar says nothing
        self.study: StudyProgress | None = None  # the study in progress, if any
        self.study_label = QLabel()
        self.study_label.setVisible(False)
        self.study_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = QPushButton("Export plots as PNG\u2026")
        self.export_button.clicked.connect(self.export_requested)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.export_button)

        self.table = RunTable()
        self.table.setToolTip("Select runs to overlay their curves (Ctrl/Shift for several)")
        self.table.selection_changed.connect(self._on_runs_selected)
        self.log = QPlainTextEdit(readOnly=True)
        # Lines break between words only: a file name stays whole (it scrolls if too long);
        # a run folder's name may break at its hyphens (20261204-213012-baseline-deer-horse).
        self.log.setWordWrapMode(QTextOption.WrapMode.WordWrap)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("Epoch summaries appear here.")

        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.table)
        bottom.addWidget(self.log)
        bottom.setStretchFactor(0, 4)
        bottom.setStretchFactor(1, 1)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.plots, 1)
        top_layout.addWidget(self.study_label)
        top_layout.addLayout(bar)
        self.addWidget(top)
        self.addWidget(bottom)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 2)

    # ---- the live run

    def begin(
        self, epochs: int, history: dict[str, list[float]] | None = None, variant: str = ""
    ) -> None:
        """Reset the live plots (to ``history`` of earlier epochs) for a run of ``epochs``,
        drawn in ``variant``'s colour."""
        self.plots.set_live_color(variant_color(variant))
        self.live_sidecar = None
        self.plots.start_live(history)
        self.plots.set_epoch_span(epochs)  # fixed while it runs: no axis redraws
        self.progress.show()
        self.progress.setRange(0, 0)  # busy indicator until the first batch
        self.progress.setFormat("Preparing\u2026")

    @property
    def history(self) -> dict[str, list[float]]:
        """The live run's per-epoch values (earlier epochs of a resumed run included)."""
        return self.plots.live_history

    @property
    def batches(self) -> dict[str, list[float]]:
        """The live run's smoothed per-batch curve: ``x`` (fractional epochs) and metrics."""
        return self.plots.live_batches

    def add_batches(self, update: BatchUpdate, stopping: bool) -> None:
        """Draw new points of the per-batch curve; the progress bar shows the last batch."""
        self.plots.extend_batches(update.x, {m: getattr(update, m) for m in METRICS})
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
        if self.study is not None:
            self.study_label.setText(self.study.text(e.epoch, e.eta_seconds))

    def add_epoch(self, event: EpochEvent) -> None:
        """Draw an epoch's values and log them."""
        self.plots.extend_history(event.metrics)
        if self.study is not None:
            self.study.seconds.append(event.seconds)
        m, nan = event.metrics, math.nan
        self.append_log(
            f"Epoch {event.epoch + 1}/{event.epochs}: loss {m.get('loss', nan):.4f}, "
            f"accuracy {format_probability(m.get('accuracy', nan))}, "
            f"val_loss {m.get('val_loss', nan):.4f}, "
            f"val_accuracy {format_probability(m.get('val_accuracy', nan))} "
            f"({event.seconds:.1f} s)"
        )

    # ---- a study

    def begin_study(
        self,
        schedule: Sequence[tuple[str, int]] = (),
        estimates: Sequence[float | None] = (),
    ) -> None:
        """A study starts (or resumes): its line appears, the overlays are its runs'.
        ``schedule``: each step's variant and epochs; ``estimates``: their pre-flight seconds."""
        self.study = StudyProgress(schedule=list(schedule), estimates=tuple(estimates))
        self.study_label.setText("Study: preparing\u2026")
        self.study_label.setVisible(True)
        self.table.clearSelection()
        self.plots.set_overlays([])

    def study_run(self, event: StudyProgress) -> None:
        """A run of the study started (the live plots follow it) or ended (it joins the
        overlay of the finished runs, in its variant's colour)."""
        study = self.study
        if study is None:
            return
        if event.state == "running":
            study.index, study.count = event.index, event.count
            study.variant, study.epochs, study.seconds = event.variant, event.epochs, []
            history = {k: list(v) for k, v in (event.history or {}).items() if k != "epoch_seconds"}
            self.begin(event.epochs, history, event.variant)
            self.study_label.setText(study.text())
            start = (
                ""
                if event.resumed_from_epoch is None
                else (f" at epoch {event.resumed_from_epoch + 1}")
            )
            self.append_log(f"Study run {event.index + 1} of {event.count}: {event.variant}{start}")
            return
        if event.record is None:
            return
        history = {k: list(v) for k, v in event.record.history.items()}
        seconds = [s for s in history.get("epoch_seconds", ()) if math.isfinite(s)]
        if seconds:
            study.measured[event.variant] = float(np.mean(seconds))
        if event.state == "done":
            study.finished.append((event.variant, history))
            self.plots.set_overlays(
                study.finished, {label: variant_color(label) for label, _ in study.finished}
            )
        if event.skipped:
            self.append_log(
                f"Study run {event.index + 1} of {event.count}: {event.variant} done already"
            )
        else:
            self.append_log(
                f"Study run {event.index + 1} of {event.count}: {event.variant} {event.state}; "
                f"saved {event.model_path}"
            )

    def end_study(self, result: str, text: str) -> None:
        """The study ended: ``result`` as for :meth:`end`; ``text`` says how (and where its
        report is)."""
        self.study = None
        self.study_label.setText(text)
        self.end(result)

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
        """List the runs saved under the runs root ``out_dir`` (none when it is empty): its run
        and study folders', and those of the older layout, saved in it directly."""
        runs = discover_runs(out_dir, depth=RUNS_DEPTH) if out_dir else []
        self.table.set_runs(runs, out_dir or None)

    def _on_runs_selected(self, runs: list[SavedRun]) -> None:
        named = {self.table.name_of(run): run for run in runs}
        self.plots.set_overlays(
            [(name, run.record.history) for name, run in named.items()],
            {name: variant_color(run.record.variant) for name, run in named.items()},
        )

    def curves(self) -> dict[str, dict[str, list[float]]]:
        """The epoch curves shown, by label: the live run's and the overlaid runs'; raises
        ValueError when nothing at all is drawn."""
        histories: dict[str, dict[str, list[float]]] = {}
        if self.history:
            histories["current run"] = self.history
        for run in self.table.selected_runs():
            if run.sidecar != self.live_sidecar:  # the current run is already drawn
                histories[self.table.name_of(run)] = run.record.history
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

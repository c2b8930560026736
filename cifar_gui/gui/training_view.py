"""The Training tab: configure a run of any variant (or resume a saved one), train it in a
child process with live plots, stop it, compare saved runs and export their curves.

Training runs :func:`cifar_gui.engine.training.run_training` in a child process
(:mod:`cifar_gui.engine.runner`), started and watched by a
:class:`~cifar_gui.gui.workers.JobRunner` job on a QThread. The job turns the engine's batch
events into a smoothed per-batch curve and sends it in bundles at most
:data:`BATCH_INTERVAL_S` apart; epoch events are sent as they come. When the run ends, the job
loads the saved model (its weights are exactly those trained); it becomes the app's current
model, and its sidecar a new row of the run table.

Keras is imported only inside the jobs, so building this panel does not wait for it.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QDoubleValidator, QTextOption
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.config import DEFAULT_LEARNING_RATES, PRECISIONS, STRATEGIES, VARIANTS, RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.runs import SavedRun, discover_runs
from cifar_gui.gui.resume_dialog import ResumeDialog
from cifar_gui.gui.run_table import RunTable
from cifar_gui.gui.state import AppState, user_settings
from cifar_gui.gui.text import counted
from cifar_gui.gui.widgets.training_plots import METRICS, TrainingPlots
from cifar_gui.gui.workers import JobRunner, TaskState

if TYPE_CHECKING:
    from cifar_gui.engine.checkpoints import Checkpoint
    from cifar_gui.engine.persistence import LoadedModel
    from cifar_gui.engine.record import ParameterCounts
    from cifar_gui.engine.training import BatchEvent, EpochEvent

# Batch progress reaches the widgets at most 5 times a second: a redraw of the plots costs
# ~10 ms of CPU, which the training process (on the same cores) would otherwise lose.
BATCH_INTERVAL_S = 0.2
SMOOTHING = 0.9  # weight of the past in the per-batch curve's moving average
SETTINGS_OUT_DIR = "training/out_dir"
SETTINGS_FORM = "training/form"  # the run settings of the last session
STRATEGY_LABELS = {
    "default": "Default (one device)",
    "mirrored": "Mirrored (all local GPUs)",
    "multi-worker": "Multi-worker (TF_CONFIG)",
}
PRECISION_LABELS = {
    "auto": "Auto (fastest exact on this hardware)",
    "float32": "float32",
    "mixed_bfloat16": "Mixed bfloat16",
    "mixed_float16": "Mixed float16 (GPU)",
}
VARIANT_LABELS = {
    "baseline": "Baseline CNN",
    "augmented": "CNN with augmentation",
    "transfer": "VGG16 transfer (frozen base)",
    "finetune": "VGG16 fine-tuning",
}
# Base-weights choices for transfer: (label, needs a path).
WEIGHTS_CHOICES = {
    "imagenet": ("ImageNet", False),
    "none": ("None (random)", False),
    "file": ("Weights file", True),
    "base": ("Base of a saved model", True),
}


def default_out_dir() -> Path:
    """Where runs go until the user chooses a folder: ``cifar-gui/runs`` in the user's
    documents folder (``~/Documents`` on Linux and macOS, ``Documents`` on Windows), else
    ``runs`` in the app's per-user data folder."""
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    if documents:
        return Path(documents) / "cifar-gui" / "runs"
    data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(data or Path.home() / ".cifar-gui") / "runs"


# --------------------------------------------------------------------------------------
# The job (runs on the worker thread; no widgets)


@dataclass(frozen=True)
class BatchUpdate:
    """New points of the smoothed per-batch curve, and the latest batch event."""

    x: np.ndarray  # fractional epochs: 1.0 is the end of the first epoch
    loss: np.ndarray
    accuracy: np.ndarray
    event: BatchEvent


@dataclass
class TrainingOutcome:
    """What a finished (or stopped) run hands to the GUI."""

    summary: SavedRun
    model: LoadedModel  # loaded on the worker thread; the GUI only passes it on
    stopped: bool


class BatchTrace:
    """Per-batch training values, smoothed, bundled for the GUI.

    Keras reports the running mean of the epoch after each compiled call of one or more
    batches. The mean of the call's batches is recovered from two consecutive means (all
    batches weigh the same; only the last, partial batch of an epoch is slightly off), then
    smoothed with a debiased
    exponential moving average, as TensorBoard does.
    """

    def __init__(
        self,
        interval_s: float = BATCH_INTERVAL_S,
        smoothing: float = SMOOTHING,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.interval_s, self.smoothing, self.clock = interval_s, smoothing, clock
        self._last_sent = -math.inf
        self._epoch = -1
        self._prev = {m: (-1, 0.0) for m in METRICS}  # metric -> (batch, running mean)
        self._ema = dict.fromkeys(METRICS, 0.0)
        self._steps = dict.fromkeys(METRICS, 0)
        self._pending: dict[str, list[float]] = {"x": [], **{m: [] for m in METRICS}}
        self._event: BatchEvent | None = None

    def add(self, event: BatchEvent) -> BatchUpdate | None:
        """Record one batch; return a bundle when the last one is old enough."""
        if event.epoch != self._epoch:
            self._epoch = event.epoch
            self._prev = {m: (-1, 0.0) for m in METRICS}
        self._pending["x"].append(event.epoch + (event.batch + 1) / max(event.steps, 1))
        for metric, mean in (("loss", event.loss), ("accuracy", event.accuracy)):
            prev_batch, prev_mean = self._prev[metric]
            value = ((event.batch + 1) * mean - (prev_batch + 1) * prev_mean) / max(
                event.batch - prev_batch, 1
            )
            if math.isfinite(value):
                self._prev[metric] = (event.batch, mean)
                self._ema[metric] = (
                    self.smoothing * self._ema[metric] + (1 - self.smoothing) * value
                )
                self._steps[metric] += 1
                value = self._ema[metric] / (1 - self.smoothing ** self._steps[metric])
            self._pending[metric].append(value)
        self._event = event
        now = self.clock()
        if now - self._last_sent < self.interval_s:
            return None
        self._last_sent = now
        return self.flush()

    def flush(self) -> BatchUpdate | None:
        """The points not sent yet, if any."""
        if not self._pending["x"] or self._event is None:
            return None
        update = BatchUpdate(
            np.asarray(self._pending["x"]),
            np.asarray(self._pending["loss"]),
            np.asarray(self._pending["accuracy"]),
            self._event,
        )
        for values in self._pending.values():
            values.clear()
        return update


def training_job(config: RunConfig, resume: Checkpoint | None, task: TaskState) -> TrainingOutcome:
    """Train ``config`` (continuing ``resume``) in a child process and load the saved model.

    Reports :class:`BatchUpdate` and :class:`~cifar_gui.engine.training.EpochEvent` values
    through ``task``; ``task.stop_event`` ends the run after the batches in progress.
    """
    from cifar_gui.engine.runner import RunPlan, run

    trace = BatchTrace()

    def on_batch(events: list[BatchEvent]) -> None:
        for event in events:
            update = trace.add(event)
            if update is not None:
                task.report(update)

    def on_epoch(event: EpochEvent) -> None:
        update = trace.flush()  # the epoch's last points go before its summary
        if update is not None:
            task.report(update)
        task.report(event)

    result = run(RunPlan(config, resume), on_batch, on_epoch, task.stop_event)
    update = trace.flush()
    if update is not None:
        task.report(update)
    if result.path is None:
        raise UserError("trained; on a multi-worker run only the chief worker saves the model")
    from cifar_gui.engine.persistence import load_model

    summary = SavedRun.of_model(result.path, result.record)
    return TrainingOutcome(summary, load_model(result.path), result.stopped)


def list_checkpoints_job(out_dir: str, task: TaskState) -> list[Checkpoint]:
    """The resumable runs under ``out_dir``, unfinished first (imports Keras)."""
    from cifar_gui.engine.checkpoints import list_checkpoints

    return list_checkpoints(out_dir)


def parameter_counts_job(config: RunConfig, num_classes: int, task: TaskState) -> ParameterCounts:
    """Trainable and non-trainable counts of a planned run (loads a fine-tune's model)."""
    from cifar_gui.engine.models import planned_parameter_counts

    return planned_parameter_counts(config, num_classes)


# --------------------------------------------------------------------------------------
# The panel


def _format_eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _PathField(QWidget):
    """A line edit with a Browse button that opens a file or folder dialog."""

    changed = Signal(str)

    def __init__(self, caption: str, file_filter: str | None, placeholder: str = ""):
        super().__init__()
        self.caption, self.file_filter = caption, file_filter
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.editingFinished.connect(lambda: self.changed.emit(self.text()))
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)

    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, text: str) -> None:
        self.edit.setText(text)
        self.changed.emit(self.text())

    def _browse(self) -> None:
        start = self.text() or os.getcwd()
        if self.file_filter is None:
            chosen = QFileDialog.getExistingDirectory(self, self.caption, start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, self.caption, start, self.file_filter)
        if chosen:
            self.set_text(chosen)


class TrainingPanel(QWidget):
    """Run settings, Start/Stop, live plots, progress, epoch log and the run table."""

    batch_progress = Signal(object)  # BatchEvent, at most ~20 per second
    epoch_finished = Signal(object)  # EpochEvent
    run_finished = Signal(object)  # TrainingOutcome, or None when the run failed
    run_failed = Signal(str)  # one line

    def __init__(
        self, state: AppState, settings: QSettings | None = None, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.state = state
        # The window's store (the user's unless the window was given another).
        self.settings = settings if settings is not None else user_settings()
        self._job = JobRunner(self)
        self._count_job = JobRunner(self)
        self._list_job = JobRunner(self)
        self._outcome: TrainingOutcome | None = None
        self._stopping = False
        self._epochs_done = 0
        self._config: RunConfig | None = None
        self._history: dict[str, list[float]] = {}
        self._batches: dict[str, list[float]] = {"x": [], "loss": [], "accuracy": []}
        self._count_timer = QTimer(self, singleShot=True, interval=300)
        self._count_timer.timeout.connect(self._count_parameters)

        self._build_settings()
        self._build_results()
        layout = QHBoxLayout(self)
        layout.addWidget(self.settings_box)
        layout.addWidget(self.results, 1)

        self._job.progress.connect(self._on_progress)
        self._job.result.connect(self._on_result)
        self._job.error.connect(self._on_error)
        self._job.finished.connect(self._on_finished)
        self._count_job.result.connect(self._on_counts)
        self._count_job.error.connect(lambda msg: self.params_label.setText(f"({msg})"))
        self._count_job.finished.connect(self._update_buttons)
        self._list_job.result.connect(self._choose_checkpoint)
        self._list_job.error.connect(self._show_failure)
        self._list_job.finished.connect(self._update_buttons)
        state.dataset_changed.connect(self._on_state_changed)
        state.classes_changed.connect(self._on_state_changed)
        state.augment_changed.connect(self._on_state_changed)

        self._restore_form()
        self._on_variant_changed()
        self.refresh_runs()
        self._on_state_changed()

    # ---- layout

    def _build_settings(self) -> None:
        self.variant_combo = QComboBox()
        for variant in VARIANTS:
            self.variant_combo.addItem(VARIANT_LABELS[variant], variant)
        self.classes_label = QLabel()
        self.epochs_spin = QSpinBox(minimum=1, maximum=10_000, value=30)
        self.batch_spin = QSpinBox(minimum=1, maximum=65_536, value=32)
        self.lr_edit = QLineEdit()
        validator = QDoubleValidator(1e-9, 10.0, 12, self.lr_edit)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.lr_edit.setValidator(validator)
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.limit_spin = QSpinBox(minimum=0, maximum=10_000_000, value=0, singleStep=100)
        self.limit_spin.setSpecialValueText("all")
        self.limit_spin.setToolTip("Use the first N training and N test images of the classes")
        self.augment_label = QLabel(wordWrap=True)

        form = QFormLayout()
        form.addRow("Variant", self.variant_combo)
        form.addRow("Classes", self.classes_label)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_edit)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Images", self.limit_spin)
        form.addRow("Augmentation", self.augment_label)

        self.weights_combo = QComboBox()
        for key, (label, _) in WEIGHTS_CHOICES.items():
            self.weights_combo.addItem(label, key)
        self.weights_path = _PathField(
            "Weights file or saved model", "Keras files (*.h5 *.keras *.weights.h5);;All files (*)"
        )
        self.from_path = _PathField(
            "Transfer model to fine-tune", "Keras models (*.h5 *.keras);;All files (*)",
            "train a transfer model, or browse",
        )  # fmt: skip
        self.params_label = QLabel(wordWrap=True)
        self.vgg_box = QGroupBox("VGG16")
        vgg_form = QFormLayout(self.vgg_box)
        vgg_form.addRow("Base weights", self.weights_combo)
        vgg_form.addRow("", self.weights_path)
        vgg_form.addRow("Fine-tune from", self.from_path)
        vgg_form.addRow("Parameters", self.params_label)

        self.strategy_combo = QComboBox()
        for key in STRATEGIES:
            self.strategy_combo.addItem(STRATEGY_LABELS.get(key, key), key)
        self.strategy_combo.setToolTip(
            "tf.distribute strategy; the batch size is per device (multi-worker: see README)"
        )
        self.precision_combo = QComboBox()
        for key in PRECISIONS:
            self.precision_combo.addItem(PRECISION_LABELS.get(key, key), key)
        self.precision_combo.setToolTip(
            "Mixed precision computes in 16 bits and keeps float32 weights and output"
        )
        self.advanced_box = QGroupBox("Advanced")
        advanced_form = QFormLayout(self.advanced_box)
        advanced_form.addRow("Strategy", self.strategy_combo)
        advanced_form.addRow("Precision", self.precision_combo)

        self.out_path = _PathField("Output folder", None)
        stored = self.settings.value(SETTINGS_OUT_DIR)
        self.out_path.edit.setText(str(stored) if stored else str(default_out_dir()))

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(
            "End after the batches in progress (up to 8 on a CPU); the model so far is saved"
        )
        self.resume_button = QPushButton("Resume\u2026")
        self.resume_button.setToolTip(
            "Continue a stopped, crashed or finished run of the output folder from its last "
            "checkpoint"
        )
        self.hint_label = QLabel(wordWrap=True)
        self.hint_label.setStyleSheet("color: #a33;")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.resume_button)

        self.settings_box = QWidget()
        self.settings_box.setMaximumWidth(380)
        self.settings_box.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        column = QVBoxLayout(self.settings_box)
        column.setContentsMargins(0, 0, 0, 0)
        self.run_box = QGroupBox("Run")
        self.run_box.setLayout(form)
        column.addWidget(self.run_box)
        column.addWidget(self.vgg_box)
        column.addWidget(self.advanced_box)
        out_box = QGroupBox("Output folder")
        QVBoxLayout(out_box).addWidget(self.out_path)
        column.addWidget(out_box)
        column.addLayout(buttons)
        column.addWidget(self.hint_label)
        column.addStretch(1)

        self.variant_combo.currentIndexChanged.connect(self._on_variant_changed)
        self.weights_combo.currentIndexChanged.connect(self._update_vgg_fields)
        self.from_path.changed.connect(lambda _: self._schedule_counts())
        self.out_path.changed.connect(self._on_out_dir_changed)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.ask_resume)

    def _build_results(self) -> None:
        self.plots = TrainingPlots()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("Idle")
        self.progress.setValue(0)
        self.export_button = QPushButton("Export plots as PNG\u2026")
        self.export_button.clicked.connect(lambda: self.export_plots())
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
        self.results = QSplitter(Qt.Orientation.Vertical)
        self.results.addWidget(top)
        self.results.addWidget(bottom)
        self.results.setStretchFactor(0, 3)
        self.results.setStretchFactor(1, 2)

    # ---- settings

    @property
    def variant(self) -> str:
        return self.variant_combo.currentData()

    @property
    def busy(self) -> bool:
        """Whether a training run is in progress."""
        return self._job.busy

    def set_variant(self, variant: str) -> None:
        """Select a variant (as the combo box does)."""
        self.variant_combo.setCurrentIndex(VARIANTS.index(variant))

    def _on_variant_changed(self) -> None:
        self.lr_edit.setText(f"{DEFAULT_LEARNING_RATES[self.variant]:g}")
        if self.variant == "finetune" and not self.from_path.text():
            latest = self._latest_transfer_run()
            if latest is not None:
                self.from_path.set_text(str(latest))
        self._update_vgg_fields()
        self._on_state_changed()
        self._schedule_counts()

    def _update_vgg_fields(self) -> None:
        vgg = self.variant in ("transfer", "finetune")
        transfer = self.variant == "transfer"
        self.weights_combo.setEnabled(transfer)
        self.weights_path.setEnabled(
            transfer and WEIGHTS_CHOICES[self.weights_combo.currentData()][1]
        )
        self.from_path.setEnabled(self.variant == "finetune")
        if self.variant != "finetune":
            self.params_label.setText(
                "shown before fine-tuning" if vgg else "shown in the run table after a run"
            )

    def _augmentation_on(self) -> bool:
        # The seed's baseline never augments; the other variants follow the Augmentation tab.
        return self.variant != "baseline" and self.state.use_augmentation

    def _on_state_changed(self, *_args: Any) -> None:
        self.classes_label.setText(" vs ".join(self.state.chosen_names))
        if self.variant == "baseline":
            text = "off (the baseline trains on the plain images)"
        elif self.state.use_augmentation:
            text = "on (settings of the Augmentation tab)"
        else:
            text = "off (turned off in the Augmentation tab)"
        self.augment_label.setText(text)
        self._update_buttons()

    def _on_out_dir_changed(self, text: str) -> None:
        if text:
            self.settings.setValue(SETTINGS_OUT_DIR, text)
        self.refresh_runs()

    def _update_buttons(self) -> None:
        running = self._job.busy
        counting = self._count_job.busy
        hint = ""
        if self.state.dataset is None:
            hint = "Load a data set in the Dataset tab to train."
        elif counting:
            hint = "Counting parameters\u2026"
        self.hint_label.setText(hint)
        self.start_button.setEnabled(
            not running and not counting and self.state.dataset is not None
        )
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(
            not running and not self._list_job.busy and bool(self.out_path.text())
        )
        for box in (self.run_box, self.vgg_box, self.advanced_box, self.out_path):
            box.setEnabled(not running)

    def build_config(self) -> RunConfig:
        """The run the settings describe; raises :class:`UserError` with one line."""
        if self.state.dataset is None:
            raise UserError("load a data set in the Dataset tab first")
        try:
            lr = float(self.lr_edit.text())
        except ValueError:
            raise UserError(f"learning rate {self.lr_edit.text()!r} is not a number") from None
        out_dir = self.out_path.text()
        if not out_dir:
            raise UserError("choose an output folder")
        try:
            os.makedirs(out_dir, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"{out_dir}: cannot create the output folder ({exc.strerror})"
            ) from None
        if not os.access(out_dir, os.W_OK):
            raise UserError(f"{out_dir}: output folder is not writable")
        weights, base, from_model = "imagenet", None, None
        if self.variant == "transfer":
            choice = self.weights_combo.currentData()
            path = self.weights_path.text()
            if WEIGHTS_CHOICES[choice][1] and not path:
                raise UserError(f"choose the file for the base weights ({choice})")
            weights = path if choice == "file" else ("none" if choice == "none" else "imagenet")
            base = path if choice == "base" else None
        elif self.variant == "finetune":
            from_model = self.from_path.text()
            if not from_model:
                raise UserError("fine-tuning continues from a transfer model: choose its file")
        try:
            return RunConfig(
                variant=self.variant,
                classes=tuple(self.state.classes),
                data=self.state.data_source,
                epochs=self.epochs_spin.value(),
                batch_size=self.batch_spin.value(),
                learning_rate=lr,
                seed=self.seed_spin.value(),
                weights=weights,
                base=base,
                from_model=from_model,
                limit=self.limit_spin.value() or None,
                out_dir=out_dir,
                use_augmentation=self._augmentation_on(),
                augment=self.state.augment,
                strategy=self.strategy_combo.currentData(),
                precision=self.precision_combo.currentData(),
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None

    # ---- parameter counts before a fine-tune

    def _schedule_counts(self) -> None:
        if self.variant == "finetune":
            self.params_label.setText("\u2026")
            self._count_timer.start()

    def _count_parameters(self) -> None:
        if self.variant != "finetune" or self._job.busy:
            return
        path = self.from_path.text()
        if not path or not Path(path).is_file():
            self.params_label.setText("choose the transfer model to continue from")
            return
        config = RunConfig(variant="finetune", from_model=path)
        num_classes = len(self.state.classes)
        self._count_job.start(functools.partial(parameter_counts_job, config, num_classes))
        self._update_buttons()

    @Slot(object)
    def _on_counts(self, counts: ParameterCounts) -> None:
        self.params_label.setText(
            f"trainable {counts.trainable:,} \u00b7 non-trainable {counts.non_trainable:,}"
        )

    # ---- running

    def start(self) -> bool:
        """Start a run with the current settings; False (and a message) when it cannot."""
        if self._job.busy:
            return False
        try:
            config = self.build_config()
        except UserError as exc:
            self._show_failure(str(exc))
            return False
        pair = " vs ".join(self.state.chosen_names)
        self._begin(
            config,
            None,
            f"Start {config.variant}: {pair}, {counted(config.epochs, 'epoch')}, "
            f"batch {config.batch_size}, "
            f"learning rate {config.lr:g}, seed {config.seed}"
            + (f", from {Path(config.from_model).name}" if config.from_model else "")
            + (f" ({self.params_label.text()})" if config.variant == "finetune" else ""),
        )
        return True

    def ask_resume(self) -> None:
        """List the resumable runs of the output folder (in a worker), then let the user pick."""
        out_dir = self.out_path.text()
        if self._job.busy or self._list_job.busy or not out_dir:
            return
        self._list_job.start(functools.partial(list_checkpoints_job, out_dir))
        self._update_buttons()

    @Slot(object)
    def _choose_checkpoint(self, checkpoints: list[Checkpoint]) -> None:
        if not checkpoints:
            self._show_failure(
                f"{self.out_path.text()}: no run to resume here (runs leave a checkpoint "
                "after each complete epoch)"
            )
            return
        dialog = ResumeDialog(checkpoints, self)
        if dialog.exec() == ResumeDialog.DialogCode.Accepted:
            self.resume(dialog.checkpoint, dialog.epochs)

    def resume(self, checkpoint: Checkpoint, epochs: int | None = None) -> bool:
        """Continue ``checkpoint``'s run at its next epoch, to ``epochs`` in all (default: its
        own total); False (and a message) when it cannot."""
        if self._job.busy:
            return False
        from cifar_gui.engine.checkpoints import check_resumable  # loaded by the listing

        config = checkpoint.config.replace(epochs=epochs or checkpoint.config.epochs)
        # The data where the run found it; where it is gone, the data set open now.
        data = config.data
        if data not in (None, "keras") and not Path(data).exists() and self.state.data_source:
            config = config.replace(data=self.state.data_source)
        try:
            check_resumable(config, checkpoint)
        except UserError as exc:
            self._show_failure(str(exc))
            return False
        previous = {k: list(v) for k, v in checkpoint.history.items() if k != "epoch_seconds"}
        self._begin(
            config,
            checkpoint,
            f"Resume {checkpoint.directory.name} ({config.variant}, "
            f"{' vs '.join(checkpoint.class_names)}) at epoch {checkpoint.epochs_completed + 1} "
            f"of {config.epochs}",
            previous,
        )
        return True

    def _begin(
        self,
        config: RunConfig,
        resume: Checkpoint | None,
        log_line: str,
        history: dict[str, list[float]] | None = None,
    ) -> None:
        """Reset the live plots (to ``history`` of earlier epochs) and start the job."""
        self._config, self._outcome, self._stopping = config, None, False
        # Epochs with a checkpoint: each complete epoch leaves one (a resume starts from one).
        self._epochs_done = resume.epochs_completed if resume is not None else 0
        self._history = history or {}
        self._batches = {"x": [], "loss": [], "accuracy": []}
        self.plots.clear_live()
        self.plots.set_history(self._history)
        self.plots.set_epoch_span(config.epochs)  # fixed while it runs: no axis redraws
        self.progress.setRange(0, 0)  # busy indicator until the first batch
        self.progress.setFormat("Preparing\u2026")
        self._append_log(log_line)
        self._job.start(functools.partial(training_job, config, resume))
        self._update_buttons()

    def stop(self) -> None:
        """Ask the run to end after the batches in progress."""
        if self._job.busy and not self._stopping:
            self._stopping = True
            self._job.stop()
            self.progress.setFormat(self.progress.format() + " \u2014 stopping\u2026")
            self._append_log("Stopping after the batches in progress\u2026")

    def close_question(self) -> str:
        """The question before closing during a run, true to what a stop leaves behind."""
        done = self._epochs_done
        if done == 0:
            after = (
                "The model learned so far is saved, but the run has not completed its first "
                "epoch: it leaves no checkpoint, so it cannot be resumed (a new run starts "
                "from the beginning)."
            )
        else:
            after = (
                "The model learned so far is saved, and the run can be resumed later from the "
                f"end of epoch {done} (the epoch in progress is not kept)."
            )
        return f"A training run is in progress. Stop it and quit?\n\n{after}"

    def confirm_close(self) -> bool:
        """Whether the window may close: asks to stop a run in progress (True when idle)."""
        if not self._job.busy:
            return True
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Training in progress",
            self.close_question(),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.button(QMessageBox.StandardButton.Yes).setText("Stop and quit")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes

    def shutdown(self) -> None:
        """Save the settings, stop the run and wait for the worker threads (the window closes).

        The training process saves what it learned before it ends.
        """
        self.save_form()
        self._count_timer.stop()
        self.stop()
        self._job.shutdown()
        self._count_job.shutdown()
        self._list_job.shutdown()

    # ---- settings of the form

    def save_form(self) -> None:
        """Store the run settings for the next session."""
        form = {
            "variant": self.variant,
            "epochs": self.epochs_spin.value(),
            "batch_size": self.batch_spin.value(),
            "seed": self.seed_spin.value(),
            "limit": self.limit_spin.value(),
            "strategy": self.strategy_combo.currentData(),
            "precision": self.precision_combo.currentData(),
        }
        self.settings.setValue(SETTINGS_FORM, json.dumps(form))
        self.settings.sync()

    def _restore_form(self) -> None:
        try:
            form = json.loads(str(self.settings.value(SETTINGS_FORM, "{}")))
        except ValueError:
            return  # a damaged entry: keep the seed's defaults
        if not isinstance(form, dict):
            return
        for spin, key in ((self.epochs_spin, "epochs"), (self.batch_spin, "batch_size"),
                          (self.seed_spin, "seed"), (self.limit_spin, "limit")):  # fmt: skip
            if isinstance(form.get(key), int):
                spin.setValue(form[key])
        for combo, key in ((self.variant_combo, "variant"), (self.strategy_combo, "strategy"),
                           (self.precision_combo, "precision")):  # fmt: skip
            index = combo.findData(form.get(key))
            if index >= 0:
                combo.setCurrentIndex(index)

    @Slot(object)
    def _on_progress(self, value: Any) -> None:
        from cifar_gui.engine.training import EpochEvent  # loaded by the job already

        if isinstance(value, BatchUpdate):
            self._on_batches(value)
        elif isinstance(value, EpochEvent):
            self._on_epoch(value)

    def _on_batches(self, update: BatchUpdate) -> None:
        self._batches["x"].extend(update.x.tolist())
        self._batches["loss"].extend(update.loss.tolist())
        self._batches["accuracy"].extend(update.accuracy.tolist())
        self.plots.set_batches(
            np.asarray(self._batches["x"]),
            {m: np.asarray(self._batches[m]) for m in METRICS},
        )
        e = update.event
        total = e.epochs * e.steps
        if self.progress.maximum() != total:
            self.progress.setRange(0, total)
        self.progress.setValue(e.epoch * e.steps + e.batch + 1)
        stopping = " \u2014 stopping\u2026" if self._stopping else ""
        self.progress.setFormat(
            f"Epoch {e.epoch + 1}/{e.epochs} \u00b7 batch {e.batch + 1}/{e.steps} \u00b7 "
            f"{e.images_per_second:,.0f} img/s \u00b7 ETA {_format_eta(e.eta_seconds)}{stopping}"
        )
        self.batch_progress.emit(e)

    def _on_epoch(self, event: EpochEvent) -> None:
        if not self._stopping:  # an epoch the stop cut short keeps no checkpoint
            self._epochs_done = event.epoch + 1
        for key, value in event.metrics.items():
            self._history.setdefault(key, []).append(value)
        self.plots.set_history(self._history)
        m = event.metrics
        nan = math.nan
        self._append_log(
            f"Epoch {event.epoch + 1}/{event.epochs}: loss {m.get('loss', nan):.4f}, "
            f"accuracy {m.get('accuracy', nan):.4f}, val_loss {m.get('val_loss', nan):.4f}, "
            f"val_accuracy {m.get('val_accuracy', nan):.4f} ({event.seconds:.1f} s)"
        )
        self.epoch_finished.emit(event)

    @Slot(object)
    def _on_result(self, outcome: TrainingOutcome) -> None:
        self._outcome = outcome
        summary = outcome.summary
        acc = summary.final_val_accuracy
        self._append_log(
            ("Stopped" if outcome.stopped else "Finished")
            + f" after {counted(summary.epochs, 'epoch')}"
            + (f", validation accuracy {acc:.4f}" if acc is not None else "")
            + f"; saved {outcome.model.path}"
        )
        if summary.variant == "transfer" and summary.model_path is not None:
            # Fine-tuning continues from the transfer model just trained, as the seed does.
            self.from_path.set_text(str(summary.model_path))
        self.refresh_runs()
        self.state.set_model(outcome.model)
        self.state.message.emit(f"Trained {outcome.model.path.name}; it is now the current model")

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self._append_log(f"Failed: {message}")
        self._show_failure(message)
        self.run_failed.emit(message)

    @Slot()
    def _on_finished(self) -> None:
        self.plots.set_epoch_span(None)
        self.progress.setRange(0, max(self.progress.maximum(), 1))
        if self._outcome is None:
            self.progress.setFormat("Failed")
        else:
            self.progress.setFormat("Stopped" if self._outcome.stopped else "Done")
        self._update_buttons()
        self._schedule_counts()
        self.run_finished.emit(self._outcome)

    def _show_failure(self, message: str) -> None:
        self.state.message.emit(f"Training: {message}")
        QMessageBox.warning(self, "Training", message)

    def _append_log(self, line: str) -> None:
        self.log.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {line}")

    # ---- saved runs

    def refresh_runs(self) -> None:
        """Read the runs in the output folder again."""
        self.table.set_runs(discover_runs(self.out_path.text()) if self.out_path.text() else [])

    def _latest_transfer_run(self) -> Path | None:
        names = tuple(self.state.chosen_names)
        for run in reversed(self.table.runs):
            if run.variant == "transfer" and run.model_path and run.class_names == names:
                return run.model_path
        return None

    def _on_runs_selected(self, runs: list[SavedRun]) -> None:
        self.plots.set_overlays([(run.label, run.history) for run in runs])

    def export_plots(self, path: str | None = None) -> Path | None:
        """Save the curves shown (live run and overlays) as a PNG; ask where when no path."""
        histories: dict[str, dict[str, list[float]]] = {}
        if self._history:
            histories["current run"] = self._history
        live = self._outcome.summary.sidecar if self._outcome else None
        for run in self.table.selected_runs():
            if run.sidecar != live:  # the current run is already drawn
                histories[run.label] = run.history
        if not histories and not self._batches["x"]:
            self._show_failure("nothing to export yet: train a run or select runs in the table")
            return None
        if path is None:
            default = Path(self.out_path.text() or ".") / "training_curves.png"
            path, _ = QFileDialog.getSaveFileName(
                self, "Export plots", str(default), "PNG images (*.png)"
            )
            if not path:
                return None
        from cifar_gui.plots import save_history_plot  # matplotlib loads on first export

        target = Path(path).with_suffix(".png")
        batches = self._batches if self._batches["x"] else None
        try:
            save_history_plot(
                target, histories, batches, title=" vs ".join(self.state.chosen_names)
            )
        except (OSError, ValueError) as exc:
            self._show_failure(f"{target}: cannot write the plot ({exc})")
            return None
        self._append_log(f"Exported plots to {target}")
        return target

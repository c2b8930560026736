"""The Training tab: the form beside the results, run by the controller.

The panel joins the three: it asks the form for a config, the engine (through the
controller) for a plan, and draws what the controller reports. When a run has saved its
model it asks the app to open it (``AppState.request_model``): the window opens models
outside its own process, so training never loads TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QMessageBox, QWidget

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.runner import RunPlan, plan_run
from cifar_gui.gui.resume_dialog import ResumeDialog
from cifar_gui.gui.state import AppState, user_settings
from cifar_gui.gui.text import counted
from cifar_gui.gui.training.controller import RunController, TrainingOutcome
from cifar_gui.gui.training.form import CountService, TrainingForm
from cifar_gui.gui.training.results import TrainingResults

if TYPE_CHECKING:
    from cifar_gui.engine.checkpoints import Checkpoint
    from cifar_gui.engine.training import EpochEvent
    from cifar_gui.gui.training.trace import BatchUpdate


class TrainingPanel(QWidget):
    """Run settings, Start/Stop/Resume, live plots, progress, epoch log and the run table."""

    batch_progress = Signal(object)  # BatchEvent, once its batches are drawn
    epoch_finished = Signal(object)  # EpochEvent, once drawn and logged
    run_finished = Signal(object)  # TrainingOutcome, or None when the run failed
    run_failed = Signal(str)  # one line
    resume_listed = Signal(object)  # the checkpoints offered by Resume (after the dialog)

    def __init__(
        self,
        state: AppState,
        settings: QSettings | None = None,
        parent: QWidget | None = None,
        service: CountService | None = None,
    ):
        super().__init__(parent)
        self.state = state
        # The window's store (the user's unless the window was given another).
        self.settings = settings if settings is not None else user_settings()
        self.form = TrainingForm(state, self.settings, service)
        self.results = TrainingResults()
        self.controller = RunController(self)
        layout = QHBoxLayout(self)
        layout.addWidget(self.form)
        layout.addWidget(self.results, 1)

        # The widgets tests, the bench and the window drive.
        f, r = self.form, self.results
        self.epochs_spin, self.batch_spin, self.seed_spin = f.epochs_spin, f.batch_spin, f.seed_spin
        self.limit_spin, self.lr_edit, self.out_path = f.limit_spin, f.lr_edit, f.out_path
        self.strategy_combo, self.precision_combo = f.strategy_combo, f.precision_combo
        self.weights_combo, self.weights_path, self.from_path = (
            f.weights_combo, f.weights_path, f.from_path,
        )  # fmt: skip
        self.params_label = f.params_label
        self.start_button, self.stop_button = f.start_button, f.stop_button
        self.resume_button = f.resume_button
        self.plots, self.progress, self.log, self.table = r.plots, r.progress, r.log, r.table

        f.start_button.clicked.connect(self.start)
        f.pretrain_button.clicked.connect(self.pretrain)
        f.stop_button.clicked.connect(self.stop)
        f.resume_button.clicked.connect(self.ask_resume)
        f.variant_changed.connect(self._on_variant_changed)
        f.out_dir_changed.connect(lambda _text: self.refresh_runs())
        f.counting_changed.connect(self._update_buttons)
        r.export_requested.connect(lambda: self.export_plots())
        c = self.controller
        c.batches.connect(self._on_batches)
        c.epoch_finished.connect(self._on_epoch)
        c.succeeded.connect(self._on_result)
        c.failed.connect(self._on_error)
        c.finished.connect(self._on_finished)
        c.checkpoints_listed.connect(self._choose_checkpoint)
        c.listing_failed.connect(self._show_failure)
        c.busy_changed.connect(self._update_buttons)
        self.refresh_runs()
        self._update_buttons()

    # ---- settings

    @property
    def variant(self) -> str:
        return self.form.variant

    @property
    def busy(self) -> bool:
        """Whether a training run is in progress."""
        return self.controller.busy

    def set_variant(self, variant: str) -> None:
        """Select a variant (as the combo box does)."""
        self.form.set_variant(variant)

    def build_config(self) -> RunConfig:
        """The run the settings describe; raises :class:`UserError` with one line."""
        return self.form.config()

    def save_form(self) -> None:
        """Store the run settings for the next session."""
        self.form.save()

    def _on_variant_changed(self, variant: str) -> None:
        if variant == "finetune" and not self.from_path.text():
            latest = self._latest_transfer_run()
            if latest is not None:
                self.from_path.set_text(str(latest))

    def _update_buttons(self) -> None:
        self.form.update_buttons(self.controller.busy, self.controller.listing)

    # ---- running

    def start(self) -> bool:
        """Start a run with the current settings; False (and a message) when it cannot."""
        if self.busy:
            return False
        try:
            config = self.build_config()
            accepted = plan_run(config)
        except UserError as exc:
            self._show_failure(str(exc))
            return False
        pair = " vs ".join(self.state.chosen_names)
        self._begin(
            accepted,
            f"Start {config.variant}: {pair}, {counted(config.epochs, 'epoch')}, "
            f"batch {config.batch_size}, "
            f"learning rate {config.lr:g}, seed {config.seed}"
            + (f", from {Path(config.from_model).name}" if config.from_model else "")
            + (f" ({self.params_label.text()})" if config.variant == "finetune" else ""),
        )
        return True

    def pretrain(self) -> bool:
        """Start the pretrain of a base on the classes not in the pair (the form's network);
        False (and a message) when it cannot. The base then becomes the transfer's."""
        if self.busy:
            return False
        try:
            config = self.form.pretrain_config()
            accepted = plan_run(config)
        except UserError as exc:
            self._show_failure(str(exc))
            return False
        self._begin(
            accepted,
            f"Start pretrain ({config.arch}): a base on {', '.join(config.classes)}, never "
            f"{' or '.join(config.excluded)}; {counted(config.epochs, 'epoch')}, "
            f"batch {config.batch_size}, learning rate {config.lr:g}, seed {config.seed}",
        )
        return True

    def ask_resume(self) -> None:
        """List the resumable runs of the output folder (in a worker), then let the user pick."""
        self.controller.list_checkpoints(self.out_path.text())

    @Slot(object)
    def _choose_checkpoint(self, checkpoints: list[Checkpoint]) -> None:
        if not checkpoints:
            self._show_failure(
                f"{self.out_path.text()}: no run to resume here (runs leave a checkpoint "
                "after each complete epoch)"
            )
        else:
            dialog = ResumeDialog(checkpoints, self)
            if dialog.exec() == ResumeDialog.DialogCode.Accepted:
                self.resume(dialog.checkpoint, dialog.epochs)
        self.resume_listed.emit(checkpoints)

    def resume(self, checkpoint: Checkpoint, epochs: int | None = None) -> bool:
        """Continue ``checkpoint``'s run at its next epoch, to ``epochs`` in all (default: its
        own total); False (and a message) when it cannot."""
        if self.busy:
            return False
        # The data where the run found it; where it is gone, the data set open now.
        data = checkpoint.config.data
        gone = data not in (None, "keras") and not Path(data).exists()
        try:
            accepted = plan_run(
                resume=checkpoint,
                epochs=epochs,
                data=self.state.data_source if gone else None,
            )
        except UserError as exc:
            self._show_failure(str(exc))
            return False
        config = accepted.config
        self._begin(
            accepted,
            f"Resume {checkpoint.directory.name} ({config.variant}, "
            f"{' vs '.join(checkpoint.class_names)}) at epoch {checkpoint.epochs_completed + 1} "
            f"of {config.epochs}",
            {k: list(v) for k, v in checkpoint.history.items() if k != "epoch_seconds"},
        )
        return True

    def _begin(
        self, accepted: RunPlan, log_line: str, history: dict[str, list[float]] | None = None
    ) -> None:
        self.results.begin(accepted.config.epochs, history)
        self.results.append_log(log_line)
        self.controller.start(accepted)

    def stop(self) -> None:
        """Ask the run to end after the batches in progress."""
        if self.controller.stop():
            self.results.show_stopping()

    def close_question(self) -> str:
        """The question before closing during a run, true to what a stop leaves behind."""
        return self.controller.close_question()

    def confirm_close(self) -> bool:
        """Whether the window may close: asks to stop a run in progress (True when idle)."""
        if not self.busy:
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
        self.form.shutdown()
        if self.controller.busy and not self.controller.stopping:
            self.results.show_stopping()
        self.controller.shutdown()

    # ---- what the controller reports

    @Slot(object)
    def _on_batches(self, update: BatchUpdate) -> None:
        self.results.add_batches(update, self.controller.stopping)
        self.controller.batches_drawn()
        self.batch_progress.emit(update.event)

    @Slot(object)
    def _on_epoch(self, event: EpochEvent) -> None:
        self.results.add_epoch(event)
        self.epoch_finished.emit(event)

    @Slot(object)
    def _on_result(self, outcome: TrainingOutcome) -> None:
        summary = outcome.summary
        self.results.live_sidecar = summary.sidecar
        acc = summary.final_val_accuracy
        self.results.append_log(
            ("Stopped" if outcome.stopped else "Finished")
            + f" after {counted(summary.epochs, 'epoch')}"
            + (f", validation accuracy {acc:.4f}" if acc is not None else "")
            + f"; saved {outcome.path}"
        )
        if summary.variant == "transfer" and outcome.path is not None:
            # Fine-tuning continues from the transfer model just trained, as the seed does.
            self.from_path.set_text(str(outcome.path))
        if summary.variant == "pretrain" and outcome.path is not None:
            self.form.use_base(str(outcome.path))  # the next transfer starts from it
        self.refresh_runs()
        if outcome.path is not None:
            self.state.request_model(str(outcome.path))  # the window opens it

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self.results.append_log(f"Failed: {message}")
        self._show_failure(message)
        self.run_failed.emit(message)

    @Slot(object)
    def _on_finished(self, outcome: TrainingOutcome | None) -> None:
        if outcome is None:
            self.results.end("Failed")
        else:
            self.results.end("Stopped" if outcome.stopped else "Done")
        self.form.schedule_counts()
        self.run_finished.emit(outcome)

    def _show_failure(self, message: str) -> None:
        self.state.message.emit(f"Training: {message}")
        QMessageBox.warning(self, "Training", message)

    # ---- saved runs

    def refresh_runs(self) -> None:
        """Read the runs in the output folder again."""
        self.results.show_runs(self.out_path.text())

    def _latest_transfer_run(self) -> Path | None:
        names = tuple(self.state.chosen_names)
        for run in reversed(self.table.runs):
            if run.variant == "transfer" and run.model_path and run.class_names == names:
                return run.model_path
        return None

    def export_plots(self, path: str | None = None) -> Path | None:
        """Save the curves shown (live run and overlays) as a PNG; ask where when no path."""
        try:
            self.results.curves()  # say there is nothing before asking where
            if path is None:
                path = self.results.ask_export_path(self.out_path.text())
                if path is None:
                    return None
            return self.results.export(path, title=" vs ".join(self.state.chosen_names))
        except (OSError, ValueError) as exc:
            self._show_failure(str(exc))
            return None

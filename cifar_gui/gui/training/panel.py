"""The Training tab: the form beside the results, run by the controller.

The panel joins the three: it asks the form for a config, the engine (through the
controller) for a plan, and draws what the controller reports. When a run has saved its
model it asks the app to open it (``AppState.request_model``): the window opens models
outside its own process, so training never loads TensorFlow here.

The Study buttons run the seed's whole study (:mod:`cifar_gui.engine.study.plan`) in a folder of
the output folder, through the same controller; when it is done its report opens in the
default browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.config import AugmentConfig, RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.events import RunFinished, StudyFinished
from cifar_gui.engine.study.plan import StudyPlan, plan_study, read_study
from cifar_gui.engine.study.run_folders import (
    data_instead,
    latest_unfinished_study,
    new_study_folder,
)
from cifar_gui.engine.study.runs import SavedRun
from cifar_gui.engine.training.runner import RunPlan, plan_run
from cifar_gui.gui.resume_dialog import ResumeDialog
from cifar_gui.gui.state import AppState, user_settings
from cifar_gui.gui.text import counted, format_probability
from cifar_gui.gui.training.controller import RunController
from cifar_gui.gui.training.form import CountService, TrainingForm
from cifar_gui.gui.training.results import TrainingResults
from cifar_gui.gui.training.study_card import StudyCard
from cifar_gui.gui.widgets.scroll import vertical_scroll_area

if TYPE_CHECKING:
    from cifar_gui.engine.events import EpochEvent, StudyProgress
    from cifar_gui.engine.training.checkpoints import Checkpoint
    from cifar_gui.gui.training.trace import BatchUpdate


def open_in_browser(path: Path) -> bool:
    """Open ``path`` (the study's report) with the desktop's default application."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


class TrainingPanel(QWidget):
    """Run settings, Start/Stop/Resume, live plots, progress, epoch log and the run table;
    the Study buttons under the settings."""

    batch_progress = Signal(object)  # BatchEvent, once its batches are drawn
    epoch_finished = Signal(object)  # EpochEvent, once drawn and logged
    run_finished = Signal(object)  # RunFinished or StudyFinished; None when the run failed
    run_failed = Signal(str)  # one line
    resume_listed = Signal(object)  # the checkpoints offered by Resume (after the dialog)
    study_run = Signal(object)  # StudyProgress, once shown
    report_ready = Signal(object)  # Path of a finished study's report.html

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
        self.study_card = StudyCard()
        card = self.study_card
        self.study_button, self.resume_study_button = card.study_button, card.resume_study_button
        self.report_label = card.report_label
        left_box = QWidget()
        left = QVBoxLayout(left_box)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.form, 1)
        self.form.add_card(card)  # in view below the everyday settings
        # The settings scroll when the window is shorter than they are (the default 800 px
        # window, a laptop screen): they never make the window taller than the screen.
        self.settings_area = vertical_scroll_area(left_box)
        scroll_bar = self.settings_area.verticalScrollBar().sizeHint().width()
        self.settings_area.setFixedWidth(left_box.sizeHint().width() + scroll_bar)
        self.form.actions.setFixedWidth(self.settings_area.width())
        settings_column = QVBoxLayout()
        settings_column.addWidget(self.settings_area, 1)
        settings_column.addWidget(self.form.actions)
        layout = QHBoxLayout(self)
        layout.addLayout(settings_column)
        layout.addWidget(self.results, 1)

        f, r = self.form, self.results
        f.start_button.clicked.connect(self.start)
        f.pretrain_button.clicked.connect(self.pretrain)
        f.stop_button.clicked.connect(self.stop)
        f.resume_button.clicked.connect(self.ask_resume)
        self.study_button.clicked.connect(lambda: self.start_study())
        self.resume_study_button.clicked.connect(lambda: self.resume_study())
        card.estimate_requested.connect(lambda: self.estimate_study())
        card.job.finished.connect(self._update_buttons)
        f.variant_changed.connect(self._on_variant_changed)
        f.out_dir_changed.connect(lambda _text: self.refresh_runs())
        f.counting_changed.connect(self._update_buttons)
        r.export_requested.connect(lambda: self.export_plots())
        # A run of the table opens as the current model of every tab, as a finished run does.
        r.table.run_opened.connect(lambda run: self.state.request_model(str(run.model_path)))
        c = self.controller
        c.batches.connect(self._on_batches)
        c.epoch_finished.connect(self._on_epoch)
        c.study_run.connect(self._on_study_run)
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
        if variant == "finetune" and not self.form.from_path.text():
            latest = self._latest_transfer_run()
            if latest is not None:
                self.form.from_path.set_text(str(latest))

    def _update_buttons(self) -> None:
        busy = self.controller.busy
        self.form.update_buttons(busy, self.controller.listing)
        can_start = not busy and self.state.dataset is not None
        # A calibration in progress would share the cores with the study's first run.
        free = not self.study_card.estimating
        self.study_button.setEnabled(can_start and free)
        self.study_card.estimate_button.setEnabled(can_start and free)
        self.resume_study_button.setEnabled(not busy and free and bool(self.form.out_path.text()))

    # ---- running

    def start(self) -> bool:
        """Start a run with the current settings; False (and a message) when it cannot."""
        if self.busy:
            return False
        try:
            config = self.build_config()
            accepted = plan_run(config, new_folder=True)  # never over an earlier run
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
            + (f" ({self.form.params_label.text()})" if config.variant == "finetune" else "")
            + f"; in {Path(accepted.config.out_dir).name}",
        )
        return True

    def study_template(self) -> RunConfig:
        """The study's settings: the form's data, classes, epochs, limit, batch, seed, VGG16
        weights (whatever variant the form shows) and speed settings, with the seed's
        learning rates and augmentation; raises :class:`UserError` with one line."""
        if self.state.dataset is None:
            raise UserError("load a data set in the Dataset tab first")
        # Not strict: a finetune's model file or a learning rate of the form play no part.
        config = self.form._config(strict=False)
        return config.replace(
            variant="baseline",
            from_model=None,
            learning_rate=None,
            use_augmentation=None,
            augment=AugmentConfig(),
        )

    def new_study_plan(self, folder: str | Path | None = None) -> StudyPlan:
        """The study the settings describe, in ``folder`` (default: a new one in the output
        folder); raises :class:`UserError` with one line."""
        template = self.study_template()
        target = Path(folder) if folder else new_study_folder(template.out_dir)
        return plan_study(template, target, seeds=self.study_card.seeds_spin.value())

    def estimate_study(self) -> bool:
        """Show what the study will run and how long (computed by the engine service, on a
        worker); False (and a message) when it cannot."""
        if self.busy or self.study_card.estimating:
            return False
        try:
            plan = self.new_study_plan()
        except UserError as exc:
            self._show_failure(str(exc))
            return False
        self.study_card.start_estimate(plan, self.form.service, self.state.dataset)
        self._update_buttons()
        return True

    def start_study(self, folder: str | Path | None = None) -> bool:
        """Start the seed's study in ``folder`` (default: a new one in the output folder);
        False (and a message) when it cannot."""
        if self.busy or self.study_card.estimating:
            return False
        try:
            plan = self.new_study_plan(folder)
        except UserError as exc:
            self._show_failure(str(exc))
            return False
        t = plan.template
        base = f"base {t.base}" if t.base else f"VGG16 weights {t.weights}"
        if plan.pretrain_base:
            base = f"a base pretrained first ({plan.base_reason})"
        seeds = f", {plan.seeds} seeds" if plan.seeds > 1 else ""
        self._begin_study(
            plan,
            f"Study in {plan.folder}: {' vs '.join(self.state.chosen_names)}, "
            f"{counted(t.epochs, 'epoch')} per run{seeds}, {base}",
        )
        return True

    def resume_study(self, folder: str | Path | None = None) -> bool:
        """Continue the study in ``folder`` (default: the latest unfinished one in the output
        folder, else one chosen in a dialog); False (and a message) when it cannot."""
        if self.busy:
            return False
        if folder is None:
            folder = latest_unfinished_study(self.form.out_path.text())
        if folder is None:
            folder = QFileDialog.getExistingDirectory(
                self, "Resume the study in", self.form.out_path.text()
            )
            if not folder:
                return False
        try:
            template, _ = read_study(folder)
            data = data_instead(template.data, self.state.data_source)
            plan = plan_study(resume=folder, data=data)
        except UserError as exc:
            self._show_failure(str(exc))
            return False
        self._begin_study(plan, f"Resume the study in {plan.folder}")
        return True

    def _begin_study(self, plan: StudyPlan, log_line: str) -> None:
        self.report_label.setText("")
        self.results.begin_study(plan.schedule(), self.study_card.estimates_for(plan))
        self.results.append_log(log_line)
        self.controller.start(plan)

    def pretrain(self) -> bool:
        """Start the pretrain of a base on the classes not in the pair (the form's network);
        False (and a message) when it cannot. The base then becomes the transfer's."""
        if self.busy:
            return False
        try:
            config = self.form.pretrain_config()
            accepted = plan_run(config, new_folder=True)
        except UserError as exc:
            self._show_failure(str(exc))
            return False
        self._begin(
            accepted,
            f"Start pretrain ({config.arch}): a base on {', '.join(config.classes)}, never "
            f"{' or '.join(config.excluded)}; {counted(config.epochs, 'epoch')}, "
            f"batch {config.batch_size}, learning rate {config.lr:g}, seed {config.seed}; "
            f"in {Path(accepted.config.out_dir).name}",
        )
        return True

    def ask_resume(self) -> None:
        """List the resumable runs of the output folder (in a worker), then let the user pick."""
        self.controller.list_checkpoints(self.form.out_path.text())

    @Slot(object)
    def _choose_checkpoint(self, checkpoints: list[Checkpoint]) -> None:
        if not checkpoints:
            self._show_failure(
                f"{self.form.out_path.text()}: no run to resume here (runs leave a checkpoint "
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
        try:
            accepted = plan_run(
                resume=checkpoint,
                epochs=epochs,
                data=data_instead(checkpoint.config.data, self.state.data_source),
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
        self.results.begin(accepted.config.epochs, history, accepted.config.variant)
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
        self.study_card.shutdown()
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
    def _on_study_run(self, event: StudyProgress) -> None:
        self.results.study_run(event)
        if event.state != "running" and event.variant == "transfer" and event.model_path:
            self.form.from_path.set_text(str(event.model_path))
        self.study_run.emit(event)

    def _study_result(self, outcome: StudyFinished) -> None:
        report = outcome.report
        if report is None:
            self.results.end_study(
                "Stopped", f"Study stopped: Resume study continues it ({outcome.folder})"
            )
            return
        self.results.end_study("Done", f"Study done. Report: {report}")
        self.results.append_log(f"Study done; report {report}")
        self.report_label.setText(
            f'Report: <a href="{QUrl.fromLocalFile(str(report)).toString()}">{report}</a>'
        )
        open_in_browser(report)
        self.report_ready.emit(report)

    @Slot(object)
    def _on_result(self, outcome: RunFinished | StudyFinished) -> None:
        if isinstance(outcome, StudyFinished):
            self._study_result(outcome)
            return
        summary = SavedRun.of_model(outcome.path, outcome.record)
        self.results.live_sidecar = summary.sidecar
        acc = summary.record.test_accuracy
        self.results.append_log(
            ("Stopped" if outcome.stopped else "Finished")
            + f" after {counted(summary.record.epochs_completed, 'epoch')}"
            + (f", validation accuracy {format_probability(acc)}" if acc is not None else "")
            + f"; saved {outcome.path}"
        )
        if summary.record.variant == "transfer" and outcome.path is not None:
            # Fine-tuning continues from the transfer model just trained, as the seed does.
            self.form.from_path.set_text(str(outcome.path))
        if summary.record.variant == "pretrain" and outcome.path is not None:
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
    def _on_finished(self, outcome: RunFinished | StudyFinished | None) -> None:
        if outcome is None and self.controller.studying:
            self.results.end_study("Failed", "Study failed: see the log")
        elif outcome is None:
            self.results.end("Failed")
        elif isinstance(outcome, RunFinished):
            self.results.end("Stopped" if outcome.stopped else "Done")
        self.form.schedule_counts()
        self.run_finished.emit(outcome)

    def _show_failure(self, message: str) -> None:
        self.state.message.emit(f"Training: {message}")
        QMessageBox.warning(self, "Training", message)

    # ---- saved runs

    def refresh_runs(self) -> None:
        """Read the runs in the output folder again."""
        self.results.show_runs(self.form.out_path.text())

    def _latest_transfer_run(self) -> Path | None:
        names = tuple(self.state.chosen_names)
        for run in reversed(self.results.table.runs):
            record = run.record
            if record.variant == "transfer" and run.model_path and record.class_names == names:
                return run.model_path
        return None

    def export_plots(self, path: str | None = None) -> Path | None:
        """Save the curves shown (live run and overlays) as a PNG; ask where when no path."""
        try:
            self.results.curves()  # say there is nothing before asking where
            if path is None:
                path = self.results.ask_export_path(self.form.out_path.text())
                if path is None:
                    return None
            return self.results.export(path, title=" vs ".join(self.state.chosen_names))
        except (OSError, ValueError) as exc:
            self._show_failure(str(exc))
            return None

"""The main window: one tab per panel, menus, status bar, settings that survive a restart, and
clean shutdown of every worker thread.

It owns the one :class:`~cifar_gui.engine.service.EngineService` (TensorFlow and the Keras
models live in its child process, never in this one; it also detects the device), opens the
models the panels ask for through :class:`AppState` (the bundled default one included) and
shows the tab a panel asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

import cifar_gui
from cifar_gui import resources
from cifar_gui.engine.data.dataset import resolve_classes
from cifar_gui.engine.errors import DataError
from cifar_gui.engine.events import RunFinished, StudyFinished
from cifar_gui.engine.service import DeviceInfo, EngineService, ModelHandle
from cifar_gui.gui.activations.view import ActivationPanel
from cifar_gui.gui.augmentation_view import AugmentationPanel
from cifar_gui.gui.dataset.model import source_name
from cifar_gui.gui.dataset.view import DatasetPanel
from cifar_gui.gui.evaluation_view import EvaluationPanel
from cifar_gui.gui.export_dialog import ExportDialog
from cifar_gui.gui.live_view import LiveView
from cifar_gui.gui.run_notice import RunNotice
from cifar_gui.gui.state import AppState, user_settings
from cifar_gui.gui.text import MODEL_FILTERS
from cifar_gui.gui.training import TrainingPanel
from cifar_gui.gui.workers import JobRunner

MODEL_SUFFIXES = (".keras", ".h5")
STATUS_GAP = 16  # pixels between a status-bar message and each permanent label


class MainWindow(QMainWindow):
    """Tabs Dataset, Augmentation, Training, Activations, Evaluation over one :class:`AppState`.

    ``settings`` defaults to the user's; tests and the screenshot mode pass their own.
    ``models``: the engine service (default: a new one with its own child process, started
    by the first request); the window closes it at shutdown.
    Data loading starts with :meth:`start`, not in the constructor.
    """

    first_painted = Signal()  # once, when the window has painted for the first time

    def __init__(
        self,
        state: AppState | None = None,
        parent: QWidget | None = None,
        settings: QSettings | None = None,
        models: EngineService | None = None,
    ):
        super().__init__(parent)
        self.state = state or AppState(self)
        self.models = models if models is not None else EngineService()
        self.setWindowTitle("cifar-gui")
        self.settings = settings if settings is not None else user_settings()
        self.device_job = JobRunner(self)
        self.model_job = JobRunner(self)
        self.default_model_job = JobRunner(self)
        self._painted = False
        self._quitting = False  # "Stop and quit" chosen: closing when the run has ended
        self._versions: dict[str, str] = {}

        self.tabs = QTabWidget()
        self.dataset_panel = DatasetPanel(self.state)
        self.augmentation_panel = AugmentationPanel(self.state, self.models)
        self.training_panel = TrainingPanel(self.state, self.settings, service=self.models)
        self.live_panel = LiveView()
        controller = self.training_panel.controller
        controller.run_started.connect(self.live_panel.begin_run)
        controller.live_snapshot.connect(self.live_panel.show_snapshot)
        controller.batches.connect(self.live_panel.add_batches)
        controller.epoch_finished.connect(self.live_panel.add_epoch)
        self.run_notice = RunNotice(self)
        controller.run_started.connect(self.run_notice.started)
        controller.batches.connect(lambda update: self.run_notice.progress(update.event))
        self.training_panel.run_finished.connect(self._on_run_finished)
        self.live_panel.request_changed.connect(controller.ask_live)
        self.activation_panel = ActivationPanel(self.state, self.models)
        self.evaluation_panel = EvaluationPanel(self.state, self.models)
        for title, panel in self.panels().items():
            self.tabs.addTab(panel, title)
        self.setCentralWidget(self.tabs)

        self._build_menus()
        self.status_data = QLabel()
        self.status_model = QLabel()
        self.status_device = QLabel()
        for label in (self.status_data, self.status_model, self.status_device):
            label.setContentsMargins(STATUS_GAP, 0, 0, 0)  # apart from the message and each other
            self.statusBar().addPermanentWidget(label)
        self.state.dataset_changed.connect(self._on_dataset_changed)
        self.state.classes_changed.connect(self._on_classes_changed)
        self.state.model_changed.connect(self._update_status)
        self.state.model_loading.connect(self._on_model_loading)
        self.state.model_failed.connect(self._update_status)
        # A model a training run saved opens as the current one, unless the window is closing.
        self.state.model_requested.connect(lambda path: self._quitting or self.open_model(path))
        self.state.message.connect(lambda text: self.show_message(text, 8000))
        self.state.default_model_requested.connect(self.open_default_model)
        self.state.show_panel.connect(self.show_panel)
        self.model_job.result.connect(self._on_model_job_done)
        self.model_job.error.connect(self._on_model_job_failed)
        self.default_model_job.result.connect(self._on_default_model)
        self.default_model_job.error.connect(self.state.model_failed)
        self.device_job.result.connect(self._on_device_detected)
        self.device_job.error.connect(lambda msg: self.show_message(msg))

        self._chosen_names = self._restore_classes()
        self._update_status()
        self._restore_geometry()
        self.setAcceptDrops(True)

    def panels(self) -> dict[str, QWidget]:
        """The panels by tab title, in tab order."""
        return {
            "Dataset": self.dataset_panel,
            "Augmentation": self.augmentation_panel,
            "Training": self.training_panel,
            "Live": self.live_panel,
            "Activations": self.activation_panel,
            "Evaluation": self.evaluation_panel,
        }

    def show_panel(self, title: str) -> None:
        """Bring the panel of tab ``title`` to the front (panels ask via AppState.show_panel)."""
        panel = self.panels().get(title)
        if panel is not None:
            self.tabs.setCurrentWidget(panel)

    def start(self, data: str | None = None) -> None:
        """Open ``data``, else the last data source, else the Keras cache (in a worker).

        When that fails the Dataset panel says so and offers download and open.
        """
        source = data or self.settings.value("data/source") or None
        self.dataset_panel.load(source)

    # -- menus ---------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        data_menu = file_menu.addMenu("Open &data set")
        panel = self.dataset_panel
        self.open_archive_action = QAction("&Archive file (cifar-10-python.tar.gz)...", self)
        self.open_archive_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_archive_action.triggered.connect(panel.open_archive)
        self.open_folder_action = QAction("&Folder (batches or train/ and test/ images)...", self)
        self.open_folder_action.triggered.connect(panel.open_folder)
        self.keras_action = QAction("&Keras cache", self)
        self.keras_action.triggered.connect(lambda: panel.load("keras"))
        self.download_action = QAction("&Download CIFAR-10...", self)
        self.download_action.triggered.connect(panel.download)
        for action in (self.open_archive_action, self.open_folder_action, self.keras_action):
            data_menu.addAction(action)
        data_menu.addSeparator()
        data_menu.addAction(self.download_action)

        self.open_model_action = QAction("Open &model...", self)
        self.open_model_action.setShortcut("Ctrl+Shift+O")
        self.open_model_action.triggered.connect(self.ask_open_model)
        self.save_model_action = QAction("&Save model as...", self)
        self.save_model_action.setShortcut(QKeySequence.StandardKey.SaveAs)
        self.save_model_action.triggered.connect(self.ask_save_model)
        self.save_model_action.setEnabled(False)
        file_menu.addAction(self.open_model_action)
        file_menu.addAction(self.save_model_action)
        self.export_model_action = file_menu.addAction("&Export model...", self.ask_export_model)
        file_menu.addSeparator()
        self.study_action = QAction("Run the tutorial's &study", self)
        self.study_action.triggered.connect(self._run_study)
        self.resume_study_action = QAction("&Resume study...", self)
        self.resume_study_action.triggered.connect(self._resume_study)
        file_menu.addAction(self.study_action)
        file_menu.addAction(self.resume_study_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def _run_study(self) -> None:
        self.show_panel("Training")
        self.training_panel.start_study()

    def _resume_study(self) -> None:
        self.show_panel("Training")
        self.training_panel.resume_study()

    def about_text(self) -> str:
        """Versions of the app, TensorFlow, Keras and Qt, and the device in use."""
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        versions = self._versions
        return (
            f"<b>cifar-gui {cifar_gui.__version__}</b><br>"
            "Convolutional networks on CIFAR-10, after the R + Keras tutorial.<br><br>"
            f"TensorFlow {versions.get('tensorflow', '(loading)')}<br>"
            f"Keras {versions.get('keras', '(loading)')}<br>"
            f"Qt {qVersion()} (PySide6 {pyside_version})<br>"
            f"Device: {self.state.device}"
        )

    def show_about(self) -> None:
        QMessageBox.about(self, "About cifar-gui", self.about_text())

    # -- models --------------------------------------------------------------------------

    def ask_open_model(self) -> None:
        """Ask for a .keras or .h5 file and open it."""
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", str(Path.cwd()), MODEL_FILTERS)
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        """Load ``path`` (through the engine service, from a worker); it becomes the current
        model."""
        self.show_message(f"Opening {path}...")
        self.state.model_loading.emit(str(path))
        models = self.models
        self.model_job.start(lambda task: ("opened", models.open(path)))

    def open_default_model(self) -> None:
        """Make the bundled baseline the current model when there is none (from a worker)."""
        if self.state.model is None and not self.default_model_job.busy:
            path = resources.default_model_path()
            self.state.model_loading.emit(str(path))
            models = self.models
            self.default_model_job.start(lambda task: models.open(path))

    def _on_default_model(self, handle: ModelHandle) -> None:
        if self.state.model is None:
            self.state.set_model(handle)
        else:  # a model arrived meanwhile (trained or opened): it stays the current one
            self._update_status()

    def ask_save_model(self) -> None:
        """Ask where to save the current model and save it."""
        model = self.state.model
        if model is None:
            self.state.message.emit("No model to save: train one or open one first")
            return
        path, chosen = QFileDialog.getSaveFileName(
            self,
            "Save the model as",
            str(Path.cwd() / model.path.name),
            "Keras 3 (*.keras);;HDF5, as the tutorial (*.h5)",
        )
        if path:
            if Path(path).suffix.lower() not in MODEL_SUFFIXES:
                path += ".h5" if "h5" in chosen else ".keras"
            self.save_model(path)

    def ask_export_model(self) -> None:
        """The Export dialog, for the current model's file (another can be chosen there)."""
        ExportDialog(self.state.model.path if self.state.model else None, self).open()

    def save_model(self, path: str) -> None:
        """Save the current model and its sidecar to ``path`` (.keras or .h5) in a worker."""
        model = self.state.model
        if model is None:
            self.state.message.emit("No model to save: train one or open one first")
            return
        if Path(path).suffix.lower() not in MODEL_SUFFIXES:
            self._on_model_job_failed(f"{path}: the name must end in .keras or .h5")
            return
        self.show_message(f"Saving {path}...")
        models = self.models
        self.model_job.start(lambda task: ("saved", models.save(model, path)))

    def _on_model_job_done(self, result: tuple[str, ModelHandle]) -> None:
        what, handle = result
        # Saved: the current model now lives in the file just written.
        self.state.set_model(handle)
        verb = "Opened model" if what == "opened" else "Saved model to"
        self.state.message.emit(f"{verb} {handle.path}")

    def _on_model_job_failed(self, message: str) -> None:
        self.show_message(message, 8000)
        self.state.model_failed.emit(message)
        QMessageBox.warning(self, "cifar-gui", message)

    def _on_run_finished(self, outcome: RunFinished | StudyFinished | None) -> None:
        """A run or a study has ended: the title and, after a long one, a notification."""
        if outcome is None:
            text = "Training failed: see the Training tab"
        elif isinstance(outcome, StudyFinished) and outcome.report is not None:
            text = "The study has finished: its report is ready"
        elif outcome.stopped:
            text = "Training stopped: the model learned so far is saved"
        else:
            text = "Training finished: the model is saved"
        self.run_notice.ended(text)

    # -- status bar and device -------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            self.first_painted.emit()
            # Start the detection only now, so it does not compete with the first paint.
            self._detect_device()
        return handled

    def _detect_device(self) -> None:
        """Ask the engine service for the device (and versions): it imports TensorFlow."""
        if not self._versions and not self.device_job.busy:
            models = self.models
            self.device_job.start(lambda task: models.detect_device())

    def _on_device_detected(self, device: DeviceInfo) -> None:
        self.state.device, self._versions = device.description, device.versions
        self._update_status()

    def show_message(self, text: str, timeout_ms: int = 0) -> None:
        """A status-bar message, shortened with an ellipsis so that it ends before the
        permanent labels (the whole text is the status bar's tooltip)."""
        bar = self.statusBar()
        labels = (self.status_data, self.status_model, self.status_device)
        shown = [label.x() for label in labels if label.isVisible()]
        if bar.isVisible() and shown:
            room = min(shown) - STATUS_GAP - 8  # the bar draws the message from x = 6
            bar.setToolTip(text)
            text = bar.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, room)
        bar.showMessage(text, timeout_ms)

    def _on_model_loading(self, path: str) -> None:
        self.status_model.setText(f"Opening {Path(path).name}\u2026")

    def _update_status(self, *_args) -> None:
        state = self.state
        if state.dataset is None:
            self.status_data.setText("No data set")
        else:
            pair = " vs ".join(state.chosen_names)
            where = source_name(state.data_source)
            # The folder's or archive's name; its whole path in the tooltip.
            self.status_data.setText(f"{Path(where).name or where}: {pair}")
            self.status_data.setToolTip(where)
        model = state.model
        self.status_model.setText(f"Model: {model.path.name}" if model else "No model")
        self.save_model_action.setEnabled(model is not None)
        self.status_device.setText(state.device)

    # -- settings ------------------------------------------------------------------------

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1180, 800)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(self.settings.value("window/tab", 0)))

    def _restore_classes(self) -> tuple[str, ...]:
        """Choose the class pair of the last session (names, so any data set can take them)."""
        names = tuple(self.settings.value("data/classes", [], type=list) or ())
        try:
            self.state.set_classes(resolve_classes(names, self.state.class_names))
        except DataError:
            return self.state.chosen_names  # none saved, or stale: keep deer vs horse
        return names

    def _on_dataset_changed(self, dataset: Any) -> None:
        if dataset is not None:
            self.settings.setValue("data/source", self.state.data_source)
            # Keep the chosen names when the new data set has them (label numbers may differ).
            try:
                self.state.set_classes(resolve_classes(self._chosen_names, dataset.class_names))
            except DataError:
                self._chosen_names = self.state.chosen_names
        self._update_status()

    def _on_classes_changed(self, _classes: tuple[int, ...]) -> None:
        self._chosen_names = self.state.chosen_names
        self.settings.setValue("data/classes", list(self._chosen_names))
        self._update_status()

    def save_settings(self) -> None:
        """Window geometry and layout, current tab, data source and classes."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.settings.setValue("data/classes", list(self._chosen_names))
        if self.state.data_source:
            self.settings.setValue("data/source", self.state.data_source)
        self.settings.sync()

    # -- files from outside --------------------------------------------------------------

    def classify_files(self, paths: list[str]) -> None:
        """Classify image files (dropped, opened, or given on the command line)."""
        if paths:
            self.tabs.setCurrentWidget(self.activation_panel)
            self.activation_panel.classify_files(paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.classify_files(paths)
        else:
            self.state.message.emit("Only local image files can be dropped")

    # -- closing -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop and join every worker thread of the window and its panels; end the engine
        service (first: a job waiting for its answer then ends at once).

        The service's child is not waited for here: a TensorFlow process takes from a tenth
        of a second to seconds to exit, and the event loop goes on meanwhile (the app waits
        for it once the loop has ended: :meth:`wait_closed`)."""
        self.models.close(wait=False)
        for job in (self.device_job, self.model_job, self.default_model_job):
            job.shutdown()
        for panel in self.panels().values():
            stop = getattr(panel, "shutdown", None)
            if stop is not None:
                stop()

    def wait_closed(self, timeout_s: float | None = None) -> bool:
        """After the window has closed: wait for the engine service's child to end (it ends
        by itself; this only makes sure none outlives the app). Whether it has."""
        return self.models.wait_closed(timeout_s)

    def closeEvent(self, event: QCloseEvent) -> None:
        # A training run in progress asks first; "Stop and quit" stops it (it saves the model)
        # and the window closes when the run has ended. It does not wait here: the window
        # keeps painting (and says what it is doing) while the training process saves.
        if self.training_panel.busy:
            if not self._quitting and self.training_panel.confirm_close():
                self._quit_after_run()
            event.ignore()
            return
        self.save_settings()
        self.shutdown()
        event.accept()

    def _quit_after_run(self) -> None:
        self._quitting = True
        self.tabs.setEnabled(False)
        self.menuBar().setEnabled(False)
        self.show_message(
            "Stopping the training run; the window closes when its model is saved\u2026"
        )
        self.training_panel.run_finished.connect(self.close)
        self.training_panel.stop()

"""The main window: one tab per panel, menus, status bar, and clean shutdown of workers."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

import cifar_gui
from cifar_gui.gui.activation_view import ActivationPanel
from cifar_gui.gui.augmentation_view import AugmentationPanel
from cifar_gui.gui.dataset_view import DatasetPanel
from cifar_gui.gui.evaluation_view import EvaluationPanel
from cifar_gui.gui.state import AppState
from cifar_gui.gui.training_view import TrainingPanel
from cifar_gui.gui.workers import JobRunner


class MainWindow(QMainWindow):
    """Tabs Dataset, Augmentation, Training, Activations over one shared :class:`AppState`."""

    def __init__(self, state: AppState | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state or AppState(self)
        self.setWindowTitle("cifar-gui")
        self.settings = QSettings("cifar-gui", "cifar-gui")
        self.device_job = JobRunner(self)

        self.tabs = QTabWidget()
        self.dataset_panel = DatasetPanel(self.state)
        self.augmentation_panel = AugmentationPanel(self.state)
        self.training_panel = TrainingPanel(self.state)
        self.activation_panel = ActivationPanel(self.state)
        self.evaluation_panel = EvaluationPanel(self.state)
        for title, panel in self.panels().items():
            self.tabs.addTab(panel, title)
        self.setCentralWidget(self.tabs)

        self._build_menus()
        self.status_data = QLabel()
        self.status_model = QLabel()
        self.status_device = QLabel()
        for label in (self.status_data, self.status_model, self.status_device):
            self.statusBar().addPermanentWidget(label)
        self.state.dataset_changed.connect(self._update_status)
        self.state.classes_changed.connect(self._update_status)
        self.state.model_changed.connect(self._update_status)
        self.state.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self._update_status()
        self._restore_geometry()
        self._detect_device()
        self.setAcceptDrops(True)

    def panels(self) -> dict[str, QWidget]:
        """The panels by tab title, in tab order."""
        return {
            "Dataset": self.dataset_panel,
            "Augmentation": self.augmentation_panel,
            "Training": self.training_panel,
            "Activations": self.activation_panel,
            "Evaluation": self.evaluation_panel,
        }

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def about_text(self) -> str:
        """Versions of the app, TensorFlow, Keras and Qt, and the device in use."""
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        versions = getattr(self, "_versions", {})
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

    def _detect_device(self) -> None:
        """Import TensorFlow off the GUI thread, so the window paints first."""

        def detect(task):
            from cifar_gui.engine.training import describe_device, versions

            return describe_device(), versions()

        def done(result) -> None:
            self.state.device, self._versions = result
            self._update_status()

        self.device_job.result.connect(done)
        self.device_job.error.connect(lambda msg: self.statusBar().showMessage(msg))
        self.device_job.start(detect)

    def _update_status(self, *_args) -> None:
        state = self.state
        if state.dataset is None:
            self.status_data.setText("No data set")
        else:
            pair = " vs ".join(state.chosen_names)
            self.status_data.setText(f"{state.dataset.source}: {pair}")
        model = state.model
        self.status_model.setText(f"Model: {model.path.name}" if model else "No model")
        self.status_device.setText(state.device)

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 760)
        self.tabs.setCurrentIndex(int(self.settings.value("window/tab", 0)))

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

    def shutdown(self) -> None:
        """Stop and join every worker thread of the window and its panels."""
        self.device_job.shutdown()
        for panel in self.panels().values():
            stop = getattr(panel, "shutdown", None)
            if stop is not None:
                stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.shutdown()
        event.accept()

"""The Export dialog (*File > Export model...*): a model file, a format and a new folder; the
export runs in a child process (:func:`cifar_gui.engine.models.export.export_in_child`: TensorFlow
never loads into the window's process), from a worker thread, and its result or its one-line
error is shown in the dialog."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.engine.models.export import (
    ARTIFACTS,
    FORMAT_NAMES,
    FORMAT_USES,
    FORMATS,
    ExportResult,
    export_in_child,
    unavailable_reason,
)
from cifar_gui.gui.text import MODEL_FILTERS
from cifar_gui.gui.workers import JobRunner


def default_folder(model_path: str, fmt: str) -> str:
    """``cifar10_4_7_tflite`` beside the model: a new folder, named by model and format."""
    if not model_path:
        return ""
    path = Path(model_path)
    return str(path.with_name(f"{path.stem}_{fmt}"))


class ExportDialog(QDialog):
    """Export a model file as a SavedModel, TensorFlow Lite or ONNX, with its model card."""

    exported = Signal(object)  # the ExportResult
    failed = Signal(str)  # the one-line error

    def __init__(self, model_path: str | Path | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export model")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # one per File > Export
        self.job = JobRunner(self)
        self.job.result.connect(self._on_exported)
        self.job.error.connect(self._on_failed)
        self.job.finished.connect(self._on_finished)
        self._close_when_done = False  # Close was asked for during the export

        self.model_edit = QLineEdit(str(model_path or ""))
        self.format_combo = QComboBox()
        items = QStandardItemModel(self.format_combo)
        self.format_combo.setModel(items)
        for fmt in FORMATS:
            self.format_combo.addItem(FORMAT_NAMES[fmt], fmt)
            reason = unavailable_reason(fmt)
            item = items.item(self.format_combo.count() - 1)
            item.setToolTip(reason or FORMAT_USES[fmt])
            item.setEnabled(reason is None)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("a new or empty folder")
        self.use_label = QLabel(wordWrap=True)
        self.status = QLabel(wordWrap=True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        form.addRow("Model", self._with_browse(self.model_edit, self._browse_model))
        form.addRow("Format", self.format_combo)
        form.addRow("", self.use_label)
        form.addRow("Folder", self._with_browse(self.folder_edit, self._browse_folder))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self.start_export)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.resize(560, 0)

        self._suggested = ""  # the folder filled in for the user, replaced on a change
        self.format_combo.currentIndexChanged.connect(self._on_choice_changed)
        self.model_edit.textChanged.connect(self._on_choice_changed)
        self._on_choice_changed()

    def _with_browse(self, edit: QLineEdit, browse) -> QWidget:
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        button = QPushButton("Browse...")
        button.clicked.connect(browse)
        box.addWidget(edit, 1)
        box.addWidget(button)
        return row

    @property
    def format(self) -> str:
        return self.format_combo.currentData()

    def set_format(self, fmt: str) -> None:
        self.format_combo.setCurrentIndex(self.format_combo.findData(fmt))

    def _on_choice_changed(self, *_args) -> None:
        self.use_label.setText(f"For {FORMAT_USES[self.format]}; writes {ARTIFACTS[self.format]}")
        if self.folder_edit.text() in ("", self._suggested):
            self._suggested = default_folder(self.model_edit.text().strip(), self.format)
            self.folder_edit.setText(self._suggested)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model to export", self.model_edit.text(), MODEL_FILTERS
        )
        if path:
            self.model_edit.setText(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Export into (a new or empty folder)", self.folder_edit.text()
        )
        if path:
            self.folder_edit.setText(path)

    def start_export(self) -> None:
        """Export in a child process, from a worker thread; ``exported`` or ``failed`` tells."""
        model, folder = self.model_edit.text().strip(), self.folder_edit.text().strip()
        fmt = self.format
        if not model or not folder:
            self._on_failed("Choose a model file and a folder to export into")
            return
        self._set_busy(True)
        self.status.setText(f"Exporting {Path(model).name} as {FORMAT_NAMES[fmt]}\u2026")
        self.job.start(lambda task: export_in_child(model, fmt, folder))

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.model_edit, self.format_combo, self.folder_edit, self.export_button):
            widget.setEnabled(not busy)

    def _on_finished(self) -> None:
        self._set_busy(False)
        if self._close_when_done:
            self.reject()

    def _on_exported(self, result: ExportResult) -> None:
        self.status.setText(
            f"Exported {result.artifact} ({result.bytes:,} bytes, {result.seconds:.1f} s); "
            f"model card {result.card}"
        )
        self.exported.emit(result)

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Not exported: {message}")
        self.failed.emit(message)

    def reject(self) -> None:
        if self.job.busy:  # the child writes into a temporary folder: let it finish
            self._close_when_done = True
            self.status.setText("Exporting\u2026 the dialog closes when the export is done")
            return
        self.job.shutdown()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.job.busy:
            event.ignore()
            self.reject()
            return
        self.job.shutdown()
        super().closeEvent(event)

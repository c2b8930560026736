"""The Resume dialog: pick a checkpointed run of the output folder and its new total of epochs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.gui.text import counted, format_probability

if TYPE_CHECKING:  # checkpoints imports Keras; the listing job has loaded it already
    from cifar_gui.engine.training.checkpoints import Checkpoint


def describe_checkpoint(checkpoint: Checkpoint) -> str:
    """``20261204-213012-baseline-deer-horse/cifar10_4_7 · baseline · deer vs horse · 3 of 30
    epochs · val acc 0.71``: the run's folder tells two runs of one variant apart."""
    config = checkpoint.config
    done, planned = checkpoint.epochs_completed, config.epochs
    state = (
        f"finished, {counted(done, 'epoch')}"
        if checkpoint.finished
        else f"{done} of {counted(planned, 'epoch')}"
    )
    val = checkpoint.history.get("val_accuracy") or []
    accuracy = f" \u00b7 val acc {format_probability(val[-1])}" if val else ""
    return (
        f"{Path(config.out_dir).name}/{checkpoint.directory.name} \u00b7 {config.variant} \u00b7 "
        f"{' vs '.join(checkpoint.class_names)} \u00b7 {state}{accuracy}"
    )


class ResumeDialog(QDialog):
    """Lists checkpoints (unfinished first); a finished run continues with more epochs."""

    def __init__(self, checkpoints: list[Checkpoint], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Resume a run")
        self.checkpoints = list(checkpoints)
        self.list = QListWidget()
        for i, checkpoint in enumerate(self.checkpoints):
            item = QListWidgetItem(describe_checkpoint(checkpoint))
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setToolTip(str(checkpoint.directory))
            self.list.addItem(item)
        self.epochs_spin = QSpinBox(minimum=1, maximum=10_000)
        self.epochs_spin.setToolTip("The run's new total; above the epochs already done")
        self.note = QLabel(wordWrap=True)
        form = QFormLayout()
        form.addRow("Train to epoch", self.epochs_spin)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Resume")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Runs with a checkpoint in the output folder:"))
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self.resize(620, 320)
        self.list.currentRowChanged.connect(self._on_row_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        self.list.setCurrentRow(0)

    @property
    def checkpoint(self) -> Checkpoint:
        """The chosen checkpoint."""
        return self.checkpoints[max(self.list.currentRow(), 0)]

    @property
    def epochs(self) -> int:
        """The chosen new total of epochs."""
        return self.epochs_spin.value()

    def _on_row_changed(self, row: int) -> None:
        if row < 0:
            return
        checkpoint = self.checkpoints[row]
        done = checkpoint.epochs_completed
        self.epochs_spin.setMinimum(done + 1)
        self.epochs_spin.setValue(max(checkpoint.config.epochs, done + 1))
        self.note.setText(
            ("The one epoch is" if done == 1 else f"All {done} epochs are")
            + " done: raise the total to continue training."
            if checkpoint.finished
            else f"Continues at epoch {done + 1} with the optimizer state it had."
        )

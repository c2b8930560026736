"""The widgets of the Training tab's form: the choices they offer, how a value is read from
and shown in each (the form's table of fields, :attr:`TrainingForm.widgets`, uses these), and
the parameter-count job it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox, QWidget

from cifar_gui.config import RunConfig
from cifar_gui.engine.record import ParameterCounts
from cifar_gui.gui.widgets.path_field import PathField
from cifar_gui.gui.workers import TaskState

MAX_SEED_SHOWN = 2**31 - 1  # a QSpinBox holds a C int; RunConfig allows up to 2**32 - 1
# The labels of each combo box, by the value it gives (every value of the config's choices).
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
    "transfer": "Transfer (frozen VGG16 or saved base)",
    "finetune": "Fine-tuning",
}
PRETRAIN_LABELS = {"cnn": "Small CNN (fast on a CPU)", "vgg16": "VGG16 (for a GPU)"}
# The form's settings a pretrain takes (its epochs and learning rate are the architecture's).
PRETRAIN_FROM_FORM = ("data", "batch_size", "seed", "limit", "out_dir", "strategy", "precision")
OWN_RULES = ("learning_rate", "weights", "base")  # fields of the table not read by read_widget
# Base-weights choices for transfer: (label, needs a path).
WEIGHTS_CHOICES = {
    "imagenet": ("ImageNet", False),
    "none": ("None (random)", False),
    "file": ("Weights file", True),
    "base": ("Base of a saved model", True),
}


class CountService(Protocol):
    """What the form needs of the engine service (``cifar_gui.engine.service``)."""

    def planned_parameter_counts(self, config: RunConfig, num_classes: int) -> ParameterCounts: ...


def default_out_dir() -> Path:
    """Where runs go until the user chooses a folder: ``cifar-gui/runs`` in the user's
    documents folder (``~/Documents`` on Linux and macOS, ``Documents`` on Windows), else
    ``runs`` in the app's per-user data folder."""
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    if documents:
        return Path(documents) / "cifar-gui" / "runs"
    data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(data or Path.home() / ".cifar-gui") / "runs"


def counts_job(
    service: CountService, config: RunConfig, num_classes: int, task: TaskState
) -> ParameterCounts:
    """Job: trainable and non-trainable counts of a planned run (a fine-tune's model is read),
    asked of the engine service, which builds models outside the window's process."""
    return service.planned_parameter_counts(config, num_classes)


def read_widget(widget: QWidget, default: Any) -> Any:
    """The value a widget of the form's table shows; an empty path or a spin box at its
    special value ("all"): the field's default."""
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QSpinBox):
        special = widget.specialValueText() and widget.value() == widget.minimum()
        return default if special else widget.value()
    if isinstance(widget, PathField):
        return widget.text() or default
    raise TypeError(f"no rule to read a {type(widget).__name__}")


def show_value(widget: QWidget, value: Any) -> None:
    """Show ``value`` in a widget of the form's table (a combo box without it is left as it
    is; a spin box clamps a value beyond its range: seeds above a C int)."""
    if isinstance(widget, QComboBox):
        if (index := widget.findData(value)) >= 0:
            widget.setCurrentIndex(index)
    elif isinstance(widget, QCheckBox):
        widget.setChecked(value)
    elif isinstance(widget, QSpinBox):
        widget.setValue(widget.minimum() if value is None else value)
    elif isinstance(widget, PathField):
        widget.edit.setText(value or "")
    else:
        raise TypeError(f"no rule to show a value in a {type(widget).__name__}")


def combo(labels: dict[str, str]) -> QComboBox:
    """A combo box of ``labels``' values (its data) under their labels."""
    box = QComboBox()
    for value, label in labels.items():
        box.addItem(label, value)
    return box

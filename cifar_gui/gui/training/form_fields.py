"""The widgets of the Training tab's form: the choices they offer, how a value is read from
and shown in each (the form's table of fields, :attr:`TrainingForm.widgets`, uses these), and
the parameter-count job it runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox, QWidget

from cifar_gui.config import MAX_LEARNING_RATE, RunConfig
from cifar_gui.engine.errors import UserError
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


def augmentation_text(variant: str, use_augmentation: bool) -> str:
    """What the form says of augmentation for ``variant``."""
    if variant == "baseline":
        return "off: the baseline never augments"
    if use_augmentation:
        return "on (the Augmentation tab's)"
    return "off (in the Augmentation tab)"


def pretrain_text(others: int, pair: Sequence[str], epochs: int) -> str:
    """What a pretrain of the offline base does, in one sentence."""
    return (
        f"Trains on the {others} other classes, never {' or '.join(pair)} ({epochs} "
        "epochs), and becomes the transfer's base."
    )


def counted_config(
    from_model: str, base: str | None, pair: tuple[str, ...], allow_overlap: bool
) -> RunConfig | str:
    """The run whose parameters are counted before it starts: a fine-tune from
    ``from_model``, or (``base`` given) a transfer from a saved base; or what to choose first."""
    path = from_model if base is None else base
    if not path or not Path(path).is_file():
        if base is None:
            return "choose the transfer model to continue from"
        return "choose the saved model to take the base from"
    if base is None:
        return RunConfig(variant="finetune", from_model=path)
    # The pair's names: a base that saw them is refused, and the count says so.
    return RunConfig(variant="transfer", base=path, classes=pair, allow_overlap=allow_overlap)


def learning_rate_of(text: str, strict: bool) -> float | None:
    """The learning rate typed; not ``strict`` (a form being filled in): None for a text that
    is no rate, else a :class:`UserError`."""
    try:
        lr = float(text)
    except ValueError:
        if strict:
            raise UserError(f"learning rate {text!r} is not a number") from None
        return None
    return lr if strict or 0 < lr <= MAX_LEARNING_RATE else None


def base_weights_of(choice: str, path: str, strict: bool) -> dict[str, str]:
    """``weights`` or ``base`` from the base-weights choice and its path."""
    if WEIGHTS_CHOICES[choice][1] and not path:
        if strict:
            raise UserError(f"choose the file for the base weights ({choice})")
        return {}
    return {"file": {"weights": path}, "base": {"base": path}}.get(choice, {"weights": choice})


def weights_choice_of(config: RunConfig) -> tuple[str, str]:
    """The base-weights choice and its path that show ``config``'s weights or base."""
    if config.base is not None:
        return "base", config.base
    if config.weights in ("imagenet", "none"):
        return config.weights, ""
    return "file", config.weights

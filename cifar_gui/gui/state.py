"""What the panels share: the data set, the class selection, the augmentation settings and
the current model (a :class:`~cifar_gui.engine.service.ModelHandle`: plain data, the
Keras model itself lives in the engine service's process). Panels read it, listen to its
signals and ask through it (a model to open, a tab to show); they never talk to each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Signal

from cifar_gui import tutorial
from cifar_gui.config import AugmentConfig
from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
from cifar_gui.engine.data.dataset import Dataset

if TYPE_CHECKING:
    from cifar_gui.engine.service import ModelHandle


ORGANIZATION = APPLICATION = "cifar-gui"


def user_settings() -> QSettings:
    """The user's settings store of the app (the window's default; tests pass their own)."""
    return QSettings(ORGANIZATION, APPLICATION)


class AppState(QObject):
    """Shared application state with change signals (all emitted on the GUI thread)."""

    dataset_changed = Signal(object)  # Dataset | None
    classes_changed = Signal(tuple)  # label indices in the data set, in the chosen order
    augment_changed = Signal(object)  # AugmentConfig
    model_changed = Signal(object)  # ModelHandle | None
    # Requests, answered by the main window:
    model_requested = Signal(str)  # open this model file; it becomes the current model
    default_model_requested = Signal()  # a panel needs a model: the bundled one, if none is set
    model_loading = Signal(str)  # a model file is being opened (its path)
    model_failed = Signal(str)  # opening a model failed: one line
    show_panel = Signal(str)  # bring the panel of this tab title to the front
    image_chosen = Signal(object, str)  # uint8 (H, W, 3) image, a caption
    test_image_chosen = Signal(int)  # a test image of the chosen classes, counted from 1
    message = Signal(str)  # a line for the status bar

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.dataset: Dataset | None = None
        self.data_source: str | None = None
        self.classes: tuple[int, ...] = tutorial.PAIR_INDICES
        self.augment = AugmentConfig()
        self.use_augmentation = True  # the Augmentation panel's "Use for training"
        self.model: ModelHandle | None = None
        self.device = "detecting..."

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of all classes of the current data set (CIFAR-10's before one is loaded)."""
        return self.dataset.class_names if self.dataset is not None else CIFAR10_CLASSES

    @property
    def chosen_names(self) -> tuple[str, ...]:
        """Names of the chosen classes, in label order."""
        return tuple(self.class_names[i] for i in self.classes)

    def set_dataset(self, dataset: Dataset | None, source: str | None = None) -> None:
        self.dataset = dataset
        self.data_source = source if dataset is not None else None
        if dataset is not None and max(self.classes) >= len(dataset.class_names):
            self.classes = (0, 1)
        self.dataset_changed.emit(dataset)

    def set_classes(self, classes: tuple[int, ...]) -> None:
        if tuple(classes) != self.classes:
            self.classes = tuple(classes)
            self.classes_changed.emit(self.classes)

    def set_augment(self, augment: AugmentConfig, use_for_training: bool | None = None) -> None:
        self.augment = augment
        if use_for_training is not None:
            self.use_augmentation = use_for_training
        self.augment_changed.emit(augment)

    def set_model(self, model: ModelHandle | None) -> None:
        self.model = model
        self.model_changed.emit(model)

    def request_model(self, path: str) -> None:
        """Ask for the model file ``path`` to be opened (it becomes the current model)."""
        self.model_requested.emit(str(path))

    def request_default_model(self) -> None:
        """Ask for the bundled model to become the current one, unless a model is set."""
        if self.model is None:
            self.default_model_requested.emit()

    def choose_image(self, image, caption: str) -> None:
        self.image_chosen.emit(image, caption)

    def choose_test_image(self, number: int) -> None:
        """Show test image ``number`` (counted from 1) of the chosen classes, as the
        Activations tab's test image box numbers them."""
        self.test_image_chosen.emit(number)

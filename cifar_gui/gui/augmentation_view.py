"""The Augmentation panel: a grid of randomly transformed copies of one picture (or of a random
batch), made by the same engine function that feeds training, with a control for every setting.
The engine service computes the grids in its process, so TensorFlow stays out of the window's.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.config import FILL_MODES, AugmentConfig
from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.gui.state import AppState
from cifar_gui.gui.widgets.image_grid import ImageGrid
from cifar_gui.gui.widgets.images import to_pixmap
from cifar_gui.gui.workers import JobRunner, TaskState

if TYPE_CHECKING:
    from cifar_gui.engine.service import EngineService

# The numeric AugmentConfig fields: label, range, step, decimals, unit (the tutorial's values are
# AugmentConfig's defaults).
NUMERIC_FIELDS = {
    "rotation_deg": ("Rotation", 0.0, 180.0, 5.0, 1, "°"),
    "width_shift": ("Width shift", 0.0, 1.0, 0.05, 2, " of width"),
    "height_shift": ("Height shift", 0.0, 1.0, 0.05, 2, " of height"),
    "shear_deg": ("Shear", 0.0, 90.0, 0.1, 2, "°"),  # Keras' unit: the tutorial's 0.2 is tiny
    "zoom": ("Zoom", 0.0, 0.95, 0.05, 2, " (1 ± z)"),
}
SINGLE, BATCH = "single", "batch"
DEBOUNCE_MS = 150  # coalesce a spin box held down into one preview request


class AugmentationPanel(QWidget):
    """Settings on the left, the source picture and the preview grid on the right."""

    preview_ready = Signal()  # a new grid is shown
    preview_failed = Signal(str)

    def __init__(self, state: AppState, service: EngineService, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.service = service
        self.job = JobRunner(self)
        self.job.result.connect(self._on_result)
        self.job.error.connect(self._on_error)
        self.source_image: np.ndarray | None = None
        self.source_caption = ""
        self._batch: np.ndarray | None = None  # the images of "random batch" mode
        self._rng = random.Random()
        self._dirty = True  # settings changed since the last request
        self._request: tuple[int, np.ndarray] = (4, np.zeros((0, 32, 32, 3), np.uint8))
        self.inputs = self._request[1]  # the pictures behind the grid shown, cell by cell
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)

        layout = QHBoxLayout(self)
        layout.addWidget(self._build_controls())
        layout.addWidget(self._build_preview(), 1)

        state.dataset_changed.connect(self._on_dataset_changed)
        state.classes_changed.connect(lambda _classes: self._on_dataset_changed(state.dataset))
        state.image_chosen.connect(self.set_source_image)
        state.augment_changed.connect(self._on_augment_changed)
        self._on_dataset_changed(state.dataset)

    # -- building ------------------------------------------------------------------------

    def _build_controls(self) -> QWidget:
        box = QWidget()
        box.setMaximumWidth(340)
        column = QVBoxLayout(box)
        settings = QGroupBox("Random transforms (the tutorial's values)")
        form = QFormLayout(settings)
        self.spins: dict[str, QDoubleSpinBox] = {}
        defaults = AugmentConfig()
        current = self.state.augment
        for name, (label, low, high, step, decimals, unit) in NUMERIC_FIELDS.items():
            spin = QDoubleSpinBox()
            spin.setRange(low, high)
            spin.setSingleStep(step)
            spin.setDecimals(decimals)
            spin.setSuffix(unit)
            spin.setValue(getattr(current, name))
            spin.setToolTip(f"Seed: {getattr(defaults, name)}")
            spin.valueChanged.connect(self._on_settings_changed)
            form.addRow(label, spin)
            self.spins[name] = spin
        self.flip_check = QCheckBox("Flip half the pictures left-right")
        self.flip_check.setChecked(current.horizontal_flip)
        self.flip_check.toggled.connect(self._on_settings_changed)
        form.addRow("Horizontal flip", self.flip_check)
        self.fill_combo = QComboBox()
        self.fill_combo.addItems(FILL_MODES)
        self.fill_combo.setCurrentText(current.fill_mode)
        self.fill_combo.setToolTip("How pixels that come from outside the picture are filled")
        self.fill_combo.currentTextChanged.connect(self._on_settings_changed)
        form.addRow("Fill mode", self.fill_combo)
        self.defaults_button = QPushButton("Tutorial's values")
        self.defaults_button.clicked.connect(lambda: self.set_config(AugmentConfig()))
        form.addRow("", self.defaults_button)
        column.addWidget(settings)

        grid_box = QGroupBox("Preview")
        grid_form = QFormLayout(grid_box)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("copies of one picture", SINGLE)
        self.mode_combo.addItem("a random batch", BATCH)
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        grid_form.addRow("Show", self.mode_combo)
        size_row = QHBoxLayout()
        self.rows_spin = QSpinBox()
        self.cols_spin = QSpinBox()
        for spin in (self.rows_spin, self.cols_spin):
            spin.setRange(1, 10)
            spin.setValue(4)
            spin.valueChanged.connect(self._on_settings_changed)
        size_row.addWidget(self.rows_spin)
        size_row.addWidget(QLabel("rows by"))
        size_row.addWidget(self.cols_spin)
        size_row.addWidget(QLabel("columns"))
        grid_form.addRow("Grid", size_row)
        seed_row = QHBoxLayout()
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 999_999)
        self.seed_spin.setToolTip("The same seed gives the same transforms")
        self.seed_spin.valueChanged.connect(self._on_settings_changed)
        self.reseed_button = QPushButton("Reseed")
        self.reseed_button.setToolTip("New random transforms")
        self.reseed_button.clicked.connect(self.reseed)
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.reseed_button)
        grid_form.addRow("Seed", seed_row)
        self.another_button = QPushButton("Another picture")
        self.another_button.setToolTip("A random training picture of the chosen classes")
        self.another_button.clicked.connect(self.pick_random)
        grid_form.addRow("", self.another_button)
        column.addWidget(grid_box)

        self.use_check = QCheckBox("Use for training")
        self.use_check.setChecked(self.state.use_augmentation)
        self.use_check.setToolTip(
            "Training feeds the network pictures transformed with these settings"
        )
        self.use_check.toggled.connect(self._publish)
        column.addWidget(self.use_check)
        note = QLabel(
            "Training draws new transforms for every batch with this same function, so the "
            "network never sees exactly the same picture twice."
        )
        note.setWordWrap(True)
        column.addWidget(note)
        column.addStretch(1)
        return box

    def _build_preview(self) -> QWidget:
        area = QScrollArea()
        area.setWidgetResizable(True)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        top = QHBoxLayout()
        self.source_label = QLabel()
        self.source_label.setFixedSize(128, 128)
        self.caption_label = QLabel()
        self.caption_label.setWordWrap(True)
        top.addWidget(self.source_label)
        top.addWidget(self.caption_label, 1)
        layout.addLayout(top)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        self.grid = ImageGrid()
        layout.addWidget(self.grid)
        layout.addStretch(1)
        area.setWidget(inner)
        return area

    # -- settings ------------------------------------------------------------------------

    def config(self) -> AugmentConfig:
        """The settings in the controls."""
        values = {name: spin.value() for name, spin in self.spins.items()}
        return AugmentConfig(
            **values,
            horizontal_flip=self.flip_check.isChecked(),
            fill_mode=self.fill_combo.currentText(),
        )

    def set_config(self, config: AugmentConfig) -> None:
        """Put ``config`` into the controls (one preview request for all of them)."""
        widgets = [*self.spins.values(), self.flip_check, self.fill_combo]
        for widget in widgets:
            widget.blockSignals(True)
        for name, spin in self.spins.items():
            spin.setValue(getattr(config, name))
        self.flip_check.setChecked(config.horizontal_flip)
        self.fill_combo.setCurrentText(config.fill_mode)
        for widget in widgets:
            widget.blockSignals(False)
        self._on_settings_changed()

    def _on_augment_changed(self, config: AugmentConfig) -> None:
        if config != self.config():
            self.set_config(config)  # changed elsewhere (e.g. a loaded run's settings)
        self.use_check.setChecked(self.state.use_augmentation)

    def _publish(self) -> None:
        self.state.set_augment(self.config(), self.use_check.isChecked())

    def _on_settings_changed(self, *_args) -> None:
        if self.config() != self.state.augment:
            self._publish()
        self._dirty = True
        if self.isVisible():
            self._timer.start()  # restarts: a held-down arrow makes one request at the end

    def reseed(self) -> None:
        """New random transforms."""
        self.seed_spin.setValue(self._rng.randrange(1, 1_000_000))

    def _on_mode_changed(self) -> None:
        self._batch = None
        self.another_button.setText(
            "Another picture" if self.mode_combo.currentData() == SINGLE else "Another batch"
        )
        self._on_settings_changed()

    # -- the source picture ----------------------------------------------------------------

    def set_source_image(self, image: np.ndarray, caption: str) -> None:
        """Preview transforms of ``image`` (uint8, H x W x 3)."""
        self.source_image = np.asarray(image, dtype=np.uint8)
        self.source_caption = caption
        self.source_label.setPixmap(to_pixmap(self.source_image, 128))
        self.caption_label.setText(f"<b>Source:</b> {caption}")
        self._on_settings_changed()

    def _chosen_train_rows(self, dataset: Dataset) -> np.ndarray:
        return np.flatnonzero(np.isin(dataset.y_train, list(self.state.classes)))

    def _on_dataset_changed(self, dataset: Dataset | None) -> None:
        self._batch = None
        if dataset is None:
            if self.source_image is None:
                self.caption_label.setText(
                    "No picture yet: open a data set in the Dataset tab and click a picture."
                )
            return
        rows = self._chosen_train_rows(dataset)
        if len(rows):
            index = int(rows[0])
            name = dataset.class_names[dataset.y_train[index]]
            self.set_source_image(dataset.x_train[index], f"train #{index}: {name}")

    def pick_random(self) -> None:
        """A new random picture (or batch) of the chosen classes."""
        dataset = self.state.dataset
        if dataset is None:
            self.state.message.emit("Open a data set first")
            return
        rows = self._chosen_train_rows(dataset)
        if not len(rows):
            return
        if self.mode_combo.currentData() == BATCH:
            self._batch = None
            self._on_settings_changed()
            return
        index = int(rows[self._rng.randrange(len(rows))])
        name = dataset.class_names[dataset.y_train[index]]
        self.set_source_image(dataset.x_train[index], f"train #{index}: {name}")

    def _batch_images(self, count: int) -> np.ndarray | None:
        """``count`` random training pictures of the chosen classes (kept until reseeded)."""
        dataset = self.state.dataset
        if dataset is None:
            return None
        if self._batch is None or len(self._batch) != count:
            rows = self._chosen_train_rows(dataset)
            pick = self._rng.sample(range(len(rows)), min(count, len(rows)))
            self._batch = dataset.x_train[rows[pick]]
        return self._batch

    # -- computing -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Compute the grid in a worker; a newer request replaces one still running."""
        self._timer.stop()
        self._dirty = False
        count, cols = self.rows_spin.value() * self.cols_spin.value(), self.cols_spin.value()
        config, seed = self.config(), self.seed_spin.value()
        single = self.mode_combo.currentData() == SINGLE
        image, service = self.source_image, self.service
        if single:
            inputs = None if image is None else np.repeat(image[None], count, axis=0)
        else:
            inputs = self._batch_images(count)

        def job(_task: TaskState) -> np.ndarray:
            if single:
                return service.augment_copies(image, config, count, seed)
            return service.augment_batch(inputs, config, seed)

        if inputs is None:
            self.status_label.setText("Open a data set (Dataset tab) to see augmented pictures.")
            return
        self.status_label.setText("Computing...")
        self._request = (cols, inputs)
        self.job.start(job)

    def _on_result(self, images: np.ndarray) -> None:
        cols, self.inputs = self._request
        size = max(40, min(128, 450 // max(cols, len(images) // cols)))  # fits 1180 x 800
        self.grid.set_images(images, columns=cols, size=size)
        config = self.config()
        self.status_label.setText(
            f"{len(images)} random transforms, seed {self.seed_spin.value()}: rotation "
            f"±{config.rotation_deg:g}°, shift ±{config.width_shift:g} / ±{config.height_shift:g}, "
            f"shear ±{config.shear_deg:g}°, zoom 1 ± {config.zoom:g}, "
            f"{'flips' if config.horizontal_flip else 'no flips'}, fill {config.fill_mode}."
        )
        self.preview_ready.emit()

    def _on_error(self, message: str) -> None:
        self.status_label.setText(f"Could not compute the preview: {message}")
        self.preview_failed.emit(message)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty:
            self._timer.start()  # computed only once someone looks, not at start-up

    @property
    def busy(self) -> bool:
        """Whether a preview is pending or being computed."""
        return self._timer.isActive() or self.job.busy

    def shutdown(self) -> None:
        """Stop the timer and the worker (called when the window closes)."""
        self._timer.stop()
        self.job.shutdown()

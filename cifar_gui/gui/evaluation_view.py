"""The Evaluation tab: test accuracy and loss of the current model on the chosen classes,
a confusion matrix whose cells list the images they count, and the mistakes, most confident
first. Double-clicking an image opens it in the Activations tab. The evaluation runs in a
worker, by itself once per model and class choice while the tab is on screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.engine.data.dataset import Dataset, select_classes
from cifar_gui.engine.models.metrics import class_scores, confidence_histogram
from cifar_gui.gui.state import AppState
from cifar_gui.gui.text import format_probability
from cifar_gui.gui.widgets.evaluation_widgets import ConfidenceChart, ConfusionTable, ScoresTable
from cifar_gui.gui.widgets.images import to_pixmap
from cifar_gui.gui.workers import JobRunner

if TYPE_CHECKING:
    from cifar_gui.engine.models.predictions import Evaluation
    from cifar_gui.engine.service import EngineService, ModelHandle

ICON_SIZE = 64  # pixels per thumbnail in the image list
CAPTION_LINES = 2  # under each thumbnail: the true class, then the answer


@dataclass(frozen=True)
class EvaluationResult:
    """An evaluation with the images it was computed on."""

    generation: int  # the inputs it belongs to (see EvaluationPanel._generation)
    evaluation: Evaluation
    images: np.ndarray  # (N, H, W, 3) uint8 test images of the subset, in label order
    class_names: tuple[str, ...]
    model_name: str


def evaluate_subset(
    service: EngineService,
    loaded: ModelHandle,
    dataset: Dataset,
    classes: tuple[int, ...],
    generation: int,
) -> EvaluationResult:
    """Job: evaluate the model on the test images of ``classes``."""
    subset = select_classes(dataset, classes)
    evaluation = service.evaluate(loaded, subset.x_test, subset.y_test)
    return EvaluationResult(
        generation, evaluation, subset.x_test, subset.class_names, loaded.path.name
    )


class EvaluationPanel(QWidget):
    """Accuracy, loss, confusion matrix and mistakes of the current model on the test set."""

    evaluated = Signal(object)  # EvaluationResult, once shown

    def __init__(self, state: AppState, service: EngineService, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.service = service  # called only from this panel's job (a worker thread)
        self.result: EvaluationResult | None = None
        self._generation = 0  # bumped when model, data or classes change
        self._attempted = -1  # the generation last evaluated (or tried), so it runs once
        self._shown: np.ndarray = np.zeros(0, dtype=np.int64)  # test indices in the list
        self.job = JobRunner(self)
        self.job.result.connect(self._on_result)
        self.job.error.connect(self._on_error)
        self.job.finished.connect(self._update_controls)
        state.model_failed.connect(self._show_error)
        self._build()
        for signal in (state.model_changed, state.dataset_changed, state.classes_changed):
            signal.connect(self._on_inputs_changed)
        self._on_inputs_changed()

    def _build(self) -> None:
        self.inputs_label = QLabel()
        self.inputs_label.setWordWrap(True)
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.clicked.connect(self.evaluate)
        top = QHBoxLayout()
        top.addWidget(self.inputs_label, 1)
        top.addWidget(self.evaluate_button)

        self.metrics_label = QLabel()
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scores = ScoresTable()
        self.confusion = ConfusionTable()
        self.confusion.cellClicked.connect(self.show_cell)
        self.confidence = ConfidenceChart()
        self.show_mistakes_button = QPushButton("Show all mistakes")
        self.show_mistakes_button.clicked.connect(self.show_mistakes)
        self.details = QWidget()  # what a result shows, hidden until there is one
        details = QVBoxLayout(self.details)
        details.setContentsMargins(0, 0, 0, 0)
        details.addWidget(QLabel("<b>Per class</b>"))
        details.addWidget(self.scores)
        details.addWidget(QLabel("<b>Confusion matrix</b> (click a cell to list its images)"))
        details.addWidget(self.confusion)
        details.addWidget(self.confidence, 1)
        details.addWidget(self.show_mistakes_button)
        left = QVBoxLayout()
        left.addWidget(self.metrics_label)
        left.addWidget(self.details, 1)

        self.list_title = QLabel()
        self.images = QListWidget()
        self.images.setViewMode(QListView.ViewMode.IconMode)
        self.images.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.images.setResizeMode(QListView.ResizeMode.Adjust)
        self.images.setMovement(QListView.Movement.Static)
        # Not uniform: the first caption would set every item's width and cut longer ones.
        self.images.setUniformItemSizes(False)
        self.images.setWordWrap(True)
        self.images.itemActivated.connect(self._open_item)
        self.images.setToolTip("Double-click an image to open it in the Activations tab")
        right = QVBoxLayout()
        right.addWidget(self.list_title)
        right.addWidget(self.images, 1)
        hint = QLabel("Double-click an image to open it in the Activations tab.")
        hint.setEnabled(False)
        right.addWidget(hint)

        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(body, 1)

    # -- inputs --------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.state.request_default_model()
        self._auto_evaluate()

    def _auto_evaluate(self) -> None:
        """Evaluate once per model/data/classes choice while the tab is on screen."""
        if self.isVisible() and self._attempted != self._generation and not self.job.busy:
            self.evaluate()

    def _on_inputs_changed(self, *_args) -> None:
        """Model, data or classes changed: the old numbers no longer apply."""
        self._generation += 1
        self.result = None
        self._clear()
        state = self.state
        model = state.model
        if model is None:
            what = "No model: train one, open one (File > Open model), or wait for the bundled one."
        elif state.dataset is None:
            what = f"Model {model.path.name}. Open a data set (Dataset tab) to evaluate it."
        else:
            what = f"Model <b>{model.path.name}</b> on the test images of <b>"
            what += " vs ".join(state.chosen_names) + "</b>."
            trained = model.record.class_names if model.record else ()
            if trained and trained != state.chosen_names:
                what += f" (It was trained on {' vs '.join(trained)}.)"
        self.inputs_label.setText(what)
        self._update_controls()
        self._auto_evaluate()

    def _update_controls(self) -> None:
        ready = self.state.model is not None and self.state.dataset is not None
        self.evaluate_button.setEnabled(ready and not self.job.busy)
        self.evaluate_button.setText("Evaluating…" if self.job.busy else "Evaluate")

    def _clear(self) -> None:
        self.metrics_label.setText("Press Evaluate for test accuracy, loss and mistakes.")
        for table in (self.scores, self.confusion):
            table.clear()
            table.setRowCount(0)
            table.setColumnCount(0)
        self.details.hide()
        self.images.clear()
        self.list_title.clear()
        self.show_mistakes_button.setEnabled(False)

    def evaluate(self) -> None:
        """Evaluate the current model on the test images of the chosen classes (in a worker)."""
        state = self.state
        loaded, dataset, classes = state.model, state.dataset, state.classes
        if loaded is None or dataset is None:
            return
        generation = self._attempted = self._generation
        service = self.service
        self.job.start(lambda task: evaluate_subset(service, loaded, dataset, classes, generation))
        self.metrics_label.setText(f"Evaluating on {' vs '.join(state.chosen_names)}…")
        self._update_controls()

    def _on_error(self, message: str) -> None:
        self._show_error(message)
        self.state.message.emit(message)

    def _show_error(self, message: str) -> None:
        self.metrics_label.setText(f"<span style='color:#b00020'>{message}</span>")

    # -- results -------------------------------------------------------------------------

    def _on_result(self, result: EvaluationResult) -> None:
        if result.generation != self._generation:
            return  # computed for a model or class choice that has since changed
        self.result = result
        ev = result.evaluation
        accuracy = format_probability(ev.accuracy)
        self.metrics_label.setText(
            f"<span style='font-size:14pt'><b>Test accuracy {accuracy}</b></span> &nbsp; "
            f"loss {ev.loss:.3f} &nbsp; {len(ev.labels):,} images, "
            f"{len(ev.misclassified()):,} mistakes"
        )
        self.scores.show_scores(class_scores(ev.confusion), result.class_names)
        self.confusion.show_confusion(ev.confusion, result.class_names)
        self.confidence.show_histogram(confidence_histogram(ev.probabilities, ev.labels))
        self.details.show()
        self.show_mistakes_button.setEnabled(True)
        self.show_mistakes()
        self.state.message.emit(f"{result.model_name}: test accuracy {accuracy}")
        self.evaluated.emit(result)

    def show_mistakes(self) -> None:
        """List every misclassified test image, most confident first."""
        if self.result is None:
            return
        wrong = self.result.evaluation.misclassified()
        self._show(wrong, f"All {len(wrong):,} mistakes, most confident first")

    def show_cell(self, row: int, col: int) -> None:
        """List the images counted in a confusion cell (true ``row``, predicted ``col``)."""
        result = self.result
        if result is None or col >= len(result.class_names):
            return
        ev = result.evaluation
        where = np.flatnonzero((ev.labels == row) & (ev.predicted == col))
        where = where[np.argsort(-ev.probabilities[where, col], kind="stable")]
        names = result.class_names
        self._show(
            where,
            f"True {names[row]}, predicted {names[col]}: {len(where):,} images, "
            "most confident first",
        )

    def _show(self, indices: np.ndarray, title: str) -> None:
        result = self.result
        assert result is not None
        ev = result.evaluation
        self.images.clear()
        self.images.setGridSize(self._grid_size(result.class_names))
        self._shown = np.asarray(indices, dtype=np.int64)
        self.list_title.setText(title)
        for i in self._shown:
            names = result.class_names
            predicted = int(ev.predicted[i])
            confidence = format_probability(float(ev.probabilities[i, predicted]))
            text = f"true {names[int(ev.labels[i])]}\npredicted {names[predicted]} {confidence}"
            item = QListWidgetItem(QIcon(to_pixmap(result.images[i], ICON_SIZE)), text)
            item.setToolTip(self.caption(int(i)))
            self.images.addItem(item)

    def _grid_size(self, names: tuple[str, ...]) -> QSize:
        """Room for a thumbnail and its caption in full, for the longest class name."""
        metrics = self.images.fontMetrics()
        widest = max(metrics.horizontalAdvance(f"predicted {n} 100.0%") for n in names)
        lines = CAPTION_LINES * metrics.lineSpacing()
        return QSize(max(widest, ICON_SIZE) + 16, ICON_SIZE + lines + 12)

    def caption(self, index: int) -> str:
        """How a test image is described where it is shown: its number counts from 1, as
        the tutorial's ``p <- 5``, among the test images of the chosen classes."""
        result = self.result
        assert result is not None
        ev, names = result.evaluation, result.class_names
        predicted = int(ev.predicted[index])
        return (
            f"Test image {index + 1} of {' vs '.join(names)}: true "
            f"{names[int(ev.labels[index])]}, predicted {names[predicted]} "
            f"{format_probability(ev.probabilities[index, predicted])}"
        )

    def shown_indices(self) -> np.ndarray:
        """Test-set positions of the images in the list, in list order."""
        return self._shown.copy()

    def _open_item(self, item: QListWidgetItem) -> None:
        if self.result is None:
            return
        index = int(self._shown[self.images.row(item)])
        # By its number: the Activations tab's test image box then shows which one it is.
        self.state.choose_test_image(index + 1)
        self.state.show_panel.emit("Activations")

    def shutdown(self) -> None:
        """Stop and join the worker threads."""
        self.job.shutdown()

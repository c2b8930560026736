"""The Evaluation tab: the engine's numbers, cells that list their images, mistakes sorted by
confidence, and opening an image in the Activations tab."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PySide6.QtCore import Qt

from cifar_gui.engine.data.dataset import load_dataset, select_classes
from cifar_gui.engine.models.build import build_baseline
from cifar_gui.engine.models.inspect import evaluate
from cifar_gui.engine.models.persistence import LoadedModel, load_model, save_model
from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.service import EngineService
from cifar_gui.gui.evaluation_view import EvaluationPanel
from cifar_gui.gui.main_window import MainWindow
from cifar_gui.gui.state import AppState
from cifar_gui.gui.text import format_probability

TIMEOUT = 30_000  # ms


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> LoadedModel:
    """An untrained baseline: its predictions are arbitrary but fixed, and that is enough."""
    keras.utils.set_random_seed(7)
    record = RunRecord(class_names=("deer", "horse"))
    path = save_model(build_baseline(), tmp_path_factory.mktemp("model") / "tiny.h5", record)
    return load_model(path)  # the expected answers are computed with its Keras model


@pytest.fixture
def service():
    """Requests run in the calling (worker) thread; same answers as the service's child."""
    service = EngineService(in_process=True)
    yield service
    service.close()


@pytest.fixture
def state(batches_dir, tiny_model, service) -> AppState:
    state = AppState()
    state.set_dataset(load_dataset(batches_dir), "tiny")
    state.set_model(service.open(tiny_model.path))
    return state


@pytest.fixture
def panel(qtbot, state, service):
    panel = EvaluationPanel(state, service)
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    yield panel
    panel.shutdown()


def run_evaluation(qtbot, panel: EvaluationPanel):
    results = []
    panel.evaluated.connect(results.append)
    with qtbot.waitSignals([panel.evaluated, panel.job.finished], timeout=TIMEOUT):
        panel.evaluate_button.click()
    panel.evaluated.disconnect(results.append)
    return results[0]


def expected_evaluation(state: AppState, model: LoadedModel):
    subset = select_classes(state.dataset, state.classes)
    return subset, evaluate(model.model, subset.x_test, subset.y_test)


def test_numbers_and_confusion_matrix_are_the_engines(qtbot, panel, state, tiny_model):
    subset, expected = expected_evaluation(state, tiny_model)
    result = run_evaluation(qtbot, panel)
    assert f"Test accuracy {format_probability(expected.accuracy)}" in panel.metrics_label.text()
    assert f"loss {expected.loss:.3f}" in panel.metrics_label.text()
    table = panel.confusion
    assert table.rowCount() == 2
    assert table.verticalHeaderItem(0).text() == "true deer"
    # Each cell: its count, then its share of the true class's images.
    cells = [[table.item(r, c).text().split("\n") for c in range(2)] for r in range(2)]
    np.testing.assert_array_equal([[int(c[0]) for c in row] for row in cells], expected.confusion)
    shares = expected.confusion / expected.confusion.sum(axis=1, keepdims=True)
    assert [[c[1] for c in row] for row in cells] == [
        [format_probability(v) for v in row] for row in shares
    ]
    # Per class: recall is the diagonal's share of its row; the last row is the mean.
    scores = panel.scores
    assert scores.rowCount() == 3 and scores.verticalHeaderItem(2).text() == "mean"
    for row in range(2):
        assert scores.item(row, 1).text() == format_probability(shares[row, row])
        assert scores.item(row, 3).text() == str(expected.confusion[row].sum())
    # The histogram counts every answer once, right or wrong.
    histogram = panel.confidence.histogram
    assert histogram.right.sum() == int(np.trace(expected.confusion))
    assert histogram.wrong.sum() == len(expected.misclassified())
    np.testing.assert_array_equal(result.images, subset.x_test)
    assert panel.evaluate_button.isEnabled()


def test_cells_list_their_images_and_mistakes_are_sorted(qtbot, panel, state, tiny_model):
    _, expected = expected_evaluation(state, tiny_model)
    run_evaluation(qtbot, panel)
    # The default list: every mistake, most confident first (the engine's order).
    np.testing.assert_array_equal(panel.shown_indices(), expected.misclassified())
    confidences = expected.probabilities[panel.shown_indices()].max(axis=1)
    assert (np.diff(confidences) <= 0).all()
    for row in range(2):
        for col in range(2):
            panel.confusion.cellClicked.emit(row, col)
            shown = panel.shown_indices()
            assert len(shown) == panel.images.count() == expected.confusion[row, col]
            assert (expected.labels[shown] == row).all()
            assert (expected.predicted[shown] == col).all()
            assert (np.diff(expected.probabilities[shown, col]) <= 0).all()


def test_double_click_opens_the_image_in_the_activation_viewer(
    qtbot, state, tiny_model, settings, service
):
    window = MainWindow(state, settings=settings, models=service)
    qtbot.addWidget(window)
    window.show()
    panel = window.evaluation_panel
    window.tabs.setCurrentWidget(panel)
    subset, expected = expected_evaluation(state, tiny_model)
    run_evaluation(qtbot, panel)
    item = panel.images.item(0)
    index = int(expected.misclassified()[0])
    rect = panel.images.visualItemRect(item)
    # A real double click: press, release, then the double-click event on the same item.
    qtbot.mouseClick(panel.images.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    with qtbot.waitSignal(state.test_image_chosen, timeout=1000) as blocker:
        qtbot.mouseDClick(panel.images.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [index + 1]
    assert window.tabs.currentWidget() is window.activation_panel
    viewer = window.activation_panel
    qtbot.waitUntil(
        lambda: (
            viewer.analysis is not None
            and np.array_equal(viewer.analysis.image, subset.x_test[index])
        ),
        timeout=TIMEOUT,
    )
    # The test image box names the image (it showed nothing before).
    assert viewer.test_index.value() == index + 1
    assert viewer.caption_label.text().startswith(f"Test image {index + 1} ")


def test_changes_clear_old_results_and_bad_inputs_give_one_line(qtbot, panel, state):
    run_evaluation(qtbot, panel)
    state.set_classes((4, 7, 1))  # three classes for a two-class model
    assert panel.result is None
    assert panel.confusion.rowCount() == 0
    assert panel.images.count() == 0
    errors = []
    panel.job.error.connect(errors.append)
    with qtbot.waitSignals([panel.job.error, panel.job.finished], timeout=TIMEOUT):
        panel.evaluate_button.click()
    assert errors == ["the model has 2 classes, the data 3"]
    assert "the model has 2 classes" in panel.metrics_label.text()
    assert panel.evaluate_button.isEnabled()


def test_without_data_the_button_waits(qtbot, tiny_model, service):
    state = AppState()
    state.set_model(service.open(tiny_model.path))
    panel = EvaluationPanel(state, service)
    qtbot.addWidget(panel)
    assert not panel.evaluate_button.isEnabled()
    assert "Open a data set" in panel.inputs_label.text()
    panel.shutdown()


def test_showing_the_tab_evaluates_once_per_choice(qtbot, panel, state, tiny_model):
    _, expected = expected_evaluation(state, tiny_model)
    with qtbot.waitSignals([panel.evaluated, panel.job.finished], timeout=TIMEOUT):
        panel.show()
    assert f"Test accuracy {format_probability(expected.accuracy)}" in panel.metrics_label.text()
    panel.hide()
    panel.show()  # same model and classes: nothing to redo
    assert not panel.job.busy
    with qtbot.waitSignals([panel.evaluated, panel.job.finished], timeout=TIMEOUT):
        state.set_classes((7, 4))  # a new choice while on screen: evaluated again
    assert panel.confusion.verticalHeaderItem(0).text() == "true horse"

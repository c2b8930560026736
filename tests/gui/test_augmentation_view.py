"""The augmentation preview: controls with the tutorial's values, an N x M grid of distinct
augmented pictures computed off the GUI thread by the engine service with training's own
transform, reseeding, failures as one line, and what Training reads."""

from __future__ import annotations

import numpy as np
import pytest

from cifar_gui.config import AugmentConfig
from cifar_gui.engine.data.augment import preview_augmentations, preview_batch
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.service import EngineService
from cifar_gui.gui.augmentation_view import BATCH, AugmentationPanel
from cifar_gui.gui.state import AppState

TIMEOUT_MS = 90_000  # the first preview imports TensorFlow, slow on a loaded machine


@pytest.fixture
def panel(qtbot, batches_dir):
    """The panel on an in-process service: the same answers as its child process
    (tests/engine/test_service.py), without its start."""
    state = AppState()
    state.set_dataset(load_dataset(batches_dir), "tiny")
    panel = AugmentationPanel(state, EngineService(in_process=True))
    qtbot.addWidget(panel)
    panel.resize(1000, 750)
    yield panel
    panel.shutdown()


def show_and_wait(panel: AugmentationPanel, qtbot) -> None:
    with qtbot.waitSignal(panel.preview_ready, timeout=TIMEOUT_MS):
        panel.show()


def assert_all_different(images: np.ndarray) -> None:
    flat = images.reshape(len(images), -1).astype(np.int16)
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            assert np.abs(flat[i] - flat[j]).max() > 0, f"pictures {i} and {j} are equal"


def test_controls_start_at_the_seeds_values_and_reach_the_state(panel):
    assert panel.config() == AugmentConfig()
    assert (panel.rows_spin.value(), panel.cols_spin.value()) == (4, 4)
    panel.spins["rotation_deg"].setValue(10)
    panel.fill_combo.setCurrentText("reflect")
    assert panel.state.augment == AugmentConfig(rotation_deg=10, fill_mode="reflect")
    panel.use_check.setChecked(False)
    assert panel.state.use_augmentation is False
    panel.defaults_button.click()
    assert panel.state.augment == AugmentConfig()


def test_preview_grid_shows_n_by_m_distinct_augmented_copies(panel, qtbot):
    panel.rows_spin.setValue(2)
    panel.cols_spin.setValue(3)
    show_and_wait(panel, qtbot)
    images = panel.grid.images
    assert panel.grid.count() == 6 and images.shape == (6, 32, 32, 3)
    assert all(not cell.image.pixmap().isNull() for cell in panel.grid.cells())
    source = panel.source_image
    assert source is not None
    for image in images:
        assert np.abs(image.astype(np.int16) - source).mean() > 1, "a copy equals the source"
    assert_all_different(images)
    # Training's own transform, with the panel's settings and seed.
    seed = panel.seed_spin.value()
    np.testing.assert_array_equal(images, preview_augmentations(source, panel.config(), 6, seed))

    # Reseeding gives other transforms; a bigger grid gives more pictures.
    with qtbot.waitSignal(panel.preview_ready, timeout=TIMEOUT_MS):
        panel.reseed_button.click()
    assert not np.array_equal(panel.grid.images, images)
    with qtbot.waitSignal(panel.preview_ready, timeout=TIMEOUT_MS):
        panel.cols_spin.setValue(5)
    assert panel.grid.count() == 10


def test_random_batch_transforms_different_pictures(panel, qtbot):
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData(BATCH))
    show_and_wait(panel, qtbot)
    assert panel.grid.count() == 16
    assert_all_different(panel.inputs)
    chosen = panel.state.dataset.x_train[np.isin(panel.state.dataset.y_train, [4, 7])]
    for picture in panel.inputs:  # drawn from the chosen classes only
        assert any(np.array_equal(picture, c) for c in chosen)
    assert_all_different(panel.grid.images)
    seed = panel.seed_spin.value()
    np.testing.assert_array_equal(
        panel.grid.images, preview_batch(panel.inputs, panel.config(), seed)
    )


def test_a_chosen_image_becomes_the_source(panel, qtbot):
    show_and_wait(panel, qtbot)
    image = np.full((32, 32, 3), 200, np.uint8)
    image[8:24, 8:24] = 20
    with qtbot.waitSignal(panel.preview_ready, timeout=TIMEOUT_MS):
        panel.state.choose_image(image, "a square")
    assert "a square" in panel.caption_label.text()
    np.testing.assert_array_equal(panel.inputs[0], image)
    assert_all_different(panel.grid.images)


class FailingService:
    """A service whose previews fail as the engine service's do: with one UserError line."""

    def augment_copies(self, *_args) -> np.ndarray:
        raise UserError("the engine process ended unexpectedly (exit code 1)")


def test_a_failed_preview_is_one_message_and_the_panel_stays_usable(qtbot, batches_dir):
    state = AppState()
    state.set_dataset(load_dataset(batches_dir), "tiny")
    panel = AugmentationPanel(state, FailingService())
    qtbot.addWidget(panel, before_close_func=lambda p: p.shutdown())
    with qtbot.waitSignal(panel.preview_failed, timeout=TIMEOUT_MS) as blocker:
        panel.show()
    assert blocker.args == ["the engine process ended unexpectedly (exit code 1)"]
    assert panel.status_label.text().endswith("ended unexpectedly (exit code 1)")
    with qtbot.waitSignal(panel.preview_failed, timeout=TIMEOUT_MS):
        panel.reseed_button.click()  # asks again

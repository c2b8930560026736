"""The Live tab: a run in the training process sends a snapshot every epoch; what the tab
draws is the model's own activations, filters and predictions."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtGui import QImage

from cifar_gui.engine.events import LiveRequest
from cifar_gui.engine.models.inspect import activations, probabilities
from cifar_gui.engine.models.persistence import load_model
from cifar_gui.gui.live_view import LiveView
from cifar_gui.gui.widgets.colormaps import VIRIDIS_12, channel_mosaic, filter_mosaic
from tests.gui.test_training_view import RUN_TIMEOUT_MS, make_panel


def grid_pixels(grid, shape) -> np.ndarray:
    image = grid.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    f = grid._factor
    return np.array(
        [
            [image.pixelColor(x * f + f // 2, y * f + f // 2).getRgb()[:3] for x in range(shape[1])]
            for y in range(shape[0])
        ],
        dtype=np.uint8,
    )


def test_a_run_refreshes_the_live_view_every_epoch_with_the_models_arrays(
    qtbot,
    state,
    tmp_path,
    warnings,
):
    panel = make_panel(qtbot, state, tmp_path / "runs", epochs=2)
    view = LiveView()
    qtbot.addWidget(view)
    panel.controller.run_started.connect(view.begin_run)
    panel.controller.live_snapshot.connect(view.show_snapshot)
    panel.controller.batches.connect(view.add_batches)
    panel.controller.epoch_finished.connect(view.add_epoch)
    view.request_changed.connect(panel.controller.ask_live)
    snapshots, epochs = [], []
    panel.controller.live_snapshot.connect(snapshots.append)
    panel.controller.epoch_finished.connect(epochs.append)
    view.image_spin.setValue(3)  # asked before the run: the first refresh shows it
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.form.start_button.click()
    assert warnings == []
    assert [(s.epoch, s.batch) for s in snapshots] == [(0, 5), (1, 5)]  # 5 batches an epoch
    assert view.refreshes == 2 and "epoch 2, end" in view.status.text()
    last = snapshots[-1]
    assert last.image_caption.startswith("test image 3, true class ")
    model = load_model(blocker.args[0].path).model
    first = model.layers[0].name
    expected = activations(model, last.image, [first])[first][0]
    np.testing.assert_allclose(last.activation, expected, rtol=1e-4, atol=1e-5)
    mosaic, _ = channel_mosaic(last.activation)
    np.testing.assert_array_equal(grid_pixels(view.channels, mosaic.shape), mosaic)
    view.colour_combo.setCurrentText("viridis")  # re-coloured at once, no new request
    mosaic, _ = channel_mosaic(last.activation, lut=VIRIDIS_12)
    np.testing.assert_array_equal(grid_pixels(view.channels, mosaic.shape), mosaic)
    # The running chart: every epoch's training and validation point, and batch points.
    counts = view.plots.point_counts()
    assert counts["train"] == counts["val"] == 2 and counts["batch"] > 0
    assert view.plots.live_history["val_accuracy"] == [s.metrics["val_accuracy"] for s in epochs]
    kernel = model.layers[0].get_weights()[0]
    np.testing.assert_array_equal(last.filters, kernel)
    mosaic, _ = filter_mosaic(kernel)
    np.testing.assert_array_equal(grid_pixels(view.filters, mosaic.shape), mosaic)
    probs = probabilities(model, last.strip_images, direct=True)
    true = probs[np.arange(len(probs)), list(last.strip_labels)]
    np.testing.assert_allclose(last.strip_true_probability, true, atol=1e-5)
    picture, value = view.strip_cells[0]
    assert not picture.pixmap().isNull()
    colour = "#1a7f37" if last.strip_correct[0] else "#c62828"
    assert colour in value.styleSheet()
    # Health: one sparkline point per refresh and layer with weights.
    assert list(view.health) == [h.name for h in last.health]
    zeros = view.health_values(first, "zero_fraction")
    assert zeros == [s.health[0].zero_fraction for s in snapshots]
    ratios = view.health_values(first, "update_ratio")
    assert math.isnan(ratios[0]) and ratios[1] == math.log10(last.health[0].update_ratio)


def test_changing_the_controls_sends_a_request():
    view = LiveView()
    asked = []
    view.request_changed.connect(asked.append)
    view.image_spin.setValue(9)
    view.every_spin.setValue(50)
    assert asked[-1] == LiveRequest(test_index=8, layer=None, every_batches=50)
    view.deleteLater()

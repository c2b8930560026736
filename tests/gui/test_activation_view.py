"""The Activations tab: drops on the window, layer/channel views against the engine's arrays,
test images by 1-based index, and the bundled default model on first show."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication

from cifar_gui import resources
from cifar_gui.engine.data.dataset import load_dataset, read_image, select_classes
from cifar_gui.engine.models.inspect import activations, grad_cam, predict_files
from cifar_gui.engine.models.persistence import load_model, save_model
from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.service import EngineService
from cifar_gui.gui.activations import model as activation_model
from cifar_gui.gui.activations.view import ActivationPanel
from cifar_gui.gui.main_window import MainWindow
from cifar_gui.gui.state import AppState
from cifar_gui.gui.text import format_probability
from cifar_gui.gui.widgets.activation_widgets import ChannelGrid, PixelView
from cifar_gui.gui.widgets.colormaps import (
    colorize,
    filter_mosaic,
    filter_slices,
    heat_overlay,
)

DEER_HORSE = RunRecord(class_names=("deer", "horse"))
TIMEOUT = 30_000  # ms; the machine is shared and TensorFlow's first call is slow


@pytest.fixture(scope="module")
def default_model():
    """The bundled baseline, loaded once for the whole file."""
    return load_model(resources.default_model_path())


@pytest.fixture
def service():
    """A model service running its requests in the calling (worker) thread: the same
    answers as its child process (tests/engine/test_service.py), without its start."""
    service = EngineService(in_process=True)
    yield service
    service.close()


@pytest.fixture
def state(service) -> AppState:
    """The bundled baseline as the current model."""
    state = AppState()
    state.set_model(service.open(resources.default_model_path()))
    return state


@pytest.fixture
def panel(qtbot, state, service):
    panel = ActivationPanel(state, service)
    qtbot.addWidget(panel)
    panel.resize(1150, 720)
    yield panel
    panel.shutdown()


def make_window(qtbot, state, settings, service) -> MainWindow:
    window = MainWindow(state, settings=settings, models=service)
    qtbot.addWidget(window)
    return window


def picture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(8, 8, 3)).astype(np.uint8)
    return np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)


def shown_blocks(view: PixelView) -> np.ndarray:
    """The colour at the centre of each array pixel as the view draws it: (H, W, 3)."""
    image = view.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    factor = view.block_factor()
    height, width = view.rgb.shape[:2]
    return np.array(
        [
            [
                image.pixelColor(x * factor + factor // 2, y * factor + factor // 2).getRgb()[:3]
                for x in range(width)
            ]
            for y in range(height)
        ],
        dtype=np.uint8,
    )


def grid_pixels(grid: ChannelGrid, shape: tuple[int, ...]) -> np.ndarray:
    """The colour at the centre of each mosaic pixel as ``grid`` draws it: (H, W, 3)."""
    image = grid.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    f = grid.block_factor()
    return np.array(
        [
            [image.pixelColor(x * f + f // 2, y * f + f // 2).getRgb()[:3] for x in range(shape[1])]
            for y in range(shape[0])
        ],
        dtype=np.uint8,
    )


def show_image(qtbot, panel: ActivationPanel, image: np.ndarray, caption: str = "test") -> None:
    panel.set_image(image, caption)
    wait_for_image(qtbot, panel, image)


def wait_for_image(qtbot, panel: ActivationPanel, image: np.ndarray) -> None:
    """Until the panel shows its analysis of ``image`` and its worker has ended."""
    qtbot.waitUntil(
        lambda: panel.analysis is not None and np.array_equal(panel.analysis.image, image),
        timeout=TIMEOUT,
    )
    qtbot.waitUntil(lambda: not panel.analysis_job.busy, timeout=TIMEOUT)


def drop(window: MainWindow, paths: list[Path]) -> None:
    """Drag local files in and drop them, as a file manager does (Qt delivers a drop only
    to a widget that accepted the drag's entry)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    args = (
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with warnings.catch_warnings():  # PySide flags QDragEnterEvent's only constructor
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(20, 20), *args)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, QDropEvent(QPointF(20, 20), *args))


@pytest.fixture
def image_files(tmp_path: Path) -> dict[str, Path]:
    """A PNG (RGBA, odd size), a JPEG (grey, large), a text file, a broken PNG, a missing file."""
    files = {
        "png": tmp_path / "photo.png",
        "jpeg": tmp_path / "grey.jpg",
        "text": tmp_path / "notes.txt",
        "broken": tmp_path / "broken.png",
        "missing": tmp_path / "missing.png",
    }
    rgba = np.dstack([picture(1)[:30, :20], np.full((30, 20), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(files["png"])
    Image.fromarray(picture(2)[..., 0]).resize((96, 80)).save(files["jpeg"], quality=90)
    files["text"].write_text("not an image\n")
    files["broken"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    return files


def test_dropped_files_give_a_table_and_one_line_per_bad_file(
    qtbot, default_model, image_files, settings, state, service
):
    window = make_window(qtbot, state, settings, service)
    panel = window.activation_panel
    order = ["png", "jpeg", "text", "broken", "missing"]
    with qtbot.waitSignal(panel.files_classified, timeout=TIMEOUT) as blocker:
        drop(window, [image_files[k] for k in order])
    result = blocker.args[0]
    good = [image_files["png"], image_files["jpeg"]]
    # The first file becomes the viewer's image, at the model's 32x32 (the bundled sample
    # may have been analysed first: wait for the right one).
    wait_for_image(qtbot, panel, read_image(good[0]))

    assert window.tabs.currentWidget() is panel
    expected = predict_files(default_model.model, good, default_model.class_names)
    assert [Path(p.path) for p in result.predictions] == good
    # One clear line per bad file, naming it and the problem; no dialog, no traceback.
    message = panel.message_label.text()
    assert "notes.txt: not an image file" in message
    assert "broken.png: " in message
    assert "missing.png: no such file" in message
    assert "Traceback" not in message
    assert not panel.message_label.isHidden()
    # The table: one row per readable file, with the engine's class and probabilities.
    table = panel.results_box.table
    assert not panel.results_box.isHidden()
    assert table.rowCount() == 2
    for row, pred in enumerate(expected):
        assert table.item(row, 1).text() == Path(pred.path).name
        assert table.item(row, 2).text() == pred.label
        shown = [table.item(row, 3 + c).text() for c in range(len(pred.class_names))]
        assert shown == [format_probability(p) for p in pred.probabilities]
    assert "only knows deer and horse" in panel.results_box.note.text()
    # Selecting another row inspects that file, with the table's numbers.
    table.selectRow(1)
    wait_for_image(qtbot, panel, read_image(good[1]))
    best = format_probability(max(expected[1].probabilities))
    assert f"({best})" in panel.inputs.prediction_label.text()
    assert f"({best})" in panel.caption_label.text()


def test_dropped_files_are_read_and_classified_off_the_gui_thread(
    qtbot, state, settings, service, image_files, monkeypatch
):
    window = make_window(qtbot, state, settings, service)
    calls: list[tuple[str, bool]] = []  # (what, on the GUI thread)
    read, predict = activation_model.read_image, service.predict_files

    def reading(path, size):
        calls.append(("read", threading.current_thread() is threading.main_thread()))
        return read(path, size)

    def predicting(handle, paths):
        calls.append(("predict", threading.current_thread() is threading.main_thread()))
        return predict(handle, paths)

    monkeypatch.setattr(activation_model, "read_image", reading)
    monkeypatch.setattr(service, "predict_files", predicting)
    with qtbot.waitSignal(window.activation_panel.files_classified, timeout=TIMEOUT) as blocker:
        drop(window, [image_files["png"], image_files["jpeg"]])
    assert len(blocker.args[0].predictions) == 2
    assert calls == [("read", False), ("read", False), ("predict", False)]


def test_dropping_many_files_keeps_the_window_size(
    qtbot, default_model, image_files, settings, state, service
):
    window = make_window(qtbot, state, settings, service)
    window.show()
    qtbot.waitUntil(lambda: window._painted, timeout=TIMEOUT)
    size = window.size()
    with qtbot.waitSignal(window.activation_panel.files_classified, timeout=TIMEOUT):
        drop(window, [image_files["png"], image_files["jpeg"]] * 6)
    panel = window.activation_panel
    wait_for_image(qtbot, panel, read_image(image_files["png"]))  # the prediction is shown
    assert not panel.results_box.isHidden()
    QApplication.processEvents()  # the layout requests the results and prediction caused
    assert window.size() == size
    window.close()


def test_single_dropped_file_shows_class_and_every_probability(
    qtbot, default_model, image_files, settings, state, service
):
    window = make_window(qtbot, state, settings, service)
    panel = window.activation_panel
    with qtbot.waitSignal(panel.files_classified, timeout=TIMEOUT):
        drop(window, [image_files["jpeg"]])
    [expected] = predict_files(default_model.model, [image_files["jpeg"]], ("deer", "horse"))
    wait_for_image(qtbot, panel, expected.image)
    assert panel.results_box.isHidden()
    assert panel.message_label.isHidden()
    text = panel.inputs.prediction_label.text()
    assert f"Predicted <b>{expected.label}</b> ({format_probability(expected.confidence)})" in text
    # A 2-class model answers one of its classes for any picture: the result says so.
    assert "This model only knows deer and horse" in text
    # One number for one probability: the caption, the label and the bars agree.
    assert f"({format_probability(expected.confidence)})" in panel.caption_label.text()
    np.testing.assert_allclose(panel.inputs.bars.values(), expected.probabilities, atol=1e-3)
    # The input view shows those 32x32 pixels.
    np.testing.assert_array_equal(shown_blocks(panel.inputs.input_view), expected.image)


def test_layer_and_channel_changes_show_the_engines_arrays(qtbot, panel, default_model):
    image = picture(3)
    show_image(qtbot, panel, image)
    model = default_model.model
    combo = panel.layer_combo
    assert combo.count() == 8  # the seed's activation model: the first eight layers
    assert combo.itemText(0) == "conv2d  (32, 32, 32)"
    panel.all_layers.setChecked(True)
    assert combo.count() == 9

    for layer_index, channel in [(0, 0), (0, 19), (2, 7), (4, 49), (5, 109)]:
        name = combo.itemData(layer_index)
        combo.setCurrentIndex(layer_index)  # rendering is synchronous: cached arrays
        panel.channel_spin.setValue(channel + 1)
        engine = activations(model, image, [name])[name][0, ..., channel]
        assert panel.channel_slider.value() == channel + 1
        np.testing.assert_array_equal(shown_blocks(panel.channel_view), colorize(engine))
        assert panel.color_bar.vmin == pytest.approx(float(engine.min()))
        assert panel.color_bar.vmax == pytest.approx(float(engine.max()))

    # A click on the grid selects the channel under the cursor.
    combo.setCurrentIndex(2)
    centre = panel.grid.tile_rect(12).center().toPoint()
    with qtbot.waitSignal(panel.view_updated, timeout=1000):
        qtbot.mouseClick(panel.grid, Qt.MouseButton.LeftButton, pos=centre)
    assert panel.current_channel() == 12

    # Grad-CAM over the input, for the predicted class.
    expected = heat_overlay(image, grad_cam(model, image))
    np.testing.assert_allclose(shown_blocks(panel.inputs.cam_view), expected, atol=1)


def test_dense_layer_units_are_channels_of_one_pixel(qtbot, panel, default_model):
    image = picture(4)
    show_image(qtbot, panel, image)
    panel.all_layers.setChecked(True)
    panel.layer_combo.setCurrentIndex(panel.layer_combo.findData("dense"))
    assert panel.channel_spin.maximum() == 512
    panel.channel_spin.setValue(300)
    engine = activations(default_model.model, image, ["dense"])["dense"][0]
    assert f"value {engine[299]:.4g}" in panel.channel_note.text()


def test_test_images_by_one_based_index(qtbot, panel, batches_dir):
    dataset = load_dataset(batches_dir)
    subset = select_classes(dataset, ("deer", "horse"))
    panel.state.set_dataset(dataset, "tiny")
    assert panel.test_index.value() == 5  # the seed's p <- 5
    assert panel.test_index.maximum() == len(subset.x_test)
    assert "x_test[4]" in panel.caption_label.text()
    wait_for_image(qtbot, panel, subset.x_test[4])
    panel.test_index.setValue(2)
    assert "x_test[1]" in panel.caption_label.text()
    wait_for_image(qtbot, panel, subset.x_test[1])
    # Another image: the box no longer names a test image, until one is chosen again.
    panel.state.choose_image(picture(6), "from the Dataset tab")
    assert panel.test_index.value() == 0 and panel.test_index.text() == "\u2014"
    wait_for_image(qtbot, panel, picture(6))
    panel.test_index.setValue(3)
    assert "x_test[2]" in panel.caption_label.text() and panel.test_index.text() == "3"
    wait_for_image(qtbot, panel, subset.x_test[2])


def test_image_chosen_elsewhere_becomes_the_viewers_image(qtbot, panel):
    image = picture(5)
    panel.state.choose_image(image, "from the Dataset tab")
    wait_for_image(qtbot, panel, image)
    assert panel.caption_label.text() == "from the Dataset tab"


def test_bundled_model_loads_on_first_show_and_classifies_waiting_files(
    qtbot, image_files, settings, service
):
    state = AppState()
    window = make_window(qtbot, state, settings, service)
    panel = window.activation_panel
    try:
        with qtbot.waitSignal(panel.files_classified, timeout=TIMEOUT) as blocker:
            window.show()
            window.classify_files([str(image_files["png"])])  # shows the tab: it asks
        assert state.model is not None
        assert state.model.path == resources.default_model_path()
        assert "bundled default" in panel.model_label.text()
        assert len(blocker.args[0].predictions) == 1
        qtbot.waitUntil(lambda: panel.analysis is not None, timeout=TIMEOUT)
    finally:
        window.shutdown()


def test_without_a_model_the_input_is_shown_at_cifar_size(qtbot, service):
    panel = ActivationPanel(AppState(), service)
    qtbot.addWidget(panel)
    large = np.repeat(np.repeat(picture(7), 2, axis=0), 2, axis=1)  # 64x64
    panel.set_image(large, "64x64")
    # Resized as read_image resizes (the engine's function, one copy of it).
    from cifar_gui.engine.data.dataset import fit_image

    np.testing.assert_array_equal(panel.inputs.input_view.rgb, fit_image(large, (32, 32)))
    panel.shutdown()


def test_the_models_input_size_is_used(qtbot, tmp_path, service):
    """A model of 48x40 inputs sees the image at 48x40, not at CIFAR-10's 32x32."""
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((48, 40, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    path = save_model(model, tmp_path / "odd.keras", DEER_HORSE)
    state = AppState()
    state.set_model(service.open(path))
    panel = ActivationPanel(state, service)
    qtbot.addWidget(panel)
    try:
        image = picture(8)  # 32x32
        panel.set_image(image, "small")
        qtbot.waitUntil(lambda: panel.analysis is not None, timeout=TIMEOUT)
        qtbot.waitUntil(lambda: not panel.analysis_job.busy, timeout=TIMEOUT)
        assert panel.analysis.image.shape == (48, 40, 3)
        assert panel.analysis.cam.shape == (48, 40)
        assert "40x48 pixels" in panel.inputs.input_note.text()
    finally:
        panel.shutdown()


def test_layers_inside_a_vgg16_base_are_listed_and_grad_cam_works(qtbot, tmp_path, service):
    import keras

    from cifar_gui.config import RunConfig
    from cifar_gui.engine.models.build import build_transfer

    keras.utils.set_random_seed(0)
    model = build_transfer(RunConfig(variant="transfer", weights="none"))
    path = save_model(model, tmp_path / "vgg.h5", DEER_HORSE)
    state = AppState()
    state.set_model(service.open(path))
    panel = ActivationPanel(state, service)
    qtbot.addWidget(panel)
    try:
        image = picture(6)
        show_image(qtbot, panel, image)
        combo = panel.layer_combo
        assert combo.itemData(1) == "vgg16/block1_conv1"
        panel.all_layers.setChecked(True)
        names = [combo.itemData(i) for i in range(combo.count())]
        # Preprocessing, the 18 layers of the base (13 convolutions, 5 poolings), the head.
        assert len(names) == 1 + 18 + 3
        assert names[0] == "vgg16_preprocessing"
        assert names[18] == "vgg16/block5_pool"
        assert panel.analysis.cam is not None
        assert panel.analysis.cam.shape == (32, 32)
        combo.setCurrentIndex(names.index("vgg16/block5_conv3"))
        panel.channel_spin.setValue(512)
        name = "vgg16/block5_conv3"
        engine = activations(model, image, [name])[name][0, ..., 511]
        np.testing.assert_array_equal(shown_blocks(panel.channel_view), colorize(engine))
    finally:
        panel.shutdown()


def test_first_layer_filters_are_the_kernel_weights_and_pick_their_channel(
    qtbot, panel, default_model
):
    show_image(qtbot, panel, picture(7))
    first = default_model.model.layers[0]
    kernel = first.get_weights()[0]
    np.testing.assert_array_equal(panel.analysis.first_filters, kernel)
    mosaic, _ = filter_mosaic(kernel)
    np.testing.assert_array_equal(grid_pixels(panel.first_filters.grid, mosaic.shape), mosaic)
    assert "32 filters of conv2d" in panel.first_filters.title.text()
    # Each tile is its filter stretched to its own range: the weights, in order.
    tile = mosaic[:3, 4:7].astype(np.float32)  # filter 2 (second tile of the first row)
    weights = kernel[..., 1]
    assert np.argmax(tile) == np.argmax(weights) and np.argmin(tile) == np.argmin(weights)

    # A click on filter 12 shows the channel it makes.
    panel.layer_combo.setCurrentIndex(3)
    centre = panel.first_filters.grid.tile_rect(11).center().toPoint()
    qtbot.mouseClick(panel.first_filters.grid, Qt.MouseButton.LeftButton, pos=centre)
    assert panel.current_layer() == first.name and panel.current_channel() == 11


def test_a_deeper_filter_is_shown_per_input_channel_on_request(qtbot, panel, default_model):
    show_image(qtbot, panel, picture(8))
    combo = panel.layer_combo
    combo.setCurrentIndex(1)  # pooling: no filters to show
    assert not panel.kernel_view.check.isEnabled()
    combo.setCurrentIndex(2)  # the second convolution: 64 filters of 3x3x32
    name = combo.itemData(2)
    panel.channel_spin.setValue(5)
    assert panel.kernel_view.grid.isHidden()  # only on request
    panel.kernel_view.check.setChecked(True)
    qtbot.waitUntil(lambda: panel.view_model.kernel_key is not None, timeout=TIMEOUT)
    kernel = default_model.model.get_layer(name).get_weights()[0]
    assert kernel.shape == (3, 3, 32, 64)
    expected, _ = filter_slices(kernel, 4)
    np.testing.assert_array_equal(grid_pixels(panel.kernel_view.grid, expected.shape), expected)
    assert panel.kernel_view.title.text().startswith(f"Filter 5 of {name}: 32 input channels")
    panel.channel_spin.setValue(64)  # the same kernel, another filter: no new request
    expected, _ = filter_slices(kernel, 63)
    np.testing.assert_array_equal(grid_pixels(panel.kernel_view.grid, expected.shape), expected)

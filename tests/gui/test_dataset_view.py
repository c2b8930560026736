"""The Dataset panel: counts, class choice, the thumbnail model, the large view, seed samples."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtGui import QPixmap

from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
from cifar_gui.engine.data.dataset import Dataset, load_dataset
from cifar_gui.gui.dataset.view import DatasetPanel
from cifar_gui.gui.state import AppState
from cifar_gui.gui.widgets.thumbnail_model import ItemRole, ThumbnailModel
from cifar_gui.tutorial import SAMPLE_IMAGES


@pytest.fixture
def tiny(batches_dir) -> Dataset:
    """100 training images (10 per class) and 40 test images (4 per class)."""
    return load_dataset(batches_dir)


@pytest.fixture
def panel(qtbot):
    state = AppState()
    panel = DatasetPanel(state)
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    yield panel
    panel.shutdown()


def big_dataset(n_train: int) -> Dataset:
    """``n_train`` training images whose first pixel encodes their position."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n_train, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=n_train).astype(np.int64)
    x_test = np.zeros((10, 32, 32, 3), np.uint8)
    return Dataset(x, y, x_test, np.arange(10), CIFAR10_CLASSES, "synthetic")


def test_counts_table_shows_images_per_class_and_split(panel, tiny):
    panel.state.set_dataset(tiny, "tiny")
    table = panel.counts_table
    assert table.rowCount() == 11  # ten classes and the total
    assert table.item(4, 0).text() == "deer"
    assert (table.item(4, 2).text(), table.item(4, 3).text()) == ("10", "4")
    assert (table.item(10, 2).text(), table.item(10, 3).text()) == ("100", "40")
    ticked = [r for r in range(10) if table.item(r, 0).checkState() == Qt.CheckState.Checked]
    assert ticked == [4, 7]  # deer vs horse by default
    assert panel.stack.currentWidget() is panel.browser_page


def test_class_pair_change_updates_counts_and_thumbnails(panel, tiny):
    state = panel.state
    panel.state.set_dataset(tiny, "tiny")
    assert "deer vs horse" in panel.summary_label.text()
    assert "20 training and 8 test" in panel.summary_label.text()
    assert panel.thumbnails.rowCount() == 20

    panel.counts_table.item(3, 0).setCheckState(Qt.CheckState.Checked)  # tick cat
    assert state.classes == (4, 7, 3)
    assert "30 training and 12 test" in panel.summary_label.text()
    assert panel.thumbnails.rowCount() == 30

    panel.counts_table.item(4, 0).setCheckState(Qt.CheckState.Unchecked)  # untick deer
    assert state.classes == (7, 3)
    assert "horse vs cat" in panel.summary_label.text()
    assert "horse = 0, cat = 1" in panel.summary_label.text()

    messages = []
    state.message.connect(messages.append)
    panel.counts_table.item(7, 0).setCheckState(Qt.CheckState.Unchecked)  # only cat left
    assert state.classes == (7, 3)
    assert messages == ["Choose at least two classes"]
    assert panel.counts_table.item(7, 0).checkState() == Qt.CheckState.Checked


def test_thumbnail_model_rows_follow_the_filter(tiny):
    model = ThumbnailModel()
    assert model.rowCount() == 0
    model.set_dataset(tiny)
    assert model.rowCount() == 100  # every class of the training split
    model.set_filter("train", [4])
    assert model.rowCount() == 10
    assert all(tiny.y_train[model.item(r).index] == 4 for r in range(10))
    model.set_filter("test", [4, 7])
    assert model.rowCount() == 8
    item = model.data(model.index(0), ItemRole)
    assert (item.split, item.class_name) == ("test", tiny.class_names[item.label])
    pixmap = model.data(model.index(0), Qt.ItemDataRole.DecorationRole)
    assert isinstance(pixmap, QPixmap) and pixmap.width() == 64
    with pytest.raises(ValueError):
        model.set_filter("validation", None)


def test_thumbnail_grid_renders_only_what_is_visible(panel):
    panel.state.set_dataset(big_dataset(50_000), "synthetic")
    panel.class_filter.setCurrentIndex(panel.class_filter.findData("all"))
    assert panel.thumbnails.rowCount() == 50_000
    assert "50,000 images" in panel.shown_label.text()
    panel.grid.viewport().repaint()
    rendered = panel.thumbnails.rendered_count()
    assert 0 < rendered < 1000  # a screenful, not 50,000


def test_clicking_a_thumbnail_opens_it_large_and_chooses_it(panel, tiny, qtbot):
    panel.state.set_dataset(tiny, "tiny")
    panel.split_filter.setCurrentIndex(panel.split_filter.findData("test"))
    index = panel.thumbnails.index(2)
    item = panel.thumbnails.item(2)
    with qtbot.waitSignal(panel.state.image_chosen, timeout=1000) as chosen:
        panel.grid.clicked.emit(index)
    image, caption = chosen.args
    np.testing.assert_array_equal(image, tiny.x_test[item.index])
    assert panel.zoom.isVisible()
    text = panel.zoom.caption_label.text()
    assert f"test #{item.index}" in text and item.class_name in text
    assert panel.zoom.image_label.pixmap().width() == 384  # 12x, nearest-neighbour
    assert caption == item.caption


def test_seed_samples_are_the_seeds_ten_pictures(panel):
    dataset = big_dataset(10_000)
    panel.state.set_dataset(dataset, "synthetic")
    assert panel.seed_grid.count() == 10
    np.testing.assert_array_equal(panel.seed_grid.images, dataset.x_train[list(SAMPLE_IMAGES)])
    assert SAMPLE_IMAGES[:3] == (9801, 4, 6)
    assert panel.seed_grid.cells()[0].caption.text().startswith("R 9802: ")


def test_load_in_worker_then_a_bad_path_keeps_the_data(panel, batches_dir, tmp_path, qtbot):
    with qtbot.waitSignal(panel.load_finished, timeout=20_000) as done:
        panel.load(str(batches_dir))
    assert done.args == [True]
    assert panel.state.dataset is not None and len(panel.state.dataset.y_train) == 100
    assert panel.state.data_source == str(batches_dir)

    with qtbot.waitSignal(panel.load_finished, timeout=20_000) as done:
        panel.load(str(tmp_path / "missing"))
    assert done.args == [False]
    assert "no such file or folder" in panel.error_message
    assert panel.state.data_source == str(batches_dir)  # the open data set stays
    assert panel.stack.currentWidget() is panel.browser_page
    assert panel.keras_button.isEnabled()


def test_download_shows_progress_and_cancel_stops_it(panel, qtbot, monkeypatch):
    from cifar_gui.engine.data import download
    from cifar_gui.engine.errors import DataError

    def endless(progress=None, should_stop=None, url=download.CIFAR10_URL):
        done = 0
        while not should_stop():  # as the real one: checked between chunks
            done = min(done + (1 << 20), 100 << 20)
            progress(done, 163 << 20)
            QThread.msleep(5)
        raise DataError("download cancelled")

    monkeypatch.setattr(download, "download_cifar10", endless)
    panel.download_button.click()
    assert panel.cancel_button.isVisible() and not panel.download_button.isEnabled()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=10_000)
    assert "MB" in panel.busy_label.text()
    with qtbot.waitSignal(panel.load_finished, timeout=20_000) as done:
        panel.cancel_button.click()
    assert done.args == [False]
    assert "download cancelled" in panel.empty_detail.text()
    assert not panel.progress.isVisible() and panel.download_button.isEnabled()

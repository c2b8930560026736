"""The Dataset tab's rules without widgets: sources, counts, the class choice, the thumbnail
filter, the seed's samples and the download's progress line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.gui.dataset import model
from cifar_gui.gui.dataset.model import (
    ALL,
    CHOSEN,
    CountRow,
    choice_summary,
    count_rows,
    download_progress,
    filter_choices,
    filtered_classes,
    normal_source,
    seed_samples,
    source_name,
    ticked,
)
from cifar_gui.tutorial import SAMPLE_IMAGES
from tests.test_import_contracts import HEAVY, QT, loaded_on_import

NAMES = ("cat", "dog", "frog")


def tiny(labels: list[int], test: list[int]) -> Dataset:
    """Images whose first pixel is their position, with the given labels."""
    x = np.zeros((len(labels), 32, 32, 3), np.uint8)
    x[:, 0, 0, 0] = np.arange(len(labels)) % 256
    x_test = np.zeros((len(test), 32, 32, 3), np.uint8)
    return Dataset(x, np.array(labels), x_test, np.array(test), NAMES, "tiny")


def test_the_model_loads_neither_qt_nor_keras():
    loaded = {name.split(".")[0] for name in loaded_on_import(model.__name__)}
    assert not loaded & {*QT, *HEAVY}


def test_sources_read_as_the_keras_cache_or_an_absolute_path(tmp_path, monkeypatch):
    assert source_name(None) == source_name("keras") == "Keras cache"
    assert source_name("/data/cifar") == "/data/cifar"
    assert normal_source(None) == normal_source("") == normal_source("keras") == "keras"
    monkeypatch.chdir(tmp_path)
    assert normal_source("batches") == str(tmp_path / "batches")
    assert Path(normal_source("~/x")).is_absolute()


def test_counts_per_class_and_the_total():
    rows = count_rows(tiny([0, 1, 1, 2, 2, 2], [0, 2]))
    assert rows == [
        CountRow("cat", 0, 1, 1),
        CountRow("dog", 1, 2, 0),
        CountRow("frog", 2, 3, 1),
        CountRow("total", None, 6, 2),
    ]
    assert rows[2].cells() == ("frog", "2", "3", "1")
    assert rows[-1].cells() == ("total", "", "6", "2")
    assert CountRow("cat", 0, 12_345, 0).cells()[2] == "12,345"


def test_the_summary_names_the_pair_in_label_order_and_counts_its_images():
    text = choice_summary(tiny([0, 1, 1, 2, 2, 2], [0, 2]), (2, 0))
    assert "Training uses frog vs cat" in text
    assert "4 training and 2 test images" in text
    assert "frog = 0, cat = 1" in text


def test_ticking_keeps_the_order_and_at_least_two_classes():
    assert ticked([4, 7], 3, checked=True) == [4, 7, 3]
    assert ticked([4, 7, 3], 4, checked=False) == [7, 3]
    assert ticked([7, 3], 7, checked=False) is None
    assert ticked([7, 3], 3, checked=True) == [7, 3]  # ticked twice: once in the choice


def test_the_thumbnail_filter_shows_the_chosen_all_or_one_class():
    assert [data for _, data in filter_choices(NAMES)] == [CHOSEN, ALL, 0, 1, 2]
    assert filtered_classes(CHOSEN, (2, 0), NAMES) == ([2, 0], "frog + cat")
    assert filtered_classes(ALL, (2, 0), NAMES) == (None, "all classes")
    assert filtered_classes(1, (2, 0), NAMES) == ([1], "dog")


def test_seed_samples_are_the_seeds_positions_with_a_note_for_sorted_folders():
    rng = np.random.default_rng(0)
    shuffled = tiny(list(rng.integers(0, 3, 10_000)), [0])
    samples = seed_samples(shuffled)
    assert len(samples.images) == 10 and samples.note == ""
    np.testing.assert_array_equal(samples.images, shuffled.x_train[list(SAMPLE_IMAGES)])
    first = NAMES[shuffled.y_train[SAMPLE_IMAGES[0]]]
    assert samples.captions[0] == f"R 9802: {first}"

    few = seed_samples(tiny(sorted([0, 1, 2] * 4), [0]))  # 12 images, sorted by class
    assert len(few.images) == 8  # R 9802 and R 28 are beyond the 12 images
    assert [c.split(":")[0] for c in few.captions][:2] == ["R 5", "R 7"]
    assert few.note == model.SORTED_NOTE
    assert seed_samples(tiny([], [0])).note == model.TOO_FEW_IMAGES


def test_download_progress_in_percent_or_megabytes():
    assert download_progress(5 << 20, 10 << 20) == (50, "Downloading CIFAR-10: 5 of 10 MB")
    assert download_progress(3 << 20, 0) == (None, "Downloading CIFAR-10: 3 MB")

"""The Activations tab's state and rules without widgets or a model: analyses of a replaced
model are dropped, test images by 1-based index, the seed's eight layers, channels and units,
the kernel fetched once per layer and model, and the texts shown."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cifar_gui import tutorial
from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.record import RunRecord
from cifar_gui.gui.activations import model as rules
from cifar_gui.gui.activations.model import (
    ActivationModel,
    Analysis,
    DropResult,
    LayerView,
)
from tests.test_import_contracts import HEAVY, QT, loaded_on_import

CONV = LayerView("conv", (4, 4, 3), (3, 3, 3, 3))
POOL = LayerView("pool", (2, 2, 3))
DENSE = LayerView("dense", (5,))


def analysis(generation: int, layers=(CONV, POOL, DENSE), seed_layers: int = 2) -> Analysis:
    rng = np.random.default_rng(generation)
    acts = {layer.name: rng.normal(size=layer.shape).astype(np.float32) for layer in layers}
    return Analysis(
        generation,
        np.zeros((4, 4, 3), np.uint8),
        "caption",
        tuple(layers),
        seed_layers,
        acts,
        ("deer", "horse"),
        (0.25, 0.75),
        None,
        "no Grad-CAM: no convolution",
    )


def test_the_model_loads_neither_qt_nor_keras():
    loaded = {name.split(".")[0] for name in loaded_on_import(rules.__name__)}
    assert not loaded & {*QT, *HEAVY}


def test_an_analysis_of_a_replaced_model_is_dropped():
    vm = ActivationModel()
    assert vm.accept(analysis(0)) is True  # the first: its layers are new
    assert vm.accept(analysis(0)) is False  # the same layers: the list stays
    vm.model_changed()
    assert vm.analysis is None
    assert vm.accept(analysis(0)) is None and vm.analysis is None
    assert vm.accept(analysis(1, layers=(CONV,))) is True
    assert vm.analysis.generation == 1


def test_test_images_come_from_the_chosen_classes_of_the_test_split_cached():
    x_test = np.arange(12, dtype=np.uint8).reshape(12, 1, 1, 1).repeat(3, axis=-1)
    y_test = np.array([4, 7, 0, 4, 7, 4, 1, 7, 4, 7, 7, 2])
    x = np.zeros((2, 1, 1, 3), np.uint8)
    dataset = Dataset(x, np.array([0, 1]), x_test, y_test, CIFAR10_CLASSES, "tiny")
    vm = ActivationModel()
    assert vm.test_number == tutorial.TEST_IMAGE
    assert vm.test_subset(None, (4, 7)) is None
    subset = vm.test_subset(dataset, (4, 7))
    assert subset.class_names == ("deer", "horse") and len(subset.x_test) == 9
    assert vm.test_subset(dataset, (4, 7)) is subset  # cached
    caption = rules.subset_caption(subset, 5)  # the seed's p <- 5 is x_test[4]
    assert caption.startswith("Test image 5 (x_test[4] of deer / horse)")
    assert caption.endswith(f"true class: {subset.class_names[int(subset.y_test[4])]}")
    assert rules.subset_total(subset) == "of 9 (deer vs horse)"
    image, text = vm.test_image(subset, 5)
    np.testing.assert_array_equal(image, subset.x_test[4])
    assert text == caption and vm.test_number == 5
    assert vm.test_image(subset, 0) is None and vm.test_image(subset, 10) is None
    assert vm.test_image(None, 1) is None and vm.test_number == 5
    with pytest.raises(UserError):
        vm.test_subset(dataset, (4, 12))  # no such class: said once
    assert vm.test_subset(dataset, (4, 12)) is None


def test_the_seeds_eight_layers_or_all_and_flat_layers_as_units():
    vm = ActivationModel()
    assert vm.listed_layers(False) == ()
    vm.accept(analysis(0))
    assert vm.listed_layers(False) == (CONV, POOL)
    assert vm.listed_layers(True) == (CONV, POOL, DENSE)
    assert vm.layer("pool") == POOL and vm.layer("nothing") is None
    assert vm.layer_values("conv").shape == (4, 4, 3)
    units = vm.layer_values("dense")
    assert units.shape == (1, 1, 5)
    np.testing.assert_array_equal(units[0, 0], vm.analysis.activations["dense"])
    assert vm.layer_values(None) is None


def test_a_channel_on_its_own_range_a_unit_on_the_layers():
    maps = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    shown = rules.channel_shown(maps, 1, "conv")
    assert (shown.channel, shown.lo, shown.hi) == (1, 1.0, 21.0)
    assert shown.note == "conv, channel 2 of 4: 2x3, values 1 to 21"
    assert rules.channel_shown(maps, 9, "conv").channel == 3  # clamped to the layer
    units = np.array([[[0.5, -2.0, 3.0]]], np.float32)
    unit = rules.channel_shown(units, 0, "dense")
    assert (unit.lo, unit.hi) == (-2.0, 3.0)
    assert unit.note == "dense, unit 1 of 3: value 0.5"
    assert rules.grid_title(units, "dense") == "All 3 units of dense (click one)"
    assert rules.grid_title(maps, "conv") == "All 4 channels of conv (click one)"


def test_a_layers_kernel_is_asked_for_once_per_model():
    vm = ActivationModel()
    assert vm.kernel_to_fetch("conv") == (0, "conv")
    assert vm.kernel_to_fetch("conv") is None  # asked already
    assert vm.kernel_to_fetch("conv2") == (0, "conv2")  # a newer request replaces it
    assert not vm.has_kernel("conv2")
    vm.kernel_arrived((0, "conv2"), np.ones((3, 3, 3, 8)))
    assert vm.has_kernel("conv2") and vm.kernel_to_fetch("conv2") is None
    vm.model_changed()
    assert not vm.has_kernel("conv2") and vm.kernel_to_fetch("conv2") == (1, "conv2")


def test_texts_of_the_model_the_input_and_the_prediction():
    record = RunRecord(class_names=("deer", "horse"), variant_name="baseline", test_accuracy=0.8123)
    handle = SimpleNamespace(record=record, class_names=("deer", "horse"), path=Path("m.h5"))
    assert rules.model_summary(handle, bundled=True) == (
        "Model <b>m.h5</b> (bundled default): baseline, deer vs horse, test accuracy 81.2%"
    )
    plain = SimpleNamespace(record=None, class_names=("a", "b"), path=Path("x.keras"))
    assert rules.model_summary(plain, bundled=False) == "Model <b>x.keras</b>: a vs b"
    assert rules.loading_text("/m/default.h5", True) == "Loading the bundled model default.h5…"

    image = np.full((3, 5, 3), 51, np.uint8)
    shown, note = rules.model_input(image)
    np.testing.assert_array_equal(shown, image)  # pixels / 255, shown back on 0-255
    assert note == "5x3 pixels, values 0.20 to 0.20 (pixels / 255, once)"
    assert rules.input_only(np.zeros((64, 64, 3), np.uint8)).shape == (32, 32, 3)

    a = analysis(0)
    assert a.best == 1
    assert rules.prediction_text(a).startswith("Predicted <b>horse</b> (75.0%)")
    assert rules.cam_title(a) == "no Grad-CAM: no convolution"


def test_texts_of_classified_files():
    first = SimpleNamespace(
        path="/x/cat.png", label="deer", confidence=0.9, class_names=("deer", "horse")
    )
    assert rules.file_caption(first) == "cat.png: deer (90.0%)"
    one = rules.classified_message(DropResult([first], []))
    assert one.startswith("1 file classified. This model only knows deer and horse")
    two = rules.classified_message(DropResult([first, first], ["a.txt: not an image file"]))
    assert two.startswith("2 files classified, 1 could not be read. ")

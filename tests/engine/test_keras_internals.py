"""The private Keras parts the app relies on (cifar_gui/engine/models/keras_internals.py) are still
there in the installed Keras; when one moves, the failure names it and what needs it."""

from __future__ import annotations

import keras
import pytest

from cifar_gui.engine.models import keras_internals
from cifar_gui.engine.models.keras_internals import INTERNALS, moved_message, probe


@pytest.fixture(scope="module")
def present() -> dict[str, bool]:
    return probe()


@pytest.mark.parametrize("name", sorted(INTERNALS))
def test_the_installed_keras_still_has(name, present):
    assert present[name], moved_message(name)


def test_a_moved_internal_fails_the_probe_with_its_name(monkeypatch):
    owner = next(c for c in keras.layers.Conv2D.__mro__ if "convolution_op" in vars(c))
    monkeypatch.delattr(owner, "convolution_op")
    found = probe()
    assert not found["BaseConv.convolution_op"]
    assert all(found[name] for name in INTERNALS if name != "BaseConv.convolution_op")
    message = moved_message("BaseConv.convolution_op")
    assert "BaseConv.convolution_op" in message and "matmul_conv.py" in message
    assert keras.__version__ in message


def test_replaced_restores_the_method_of_that_object_only():
    layer, other = keras.layers.Conv2D(1, 3), keras.layers.Conv2D(1, 3)
    stock = layer.convolution_op
    with keras_internals.replaced(layer, "convolution_op", len):
        assert layer.convolution_op is len and other.convolution_op != len
    assert layer.convolution_op == stock

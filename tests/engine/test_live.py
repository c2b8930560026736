"""The live view's snapshots equal what the finished-model tools compute for the same model."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.events import LiveRequest
from cifar_gui.engine.models.build import build_baseline, build_model, compile_model
from cifar_gui.engine.models.inspect import activations, grad_cam, probabilities
from cifar_gui.engine.training.live import (
    RUNNING_WINDOW,
    TEST_PER_REFRESH,
    LiveCallback,
    LiveProbe,
    strip_indices,
)

RNG = np.random.default_rng(0)
X_TEST = RNG.integers(0, 256, size=(120, 32, 32, 3), dtype=np.uint8)
Y_TEST = np.arange(120) % 2


def test_the_strip_takes_four_images_per_class_chosen_by_seed():
    labels = np.array([0] * 50 + [1] * 10)
    chosen = strip_indices(labels, seed=3)
    assert len(chosen) == 8 and len(set(chosen)) == 8
    assert sorted(labels[list(chosen)]) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert strip_indices(labels, seed=3) == chosen
    assert strip_indices(labels, seed=4) != chosen
    assert len(strip_indices(labels[:3], seed=0)) == 3  # fewer test images than the strip


def test_a_snapshot_is_the_models_activations_filters_and_predictions():
    keras.utils.set_random_seed(0)
    model = build_baseline()
    image = X_TEST[7]
    probe = LiveProbe(model, X_TEST, Y_TEST, LiveRequest(7), seed=1)
    snap = probe.snapshot(epoch=0, batch=5, steps=5, step=5)
    first = model.layers[0].name
    assert snap.layer == first  # the first convolution by default
    expected = activations(model, image, [first])[first][0]
    np.testing.assert_allclose(snap.activation, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(snap.filters, model.layers[0].get_weights()[0])
    assert snap.filters_layer == first
    np.testing.assert_array_equal(snap.image, image)
    assert snap.image_caption == "test image 8, true class class 1"
    np.testing.assert_array_equal(snap.strip_images, X_TEST[list(snap.strip_indices)])
    assert snap.layers[0] == first and len(snap.layers) == len(model.layers)
    np.testing.assert_allclose(grad_cam(model, image), snap.cam, atol=1e-5)
    strip = list(snap.strip_indices)
    probs = probabilities(model, X_TEST[strip], direct=True)
    true = probs[np.arange(8), Y_TEST[strip]]
    np.testing.assert_allclose(snap.strip_true_probability, true, rtol=1e-5, atol=1e-6)
    assert snap.strip_correct == tuple(bool(c) for c in probs.argmax(1) == Y_TEST[strip])
    np.testing.assert_allclose(snap.probabilities, probabilities(model, image[None])[0], atol=1e-5)
    predicted = probabilities(model, X_TEST[:TEST_PER_REFRESH]).argmax(1)
    assert snap.running_count == TEST_PER_REFRESH
    assert snap.running_accuracy == pytest.approx(np.mean(predicted == Y_TEST[:TEST_PER_REFRESH]))
    # Health: one row per layer with a kernel; ReLU zeros counted over the probe images.
    names = [h.name for h in snap.health]
    assert names == [layer.name for layer in model.layers if hasattr(layer, "kernel")]
    conv = snap.health[0]
    probe_images = np.concatenate([image[None], X_TEST[strip]]).astype("float32") / 255.0
    outputs = model.layers[0](probe_images).numpy()
    assert conv.zero_fraction == pytest.approx(float(np.mean(outputs == 0)))
    assert conv.mean == pytest.approx(float(outputs.mean()), rel=1e-5)
    assert conv.weight_norm == pytest.approx(float(np.linalg.norm(model.layers[0].kernel)))
    assert math.isnan(conv.update_ratio)  # nothing to compare with yet


def test_the_update_ratio_measures_the_change_per_step_and_the_window_fills():
    keras.utils.set_random_seed(0)
    model = build_baseline()
    compile_model(model, RunConfig(), 2)
    probe = LiveProbe(model, X_TEST, Y_TEST, LiveRequest(0))
    probe.snapshot(0, 0, 4, step=0)
    before = model.layers[0].get_weights()[0]
    model.fit(X_TEST[:64] / 255.0, Y_TEST[:64].astype("float32"), batch_size=16, verbose=0)
    after = model.layers[0].get_weights()[0]
    snap = probe.snapshot(0, 4, 4, step=4)
    expected = np.linalg.norm(after - before) / 4 / np.linalg.norm(after)
    assert snap.health[0].update_ratio == pytest.approx(expected, rel=1e-4)
    assert snap.health[0].update_ratio > 0
    for _ in range(RUNNING_WINDOW // TEST_PER_REFRESH + 1):
        snap = probe.snapshot(0, 4, 4, step=4)
    assert snap.running_count == RUNNING_WINDOW


def test_frozen_layers_do_not_move_and_a_layer_can_be_chosen():
    """Trained for two steps: the frozen base's kernel is the same (measured here, not taken
    from its flag) and its reported update ratio is what moved, none; the head's moved."""
    keras.utils.set_random_seed(0)
    config = RunConfig(variant="transfer", weights="none")
    model = build_model(config)
    compile_model(model, config, 2)
    probe = LiveProbe(model, X_TEST[:10], Y_TEST[:10], LiveRequest(0, layer="vgg16/block3_conv1"))
    dense = model.layers[-2].name
    snap = probe.snapshot(0, 0, 1, step=0)
    assert snap.layer == "vgg16/block3_conv1" and snap.activation.shape == (8, 8, 256)
    assert snap.filters.shape == (3, 3, 3, 64)  # vgg16/block1_conv1
    assert math.isnan({h.name: h for h in snap.health}[dense].update_ratio)
    frozen_layer = model.get_layer("vgg16").get_layer("block1_conv1")
    before = frozen_layer.get_weights()[0]
    model.fit(X_TEST[:10], Y_TEST[:10].astype("float32"), batch_size=5, verbose=0)
    moved = np.linalg.norm(frozen_layer.get_weights()[0] - before) / 2 / np.linalg.norm(before)
    health = {h.name: h for h in probe.snapshot(0, 2, 2, step=2).health}
    assert moved == 0.0, f"a frozen layer moved (update ratio {moved:.2e})"
    assert health["vgg16/block1_conv1"].update_ratio == moved
    assert health[dense].update_ratio > 0  # the two steps trained the head
    probe.set_request(LiveRequest(image=X_TEST[1], layer=dense))
    assert probe.snapshot(0, 1, 1, step=1).activation.shape == (1, 1, 256)
    with pytest.raises(ModelError, match="no layer 'nope'"):
        probe.set_request(LiveRequest(0, layer="nope"))
    with pytest.raises(ModelError, match="no test image 11: the run has 10"):
        probe.set_request(LiveRequest(10))


def test_the_callback_refreshes_every_epoch_and_every_n_batches_with_the_latest_request():
    keras.utils.set_random_seed(0)
    model = build_baseline()
    compile_model(model, RunConfig(), 2)
    model.steps_per_execution = 2  # batch callbacks come once per call of two batches
    probe = LiveProbe(model, X_TEST, Y_TEST, LiveRequest(0, every_batches=3))
    sent = []
    requests = [None, LiveRequest(5, layer=model.layers[2].name, every_batches=3)]
    callback = LiveCallback(
        probe, sent.append, lambda: requests.pop(0) if requests else None, steps=7
    )
    x = X_TEST[:56] / 255.0  # 7 batches of 8: calls end after batches 2, 4, 6 and 7
    model.fit(
        x,
        Y_TEST[:56].astype("float32"),
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[callback],
        shuffle=False,
    )
    # Per epoch: after 4 batches (3 crossed) and 6 (6 crossed), then the epoch's end.
    assert [(s.epoch, s.batch) for s in sent] == [(0, 4), (0, 6), (0, 7), (1, 4), (1, 6), (1, 7)]
    assert sent[0].layer == model.layers[0].name
    assert all(s.layer == model.layers[2].name for s in sent[1:])  # the next refresh
    last = sent[-1]
    expected = activations(model, X_TEST[5], [last.layer])[last.layer][0]
    np.testing.assert_allclose(last.activation, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(last.filters, model.layers[0].get_weights()[0])

"""Activations, predictions of image files, Grad-CAM, evaluation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import ImageError, ModelError
from cifar_gui.engine.models.build import build_baseline, build_model
from cifar_gui.engine.models.inspect import (
    activations,
    class_probabilities,
    conv_kernel,
    default_layers,
    evaluate,
    grad_cam,
    list_layers,
    output_activation,
    predict_files,
    probabilities,
)

IMAGE = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def baseline():
    return build_baseline()


@pytest.fixture(scope="module")
def transfer():
    return build_model(RunConfig(variant="transfer", weights="none"))


def test_seed_activation_shapes(baseline):
    acts = activations(baseline, IMAGE)
    names = default_layers(baseline)
    assert len(acts) == 8 and list(acts) == names
    assert acts[names[0]].shape == (1, 32, 32, 32)
    assert acts[names[5]].shape == (1, 3, 3, 128)


def test_activations_scale_once(baseline):
    """The first layer sees pixels / 255, not / 255 twice as the seed's activation section."""
    first = baseline.layers[0]
    expected = first(IMAGE[None].astype(np.float32) / 255.0).numpy()
    got = activations(baseline, IMAGE, [first.name])[first.name]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_vgg16_layers_inside_the_base_are_listed_and_computed(transfer):
    names = [info.name for info in list_layers(transfer)]
    assert "vgg16/block3_conv1" in names and "vgg16/block5_pool" in names
    shapes = {info.name: info.output_shape for info in list_layers(transfer)}
    assert shapes["vgg16/block1_conv1"] == (32, 32, 64)
    act = activations(transfer, IMAGE, ["vgg16/block1_conv1"])["vgg16/block1_conv1"]
    assert act.shape == (1, 32, 32, 64)


def test_convolutions_list_their_kernels_and_give_their_weights(baseline, transfer):
    shapes = {info.name: info.kernel_shape for info in list_layers(baseline)}
    first = baseline.layers[0].name
    assert shapes[first] == (3, 3, 3, 32)  # the seed's 32 filters of 3x3x3
    assert shapes[baseline.layers[1].name] == ()  # pooling: no kernel
    np.testing.assert_array_equal(conv_kernel(baseline, first), baseline.layers[0].get_weights()[0])
    vgg = {info.name: info.kernel_shape for info in list_layers(transfer)}
    assert vgg["vgg16/block1_conv1"] == (3, 3, 3, 64)
    assert vgg["vgg16/block3_conv1"] == (3, 3, 128, 256)
    inner = transfer.get_layer("vgg16").get_layer("block3_conv1").get_weights()[0]
    np.testing.assert_array_equal(conv_kernel(transfer, "vgg16/block3_conv1"), inner)
    with pytest.raises(ModelError, match="no convolution"):
        conv_kernel(baseline, baseline.layers[1].name)
    with pytest.raises(ModelError, match="no layer 'nope'"):
        conv_kernel(baseline, "nope")


def test_unknown_layer(baseline):
    with pytest.raises(KeyError, match="no layer 'nope'"):
        activations(baseline, IMAGE, ["nope"])


@pytest.mark.parametrize("model_name", ["baseline", "transfer"])
def test_grad_cam_has_the_input_size_and_varies(request, model_name):
    model = request.getfixturevalue(model_name)
    cam = grad_cam(model, IMAGE)
    assert cam.shape == (32, 32)
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert cam.std() > 0


def test_predict_any_image_file(baseline, tmp_path):
    paths = []
    for name, mode, size in (
        ("a.png", "RGBA", (64, 80)),
        ("b.jpg", "L", (32, 32)),
        ("c.gif", "P", (10, 10)),
        ("d.webp", "RGB", (33, 31)),
        ("e.bmp", "RGB", (32, 32)),
    ):
        Image.new(mode, size).save(tmp_path / name)
        paths.append(tmp_path / name)
    preds = predict_files(baseline, paths, ("deer", "horse"))
    assert len(preds) == 5
    for p in preds:
        assert p.image.shape == (32, 32, 3)
        assert sum(p.probabilities) == pytest.approx(1.0)
        assert p.label in ("deer", "horse")


def test_predict_rejects_non_images(baseline, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ImageError, match=r"notes.txt: not an image file"):
        predict_files(baseline, [text], ("deer", "horse"))
    with pytest.raises(ImageError, match="no such file"):
        predict_files(baseline, [tmp_path / "missing.png"], ("deer", "horse"))


def test_decompression_bomb_is_refused(baseline, tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(path)
    with pytest.raises(ImageError, match="too large"):
        predict_files(baseline, [path], ("deer", "horse"))


def test_evaluate_counts_a_perfect_and_a_wrong_model():
    class Fixed:
        input_shape = (None, 32, 32, 3)

        def __init__(self, out):
            self.out = out

        def predict(self, x, verbose=0):
            return self.out

    labels = np.array([0, 1, 1, 0])
    images = np.zeros((4, 32, 32, 3), np.uint8)
    good = evaluate(Fixed(np.array([[0.1], [0.9], [0.8], [0.3]])), images, labels)
    assert good.accuracy == 1.0
    assert good.confusion.tolist() == [[2, 0], [0, 2]]
    # Predicts [1, 1, 0, 1] for labels [0, 1, 1, 0]: only the second is right.
    bad = evaluate(Fixed(np.array([[0.6], [0.9], [0.2], [0.99]])), images, labels)
    assert bad.accuracy == 0.25
    assert bad.confusion.tolist() == [[0, 2], [1, 1]]
    assert bad.misclassified().tolist() == [3, 2, 0]  # the most confident mistake first
    assert bad.loss > good.loss


def test_evaluate_refuses_a_model_of_another_shape(baseline):
    with pytest.raises(ModelError, match="takes"):
        evaluate(baseline, np.zeros((2, 16, 16, 3), np.uint8), np.array([0, 1]))


def test_grad_cam_and_activations_of_a_bfloat16_model():
    """Models trained with the automatic mixed precision are inspected in float32."""
    from cifar_gui.engine.training.performance import precision_scope

    with precision_scope("mixed_bfloat16"):
        model = build_baseline()
    cam = grad_cam(model, IMAGE)
    assert cam.dtype == np.float32 and cam.shape == (32, 32) and cam.std() > 0
    first = default_layers(model)[0]
    assert activations(model, IMAGE, [first])[first].dtype == np.float32


# --------------------------------------------------------------------------------------
# Models whose outputs are scores (logits), not probabilities


def small(*head, units: int | None = None) -> keras.Model:
    """A tiny image model ending in ``head`` (default: a linear Dense of ``units``)."""
    layers = [keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D()]
    return keras.Sequential(layers + list(head or [keras.layers.Dense(units)]))


def set_bias(model: keras.Model, bias: list[float]) -> keras.Model:
    dense = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    kernel, _ = dense.get_weights()
    dense.set_weights([np.zeros_like(kernel), np.asarray(bias, np.float32)])
    return model


@pytest.mark.parametrize(
    "model, expected",
    [
        (lambda: small(units=1), "linear"),
        (lambda: small(keras.layers.Dense(1, activation="sigmoid")), "sigmoid"),
        (lambda: small(keras.layers.Dense(3, activation="softmax")), "softmax"),
        (lambda: small(keras.layers.Dense(3), keras.layers.Softmax()), "softmax"),
        (lambda: small(keras.layers.Dense(3), keras.layers.Activation("softmax")), "softmax"),
        (
            lambda: small(
                keras.layers.Dense(3, activation="softmax"),
                keras.layers.Dropout(0.5),
                keras.layers.Activation("linear"),
            ),
            "softmax",
        ),
        (
            lambda: small(keras.Sequential([keras.layers.Dense(2, activation="softmax")])),
            "softmax",
        ),
        (lambda: small(keras.Sequential([keras.layers.Dense(2)])), "linear"),
        (lambda: small(keras.layers.Dense(2, activation="relu")), "relu"),
        (lambda: small(keras.layers.Dense(2), keras.layers.Lambda(lambda x: x * 2)), None),
    ],
    ids=[
        "linear",
        "sigmoid",
        "softmax",
        "softmax-layer",
        "activation-layer",
        "through-dropout",
        "nested",
        "nested-linear",
        "relu",
        "lambda",
    ],
)
def test_output_activation_is_found(model, expected):
    assert output_activation(model()) == expected


def test_output_activation_of_a_functional_keras_ops_model():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(inputs))
    assert output_activation(keras.Model(inputs, keras.ops.sigmoid(x))) == "sigmoid"
    assert output_activation(keras.Model(inputs, x)) == "linear"


def test_the_app_models_give_probabilities(baseline, transfer):
    assert output_activation(baseline) == "sigmoid"
    assert output_activation(transfer) == "sigmoid"


def test_linear_output_becomes_a_probability(tmp_path):
    """A score of 2 is not a probability of 2: it is sigmoid(2) = 0.881 for class 1."""
    path = tmp_path / "a.png"
    Image.new("RGB", (32, 32)).save(path)
    [pred] = predict_files(set_bias(small(units=1), [2.0]), [path], ("deer", "horse"))
    assert pred.from_logits
    assert pred.probabilities == pytest.approx((1 - 0.880797, 0.880797), abs=1e-5)
    assert pred.label == "horse"
    [pred] = predict_files(set_bias(small(units=3), [1.0, 3.0, -2.0]), [path], ("a", "b", "c"))
    expected = np.exp([1.0, 3.0, -2.0]) / np.exp([1.0, 3.0, -2.0]).sum()
    assert pred.from_logits and pred.probabilities == pytest.approx(tuple(expected), abs=1e-6)


def test_probability_outputs_are_shown_as_they_are(baseline, tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (32, 32), "white").save(path)
    [pred] = predict_files(baseline, [path], ("deer", "horse"))
    raw = float(baseline.predict(np.ones((1, 32, 32, 3), np.float32), verbose=0)[0, 0])
    assert not pred.from_logits
    assert pred.probabilities == pytest.approx((1 - raw, raw), abs=1e-5)


def test_huge_scores_do_not_overflow():
    model = set_bias(small(units=2), [1000.0, -1000.0])
    probs, from_logits = class_probabilities(model, np.zeros((1, 32, 32, 3), np.uint8), True)
    assert from_logits and probs.tolist() == [[1.0, 0.0]]
    model = set_bias(small(units=1), [-1000.0])
    probs, _ = class_probabilities(model, np.zeros((1, 32, 32, 3), np.uint8), True)
    assert probs.tolist() == [[1.0, 0.0]]


def test_evaluate_a_linear_model_reports_probabilities():
    model = set_bias(small(units=2), [0.0, 3.0])
    result = evaluate(model, np.zeros((2, 32, 32, 3), np.uint8), np.array([1, 0]))
    assert result.from_logits
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0)
    assert result.probabilities.max() < 1.0
    assert result.accuracy == 0.5 and result.loss == pytest.approx(
        -(np.log(1 / (1 + np.exp(-3.0))) + np.log(1 / (1 + np.exp(3.0)))) / 2, rel=1e-5
    )


def test_unknown_structure_is_judged_by_the_values():
    class Fixed:
        input_shape = (None, 32, 32, 3)

        def __init__(self, out):
            self.out = np.asarray(out)

        def predict(self, x, verbose=0):
            return self.out

    images = np.zeros((2, 32, 32, 3), np.uint8)
    probs, from_logits = class_probabilities(Fixed([[0.2, 0.8], [0.5, 0.5]]), images)
    assert not from_logits and probs.tolist() == [[0.2, 0.8], [0.5, 0.5]]
    probs, from_logits = class_probabilities(Fixed([[0.0, 2.0], [1.0, 1.0]]), images)
    assert from_logits and probs[1].tolist() == [0.5, 0.5]
    assert probabilities(Fixed([[0.25], [0.75]]), images).tolist() == [[0.75, 0.25], [0.25, 0.75]]


def test_grad_cam_of_a_linear_output_explains_the_predicted_class():
    """With a score, class 1 is predicted from 0 up (not from 0.5 up, as for a probability)."""
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(2, 3, padding="same"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1),
        ]
    )
    dense = model.layers[-1]
    dense.set_weights([np.full((2, 1), 0.01, np.float32), np.array([0.2], np.float32)])
    z = float(model(np.zeros((1, 32, 32, 3), np.float32))[0, 0])
    assert 0.0 < z < 0.5  # class 1 for a score, class 0 had it been a probability
    cam_default = grad_cam(model, np.zeros((32, 32, 3), np.uint8) + 1)
    cam_class1 = grad_cam(model, np.zeros((32, 32, 3), np.uint8) + 1, class_index=1)
    np.testing.assert_allclose(cam_default, cam_class1)

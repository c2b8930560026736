"""`cifar-gui pretrain` and `train --variant transfer --base` from its base, offline."""

from __future__ import annotations

import json

import keras
import pytest

from cifar_gui.cli import main

TINY = ["--epochs", "1", "--batch-size", "8", "--limit", "16"]
BASE_NAME = "cifar10_0_1_2_3_5_6_8_9_pretrainedbase.h5"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A base made by `cifar-gui pretrain` on tiny synthetic data (deer vs horse left out)."""
    from tests.conftest import write_cifar_batches

    root = tmp_path_factory.mktemp("cli_pretrain")
    data = write_cifar_batches(root / "cifar-10-batches-py")
    assert main(["pretrain", "--data", str(data), "--out", str(root / "out"), *TINY]) == 0
    return data, root / "out" / BASE_NAME


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


def test_pretrain_saves_a_base_of_the_other_classes(base):
    _, path = base
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["config"]["variant"] == "pretrain" and side["config"]["arch"] == "cnn"
    assert side["config"]["excluded"] == ["deer", "horse"]
    assert set(side["class_names"]).isdisjoint({"deer", "horse"})
    assert side["train_images"] == 16


def test_transfer_from_the_base_prints_counts_and_reloads(base, tmp_path, capsys):
    data, path = base
    code = main(
        ["train", "--variant", "transfer", "--base", str(path), "--data", str(data),
         "--out", str(tmp_path), *TINY]
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "parameters: 295,425 trainable, 93,248 non-trainable" in err
    model = keras.models.load_model(tmp_path / "cifar10_4_7_transferlearning.h5", compile=False)
    assert model.layers[0].name == "base" and not model.layers[0].trainable_weights


def test_a_base_that_saw_the_pair_is_refused_unless_allowed(base, tmp_path, capsys):
    data, path = base
    # The base was trained on cat and dog: a transfer to cat vs dog is refused.
    args = ["train", "--variant", "transfer", "--base", str(path), "--data", str(data),
            "--classes", "cat", "dog", "--out", str(tmp_path), *TINY]  # fmt: skip
    assert main(args) == 2
    line = one_error_line(capsys)
    assert "trained on cat, dog" in line and "--allow-overlap" in line
    assert main([*args, "--allow-overlap"]) == 0


def test_pretrain_names_an_unknown_class_in_one_line(base, capsys):
    data, _ = base
    code = main(["pretrain", "--data", str(data), "--classes", "deer", "nope", *TINY])
    assert code == 2
    assert "unknown class 'nope'" in one_error_line(capsys)


def test_the_window_and_the_command_line_pretrain_from_the_same_weights():
    """The window's pretrain passes no weights (cifar_gui.gui.training.form): a VGG16 pretrain
    from the window meant ImageNet (a download) while the command line's meant none."""
    from cifar_gui.cli import build_parser, pretrain_from_args
    from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
    from cifar_gui.engine.training.pretrain import pretrain_config

    args = build_parser().parse_args(["pretrain", "--arch", "vgg16"])
    window = pretrain_config(CIFAR10_CLASSES, ("deer", "horse"), arch="vgg16")
    assert window.weights == "none"  # offline: the base stands in for ImageNet
    assert pretrain_from_args(args, CIFAR10_CLASSES) == window

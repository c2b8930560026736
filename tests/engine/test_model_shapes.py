"""A model of no fixed image size (input ``(None, None, None, 3)``) is refused on every path
that opens a model, naming its input shape and what the app needs; before, the image was
blamed ("unreadable image ('NoneType' object ...)") (issue 27)."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from cifar_gui.cli import main
from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.models.build import build_model
from cifar_gui.engine.models.checkpoint_model import load_checkpoint_model
from cifar_gui.engine.models.persistence import load_model, save_model
from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.service import EngineService
from cifar_gui.engine.training.checkpoints import Checkpoint

PROBLEM = (
    "model input (None, None, None, 3) has no fixed image size; this app needs a model of one "
    "height and width, such as (None, 32, 32, 3)"
)


def dynamic_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(2, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


@pytest.fixture(scope="module", params=[".h5", ".keras"])
def dynamic(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dynamic") / f"dynamic{request.param}"
    save_model(dynamic_model(), path, RunRecord(class_names=("deer", "horse")))
    return path


def test_load_model_names_the_input_shape(dynamic):
    with pytest.raises(ModelError) as info:
        load_model(dynamic)
    assert str(info.value) == f"{dynamic}: {PROBLEM}"


def test_predict_blames_the_model_not_the_image(dynamic, tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "red.png"
    Image.new("RGB", (32, 32), "red").save(image)
    assert main(["predict", str(dynamic), str(image)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {dynamic}: {PROBLEM}"


def test_the_model_service_refuses_it(dynamic):
    service = EngineService(in_process=True)
    try:
        with pytest.raises(ModelError, match="has no fixed image size"):
            service.open(dynamic)
    finally:
        service.close()


@pytest.mark.parametrize(
    "config",
    [
        RunConfig(variant="transfer", allow_overlap=True),
        RunConfig(variant="finetune"),
    ],
    ids=["transfer-base", "finetune-from"],
)
def test_a_run_built_on_it_refuses_it(dynamic, config):
    field = "base" if config.variant == "transfer" else "from_model"
    with pytest.raises(ModelError) as info:
        build_model(config.replace(**{field: str(dynamic)}))
    assert str(info.value) == f"{dynamic}: {PROBLEM}"


def test_a_checkpoint_of_it_is_not_resumed(tmp_path):
    model = dynamic_model()
    model.compile("rmsprop", "binary_crossentropy")
    path = tmp_path / "epoch-0001.keras"
    model.save(path)
    checkpoint = Checkpoint(tmp_path, path, RunConfig(), 1, 1, {}, ("deer", "horse"))
    with pytest.raises(ModelError) as info:
        load_checkpoint_model(checkpoint)
    assert str(info.value) == f"{path}: {PROBLEM}"

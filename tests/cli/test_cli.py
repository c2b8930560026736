"""The headless command line: train, evaluate, predict, data, and its bad-input errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from cifar_gui.cli import main
from cifar_gui.config import RunConfig
from cifar_gui.engine.models.build import build_baseline
from cifar_gui.engine.models.persistence import save_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained by `cifar-gui train` on tiny synthetic data."""
    from tests.conftest import write_cifar_batches

    root = tmp_path_factory.mktemp("cli")
    data = write_cifar_batches(root / "cifar-10-batches-py")
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--limit",
            "16",
            "--out",
            str(root / "out"),
        ]
    )
    assert code == 0
    return data, root / "out" / "cifar10_4_7.h5"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_train_saves_with_the_seed_name(trained, capsys):
    _, model = trained
    assert model.is_file() and model.with_suffix(".json").is_file()
    assert json.loads(model.with_suffix(".json").read_text())["train_images"] == 16


def test_evaluate_prints_accuracy_and_confusion(trained, capsys):
    data, model = trained
    assert main(["evaluate", str(model), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"test accuracy \d+\.\d%", out) and "deer" in out and "horse" in out


def test_a_command_prints_no_tensorflow_start_up_lines_unless_verbose(trained):
    data, model = trained
    command = [sys.executable, "-m", "cifar_gui", "evaluate", str(model), "--data", str(data)]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert quiet.stderr == "" and "test accuracy" in quiet.stdout
    loud = subprocess.run([*command, "--verbose"], capture_output=True, text=True, env=env)
    assert loud.returncode == 0 and "test accuracy" in loud.stdout


def test_predict_json(trained, tmp_path, capsys):
    _, model = trained
    for name in ("a.png", "b.jpg"):
        Image.new("RGB", (50, 40), "green").save(tmp_path / name)
    assert (
        main(["predict", str(model), str(tmp_path / "a.png"), str(tmp_path / "b.jpg"), "--json"])
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["image"] for line in lines] == [str(tmp_path / "a.png"), str(tmp_path / "b.jpg")]
    for line in lines:
        assert set(line["probabilities"]) == {"deer", "horse"}
        assert sum(line["probabilities"].values()) == pytest.approx(1.0)
        assert line["class"] in ("deer", "horse")


def test_data_prints_the_counts_table(batches_dir, capsys):
    assert main(["data", "--data", str(batches_dir)]) == 0
    out = capsys.readouterr().out
    assert "deer" in out and "   10" in out


def _not_a_model(tmp_path):
    path = tmp_path / "fake.h5"
    path.write_text("not a model")
    return path


def _truncated_model(tmp_path):
    path = save_model(build_baseline(), tmp_path / "cut.h5", None)
    path.write_bytes(path.read_bytes()[:5000])
    return path


def _dense_model(tmp_path):
    import keras

    path = tmp_path / "dense.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]).save(path)
    return path


@pytest.mark.parametrize(
    "argv, message",
    [
        (lambda t, d: ["train", "--data", str(t / "nowhere")], "nowhere: no such file or folder"),
        (
            lambda t, d: [
                "train",
                "--data",
                str((t / "x.tar.gz").write_bytes(b"junk") and t / "x.tar.gz"),
            ],
            "not a readable CIFAR-10 archive",
        ),
        (
            lambda t, d: ["train", "--data", str(d), "--classes", "deer", "zebra"],
            "unknown class 'zebra': choose from airplane",
        ),
        (
            lambda t, d: [
                "train",
                "--data",
                str(d),
                "--out",
                str((t / "file").write_text("x") and t / "file" / "out"),
            ],
            "file: is a file, not a folder",
        ),
        (
            lambda t, d: ["predict", str(_not_a_model(t)), str(d / "batches.meta")],
            "fake.h5: not a loadable Keras model",
        ),
        (
            lambda t, d: ["evaluate", str(_truncated_model(t)), "--data", str(d)],
            "cut.h5: not a loadable Keras model",
        ),
        (lambda t, d: ["predict", str(_dense_model(t)), "x.png"], "is not an image"),
        (lambda t, d: ["train", "--variant", "finetune", "--data", str(d)], "--from MODEL"),
        (lambda t, d: ["train", "--epochs", "0", "--data", str(d)], "epochs"),
    ],
    ids=[
        "missing-data",
        "corrupt-archive",
        "unknown-class",
        "unwritable-out",
        "not-a-model",
        "truncated-model",
        "not-image-input",
        "finetune-without-from",
        "zero-epochs",
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, batches_dir, capsys, argv, message):
    assert main(argv(tmp_path, batches_dir)) == 2
    assert message in one_error_line(capsys)


def test_predict_a_text_file_names_it(trained, tmp_path, capsys):
    _, model = trained
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["predict", str(model), str(text)]) == 2
    assert one_error_line(capsys) == f"error: {text}: not an image file"


def test_train_defaults_are_run_configs():
    from cifar_gui.cli import build_parser, config_from_args

    assert config_from_args(build_parser().parse_args(["train"]), "train") == RunConfig()


SPEED = [
    "--no-feature-cache", "--matmul-conv", "off", "--no-fused-optimizer",
    "--precision", "float32", "--steps-per-execution", "5", "--threads", "2",
]  # fmt: skip


def test_the_speed_flags_reach_the_config():
    from cifar_gui.cli import build_parser, config_from_args

    config = config_from_args(build_parser().parse_args(["train", *SPEED]), "train")
    assert config == RunConfig(
        feature_cache=False, matmul_convolutions="off", fused_optimizer=False,
        precision="float32", steps_per_execution=5, threads=2,
    )  # fmt: skip

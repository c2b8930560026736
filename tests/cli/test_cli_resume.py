"""`cifar-gui train --resume RUN_DIR` and `--strategy` on the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cifar_gui.cli import main
from cifar_gui.engine.training.checkpoints import read_checkpoint
from tests.conftest import write_cifar_batches

TRAIN = ["train", "--batch-size", "4", "--seed", "3", "--augment", "on"]


def sidecar(out) -> dict:
    return json.loads((out / "cifar10_4_7.json").read_text())


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same tiny run, 3 epochs straight and 2 epochs then resumed to 3."""
    root = tmp_path_factory.mktemp("resume")
    data = str(write_cifar_batches(root / "cifar-10-batches-py"))
    assert main([*TRAIN, "--data", data, "--epochs", "3", "--out", str(root / "straight")]) == 0
    assert main([*TRAIN, "--data", data, "--epochs", "2", "--out", str(root / "split")]) == 0
    return data, root


def test_resume_continues_to_the_new_total(runs, capsys):
    _, root = runs
    capsys.readouterr()
    assert main(["train", "--resume", str(root / "split"), "--epochs", "3"]) == 0
    captured = capsys.readouterr()
    assert "at epoch 3 of 3" in captured.err
    assert f"saved {root / 'split' / 'cifar10_4_7.h5'}" in captured.out
    straight, resumed = sidecar(root / "straight"), sidecar(root / "split")
    assert resumed["resumed_from_epoch"] == 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(resumed["history"][key], straight["history"][key], rtol=1e-5)
    assert read_checkpoint(root / "split").finished


def test_resume_of_a_checkpoint_folder_and_finished_run(runs, capsys):
    _, root = runs
    folder = root / "straight" / "checkpoints" / "cifar10_4_7"
    assert main(["train", "--resume", str(folder)]) == 2
    assert "all 3 epochs are done; ask for more epochs" in one_error_line(capsys)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--variant", "augmented"], "--variant cannot change"),
        (["--seed", "1", "--batch-size", "8"], "--batch-size, --seed cannot change"),
        (["--epochs", "0"], "epochs must be from 1 to 1,000,000 (got 0)"),
    ],
)
def test_resume_refuses_changes_to_the_run(runs, capsys, extra, message):
    _, root = runs
    assert main(["train", "--resume", str(root / "straight"), *extra]) == 2
    assert message in one_error_line(capsys)


def test_resume_of_nothing_is_one_line(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in one_error_line(capsys)
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "no checkpoint to resume" in one_error_line(capsys)


def test_strategy_option_is_recorded_and_no_checkpoint_is_honoured(runs, tmp_path, capsys):
    data, _ = runs
    out = tmp_path / "mirrored"
    args = ["train", "--data", data, "--epochs", "1", "--limit", "8", "--out", str(out)]
    assert main([*args, "--strategy", "mirrored", "--no-checkpoint"]) == 0
    meta = sidecar(out)
    assert meta["config"]["strategy"] == "mirrored"
    assert meta["strategy"].startswith("mirrored over 1 device")
    assert not (out / "checkpoints").exists()
    with pytest.raises(SystemExit):
        main([*args, "--strategy", "sideways"])

"""Bad numbers and failed writes on the command line: one `error:` line, exit 2, and nothing
already saved is lost (issue 12, sections 2 and 4)."""

from __future__ import annotations

import errno
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cifar_gui.cli import build_parser, main
from cifar_gui.config import RunConfig
from cifar_gui.engine.training import checkpoints as checkpoints_module
from cifar_gui.engine.training.checkpoints import STATE_FILE, read_checkpoint
from tests.conftest import write_cifar_batches

TRAIN = ["train", "--batch-size", "8", "--limit", "16", "--seed", "1"]
CHECKPOINT = Path("checkpoints") / "cifar10_4_7"


def one_error_line(capsys) -> str:
    """The one `error:` line, last on stderr (a resumed run announces itself first)."""
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err + captured.out
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and errors == err[-1:], err
    return errors[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    return str(write_cifar_batches(tmp_path_factory.mktemp("safety") / "cifar-10-batches-py"))


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory) -> Path:
    """A finished one-epoch run: model, sidecar and its checkpoint (copy it before changing)."""
    out = tmp_path_factory.mktemp("finished")
    assert main([*TRAIN, "--data", data, "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


# Numbers that were accepted (and trained a broken model, or ended in a traceback). The data
# path does not exist: before the numbers were checked first, that was the error reported.
NUMBERS = [
    (["--lr", "-1"], "learning rate must be a number from 0 to 1 (got -1.0)"),
    (["--lr", "nan"], "learning rate must be a number"),
    (["--lr", "inf"], "learning rate must be a number"),
    (["--lr", "0"], "learning rate must be above 0 (got 0.0)"),
    (["--lr", "5"], "learning rate must be a number from 0 to 1"),
    (["--seed", "-1"], "seed must be from 0 to 4,294,967,295 (got -1)"),
    (["--seed", str(2**64)], "seed must be from 0"),
    (["--threads", "2147483648"], "threads must be from 0 to 4,096"),
    (["--threads", "-1"], "threads must be from 0"),
    (["--batch-size", str(10**12)], "batch size must be from 1 to 65,536"),
    (["--batch-size", "0"], "batch size must be from 1"),
    (["--epochs", str(10**9)], "epochs must be from 1 to 1,000,000"),
    (["--limit", "0"], "limit must be at least 1 (got 0)"),
    (["--limit", "-3"], "limit must be at least 1 (got -3)"),
    (["--limit", str(10**12)], "limit must be from 1 to"),
    (["--steps-per-execution", str(10**9)], "steps per execution must be from 1 to 100,000"),
]


@pytest.mark.parametrize(("extra", "message"), NUMBERS, ids=[" ".join(a) for a, _ in NUMBERS])
def test_bad_numbers_are_refused_first(tmp_path, capsys, extra, message):
    argv = ["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), *extra]
    assert main(argv) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_superscript_digit_is_no_number_of_steps():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--steps-per-execution", "\u00b2"])


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("-5", "--limit must be at least 1 (got -5)"),
        ("0", "--limit must be at least 1 (got 0)"),
        ("1", "--limit 1 leaves some of the 2 classes without a test image: give at least 2"),
    ],
)
def test_evaluate_limit_is_checked(finished, data, capsys, limit, message):
    assert (
        main(["evaluate", str(finished / "cifar10_4_7.h5"), "--data", data, "--limit", limit]) == 2
    )
    line = one_error_line(capsys)
    assert message in line and "training" not in line


def test_evaluate_limit_counts_test_images(finished, data, capsys):
    assert main(["evaluate", str(finished / "cifar10_4_7.h5"), "--data", data, "--limit", "6"]) == 0
    assert "6 test images" in capsys.readouterr().out


def test_help_says_how_names_and_indices_are_told_apart(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a name that matches a class is that class; otherwise a whole number" in text


def _trained_rate(out: Path) -> float:
    """The learning rate of the optimizer the run trained with (its checkpoint keeps it)."""
    import keras

    model = keras.saving.load_model(out / CHECKPOINT / "epoch-0001.keras")
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


@pytest.mark.parametrize("zero", ["0", "0.0", "-0"])
def test_lr_zero_is_not_silently_the_default(tmp_path, data, capsys, zero):
    """--lr 0 is refused, never trained with the seed's rate in its place (as ``args.lr or
    default`` would); an explicit rate is the rate trained with and recorded; none given:
    the seed's, recorded as none."""
    out = tmp_path / "out"
    argv = [*TRAIN, "--data", data, "--epochs", "1", "--out", str(out), "--overwrite"]
    assert main([*argv, "--lr", zero]) == 2
    assert one_error_line(capsys) == f"error: learning rate must be above 0 (got {float(zero)})"
    assert not out.exists()
    assert main([*argv, "--lr", "0.001"]) == 0
    assert json.loads((out / "cifar10_4_7.json").read_text())["config"]["learning_rate"] == 0.001
    assert _trained_rate(out) == pytest.approx(0.001)
    assert main(argv) == 0
    assert json.loads((out / "cifar10_4_7.json").read_text())["config"]["learning_rate"] is None
    assert _trained_rate(out) == pytest.approx(RunConfig().lr) and RunConfig().lr != 0.001


@pytest.mark.parametrize(
    ("env", "extra", "message"),
    [
        ("{bad", ["--strategy", "multi-worker"], "TF_CONFIG is not a valid cluster description"),
        ('{"cluster": 3}', ["--strategy", "multi-worker"], "TF_CONFIG"),
        (None, ["--seed", "-1"], "seed must be from 0"),
        (None, ["--classes", "deer", "unicorn"], "unknown class 'unicorn'"),
    ],
    ids=["tf-config-not-json", "tf-config-no-cluster", "seed-minus-1", "unknown-class"],
)
def test_a_run_that_fails_its_checks_keeps_the_previous_run(
    run_copy, data, capsys, monkeypatch, env, extra, message
):
    if env is not None:
        monkeypatch.setenv("TF_CONFIG", env)
    before = snapshot(run_copy)
    argv = [*TRAIN, "--data", data, "--epochs", "2", "--out", str(run_copy), "--overwrite"]
    assert main([*argv, *extra]) == 2
    assert message in one_error_line(capsys)
    assert snapshot(run_copy) == before


def test_a_model_that_cannot_be_built_keeps_the_previous_checkpoint(tmp_path, data, capsys):
    """The failure comes inside the run (the transfer base's weights file is missing): the
    previous checkpoint of the same name is only replaced once the model exists."""
    out = tmp_path / "out"
    args = [*TRAIN, "--data", data, "--variant", "transfer", "--epochs", "1", "--out", str(out)]
    args.append("--overwrite")  # the second run replaces the first, once it can
    assert main([*args, "--weights", "none"]) == 0
    capsys.readouterr()
    before = snapshot(out)
    assert main([*args, "--weights", str(tmp_path / "nope.h5")]) == 2
    assert "nope.h5: no such weights file" in one_error_line(capsys)
    assert snapshot(out) == before


def test_a_failing_strategy_is_one_line(run_copy, data, capsys, monkeypatch):
    """Whatever the strategy's creation raises (here a KeyError) is reported, not a traceback."""
    from cifar_gui.engine.training import run

    def broken(name):
        raise KeyError("task")

    monkeypatch.setattr(run, "make_strategy", broken)
    before = snapshot(run_copy)
    assert (
        main([*TRAIN, "--data", data, "--epochs", "1", "--out", str(run_copy), "--overwrite"]) == 2
    )
    assert "cannot start the default strategy ('task')" in one_error_line(capsys)
    assert snapshot(run_copy) == before


def _checkpoints_is_a_file(out: Path) -> None:
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").write_text("not a folder")


def _state_is_a_folder(out: Path) -> None:
    (out / CHECKPOINT / STATE_FILE).unlink()
    (out / CHECKPOINT / STATE_FILE).mkdir()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_checkpoints_is_a_file, "checkpoints: is a file, not a folder"),
        (_state_is_a_folder, "state.json: is a folder, not a file"),
    ],
    ids=["checkpoints-is-a-file", "state-json-is-a-folder"],
)
def test_checkpoint_paths_of_the_wrong_kind(run_copy, data, capsys, damage, message):
    damage(run_copy)
    before = snapshot(run_copy)
    assert (
        main([*TRAIN, "--data", data, "--epochs", "1", "--out", str(run_copy), "--overwrite"]) == 2
    )
    assert message in one_error_line(capsys)
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("out_exists", [False, True])
def test_a_name_too_long_for_the_file_system(tmp_path, capsys, out_exists):
    """120 classes make a model name of more than 255 bytes."""
    folder = tmp_path / "many"
    folder.mkdir()
    x = np.zeros((240, 3072), np.uint8)
    labels = [i % 120 for i in range(240)]
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x, b"labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(120)]}, f)
    out = tmp_path / "out"
    if out_exists:
        out.mkdir()
    classes = [str(i) for i in range(120)]
    assert main(["train", "--data", str(folder), "--classes", *classes, "--out", str(out)]) == 2
    assert "name too long" in one_error_line(capsys).lower()
    assert out.exists() == out_exists and not (out_exists and any(out.iterdir()))


@pytest.fixture
def resumable(data, tmp_path) -> Path:
    """A run stopped after 1 of 2 epochs (trained to 1, resumed to 2 below)."""
    out = tmp_path / "run"
    assert main([*TRAIN, "--data", data, "--epochs", "1", "--out", str(out)]) == 0
    (out / "cifar10_4_7.h5").unlink()
    (out / "cifar10_4_7.json").unlink()
    return out


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_writing_the_checkpoint_model(resumable, capsys, monkeypatch):
    import keras

    before = snapshot(resumable)
    monkeypatch.setattr(keras.Model, "save", _no_space)
    assert main(["train", "--resume", str(resumable), "--epochs", "2"]) == 2
    line = one_error_line(capsys)
    assert "epoch-0002.keras: cannot write the checkpoint (No space left on device)" in line
    assert snapshot(resumable) == before
    assert read_checkpoint(resumable).epochs_completed == 1


def test_disk_full_while_writing_the_checkpoint_state(resumable, capsys, monkeypatch):
    before = snapshot(resumable)
    monkeypatch.setattr(checkpoints_module, "write_json", _no_space)
    assert main(["train", "--resume", str(resumable), "--epochs", "2"]) == 2
    line = one_error_line(capsys)
    assert "state.json: cannot write the checkpoint (No space left on device)" in line
    assert snapshot(resumable) == before  # the new epoch file, named by no state, is gone


def test_file_size_limit_while_writing_the_checkpoint(resumable):
    """RLIMIT_FSIZE of 1 MiB: the epoch file (several MB) cannot be written (EFBIG)."""
    before = snapshot(resumable)
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20)); "
        "from cifar_gui.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "train", "--resume", str(resumable), "--epochs", "2"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "epoch-0002.keras: cannot write the checkpoint (File too large)" in errors[0]
    assert snapshot(resumable) == before


def _h5py_no_space(filepath, *args, **kwargs) -> None:
    """What h5py raises when the disk fills under an HDF5 write (its exact form, here with
    ENOSPC): the message spans lines and hides the cause among addresses."""
    Path(filepath).write_bytes(b"half a model")
    raise OSError(
        errno.ENOSPC,
        "Can't close file (file write failed: time = Fri Dec  4 18:35:24 2026\n, filename = "
        f"'{filepath}', file descriptor = 3, errno = 28, error message = 'No space left on "
        "device', buf = 0x5614a69fd570, total write size = 6144, bytes this sub-write = 6144, "
        "offset = 4096)",
    )


@pytest.mark.parametrize(
    ("target", "patch", "message"),
    [
        ("model", "save", "cifar10_4_7.h5: cannot write (No space left on device)"),
        ("sidecar", "write_json", "cifar10_4_7.json: cannot write (No space left on device)"),
    ],
)
def test_disk_full_without_checkpoint_is_one_line(
    run_copy, data, capsys, monkeypatch, target, patch, message
):
    """--no-checkpoint: the final save is the only one; the previous run's files stay."""
    import keras

    from cifar_gui.engine.models import persistence

    before = snapshot(run_copy)
    if patch == "save":
        monkeypatch.setattr(keras.Model, "save", lambda self, path, *a, **k: _h5py_no_space(path))
    else:
        monkeypatch.setattr(persistence, "write_json", _no_space)
    argv = [*TRAIN, "--data", data, "--epochs", "1", "--no-checkpoint", "--out", str(run_copy)]
    argv.append("--overwrite")
    assert main(argv) == 2
    assert one_error_line(capsys) == f"error: {run_copy / message}"
    assert snapshot(run_copy) == before


def test_disk_full_while_keeping_the_best_weights(tmp_path, data, capsys, monkeypatch):
    import keras

    monkeypatch.setattr(
        keras.Model, "save_weights", lambda self, path, *a, **k: _h5py_no_space(path)
    )
    out = tmp_path / "run"
    argv = [*TRAIN, "--data", data, "--epochs", "1", "--keep-best", "--out", str(out)]
    assert main(argv) == 2
    assert one_error_line(capsys) == (
        f"error: {out / CHECKPOINT / 'best.weights.h5'}: cannot write the best epoch's weights "
        "(No space left on device)"
    )
    assert not any(p.name.startswith(".") for p in out.rglob("*")), "a temporary file is left"


def test_file_size_limit_while_writing_the_final_model(run_copy, data):
    """A real HDF5 write failure (RLIMIT_FSIZE of 1 MiB: EFBIG), with --no-checkpoint: one
    line naming the model and the cause, no HDF5 message, the previous model intact."""
    before = snapshot(run_copy)
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20)); "
        "from cifar_gui.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = [*TRAIN, "--data", data, "--epochs", "1", "--no-checkpoint", "--out", str(run_copy)]
    argv.append("--overwrite")
    result = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "HDF5" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {run_copy / 'cifar10_4_7.h5'}: cannot write (File too large)"]
    assert result.stderr.rstrip().endswith(errors[0]), result.stderr[-2000:]
    assert snapshot(run_copy) == before


def test_disk_full_while_writing_a_report_is_one_line(finished, tmp_path, capsys, monkeypatch):
    """A write that no caller names (the report's page): one line naming its file, the
    previous page intact."""
    out = tmp_path / "report"
    assert main(["report", str(finished / "cifar10_4_7.h5"), "--out", str(out)]) == 0
    before = (out / "report.html").read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(Path, "write_text", _no_space)
    assert main(["report", str(finished / "cifar10_4_7.h5"), "--out", str(out)]) == 2
    assert one_error_line(capsys) == f"error: {out / 'report.html'}: No space left on device"
    assert (out / "report.html").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

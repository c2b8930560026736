"""`cifar-gui export MODEL --format FORMAT --out DIR`: what it prints and writes, and its bad
input as one `error:` line with exit code 2 and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from cifar_gui import resources
from cifar_gui.cli import main
from cifar_gui.engine.models.export import unavailable_reason

MODEL = str(resources.default_model_path())


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_export_writes_the_model_and_its_card(tmp_path, capsys, fmt):
    if unavailable_reason(fmt):
        pytest.skip(unavailable_reason(fmt))
    out = tmp_path / "exports" / "baseline"  # its parent is made too
    assert main(["export", MODEL, "--format", fmt, "--out", str(out)]) == 0
    artifact = out / f"model.{fmt}"
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f"exported {artifact} (")
    assert printed.endswith(f"model card {out / 'README.md'}")
    size = artifact.stat().st_size
    assert f"({size:,} bytes, " in printed
    card = (out / "README.md").read_text()
    assert f"`cifar-gui export {MODEL} --format {fmt} --out {out}`" in card
    assert listing(out) == sorted(["README.md", f"model.{fmt}"])


def _existing_file(root: Path) -> Path:
    (root / "taken").write_text("x")
    return root / "taken"


def _folder_with_files(root: Path) -> Path:
    (root / "full").mkdir()
    (root / "full" / "a.txt").write_text("x")
    return root / "full"


def _folder_under_a_file(root: Path) -> Path:
    (root / "file").write_text("x")
    return root / "file" / "out"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (_existing_file, "taken: is a file, not a folder"),
        (_folder_with_files, "full: folder is not empty (export into a new or an empty folder)"),
        (_folder_under_a_file, "file: is a file, not a folder (needed for"),
    ],
    ids=["existing-file", "folder-with-files", "folder-under-a-file"],
)
def test_a_bad_target_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, target, message):
    out = target(tmp_path)
    before = listing(tmp_path)
    assert main(["export", MODEL, "--format", "tflite", "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {tmp_path}") and message in line
    assert listing(tmp_path) == before


def test_a_file_that_is_no_model_is_one_line(tmp_path, capsys):
    fake = tmp_path / "fake.h5"
    fake.write_text("not a model")
    assert main(["export", str(fake), "--format", "savedmodel", "--out", str(tmp_path / "o")]) == 2
    assert one_error_line(capsys).startswith(f"error: {fake}: not a loadable Keras model")
    assert listing(tmp_path) == ["fake.h5"]


def test_an_unknown_format_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", MODEL, "--format", "coreml", "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2
    assert "invalid choice: 'coreml'" in capsys.readouterr().err
    assert listing(tmp_path) == []


def test_the_app_routes_export_to_the_command_line(tmp_path):
    from cifar_gui.app import main as app_main

    with pytest.raises(SystemExit) as exit_:
        app_main(["export", str(tmp_path / "none.h5"), "--format", "onnx", "--out", "o"])
    assert exit_.value.code == 2  # the command line's error, not the window

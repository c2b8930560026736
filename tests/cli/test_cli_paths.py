"""File names whose bytes are not UTF-8, on a strict UTF-8 output (``PYTHONIOENCODING=utf-8``):
every command prints them as ``\\xNN`` and ends with its usual line, never a
``UnicodeEncodeError`` traceback (issue 27)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cifar_gui.engine.errors import UserError, shown
from cifar_gui.engine.models.persistence import save_model
from cifar_gui.engine.record import RunRecord
from tests.conftest import write_cifar_batches
from tests.engine.test_fuzz_inputs import tiny_model

ROOT = Path(__file__).resolve().parents[2]
# Every command in one child (one TensorFlow start), its arguments as Python decodes a
# command line (os.fsdecode: surrogates; JSON keeps them); a crash is printed, not raised.
CHILD = """
import json, sys, traceback
from cifar_gui.cli import main
for argv in json.loads(sys.argv[1]):
    try:
        code = main(argv)
    except BaseException as exc:
        traceback.print_exc()
        code = f"crash {type(exc).__name__}"
    for stream in (sys.stdout, sys.stderr):
        print(f"=== {code}", file=stream, flush=True)
"""


def odd(folder: Path, stem: bytes, suffix: str = "") -> Path:
    """A path under ``folder`` whose name holds ``stem``, bytes that are not UTF-8."""
    return folder / (os.fsdecode(stem) + suffix)


def test_shown_turns_undecodable_bytes_into_escapes():
    assert shown(os.fsdecode(b"/tmp/caf\xe9.png")) == "/tmp/caf\\xe9.png"
    assert shown("/tmp/café.png") == "/tmp/café.png"
    assert shown(b"/tmp/\xff") == "/tmp/\\xff"
    assert shown("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    name = os.fsdecode(b"/x/\xff.png")
    message = str(UserError(f"{name}: not an image file"))
    assert message == "/x/\\xff.png: not an image file"
    message.encode("utf-8")  # printable on any UTF-8 stream


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Runs commands in a child with strict UTF-8 output; (code, stdout, stderr) of each."""
    top = tmp_path_factory.mktemp("paths")
    folder = odd(top, b"d\xe9j\xe0")
    folder.mkdir()
    paths = {
        "folder": folder,
        "data": write_cifar_batches(folder / "cifar-10-batches-py"),
        "model": odd(folder, b"mod\xe8le", ".h5"),
        "image": odd(folder, b"ch\xe8vre", ".png"),
        "broken": odd(folder, b"cass\xe9", ".png"),
        "missing": odd(folder, b"absent\xff", ".h5"),
    }
    save_model(tiny_model(), paths["model"], RunRecord(class_names=("deer", "horse")))
    Image.new("RGB", (32, 32), "red").save(paths["image"])
    paths["broken"].write_bytes(b"not an image")

    def run(*commands: list[str]) -> list[tuple[str, str, str]]:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps([[str(a) for a in c] for c in commands])],
            capture_output=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(ROOT)},
            check=False,
        )
        out, err = (result.stdout.decode("utf-8"), result.stderr.decode("utf-8"))
        assert result.returncode == 0, err[-3000:]
        parts = [s.split("=== ") for s in (out, err)]
        codes = [p.split("\n", 1)[0] for p in parts[0][1:]]
        outs = [parts[0][0]] + [p.split("\n", 1)[1] for p in parts[0][1:-1]]
        errs = [parts[1][0]] + [p.split("\n", 1)[1] for p in parts[1][1:-1]]
        return list(zip(codes, outs, errs, strict=True))

    return run, {k: shown(v) for k, v in paths.items()}, paths


def test_every_command_prints_undecodable_names(run):
    run, show, p = run
    results = run(
        ["predict", p["model"], p["image"]],
        ["predict", p["model"], p["broken"]],
        ["predict", p["missing"], p["image"]],
        ["data", "--data", p["data"]],
        ["data", "--data", p["folder"] / "nowhere"],
        ["evaluate", p["model"], "--data", p["data"]],
        ["train", "--data", p["data"], "--epochs", "1", "--limit", "16", "--out", p["folder"]],
        ["report", p["folder"] / "cifar10_4_7.h5", "--out", p["folder"] / "report"],
    )
    for code, out, err in results:
        assert not code.startswith("crash"), (code, out, err)
        assert "Traceback" not in err, err[-3000:]
    predicted, broken, missing, counted, nowhere, evaluated, trained, reported = results
    assert predicted[0] == "0" and predicted[1].startswith(f"{show['image']}: ")
    assert broken[0] == "2" and broken[2] == f"error: {show['broken']}: not an image file\n"
    assert missing[2] == f"error: {show['missing']}: no such model file\n"
    assert counted[0] == "0" and counted[1].startswith(f"source {show['data']}\n")
    assert nowhere[2] == f"error: {show['folder']}/nowhere: no such file or folder\n"
    assert evaluated[0] == "0" and evaluated[1].startswith(f"model {show['model']}\n")
    assert trained[0] == "0" and trained[1].startswith(f"saved {show['folder']}/cifar10_4_7.h5")
    assert reported[0] == "0" and reported[1] == f"report {show['folder']}/report/report.html\n"
    assert "\\xe9" in show["folder"]

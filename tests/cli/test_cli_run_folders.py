"""No run replaces another unasked (issue 25): each `train` without --out gets a run folder of
its own under runs/; an explicit --out that holds this run's model is refused unless
--overwrite is given."""

from __future__ import annotations

import json
import re

import pytest

from cifar_gui.cli import main
from tests.conftest import write_cifar_batches

TINY = ["--batch-size", "8", "--limit", "16", "--epochs", "1", "--no-checkpoint"]


@pytest.fixture
def data(tmp_path) -> str:
    return str(write_cifar_batches(tmp_path / "cifar-10-batches-py"))


def test_two_runs_into_the_default_root_keep_both_models(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for seed in ("1", "2"):
        assert main(["train", "--data", data, *TINY, "--seed", seed]) == 0
    models = sorted((tmp_path / "runs").glob("*/cifar10_4_7.h5"))
    assert len(models) == 2
    seeds = [json.loads(m.with_suffix(".json").read_text())["config"]["seed"] for m in models]
    assert sorted(seeds) == [1, 2]
    # The sidecar's config names the run's own folder: resume and the table find it there.
    for model in models:
        sidecar = json.loads(model.with_suffix(".json").read_text())
        assert sidecar["config"]["out_dir"] == str(model.parent.relative_to(tmp_path))
        # Two runs in the same second (a fast machine) tell their folders apart by a number.
        assert re.fullmatch(r"\d{8}-\d{6}-baseline-deer-horse(-\d+)?", model.parent.name)
    captured = capsys.readouterr()
    for model in models:  # where each run goes, as it starts, and what it saved
        assert f"saving in {model.parent.relative_to(tmp_path)}" in captured.err
        assert f"saved {model.relative_to(tmp_path)}" in captured.out


def test_an_explicit_out_holding_the_model_is_refused_unless_overwrite(data, tmp_path, capsys):
    out = tmp_path / "mine"
    args = ["train", "--data", data, *TINY, "--out", str(out)]
    assert main([*args, "--seed", "1"]) == 0
    model = out / "cifar10_4_7.h5"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()

    assert main([*args, "--seed", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {model}: a model of this run is saved here already; give --overwrite to "
        "replace it, or leave out --out for a new run folder"
    ]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    assert main([*args, "--seed", "2", "--overwrite"]) == 0
    assert json.loads(model.with_suffix(".json").read_text())["config"]["seed"] == 2
    assert model.read_bytes() != before[model]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--classes", "deer", "unicorn"], "unknown class 'unicorn'"),  # once the data loads
        (["--variant", "finetune"], "give --from MODEL"),  # before the plan
    ],
    ids=["unknown-class", "finetune-without-from"],
)
def test_a_run_refused_by_its_checks_leaves_no_run_folder(
    data, tmp_path, monkeypatch, capsys, extra, message
):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", data, *TINY, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert list((tmp_path / "runs").glob("*")) == []


def test_overwrite_is_for_a_new_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--overwrite"]) == 2
    assert "--overwrite is for a new run" in capsys.readouterr().err

"""`cifar-gui study` and `cifar-gui report` on the command line."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from cifar_gui.cli import build_parser, main
from cifar_gui.config import SETTINGS, RunConfig, flagged
from cifar_gui.engine.study import base as study_base
from cifar_gui.engine.study import plan as study
from tests.cli.test_cli_resume import one_error_line
from tests.conftest import write_cifar_batches
from tests.engine.test_report import check_embedded_pngs, parse


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Path]:
    """Two one-epoch runs (baseline, augmented) saved by `train`, and their data."""
    root = tmp_path_factory.mktemp("saved")
    data = write_cifar_batches(root / "batches", per_batch=20, test=60)
    for variant in ("baseline", "augmented"):
        args = ["train", "--variant", variant, "--epochs", "1", "--batch-size", "8"]
        assert main([*args, "--data", str(data), "--out", str(root / "runs")]) == 0
    return root, data


def test_report_on_saved_models_writes_a_self_contained_page(saved, tmp_path, capsys):
    root, _ = saved
    runs = root / "runs"
    out = tmp_path / "rep"
    assert main(["report", str(runs / "cifar10_4_7.h5"), str(runs / "cifar10_4_7_augm.h5"),
                 "--out", str(out)]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == f"report {out / 'report.html'}"
    page = parse(out / "report.html")
    check_embedded_pngs(page)
    names = {p.name for p in out.glob("*.png")}
    assert {"confusion_baseline.png", "mistakes_augmented.png", "activations_baseline.png"} <= (
        names
    )
    text = (out / "report.html").read_text()
    assert f"cifar-gui report {runs / 'cifar10_4_7.h5'}" in text
    # A run folder stands for all its runs.
    assert main(["report", str(runs), "--out", str(tmp_path / "rep2")]) == 0
    assert len(list((tmp_path / "rep2").glob("history_*.png"))) == 2


def test_report_of_a_path_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing.h5")]) == 2
    assert "no such model or run folder" in one_error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no saved runs" in one_error_line(capsys)


def test_study_dry_run_offline_lists_every_step_with_its_base_and_writes_nothing(
    saved, tmp_path, capsys, monkeypatch
):
    """Offline, the plan pretrains a base first; --dry-run calibrates each kind of run on
    random images (two tiny epochs) and prints the steps and the total, then exits."""
    _, data = saved
    monkeypatch.setattr(study_base, "weights_host_reachable", lambda timeout=0: False)
    monkeypatch.chdir(tmp_path)
    args = ["study", "--data", str(data), "--out", str(tmp_path / "s"), "--epochs", "2"]
    args += ["--batch-size", "8", "--seeds", "2", "--base-epochs", "3", "--dry-run"]
    before = sorted(tmp_path.rglob("*"))
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "ImageNet weights unavailable offline" in captured.err
    assert "WARNING" not in captured.err  # the calibration's expected retracing is not news
    lines = captured.out.strip().splitlines()
    assert lines[0] == f"study {tmp_path / 's'}:"
    steps = [line.strip() for line in lines[1:-1]]
    assert len(steps) == 9  # the base, then 2 seeds of 4 runs
    assert steps[0].startswith("1. pretrain the base (cnn, 8 classes): 3 epochs")
    variants = ["baseline", "augmented", "transfer", "finetune"]
    expected = [f"{v} (seed {s})" for s in (0, 1) for v in variants]
    assert [line.split(". ", 1)[1].split(":")[0].split(", base")[0] for line in steps[1:]] == (
        expected
    )
    base = "base cifar10_0_1_2_3_5_6_8_9_pretrainedbase.h5 (pretrained in step 1)"
    assert all((base in line) == ("transfer" in line or "finetune" in line) for line in steps)
    assert all("(calibrated)" in line for line in steps)
    assert lines[-1].strip().startswith("total: 0:")
    assert sorted(tmp_path.rglob("*")) == before  # nothing written
    # The flags of a new study cannot come with --resume.
    assert main(["study", "--resume", str(tmp_path), "--seeds", "2"]) == 2
    assert "--seeds cannot change" in one_error_line(capsys)


def test_study_resume_keeps_the_recorded_settings(tmp_path, capsys):
    assert main(["study", "--resume", str(tmp_path), "--epochs", "3"]) == 2
    assert "--epochs cannot change" in one_error_line(capsys)
    assert main(["study", "--resume", str(tmp_path)]) == 2
    assert "no study to resume" in one_error_line(capsys)
    assert main(["study", "--epochs", "0", "--weights", "none", "--out", str(tmp_path)]) == 2
    assert "epochs" in one_error_line(capsys)


def other_value(name: str, default: Any, command: str = "study") -> Any:
    """A value of the setting ``name`` other than ``default`` that its flag can give."""
    flag = SETTINGS[name].flag
    choices = flag.choices_for(command)
    if choices:
        return next(v for v in map(flag.value_of, choices) if v != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, tuple):
        return ("cat", "dog")
    if flag.kind is not str:
        return flag.kind("1")
    return "elsewhere"


# Every setting a study can carry: a study started from the window (issue 23) records one
# with the form's values, and its command must run the same study.
@pytest.mark.parametrize("name", list(flagged("study")))
def test_the_recorded_command_parses_back_to_the_study(tmp_path, name):
    folder = (tmp_path / "study").absolute()
    value = str(folder) if name == "out_dir" else other_value(name, getattr(RunConfig(), name))
    template = RunConfig().replace(**{name: value}).replace(out_dir=str(folder))
    plan = study.StudyPlan(folder, template)
    words = shlex.split(study.study_command(plan))
    assert words[:2] == ["cifar-gui", "study"]
    args = build_parser().parse_args(words[1:])  # exits on a flag `study` does not take
    from cifar_gui.cli import config_from_args

    assert config_from_args(args, "study") == plan.template


def test_every_setting_of_the_form_reaches_the_study_command():
    # A study sets these per run (StudyPlan.config_for) and takes the seed's augmentation.
    per_run = {"variant", "learning_rate", "use_augmentation", "from_model", "augment"}
    window = {name for name, s in SETTINGS.items() if s.shown not in ("", "pretrain")}
    assert window - per_run <= set(flagged("study"))


@pytest.mark.slow
def test_study_runs_the_four_variants_and_reports(saved, tmp_path, capsys):
    _, data = saved
    out = tmp_path / "study"
    args = ["study", "--data", str(data), "--epochs", "1", "--weights", "none"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    report = out / "report" / "report.html"
    assert printed.out.strip() == f"study done: {out}; report {report}"
    assert "run 4 of 4: finetune" in printed.err
    assert "done already" not in printed.err  # a new study trains every run
    assert any(line.startswith("epoch 1/1: loss") for line in printed.err.splitlines())
    record = json.loads((out / "study.json").read_text())
    assert [r["state"] for r in record["runs"]] == ["done"] * 4
    assert RunConfig.from_dict(record["config"]).weights == "none"
    models = {p.name: p.read_bytes() for p in out.glob("*.h5")}
    assert len(models) == 4
    # Resuming a finished study trains nothing and writes the report again.
    report.unlink()
    assert main(["study", "--resume", str(out)]) == 0
    resumed = capsys.readouterr()  # the resume's own output, not the first run's
    assert resumed.out.strip() == f"study done: {out}; report {report}"
    lines = resumed.err.splitlines()
    assert [line for line in lines if "done already" in line] == [
        f"run {i} of 4: {v} done already"
        for i, v in enumerate(("baseline", "augmented", "transfer", "finetune"), 1)
    ]
    assert not [line for line in lines if line.startswith("epoch ")], "a run trained again"
    assert report.is_file()
    assert {p.name: p.read_bytes() for p in out.glob("*.h5")} == models

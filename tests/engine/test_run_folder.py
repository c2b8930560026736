"""Run folders: the one naming rule, a new folder per run, the model a run would replace, and
the discovery of runs under a runs root (older flat runs, run folders, studies)."""

from __future__ import annotations

import json
import time

import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.run_folder import (
    model_replaced,
    new_run_folder,
    run_folder_name,
    safe_part,
)
from cifar_gui.engine.study.runs import discover_runs
from cifar_gui.engine.training.runner import RunExists, plan_run

NOON = time.mktime((2026, 12, 4, 21, 30, 12, 0, 0, -1))  # local time, as the names are


def test_a_run_folder_is_named_by_start_variant_and_classes():
    assert run_folder_name(RunConfig(), NOON) == "20261204-213012-baseline-deer-horse"
    config = RunConfig(variant="transfer", classes=("4", 7))
    assert run_folder_name(config, NOON) == "20261204-213012-transfer-4-7"
    pretrain = RunConfig(variant="pretrain", arch="vgg16", classes=("cat", "dog"))
    pretrain = pretrain.replace(excluded=("deer", "horse"))
    assert run_folder_name(pretrain, NOON) == "20261204-213012-pretrain-vgg16-not-deer-horse"


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("../../etc", "etc"),
        ("a/b\\c:d*e?", "a_b_c_d_e"),
        ("café au lait", "cafe_au_lait"),
        ("猫", "_"),
        (".hidden", "hidden"),
        ("CON", "CON"),  # reserved on Windows alone; the folder's name starts with the date
    ],
)
def test_any_class_name_gives_a_portable_file_name(name, part):
    assert safe_part(name) == part


def test_many_classes_give_a_name_of_bounded_length():
    config = RunConfig(classes=tuple(f"class_number_{i}" for i in range(1000)))
    name = run_folder_name(config, NOON)
    assert len(name) < 120 and name.endswith("-more")
    assert "/" not in name and name.isascii()


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    first = new_run_folder(tmp_path / "runs", RunConfig(), NOON)
    second = new_run_folder(tmp_path / "runs", RunConfig(), NOON)
    third = new_run_folder(tmp_path / "runs", RunConfig(), NOON)
    assert first.name == "20261204-213012-baseline-deer-horse"
    assert (second.name, third.name) == (f"{first.name}-2", f"{first.name}-3")
    assert all(p.is_dir() for p in (first, second, third))


def _saved(folder, stem="cifar10_4_7", names=("deer", "horse"), indices=(4, 7), **record):
    """A saved run's model file (bytes, not a real model) and sidecar in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{stem}.h5"
    model.write_bytes(b"model bytes")
    data = RunRecord(
        config=RunConfig(),
        class_names=names,
        class_indices=indices,
        history={"loss": (1.0,), "val_accuracy": (0.5,)},
        **record,
    ).to_dict()
    (folder / f"{stem}.json").write_text(json.dumps(data))
    return model


def test_a_folder_with_this_runs_model_is_refused_unless_overwrite(tmp_path):
    model = _saved(tmp_path / "mine")
    config = RunConfig(out_dir=str(tmp_path / "mine"))
    with pytest.raises(RunExists, match=r"cifar10_4_7\.h5: a model of this run is saved here"):
        plan_run(config)
    assert model.read_bytes() == b"model bytes"
    assert plan_run(config, overwrite=True).config.out_dir == config.out_dir
    # Indices as given on the command line name the same file.
    assert model_replaced(tmp_path / "mine", config.replace(classes=("4", "7"))) == model


def test_what_a_run_would_not_replace_is_no_reason_to_refuse(tmp_path):
    folder = tmp_path / "mine"
    _saved(folder, "cifar10_4_7_augm")  # another variant's file
    _saved(folder, "cifar10_3_5", names=("cat", "dog"), indices=(3, 5))
    config = RunConfig(out_dir=str(folder))
    assert model_replaced(folder, config) is None
    assert (
        model_replaced(folder, config.replace(classes=("cat", "dog"))) == folder / "cifar10_3_5.h5"
    )
    assert model_replaced(folder, config.replace(variant="augmented")) is not None
    assert plan_run(config).config.out_dir == str(folder)


def test_a_killed_runs_checkpoint_counts_as_a_run(tmp_path):
    checkpoint = tmp_path / "mine" / "checkpoints" / "cifar10_4_7"
    checkpoint.mkdir(parents=True)
    with pytest.raises(RunExists, match="checkpoints/cifar10_4_7"):
        plan_run(RunConfig(out_dir=str(tmp_path / "mine")))


def test_a_new_folder_plan_makes_the_folder_and_keeps_the_rest(tmp_path):
    _saved(tmp_path / "runs")  # an older run, saved in the root itself
    plan = plan_run(RunConfig(out_dir=str(tmp_path / "runs")), new_folder=True)
    folder = tmp_path / "runs" / plan.config.out_dir.rsplit("/", 1)[1]
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert folder.name.endswith("-baseline-deer-horse")
    assert (tmp_path / "runs" / "cifar10_4_7.h5").read_bytes() == b"model bytes"


def test_the_runs_under_a_root_are_found_flat_in_run_folders_and_in_studies(tmp_path):
    root = tmp_path / "runs"
    flat = _saved(root, finished_at="2026-01-01T00:00:00Z")
    first = _saved(root / "20261204-200000-baseline-deer-horse", finished_at="2026-12-04T20:01")
    second = _saved(root / "20261204-210000-baseline-deer-horse", finished_at="2026-12-04T21:01")
    study = root / "study"
    studied = _saved(study, "cifar10_4_7_augm", finished_at="2026-12-04T22:00")
    (study / "study.json").write_text(json.dumps({"runs": []}))
    elsewhere = _saved(root / "mine" / "study-2", "cifar10_4_7_transferlearning")
    # A checkpoint's state.json and a report's files are no runs.
    state = root / "20261204-200000-baseline-deer-horse" / "checkpoints" / "cifar10_4_7"
    state.mkdir(parents=True)
    (state / "state.json").write_text(json.dumps({"history": {"loss": [1.0]}}))
    (study / "report").mkdir()
    (study / "report" / "figures.json").write_text(json.dumps({"history": {}}))

    found = [run.model_path for run in discover_runs(root, depth=2)]
    assert found == [elsewhere, flat, first, second, studied]  # oldest first
    assert [run.model_path for run in discover_runs(root)] == [flat]  # depth 0: as before


def test_resume_lists_the_run_folders_checkpoints_not_a_studys(batches_dir, tmp_path):
    import shutil
    import threading

    from cifar_gui.engine.events import ignore
    from cifar_gui.engine.training.checkpoints import list_checkpoints
    from cifar_gui.engine.training.runner import run

    root = tmp_path / "runs"
    config = RunConfig.tiny(classes=(4, 7), data=str(batches_dir), out_dir=str(root))
    plan = plan_run(config, new_folder=True)
    run(plan, ignore, threading.Event(), in_process=True)
    shutil.copytree(plan.config.out_dir, root / "study")  # a study's run resumes with the study
    (root / "study" / "study.json").write_text(json.dumps({"runs": []}))

    (listed,) = list_checkpoints(root)
    assert listed.directory == root / plan.config.out_dir.rsplit("/", 1)[1] / "checkpoints" / (
        "cifar10_4_7"
    )
    assert listed.config.out_dir == plan.config.out_dir  # a resume stays in the run's folder

"""Previous runs read back from their sidecars, and the matplotlib export of their curves."""

from __future__ import annotations

import json
import math

import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.engine.study.runs import discover_runs, read_run
from cifar_gui.plots import save_history_plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_a_saved_run_is_found_again_with_its_figures(batches_dir, tmp_path):
    from cifar_gui.engine.training.run import run_training

    config = RunConfig.tiny(classes=(4, 7), out_dir=str(tmp_path))
    result = run_training(config, dataset=load_dataset(batches_dir))

    (run,) = discover_runs(tmp_path)
    assert run.model_path == result.path and run.sidecar == result.path.with_suffix(".json")
    record = run.record
    assert (record.variant, record.class_names, record.epochs_completed) == (
        "baseline", ("deer", "horse"), 2,
    )  # fmt: skip
    assert record.epochs_planned == 2
    val = result.history["val_accuracy"]
    assert record.test_accuracy == val[-1] and record.best_test_accuracy == max(val)
    assert record.history["loss"] == result.history["loss"]
    assert record.parameters.to_dict() == {
        "total": 684_097, "trainable": 684_097, "non_trainable": 0,
    }  # fmt: skip
    assert record.seconds > 0 and not record.stopped and run.label == "cifar10_4_7"


def test_older_or_partial_sidecars_are_completed_from_the_history(tmp_path):
    sidecar = tmp_path / "old.json"
    sidecar.write_text(json.dumps({"history": {"loss": [1, 0.5], "val_accuracy": [0.6, 0.9]}}))
    run = read_run(sidecar)
    assert run.model_path is None  # no model beside it
    record = run.record
    assert (record.epochs_completed, record.test_accuracy, record.best_test_accuracy) == (
        2, 0.9, 0.9,
    )  # fmt: skip
    assert record.variant == "?" and record.seconds is None and record.parameters is None


@pytest.mark.parametrize(
    "content",
    ["{broken", "[1, 2]", '{"history": 3}', '{"class_names": ["a", "b"]}', "\udcff"],
)
def test_files_that_are_not_run_sidecars_are_skipped(tmp_path, content):
    (tmp_path / "other.json").write_text(content, errors="surrogateescape")
    (tmp_path / "good.json").write_text(json.dumps({"history": {"loss": [1.0]}}))
    assert [r.sidecar.name for r in discover_runs(tmp_path)] == ["good.json"]


def test_runs_are_listed_oldest_first_and_a_missing_folder_is_empty(tmp_path):
    for name, when in (("b", "2026-02-01T00:00:00"), ("a", "2026-03-01T00:00:00")):
        meta = {"history": {"loss": [1.0]}, "finished_at": when}
        (tmp_path / f"{name}.json").write_text(json.dumps(meta))
    assert [r.sidecar.stem for r in discover_runs(tmp_path)] == ["b", "a"]
    assert discover_runs(tmp_path / "missing") == []
    # null (what other tools write for NaN) is NaN; a string is no number: not a sidecar.
    (tmp_path / "null.json").write_text(json.dumps({"history": {"loss": [None]}}))
    assert math.isnan(read_run(tmp_path / "null.json").record.history["loss"][0])
    (tmp_path / "text.json").write_text(json.dumps({"history": {"loss": ["x"]}}))
    assert read_run(tmp_path / "text.json") is None


def test_export_writes_a_png_of_several_runs(tmp_path):
    histories = {
        "cifar10_4_7": {
            "loss": [0.7, 0.6],
            "accuracy": [0.5, 0.6],
            "val_loss": [0.65, 0.62],
            "val_accuracy": [0.55, 0.6],
        },
        "cifar10_4_7_augm": {"loss": [0.7], "accuracy": [0.5]},  # no validation: still drawn
    }
    batches = {"x": [0.5, 1.0], "loss": [0.71, 0.69], "accuracy": [0.5, 0.52]}
    path = save_history_plot(tmp_path / "sub" / "curves.png", histories, batches, title="t")
    assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    "extra",
    [
        {"parameters": {"total": "many"}},
        {"parameters": [1]},
        {"config": {"epochs": "x"}},
        {"config": {"epochs": 1e400}},
        {"test_accuracy": "high"},
        {"best_test_accuracy": [0.5]},
        {"epochs_completed": -1},
        {"class_names": 3},
        {"stopped": "no"},
        {"finished_at": 5},
        {"history": {"loss": [1.0], "accuracy": [10**400]}},
    ],
)
def test_sidecar_fields_of_the_wrong_type_make_it_no_run(tmp_path, extra):
    """Each of these ended the listing of the whole folder with an exception."""
    meta = {"history": {"loss": [1.0]}, **extra}
    text = json.dumps(meta).replace("Infinity", "1e400")
    (tmp_path / "bad.json").write_text(text)
    (tmp_path / "good.json").write_text(json.dumps({"history": {"loss": [1.0]}}))
    assert [r.sidecar.name for r in discover_runs(tmp_path)] == ["good.json"]


def test_deeply_nested_and_huge_sidecars_are_skipped(tmp_path, monkeypatch):
    from cifar_gui.engine import files

    (tmp_path / "deep.json").write_text('{"history": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (tmp_path / "huge.json").write_text(json.dumps({"history": {"loss": [1.0] * 1000}}))
    monkeypatch.setattr(files, "MAX_JSON_BYTES", 1000)
    assert discover_runs(tmp_path) == []


def test_a_base_of_many_classes_is_counted_not_named_in_lists():
    """A pretrained base's eight class names pushed the run table's other columns off
    screen: lists count them (and name the pair it left out); the full list stays."""
    from pathlib import Path

    from cifar_gui.config import RunConfig
    from cifar_gui.engine.record import RunRecord
    from cifar_gui.engine.study.runs import SavedRun

    eight = ("airplane", "automobile", "bird", "cat", "dog", "frog", "ship", "truck")
    config = RunConfig(variant="pretrain", classes=eight, excluded=("deer", "horse"))
    base = SavedRun(Path("b.json"), None, RunRecord(config=config, class_names=eight))
    assert base.classes_text == "8 classes, not deer or horse"
    assert base.all_classes_text == " vs ".join(eight)
    pair = SavedRun(Path("p.json"), None, RunRecord(class_names=("deer", "horse")))
    assert pair.classes_text == pair.all_classes_text == "deer vs horse"

"""The run record: one validating reader of the sidecar format, old sidecars included."""

from __future__ import annotations

import json
import math

import pytest

from cifar_gui import resources
from cifar_gui.config import RunConfig
from cifar_gui.engine.record import (
    ParameterCounts,
    Performance,
    RunRecord,
    class_count,
    read_record,
)

# A sidecar as the app wrote it before the record existed (issue #12), every key present.
TODAY = {
    "config": RunConfig(classes=("deer", "horse"), epochs=3, limit=40).to_dict(),
    "variant": "baseline",
    "class_names": ["deer", "horse"],
    "class_indices": [4, 7],
    "input_shape": [32, 32, 3],
    "preprocessing": "pixels / 255 (scale_images); VGG16 models preprocess inside",
    "history": {
        "loss": [0.7, 0.6],
        "accuracy": [0.5, 0.6],
        "val_loss": [0.69, 0.65],
        "val_accuracy": [0.55, 0.6],
        "epoch_seconds": [1.5, 1.25],
    },
    "epochs_completed": 2,
    "resumed_from_epoch": None,
    "stopped": True,
    "seconds": 2.75,
    "test_loss": 0.65,
    "test_accuracy": 0.6,
    "best_test_accuracy": 0.6,
    "train_images": 40,
    "test_images": 40,
    "parameters": {"total": 684097, "trainable": 684097, "non_trainable": 0},
    "device": "CPU: test",
    "strategy": "default",
    "global_batch_size": 32,
    "precision": "float32",
    "performance": {"steps_per_execution": 8, "intra_op_threads": 0},
    "versions": {"cifar_gui": "0.1.0"},
    "finished_at": "2026-02-01T00:00:00+00:00",
    "data_source": "/data/cifar10",
    "kept_epoch": None,
}


def test_todays_sidecar_reads_and_writes_back_unchanged():
    record = RunRecord.from_dict(json.loads(json.dumps(TODAY)))
    assert record.config.epochs == 3 and record.variant == "baseline"
    assert record.parameters == ParameterCounts(684_097, 684_097, 0)
    assert record.history["loss"] == (0.7, 0.6) and record.stopped
    assert record.to_dict() == TODAY


def test_the_performance_entry_is_typed_and_an_older_partial_one_still_loads():
    assert RunRecord.from_dict(TODAY).performance == Performance(
        steps_per_execution=8, intra_op_threads=0
    )
    assert RunRecord.from_dict({}).performance == Performance()
    full = Performance(8, 0, True, 3, 1.5, ("block4_conv1",), False)
    written = json.loads(json.dumps(RunRecord(performance=full).to_dict()))
    assert written["performance"]["matmul_convolutions"] == ["block4_conv1"]
    assert RunRecord.from_dict(written).performance == full
    with pytest.raises(ValueError, match=r"performance\['feature_cache'\]"):
        RunRecord.from_dict({"performance": {"feature_cache": "yes"}})


def test_the_first_versions_sidecar_still_loads():
    """The bundled model's sidecar predates strategy, precision, performance, parameters."""
    raw = json.loads(resources.default_model_path().with_suffix(".json").read_text())
    record = read_record(resources.default_model_path().with_suffix(".json"))
    assert record is not None
    assert record.class_names == ("deer", "horse") and record.class_indices == (4, 7)
    assert record.config.epochs == 30 and record.epochs_planned == 30
    assert record.epochs_completed == len(raw["history"]["loss"])
    assert record.test_accuracy == raw["test_accuracy"]
    assert record.input_shape == (32, 32, 3)


def test_a_sidecar_with_a_history_only_is_completed_from_it():
    record = RunRecord.from_dict({"history": {"loss": [1, 0.5], "val_accuracy": [0.6, 0.9]}})
    assert record.config is None and record.variant == "?"
    assert (record.epochs_completed, record.test_accuracy, record.best_test_accuracy) == (
        2,
        0.9,
        0.9,
    )
    assert math.isnan(RunRecord.from_dict({"history": {"loss": [None]}}).history["loss"][0])


@pytest.mark.parametrize(
    "junk",
    [
        [1],
        {"input_shape": [32, 32]},
        {"parameters": {"total": -1}},
        {"versions": [1]},
        {"performance": [1]},
        {"performance": {"matmul_convolutions": [1]}},
        {"device": 3},
        {"history": {"loss": "x"}},
    ],
)
def test_junk_raises_value_error(junk, tmp_path):
    with pytest.raises(ValueError):
        RunRecord.from_dict(junk)
    (tmp_path / "s.json").write_text(json.dumps(junk))
    assert read_record(tmp_path / "s.json") is None


def test_one_sigmoid_unit_means_two_classes():
    assert [class_count(units) for units in (1, 2, 3, 10)] == [2, 2, 3, 10]


def test_best_and_lowest_loss_epochs_break_ties_and_skip_missing_values():
    from cifar_gui.engine.record import best_epoch, lowest_loss_epoch

    history = {
        "val_accuracy": [0.6, 0.8, float("nan"), 0.8, 0.7],
        "val_loss": [0.9, 0.5, 0.1, 0.4, 0.45],
    }
    assert best_epoch(history) == 3  # 0.8 twice: the lower loss wins
    assert lowest_loss_epoch(history) == 2
    assert best_epoch({"val_accuracy": [0.7, 0.7]}) == 0  # equals: the earlier
    assert best_epoch({}) is None and lowest_loss_epoch({"loss": [1.0]}) is None
    record = RunRecord(history=history, kept_epoch=4)
    assert record.best_epoch == 3 and record.lowest_loss_epoch == 2
    assert RunRecord.from_dict(record.to_dict()).kept_epoch == 4

"""Whole-run wall time: what a user waits for, recorded with its phases and shown as the
report's total time (issue #27)."""

from __future__ import annotations

import json

import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.engine.record import TIMINGS, RunRecord, read_record, sidecar_path
from cifar_gui.engine.study.report_html import RUN_COLUMNS, run_row, run_time
from cifar_gui.engine.study.runs import SavedRun
from cifar_gui.engine.training.run import run_training


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.conftest import write_cifar_batches

    return load_dataset(write_cifar_batches(tmp_path_factory.mktemp("data") / "b"))


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = RunConfig(out_dir=str(out), epochs=2, batch_size=8, limit=24)
    return run_training(config, dataset=tiny)


def test_the_whole_run_is_recorded_and_holds_its_fit_and_phases(saved):
    record = saved.record
    timings = record.timings
    assert set(timings) == set(TIMINGS)
    # Consecutive, disjoint intervals of one clock: setup, the fit, the final save.
    assert record.wall_seconds >= timings["setup"] + record.seconds + timings["final_save"]
    assert record.wall_seconds > record.seconds > 0
    assert timings["epochs"] == pytest.approx(sum(record.history["epoch_seconds"]))
    assert 0 < timings["validation"] < timings["epochs"]
    assert timings["checkpoints"] > 0  # the run keeps a checkpoint after each epoch
    assert timings["epochs"] + timings["checkpoints"] + timings["between_epochs"] == (
        pytest.approx(record.seconds)
    )
    # The sidecar says what the run returned: written once the model was.
    written = read_record(sidecar_path(saved.path))
    assert (written.wall_seconds, written.timings) == (record.wall_seconds, record.timings)


def test_an_older_sidecar_loads_without_them():
    old = json.loads(json.dumps(RunRecord(seconds=2.0).to_dict()))
    assert "wall_seconds" not in old and "timings" not in old  # nothing unknown written
    record = RunRecord.from_dict(old)
    assert record.wall_seconds is None and record.timings == {}


def test_they_are_written_and_read_back():
    record = RunRecord(seconds=2.0, wall_seconds=3.5, timings={"setup": 1.0, "final_save": 0.5})
    data = json.loads(json.dumps(record.to_dict()))
    assert data["wall_seconds"] == 3.5 and data["timings"]["setup"] == 1.0
    back = RunRecord.from_dict(data)
    assert (back.wall_seconds, back.timings) == (record.wall_seconds, record.timings)


@pytest.mark.parametrize(
    "data, named",
    [
        ({"wall_seconds": "long"}, "wall_seconds"),
        ({"wall_seconds": -1}, "wall_seconds"),
        ({"wall_seconds": float("nan")}, "wall_seconds"),
        ({"timings": [1.0]}, "timings"),
        ({"timings": {"setup": None}}, "timings\\['setup'\\]"),
        ({"timings": {"setup": -0.5}}, "timings\\['setup'\\]"),
        ({"timings": {"setup": True}}, "timings\\['setup'\\]"),
    ],
)
def test_junk_in_them_is_refused_naming_the_field(data, named):
    with pytest.raises(ValueError, match=named):
        RunRecord.from_dict(data)


def _total_time(record: RunRecord) -> str:
    run = SavedRun.of_model("runs/cifar10_4_7.h5", record)
    return run_row(run)[RUN_COLUMNS.index("total time")]


def test_the_reports_total_time_is_the_whole_run():
    epochs = {"loss": (0.7, 0.6), "epoch_seconds": (60.0, 60.0)}
    whole = RunRecord(history=epochs, seconds=150.0, wall_seconds=200.0)
    assert _total_time(whole) == "3:20"  # not the epochs' 2:00, nor the fit's 2:30
    older = RunRecord(history=epochs, seconds=150.0)
    assert _total_time(older) == "2:30 (fit only)"
    assert run_time(RunRecord(history=epochs)) == "?"
    resumed = whole.replace(resumed_from_epoch=1)
    assert _total_time(resumed) == "3:20 (from epoch 2)"  # the last session's

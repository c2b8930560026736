"""The run API: plan_run's rules (written once for the CLI and the window) and run()."""

from __future__ import annotations

import json
import threading

import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.events import BatchEvent, EpochEvent, RunFinished, RunStarted, ignore
from cifar_gui.engine.training.runner import plan_run, run


def _config(batches_dir, out, **changes) -> RunConfig:
    return RunConfig.tiny(classes=(4, 7), data=str(batches_dir), out_dir=str(out), **changes)


def test_plan_refuses_an_output_folder_that_cannot_be_made_and_writes_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"file: is a file, not a folder"):
        plan_run(RunConfig(out_dir=str(tmp_path / "file" / "runs")))
    plan = plan_run(RunConfig(out_dir=str(tmp_path / "new" / "runs")))
    assert plan.resume is None and not (tmp_path / "new").exists()


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "child"])
def test_a_run_reports_its_events_in_order_and_returns_its_record(
    batches_dir, tmp_path, in_process
):
    heard = []
    finished = run(
        plan_run(_config(batches_dir, tmp_path)), heard.append, threading.Event(),
        in_process=in_process,
    )  # fmt: skip
    assert isinstance(finished, RunFinished) and not finished.stopped
    assert finished.path == tmp_path / "cifar10_4_7.h5" and finished.path.is_file()
    # Started, the batches of each epoch before its summary, then what it saved.
    assert heard[0] == RunStarted("baseline", 2) and heard[-1] == finished
    epochs = [e for e in heard if isinstance(e, EpochEvent)]
    assert [e.epoch for e in epochs] == [0, 1]
    batches = [e for e in heard if isinstance(e, BatchEvent)]
    assert batches[-1].batch + 1 == batches[-1].steps
    order = [
        (e.epoch, isinstance(e, EpochEvent))
        for e in heard
        if isinstance(e, BatchEvent | EpochEvent)
    ]
    assert order == sorted(order)
    # The record is the sidecar, and the history is the one of the epoch events.
    sidecar = json.loads(finished.path.with_suffix(".json").read_text())
    assert sidecar == json.loads(json.dumps(finished.record.to_dict()))
    assert finished.record.history["loss"] == tuple(e.metrics["loss"] for e in epochs)


def test_resume_plan_applies_the_allowed_changes_only(batches_dir, tmp_path):
    config = _config(batches_dir, tmp_path)
    run(plan_run(config), ignore, threading.Event(), in_process=True)
    plan = plan_run(resume=tmp_path, epochs=3)
    assert plan.config.epochs == 3 and plan.resume.epochs_completed == 2
    with pytest.raises(UserError, match="all 2 epochs are done"):
        plan_run(resume=tmp_path)
    with pytest.raises(UserError, match="differs from the checkpoint's in seed"):
        plan_run(config.replace(seed=1), resume=tmp_path, epochs=3)
    with pytest.raises(UserError, match="epochs must be from 1"):
        plan_run(resume=tmp_path, epochs=0)
    finished = run(plan, ignore, threading.Event(), in_process=True)
    assert finished.record.resumed_from_epoch == 2 and finished.record.epochs_completed == 3
    assert len(finished.record.history["loss"]) == 3

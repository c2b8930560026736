"""The run API: plan_run's rules (written once for the CLI and the window) and run()."""

from __future__ import annotations

import json
import threading

import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.runner import RunFinished, plan_run, run


def _config(batches_dir, out, **changes) -> RunConfig:
    return RunConfig.tiny(classes=(4, 7), data=str(batches_dir), out_dir=str(out), **changes)


def test_plan_refuses_an_output_folder_that_cannot_be_made_and_writes_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"file: is a file, not a folder"):
        plan_run(RunConfig(out_dir=str(tmp_path / "file" / "runs")))
    plan = plan_run(RunConfig(out_dir=str(tmp_path / "new" / "runs")))
    assert plan.resume is None and not (tmp_path / "new").exists()


def _events(stop_after: int | None = None):
    bundles, epochs, stop = [], [], threading.Event()

    def on_batch(events):
        bundles.append(events)
        if stop_after is not None and len(bundles) >= stop_after:
            stop.set()

    return bundles, epochs, stop, on_batch


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "child"])
def test_a_run_reports_bundles_and_epochs_and_returns_its_record(batches_dir, tmp_path, in_process):
    bundles, epochs, stop, on_batch = _events()
    finished = run(
        plan_run(_config(batches_dir, tmp_path)), on_batch, epochs.append, stop,
        in_process=in_process,
    )  # fmt: skip
    assert isinstance(finished, RunFinished) and not finished.stopped
    assert finished.path == tmp_path / "cifar10_4_7.h5" and finished.path.is_file()
    assert [e.epoch for e in epochs] == [0, 1]
    batches = [event for bundle in bundles for event in bundle]
    assert all(bundles) and batches[-1].batch + 1 == batches[-1].steps
    # The record is the sidecar, and the history is the one of the epoch events.
    sidecar = json.loads(finished.path.with_suffix(".json").read_text())
    assert sidecar == json.loads(json.dumps(finished.record.to_dict()))
    assert finished.record.history["loss"] == tuple(e.metrics["loss"] for e in epochs)


def test_resume_plan_applies_the_allowed_changes_only(batches_dir, tmp_path):
    config = _config(batches_dir, tmp_path)
    run(plan_run(config), lambda events: None, lambda event: None, threading.Event(),
        in_process=True)  # fmt: skip
    plan = plan_run(resume=tmp_path, epochs=3)
    assert plan.config.epochs == 3 and plan.resume.epochs_completed == 2
    with pytest.raises(UserError, match="all 2 epochs are done"):
        plan_run(resume=tmp_path)
    with pytest.raises(UserError, match="differs from the checkpoint's in seed"):
        plan_run(config.replace(seed=1), resume=tmp_path, epochs=3)
    with pytest.raises(UserError, match="epochs must be from 1"):
        plan_run(resume=tmp_path, epochs=0)
    finished = run(plan, lambda events: None, lambda event: None, threading.Event(),
                   in_process=True)  # fmt: skip
    assert finished.record.resumed_from_epoch == 2 and finished.record.epochs_completed == 3
    assert len(finished.record.history["loss"]) == 3

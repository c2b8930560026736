"""The seed's study on tiny synthetic data: four models, the study record and a report; a
study killed between two runs and inside a run resumes to the histories of an uninterrupted
one; offline, ``--weights imagenet`` fails at once.

The killed study runs in children forked from a forkserver that has imported TensorFlow once
(as tests/engine/test_kill_during_save.py). Each child announces, through a pipe, every run's
start and end and every epoch (after its checkpoint is written) and then waits for the
parent's word: the parent kills it (SIGKILL) at the announcement it chose, so the kill lands
at a known point on any machine at any load, without a clock.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import keras
import numpy as np
import pytest

from cifar_gui.config import SEED_VARIANTS, RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.events import EpochEvent, LiveRequest, LiveSnapshot, StudyProgress
from cifar_gui.engine.models.build import VGG16_BASE_NAME
from cifar_gui.engine.models.inspect import layer_chain
from cifar_gui.engine.record import read_record
from cifar_gui.engine.study import base as study_base
from cifar_gui.engine.study import plan as study
from cifar_gui.engine.study import report
from cifar_gui.engine.study.estimate import RELATIVE_EPOCH_COST, study_eta
from cifar_gui.engine.study.plan import (
    STUDY_FILE,
    plan_study,
    read_study,
    run_study,
)
from cifar_gui.engine.study.runs import SavedRun
from tests.conftest import write_cifar_batches
from tests.engine.test_report import check_claims, check_embedded_pngs, parse

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
FILES = {
    "baseline": "cifar10_4_7.h5",
    "augmented": "cifar10_4_7_augm.h5",
    "transfer": "cifar10_4_7_transferlearning.h5",
    "finetune": "cifar10_4_7_finetuningtransferlearning.h5",
}
HANG_GUARD_S = 300.0  # only a hang guard: a loaded machine may take long for one epoch


def template(data: Path) -> RunConfig:
    """Deer and horse get 20 training images (3 batches of 8) and 12 test images; 2 epochs."""
    return RunConfig(
        data=str(data), epochs=2, batch_size=8, weights="none", precision="float32", seed=1
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_cifar_batches(tmp_path_factory.mktemp("data") / "batches", per_batch=20, test=60)


# The live view's request, asked once before the first run: test image 3, a layer only the
# VGG16 runs have.
LIVE_REQUEST = LiveRequest(test_index=2, layer=f"{VGG16_BASE_NAME}/block1_conv2")


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    """An uninterrupted study, with what its sink heard: its runs and epochs, and the live
    view's snapshots (each after the run event it follows)."""
    folder = tmp_path_factory.mktemp("straight") / "study"
    heard: list = []
    requests = [LIVE_REQUEST]

    def sink(event) -> None:
        if isinstance(event, EpochEvent):
            heard.append(event.epoch)
        elif isinstance(event, StudyProgress | LiveSnapshot):
            heard.append(event)

    def live() -> LiveRequest | None:
        return requests.pop() if requests else None

    finished = run_study(plan_study(template(data), folder), sink, live=live)
    return folder, finished, heard


def histories(folder: Path) -> dict[str, dict]:
    out = {}
    for variant, name in FILES.items():
        record = read_record((folder / name).with_suffix(".json"))
        assert record is not None, name
        out[variant] = record.history
    return out


def test_a_study_trains_the_four_runs_in_order_and_writes_record_and_report(straight):
    folder, finished, heard = straight
    assert not finished.stopped
    for name in FILES.values():
        assert (folder / name).is_file() and (folder / name).with_suffix(".json").is_file()
        assert (folder / "checkpoints" / Path(name).stem / "state.json").is_file()
    runs = [e for e in heard if isinstance(e, StudyProgress)]
    assert [(e.variant, e.state) for e in runs] == [
        (v, s) for v in SEED_VARIANTS for s in ("running", "done")
    ]
    # Each run's two epochs are heard between its start and its end.
    assert [e for e in heard if isinstance(e, int)] == [0, 1] * 4
    template_, recorded = read_study(folder)
    assert [(r.variant, r.state, r.model) for r in recorded] == [
        (v, "done", FILES[v]) for v in SEED_VARIANTS
    ]
    saved = json.loads((folder / STUDY_FILE).read_text())
    assert saved["report"] == "report/report.html"
    assert saved["command"].startswith("cifar-gui study --data ")
    # Finetune continued from the transfer model the study had just trained.
    finetune = read_record(folder / "cifar10_4_7_finetuningtransferlearning.json")
    assert finetune.config.from_model == str(folder / FILES["transfer"])
    assert finetune.parameters.trainable < finetune.parameters.total
    transfer = read_record(folder / "cifar10_4_7_transferlearning.json")
    assert transfer.parameters.trainable == 131_585  # the seed's frozen base
    assert template_.epochs == 2 and template_.weights == "none"


def test_a_study_yields_the_plans_of_its_runs_not_done_yet(straight, data, tmp_path):
    steps = list(plan_study(template(data), tmp_path / "new").steps((4, 7)))
    assert [type(s).__name__ for s in steps] == ["RunPlan"] * 4
    assert [s.config.variant for s in steps] == list(SEED_VARIANTS)
    assert steps[3].config.from_model == str(tmp_path / "new" / FILES["transfer"])
    done = list(plan_study(resume=straight[0]).steps((4, 7)))
    assert [(type(s).__name__, s.path) for s in done] == [
        ("RunFinished", straight[0] / FILES[v]) for v in SEED_VARIANTS
    ]


def test_every_run_of_a_study_sends_live_snapshots_from_the_latest_request(straight):
    folder, _, heard = straight
    shown: dict[str, list] = {}
    variant = None
    for event in heard:
        if isinstance(event, StudyProgress):
            variant = event.variant if event.state == "running" else None
        elif isinstance(event, LiveSnapshot):
            assert variant is not None, "a snapshot outside a run"
            shown.setdefault(variant, []).append(event)
    # One at each epoch's end, for every run; each of its own model.
    assert {v: [s.epoch for s in snaps] for v, snaps in shown.items()} == {
        v: [0, 1] for v in SEED_VARIANTS
    }
    for variant, snaps in shown.items():
        model = keras.models.load_model(folder / FILES[variant], compile=False)
        chain = layer_chain(model)
        names = tuple(name for name, _ in chain)
        first_conv = next(n for n, layer in chain if isinstance(layer, keras.layers.Conv2D))
        for snap in snaps:
            assert snap.layers == names
            # The request asked before the first run holds in every run: its image always,
            # its layer where the model has it, else the model's first convolution.
            assert snap.image_caption.startswith("test image 3, true class ")
            expected = LIVE_REQUEST.layer if LIVE_REQUEST.layer in names else first_conv
            assert snap.layer == expected, variant
    assert shown["baseline"][0].layer != LIVE_REQUEST.layer
    assert shown["transfer"][0].layer == LIVE_REQUEST.layer


def test_the_report_embeds_its_figures_and_judges_the_claims_from_the_histories(straight):
    folder, finished, _ = straight
    assert finished.report == folder / "report" / "report.html"
    page = parse(finished.report)
    check_embedded_pngs(page)
    names = {p.name for p in finished.report.parent.glob("*.png")}
    for variant in SEED_VARIANTS:
        for kind in ("history", "confusion", "mistakes"):
            assert f"{kind}_{variant}.png" in names
    assert {"validation_overlay.png", "activations_baseline.png"} <= names
    # One embedded image per PNG beside the report.
    assert len(page.images) == len(names)
    runs = {
        v: SavedRun.of_model(
            folder / FILES[v], read_record((folder / FILES[v]).with_suffix(".json"))
        )
        for v in SEED_VARIANTS
    }
    expected = report.judge_claims(runs)
    assert len(expected) == 5
    check_claims(page, expected)
    # Two epochs per run and random VGG16 weights: which claims cannot be judged, and why.
    assert expected[0].verdict == report.UNTESTED  # needs 6 epochs
    assert "random weights" in expected[4].measured
    text = finished.report.read_text()
    assert "cifar-gui study --data" in text and "tensorflow" in text


def study_child(folder: str, data: str, resume: bool, conn) -> None:
    """A study that announces each run's state and each epoch, then waits for the parent."""
    from cifar_gui.engine.study.plan import plan_study, run_study

    def tell(e) -> None:
        if isinstance(e, StudyProgress):
            conn.send(("run", e.variant, e.state, e.resumed_from_epoch, e.skipped))
        elif isinstance(e, EpochEvent):
            conn.send(("epoch", e.epoch + 1))
        else:
            return
        conn.recv()  # the parent's go-ahead (or the kill)

    plan = plan_study(resume=folder) if resume else plan_study(template(Path(data)), Path(folder))
    run_study(plan, tell)
    conn.send(("finished",))


@pytest.fixture(scope="module")
def forkserver():
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
    )
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["cifar_gui.engine.training.run", "cifar_gui.engine.study.report", __name__]
    )
    return context


def follow(context, folder: Path, data: Path, resume: bool, kill_when=None) -> list[tuple]:
    """Run a study child; answer its announcements until ``kill_when(heard)`` is true (then
    kill it) or its end; return what it announced."""
    parent, child_end = context.Pipe()
    process = context.Process(target=study_child, args=(str(folder), str(data), resume, child_end))
    process.start()
    child_end.close()
    heard: list[tuple] = []
    try:
        while True:
            assert parent.poll(HANG_GUARD_S), f"the study said nothing for {HANG_GUARD_S:.0f} s"
            message = parent.recv()
            heard.append(message)
            if message == ("finished",):
                break
            if kill_when is not None and kill_when(heard):
                os.kill(process.pid, signal.SIGKILL)
                break
            parent.send("go")
    finally:
        process.join(HANG_GUARD_S)
        parent.close()
    if kill_when is not None:
        assert process.exitcode == -signal.SIGKILL
    else:
        assert process.exitcode == 0
    return heard


@pytest.mark.slow  # three studies and two kills: about two minutes on 2 cores
def test_a_study_killed_between_runs_and_inside_a_run_resumes_to_the_same_histories(
    straight, data, forkserver, tmp_path
):
    folder = tmp_path / "killed"
    # Killed once the baseline is saved, before the augmented run starts.
    heard = follow(
        forkserver, folder, data, False, lambda h: h[-1] == ("run", "baseline", "done", None, False)
    )
    assert read_study(folder)[1][0].state == "done"
    baseline_sidecar = (folder / FILES["baseline"]).with_suffix(".json").read_bytes()

    # Resumed: the baseline is not trained again; killed after transfer's first epoch.
    def after_first_transfer_epoch(h: list[tuple]) -> bool:
        return h[-1] == ("epoch", 1) and h[-2][:3] == ("run", "transfer", "running")

    heard = follow(forkserver, folder, data, True, after_first_transfer_epoch)
    runs = [m[1:] for m in heard if m[0] == "run"]
    assert runs[0] == ("baseline", "done", None, True)
    assert runs[-1] == ("transfer", "running", None, False)
    assert [m for m in heard if m[0] == "epoch"] == [("epoch", 1), ("epoch", 2), ("epoch", 1)]
    assert [r.state for r in read_study(folder)[1]] == ["done", "done", "running", "pending"]

    # Resumed again: transfer continues at its second epoch, then finetune and the report.
    heard = follow(forkserver, folder, data, True)
    runs = [m[1:] for m in heard if m[0] == "run"]
    assert runs[:2] == [("baseline", "done", None, True), ("augmented", "done", None, True)]
    assert runs[2] == ("transfer", "running", 1, False)
    assert [m for m in heard if m[0] == "epoch"] == [("epoch", 2), ("epoch", 1), ("epoch", 2)]
    assert (folder / FILES["baseline"]).with_suffix(".json").read_bytes() == baseline_sidecar
    assert (folder / "report" / "report.html").is_file()
    assert [r.state for r in read_study(folder)[1]] == ["done"] * 4

    expected, got = histories(straight[0]), histories(folder)
    for variant in SEED_VARIANTS:
        for key in METRICS:
            np.testing.assert_allclose(
                got[variant][key], expected[variant][key], rtol=1e-5, err_msg=f"{variant} {key}"
            )
    transfer = read_record(folder / "cifar10_4_7_transferlearning.json")
    assert transfer.resumed_from_epoch == 1


def test_a_new_study_refuses_a_folder_with_a_study_and_resume_needs_one(straight, data, tmp_path):
    folder = straight[0]
    with pytest.raises(UserError, match="holds a study already"):
        plan_study(template(data), folder)
    with pytest.raises(UserError, match="no study to resume"):
        plan_study(resume=tmp_path)
    plan = plan_study(resume=folder, data=str(data))
    assert plan.resume and plan.template.data == str(data)


def test_imagenet_weights_offline_plan_a_pretrained_base_and_missing_files_fail_at_once(
    data, tmp_path, monkeypatch
):
    monkeypatch.setattr(study_base, "weights_host_reachable", lambda timeout=0: False)
    imagenet = template(data).replace(weights="imagenet")
    plan = plan_study(imagenet, tmp_path / "s")
    assert plan.pretrain_base and study_base.OFFLINE_REASON in plan.base_reason
    assert not (tmp_path / "s").exists()  # nothing written
    # Weights in the Keras cache (conftest points KERAS_HOME at a fresh folder) are enough.
    cached = Path(os.environ["KERAS_HOME"]) / "models" / study_base.VGG16_NOTOP_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert not plan_study(imagenet, tmp_path / "s").pretrain_base
    with pytest.raises(UserError, match="no such weights file"):
        plan_study(imagenet.replace(weights=str(tmp_path / "missing.h5")), tmp_path / "s")
    with pytest.raises(UserError, match="no such model"):
        plan_study(imagenet.replace(base=str(tmp_path / "missing.h5")), tmp_path / "s")


def test_study_eta_adds_the_later_steps_estimates_unless_measured_here():
    later = [("augmented", 2, 12.0), ("transfer", 2, 40.0)]
    assert study_eta(later, 5.0, {}) == 5.0 + 12.0 + 40.0
    # A variant this study measured (another seed's) goes by its measured epochs.
    assert study_eta(later, 5.0, {"augmented": 3.0}) == 5.0 + 2 * 3.0 + 40.0
    # Without estimates: the measured variants, scaled by the relative costs.
    cost = RELATIVE_EPOCH_COST
    later = [("augmented", 30, None), ("transfer", 30, None), ("finetune", 30, None)]
    assert study_eta(later, 10.0, {}) is None
    expected = 10.0 + 30 * 2.0 * (cost["augmented"] + cost["transfer"] + cost["finetune"])
    assert study_eta(later, 10.0, {"baseline": 2.0}) == pytest.approx(expected)
    # A measured transfer epoch is the better guide for finetune than the baseline.
    measured = {"baseline": 2.0, "augmented": 2.0, "transfer": 30.0}
    assert study_eta(later[2:], 5.0, measured) == pytest.approx(
        5.0 + 30 * 30.0 * cost["finetune"] / cost["transfer"]
    )
    assert study_eta([], 7.0, measured) == 7.0


def test_only_a_complete_run_of_the_same_settings_counts_as_done(data, tmp_path):
    """A model another run left in the study folder (other settings, stopped, fewer epochs)
    is trained again, not taken for the study's."""
    from cifar_gui.engine.files import write_json
    from cifar_gui.engine.record import RunRecord

    plan = plan_study(template(data), tmp_path / "s")
    config = plan.config_for("baseline", (4, 7))
    model = tmp_path / "s" / FILES["baseline"]
    model.parent.mkdir()
    model.write_bytes(b"a model")

    def saved(run: RunConfig, **fields) -> RunRecord | None:
        record = RunRecord(config=run, epochs_completed=run.epochs, **fields)
        write_json(model.with_suffix(".json"), record.to_dict())
        return study.finished_run(model, config)

    assert saved(config.replace(data="/elsewhere")) is not None  # the data moved: same run
    assert saved(config.replace(limit=8)) is None
    assert saved(config.replace(seed=2)) is None
    assert saved(config, stopped=True) is None
    assert saved(config.replace(epochs=1)) is None

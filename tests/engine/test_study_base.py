"""A study offline pretrains its base first, as a resumable step, and its transfer and
finetune runs start from it; ``seeds`` K runs each variant K times; version-1 study records
still read. Offline is simulated by patching the host's reachability (the Keras cache is
conftest's fresh folder): nothing touches the network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cifar_gui.config import SEED_VARIANTS, RunConfig
from cifar_gui.engine.events import EpochEvent, StudyProgress
from cifar_gui.engine.record import read_record
from cifar_gui.engine.study import base as study_base
from cifar_gui.engine.study import plan as study
from cifar_gui.engine.study import report
from cifar_gui.engine.study.base import OFFLINE_REASON
from cifar_gui.engine.study.plan import (
    STUDY_FILE,
    plan_study,
    read_study,
    read_study_record,
    run_study,
)
from tests.conftest import TINY_CLASSES, write_cifar_batches

TRANSFER = "cifar10_4_7_transferlearning.h5"
FINETUNE = "cifar10_4_7_finetuningtransferlearning.h5"
BASE = "base/cifar10_0_1_2_3_5_6_8_9_pretrainedbase.h5"


def template(data: Path, **changes) -> RunConfig:
    """ImageNet weights (the default), 1 epoch of batches of 8, float32."""
    return RunConfig(data=str(data), epochs=1, batch_size=8, precision="float32", seed=3, **changes)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_cifar_batches(tmp_path_factory.mktemp("data") / "batches", per_batch=20, test=60)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(study_base, "weights_host_reachable", lambda timeout=0: False)


@pytest.fixture(scope="module")
def two_seeds(data, tmp_path_factory):
    """An offline study of two seeds, with the StudyProgress events it sent."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study_base, "weights_host_reachable", lambda timeout=0: False)
        folder = tmp_path_factory.mktemp("seeds") / "study"
        plan = plan_study(template(data), folder, seeds=2, base_epochs=1)
        heard: list[StudyProgress] = []
        finished = run_study(
            plan, lambda e: heard.append(e) if isinstance(e, StudyProgress) else None
        )
    return plan, finished, heard


def test_offline_a_study_plans_the_base_first_and_online_it_does_not(data, tmp_path, offline):
    plan = plan_study(template(data), tmp_path / "s")
    assert plan.pretrain_base and OFFLINE_REASON in plan.base_reason
    steps = plan.step_list()
    assert [(s.variant, s.seed) for s in steps] == [("pretrain", None)] + [
        (v, 3) for v in SEED_VARIANTS
    ]
    names = TINY_CLASSES
    base = plan.base_config(names)
    assert base.variant == "pretrain" and base.arch == study.BASE_ARCH
    assert "deer" not in base.classes and "horse" not in base.classes and len(base.classes) == 8
    assert Path(base.out_dir) == plan.folder / "base"
    # The transfer and finetune take their base from it; the runs from scratch do not.
    configs = {s.config.variant: s.config for s in plan.steps((4, 7), names)}
    assert configs["transfer"].base == str(plan.folder / BASE)
    assert configs["finetune"].base == configs["transfer"].base
    assert configs["baseline"].base is None
    # Given another base, or weights in the cache, nothing is pretrained.
    assert not plan_study(template(data, weights="none"), tmp_path / "n").pretrain_base
    cached = Path(study_base.keras_models_dirs()[0]) / study_base.VGG16_NOTOP_FILE
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"")
    try:
        assert not plan_study(template(data), tmp_path / "c").pretrain_base
    finally:
        cached.unlink()


def test_two_seeds_pretrain_the_base_once_and_run_each_variant_twice(two_seeds):
    plan, finished, heard = two_seeds
    assert not finished.stopped and finished.report is not None
    started = [(e.variant, e.index, e.count) for e in heard if e.state == "running"]
    assert started[0] == ("pretrain", 0, 9)
    assert [v for v, _, _ in started] == ["pretrain", *SEED_VARIANTS, *SEED_VARIANTS]
    base = plan.folder / BASE
    assert base.is_file()
    for seed in (3, 4):
        folder = plan.folder / f"seed-{seed}"
        transfer = read_record(folder / TRANSFER.replace(".h5", ".json"))
        finetune = read_record(folder / FINETUNE.replace(".h5", ".json"))
        assert transfer.config.seed == seed and transfer.config.base == str(base)
        assert finetune.config.from_model == str(folder / TRANSFER)
    record = read_study_record(plan.folder)
    assert record.seeds == 2
    assert [(r.variant, r.seed, r.state) for r in record.runs] == [("pretrain", None, "done")] + [
        (v, s, "done") for s in (3, 4) for v in SEED_VARIANTS
    ]
    assert record.runs[0].model == BASE
    base_entry = record.base
    assert base_entry["source"] == "pretrained-here" and base_entry["arch"] == "cnn"
    assert len(base_entry["classes"]) == 8 and base_entry["epochs"] == 1
    assert 0.0 <= base_entry["test_accuracy"] <= 1.0
    assert OFFLINE_REASON in base_entry["reason"]
    # The report gets both seeds of each variant, names the base and why, and judges claim 5.
    runs = report.collect_runs([plan.folder])
    grouped = report.group_by_variant(runs)
    assert {v: len(rs) for v, rs in grouped.items()} == dict.fromkeys(SEED_VARIANTS, 2)
    text = finished.report.read_text()
    assert "cifar10_0_1_2_3_5_6_8_9_pretrainedbase.h5: the small CNN pretrained on 8" in text
    assert OFFLINE_REASON in text
    claims = report.judge_claims(grouped)
    assert claims[4].verdict in (report.HOLDS, report.FAILS)
    assert "random weights" not in claims[4].measured
    assert "--seeds 2" in json.loads((plan.folder / STUDY_FILE).read_text())["command"]


def test_a_study_stopped_in_its_pretrain_resumes_it_and_does_not_redo_it(data, tmp_path, offline):
    folder = tmp_path / "study"
    plan = plan_study(template(data, weights="imagenet"), folder, base_epochs=2)
    stop = __import__("threading").Event()

    def stop_after_first_epoch(event) -> None:
        if isinstance(event, EpochEvent):
            stop.set()

    finished = run_study(plan, stop_after_first_epoch, stop)
    assert finished.stopped
    assert [(r.variant, r.state) for r in read_study(folder)[1]][:2] == [
        ("pretrain", "stopped"),
        ("baseline", "pending"),
    ]
    heard: list[StudyProgress] = []
    resumed = plan_study(resume=folder)
    assert resumed.pretrain_base and resumed.base_epochs == 2
    run_study(resumed, lambda e: heard.append(e) if isinstance(e, StudyProgress) else None)
    first = heard[0]
    assert (first.variant, first.state, first.resumed_from_epoch) == ("pretrain", "running", 1)
    assert read_record(folder / BASE.replace(".h5", ".json")).epochs_completed == 2
    assert (folder / TRANSFER).is_file()  # the flat layout of one seed
    assert read_record(folder / TRANSFER.replace(".h5", ".json")).config.base == str(folder / BASE)
    # Done is not redone.
    again: list[StudyProgress] = []
    run_study(
        plan_study(resume=folder),
        lambda e: again.append(e) if isinstance(e, StudyProgress) else None,
    )
    assert [e.skipped for e in again] == [True] * 5


def test_a_version_1_study_record_still_reads_and_resumes(data, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    config = template(data, weights="none").replace(out_dir=str(folder))
    runs = [{"variant": v, "state": "pending", "model": f"m_{v}.h5"} for v in SEED_VARIANTS]
    record = {
        "version": 1,
        "config": config.to_dict(),
        "command": "x",
        "runs": runs,
        "report": None,
    }
    (folder / STUDY_FILE).write_text(json.dumps(record))
    read = read_study_record(folder)
    assert read.seeds == 1 and read.base is None
    assert [(r.variant, r.seed) for r in read.runs] == [(v, None) for v in SEED_VARIANTS]
    plan = plan_study(resume=folder)
    assert plan.resume and not plan.pretrain_base and plan.seeds == 1
    record["version"] = 3
    (folder / STUDY_FILE).write_text(json.dumps(record))
    with pytest.raises(study.ModelError, match="version 3"):
        read_study_record(folder)


def test_the_record_says_which_base_and_why_for_every_source(data, tmp_path, offline):
    def entry(**changes) -> dict:
        return study_base.base_entry(plan_study(template(data, **changes), tmp_path / "s"))

    assert entry()["source"] == "pretrained-here"
    random = entry(weights="none")
    assert random["source"] == "random" and "measure nothing" in random["reason"]
    weights = tmp_path / "vgg16.h5"
    weights.write_bytes(b"")
    assert entry(weights=str(weights))["source"] == "given"
    cached = Path(study_base.keras_models_dirs()[0]) / study_base.VGG16_NOTOP_FILE
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"")
    try:
        assert entry()["source"] == "imagenet"
    finally:
        cached.unlink()

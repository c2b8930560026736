"""The pre-flight's cost model on given speeds (no clock): each step's seconds are
``run_fixed + epochs * (epoch_fixed + checkpoint + steps * step)``, with the speeds of earlier runs'
sidecars where there are some."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cifar_gui.config import SEED_VARIANTS, RunConfig
from cifar_gui.engine.files import write_json
from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.study import estimate
from cifar_gui.engine.study.estimate import Speed, estimate_study, kind_of, measured_speeds
from cifar_gui.engine.study.plan import StudyPlan

NAMES = tuple(f"class{i}" for i in range(10))
# 5,000 training and 1,000 test images per class, as CIFAR-10.
COUNTS = {"train": [5000] * 10, "test": [1000] * 10}


def plan(tmp_path: Path, **fields) -> StudyPlan:
    template = RunConfig(classes=("class4", "class7"), epochs=30, out_dir=str(tmp_path))
    return StudyPlan(tmp_path, template, **fields)


def test_each_step_costs_its_fixed_part_and_its_epochs_of_steps(tmp_path):
    study = plan(tmp_path, pretrain_base=True, seeds=2)
    configs = {s.variant: c for s, c, _, _ in estimate.step_configs(study, NAMES, COUNTS)}
    speeds = {
        kind_of(configs["pretrain"]): Speed(0.05, 0.6, 10.0, 0.4, "calibrated"),
        kind_of(configs["baseline"]): Speed(0.02, 0.2, 3.0, 0.3, "calibrated"),
        kind_of(configs["augmented"]): Speed(0.03, 0.2, 3.0, 0.3, "calibrated"),
        kind_of(configs["transfer"]): Speed(0.2, 1.0, 20.0, 1.0, "calibrated"),
    }
    result = estimate_study(study, NAMES, COUNTS, speeds)
    assert [(s.step.variant, s.step.seed) for s in result.steps] == [("pretrain", None)] + [
        (v, seed) for seed in (0, 1) for v in SEED_VARIANTS
    ]
    pretrain = result.steps[0]
    assert (pretrain.train_images, pretrain.test_images) == (40_000, 8_000)
    steps = math.ceil(40_000 / 32)
    assert pretrain.seconds == pytest.approx(10.0 + 15 * (steps * 0.05 + 1.0))  # 15 epochs
    baseline = result.steps[1]
    assert baseline.steps_per_epoch == math.ceil(10_000 / 32)
    assert baseline.seconds == pytest.approx(3.0 + 30 * (313 * 0.02 + 0.5))
    transfer = result.steps[3]
    assert transfer.base.endswith("_pretrainedbase.h5 (pretrained in step 1)")
    assert baseline.base == ""
    # Finetune has no speed: unknown, and so is the total.
    assert result.steps[4].seconds is None and result.total_seconds is None
    assert "unknown" in result.lines()[4] and result.lines()[-1] == "total: unknown"
    speeds[kind_of(configs["finetune"])] = Speed(0.5, 1.0, 20.0, 1.0, "calibrated")
    result = estimate_study(study, NAMES, COUNTS, speeds)
    assert result.total_seconds == pytest.approx(sum(s.seconds for s in result.steps))
    # Without checkpoints no epoch pays for one.
    quiet = StudyPlan(tmp_path, study.template.replace(checkpoint=False))
    assert estimate_study(quiet, NAMES, COUNTS, speeds).steps[0].seconds == pytest.approx(
        3.0 + 30 * (313 * 0.02 + 0.2)
    )


def test_a_limit_shares_the_images_evenly(tmp_path):
    study = plan(tmp_path)
    limited = StudyPlan(tmp_path, study.template.replace(limit=1000))
    step = estimate_study(limited, NAMES, COUNTS, {}).steps[0]
    assert (step.train_images, step.test_images) == (1000, 1000)


def saved_run(folder: Path, config: RunConfig, **fields) -> None:
    record = RunRecord(config=config, **fields)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / f"{config.variant}.json", {**record.to_dict(), "history": {}})


def test_earlier_runs_on_this_device_give_the_speed_of_their_kind(tmp_path):
    baseline = RunConfig(variant="baseline", epochs=30)
    fields = {"train_images": 10_000, "global_batch_size": 32, "device": "CPU: x"}
    # A run resumed at epoch 10 trained 20 epochs of 313 steps in 626 s: 0.1 s a step.
    saved_run(tmp_path / "study", baseline, epochs_completed=30, resumed_from_epoch=10,
              seconds=626.0, finished_at="2026-01-01", **fields)  # fmt: skip
    # Another device's run, and another kind (batch 64), count for nothing here.
    saved_run(tmp_path / "other", baseline.replace(variant="augmented"), epochs_completed=30,
              seconds=1.0, finished_at="2026-01-02", **{**fields, "device": "GPU: y"})  # fmt: skip
    saved_run(tmp_path / "runs" / "r1", baseline.replace(batch_size=64), epochs_completed=1,
              seconds=1.0, finished_at="2026-01-03", **fields)  # fmt: skip
    speeds = measured_speeds([tmp_path / "study", tmp_path / "other", tmp_path / "runs"], "CPU: x")
    assert set(speeds) == {kind_of(baseline), kind_of(baseline.replace(batch_size=64))}
    speed = speeds[kind_of(baseline)]
    assert speed.step_s == pytest.approx(0.1) and speed.source == "measured: baseline.json"
    assert speed.run_fixed_s == 0.0  # no whole-run wall time in this sidecar
    # Timed epochs: the median epoch is the steady one, the fit's excess (the first call's
    # trace) and, with the whole run's wall time, what it spent outside the fit are fixed.
    history = {"epoch_seconds": (40.0, 31.3, 31.3, 31.3)}
    record = RunRecord(config=baseline, epochs_completed=4, seconds=134.0, history=history,
                       **fields)  # fmt: skip
    speed = estimate.speed_of_record(record, "m")
    assert speed.step_s == pytest.approx(0.1) and speed.run_fixed_s == pytest.approx(8.8)
    object.__setattr__(record, "wall_seconds", 140.0)
    assert estimate.speed_of_record(record, "m").run_fixed_s == pytest.approx(14.8)
    assert estimate.speed_of_record(RunRecord(config=baseline), "m") is None

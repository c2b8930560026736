"""The bench's arithmetic (bench/timing.py and bench/run.py's tables) on made-up figures: no
training, no TensorFlow."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # run.py imports timing as the scripts do
timing = importlib.import_module("timing")
_spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)


def test_spread_is_median_and_range():
    assert timing.spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert timing.spread([1.0, 4.0])["median"] == 2.5
    assert timing.spread([]) is None


def test_ratios_are_per_round_and_skip_missing_rounds():
    assert timing.ratios([10.0, 9.0, None], [5.0, 3.0, 2.0]) == [2.0, 3.0]


def test_whole_run_fit_splits_fixed_and_per_epoch():
    # 8 s to the first epoch line, then 3 s an epoch, 6 s after the last (the final save).
    fit = timing.whole_run_fit(20.0, [8.0, 11.0, 14.0], 3)
    assert fit["per_epoch"] == pytest.approx(3.0)
    assert fit["fixed"] == pytest.approx(11.0)
    assert timing.estimate(fit, 30) == pytest.approx(101.0)
    assert timing.estimate(fit, 3) == pytest.approx(20.0)  # the measured run itself


def test_whole_run_fit_takes_the_median_gap():
    fit = timing.whole_run_fit(30.0, [5.0, 7.0, 17.0, 19.0], 4)  # gaps 2, 10, 2
    assert fit["per_epoch"] == pytest.approx(2.0)
    assert fit["fixed"] == pytest.approx(22.0)


@pytest.mark.parametrize(("marks", "epochs"), [([5.0], 1), ([5.0, 6.0], 3)])
def test_whole_run_fit_needs_a_mark_per_epoch(marks, epochs):
    with pytest.raises(ValueError, match="one mark per epoch"):
        timing.whole_run_fit(10.0, marks, epochs)


def test_floor_flops_counts_front_gradients_and_validation():
    layers = [(10, False), (20, True), (30, True)]  # a frozen front, then two trained layers
    flops = timing.floor_flops(layers, train_images=4, test_images=2)
    # forward 120, weight gradients 100, input gradients of the layer after the first
    # trained one 60; validation from the first trained layer on 100 an image.
    assert flops == {"per_epoch": 4 * (120 + 100 + 60) + 2 * 100, "once": 2 * 20}


def test_floor_flops_without_a_front_or_anything_to_train():
    trained = timing.floor_flops([(10, True), (30, True)], 1, 1)
    assert trained == {"per_epoch": 80 + 80 + 60 + 80, "once": 0}
    frozen = timing.floor_flops([(10, False), (30, False)], 1, 1)
    assert frozen == {"per_epoch": 80, "once": 80}


def _run(round_: int, variant: str, recipe: str, seconds: float) -> dict:
    """A made-up whole run: ``seconds`` a run, a tenth of it per epoch."""
    return {
        "round": round_,
        "variant": variant,
        "recipe": recipe,
        "epochs": 3,
        "wall_seconds": seconds,
        "per_epoch_seconds": seconds / 10,
        "fixed_seconds": seconds * 0.7,
        "estimate_seconds": seconds,
    }


def test_compare_takes_the_ratio_per_round_then_its_median():
    runs = [
        _run(i + 1, "transfer", recipe, s)
        for i, pair in enumerate([(10.0, 5.0), (20.0, 5.0), (30.0, 10.0)])
        for recipe, s in zip(("reference", "ours"), pair, strict=True)
    ]
    runs.append({"round": 4, "variant": "transfer", "recipe": "ours", "error": "exit 1"})
    (row,) = bench_run.compare(runs)
    ratio = row["estimate_seconds"]["ratio"]
    # Per round 2, 4 and 3: median 3 (the ratio of the medians would say 20 / 5 = 4).
    assert ratio == {"median": 3.0, "min": 2.0, "max": 4.0, "n": 3}
    assert row["estimate_seconds"]["reference"]["median"] == 20.0
    assert row["rounds"] == 3


def test_study_sums_each_rounds_variants_and_skips_incomplete_rounds():
    runs = [_run(r, v, "reference", 60.0 * r) for r in (1, 2) for v in bench_run.VARIANTS]
    runs += [_run(r, v, "ours", 30.0) for r in (1, 2) for v in bench_run.VARIANTS]
    runs = [x for x in runs if not (x["round"] == 2 and x["variant"] == "finetune")]
    st = bench_run.study(runs, 30)
    # Round 1 only: 4 x 1 min against 4 x 0.5 min.
    assert st["reference_minutes"]["median"] == 4.0
    assert st["ours_minutes"]["median"] == 2.0
    assert st["speedup"] == {"median": 2.0, "min": 2.0, "max": 2.0, "n": 1}


def test_floor_uses_the_best_rate_and_names_runs_below_it():
    # Rates in GFLOP/s: the best, 2e-6, is 2,000 FLOP/s.
    inputs = [
        {"rates_gflops": {"matmul": 1e-6}, "layers": {"baseline": [[100, True]]}},
        {"rates_gflops": {"matmul": 2e-6, "conv": 5e-7}},
    ]
    # 70 training images count as 64 (whole batches of 32), 10 test images: forward 200,
    # weight gradient 200 FLOPs a training image, validation 200 a test image.
    fast, slow = _run(1, "baseline", "ours", 1.0), _run(1, "baseline", "reference", 1000.0)
    floor = bench_run.floors([fast, slow], inputs, 30, (70, 10))
    assert floor["best_gflops"] == pytest.approx(2e-6)
    per_epoch = (64 * 400 + 10 * 200) / 2000
    assert floor["variants"]["baseline"]["per_epoch_seconds"] == pytest.approx(per_epoch)
    assert floor["variants"]["baseline"]["estimate_seconds"] == pytest.approx(30 * per_epoch)
    assert floor["beaten"] == ["baseline/ours round 1"]

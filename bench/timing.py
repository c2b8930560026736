"""The bench's arithmetic, pure Python: whole-run fits, medians with their spread, ratios per
round and the arithmetic floor. No TensorFlow here, so ``tests/bench`` checks it in
milliseconds."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence


def spread(values: Sequence[float]) -> dict | None:
    """Median, min and max of ``values`` (None when there are none)."""
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ratios(slow: Sequence[float | None], fast: Sequence[float | None]) -> list[float]:
    """``slow[i] / fast[i]`` for every round ``i`` that has both figures."""
    return [s / f for s, f in zip(slow, fast, strict=True) if s and f]


def whole_run_fit(wall: float, marks: Sequence[float], epochs: int) -> dict:
    """Split one whole run into a fixed and a per-epoch cost.

    ``marks`` are the seconds from the start of the command at which each epoch's line
    appeared. The per-epoch cost is the median gap between consecutive marks (everything that
    recurs each epoch: training, validation, checkpoint, logs); the fixed cost is the rest of
    the run (start-up, data, model, tracing, the final save). Needs two marks or more.
    """
    if len(marks) < 2 or len(marks) != epochs:
        raise ValueError(f"need one mark per epoch, at least two: {len(marks)} for {epochs}")
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    per_epoch = statistics.median(gaps)
    return {"per_epoch": per_epoch, "fixed": wall - epochs * per_epoch, "gaps": gaps}


def estimate(fit: dict, epochs: int) -> float:
    """The whole run's seconds at ``epochs`` epochs, from :func:`whole_run_fit`."""
    return fit["fixed"] + epochs * fit["per_epoch"]


def floor_flops(layers: Sequence[tuple[int, bool]], train_images: int, test_images: int) -> dict:
    """The least arithmetic a run must do, from its weighted layers in order.

    ``layers``: (multiply-adds per image, trainable) of each convolution and dense layer.
    Per epoch: every training image forward through every layer, the weight gradient of each
    trainable layer and the input gradient of each layer after the first trainable one (2
    FLOPs a multiply-add each), and the test images through the layers from the first
    trainable one on. Once: the test images through the frozen front (a run may cache it).
    Pooling, activations and the optimizer's update are left out: the bound stays below.
    """
    first = next((i for i, (_, trainable) in enumerate(layers) if trainable), len(layers))
    forward = sum(2 * macs for macs, _ in layers)
    after_front = sum(2 * macs for macs, _ in layers[first:])
    weight_grads = sum(2 * macs for macs, trainable in layers if trainable)
    input_grads = sum(2 * macs for macs, _ in layers[first + 1 :])
    return {
        "per_epoch": train_images * (forward + weight_grads + input_grads)
        + test_images * after_front,
        "once": test_images * (forward - after_front),
    }

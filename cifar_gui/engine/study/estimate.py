"""What a study will run, and how long each step will take on this device (its pre-flight).

The cost of one run, in seconds::

    run = run_fixed + epochs * (epoch_fixed + checkpoint + steps * step)

``steps``: training batches per epoch (the images over the batch size); ``step``: one
training batch with its share of the validation pass (the validation images are in the same
ratio to the training images at every size, so their cost goes with the steps);
``epoch_fixed``: what every epoch adds whatever its size (the input pipeline's start, the
callbacks); ``checkpoint``: the checkpoint's save at each epoch's end (none with
``--no-checkpoint``); ``run_fixed``: what the run costs once (the model's build and compile,
the first call's trace, the final save). A :class:`Speed` holds them.

Where the speeds come from, best first:

1. **measured**: the sidecar of an earlier run of the same kind (variant, architecture, batch
   size, speed settings) on this device (:func:`search_folders`): its median epoch over its
   steps gives ``step`` (``epoch_fixed`` and ``checkpoint`` folded in, exact at the same
   size); what its fit took beyond that many median epochs (the trace), and its whole-run
   wall time (``RunRecord.wall_seconds``, where the sidecar has it) less the fit, give
   ``run_fixed``;
2. **calibrated**: :func:`calibrate` runs each kind twice, three epochs each, of
   :data:`CALIBRATION_STEPS` batches of random images of the real shapes and of enough
   times as many for an epoch of about :data:`LARGE_EPOCH_S`, through the real training
   code (the same speed settings, checkpoints included): the steady epochs (the fastest
   after the first) of the two sizes give ``step`` (the slope) and ``epoch_fixed`` (the
   intercept); the small run's first epoch's excess is the trace, its wall time less its
   fit the rest of ``run_fixed``, and what its fit took beyond its epochs ``checkpoint``.

This module imports neither Keras nor Qt: calibration imports the training code when it runs
(the command line's ``--dry-run``, the window's engine process).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cifar_gui.config import RunConfig
from cifar_gui.engine.quiet import quiet_logger
from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.study.layout import STUDY_FILE
from cifar_gui.engine.study.plan import StudyPlan, StudyStep
from cifar_gui.engine.study.runs import SavedRun, discover_runs

CALIBRATION_ORDER = ("pretrain", "baseline", "augmented", "transfer", "finetune")
CALIBRATION_STEPS = 8  # training batches per small calibration epoch: a compiled call on a CPU
# The large calibration run's epochs: this many times as long as the small one's, enough to
# last about LARGE_EPOCH_S.
MIN_SIZE, MAX_SIZE, LARGE_EPOCH_S = 3, 16, 1.5
CALIBRATION_EPOCHS = 3  # the first traces; the fastest of the others is the steady epoch
RUNS_FOLDER = "runs"  # train's default output folder, relative to where the command runs


@dataclass(frozen=True)
class Speed:
    """The costs of one kind of run on this device (see the module's docstring)."""

    step_s: float
    epoch_fixed_s: float = 0.0
    run_fixed_s: float = 0.0
    checkpoint_s: float = 0.0
    source: str = ""  # "measured: <sidecar>" or "calibrated"

    def run_seconds(self, epochs: int, steps: int, checkpoint: bool = True) -> float:
        """The whole run's wall seconds (see the module's docstring)."""
        epoch = self.epoch_fixed_s + (self.checkpoint_s if checkpoint else 0.0)
        return self.run_fixed_s + epochs * (epoch + steps * self.step_s)


@dataclass(frozen=True)
class StepEstimate:
    """One step of the study as the pre-flight lists it."""

    step: StudyStep
    config: RunConfig
    base: str  # what the transfer starts from, in words; "" for a run from scratch
    train_images: int
    test_images: int
    seconds: float | None  # None: no speed known for it
    source: str

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_images / self.config.batch_size)

    @property
    def what(self) -> str:
        if self.step.variant == "pretrain":
            return f"pretrain the base ({self.config.arch}, {len(self.config.classes)} classes)"
        return f"{self.step.variant} (seed {self.step.seed})"


@dataclass(frozen=True)
class StudyEstimate:
    """The study's steps in order, each with its estimate."""

    steps: tuple[StepEstimate, ...]

    @property
    def total_seconds(self) -> float | None:
        """The whole study's; None when a step's is unknown."""
        seconds = [s.seconds for s in self.steps]
        return None if None in seconds else float(sum(seconds))  # type: ignore[arg-type]

    def lines(self) -> list[str]:
        """One line per step (what, base, epochs, time), then the total."""
        out = []
        for i, s in enumerate(self.steps, 1):
            base = f", base {s.base}" if s.base else ""
            out.append(
                f"{i}. {s.what}{base}: {s.config.epochs} epochs of {s.steps_per_epoch} steps "
                f"({s.train_images} training, {s.test_images} test images), "
                f"{format_seconds(s.seconds)} ({s.source})"
            )
        out.append(f"total: {format_seconds(self.total_seconds)}")
        return out

    def step_seconds(self) -> tuple[float | None, ...]:
        return tuple(s.seconds for s in self.steps)


def format_seconds(seconds: float | None) -> str:
    """``1:02:03`` (hours, minutes, seconds), or ``unknown``."""
    if seconds is None:
        return "unknown"
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def kind_of(config: RunConfig) -> tuple[Any, ...]:
    """What makes two runs cost the same per step: variant, architecture (a pretrain's), batch
    size and the speed settings."""
    return (
        config.variant,
        config.arch if config.variant == "pretrain" else None,
        config.batch_size,
        config.precision,
        config.steps_per_execution,
        config.feature_cache,
        config.matmul_convolutions,
        config.fused_optimizer,
        config.threads,
        config.augments,
    )


def speed_of_record(record: RunRecord, source: str) -> Speed | None:
    """The speed a finished (or stopped) run measured: its median epoch (``epoch_seconds`` of
    its history, else its fit seconds over its epochs) over its steps; what its fit took
    beyond that many median epochs (the first call's trace) and its whole run's wall time
    beyond the fit (``wall_seconds``, where the sidecar has it) as fixed cost."""
    epochs = record.epochs_completed - (record.resumed_from_epoch or 0)
    if record.seconds is None or epochs < 1 or not record.train_images:
        return None
    batch = record.global_batch_size or (record.config.batch_size if record.config else 0)
    if not batch:
        return None
    steps = math.ceil(record.train_images / batch)
    timed = [s for s in record.history.get("epoch_seconds", ()) if math.isfinite(s)]
    steady = float(np.median(timed)) if len(timed) >= 2 else record.seconds / epochs
    wall = getattr(record, "wall_seconds", None)
    outside = max(0.0, wall - record.seconds) if wall is not None else 0.0
    fixed = outside + max(0.0, record.seconds - epochs * steady)
    return Speed(steady / steps, 0.0, fixed, 0.0, source)


def search_folders(plan: StudyPlan) -> list[Path]:
    """Where earlier runs of this device are looked for: the study's folder, the studies
    beside it (their records' folders) and ``runs/`` (train's default)."""
    studies = sorted(p.parent for p in plan.folder.parent.glob(f"*/{STUDY_FILE}"))
    return [plan.folder, *(s for s in studies if s != plan.folder), Path(RUNS_FOLDER)]


def measured_speeds(folders: Iterable[str | Path], device: str | None) -> dict[tuple, Speed]:
    """Speeds by :func:`kind_of`, from the sidecars in ``folders`` and their subfolders (a
    study's seed and base folders, the run folders in ``runs/``), of runs on ``device`` (any,
    when None); the latest run of a kind wins."""
    found: list[SavedRun] = []
    for folder in map(Path, folders):
        found += discover_runs(folder)
        if folder.is_dir():
            found += [r for sub in sorted(folder.iterdir()) for r in discover_runs(sub)]
    speeds: dict[tuple, Speed] = {}
    for run in sorted(found, key=lambda r: r.record.finished_at):
        record = run.record
        if record.config is None or (device is not None and record.device != device):
            continue
        speed = speed_of_record(record, f"measured: {run.sidecar.name}")
        if speed is not None:
            speeds[kind_of(record.config)] = speed
    return speeds


def step_configs(
    plan: StudyPlan, class_names: Sequence[str], counts: Mapping[str, Sequence[int]]
) -> list[tuple[StudyStep, RunConfig, int, int]]:
    """Each step with its config and its training and test images (``counts``: the data
    set's images per class and split, as :meth:`Dataset.counts`)."""
    from cifar_gui.engine.data.dataset import resolve_classes

    base = plan.base_model(class_names) if plan.pretrain_base else None
    out = []
    pair = resolve_classes(plan.template.classes, class_names)
    for step in plan.step_list():
        if step.variant == "pretrain":
            config = plan.base_config(class_names)
        else:
            config = plan.config_for(step.variant, pair, step.seed, base)
        indices = resolve_classes(config.classes, class_names)
        train, test = (_images(counts[s], indices, config) for s in ("train", "test"))
        out.append((step, config, train, test))
    return out


def _images(per_class: Sequence[int], indices: Sequence[int], config: RunConfig) -> int:
    """The images a run of ``config`` takes of these classes (``limit``: shared evenly)."""
    total = sum(int(per_class[i]) for i in indices)
    if config.limit is None:
        return total
    share = config.limit // len(indices)
    return min(total, sum(min(int(per_class[i]), share) for i in indices))


def base_words(plan: StudyPlan, config: RunConfig) -> str:
    """What a step's base is, in words."""
    if config.variant not in ("transfer", "finetune"):
        return ""
    if config.base:
        here = " (pretrained in step 1)" if plan.pretrain_base else ""
        return f"{Path(config.base).name}{here}"
    return {"imagenet": "VGG16 ImageNet", "none": "VGG16 random"}.get(
        config.weights, f"VGG16 {config.weights}"
    )


def estimate_study(
    plan: StudyPlan,
    class_names: Sequence[str],
    counts: Mapping[str, Sequence[int]],
    speeds: Mapping[tuple, Speed],
) -> StudyEstimate:
    """The study's steps with their estimated seconds at ``speeds`` (by :func:`kind_of`)."""
    out = []
    for step, config, train, test in step_configs(plan, class_names, counts):
        speed = speeds.get(kind_of(config))
        steps = math.ceil(train / config.batch_size)
        seconds = None
        if speed is not None:
            seconds = speed.run_seconds(config.epochs, steps, config.checkpoint)
        source = speed.source if speed is not None else "no speed"
        out.append(
            StepEstimate(step, config, base_words(plan, config), train, test, seconds, source)
        )
    return StudyEstimate(tuple(out))


# --------------------------------------------------------------------------------------
# Calibration: a few real training steps of each kind on random images of the real shapes


def calibrate(
    configs: Sequence[tuple[RunConfig, int, int]],
    class_names: Sequence[str],
    image_shape: tuple[int, int, int] = (32, 32, 3),
    known: Mapping[tuple, Speed] | None = None,
) -> dict[tuple, Speed]:
    """Speeds of the kinds of ``configs`` (each with its real training and test images) not
    in ``known``: runs of three epochs of random images at two sizes (see the module's
    docstring) through :func:`~cifar_gui.engine.training.run.run_training`, in a temporary
    folder. The pretrain (if any) and transfer run first: the transfer takes the
    calibration's base, finetune the calibration's transfer."""
    known = dict(known or {})
    first: dict[tuple, tuple[RunConfig, int, int]] = {}
    for item in configs:
        first.setdefault(kind_of(item[0]), item)
    todo = sorted(first.values(), key=lambda c: CALIBRATION_ORDER.index(c[0].variant))
    wanted = {v for v in (c[0].variant for c in todo) if kind_of(first_of(todo, v)) not in known}
    # Finetune continues a transfer model, a transfer of the study's base needs that base:
    # they run first, whether their own speed is known or not.
    if "finetune" in wanted:
        wanted.add("transfer")
    transfer = first_of(todo, "transfer")
    pretrained_here = transfer is not None and transfer.base and not Path(transfer.base).is_file()
    if "transfer" in wanted and pretrained_here:
        wanted.add("pretrain")
    speeds: dict[tuple, Speed] = {}
    made: dict[str, Path] = {}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="cifar-gui-calibration-") as tmp:
        for config, train, test in todo:
            kind = kind_of(config)
            if config.variant not in wanted:
                continue
            changes: dict[str, Any] = {
                "epochs": CALIBRATION_EPOCHS,
                "limit": None,
                "train_limit": None,
                "checkpoint": config.checkpoint,  # its saves are timed too
            }
            if config.variant == "transfer" and "pretrain" in made:
                changes["base"] = str(made["pretrain"])
            elif config.variant == "transfer" and not config.base:
                changes["weights"] = "none"  # as fast as ImageNet's, and no download
            if config.variant == "finetune":
                changes["from_model"] = str(made["transfer"])

            run_config = config.replace(**changes)
            share = test / max(train, 1)  # the test images keep their ratio to the training's

            def timed_run(size: int, run: RunConfig = run_config, share: float = share) -> _Timed:
                steps = size * CALIBRATION_STEPS
                n_test = max(run.batch_size, round(steps * run.batch_size * share))
                data = _random_data(rng, run, class_names, image_shape, steps, n_test)
                return _timed_run(run.replace(out_dir=f"{tmp}/{run.variant}-{size}"), data)

            small = timed_run(1)
            made[config.variant] = small.path
            if kind in known:  # only its model was wanted
                continue
            # The large run's epochs last about LARGE_EPOCH_S: a slope measured over a second
            # or more, whatever the model's cost.
            size = min(MAX_SIZE, max(MIN_SIZE, math.ceil(LARGE_EPOCH_S / max(small.steady, 1e-3))))
            large = timed_run(size)
            slope = (large.steady - small.steady) / ((size - 1) * CALIBRATION_STEPS)
            if slope <= 0:  # the machine's noise beat the difference: no intercept then
                slope = large.steady / (size * CALIBRATION_STEPS)
            epoch_fixed = max(0.0, small.steady - CALIBRATION_STEPS * slope)
            trace = max(0.0, small.epochs[0] - small.steady)
            run_fixed = max(0.0, small.wall - small.fit) + trace
            speeds[kind] = Speed(slope, epoch_fixed, run_fixed, small.checkpoint, "calibrated")
    return speeds


@dataclass(frozen=True)
class _Timed:
    """What a calibration run took: wall and fit seconds, its epochs' (as the run's epoch
    events say), and its checkpoints' (what the fit took beyond its epochs, each epoch)."""

    path: Path
    wall: float
    fit: float
    epochs: tuple[float, ...]

    @property
    def steady(self) -> float:
        """An epoch without the first call's trace: the fastest after the first (the least
        disturbed by whatever else the machine runs)."""
        return min(self.epochs[1:])

    @property
    def checkpoint(self) -> float:
        return max(0.0, self.fit - sum(self.epochs)) / len(self.epochs)


def _timed_run(config: RunConfig, data: Any) -> _Timed:
    from cifar_gui.engine.events import EpochEvent
    from cifar_gui.engine.training.run import run_training

    epochs: list[float] = []

    def sink(event: Any) -> None:
        if isinstance(event, EpochEvent):
            epochs.append(event.seconds)

    started = time.perf_counter()
    # Each calibration run builds its models anew, so TensorFlow warns that their frozen
    # front's function "triggered retracing": expected here, and noise on a dry-run.
    with quiet_logger("tensorflow"):
        result = run_training(config, sink, dataset=data)
    wall = time.perf_counter() - started
    return _Timed(result.path, wall, result.record.seconds or sum(epochs), tuple(epochs))


def _random_data(
    rng: np.random.Generator,
    config: RunConfig,
    class_names: Sequence[str],
    image_shape: tuple[int, int, int],
    steps: int,
    n_test: int,
) -> Any:
    """A data set of random images: ``steps`` batches for training, ``n_test`` for testing,
    labelled with ``config``'s classes."""
    from cifar_gui.engine.data.dataset import Dataset, resolve_classes

    labels = np.asarray(resolve_classes(config.classes, class_names))
    n_train = steps * config.batch_size
    return Dataset(
        rng.integers(0, 256, (n_train, *image_shape), dtype=np.uint8),
        rng.choice(labels, n_train).astype(np.int64),
        rng.integers(0, 256, (n_test, *image_shape), dtype=np.uint8),
        rng.choice(labels, n_test).astype(np.int64),
        tuple(class_names),
        "calibration",
    )


def first_of(configs: Sequence[tuple[RunConfig, int, int]], variant: str) -> RunConfig | None:
    """The first config of ``variant`` in ``configs``, if any."""
    return next((c for c, _, _ in configs if c.variant == variant), None)


def preflight(
    plan: StudyPlan,
    class_names: Sequence[str],
    counts: Mapping[str, Sequence[int]],
    image_shape: tuple[int, int, int] = (32, 32, 3),
    *,
    calibration: bool = True,
) -> StudyEstimate:
    """The study's steps and their estimates on this device, for a data set of ``class_names``
    with ``counts`` (:meth:`Dataset.counts`) images of ``image_shape``: speeds measured by
    earlier runs (:func:`search_folders`), and calibrated for the kinds that have none
    (``calibration``). Loads TensorFlow (the device's name; the calibration's training)."""
    from cifar_gui.engine.training.run import describe_device

    speeds = measured_speeds(search_folders(plan), describe_device())
    if calibration:
        configs = [(c, tr, te) for _, c, tr, te in step_configs(plan, class_names, counts)]
        speeds |= calibrate(configs, class_names, image_shape, known=speeds)
    return estimate_study(plan, class_names, counts, speeds)


# Training cost of an epoch relative to the baseline's, for the window's study ETA when the
# pre-flight estimate (:mod:`cifar_gui.engine.study.estimate`) was not computed and a variant
# has not run yet: multiply-accumulates at 32x32 of the small CNN (~8.8 M, x3 for training)
# and of VGG16 (~313 M, forward only when frozen; blocks 3-5 backward too for finetune); a
# pretrain of the small CNN sees four times the images. Rough; measured epochs replace them.
RELATIVE_EPOCH_COST = {
    "pretrain": 4.0,
    "baseline": 1.0,
    "augmented": 1.0,
    "transfer": 12.0,
    "finetune": 28.0,
}


# --------------------------------------------------------------------------------------
# Time left


def estimate_epoch_seconds(variant: str, measured: Mapping[str, float]) -> float | None:
    """Seconds an epoch of ``variant`` takes: measured, or scaled from the measured variant
    closest in cost (:data:`RELATIVE_EPOCH_COST`); None when nothing is measured yet."""
    if variant in measured:
        return measured[variant]
    if not measured:
        return None
    cost = RELATIVE_EPOCH_COST
    nearest = min(measured, key=lambda v: abs(cost[v] - cost[variant]))
    return measured[nearest] * cost[variant] / cost[nearest]


def study_eta(
    later: Sequence[tuple[str, int, float | None]], run_eta: float, measured: Mapping[str, float]
) -> float | None:
    """Seconds to the end of the study: the run in progress (``run_eta``, its own estimate)
    and each later step (variant, epochs, its pre-flight estimate or None): its epochs at
    the seconds per epoch this study measured for the variant, else its pre-flight estimate,
    else its epochs at :func:`estimate_epoch_seconds`; None when unknown."""
    total = run_eta
    for variant, epochs, estimate in later:
        if variant not in measured and estimate is not None:
            total += estimate
            continue
        seconds = estimate_epoch_seconds(variant, measured)
        if seconds is None:
            return None
        total += epochs * seconds
    return total

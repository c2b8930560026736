"""Frozen configuration of one training run, saved beside every model and history.

The defaults are the seed tutorial's numbers: deer (4) vs horse (7), batch 32, 30 epochs,
RMSprop with 1e-4 for the small CNN and 2e-5 for the VGG16 variants, and the
``image_data_generator`` augmentation settings.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

SEED_VARIANTS = ("baseline", "augmented", "transfer", "finetune")  # the seed's: a study's runs
VARIANTS = (*SEED_VARIANTS, "pretrain")
# pretrain: a base network trained on the classes that are not the chosen pair (see
# cifar_gui.engine.pretrain); its convolutional layers are what ``transfer --base`` reuses.
PRETRAIN_ARCHS = ("cnn", "vgg16")
FILL_MODES = ("nearest", "constant", "reflect", "wrap")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
MATMUL_CONVOLUTIONS = ("auto", "on", "off")
STRATEGIES = ("default", "mirrored", "multi-worker")  # see cifar_gui.engine.distribute

# Bounds of the numeric settings. Each is far beyond a sensible run, but small enough that
# nothing downstream overflows: NumPy seeds are 32-bit, TensorFlow's thread counts 32-bit.
MAX_EPOCHS = 1_000_000  # an "endless" run (tests kill one) stays possible
MAX_BATCH_SIZE = 65_536
MAX_SEED = 2**32 - 1
MAX_LEARNING_RATE = 1.0
MAX_LIMIT = 1_000_000_000
MAX_STEPS_PER_EXECUTION = 100_000
MAX_THREADS = 4096
MAX_CLASSES = 1000


def check_type(name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    """Raise ValueError unless ``value`` is a ``kind`` (a bool is no number here)."""
    is_bool = isinstance(value, bool)
    wants_bool = kind is bool or (isinstance(kind, tuple) and bool in kind)
    if not isinstance(value, kind) or (is_bool and not wants_bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{name} must be of type {names}, not {type(value).__name__}")


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` when it is a whole number in [low, high]; else ValueError naming ``name``."""
    check_type(name, value, int)
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high:,} (got {value})")
    return value


def check_number(name: str, value: Any, low: float, high: float) -> float:
    """``value`` when it is a finite number in [low, high]; else ValueError naming ``name``."""
    check_type(name, value, (int, float))
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be a number from {low:g} to {high:g} (got {value})")
    return value


def check_limit(limit: Any) -> None:
    """A ``limit`` of images: None (all of them) or a whole number of at least 1."""
    if limit is not None:
        check_type("limit", limit, int)
        if limit < 1:  # worded for the command line's --limit 0
            raise ValueError(f"limit must be at least 1 (got {limit})")
        check_int("limit", limit, 1, MAX_LIMIT)


# Learning rates of the seed, per variant.
DEFAULT_LEARNING_RATES = {
    "baseline": 1e-4,
    "augmented": 1e-4,
    "transfer": 2e-5,
    "finetune": 2e-5,
    "pretrain": 1e-4,  # the small CNN's rate (arch "cnn"); VGG16: PRETRAIN_VGG16_LR
}
# VGG16 trained from random weights (offline): its seed rate, 2e-5, is for nudging a
# pretrained base, and learns too slowly from scratch.
PRETRAIN_VGG16_LR = 1e-4
# Sensible epochs of a pretrain per architecture (the command line's and the window's default).
PRETRAIN_EPOCHS = {"cnn": 15, "vgg16": 10}

# Suffix of the seed's file names: cifar10_{i}_{j}{suffix}.h5
FILE_SUFFIXES = {
    "baseline": "",
    "augmented": "_augm",
    "transfer": "_transferlearning",
    "finetune": "_finetuningtransferlearning",
    "pretrain": "_pretrainedbase",  # its classes: those of the base, not the pair
}


@dataclass(frozen=True)
class AugmentConfig:
    """Random image transforms with the meaning of Keras' ImageDataGenerator arguments."""

    rotation_deg: float = 40.0  # uniform in [-r, r] degrees
    width_shift: float = 0.2  # fraction of the width, uniform in [-s, s]
    height_shift: float = 0.2  # fraction of the height, uniform in [-s, s]
    shear_deg: float = 0.2  # shear angle in degrees (ImageDataGenerator's unit), [-s, s]
    zoom: float = 0.2  # zoom factors uniform in [1 - z, 1 + z], independently per axis
    horizontal_flip: bool = True  # flip half of the images left-right
    fill_mode: str = "nearest"  # how pixels outside the source are filled

    def __post_init__(self) -> None:
        check_number("rotation_deg", self.rotation_deg, 0.0, 180.0)
        check_number("width_shift", self.width_shift, 0.0, 1.0)
        check_number("height_shift", self.height_shift, 0.0, 1.0)
        check_number("shear_deg", self.shear_deg, 0.0, 90.0)
        check_number("zoom", self.zoom, 0.0, 1.0)
        if self.zoom >= 1.0:
            raise ValueError("zoom must be in [0, 1)")
        check_type("horizontal_flip", self.horizontal_flip, bool)
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {', '.join(FILL_MODES)}")

    @classmethod
    def from_dict(cls, data: Any) -> AugmentConfig:
        """From a JSON object; unknown keys are ignored, wrong types raise ValueError."""
        check_type("augment", data, dict)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run."""

    variant: str = "baseline"
    classes: tuple[str | int, ...] = ("deer", "horse")
    data: str | None = None  # None: the Keras cache of CIFAR-10
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float | None = None  # None: the seed's rate for the variant
    seed: int = 0
    weights: str = "imagenet"  # VGG16 base: "imagenet", "none" or a Keras weights file
    base: str | None = None  # VGG16 base taken from a model saved by this app
    from_model: str | None = None  # finetune: the transfer model to continue from
    unfreeze_from: str = "block3_conv1"  # finetune: first base layer to train
    limit: int | None = None  # first N training and N test images of the subset
    out_dir: str = "runs"
    use_augmentation: bool | None = None  # None: as the seed, every variant but baseline
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    strategy: str = "default"  # tf.distribute strategy; batch_size is per replica
    checkpoint: bool = True  # save a resumable checkpoint in out_dir/checkpoints every epoch
    keep_best: bool = False  # save the best validation accuracy's epoch, not the last one
    # Speed settings (see cifar_gui.engine.performance); "auto" picks the fastest setting that
    # keeps the accuracy on the hardware found. None of them changes what the model learns
    # except precision, whose reduced-precision arithmetic moves results by round-off only.
    precision: str = "auto"  # "auto", "float32", "mixed_bfloat16" or "mixed_float16"
    steps_per_execution: int | str = "auto"  # training batches per compiled call, or "auto"
    threads: int = 0  # TensorFlow intra-op threads; 0: TensorFlow's default (all cores)
    feature_cache: bool = True  # frozen leading layers run outside the training step
    matmul_convolutions: str = "auto"  # small maps' convolutions as matrix products; auto: CPUs
    fused_optimizer: bool = True  # RMSprop's update as TensorFlow's one fused kernel
    # Offline transfer learning (cifar_gui.engine.pretrain).
    arch: str = "cnn"  # pretrain: the network, "cnn" (the seed's small CNN) or "vgg16"
    excluded: tuple[str | int, ...] = ()  # pretrain: the pair the base must never see
    allow_overlap: bool = False  # transfer: accept a base that was trained on the pair's classes
    train_limit: int | None = None  # first N training images (all test images, unless limit)

    def __post_init__(self) -> None:
        # Every field is checked here, for the command line, the window and saved files alike.
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}: choose {', '.join(VARIANTS)}")
        check_type("classes", self.classes, tuple)
        for item in self.classes:
            check_type("a class", item, (str, int))
        if len(self.classes) < 2:
            raise ValueError("choose at least two classes")
        if len(self.classes) > MAX_CLASSES:
            raise ValueError(f"choose at most {MAX_CLASSES} classes")
        for name in ("data", "base", "from_model"):
            if getattr(self, name) is not None:
                check_type(name, getattr(self, name), str)
        for name in ("weights", "unfreeze_from", "out_dir"):
            check_type(name, getattr(self, name), str)
        check_int("epochs", self.epochs, 1, MAX_EPOCHS)
        check_int("batch size", self.batch_size, 1, MAX_BATCH_SIZE)
        if self.learning_rate is not None:
            # 0 is no rate (the seed's rate is asked for with None), so the bound is open.
            check_number("learning rate", self.learning_rate, 0.0, MAX_LEARNING_RATE)
            if self.learning_rate <= 0:
                raise ValueError(f"learning rate must be above 0 (got {self.learning_rate})")
        check_int("seed", self.seed, 0, MAX_SEED)
        check_limit(self.limit)
        if self.use_augmentation is not None:
            check_type("use_augmentation", self.use_augmentation, bool)
        check_type("augment", self.augment, AugmentConfig)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}: choose {', '.join(STRATEGIES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {self.precision!r}: choose {', '.join(PRECISIONS)}"
            )
        if self.steps_per_execution != "auto":
            if not isinstance(self.steps_per_execution, int) or isinstance(
                self.steps_per_execution, bool
            ):
                raise ValueError("steps per execution must be 'auto' or a whole number")
            check_int("steps per execution", self.steps_per_execution, 1, MAX_STEPS_PER_EXECUTION)
        check_int("threads", self.threads, 0, MAX_THREADS)
        check_type("checkpoint", self.checkpoint, bool)
        check_type("keep_best", self.keep_best, bool)
        check_type("feature_cache", self.feature_cache, bool)
        if self.matmul_convolutions not in MATMUL_CONVOLUTIONS:
            raise ValueError(
                f"unknown matmul_convolutions {self.matmul_convolutions!r}: choose "
                f"{', '.join(MATMUL_CONVOLUTIONS)}"
            )
        check_type("fused_optimizer", self.fused_optimizer, bool)
        if self.arch not in PRETRAIN_ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}: choose {', '.join(PRETRAIN_ARCHS)}")
        check_type("excluded", self.excluded, tuple)
        for item in self.excluded:
            check_type("an excluded class", item, (str, int))
        check_type("allow_overlap", self.allow_overlap, bool)
        if self.train_limit is not None:
            check_type("train_limit", self.train_limit, int)
            check_int("train_limit", self.train_limit, 1, MAX_LIMIT)

    @property
    def lr(self) -> float:
        """The learning rate in use: the explicit one or the seed's for the variant."""
        if self.learning_rate is None:
            if self.variant == "pretrain" and self.arch == "vgg16":
                return PRETRAIN_VGG16_LR
            return DEFAULT_LEARNING_RATES[self.variant]
        return self.learning_rate

    @property
    def augments(self) -> bool:
        """Whether training sees the augmented stream (auto: as the seed, every variant but
        the baseline; a pretrain neither: 40,000 images in few epochs need no augmentation)."""
        if self.use_augmentation is None:
            return self.variant not in ("baseline", "pretrain")
        return self.use_augmentation

    @classmethod
    def tiny(cls, **changes: Any) -> RunConfig:
        """A run of seconds, for tests and benchmarks: 2 epochs of batches of 4 over 16
        images per split; ``changes`` set other fields (``data``, ``out_dir``...)."""
        return cls(epochs=2, batch_size=4, limit=16, **changes)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        out = dataclasses.asdict(self)
        out["classes"] = list(self.classes)
        out["excluded"] = list(self.excluded)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        """Inverse of :meth:`to_dict`, for JSON read from a file: unknown keys are ignored so
        old sidecars still load; a value of the wrong type or range raises ValueError."""
        check_type("config", data, dict)
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "augment" in kwargs:
            kwargs["augment"] = AugmentConfig.from_dict(kwargs["augment"])
        if "classes" in kwargs:
            check_type("classes", kwargs["classes"], list)
            kwargs["classes"] = tuple(kwargs["classes"])
        if "excluded" in kwargs:
            check_type("excluded", kwargs["excluded"], list)
            kwargs["excluded"] = tuple(kwargs["excluded"])
        return cls(**kwargs)

"""Frozen configuration of one training run, saved beside every model and history.

The defaults are the seed tutorial's numbers: deer (4) vs horse (7), batch 32, 30 epochs,
RMSprop with 1e-4 for the small CNN and 2e-5 for the VGG16 variants, and the
``image_data_generator`` augmentation settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

VARIANTS = ("baseline", "augmented", "transfer", "finetune")
FILL_MODES = ("nearest", "constant", "reflect", "wrap")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multi-worker")  # see cifar_gui.engine.distribute

# Learning rates of the seed, per variant.
DEFAULT_LEARNING_RATES = {
    "baseline": 1e-4,
    "augmented": 1e-4,
    "transfer": 2e-5,
    "finetune": 2e-5,
}

# Suffix of the seed's file names: cifar10_{i}_{j}{suffix}.h5
FILE_SUFFIXES = {
    "baseline": "",
    "augmented": "_augm",
    "transfer": "_transferlearning",
    "finetune": "_finetuningtransferlearning",
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
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {', '.join(FILL_MODES)}")
        if not 0.0 <= self.zoom < 1.0:
            raise ValueError("zoom must be in [0, 1)")


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
    # Speed settings (see cifar_gui.engine.performance); "auto" picks the fastest setting that
    # keeps the accuracy on the hardware found. None of them changes what the model learns
    # except precision, whose reduced-precision arithmetic moves results by round-off only.
    precision: str = "auto"  # "auto", "float32", "mixed_bfloat16" or "mixed_float16"
    steps_per_execution: int | str = "auto"  # training batches per compiled call, or "auto"
    threads: int = 0  # TensorFlow intra-op threads; 0: TensorFlow's default (all cores)
    feature_cache: bool = True  # frozen base, no augmentation: its features computed once

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}: choose {', '.join(VARIANTS)}")
        if len(self.classes) < 2:
            raise ValueError("choose at least two classes")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch size must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}: choose {', '.join(STRATEGIES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {self.precision!r}: choose {', '.join(PRECISIONS)}"
            )
        if self.steps_per_execution != "auto" and (
            not isinstance(self.steps_per_execution, int) or self.steps_per_execution < 1
        ):
            raise ValueError("steps per execution must be 'auto' or at least 1")
        if self.threads < 0:
            raise ValueError("threads must be 0 (TensorFlow's default) or more")

    @property
    def lr(self) -> float:
        """The learning rate in use: the explicit one or the seed's for the variant."""
        return self.learning_rate or DEFAULT_LEARNING_RATES[self.variant]

    @property
    def augments(self) -> bool:
        """Whether training sees the augmented stream."""
        if self.use_augmentation is None:
            return self.variant != "baseline"
        return self.use_augmentation

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        out = dataclasses.asdict(self)
        out["classes"] = list(self.classes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so old sidecars still load."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "augment" in kwargs:
            aug_known = {f.name for f in dataclasses.fields(AugmentConfig)}
            kwargs["augment"] = AugmentConfig(
                **{k: v for k, v in kwargs["augment"].items() if k in aug_known}
            )
        if "classes" in kwargs:
            kwargs["classes"] = tuple(kwargs["classes"])
        return cls(**kwargs)

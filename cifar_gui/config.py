"""Frozen configuration of one training run, saved beside every model and history.

The defaults are the seed tutorial's numbers: deer (4) vs horse (7), batch 32, 30 epochs,
RMSprop with 1e-4 for the small CNN and 2e-5 for the VGG16 variants, and the
``image_data_generator`` augmentation settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cifar_gui import tutorial
from cifar_gui.settings import (
    CLASSES_HELP,
    COMMANDS_WITH_SETTINGS,
    SAME_AS_TRAINING,
    Flag,
    Setting,
    auto_or_positive,
    check_int,
    check_number,
    check_type,
    option,
    option_meta,
)

SEED_VARIANTS = ("baseline", "augmented", "transfer", "finetune")  # the seed's: a study's runs
VARIANTS = (*SEED_VARIANTS, "pretrain")
# pretrain: a base network trained on the classes that are not the chosen pair (see
# cifar_gui.engine.training.pretrain); its convolutional layers are what ``transfer --base`` reuses.
PRETRAIN_ARCHS = ("cnn", "vgg16")
FILL_MODES = ("nearest", "constant", "reflect", "wrap")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
MATMUL_CONVOLUTIONS = ("auto", "on", "off")
STRATEGIES = ("default", "mirrored", "multi-worker")  # see cifar_gui.engine.training.distribute

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


def check_limit(limit: Any) -> None:
    """A ``limit`` of images: None (all of them) or a whole number of at least 1."""
    if limit is not None:
        check_type("limit", limit, int)
        if limit < 1:  # worded for the command line's --limit 0
            raise ValueError(f"limit must be at least 1 (got {limit})")
        check_int("limit", limit, 1, MAX_LIMIT)


# Sensible epochs of a pretrain per architecture (the command line's and the window's default).
PRETRAIN_EPOCHS = {"cnn": 15, "vgg16": 10}


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


_ALL = COMMANDS_WITH_SETTINGS
_TRAIN_STUDY = ("train", "study")
_DATA_HELP = "archive, batches folder or image folder (default: Keras cache)"
_LIMIT_HELP = "N training and N test images, shared evenly by the classes"
_CHECKPOINT_HELP = "do not keep a resumable checkpoint in OUT/checkpoints/"
_PAIR_TEXT = " ".join(tutorial.PAIR)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run; each field's :class:`Setting` (see
    :func:`setting`) says how the command line and the window offer it."""

    variant: str = option(
        "baseline",
        # A pretrain trains other classes than --classes: it has its own command.
        flag=Flag("--variant", choices=SEED_VARIANTS),
        shown="run",
    )
    classes: tuple[str | int, ...] = option(
        tutorial.PAIR,
        flag=Flag(
            "--classes",
            _ALL,
            {
                "train": f"{CLASSES_HELP} (default: {_PAIR_TEXT})",
                "study": f"{CLASSES_HELP} (default: {_PAIR_TEXT})",
                "pretrain": f"the pair the base must never see: {CLASSES_HELP} "
                f"(default: {_PAIR_TEXT})",
            },
        ),
        shown="dataset",
    )
    data: str | None = option(  # None: the Keras cache of CIFAR-10
        None, flag=Flag("--data", _ALL, _DATA_HELP), on_resume="new", shown="dataset"
    )
    epochs: int = option(
        30,
        flag=Flag(
            "--epochs",
            _ALL,
            {
                "train": "default 30; with --resume: the new total",
                "study": "per run (default 30)",
                "pretrain": ", ".join(f"default {n} for {a}" for a, n in PRETRAIN_EPOCHS.items()),
            },
            kind=int,
        ),
        on_resume="new",
        shown="run",
    )
    batch_size: int = option(32, flag=Flag("--batch-size", _ALL, kind=int), shown="run")
    learning_rate: float | None = option(  # None: the seed's rate for the variant
        None,
        flag=Flag(
            "--lr",
            ("train", "pretrain"),
            {
                "train": "learning rate, above 0 and at most 1 (default: the tutorial's, per "
                "variant)",
                "pretrain": "learning rate (default: 1e-4; the tutorial's CNN rate)",
            },
            kind=float,
        ),
        shown="run",
    )
    seed: int = option(
        0, flag=Flag("--seed", _ALL, f"0 to {MAX_SEED} (default: 0)", kind=int), shown="run"
    )
    weights: str = option(  # VGG16 base: "imagenet", "none" or a Keras weights file
        "imagenet",
        flag=Flag(
            "--weights",
            _ALL,
            {
                "train": "VGG16 base: imagenet, none or FILE",
                "study": "VGG16 base of transfer: imagenet, none (random: nothing pretrained) or "
                "FILE (default: imagenet)",
                "pretrain": "vgg16: start from imagenet, none (default: offline) or a weights FILE",
            },
        ),
        shown="transfer",
        pretrain="none",  # offline: a pretrain stands in for ImageNet
    )
    base: str | None = option(  # VGG16 base taken from a model saved by this app
        None,
        flag=Flag(
            "--base",
            _TRAIN_STUDY,
            {
                "train": "transfer: take the convolutional base of a model saved by this app (a "
                "VGG16 or a small CNN, e.g. one made by pretrain)",
                "study": "take the VGG16 base from a model saved by this app",
            },
        ),
        shown="transfer",
    )
    from_model: str | None = option(  # finetune: the transfer model to continue from
        None,
        flag=Flag("--from", help="finetune: the transfer model to continue"),
        on_resume="follows",
        shown="transfer",
    )
    unfreeze_from: str = option("block3_conv1")  # finetune: first base layer to train
    limit: int | None = option(  # first N training and N test images of the subset
        None, flag=Flag("--limit", _ALL, _LIMIT_HELP, kind=int), shown="run"
    )
    out_dir: str = option(
        "runs",
        flag=Flag(
            "--out",
            _ALL,
            {
                "train": "the run's folder (default: a new folder in runs)",
                "pretrain": "the run's folder (default: a new folder in runs)",
                "study": "the study folder (default: study)",
            },
        ),
        on_resume="follows",  # a resumed run is saved beside its checkpoints
        shown="output",
    )
    use_augmentation: bool | None = option(  # None: as the seed, every variant but baseline
        None,
        flag=Flag(
            "--augment",
            ("train", "pretrain"),
            {
                "train": "augmented training stream (auto: all variants but baseline)",
                "pretrain": "augmented training stream (default off: 40,000 images need none in "
                "few epochs)",
            },
            choices={"train": ("auto", "on", "off"), "pretrain": ("off", "on")},
            words={"auto": None, "on": True, "off": False},
        ),
        shown="augmentation",
        pretrain=False,
    )
    augment: AugmentConfig = field(
        default_factory=AugmentConfig, metadata=option_meta(shown="augmentation")
    )
    strategy: str = option(  # tf.distribute strategy; batch_size is per replica
        "default",
        flag=Flag(
            "--strategy",
            _TRAIN_STUDY,
            "devices: default (one), mirrored (all local "
            "GPUs), multi-worker (TF_CONFIG); --batch-size is per device",
            choices=STRATEGIES,
        ),
        on_resume="new",
        shown="advanced",
    )
    checkpoint: bool = option(  # save a resumable checkpoint in out_dir/checkpoints every epoch
        True,
        flag=Flag("--no-checkpoint", _ALL, _CHECKPOINT_HELP),
        on_resume="follows",  # a resumed run goes on with its checkpoint
    )
    keep_best: bool = option(  # save the best validation accuracy's epoch, not the last one
        False,
        flag=Flag(
            "--keep-best",
            _TRAIN_STUDY,
            "save the epoch of the best validation accuracy "
            "as the model, not the last one (the sidecar names it; the checkpoint keeps "
            "the last)",
        ),
        shown="advanced",
    )
    # Speed settings (see cifar_gui.engine.training.performance); "auto" picks the fastest
    # setting that keeps the accuracy on the hardware found. None of them changes what the
    # model learns except precision, whose reduced-precision arithmetic moves results by
    # round-off only.
    precision: str = option(
        "auto",
        flag=Flag(
            "--precision",
            _ALL,
            "auto: mixed_bfloat16 on CPUs with bfloat16 instructions, mixed_float16 on GPUs",
            choices=PRECISIONS,
            group="speed",
        ),
        shown="advanced",
    )
    steps_per_execution: int | str = option(  # training batches per compiled call, or "auto"
        "auto",
        flag=Flag(
            "--steps-per-execution",
            _TRAIN_STUDY,
            "training batches per compiled call (auto: 8 on a CPU, 32 on a GPU)",
            kind=auto_or_positive,
            metavar="N|auto",
            group="speed",
        ),
    )
    threads: int = option(  # TensorFlow intra-op threads; 0: TensorFlow's default (all cores)
        0,
        flag=Flag(
            "--threads",
            _TRAIN_STUDY,
            "TensorFlow intra-op threads (0: all cores)",
            kind=int,
            group="speed",
        ),
    )
    feature_cache: bool = option(  # frozen leading layers run outside the training step
        True,
        flag=Flag(
            "--no-feature-cache",
            _TRAIN_STUDY,
            "run the whole model every training step, frozen layers included",
            group="speed",
        ),
    )
    matmul_convolutions: str = option(  # small maps' convolutions as matrix products
        "auto",
        flag=Flag(
            "--matmul-conv",
            _TRAIN_STUDY,
            "convolutions on small maps as matrix products (auto: on CPUs)",
            choices=MATMUL_CONVOLUTIONS,
            group="speed",
        ),
    )
    fused_optimizer: bool = option(  # RMSprop's update as TensorFlow's one fused kernel
        True,
        flag=Flag(
            "--no-fused-optimizer",
            _TRAIN_STUDY,
            "Keras' own RMSprop update (default: TensorFlow's fused kernel)",
            group="speed",
        ),
    )
    # Offline transfer learning (cifar_gui.engine.training.pretrain).
    arch: str = option(  # pretrain: the network, "cnn" (the seed's small CNN) or "vgg16"
        "cnn",
        flag=Flag(
            "--arch",
            ("pretrain",),
            "cnn: the tutorial's small CNN (fast on a CPU); vgg16: VGG16 (for a GPU)",
            choices=PRETRAIN_ARCHS,
        ),
        shown="pretrain",
    )
    # pretrain: the pair the base must never see (pretrain's --classes; see pretrain_config)
    excluded: tuple[str | int, ...] = option(())
    allow_overlap: bool = option(  # transfer: accept a base trained on the pair's classes
        False,
        flag=Flag(
            "--allow-overlap",
            _TRAIN_STUDY,
            "transfer: accept a --base trained on a class of the pair (refused by default)",
        ),
        shown="transfer",
    )
    train_limit: int | None = option(None)  # first N training images (all test, unless limit)

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
                return tutorial.PRETRAIN_VGG16_LEARNING_RATE
            return tutorial.LEARNING_RATES[self.variant]
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


SETTINGS: dict[str, Setting] = {
    f.name: f.metadata["setting"] for f in dataclasses.fields(RunConfig)
}


def setting(name: str) -> Setting:
    """The :class:`Setting` of the RunConfig field ``name``."""
    return SETTINGS[name]


def flagged(command: str) -> dict[str, Flag]:
    """The fields ``command`` (train, pretrain or study) takes on the command line, by name,
    in field order."""
    return {n: s.flag for n, s in SETTINGS.items() if s.flag and command in s.flag.commands}


def pretrain_defaults() -> dict[str, Any]:
    """The fields whose default for a pretrain differs from a training run's."""
    return {n: s.pretrain for n, s in SETTINGS.items() if s.pretrain is not SAME_AS_TRAINING}


def run_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """The fields that define a run (:data:`ON_RESUME` "keep") in which ``a`` and ``b``
    differ: empty when one continues the other's run."""
    return [
        name
        for name, s in SETTINGS.items()
        if s.on_resume == "keep" and getattr(a, name) != getattr(b, name)
    ]

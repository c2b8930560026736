"""The seed's whole study: ``baseline``, ``augmented``, ``transfer`` and ``finetune`` (from the
transfer model just trained), one after the other in one study folder, then its report.

Layout of a study folder::

    <study>/study.json                  the study record: its settings, base, runs, their state
    <study>/base/cifar10_<8>_pretrainedbase.h5   the base pretrained here (offline only)
    <study>/cifar10_4_7.h5 (+ .json)    each run's final model and sidecar, the seed's names
    <study>/checkpoints/<model stem>/   each run's resumable checkpoint (as ``train`` keeps)
    <study>/report/report.html          the report (:mod:`~cifar_gui.engine.study.report`), PNGs

With ``seeds`` K > 1 each seed's four runs (and their checkpoints) go to ``<study>/seed-<s>/``
instead; K = 1 keeps the flat layout above, so studies of earlier versions still resume.

Where the VGG16 ImageNet weights cannot be had (not in the Keras cache, the host not
reachable) and no other base was asked for (``--base``, ``--weights FILE|none``), the study
first pretrains a base on the other classes (:func:`~cifar_gui.engine.training.pretrain.
pretrain_config`, architecture :data:`BASE_ARCH` or the study's ``base_arch``) in
``<study>/base/``: a step of the study like the others (resumable, not redone once done),
from which every transfer starts. The record's ``base`` says which base was used and why.

A study is a plan that yields run plans (:meth:`StudyPlan.steps`): each run is
:func:`cifar_gui.engine.training.run.run_training` with the seed's settings for its variant, so a
study's runs are the runs ``train`` makes, and they report the same events; the study wraps
each run's start and end in a :class:`~cifar_gui.engine.events.StudyProgress`.

Killing a study at any moment and resuming it continues where it stopped: a run whose final
model and sidecar are complete is not trained again, a run with an unfinished checkpoint
continues at its next epoch (its history is then the one an uninterrupted run would have
had), and a run with nothing yet starts. The study record is written atomically at every
change of state; on resume the files decide (a kill may land between a save and the record's
update). One rare case trains a run again from its first epoch: a kill after its last
checkpoint and before its final model was saved (the run is deterministic, so it ends with
the same history).

This module imports neither Keras nor Qt (the window plans and follows studies with it);
training and the report are imported when a study runs.
"""

from __future__ import annotations

import os
import shlex
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cifar_gui.config import (
    MAX_EPOCHS,
    MAX_SEED,
    PRETRAIN_ARCHS,
    PRETRAIN_EPOCHS,
    SEED_VARIANTS,
    RunConfig,
    flagged,
    run_differences,
)
from cifar_gui.engine.errors import ModelError, UserError
from cifar_gui.engine.events import (
    Event,
    LiveRequest,
    RunFinished,
    RunStarted,
    Sink,
    StopFlag,
    StudyFinished,
    StudyProgress,
    ignore,
)
from cifar_gui.engine.files import check_can_write, read_json, write_json
from cifar_gui.engine.record import RunRecord, model_filename, read_record, sidecar_path
from cifar_gui.engine.study.layout import BASE_DIR, REPORT_DIR, STUDY_FILE
from cifar_gui.engine.training.checkpoints import (
    STATE_FILE,
    Checkpoint,
    check_resumable,
    checkpoint_dir,
    read_checkpoint,
)
from cifar_gui.engine.training.pretrain import pretrain_config
from cifar_gui.engine.training.runner import LiveSource, RunPlan
from cifar_gui.settings import check_int, check_type

STUDY_VERSION = 2  # 2: seeds, the base and a list of runs with their seeds; 1 still reads
READABLE_VERSIONS = (1, 2)
MAX_SEEDS = 100
SEED_FOLDER = "seed-{}"  # the runs of one seed, when a study has several

# The base an offline study pretrains (where the ImageNet weights cannot be had), and why
# this architecture: the lead sets both from the measurement of VGG16-on-8-classes against
# the small CNN on this machine (time, and what the transfer reaches).
BASE_ARCH = "cnn"
# Why each network may be the offline base; measured on a 2-core CPU (docs/study.md, "Which
# base offline"): the small CNN is the default because it pretrains 8 times faster and its
# transfer reached more.
BASE_ARCH_REASONS = {
    "cnn": (
        "the tutorial's small CNN, the default: measured on a 2-core CPU it pretrained in "
        "3 minutes to 72.8% on the eight classes and its transfer reached 75.8%, where VGG16 "
        "took 25 minutes for 4 epochs to 74.6% and its transfer 70.9%"
    ),
    "vgg16": (
        "the tutorial's VGG16 architecture, trained here whole from random weights (chosen "
        "with --base-arch vgg16; the small CNN is the default, 8 times faster to pretrain)"
    ),
}
OFFLINE_REASON = "ImageNet weights unavailable offline"
DEFAULT_FOLDER = "study"  # the command line's, without --out
RESUMED_STUDY_CHANGES = ("data",)  # a resumed study runs as recorded; only the data moves
STATES = ("pending", "running", "stopped", "done")

# Where Keras keeps the VGG16 ImageNet weights (keras.applications.vgg16), and where from.
VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_HOST = ("storage.googleapis.com", 443)
REACH_TIMEOUT_S = 3.0  # a quick look, not a download: offline must fail in seconds

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


@dataclass(frozen=True)
class StudyRun:
    """One run of a study as the study record holds it."""

    variant: str  # a seed variant, or "pretrain" (the base pretrained here)
    state: str = "pending"  # pending, running, stopped, done
    model: str | None = None  # the final model's path in the study folder, once known
    seed: int | None = None  # None: the base (pretrained once), or a version-1 record's run

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "seed": self.seed,
            "state": self.state,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Any) -> StudyRun:
        check_type("run", data, dict)
        variant, state, model = data.get("variant"), data.get("state"), data.get("model")
        seed = data.get("seed")
        if variant not in (*SEED_VARIANTS, "pretrain"):
            raise ValueError(f"unknown variant {variant!r}")
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        if seed is not None:
            check_type("seed", seed, int)
        if model is not None:
            check_type("model", model, str)
            parts = Path(model).parts
            # A file of the study folder or of its base or seed folders, nothing else.
            if not parts or Path(model).is_absolute() or ".." in parts or len(parts) > 2:
                raise ValueError(f"model {model!r} is not a file of the study folder")
        return cls(variant, state, model, seed)


@dataclass(frozen=True)
class StudyStep:
    """One step of a study, in order: the base's pretrain (``seed`` None) or a run."""

    variant: str
    seed: int | None


@dataclass(frozen=True)
class StudyPlan:
    """A checked study: its folder and settings (a :class:`RunConfig` whose variant, learning
    rate, out_dir and from_model each run sets), whether it continues a study there, how many
    seeds each variant runs, and whether it pretrains its base first (``base_arch``, with
    ``base_reason``: why this base)."""

    folder: Path
    template: RunConfig
    resume: bool = False
    seeds: int = 1
    pretrain_base: bool = False
    base_arch: str = BASE_ARCH
    base_reason: str = ""
    base_epochs: int | None = None  # None: PRETRAIN_EPOCHS of the architecture

    def __post_init__(self) -> None:
        check_int("seeds", self.seeds, 1, MAX_SEEDS)
        check_int("the last seed", self.template.seed + self.seeds - 1, 0, MAX_SEED)
        if self.base_arch not in PRETRAIN_ARCHS:
            raise ValueError(f"unknown base arch {self.base_arch!r}")
        if self.base_epochs is not None:
            check_int("base epochs", self.base_epochs, 1, MAX_EPOCHS)

    @property
    def seed_values(self) -> range:
        """The seeds of the runs: the template's and the next ones."""
        return range(self.template.seed, self.template.seed + self.seeds)

    def run_folder(self, seed: int | None = None) -> Path:
        """Where the runs of ``seed`` go: the study folder, or its ``seed-<s>`` folder when
        the study has several seeds."""
        if self.seeds == 1:
            return self.folder
        return self.folder / SEED_FOLDER.format(seed)

    @property
    def base_epoch_count(self) -> int:
        """The epochs of the base's pretrain."""
        return self.base_epochs or PRETRAIN_EPOCHS[self.base_arch]

    def step_list(self) -> list[StudyStep]:
        """The study's steps in order: the base's pretrain, if any, then each seed's four runs
        (finetune of seed s right after the transfer of seed s it continues)."""
        first = [StudyStep("pretrain", None)] if self.pretrain_base else []
        return first + [StudyStep(v, s) for s in self.seed_values for v in SEED_VARIANTS]

    def base_config(self, class_names: Sequence[str]) -> RunConfig:
        """The pretrain of the study's base: the other classes of the data set, the study's
        data, limit, batch, seed and speed settings, saved in ``<study>/base/``."""
        t = self.template
        shared = (
            "data", "batch_size", "seed", "limit", "strategy", "checkpoint", "precision",
            "steps_per_execution", "threads", "matmul_convolutions", "fused_optimizer",
        )  # fmt: skip
        return pretrain_config(
            class_names,
            t.classes,
            arch=self.base_arch,
            epochs=self.base_epoch_count,
            out_dir=str(self.folder / BASE_DIR),
            **{name: getattr(t, name) for name in shared},
        )

    def base_model(self, class_names: Sequence[str]) -> Path:
        """Where the base pretrained here is saved (its final model)."""
        indices = sorted(_indices(self.base_config(class_names).classes, class_names))
        return self.folder / BASE_DIR / model_filename("pretrain", indices)

    def config_for(
        self,
        variant: str,
        class_indices: Sequence[int],
        seed: int | None = None,
        base: str | Path | None = None,
    ) -> RunConfig:
        """The run of ``variant`` (and ``seed``, default the template's): the seed's settings
        for it, saved in its run folder; finetune continues from that seed's transfer model.
        ``base``: the model the transfer and finetune take their base from (the base
        pretrained here), where the template names none."""
        seed = self.template.seed if seed is None else seed
        folder = self.run_folder(seed)
        from_model = None
        if variant == "finetune":
            from_model = str(folder / model_filename("transfer", class_indices))
        changes: dict[str, Any] = {}
        if base is not None and variant in ("transfer", "finetune"):
            changes["base"] = str(base)
        return self.template.replace(
            variant=variant,
            learning_rate=None,
            use_augmentation=None,
            out_dir=str(folder),
            from_model=from_model,
            seed=seed,
            **changes,
        )

    def schedule(self) -> list[tuple[str, int]]:
        """Each step's variant and epochs, in order (the window's study ETA)."""
        return [
            (s.variant, self.base_epoch_count if s.variant == "pretrain" else self.template.epochs)
            for s in self.step_list()
        ]

    def step_model(
        self, step: StudyStep, class_indices: Sequence[int], class_names: Sequence[str] = ()
    ) -> Path:
        """Where ``step``'s final model is saved."""
        if step.variant == "pretrain":
            return self.base_model(class_names)
        return self.run_folder(step.seed) / model_filename(step.variant, class_indices)

    def steps(
        self, class_indices: Sequence[int], class_names: Sequence[str] = ()
    ) -> Iterator[RunPlan | RunFinished]:
        """The study's runs in order (:meth:`step_list`), each looked at on the disk when its
        turn comes: the :class:`RunFinished` of one saved complete already, else the plan
        that trains it (continuing its unfinished checkpoint, if it has one). ``class_names``:
        the data set's, needed when the study pretrains its base."""
        base = self.base_model(class_names) if self.pretrain_base else None
        for step in self.step_list():
            path = self.step_model(step, class_indices, class_names)
            if step.variant == "pretrain":
                config = self.base_config(class_names)
                indices = sorted(_indices(config.classes, class_names))
            else:
                config = self.config_for(step.variant, class_indices, step.seed, base)
                indices = list(class_indices)
            folder = path.parent
            done = finished_run(path, config)
            if done is not None:
                yield RunFinished(path, done, stopped=False)
                continue
            resume = _unfinished_checkpoint(folder, config, indices)
            if resume is not None:
                # The run's own config (it names its files as they were), the data where it
                # is now.
                config = resume.config.replace(data=self.template.data)
            yield RunPlan(config, resume)

    def execute(self, sink: Sink, stop: StopFlag, live: LiveSource | None) -> StudyFinished:
        """Run the study here (the runner's entry, see :func:`run_study`)."""
        return run_study(self, sink, stop, live=live)


def _indices(classes: Sequence[str | int], class_names: Sequence[str]) -> tuple[int, ...]:
    from cifar_gui.engine.data.dataset import resolve_classes

    return resolve_classes(classes, class_names)


class _StudyRelay:
    """The sink of the study's runs: their starts and ends wrapped in a
    :class:`StudyProgress` of the run in progress (``index``), the other events as they are.
    An end is kept, and its state recorded (``record(index, state)``) before it is told, so
    whoever hears of it finds the study record saying so."""

    def __init__(self, sink: Sink, count: int, record: Callable[[int, str], None]):
        self.sink, self.count, self.record = sink, count, record
        self.index = 0
        self.ended: list[StudyProgress] = []

    def __call__(self, event: Event, skipped: bool = False) -> None:
        if isinstance(event, RunStarted | RunFinished):
            event = StudyProgress(self.index, self.count, event, skipped)
            if isinstance(event.run, RunFinished):
                self.record(self.index, event.state)
                self.ended.append(event)
        self.sink(event)


class _LatestRequest:
    """The window's live-view requests for the runs of a study: each run's probe is new, so
    each run starts from the latest request, not from the default."""

    def __init__(self, source: LiveSource):
        self.source = source
        self.latest: LiveRequest | None = None
        self.run_starts = False

    def __call__(self) -> LiveRequest | None:
        request = self.source()
        if request is not None:
            self.latest = request
        elif self.run_starts:
            request = self.latest
        self.run_starts = False
        return request


def keras_models_dirs() -> list[Path]:
    """Where Keras looks for downloaded weights: ``$KERAS_HOME/models`` (default
    ``~/.keras``), and ``/tmp/.keras`` which Keras uses when the home folder is read-only."""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    return [home / "models", Path("/tmp/.keras/models")]


def imagenet_weights_cached() -> Path | None:
    """The VGG16 ImageNet weights in the Keras cache, if they are there."""
    for folder in keras_models_dirs():
        if (folder / VGG16_NOTOP_FILE).is_file():
            return folder / VGG16_NOTOP_FILE
    return None


def weights_host_reachable(timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether the host of the ImageNet weights answers a TCP connection within ``timeout``."""
    try:
        with socket.create_connection(WEIGHTS_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def check_weights_available(template: RunConfig) -> bool:
    """Whether the transfer run can get the VGG16 base the template names: False only for
    ImageNet weights neither in the Keras cache nor reachable (the study then pretrains its
    base). :class:`UserError` at once for a ``--base`` or ``--weights`` file that is not
    there, instead of failing after the first two runs trained for hours."""
    if template.base is not None:
        if not Path(template.base).is_file():
            raise UserError(f"{template.base}: no such model (--base)")
        return True
    if template.weights == "none":
        return True
    if template.weights != "imagenet":
        if not Path(template.weights).is_file():
            raise UserError(f"{template.weights}: no such weights file (--weights)")
        return True
    return imagenet_weights_cached() is not None or weights_host_reachable()


def base_entry(plan: StudyPlan, base: RunRecord | None = None) -> dict[str, Any]:
    """The study record's ``base``: which base the transfer and finetune runs start from
    (``source``: imagenet, pretrained-here, given or random), its architecture and classes,
    and why; ``base``: the record of the base pretrained here, once trained."""
    t = plan.template
    if plan.pretrain_base:
        entry: dict[str, Any] = {"source": "pretrained-here", "arch": plan.base_arch}
        if base is not None:
            entry |= {
                "classes": list(base.class_names),
                "epochs": base.epochs_completed,
                "test_accuracy": base.test_accuracy,
            }
        return entry | {"reason": plan.base_reason}
    if t.base is not None:
        given = read_record(sidecar_path(t.base))
        entry = {"source": "given", "model": t.base}
        if given is not None and given.config is not None:
            if given.variant == "pretrain":
                entry["arch"] = given.config.arch
            entry |= {
                "variant": given.variant,
                "classes": list(given.class_names),
                "test_accuracy": given.test_accuracy,
            }
        return entry | {"reason": "given with --base"}
    if t.weights == "none":
        return {
            "source": "random",
            "arch": "vgg16",
            "reason": "random weights chosen (--weights none): the transfer and finetune runs "
            "measure nothing about pretraining",
        }
    if t.weights != "imagenet":
        return {"source": "given", "arch": "vgg16", "weights": t.weights,
                "reason": "given with --weights"}  # fmt: skip
    return {
        "source": "imagenet",
        "arch": "vgg16",
        "classes": "ImageNet's 1,000",
        "reason": "the tutorial's base; the ImageNet weights are available here",
    }


def study_defaults() -> RunConfig:
    """A study's settings when nothing is given (``cifar-gui study`` alone)."""
    return RunConfig(out_dir=DEFAULT_FOLDER)


def study_command(plan: StudyPlan) -> str:
    """The command line that runs this study (the report quotes it): the flags of the
    settings that are not the defaults (see :func:`cifar_gui.config.flagged`)."""
    template, defaults = plan.template.replace(out_dir=str(plan.folder)), study_defaults()
    words = ["cifar-gui", "study"]
    for name, flag in flagged("study").items():
        if getattr(template, name) != getattr(defaults, name):
            words += flag.command_words(getattr(template, name))
    if plan.seeds != 1:
        words += ["--seeds", str(plan.seeds)]
    if plan.base_arch != BASE_ARCH:
        words += ["--base-arch", plan.base_arch]
    if plan.base_epochs is not None:
        words += ["--base-epochs", str(plan.base_epochs)]
    return shlex.join(words)


# --------------------------------------------------------------------------------------
# The study record


@dataclass(frozen=True)
class StudyRecord:
    """A study record as read: its settings, runs and base (see :func:`write_study`)."""

    template: RunConfig
    runs: list[StudyRun]
    seeds: int = 1
    base_arch: str = BASE_ARCH
    base: Mapping[str, Any] | None = None  # None: a version-1 record (no base entry)
    base_epochs: int | None = None


def read_study_record(folder: str | Path) -> StudyRecord:
    """The study record in ``folder`` (version 1 or 2); :class:`UserError` when there is
    none or it is not readable."""
    path = Path(folder).expanduser() / STUDY_FILE
    if not path.is_file():
        raise UserError(f"{path.parent}: no study to resume (no {STUDY_FILE})")
    try:
        data = read_json(path)
        check_type("study", data, dict)
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"version {version!r}, this app reads {READABLE_VERSIONS}")
        template = RunConfig.from_dict(data.get("config"))
        check_type("runs", data.get("runs"), list)
        runs = [StudyRun.from_dict(item) for item in data["runs"]]
        if version == 1:
            if [r.variant for r in runs] != list(SEED_VARIANTS):
                raise ValueError(f"runs must be {', '.join(SEED_VARIANTS)} in that order")
            return StudyRecord(template, runs)
        seeds, arch, base = data.get("seeds", 1), data.get("base_arch", BASE_ARCH), data.get("base")
        check_int("seeds", seeds, 1, MAX_SEEDS)
        if arch not in PRETRAIN_ARCHS:
            raise ValueError(f"unknown base_arch {arch!r}")
        if base is not None:
            check_type("base", base, dict)
        base_epochs = data.get("base_epochs")
        if base_epochs is not None:
            check_int("base_epochs", base_epochs, 1, MAX_EPOCHS)
        return StudyRecord(template, runs, seeds, arch, base, base_epochs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable study record ({exc})") from None


def read_study(folder: str | Path) -> tuple[RunConfig, list[StudyRun]]:
    """The settings and runs of the study record in ``folder`` (:func:`read_study_record`)."""
    record = read_study_record(folder)
    return record.template, record.runs


def write_study(
    plan: StudyPlan,
    runs: Sequence[StudyRun],
    report: str | None = None,
    base: Mapping[str, Any] | None = None,
) -> None:
    """Write the study record (atomically); ``base``: its :func:`base_entry`."""
    write_json(
        plan.folder / STUDY_FILE,
        {
            "version": STUDY_VERSION,
            "config": plan.template.to_dict(),
            "command": study_command(plan),
            "seeds": plan.seeds,
            "base_arch": plan.base_arch,
            "base_epochs": plan.base_epochs,
            "base": dict(base) if base is not None else base_entry(plan),
            "runs": [r.to_dict() for r in runs],
            "report": report,
        },
    )


def plan_study(
    template: RunConfig | None = None,
    folder: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    data: str | None = None,
    seeds: int = 1,
    base_arch: str = BASE_ARCH,
    base_epochs: int | None = None,
) -> StudyPlan:
    """Check a study before it starts; raise :class:`UserError` with one line when it cannot.

    A new study needs ``template`` (the settings shared by its runs: data, classes, epochs,
    limit, weights or base...) and ``folder``, which must not hold a study already; ``seeds``:
    runs of each variant (seeds ``template.seed`` on); ``base_arch``: the network of the base
    pretrained where the ImageNet weights cannot be had, for ``base_epochs`` (default: its
    :data:`~cifar_gui.config.PRETRAIN_EPOCHS`). ``resume``: a study folder,
    continued with its recorded settings; only ``data`` (where the data set is now) may
    change. The ImageNet weights are looked for here, once, for a new study (a resumed one
    keeps the base it chose). Nothing on disk changes. The folder is made absolute: finetune
    names the transfer model by it.
    """
    pretrain_base, reason = False, ""
    if resume is not None:
        folder = Path(resume).expanduser().absolute()
        record = read_study_record(folder)
        template, seeds, base_arch = record.template, record.seeds, record.base_arch
        base_epochs = record.base_epochs
        if data is not None:
            template = template.replace(data=data)
        if record.base is not None:
            pretrain_base = record.base.get("source") == "pretrained-here"
            reason = str(record.base.get("reason", ""))
    else:
        if template is None or folder is None:
            raise UserError("a new study needs its settings and a folder")
        folder = Path(folder).expanduser().absolute()
        if (folder / STUDY_FILE).exists():
            raise UserError(
                f"{folder}: holds a study already: resume it (--resume {folder}) or choose "
                "another folder (--out)"
            )
    check_can_write(folder, folder=True)
    if not pretrain_base and not check_weights_available(template):
        if resume is not None:  # a version-1 study chose ImageNet: it keeps its base
            where = keras_models_dirs()[0] / VGG16_NOTOP_FILE
            raise UserError(
                f"the VGG16 ImageNet weights this study uses are not in the Keras cache "
                f"({where}) and {WEIGHTS_HOST[0]} cannot be reached"
            )
        pretrain_base = True
        reason = (
            f"{OFFLINE_REASON} (not in the Keras cache, {WEIGHTS_HOST[0]} not reachable), so "
            f"a base was pretrained here on the other classes first; its network, "
            f"{base_arch}: {BASE_ARCH_REASONS[base_arch]}"
        )
    try:
        return StudyPlan(
            folder,
            template.replace(out_dir=str(folder)),
            resume is not None,
            seeds,
            pretrain_base,
            base_arch,
            reason,
            base_epochs,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None


# --------------------------------------------------------------------------------------
# Running a study


def same_run(saved: RunConfig | None, wanted: RunConfig) -> bool:
    """Whether a saved run's config is the study's run ``wanted``: the same run
    (:func:`~cifar_gui.config.run_differences`: where its data and files are and how it was
    spread over devices may differ) of as many epochs."""
    if saved is None:
        return False
    return not run_differences(saved, wanted) and saved.epochs == wanted.epochs


def finished_run(model_path: Path, config: RunConfig) -> RunRecord | None:
    """The record of the complete run of ``config`` saved at ``model_path`` (all its epochs,
    not stopped), or None when there is none (or another run's model is there)."""
    if not model_path.is_file():
        return None
    record = read_record(sidecar_path(model_path))
    if record is None or record.stopped or record.epochs_completed < config.epochs:
        return None
    return record if same_run(record.config, config) else None


def run_study(
    plan: StudyPlan,
    sink: Sink = ignore,
    stop: StopFlag | None = None,
    *,
    live: LiveSource | None = None,
) -> StudyFinished:
    """Train the study's runs that are not done yet, in order, then write its report.

    Loads the data once for the four runs and the report. Every run's events go to ``sink``
    (its start and end as a :class:`StudyProgress`; a run done already only says its end,
    ``skipped``). ``stop`` ends the run in progress (saved, with its checkpoint) and the
    study; resuming continues it. ``live``: the live view of the run in progress, as for one
    run (:func:`~cifar_gui.engine.training.run.run_training`).
    """
    from cifar_gui.engine.data.dataset import load_dataset, select_classes
    from cifar_gui.engine.study.report import write_report
    from cifar_gui.engine.study.runs import SavedRun
    from cifar_gui.engine.training.run import run_training

    stop = stop if stop is not None else threading.Event()
    template = plan.template
    dataset = load_dataset(template.data)
    indices = select_classes(dataset, template.classes, template.limit).class_indices
    names = dataset.class_names
    order = plan.step_list()
    models = [plan.step_model(step, indices, names) for step in order]
    runs = [
        StudyRun(st.variant, model=m.relative_to(plan.folder).as_posix(), seed=st.seed)
        for st, m in zip(order, models, strict=True)
    ]
    if plan.resume:
        recorded = {r.model: r.state for r in read_study(plan.folder)[1]}
        runs = [StudyRun(r.variant, recorded.get(r.model, r.state), r.model, r.seed) for r in runs]
    base = base_entry(plan)
    write_study(plan, runs, base=base)
    live_request = None if live is None else _LatestRequest(live)

    def set_state(index: int, state: str) -> None:
        if runs[index].state != state:  # a resumed study's done runs stay as they are
            r = runs[index]
            runs[index] = StudyRun(r.variant, state, r.model, r.seed)
            write_study(plan, runs, base=base)

    relay = _StudyRelay(sink, len(order), set_state)

    def stopped() -> StudyFinished:
        return StudyFinished(plan.folder, tuple(relay.ended), None, True)

    for index, step in enumerate(plan.steps(indices, names)):
        if stop.is_set():  # stopped between two runs
            return stopped()
        relay.index = index
        if isinstance(step, RunFinished):  # done, if killed between the save and the record
            relay(step, skipped=True)
            record = step.record
        else:
            set_state(index, "running")
            if live_request is not None:
                live_request.run_starts = True
            result = run_training(
                step.config, relay, stop, live=live_request, dataset=dataset, resume=step.resume
            )
            if result.stopped:
                return stopped()
            record = result.record
        if order[index].variant == "pretrain":  # the record says what the base reached
            base = base_entry(plan, record)
            write_study(plan, runs, base=base)
    saved = [
        SavedRun.of_model(e.model_path, e.record) for e in relay.ended if e.variant != "pretrain"
    ]
    report = write_report(
        saved, plan.folder / REPORT_DIR, dataset=dataset, study_command=study_command(plan)
    )
    write_study(plan, runs, report=str(report.relative_to(plan.folder)), base=base)
    return StudyFinished(plan.folder, tuple(relay.ended), report, False)


def _unfinished_checkpoint(
    folder: Path, config: RunConfig, indices: Sequence[int]
) -> Checkpoint | None:
    """The checkpoint of ``config``'s run when it has epochs left to train, else None: none
    there, another run's (a new run replaces it), or a finished one whose final model is
    missing (the run starts again, see the module's docstring)."""
    directory = checkpoint_dir(folder, config.variant, tuple(indices))
    if not (directory / STATE_FILE).is_file():
        return None
    checkpoint = read_checkpoint(directory)
    try:
        check_resumable(config, checkpoint)
    except ModelError:
        return None
    return checkpoint


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

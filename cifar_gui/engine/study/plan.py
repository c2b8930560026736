"""The seed's whole study: ``baseline``, ``augmented``, ``transfer`` and ``finetune`` (from the
transfer model just trained), one after the other in one study folder, then its report.

Layout of a study folder::

    <study>/study.json                  the study record: its settings, the four runs, their state
    <study>/cifar10_4_7.h5 (+ .json)    each run's final model and sidecar, the seed's names
    <study>/checkpoints/<model stem>/   each run's resumable checkpoint (as ``train`` keeps)
    <study>/report/report.html          the report (:mod:`~cifar_gui.engine.study.report`), PNGs

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

from cifar_gui.config import SEED_VARIANTS, RunConfig, flagged, run_differences
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
from cifar_gui.engine.study.layout import REPORT_DIR, STUDY_FILE
from cifar_gui.engine.training.checkpoints import (
    STATE_FILE,
    Checkpoint,
    check_resumable,
    checkpoint_dir,
    read_checkpoint,
)
from cifar_gui.engine.training.runner import LiveSource, RunPlan
from cifar_gui.settings import check_type

STUDY_VERSION = 1
DEFAULT_FOLDER = "study"  # the command line's, without --out
RESUMED_STUDY_CHANGES = ("data",)  # a resumed study runs as recorded; only the data moves
STATES = ("pending", "running", "stopped", "done")

# Where Keras keeps the VGG16 ImageNet weights (keras.applications.vgg16), and where from.
VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_HOST = ("storage.googleapis.com", 443)
REACH_TIMEOUT_S = 3.0  # a quick look, not a download: offline must fail in seconds

# Training cost of an epoch relative to the baseline's, for the study's time estimate until a
# variant has run: multiply-accumulates at 32x32 of the small CNN (~8.8 M, x3 for training)
# and of VGG16 (~313 M, forward only when frozen; blocks 3-5 backward too for finetune).
# Rough; measured epochs replace them as soon as there are any.
RELATIVE_EPOCH_COST = {"baseline": 1.0, "augmented": 1.0, "transfer": 12.0, "finetune": 28.0}


@dataclass(frozen=True)
class StudyRun:
    """One run of a study as the study record holds it."""

    variant: str
    state: str = "pending"  # pending, running, stopped, done
    model: str | None = None  # the final model's file name in the study folder, once known

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "state": self.state, "model": self.model}

    @classmethod
    def from_dict(cls, data: Any) -> StudyRun:
        check_type("run", data, dict)
        variant, state, model = data.get("variant"), data.get("state"), data.get("model")
        if variant not in SEED_VARIANTS:
            raise ValueError(f"unknown variant {variant!r}")
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        if model is not None:
            check_type("model", model, str)
            if Path(model).name != model:  # a file of the study folder, nothing else
                raise ValueError(f"model {model!r} is not a file name")
        return cls(variant, state, model)


@dataclass(frozen=True)
class StudyPlan:
    """A checked study: its folder and settings (a :class:`RunConfig` whose variant, learning
    rate, out_dir and from_model each run sets), and whether it continues a study there."""

    folder: Path
    template: RunConfig
    resume: bool = False

    def config_for(self, variant: str, class_indices: Sequence[int]) -> RunConfig:
        """The run of ``variant``: the seed's settings for it, saved in the study folder;
        finetune continues from the study's transfer model."""
        from_model = None
        if variant == "finetune":
            from_model = str(self.folder / model_filename("transfer", class_indices))
        return self.template.replace(
            variant=variant,
            learning_rate=None,
            use_augmentation=None,
            out_dir=str(self.folder),
            from_model=from_model,
        )

    def steps(self, class_indices: Sequence[int]) -> Iterator[RunPlan | RunFinished]:
        """The study's runs in order, each looked at on the disk when its turn comes: the
        :class:`RunFinished` of one saved complete already, else the plan that trains it
        (continuing its unfinished checkpoint, if it has one)."""
        for variant in SEED_VARIANTS:
            path = self.folder / model_filename(variant, class_indices)
            config = self.config_for(variant, class_indices)
            done = finished_run(path, config)
            if done is not None:
                yield RunFinished(path, done, stopped=False)
                continue
            resume = _unfinished_checkpoint(self.folder, config, class_indices)
            if resume is not None:
                # The run's own config (it names its files as they were), the data where it
                # is now.
                config = resume.config.replace(data=self.template.data)
            yield RunPlan(config, resume)

    def execute(self, sink: Sink, stop: StopFlag, live: LiveSource | None) -> StudyFinished:
        """Run the study here (the runner's entry, see :func:`run_study`)."""
        return run_study(self, sink, stop, live=live)


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


def check_weights_available(template: RunConfig) -> None:
    """Raise :class:`UserError` at once when the transfer run could not get its VGG16 base,
    with the alternatives, instead of failing after the first two runs trained for hours."""
    if template.base is not None:
        if not Path(template.base).is_file():
            raise UserError(f"{template.base}: no such model (--base)")
        return
    if template.weights == "none":
        return
    if template.weights != "imagenet":
        if not Path(template.weights).is_file():
            raise UserError(f"{template.weights}: no such weights file (--weights)")
        return
    if imagenet_weights_cached() is None and not weights_host_reachable():
        where = keras_models_dirs()[0] / VGG16_NOTOP_FILE
        raise UserError(
            f"the VGG16 ImageNet weights are not in the Keras cache ({where}) and "
            f"{WEIGHTS_HOST[0]} cannot be reached: use --weights none (random weights: the "
            "pretrained-network claim cannot then be tested), --weights FILE (a VGG16 "
            "no-top weights file), or --base MODEL (the base of a model saved by this app)"
        )


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
    return shlex.join(words)


# --------------------------------------------------------------------------------------
# The study record


def read_study(folder: str | Path) -> tuple[RunConfig, list[StudyRun]]:
    """The settings and runs of the study record in ``folder``; :class:`UserError` when there
    is none or it is not readable."""
    path = Path(folder).expanduser() / STUDY_FILE
    if not path.is_file():
        raise UserError(f"{path.parent}: no study to resume (no {STUDY_FILE})")
    try:
        data = read_json(path)
        check_type("study", data, dict)
        if data.get("version") != STUDY_VERSION:
            raise ValueError(f"version {data.get('version')!r}, this app writes {STUDY_VERSION}")
        template = RunConfig.from_dict(data.get("config"))
        check_type("runs", data.get("runs"), list)
        runs = [StudyRun.from_dict(item) for item in data["runs"]]
        if [r.variant for r in runs] != list(SEED_VARIANTS):
            raise ValueError(f"runs must be {', '.join(SEED_VARIANTS)} in that order")
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable study record ({exc})") from None
    return template, runs


def write_study(plan: StudyPlan, runs: Sequence[StudyRun], report: str | None = None) -> None:
    """Write the study record (atomically)."""
    write_json(
        plan.folder / STUDY_FILE,
        {
            "version": STUDY_VERSION,
            "config": plan.template.to_dict(),
            "command": study_command(plan),
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
) -> StudyPlan:
    """Check a study before it starts; raise :class:`UserError` with one line when it cannot.

    A new study needs ``template`` (the settings shared by the four runs: data, classes,
    epochs, limit, weights or base...) and ``folder``, which must not hold a study already.
    ``resume``: a study folder, continued with its recorded settings; only ``data`` (where the
    data set is now) may change. The ImageNet weights are looked for here, once. Nothing on
    disk changes. The folder is made absolute: finetune names the transfer model by it.
    """
    if resume is not None:
        folder = Path(resume).expanduser().absolute()
        template, _ = read_study(folder)
        if data is not None:
            template = template.replace(data=data)
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
    check_weights_available(template)
    return StudyPlan(folder, template.replace(out_dir=str(folder)), resume is not None)


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
    runs = [StudyRun(v, model=model_filename(v, indices)) for v in SEED_VARIANTS]
    if plan.resume:
        recorded = dict((r.variant, r.state) for r in read_study(plan.folder)[1])
        runs = [StudyRun(r.variant, recorded[r.variant], r.model) for r in runs]
    write_study(plan, runs)
    live_request = None if live is None else _LatestRequest(live)

    def set_state(index: int, state: str) -> None:
        if runs[index].state != state:  # a resumed study's done runs stay as they are
            runs[index] = StudyRun(runs[index].variant, state, runs[index].model)
            write_study(plan, runs)

    relay = _StudyRelay(sink, len(SEED_VARIANTS), set_state)

    for index, step in enumerate(plan.steps(indices)):
        if stop.is_set():  # stopped between two runs
            return StudyFinished(plan.folder, tuple(relay.ended), None, True)
        relay.index = index
        if isinstance(step, RunFinished):  # done, if killed between the save and the record
            relay(step, skipped=True)
            continue
        set_state(index, "running")
        if live_request is not None:
            live_request.run_starts = True
        result = run_training(
            step.config, relay, stop, live=live_request, dataset=dataset, resume=step.resume
        )
        if result.stopped:
            return StudyFinished(plan.folder, tuple(relay.ended), None, True)
    saved = [SavedRun.of_model(e.model_path, e.record) for e in relay.ended]
    report = write_report(
        saved, plan.folder / REPORT_DIR, dataset=dataset, study_command=study_command(plan)
    )
    write_study(plan, runs, report=str(report.relative_to(plan.folder)))
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
    variant: str, run_eta: float, epochs: int, measured: Mapping[str, float]
) -> float | None:
    """Seconds to the end of the study: the run in progress (``run_eta``, its own estimate)
    and every later run's ``epochs`` at :func:`estimate_epoch_seconds`; None when unknown."""
    later = SEED_VARIANTS[SEED_VARIANTS.index(variant) + 1 :]
    total = run_eta
    for other in later:
        seconds = estimate_epoch_seconds(other, measured)
        if seconds is None:
            return None
        total += epochs * seconds
    return total

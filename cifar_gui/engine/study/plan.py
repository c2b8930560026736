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

import shlex
import threading
from collections.abc import Iterator, Mapping, Sequence
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
    RunFinished,
    Sink,
    StopFlag,
    StudyFinished,
    ignore,
)
from cifar_gui.engine.files import check_can_write, write_json
from cifar_gui.engine.record import RunRecord, model_filename, read_record, sidecar_path
from cifar_gui.engine.study.base import (
    BASE_ARCH,
    base_entry,
    check_weights_available,
    offline_base_reason,
)
from cifar_gui.engine.study.layout import BASE_DIR, REPORT_DIR, STUDY_FILE
from cifar_gui.engine.study.record import (
    MAX_SEEDS,
    STUDY_VERSION,
    StudyRun,
    read_study,
    read_study_record,
)
from cifar_gui.engine.study.relay import LatestRequest, StudyRelay
from cifar_gui.engine.training.checkpoints import (
    STATE_FILE,
    Checkpoint,
    check_resumable,
    checkpoint_dir,
    read_checkpoint,
)
from cifar_gui.engine.training.pretrain import pretrain_config
from cifar_gui.engine.training.runner import LiveSource, RunPlan
from cifar_gui.settings import check_int

SEED_FOLDER = "seed-{}"  # the runs of one seed, when a study has several

# The base an offline study pretrains (where the ImageNet weights cannot be had), and why
# this architecture: the lead sets both from the measurement of VGG16-on-8-classes against
# the small CNN on this machine (time, and what the transfer reaches).
DEFAULT_FOLDER = "study"  # the command line's, without --out
RESUMED_STUDY_CHANGES = ("data",)  # a resumed study runs as recorded; only the data moves


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
        pretrain_base, reason = True, offline_base_reason(base_arch, resumed=resume is not None)
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
    live_request = None if live is None else LatestRequest(live)

    def set_state(index: int, state: str) -> None:
        if runs[index].state != state:  # a resumed study's done runs stay as they are
            r = runs[index]
            runs[index] = StudyRun(r.variant, state, r.model, r.seed)
            write_study(plan, runs, base=base)

    relay = StudyRelay(sink, len(order), set_state)

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

"""The Training tab's study card: run or resume the seed's study, its seeds, and the pre-flight
(what will run and how long, :mod:`cifar_gui.engine.study.estimate`), computed by the engine
service's child on a worker thread: the window never imports TensorFlow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.engine.study.plan import MAX_SEEDS, StudyPlan
from cifar_gui.gui.workers import JobRunner

if TYPE_CHECKING:
    from cifar_gui.engine.study.estimate import StudyEstimate


def plan_key(plan: StudyPlan) -> tuple[Any, ...]:
    """What an estimate depends on: two plans of one key take as long."""
    return (plan.template.replace(out_dir=""), plan.seeds, plan.pretrain_base, plan.base_arch)


class StudyCard(QGroupBox):
    """The study's buttons, its seeds per variant, and its estimate."""

    estimate_requested = Signal()
    estimated = Signal(object)  # the StudyEstimate, once shown

    def __init__(self, parent: QWidget | None = None):
        super().__init__("The tutorial's study, in one click", parent)
        self.study_button = QPushButton("Run the study")
        self.study_button.setToolTip(
            "The tutorial's whole study with these settings: baseline, augmented, transfer and "
            "finetune, one after the other, then a report (opens in the browser); offline, a "
            "base pretrained on the other classes first"
        )
        self.resume_study_button = QPushButton("Resume study\u2026")
        self.resume_study_button.setToolTip("Continue a stopped study where it stopped")
        self.seeds_spin = QSpinBox()
        self.seeds_spin.setRange(1, MAX_SEEDS)
        self.seeds_spin.setToolTip(
            "Each variant runs this many times (seeds: the form's seed and the next ones); the "
            "report judges the claims on their mean"
        )
        self.estimate_button = QPushButton("What will run, how long\u2026")
        self.estimate_button.setToolTip(
            "List the study's steps and estimate each one's time on this device (a short "
            "calibration, or the speed of earlier runs)"
        )
        self.estimate_label = QLabel()
        self.estimate_label.setWordWrap(True)
        self.report_label = QLabel()
        self.report_label.setWordWrap(True)
        self.report_label.setOpenExternalLinks(True)
        about = QLabel(
            "Trains the four models in turn (baseline, augmented, VGG16 transfer and "
            "fine-tuning; offline, a base pretrained on the other classes first) and writes "
            "a report that checks the tutorial's claims."
        )
        about.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(about)
        seeds = QFormLayout()
        seeds.addRow("Seeds per variant", self.seeds_spin)
        layout.addLayout(seeds)
        buttons = QHBoxLayout()
        buttons.addWidget(self.study_button)
        buttons.addWidget(self.resume_study_button)
        layout.addLayout(buttons)
        layout.addWidget(self.estimate_button)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.report_label)
        self.job = JobRunner(self)
        self.job.result.connect(self._on_estimate)
        self.job.error.connect(lambda msg: self.estimate_label.setText(f"No estimate: {msg}"))
        self.estimate_button.clicked.connect(self.estimate_requested)
        self.last: tuple[tuple[Any, ...], StudyEstimate] | None = None
        self._asked: tuple[Any, ...] | None = None

    @property
    def estimating(self) -> bool:
        return self.job.busy

    def start_estimate(self, plan: StudyPlan, service: Any, dataset: Any) -> None:
        """Estimate ``plan`` on a worker thread, through ``service`` (its child calibrates)."""
        names, counts = tuple(dataset.class_names), dataset.counts()
        shape = tuple(int(d) for d in dataset.x_train.shape[1:])
        self._asked = plan_key(plan)
        self.estimate_label.setText("Estimating (a short calibration of each kind of run)\u2026")
        self.job.start(lambda task: service.study_estimate(plan, names, counts, shape))

    @Slot(object)
    def _on_estimate(self, estimate: StudyEstimate) -> None:
        if self._asked is not None:
            self.last = (self._asked, estimate)
        self.estimate_label.setText("\n".join(estimate.lines()))
        self.estimated.emit(estimate)

    def estimates_for(self, plan: StudyPlan) -> tuple[float | None, ...]:
        """Each step's estimated seconds, when the last estimate is of a plan like ``plan``."""
        if self.last is None or self.last[0] != plan_key(plan):
            return ()
        return self.last[1].step_seconds()

    def shutdown(self) -> None:
        """Wait for an estimate in progress (the window closes)."""
        self.job.shutdown()

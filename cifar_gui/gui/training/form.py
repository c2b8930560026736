"""The run settings of the Training tab: widgets <-> :class:`~cifar_gui.config.RunConfig`.

Every default comes from ``RunConfig()``, and the form is kept between sessions as
``RunConfig.to_dict`` JSON in the settings store the window injects. The form checks only
that each choice is made; whether a run may start (the output folder, a resume) is the
engine's rule, asked by the controller. Also here: the parameter counts before a fine-tune
or a transfer from a saved base, and the pretrain of a base on the other
classes (:mod:`cifar_gui.engine.training.pretrain`), which the panel starts as any other run.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from PySide6.QtCore import QSettings, QTimer, Signal, Slot
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cifar_gui.config import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_LEARNING_RATE,
    MAX_LIMIT,
    PRETRAIN_EPOCHS,
    RunConfig,
)
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.record import ParameterCounts
from cifar_gui.engine.service import EngineService
from cifar_gui.engine.training.pretrain import pretrain_config
from cifar_gui.gui.state import AppState
from cifar_gui.gui.training.form_fields import (
    MAX_SEED_SHOWN,
    OWN_RULES,
    PRECISION_LABELS,
    PRETRAIN_FROM_FORM,
    PRETRAIN_LABELS,
    STRATEGY_LABELS,
    VARIANT_LABELS,
    WEIGHTS_CHOICES,
    CountService,
    augmentation_text,
    base_weights_of,
    combo,
    counted_config,
    counts_job,
    default_out_dir,
    learning_rate_of,
    pretrain_text,
    read_widget,
    show_value,
    weights_choice_of,
)
from cifar_gui.gui.widgets.path_field import PathField
from cifar_gui.gui.widgets.section import Section
from cifar_gui.gui.workers import JobRunner

SETTINGS_OUT_DIR = "training/out_dir"
SETTINGS_FORM = "training/form"  # RunConfig.to_dict of the last session's form


class TrainingForm(QWidget):
    """The settings column: run, VGG16 and advanced settings, output folder, the buttons."""

    variant_changed = Signal(str)
    out_dir_changed = Signal(str)
    counts_shown = Signal(object)  # the ParameterCounts of the planned run, now on screen
    counting_changed = Signal()  # a parameter count started or ended

    def __init__(
        self,
        state: AppState,
        settings: QSettings,
        service: CountService | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        # Without one (a panel on its own, in tests) the same requests run in this process.
        self.service = service if service is not None else EngineService(in_process=True)
        self.state, self.settings = state, settings
        self._running = False  # a run in progress: no counting meanwhile
        self._count_job = JobRunner(self)
        self._count_timer = QTimer(self, singleShot=True, interval=300)
        self._count_timer.timeout.connect(self._count_parameters)
        self._build()
        self._count_job.result.connect(self._on_counts)
        self._count_job.error.connect(lambda msg: self.params_label.setText(f"({msg})"))
        self._count_job.finished.connect(self.counting_changed)
        state.dataset_changed.connect(self._on_state_changed)
        state.classes_changed.connect(self._on_state_changed)
        state.augment_changed.connect(self._on_state_changed)
        self.set_config(RunConfig())
        self.restore()
        self._update_vgg_fields()
        self._on_state_changed()
        self.schedule_counts()

    # ---- layout

    def _build(self) -> None:
        self.variant_combo = combo(VARIANT_LABELS)
        self.classes_label = QLabel()
        self.epochs_spin = QSpinBox(minimum=1, maximum=MAX_EPOCHS)
        self.batch_spin = QSpinBox(minimum=1, maximum=MAX_BATCH_SIZE)
        self.lr_edit = QLineEdit()
        validator = QDoubleValidator(1e-9, MAX_LEARNING_RATE, 12, self.lr_edit)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.lr_edit.setValidator(validator)
        self.seed_spin = QSpinBox(minimum=0, maximum=MAX_SEED_SHOWN)
        self.limit_spin = QSpinBox(minimum=0, maximum=MAX_LIMIT, singleStep=100)
        self.limit_spin.setSpecialValueText("all")
        self.limit_spin.setToolTip("Use the first N training and N test images of the classes")
        self.augment_label = QLabel(wordWrap=True)

        form = QFormLayout()
        form.addRow("Model", self.variant_combo)
        form.addRow("Classes", self.classes_label)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Augmentation", self.augment_label)
        details = QWidget()
        details_form = QFormLayout(details)
        details_form.addRow("Batch size", self.batch_spin)
        details_form.addRow("Learning rate", self.lr_edit)
        details_form.addRow("Random seed", self.seed_spin)
        details_form.addRow("Images", self.limit_spin)

        self.weights_combo = combo({key: label for key, (label, _) in WEIGHTS_CHOICES.items()})
        self.weights_path = PathField(
            "Weights file or saved model", "Keras files (*.h5 *.keras *.weights.h5);;All files (*)"
        )
        self.from_path = PathField(
            "Transfer model to fine-tune", "Keras models (*.h5 *.keras);;All files (*)",
            "train a transfer model, or browse",
        )  # fmt: skip
        self.overlap_check = QCheckBox("Allow a base that saw the pair")
        self.overlap_check.setToolTip(
            "A base for transfer should never have seen the pair: its test images would not "
            "be new to it. Refused unless this is ticked."
        )
        self.params_label = QLabel(wordWrap=True)
        vgg_box = QWidget()
        vgg_form = QFormLayout(vgg_box)
        vgg_form.addRow("Base weights", self.weights_combo)
        vgg_form.addRow("", self.weights_path)
        vgg_form.addRow("", self.overlap_check)
        vgg_form.addRow("Fine-tune from", self.from_path)
        vgg_form.addRow("Parameters", self.params_label)

        self.arch_combo = combo(PRETRAIN_LABELS)
        self.pretrain_button = QPushButton("Pretrain a base on the other classes")
        self.pretrain_label = QLabel(wordWrap=True)
        pretrain_box = QWidget()
        pretrain_form = QFormLayout(pretrain_box)
        pretrain_form.addRow("Network", self.arch_combo)
        pretrain_form.addRow(self.pretrain_label)
        pretrain_form.addRow(self.pretrain_button)

        self.strategy_combo = combo(STRATEGY_LABELS)
        self.strategy_combo.setToolTip(
            "tf.distribute strategy; the batch size is per device (docs/distribution.md)"
        )
        self.precision_combo = combo(PRECISION_LABELS)
        self.precision_combo.setToolTip(
            "Mixed precision computes in 16 bits and keeps float32 weights and output"
        )
        self.keep_best_check = QCheckBox("Save the best epoch, not the last")
        self.keep_best_check.setToolTip(
            "The model saved is the epoch with the best validation accuracy (the sidecar "
            "names it; the checkpoint keeps the last epoch, to resume): --keep-best"
        )
        advanced_box = QWidget()
        advanced_form = QFormLayout(advanced_box)
        advanced_form.addRow("Strategy", self.strategy_combo)
        advanced_form.addRow("Precision", self.precision_combo)
        advanced_form.addRow(self.keep_best_check)

        # The form's table: the RunConfig field each widget shows, read by read_widget and shown by
        # show_value; those of OWN_RULES by their own (a text, a choice with its path).
        self.widgets: dict[str, QWidget] = {
            "variant": self.variant_combo,
            "epochs": self.epochs_spin,
            "batch_size": self.batch_spin,
            "learning_rate": self.lr_edit,
            "seed": self.seed_spin,
            "limit": self.limit_spin,
            "weights": self.weights_combo,
            "base": self.weights_path,
            "allow_overlap": self.overlap_check,
            "from_model": self.from_path,
            "strategy": self.strategy_combo,
            "precision": self.precision_combo,
            "keep_best": self.keep_best_check,
        }
        self.out_path = PathField("Output folder", None)
        stored = self.settings.value(SETTINGS_OUT_DIR)
        self.out_path.edit.setText(str(stored) if stored else str(default_out_dir()))

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(
            "End after the batches in progress (up to 8 on a CPU); the model so far is saved"
        )
        self.resume_button = QPushButton("Resume\u2026")
        self.resume_button.setToolTip(
            "Continue a stopped, crashed or finished run of the output folder from its last "
            "checkpoint"
        )
        self.hint_label = QLabel(wordWrap=True)
        self.hint_label.setStyleSheet("color: #a33;")
        # Start, Stop, Resume and the hint: placed by the panel, always in view below the
        # settings (which scroll when the window is short).
        self.actions = QWidget()
        actions = QVBoxLayout(self.actions)
        actions.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.resume_button)
        actions.addLayout(buttons)
        actions.addWidget(self.hint_label)

        self.setMaximumWidth(380)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        run_box = QGroupBox("Train a model")
        run_box.setLayout(form)
        column.addWidget(run_box)
        # The panel's study card goes here, below the everyday settings (add_card).
        self._cards = column
        # The rest folds away: open when wanted (transfer opens for the VGG16 variants).
        self.details_section = Section("Training details", details)
        self.transfer_section = Section("Transfer: the VGG16 base", vgg_box)
        self.pretrain_section = Section("Offline: pretrain a base", pretrain_box)
        self.advanced_section = Section("Advanced", advanced_box)
        for section in (
            self.details_section,
            self.transfer_section,
            self.pretrain_section,
            self.advanced_section,
        ):
            column.addWidget(section)
        out_box = QGroupBox("Output folder")
        QVBoxLayout(out_box).addWidget(self.out_path)
        column.addWidget(out_box)
        column.addStretch(1)
        self._settings_boxes = (run_box, details, vgg_box, pretrain_box, advanced_box, out_box)

        self.variant_combo.currentIndexChanged.connect(self._on_variant_changed)
        self.weights_combo.currentIndexChanged.connect(self._update_vgg_fields)
        self.weights_combo.currentIndexChanged.connect(lambda _: self.schedule_counts())
        self.weights_path.changed.connect(lambda _: self.schedule_counts())
        self.overlap_check.toggled.connect(lambda _: self.schedule_counts())
        self.from_path.changed.connect(lambda _: self.schedule_counts())
        self.arch_combo.currentIndexChanged.connect(self._on_state_changed)
        self.out_path.changed.connect(self._on_out_dir_changed)

    # ---- widgets <-> RunConfig

    @property
    def variant(self) -> str:
        return self.variant_combo.currentData()

    def set_variant(self, variant: str) -> None:
        """Select a variant (as the combo box does); a pretrain is not one of them."""
        show_value(self.variant_combo, variant)

    def config(self) -> RunConfig:
        """The run the form describes; raises :class:`UserError` with one line when a choice
        is missing or a value is out of range."""
        self._check_ready()
        return self._config(strict=True)

    def _check_ready(self) -> None:
        if self.state.dataset is None:
            raise UserError("load a data set in the Dataset tab first")
        if not self.out_path.text():
            raise UserError("choose an output folder")

    def _config(self, strict: bool) -> RunConfig:
        """The form's values as a RunConfig; not ``strict``: what can be kept of a form still
        being filled in (the one saved for the next session)."""
        try:
            return RunConfig(**self._values(strict))
        except ValueError as exc:
            raise UserError(str(exc)) from None

    def _values(self, strict: bool) -> dict[str, Any]:
        """The fields of :attr:`widgets` (and of the app's state) as the form shows them."""
        defaults = RunConfig()
        values = {
            name: read_widget(widget, getattr(defaults, name))
            for name, widget in self.widgets.items()
            if name not in OWN_RULES
        }
        values["learning_rate"] = learning_rate_of(self.lr_edit.text(), strict)
        if self.variant == "transfer" or not strict:
            choice, path = self.weights_combo.currentData(), self.weights_path.text()
            values.update(base_weights_of(choice, path, strict))
        values["allow_overlap"] &= values.get("base") is not None
        if strict and self.variant != "finetune":
            values["from_model"] = None
        elif strict and values["from_model"] is None:
            raise UserError("fine-tuning continues from a transfer model: choose its file")
        return values | {
            "out_dir": self.out_path.text() or defaults.out_dir,
            # The app's: the Dataset and Augmentation tabs. The seed's baseline never augments.
            "classes": self.state.chosen_names,
            "data": self.state.data_source,
            "use_augmentation": self.variant != "baseline" and self.state.use_augmentation,
            "augment": self.state.augment,
        }

    def pretrain_config(self) -> RunConfig:
        """The pretrain of a base on every class but the chosen pair, with the form's
        :data:`PRETRAIN_FROM_FORM`; the architecture's own epochs and learning rate. Raises
        :class:`UserError` as :meth:`config` does."""
        self._check_ready()
        values = self._values(strict=False)
        return pretrain_config(
            self.state.class_names,
            self.state.classes,
            arch=self.arch_combo.currentData(),
            **{name: values[name] for name in PRETRAIN_FROM_FORM},
        )

    def use_base(self, path: str) -> None:
        """Take the model at ``path`` (a pretrained base) as the next transfer's base."""
        self.weights_combo.setCurrentIndex(self.weights_combo.findData("base"))
        self.weights_path.set_text(path)
        self.schedule_counts()

    def set_config(self, config: RunConfig) -> None:
        """Show ``config``'s run settings (the classes, data and augmentation are the app's)."""
        for name, widget in self.widgets.items():
            if name not in OWN_RULES:
                show_value(widget, getattr(config, name))
        self.lr_edit.setText(f"{config.lr:g}")
        choice, path = weights_choice_of(config)
        self.weights_combo.setCurrentIndex(self.weights_combo.findData(choice))
        self.weights_path.edit.setText(path)

    # ---- kept between sessions

    def save(self) -> None:
        """Store the form for the next session."""
        self.settings.setValue(SETTINGS_FORM, json.dumps(self._config(strict=False).to_dict()))
        self.settings.sync()

    def restore(self) -> None:
        """Show the form of the last session; a damaged entry keeps the defaults."""
        try:
            data = json.loads(str(self.settings.value(SETTINGS_FORM, "{}")))
            if isinstance(data, dict) and data.get("limit") == 0:
                data["limit"] = None  # older sessions stored the spin box's 0 ("all")
            config = RunConfig.from_dict(data)
        except (ValueError, TypeError):
            return
        self.set_config(config)

    def _on_out_dir_changed(self, text: str) -> None:
        if text:
            self.settings.setValue(SETTINGS_OUT_DIR, text)
        self.out_dir_changed.emit(text)

    # ---- what the form shows of the app's state

    def _on_variant_changed(self) -> None:
        self.lr_edit.setText(f"{RunConfig(variant=self.variant).lr:g}")
        self._update_vgg_fields()
        self._on_state_changed()
        self.schedule_counts()
        self.variant_changed.emit(self.variant)

    def add_card(self, card: QWidget) -> None:
        """Show ``card`` (the study's) right below the everyday settings."""
        self._cards.insertWidget(1, card)

    def _update_vgg_fields(self) -> None:
        vgg = self.variant in ("transfer", "finetune")
        if vgg:
            self.transfer_section.set_open(True)
        transfer = self.variant == "transfer"
        self.weights_combo.setEnabled(transfer)
        self.weights_path.setEnabled(
            transfer and WEIGHTS_CHOICES[self.weights_combo.currentData()][1]
        )
        self.overlap_check.setEnabled(self._transfer_base() is not None)
        self.from_path.setEnabled(self.variant == "finetune")
        if not self._counted():
            self.params_label.setText(
                "shown before fine-tuning or a transfer from a saved base"
                if vgg
                else "shown in the run table after a run"
            )

    def _transfer_base(self) -> str | None:
        """The saved model a transfer takes its base from (None: not such a transfer)."""
        if self.variant == "transfer" and self.weights_combo.currentData() == "base":
            return self.weights_path.text()
        return None

    def _counted(self) -> bool:
        """Whether the planned run's parameters are counted before it starts."""
        return self.variant == "finetune" or self._transfer_base() is not None

    def _on_state_changed(self, *_args: Any) -> None:
        self.classes_label.setText(" vs ".join(self.state.chosen_names))
        arch = self.arch_combo.currentData()
        others = len(self.state.class_names) - len(self.state.classes)
        self.pretrain_label.setText(
            pretrain_text(others, self.state.chosen_names, PRETRAIN_EPOCHS[arch])
        )
        self.augment_label.setText(augmentation_text(self.variant, self.state.use_augmentation))
        self.counting_changed.emit()  # the hint and the buttons follow the data set too

    def update_buttons(self, running: bool, listing: bool) -> None:
        """Enable what may be used while a run is (or is not) in progress."""
        self._running = running
        counting = self._count_job.busy
        hint = ""
        if self.state.dataset is None:
            hint = "Load a data set in the Dataset tab to train."
        elif counting:
            hint = "Counting parameters\u2026"
        self.hint_label.setText(hint)
        self.start_button.setEnabled(
            not running and not counting and self.state.dataset is not None
        )
        self.pretrain_button.setEnabled(not running and self.state.dataset is not None)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(not running and not listing and bool(self.out_path.text()))
        for box in self._settings_boxes:
            box.setEnabled(not running)

    # ---- parameter counts before a fine-tune or a transfer from a saved base

    def schedule_counts(self) -> None:
        """Count the planned run's parameters soon (they depend on the model it reads)."""
        if self._counted():
            self.params_label.setText("\u2026")
            self._count_timer.start()

    def _count_parameters(self) -> None:
        if not self._counted() or self._running:
            return
        config = counted_config(
            self.from_path.text(),
            self._transfer_base(),
            tuple(self.state.chosen_names),
            self.overlap_check.isChecked(),
        )
        if isinstance(config, str):  # what to choose first
            self.params_label.setText(config)
            return
        num_classes = len(self.state.classes)
        self._count_job.start(functools.partial(counts_job, self.service, config, num_classes))
        self.counting_changed.emit()

    @Slot(object)
    def _on_counts(self, counts: ParameterCounts) -> None:
        self.params_label.setText(
            f"trainable {counts.trainable:,} \u00b7 non-trainable {counts.non_trainable:,}"
        )
        self.counts_shown.emit(counts)

    def shutdown(self) -> None:
        """Save the form and wait for a count in progress (the window closes)."""
        self.save()
        self._count_timer.stop()
        self._count_job.shutdown()

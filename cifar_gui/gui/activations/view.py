"""The Activations tab: what each layer of a model makes of one image, and drop-to-classify.

Per image, one worker job computes everything the view needs (activations of every layer,
class probabilities, the Grad-CAM map) and hands it over as plain arrays. Changing layer or
channel then only re-colours cached arrays on the GUI thread, which keeps an update well
under 100 ms (``bench/activation_update.py`` measures it).

Image sources: a test image of the current class subset by 1-based index (the seed's
``p <- 5`` is test image 5, ``x_test[4]`` in Python), a thumbnail clicked in the Dataset tab
(``AppState.image_chosen``), a file opened here, or files dropped on the window. With no data
set and nothing chosen, the bundled sample drawing is shown, so the tab works offline on
first launch with the bundled default model.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cifar_gui import resources, tutorial
from cifar_gui.engine.data.dataset import read_image
from cifar_gui.engine.errors import ImageError, UserError
from cifar_gui.gui.activations import model as rules
from cifar_gui.gui.activations.model import (
    IMAGE_FILTER,
    ActivationModel,
    Analysis,
    DropResult,
    analyse,
    classify,
)
from cifar_gui.gui.activations.widgets import DropTable, FirstFilters, InputColumn, KernelView
from cifar_gui.gui.state import AppState
from cifar_gui.gui.widgets.activation_widgets import ChannelGrid, ColorBar, PixelView
from cifar_gui.gui.widgets.colormaps import channel_mosaic, colorize
from cifar_gui.gui.widgets.scroll import vertical_scroll_area
from cifar_gui.gui.workers import JobRunner

if TYPE_CHECKING:
    from cifar_gui.engine.data.dataset import Subset
    from cifar_gui.engine.service import EngineService, ModelHandle


class ActivationPanel(QWidget):
    """Input as the model sees it, Grad-CAM, layer/channel views, and dropped-file results.

    The state and the texts are :class:`ActivationModel`'s and :mod:`.model`'s; this class
    lays out the widgets, runs the jobs and draws.
    """

    view_updated = Signal()  # after the views show a new image, layer or channel
    files_classified = Signal(object)  # DropResult, after it is shown

    def __init__(self, state: AppState, service: EngineService, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.service = service  # called only from this panel's jobs (worker threads)
        self.view_model = ActivationModel()
        self._pending_analysis = False
        self._pending_files: list[str] = []
        self._mosaic_key: tuple | None = None

        self.analysis_job = JobRunner(self)
        self.analysis_job.result.connect(self._on_analysis)
        self.analysis_job.error.connect(self._show_error)
        self.analysis_job.finished.connect(self._on_analysis_finished)
        self.classify_job = JobRunner(self)
        self.classify_job.result.connect(self._on_classified)
        self.classify_job.error.connect(self._show_error)
        self.kernel_job = JobRunner(self)
        self.kernel_job.result.connect(self._on_kernel)
        self.kernel_job.error.connect(self._show_error)

        self._build()
        state.model_changed.connect(self._on_model_changed)
        state.model_loading.connect(self._on_model_loading)
        state.model_failed.connect(self._on_model_error)
        state.dataset_changed.connect(self._on_data_changed)
        state.classes_changed.connect(self._on_data_changed)
        state.image_chosen.connect(self.set_image)
        state.test_image_chosen.connect(self.show_test_image)
        self._on_data_changed()
        self._on_model_changed(state.model)

    @property
    def analysis(self) -> Analysis | None:
        """The analysis shown (of the current model), if any."""
        return self.view_model.analysis

    # -- layout ------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_label = QLabel("No model", wordWrap=True)
        self.test_index = QSpinBox(minimum=0, maximum=1)
        self.test_index.setSpecialValueText("\u2014")  # 0: the image shown is no test image
        self.test_index.setValue(tutorial.TEST_IMAGE)
        self.test_index.setToolTip(
            "Counted from 1, as the tutorial's p <- 5: test image 5 is x_test[4] of the chosen "
            "classes"
        )
        self.test_index.valueChanged.connect(self.show_test_image)
        self.test_total = QLabel()
        open_image = QPushButton("Open image…")
        open_image.clicked.connect(self._open_image_dialog)
        self.caption_label = QLabel(wordWrap=True)

        top = QHBoxLayout()
        top.addWidget(self.model_label, 1)
        top.addSpacing(16)
        top.addWidget(QLabel("Test image"))
        top.addWidget(self.test_index)
        top.addWidget(self.test_total)
        top.addWidget(open_image)

        # Left: the input, Grad-CAM, prediction.
        self.inputs = InputColumn()

        # Middle: layer and channel selection, the channel large with its colour bar.
        self.layer_combo = QComboBox()
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo.currentIndexChanged.connect(self._on_layer_changed)
        self.all_layers = QCheckBox("All layers")
        self.all_layers.setToolTip(
            "Off: the first eight layers, as the tutorial's activation model. On: every layer, "
            "including those inside a VGG16 base."
        )
        self.all_layers.toggled.connect(self._on_all_layers_toggled)
        self.channel_spin = QSpinBox(minimum=1, maximum=1)
        self.channel_spin.setToolTip(
            "Counted from 1, as the tutorial's first_layer_activation[1,,,c]"
        )
        self.channel_slider = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=1)
        self.channel_spin.valueChanged.connect(self.channel_slider.setValue)
        self.channel_slider.valueChanged.connect(self.channel_spin.setValue)
        self.channel_spin.valueChanged.connect(self._on_channel_changed)
        self.channel_view = PixelView(292)
        self.color_bar = ColorBar()
        self.channel_note = QLabel(wordWrap=True)
        selectors = QGridLayout()
        selectors.addWidget(QLabel("Layer"), 0, 0)
        selectors.addWidget(self.layer_combo, 0, 1)
        selectors.addWidget(self.all_layers, 0, 2)
        selectors.addWidget(QLabel("Channel"), 1, 0)
        selectors.addWidget(self.channel_spin, 1, 1)
        selectors.addWidget(self.channel_slider, 1, 2)
        channel_row = QHBoxLayout()
        channel_row.addWidget(self.channel_view)
        channel_row.addWidget(self.color_bar)
        channel_row.addStretch(1)
        self.kernel_view = KernelView()
        self.kernel_view.check.toggled.connect(self._render_kernel)
        middle = QVBoxLayout()
        middle.addLayout(selectors)
        middle.addLayout(channel_row)
        middle.addWidget(self.channel_note)
        middle.addWidget(self.kernel_view)
        middle.addStretch(1)

        # Right: every channel of the layer; a click picks one.
        self.grid_title = QLabel()
        self.grid = ChannelGrid(340)
        self.grid.channel_clicked.connect(lambda c: self.channel_spin.setValue(c + 1))
        self.first_filters = FirstFilters()
        self.first_filters.grid.channel_clicked.connect(self._on_filter_clicked)
        right = QVBoxLayout()
        right.addWidget(self.grid_title)
        right.addWidget(self.grid)
        right.addWidget(self.first_filters)
        right.addStretch(1)

        views_box = QWidget()
        views = QHBoxLayout(views_box)
        views.setContentsMargins(0, 0, 0, 0)
        views.addWidget(self.inputs)
        views.addLayout(middle, 1)
        views.addLayout(right)
        # The views scroll when the window is short (files dropped, messages shown): what
        # appears below them never makes the window grow.
        self.views_area = vertical_scroll_area(views_box)

        # Bottom: dropped files.
        self.message_label = QLabel(wordWrap=True)
        self.message_label.setStyleSheet("color: #b00020;")
        self.message_label.hide()
        self.results_box = DropTable()
        self.results_box.row_selected.connect(self._on_result_selected)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.caption_label)
        layout.addWidget(self.views_area, 1)
        layout.addWidget(self.message_label)
        layout.addWidget(self.results_box)
        hint = QLabel("Drop image files anywhere on the window to classify them.")
        hint.setEnabled(False)
        layout.addWidget(hint)

    # -- model ---------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        # Asked when the tab is first shown or files arrive, not at construction, so a window
        # that never shows this tab never starts the model process.
        super().showEvent(event)
        self.state.request_default_model()

    def _on_model_loading(self, path: str) -> None:
        if self.state.model is None:
            bundled = Path(path) == resources.default_model_path()
            self.model_label.setText(rules.loading_text(path, bundled))

    def _on_model_error(self, message: str) -> None:
        if self.state.model is None:
            self.model_label.setText("No model: it did not load (see below)")
            self._pending_files = []
        self._show_error(message)

    def _on_model_changed(self, loaded: ModelHandle | None) -> None:
        self.view_model.model_changed()
        if loaded is None:
            self.model_label.setText(rules.NO_MODEL)
            self._render_input_only()
            return
        bundled = loaded.path.resolve() == resources.default_model_path().resolve()
        self.model_label.setText(rules.model_summary(loaded, bundled))
        self.model_label.setToolTip(str(loaded.path))
        if self._pending_files:
            paths, self._pending_files = self._pending_files, []
            self.classify_files(paths)
        elif self.view_model.image is not None:
            self._request_analysis()

    # -- images --------------------------------------------------------------------------

    def _test_subset(self) -> Subset | None:
        try:
            return self.view_model.test_subset(self.state.dataset, self.state.classes)
        except UserError as exc:
            self._show_error(str(exc))
            return None

    def _on_data_changed(self, *_args) -> None:
        subset = self._test_subset()
        count = 0 if subset is None else len(subset.x_test)
        self.test_index.setEnabled(count > 0)
        if count == 0:
            self.test_total.setText("(open a data set)")
            if self.view_model.image is None:
                self._show_sample()
            return
        self.test_index.blockSignals(True)
        self.test_index.setRange(0, count)
        self.test_index.setValue(min(self.view_model.test_number, count))
        self.test_index.blockSignals(False)
        self.test_total.setText(rules.subset_total(subset))
        self.show_test_image(self.test_index.value())

    def show_test_image(self, number: int) -> None:
        """Show test image ``number`` (1-based) of the current class subset."""
        shown = self.view_model.test_image(self._test_subset(), number)
        if shown is not None:
            self.set_image(*shown)
            self._show_test_number(number)

    def _show_test_number(self, number: int) -> None:
        """The test image box shows ``number``, or a dash (0) for an image from elsewhere."""
        self.test_index.blockSignals(True)
        self.test_index.setValue(number)
        self.test_index.blockSignals(False)

    def _show_sample(self) -> None:
        path = resources.sample_image_path()
        with contextlib.suppress(ImageError):  # no resources: the tab waits for an image
            self.set_image(read_image(path), f"Bundled sample drawing {path.name} (not CIFAR-10)")

    def set_image(
        self, image: np.ndarray, caption: str, probabilities: tuple[float, ...] | None = None
    ) -> None:
        """Make ``image`` (uint8, any size) the viewer's image; analysed in a worker.

        ``probabilities``: the model's answer for it when already known (a classified file).
        """
        self.view_model.set_image(image, caption, probabilities)
        self._show_test_number(0)  # show_test_image sets its number after this
        self.caption_label.setText(caption)
        if self.state.model is None:
            self._render_input_only()
        else:
            self._request_analysis()

    def _open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", IMAGE_FILTER)
        if path:
            self.classify_files([path])

    # -- analysis ------------------------------------------------------------------------

    def _request_analysis(self) -> None:
        """Analyse the current image; while a job runs, only the latest request waits."""
        if self.analysis_job.busy:
            self._pending_analysis = True
            return
        self._pending_analysis = False
        vm, loaded, service = self.view_model, self.state.model, self.service
        image, caption, generation, given = vm.image, vm.caption, vm.generation, vm.given
        if loaded is None or image is None:
            return
        self.analysis_job.start(
            lambda task: analyse(service, loaded, image, caption, generation, given)
        )

    def _on_analysis_finished(self) -> None:
        if self._pending_analysis:
            self._request_analysis()

    def _on_analysis(self, analysis: Analysis) -> None:
        layers_changed = self.view_model.accept(analysis)
        if layers_changed is None:
            return  # computed with a model that has since been replaced
        if layers_changed:
            self._fill_layers()
        self.inputs.show_analysis(analysis)
        self.first_filters.show_filters(analysis)
        self._on_layer_changed()

    # -- rendering -----------------------------------------------------------------------

    def _render_input_only(self) -> None:
        """Without a model: the image scaled to [0, 1] as a model would see it, no more."""
        if self.view_model.image is not None:
            self.inputs.show_without_model(self.view_model.image)

    def _fill_layers(self) -> None:
        """List the first eight layers, or all with "All layers"; keep the choice if listed."""
        current = self.layer_combo.currentData()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for layer in self.view_model.listed_layers(self.all_layers.isChecked()):
            self.layer_combo.addItem(f"{layer.name}  {layer.shape}", layer.name)
        if self.layer_combo.count():
            self.layer_combo.setCurrentIndex(max(self.layer_combo.findData(current), 0))
        self.layer_combo.blockSignals(False)

    def _on_all_layers_toggled(self) -> None:
        before = self.current_layer()
        self._fill_layers()
        if self.current_layer() != before:
            self._on_layer_changed()

    def current_layer(self) -> str | None:
        """Name of the layer shown."""
        return self.layer_combo.currentData()

    def current_channel(self) -> int:
        """0-based index of the channel shown."""
        return self.channel_spin.value() - 1

    def layer_values(self) -> np.ndarray | None:
        """The shown layer's activations as (H, W, C); a flat layer is (1, 1, units)."""
        return self.view_model.layer_values(self.current_layer())

    def _on_layer_changed(self, *_args) -> None:
        values = self.layer_values()
        if values is None:
            return
        count = values.shape[-1]
        self.channel_spin.blockSignals(True)
        self.channel_slider.blockSignals(True)
        self.channel_spin.setRange(1, count)
        self.channel_slider.setRange(1, count)
        self.channel_slider.setValue(self.channel_spin.value())
        self.channel_spin.blockSignals(False)
        self.channel_slider.blockSignals(False)
        self._render_layer()

    def _on_channel_changed(self, *_args) -> None:
        self._render_channel()
        self._render_kernel()
        self.view_updated.emit()

    def _render_layer(self) -> None:
        """Rebuild the channel mosaic (once per image and layer), then the channel."""
        values = self.layer_values()
        if values is None:
            return
        key = (id(self.analysis), self.current_layer())
        if key != self._mosaic_key:
            height, width, count = values.shape
            flat = rules.is_flat(values)  # dense units: one common scale, else all one colour
            gap = 0 if flat else 1
            mosaic, grid = channel_mosaic(values, gap=gap, per_channel=not flat)
            self.grid.set_mosaic(mosaic, (height, width), grid, count, gap)
            self.grid_title.setText(rules.grid_title(values, self.current_layer()))
            self._mosaic_key = key
        self._render_channel()
        self._render_kernel()
        self.view_updated.emit()

    def _render_channel(self) -> None:
        values = self.layer_values()
        if values is None:
            return
        shown = rules.channel_shown(values, self.current_channel(), self.current_layer())
        self.channel_view.show_rgb(colorize(values[..., shown.channel], shown.lo, shown.hi))
        self.color_bar.set_range(shown.lo, shown.hi)
        self.grid.select(shown.channel)
        self.channel_note.setText(shown.note)

    # -- filters -------------------------------------------------------------------------

    def _on_filter_clicked(self, index: int) -> None:
        """Show the channel that filter ``index`` of the first convolution makes."""
        name = self.analysis.first_filters_layer if self.analysis is not None else None
        row = self.layer_combo.findData(name)
        if row < 0:
            return
        self.layer_combo.setCurrentIndex(row)
        self.channel_spin.setValue(index + 1)

    def _render_kernel(self, *_args) -> None:
        """With the box ticked and a convolution shown: the selected channel's filter."""
        vm = self.view_model
        layer = vm.layer(self.current_layer())
        if not self.kernel_view.wanted(layer):
            return
        if vm.has_kernel(layer.name):
            self.kernel_view.show_kernel(vm.kernel, self.current_channel(), layer.name)
            return
        self.kernel_view.show_loading(layer.name)
        key = vm.kernel_to_fetch(layer.name)
        if key is not None:
            loaded, service, name = self.state.model, self.service, layer.name
            self.kernel_job.start(lambda task: (key, service.kernel(loaded, name)))

    def _on_kernel(self, answer: tuple) -> None:
        self.view_model.kernel_arrived(*answer)
        self._render_kernel()

    # -- dropped files -------------------------------------------------------------------

    def classify_files(self, paths: list[str]) -> None:
        """Classify image files (dropped, opened or from the command line) in a worker."""
        paths = [str(p) for p in paths]
        if not paths:
            return
        loaded = self.state.model
        if loaded is None:
            self._pending_files = paths  # classified once a model has loaded
            self.state.message.emit("Waiting for a model to classify the files…")
            self.state.request_default_model()
            return
        service = self.service
        self.classify_job.start(lambda task: classify(service, loaded, paths))

    def _on_classified(self, result: DropResult) -> None:
        self._show_error("\n".join(result.errors))
        self.view_model.predictions = result.predictions
        self.results_box.show_predictions(result.predictions)
        if result.predictions:
            first = result.predictions[0]
            self.set_image(first.image, rules.file_caption(first), first.probabilities)
            self.state.message.emit(rules.classified_message(result))
        self.files_classified.emit(result)

    def _on_result_selected(self, row: int) -> None:
        if row < len(self.view_model.predictions):
            p = self.view_model.predictions[row]
            self.set_image(p.image, rules.file_caption(p), p.probabilities)

    def _show_error(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setVisible(bool(text))
        if text:
            self.state.message.emit(text.splitlines()[0])

    def shutdown(self) -> None:
        """Stop and join the worker threads."""
        for job in (self.analysis_job, self.classify_job, self.kernel_job):
            job.shutdown()

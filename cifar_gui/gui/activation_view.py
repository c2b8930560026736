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
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cifar_gui import resources, tutorial
from cifar_gui.engine.data import (
    IMAGE_EXTENSIONS,
    IMAGE_SIZE,
    Subset,
    fit_image,
    read_image,
    scale_images,
    select_classes,
)
from cifar_gui.engine.errors import ImageError, ModelError, UserError
from cifar_gui.gui.state import AppState
from cifar_gui.gui.text import counted, format_probability, known_classes_note
from cifar_gui.gui.widgets.activation_widgets import (
    ChannelGrid,
    ColorBar,
    PixelView,
    ProbabilityBars,
)
from cifar_gui.gui.widgets.colormaps import (
    channel_mosaic,
    colorize,
    filter_mosaic,
    filter_slices,
    heat_overlay,
)
from cifar_gui.gui.widgets.images import to_pixmap
from cifar_gui.gui.workers import JobRunner

if TYPE_CHECKING:
    from cifar_gui.engine.model_service import ModelHandle, ModelService

RESULTS_HEIGHT = 150  # pixels of the dropped-files table: three rows and the header
IMAGE_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{e}" for e in IMAGE_EXTENSIONS))


@dataclass(frozen=True)
class LayerView:
    """One layer as the viewer lists it."""

    name: str
    shape: tuple[int, ...]  # without the batch axis
    kernel_shape: tuple[int, ...] = ()  # a convolution's (height, width, in, filters)

    @property
    def has_filters(self) -> bool:
        return len(self.kernel_shape) == 4


@dataclass(frozen=True)
class Analysis:
    """Everything shown for one image and one model, computed once in a worker."""

    generation: int  # which model it was computed with (see ActivationPanel._generation)
    image: np.ndarray  # (H, W, 3) uint8 at the model's input size
    caption: str
    layers: tuple[LayerView, ...]
    seed_layers: int  # how many of them the seed's activation model takes (the first eight)
    activations: dict[str, np.ndarray]  # layer name -> array without the batch axis
    class_names: tuple[str, ...]
    probabilities: tuple[float, ...]
    cam: np.ndarray | None  # (H, W) in [0, 1], Grad-CAM of the predicted class
    cam_note: str = ""  # why there is no map, when there is none
    first_filters: np.ndarray | None = None  # kernel of the first convolution on RGB input
    first_filters_layer: str | None = None


@dataclass(frozen=True)
class DropResult:
    """Dropped files: the predictions of the readable ones and a line per unreadable one."""

    predictions: list = field(default_factory=list)  # engine Prediction objects
    errors: list[str] = field(default_factory=list)


def analyse(
    service: ModelService,
    handle: ModelHandle,
    image: np.ndarray,
    caption: str,
    generation: int,
    given: tuple[float, ...] | None = None,
) -> Analysis:
    """The worker's job: activations of every layer, probabilities and Grad-CAM of one image.

    ``given``: the probabilities already computed for this image (a classified file), used
    as they are, so the viewer shows the same numbers as the file's result.
    """
    image = fit_image(image, handle.input_size)
    layers = tuple(
        LayerView(info.name, info.output_shape, info.kernel_shape) for info in handle.layers
    )
    acts = service.activations(handle, image, [layer.name for layer in layers])
    if given is None:  # direct: predict() costs ~200 ms
        probs = service.predict_images(handle, image[None], direct=True)[0]
    else:
        probs = np.asarray(given)
    cam, note = None, ""
    try:
        cam = service.grad_cam(handle, image)
    except ModelError as exc:  # e.g. a model without a convolution
        note = f"no Grad-CAM: {exc}"
    names = handle.class_names
    if len(names) != len(probs):  # a sidecar that does not fit the model
        names = tuple(f"class {i}" for i in range(len(probs)))
    # The first convolution's filters see colours: drawn as RGB tiles (a few kB to send).
    first = next((v for v in layers if v.has_filters and v.kernel_shape[2] == 3), None)
    kernel = service.kernel(handle, first.name) if first is not None else None
    return Analysis(
        generation,
        image,
        caption,
        layers,
        len(handle.default_layers),
        {name: value[0] for name, value in acts.items()},
        tuple(names),
        tuple(float(p) for p in probs),
        cam,
        note,
        kernel,
        first.name if first is not None else None,
    )


def classify(service: ModelService, handle: ModelHandle, paths: list[str]) -> DropResult:
    """The worker's job for dropped files: a line per unreadable file, predictions for the rest."""
    good, errors = [], []
    for path in paths:
        try:
            read_image(path, handle.input_size)
            good.append(path)
        except ImageError as exc:
            errors.append(str(exc))
    predictions = service.predict_files(handle, good) if good else []
    return DropResult(predictions, errors)


class ActivationPanel(QWidget):
    """Input as the model sees it, Grad-CAM, layer/channel views, and dropped-file results."""

    view_updated = Signal()  # after the views show a new image, layer or channel
    files_classified = Signal(object)  # DropResult, after it is shown

    def __init__(self, state: AppState, service: ModelService, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.service = service  # called only from this panel's jobs (worker threads)
        self.analysis: Analysis | None = None
        self._generation = 0  # bumped when the model changes; older analyses are dropped
        self._image: np.ndarray | None = None  # the image asked for, any size
        self._caption = ""
        self._given: tuple[float, ...] | None = None  # probabilities of a classified file
        self._pending_analysis = False
        self._pending_files: list[str] = []
        self._test_number = tutorial.TEST_IMAGE  # kept while no data set is open
        self._subset_key: tuple | None = None
        self._subset: Subset | None = None
        self._mosaic_key: tuple | None = None
        self._drop_predictions: list = []
        # The selected layer's kernel, fetched on request: (generation, layer) -> array.
        self._kernel_key: tuple | None = None
        self._kernel: np.ndarray | None = None
        self._kernel_requested: tuple | None = None

        self.analysis_job = JobRunner(self)
        self.analysis_job.result.connect(self._on_analysis)
        self.analysis_job.error.connect(self._on_analysis_error)
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
        self._on_data_changed()
        self._on_model_changed(state.model)

    # -- layout ------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_label = QLabel("No model")
        self.model_label.setWordWrap(True)
        self.test_index = QSpinBox()
        self.test_index.setRange(0, 1)
        self.test_index.setSpecialValueText("\u2014")  # 0: the image shown is no test image
        self.test_index.setValue(tutorial.TEST_IMAGE)
        self.test_index.setToolTip(
            "1-based, as the seed's p <- 5: test image 5 is x_test[4] of the chosen classes"
        )
        self.test_index.valueChanged.connect(self.show_test_image)
        self.test_total = QLabel()
        open_image = QPushButton("Open image…")
        open_image.clicked.connect(self._open_image_dialog)
        self.caption_label = QLabel()
        self.caption_label.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.model_label, 1)
        top.addSpacing(16)
        top.addWidget(QLabel("Test image"))
        top.addWidget(self.test_index)
        top.addWidget(self.test_total)
        top.addWidget(open_image)

        # Left: the input, Grad-CAM, prediction.
        self.input_view = PixelView(164)
        self.input_note = QLabel()
        self.input_note.setWordWrap(True)
        self.cam_view = PixelView(164)
        self.cam_note = QLabel("Grad-CAM")
        self.cam_note.setWordWrap(True)
        self.prediction_label = QLabel()
        self.prediction_label.setWordWrap(True)
        self.bars = ProbabilityBars()
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Input as the model sees it</b>"))
        left.addWidget(self.input_view)
        left.addWidget(self.input_note)
        left.addWidget(self.cam_note)
        left.addWidget(self.cam_view)
        left.addWidget(self.prediction_label)
        left.addWidget(self.bars)
        left.addStretch(1)
        left_box = QWidget()
        left_box.setLayout(left)
        left_box.setFixedWidth(200)

        # Middle: layer and channel selection, the channel large with its colour bar.
        self.layer_combo = QComboBox()
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo.currentIndexChanged.connect(self._on_layer_changed)
        self.all_layers = QCheckBox("All layers")
        self.all_layers.setToolTip(
            "Off: the first eight layers, as the seed's activation model. On: every layer, "
            "including those inside a VGG16 base."
        )
        self.all_layers.toggled.connect(self._on_all_layers_toggled)
        self.channel_spin = QSpinBox()
        self.channel_spin.setRange(1, 1)
        self.channel_spin.setToolTip("1-based, as the seed's first_layer_activation[1,,,c]")
        self.channel_slider = QSlider(Qt.Orientation.Horizontal)
        self.channel_slider.setRange(1, 1)
        self.channel_spin.valueChanged.connect(self.channel_slider.setValue)
        self.channel_slider.valueChanged.connect(self.channel_spin.setValue)
        self.channel_spin.valueChanged.connect(self._on_channel_changed)
        self.channel_view = PixelView(292)
        self.color_bar = ColorBar()
        self.channel_note = QLabel()
        self.channel_note.setWordWrap(True)
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
        self.kernel_check = QCheckBox("Show this channel's filter")
        self.kernel_check.setToolTip(
            "For a convolution: the weights that make the selected channel, one grey tile "
            "per input channel, on the filter's common range"
        )
        self.kernel_check.toggled.connect(self._render_kernel)
        self.kernel_title = QLabel()
        self.kernel_title.setWordWrap(True)
        self.kernel_grid = ChannelGrid(200)
        self.kernel_grid.setCursor(Qt.CursorShape.ArrowCursor)
        self.kernel_grid.hide()
        middle = QVBoxLayout()
        middle.addLayout(selectors)
        middle.addLayout(channel_row)
        middle.addWidget(self.channel_note)
        middle.addWidget(self.kernel_check)
        middle.addWidget(self.kernel_title)
        middle.addWidget(self.kernel_grid)
        middle.addStretch(1)

        # Right: every channel of the layer; a click picks one.
        self.grid_title = QLabel()
        self.grid = ChannelGrid(340)
        self.grid.channel_clicked.connect(lambda c: self.channel_spin.setValue(c + 1))
        self.filters_title = QLabel()
        self.filters_title.setWordWrap(True)
        self.filters_grid = ChannelGrid(200)
        self.filters_grid.channel_clicked.connect(self._on_filter_clicked)
        right = QVBoxLayout()
        right.addWidget(self.grid_title)
        right.addWidget(self.grid)
        right.addWidget(self.filters_title)
        right.addWidget(self.filters_grid)
        right.addStretch(1)

        views_box = QWidget()
        views = QHBoxLayout(views_box)
        views.setContentsMargins(0, 0, 0, 0)
        views.addWidget(left_box)
        views.addLayout(middle, 1)
        views.addLayout(right)
        # The views scroll when the window is short (files dropped, messages shown): what
        # appears below them never makes the window grow.
        self.views_area = QScrollArea()
        self.views_area.setWidget(views_box)
        self.views_area.setWidgetResizable(True)
        self.views_area.setFrameShape(QFrame.Shape.NoFrame)
        self.views_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        # Bottom: dropped files.
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet("color: #b00020;")
        self.message_label.hide()
        self.results = QTableWidget()
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.results.verticalHeader().hide()
        self.results.itemSelectionChanged.connect(self._on_result_selected)
        # A fixed height that scrolls: any number of files fits without growing the window.
        self.results.setFixedHeight(RESULTS_HEIGHT)
        self.results_note = QLabel(wordWrap=True)
        self.results_box = QGroupBox("Dropped files (select a row to inspect it)")
        box_layout = QVBoxLayout(self.results_box)
        box_layout.addWidget(self.results_note)
        box_layout.addWidget(self.results)
        self.results_box.hide()

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
            what = "the bundled model " if Path(path) == resources.default_model_path() else ""
            self.model_label.setText(f"Loading {what}{Path(path).name}…")

    def _on_model_error(self, message: str) -> None:
        if self.state.model is None:
            self.model_label.setText("No model: it did not load (see below)")
            self._pending_files = []
        self._show_error(message)

    def _on_model_changed(self, loaded: ModelHandle | None) -> None:
        self._generation += 1
        self.analysis = None
        if loaded is None:
            self.model_label.setText("No model: train one, or File > Open model (.h5, .keras)")
            self._render_input_only()
            return
        record = loaded.record
        bundled = loaded.path.resolve() == resources.default_model_path().resolve()
        details = [" vs ".join(loaded.class_names)]
        if record is not None and record.variant != "?":
            details.insert(0, record.variant)
        if record is not None and record.test_accuracy is not None:
            details.append(f"test accuracy {record.test_accuracy:.3f}")
        source = " (bundled default)" if bundled else ""
        self.model_label.setText(f"Model <b>{loaded.path.name}</b>{source}: {', '.join(details)}")
        self.model_label.setToolTip(str(loaded.path))
        if self._pending_files:
            paths, self._pending_files = self._pending_files, []
            self.classify_files(paths)
        elif self._image is not None:
            self._request_analysis()

    # -- images --------------------------------------------------------------------------

    def _test_subset(self) -> Subset | None:
        """The test images of the chosen classes (cached per data set and class choice)."""
        dataset = self.state.dataset
        if dataset is None:
            return None
        key = (id(dataset), self.state.classes)
        if key != self._subset_key:
            # Only test images are shown here: select from the test split alone. With the
            # training split (five times larger) the copy held the GUI thread for ~250 ms.
            tests = dataclasses.replace(dataset, x_train=dataset.x_test, y_train=dataset.y_test)
            try:
                self._subset = select_classes(tests, self.state.classes)
            except UserError as exc:
                self._subset = None
                self._show_error(str(exc))
            self._subset_key = key
        return self._subset

    def _on_data_changed(self, *_args) -> None:
        subset = self._test_subset()
        count = 0 if subset is None else len(subset.x_test)
        self.test_index.setEnabled(count > 0)
        if count == 0:
            self.test_total.setText("(open a data set)")
            if self._image is None:
                self._show_sample()
            return
        self.test_index.blockSignals(True)
        self.test_index.setRange(0, count)
        self.test_index.setValue(min(self._test_number, count))
        self.test_index.blockSignals(False)
        self.test_total.setText(f"of {count:,} ({' / '.join(subset.class_names)}, 1-based)")
        self.show_test_image(self.test_index.value())

    def show_test_image(self, number: int) -> None:
        """Show test image ``number`` (1-based) of the current class subset."""
        subset = self._test_subset()
        if subset is None or not 1 <= number <= len(subset.x_test):
            return
        true = subset.class_names[int(subset.y_test[number - 1])]
        self.set_image(
            subset.x_test[number - 1],
            f"Test image {number} (1-based; x_test[{number - 1}] of "
            f"{' / '.join(subset.class_names)}), true class: {true}",
        )
        self._test_number = number
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
        self._image = np.asarray(image)
        self._caption = caption
        self._given = probabilities
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
        loaded, image, given = self.state.model, self._image, self._given
        caption, generation = self._caption, self._generation
        if loaded is None or image is None:
            return
        service = self.service
        self.analysis_job.start(
            lambda task: analyse(service, loaded, image, caption, generation, given)
        )

    def _on_analysis_finished(self) -> None:
        if self._pending_analysis:
            self._request_analysis()

    def _on_analysis_error(self, message: str) -> None:
        self._show_error(message)

    def _on_analysis(self, analysis: Analysis) -> None:
        if analysis.generation != self._generation:
            return  # computed with a model that has since been replaced
        previous = self.analysis
        self.analysis = analysis
        if previous is None or previous.layers != analysis.layers:
            self._fill_layers()
        self._render_image()
        self._render_first_filters()
        self._on_layer_changed()

    # -- rendering -----------------------------------------------------------------------

    def _render_input_only(self) -> None:
        """Without a model: the image scaled to [0, 1] as a model would see it, no more."""
        if self._image is None:
            return
        image = fit_image(self._image, IMAGE_SIZE)  # no model yet: CIFAR-10's size
        self._show_input(image)
        self.cam_view.show_rgb(None)
        self.prediction_label.setText("")
        self.bars.set_probabilities([], [])

    def _show_input(self, image: np.ndarray) -> None:
        scaled = scale_images(image)  # exactly what the model gets, shown back on 0-255
        self.input_view.show_rgb(np.round(scaled * 255).astype(np.uint8))
        self.input_note.setText(
            f"{image.shape[1]}x{image.shape[0]} pixels, values "
            f"{scaled.min():.2f} to {scaled.max():.2f} (pixels / 255, once)"
        )

    def _render_image(self) -> None:
        a = self.analysis
        if a is None:
            return
        self._show_input(a.image)
        best = int(np.argmax(a.probabilities))
        if a.cam is not None:
            self.cam_view.show_rgb(heat_overlay(a.image, a.cam))
            self.cam_note.setText(f"<b>Grad-CAM</b> for “{a.class_names[best]}”")
        else:
            self.cam_view.show_rgb(None)
            self.cam_note.setText(a.cam_note)
        self.prediction_label.setText(
            f"Predicted <b>{a.class_names[best]}</b> ({format_probability(a.probabilities[best])})"
            f"<br><small>{known_classes_note(a.class_names)}</small>"
        )
        self.bars.set_probabilities(a.class_names, a.probabilities)

    def _fill_layers(self) -> None:
        """List the first eight layers, or all with "All layers"; keep the choice if listed."""
        a = self.analysis
        current = self.layer_combo.currentData()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        if a is not None:
            layers = a.layers if self.all_layers.isChecked() else a.layers[: a.seed_layers]
            for layer in layers:
                self.layer_combo.addItem(f"{layer.name}  {layer.shape}", layer.name)
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
        a, name = self.analysis, self.current_layer()
        if a is None or name not in a.activations:
            return None
        values = a.activations[name]
        if values.ndim == 3:
            return values
        return values.reshape(1, 1, -1)

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
            flat = height == width == 1  # dense units: one common scale, else all one colour
            gap = 0 if flat else 1
            mosaic, grid = channel_mosaic(values, gap=gap, per_channel=not flat)
            self.grid.set_mosaic(mosaic, (height, width), grid, count, gap)
            kind = "units" if flat else "channels"
            self.grid_title.setText(f"All {count} {kind} of {self.current_layer()} (click one)")
            self._mosaic_key = key
        self._render_channel()
        self._render_kernel()
        self.view_updated.emit()

    def _render_channel(self) -> None:
        values = self.layer_values()
        if values is None:
            return
        channel = min(self.current_channel(), values.shape[-1] - 1)
        if values.shape[:2] == (1, 1):  # a dense unit: coloured on the layer's range
            lo, hi = float(values.min()), float(values.max())
        else:  # a feature map: on its own range, as the seed's plot_channel
            lo, hi = float(values[..., channel].min()), float(values[..., channel].max())
        self.channel_view.show_rgb(colorize(values[..., channel], lo, hi))
        self.color_bar.set_range(lo, hi)
        self.grid.select(channel)
        kind = "unit" if values.shape[:2] == (1, 1) else "channel"
        note = f"{self.current_layer()}, {kind} {channel + 1} of {values.shape[-1]}: "
        if values.shape[:2] == (1, 1):
            note += f"value {float(values[0, 0, channel]):.4g}"
        else:
            note += f"{values.shape[0]}x{values.shape[1]}, values {lo:.3g} to {hi:.3g}"
        self.channel_note.setText(note)

    # -- filters -------------------------------------------------------------------------

    def _render_first_filters(self) -> None:
        """The first convolution's filters as colour tiles (none for a model without one)."""
        a = self.analysis
        kernel = None if a is None else a.first_filters
        self.filters_grid.setVisible(kernel is not None)
        if kernel is None:
            self.filters_title.setText("No filters: the model has no convolution on colours")
            return
        mosaic, grid = filter_mosaic(kernel)
        height, width, _, count = kernel.shape
        self.filters_grid.set_mosaic(mosaic, (height, width), grid, count)
        self.filters_grid.show_plain()
        self.filters_title.setText(
            f"The {count} filters of {a.first_filters_layer} ({height}x{width}x3, each on its "
            "own range; click one for its channel)"
        )

    def _on_filter_clicked(self, index: int) -> None:
        """Show the channel that filter ``index`` of the first convolution makes."""
        name = self.analysis.first_filters_layer if self.analysis is not None else None
        row = self.layer_combo.findData(name)
        if row < 0:
            return
        self.layer_combo.setCurrentIndex(row)
        self.channel_spin.setValue(index + 1)

    def _layer_view(self) -> LayerView | None:
        a, name = self.analysis, self.current_layer()
        return None if a is None else next((v for v in a.layers if v.name == name), None)

    def _render_kernel(self, *_args) -> None:
        """With the box ticked and a convolution shown: the selected channel's filter."""
        layer = self._layer_view()
        wanted = self.kernel_check.isChecked() and layer is not None and layer.has_filters
        self.kernel_check.setEnabled(layer is not None and layer.has_filters)
        self.kernel_grid.setVisible(wanted)
        self.kernel_title.setVisible(wanted)
        if not wanted:
            return
        key = (self._generation, layer.name)
        if key != self._kernel_key:
            self.kernel_title.setText(f"Loading the filters of {layer.name}…")
            if key != self._kernel_requested:  # a newer request replaces an older one
                self._kernel_requested = key
                loaded, service, name = self.state.model, self.service, layer.name
                self.kernel_job.start(lambda task: (key, service.kernel(loaded, name)))
            return
        channel = min(self.current_channel(), self._kernel.shape[-1] - 1)
        mosaic, grid = filter_slices(self._kernel, channel)
        height, width, inputs, _ = self._kernel.shape
        self.kernel_grid.set_mosaic(mosaic, (height, width), grid, inputs)
        self.kernel_grid.show_plain()
        values = self._kernel[..., channel]
        self.kernel_title.setText(
            f"Filter {channel + 1} of {layer.name}: {inputs} input channels of "
            f"{height}x{width}, weights {values.min():.3g} to {values.max():.3g}"
        )

    def _on_kernel(self, answer: tuple) -> None:
        self._kernel_key, self._kernel = answer
        self._kernel_requested = None
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
        predictions = result.predictions
        self._drop_predictions = predictions
        self._fill_results(predictions)
        if predictions:
            first = predictions[0]
            self.set_image(first.image, self._file_caption(first), first.probabilities)
            count = len(predictions)
            self.state.message.emit(
                f"{counted(count, 'file')} classified"
                + (f", {len(result.errors)} could not be read" if result.errors else "")
                + f". {known_classes_note(first.class_names)}"
            )
        self.files_classified.emit(result)

    @staticmethod
    def _file_caption(prediction) -> str:
        confidence = format_probability(prediction.confidence)
        return f"{Path(prediction.path).name}: {prediction.label} ({confidence})"

    def _fill_results(self, predictions: list) -> None:
        """A row per file when several were classified; a single file needs no table."""
        self.results_box.setVisible(len(predictions) > 1)
        if len(predictions) <= 1:
            self.results.setRowCount(0)
            return
        names = predictions[0].class_names
        self.results.blockSignals(True)
        self.results.clear()
        self.results.setColumnCount(3 + len(names))
        self.results.setHorizontalHeaderLabels(["Input", "File", "Predicted", *names])
        self.results.setRowCount(len(predictions))
        for row, p in enumerate(predictions):
            icon = QLabel()
            icon.setPixmap(to_pixmap(p.image, 32))
            self.results.setCellWidget(row, 0, icon)
            file_item = QTableWidgetItem(Path(p.path).name)
            file_item.setToolTip(p.path)
            self.results.setItem(row, 1, file_item)
            self.results.setItem(row, 2, QTableWidgetItem(p.label))
            for col, value in enumerate(p.probabilities, start=3):
                item = QTableWidgetItem(format_probability(value))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.results.setItem(row, col, item)
            self.results.setRowHeight(row, 36)
        header = self.results.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.results.setColumnWidth(0, 44)
        self.results_note.setText(known_classes_note(names))
        self.results.blockSignals(False)

    def _on_result_selected(self) -> None:
        rows = self.results.selectionModel().selectedRows()
        if rows and rows[0].row() < len(self._drop_predictions):
            p = self._drop_predictions[rows[0].row()]
            self.set_image(p.image, self._file_caption(p), p.probabilities)

    def _show_error(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setVisible(bool(text))
        if text:
            self.state.message.emit(text.splitlines()[0])

    def shutdown(self) -> None:
        """Stop and join the worker threads."""
        for job in (self.analysis_job, self.classify_job, self.kernel_job):
            job.shutdown()

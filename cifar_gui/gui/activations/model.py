"""The Activations tab without widgets: the worker jobs, what the tab holds (the image asked
for, the analysis shown and the model it belongs to, the test image number, the cached test
subset, the selected layer's kernel) and the rules and texts of what it shows.

Plain Python and numpy (no Qt), so the tab's rules are tested without a window.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cifar_gui import tutorial
from cifar_gui.engine.data.dataset import (
    IMAGE_EXTENSIONS,
    IMAGE_SIZE,
    Dataset,
    Subset,
    fit_image,
    read_image,
    scale_images,
    select_classes,
)
from cifar_gui.engine.errors import ImageError, ModelError
from cifar_gui.gui.text import counted, format_probability, known_classes_note

if TYPE_CHECKING:
    from cifar_gui.engine.service import EngineService, ModelHandle

IMAGE_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{e}" for e in IMAGE_EXTENSIONS))
NO_MODEL = "No model: train one, or File > Open model (.h5, .keras)"
NO_FILTERS = "No filters: the model has no convolution on colours"


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

    generation: int  # which model it was computed with (see ActivationModel.generation)
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

    @property
    def best(self) -> int:
        """Index of the predicted class."""
        return int(np.argmax(self.probabilities))


@dataclass(frozen=True)
class DropResult:
    """Dropped files: the predictions of the readable ones and a line per unreadable one."""

    predictions: list = field(default_factory=list)  # engine Prediction objects
    errors: list[str] = field(default_factory=list)


def analyse(
    service: EngineService,
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


def classify(service: EngineService, handle: ModelHandle, paths: list[str]) -> DropResult:
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


# -- texts -------------------------------------------------------------------------------


def model_summary(handle: ModelHandle, bundled: bool) -> str:
    """The line naming the model: file, variant, classes and test accuracy when known."""
    record = handle.record
    details = [" vs ".join(handle.class_names)]
    if record is not None and record.variant != "?":
        details.insert(0, record.variant)
    if record is not None and record.test_accuracy is not None:
        details.append(f"test accuracy {format_probability(record.test_accuracy)}")
    source = " (bundled default)" if bundled else ""
    return f"Model <b>{handle.path.name}</b>{source}: {', '.join(details)}"


def loading_text(path: str | Path, bundled: bool) -> str:
    """The model line while ``path`` loads."""
    return f"Loading {'the bundled model ' if bundled else ''}{Path(path).name}…"


def model_input(image: np.ndarray) -> tuple[np.ndarray, str]:
    """``image`` exactly as the model gets it (pixels / 255), shown back on 0-255, and a
    note of its size and range."""
    scaled = scale_images(image)
    note = (
        f"{image.shape[1]}x{image.shape[0]} pixels, values "
        f"{scaled.min():.2f} to {scaled.max():.2f} (pixels / 255, once)"
    )
    return np.round(scaled * 255).astype(np.uint8), note


def input_only(image: np.ndarray) -> np.ndarray:
    """Without a model: the image at CIFAR-10's size, as a model of it would see it."""
    return fit_image(image, IMAGE_SIZE)


def prediction_text(a: Analysis) -> str:
    """The predicted class with its probability, and what the model can answer at all."""
    return (
        f"Predicted <b>{a.class_names[a.best]}</b> ({format_probability(a.probabilities[a.best])})"
        f"<br><small>{known_classes_note(a.class_names)}</small>"
    )


def cam_title(a: Analysis) -> str:
    """Above the Grad-CAM view: the class it explains, or why there is no map."""
    return f"<b>Grad-CAM</b> for “{a.class_names[a.best]}”" if a.cam is not None else a.cam_note


def as_channels(values: np.ndarray) -> np.ndarray:
    """A layer's activations as (H, W, C); a flat layer is (1, 1, units)."""
    return values if values.ndim == 3 else values.reshape(1, 1, -1)


def is_flat(values: np.ndarray) -> bool:
    """Whether (H, W, C) ``values`` are dense units (one pixel), not feature maps."""
    return values.shape[:2] == (1, 1)


def grid_title(values: np.ndarray, layer: str) -> str:
    """Above the mosaic of every channel (or unit) of ``layer``."""
    kind = "units" if is_flat(values) else "channels"
    return f"All {values.shape[-1]} {kind} of {layer} (click one)"


@dataclass(frozen=True)
class ChannelShown:
    """One channel of a layer as the large view shows it."""

    channel: int  # 0-based, within the layer's channels
    lo: float  # the colour range
    hi: float
    note: str


def channel_shown(values: np.ndarray, channel: int, layer: str) -> ChannelShown:
    """Channel ``channel`` (0-based, clamped to the layer) of (H, W, C) ``values``: a dense
    unit on the layer's range, a feature map on its own range (as the seed's plot_channel)."""
    channel = min(channel, values.shape[-1] - 1)
    flat = is_flat(values)
    shown = values if flat else values[..., channel]
    lo, hi = float(shown.min()), float(shown.max())
    note = f"{layer}, {'unit' if flat else 'channel'} {channel + 1} of {values.shape[-1]}: "
    if flat:
        note += f"value {float(values[0, 0, channel]):.4g}"
    else:
        note += f"{values.shape[0]}x{values.shape[1]}, values {lo:.3g} to {hi:.3g}"
    return ChannelShown(channel, lo, hi, note)


def filters_title(a: Analysis) -> str:
    """Above the first convolution's filters (the analysis must have them)."""
    height, width, _, count = a.first_filters.shape
    return (
        f"The {count} filters of {a.first_filters_layer} ({height}x{width}x3, each on its "
        "own range; click one for its channel)"
    )


def kernel_title(kernel: np.ndarray, channel: int, layer: str) -> str:
    """Above filter ``channel`` (0-based) of ``layer``'s (H, W, in, out) ``kernel``."""
    height, width, inputs, _ = kernel.shape
    values = kernel[..., channel]
    return (
        f"Filter {channel + 1} of {layer}: {inputs} input channels of "
        f"{height}x{width}, weights {values.min():.3g} to {values.max():.3g}"
    )


def file_caption(prediction) -> str:
    """The caption of a classified file: its name, class and confidence."""
    confidence = format_probability(prediction.confidence)
    return f"{Path(prediction.path).name}: {prediction.label} ({confidence})"


def classified_message(result: DropResult) -> str:
    """The status line after files were classified (some of them at least)."""
    first = result.predictions[0]
    unread = f", {len(result.errors)} could not be read" if result.errors else ""
    return (
        f"{counted(len(result.predictions), 'file')} classified{unread}. "
        f"{known_classes_note(first.class_names)}"
    )


def subset_caption(subset: Subset, number: int) -> str:
    """The caption of test image ``number`` (1-based) of ``subset``."""
    true = subset.class_names[int(subset.y_test[number - 1])]
    return (
        f"Test image {number} (x_test[{number - 1}] of "
        f"{' / '.join(subset.class_names)}), true class: {true}"
    )


def subset_total(subset: Subset) -> str:
    """Beside the test image box: how many there are, of which classes."""
    return f"of {len(subset.x_test):,} ({' vs '.join(subset.class_names)})"


# -- state -------------------------------------------------------------------------------


class ActivationModel:
    """What the Activations tab holds and decides, without widgets."""

    def __init__(self) -> None:
        self.generation = 0  # bumped when the model changes; older analyses are dropped
        self.analysis: Analysis | None = None
        self.image: np.ndarray | None = None  # the image asked for, any size
        self.caption = ""
        self.given: tuple[float, ...] | None = None  # probabilities of a classified file
        self.test_number = tutorial.TEST_IMAGE  # the last test image shown, kept without data
        self.predictions: list = []  # of the dropped files in the table
        # The selected layer's kernel, fetched on request: key (generation, layer) -> array.
        self.kernel_key: tuple[int, str] | None = None
        self.kernel: np.ndarray | None = None
        self.kernel_requested: tuple[int, str] | None = None
        self._subset_key: tuple | None = None
        self._subset: Subset | None = None

    def model_changed(self) -> None:
        """A new model (or none): analyses of the old one are dropped."""
        self.generation += 1
        self.analysis = None

    def set_image(
        self, image: np.ndarray, caption: str, given: tuple[float, ...] | None = None
    ) -> None:
        """``image`` (any size) becomes the image asked for."""
        self.image, self.caption, self.given = np.asarray(image), caption, given

    def accept(self, analysis: Analysis) -> bool | None:
        """Take ``analysis`` as the one shown: ``None`` when it belongs to a replaced model
        (dropped), else whether its layers differ from the previous analysis's."""
        if analysis.generation != self.generation:
            return None
        previous, self.analysis = self.analysis, analysis
        return previous is None or previous.layers != analysis.layers

    def test_subset(self, dataset: Dataset | None, classes: tuple[int, ...]) -> Subset | None:
        """The test images of ``classes`` (cached per data set and class choice); ``None``
        without a data set. A choice the data set cannot give raises :class:`UserError`
        once, then gives ``None``."""
        if dataset is None:
            return None
        key = (id(dataset), classes)
        if key != self._subset_key:
            self._subset_key, self._subset = key, None
            # Only test images are shown here: select from the test split alone. With the
            # training split (five times larger) the copy held the GUI thread for ~250 ms; the
            # test split stands in for it, one image a class (a copy of all of them again
            # held the loop for 70 ms more, under load, as the first data set opened).
            tests = dataclasses.replace(dataset, x_train=dataset.x_test, y_train=dataset.y_test)
            self._subset = select_classes(tests, classes, train_limit=len(classes))
        return self._subset

    def test_image(self, subset: Subset | None, number: int) -> tuple[np.ndarray, str] | None:
        """Test image ``number`` of ``subset`` and its caption; 1-based, as the seed's
        ``p <- 5`` (``x_test[4]``). ``None`` when there is no such image; else the number is
        kept as the test image shown."""
        if subset is None or not 1 <= number <= len(subset.x_test):
            return None
        self.test_number = number
        return subset.x_test[number - 1], subset_caption(subset, number)

    def listed_layers(self, all_layers: bool) -> tuple[LayerView, ...]:
        """The layers to choose from: the seed's first eight, or every one."""
        a = self.analysis
        if a is None:
            return ()
        return a.layers if all_layers else a.layers[: a.seed_layers]

    def layer(self, name: str | None) -> LayerView | None:
        """The layer called ``name`` in the analysis shown."""
        a = self.analysis
        return None if a is None else next((v for v in a.layers if v.name == name), None)

    def layer_values(self, name: str | None) -> np.ndarray | None:
        """Layer ``name``'s activations as (H, W, C); a flat layer is (1, 1, units)."""
        a = self.analysis
        if a is None or name not in a.activations:
            return None
        return as_channels(a.activations[name])

    def kernel_to_fetch(self, layer: str) -> tuple[int, str] | None:
        """The key of ``layer``'s kernel to ask the model for, or ``None`` when it is here
        or already asked for (a newer request replaces an older one)."""
        key = (self.generation, layer)
        if key == self.kernel_key or key == self.kernel_requested:
            return None
        self.kernel_requested = key
        return key

    def has_kernel(self, layer: str) -> bool:
        """Whether ``layer``'s kernel (of the current model) has arrived."""
        return self.kernel_key == (self.generation, layer)

    def kernel_arrived(self, key: tuple[int, str], kernel: np.ndarray) -> None:
        self.kernel_key, self.kernel = key, kernel
        self.kernel_requested = None

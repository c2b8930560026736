"""Transfer learning without ImageNet: a base pretrained on the classes that are not the pair.

The seed's transfer learning rests on a base that has seen many other images. Offline there
are no ImageNet weights, but CIFAR-10 has ten classes and the study uses two: a ``pretrain``
run trains a network (the seed's small CNN, or VGG16) on the other eight, 40,000 images,
with a softmax output, and ``transfer --base MODEL`` then reuses its convolutional layers,
frozen, under a new head trained on the pair.

The base must never have seen the pair: :func:`check_base_classes` compares the classes of
the base's sidecar with the pair and refuses an overlap, unless ``allow_overlap`` (the
command line's ``--allow-overlap``) says the user means it.

This module imports neither Keras nor Qt: the window plans a pretrain with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cifar_gui.config import PRETRAIN_EPOCHS, RunConfig, pretrain_defaults
from cifar_gui.engine.data.dataset import resolve_classes
from cifar_gui.engine.errors import ModelError, UserError
from cifar_gui.engine.record import read_record, sidecar_path


def complement_classes(class_names: Sequence[str], pair: Sequence[str | int]) -> tuple[str, ...]:
    """The names of the classes that are not in ``pair``, in the data set's order."""
    chosen = set(resolve_classes(pair, class_names))
    rest = tuple(name for i, name in enumerate(class_names) if i not in chosen)
    if len(rest) < 2:
        raise UserError(
            f"a base needs at least two other classes: the data set has {len(class_names)}"
        )
    return rest


def pretrain_config(
    class_names: Sequence[str], pair: Sequence[str | int], **fields: Any
) -> RunConfig:
    """The run that trains a base on every class of the data set but ``pair``.

    ``fields`` set the other settings (``arch``, ``data``, ``out_dir``...); the epochs default
    to :data:`~cifar_gui.config.PRETRAIN_EPOCHS` of the architecture, and the fields whose
    pretrain default is another (:func:`~cifar_gui.config.pretrain_defaults`: VGG16 from no
    weights, offline) to that, for the command line and the window alike.
    """
    fields = {**pretrain_defaults(), **fields}
    arch = fields.get("arch", RunConfig().arch)
    fields.setdefault("epochs", PRETRAIN_EPOCHS.get(arch, RunConfig().epochs))
    names = tuple(class_names)
    excluded = tuple(names[i] for i in resolve_classes(pair, names))
    try:
        return RunConfig(
            variant="pretrain",
            classes=complement_classes(names, pair),
            excluded=excluded,
            **fields,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None


def base_overlap(base: str | Path, classes: Sequence[str | int]) -> tuple[str, ...] | None:
    """The classes of ``classes`` that the model ``base`` was trained on; None when its
    sidecar is missing or says nothing of its classes (then nothing can be checked).

    A class is matched by name, or, given as an index, by the base's class indices.
    """
    record = read_record(sidecar_path(base))
    if record is None or not record.class_names:
        return None
    names = set(record.class_names)
    indices = set(record.class_indices)
    found = []
    for item in classes:
        text = str(item).strip()
        if text in names:
            found.append(text)
        elif isinstance(item, int) or (text.isascii() and text.isdigit()):
            index = int(text)
            if index in indices:
                found.append(record.class_names[record.class_indices.index(index)])
    return tuple(found)


def check_base_classes(config: RunConfig) -> None:
    """Refuse a transfer whose base (``config.base``) was trained on a class of the pair:
    its test images would not be new to the network. ``config.allow_overlap`` accepts it."""
    if config.base is None or config.allow_overlap:
        return
    overlap = base_overlap(config.base, config.classes)
    if overlap:
        raise ModelError(
            f"{config.base}: the base was trained on {', '.join(overlap)}, a class of the pair "
            "(a base for transfer must not have seen them; allow it with --allow-overlap)"
        )

"""Where a study's transfer base comes from: the VGG16 ImageNet weights (in the Keras cache,
or their host reachable), a ``--base`` or ``--weights`` file, or, offline, a base the study
pretrains first (which network, and why). Plain files and one TCP connection (no Keras, no
Qt): the study plans with it before anything trains."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.record import RunRecord, read_record, sidecar_path

if TYPE_CHECKING:  # the plan holds what its base entry reads
    from cifar_gui.engine.study.plan import StudyPlan

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

# Where Keras keeps the VGG16 ImageNet weights (keras.applications.vgg16), and where from.
VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_HOST = ("storage.googleapis.com", 443)
REACH_TIMEOUT_S = 3.0  # a quick look, not a download: offline must fail in seconds


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


def offline_base_reason(base_arch: str, resumed: bool = False) -> str:
    """Why a study without ImageNet weights pretrains a base of ``base_arch`` first (the
    study record and the report say it); :class:`UserError` for a ``resumed`` study, which
    keeps the base it chose (a version-1 study chose ImageNet)."""
    if resumed:
        where = keras_models_dirs()[0] / VGG16_NOTOP_FILE
        raise UserError(
            f"the VGG16 ImageNet weights this study uses are not in the Keras cache "
            f"({where}) and {WEIGHTS_HOST[0]} cannot be reached"
        )
    return (
        f"{OFFLINE_REASON} (not in the Keras cache, {WEIGHTS_HOST[0]} not reachable), so "
        f"a base was pretrained here on the other classes first; its network, "
        f"{base_arch}: {BASE_ARCH_REASONS[base_arch]}"
    )


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

"""Activation viewer latency: from a change of image, layer or channel to the updated views.

The target is under 100 ms for the baseline. An image change runs one worker job (activations
of every layer, probabilities, Grad-CAM: three requests to the model service's child process,
or with ``--in-process`` computed on the worker thread itself, as before the service) and then
re-renders; a layer or channel change only
re-colours cached arrays on the GUI thread. Each sample is timed from the change until the
panel has emitted ``view_updated`` and Qt has processed the resulting paint events.

Usage::

    python bench/activation_update.py [--model resources/models/cifar10_4_7.h5]
        [--data ../shared/data/cifar10] [--repeat 40] [--in-process]
        [--out bench/results/activation_update.json]

Uses the deer/horse test images of ``--data`` when it exists, else random images (the work
per image does not depend on the pixels). Without a screen it runs offscreen.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 100.0

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from benchutil import machine_fields, write_result  # noqa: E402
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def _wait(signal, timeout_ms: int = 60_000) -> None:
    """Run the event loop until ``signal`` fires (or the timeout, which raises)."""
    loop = QEventLoop()
    fired = []
    signal.connect(loop.quit)
    signal.connect(lambda *_: fired.append(True))
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(loop.quit)
    if not fired:
        raise RuntimeError("the view did not update in time")


def _stats(samples: list[float]) -> dict[str, object]:
    ms = sorted(1000 * s for s in samples)
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
        "max_ms": round(ms[-1], 2),
        "under_target": ms[min(len(ms) - 1, int(0.95 * len(ms)))] < TARGET_MS,
    }


def _images(data: str | None, count: int) -> tuple[np.ndarray, str]:
    if data and Path(data).is_dir():
        from cifar_gui import tutorial
        from cifar_gui.engine.data.dataset import load_dataset, select_classes

        subset = select_classes(load_dataset(data), tutorial.PAIR)
        return subset.x_test[:count], f"{os.path.relpath(data, ROOT)} (deer/horse test images)"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8), "random images"


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the bundled baseline)")
    parser.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "cifar10"))
    parser.add_argument("--repeat", type=int, default=40, help="samples per kind of change")
    parser.add_argument(
        "--in-process", action="store_true", help="the model in this process, not the child"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "activation_update.json"))
    args = parser.parse_args(argv)

    from cifar_gui import resources
    from cifar_gui.engine.service import EngineService
    from cifar_gui.gui.activations.view import ActivationPanel
    from cifar_gui.gui.state import AppState

    app = QApplication.instance() or QApplication([sys.argv[0]])
    model_path = Path(args.model) if args.model else resources.default_model_path()
    state = AppState()
    service = EngineService(in_process=args.in_process)
    state.set_model(service.open(model_path))
    panel = ActivationPanel(state, service)
    panel.resize(1150, 720)
    panel.show()
    images, source = _images(args.data, args.repeat + 3)
    rng = np.random.default_rng(1)

    def image_change(i: int) -> float:
        start = time.perf_counter()
        panel.set_image(images[i], f"image {i}")
        _wait(panel.view_updated)
        app.processEvents()  # paint
        elapsed = time.perf_counter() - start
        if panel.analysis_job.busy:  # let the worker thread end before the next sample
            _wait(panel.analysis_job.finished)
        return elapsed

    def synchronous_change(change) -> float:
        start = time.perf_counter()
        change()
        app.processEvents()
        return time.perf_counter() - start

    for i in range(3):  # warm-up: TensorFlow's first calls trace and allocate
        image_change(i)
    image_times = [image_change(3 + i) for i in range(args.repeat)]

    panel.all_layers.setChecked(True)
    combo = panel.layer_combo
    layer_times = []
    for i in range(args.repeat):
        index = (combo.currentIndex() + 1 + i % (combo.count() - 1)) % combo.count()
        layer_times.append(synchronous_change(lambda index=index: combo.setCurrentIndex(index)))

    channel_times = []
    for i in range(args.repeat):
        combo.setCurrentIndex(i % min(6, combo.count()))  # the convolution/pooling layers
        app.processEvents()
        channel = int(rng.integers(1, panel.channel_spin.maximum() + 1))
        if channel == panel.channel_spin.value():
            channel = channel % panel.channel_spin.maximum() + 1
        channel_times.append(synchronous_change(lambda c=channel: panel.channel_spin.setValue(c)))
    panel.shutdown()
    service.close()
    panel.close()
    panel.deleteLater()
    app.processEvents()

    result: dict[str, object] = {
        "command": f"{Path(sys.executable).name} bench/activation_update.py --repeat {args.repeat}"
        + (" --in-process" if args.in_process else ""),
        "model_service": "in process" if args.in_process else "child process",
        "model": str(
            model_path.relative_to(ROOT) if model_path.is_relative_to(ROOT) else model_path
        ),
        "images": source,
        "target_ms": TARGET_MS,
        "image_change": _stats(image_times),
        "layer_change": _stats(layer_times),
        "channel_change": _stats(channel_times),
        "qt_platform": app.platformName(),
        **machine_fields(),
    }
    return write_result(result, args.out)


if __name__ == "__main__":
    main()

"""The live view's cost: epoch time with and without it, and the GUI thread's time per refresh.

1. Training: the same run (deer vs horse, all 10,000 training images unless ``--limit``,
   the seed's baseline or another variant) with no live view, with a snapshot at every
   epoch's end (the default), and with one every ``--every`` batches too, in alternating
   rounds in this one process. Two figures: the share of each run's fit time spent making
   snapshots (timed inside the same run, so the machine's load hits both parts alike), and
   the ratio of seconds per epoch against the run without (the fit loop's wall time, the
   record's ``seconds``, over its epochs; noisier on a shared machine).
2. Drawing: :meth:`LiveView.show_snapshot` on the GUI thread for snapshots of the trained
   model (the baseline's and, with ``--vgg``, a VGG16 transfer model's): the event loop is
   blocked that long each refresh (target: under 50 ms).

Usage::

    python bench/live_view.py [--data ../shared/data/cifar10] [--limit 2000] [--epochs 3]
        [--rounds 2] [--every 50] [--variant baseline] [--vgg]
        [--out bench/results/live_view.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_STALL_MS = 50.0
TARGET_COST = 0.02  # of the epoch time, for the default (epoch end only)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(ROOT))

from benchutil import machine_fields, write_result  # noqa: E402


def timed_run(config, dataset, live_every: int | None, use_live: bool) -> tuple[float, float]:
    """Wall seconds per epoch of one run, the live view on or off, and the share of its fit
    time spent making snapshots."""
    from cifar_gui.engine.events import LiveRequest, LiveSnapshot, only
    from cifar_gui.engine.training import live
    from cifar_gui.engine.training.run import run_training

    snapshots, spent = [], []
    first = [LiveRequest(every_batches=live_every)]

    def request() -> LiveRequest | None:
        return first.pop() if first else None

    original = live.LiveProbe.snapshot

    def timed(self, *args):
        started = time.perf_counter()
        try:
            return original(self, *args)
        finally:
            spent.append(time.perf_counter() - started)

    live.LiveProbe.snapshot = timed
    try:
        result = run_training(
            config,
            only(LiveSnapshot, snapshots.append),
            live=request if use_live else None,
            dataset=dataset,
            save=False,
        )
    finally:
        live.LiveProbe.snapshot = original
    if use_live and not snapshots:
        raise RuntimeError("no snapshot arrived")
    record = result.record
    return record.seconds / record.epochs_completed, sum(spent) / record.seconds


def draw_times(model, subset, repeat: int) -> list[float]:
    """Seconds of LiveView.show_snapshot for ``repeat`` snapshots of ``model``."""
    from PySide6.QtWidgets import QApplication

    from cifar_gui.engine.events import LiveRequest
    from cifar_gui.engine.training.live import LiveProbe
    from cifar_gui.gui.live_view import LiveView

    app = QApplication.instance() or QApplication([])
    view = LiveView()
    view.resize(1180, 760)
    view.show()
    probe = LiveProbe(model, subset.x_test, subset.y_test, LiveRequest(), 0, subset.class_names)
    times = []
    for i in range(repeat):
        snapshot = probe.snapshot(i, 1, 1, i + 1)
        started = time.perf_counter()
        view.show_snapshot(snapshot)
        app.processEvents()  # the paint the refresh causes
        times.append(time.perf_counter() - started)
    view.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar10"))
    parser.add_argument("--limit", type=int, default=None, help="default: all images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--variant", default="baseline")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--vgg", action="store_true", help="also time a VGG16 model's drawing")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "live_view.json"))
    args = parser.parse_args()

    from cifar_gui.config import RunConfig
    from cifar_gui.engine.data.dataset import load_dataset, select_classes
    from cifar_gui.engine.models.build import build_model

    dataset = load_dataset(args.data)
    config = RunConfig(
        variant=args.variant, epochs=args.epochs, limit=args.limit, checkpoint=False,
        weights="none",
    )  # fmt: skip
    modes = {
        "off": (None, False),
        "epoch end": (None, True),
        f"every {args.every}": (args.every, True),
    }
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    shares: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode, (every, on) in modes.items():
            per_epoch, share = timed_run(config, dataset, every, on)
            seconds[mode].append(per_epoch)
            shares[mode].append(share)
    median = {mode: statistics.median(values) for mode, values in seconds.items()}
    subset = select_classes(dataset, config.classes, args.limit)
    stalls = {"baseline": draw_times(build_model(RunConfig()), subset, args.repeat)}
    if args.vgg:
        transfer = build_model(RunConfig(variant="transfer", weights="none"))
        stalls["transfer (VGG16)"] = draw_times(transfer, subset, args.repeat)
    result = {
        "benchmark": "live_view",
        **machine_fields(),
        "variant": args.variant,
        "train_images": len(subset.x_train),
        "test_images": len(subset.x_test),
        "epochs": args.epochs,
        "rounds": args.rounds,
        "seconds_per_epoch": {
            mode: [round(v, 3) for v in values] for mode, values in seconds.items()
        },
        "snapshot_share_of_fit": {
            mode: round(statistics.median(values), 4) for mode, values in shares.items()
        },
        "cost_vs_off": {mode: round(median[mode] / median["off"] - 1, 4) for mode in modes},
        "target_cost": TARGET_COST,
        "draw_ms": {
            name: {"median": round(1000 * statistics.median(t), 1), "max": round(1000 * max(t), 1)}
            for name, t in stalls.items()
        },
        "target_stall_ms": TARGET_STALL_MS,
        "command": "python bench/live_view.py " + " ".join(sys.argv[1:]),
    }
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

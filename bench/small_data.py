"""Transfer learning on small data, offline: test accuracy against the training-set size.

Deer vs horse with N training images (the first N/2 of each class) and all 2,000 test images
every time, 3 seeds each: the seed's baseline CNN from scratch, and ``transfer`` and
``finetune`` from a base pretrained on the other eight CIFAR-10 classes
(``cifar-gui pretrain``: 40,000 images that never include a deer or a horse).

Epochs: a fixed budget of training steps (batches of 32) per variant, so a small N gets
many epochs and a large N few, within bounds (:data:`BUDGETS`): ``epochs = ceil(steps /
ceil(N / 32))`` clipped to [low, high]. The score is the test accuracy after the last epoch
(the test set picks nothing: no early stopping, no best epoch). ``transfer`` trains its head
on the frozen base's cached features; ``finetune`` continues that transfer model with the
base's last block (``block3_conv1``) trainable. Learning rates: the seed's per variant
(baseline 1e-4, transfer and finetune 2e-5; 1e-4 for the transfer head was measured too, at
N = 250: 0.783 against 0.777 after 2,400 steps, not clearly better). No augmentation in any
variant (the baseline's seed setting), so the transfer's features are computed once.

    python bench/small_data.py [--data ../shared/data/cifar10] [--sizes 250 500 ...]
        [--seeds 0 1 2] [--base MODEL] [--work DIR] [--out bench/results/small_data]

Each finished run is appended to ``<out>.json`` at once, and a run already there is not
repeated: an interrupted benchmark continues where it stopped; ``--report`` only writes the
table and the plot of the runs in ``<out>.json``. The base is pretrained once
into ``--work`` (default: a folder in the temporary directory, not the repository: the base
is 8 MB) unless ``--base`` names one. Writes ``<out>.json``, ``<out>.md`` and ``<out>.png``.
Times are of a shared, busy 2-core machine: they are there to size the benchmark, not to
compare.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchutil import machine_fields  # noqa: E402

from cifar_gui import tutorial  # noqa: E402
from cifar_gui.config import RunConfig  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10"
SIZES = (250, 500, 1000, 2000, 5000, 10000)
SEEDS = (0, 1, 2)
VARIANTS = ("baseline", "transfer", "finetune")
# variant -> (training steps, fewest epochs, most epochs). Each epoch costs a fit call and a
# pass over the 2,000 test images, so the small sizes are held to 100 epochs.
BUDGETS = {
    "baseline": (2000, 10, 100),
    "transfer": (2000, 10, 100),
    "finetune": (1000, 5, 50),
}
LABELS = {
    "baseline": "baseline CNN from scratch",
    "transfer": "transfer (frozen 8-class base)",
    "finetune": "finetune (base's last block trained)",
}


def epochs_for(variant: str, n: int, batch_size: int = 32) -> int:
    """The epochs of a run of ``variant`` on ``n`` training images (see :data:`BUDGETS`)."""
    steps, low, high = BUDGETS[variant]
    return min(high, max(low, math.ceil(steps / math.ceil(n / batch_size))))


def pretrained_base(dataset, args: argparse.Namespace) -> Path:
    """The eight-class base: ``--base``, or the one in ``--work``, made once."""
    from cifar_gui.engine.data.dataset import resolve_classes
    from cifar_gui.engine.events import EpochEvent, only
    from cifar_gui.engine.record import model_filename
    from cifar_gui.engine.training.pretrain import pretrain_config
    from cifar_gui.engine.training.run import run_training

    if args.base:
        return Path(args.base)
    config = pretrain_config(
        dataset.class_names,
        tutorial.PAIR,
        data=str(args.data),
        out_dir=str(Path(args.work) / "base"),
    )
    indices = resolve_classes(config.classes, dataset.class_names)
    path = Path(config.out_dir) / model_filename("pretrain", indices)
    if path.is_file():
        return path
    print(f"pretraining the base: {', '.join(config.classes)}", flush=True)

    def epoch(event) -> None:
        print(f"  base epoch {event.epoch + 1}: {event.metrics}", flush=True)

    result = run_training(config, only(EpochEvent, epoch), dataset=dataset)
    print(f"base {result.path}: test accuracy {result.record.test_accuracy:.4f}", flush=True)
    return result.path


def one_run(
    variant: str, n: int, seed: int, base: Path, dataset, args: argparse.Namespace
) -> dict[str, object]:
    """Train one variant on ``n`` images; its test accuracy and what it cost."""
    from cifar_gui.engine.data.dataset import select_classes
    from cifar_gui.engine.models.persistence import save_model
    from cifar_gui.engine.training.run import train

    common = {
        "classes": tutorial.PAIR,
        "data": str(args.data),
        "epochs": epochs_for(variant, n),
        "seed": seed,
        "train_limit": n,
        "checkpoint": False,
        "use_augmentation": False,
    }
    transfer_path = Path(args.work) / f"transfer_{n}_{seed}.h5"
    if variant == "baseline":
        config = RunConfig(variant="baseline", **common)
    elif variant == "transfer":
        config = RunConfig(variant="transfer", base=str(base), **common)
    else:
        if not transfer_path.is_file():
            raise SystemExit(f"{transfer_path}: finetune needs the transfer run first")
        config = RunConfig(variant="finetune", from_model=str(transfer_path), **common)
    subset = select_classes(dataset, config.classes, config.limit, config.train_limit)
    result = train(config, subset)
    record = result.record.replace(data_source=dataset.source)
    if variant == "transfer":
        save_model(result.model, transfer_path, record)
    return {
        "variant": variant,
        "n": n,
        "seed": seed,
        "epochs": config.epochs,
        "learning_rate": config.lr,
        "train_images": record.train_images,
        "test_images": record.test_images,
        "test_accuracy": record.test_accuracy,
        "best_test_accuracy": record.best_test_accuracy,
        "trainable": record.parameters.trainable,
        "non_trainable": record.parameters.non_trainable,
        "seconds": round(record.seconds, 1),
        "feature_cache": record.performance.feature_cache,
    }


def summarise(runs: list[dict]) -> list[dict[str, object]]:
    """Mean, standard deviation, lowest and highest test accuracy per variant and N."""
    rows = []
    for variant in VARIANTS:
        for n in sorted({r["n"] for r in runs}):
            accs = [r["test_accuracy"] for r in runs if r["variant"] == variant and r["n"] == n]
            if not accs:
                continue
            rows.append(
                {
                    "variant": variant,
                    "n": n,
                    "runs": len(accs),
                    "mean": statistics.fmean(accs),
                    "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                    "min": min(accs),
                    "max": max(accs),
                }
            )
    return rows


def markdown(rows: list[dict], base_accuracy: float | None) -> str:
    """The table: one row per N, one column per variant (mean ± std, min-max)."""
    sizes = sorted({r["n"] for r in rows})
    cells = {(r["variant"], r["n"]): r for r in rows}
    lines = [
        "| N train | " + " | ".join(LABELS[v] for v in VARIANTS) + " |",
        "|---:|" + "---:|" * len(VARIANTS),
    ]
    for n in sizes:
        out = []
        for v in VARIANTS:
            r = cells.get((v, n))
            out.append(
                "-"
                if r is None
                else f"{r['mean']:.3f} ± {r['std']:.3f} ({r['min']:.3f}-{r['max']:.3f}, "
                f"{r['runs']} seeds)"
            )
        lines.append(f"| {n:,} | " + " | ".join(out) + " |")
    if base_accuracy is not None:
        lines.append("")
        lines.append(f"Base: 8-class test accuracy {base_accuracy:.3f} (8,000 test images).")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Test accuracy against N (log scale): mean line, band from lowest to highest seed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        if not mine:
            continue
        ns = [r["n"] for r in mine]
        (line,) = axes.plot(ns, [r["mean"] for r in mine], marker="o", label=LABELS[variant])
        low, high = [r["min"] for r in mine], [r["max"] for r in mine]
        axes.fill_between(ns, low, high, alpha=0.2, color=line.get_color())
    axes.set_xscale("log")
    axes.set_xlabel("training images (deer + horse)")
    axes.set_ylabel("test accuracy (2,000 images)")
    axes.set_title("Deer vs horse: from scratch vs a base pretrained on the other 8 classes")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--base", help="an eight-class base (default: pretrain one in --work)")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "cifar-gui-small-data"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "small_data"))
    parser.add_argument("--report", action="store_true", help="table and plot of <out>.json")
    args = parser.parse_args()
    if args.report:
        result = json.loads(Path(args.out).with_suffix(".json").read_text())
        write_report(result["runs"], result["base"]["test_accuracy"], Path(args.out))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not Path(args.data).is_dir():
        raise SystemExit(f"{args.data}: no CIFAR-10 image folder (see ../shared/data/README.md)")
    from cifar_gui.engine.data.dataset import load_dataset
    from cifar_gui.engine.record import read_record, sidecar_path

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    json_path = out.with_suffix(".json")
    previous = json.loads(json_path.read_text()) if json_path.is_file() else {}
    runs: list[dict] = previous.get("runs", [])
    done = {(r["variant"], r["n"], r["seed"]) for r in runs}
    dataset = load_dataset(args.data)
    base = pretrained_base(dataset, args)
    base_record = read_record(sidecar_path(base))
    started = time.perf_counter()
    # Seed by seed, so that a benchmark cut short still has every N for the seeds it ran.
    for seed in args.seeds:
        for n in args.sizes:
            for variant in args.variants:
                if (variant, n, seed) in done:
                    continue
                run = one_run(variant, n, seed, base, dataset, args)
                runs.append(run)
                print(json.dumps(run), flush=True)
                rows = summarise(runs)
                result = {
                    "benchmark": "small_data",
                    "pair": list(tutorial.PAIR),
                    "budgets": {k: list(v) for k, v in BUDGETS.items()},
                    "base": {
                        "path": str(base),
                        "classes": list(base_record.class_names) if base_record else None,
                        "test_accuracy": base_record.test_accuracy if base_record else None,
                        "epochs": base_record.epochs_completed if base_record else None,
                        "seconds": base_record.seconds if base_record else None,
                    },
                    "machine": machine_fields(),
                    "seconds_this_session": round(time.perf_counter() - started, 1),
                    "summary": rows,
                    "runs": runs,
                }
                json_path.write_text(json.dumps(result, indent=2) + "\n")
    write_report(runs, base_record.test_accuracy if base_record else None, out)
    return 0


def write_report(runs: list[dict], base_accuracy: float | None, out: Path) -> None:
    """``<out>.md`` (the table) and ``<out>.png`` (the plot) of ``runs``."""
    rows = summarise(runs)
    out.with_suffix(".md").write_text(markdown(rows, base_accuracy))
    plot(rows, out.with_suffix(".png"))
    print(markdown(rows, base_accuracy))


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the seed's recipe in stock Keras against this project's engine, in one run.

For each variant the reference (``bench/reference.py``) and ours (``run_training`` with the
automatic speed settings) train back to back, each in a fresh process, so every figure comes
from the same machine within minutes: on a shared machine compare the ratios, not the
absolute seconds. Seconds per epoch are medians over the epochs after the first (which
includes tracing), wall clock and process CPU time, training plus the validation pass.

    python bench/run.py            # 30 epochs (VGG16: 3), 3 seeds, deer vs horse
    python bench/run.py --quick    # 2 epochs, 2,000 images
    python bench/run.py --variants transfer finetune --vgg-epochs 3   # some variants only

Variants (``--variants``): ``baseline`` and ``augmented`` (reference against ours);
``baseline / floor``, the bare training steps with no pipeline around them
(``bench/floor.py``: the fastest an epoch can be here, so ``reference / floor`` is the
speed-up within reach); ``transfer`` and ``finetune``, the seed's VGG16 recipes with
augmentation (random weights, nothing is downloaded: the time does not depend on them),
reference against ours; ``transfer-cached``, transfer without augmentation, our full model
every epoch against cached base features. The study line estimates the seed's whole study
(the four variants, 30 epochs each) from the measured seconds per epoch, plus, for ours,
the one-time work before the first epoch (the frozen front's validation features).
Also runs the GUI benchmarks that exist
(``bench/startup.py``, ``bench/gui_training.py``, ``bench/activation_update.py``) and merges
their JSON. Writes ``bench/results/bench.json`` and ``RESULTS.md`` (quick: ``bench-quick.json``
and ``RESULTS-quick.md``).
Runs unchanged on a GPU; the device is recorded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10"
# The GUI benchmarks of other issues, with the arguments that shorten them in quick mode
# (passed only when the script knows the option).
GUI_BENCHMARKS = {
    "startup": ["--repeat", "3"],
    "gui_training": ["--epochs", "2", "--limit", "2000", "--rounds", "1"],
    "activation_update": ["--repeat", "10"],
}
RESULT_PREFIX = "BENCH-RESULT "
FLOOR_EPOCHS = 6
STUDY_EPOCHS = 30  # the seed trains every variant 30 epochs
STUDY_VARIANTS = ("baseline", "augmented", "transfer", "finetune")
VGG16_VARIANTS = ("transfer", "finetune", "transfer-cached")
# variant -> the recipes one worker process each trains, the slower one first.
RUNS = {
    "baseline": ("reference", "ours", "floor"),
    "augmented": ("reference", "ours"),
    "transfer": ("reference", "ours"),
    "finetune": ("reference", "ours"),
    "transfer-cached": ("full", "cached"),
}
# variant -> (slower recipe, faster recipe) compared in the report
COMPARED = {v: recipes[:2] for v, recipes in RUNS.items()}


# --------------------------------------------------------------------------------------
# Worker: one training run in this process, result as one JSON line on stdout


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def worker(spec: dict) -> dict:
    """Train one (variant, recipe) of ``spec`` and measure it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from cifar_gui import tutorial
    from cifar_gui.config import RunConfig
    from cifar_gui.engine.data.dataset import load_dataset, select_classes
    from cifar_gui.engine.events import EpochEvent, only
    from cifar_gui.engine.training.run import describe_device, run_training

    if spec["recipe"] == "conv":
        from floor import conv_gflops

        return conv_gflops()
    dataset = load_dataset(spec["data"])
    subset = select_classes(dataset, tutorial.PAIR, spec["limit"])
    variant, recipe, epochs = spec["variant"], spec["recipe"], spec["epochs"]
    started = time.perf_counter()
    if recipe == "reference":
        from reference import run_reference

        out = run_reference(
            subset.x_train,
            subset.y_train,
            subset.x_test,
            subset.y_test,
            epochs,
            augment=variant != "baseline",
            seed=spec["seed"],
            variant=variant,
        )
        history, epoch_seconds, cpu = out["history"], out["epoch_seconds"], out["cpu_seconds"]
        extra = {"precision": "float32", "steps_per_epoch": out["steps"]}
    elif recipe == "floor":
        from floor import run_floor

        # A few epochs suffice: nothing is learnt from them, only timed.
        out = run_floor(subset.x_train, subset.y_train, min(epochs, FLOOR_EPOCHS))
        history, epoch_seconds, cpu = {}, out["epoch_seconds"], out["cpu_seconds"]
        extra = {"precision": out["precision"], "steps_per_epoch": out["steps"]}
    else:
        config = RunConfig(
            variant="transfer" if variant == "transfer-cached" else variant,
            epochs=epochs,
            seed=spec["seed"],
            limit=spec["limit"],
            weights="none",
            use_augmentation=variant not in ("baseline", "transfer-cached"),
            feature_cache=recipe != "full",
        )
        if variant == "finetune":
            config = config.replace(from_model=transfer_model(dataset))
        cpu_marks = [time.process_time()]
        sink = only(EpochEvent, lambda _event: cpu_marks.append(time.process_time()))
        result = run_training(config, sink, dataset=dataset, save=False)
        history, epoch_seconds = result.history, result.history["epoch_seconds"]
        cpu = [b - a for a, b in itertools.pairwise(cpu_marks)]
        # cpu_marks[0] is taken before building the model: the first epoch's CPU time also
        # holds the build and, behind a frozen front, the validation features; it is not in
        # the median (the study line adds feature_seconds once).
        record = result.record
        extra = {
            "precision": record.precision,
            **record.performance.to_dict(),
            "steps_per_epoch": -(-len(subset.x_train) // config.batch_size),
        }
    val = history.get("val_accuracy", [])
    later = slice(1, None) if len(epoch_seconds) > 1 else slice(None)
    return {
        "variant": variant,
        "recipe": recipe,
        "seed": spec["seed"],
        "epochs": len(epoch_seconds),
        "train_images": len(subset.x_train),
        "test_images": len(subset.x_test),
        "epoch_seconds": [round(s, 3) for s in epoch_seconds],
        "median_epoch_seconds": round(statistics.median(epoch_seconds[later]), 3),
        "median_epoch_cpu_seconds": round(statistics.median(cpu[later]), 3) if cpu else None,
        "test_accuracy": val[-1] if val else None,
        "best_test_accuracy": max(val) if val else None,
        "val_accuracy": val,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "device": describe_device(),
        **extra,
    }


def transfer_model(dataset) -> str:
    """A saved transfer model (random weights, one short epoch) for finetune to start from;
    its file lives as long as the worker process."""
    from cifar_gui.config import RunConfig
    from cifar_gui.engine.training.run import run_training

    out = tempfile.mkdtemp(prefix="bench-transfer-")
    config = RunConfig(
        variant="transfer", weights="none", epochs=1, limit=64, out_dir=out, checkpoint=False
    )
    return str(run_training(config, dataset=dataset).path)


def run_worker(spec: dict, log) -> dict:
    """``worker(spec)`` in a fresh Python process (its own peak memory and thread pools)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    log(f"  failed ({proc.returncode}): {' | '.join(tail)}")
    return {"variant": spec["variant"], "recipe": spec["recipe"], "error": " | ".join(tail)}


# --------------------------------------------------------------------------------------
# GUI benchmarks of other issues, merged when their scripts exist


def run_gui_benchmarks(quick: bool, log) -> dict:
    """Run each ``bench/<name>.py --out TMP`` that exists; its JSON, or why there is none."""
    found = {}
    for name, quick_args in GUI_BENCHMARKS.items():
        script = ROOT / "bench" / f"{name}.py"
        if not script.is_file():
            found[name] = {"skipped": f"bench/{name}.py does not exist yet"}
            continue
        log(f"GUI benchmark {name} ...")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(script), "--out", str(out)]
            if quick:
                text = script.read_text()
                pairs = zip(quick_args[::2], quick_args[1::2], strict=True)
                cmd += [arg for pair in pairs if pair[0] in text for arg in pair]
            started = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            seconds = round(time.perf_counter() - started, 1)
            if proc.returncode == 0 and out.is_file():
                found[name] = {**json.loads(out.read_text()), "bench_seconds": seconds}
            else:
                lines = (proc.stderr or proc.stdout).strip().splitlines() or [""]
                why = next((x for x in lines if "Error" in x or "Fatal" in x), lines[-1])
                found[name] = {"error": f"exit {proc.returncode}: {why.strip()[:200]}"}
    return found


# --------------------------------------------------------------------------------------
# Report


def machine() -> dict:
    """CPU model, cores, versions and the device TensorFlow trains on."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    from cifar_gui.engine.training.hardware import cpu_name
    from cifar_gui.engine.training.performance import cpu_has_bfloat16, resolve_precision
    from cifar_gui.engine.training.run import describe_device, versions

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_bfloat16": cpu_has_bfloat16(),
        "device": describe_device(),
        "auto_precision": resolve_precision("auto"),
        "platform": platform.platform(),
        **versions(),
    }


def _median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _mean_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.fmean(values) if values else None


def _ratio(slow: float | None, fast: float | None) -> float | None:
    return round(slow / fast, 2) if slow and fast else None


def compare(runs: list[dict]) -> list[dict]:
    """One row per variant: reference (or full model) against ours (or cached features).

    Seconds per epoch: the median over seeds of each run's median; test accuracy: the mean
    over seeds (one 30-epoch run's last epoch moves by several points from seed to seed).
    """
    by: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        if "error" not in r:
            by.setdefault((r["variant"], r["recipe"]), []).append(r)
    rows = []
    for variant, (slow_name, fast_name) in COMPARED.items():
        slow, fast = by.get((variant, slow_name)), by.get((variant, fast_name))
        if not slow or not fast:
            continue
        slow_s, fast_s = (_median_of(g, "median_epoch_seconds") for g in (slow, fast))
        accuracies = {
            name: _mean_of(g, "test_accuracy") for name, g in (("slow", slow), ("fast", fast))
        }
        measured = variant not in VGG16_VARIANTS  # random VGG16 weights: accuracy means nothing
        rows.append(
            {
                "variant": variant,
                "seeds": min(len(slow), len(fast)),
                "slow_epoch_seconds": slow_s,
                "fast_epoch_seconds": fast_s,
                "fast_once_seconds": _median_of(fast, "feature_seconds") or 0.0,
                "peak_rss_mib": max(r["peak_rss_mib"] for r in slow + fast),
                "speedup_wall": _ratio(slow_s, fast_s),
                "speedup_cpu": _ratio(
                    _median_of(slow, "median_epoch_cpu_seconds"),
                    _median_of(fast, "median_epoch_cpu_seconds"),
                ),
                # The reference against the bare training steps: the most a pipeline can give.
                "speedup_floor_wall": _ratio(
                    slow_s, _median_of(by.get((variant, "floor"), []), "median_epoch_seconds")
                ),
                "reference_accuracy": round(accuracies["slow"], 4) if measured else None,
                "ours_accuracy": round(accuracies["fast"], 4) if measured else None,
                "accuracy_difference": (
                    round(accuracies["fast"] - accuracies["slow"], 4) if measured else None
                ),
            }
        )
    return rows


def study(comparison: list[dict]) -> dict | None:
    """The seed's whole study (each of its four variants 30 epochs) estimated from the
    measured seconds per epoch: reference against ours, in minutes; None unless all four
    variants were measured."""
    rows = {c["variant"]: c for c in comparison}
    if not all(v in rows for v in STUDY_VARIANTS):
        return None
    reference = sum(STUDY_EPOCHS * rows[v]["slow_epoch_seconds"] for v in STUDY_VARIANTS)
    ours = sum(
        STUDY_EPOCHS * rows[v]["fast_epoch_seconds"] + rows[v]["fast_once_seconds"]
        for v in STUDY_VARIANTS
    )
    return {
        "epochs": STUDY_EPOCHS,
        "reference_minutes": round(reference / 60, 1),
        "ours_minutes": round(ours / 60, 1),
        "speedup": _ratio(reference, ours),
        "vgg16_share_of_ours": round(
            sum(STUDY_EPOCHS * rows[v]["fast_epoch_seconds"] for v in ("transfer", "finetune"))
            / ours,
            2,
        ),
    }


def _fmt(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def markdown(report: dict) -> str:
    """The results as Markdown: machine, the runs, the speed-ups, the GUI figures."""
    m, s = report["machine"], report["settings"]
    lines = [
        f"# Benchmark results ({'quick' if s['quick'] else 'full'})",
        "",
        f"{report['finished']}; `{report['command']}`",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable); "
        f"{m['device']}; bfloat16 CPU: {m['cpu_bfloat16']}; auto precision: "
        f"{m['auto_precision']}",
        f"- TensorFlow {m['tensorflow']}, Keras {m['keras']}, Python {m['python']}, "
        f"{m['platform']}",
        f"- Load average before / after: {report['load_before']} / {report['load_after']} "
        "(above the core count the machine was shared: trust the ratios)",
        f"- {s['epochs']} epochs ({s['vgg_epochs']} for the VGG16 variants), deer vs horse, "
        f"{'first ' + str(s['limit']) if s['limit'] else 'all'} training images, seeds "
        f"{', '.join(map(str, s['seeds']))} (VGG16 variants and floor: the first; they are "
        "timed, not scored)",
        "",
        "| variant | recipe | seed | precision | s/epoch (wall) | s/epoch (CPU) | test acc "
        "| best acc | peak RSS MiB | epochs | once, s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['recipe']} | failed: {r['error'][:80]} |")
            continue
        lines.append(
            f"| {r['variant']} | {r['recipe']} | {r['seed']} | {r['precision']} "
            f"| {_fmt(r['median_epoch_seconds'], '.2f')} "
            f"| {_fmt(r['median_epoch_cpu_seconds'], '.2f')} "
            f"| {_fmt(r['test_accuracy'], '.4f')} | {_fmt(r['best_test_accuracy'], '.4f')} "
            f"| {r['peak_rss_mib']:.0f} | {r['epochs']} "
            f"| {_fmt(r.get('feature_seconds'), '.1f')} |"
        )
    lines += [
        "",
        "| variant | seeds | speed-up (wall) | speed-up (CPU) | test acc, reference "
        "| test acc, ours | ours - reference | within reach (reference / floor) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report["comparison"]:
        lines.append(
            f"| {c['variant']} | {c['seeds']} | {_fmt(c['speedup_wall'])}x "
            f"| {_fmt(c['speedup_cpu'])}x | {_fmt(c['reference_accuracy'], '.4f')} "
            f"| {_fmt(c['ours_accuracy'], '.4f')} | {_fmt(c['accuracy_difference'], '+.4f')} "
            f"| {_fmt(c['speedup_floor_wall'])}{'x' if c['speedup_floor_wall'] else ''} |"
        )
    st = report.get("study")
    if st:
        lines += [
            "",
            f"Study ({len(STUDY_VARIANTS)} variants x {st['epochs']} epochs, estimated from the "
            f"s/epoch above): reference {st['reference_minutes']} min, ours "
            f"{st['ours_minutes']} min: **{st['speedup']}x** (VGG16 variants: "
            f"{st['vgg16_share_of_ours']:.0%} of ours)",
        ]
    conv = report.get("conv_gflops") or {}
    if "error" not in conv:
        lines += [
            "",
            f"Bound: VGG16's main convolution (3x3, 64 -> 64 channels, 32x32, batch 256, "
            f"forward) runs at {_fmt(conv.get('conv_float32'))} GFLOP/s in float32 and "
            f"{_fmt(conv.get('conv_bfloat16'))} in bfloat16; a 2048^2 bfloat16 matrix product "
            f"at {_fmt(conv.get('matmul_bfloat16'))} GFLOP/s.",
        ]
    lines += ["", "## GUI figures", ""]
    for name, data in report["gui"].items():
        if "skipped" in data or "error" in data:
            lines.append(f"- `{name}`: {data.get('skipped') or data.get('error')}")
        else:
            lines.append(f"- `{name}`: `{json.dumps(_summary(data))}`")
    return "\n".join(lines) + "\n"


def _summary(data: dict) -> dict:
    """The top-level numbers of a GUI benchmark's JSON (nested dicts one level down)."""
    out = {}
    for key, value in data.items():
        if isinstance(value, int | float | bool):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if isinstance(v, int | float | bool)}
    return out


# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, 2,000 images")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR-10 source")
    parser.add_argument("--epochs", type=int, help="default: 30 (quick: 2)")
    parser.add_argument(
        "--vgg-epochs", type=int, help="epochs of the VGG16 variants (default: 3; quick: 2)"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(RUNS),
        default=[v for v in RUNS if v != "transfer-cached"],
        help="variants to run (default: the seed's four)",
    )
    parser.add_argument("--limit", type=int, help="training images (default: all; quick: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument(
        "--seeds", type=int, help="seeds per baseline and augmented recipe (default: 3; quick: 1)"
    )
    parser.add_argument("--no-gui", action="store_true", help="skip the GUI benchmarks")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    parser.add_argument("--tag", help="added to the result file names: bench-TAG.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    if not Path(args.data).exists():
        print(f"error: {args.data}: no CIFAR-10 data (give --data PATH)", file=sys.stderr)
        return 2
    epochs = args.epochs or (2 if args.quick else 30)
    vgg_epochs = args.vgg_epochs or (2 if args.quick else 3)
    limit = args.limit or (2000 if args.quick else None)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    load_before = [round(v, 2) for v in os.getloadavg()]
    started = time.perf_counter()
    seeds = list(range(args.seed, args.seed + (args.seeds or (1 if args.quick else 3))))
    runs = []
    pairs = [(v, recipe) for v in args.variants for recipe in RUNS[v]]
    for seed, (variant, recipe) in itertools.product(seeds, pairs):  # rounds: drift hits both
        if seed != seeds[0] and (variant in VGG16_VARIANTS or recipe == "floor"):
            continue  # timed only: one seed is enough
        spec = {
            "variant": variant,
            "recipe": recipe,
            "epochs": vgg_epochs if variant in VGG16_VARIANTS else epochs,
            "limit": limit,
            "data": str(Path(args.data).resolve()),
            "seed": seed,
        }
        log(f"{variant} / {recipe} / seed {seed}: {spec['epochs']} epochs ...")
        result = run_worker(spec, log)
        if "error" not in result:
            log(
                f"  {result['median_epoch_seconds']:.2f} s/epoch, test accuracy "
                f"{_fmt(result['test_accuracy'], '.4f')}, peak {result['peak_rss_mib']:.0f} MiB"
            )
        runs.append(result)
    log("conv GFLOP/s ...")
    conv = run_worker({"variant": "-", "recipe": "conv"}, log)
    gui = {} if args.no_gui else run_gui_benchmarks(args.quick, log)
    report = {
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/run.py", *(argv or sys.argv[1:])]),
        "seconds": round(time.perf_counter() - started, 1),
        "settings": {
            "quick": args.quick,
            "epochs": epochs,
            "vgg_epochs": vgg_epochs,
            "limit": limit,
            "seeds": seeds,
            "variants": args.variants,
        },
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "machine": machine(),
        "runs": runs,
        "comparison": (comparison := compare(runs)),
        "study": study(comparison),
        "conv_gflops": conv,
        "gui": gui,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Quick runs keep their own files, so they never overwrite the full figures.
    suffix = ("-quick" if args.quick else "") + (f"-{args.tag}" if args.tag else "")
    (out / f"bench{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (out / f"RESULTS{suffix}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

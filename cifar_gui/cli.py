"""Headless commands over the engine: train, pretrain, evaluate, predict, data.

Bad input (a path, a file, a class name) ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cifar_gui.config import (
    MATMUL_CONVOLUTIONS,
    MAX_SEED,
    PRECISIONS,
    PRETRAIN_ARCHS,
    PRETRAIN_EPOCHS,
    STRATEGIES,
    VARIANTS,
    RunConfig,
    check_limit,
)
from cifar_gui.engine.errors import UserError

COMMANDS = ("train", "pretrain", "evaluate", "predict", "data", "study", "report")
EXIT_USER_ERROR = 2
CLASSES_HELP = (
    "class names or indices: a name that matches a class is that class; otherwise a whole "
    "number 0-N (N: the number of classes less one, 9 for CIFAR-10) is an index"
)


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter buries the progress bar; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _auto_or_positive(text: str) -> int | str:
    """``auto`` or a whole number of at least 1 (argparse type)."""
    if text == "auto":
        return text
    if text.isascii() and text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r}: give auto or a number of at least 1")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cifar-gui`` sub-commands."""
    parser = argparse.ArgumentParser(
        prog="cifar-gui",
        description="Convnets on CIFAR-10. Without a command, the desktop app starts.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    defaults = RunConfig()  # the only source of the defaults
    train = sub.add_parser("train", help="train a model variant and save it")
    # A pretrain trains other classes than --classes: it has its own command.
    train_variants = tuple(v for v in VARIANTS if v != "pretrain")
    train.add_argument("--variant", choices=train_variants, default=defaults.variant)
    train.add_argument(
        "--classes",
        nargs="+",
        default=list(defaults.classes),
        help=f"{CLASSES_HELP} (default: {' '.join(map(str, defaults.classes))})",
    )
    train.add_argument(
        "--data", help="archive, batches folder or image folder (default: Keras cache)"
    )
    train.add_argument(
        "--epochs", type=int, help=f"default {defaults.epochs}; with --resume: the new total"
    )
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument(
        "--lr",
        type=float,
        help="learning rate, above 0 and at most 1 (default: the seed's per variant)",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help=f"0 to {MAX_SEED} (default: {defaults.seed})",
    )
    train.add_argument(
        "--weights", default=defaults.weights, help="VGG16 base: imagenet, none or FILE"
    )
    train.add_argument(
        "--base",
        help="transfer: take the convolutional base of a model saved by this app (a VGG16 "
        "or a small CNN, e.g. one made by pretrain)",
    )
    train.add_argument(
        "--allow-overlap",
        action="store_true",
        help="transfer: accept a --base trained on a class of the pair (refused by default)",
    )
    train.add_argument("--from", dest="from_model", help="finetune: the transfer model to continue")
    train.add_argument(
        "--limit", type=int, help="N training and N test images, shared evenly by the classes"
    )
    train.add_argument(
        "--augment",
        choices=("auto", "on", "off"),
        default="auto",
        help="augmented training stream (auto: all variants but baseline)",
    )
    train.add_argument(
        "--out", default=defaults.out_dir, help=f"output folder (default: {defaults.out_dir})"
    )
    train.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="devices: default (one), mirrored (all local GPUs), multi-worker (TF_CONFIG); "
        "--batch-size is per device",
    )
    train.add_argument(
        "--no-checkpoint",
        dest="checkpoint",
        action="store_false",
        help="do not keep a resumable checkpoint in OUT/checkpoints/",
    )
    train.add_argument(
        "--keep-best",
        action="store_true",
        help="save the epoch of the best validation accuracy as the model, not the last one "
        "(the sidecar names it; the checkpoint keeps the last)",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped or killed run at its next epoch (RUN_DIR: its --out folder "
        "or its checkpoint folder); only --epochs, --strategy and --data may change",
    )
    speed = train.add_argument_group("speed (each has an automatic default; see README)")
    speed.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=defaults.precision,
        help="auto: mixed_bfloat16 on CPUs with bfloat16 instructions, mixed_float16 on GPUs",
    )
    speed.add_argument(
        "--steps-per-execution",
        type=_auto_or_positive,
        default=defaults.steps_per_execution,
        metavar="N|auto",
        help="training batches per compiled call (auto: 8 on a CPU, 32 on a GPU)",
    )
    speed.add_argument(
        "--threads",
        type=int,
        default=defaults.threads,
        help="TensorFlow intra-op threads (0: all cores)",
    )
    speed.add_argument(
        "--matmul-conv",
        dest="matmul_convolutions",
        choices=MATMUL_CONVOLUTIONS,
        default=defaults.matmul_convolutions,
        help="convolutions on small maps as matrix products (auto: on CPUs)",
    )
    for flag, dest, help_text in (
        ("--no-feature-cache", "feature_cache", "run the whole model every training step, "
         "frozen layers included"),
        ("--no-fused-optimizer", "fused_optimizer", "Keras' own RMSprop update (default: "
         "TensorFlow's fused kernel)"),
    ):  # fmt: skip
        speed.add_argument(flag, dest=dest, action="store_false", help=help_text)

    _add_pretrain_parser(sub, defaults)

    evaluate = sub.add_parser("evaluate", help="test accuracy, loss and confusion matrix")
    evaluate.add_argument("model")
    evaluate.add_argument("--data", help="data source (default: the model's, or the Keras cache)")
    evaluate.add_argument(
        "--classes",
        nargs="+",
        help=f"{CLASSES_HELP} (default: the classes the model was trained on)",
    )
    evaluate.add_argument(
        "--limit", type=int, help="the first N test images, shared evenly by the classes"
    )

    predict = sub.add_parser("predict", help="classify image files")
    predict.add_argument("model")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--json", action="store_true", help="one JSON object per image")

    data = sub.add_parser("data", help="images per class and split, as the seed's table()")
    data.add_argument("--data", help="data source (default: Keras cache)")
    _add_study_parsers(sub, defaults)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; return the exit code."""
    args = build_parser().parse_args(argv)
    _quiet_tensorflow()
    try:
        commands = {
            "train": _train,
            "pretrain": _pretrain,
            "evaluate": _evaluate,
            "predict": _predict,
            "data": _data,
            "study": _study,
            "report": _report,
        }
        return commands[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


class _Progress:
    """The sink of a run's events on stderr: one self-rewriting line of the batch events (the
    runner bundles them), a line per epoch, and a line as each run of a study starts."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream

    def __call__(self, event: Any) -> None:
        from cifar_gui.engine.events import BatchEvent, EpochEvent, StudyProgress

        if isinstance(event, BatchEvent):
            self.batch(event)
        elif isinstance(event, EpochEvent):
            self.epoch(event)
        elif isinstance(event, StudyProgress):
            self.study_run(event)

    def batch(self, event) -> None:
        if not self.stream.isatty():
            return  # a log file gets the epoch lines only
        width = 24
        filled = int(width * (event.batch + 1) / event.steps)
        eta = time.strftime("%H:%M:%S", time.gmtime(event.eta_seconds))
        self.stream.write(
            f"\repoch {event.epoch + 1}/{event.epochs} [{'#' * filled}{'.' * (width - filled)}] "
            f"{event.batch + 1}/{event.steps} loss {event.loss:.4f} acc {event.accuracy:.4f} "
            f"{event.images_per_second:,.0f} img/s ETA {eta}  "
        )
        self.stream.flush()

    def epoch(self, event) -> None:
        m = event.metrics
        self.stream.write(
            f"\repoch {event.epoch + 1}/{event.epochs}: loss {m.get('loss', 0):.4f} "
            f"acc {m.get('accuracy', 0):.4f} val_loss {m.get('val_loss', float('nan')):.4f} "
            f"val_acc {m.get('val_accuracy', float('nan')):.4f} ({event.seconds:.1f} s)"
            + " " * 30
            + "\n"
        )
        self.stream.flush()

    def study_run(self, event) -> None:
        where = f"run {event.index + 1} of {event.count}: {event.variant}"
        if event.state == "running" and event.resumed_from_epoch is not None:
            print(f"{where}, from epoch {event.resumed_from_epoch + 1}", file=self.stream)
        elif event.state == "running":
            print(where, file=self.stream)
        elif event.skipped:
            print(f"{where} done already", file=self.stream)


# Options that define a run: a resumed run keeps the checkpoint's values.
_RUN_OPTIONS = (
    "variant",
    "classes",
    "batch_size",
    "lr",
    "seed",
    "weights",
    "base",
    "allow_overlap",
    "from_model",
    "limit",
    "augment",
    "out",
    "checkpoint",
    "keep_best",
)


def _train(args: argparse.Namespace) -> int:
    from cifar_gui.engine.runner import plan_run

    if args.resume:
        defaults = build_parser().parse_args(["train"])
        changed = [
            f"--{k.replace('_', '-')}"
            for k in _RUN_OPTIONS
            if getattr(args, k) != getattr(defaults, k)
        ]
        if changed:
            raise UserError(
                f"--resume continues the run as it was; {', '.join(changed)} cannot change "
                "(only --epochs, --strategy and --data can)"
            )
        plan = plan_run(
            resume=args.resume, epochs=args.epochs, data=args.data, strategy=args.strategy
        )
        print(
            f"resuming {plan.resume.directory} at epoch {plan.resume.epochs_completed + 1} "
            f"of {plan.config.epochs}",
            file=sys.stderr,
        )
    else:
        try:
            config = RunConfig(
                variant=args.variant,
                classes=tuple(args.classes),
                data=args.data,
                epochs=RunConfig().epochs if args.epochs is None else args.epochs,
                batch_size=args.batch_size,
                learning_rate=args.lr,
                seed=args.seed,
                weights=args.weights,
                base=args.base,
                from_model=args.from_model,
                limit=args.limit,
                out_dir=args.out,
                use_augmentation={"auto": None, "on": True, "off": False}[args.augment],
                strategy=args.strategy or RunConfig().strategy,
                checkpoint=args.checkpoint,
                keep_best=args.keep_best,
                precision=args.precision,
                steps_per_execution=args.steps_per_execution,
                threads=args.threads,
                feature_cache=args.feature_cache,
                matmul_convolutions=args.matmul_convolutions,
                fused_optimizer=args.fused_optimizer,
                allow_overlap=args.allow_overlap,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
        plan = plan_run(config)
        if config.base or config.variant == "finetune":
            _print_counts(config)
    return _run_plan(plan)


def _print_counts(config: RunConfig, num_classes: int | None = None) -> None:
    """The planned run's parameter counts, before it starts (the base is read for them)."""
    from cifar_gui.engine.models import planned_parameter_counts

    counts = planned_parameter_counts(config, num_classes or len(config.classes))
    print(
        f"parameters: {counts.trainable:,} trainable, {counts.non_trainable:,} non-trainable",
        file=sys.stderr,
    )


def _run_plan(plan) -> int:
    """Run ``plan`` here with a progress bar; print where the model went."""
    import threading

    from cifar_gui.engine.runner import run

    finished = run(plan, _Progress(), threading.Event(), in_process=True)
    record = finished.record
    if finished.path is None:
        print(f"trained ({record.seconds:.1f} s); the chief worker saves the model")
        return 0
    accuracy = record.test_accuracy
    score = "no test images" if accuracy is None else f"test accuracy {accuracy:.4f}"
    print(f"saved {finished.path} ({score}, {record.seconds:.1f} s, {record.device})")
    return 0


# ---- pretrain: a base for transfer learning, trained on the classes that are not the pair


def _add_pretrain_parser(sub: argparse._SubParsersAction, defaults: RunConfig) -> None:
    pretrain = sub.add_parser(
        "pretrain",
        help="train a base on the classes not in the pair, for transfer --base",
        description="Train a network on every class but the pair (deer vs horse: the other "
        "eight CIFAR-10 classes, softmax) and save it as a base for "
        "`train --variant transfer --base MODEL`. Offline, it stands in for ImageNet.",
    )
    pretrain.add_argument(
        "--classes",
        nargs="+",
        default=list(defaults.classes),
        help=f"the pair the base must never see: {CLASSES_HELP} "
        f"(default: {' '.join(map(str, defaults.classes))})",
    )
    pretrain.add_argument(
        "--arch",
        choices=PRETRAIN_ARCHS,
        default=defaults.arch,
        help="cnn: the seed's small CNN (fast on a CPU); vgg16: VGG16 (for a GPU)",
    )
    pretrain.add_argument(
        "--epochs",
        type=int,
        help=", ".join(f"default {n} for {a}" for a, n in PRETRAIN_EPOCHS.items()),
    )
    pretrain.add_argument(
        "--data", help="archive, batches folder or image folder (default: Keras cache)"
    )
    pretrain.add_argument(
        "--out", default=defaults.out_dir, help=f"output folder (default: {defaults.out_dir})"
    )
    pretrain.add_argument(
        "--limit", type=int, help="N training and N test images, shared evenly by the classes"
    )
    pretrain.add_argument("--batch-size", type=int, default=defaults.batch_size)
    pretrain.add_argument(
        "--lr", type=float, help="learning rate (default: 1e-4; the seed's CNN rate)"
    )
    pretrain.add_argument("--seed", type=int, default=defaults.seed)
    pretrain.add_argument(
        "--weights",
        default="none",
        help="vgg16: start from imagenet, none (default: offline) or a weights FILE",
    )
    pretrain.add_argument(
        "--augment",
        choices=("off", "on"),
        default="off",
        help="augmented training stream (default off: 40,000 images need none in few epochs)",
    )
    pretrain.add_argument(
        "--no-checkpoint",
        dest="checkpoint",
        action="store_false",
        help="do not keep a resumable checkpoint in OUT/checkpoints/",
    )
    pretrain.add_argument("--precision", choices=PRECISIONS, default=defaults.precision)


def _pretrain(args: argparse.Namespace) -> int:
    from cifar_gui.engine.data import load_dataset
    from cifar_gui.engine.pretrain import pretrain_config
    from cifar_gui.engine.runner import plan_run

    try:
        check_limit(args.limit)
    except ValueError as exc:
        raise UserError(f"--{exc}") from None
    dataset = load_dataset(args.data)
    fields = {
        "arch": args.arch,
        "data": args.data,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "seed": args.seed,
        "weights": args.weights,
        "limit": args.limit,
        "out_dir": args.out,
        "use_augmentation": args.augment == "on",
        "checkpoint": args.checkpoint,
        "precision": args.precision,
    }
    if args.epochs is not None:
        fields["epochs"] = args.epochs
    config = pretrain_config(dataset.class_names, args.classes, **fields)
    plan = plan_run(config)
    print(
        f"pretraining a {config.arch} base on {len(config.classes)} classes "
        f"({', '.join(config.classes)}), never {' or '.join(config.excluded)}",
        file=sys.stderr,
    )
    _print_counts(config)
    return _run_plan(plan)


def _load_subset_for(loaded, data: str | None, classes, limit: int | None):
    from cifar_gui.engine.data import load_dataset, select_classes

    record = loaded.record
    source = data or (record.data_source if record else None)
    chosen = classes or (record.class_names if record else ()) or RunConfig().classes
    if limit is not None and limit < len(chosen):
        raise UserError(
            f"--limit {limit} leaves some of the {len(chosen)} classes without a test image: "
            f"give at least {len(chosen)}"
        )
    dataset = load_dataset(source)
    return select_classes(dataset, chosen, limit)


def _evaluate(args: argparse.Namespace) -> int:
    from cifar_gui.engine.inspect import evaluate
    from cifar_gui.engine.persistence import load_model

    try:
        check_limit(args.limit)
    except ValueError as exc:
        raise UserError(f"--{exc}") from None
    loaded = load_model(args.model)
    subset = _load_subset_for(loaded, args.data, args.classes, args.limit)
    result = evaluate(loaded.model, subset.x_test, subset.y_test, subset.num_classes)
    print(f"model {args.model}")
    print(f"classes {', '.join(subset.class_names)}; {len(subset.y_test)} test images")
    print(f"test loss {result.loss:.4f}  test accuracy {result.accuracy:.4f}")
    width = max(len(n) for n in subset.class_names)
    print("confusion (rows: true, columns: predicted)")
    print(" " * (width + 1) + " ".join(f"{n:>{width}}" for n in subset.class_names))
    for name, row in zip(subset.class_names, result.confusion, strict=True):
        print(f"{name:>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from cifar_gui.engine.inspect import predict_files
    from cifar_gui.engine.persistence import load_model

    loaded = load_model(args.model)
    for prediction in predict_files(loaded.model, args.images, loaded.class_names):
        probs = dict(zip(prediction.class_names, prediction.probabilities, strict=True))
        if args.json:
            print(
                json.dumps(
                    {"image": prediction.path, "class": prediction.label, "probabilities": probs}
                )
            )
        else:
            detail = ", ".join(f"{k} {v:.3f}" for k, v in probs.items())
            print(f"{prediction.path}: {prediction.label} ({detail})")
    return 0


def _data(args: argparse.Namespace) -> int:
    from cifar_gui.engine.data import load_dataset

    dataset = load_dataset(args.data)
    counts = dataset.counts()
    print(f"source {dataset.source}")
    print(f"{'':>3} {'class':<12} {'train':>6} {'test':>6}")
    for i, name in enumerate(dataset.class_names):
        print(f"{i:>3} {name:<12} {counts['train'][i]:>6} {counts['test'][i]:>6}")
    return 0


# --------------------------------------------------------------------------------------
# The study and its report


def _add_study_parsers(sub: Any, defaults: RunConfig) -> None:
    """The ``study`` and ``report`` sub-commands."""
    study = sub.add_parser(
        "study",
        help="the seed's whole study: baseline, augmented, transfer, finetune, then a report",
    )
    study.add_argument(
        "--data", help="archive, batches folder or image folder (default: Keras cache)"
    )
    study.add_argument(
        "--classes",
        nargs="+",
        help=f"{CLASSES_HELP} (default: {' '.join(map(str, defaults.classes))})",
    )
    study.add_argument("--epochs", type=int, help=f"per run (default {defaults.epochs})")
    study.add_argument(
        "--limit", type=int, help="N training and N test images, shared evenly by the classes"
    )
    study.add_argument(
        "--weights",
        help="VGG16 base of transfer: imagenet, none (random: nothing pretrained) or FILE "
        f"(default: {defaults.weights})",
    )
    study.add_argument("--base", help="take the VGG16 base from a model saved by this app")
    study.add_argument("--out", help="the study folder (default: study)")
    study.add_argument(
        "--resume",
        metavar="STUDY_DIR",
        help="continue a stopped or killed study; only --data may change",
    )

    report = sub.add_parser(
        "report", help="an HTML report (figures, table, the seed's claims) of saved runs"
    )
    report.add_argument(
        "runs", nargs="+", metavar="RUN", help="model files or run folders (a study folder)"
    )
    report.add_argument(
        "--data", help="data set for the confusion matrices (default: where the runs found it)"
    )
    report.add_argument(
        "--out", help="folder of report.html and its PNGs (default: STUDY/report or ./report)"
    )


def _study(args: argparse.Namespace) -> int:
    import threading

    from cifar_gui.engine.runner import run
    from cifar_gui.engine.study import plan_study

    if args.resume:
        given = [
            f"--{name}"
            for name in ("classes", "epochs", "limit", "weights", "base", "out")
            if getattr(args, name) is not None
        ]
        if given:
            raise UserError(
                f"--resume continues the study as it was; {', '.join(given)} cannot change "
                "(only --data can)"
            )
        plan = plan_study(resume=args.resume, data=args.data)
    else:
        defaults = RunConfig()
        try:
            template = defaults.replace(
                classes=tuple(args.classes) if args.classes else defaults.classes,
                data=args.data,
                epochs=defaults.epochs if args.epochs is None else args.epochs,
                limit=args.limit,
                weights=args.weights or defaults.weights,
                base=args.base,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
        plan = plan_study(template, args.out or "study")
    finished = run(plan, _Progress(), threading.Event(), in_process=True)
    if finished.report is None:
        print(f"stopped; continue with: cifar-gui study --resume {plan.folder}")
        return 0
    print(f"study done: {plan.folder}; report {finished.report}")
    return 0


def _report(args: argparse.Namespace) -> int:
    import shlex

    from cifar_gui.engine.report import collect_runs, report_folder_default, write_report

    runs = collect_runs(args.runs)
    out = Path(args.out) if args.out else report_folder_default(runs)
    words = ["cifar-gui", "report", *args.runs, "--out", str(out)]
    if args.data:
        words += ["--data", args.data]
    path = write_report(runs, out, data=args.data, report_command=shlex.join(words))
    print(f"report {path}")
    return 0

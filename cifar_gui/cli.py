"""Headless commands over the engine: train, pretrain, evaluate, predict, data.

Bad input (a path, a file, a class name) ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cifar_gui.cli_args import (
    RESUME_CHANGES,
    add_settings,
    and_list,
    config_from_args,
    flag_names,
    resume_changes,
    settings_given,
)
from cifar_gui.cli_progress import Progress
from cifar_gui.config import (
    RunConfig,
    check_limit,
)
from cifar_gui.engine.errors import UserError, shown
from cifar_gui.engine.files import write_failure
from cifar_gui.engine.quiet import start_tensorflow_quietly
from cifar_gui.settings import CLASSES_HELP

COMMANDS = ("train", "pretrain", "evaluate", "predict", "data", "study", "report", "export")
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cifar-gui`` sub-commands."""
    parser = argparse.ArgumentParser(
        prog="cifar-gui",
        description="Convnets on CIFAR-10. Without a command, the desktop app starts.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train a model variant and save it",
        description="Train a model variant and save it in a new run folder under runs/ "
        "(runs/<date>-<time>-<variant>-<classes>/), or in --out DIR.",
    )
    add_settings(train, "train")
    _add_overwrite(train)
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped or killed run at its next epoch (RUN_DIR: its --out folder "
        f"or its checkpoint folder); only {and_list(flag_names(RESUME_CHANGES))} may change",
    )

    pretrain = sub.add_parser(
        "pretrain",
        help="train a base on the classes not in the pair, for transfer --base",
        description="Train a network on every class but the pair (deer vs horse: the other "
        "eight CIFAR-10 classes, softmax) and save it as a base for "
        "`train --variant transfer --base MODEL`. Offline, it stands in for ImageNet.",
    )
    add_settings(pretrain, "pretrain")
    _add_overwrite(pretrain)

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

    data = sub.add_parser("data", help="images per class and split, as the tutorial's table()")
    data.add_argument("--data", help="data source (default: Keras cache)")
    _add_study_parsers(sub)
    _add_export_parser(sub)
    for command in sub.choices.values():
        command.add_argument(
            "--verbose",
            action="store_true",
            help="show TensorFlow's start-up messages (hidden by default)",
        )
    return parser


def _add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="with --out DIR: replace the model of this run that DIR holds (refused without)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; return the exit code."""
    args = build_parser().parse_args(argv)
    if not args.verbose and args.command != "data":  # data counts images: no TensorFlow
        # Its C++ start-up lines bury the output; later warnings and errors still show.
        start_tensorflow_quietly()
    try:
        commands = {
            "train": _train,
            "pretrain": _pretrain,
            "evaluate": _evaluate,
            "predict": _predict,
            "data": _data,
            "study": _study,
            "report": _report,
            "export": _cmd_export,
        }
        return commands[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # a write no caller turned into a UserError (a full disk, say)
        where = f"{shown(exc.filename)}: " if exc.filename else ""
        print(f"error: {where}{write_failure(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _train(args: argparse.Namespace) -> int:
    from cifar_gui.engine.training.runner import plan_run

    if args.resume:
        if args.overwrite:
            raise UserError("--overwrite is for a new run; --resume continues one in its folder")
        plan = plan_run(resume=args.resume, **resume_changes(args, "train", RESUME_CHANGES))
        print(
            f"resuming {shown(plan.resume.directory)} at epoch {plan.resume.epochs_completed + 1} "
            f"of {plan.config.epochs}",
            file=sys.stderr,
        )
    else:
        config = config_from_args(args, "train")
        # Read from the base before the run's folder is made: a missing one makes none.
        counts = _counts(config) if config.base or config.variant == "finetune" else None
        plan = _plan_new(config, args, "train")
        if counts:
            print(counts, file=sys.stderr)
    return _run_plan(plan)


def _plan_new(config: RunConfig, args: argparse.Namespace, command: str):
    """The plan of a new run: in a new run folder under the root ``runs``, or in the folder
    ``--out`` names (refused when it holds this run's model, unless ``--overwrite``)."""
    from cifar_gui.engine.training.runner import plan_run

    chosen = "out_dir" in settings_given(args, command)
    return plan_run(config, new_folder=not chosen, overwrite=args.overwrite)


def _counts(config: RunConfig) -> str:
    """The planned run's parameter counts, to show before it starts (the base is read)."""
    from cifar_gui.engine.models.build import planned_parameter_counts

    counts = planned_parameter_counts(config, len(config.classes))
    return f"parameters: {counts.trainable:,} trainable, {counts.non_trainable:,} non-trainable"


def _run_plan(plan) -> int:
    """Run ``plan`` here with a progress bar; print where the model went."""
    import threading

    from cifar_gui.engine.training.runner import run

    folder = None if plan.resume else plan.config.out_dir  # a resume said where already
    finished = run(plan, Progress(folder=folder), threading.Event(), in_process=True)
    record = finished.record
    if finished.path is None:
        print(f"trained ({record.wall_seconds:.1f} s); the chief worker saves the model")
        return 0
    accuracy = record.test_accuracy
    score = "no test images" if accuracy is None else f"test accuracy {accuracy:.1%}"
    # The run as its user waited for it (data, model, checkpoints, save), then its fit's part.
    print(
        f"saved {shown(finished.path)} ({score}, {record.wall_seconds:.1f} s, of which "
        f"{record.seconds:.1f} s fitting, {record.device})"
    )
    return 0


# ---- pretrain: a base for transfer learning, trained on the classes that are not the pair


def pretrain_from_args(args: argparse.Namespace, class_names: Sequence[str]) -> RunConfig:
    """The pretrain the ``pretrain`` command's flags describe, on a data set of
    ``class_names`` (its ``--classes``: the pair the base must never see)."""
    from cifar_gui.engine.training.pretrain import pretrain_config

    fields = settings_given(args, "pretrain")
    pair = fields.pop("classes", RunConfig().classes)
    return pretrain_config(class_names, pair, **fields)


def _pretrain(args: argparse.Namespace) -> int:
    from cifar_gui.engine.data.dataset import load_dataset

    try:  # before the data set loads
        check_limit(getattr(args, "limit", None))
    except ValueError as exc:
        raise UserError(f"--{exc}") from None
    config = pretrain_from_args(args, load_dataset(getattr(args, "data", None)).class_names)
    counts = _counts(config)
    plan = _plan_new(config, args, "pretrain")
    print(
        f"pretraining a {config.arch} base on {len(config.classes)} classes "
        f"({', '.join(config.classes)}), never {' or '.join(config.excluded)}",
        file=sys.stderr,
    )
    print(counts, file=sys.stderr)
    return _run_plan(plan)


def _load_subset_for(loaded, data: str | None, classes, limit: int | None):
    from cifar_gui.engine.data.dataset import load_dataset, select_classes

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
    from cifar_gui.engine.models.inspect import evaluate
    from cifar_gui.engine.models.persistence import load_model

    try:
        check_limit(args.limit)
    except ValueError as exc:
        raise UserError(f"--{exc}") from None
    loaded = load_model(args.model)
    subset = _load_subset_for(loaded, args.data, args.classes, args.limit)
    result = evaluate(loaded.model, subset.x_test, subset.y_test, subset.num_classes)
    print(f"model {shown(args.model)}")
    print(f"classes {', '.join(subset.class_names)}; {len(subset.y_test)} test images")
    print(f"test accuracy {result.accuracy:.1%}  test loss {result.loss:.4f}")
    width = max(len(n) for n in subset.class_names)
    print("confusion (rows: true, columns: predicted)")
    print(" " * (width + 1) + " ".join(f"{n:>{width}}" for n in subset.class_names))
    for name, row in zip(subset.class_names, result.confusion, strict=True):
        print(f"{name:>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from cifar_gui.engine.models.inspect import predict_files
    from cifar_gui.engine.models.persistence import load_model

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
            print(f"{shown(prediction.path)}: {prediction.label} ({detail})")
    return 0


def _data(args: argparse.Namespace) -> int:
    from cifar_gui.engine.data.dataset import load_dataset

    dataset = load_dataset(args.data)
    counts = dataset.counts()
    print(f"source {shown(dataset.source)}")
    print(f"{'':>3} {'class':<12} {'train':>6} {'test':>6}")
    for i, name in enumerate(dataset.class_names):
        print(f"{i:>3} {name:<12} {counts['train'][i]:>6} {counts['test'][i]:>6}")
    return 0


# --------------------------------------------------------------------------------------
# The study and its report


def _add_study_parsers(sub: Any) -> None:
    """The ``study`` and ``report`` sub-commands."""
    from cifar_gui.config import PRETRAIN_ARCHS, PRETRAIN_EPOCHS
    from cifar_gui.engine.study.plan import BASE_ARCH, MAX_SEEDS, RESUMED_STUDY_CHANGES

    study = sub.add_parser(
        "study",
        help="the tutorial's whole study: baseline, augmented, transfer, finetune, then a report",
        description="Offline (no ImageNet weights in the Keras cache, the host unreachable) "
        "and with no --base or --weights FILE|none, the study first pretrains a base on the "
        "other classes and the transfer and finetune runs start from it.",
    )
    add_settings(study, "study")
    study.add_argument(
        "--seeds",
        type=int,
        metavar="K",
        help=f"run each variant K times, seeds --seed to --seed+K-1 (1 to {MAX_SEEDS}; "
        "default 1); K > 1: each seed's runs in STUDY/seed-<s>/",
    )
    study.add_argument(
        "--base-arch",
        choices=PRETRAIN_ARCHS,
        help=f"the network of the base pretrained offline (default: {BASE_ARCH})",
    )
    study.add_argument(
        "--base-epochs",
        type=int,
        metavar="N",
        help="epochs of the base pretrained offline (default: "
        + ", ".join(f"{n} for {a}" for a, n in PRETRAIN_EPOCHS.items())
        + ")",
    )
    study.add_argument(
        "--dry-run",
        action="store_true",
        help="print the steps, the base each transfer uses and each step's estimated time on "
        "this device (a short calibration, or earlier runs' speeds), then exit; trains and "
        "writes nothing",
    )
    study.add_argument(
        "--resume",
        metavar="STUDY_DIR",
        help="continue a stopped or killed study; only "
        f"{and_list(flag_names(RESUMED_STUDY_CHANGES))} may change",
    )

    report = sub.add_parser(
        "report", help="an HTML report (figures, table, the tutorial's claims) of saved runs"
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

    from cifar_gui.engine.study.plan import RESUMED_STUDY_CHANGES, plan_study
    from cifar_gui.engine.training.runner import run

    study_flags = {
        "seeds": args.seeds,
        "base_arch": args.base_arch,
        "base_epochs": args.base_epochs,
    }
    given = {name: value for name, value in study_flags.items() if value is not None}
    if args.resume:
        if given:
            flags = ", ".join(f"--{name.replace('_', '-')}" for name in given)
            raise UserError(f"--resume continues the study as it was; {flags} cannot change")
        changes = resume_changes(args, "study", RESUMED_STUDY_CHANGES)
        plan = plan_study(resume=args.resume, **changes)
    else:
        template = config_from_args(args, "study")
        plan = plan_study(template, template.out_dir, **given)
    if plan.pretrain_base:
        print(f"base: {plan.base_reason}", file=sys.stderr)
    if args.dry_run:
        return _study_dry_run(plan)
    finished = run(plan, Progress(), threading.Event(), in_process=True)
    if finished.report is None:
        print(f"stopped; continue with: cifar-gui study --resume {shown(plan.folder)}")
        return 0
    print(f"study done: {shown(plan.folder)}; report {shown(finished.report)}")
    return 0


def _study_dry_run(plan) -> int:
    """Print what the study will run and how long each step will take here; train nothing."""
    from cifar_gui.engine.data.dataset import load_dataset
    from cifar_gui.engine.study.estimate import preflight

    dataset = load_dataset(plan.template.data)
    shape = tuple(int(d) for d in dataset.x_train.shape[1:])
    estimate = preflight(plan, dataset.class_names, dataset.counts(), shape)
    print(f"study {shown(plan.folder)}{' (resumed)' if plan.resume else ''}:")
    for line in estimate.lines():
        print(f"  {line}")
    return 0


def _report(args: argparse.Namespace) -> int:
    import shlex

    from cifar_gui.engine.study.report import collect_runs, report_folder_default, write_report

    runs = collect_runs(args.runs)
    out = Path(args.out) if args.out else report_folder_default(runs)
    words = ["cifar-gui", "report", *args.runs, "--out", str(out)]
    if args.data:
        words += ["--data", args.data]
    path = write_report(runs, out, data=args.data, report_command=shlex.join(words))
    print(f"report {shown(path)}")
    return 0


# --------------------------------------------------------------------------------------
# export: a trained model for use elsewhere, with a model card


def _add_export_parser(sub: Any) -> None:
    """The ``export`` sub-command."""
    from cifar_gui.engine.models.export import FORMAT_USES, FORMATS

    export = sub.add_parser(
        "export",
        help="export a model as a SavedModel, TensorFlow Lite or ONNX, with a model card",
        description="Export MODEL into the new (or empty) folder DIR: the converted model and "
        "a README.md model card (classes, input, preprocessing, accuracy, settings, and a "
        "snippet that classifies an image with the format's own runtime). "
        + "; ".join(f"{fmt}: {use}" for fmt, use in FORMAT_USES.items())
        + ".",
    )
    export.add_argument("model", help="a model file saved by this app (.h5 or .keras)")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")


def _cmd_export(args: argparse.Namespace) -> int:
    import shlex

    from cifar_gui.engine.models.export import export_model

    words = ["cifar-gui", "export", args.model, "--format", args.format, "--out", args.out]
    result = export_model(args.model, args.format, args.out, command=shlex.join(words))
    print(
        f"exported {result.artifact} ({result.bytes:,} bytes, {result.seconds:.1f} s); "
        f"model card {result.card}"
    )
    return 0

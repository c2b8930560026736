"""The report of a study (or of any saved runs): ``report.html``, self-contained (its figures
embedded as base64 PNG, no network), with the PNG figures beside it.

This module gathers what the report shows and writes it: the runs the claims are judged on
(:mod:`~cifar_gui.engine.study.report_claims`), the figures
(:mod:`~cifar_gui.engine.study.report_figures`: each variant's history on shared axes, confusion
matrices, confident mistakes, the seed's activation figure, the small-data curve of the base
used), and the page (:mod:`~cifar_gui.engine.study.report_html`). Models are loaded with Keras when
a report is written, not when this module is imported.
"""

from __future__ import annotations

import datetime as _dt
import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

from cifar_gui import tutorial
from cifar_gui.engine.errors import UserError, shown
from cifar_gui.engine.files import atomic_path
from cifar_gui.engine.record import read_record, sidecar_path
from cifar_gui.engine.study.layout import REPORT_DIR, STUDY_FILE
from cifar_gui.engine.study.report_claims import (
    FAILS,
    HOLDS,
    UNTESTED,
    Claim,
    group_by_variant,
    judge_claims,
    weights_source,
)
from cifar_gui.engine.study.report_figures import (
    plot_activations,
    plot_confusion,
    plot_mistakes,
    plot_shared_histories,
    plot_small_data,
    plot_validation_overlay,
)
from cifar_gui.engine.study.report_html import Content, render
from cifar_gui.engine.study.runs import SavedRun, discover_runs, read_run

__all__ = [
    "FAILS",
    "HOLDS",
    "UNTESTED",
    "Claim",
    "collect_runs",
    "judge_claims",
    "report_folder_default",
    "write_report",
]

REPORT_FILE = "report.html"
SMALL_DATA_FILE = "small_data.json"  # bench/small_data.py's result
BENCH_SMALL_DATA = Path(__file__).resolve().parents[3] / "bench" / "results" / SMALL_DATA_FILE

MISTAKES_SHOWN = 8


def collect_runs(paths: Sequence[str | Path]) -> list[SavedRun]:
    """The saved runs meant by ``paths``: model files (or their sidecars), and folders, whose
    runs are all taken (a study folder: its four). :class:`UserError` for a path that is none."""
    runs: list[SavedRun] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            found = [r for r in _folder_runs(path) if r.model_path is not None]
            if not found:
                raise UserError(f"{path}: no saved runs (model files with their .json sidecar)")
            runs += found
            continue
        if not path.exists():
            raise UserError(f"{path}: no such model or run folder")
        run = read_run(path.with_suffix(".json"))
        if run is None or run.model_path is None:
            raise UserError(f"{path}: not a model saved by a training run (no valid sidecar)")
        runs.append(run)
    if not runs:
        raise UserError("no runs to report on")
    return runs


def _folder_runs(folder: Path) -> list[SavedRun]:
    """The runs of a folder; of a study folder, those its record lists (its seed folders'
    too), but not the base it pretrained."""
    record = folder / STUDY_FILE
    try:
        listed = json.loads(record.read_text(encoding="utf-8"))["runs"]
        models = [folder / r["model"] for r in listed if r["variant"] != "pretrain" and r["model"]]
    except (OSError, ValueError, KeyError, TypeError):
        return discover_runs(folder)
    return [run for m in models if (run := read_run(sidecar_path(m))) is not None]


def _labels(runs: Sequence[SavedRun]) -> list[str]:
    """Each run's name in the figures and their file names, unique: its variant, else its file
    stem, else its variant and seed, else its stem and its place in ``runs``."""

    def seed(run: SavedRun) -> str:
        return "?" if run.record.config is None else str(run.record.config.seed)

    namings = (
        lambda i, r: r.record.variant,
        lambda i, r: r.label,
        lambda i, r: f"{r.record.variant}_seed{seed(r)}",
        lambda i, r: f"{r.label}_{i + 1}",
    )
    labels = []
    for i, run in enumerate(runs):
        for naming in namings:
            label = naming(i, run)
            if [naming(j, r) for j, r in enumerate(runs)].count(label) == 1:
                break
        labels.append(label)
    return labels


def _history_groups(
    runs: Sequence[SavedRun], groups: Mapping[str, Sequence[SavedRun]]
) -> dict[str, tuple[str, list]]:
    """Figure label -> (variant, histories): each judged variant (its runs together), then
    every other run alone."""
    judged = {id(r) for rs in groups.values() for r in rs}
    out = {v: (v, [r.record.history for r in rs]) for v, rs in groups.items()}
    for run, label in zip(runs, _labels(runs), strict=True):
        if id(run) not in judged:
            out[label if label not in out else run.label] = (
                run.record.variant,
                [run.record.history],
            )
    return out


def write_report(
    runs: Sequence[SavedRun],
    out_dir: str | Path,
    *,
    dataset: Any = None,
    data: str | None = None,
    study_command: str | None = None,
    report_command: str | None = None,
) -> Path:
    """Write ``report.html`` and its PNG figures in ``out_dir``; return the HTML's path.

    ``dataset``: the data set the runs were trained on, when it is in memory already; else it
    is loaded from ``data`` or from where the first run found it. Without the data (or the
    models) the confusion matrices, mistakes and activations are left out, and the report
    says why.
    """
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    groups = group_by_variant(runs)
    claims = judge_claims(groups)
    figures: dict[str, Path] = {}
    notes: list[str] = []
    histories = _history_groups(runs, groups)
    epochs = max((len(h.get("loss", ())) for _, hs in histories.values() for h in hs), default=1)
    for label, path in plot_shared_histories(out, histories, epochs).items():
        figures[f"history {label}"] = path
    figures["overlay"] = plot_validation_overlay(out / "validation_overlay.png", histories)
    small_data, curve = small_data_curve(runs, groups)
    if curve is not None:
        images = runs[0].record.train_images
        figures["small data"] = plot_small_data(
            out / "small_data.png", curve["summary"], images, _small_data_title(curve)
        )
    model_parts = _model_parts(runs, groups, out, figures, notes, dataset, data)
    report_command = report_command or shlex.join(
        ["cifar-gui", "report", *(str(r.model_path or r.sidecar) for r in runs), "--out", str(out)]
    )
    commands = [("The study", study_command)] if study_command else []
    commands.append(("This report", report_command))
    content = Content(
        runs=runs,
        groups=groups,
        claims=claims,
        figures=figures,
        history_figures=[f"history {label}" for label in histories],
        model_parts=model_parts,
        about=_about(runs, groups),
        commands=commands,
        small_data=small_data,
        notes=notes,
        pretrained_note=base_paragraph(runs, groups),
    )
    path = out / REPORT_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(shown(render(content)), encoding="utf-8")  # non-UTF-8 names as \xNN
    return path


def _model_parts(
    runs: Sequence[SavedRun],
    groups: Mapping[str, Sequence[SavedRun]],
    out: Path,
    figures: dict[str, Path],
    notes: list[str],
    dataset: Any,
    data: str | None,
) -> dict[str, list[str]]:
    """Each saved model's confusion matrix and mistakes, and the seed's activation figure;
    what cannot be made goes into ``notes``."""
    from cifar_gui.engine.data.dataset import load_dataset

    with_model = [(r, label) for r, label in zip(runs, _labels(runs), strict=True) if r.model_path]
    if not with_model:
        notes.append("No model files: no confusion matrices, mistakes or activations.")
        return {}
    if dataset is None:
        first = runs[0].record
        source = data or first.data_source or (first.config.data if first.config else None)
        try:
            dataset = load_dataset(source)
        except UserError as exc:
            notes.append(
                f"The data set could not be loaded ({exc}): no confusion matrices, "
                "mistakes or activations."
            )
            return {}
    parts: dict[str, list[str]] = {}
    for run, label in with_model:
        try:
            parts[label] = _model_figures(run, label, dataset, out, figures)
        except UserError as exc:
            notes.append(f"{label}: {exc}")
    baseline = groups.get("baseline", [])
    if not baseline or baseline[-1].model_path is None:
        notes.append("No baseline model: no activation figure.")
    else:
        try:
            figures["activations"] = _activation_figure(baseline[-1], dataset, out)
        except (UserError, KeyError, IndexError) as exc:
            notes.append(f"Activation figure left out: {exc}")
    return parts


def _subset_for(run: SavedRun, dataset: Any):
    from cifar_gui.engine.data.dataset import select_classes

    config = run.record.config
    classes = run.record.class_names or (config.classes if config else ())
    return select_classes(dataset, classes, config.limit if config else None)


def _model_figures(
    run: SavedRun, label: str, dataset: Any, out: Path, figures: dict[str, Path]
) -> list[str]:
    """The confusion matrix and most confident mistakes of one final model."""
    from cifar_gui.engine.models.inspect import evaluate
    from cifar_gui.engine.models.persistence import load_model

    subset = _subset_for(run, dataset)
    model = load_model(run.model_path).model
    result = evaluate(model, subset.x_test, subset.y_test, subset.num_classes)
    figures[f"confusion {label}"] = plot_confusion(
        out / f"confusion_{label}.png",
        result.confusion,
        subset.class_names,
        f"{label}: test accuracy {result.accuracy:.1%}",
    )
    wrong = result.misclassified()[:MISTAKES_SHOWN]
    captions = [
        f"#{i + 1} {subset.class_names[subset.y_test[i]]}\n"
        f"\u2192 {subset.class_names[result.predicted[i]]} {result.probabilities[i].max():.0%}"
        for i in wrong
    ]
    figures[f"mistakes {label}"] = plot_mistakes(
        out / f"mistakes_{label}.png",
        subset.x_test[wrong],
        captions,
        f"{label}: its most confident mistakes (test image #, true \u2192 predicted, probability)",
    )
    return [f"confusion {label}", f"mistakes {label}"]


def _activation_figure(run: SavedRun, dataset: Any, out: Path) -> Path:
    """The seed's figure: test image 5 through the baseline, its chosen layers and channels."""
    from cifar_gui.engine.models.inspect import activations, list_layers
    from cifar_gui.engine.models.persistence import load_model

    subset = _subset_for(run, dataset)
    if len(subset.x_test) < tutorial.TEST_IMAGE:
        raise UserError(f"only {len(subset.x_test)} test images, the seed's is number 5")
    model = load_model(run.model_path).model
    layers = list_layers(model)
    names = [layers[number - 1].name for number, _ in tutorial.ACTIVATION_CHANNELS]
    image = subset.x_test[tutorial.TEST_IMAGE - 1]
    maps = activations(model, image, names)
    panels = []
    for name, (number, channels) in zip(names, tutorial.ACTIVATION_CHANNELS, strict=True):
        values = maps[name][0]
        for channel in channels:
            if channel <= values.shape[-1]:
                panels.append((f"layer {number} ({name})", channel, values[..., channel - 1]))
    truth = subset.class_names[subset.y_test[tutorial.TEST_IMAGE - 1]]
    return plot_activations(
        out / "activations_baseline.png",
        image,
        panels,
        f"{run.label}: activations of test image {tutorial.TEST_IMAGE} ({truth})",
    )


# --------------------------------------------------------------------------------------
# The small-data curve of the base used


def small_data_curve(
    runs: Sequence[SavedRun], groups: Mapping[str, Sequence[SavedRun]]
) -> tuple[str, dict | None]:
    """What the report says of the small-data curve, and the curve (``bench/small_data.py``'s
    result: the study folder's, else the repository's) when its base is the one the study's
    transfer used: a small CNN pretrained on the same classes for as many epochs, for the
    same pair. None where it is not measured for this base."""
    transfer = groups.get("transfer", [])
    if not transfer:
        return "No transfer run: no base, no small-data curve.", None
    source = weights_source(transfer[-1])
    config = transfer[-1].record.config
    if config is None or not config.base:
        return (
            f"The transfer's base was VGG16 with weights {source!r}; the small-data curve is "
            "measured (bench/small_data.py) only for a base pretrained on the other classes, "
            "so it is not measured for this base.",
            None,
        )
    base = read_record(sidecar_path(config.base))
    if base is None or base.config is None:
        return f"{config.base}: the base's record is not readable; no small-data curve.", None
    pair = list(transfer[-1].record.class_names)
    for path in (runs[0].sidecar.parent / SMALL_DATA_FILE, BENCH_SMALL_DATA):
        try:
            curve = json.loads(path.read_text(encoding="utf-8"))
            recorded = curve["base"]
            same = (
                list(curve["pair"]) == pair
                and list(recorded["classes"]) == list(base.class_names)
                and recorded["epochs"] == base.epochs_completed
                and base.config.arch == "cnn"
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if same:
            return (
                f"The transfer's base ({Path(config.base).name}: the small CNN pretrained on "
                f"{', '.join(base.class_names)} for {base.epochs_completed} epochs) is the one "
                f"this curve was measured with ({path.name}): test accuracy after a fixed "
                "budget of training steps against the number of the pair's training images, "
                "mean over seeds, their range as error bars.",
                curve,
            )
    return (
        f"The small-data curve is not measured for this base ({Path(config.base).name}): "
        "no bench/small_data.py result with the same base and pair.",
        None,
    )


def _small_data_title(curve: Mapping) -> str:
    accuracy = curve["base"].get("test_accuracy")
    on_base = f" (base: {accuracy:.1%} on its classes)" if accuracy else ""
    return f"{' vs '.join(curve['pair'])}: from scratch vs the pretrained base{on_base}"


# --------------------------------------------------------------------------------------
# The page's facts


def base_paragraph(runs: Sequence[SavedRun], groups: Mapping[str, Sequence[SavedRun]]) -> str:
    """Which base the transfer and finetune runs started from, and why: from the transfer's
    sidecar (``config.base`` -> the base's sidecar) and, for a study, its record's ``base``
    reason. Random weights are said to measure nothing about pretraining."""
    transfer = groups.get("transfer") or groups.get("finetune") or []
    config = transfer[-1].record.config if transfer else None
    if config is None:
        return ""
    reason = _recorded_base_reason(runs)
    why = f" Why: {reason}." if reason else ""
    if config.base:
        base = read_record(sidecar_path(config.base))
        name = Path(config.base).name
        if base is None or base.config is None:
            return f"The transfer and finetune runs start from the base of {name}.{why}"
        arch = "the small CNN" if base.config.arch == "cnn" else "VGG16"
        if base.variant != "pretrain":
            arch = f"the base of a {base.variant} run"
        accuracy = base.test_accuracy
        score = "" if accuracy is None else f", {accuracy:.1%} test accuracy on them"
        excluded = base.config.excluded
        never = f", never {' or '.join(map(str, excluded))}" if excluded else ""
        return (
            f"The transfer and finetune runs start from {name}: {arch} pretrained on "
            f"{len(base.class_names)} classes ({', '.join(base.class_names)}) for "
            f"{base.epochs_completed} epoch{'s' * (base.epochs_completed != 1)}{score}{never}."
            f"{why}"
        )
    if config.weights == "none":
        return (
            "The VGG16 base had random weights (--weights none): the transfer and finetune runs "
            "measure nothing about pretraining."
        )
    if config.weights == "imagenet":
        return (
            "The transfer and finetune runs start from VGG16 with ImageNet weights, as the "
            f"tutorial.{why}"
        )
    return (
        f"The transfer and finetune runs start from VGG16 with the weights {config.weights}.{why}"
    )


def _recorded_base_reason(runs: Sequence[SavedRun]) -> str:
    """The ``base`` reason of the study record beside the runs (a study's flat folder, or
    the folder above its seed folders); empty when there is none."""
    for folder in {p for r in runs for p in (r.sidecar.parent, r.sidecar.parent.parent)}:
        try:
            base = json.loads((folder / STUDY_FILE).read_text(encoding="utf-8")).get("base")
            return str(base["reason"])
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            continue
    return ""


def _about(
    runs: Sequence[SavedRun], groups: Mapping[str, Sequence[SavedRun]]
) -> list[tuple[str, str]]:
    versions = dict(runs[0].record.versions)
    versions["matplotlib"] = matplotlib.__version__
    images = sorted(
        {f"{r.record.train_images} training / {r.record.test_images} test images" for r in runs}
    )
    bases = ", ".join(
        f"{v}: {weights_source(rs[-1])}"
        for v, rs in groups.items()
        if v in ("transfer", "finetune")
    )
    seeds = ", ".join(f"{v}: {len(rs)}" for v, rs in groups.items() if len(rs) > 1)
    return [
        ("data", ", ".join(sorted({r.record.data_source or "?" for r in runs}))),
        ("classes", "; ".join(sorted({r.classes_text for r in runs}))),
        ("images", "; ".join(images)),
        ("VGG16 base of transfer and finetune", bases or "-"),
        ("runs per variant (seeds)", seeds or "one each"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
        ("generated", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")),
    ]


def report_folder_default(runs: Sequence[SavedRun]) -> Path:
    """Where ``cifar-gui report`` writes without ``--out``: ``report/`` beside a study's
    record, else ``report/`` in the current folder."""
    folders = {r.sidecar.parent for r in runs}
    if len(folders) == 1 and (next(iter(folders)) / STUDY_FILE).is_file():
        return next(iter(folders)) / REPORT_DIR
    return Path(REPORT_DIR)

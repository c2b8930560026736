"""The report of a study (or of any saved runs): ``report.html``, self-contained (its figures
embedded as base64 PNG, no network), with the PNG figures beside it.

It holds the seed's ``plot(history)`` of each run, an overlay of the validation curves, a
table of the runs, each final model's confusion matrix and most confident mistakes, the seed's
activation figure of its test image 5 with the baseline model, and the seed's claims against
what was measured: each verdict follows from the histories by a stated rule
(:func:`judge_claims`), never by hand.

Figures use matplotlib's object API on the Agg canvas (no pyplot, no GUI backend); models are
loaded with Keras when a report is written, not when this module is imported.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cifar_gui.config import SEED_VARIANTS
from cifar_gui.engine.errors import UserError, shown
from cifar_gui.engine.files import atomic_path
from cifar_gui.engine.runs import SavedRun, discover_runs, read_run
from cifar_gui.engine.study import REPORT_DIR, STUDY_FILE
from cifar_gui.plots import save_history_plot
from cifar_gui.variant_style import variant_color

REPORT_FILE = "report.html"

# The seed's activation figure: its test image 5, first layer channels 1, 5, 15, 20 and
# layer 6 channels 1, 50, 110 (all 1-based, as in R).
SEED_TEST_IMAGE = 5
SEED_ACTIVATION_CHANNELS = ((1, (1, 5, 15, 20)), (6, (1, 50, 110)))
MISTAKES_SHOWN = 8

# Claim thresholds (fractions of 1; epochs 1-based).
NEARLY_ALL = 0.95  # "nearly 100%" training accuracy
LINEAR_R2 = 0.90  # a straight line explains the rise of the training accuracy this well
MIN_LINEAR_POINTS = 3  # epochs needed to judge a straight line
STALL_LEVEL = (71, 75)  # "stalls at 71-75%": the plateau's mean, rounded to whole percent
STALL_SLOPE = 0.002  # a plateau rises by at most 0.2 points per epoch
MIN_STALL_EPOCHS = 6  # the plateau is the second half of the epochs: at least 3 of them
LOSS_MIN_EPOCHS = (3, 7)  # "minimum after only five epochs": five, give or take two
MIN_LOSS_EPOCHS = 10  # with fewer epochs, an early minimum says nothing
GAP_MARGIN = 0.02  # augmentation narrows the train-validation gap by at least 2 points
PRETRAINED_MARGIN = 0.02  # a pretrained base beats training from scratch by at least 2 points

HOLDS, FAILS, UNTESTED = "holds", "does not hold", "cannot be tested"


# --------------------------------------------------------------------------------------
# The claims


@dataclass(frozen=True)
class Claim:
    """One of the seed's claims, the rule it was judged by, and the verdict with its numbers."""

    claim: str  # the seed's words
    runs: str  # the runs it is judged on
    rule: str
    verdict: str  # HOLDS, FAILS or UNTESTED
    measured: str


def _values(history: Mapping[str, Sequence[float]], key: str) -> np.ndarray:
    values = np.asarray(history.get(key, ()), dtype=float)
    return values[np.isfinite(values)]


def linear_fit(values: Sequence[float]) -> tuple[float, float]:
    """Slope (per epoch) and R^2 of the least-squares line through ``values`` against epoch;
    a flat series has R^2 0."""
    y = np.asarray(values, dtype=float)
    x = np.arange(1, len(y) + 1, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum((y - (slope * x + intercept)) ** 2))
    return float(slope), (1.0 - residual / total) if total > 0 else 0.0


def overfitting_gap(history: Mapping[str, Sequence[float]]) -> float | None:
    """Mean of training minus validation accuracy over the last third of the epochs (at least
    the last one); None without both curves."""
    train, val = _values(history, "accuracy"), _values(history, "val_accuracy")
    n = min(len(train), len(val))
    if n == 0:
        return None
    last = max(1, n // 3)
    return float(np.mean(train[n - last : n] - val[n - last : n]))


def _best_val(history: Mapping[str, Sequence[float]]) -> float | None:
    val = _values(history, "val_accuracy")
    return float(val.max()) if len(val) else None


def claim_linear_to_nearly_all(history: Mapping[str, Sequence[float]] | None) -> Claim:
    words = "The training accuracy increases linearly over time, until it reaches nearly 100%"
    rule = (
        f"final training accuracy >= {NEARLY_ALL:.0%}, and a straight line fitted to the "
        f"training accuracy up to the first epoch at {NEARLY_ALL:.0%} (at least "
        f"{MIN_LINEAR_POINTS} epochs) rises with R\u00b2 >= {LINEAR_R2}"
    )
    train = _values(history or {}, "accuracy")
    if len(train) < MIN_LINEAR_POINTS:
        return Claim(words, "baseline", rule, UNTESTED, _too_few(history, len(train)))
    reached = np.flatnonzero(train >= NEARLY_ALL)
    end = max(MIN_LINEAR_POINTS, int(reached[0]) + 1 if len(reached) else len(train))
    slope, r2 = linear_fit(train[:end])
    final = float(train[-1])
    measured = (
        f"final training accuracy {final:.1%}; line over epochs 1-{end}: "
        f"{slope:+.4f} per epoch, R\u00b2 {r2:.2f}"
    )
    ok = final >= NEARLY_ALL and slope > 0 and r2 >= LINEAR_R2
    return Claim(words, "baseline", rule, HOLDS if ok else FAILS, measured)


def claim_validation_stalls(history: Mapping[str, Sequence[float]] | None) -> Claim:
    words = "The validation accuracy stalls at 71-75%"
    low, high = STALL_LEVEL
    rule = (
        f"over the second half of the epochs (at least {MIN_STALL_EPOCHS} epochs in all), "
        f"the validation accuracy rises by at most {STALL_SLOPE * 100:.1f} points per epoch "
        "(fitted line) "
        f"and its mean, rounded to a whole percent, is {low}-{high}%"
    )
    val = _values(history or {}, "val_accuracy")
    if len(val) < MIN_STALL_EPOCHS:
        return Claim(words, "baseline", rule, UNTESTED, _too_few(history, len(val)))
    start = len(val) // 2
    plateau = val[start:]
    slope, _ = linear_fit(plateau)
    level = round(float(plateau.mean()) * 100)
    measured = f"epochs {start + 1}-{len(val)}: mean {plateau.mean():.1%}, {slope:+.4f} per epoch"
    ok = slope <= STALL_SLOPE and low <= level <= high
    return Claim(words, "baseline", rule, HOLDS if ok else FAILS, measured)


def claim_loss_minimum_early(history: Mapping[str, Sequence[float]] | None) -> Claim:
    words = "The validation loss reaches its minimum after only five epochs"
    low, high = LOSS_MIN_EPOCHS
    rule = (
        f"the lowest validation loss is at epoch {low}-{high} (five, give or take two), "
        f"of at least {MIN_LOSS_EPOCHS} epochs"
    )
    loss = _values(history or {}, "val_loss")
    if len(loss) < MIN_LOSS_EPOCHS:
        return Claim(words, "baseline", rule, UNTESTED, _too_few(history, len(loss)))
    best = int(np.argmin(loss)) + 1
    measured = f"lowest validation loss {loss.min():.4f} at epoch {best} of {len(loss)}"
    return Claim(words, "baseline", rule, HOLDS if low <= best <= high else FAILS, measured)


def claim_augmentation_mitigates(
    baseline: Mapping[str, Sequence[float]] | None,
    augmented: Mapping[str, Sequence[float]] | None,
) -> Claim:
    words = "Data augmentation mitigates overfitting"
    rule = (
        "the gap between training and validation accuracy (mean over the last third of the "
        f"epochs) of augmented is at least {GAP_MARGIN * 100:.0f} points smaller than baseline's"
    )
    runs = "baseline, augmented"
    base_gap = None if baseline is None else overfitting_gap(baseline)
    aug_gap = None if augmented is None else overfitting_gap(augmented)
    if base_gap is None or aug_gap is None:
        missing = "baseline" if base_gap is None else "augmented"
        return Claim(words, runs, rule, UNTESTED, f"no {missing} run with accuracy curves")
    best = f"best validation accuracy {_best_val(baseline):.1%} vs {_best_val(augmented):.1%}"
    measured = f"gap {base_gap:+.1%} (baseline) vs {aug_gap:+.1%} (augmented); {best}"
    ok = aug_gap <= base_gap - GAP_MARGIN
    return Claim(words, runs, rule, HOLDS if ok else FAILS, measured)


def claim_pretrained_effective(
    histories: Mapping[str, Mapping[str, Sequence[float]]], weights: Mapping[str, str]
) -> Claim:
    """``histories``: variant -> history; ``weights``: variant -> where the VGG16 base of the
    transfer and finetune runs came from (``imagenet``, ``none``, a file, ``base MODEL``)."""
    words = "A pretrained network is highly effective for small image data sets"
    rule = (
        "the best validation accuracy of transfer or finetune is at least "
        f"{PRETRAINED_MARGIN * 100:.0f} points above the best of baseline and augmented; only "
        "with a pretrained base (not --weights none)"
    )
    runs = "all four"
    best = {v: _best_val(histories.get(v, {})) for v in SEED_VARIANTS}
    scratch = [best[v] for v in ("baseline", "augmented") if best[v] is not None]
    pretrained = {v: best[v] for v in ("transfer", "finetune") if best[v] is not None}
    if not scratch or not pretrained:
        return Claim(
            words,
            runs,
            rule,
            UNTESTED,
            "needs a baseline or augmented run and a transfer or finetune run",
        )
    sources = {weights.get(v, "?") for v in pretrained}
    numbers = f"best from scratch {max(scratch):.1%}; " + ", ".join(
        f"{v} {b:.1%}" for v, b in pretrained.items()
    )
    if sources == {"none"}:
        return Claim(
            words,
            runs,
            rule,
            UNTESTED,
            f"the VGG16 base had random weights (--weights none), so nothing was pretrained; "
            f"{numbers}",
        )
    measured = f"{numbers} (VGG16 weights: {', '.join(sorted(sources))})"
    ok = max(pretrained.values()) >= max(scratch) + PRETRAINED_MARGIN
    return Claim(words, runs, rule, HOLDS if ok else FAILS, measured)


def _too_few(history: Mapping[str, Sequence[float]] | None, epochs: int) -> str:
    return "no baseline run" if history is None else f"only {epochs} epochs"


def judge_claims(runs: Mapping[str, SavedRun]) -> list[Claim]:
    """The seed's five claims judged on these runs (variant -> run)."""
    histories = {v: run.history for v, run in runs.items()}
    baseline = histories.get("baseline")
    return [
        claim_linear_to_nearly_all(baseline),
        claim_validation_stalls(baseline),
        claim_loss_minimum_early(baseline),
        claim_augmentation_mitigates(baseline, histories.get("augmented")),
        claim_pretrained_effective(histories, {v: weights_source(run) for v, run in runs.items()}),
    ]


def weights_source(run: SavedRun) -> str:
    """Where a run's VGG16 base came from: ``imagenet``, ``none``, a file, ``base MODEL``."""
    config = run.record.config
    if config is None:
        return "?"
    return f"base {config.base}" if config.base else config.weights


# --------------------------------------------------------------------------------------
# The table


def run_row(run: SavedRun) -> dict[str, str]:
    """The table's row of one run, formatted."""
    record = run.record
    val = list(record.history.get("val_accuracy", ()))
    seconds = [s for s in record.history.get("epoch_seconds", ()) if math.isfinite(s)]
    params = record.parameters
    best, low = record.best_epoch, record.lowest_loss_epoch
    return {
        "run": run.label,
        "variant": run.variant,
        "trainable / total parameters": (
            "?" if params is None else f"{params.trainable:,} / {params.total:,}"
        ),
        "epochs": f"{run.epochs} of {run.epochs_planned}" + (" (stopped)" if run.stopped else ""),
        "final test accuracy": _percent(run.final_val_accuracy)
        + (f" (kept epoch {record.kept_epoch})" if record.kept_epoch else ""),
        "best test accuracy (epoch)": "?" if best is None else f"{val[best]:.1%} ({best + 1})",
        "epoch of lowest val. loss": "?" if low is None else str(low + 1),
        "s / epoch": f"{np.mean(seconds):.1f}" if seconds else "?",
        "total time": _duration(sum(seconds)) if seconds else "?",
        "device": record.device or "?",
        "precision": record.precision or "?",
    }


def _percent(value: float | None) -> str:
    return "?" if value is None or not math.isfinite(value) else f"{value:.1%}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --------------------------------------------------------------------------------------
# Figures


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def plot_confusion(path: Path, confusion: np.ndarray, class_names: Sequence[str], title: str):
    """The confusion matrix (rows: true class, columns: predicted), with its counts."""
    k = len(class_names)
    fig = _new_figure(1.6 + 0.7 * k, 1.2 + 0.6 * k)
    ax = fig.add_subplot()
    ax.imshow(confusion, cmap="Blues")
    top = confusion.max() if confusion.size else 0
    for (i, j), value in np.ndenumerate(confusion):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > top / 2 else "black",
        )
    ax.set_xticks(range(k), class_names, rotation=45 if k > 2 else 0)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize="medium")
    return _save(fig, path)


def plot_mistakes(path: Path, images: np.ndarray, captions: Sequence[str], title: str) -> Path:
    """Thumbnails of misclassified test images with their captions."""
    n = max(len(images), 1)
    fig = _new_figure(1.6 * n, 2.3)
    fig.suptitle(title, fontsize="medium")
    if not len(images):
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center")
        ax.set_axis_off()
    for i, (image, caption) in enumerate(zip(images, captions, strict=True)):
        ax = fig.add_subplot(1, n, i + 1)
        ax.imshow(image, interpolation="nearest")
        ax.set_title(caption, fontsize="x-small")
        ax.set_axis_off()
    return _save(fig, path)


def plot_activations(
    path: Path, image: np.ndarray, panels: Sequence[tuple[str, int, np.ndarray]], title: str
) -> Path:
    """The test image and each (layer, 1-based channel, map) as the seed's ``plot_channel``:
    terrain colours in 12 levels, the map the right way up."""
    cmap = matplotlib.colormaps["terrain"].resampled(12)
    columns = 4
    rows = math.ceil((len(panels) + 1) / columns)
    fig = _new_figure(2.2 * columns, 2.3 * rows)
    fig.suptitle(title, fontsize="medium")
    ax = fig.add_subplot(rows, columns, 1)
    ax.imshow(image, interpolation="nearest")
    ax.set_title("test image", fontsize="small")
    ax.set_axis_off()
    for i, (layer, channel, values) in enumerate(panels):
        ax = fig.add_subplot(rows, columns, i + 2)
        ax.imshow(values, cmap=cmap, interpolation="nearest")
        ax.set_title(f"{layer}\nchannel {channel}", fontsize="small")
        ax.set_axis_off()
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# The report


def collect_runs(paths: Sequence[str | Path]) -> list[SavedRun]:
    """The saved runs meant by ``paths``: model files (or their sidecars), and folders, whose
    runs are all taken (a study folder: its four). :class:`UserError` for a path that is none."""
    runs: list[SavedRun] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            found = [r for r in discover_runs(path) if r.model_path is not None]
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


def _by_variant(runs: Sequence[SavedRun]) -> dict[str, SavedRun]:
    """Variant -> the last run of it given: the runs the claims are judged on."""
    chosen = {run.variant: run for run in runs if run.variant in SEED_VARIANTS}
    return {v: chosen[v] for v in SEED_VARIANTS if v in chosen}


def _labels(runs: Sequence[SavedRun]) -> list[str]:
    """Each run's name in the figures: its variant, or its file stem when a variant repeats."""
    variants = [run.variant for run in runs]
    return [r.variant if variants.count(r.variant) == 1 else r.label for r in runs]


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
    is loaded from ``data`` or from where the first run found it. Without the data the
    confusion matrices, mistakes and activations are left out, and the report says why.
    """
    from cifar_gui.engine.data import load_dataset

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    labels = _labels(runs)
    figures: dict[str, Path] = {}
    notes: list[str] = []
    for run, label in zip(runs, labels, strict=True):
        figures[f"history {label}"] = save_history_plot(
            out / f"history_{label}.png",
            {label: run.history},
            title=f"{label}: plot(history)",
            colors={label: variant_color(run.variant)},
        )
    val_only = {
        label: {k: run.history[k] for k in ("val_loss", "val_accuracy") if k in run.history}
        for run, label in zip(runs, labels, strict=True)
    }
    figures["overlay"] = save_history_plot(
        out / "validation_overlay.png",
        val_only,
        title="validation curves",
        colors={label: variant_color(run.variant) for run, label in zip(runs, labels, strict=True)},
    )
    if dataset is None:
        source = (
            data
            or runs[0].record.data_source
            or (runs[0].record.config.data if runs[0].record.config else None)
        )
        try:
            dataset = load_dataset(source)
        except UserError as exc:
            notes.append(
                f"The data set could not be loaded ({exc}): no confusion matrices, "
                "mistakes or activations."
            )
    model_parts: dict[str, list[str]] = {}
    if dataset is not None:
        for run, label in zip(runs, labels, strict=True):
            try:
                model_parts[label] = _model_figures(run, label, dataset, out, figures)
            except UserError as exc:
                notes.append(f"{label}: {exc}")
        baseline = _by_variant(runs).get("baseline")
        if baseline is None:
            notes.append("No baseline run: no activation figure.")
        else:
            try:
                figures["activations"] = _activation_figure(baseline, dataset, out)
            except (UserError, KeyError, IndexError) as exc:
                notes.append(f"Activation figure left out: {exc}")
    claims = judge_claims(_by_variant(runs))
    report_command = report_command or shlex.join(
        ["cifar-gui", "report", *(str(r.model_path) for r in runs), "--out", str(out)]
    )
    page = _html(
        runs, labels, claims, figures, model_parts, notes, dataset, study_command, report_command
    )
    path = out / REPORT_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(shown(page), encoding="utf-8")  # paths of non-UTF-8 names as \xNN
    return path


def _subset_for(run: SavedRun, dataset: Any):
    from cifar_gui.engine.data import select_classes

    config = run.record.config
    classes = run.record.class_names or (config.classes if config else ())
    return select_classes(dataset, classes, config.limit if config else None)


def _model_figures(
    run: SavedRun, label: str, dataset: Any, out: Path, figures: dict[str, Path]
) -> list[str]:
    """The confusion matrix and most confident mistakes of one final model."""
    from cifar_gui.engine.inspect import evaluate
    from cifar_gui.engine.persistence import load_model

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
        f"\u2192 {subset.class_names[result.predicted[i]]} {result.probabilities[i].max():.2f}"
        for i in wrong
    ]
    figures[f"mistakes {label}"] = plot_mistakes(
        out / f"mistakes_{label}.png",
        subset.x_test[wrong],
        captions,
        f"{label}: most confident mistakes (test image #, true \u2192 predicted, probability)",
    )
    return [f"confusion {label}", f"mistakes {label}"]


def _activation_figure(run: SavedRun, dataset: Any, out: Path) -> Path:
    """The seed's figure: test image 5 through the baseline, its chosen layers and channels."""
    from cifar_gui.engine.inspect import activations, list_layers
    from cifar_gui.engine.persistence import load_model

    subset = _subset_for(run, dataset)
    if len(subset.x_test) < SEED_TEST_IMAGE:
        raise UserError(f"only {len(subset.x_test)} test images, the seed's is number 5")
    model = load_model(run.model_path).model
    layers = list_layers(model)
    names = [layers[number - 1].name for number, _ in SEED_ACTIVATION_CHANNELS]
    image = subset.x_test[SEED_TEST_IMAGE - 1]
    maps = activations(model, image, names)
    panels = []
    for name, (number, channels) in zip(names, SEED_ACTIVATION_CHANNELS, strict=True):
        values = maps[name][0]
        for channel in channels:
            if channel <= values.shape[-1]:
                panels.append((f"layer {number} ({name})", channel, values[..., channel - 1]))
    truth = subset.class_names[subset.y_test[SEED_TEST_IMAGE - 1]]
    return plot_activations(
        out / "activations_baseline.png",
        image,
        panels,
        f"{run.label}: activations of test image {SEED_TEST_IMAGE} ({truth})",
    )


# --------------------------------------------------------------------------------------
# HTML

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 90%; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eee; }
td.holds { background: #d8f0d8; } td.fails { background: #f6d5d5; }
td.untested { background: #eee; }
img { max-width: 100%; } code { background: #f4f4f4; padding: 1px 4px; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 4px; }
"""
_VERDICT_CLASS = {HOLDS: "holds", FAILS: "fails", UNTESTED: "untested"}


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], classes=None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            css = classes[i][j] if classes else ""
            attr = f' class="{css}"' if css else ""
            cells.append(f"<td{attr}>{cell}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _html(
    runs: Sequence[SavedRun],
    labels: Sequence[str],
    claims: Sequence[Claim],
    figures: Mapping[str, Path],
    model_parts: Mapping[str, list[str]],
    notes: Sequence[str],
    dataset: Any,
    study_command: str | None,
    report_command: str,
) -> str:
    esc = html.escape
    first = runs[0].record
    sources = sorted({r.record.data_source or "?" for r in runs})
    versions = dict(first.versions)
    versions["matplotlib"] = matplotlib.__version__
    classes = sorted({r.classes_text for r in runs})
    images = sorted(
        {f"{r.record.train_images} training / {r.record.test_images} test images" for r in runs}
    )
    generated = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    about = [
        ("data", ", ".join(sources) + (f" (loaded: {dataset.source})" if dataset else "")),
        ("classes", "; ".join(classes)),
        ("images", "; ".join(images)),
        (
            "weights of the VGG16 base",
            ", ".join(
                f"{v}: {weights_source(r)}"
                for v, r in _by_variant(runs).items()
                if v in ("transfer", "finetune")
            )
            or "-",
        ),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
        ("generated", generated),
    ]
    commands = []
    if study_command:
        commands.append(f"<p>The study: <code>{esc(study_command)}</code></p>")
    commands.append(f"<p>This report: <code>{esc(report_command)}</code></p>")
    claim_rows = [
        [esc(c.claim), esc(c.runs), f"<b>{esc(c.verdict)}</b>", esc(c.measured), esc(c.rule)]
        for c in claims
    ]
    claim_css = [["", "", _VERDICT_CLASS[c.verdict], "", ""] for c in claims]
    table_rows = [run_row(r) for r in runs]
    header = list(table_rows[0])
    rows = []
    for row, run in zip(table_rows, runs, strict=True):
        swatch = f'<span class="swatch" style="background:{variant_color(run.variant)}"></span>'
        cells = [esc(row[k]) for k in header]
        cells[1] = swatch + cells[1]
        rows.append(cells)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>cifar-gui study report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Convnets on small data: the study report</h1>",
        _table(["", ""], [[esc(k), esc(v)] for k, v in about]),
        *commands,
        "<h2>The seed's claims against what was measured</h2>",
        "<p>Each verdict follows from the runs' histories by the rule beside it.</p>",
        _table(["claim", "runs", "verdict", "measured", "rule"], claim_rows, claim_css),
        "<h2>The runs</h2>",
        "<p>Test accuracy is the validation accuracy: the seed validates on the test set.</p>",
        _table(header, rows),
        "<h2>Validation curves</h2>",
        _img(figures["overlay"], "validation curves of every run"),
    ]
    for label in labels:
        parts.append(f"<h2>{esc(label)}</h2>")
        parts.append(_img(figures[f"history {label}"], f"{label}: loss and accuracy per epoch"))
        for key in model_parts.get(label, []):
            parts.append(_img(figures[key], key))
    if "activations" in figures:
        parts.append("<h2>Activations (the seed's figure)</h2>")
        parts.append(
            f"<p>Test image {SEED_TEST_IMAGE}; the first layer, channels 1, 5, 15, 20; "
            "layer 6, channels 1, 50, 110 (numbered from 1, as the seed).</p>"
        )
        parts.append(_img(figures["activations"], "activations of test image 5"))
    if notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{esc(n)}</li>" for n in notes]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def report_folder_default(runs: Sequence[SavedRun]) -> Path:
    """Where ``cifar-gui report`` writes without ``--out``: ``report/`` beside a study's
    record, else ``report/`` in the current folder."""
    folders = {r.sidecar.parent for r in runs}
    if len(folders) == 1 and (next(iter(folders)) / STUDY_FILE).is_file():
        return next(iter(folders)) / REPORT_DIR
    return Path(REPORT_DIR)

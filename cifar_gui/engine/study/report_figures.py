"""The report's PNG figures: each variant's history on axes shared by all, the confusion
matrices, the most confident mistakes, the seed's activation figure and the small-data curve.

matplotlib's object API on the Agg canvas (no pyplot, no GUI backend).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cifar_gui.engine.files import atomic_path
from cifar_gui.variant_style import variant_color

DPI = 110
History = Mapping[str, Sequence[float]]


def _new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return path


def _stack(histories: Sequence[History], key: str) -> np.ndarray:
    """The runs' ``key`` curves as rows, cut to the epochs all of them have (empty if any
    lacks it)."""
    curves = [np.asarray(h.get(key, ()), dtype=float) for h in histories]
    n = min((len(c) for c in curves), default=0)
    return np.array([c[:n] for c in curves]) if n else np.empty((0, 0))


def shared_limits(groups: Mapping[str, Sequence[History]], key: str) -> tuple[float, float]:
    """The y range that holds ``key`` and ``val_key`` of every run of every group, padded."""
    values = [
        v
        for histories in groups.values()
        for h in histories
        for series in (key, f"val_{key}")
        for v in h.get(series, ())
        if math.isfinite(v)
    ]
    if not values:
        return (0.0, 1.0)
    low, high = min(values), max(values)
    pad = max(high - low, 1e-3) * 0.06
    return low - pad, high + pad


def _curve(ax: Axes, histories: Sequence[History], key: str, style: str, color: str, label: str):
    """The mean curve of ``key`` over the runs, with their range shaded when there are
    several; returns the mean (empty without the curve)."""
    rows = _stack(histories, key)
    if not rows.size:
        return rows
    epochs = np.arange(1, rows.shape[1] + 1)
    mean = rows.mean(axis=0)
    ax.plot(epochs, mean, style, color=color, ms=3, lw=1.3, label=label)
    if len(rows) > 1:
        ax.fill_between(epochs, rows.min(axis=0), rows.max(axis=0), color=color, alpha=0.2)
    return mean


def plot_shared_histories(
    out: Path, groups: Mapping[str, tuple[str, Sequence[History]]], epochs: int
) -> dict[str, Path]:
    """One ``history_<label>.png`` per group (label -> (variant, its runs' histories)), the
    seed's ``plot(history)``: loss above accuracy, training solid, validation dashed; every
    figure the same size on the same axes (epochs 1 to ``epochs``, one loss range, one
    accuracy range), so that side by side they compare at a glance. The best epoch (highest
    validation accuracy) and the lowest validation loss are starred and labelled."""
    histories = {label: runs for label, (_, runs) in groups.items()}
    limits = {key: shared_limits(histories, key) for key in ("loss", "accuracy")}
    paths = {}
    for label, (variant, runs) in groups.items():
        fig = _new_figure(3.1, 4.3, layout=None)
        fig.subplots_adjust(left=0.22, right=0.96, top=0.9, bottom=0.1, hspace=0.12)
        loss_ax, acc_ax = fig.subplots(2, 1, sharex=True)
        color = variant_color(variant)
        title = label if len(runs) == 1 else f"{label} (mean of {len(runs)} runs)"
        fig.suptitle(title, fontsize="medium", color=color, fontweight="bold")
        for ax, key, pick in ((loss_ax, "loss", np.argmin), (acc_ax, "accuracy", np.argmax)):
            _curve(ax, runs, key, "-o", color, "training")
            val = _curve(ax, runs, f"val_{key}", "--s", color, "validation")
            if len(val):
                best = int(pick(val))
                text = f"{val[best]:.3f}" if key == "loss" else f"{val[best]:.1%}"
                ax.plot(best + 1, val[best], "*", color="black", ms=11, zorder=5)
                ax.annotate(
                    f"{text} (epoch {best + 1})",
                    (best + 1, val[best]),
                    xytext=(0, 8 if key == "accuracy" else -14),
                    textcoords="offset points",
                    ha="right" if best + 1 > epochs / 2 else "left",
                    fontsize="x-small",
                    bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1},
                )
            ax.set_ylim(*limits[key])
            ax.set_ylabel(key)
            ax.grid(True, alpha=0.3)
        acc_ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        acc_ax.set_xlim(0.5, max(epochs, 1) + 0.5)
        acc_ax.set_xlabel("epoch")
        acc_ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6, integer=True))
        if acc_ax.has_data():
            acc_ax.legend(fontsize="x-small", loc="lower right")
        paths[label] = _save(fig, out / f"history_{label}.png")
    return paths


def plot_validation_overlay(path: Path, groups: Mapping[str, tuple[str, Sequence[History]]]):
    """The validation loss and accuracy of every group (label -> (variant, histories): their
    mean) side by side, each in its variant's colour, the legend below."""
    fig = _new_figure(9.0, 3.6)
    loss_ax, acc_ax = fig.subplots(1, 2, sharex=True)
    for label, (variant, runs) in groups.items():
        for ax, key in ((loss_ax, "val_loss"), (acc_ax, "val_accuracy")):
            _curve(ax, runs, key, "-o", variant_color(variant), label)
    for ax, name in ((loss_ax, "validation loss"), (acc_ax, "validation accuracy")):
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(8, integer=True))
    acc_ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    if acc_ax.has_data():
        fig.legend(
            *acc_ax.get_legend_handles_labels(), loc="outside lower center",
            ncols=min(len(groups), 4), fontsize="small",
        )  # fmt: skip
    return _save(fig, path)


def plot_confusion(path: Path, confusion: np.ndarray, class_names: Sequence[str], title: str):
    """The confusion matrix (rows: true class, columns: predicted): each cell's count and its
    share of the row, shaded by that share."""
    k = len(class_names)
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    fig = _new_figure(1.9 + 0.9 * k, 1.5 + 0.75 * k)
    ax = fig.add_subplot()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(confusion):
        ax.text(
            j,
            i,
            f"{value}\n{share[i, j]:.1%}",
            ha="center",
            va="center",
            fontsize="small" if k > 4 else "medium",
            color="white" if share[i, j] > 0.5 else "black",
        )
    ax.set_xticks(range(k), class_names, rotation=45 if k > 2 else 0)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (row: count and share)")
    ax.set_title(title, fontsize="medium")
    return _save(fig, path)


def plot_mistakes(path: Path, images: np.ndarray, captions: Sequence[str], title: str) -> Path:
    """Thumbnails of misclassified test images with their captions."""
    n = max(len(images), 1)
    fig = _new_figure(max(1.45 * n, 4.0), 2.2)
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


def plot_small_data(
    path: Path, summary: Sequence[Mapping], study_images: int | None, title: str
) -> Path:
    """Test accuracy against training images (log scale) of each variant of a small-data
    benchmark's summary rows (variant, n, mean, min, max), the runs' range as error bars;
    a dotted line at the study's own number of training images."""
    fig = _new_figure(6.4, 3.8)
    ax = fig.add_subplot()
    variants = list(dict.fromkeys(row["variant"] for row in summary))
    for variant in variants:
        mine = sorted((r for r in summary if r["variant"] == variant), key=lambda r: r["n"])
        n = np.array([r["n"] for r in mine], dtype=float)
        mean = np.array([r["mean"] for r in mine])
        below = mean - np.array([r["min"] for r in mine])
        above = np.array([r["max"] for r in mine]) - mean
        ax.errorbar(
            n, mean, yerr=[below, above], fmt="-o", ms=4, capsize=3,
            color=variant_color(variant), label=variant,
        )  # fmt: skip
    if study_images:
        ax.axvline(study_images, color="0.4", ls=":", lw=1)
        ax.annotate(
            "this study", (study_images, 0.02), xycoords=("data", "axes fraction"),
            ha="right", fontsize="x-small", color="0.3", rotation=90,
        )  # fmt: skip
    ax.set_xscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("training images of the pair")
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize="medium")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return _save(fig, path)

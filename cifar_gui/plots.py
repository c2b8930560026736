"""Training curves as a PNG with matplotlib, like the seed's ``plot(history)``.

Two panels, loss above accuracy, epochs on the x axis; training and validation of each run
as points joined by lines. Uses matplotlib's object API with the Agg canvas (no pyplot), so
it never touches a GUI backend and can run on any thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# (history key, y-axis label) of the two panels, top to bottom.
PANELS = (("loss", "loss"), ("accuracy", "accuracy"))


def save_history_plot(
    path: str | Path,
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    batches: Mapping[str, Sequence[float]] | None = None,
    title: str | None = None,
    dpi: int = 120,
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Write the loss and accuracy curves of one or more runs to ``path`` (PNG).

    Parameters
    ----------
    histories
        Legend label -> history (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
        one value per epoch, as saved in the sidecars).
    batches
        Optional per-batch training curve: ``x`` (fractional epochs, 1.0 = end of the first
        epoch), ``loss`` and ``accuracy`` (smoothed), drawn as a thin line.
    colors
        Legend label -> colour of its curves (default: matplotlib's cycle in order).
    """
    path = Path(path)
    fig = Figure(figsize=(9.0, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    palette = [(colors or {}).get(name, f"C{i % 10}") for i, name in enumerate(histories)]
    for ax, (key, ylabel) in zip(axes, PANELS, strict=True):
        if batches is not None and len(batches.get("x", ())):
            ax.plot(batches["x"], batches[key], color="0.6", lw=0.8, label="training (per batch)")
        for color, (name, history) in zip(palette, histories.items(), strict=True):
            prefix = f"{name}: " if len(histories) > 1 else ""
            styles = ((key, "-o", "training"), (f"val_{key}", "--s", "validation"))
            for series, style, kind in styles:
                values = history.get(series) or []
                if len(values):
                    ax.plot(
                        np.arange(1, len(values) + 1),
                        values,
                        style,
                        color=color,
                        ms=4,
                        label=f"{prefix}{kind}",
                    )
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            # Beside the axes, not over the curves (several runs make a long legend).
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1].set_xlabel("epoch")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path

"""The colour of each model variant, the same in the report's figures and in the window.

matplotlib's tab10 colours, as hex strings both matplotlib and pyqtgraph take. Imports
neither Qt nor matplotlib.
"""

from __future__ import annotations

VARIANT_COLORS = {
    "baseline": "#1f77b4",  # blue
    "augmented": "#ff7f0e",  # orange
    "transfer": "#2ca02c",  # green
    "finetune": "#d62728",  # red
}
OTHER_COLOR = "#7f7f7f"  # a run whose variant is unknown


def variant_color(variant: str) -> str:
    """The colour of ``variant`` (grey for an unknown one)."""
    return VARIANT_COLORS.get(variant, OTHER_COLOR)

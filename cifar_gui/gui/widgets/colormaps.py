"""Colour maps for activation channels, as the seed's ``plot_channel`` draws them (numpy only).

The seed plots a channel with R's ``image(..., col = terrain.colors(12))``: the value range is
cut into 12 equal bins and each bin gets one colour. :func:`colorize` does the same.
"""

from __future__ import annotations

import math

import numpy as np


def _colours(*codes: str) -> np.ndarray:
    """``#RRGGBB`` codes as a (N, 3) uint8 colour table."""
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in codes], dtype=np.uint8)


# R's terrain.colors(12): HSV ramps green (h 4/12, v .65) -> yellow (h 2/12, v .9) over six
# colours, then yellow -> off-white (h 0, s 0, v .95) over six more. Values as R prints them.
TERRAIN_12 = _colours(
    "#00A600", "#24B300", "#4CBF00", "#7ACC00", "#ADD900", "#E6E600",
    "#E8C727", "#EAB64E", "#ECB176", "#EEB99F", "#F0CFC8", "#F2F2F2",
)  # fmt: skip


# Other choices for the Live tab: matplotlib's viridis at 12 levels (perceptually even, and
# readable in grey print) and plain grey levels; the tutorial's terrain stays the default.
VIRIDIS_12 = _colours(
    "#440154", "#482173", "#433E85", "#38588C", "#2D708E", "#25858E",
    "#1E9B8A", "#2AB07F", "#52C569", "#86D549", "#C2DF23", "#FDE725",
)  # fmt: skip
GREY_12 = np.repeat(np.linspace(20, 245, 12).round().astype(np.uint8)[:, None], 3, axis=1)
COLOR_MAPS = {"terrain (the tutorial's)": TERRAIN_12, "viridis": VIRIDIS_12, "grey": GREY_12}


def bin_indices(values: np.ndarray, vmin, vmax, bins: int) -> np.ndarray:
    """Equal-width bin of each value in [vmin, vmax] (R's ``image`` breaks).

    ``vmin`` and ``vmax`` may be arrays that broadcast against ``values``. Where the range is
    empty (a constant channel: dead ReLUs are common) every value gets bin 0.
    """
    values = np.asarray(values, dtype=np.float32)
    vmin = np.asarray(vmin, dtype=np.float32)
    span = np.asarray(vmax, dtype=np.float32) - vmin
    scale = np.where(span > 0, bins / np.where(span > 0, span, 1), 0).astype(np.float32)
    return np.clip(((values - vmin) * scale).astype(np.intp), 0, bins - 1)


def colorize(
    values: np.ndarray,
    vmin: float | None = None,
    vmax: float | None = None,
    lut: np.ndarray = TERRAIN_12,
) -> np.ndarray:
    """(H, W) values -> (H, W, 3) uint8 colours; the range defaults to the values' own."""
    values = np.asarray(values, dtype=np.float32)
    lo = float(values.min()) if vmin is None else vmin
    hi = float(values.max()) if vmax is None else vmax
    return lut[bin_indices(values, lo, hi, len(lut))]


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of a near-square grid holding ``count`` tiles."""
    cols = max(1, math.ceil(math.sqrt(count)))
    return max(1, math.ceil(count / cols)), cols


def channel_mosaic(
    channels: np.ndarray, gap: int = 1, per_channel: bool = True, lut: np.ndarray = TERRAIN_12
) -> tuple[np.ndarray, tuple[int, int]]:
    """(H, W, C) activations -> one RGB mosaic of all channels, and its (rows, columns).

    Each tile is coloured on its own range when ``per_channel`` (as the seed plots one
    channel at a time), else on the layer's range. Tiles are ``gap`` pixels apart, on white.
    """
    count = channels.shape[-1]
    rows, cols = grid_shape(count)
    values = np.moveaxis(np.asarray(channels, dtype=np.float32), -1, 0)  # (C, H, W)
    if per_channel:
        lo = values.reshape(count, -1).min(axis=1)[:, None, None]
        hi = values.reshape(count, -1).max(axis=1)[:, None, None]
    else:
        lo, hi = values.min(), values.max()
    tiles = lut[bin_indices(values, lo, hi, len(lut))]  # (C, H, W, 3)
    return tile_mosaic(tiles, cols, gap), (rows, cols)


def tile_mosaic(tiles: np.ndarray, cols: int, gap: int = 1) -> np.ndarray:
    """(N, H, W, 3) uint8 tiles -> one mosaic of ``cols`` columns, ``gap`` pixels apart on
    white, row by row."""
    count, height, width, _ = tiles.shape
    rows = max(1, math.ceil(count / cols))
    mosaic = np.full(
        (rows * (height + gap) - gap, cols * (width + gap) - gap, 3), 255, dtype=np.uint8
    )
    for c in range(count):
        r, q = divmod(c, cols)
        top, left = r * (height + gap), q * (width + gap)
        mosaic[top : top + height, left : left + width] = tiles[c]
    return mosaic


def _stretch(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``values`` mapped to 0-255 on their own range over ``axes`` (a constant: mid-grey)."""
    lo = values.min(axis=axes, keepdims=True)
    span = values.max(axis=axes, keepdims=True) - lo
    unit = np.where(span > 0, (values - lo) / np.where(span > 0, span, 1), 0.5)
    return np.round(unit * 255).astype(np.uint8)


def filter_mosaic(kernel: np.ndarray, gap: int = 1) -> tuple[np.ndarray, tuple[int, int]]:
    """The filters of a convolution on RGB input, (H, W, 3, N), as N colour tiles, each
    stretched to its own range (as the ConvNetJS demo draws them), and the grid's shape."""
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(f"colour tiles need a kernel of shape (H, W, 3, N), not {kernel.shape}")
    tiles = _stretch(np.moveaxis(kernel, -1, 0), (1, 2, 3))  # (N, H, W, 3)
    rows, cols = grid_shape(len(tiles))
    return tile_mosaic(tiles, cols, gap), (rows, cols)


def filter_slices(
    kernel: np.ndarray, index: int, gap: int = 1
) -> tuple[np.ndarray, tuple[int, int]]:
    """Filter ``index`` of a convolution's kernel (H, W, C, N) as C grey tiles, one per input
    channel, on the filter's common range (so the slices compare), and the grid's shape."""
    kernel = np.asarray(kernel, dtype=np.float32)
    grey = _stretch(np.moveaxis(kernel[..., index], -1, 0), (0, 1, 2))  # (C, H, W)
    rows, cols = grid_shape(len(grey))
    return tile_mosaic(np.repeat(grey[..., None], 3, axis=-1), cols, gap), (rows, cols)


def jet(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 in the classic "jet" ramp (blue to red)."""
    x = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25], dtype=np.float32)  # where red, green, blue peak
    return (np.clip(1.5 - np.abs(4.0 * x - 4.0 * centres), 0.0, 1.0) * 255).astype(np.uint8)


def heat_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A uint8 RGB image blended with ``jet(heat)`` (Grad-CAM's usual picture)."""
    blend = (1.0 - alpha) * image.astype(np.float32) + alpha * jet(heat).astype(np.float32)
    return np.clip(blend + 0.5, 0, 255).astype(np.uint8)

"""Filter tiles: colour tiles of a first layer, grey slices of a deeper one (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from cifar_gui.gui.widgets.colormaps import filter_mosaic, filter_slices, tile_mosaic


def test_colour_tiles_stretch_each_filter_to_its_own_range():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 3, 5)).astype(np.float32)
    kernel[..., 2] *= 100  # a large filter does not wash out the others
    kernel[..., 4] = 0.25  # a constant filter is mid-grey
    mosaic, grid = filter_mosaic(kernel, gap=1)
    assert grid == (2, 3) and mosaic.shape == (2 * 4 - 1, 3 * 4 - 1, 3)
    for index in range(4):
        row, col = divmod(index, 3)
        tile = mosaic[row * 4 : row * 4 + 3, col * 4 : col * 4 + 3]
        weights = kernel[..., index]
        expected = np.round((weights - weights.min()) / np.ptp(weights) * 255)
        np.testing.assert_array_equal(tile, expected.astype(np.uint8))
    assert (mosaic[4:7, 4:7] == 128).all()
    assert (mosaic[4:7, 8:11] == 255).all()  # no sixth filter: white


def test_grey_slices_share_the_filters_range():
    kernel = np.zeros((2, 2, 4, 3), dtype=np.float32)
    kernel[..., 1, 2] = 1.0  # filter 3 looks only at input channel 2
    mosaic, grid = filter_slices(kernel, 2, gap=0)
    assert grid == (2, 2) and mosaic.shape == (4, 4, 3)
    assert (mosaic[:2, 2:4] == 255).all()  # input channel 2: the filter's maximum
    assert (mosaic[:2, :2] == 0).all() and (mosaic[2:, :] == 0).all()
    assert (mosaic[..., 0] == mosaic[..., 1]).all()  # grey


def test_colour_tiles_need_rgb_input():
    with pytest.raises(ValueError, match="shape"):
        filter_mosaic(np.zeros((3, 3, 32, 64)))


def test_mosaic_places_tiles_row_by_row():
    tiles = np.arange(3)[:, None, None, None] * np.ones((3, 1, 1, 3), dtype=np.uint8)
    np.testing.assert_array_equal(tile_mosaic(tiles, cols=2, gap=0)[..., 0], [[0, 1], [2, 255]])

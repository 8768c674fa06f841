"""Hand-crafted descriptors of onset->apex optical flow.

HOOF (histograms of oriented optical flow, Chaudhry et al. 2009) as used in the
micro-expression literature (e.g. Liu et al. 2016, MDMO): on a grid of cells over the
aligned face, a histogram of flow orientation weighted by magnitude, plus the mean
optical strain of each cell. It is mekit's classic baseline.

This module is the one implementation of HOOF in mekit: the ``hoof`` extractor,
:func:`mekit.features.handcrafted.hoof_sequence`, the richer ``flow_descriptors``
(:mod:`mekit.features.combined`) and the per-frame intensity features all build on
:func:`hoof_cells` and :func:`cell_means`, so a change of binning or cell layout reaches
every one of them.

Every function computes in the dtype of the arrays it is given (float32 flow from the
preprocessing stays float32 up to the histogram sums, which numpy accumulates in float64);
callers that want float64 throughout convert first, as ``flow_descriptors`` does.
"""

from __future__ import annotations

import numpy as np


def grid_edges(n: int, cells: int) -> np.ndarray:
    """Boundaries of ``cells`` equal cells over ``n`` pixels (``cells + 1`` integers)."""
    return np.linspace(0, n, cells + 1).astype(int)


def cell_histograms(values: np.ndarray, weights: np.ndarray, bins: int, grid: int) -> np.ndarray:
    """Weighted histograms of integer bin indices ``values`` [H, W] in each cell of a
    ``grid`` x ``grid`` layout, divided by the cell's area: ``[grid * grid, bins]`` float64,
    cells in row-major order."""
    h, w = values.shape
    ys, xs = grid_edges(h, grid), grid_edges(w, grid)
    out = np.empty((grid, grid, bins), np.float64)
    for i in range(grid):
        for j in range(grid):
            sl = (slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1]))
            area = max(ys[i + 1] - ys[i], 1) * max(xs[j + 1] - xs[j], 1)
            out[i, j] = np.bincount(values[sl].ravel(), weights=weights[sl].ravel(), minlength=bins) / area
    return out.reshape(grid * grid, bins)


def cell_means(values: np.ndarray, grid: int) -> np.ndarray:
    """Mean of ``values`` [H, W] in each cell (row-major), ``[grid * grid]`` in their dtype."""
    h, w = values.shape
    ys, xs = grid_edges(h, grid), grid_edges(w, grid)
    return np.array([values[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean() for i in range(grid) for j in range(grid)])


def orientation_bins(flow: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bin, magnitude)`` of every pixel of a flow field [H, W, 2]: ``bins`` orientation bins
    over 360 degrees, bin 0 starting at rightward (+u) and turning towards +v."""
    u, v = flow[..., 0], flow[..., 1]
    mag = np.hypot(u, v)
    ang = np.mod(np.arctan2(v, u), 2 * np.pi)
    b = np.minimum((ang / (2 * np.pi) * bins).astype(np.int64), bins - 1)
    return b, mag


def hoof_cells(flow: np.ndarray, grid: int = 5, bins: int = 8) -> np.ndarray:
    """Magnitude-weighted orientation histograms of a flow field [H, W, 2] per grid cell,
    divided by the cell area: ``[grid * grid, bins]`` float64."""
    b, mag = orientation_bins(flow, bins)
    return cell_histograms(b, mag, bins, grid)


def hoof_descriptor(flow: np.ndarray, strain: np.ndarray | None, grid: int = 5, bins: int = 8) -> np.ndarray:
    """Descriptor of one flow field [H, W, 2] (+ strain [H, W]): grid*grid*(bins [+1]) values,
    per cell its orientation histogram then (with ``strain``) its mean strain."""
    cells = [hoof_cells(flow, grid, bins)]
    if strain is not None:
        cells.append(cell_means(strain, grid)[:, None])
    return np.concatenate(cells, axis=1).ravel().astype(np.float32)


__all__ = ["cell_histograms", "cell_means", "grid_edges", "hoof_cells", "hoof_descriptor", "orientation_bins"]

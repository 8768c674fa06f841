"""Hand-crafted descriptors of onset->apex optical flow.

HOOF (histograms of oriented optical flow, Chaudhry et al. 2009) as used in the
micro-expression literature (e.g. Liu et al. 2016, MDMO): on a grid of cells over the
aligned face, a histogram of flow orientation weighted by magnitude, plus the mean
optical strain of each cell. It is mekit's classic baseline.
"""

from __future__ import annotations

import numpy as np


def hoof_descriptor(flow: np.ndarray, strain: np.ndarray | None, grid: int = 5, bins: int = 8) -> np.ndarray:
    """Descriptor of one flow field [H, W, 2] (+ strain [H, W]): grid*grid*(bins [+1]) values."""
    u, v = flow[..., 0], flow[..., 1]
    mag = np.hypot(u, v)
    ang = np.mod(np.arctan2(v, u), 2 * np.pi)
    b = np.minimum((ang / (2 * np.pi) * bins).astype(int), bins - 1)
    h, w = mag.shape
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    out = []
    for i in range(grid):
        for j in range(grid):
            sl = (slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1]))
            hist = np.bincount(b[sl].ravel(), weights=mag[sl].ravel(), minlength=bins)
            out.append(hist / max(sl[0].stop - sl[0].start, 1) / max(sl[1].stop - sl[1].start, 1))
            if strain is not None:
                out.append([float(strain[sl].mean())])
    return np.concatenate(out).astype(np.float32)

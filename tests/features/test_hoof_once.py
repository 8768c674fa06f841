"""HOOF has one implementation (mekit.features.flow_features); every user of it gives, bit for
bit, what its own former code gave. The references below are verbatim copies of the two
implementations that existed before they were merged: ``hoof_descriptor`` (used by the ``hoof``
extractor, ``hoof_sequence`` and the intensity features) and the orientation histograms of
``flow_descriptor`` (the ``flow_descriptors`` extractor)."""

from __future__ import annotations

import numpy as np
import pytest

from mekit.features.combined import flow_descriptor
from mekit.features.flow_features import hoof_descriptor
from mekit.features.handcrafted import hoof_sequence


def _ref_hoof_descriptor(flow, strain, grid=5, bins=8):
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


def _ref_cell_histograms(values, weights, bins, grid):
    h, w = values.shape
    ys, xs = np.linspace(0, h, grid + 1).astype(int), np.linspace(0, w, grid + 1).astype(int)
    out = np.empty((grid, grid, bins), np.float64)
    for i in range(grid):
        for j in range(grid):
            sl = (slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1]))
            area = max(ys[i + 1] - ys[i], 1) * max(xs[j + 1] - xs[j], 1)
            out[i, j] = np.bincount(values[sl].ravel(), weights=weights[sl].ravel(), minlength=bins) / area
    return out.reshape(grid * grid, bins)


def _ref_cell_means(values, grid):
    h, w = values.shape
    ys, xs = np.linspace(0, h, grid + 1).astype(int), np.linspace(0, w, grid + 1).astype(int)
    return np.array([values[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean() for i in range(grid) for j in range(grid)])


def _ref_flow_descriptor(flows, strains, grids=(5,), bins=8, strain_mean=True, strain_bins=0, strain_max=0.1,
                         sqrt=False):
    """The former flow_descriptor without head-motion removal, masking, normalisation and MDMO
    (code the merge did not touch)."""
    parts = []
    for flow, strain in zip(flows, strains):
        f = np.asarray(flow, np.float64)
        u, v = f[..., 0], f[..., 1]
        mag = np.hypot(u, v)
        ang = np.mod(np.arctan2(v, u), 2 * np.pi)
        b = np.minimum((ang / (2 * np.pi) * bins).astype(np.int64), bins - 1)
        sbin = None
        if strain is not None and strain_bins:
            s = np.asarray(strain, np.float64)
            sbin = np.minimum((s / strain_max * strain_bins).astype(np.int64), strain_bins - 1).clip(0)
        for g in grids:
            hist = _ref_cell_histograms(b, mag, bins, int(g))
            cells = [np.sqrt(hist) if sqrt else hist]
            if strain is not None and strain_mean:
                cells.append(_ref_cell_means(np.asarray(strain, np.float64), int(g))[:, None])
            if sbin is not None:
                cells.append(_ref_cell_histograms(sbin, np.ones_like(mag), strain_bins, int(g)))
            parts.append(np.concatenate(cells, axis=1).ravel())
    return np.concatenate(parts).astype(np.float32)


def _clips(n=8):
    rng = np.random.default_rng(7)
    for k in range(n):
        h, w = [(64, 64), (57, 61), (28, 28), (30, 41)][k % 4]
        dtype = np.float32 if k % 2 == 0 else np.float64
        flows = [(rng.normal(size=(h, w, 2)) * rng.uniform(0.1, 3)).astype(dtype) for _ in range(2)]
        flows[0][:4, :4] = 0                               # no motion: angle 0
        flows[0][4:7, 4:7] = (-1.0, 0.0)                   # exactly leftward: angle pi, a bin edge
        strains = [np.abs(rng.normal(size=(h, w)) * 0.05).astype(dtype) for _ in range(2)]
        yield flows, strains


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("grid, bins", [(5, 8), (3, 12), (6, 4)])
def test_hoof_descriptor_and_sequence_are_unchanged(grid, bins):
    for flows, strains in _clips():
        f, s = flows[0], strains[0]
        _same(hoof_descriptor(f, s, grid, bins), _ref_hoof_descriptor(f, s, grid, bins))
        _same(hoof_descriptor(f, None, grid, bins), _ref_hoof_descriptor(f, None, grid, bins))
        # hoof_sequence checks and converts its fields to float64 before describing them
        ref = np.concatenate([_ref_hoof_descriptor(np.asarray(x, np.float64), None if y is None else
                                                   np.asarray(y, np.float64), grid, bins)
                              for x, y in zip(flows, [s, None])])
        _same(hoof_sequence(flows, grid, bins, [s, None]), ref)


@pytest.mark.parametrize("params", [{}, {"grids": (2, 5), "bins": 12}, {"strain_bins": 4},
                                    {"sqrt": True, "strain_mean": False, "strain_bins": 3, "strain_max": 0.05,
                                     "grids": (1, 3, 5)}])
def test_flow_descriptor_is_unchanged(params):
    for flows, strains in _clips():
        _same(flow_descriptor(flows, strains, None, **params), _ref_flow_descriptor(flows, strains, **params))
        _same(flow_descriptor(flows[:1], [None], None, **params), _ref_flow_descriptor(flows[:1], [None], **params))

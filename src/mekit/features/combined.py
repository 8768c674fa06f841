"""Richer flow descriptors, descriptor concatenation, and the HSV flow-image input.

``flow_descriptors`` extends the ``hoof`` baseline (magnitude-weighted orientation histograms
of onset->apex flow on one 5x5 grid plus mean strain per cell) along the directions the
micro-expression literature found useful, each one a switch so a benchmark can measure it:

- several grids at once (a spatial pyramid: coarse cells are robust to misalignment, fine
  cells localise the action units);
- the apex->offset pair as well as onset->apex (the release of the expression moves the same
  muscles back, as "onset-apex-offset" networks exploit);
- histograms of optical strain per cell (strain, the local deformation, is a standard
  micro-expression cue: Liong et al. 2014; Bi-WOOF, Liong et al. 2018);
- subtraction of a rigid translation (median flow of the face or of the nose region) against
  residual head motion, and masking of the eye regions against blinks;
- MDMO (Liu et al. 2016) in the landmark ROIs the preprocessing already computes;
- per-clip magnitude normalisation (divide every flow of the clip by its mean speed, so a
  subject who moves twice as much as another is not a different class: the same idea as MDMO's
  rho normalisation) and a square-root (Hellinger) map of the histograms (Arandjelovic and
  Zisserman 2012), which keeps one large bin from dominating a linear classifier.

On CASME II (benchmarks/casme2.py) the mean-speed normalisation with the square-root map raised
LOSO UF1 over plain HOOF by about 0.06 (3-class) and 0.10 (5-class); the other switches moved it
by less than the noise of a 24-26-subject LOSO (see benchmarks/results/casme2.md).

Every block is computed from one sample alone; nothing here looks at labels or at other
samples, so the features are fold-independent and the classifier's scaler (fitted per fold)
does the rest.

``concat_features`` concatenates any registered extractors (e.g. flow descriptors + LBP-TOP)
on the samples all of them produced. ``hsv_flow_input`` renders onset->apex flow as an HSV
colour image for ImageNet-style CNNs (``resnet18_flow``), as published CASME II ResNet-18
baselines do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mekit.errors import ConfigError
from mekit.features.base import FeatureSet
from mekit.features.flow_features import cell_histograms, cell_means, orientation_bins
from mekit.features.planning import Need

log = logging.getLogger(__name__)

_NORMALISE = ("none", "mean", "max")
_SUBTRACT = ("none", "median", "nose")
_EYES = ("left_eye", "right_eye")


def _remove_head_motion(flow: np.ndarray, how: str, rois: Mapping[str, Sequence[int]] | None) -> np.ndarray:
    """Subtract a rigid translation: the median flow of the whole face ('median') or of the nose
    region ('nose', the reference MDMO and Bi-WOOF use: the nose barely moves in an expression),
    falling back to the whole face when no nose ROI is known."""
    if how == "none":
        return flow
    region = flow
    if how == "nose" and rois and "nose" in rois:
        x0, y0, x1, y1 = (int(c) for c in rois["nose"])
        if x1 > x0 and y1 > y0:
            region = flow[max(y0, 0):y1, max(x0, 0):x1]
    return flow - np.median(region.reshape(-1, 2), axis=0)


def _mask(a: np.ndarray, rois: Mapping[str, Sequence[int]], names: Sequence[str]) -> np.ndarray:
    """Zero ``a`` inside the named ROIs (eye regions: blinks are large motions unrelated to the emotion)."""
    out = a.copy()
    for n in names:
        if n in rois:
            x0, y0, x1, y1 = (int(c) for c in rois[n])
            out[max(y0, 0):y1, max(x0, 0):x1] = 0
    return out


def flow_descriptor(flows: Sequence[np.ndarray], strains: Sequence[np.ndarray | None],
                    rois: Mapping[str, Sequence[int]] | None = None, grids: Sequence[int] = (5,),
                    bins: int = 8, strain_mean: bool = True, strain_bins: int = 0,
                    strain_max: float = 0.1, mdmo: bool = False, normalise: str = "none",
                    sqrt: bool = False, subtract: str = "none", mask_eyes: bool = False) -> np.ndarray:
    """Descriptor of one clip from its flow fields ``flows`` ([H, W, 2] each, e.g. onset->apex and
    apex->offset) and their strain maps.

    Per flow field and per grid: magnitude-weighted orientation histograms (``bins`` bins over
    360 degrees, bin 0 starting at rightward: the HOOF cells of
    :func:`~mekit.features.flow_features.hoof_cells`, computed in float64),
    then the mean strain of each cell (``strain_mean``) and a strain-magnitude histogram per cell
    (``strain_bins`` bins over ``[0, strain_max]``, the last bin open-ended; 0 for none); then MDMO's
    ``(rho, theta)`` per ROI when ``mdmo`` and ``rois`` are given. ``normalise``: divide every flow
    of the clip by the mean ('mean') or maximum ('max') speed of its first field. ``sqrt``: square
    root of the orientation histograms.
    """
    if normalise not in _NORMALISE:
        raise ConfigError(f"flow_descriptors: normalise must be one of {_NORMALISE}, got {normalise!r}")
    if subtract not in _SUBTRACT:
        raise ConfigError(f"flow_descriptors: subtract must be one of {_SUBTRACT}, got {subtract!r}")
    if not flows:
        raise ConfigError("flow_descriptors: no flow field to describe")
    flows = [_remove_head_motion(np.asarray(f, np.float64), subtract, rois) for f in flows]
    if mask_eyes and rois:
        flows = [_mask(f, rois, _EYES) for f in flows]
        strains = [None if s is None else _mask(np.asarray(s, np.float64), rois, _EYES) for s in strains]
    scale = 1.0
    if normalise != "none":
        mag0 = np.hypot(flows[0][..., 0], flows[0][..., 1])
        ref = float(mag0.mean() if normalise == "mean" else mag0.max())
        scale = 1.0 / ref if ref > 1e-8 else 1.0
    parts: list[np.ndarray] = []
    for flow, strain in zip(flows, strains):
        f = np.asarray(flow, np.float64) * scale
        b, mag = orientation_bins(f, bins)
        sbin = None
        if strain is not None and strain_bins:
            s = np.asarray(strain, np.float64)
            sbin = np.minimum((s / strain_max * strain_bins).astype(np.int64), strain_bins - 1).clip(0)
        for g in grids:
            # per cell: orientation histogram, mean strain, strain histogram (hoof's cell order)
            hist = cell_histograms(b, mag, bins, int(g))
            cells = [np.sqrt(hist) if sqrt else hist]
            if strain is not None and strain_mean:
                cells.append(cell_means(np.asarray(strain, np.float64), int(g))[:, None])
            if sbin is not None:
                cells.append(cell_histograms(sbin, np.ones_like(mag), strain_bins, int(g)))
            parts.append(np.concatenate(cells, axis=1).ravel())
        if mdmo and rois:
            from mekit.features.handcrafted import mdmo as mdmo_fn

            parts.append(np.asarray(mdmo_fn(f.astype(np.float32), rois), np.float64))
    return np.concatenate(parts).astype(np.float32)


def flow_descriptors_needs(params: Mapping[str, Any], preprocess: Mapping[str, Any]) -> list[Need]:
    """flow_descriptors: the flow of its ``pairs``."""
    return [Need({"pairs": list(params["pairs"])})]


def flow_descriptors(table, preprocess: dict, progress: bool = True, pairs: Sequence[str] = ("onset_apex",),
                     grids: Sequence[int] = (5,), bins: int = 8, strain_mean: bool = True, strain_bins: int = 0,
                     strain_max: float = 0.1, mdmo: bool = False, normalise: str = "none",
                     sqrt: bool = False, subtract: str = "none", mask_eyes: bool = False) -> FeatureSet:
    """Registered extractor ``flow_descriptors``: :func:`flow_descriptor` of every clip.

    With the defaults it equals the ``hoof`` extractor (one 5x5 grid, 8 bins, mean strain).
    """
    from mekit.features.extractors import _pipeline

    (need,) = flow_descriptors_needs({"pairs": pairs}, preprocess)
    pairs = need.overrides["pairs"]
    if isinstance(grids, int):
        grids = [grids]
    res = _pipeline(table, preprocess, progress, **need.overrides)
    ids, rows = [], []
    for sid in table.sample_ids:
        if sid in res.skipped:
            continue
        item = res[sid]
        rows.append(flow_descriptor([item[f"uv_{p}"] for p in pairs], [item.get(f"strain_{p}") for p in pairs],
                                    item.get("rois"), grids, bins, strain_mean, strain_bins, strain_max, mdmo,
                                    normalise, sqrt, subtract, mask_eyes))
        ids.append(sid)
    width = rows[0].shape[0] if rows else 0
    return FeatureSet(ids, np.stack(rows) if rows else np.zeros((0, width), np.float32), dict(res.skipped))


def _parts(parts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``concat``'s parts, checked: each a mapping with a registered ``name`` other than concat."""
    if not parts:
        raise ConfigError("features 'concat' needs params.parts: a list of {name, params}")
    for k, p in enumerate(parts):
        if not isinstance(p, Mapping) or "name" not in p:
            raise ConfigError(f"features.params.parts[{k}]: expected {{name, params}}, got {p!r}")
        if p["name"] == "concat":
            raise ConfigError("features.params.parts: 'concat' cannot contain itself")
    return list(parts)


def concat_needs(params: Mapping[str, Any], preprocess: Mapping[str, Any]) -> list[Need]:
    """concat: the needs of every part, each with the part's own ``preprocess`` overrides laid
    under what the part forces (as :func:`concat_features` calls the part)."""
    from mekit.features import preprocess_needs

    out: list[Need] = []
    for p in _parts(params["parts"]):
        own = dict(p.get("preprocess") or {})
        for need in preprocess_needs(p["name"], p.get("params"), {**preprocess, **own}):
            out.append(Need({**own, **dict(need.overrides)}, need.media))
    return out


def concat_features(table, preprocess: dict, progress: bool = True,
                    parts: Sequence[Mapping[str, Any]] = ()) -> FeatureSet:
    """Registered extractor ``concat``: several registered extractors side by side.

    ``parts``: ``[{name: hoof, params: {...}}, {name: lbp_top, params: {...}}]``; each part
    may carry its own ``preprocess`` overrides. Samples any part skipped are skipped (with
    that part's reason). Each block keeps its own scale; the classifier's per-fold scaler
    standardises every column, so a block's weight is its number of columns.
    """
    from mekit.features import get_extractor

    sets: list[FeatureSet] = []
    for p in _parts(parts):
        pre = {**(preprocess or {}), **dict(p.get("preprocess") or {})}
        sets.append(get_extractor(p["name"])(table, pre, progress=progress, **dict(p.get("params") or {})))
    skipped: dict[str, str] = {}
    for s in sets:
        skipped.update(s.skipped)
    common = [sid for sid in table.sample_ids if all(sid in set(s.sample_ids) for s in sets)]
    for s in sets:
        for sid in set(s.sample_ids) - set(common):
            skipped.setdefault(sid, "not produced by every feature part")
    X = np.concatenate([s.take(common) for s in sets], axis=1) if common else \
        np.zeros((0, sum(s.X.shape[1] for s in sets)), np.float32)
    return FeatureSet(common, X.astype(np.float32), skipped)


def hsv_flow_needs(params: Mapping[str, Any], preprocess: Mapping[str, Any]) -> list[Need]:
    """hsv_flow: onset->apex flow."""
    return [Need({"pairs": ["onset_apex"]})]


def hsv_flow_input(table, preprocess: dict, progress: bool = True, size: int = 112,
                   mean: tuple = (0.0, 0.0, 0.0), std: tuple = (1.0, 1.0, 1.0),
                   max_magnitude: float | None = None, name: str = "flow") -> FeatureSet:
    """Registered input ``hsv_flow``: onset->apex flow rendered as an HSV colour image
    [N, 3, size, size] (hue = direction, value = speed; :func:`mekit.preprocess.flow.flow_to_hsv_image`),
    in 0..1 and normalised with the model's mean/std.

    This is the input of published ResNet-on-flow-image baselines (Farneback onset->apex flow,
    HSV-rendered, fed to an ImageNet CNN). Select it for a model with
    ``features: {name: hsv_flow}`` (the runner then uses this builder instead of the model's
    default input kind) or call it directly.
    """
    import cv2

    from mekit.features.extractors import _pipeline
    from mekit.preprocess.flow import flow_to_hsv_image

    (need,) = hsv_flow_needs({}, preprocess)
    res = _pipeline(table, preprocess, progress, **need.overrides)
    ids, imgs = [], []
    for sid in table.sample_ids:
        if sid in res.skipped:
            continue
        img = flow_to_hsv_image(res[sid]["uv_onset_apex"], max_magnitude)
        if img.shape[0] != size:
            interp = cv2.INTER_AREA if size < img.shape[0] else cv2.INTER_LINEAR
            img = cv2.resize(img, (size, size), interpolation=interp)
        imgs.append(img)
        ids.append(sid)
    if not imgs:
        return FeatureSet([], np.zeros((0, 3, size, size), np.float32), dict(res.skipped))
    X = np.stack(imgs).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    X = (X - np.asarray(mean, np.float32).reshape(1, 3, 1, 1)) / np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    return FeatureSet(ids, np.ascontiguousarray(X), dict(res.skipped))

"""Apex spotting: the frame where the face is furthest from its neutral state.

Some corpora give no apex (SMIC, CAS(ME)^3 part C, raw videos), and many methods need
one (onset-apex optical flow, apex-frame CNNs). :func:`motion_curve` measures, for every
frame of an aligned clip, how far the face has moved away from its reference frame(s)
inside the regions where micro-expressions act (the ROIs of
:meth:`mekit.preprocess.face.FaceAlignment.rois`), and :func:`spot_apex` takes its peak.

References (``reference``):

- ``"ends"`` (default): the distance to the first frame PLUS the distance to the last.
  A clip cut from onset to offset starts and ends near neutral, and the apex is where
  the face is far from both. A slow drift of the whole head (or lighting) grows away
  from the onset exactly as it shrinks towards the offset, so in the sum it cancels,
  where an onset-only curve would climb to the last frame.
- ``"onset"``: the distance to the first frame only, for clips that do not end at an
  offset (a raw video cut from an onset onwards).

Measures (``method``):

- ``"diff"``: mean absolute difference of lightly blurred frames, each normalised to zero
  mean and unit spread over the crop (a global brightness ramp or flicker cancels).
- ``"flow"``: mean DIS optical-flow magnitude (OpenCV, medium preset), after subtracting
  the median flow vector of the crop (a small head translation moves every pixel alike).

``contrast=True`` further subtracts the median motion outside the ROIs; it helps an
onset-only difference curve against head drift, but hurts the ``"ends"`` curve (see the
figures at :data:`DEFAULT_METHOD`). The curve is smoothed in time with a Gaussian. Long clips are
measured on every ``stride``-th frame and interpolated, and :func:`spot_apex` re-measures
every frame around the coarse peak, so the answer stays frame-exact at a fraction of the
cost.

These are heuristics with no learned parameters. Their accuracy against CASME II's
annotated apexes is measured by ``benchmarks/apex_spotting.py``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

METHODS = ("diff", "flow")
REFERENCES = ("ends", "onset")

# Defaults chosen on CASME II (benchmarks/apex_spotting.py): all 244 present clips, 128 px
# grey crops from FaceAligner(detector="none"), landmark ROIs, 6 % smoothing, at most 24
# frames measured before refinement; error = |spotted - annotated apex| in frames (clips
# are 24-141 frames long, median 62). This is a model selection on the whole corpus for a
# preprocessing default: the choices are few and discrete and the heuristic has no
# learned parameters, but the figures are optimistic for CASME II and untested elsewhere.
#   reference  method  contrast   MAE  median  MAE/length  within 10 %  s/clip (2 cores)
#   onset      diff    no        18.45   12      0.270       39.3 %     0.002
#   onset      diff    yes       17.15   10      0.254       41.0 %     0.005
#   onset      flow    yes       13.15    7      0.184       48.0 %     0.071
#   ends       diff    yes        8.39    4.5    0.127       59.8 %     0.008
#   ends       diff    no         7.64    4      0.115       64.8 %     0.003
#   ends       flow    yes       10.48    4      0.152       57.4 %     0.097
#   ends       flow    no         6.51    4      0.100       70.1 %     0.099   <- default
#   always the middle frame       8.23    6      0.120       54.5 %     -
# The annotated apex of CASME II sits near the middle of its onset..offset clip (mean
# 0.51 of the length, s.d. 0.16), so the middle frame is a strong baseline there (it
# would not be on clips not cut around the expression); only "ends" without contrast
# beats it on every figure. "diff" is about 35x faster for about one frame more error. DIS's faster presets cost accuracy
# (onset/flow/contrast: ultrafast 15.1, fast 14.8 frames MAE against medium's 12.8 in an
# earlier run), and flow on 64 px crops did too (ends/flow 9.0).
DEFAULT_METHOD = "flow"
DEFAULT_REFERENCE = "ends"
#: Temporal smoothing, as a fraction of the clip length (in frames, at least 1).
DEFAULT_SMOOTH_FRACTION = 0.06
#: Measure at most this many frames before refining around the peak.
DEFAULT_MAX_SAMPLES = 24

Box = tuple[int, int, int, int]


def motion_curve(frames: np.ndarray | Sequence[np.ndarray], rois: Mapping[str, Box] | None = None,
                 method: str = DEFAULT_METHOD, smooth_sigma: float | None = None,
                 stride: int | None = None, reference: str = DEFAULT_REFERENCE,
                 contrast: bool = False) -> np.ndarray:
    """How far every frame is from the reference frame(s), inside ``rois`` where given.

    ``frames``: aligned greyscale crops, shape (T, H, W) (colour (T, H, W, 3) BGR is
    converted), onset first. ``rois``: name -> (x0, y0, x1, y1) boxes in crop pixels
    (x1, y1 exclusive), e.g. ``alignment.rois(size)``; ``None`` uses the whole crop.
    ``smooth_sigma``: Gaussian temporal smoothing in frames (``None``: 6 % of the clip
    length, at least 1; 0 turns it off). ``stride``: measure every ``stride``-th frame
    and interpolate (``None``: enough to measure at most 24 frames; 1: every frame).
    ``reference``: ``"ends"`` (distance to the first plus to the last frame; for clips
    cut from onset to offset) or ``"onset"`` (distance to the first frame only).
    ``contrast``: subtract the median motion outside the ROIs (needs ``rois``).

    Returns a float array of length T. Before smoothing, the first value is 0 for
    ``"onset"``; for ``"ends"`` both end values are the distance between the two ends.
    """
    stack = _as_stack(frames)
    t = len(stack)
    _check_method(method)
    _check_reference(reference)
    if t == 1:
        return np.zeros(1)
    prep = _Prepared(stack, rois, method, reference, contrast)
    step = _stride(t, stride)
    idx = np.unique(np.r_[np.arange(0, t, step), t - 1])
    raw = prep.measure(idx)
    curve = np.interp(np.arange(t), idx, raw) if len(idx) < t else raw
    return _smooth(curve, smooth_sigma, t)


def spot_apex(frames: np.ndarray | Sequence[np.ndarray], rois: Mapping[str, Box] | None = None,
              method: str = DEFAULT_METHOD, smooth_sigma: float | None = None,
              stride: int | None = None, reference: str = DEFAULT_REFERENCE,
              contrast: bool = False) -> int:
    """Index into ``frames`` of the apex: the peak of :func:`motion_curve`.

    The curve is measured coarsely (every ``stride``-th frame), then every frame within a
    stride of the coarse peak is measured and the peak re-taken, so the index is exact to
    the frame. The reference frames themselves are never the apex: with ``"ends"`` the
    answer lies in 1..T-2, with ``"onset"`` in 1..T-1. A single frame is its own apex
    (index 0); with two frames the apex is the second (the only one that can differ from
    the onset); with three and ``"ends"``, the middle one.
    """
    stack = _as_stack(frames)
    t = len(stack)
    _check_method(method)
    _check_reference(reference)
    if t == 1:
        log.debug("one-frame clip: the apex is the onset")
        return 0
    if t == 2:
        return 1
    if t == 3 and reference == "ends":
        return 1
    prep = _Prepared(stack, rois, method, reference, contrast)
    step = _stride(t, stride)
    idx = np.unique(np.r_[np.arange(0, t, step), t - 1])
    raw = prep.measure(idx)
    if len(idx) < t:
        coarse = _smooth(np.interp(np.arange(t), idx, raw), smooth_sigma, t)
        peak = int(np.argmax(coarse))
        lo, hi = max(1, peak - step), min(t - 1, peak + step)
        near = np.setdiff1d(np.arange(lo, hi + 1), idx)
        if len(near):
            idx = np.r_[idx, near]
            raw = np.r_[raw, prep.measure(near)]
            order = np.argsort(idx)
            idx, raw = idx[order], raw[order]
    curve = _smooth(np.interp(np.arange(t), idx, raw), smooth_sigma, t)
    # the reference frames are never the apex of a clip that has other frames
    stop = t - 1 if reference == "ends" else t
    return int(np.argmax(curve[1:stop]) + 1)


# ---------------------------------------------------------------------------------------
# internals
# ---------------------------------------------------------------------------------------
class _Prepared:
    """Frames normalised once, with the ROI masks; ``measure(idx)`` gives raw motion at idx."""

    def __init__(self, stack: np.ndarray, rois: Mapping[str, Box] | None, method: str,
                 reference: str, contrast: bool) -> None:
        self.method = method
        t, h, w = stack.shape
        self.inside = _roi_mask(rois, h, w)
        self.outside = ~self.inside
        # the median outside the ROIs needs an outside worth the name (5 % of the crop)
        self.contrast = bool(contrast) and rois is not None and self.outside.sum() >= 0.05 * h * w
        self.frames = stack
        # light spatial smoothing (1 px at 128 px): sensor noise at high frame rates is per
        # pixel, while the motion of a micro-expression spreads over many pixels
        self.sigma = max(0.5, min(h, w) / 128.0)
        ref_idx = [0, t - 1] if reference == "ends" and t > 1 else [0]
        self.refs = {i: self._norm(i) for i in ref_idx}
        if method == "flow":
            self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            self.refs8 = {i: _to_u8(z) for i, z in self.refs.items()}

    def _norm(self, i: int) -> np.ndarray:
        """Frame i blurred and normalised to zero mean, unit spread over the crop."""
        f = cv2.GaussianBlur(np.asarray(self.frames[i], dtype=np.float32), (0, 0), self.sigma)
        mu, sd = float(f.mean()), float(f.std())
        return (f - mu) / (sd if sd > 1e-6 else 1.0)

    def measure(self, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(len(idx))
        for k, i in enumerate(idx):
            i = int(i)
            cur = self.refs.get(i)
            if cur is None:
                cur = self._norm(i)
            cur8 = _to_u8(cur) if self.method == "flow" else None
            for r, ref in self.refs.items():
                if r == i:
                    continue  # a reference against itself: no motion
                if self.method == "diff":
                    mag = np.abs(cur - ref)
                else:
                    flow = self.dis.calc(self.refs8[r], cur8, None)
                    flow -= np.median(flow.reshape(-1, 2), axis=0)
                    mag = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2)
                out[k] += self._score(mag)
        return out

    def _score(self, mag: np.ndarray) -> float:
        score = float(mag[self.inside].mean())
        if self.contrast:
            score -= float(np.median(mag[self.outside]))
        return score


def _as_stack(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(frames, np.ndarray):
        stack = frames
    else:
        frames = list(frames)
        if not frames:
            raise DataError("no frames to spot an apex in; expected at least the onset frame")
        shapes = {np.shape(f) for f in frames}
        if len(shapes) > 1:
            raise DataError("frames of a clip differ in shape; expected aligned crops of one size",
                            value=sorted(shapes))
        stack = np.stack(frames)
    if stack.ndim == 4 and stack.shape[-1] in (3, 4):
        stack = np.stack([cv2.cvtColor(np.ascontiguousarray(f[..., :3]), cv2.COLOR_BGR2GRAY)
                          if f.dtype == np.uint8 else f[..., :3].mean(-1) for f in stack])
    elif stack.ndim == 4 and stack.shape[-1] == 1:
        stack = stack[..., 0]
    if stack.ndim != 3:
        raise DataError("expected frames of shape (T, H, W) (aligned greyscale crops)", value=stack.shape)
    if len(stack) == 0:
        raise DataError("no frames to spot an apex in; expected at least the onset frame")
    if min(stack.shape[1:]) < 8:
        raise DataError("frames are too small to measure motion in", value=stack.shape,
                        expected="crops of at least 8x8 pixels")
    return stack


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown apex spotting method {method!r}; expected one of: {', '.join(METHODS)}")


def _check_reference(reference: str) -> None:
    if reference not in REFERENCES:
        raise ConfigError(f"unknown apex reference {reference!r}; expected one of: {', '.join(REFERENCES)} "
                          "('ends' for clips cut from onset to offset, 'onset' for clips without an offset)")


def _stride(t: int, stride: int | None) -> int:
    if stride is None:
        return max(1, math.ceil((t - 1) / (DEFAULT_MAX_SAMPLES - 1)))
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ConfigError(f"stride must be a positive integer, got {stride!r}")
    return int(stride)


def _smooth(curve: np.ndarray, sigma: float | None, t: int) -> np.ndarray:
    if sigma is None:
        sigma = max(1.0, DEFAULT_SMOOTH_FRACTION * t)
    if sigma < 0:
        raise ConfigError(f"smooth_sigma must be >= 0 frames, got {sigma!r}")
    if sigma == 0 or len(curve) < 3:
        return curve.astype(np.float64)
    return gaussian_filter1d(curve.astype(np.float64), sigma, mode="nearest")


def _roi_mask(rois: Mapping[str, Box] | None, h: int, w: int) -> np.ndarray:
    """Union of the ROI boxes as a boolean (h, w) mask (all True without ROIs)."""
    inside = np.zeros((h, w), dtype=bool)
    if rois is None:
        inside[:] = True
        return inside
    if not rois:
        raise DataError("empty ROI mapping; expected name -> (x0, y0, x1, y1) boxes, or None for the whole crop")
    for name, box in rois.items():
        try:
            x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        except (TypeError, ValueError):
            raise DataError(f"ROI {name!r} is not a box", value=box,
                            expected="(x0, y0, x1, y1) in crop pixels") from None
        x0, x1 = max(0, x0), min(w, x1)
        y0, y1 = max(0, y0), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            raise DataError(f"ROI {name!r} lies outside the {w}x{h} crop or is empty", value=tuple(box),
                            expected=f"(x0, y0, x1, y1) with 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h}")
        inside[y0:y1, x0:x1] = True
    return inside


def _to_u8(z: np.ndarray) -> np.ndarray:
    """A normalised (zero-mean, unit-spread) frame as uint8 for optical flow."""
    return np.clip(z * 40.0 + 128.0, 0, 255).astype(np.uint8)

"""A learned spotter: a small model over the motion spotter's per-frame scores, fitted on
training subjects only and saved as a JSON file.

:class:`LearnedSpotter` (registered as ``"learned"`` in :data:`mekit.analysis.spotting.SPOTTERS`)
streams like every spotter (``push``/``flush``). Inside it a :class:`~mekit.analysis.spotting.MotionSpotter`
measures motion (its :meth:`~mekit.analysis.spotting.MotionSpotter.record_scores`), and what is
learned is how those measures map to "this frame is inside an expression":

Features (per frame; :func:`frame_features`)
    From the frame's :class:`~mekit.analysis.spotting.FrameScore`: the largest, second-largest
    and mean smoothed region score ``S`` over the expression regions, the largest raw ``S``, the
    largest ``za``, ``zb`` and ``zg`` (difference from the earlier and the later reference, and
    between the references: a posture change shows in ``zg``), how far the eye regions lead the
    others (a blink's signature), and whether the score was measured at all. Then the temporal
    context of the largest score over centred windows of 0.04, 0.12, 0.3 and 0.6 s (maximum and
    mean) and, over the two longer ones, the maximum before and after the frame alone: inside an
    expression the score is high on both sides, at its edge on one. Scores are in noise units
    and span four decades, so every value enters as ``sign(x) log(1 + |x|)``. Windows are in
    seconds, so a spotter trained at one frame rate reads another; a frame's context ends where
    its run of consecutive frames does, so batches and streams give the same features.

Model
    Logistic regression (default) or a one-hidden-layer perceptron (``model="mlp"``, 16 ReLU
    units) from scikit-learn, on standardised features, giving each frame's probability of lying
    inside an expression (micro or macro). Every truth interval weighs the same in the fit, and
    expression and rest weigh half each (:meth:`TrainingSequence.weights`). Frames are
    subsampled to at most 50 a second for the fit (neighbouring frames at 200 fps carry the same
    information). The fitted weights are
    stored as plain lists: the saved file is JSON, never a pickle.

Intervals
    A run of frames with probability at or above ``release`` (gaps of up to ``merge_gap``
    bridged) whose peak reaches ``threshold`` is one interval; onset and offset are its first and
    last frame above ``release``, the apex its frame of largest motion score. The duration sets
    the kind, as the motion spotter does: ``micro`` from 1/25 s to 0.5 s, ``macro`` up to 4 s,
    longer dropped.

Fitting (:func:`fit_spotter`)
    ``release``, ``threshold`` and ``merge_gap`` maximise the pooled interval F1 (micro and macro
    counted together; a hit is IoU >= 0.5 with a truth of the same kind, MEGC) on the TRAINING
    sequences, scored with out-of-fold probabilities of an inner subject-grouped k-fold over the
    training subjects (in-sample probabilities would make the model look surer than it is on a
    new face and push the threshold up). The model is then refitted on all training sequences.
    Nothing else is given: a held-out subject's frames and truth never reach the fit
    (:func:`loso_spotters` makes that structural for leave-one-subject-out). The inner matching
    is greedy (each spotted interval to its best-IoU truth of its kind); with truths that do not
    overlap it equals the optimal matching of :mod:`mekit.analysis.spot_metrics` except in ties
    at exactly IoU 0.5.

Training sequences (:class:`TrainingSequence`) hold the motion spotter's per-frame scores of a
sequence, its truth and its group (subject): scores are computed once (:func:`score_sequence`)
and every fold reuses them. Sources: synthetic long videos (:func:`synthetic_training_sequences`,
face-tracked as ``mekit analyze`` does) and a clip corpus set between still stretches
(:mod:`mekit.analysis.semireal`). :func:`train_spotter` is what ``mekit spotter train`` calls.

Saved file (:func:`save_spotter`/:func:`load_spotter`): ``{"format": "mekit-spotter",
"format_version": 1, "name": "learned", "version": 1, "fps", "params", "model", "training"}``
with the training data's fingerprint, sources, subjects and fitted thresholds in ``training``.
``make_spotter(path, fps)`` loads one (``mekit analyze --spotter spotter.json``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mekit.analysis.spotting import Box, FrameScore, Interval, MotionSpotter
from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["CONTEXT_SECONDS", "FEATURE_NAMES", "FILE_FORMAT", "LearnedSpotter", "TrainingSequence",
           "fit_spotter", "frame_features", "load_spotter", "loso_spotters", "save_spotter", "score_sequence",
           "synthetic_training_sequences", "train_spotter", "TRAIN_SEED_BASE"]

FILE_FORMAT = "mekit-spotter"
FILE_VERSION = 1
#: Half-widths (seconds) of the context windows: about one frame at 25-30 fps, a short
#: micro-expression, a long one, a short macro-expression.
CONTEXT_SECONDS = (0.04, 0.12, 0.3, 0.6)
#: Synthetic training videos use seeds from here on: the benchmarks score seeds below 10 000.
TRAIN_SEED_BASE = 100_000

_BASE = ("z_max", "z_second", "z_mean", "s_raw_max", "za_max", "zb_max", "zg_max", "eye_lead", "measured")
_QUANTUM = float(2 ** 20)
_FIT_RATE = 50.0          # frames a second used to fit the model (subsampled above it)
_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)   # release and threshold candidates
_GAPS_S = (0.0, 0.05, 0.1, 0.2)                     # merge-gap candidates, seconds


def _names(n_ctx: int) -> list[str]:
    names = list(_BASE)
    for i in range(n_ctx):
        names += [f"ctx{i}_max", f"ctx{i}_mean"]
    names += ["ctx_long1_before", "ctx_long1_after", "ctx_long2_before", "ctx_long2_after"][: 2 * min(2, n_ctx)]
    return names


FEATURE_NAMES = tuple(_names(len(CONTEXT_SECONDS)))


def _slog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------
def _base_rows(score: np.ndarray, regions: np.ndarray, expr: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """Per-frame features without context, shape (n, len(_BASE)); NaN (not measured) reads as 0."""
    n = len(score)
    reg = np.nan_to_num(regions.astype(np.float64), nan=0.0)
    s = reg[:, 4][:, expr]
    top = np.sort(s, axis=1)
    z = np.nan_to_num(score.astype(np.float64), nan=0.0)
    second = top[:, -2] if s.shape[1] > 1 else top[:, -1]
    eye_r = eyes[expr]
    if eye_r.any() and (~eye_r).any():
        lead = s[:, eye_r].max(axis=1) - s[:, ~eye_r].max(axis=1)
    else:
        lead = np.zeros(n)
    total = np.zeros(n)
    for j in range(s.shape[1]):   # element by element: the same sum for one row as for many
        total += s[:, j]
    cols = [z, second, total / max(1, s.shape[1]), reg[:, 0][:, expr].max(axis=1), reg[:, 1][:, expr].max(axis=1),
            reg[:, 2][:, expr].max(axis=1), reg[:, 3][:, expr].max(axis=1), lead]
    out = np.empty((n, len(_BASE)))
    for i, c in enumerate(cols):
        out[:, i] = _slog(c)
    out[:, -1] = np.isfinite(score)
    # On a grid of 2^-20: the context windows' sums of these values are then exact in any order,
    # so a frame's features do not depend on how its neighbours were batched.
    return np.round(out * _QUANTUM) / _QUANTUM


def _context(col: np.ndarray, targets: np.ndarray, hs: Sequence[int]) -> np.ndarray:
    """Context of ``col`` (one run of consecutive frames) at positions ``targets``: per half-width
    ``h`` the maximum and mean over ``[t - h, t + h]`` inside the run, then for the two longest
    the maximum over ``[t - h, t - 1]`` and over ``[t + 1, t + h]`` (the frame's own value where
    the run has nothing on that side). Each window's values are reduced on their own, so the
    result for a frame depends only on the frames within ``max(hs)`` of it."""
    from numpy.lib.stride_tricks import sliding_window_view

    big = max(hs)
    pad = np.concatenate([np.full(big, np.nan), col, np.full(big, np.nan)])
    out = []
    own = col[targets]
    for j, h in enumerate(hs):
        rows = sliding_window_view(pad, 2 * h + 1)[targets + big - h]
        valid = ~np.isnan(rows)
        out.append(np.where(valid, rows, -np.inf).max(axis=1))
        out.append(np.where(valid, rows, 0.0).sum(axis=1) / valid.sum(axis=1))
    for h in list(hs)[-2:]:
        rows = sliding_window_view(pad, 2 * h + 1)[targets + big - h]
        for part in (rows[:, :h], rows[:, h + 1:]):
            m = np.where(np.isnan(part), -np.inf, part).max(axis=1)
            out.append(np.where(np.isfinite(m), m, own))
    return np.stack(out, axis=1)


def _half_widths(fps: float, context: Sequence[float]) -> list[int]:
    return [max(1, round(float(c) * fps)) for c in context]


def frame_features(index: np.ndarray, score: np.ndarray, regions: np.ndarray, fps: float,
                   region_names: Sequence[str], *, context: Sequence[float] = CONTEXT_SECONDS,
                   eye_regions: Sequence[str] = ("left_eye", "right_eye"),
                   reference_region: str = "nose") -> np.ndarray:
    """The feature matrix (n, len(FEATURE_NAMES)) of a sequence's frame scores (see the module
    notes): ``index`` the frames' indices (increasing), ``score`` and ``regions`` their
    :class:`~mekit.analysis.spotting.FrameScore` fields stacked."""
    expr, eyes = _masks(region_names, eye_regions, reference_region)
    base = _base_rows(np.asarray(score), np.asarray(regions), expr, eyes)
    hs = _half_widths(fps, context)
    out = np.empty((len(base), base.shape[1] + 2 * len(hs) + 2 * min(2, len(hs))))
    for lo, hi in _runs_of_consecutive(np.asarray(index)):
        out[lo:hi, :base.shape[1]] = base[lo:hi]
        out[lo:hi, base.shape[1]:] = _context(base[lo:hi, 0], np.arange(hi - lo), hs)
    return out


def _masks(names: Sequence[str], eye_regions: Sequence[str], reference: str) -> tuple[np.ndarray, np.ndarray]:
    expr = np.array([n != reference for n in names])
    return expr, np.array([n in eye_regions for n in names])


def _runs_of_consecutive(index: np.ndarray) -> list[tuple[int, int]]:
    if len(index) == 0:
        return []
    cuts = np.flatnonzero(np.diff(index) != 1) + 1
    edges = [0, *cuts.tolist(), len(index)]
    return list(zip(edges[:-1], edges[1:], strict=True))


# ---------------------------------------------------------------------------------------------
# the model: standardisation and dense layers, as plain lists
# ---------------------------------------------------------------------------------------------
def _dense(h: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``h @ w + b`` summed input by input in a fixed order, element by element: a matrix product
    (BLAS) may sum in another order for one row than for many, and a frame's probability must
    not depend on how many frames were decided with it (a stream against a batch)."""
    out = np.repeat(b[None], len(h), axis=0)
    for f in range(w.shape[0]):
        out += h[:, f:f + 1] * w[f]
    return out


@dataclass(frozen=True)
class _Model:
    kind: str
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]   # (W [in, out], b [out]); ReLU between, sigmoid last

    def proba(self, x: np.ndarray) -> np.ndarray:
        h = (x - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = _dense(h, w, b)
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        z = h[:, 0]
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "features": list(self.features), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "layers": [{"weights": w.tolist(), "bias": b.tolist()} for w, b in self.layers]}

    @classmethod
    def from_dict(cls, d: Any, where: str = "spotter model") -> _Model:
        def bad(what: str, value: Any = None) -> ConfigError:
            return ConfigError(f"{where}: {what}" + (f" (got {value!r})" if value is not None else ""))

        if not isinstance(d, Mapping):
            raise bad("expected a mapping with kind, features, mean, scale and layers", type(d).__name__)
        if d.get("kind") not in ("logistic", "mlp"):
            raise bad("kind must be 'logistic' or 'mlp'", d.get("kind"))
        feats = d.get("features")
        if list(feats or []) != list(FEATURE_NAMES):
            raise bad(f"features must be this version's {len(FEATURE_NAMES)} features {list(FEATURE_NAMES)}; the "
                      "file was written by another version of mekit (train it again)")
        try:
            mean, scale = (np.asarray(d[k], np.float64) for k in ("mean", "scale"))
            layers = tuple((np.asarray(layer["weights"], np.float64), np.asarray(layer["bias"], np.float64))
                           for layer in d["layers"])
        except (KeyError, TypeError, ValueError):
            raise bad("mean, scale and layers (weights, bias) must be lists of numbers") from None
        n = len(FEATURE_NAMES)
        if mean.shape != (n,) or scale.shape != (n,) or not (scale > 0).all():
            raise bad(f"mean and scale must be {n} numbers, scale positive")
        width = n
        for i, (w, b) in enumerate(layers):
            if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                raise bad(f"layer {i} has weights {list(w.shape)} and bias {list(b.shape)}; expected "
                          f"[{width}, k] and [k]")
            width = w.shape[1]
        if not layers or width != 1:
            raise bad("the last layer must give one output")
        if not all(np.isfinite(a).all() for a in (mean, scale, *[x for wb in layers for x in wb])):
            raise bad("parameters must be finite numbers")
        return cls(str(d["kind"]), tuple(feats), mean, scale, layers)


def _fit_model(x: np.ndarray, y: np.ndarray, kind: str, seed: int, weight: np.ndarray | None = None) -> _Model:
    if len(np.unique(y)) < 2:
        raise DataError("the training sequences need frames inside and outside expressions",
                        value=f"{int(y.sum())} of {len(y)} frames inside",
                        expected="at least one truth interval and some frames at rest")
    from threadpoolctl import threadpool_limits

    # One thread: these fits are small, and on a shared machine BLAS threads fighting over the
    # cores made a 3,000-frame logistic fit 10x slower.
    with threadpool_limits(limits=1):
        return _fit_model_1(x, y, kind, seed, np.ones(len(y)) if weight is None else weight)


def _fit_model_1(x: np.ndarray, y: np.ndarray, kind: str, seed: int, weight: np.ndarray) -> _Model:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    xs = (x - mean) / scale
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        # classes balanced on top of the per-interval weights: rest outnumbers expressions
        pos = weight[y == 1].sum()
        w = np.where(y == 1, weight * (len(y) / 2) / pos, weight * (len(y) / 2) / weight[y == 0].sum())
        clf = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200)
        clf.fit(xs, y, sample_weight=w)
        layers = ((clf.coef_.T.astype(np.float64), clf.intercept_.astype(np.float64)),)
    elif kind == "mlp":
        from sklearn.neural_network import MLPClassifier

        # (MLPClassifier takes no sample weights: frames are resampled by weight instead)
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(y), size=len(y), p=weight / weight.sum())
        clf = MLPClassifier(hidden_layer_sizes=(16,), alpha=1e-3, max_iter=300, random_state=seed)
        clf.fit(xs[pick], y[pick])
        layers = tuple((w.astype(np.float64), b.astype(np.float64)) for w, b in
                       zip(clf.coefs_, clf.intercepts_, strict=True))
    else:
        raise ConfigError(f"learned spotter model: expected 'logistic' or 'mlp', got {kind!r}")
    return _Model(kind, FEATURE_NAMES, mean, scale, layers)


# ---------------------------------------------------------------------------------------------
# intervals from probabilities
# ---------------------------------------------------------------------------------------------
def _kind(n_frames: int, fps: float, micro: tuple[float, float], macro: tuple[float, float]) -> str | None:
    dur = n_frames / fps
    if dur < micro[0] - 1e-9:
        return None
    if dur <= micro[1] + 1e-9:
        return "micro"
    if dur <= macro[1] + 1e-9:
        return "macro"
    return None


def _batch_runs(index: np.ndarray, p: np.ndarray, z: np.ndarray, release: float, gap: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of frames with ``p >= release`` whose neighbours above it are at most ``gap + 1``
    indices apart: (onset, apex, offset, peak probability) per run. The apex is the first frame
    of largest ``z`` among the run's frames above ``release``."""
    above = np.flatnonzero(p >= release)
    if len(above) == 0:
        e = np.empty(0, np.int64)
        return e, e, e, np.empty(0)
    idx = index[above]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(idx) > gap + 1) + 1])
    ends = np.concatenate([starts[1:], [len(above)]]) - 1
    peak = np.maximum.reduceat(p[above], starts)
    za = z[above]
    zmax = np.maximum.reduceat(za, starts)
    run_of = np.repeat(np.arange(len(starts)), ends - starts + 1)
    hit = np.flatnonzero(za == zmax[run_of])
    first_hit = hit[np.unique(run_of[hit], return_index=True)[1]]
    return idx[starts], idx[first_hit], idx[ends], peak


class _Runs:
    """The streaming form of :func:`_batch_runs` plus the peak and duration tests."""

    def __init__(self, fps: float, release: float, threshold: float, gap: int, micro: tuple[float, float],
                 macro: tuple[float, float]) -> None:
        self.fps, self.release, self.threshold, self.gap = fps, release, threshold, gap
        self.micro, self.macro = micro, macro
        self.max_frames = math.floor(macro[1] * fps + 1e-9)
        self.run: list[float] | None = None   # onset, last above, apex, z at apex, peak p

    def step(self, index: int, p: float, z: float) -> list[Interval]:
        out: list[Interval] = []
        r = self.run
        if r is not None and index - r[1] > self.gap + (1 if p >= self.release else 0):
            out += self.close()
            r = None
        if p >= self.release:
            if r is None:
                self.run = [index, index, index, z, p]
            else:
                r[1] = index
                if z > r[3]:
                    r[2], r[3] = index, z
                r[4] = max(r[4], p)
        return out

    def close(self) -> list[Interval]:
        r, self.run = self.run, None
        if r is None:
            return []
        iv = _interval(int(r[0]), int(r[2]), int(r[1]), float(r[4]), self.fps, self.threshold, self.micro, self.macro)
        return [] if iv is None else [iv]


def _interval(on: int, apex: int, off: int, peak: float, fps: float, threshold: float,
              micro: tuple[float, float], macro: tuple[float, float]) -> Interval | None:
    if peak < threshold:
        return None
    kind = _kind(off - on + 1, fps, micro, macro)
    if kind is None:
        return None
    return Interval(onset=on, apex=apex, offset=off, onset_s=on / fps, apex_s=apex / fps, offset_s=off / fps,
                    kind=kind, score=round(peak, 4), duration_s=(off - on + 1) / fps)


# ---------------------------------------------------------------------------------------------
# the spotter
# ---------------------------------------------------------------------------------------------
class LearnedSpotter:
    """Streaming spotter whose decision is a model fitted on training subjects (see the module
    notes). Made by :func:`fit_spotter` or loaded from a file (:func:`load_spotter`); it cannot be
    made without a fitted ``model``.

    Parameters: ``fps``; ``model`` (the fitted model's dict); ``motion`` (keyword arguments of the
    inner :class:`~mekit.analysis.spotting.MotionSpotter`, as in training); ``release``,
    ``threshold`` (probabilities) and ``merge_gap`` (seconds), fitted; ``micro`` and ``macro``
    (duration ranges, seconds); ``context`` (window half-widths, seconds); ``training`` (what it
    was fitted on: kept as it is in the saved file).
    """

    name: ClassVar[str] = "learned"
    VERSION: ClassVar[int] = 1

    def __init__(self, fps: float, *, model: Mapping[str, Any] | None = None,
                 motion: Mapping[str, Any] | None = None, release: float = 0.5, threshold: float = 0.5,
                 merge_gap: float = 0.1, micro: Sequence[float] = (1 / 25, 0.5),
                 macro: Sequence[float] = (0.5, 4.0), context: Sequence[float] = CONTEXT_SECONDS,
                 training: Mapping[str, Any] | None = None) -> None:
        if model is None:
            raise ConfigError("the 'learned' spotter needs a trained spotter file: give its path (e.g. "
                              "`mekit analyze VIDEO --spotter spotter.json`; train one with `mekit spotter train`)")
        self._inner = MotionSpotter(fps, **dict(motion or {}))
        self.fps = self._inner.fps
        self.motion = json.loads(json.dumps(dict(motion or {})))
        self._model = _Model.from_dict(model)
        self.release, self.threshold, self.merge_gap = float(release), float(threshold), float(merge_gap)
        if not 0 < self.release <= self.threshold < 1:
            raise ConfigError(f"learned spotter: expected 0 < release <= threshold < 1 (probabilities); got "
                              f"release={release!r}, threshold={threshold!r}")
        if not (self.merge_gap >= 0 and math.isfinite(self.merge_gap)):
            raise ConfigError(f"learned spotter merge_gap: expected seconds >= 0, got {merge_gap!r}")
        from mekit.analysis.spotting import _check_range

        self.micro, self.macro = _check_range("micro", micro), _check_range("macro", macro)
        self.context = tuple(float(c) for c in context)
        if len(self.context) != len(CONTEXT_SECONDS) or not all(c > 0 for c in self.context):
            raise ConfigError(f"learned spotter context: expected {len(CONTEXT_SECONDS)} positive half-widths "
                              f"(seconds), got {context!r}")
        self.training = json.loads(json.dumps(dict(training or {})))
        self._hs = _half_widths(self.fps, self.context)
        self._h = max(self._hs)
        self._gap = round(self.merge_gap * self.fps)
        self._expr, self._eyes = _masks(self._inner.region_names(), self._inner.eye_regions,
                                        self._inner.reference_region)
        self._inner.record_scores()
        self._score_log: list[FrameScore] | None = None
        self._reset_stream()

    def _reset_stream(self) -> None:
        self._rows: deque[np.ndarray] = deque(maxlen=2 * self._h + 1)
        self._meta: deque[tuple[int, float]] = deque(maxlen=2 * self._h + 1)   # index, raw score
        self._pending = 0
        self._runs = _Runs(self.fps, self.release, self.threshold, self._gap, self.micro, self.macro)

    # -- streaming ----------------------------------------------------------------------------
    @property
    def lag(self) -> int:
        """Frames between pushing a frame and its probability being known."""
        return self._inner.lag + self._h

    @property
    def horizon(self) -> int:
        """How many frames back from the frame being pushed a returned interval's onset can lie."""
        return self._inner.lag + self._h + self._runs.max_frames + self._gap + 2

    @property
    def warmup(self) -> int:
        """Frames a fresh spotter must be fed before a frame to decide from it on as one fed from
        the start: the motion spotter's own, the context and the longest interval."""
        return self._inner.warmup + self._h + self._runs.max_frames + self._gap \
            if hasattr(self._inner, "warmup") else self.horizon + self._inner._nwin

    def record_scores(self, on: bool = True) -> None:
        """Keep the motion spotter's frame scores for :meth:`take_scores` (as
        :meth:`mekit.analysis.spotting.MotionSpotter.record_scores`)."""
        self._score_log = [] if on else None

    def take_scores(self) -> list[FrameScore]:
        """The motion scores of the frames decided since the last call, in order."""
        if self._score_log is None:
            raise ConfigError("spotter: call record_scores() before take_scores()")
        out, self._score_log = self._score_log, []
        return out

    def push(self, index: int, crop: np.ndarray | None, rois: Mapping[str, Box] | None = None) -> list[Interval]:
        """Add frame ``index``; returns the intervals that closed with it."""
        self._inner.push(index, crop, rois)
        return self._consume(self._inner.take_scores())

    def flush(self) -> list[Interval]:
        """Close everything at the end of the stream; the spotter can then take a new one."""
        self._inner.flush()
        out = self._consume(self._inner.take_scores())
        out += self._end_segment()
        out += self._runs.close()
        self._reset_stream()
        return out

    def _consume(self, scores: list[FrameScore]) -> list[Interval]:
        out: list[Interval] = []
        if self._score_log is not None:
            self._score_log.extend(scores)
        for fs in scores:
            if self._meta and fs.index != self._meta[-1][0] + 1:
                out += self._end_segment()
            row = _base_rows(np.array([fs.score]), fs.regions[None], self._expr, self._eyes)[0]
            self._rows.append(row)
            self._meta.append((int(fs.index), float(fs.score)))
            self._pending += 1
            if self._pending > self._h:
                out += self._decide(len(self._rows) - 1 - self._h, 1)
        return out

    def _end_segment(self) -> list[Interval]:
        out = self._decide(len(self._rows) - self._pending, self._pending) if self._pending else []
        self._rows.clear()
        self._meta.clear()
        self._pending = 0
        return out

    def _decide(self, first: int, n: int) -> list[Interval]:
        block = np.array(self._rows)
        targets = np.arange(first, first + n)
        x = np.concatenate([block[targets], _context(block[:, 0], targets, self._hs)], axis=1)
        p = self._model.proba(x)
        self._pending -= n
        out: list[Interval] = []
        for t, pt in zip(targets, p, strict=True):
            idx, z = self._meta[t]
            out += self._runs.step(idx, float(pt), z if z == z else -math.inf)
        return out

    # -- batch, from recorded scores ----------------------------------------------------------
    def probabilities(self, index: np.ndarray, score: np.ndarray, regions: np.ndarray) -> np.ndarray:
        """Each frame's probability of lying inside an expression, from its recorded scores."""
        x = frame_features(index, score, regions, self.fps, self._inner.region_names(), context=self.context,
                           eye_regions=self._inner.eye_regions, reference_region=self._inner.reference_region)
        return self._model.proba(x)

    def spot_scores(self, index: np.ndarray, score: np.ndarray, regions: np.ndarray) -> list[Interval]:
        """The intervals a stream with these recorded scores gives (the same as pushing its
        frames: the scores are what the inner motion spotter measures)."""
        index = np.asarray(index, np.int64)
        p = self.probabilities(index, score, regions)
        z = np.nan_to_num(np.asarray(score, np.float64), nan=-np.inf)
        on, ap, off, peak = _batch_runs(index, p, z, self.release, self._gap)
        out = []
        for a, b, c, d in zip(on, ap, off, peak, strict=True):
            iv = _interval(int(a), int(b), int(c), float(d), self.fps, self.threshold, self.micro, self.macro)
            if iv is not None:
                out.append(iv)
        return out

    # -- saving -------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {"motion": self.motion, "release": self.release, "threshold": self.threshold,
                "merge_gap": self.merge_gap, "micro": list(self.micro), "macro": list(self.macro),
                "context": list(self.context)}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.VERSION, "fps": self.fps, "params": self.params(),
                "model": self._model.to_dict(), "training": self.training}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], fps: float | None = None) -> LearnedSpotter:
        if not isinstance(d, Mapping) or d.get("name") != cls.name:
            raise ConfigError(f"not a saved {cls.name!r} spotter: {d.get('name') if isinstance(d, Mapping) else d!r}")
        if d.get("version") != cls.VERSION:
            raise ConfigError(f"saved learned spotter version {d.get('version')!r}; this mekit reads version "
                              f"{cls.VERSION} (train it again)")
        params = d.get("params")
        if not isinstance(params, Mapping):
            raise ConfigError("saved learned spotter: 'params' must be a mapping")
        known = {"motion", "release", "threshold", "merge_gap", "micro", "macro", "context"}
        extra = set(params) - known
        if extra:
            raise ConfigError(f"saved learned spotter: unknown params {sorted(extra)}; expected {sorted(known)}")
        if "model" not in d:
            raise ConfigError("saved learned spotter: no 'model'")
        try:
            return cls(d["fps"] if fps is None else fps, model=d["model"], training=d.get("training"), **params)
        except TypeError as e:   # a motion parameter the motion spotter does not take
            raise ConfigError(f"saved learned spotter: {e}") from None


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def save_spotter(spotter: Any, path: str | Path) -> Path:
    """Write any spotter's ``to_dict`` as a spotter file (JSON)."""
    path = Path(path)
    doc = {"format": FILE_FORMAT, "format_version": FILE_VERSION, **spotter.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, allow_nan=False))
    tmp.replace(path)
    return path


def load_spotter(path: str | Path, fps: float | None = None, **params: Any) -> Any:
    """The spotter saved in ``path`` (:func:`save_spotter`), for a stream at ``fps`` (default:
    the rate it was saved with). Extra ``params`` are refused: a saved spotter is used as fitted."""
    from mekit.analysis.spotting import SPOTTERS

    path = Path(path)
    if params:
        raise ConfigError(f"a saved spotter ({path}) takes no parameters; got {sorted(params)}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(f"cannot read the spotter file ({e.strerror or e})", path=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"not a spotter file: not JSON ({e})", path=path,
                        expected="a file written by `mekit spotter train`") from None
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise DataError("not a spotter file", path=path, value=doc.get("format") if isinstance(doc, dict) else None,
                        expected=f"JSON with format {FILE_FORMAT!r} (written by `mekit spotter train`)")
    if doc.get("format_version") != FILE_VERSION:
        raise DataError("spotter file of another format version", path=path, value=doc.get("format_version"),
                        expected=f"format_version {FILE_VERSION} (train it again with this mekit)")
    name = doc.get("name")
    if name not in SPOTTERS:
        raise DataError("spotter file names an unknown spotter", path=path, value=name,
                        expected=f"one of {SPOTTERS.names()}")
    from mekit.registry import resolve

    cls = resolve(SPOTTERS.get(name))
    trained = doc.get("fps")
    if (fps is not None and isinstance(trained, (int, float))
            and abs(float(fps) - float(trained)) > 0.01 * float(trained)):
        # windows are in seconds, so it runs; but a model fitted at one rate has seen other noise
        # levels and motion per frame than another rate gives, so say so
        log.warning("spotter %s was trained at %g fps and runs on a %g fps stream; its thresholds were fitted "
                    "at the training rate", path, float(trained), float(fps))
    try:
        if fps is None:
            return cls.from_dict(doc)
        return cls.from_dict(doc, fps=fps) if name == LearnedSpotter.name else cls.from_dict({**doc, "fps": fps})
    except ConfigError as e:
        raise DataError(f"invalid spotter file: {e}", path=path) from None


# ---------------------------------------------------------------------------------------------
# training data
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainingSequence:
    """One training sequence as the motion spotter measured it: the recorded frame scores
    (``index`` increasing, ``score`` (n,), ``regions`` (n, 5, R)), its truth as
    ``(onset, offset, kind)`` triples (frame indices, both included; kinds ``micro``/``macro``),
    its ``group`` (the subject: folds never split one), and the motion parameters and region
    names the scores were measured with."""

    name: str
    group: str
    fps: float
    index: np.ndarray
    score: np.ndarray
    regions: np.ndarray
    truth: tuple[tuple[int, int, str], ...]
    motion: dict[str, Any] = field(default_factory=dict)
    region_names: tuple[str, ...] = ()
    _cache: dict[Any, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def features(self, context: Sequence[float] = CONTEXT_SECONDS) -> np.ndarray:
        key = tuple(context)
        if key not in self._cache:
            sp = MotionSpotter(self.fps, **self.motion)
            self._cache[key] = frame_features(self.index, self.score, self.regions, self.fps, sp.region_names(),
                                              context=context, eye_regions=sp.eye_regions,
                                              reference_region=sp.reference_region)
        return self._cache[key]

    def labels(self) -> np.ndarray:
        y = np.zeros(len(self.index), np.int64)
        for on, off, _ in self.truth:
            y[(self.index >= on) & (self.index <= off)] = 1
        return y

    def weights(self) -> np.ndarray:
        """Per-frame weights of the fit: every truth interval weighs the same whatever its length
        (it is one hit or miss in the F1 however many frames it has; weighting frames alike let
        2-4 s macro-expressions outweigh 0.3 s micro-expressions tenfold, and on synthetic videos
        the fitted spotter then found no micro-expression at all). Frames at rest weigh 1."""
        w = np.ones(len(self.index))
        lengths = [off - on + 1 for on, off, _ in self.truth]
        mean = float(np.mean(lengths)) if lengths else 1.0
        for (on, off, _), n in zip(self.truth, lengths, strict=True):
            w[(self.index >= on) & (self.index <= off)] = mean / n
        return w

    def digest(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps([self.name, self.group, self.fps, list(self.truth), self.motion],
                            sort_keys=True, default=str).encode())
        for a in (self.index.astype(np.int64), np.ascontiguousarray(self.score, np.float32),
                  np.ascontiguousarray(self.regions, np.float32)):
            h.update(a.tobytes())
        return h.hexdigest()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What a cache stores (``np.savez``); :meth:`from_arrays` reads it back."""
        meta = json.dumps({"name": self.name, "group": self.group, "fps": self.fps, "truth": list(self.truth),
                           "motion": self.motion, "region_names": list(self.region_names)})
        return {"index": self.index, "score": self.score, "regions": self.regions, "meta": np.array(meta)}

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> TrainingSequence:
        m = json.loads(str(a["meta"]))
        return cls(m["name"], m["group"], float(m["fps"]), np.asarray(a["index"]), np.asarray(a["score"]),
                   np.asarray(a["regions"]), tuple((int(x), int(y), str(k)) for x, y, k in m["truth"]),
                   dict(m["motion"]), tuple(m["region_names"]))


def score_sequence(frames: Iterable[np.ndarray | None | tuple[np.ndarray | None, Mapping[str, Box] | None]],
                   fps: float, *, motion: Mapping[str, Any] | None = None, name: str = "sequence",
                   group: str = "", truth: Iterable[tuple[int, int, str]] = (),
                   intervals: list[Interval] | None = None) -> TrainingSequence:
    """Run the motion spotter over a stream (frame ``i`` has index ``i``; an item is a crop,
    ``None`` for no face, or ``(crop, rois)``) and keep its frame scores as a
    :class:`TrainingSequence`. The motion spotter's own intervals are appended to ``intervals``
    when a list is given (so one pass also scores the ``motion`` spotter)."""
    sp = MotionSpotter(fps, **dict(motion or {}))
    sp.record_scores()
    got: list[FrameScore] = []
    found: list[Interval] = []
    for i, item in enumerate(frames):
        crop, rois = item if isinstance(item, tuple) else (item, None)
        found += sp.push(i, crop, rois)
        got += sp.take_scores()
    found += sp.flush()
    got += sp.take_scores()
    if intervals is not None:
        intervals.extend(found)
    r = len(sp.region_names())
    return TrainingSequence(
        name, group or name, sp.fps, np.array([s.index for s in got], np.int64),
        np.array([s.score for s in got], np.float32),
        np.stack([s.regions for s in got]).astype(np.float32) if got else np.zeros((0, 5, r), np.float32),
        tuple((int(a), int(b), str(k)) for a, b, k in truth), json.loads(json.dumps(dict(motion or {}))),
        tuple(sp.region_names()))


def synthetic_training_sequences(seeds: Iterable[int], *, seconds: float = 60.0, fps: float = 30.0,
                                 motion: Mapping[str, Any] | None = None, detector: str = "auto",
                                 crop_size: int = 128, motion_intervals: dict[str, list[Interval]] | None = None
                                 ) -> Iterator[TrainingSequence]:
    """Synthetic long videos (:mod:`mekit.data.synthetic_long`, one identity per seed) face-tracked
    as ``mekit analyze`` does and scored by the motion spotter; each seed is its own group."""
    from mekit import events
    from mekit.analysis.track import FaceTracker
    from mekit.data.synthetic_long import iter_long_video_frames, plan_long_video

    seeds = list(seeds)
    with events.Stage("score synthetic videos", len(seeds)) as stage:
        for seed in seeds:
            truth = plan_long_video(seconds=seconds, fps=fps, seed=int(seed), video=f"synthetic_{seed}")

            def crops(seed: int = int(seed)) -> Iterator[tuple[np.ndarray | None, Any]]:
                with FaceTracker(detector=detector, size=crop_size) as tracker:
                    for i, frame in enumerate(iter_long_video_frames(seconds=seconds, fps=fps, seed=seed)):
                        st = tracker.update(frame, i)
                        yield (st.crop(crop_size), st.rois(crop_size)) if st.face else (None, None)

            found: list[Interval] = []
            seq = score_sequence(crops(), fps, motion=motion, name=truth.video, group=truth.video,
                                 truth=[(e.onset, e.offset, e.kind) for e in truth.events], intervals=found)
            if motion_intervals is not None:
                motion_intervals[seq.name] = found
            stage.advance(1)
            yield seq


def semireal_training_sequences(table: Any, *, motion: Mapping[str, Any] | None = None, seed: int = 0,
                                **options: Any) -> Iterator[TrainingSequence]:
    """A clip corpus's subjects as semi-real sequences (:func:`mekit.analysis.semireal.semireal_sequences`),
    scored by the motion spotter; each subject is its own group."""
    from mekit import events
    from mekit.analysis.semireal import semireal_sequences

    seqs = semireal_sequences(table, seed=seed, **options)
    with events.Stage("score semi-real sequences", len(seqs)) as stage:
        for s in seqs:
            yield score_sequence(s.crops(), s.fps, motion=motion, name=s.name, group=s.group,
                                 truth=[(t.onset, t.offset, t.kind) for t in s.truth])
            stage.advance(1)


# ---------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------
def _check_sequences(sequences: Sequence[TrainingSequence]) -> tuple[float, dict[str, Any]]:
    if not sequences:
        raise DataError("no training sequences", expected="at least one sequence with truth intervals")
    fps = {s.fps for s in sequences}
    motion = {json.dumps(s.motion, sort_keys=True) for s in sequences}
    if len(fps) != 1:
        raise DataError("training sequences at different frame rates", value=sorted(fps),
                        expected="one frame rate (windows and gaps are fitted in its frames)")
    if len(motion) != 1:
        raise DataError("training sequences scored with different motion parameters", value=sorted(motion),
                        expected="every sequence scored with the same motion spotter")
    return fps.pop(), json.loads(motion.pop())


def _stride(fps: float) -> int:
    return max(1, round(fps / _FIT_RATE))


def _fit_on(sequences: Sequence[TrainingSequence], kind: str, seed: int, context: Sequence[float]) -> _Model:
    step = _stride(sequences[0].fps)
    x = np.concatenate([s.features(context)[::step] for s in sequences])
    y = np.concatenate([s.labels()[::step] for s in sequences])
    w = np.concatenate([s.weights()[::step] for s in sequences])
    return _fit_model(x, y, kind, seed, w)


def _counts_by_threshold(sequences: Sequence[TrainingSequence], probs: Sequence[np.ndarray], release: float,
                         gap: int, thresholds: np.ndarray, micro: tuple[float, float],
                         macro: tuple[float, float]) -> np.ndarray:
    """(tp, fp, fn) pooled over the sequences for each threshold, runs at ``release``/``gap``.
    Each run is credited to its best-IoU truth of its kind (IoU >= 0.5); a truth counts once."""
    tp = np.zeros(len(thresholds), np.int64)
    fp = np.zeros(len(thresholds), np.int64)
    n_truth = 0
    for s, p in zip(sequences, probs, strict=True):
        n_truth += len(s.truth)
        on, _, off, peak = _batch_runs(s.index, p, np.zeros(len(p)), release, gap)
        if len(on) == 0:
            continue
        n = off - on + 1
        kinds = [_kind(int(k), s.fps, micro, macro) for k in n]
        keep = np.array([k is not None for k in kinds])
        if not keep.any():
            continue
        on, off, peak = on[keep], off[keep], peak[keep]
        kinds = [k for k in kinds if k is not None]
        best = np.full(len(on), -1)
        if s.truth:
            t_on = np.array([t[0] for t in s.truth])
            t_off = np.array([t[1] for t in s.truth])
            t_kind = np.array([t[2] for t in s.truth])
            inter = np.minimum(off[:, None], t_off[None]) - np.maximum(on[:, None], t_on[None]) + 1
            inter = np.maximum(inter, 0)
            union = (off - on + 1)[:, None] + (t_off - t_on + 1)[None] - inter
            iou = np.where(np.array(kinds)[:, None] == t_kind[None], inter / union, 0.0)
            ok = iou >= 0.5 - 1e-12
            best = np.where(ok.any(axis=1), np.argmax(np.where(ok, iou, -1), axis=1), -1)
        for j, t in enumerate(thresholds):
            kept = peak >= t
            matched = np.unique(best[kept & (best >= 0)])
            tp[j] += len(matched)
            fp[j] += int(kept.sum()) - len(matched)
    fn = n_truth - tp
    return np.stack([tp, fp, fn], axis=1)


def _choose_thresholds(sequences: Sequence[TrainingSequence], probs: Sequence[np.ndarray],
                       micro: tuple[float, float], macro: tuple[float, float]) -> dict[str, Any]:
    """Release, threshold and merge gap of the largest pooled F1 on these sequences (ties: the
    higher threshold, then the higher release, then the shorter gap)."""
    fps = sequences[0].fps
    best: tuple[Any, ...] | None = None
    for gap_s in _GAPS_S:
        gap = round(gap_s * fps)
        for release in _GRID:
            thresholds = _GRID[_GRID >= release]
            c = _counts_by_threshold(sequences, probs, float(release), gap, thresholds, micro, macro)
            for (tp, fp, fn), t in zip(c, thresholds, strict=True):
                f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
                key = (round(f1, 12), float(t), float(release), -gap_s)
                if best is None or key > best[0]:
                    best = (key, {"release": float(release), "threshold": float(t), "merge_gap": float(gap_s),
                                  "f1": f1, "tp": int(tp), "fp": int(fp), "fn": int(fn)})
    assert best is not None
    return best[1]


def fit_spotter(sequences: Sequence[TrainingSequence], fps: float | None = None, *, model: str = "logistic",
                inner_folds: int = 4, seed: int = 0, micro: Sequence[float] = (1 / 25, 0.5),
                macro: Sequence[float] = (0.5, 4.0), context: Sequence[float] = CONTEXT_SECONDS,
                source: str = "") -> LearnedSpotter:
    """A :class:`LearnedSpotter` fitted on ``sequences`` alone (see the module notes): the model on
    all their frames, ``release``/``threshold``/``merge_gap`` on out-of-fold probabilities of an
    inner k-fold grouped by ``TrainingSequence.group`` (in-sample when there is one group).
    ``fps`` is the sequences' (given, it must agree)."""
    from mekit.analysis.spotting import _check_range

    seqs = list(sequences)
    seq_fps, motion = _check_sequences(seqs)
    if fps is not None and not math.isclose(float(fps), seq_fps):
        raise DataError("fit_spotter fps differs from the sequences'", value=(fps, seq_fps))
    micro_r, macro_r = _check_range("micro", micro), _check_range("macro", macro)
    if not any(s.truth for s in seqs):
        raise DataError("the training sequences have no truth intervals", expected="at least one expression")
    groups = sorted({s.group for s in seqs})
    k = min(int(inner_folds), len(groups))
    probs: list[np.ndarray] = [np.empty(0)] * len(seqs)
    if k >= 2:
        # whole groups to folds, in a seeded order, balanced by number of frames
        rng = np.random.default_rng(seed)
        order = [groups[i] for i in rng.permutation(len(groups))]
        size = {g: sum(len(s.index) for s in seqs if s.group == g) for g in groups}
        fold_of: dict[str, int] = {}
        load = [0] * k
        for g in sorted(order, key=lambda g: -size[g]):
            f = int(np.argmin(load))
            fold_of[g] = f
            load[f] += size[g]
        for f in range(k):
            train = [s for s in seqs if fold_of[s.group] != f]
            held = [i for i, s in enumerate(seqs) if fold_of[s.group] == f]
            if not train or not any(s.truth for s in train):
                continue
            m = _fit_on(train, model, seed, context)
            for i in held:
                probs[i] = m.proba(seqs[i].features(context))
        missing = [i for i, p in enumerate(probs) if len(p) != len(seqs[i].index)]
        if missing:   # a fold whose training part had no truth: fall back to in-sample for those
            m = _fit_on(seqs, model, seed, context)
            for i in missing:
                probs[i] = m.proba(seqs[i].features(context))
    final = _fit_on(seqs, model, seed, context)
    if k < 2:
        log.info("learned spotter: one training group, thresholds fitted on in-sample probabilities")
        probs = [final.proba(s.features(context)) for s in seqs]
    chosen = _choose_thresholds(seqs, probs, micro_r, macro_r)
    log.info("learned spotter: release %.2f, threshold %.2f, merge gap %.2f s (training F1 %.3f, tp/fp/fn %d/%d/%d)",
             chosen["release"], chosen["threshold"], chosen["merge_gap"], chosen["f1"], chosen["tp"], chosen["fp"],
             chosen["fn"])
    fp_ = hashlib.blake2b(digest_size=16)
    for s in sorted(seqs, key=lambda s: s.name):
        fp_.update(s.digest().encode())
    training = {"fingerprint": fp_.hexdigest(), "source": source, "fps": seq_fps, "sequences": len(seqs),
                "frames": int(sum(len(s.index) for s in seqs)), "groups": groups,
                "truth": {kd: sum(1 for s in seqs for t in s.truth if t[2] == kd) for kd in ("micro", "macro")},
                "inner_folds": k if k >= 2 else 0, "model": model, "seed": seed,
                "selection": {"criterion": "pooled interval F1 (IoU >= 0.5), out-of-fold" if k >= 2 else
                              "pooled interval F1 (IoU >= 0.5), in-sample", **chosen}}
    return LearnedSpotter(seq_fps, model=final.to_dict(), motion=motion, release=chosen["release"],
                          threshold=chosen["threshold"], merge_gap=chosen["merge_gap"], micro=micro_r, macro=macro_r,
                          context=context, training=training)


def loso_spotters(sequences: Sequence[TrainingSequence], **fit: Any) -> Iterator[tuple[str, LearnedSpotter]]:
    """Leave one group out: for every group, ``(group, spotter fitted on the other groups only)``.
    The held-out group's sequences are not passed to the fit at all."""
    groups = sorted({s.group for s in sequences})
    for g in groups:
        yield g, fit_spotter([s for s in sequences if s.group != g], **fit)


# ---------------------------------------------------------------------------------------------
# what `mekit spotter train` calls
# ---------------------------------------------------------------------------------------------
def train_spotter(out: str | Path, *, synthetic: int = 0, seconds: float = 60.0, fps: float | None = None,
                  corpus: str | None = None, root: str | Path | None = None, model: str = "logistic",
                  span: float | None = None, seed: int = 0, detector: str = "auto") -> tuple[Path, LearnedSpotter]:
    """Train a learned spotter and save it to ``out``. Sources: ``synthetic`` long videos of
    ``seconds`` each at ``fps`` (default 30), seeds from :data:`TRAIN_SEED_BASE` + ``seed`` * 1000
    (never a benchmark's), and/or the clip corpus ``corpus`` (a registered loader) under ``root``
    set into semi-real sequences at its own frame rate. All sources must share one frame rate.
    ``span`` is the inner motion spotter's reference lag (seconds; default its own)."""
    seqs: list[TrainingSequence] = []
    motion = {} if span is None else {"span": float(span)}
    sources = []
    table = None
    if corpus is not None:
        from mekit.data import get_loader

        if root is None:
            raise ConfigError(f"training on the {corpus!r} corpus needs its folder: give --root PATH")
        table = get_loader(corpus)(Path(root))
    if synthetic < 0:
        raise ConfigError(f"synthetic: expected a number of videos >= 0, got {synthetic!r}")
    if table is not None and fps is None and synthetic:
        rates = sorted({float(v) for v in table.df["fps"].dropna()})
        fps = rates[0] if len(rates) == 1 else None
    if synthetic:
        base = TRAIN_SEED_BASE + int(seed) * 1000
        seqs += list(synthetic_training_sequences(range(base, base + int(synthetic)), seconds=seconds,
                                                  fps=float(fps or 30.0), motion=motion, detector=detector))
        sources.append(f"synthetic long videos, seeds {base}-{base + int(synthetic) - 1}, {seconds:g} s each")
    if table is not None:
        seqs += list(semireal_training_sequences(table, motion=motion, seed=seed))
        sources.append(f"{corpus} clips set between still stretches ({root})")
    if not seqs:
        raise ConfigError("nothing to train on: give --synthetic N and/or --corpus NAME --root PATH")
    sp = fit_spotter(seqs, model=model, seed=seed, source="; ".join(sources))
    return save_spotter(sp, out), sp

"""Per-frame intensity regressors and the per-frame inputs they read.

What a model sees (the one rule that keeps intensity evaluation honest)
----------------------------------------------------------------------
A timing target (:func:`mekit.intensity.targets.timing_curve`) is a function of the annotated
onset, apex and offset alone, so a model given a clip's apex or offset could reproduce it
without looking at a single pixel. Inputs are therefore built from an *input table*
(:func:`input_table`) in which every clip's apex is blanked and its offset is replaced by the
last frame that exists on disk (the folder's last frame, or the video's last frame). Only the
onset is kept: the flow models measure motion *relative to the onset frame*. Annotations are
used afterwards, to score the predictions, and never reach a model.

Caveat, stated plainly: the frame folders of CASME II (and of the synthetic corpus) hold the
frames from the onset to the offset and nothing more, so "the last frame on disk" *is* the
annotated offset there. A model that knows where a frame sits within its folder (a sequence
model resampling the clip, or :data:`position_prior` by design) therefore still benefits from
the offset annotation indirectly. :data:`position_prior`, a curve learned from the relative
position in the clip alone, is reported next to every run so this share of the score is
visible. No CASME II folder continues past its offset, so evaluation on frames after the
offset is not possible with that corpus.

Per-frame inputs (built by :func:`build_clip_inputs`, cached per clip)
--------------------------------------------------------------------
Every frame from the onset to the end of the clip, aligned with one face alignment per clip
(the preprocessing pipeline, ``sampling: {method: all}``), and from them:

- ``hoof``: for each frame ``t``, optical flow onset -> ``t`` (global translation removed by
  subtracting the median flow, since head drift is not expression), its HOOF descriptor with
  mean strain per cell (:func:`mekit.features.flow_features.hoof_descriptor`) and the total
  motion, divided by the clip's largest total motion over its frames. The division makes the
  features relative to the clip's own strongest frame, the same reference the 0-1 targets use
  (a faint and a strong expression both peak at 1); it reads only frames, never annotations;
- ``hoof_end`` (feature group ``end_motion``): the same for the flow ``t`` -> the clip's last
  frame on disk, which falls as the face returns to rest; with ``position`` (the frame's
  relative position in the clip) it is opt-in (``intensity.features``), because both read the
  clip's extent on disk and so, on CASME II, the offset (the caveat above);
- ``stack``: the onset -> ``t`` u/v/strain stack at ``stack_size`` for flow CNNs (ststnet,
  off_apexnet, resnet18_flow, ...), divided by the clip's largest flow magnitude (the 99th
  percentile per frame, its maximum over frames) for the same reason; min-max scaling per
  frame (the classification default) would blow the onset's noise up to full scale;
- ``images``: the RGB frames at ``image_size`` for pair (onset, frame ``t``) and sequence
  (cnn_lstm) models.

Regressors
----------
Classical (:data:`REGRESSORS`): ``ridge``, ``svr``, ``lightgbm`` on the feature groups of
``intensity.features`` (default ``motion`` alone: pixels and the onset frame), and
``position_prior`` on the relative position only; hyper-parameters by inner subject-grouped CV on
the training subjects. Neural: any registered model whose input kind is ``flow``,
``dual_flow`` (frame-pair flow: one example per frame, its flow from the onset), ``pair``
(onset and frame ``t`` crops) or ``sequence`` (cnn_lstm: a per-frame intensity over a sequence
of ``seq_len`` frames spanning the clip), trained by :class:`IntensityNet` with an MSE, MAE or
Huber loss, optionally joint with a classification loss (multi-task).

Still images (one rating per image): :class:`StillRegressorNet`, a registered 2-D CNN
(``compact_cnn`` by default) with a single regression output, trained on aligned face crops
through the same epoch loop (:mod:`mekit.engine.loop`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mekit.config import Section
from mekit.engine.loop import checkpoint_file, selection_record
from mekit.errors import ConfigError, DataError
from mekit.registry import Registry

log = logging.getLogger(__name__)

#: Bump when the per-frame products change, so stale cache entries are not reused.
FRAMES_VERSION = 1

#: Neural input kinds the per-frame regression supports, and what one example is.
NEURAL_KINDS = {"flow": "frame", "dual_flow": "frame", "pair": "frame", "sequence": "clip"}

LOSSES = ("mse", "mae", "huber")

#: Per-frame feature groups of the classical regressors (see IntensitySettings.features).
FRAME_FEATURES = ("motion", "end_motion", "position")


# -- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntensitySettings(Section):
    """The ``intensity:`` section of an experiment config (task ``intensity``): typed, frozen and
    validated when the config is built (:data:`mekit.config.SECTIONS`)."""

    #: target source: timing | synthetic (per frame), facs | rating (per clip)
    source: str = "timing"
    #: timing profile: triangular | cosine | gaussian; sigma in frames for the Gaussian
    profile: str = "triangular"
    sigma: float | None = None
    #: column read by the synthetic and rating sources, and the rating scale (lo, hi)
    column: str | None = None
    scale: tuple[float, ...] | None = None
    #: regression loss of neural models: mse | mae | huber (delta huber_delta)
    loss: str = "mse"
    huber_delta: float = 0.1
    #: weight of the classification loss in a joint (multi-task) model: 0 = intensity only;
    #: the total is (1 - w) * regression + w * classification
    classification_weight: float = 0.0
    #: side of the aligned frames the per-frame flow is computed on (pixels)
    frame_size: int = 112
    #: flow method onset -> frame t (a name of mekit.preprocess.flow.FLOW_METHODS) and its parameters
    flow: str = "farneback"
    flow_params: dict[str, Any] = field(default_factory=dict)
    #: subtract the median flow of each frame (head drift) before any descriptor
    remove_global_motion: bool = True
    #: what the classical regressors read per frame (any of): 'motion' (HOOF of the flow
    #: onset -> t, clip-normalised), 'end_motion' (the same for the flow t -> the clip's last frame
    #: on disk), 'position' (the frame's relative position between the onset and that last
    #: frame, as a piecewise-linear basis, :func:`position_basis`). The last two read the clip's
    #: extent on disk; see the caveat in the module docstring.
    features: tuple[str, ...] = ("motion",)
    #: HOOF grid and bins of the classical per-frame features
    grid: int = 5
    bins: int = 8
    #: side of the flow stacks of flow CNNs, and of the frames of pair / sequence models
    stack_size: int = 28
    image_size: int = 64
    #: frames per sequence of sequence models
    seq_len: int = 16
    #: every k-th frame of a training clip is a training example (1: all)
    train_stride: int = 1
    #: Gaussian smoothing of each predicted curve along time (sigma in frames; 0: none). Fixed a
    #: priori: at 200 fps, 2 frames (10 ms) is far shorter than any micro-expression phase.
    smooth: float = 2.0
    #: fraction of the clip length counted as "on the apex" for the peak summary
    peak_tolerance: float = 0.1
    #: clips drawn in the report's curve figures (the first ones by id, and as many worst ones)
    plot_clips: int = 12
    #: still images (media 'image', one rating per image): the registered feature extractor
    #: (mekit.features.FEATURES) a classical regressor reads, and its parameters. Set here, not in
    #: the config's features section, because an intensity run builds all of its inputs itself.
    #: HOG by default: it reads the image's shape (the strength of an expression) and, being
    #: normalised per block, not its brightness.
    image_features: str = "hog"
    image_feature_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from mekit.intensity.targets import PROFILES, SOURCES

        if self.source not in SOURCES:
            raise ConfigError(f"intensity.source: {self.source!r}; expected one of {list(SOURCES)}")
        PROFILES.get(self.profile)
        if self.loss not in LOSSES:
            raise ConfigError(f"intensity.loss: {self.loss!r}; expected one of {list(LOSSES)}")
        if not 0.0 <= self.classification_weight < 1.0:
            raise ConfigError(f"intensity.classification_weight: {self.classification_weight!r}; expected a "
                              "weight in [0, 1) (1 would leave no intensity loss)")
        if not self.huber_delta > 0:
            raise ConfigError(f"intensity.huber_delta: {self.huber_delta!r}; expected a positive number")
        for name in ("frame_size", "stack_size", "image_size"):
            if getattr(self, name) < 8:
                raise ConfigError(f"intensity.{name}: {getattr(self, name)!r}; expected at least 8 pixels")
        for name in ("grid", "bins", "seq_len", "train_stride", "plot_clips"):
            if getattr(self, name) < 1:
                raise ConfigError(f"intensity.{name}: {getattr(self, name)!r}; expected a positive integer")
        if self.seq_len < 2:
            raise ConfigError("intensity.seq_len: a sequence needs at least 2 frames")
        if self.smooth < 0:
            raise ConfigError(f"intensity.smooth: {self.smooth!r}; expected a sigma >= 0 frames")
        bad = [f for f in self.features if f not in FRAME_FEATURES]
        if bad or not self.features or len(set(self.features)) != len(self.features):
            raise ConfigError(f"intensity.features: {list(self.features)}; expected distinct names among "
                              f"{list(FRAME_FEATURES)}")
        if self.scale is not None and len(self.scale) != 2:
            raise ConfigError(f"intensity.scale: {self.scale!r}; expected [lo, hi]")
        from mekit.preprocess.flow import FLOW_METHODS

        FLOW_METHODS.get(self.flow)
        from mekit.features import FEATURES

        if self.image_features not in FEATURES.names():  # the name only; parameters: check_config
            raise ConfigError(f"intensity.image_features: {self.image_features!r}; expected a feature extractor "
                              f"among {FEATURES.names()}")

    @property
    def per_frame(self) -> bool:
        from mekit.intensity.targets import SOURCES

        return SOURCES[self.source] == "frame"

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> IntensitySettings:
        if isinstance(section, cls):
            return section
        from mekit.config import from_dict

        return from_dict(cls, dict(section or {}), "intensity")


# -- the input table: no apex, offset = last frame on disk ----------------------------------------
def clip_end(row: Mapping[str, Any]) -> int:
    """The last frame of a clip that exists on disk (never the offset annotation).

    Frame folders: the largest frame number matching the template; videos: the last frame
    (container length - 1). Raises DataError naming the clip where neither can be read.
    """
    from mekit.preprocess.io import list_frame_numbers, video_length

    media = row["media"]
    if media == "frames":
        return int(list_frame_numbers(row)[-1])
    if media == "video":
        return int(video_length(row["path"])) - 1
    raise DataError(f"sample {row['sample_id']}: intensity curves need clips (frame folders or videos), "
                    f"not media {media!r}", expected="media 'frames' or 'video'")


def input_table(table: Any) -> tuple[Any, dict[str, str]]:
    """The table models read: apex blanked, offset = the clip's last frame on disk.

    Returns ``(table, skipped)``; a clip whose frames cannot be listed, or that has no onset,
    is left out with its reason. The onset annotation stays (models compare against it).
    """
    import pandas as pd

    from mekit.data.schema import SampleTable

    df = table.df.copy()
    ends: list[Any] = []
    skipped: dict[str, str] = {}
    for rec in df.to_dict("records"):
        sid = str(rec["sample_id"])
        try:
            if rec.get("onset") is None or pd.isna(rec.get("onset")):
                raise DataError(f"sample {sid}: no onset frame", expected="an onset frame number")
            end = clip_end(rec)
            if end < int(rec["onset"]):
                raise DataError(f"sample {sid}: the last frame on disk ({end}) comes before the onset "
                                f"({int(rec['onset'])})", expected="frames from the onset on")
            ends.append(end)
        except DataError as e:
            skipped[sid] = str(e)
            ends.append(pd.NA)
    df["apex"] = pd.array([pd.NA] * len(df), dtype="Int64")
    df["offset"] = pd.array(ends, dtype="Int64")
    df = df[~df["sample_id"].isin(list(skipped))].reset_index(drop=True)
    return SampleTable(df, getattr(table, "report", None), getattr(table, "name", ""),
                       getattr(table, "scheme", None)), skipped


# -- per-clip inputs -------------------------------------------------------------------------------
@dataclass
class ClipInput:
    """Everything a model may read about one clip: frames from the onset to the end on disk."""

    sample_id: str
    frames: np.ndarray                  # frame numbers, int64 [T], onset first
    hoof: np.ndarray | None = None      # float32 [T, D] clip-normalised HOOF of the flow onset -> t
    raw: np.ndarray | None = None       # float32 [T, D] the same before the clip normalisation
    hoof_end: np.ndarray | None = None  # float32 [T, D] clip-normalised HOOF of the flow t -> last frame
    stack: np.ndarray | None = None     # float16 [T, 3, s, s] clip-normalised onset->t flow stacks
    images: np.ndarray | None = None    # uint8 [T, S, S, 3] RGB frames

    @property
    def position(self) -> np.ndarray:
        """Relative position of each frame between the first and the last frame on disk (0..1)."""
        f = self.frames.astype(np.float64)
        span = max(float(f[-1] - f[0]), 1.0)
        return (f - f[0]) / span


def needs_of(model_name: str, settings: IntensitySettings | None = None) -> set[str]:
    """Which per-frame products a model reads (``hoof``, ``hoof_end``, ``stack``, ``images``,
    ``position``)."""
    if model_name in REGRESSORS:
        if REGRESSORS.meta(model_name)["needs"] == ("position",):
            return {"position"}
        feats = settings.features if settings is not None else ("motion",)
        return {{"motion": "hoof", "end_motion": "hoof_end", "position": "position"}[f] for f in feats}
    kind = neural_kind(model_name)
    return {"stack"} if kind in ("flow", "dual_flow") else {"images"}


def neural_kind(model_name: str) -> str:
    """Input kind of a neural model, checked to be one the per-frame regression supports."""
    from mekit.models import MODELS

    if model_name not in MODELS:
        known = sorted([*REGRESSORS.names(), *MODELS.names()])
        raise ConfigError(f"unknown intensity model {model_name!r}; expected a regressor "
                          f"({', '.join(REGRESSORS.names())}) or a neural model ({', '.join(known)})")
    kind = MODELS.meta(model_name)["input"]
    if kind not in NEURAL_KINDS:
        raise ConfigError(f"model {model_name!r} reads input kind {kind!r}, which per-frame intensity "
                          f"regression does not build; use a model reading one of {sorted(NEURAL_KINDS)}")
    return kind


def _frames_key(row: Mapping[str, Any], pre: Mapping[str, Any], s: IntensitySettings, ref: str = "onset") -> str:
    from mekit.preprocess.cache import param_key

    src = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
           for k, v in ((k, row.get(k)) for k in ("media", "path", "frame_template", "onset", "offset"))}
    src = {k: (int(v) if k in ("onset", "offset") and v is not None else v) for k, v in src.items()}
    params = {"source": src, "preprocess": dict(pre), "flow": s.flow, "flow_params": s.flow_params,
              "global": s.remove_global_motion, "grid": s.grid, "bins": s.bins, "stack": s.stack_size}
    if ref != "onset":  # (onset entries keep the key they had before the end reference existed)
        params = {**params, "ref": ref, "stack": None}
    return param_key("intensity_frames", params, FRAMES_VERSION)


def _flow_products(frames_rgb: np.ndarray, s: IntensitySettings, ref: str = "onset") -> dict[str, np.ndarray]:
    """HOOF descriptors (and, from the onset, flow stacks) of the flow onset -> t (``ref='onset'``)
    or t -> the last frame (``ref='end'``) for every frame t of one clip."""
    import cv2

    from mekit.features.flow_features import hoof_descriptor
    from mekit.preprocess.flow import compute_flow, flow_stack, optical_strain

    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames_rgb]
    hoofs, mags, stacks, flow_peak, strain_peak = [], [], [], [], []
    for g in grey:
        fl = compute_flow(grey[0], g, s.flow, **s.flow_params) if ref == "onset" else \
            compute_flow(g, grey[-1], s.flow, **s.flow_params)
        if s.remove_global_motion:
            fl = fl - np.median(fl.reshape(-1, 2), axis=0)[None, None, :]
        st = optical_strain(fl)
        h = hoof_descriptor(fl, st, s.grid, s.bins)
        hoofs.append(h)
        mags.append(float(h.reshape(s.grid * s.grid, s.bins + 1)[:, :s.bins].sum()))
        if ref == "onset":
            stacks.append(flow_stack(fl, st, s.stack_size, normalise="none"))
        flow_peak.append(float(np.percentile(np.hypot(fl[..., 0], fl[..., 1]), 99)))
        strain_peak.append(float(np.percentile(st, 99)))
    out = {"hoof_raw": np.stack(hoofs).astype(np.float32), "magnitude": np.asarray(mags, np.float32),
           "flow_peak": np.asarray(flow_peak, np.float32), "strain_peak": np.asarray(strain_peak, np.float32)}
    if stacks:
        out["stack_raw"] = np.stack(stacks).astype(np.float16)
    return out


def _normalised_hoof(products: Mapping[str, np.ndarray]) -> np.ndarray:
    """Clip-relative hoof features ``[T, D + 1]`` (see the module docstring)."""
    mag = products["magnitude"].astype(np.float64)
    top = max(float(mag.max()), 1e-6)
    return np.concatenate([products["hoof_raw"] / top, (mag / top)[:, None]], axis=1).astype(np.float32)


def _normalised_stack(products: Mapping[str, np.ndarray]) -> np.ndarray:
    """Clip-relative flow stacks ``[T, 3, s, s]`` (see the module docstring)."""
    stack = products["stack_raw"].astype(np.float32)
    fpk = max(float(products["flow_peak"].max()), 1e-6)
    spk = max(float(products["strain_peak"].max()), 1e-6)
    stack[:, :2] = np.clip(stack[:, :2] / fpk, -2.0, 2.0)
    stack[:, 2] = np.clip(stack[:, 2] / spk, 0.0, 2.0)
    return stack.astype(np.float16)


def build_clip_inputs(table: Any, preprocess: Mapping[str, Any], settings: IntensitySettings,
                      needs: Iterable[str], progress: bool = True) -> tuple[dict[str, ClipInput], dict[str, str]]:
    """Per-frame inputs of every clip of ``table``, read without its apex or offset annotations.

    ``needs`` is a subset of ``{"hoof", "hoof_end", "stack", "images", "position"}``. Returns
    ``({sample_id: ClipInput}, skipped)`` with the reason of every clip left out. Frames come
    from the cached preprocessing pipeline; the per-frame flow products are cached per clip
    under a key of every parameter they depend on (so a re-run reads them back).
    """
    import cv2

    from mekit.preprocess.cache import Cache
    from mekit.preprocess.pipeline import preprocess as run_pipeline

    needs = set(needs)
    itab, skipped = input_table(table)
    out: dict[str, ClipInput] = {}
    if len(itab) == 0:
        return out, skipped
    pre = {**dict(preprocess or {}), "pairs": [], "sampling": {"method": "all"}, "frame_size": settings.frame_size}
    res = run_pipeline(itab, pre, progress=progress)
    skipped.update(res.skipped)
    cache = Cache() if res.config.cache else Cache(enabled=False)
    flow_needed = bool(needs & {"hoof", "hoof_end", "stack"})
    rows = {str(r["sample_id"]): r for r in itab.df.to_dict("records")}
    todo = [sid for sid in itab.sample_ids if sid not in skipped]
    from mekit import events

    # progress is an event (mekit.events); whoever listens draws it
    with events.Stage("features", total=len(todo), what="per-frame flow") if flow_needed else _no_stage() as stage:
        for sid in todo:
            item = res[sid]
            frames = np.asarray(item["frames"])
            numbers = np.asarray(item["frame_numbers"], np.int64)
            clip = ClipInput(sid, numbers)
            for ref in (["onset"] if needs & {"hoof", "stack"} else []) + (["end"] if "hoof_end" in needs else []):
                key = _frames_key(rows[sid], res.config.to_dict(), settings, ref)
                hit = cache.load("intensity", key, sid)
                if hit is None:
                    products = _flow_products(frames, settings, ref)
                    cache.save("intensity", key, sid, products, {"n_frames": len(numbers), "ref": ref})
                else:
                    products = hit[0]
                if ref == "end":
                    clip.hoof_end = _normalised_hoof(products)
                    continue
                if "hoof" in needs:
                    clip.hoof = _normalised_hoof(products)
                    clip.raw = np.concatenate([products["hoof_raw"], products["magnitude"][:, None]], axis=1)
                if "stack" in needs:
                    clip.stack = _normalised_stack(products)
            if "images" in needs:
                size = settings.image_size
                clip.images = frames if frames.shape[1] == size else np.stack(
                    [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
            out[sid] = clip
            if stage is not None:
                stage.advance(sample=sid)
    return out, skipped


def _no_stage() -> Any:
    import contextlib

    return contextlib.nullcontext()


def smooth_curve(pred: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time (edges reflected), then clipped to 0-1."""
    y = np.asarray(pred, np.float64)
    if sigma > 0 and y.size > 1:
        from scipy.ndimage import gaussian_filter1d

        y = gaussian_filter1d(y, sigma, mode="nearest")
    return np.clip(y, 0.0, 1.0)


# -- classical regressors --------------------------------------------------------------------------
#: name -> builder ``(params, seed) -> (estimator, grid)``; meta ``needs`` = the per-frame product read
REGRESSORS: Registry[Any] = Registry("intensity regressor")


def _ridge(params: dict[str, Any], seed: int) -> tuple[Any, dict[str, list[Any]]]:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    alphas = params.get("alpha", [1.0, 10.0, 100.0, 1000.0, 10000.0])
    return Pipeline([("scale", StandardScaler()), ("reg", Ridge())]), {"reg__alpha": list(np.atleast_1d(alphas))}


def _svr(params: dict[str, Any], seed: int) -> tuple[Any, dict[str, list[Any]]]:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    grid = {"reg__C": list(np.atleast_1d(params.get("C", [0.3, 1.0, 3.0]))),
            "reg__epsilon": list(np.atleast_1d(params.get("epsilon", [0.05])))}
    return Pipeline([("scale", StandardScaler()), ("reg", SVR(kernel="rbf", gamma="scale",
                                                              cache_size=500))]), grid


def _lightgbm(params: dict[str, Any], seed: int) -> tuple[Any, dict[str, list[Any]]]:
    from lightgbm import LGBMRegressor
    from sklearn.pipeline import Pipeline

    # Modest defaults for a shared CPU: 100 trees, 63 histogram bins, half the columns per tree.
    # One thread by default: LightGBM's OpenMP threads spin-wait, and on a busy 2-core machine
    # two threads were measured 3x slower than one (47 s vs 15 s for one 12k x 470 fit).
    reg = LGBMRegressor(n_estimators=int(params.get("n_estimators", 100)), learning_rate=0.1, max_bin=63,
                        subsample=0.8, subsample_freq=1, colsample_bytree=0.5, random_state=seed,
                        n_jobs=int(params.get("n_jobs", 1)), verbose=-1, deterministic=True, force_row_wise=True)
    return Pipeline([("reg", reg)]), {"reg__num_leaves": list(np.atleast_1d(params.get("num_leaves", [7, 15])))}


def _position(params: dict[str, Any], seed: int) -> tuple[Any, dict[str, list[Any]]]:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import SplineTransformer

    return (Pipeline([("spline", SplineTransformer(n_knots=int(params.get("n_knots", 8)), degree=3)),
                      ("reg", Ridge())]), {"reg__alpha": [0.01, 1.0]})


REGRESSORS.add("ridge", _ridge, needs=("features",),
               help="standardised per-frame features (intensity.features) -> ridge regression")
REGRESSORS.add("svr", _svr, needs=("features",),
               help="standardised per-frame features -> RBF support-vector regression (use intensity.train_stride "
                    "on large corpora)")
REGRESSORS.add("lightgbm", _lightgbm, needs=("features",),
               help="per-frame features -> gradient-boosted trees (LightGBM)")
REGRESSORS.add("position_prior", _position, needs=("position",),
               help="reference: a spline of the frame's relative position in the clip only (no pixels); "
                    "what the clip's frame range alone gives away")


def position_basis(position: np.ndarray, n_knots: int = 11) -> np.ndarray:
    """Piecewise-linear "hat" basis of the relative position (knots evenly spaced on 0..1).

    A linear model on these columns can draw any piecewise-linear curve over the clip (a rise
    to the middle and a fall, say), which a single position column cannot. Fixed knots: nothing
    is fitted, so the same frame always gets the same row.
    """
    knots = np.linspace(0.0, 1.0, n_knots)
    width = knots[1] - knots[0]
    p = np.clip(np.asarray(position, np.float64), 0.0, 1.0)[:, None]
    return np.clip(1.0 - np.abs(p - knots[None, :]) / width, 0.0, 1.0).astype(np.float32)


def frame_matrix(clip: ClipInput, model_name: str, features: tuple[str, ...] = ("motion",)) -> np.ndarray:
    """Feature rows of every frame of a clip for a classical regressor (``features``: the
    groups of :data:`FRAME_FEATURES`, in that order; ``position_prior`` reads only the position)."""
    if REGRESSORS.meta(model_name)["needs"] == ("position",):
        return clip.position[:, None]
    parts = []
    for f in features:
        arr = {"motion": clip.hoof, "end_motion": clip.hoof_end, "position": position_basis(clip.position)}[f]
        if arr is None:
            raise DataError(f"sample {clip.sample_id}: per-frame {f} features were not built",
                            expected=f"inputs built with the {f!r} features")
        parts.append(arr)
    return np.concatenate(parts, axis=1).astype(np.float32)


def clip_vector(clip: ClipInput) -> np.ndarray:
    """One row per clip for per-clip targets (facs, rating): the largest value of each raw
    (not clip-normalised: a per-clip strength is an absolute amount of motion) per-frame
    feature over the clip's frames."""
    if clip.raw is None:
        raise DataError(f"sample {clip.sample_id}: per-frame features were not built", expected="hoof features")
    return clip.raw.max(axis=0)


class FrameRegressor:
    """A classical regressor over per-frame rows, hyper-parameters by inner subject-grouped CV.

    ``fit(X, y, groups)`` chooses the grid point with the lowest mean absolute error over a
    ``GroupKFold`` of the TRAINING subjects (3 folds, fewer if there are fewer subjects), then
    refits on all training rows. ``model_`` is the fitted scikit-learn pipeline (what a bundle
    stores); ``classes_`` is empty (no classifier).
    """

    def __init__(self, name: str, params: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        REGRESSORS.get(name)
        self.name = name
        self.params = dict(params or {})
        unknown = set(self.params) - {"alpha", "C", "epsilon", "n_estimators", "num_leaves", "n_jobs", "n_knots"}
        if unknown:
            raise ConfigError(f"model.params: unknown option(s) {sorted(unknown)} for regressor {name!r}")
        self.seed = int(seed)
        self.classes_ = np.array([], dtype=str)
        self.selection_: dict[str, Any] = {}

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> FrameRegressor:
        from sklearn.base import clone
        from sklearn.model_selection import GridSearchCV, GroupKFold

        est, grid = REGRESSORS.get(self.name)(self.params, self.seed)
        n_groups = len(np.unique(groups))
        n_points = int(np.prod([len(v) for v in grid.values()])) if grid else 1
        if n_groups >= 2 and n_points > 1:
            cv = GroupKFold(n_splits=min(3, n_groups))
            search = GridSearchCV(est, grid, scoring="neg_mean_absolute_error", cv=cv, n_jobs=1, refit=True)
            search.fit(X, y, groups=groups)
            self.model_ = search.best_estimator_
            chosen = {k.split("__", 1)[-1]: (float(v) if isinstance(v, (np.floating, float)) else v)
                      for k, v in search.best_params_.items()}
            self.selection_ = {"method": f"inner GroupKFold ({cv.n_splits} folds) over {n_groups} training "
                                         "subjects, lowest MAE", "chosen": chosen,
                               "inner_mae": round(-float(search.best_score_), 4)}
        else:
            first = {k: v[0] for k, v in grid.items()}
            self.model_ = clone(est).set_params(**first).fit(X, y)
            self.selection_ = {"method": "first grid point (too few subjects for inner CV)", "chosen": first}
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict(X), np.float64)


# -- neural regression --------------------------------------------------------------------------------
def regression_loss(settings: IntensitySettings) -> Any:
    """The per-example (``reduction="none"``) regression loss ``intensity.loss`` names: MSE, MAE
    or Huber with ``huber_delta``."""
    from torch import nn

    if settings.loss == "mse":
        return nn.MSELoss(reduction="none")
    if settings.loss == "mae":
        return nn.L1Loss(reduction="none")
    return nn.HuberLoss(reduction="none", delta=settings.huber_delta)


class IntensityNet:
    """Trains a registered neural model's intensity head (and, in a joint model, its classifier).

    Examples: one per (clip, frame) for frame-pair inputs (flow onset -> t, or the onset and
    frame ``t`` crops), one per clip for sequence models (``seq_len`` frames spanning the clip,
    at jittered positions during training, evenly spaced for prediction, where the per-frame
    outputs are linearly interpolated to every frame). Seeded and deterministic; early stopping
    on the mean absolute error of an inner validation split of whole TRAINING subjects
    (``selection: inner_val``), or a fixed number of epochs (``selection: fixed``). The epochs run
    in :func:`mekit.engine.loop.run_epochs`, the loop classification uses: the same schedule,
    mixed precision, determinism and ``epoch`` events, and, given a ``checkpoint_dir``, a
    checkpoint after every epoch from which a killed fit resumes to the uninterrupted result.

    The loss is ``(1 - w) * regression + w * classification`` with ``w`` =
    ``classification_weight``: the regression loss is MSE, MAE or Huber; the classification
    loss is cross-entropy against the clip's soft label
    (:func:`mekit.intensity.targets.soft_labels`: graded scores where the table has them,
    else one-hot), weighted per frame example by the frame's target intensity (a frame at the
    onset shows no expression to classify).

    The attributes a bundle needs (``model_``, ``model_name``, ``history_``, ``classes_``,
    :meth:`describe`) follow :class:`mekit.engine.trainer.NeuralModel`, so
    :func:`mekit.engine.bundle.save_bundle` stores it and :func:`~mekit.engine.bundle.load_bundle`
    rebuilds it (``intensity_head: true`` travels in ``model_params``).
    """

    def __init__(self, model: str, params: Mapping[str, Any] | None, settings: IntensitySettings,
                 seed: int = 0, compute: Any = None, checkpoint_dir: str | Path | None = None) -> None:
        from mekit.engine.trainer import TrainConfig, as_compute

        self.kind = neural_kind(model)
        self.model_name = model
        self.settings = settings
        p = dict(params or {})
        mp = dict(p.get("model_params") or {})
        mp["intensity_head"] = True
        p["model_params"] = mp
        self.cfg = TrainConfig.from_params(p)
        self.seed = int(seed)
        self.compute = as_compute(compute)  # mekit.config.ComputeConfig: device, amp, determinism
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self._rt: Any = None
        self.classes_ = np.array([], dtype=str)
        self.history_: list[dict[str, float]] = []
        self.selection_: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = {"model": self.model_name, "train": asdict(self.cfg), "compute": asdict(self.compute)}
        if self._rt is not None:
            d["runtime"] = self._rt.describe()
        return d

    @classmethod
    def from_fitted(cls, fitted: Any, settings: IntensitySettings) -> IntensityNet:
        """Wrap a model rebuilt by :func:`mekit.engine.bundle.load_bundle` for prediction."""
        from dataclasses import asdict

        net = cls(fitted.model_name, asdict(fitted.cfg), settings, seed=fitted.seed,
                  compute=getattr(fitted, "compute", None))
        net.model_ = fitted.model_
        net._rt = getattr(fitted, "_rt", None)
        net.classes_ = np.asarray(fitted.classes_)
        return net

    def _to_device(self, x: Any) -> Any:
        return x if self._rt is None else self._rt.batch(x)

    # -- batches -----------------------------------------------------------------------------
    def _frame_batch(self, clips: list[ClipInput], index: np.ndarray) -> Any:
        import torch

        if self.kind in ("flow", "dual_flow"):
            x = np.stack([clips[c].stack[t] for c, t in index]).astype(np.float32)
            return torch.from_numpy(x)
        x = np.stack([np.stack([clips[c].images[0], clips[c].images[t]]) for c, t in index])
        return torch.from_numpy(x.transpose(0, 1, 4, 2, 3).astype(np.float32) / 255.0)

    def _positions(self, n: int, rng: np.random.Generator | None) -> np.ndarray:
        L = self.settings.seq_len
        pos = np.linspace(0, n - 1, L)
        if rng is not None and n > L:
            step = (n - 1) / (L - 1)
            pos = pos + rng.uniform(-0.5, 0.5, L) * step
            pos[0] = 0.0
        return np.clip(np.rint(pos), 0, n - 1).astype(np.int64)

    def _seq_batch(self, clips: list[ClipInput], ids: np.ndarray, rng: np.random.Generator | None,
                   targets: list[np.ndarray] | None = None) -> tuple[Any, Any, list[np.ndarray]]:
        import torch

        xs, ys, ps = [], [], []
        for c in ids:
            pos = self._positions(len(clips[c].frames), rng)
            ps.append(pos)
            xs.append(clips[c].images[pos])
            if targets is not None:
                ys.append(targets[c][pos])
        x = torch.from_numpy(np.stack(xs).transpose(0, 1, 4, 2, 3).astype(np.float32) / 255.0)
        y = torch.from_numpy(np.stack(ys).astype(np.float32)) if targets is not None else None
        return x, y, ps

    def _reg_loss(self) -> Any:
        return regression_loss(self.settings)

    # -- training ----------------------------------------------------------------------------
    def fit(self, clips: list[ClipInput], targets: list[np.ndarray], groups: np.ndarray,
            soft: np.ndarray | None = None, classes: list[str] | None = None) -> IntensityNet:
        """Fit on training clips; ``targets[i]`` has one value per frame of ``clips[i]``;
        ``groups`` the subject of each clip; ``soft`` ``[n_clips, K]`` class scores for a joint model."""
        from mekit.engine.trainer import Runtime

        # sequences are 5-D; frame examples (flow stacks, image pairs) reach the net as 4-D only for flow
        with Runtime(self.compute, four_d_input=self.kind in ("flow", "dual_flow")) as rt:
            self._rt = rt
            return self._fit(clips, targets, groups, soft, classes, rt)

    def _fit(self, clips: list[ClipInput], targets: list[np.ndarray], groups: np.ndarray,
             soft: np.ndarray | None, classes: list[str] | None, rt: Any) -> IntensityNet:
        """One fit through :func:`mekit.engine.loop.run_epochs`: this method says what an
        example is (a frame, or a clip for sequence models), the loss and the validation MAE."""
        import torch

        from mekit.config import from_dict
        from mekit.engine.augment import AugmentConfig, augment_batch
        from mekit.engine.loop import Batch, begin_fit, minibatches, run_epochs, subject_val_split
        from mekit.models import build_model

        # torch keeps the thread count seed_everything sets (all cores unless model.params.threads):
        # the single-thread rule of small classification nets would change these fits' rounding
        begin_fit(self.seed, self.cfg, rt)
        w = self.settings.classification_weight
        joint = w > 0
        if joint and (soft is None or not classes):
            raise ConfigError("a joint intensity + classification model needs class labels")
        self.classes_ = np.asarray(classes if joint else [], dtype=str)
        model = rt.model(build_model(self.model_name, num_classes=len(self.classes_), **self.cfg.model_params))
        aug_params = {**self.cfg.augment, "temporal_jitter": 0}  # a shift in time would misalign targets
        aug = from_dict(AugmentConfig, aug_params, "model.params.augment")
        # sequence positions are jittered from a NumPy generator of their own (saved in checkpoints)
        rng = np.random.default_rng(self.seed)
        reg_loss = self._reg_loss()
        soft_t = torch.as_tensor(soft, dtype=torch.float32, device=rt.device) if joint else None

        groups = np.asarray(groups)
        val_clip = (subject_val_split(groups, self.cfg.val_fraction, self.seed)
                    if self.cfg.selection == "inner_val" else np.zeros(len(clips), bool))
        tr_c, va_c = np.flatnonzero(~val_clip), np.flatnonzero(val_clip)
        seq = self.kind == "sequence"

        def frame_index(cids: np.ndarray, stride: int) -> np.ndarray:
            return np.array([(c, t) for c in cids for t in range(0, len(clips[c].frames), stride)],
                            dtype=np.int64).reshape(-1, 2)

        tr_units = tr_c if seq else frame_index(tr_c, self.settings.train_stride)
        va_units = va_c if seq else frame_index(va_c, max(self.settings.train_stride, 2))

        def batches(epoch: int, gen: Any):
            order = torch.randperm(len(tr_units), generator=gen).numpy()
            for sel in minibatches(order, self.cfg.batch_size):
                if seq:
                    cids = tr_units[sel]
                    xb, yb, _ = self._seq_batch(clips, cids, rng, targets)
                else:
                    idx = tr_units[sel]
                    cids = idx[:, 0]
                    xb = self._frame_batch(clips, idx)
                    yb = torch.as_tensor(np.array([targets[c][t] for c, t in idx]), dtype=torch.float32)
                # augmentation on the CPU with the CPU generator: the same draws on every device
                xb = rt.batch(augment_batch(xb, self.kind, aug, gen))
                yield Batch(xb, (yb.to(rt.device), cids), len(sel))

        def loss(out: dict[str, Any], b: Batch) -> Any:
            yb, cids = b.target
            value = reg_loss(out["intensity"].float(), yb).mean()
            if joint:
                logp = torch.log_softmax(out["logits"].float(), dim=1)
                ce = -(soft_t[torch.as_tensor(cids, device=rt.device)] * logp).sum(1)
                weight = torch.ones_like(ce) if seq else yb.clamp(0, 1)
                value = (1 - w) * value + w * (ce * weight).sum() / weight.sum().clamp_min(1e-6)
            return value

        def validate(m: Any) -> float:
            # whole clips, as predicted after training (every frame, interpolated for sequences)
            self.model_ = m
            err = [np.abs(self._predict_raw(clips[c]) - targets[c])
                   for c in (va_units if seq else np.unique(va_units[:, 0]))]
            return float(np.mean(np.concatenate(err)))

        def set_state(saved: dict[str, Any]) -> None:
            rng.bit_generator.state = saved["positions_rng"]

        res = run_epochs(model, self.cfg, rt, seed=self.seed, batches=batches, loss=loss,
                         forward=lambda m, x: m.forward_with_intensity(x),
                         validate=validate if len(va_units) else None, metric="val_mae", maximize=False,
                         checkpoint=self._ckpt_path(),
                         state=(lambda: {"positions_rng": rng.bit_generator.state}, set_state))
        self.history_ = res.history
        self.selection_ = selection_record(res, self.cfg.epochs, "early stopping on the intensity MAE of an inner "
                                           "validation split of {n} training subjects", "val_mae", groups[va_c],
                                           list_subjects=False)
        self.selection_["compute"] = rt.describe()
        model.eval()
        self.model_ = model
        return self

    def _ckpt_path(self) -> Path | None:
        return checkpoint_file(self.checkpoint_dir)

    # -- prediction ----------------------------------------------------------------------------
    def _predict_raw(self, clip: ClipInput, batch: int = 256) -> np.ndarray:
        """Unsmoothed intensity of every frame of one clip."""
        import torch

        model = self.model_
        model.eval()
        n = len(clip.frames)
        with torch.no_grad():
            if self.kind == "sequence":
                pos = self._positions(n, None)
                x = torch.from_numpy(clip.images[pos][None].transpose(0, 1, 4, 2, 3).astype(np.float32) / 255.0)
                with self._autocast():
                    y = model.forward_intensity(self._to_device(x))[0].float().cpu().numpy().astype(np.float64)
                return np.interp(np.arange(n), pos, y) if n > 1 else y[:1]
            out = []
            for i in range(0, n, batch):
                idx = np.array([(0, t) for t in range(i, min(n, i + batch))], dtype=np.int64)
                with self._autocast():
                    y = model.forward_intensity(self._to_device(self._frame_batch([clip], idx)))
                out.append(y.float().cpu().numpy())
            return np.concatenate(out).astype(np.float64)

    def _autocast(self) -> Any:
        import contextlib

        return contextlib.nullcontext() if self._rt is None else self._rt.autocast()

    def predict_clip(self, clip: ClipInput) -> np.ndarray:
        return self._predict_raw(clip)

    def predict_class(self, clip: ClipInput) -> np.ndarray | None:
        """Class probabilities of a joint model for one clip (frame examples: the mean of the
        frames' probabilities weighted by their predicted intensity); None without a classifier."""
        import torch

        if len(self.classes_) == 0:
            return None
        n = len(clip.frames)
        with torch.no_grad():
            if self.kind == "sequence":
                pos = self._positions(n, None)
                x = torch.from_numpy(clip.images[pos][None].transpose(0, 1, 4, 2, 3).astype(np.float32) / 255.0)
                with self._autocast():
                    logits = self.model_(self._to_device(x))
                return torch.softmax(logits.float(), 1)[0].cpu().numpy()
            idx = np.array([(0, t) for t in range(n)], dtype=np.int64)
            with self._autocast():
                out = self.model_.forward_with_intensity(self._to_device(self._frame_batch([clip], idx)))
            p = torch.softmax(out["logits"].float(), 1).cpu().numpy()
            wt = np.clip(out["intensity"].float().cpu().numpy(), 0, None) + 1e-6
            return (p * wt[:, None]).sum(0) / wt.sum()


# -- still images: a CNN regression head ---------------------------------------------------------------
#: input kinds of the registered models a still-image regressor can read (2-D CNNs on [B, 3, H, W])
STILL_KINDS = ("image", "flow")


class StillRegressorNet:
    """A CNN that rates still images: one intensity in 0..1 per aligned face crop.

    The image-level counterpart of :class:`IntensityNet` (one rating per image, no frames or
    clips): a registered 2-D CNN of :mod:`mekit.models` built with a single regression output
    (its intensity head, and no classifier), trained through :func:`mekit.engine.loop.run_epochs`.

    API::

        net = StillRegressorNet(model="compact_cnn", params=None, settings=None, seed=0,
                                compute=None, checkpoint_dir=None)
        net.fit(images, ratings, groups)   # uint8 [N, H, W, 3], float [N] in 0..1, subject [N]
        net.predict(images)                # float64 [N], clipped to 0..1

    - ``model``: a registered model reading 3-channel 2-D input (input kind ``image`` or
      ``flow``). ``compact_cnn`` by default: ~0.1 M parameters, a few seconds per epoch of a
      few hundred 64-pixel crops on one CPU core, hard to over-fit on the few hundred rated
      images a corpus holds; ``resnet18_flow`` or ``efficientnet_lite0`` are larger options.
    - ``params``: ``model.params`` (:class:`mekit.engine.trainer.TrainConfig`: epochs, batch_size,
      lr, schedule, selection, val_fraction, patience, augment, threads, model_params).
    - ``settings``: :class:`IntensitySettings`, of which it reads ``loss`` (mse, mae or huber,
      with ``huber_delta``) and ``image_size`` (the side crops are resized to, with area
      interpolation); defaults when None.
    - ``compute``: the ``compute`` section (device, amp, channels_last, deterministic).
    - ``checkpoint_dir``: a checkpoint after every epoch there; a killed fit resumes from it.

    Inputs: pixels scaled to 0..1, then normalised with the model's registered mean/std (as
    classification's image inputs are). Model selection: with ``selection: inner_val``, early
    stopping on the mean absolute error of an inner validation split of whole TRAINING
    subjects (:func:`mekit.engine.loop.subject_val_split`; never the held-out ones, which
    ``fit`` never sees), restoring the best epoch's weights; with ``selection: fixed`` (or fewer
    than 3 training subjects) the full epoch budget. ``selection_`` says which, with the chosen
    epoch and the validation subjects; ``history_`` holds one record per epoch.

    Bundles: ``model_``, ``model_name``, ``history_``, ``classes_`` (empty) and
    :meth:`describe` follow :class:`mekit.engine.trainer.NeuralModel`, so
    :func:`mekit.engine.bundle.save_bundle` stores it (with ``extra={"task": "intensity", ...}``)
    and :meth:`from_fitted` wraps what :func:`~mekit.engine.bundle.load_bundle` rebuilds.
    """

    def __init__(self, model: str = "compact_cnn", params: Mapping[str, Any] | None = None,
                 settings: IntensitySettings | None = None, seed: int = 0, compute: Any = None,
                 checkpoint_dir: str | Path | None = None) -> None:
        from mekit.engine.trainer import TrainConfig, as_compute
        from mekit.models import MODELS

        if model not in MODELS:
            raise ConfigError(f"unknown still-image model {model!r}; expected a registered 2-D CNN "
                              f"({', '.join(self.models())})")
        meta = MODELS.meta(model)
        if meta["input"] not in STILL_KINDS or meta["channels"] != 3:
            raise ConfigError(f"model {model!r} reads input kind {meta['input']!r} with {meta['channels']} "
                              f"channels; a still-image regressor needs a 2-D CNN on 3-channel images "
                              f"({', '.join(self.models())})")
        self.model_name = model
        p = dict(params or {})
        mp = dict(p.get("model_params") or {})
        mp["intensity_head"] = True  # the regression output (a bundle rebuilds it from model_params)
        p["model_params"] = mp
        self.cfg = TrainConfig.from_params(p)
        self.settings = settings if settings is not None else IntensitySettings()
        self.seed = int(seed)
        self.compute = as_compute(compute)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self._mean = np.asarray(meta["mean"], np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(meta["std"], np.float32).reshape(1, 3, 1, 1)
        self._rt: Any = None
        self.classes_ = np.array([], dtype=str)
        self.history_: list[dict[str, float]] = []
        self.selection_: dict[str, Any] = {}

    @staticmethod
    def models() -> list[str]:
        """The registered models a still-image regressor can build."""
        from mekit.models import MODELS

        return [n for n in MODELS.names()
                if MODELS.meta(n)["input"] in STILL_KINDS and MODELS.meta(n)["channels"] == 3]

    def describe(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = {"model": self.model_name, "train": asdict(self.cfg), "compute": asdict(self.compute),
             "unit": "image", "loss": self.settings.loss, "image_size": self.settings.image_size}
        if self._rt is not None:
            d["runtime"] = self._rt.describe()
        return d

    @classmethod
    def from_fitted(cls, fitted: Any, settings: IntensitySettings | None = None) -> StillRegressorNet:
        """Wrap a model rebuilt by :func:`mekit.engine.bundle.load_bundle` for prediction."""
        from dataclasses import asdict

        net = cls(fitted.model_name, asdict(fitted.cfg), settings, seed=fitted.seed,
                  compute=getattr(fitted, "compute", None))
        net.model_ = fitted.model_
        net._rt = getattr(fitted, "_rt", None)
        return net

    # -- inputs ------------------------------------------------------------------------------
    def _pixels(self, images: np.ndarray) -> np.ndarray:
        """``uint8 [N, 3, S, S]``: the crops at ``image_size``, channels first (normalised per
        batch, so a large set is held as bytes)."""
        import cv2

        x = np.asarray(images)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
            raise DataError("a still-image regressor reads aligned face crops", value=f"{x.dtype} {x.shape}",
                            expected="uint8 [N, H, W, 3] RGB images")
        size = self.settings.image_size
        if x.shape[1:3] != (size, size):
            x = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in x]) if len(x) \
                else np.zeros((0, size, size, 3), np.uint8)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def _normalise(self, x: Any) -> Any:
        import torch

        x = x.to(torch.float32) / 255.0
        return (x - torch.from_numpy(self._mean)) / torch.from_numpy(self._std)

    # -- training ----------------------------------------------------------------------------
    def fit(self, images: np.ndarray, ratings: np.ndarray, groups: np.ndarray) -> StillRegressorNet:
        """Fit on training images; ``ratings`` one value per image in 0..1, ``groups`` the subject
        of each image (the inner validation split draws whole subjects)."""
        from mekit.engine.trainer import Runtime

        y = np.asarray(ratings, np.float64)
        groups = np.asarray(groups)
        n = len(np.asarray(images))
        if y.shape != (n,) or groups.shape != (n,):
            raise DataError("one rating and one subject per image", value=f"{n} images, {y.shape} ratings, "
                            f"{groups.shape} subjects", expected="arrays of length N")
        if n < 2 or not np.all(np.isfinite(y)) or y.min() < 0 or y.max() > 1:
            raise DataError("still-image ratings must be at least 2 finite values in 0..1",
                            value=f"{n} ratings" if n < 2 else f"{y.min()}..{y.max()}",
                            expected="ratings scaled to 0..1")
        with Runtime(self.compute, four_d_input=True) as rt:
            self._rt = rt
            return self._fit(self._pixels(images), y, groups, rt)

    def _fit(self, pixels: np.ndarray, y: np.ndarray, groups: np.ndarray, rt: Any) -> StillRegressorNet:
        import torch

        from mekit.config import from_dict
        from mekit.engine.augment import AugmentConfig, augment_batch
        from mekit.engine.loop import Batch, begin_fit, choose_threads, minibatches, run_epochs, subject_val_split
        from mekit.models import build_model

        begin_fit(self.seed, self.cfg, rt)
        val = (subject_val_split(groups, self.cfg.val_fraction, self.seed)
               if self.cfg.selection == "inner_val" else np.zeros(len(y), bool))
        tr, va = np.flatnonzero(~val), np.flatnonzero(val)
        model = build_model(self.model_name, num_classes=0, **self.cfg.model_params)
        choose_threads(model, self.cfg.threads)  # the rule classification uses: one thread for a small net
        model = rt.model(model)
        aug = from_dict(AugmentConfig, self.cfg.augment, "model.params.augment")
        px = torch.from_numpy(pixels)
        yt = torch.as_tensor(y, dtype=torch.float32)
        reg_loss = regression_loss(self.settings)

        def batches(epoch: int, gen: Any):
            order = torch.as_tensor(tr)[torch.randperm(len(tr), generator=gen)]
            for idx in minibatches(order, self.cfg.batch_size):
                xb = augment_batch(self._normalise(px[idx]), "image", aug, gen)
                yield Batch(rt.batch(xb), yt[idx].to(rt.device), len(idx))

        def validate(m: Any) -> float:
            return float(np.mean(np.abs(self._predict_rows(m, px[va]) - y[va])))

        res = run_epochs(model, self.cfg, rt, seed=self.seed, batches=batches,
                         loss=lambda out, b: reg_loss(out.float(), b.target).mean(),
                         forward=lambda m, x: m.forward_intensity(x),
                         validate=validate if len(va) else None, metric="val_mae", maximize=False,
                         checkpoint=self._ckpt_path())
        self.history_ = res.history
        self.selection_ = selection_record(res, self.cfg.epochs, "early stopping on the rating MAE of an inner "
                                           "validation split of {n} training subjects", "val_mae", groups[va])
        self.selection_["compute"] = rt.describe()
        model.eval()
        self.model_ = model
        return self

    def _ckpt_path(self) -> Path | None:
        return checkpoint_file(self.checkpoint_dir)

    # -- prediction ----------------------------------------------------------------------------
    def _predict_rows(self, model: Any, px: Any, batch: int = 128) -> np.ndarray:
        """Clipped ratings of ``uint8 [N, 3, S, S]`` pixel rows."""
        import contextlib

        import torch

        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(px), batch):
                x = self._normalise(px[i:i + batch])
                with contextlib.nullcontext() if self._rt is None else self._rt.autocast():
                    y = model.forward_intensity(x if self._rt is None else self._rt.batch(x))
                out.append(y.float().cpu().numpy().reshape(-1))
        pred = np.concatenate(out).astype(np.float64) if out else np.zeros(0)
        return np.clip(pred, 0.0, 1.0)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The rating of each image, ``float64 [N]`` in 0..1."""
        import torch

        return self._predict_rows(self.model_, torch.from_numpy(self._pixels(images)))

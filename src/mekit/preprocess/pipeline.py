"""The preprocessing pipeline: one function, :func:`preprocess`, behind ``mekit preprocess``.

For each clip of a :class:`~mekit.data.schema.SampleTable`:

1. **align** - fit ONE :class:`~mekit.preprocess.face.FaceAlignment` on the onset frame
   (falling back to later frames when the onset shows no face) and use it for every frame of
   the clip, so crop jitter never becomes flow;
2. **apex** - spot the apex (:func:`mekit.preprocess.apex.spot_apex` on the aligned clip) where
   the annotation has none, or always (``spot_apex='always'``, to evaluate spotting);
3. **flow** - the aligned onset, apex and offset crops at ``size`` px, TV-L1 (or Farneback,
   DIS) flow onset->apex (and apex->offset), optical strain, landmarks and ROIs in crop pixels;
   the u/v/strain stacks at ``stack_sizes`` are derived from it on access;
4. **frames** - optionally, sampled frames (:mod:`mekit.preprocess.temporal`) aligned at
   ``frame_size`` px, optionally motion-magnified (:mod:`mekit.preprocess.magnify`).

Every stage's output is cached per sample id (:mod:`mekit.preprocess.cache`) under a key that
hashes every parameter it depends on, including those of the stages before it: changing the
flow method or the crop size reuses the cached alignment; changing the sampling reuses the
flow. Clips run in parallel in a process pool whose workers create their face aligner and
flow objects once; workers write to the cache and return only small metadata, so memory stays
at a few clips whatever the corpus size. With everything cached no worker starts and
mediapipe is never imported. A clip that fails (unreadable frame, no face) is reported in
``result.skipped`` with its reason and the run goes on; a run killed part-way resumes from
what the cache already holds.

A planned preprocessing (:func:`planned`) runs several configurations once each, as one
``preprocess`` stage, and then answers every request one of its results covers (:func:`covers`)
with a view of that result: feature extractors that each call :func:`preprocess` for what they
need then share one pass over the clips (the plan comes from
:func:`mekit.features.plan_preprocessing`).

Frames are handled in OpenCV's BGR order inside the pipeline (what ``cv2.imread`` gives and
what :class:`~mekit.preprocess.face.FaceAligner` expects); crops and frames handed out by
:class:`PreprocessResult` are RGB.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mekit import events
from mekit.config import Section
from mekit.errors import ConfigError, DataError, MekitError
from mekit.fingerprint import sample_fingerprint
from mekit.preprocess.cache import Cache, canonical_json, param_key
from mekit.procs import die_with_parent

log = logging.getLogger(__name__)

#: Bump a stage's version when its code changes what it writes, so old entries are not reused.
STAGE_VERSIONS: dict[str, int] = {"align": 1, "apex": 1, "flow": 2, "frames": 2}

PAIRS = ("onset_apex", "apex_offset")
SPOT_POLICIES = ("missing", "always")
#: Frame samplers: those of :data:`mekit.preprocess.temporal.SAMPLERS` plus ``all`` (every
#: frame from onset to offset) and ``interpolate`` (every frame, resampled in time to ``n``).
EXTRA_SAMPLERS = ("all", "interpolate")
TIMING_KEYS = ("read", "decode", "face", "apex", "warp", "flow", "frames", "write")

# ``face_cropped`` is an optional column a loader sets where it knows its frames are face crops
# (CASME II ``Cropped``, small image-folder stills): detector 'auto' then means 'none' for the row
_SOURCE_COLS = ("sample_id", "dataset", "media", "path", "frame_template", "onset", "apex", "offset", "fps",
                "face_cropped")


# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreprocessConfig(Section):
    """Everything that decides what :func:`preprocess` computes (and so the cache keys); also the
    typed ``preprocess`` section of an experiment config (:data:`mekit.config.SECTIONS`).

    ``workers``, ``worker_timeout``, ``cache``, ``cache_dir`` and ``fsync`` change how, not what, and are not part
    of any key.
    """

    #: face detector: 'auto' (mediapipe, then Haar; 'none' for rows a loader marked
    #: ``face_cropped``), 'mediapipe', 'haar', or 'none' (frames are already face crops: the
    #: whole frame, eye line levelled). Still images go through the same stage as clips.
    detector: str = "auto"
    #: widen the face box by this fraction of its side in total
    margin: float = 0.2
    #: level the eye line
    align: bool = True
    #: run the 468-point face mesh (landmarks and landmark ROIs)
    landmarks: bool = True
    #: side of the square face crop the flow is computed on (pixels)
    size: int = 128
    #: flow method, a name of :data:`mekit.preprocess.flow.FLOW_METHODS`, and its parameters
    flow: str = "tvl1"
    flow_params: dict[str, Any] = field(default_factory=dict)
    #: frame pairs to compute flow for: 'onset_apex', 'apex_offset'; () for no flow at all
    pairs: tuple[str, ...] = ("onset_apex",)
    #: add optical strain as the stacks' third channel (off: stacks have u and v only)
    strain: bool = True
    #: sides of the u/v/strain stacks handed to models (28 for STSTNet-likes, 224 for ImageNet CNNs)
    stack_sizes: tuple[int, ...] = (28,)
    #: stack normalisation, see :func:`mekit.preprocess.flow.flow_stack`: minmax, fixed or none
    normalise: str = "minmax"
    #: None, or {'method': uniform|apex|window|all|interpolate, plus n / window / stride}
    sampling: dict[str, Any] | None = None
    #: side of the sampled frames (pixels)
    frame_size: int = 112
    #: None, or magnification parameters for :func:`mekit.preprocess.magnify.magnify`
    #: (low_hz, high_hz, alpha, ...), applied to the aligned clip before sampling
    magnify: dict[str, Any] | None = None
    #: 'missing': spot the apex only where the annotation has none; 'always': spot it for every
    #: clip and use the spotted one (to evaluate a pipeline as if no apex were annotated)
    spot_apex: str = "missing"
    #: parameters of :func:`mekit.preprocess.apex.spot_apex` (method, smooth_sigma, ...)
    apex_params: dict[str, Any] = field(default_factory=dict)
    #: decode JPEGs at 1/2, 1/4 or 1/8 scale: 'auto' picks the largest factor that keeps at
    #: least one decoded pixel per output pixel (see :func:`_choose_reduce`); 1 decodes in full
    decode_reduce: int | str = "auto"
    #: worker processes (0: every core available)
    workers: int = 0
    #: seconds without any finished clip after which the worker pool is presumed hung and the
    #: remaining clips run in-process (a safety net; a clip takes well under a second normally)
    worker_timeout: float = 120.0
    #: use the on-disk cache (off: results go to a temporary folder removed with the result)
    cache: bool = True
    #: cache folder (default: mekit.paths.cache_dir() / 'preprocess')
    cache_dir: str | None = None
    #: fsync each cache entry before it replaces the old one (crash safety; a little slower)
    fsync: bool = True

    def __post_init__(self) -> None:
        from mekit.preprocess.face import DETECTORS
        from mekit.preprocess.flow import FLOW_METHODS, NORMALISATIONS

        if self.detector not in DETECTORS:
            raise ConfigError(f"preprocess.detector: unknown face detector {self.detector!r}; "
                              f"expected one of {DETECTORS}")
        if not 0.0 <= float(self.margin) <= 3.0:
            raise ConfigError(f"preprocess.margin must be between 0 and 3, got {self.margin!r}")
        for name in ("size", "frame_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 8:
                raise ConfigError(f"preprocess.{name} must be an integer of at least 8 pixels, got {v!r}")
        FLOW_METHODS.get(self.flow)  # ConfigError naming the known methods
        object.__setattr__(self, "pairs", tuple(self.pairs))
        bad = [p for p in self.pairs if p not in PAIRS]
        if bad or len(set(self.pairs)) != len(self.pairs):
            raise ConfigError(f"preprocess.pairs: {list(self.pairs)} is not a list of distinct pairs "
                              f"from {PAIRS}")
        object.__setattr__(self, "stack_sizes", tuple(self.stack_sizes))
        if not self.stack_sizes or any(not isinstance(s, int) or s < 1 for s in self.stack_sizes):
            raise ConfigError(f"preprocess.stack_sizes must be positive integers (e.g. [28, 224]), "
                              f"got {list(self.stack_sizes)}")
        if self.normalise not in NORMALISATIONS:
            raise ConfigError(f"preprocess.normalise: unknown normalisation {self.normalise!r}; "
                              f"expected one of {NORMALISATIONS}")
        if self.spot_apex not in SPOT_POLICIES:
            raise ConfigError(f"preprocess.spot_apex must be one of {SPOT_POLICIES}, got {self.spot_apex!r}")
        if self.decode_reduce not in ("auto", 1, 2, 4, 8):
            raise ConfigError(f"preprocess.decode_reduce must be 'auto', 1, 2, 4 or 8, got {self.decode_reduce!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(f"preprocess.workers must be 0 (all cores) or a positive integer, "
                              f"got {self.workers!r}")
        if self.sampling is not None:
            self._check_sampling()
        if self.magnify is not None and self.sampling is None:
            raise ConfigError("preprocess.magnify applies to sampled frames; set preprocess.sampling too "
                              "(e.g. {method: all})")

    def _check_sampling(self) -> None:
        from mekit.preprocess.temporal import SAMPLERS

        s = dict(self.sampling or {})
        method = s.pop("method", None)
        known = sorted([*SAMPLERS.names(), *EXTRA_SAMPLERS])
        if method not in known:
            raise ConfigError(f"preprocess.sampling.method: {method!r} is not a frame sampler; "
                              f"expected one of {known}")
        if method == "all":
            expected: set[str] = set()
        elif method == "interpolate":
            expected = {"n"}
        else:
            expected = set(SAMPLERS.meta(method)["params"])
        if set(s) != expected:
            raise ConfigError(f"preprocess.sampling: method {method!r} takes {sorted(expected)}, "
                              f"got {sorted(s)}")

    # -- (de)serialisation ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
                  ) -> PreprocessConfig:
        """Build from a mapping (e.g. YAML), then apply dotted overrides (``flow_params.nscales``).

        Unknown keys raise :class:`~mekit.errors.ConfigError` naming the key.
        """
        import copy

        from mekit.config import from_dict, set_dotted

        raw = copy.deepcopy(dict(data or {}))
        for k, v in (overrides or {}).items():
            set_dotted(raw, k, v)
        return from_dict(cls, raw, where="preprocess")

    @classmethod
    def from_yaml(cls, path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> PreprocessConfig:
        """Load from a YAML file of PreprocessConfig fields (a top-level ``preprocess:`` section,
        as in an experiment config, is accepted too)."""
        from mekit.config import read_yaml_mapping

        raw = read_yaml_mapping(path, "a mapping of preprocessing settings")
        if set(raw) == {"preprocess"} or ("preprocess" in raw and isinstance(raw["preprocess"], dict)
                                          and "data" in raw):
            raw = raw["preprocess"] or {}
        return cls.from_dict(raw, overrides)

    def replace(self, **changes: Any) -> PreprocessConfig:
        """A copy with some fields changed (validated again)."""
        return PreprocessConfig.from_dict({**self.to_dict(), **changes})

    @property
    def n_workers(self) -> int:
        if self.workers:
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------
# cache keys: which parameters each stage depends on
# ---------------------------------------------------------------------------------------
def _clean(v: Any) -> Any:
    if v is None:
        return None
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def _rows(table: Any) -> list[dict[str, Any]]:
    df = table.df
    cols = [c for c in _SOURCE_COLS if c in df.columns]
    out = []
    for rec in df[cols].to_dict("records"):
        r = {k: _clean(v) for k, v in rec.items()}
        for k in ("onset", "apex", "offset"):
            if r.get(k) is not None:
                r[k] = int(r[k])
        out.append(r)
    return out


def _needs_spotting(row: Mapping[str, Any], cfg: PreprocessConfig) -> bool:
    if row["media"] in ("image", "flow"):
        return False
    return cfg.spot_apex == "always" or row.get("apex") is None


def _sampling_uses_apex(cfg: PreprocessConfig) -> bool:
    return bool(cfg.sampling) and cfg.sampling.get("method") in ("apex", "window")


#: ``sample_fingerprint`` results held for the life of one planned preprocessing (see
#: :func:`planned`), keyed by what a fingerprint reads (media kind and path): a planned
#: preprocessing fingerprints each clip's files once, however many configurations it runs and
#: however many extractors then ask for them. None outside one, so each run outside sees a frame
#: edited since the previous run, and a planned preprocessing sees one edited before it started.
_FINGERPRINTS: contextvars.ContextVar[dict[tuple[Any, Any], str] | None] = contextvars.ContextVar(
    "mekit_preprocess_fingerprints", default=None)


def _fingerprint(row: Mapping[str, Any]) -> str:
    """:func:`~mekit.fingerprint.sample_fingerprint` of ``row``, memoised inside a planned preprocessing."""
    memo = _FINGERPRINTS.get()
    if memo is None:
        return sample_fingerprint(row)
    k = (row.get("media"), row.get("path"))
    if k not in memo:
        memo[k] = sample_fingerprint(row)
    return memo[k]


def stage_keys(row: Mapping[str, Any], cfg: PreprocessConfig) -> dict[str, str]:
    """Cache key of every stage this clip needs, from the parameters each depends on."""
    # The alignment depends on the frames it may be fitted on (onset first, then frames spread
    # to the offset), not on the apex: correcting an apex annotation recomputes flow only.
    src = {k: row.get(k) for k in ("media", "path", "frame_template", "onset", "offset")}
    # the files' fingerprint (frame folders: names, sizes and mtimes; small images: content hash),
    # so a frame fixed or re-exported after a run is recomputed, never served from the old entry
    src["files"] = _fingerprint(row)
    keys: dict[str, str] = {}
    if row["media"] == "flow":
        if cfg.pairs:
            keys["flow"] = param_key("flow", {"source": src, "media": "flow"}, STAGE_VERSIONS["flow"])
        return keys
    # the detector this row really gets (see face.detector_for): a pre-cropped row under 'auto'
    # shares its entries with detector 'none', and every explicit setting keeps the key it had
    keys["align"] = param_key("align", {"source": src, "detector": _detector(row, cfg), "margin": cfg.margin,
                                        "align": cfg.align, "landmarks": cfg.landmarks},
                              STAGE_VERSIONS["align"])
    apex_ref: Any = {"annotation": row.get("apex")}
    if _needs_spotting(row, cfg) and (cfg.pairs or _sampling_uses_apex(cfg)):
        keys["apex"] = param_key("apex", {"align": keys["align"], "size": cfg.size,
                                          "params": cfg.apex_params, "reduce": cfg.decode_reduce},
                                 STAGE_VERSIONS["apex"])
        apex_ref = keys["apex"]
    if cfg.pairs:
        keys["flow"] = param_key("flow", {"align": keys["align"], "apex": apex_ref, "size": cfg.size,
                                          "method": cfg.flow, "params": cfg.flow_params,
                                          "pairs": list(cfg.pairs), "strain": cfg.strain,
                                          "reduce": cfg.decode_reduce}, STAGE_VERSIONS["flow"])
    if cfg.sampling:
        keys["frames"] = param_key("frames", {
            "align": keys["align"], "apex": apex_ref if _sampling_uses_apex(cfg) else None,
            "size": cfg.frame_size, "sampling": cfg.sampling, "magnify": cfg.magnify,
            "fps": row.get("fps") if cfg.magnify else None, "reduce": cfg.decode_reduce},
            STAGE_VERSIONS["frames"])
    return keys


def _detector(row: Mapping[str, Any], cfg: PreprocessConfig) -> str:
    from mekit.preprocess.face import detector_for

    return detector_for(cfg.detector, row.get("face_cropped"))


def _final_stages(keys: Mapping[str, str]) -> list[str]:
    final = [s for s in ("flow", "frames") if s in keys]
    return final or [s for s in ("align",) if s in keys]


# ---------------------------------------------------------------------------------------
# per-clip work (runs in worker processes, or in-process for one worker)
# ---------------------------------------------------------------------------------------
_STATE: dict[str, Any] = {}


_FORK_LEFTOVERS: list[Any] = []


def _init_worker(parent: int) -> None:
    """Pool initializer: no inherited aligner, and Ctrl-C left to the parent (which terminates
    the pool).

    A forked copy of the parent's MediaPipe graphs must be neither used nor closed (their
    threads do not exist in the child), so it is parked where it is never collected. OpenCV's
    thread count is NOT set here: ``cv2.setNumThreads`` in a forked child whose parent had
    started OpenCV's thread pool hangs forever (measured with opencv 4.14); :func:`_run` sets it
    to 1 in the parent just around the fork instead.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)  # a killed run leaves no worker behind
    _FORK_LEFTOVERS.append(dict(_STATE))
    _STATE.clear()


def _needs_mediapipe(cfg: PreprocessConfig) -> bool:
    """Whether aligning with ``cfg`` may create MediaPipe graphs (its detector or face mesh)."""
    return cfg.detector in ("auto", "mediapipe") or bool(cfg.landmarks)


def _aligner(cfg: PreprocessConfig, detector: str | None = None) -> Any:
    detector = cfg.detector if detector is None else detector
    key = (detector, cfg.margin, cfg.align, cfg.landmarks)
    if _STATE.get("aligner_key") != key:
        from mekit.preprocess.face import FaceAligner

        if _STATE.get("aligner") is not None:
            _STATE["aligner"].close()
        _STATE["aligner"] = FaceAligner(detector=detector, margin=cfg.margin, align=cfg.align,
                                        landmarks=cfg.landmarks)
        _STATE["aligner_key"] = key
    return _STATE["aligner"]


def _close_state() -> None:
    a = _STATE.pop("aligner", None)
    _STATE.pop("aligner_key", None)
    if a is not None:
        a.close()


def _config(cfg_dict: dict[str, Any]) -> PreprocessConfig:
    text = canonical_json(cfg_dict)
    if _STATE.get("cfg_text") != text:
        _STATE["cfg"] = PreprocessConfig.from_dict(cfg_dict)
        _STATE["cfg_text"] = text
    return _STATE["cfg"]


class _Timer:
    def __init__(self) -> None:
        self.t: dict[str, float] = dict.fromkeys(TIMING_KEYS, 0.0)

    def __call__(self, key: str) -> _Timer._Span:
        return _Timer._Span(self, key)

    class _Span:
        def __init__(self, owner: _Timer, key: str) -> None:
            self.owner, self.key = owner, key

        def __enter__(self) -> None:
            self.t0 = time.perf_counter()

        def __exit__(self, *exc: object) -> None:
            self.owner.t[self.key] = self.owner.t.get(self.key, 0.0) + time.perf_counter() - self.t0


def _choose_reduce(matrix: np.ndarray, policy: int | str, media: str) -> int:
    """Decoding scale: the largest of 1, 2, 4, 8 with at least one decoded pixel per output pixel.

    ``matrix`` maps full-resolution pixels to the largest output crop. libjpeg decodes at
    1/2, 1/4 or 1/8 in the DCT domain (``cv2.IMREAD_REDUCED_*``), skipping most of the work;
    CASME II frames (about 280 px) decode at half size in half the time, and the half-size
    face still has more pixels than a 112 px crop. Videos are decoded in full (the decoder
    has no reduced mode).
    """
    if media != "frames" and media != "image":
        return 1
    if policy != "auto":
        return int(policy)
    scale = math.sqrt(abs(float(np.linalg.det(np.asarray(matrix)[:, :2]))))  # output px per source px
    src_per_out = 1.0 / scale if scale > 0 else 1.0
    r = 1
    for c in (2, 4, 8):
        if c <= src_per_out + 1e-9:
            r = c
    return r


def _warp(img: np.ndarray, m_full: np.ndarray, reduce: int, size: int) -> np.ndarray:
    """Aligned ``size`` crop of a frame decoded at 1/``reduce``: one warpAffine, anti-aliased.

    Like :meth:`FaceAlignment.apply`: while the warp still shrinks by 2x or more, the image is
    first halved with ``cv2.pyrDown``, so fine texture does not alias into flicker that flow
    would read as motion; the replicated border is the same in every frame of the clip.
    """
    import cv2

    from mekit.preprocess.io import reduced_matrix

    m = reduced_matrix(m_full, reduce)
    scale = math.sqrt(abs(float(np.linalg.det(m[:, :2]))))
    src = img
    while scale < 0.5 and min(src.shape[:2]) >= 16:
        src = cv2.pyrDown(src)
        m = m @ np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])  # pyrDown: pixel i sits on source pixel 2i
        scale *= 2.0
    return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class _Clip:
    """One clip's frames, decoded on demand and memoised for the few key frames."""

    def __init__(self, row: Mapping[str, Any], timer: _Timer) -> None:
        self.row = row
        self.timer = timer
        self._memo: dict[tuple[int, int], np.ndarray] = {}

    def frame(self, n: int, reduce: int = 1, keep: bool = True) -> np.ndarray:
        from mekit.preprocess.io import read_frames

        k = (int(n), reduce)
        img = self._memo.get(k)
        if img is None:
            with self.timer("decode"):
                img = read_frames(self.row, [n], reduce=reduce, rgb=False)[0]
            if keep:
                self._memo[k] = img
        return img

    def frames(self, numbers: Iterable[int], reduce: int) -> Iterator[np.ndarray]:
        """Decode a run of frames one at a time (streaming keeps memory to one frame)."""
        from mekit.preprocess.io import read_frames

        nums = [int(n) for n in numbers]
        if self.row["media"] == "video":  # one sequential decode for the whole run
            with self.timer("decode"):
                arr = read_frames(self.row, nums, reduce=reduce, rgb=False)
            yield from arr
            return
        for n in nums:
            k = (n, reduce)
            if k in self._memo:
                yield self._memo[k]
            else:
                with self.timer("decode"):
                    img = read_frames(self.row, [n], reduce=reduce, rgb=False)[0]
                yield img


def _fit(clip: _Clip, cfg: PreprocessConfig, onset: int, offset: int) -> tuple[Any, int]:
    """Fit the clip's alignment on the onset, else on later frames; (alignment, frame number).

    The fallbacks are five frames spread evenly to the offset (not the apex, so the
    alignment, and its cache entry, do not depend on the apex annotation).
    """
    from mekit.preprocess.face import NoFaceError

    aligner = _aligner(cfg, _detector(clip.row, cfg))
    tried: list[str] = []
    candidates = [onset]
    if offset > onset:
        candidates += np.linspace(onset, offset, 6)[1:].round().astype(int).tolist()
    for n in dict.fromkeys(candidates):
        img = clip.frame(n)
        try:
            with clip.timer("face"):
                return aligner.fit(img, name=f"frame {n}"), n
        except NoFaceError as e:
            tried.append(str(e))
    raise NoFaceError(f"no face in any of the {len(tried)} frames tried (onset first): {tried[0]}"
                      + (f" ... and {len(tried) - 1} more" if len(tried) > 1 else ""))


def _process_clip(task: tuple[dict[str, Any], dict[str, Any], dict[str, str], str, bool]) -> dict[str, Any]:
    """Compute (or reuse) every stage of one clip; returns small metadata, never pixels."""
    row, cfg_dict, keys, cache_root, fsync = task
    cfg = _config(cfg_dict)
    cache = Cache(cache_root, enabled=True, fsync=fsync)
    timer = _Timer()
    sid = row["sample_id"]
    try:
        meta = _run_clip(row, cfg, keys, cache, timer)
        return {"sample_id": sid, "ok": True, **meta, "timings": timer.t}
    except ConfigError:
        raise  # a bad setting fails every clip: stop the run with the message
    except MekitError as e:
        return {"sample_id": sid, "ok": False, "reason": str(e), "timings": timer.t}
    except Exception as e:  # noqa: BLE001 - one bad clip never sinks the run
        log.warning("sample %s failed: %s: %s", sid, type(e).__name__, e,
                    exc_info=log.isEnabledFor(logging.DEBUG))
        return {"sample_id": sid, "ok": False, "reason": f"{type(e).__name__}: {e}", "timings": timer.t}


def _save(cache: Cache, timer: _Timer, stage: str, key: str, sid: str, arrays: dict[str, np.ndarray],
          meta: dict[str, Any]) -> None:
    with timer("write"):
        cache.save(stage, key, sid, arrays, meta)


def _load(cache: Cache, timer: _Timer, stage: str, key: str, sid: str) -> tuple[dict, dict] | None:
    with timer("read"):
        return cache.load(stage, key, sid)


def _run_clip(row: dict[str, Any], cfg: PreprocessConfig, keys: dict[str, str], cache: Cache,
              timer: _Timer) -> dict[str, Any]:
    from mekit.preprocess.io import key_frames

    sid = row["sample_id"]
    computed: list[str] = []
    if row["media"] == "flow":
        if "flow" in keys and _load(cache, timer, "flow", keys["flow"], sid) is None:
            from mekit.preprocess.io import read_flow_image

            with timer("decode"):
                img = read_flow_image(row["path"])
            info = {"media": "flow", "onset": 0, "apex": 0, "offset": 0}
            _save(cache, timer, "flow", keys["flow"], sid, {"flow_image": img}, info)
            computed.append("flow")
        return {"media": "flow", "onset": 0, "apex": 0, "offset": 0, "computed": computed}

    onset, apex_ann, offset = key_frames(row)
    clip = _Clip(row, timer)

    # which products are missing
    missing = {s: _load(cache, timer, s, keys[s], sid) is None for s in ("flow", "frames") if s in keys}

    # 1. alignment (one per clip)
    from mekit.preprocess.face import FaceAlignment

    hit = _load(cache, timer, "align", keys["align"], sid)
    if hit is not None:
        alignment = FaceAlignment.from_dict(hit[1]["alignment"])
        fit_frame = int(hit[1]["fit_frame"])
    else:
        alignment, fit_frame = _fit(clip, cfg, onset, offset)
        _save(cache, timer, "align", keys["align"], sid, {},
              {"alignment": alignment.to_dict(), "fit_frame": fit_frame})
        computed.append("align")
    base = {"media": row["media"], "onset": onset, "offset": offset, "apex_annotated": apex_ann,
            "fit_frame": fit_frame, "face_source": alignment.source,
            "crop_outside": round(alignment.outside_fraction(), 4)}
    if not any(missing.values()):  # only the alignment was asked for (or the rest is cached)
        return {**base, "apex": apex_ann, "apex_spotted": None, "computed": computed}

    # Each stage picks its decoding scale from its own output size, so a stage's pixels depend
    # only on the parameters in its cache key.
    def reduce_for(px: int) -> int:
        return _choose_reduce(alignment.warp_matrix(px), cfg.decode_reduce, row["media"])

    # 2. apex
    apex_spotted = None
    if "apex" in keys:
        hit = _load(cache, timer, "apex", keys["apex"], sid)
        if hit is not None:
            apex_spotted = int(hit[1]["apex"])
        else:
            import cv2

            from mekit.preprocess.apex import spot_apex

            m = alignment.warp_matrix(cfg.size)
            reduce = reduce_for(cfg.size)
            numbers = list(range(onset, offset + 1))
            crops = []
            for img in clip.frames(numbers, reduce):
                with timer("warp"):
                    crops.append(cv2.cvtColor(_warp(img, m, reduce, cfg.size), cv2.COLOR_BGR2GRAY))
            with timer("apex"):
                idx = spot_apex(np.stack(crops), rois=alignment.rois(cfg.size), **cfg.apex_params)
            apex_spotted = numbers[int(idx)]
            del crops
            _save(cache, timer, "apex", keys["apex"], sid, {}, {"apex": apex_spotted})
            computed.append("apex")
    apex = apex_spotted if apex_spotted is not None and (cfg.spot_apex == "always" or apex_ann is None) \
        else apex_ann
    if apex is None:  # no apex and none needed (no flow, sampling ignores it): the middle frame
        apex = (onset + offset) // 2
    info = {**base, "apex": apex, "apex_spotted": apex_spotted}

    # 3. flow
    if missing.get("flow"):
        info["reduce"] = reduce_for(cfg.size)
        _flow_stage(clip, cfg, alignment, info["reduce"], keys["flow"], cache, timer, info)
        computed.append("flow")

    # 4. frames
    if missing.get("frames"):
        info["frames_reduce"] = reduce_for(cfg.frame_size)
        _frames_stage(clip, cfg, alignment, info["frames_reduce"], keys["frames"], cache, timer, info)
        computed.append("frames")
    return {**info, "computed": computed}


def _rois_arrays(alignment: Any, size: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    rois = alignment.rois(size)
    names = list(rois)
    boxes = np.array([rois[n] for n in names], dtype=np.int32).reshape(-1, 4)
    lm = alignment.landmarks_px(size)
    lm = np.zeros((0, 2), np.float32) if lm is None else np.asarray(lm, np.float32)
    return boxes, names, lm


def _flow_stage(clip: _Clip, cfg: PreprocessConfig, alignment: Any, reduce: int, key: str, cache: Cache,
                timer: _Timer, info: dict[str, Any]) -> None:
    import cv2

    from mekit.preprocess.flow import compute_flow, optical_strain

    m = alignment.warp_matrix(cfg.size)
    arrays: dict[str, np.ndarray] = {}
    grey: dict[str, np.ndarray] = {}
    for name in ("onset", "apex", "offset"):
        img = clip.frame(info[name], reduce)
        with timer("warp"):
            crop = _warp(img, m, reduce, cfg.size)
            arrays[name] = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
            grey[name] = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    for pair in cfg.pairs:
        a, b = pair.split("_")
        with timer("flow"):
            f = compute_flow(grey[a], grey[b], cfg.flow, **cfg.flow_params)
            arrays[f"uv_{pair}"] = f
            if cfg.strain:
                arrays[f"strain_{pair}"] = optical_strain(f)
    boxes, names, lm = _rois_arrays(alignment, cfg.size)
    arrays["roi_boxes"], arrays["landmarks"] = boxes, lm
    _save(cache, timer, "flow", key, clip.row["sample_id"], arrays, {**info, "roi_names": names})


def _frames_stage(clip: _Clip, cfg: PreprocessConfig, alignment: Any, reduce: int, key: str, cache: Cache,
                  timer: _Timer, info: dict[str, Any]) -> None:
    import cv2

    s = dict(cfg.sampling or {})
    method = s.pop("method")
    onset, offset, apex = info["onset"], info["offset"], info["apex"]
    m = alignment.warp_matrix(cfg.frame_size)
    all_numbers = list(range(onset, offset + 1))
    if method in ("all", "interpolate") or cfg.magnify:
        decode = all_numbers
    else:
        from mekit.preprocess.temporal import sample_frames

        decode = [int(n) for n in sample_frames(method, onset, apex, offset, **s)]
    # decode each distinct frame once (samplers repeat frames of short clips)
    uniq = list(dict.fromkeys(decode))
    pos = {n: i for i, n in enumerate(uniq)}
    stack = np.empty((len(uniq), cfg.frame_size, cfg.frame_size, 3), np.uint8)
    for i, img in enumerate(clip.frames(uniq, reduce)):
        with timer("warp"):
            stack[i] = cv2.cvtColor(_warp(img, m, reduce, cfg.frame_size), cv2.COLOR_BGR2RGB)
    with timer("frames"):
        if cfg.magnify:
            from mekit.preprocess.magnify import magnify

            fps = clip.row.get("fps")
            if fps is None:
                raise DataError(f"sample {clip.row['sample_id']}: magnification needs the clip's frame "
                                "rate, and the table has none", expected="an fps value")
            mag = magnify(stack, float(fps), **cfg.magnify)
            stack = np.clip(np.rint(np.asarray(mag, dtype=np.float32)), 0, 255).astype(np.uint8) \
                if np.asarray(mag).dtype != np.uint8 else np.asarray(mag)
        if method == "interpolate":
            from mekit.preprocess.temporal import interpolate

            n = int(s["n"])
            frames = interpolate(stack, n)
            numbers = (onset + np.arange(n) * (offset - onset) / max(n - 1, 1)).astype(np.float64)
        elif method == "all":
            frames, numbers = stack, np.asarray(all_numbers, dtype=np.int64)
        else:
            if cfg.magnify:
                from mekit.preprocess.temporal import sample_frames

                decode = [int(n) for n in sample_frames(method, onset, apex, offset, **s)]
            frames = stack[[pos[n] for n in decode]]
            numbers = np.asarray(decode, dtype=np.int64)
    boxes, names, lm = _rois_arrays(alignment, cfg.frame_size)
    _save(cache, timer, "frames", key, clip.row["sample_id"],
          {"frames": frames, "frame_numbers": numbers, "roi_boxes": boxes, "landmarks": lm},
          {**info, "roi_names": names})


# ---------------------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------------------
class PreprocessResult:
    """What :func:`preprocess` produced, read lazily from the cache by sample id.

    ``result[sample_id]`` is a dict:

    - ``'onset'``, ``'apex'``, ``'offset'``: aligned RGB crops ``uint8[size, size, 3]``;
    - ``'flow'``: the u/v/strain stack ``float32[3, s, s]`` at the first of ``stack_sizes``, and
      ``'flow_<s>'`` at each size; ``'flow_apex_offset'`` (and ``_<s>``) when that pair is asked;
      two channels (u, v) when ``strain`` is off;
    - ``'uv_onset_apex'`` (``float32[size, size, 2]``, crop pixels) and ``'strain_onset_apex'``
      (``float32[size, size]``): the raw flow and strain (likewise for ``apex_offset``);
    - ``'landmarks'`` (``float32[N, 2]``, crop pixels; empty without a mesh) and ``'rois'``
      (name -> ``(x0, y0, x1, y1)`` in crop pixels, exclusive ends);
    - ``'frames'`` (``uint8[T, frame_size, frame_size, 3]`` RGB), ``'frame_numbers'``,
      ``'frame_landmarks'``, ``'frame_rois'``, when sampling is on;
    - ``'onset_frame'``, ``'apex_frame'``, ``'offset_frame'``: the frame numbers used.

    For a flow-image sample only the ``'flow'`` stacks (resized from the image) and, for the
    onset->apex pair, ``'uv_onset_apex'``, ``'strain_onset_apex'`` (recovered from the image at
    its own size, :func:`mekit.preprocess.flow.flow_from_image`), empty ``'landmarks'`` and the
    generic ``'rois'`` are present; any other key is a DataError naming what is missing.
    Nothing is held in memory beyond one sample at a time.
    """

    def __init__(self, config: PreprocessConfig, cache: Cache, keys: dict[str, dict[str, str]],
                 meta: dict[str, dict[str, Any]], skipped: dict[str, str], timings: dict[str, float],
                 order: list[str]) -> None:
        self.config = config
        self.cache = cache
        self._keys = keys
        self.meta = meta
        self.skipped = skipped
        self.timings = timings
        self.sample_ids = [s for s in order if s in meta]
        self._cleanup: Any = None
        #: the planned result a view reads from (kept alive with its temporary folder), else None
        self._source: PreprocessResult | None = None

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.sample_ids)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self.meta

    def __repr__(self) -> str:
        return (f"PreprocessResult({len(self)} samples, {len(self.skipped)} skipped, "
                f"{self.n_computed} computed, {self.n_cached} from cache)")

    @property
    def n_computed(self) -> int:
        """Samples for which at least one stage was computed in this run."""
        return sum(1 for m in self.meta.values() if m.get("computed"))

    @property
    def n_cached(self) -> int:
        """Samples served entirely from the cache."""
        return len(self.meta) - self.n_computed

    def _entry(self, stage: str, sid: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        hit = self.cache.load(stage, self._keys[sid][stage], sid)
        if hit is None:
            raise DataError(f"sample {sid}: its {stage} cache entry in {self.cache.root} is gone or corrupt",
                            expected="run preprocess again to recompute it")
        return hit

    def __getitem__(self, sample_id: str) -> dict[str, Any]:
        if sample_id in self.skipped:
            raise KeyError(f"{sample_id} was skipped: {self.skipped[sample_id]}")
        if sample_id not in self.meta:
            raise KeyError(f"{sample_id} is not in this preprocessing result")
        cfg = self.config
        m = self.meta[sample_id]
        keys = self._keys[sample_id]
        out: dict[str, Any] = {"onset_frame": m.get("onset"), "apex_frame": m.get("apex"),
                               "offset_frame": m.get("offset")}
        if "flow" in keys:
            arrays, meta = self._entry("flow", sample_id)
            if "flow_image" in arrays:
                out = _FlowImageItem(sample_id, out)
                self._flow_image_stacks(arrays["flow_image"], out)
            else:
                self._flow_stacks(arrays, meta, out)
        if "frames" in keys:
            arrays, meta = self._entry("frames", sample_id)
            out["frames"] = arrays["frames"]
            out["frame_numbers"] = arrays["frame_numbers"]
            out["frame_landmarks"] = arrays["landmarks"]
            out["frame_rois"] = {n: tuple(int(v) for v in b) for n, b in zip(meta["roi_names"], arrays["roi_boxes"])}
        if "flow" not in keys and "frames" not in keys and "align" in keys:
            from mekit.preprocess.face import FaceAlignment

            _, meta = self._entry("align", sample_id)
            al = FaceAlignment.from_dict(meta["alignment"])
            lm = al.landmarks_px(cfg.size)
            out["landmarks"] = np.zeros((0, 2), np.float32) if lm is None else lm.astype(np.float32)
            out["rois"] = al.rois(cfg.size)
        return out

    def alignment(self, sample_id: str) -> Any:
        """The sample's :class:`~mekit.preprocess.face.FaceAlignment` (from its cache entry), e.g.
        to crop a still image at any size with ``alignment.apply(image, size)``."""
        from mekit.preprocess.face import FaceAlignment

        if sample_id in self.skipped:
            raise KeyError(f"{sample_id} was skipped: {self.skipped[sample_id]}")
        if "align" not in self._keys.get(sample_id, {}):
            raise KeyError(f"{sample_id} has no face alignment (a flow image, or not in this result)")
        _, meta = self._entry("align", sample_id)
        return FaceAlignment.from_dict(meta["alignment"])

    def _flow_stacks(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], out: dict[str, Any]) -> None:
        from mekit.preprocess.flow import flow_stack

        cfg = self.config
        for name in ("onset", "apex", "offset"):
            out[name] = arrays[name]
        out["landmarks"] = arrays["landmarks"]
        out["rois"] = {n: tuple(int(v) for v in b) for n, b in zip(meta["roi_names"], arrays["roi_boxes"])}
        for pair in cfg.pairs:
            f = arrays[f"uv_{pair}"]
            st = arrays.get(f"strain_{pair}")
            out[f"uv_{pair}"] = f
            if st is not None:
                out[f"strain_{pair}"] = st
            name = "flow" if pair == "onset_apex" else f"flow_{pair}"
            for s in cfg.stack_sizes:
                stk = flow_stack(f, st, s, normalise=cfg.normalise)
                out[f"{name}_{s}"] = stk if cfg.strain else stk[:2]
            out[name] = out[f"{name}_{cfg.stack_sizes[0]}"]

    def _flow_image_stacks(self, img: np.ndarray, out: dict[str, Any]) -> None:
        """A flow-image sample: its stacks (the image resized), and for the onset->apex pair the
        flow and strain :func:`~mekit.preprocess.flow.flow_from_image` recovers (at the image's
        own size, in units of the sample's range; see there what is lost), with the generic ROI
        layout (:data:`~mekit.preprocess.face.DEFAULT_ROIS`) in the image's pixels: the image
        carries no face, so there are no landmarks."""
        import cv2

        from mekit.preprocess.face import DEFAULT_ROIS
        from mekit.preprocess.flow import flow_from_image

        if "onset_apex" in self.config.pairs:
            out["uv_onset_apex"], out["strain_onset_apex"] = flow_from_image(img)
            h, w = img.shape[1:]
            out["landmarks"] = np.zeros((0, 2), np.float32)
            out["rois"] = {n: (min(int(x0 * w), w - 1), min(int(y0 * h), h - 1),
                               max(int(np.ceil(x1 * w)), min(int(x0 * w), w - 1) + 1),
                               max(int(np.ceil(y1 * h)), min(int(y0 * h), h - 1) + 1))
                           for n, (x0, y0, x1, y1) in DEFAULT_ROIS.items()}
        for s in self.config.stack_sizes:
            hwc = img.transpose(1, 2, 0)
            interp = cv2.INTER_AREA if s < min(hwc.shape[:2]) else cv2.INTER_LINEAR
            out[f"flow_{s}"] = np.ascontiguousarray(
                cv2.resize(hwc, (s, s), interpolation=interp).transpose(2, 0, 1), dtype=np.float32)
        out["flow"] = out[f"flow_{self.config.stack_sizes[0]}"]

    def stack(self, name: str, sample_ids: Iterable[str] | None = None) -> np.ndarray:
        """One array stacked over samples (in the order given; default all done samples).

        E.g. ``result.stack('flow', ids)`` -> ``float32[N, 3, 28, 28]`` for a model.
        """
        ids = list(self.sample_ids if sample_ids is None else sample_ids)
        if not ids:
            raise ValueError("no samples to stack")
        items = []
        for sid in ids:
            d = self[sid]
            if name not in d:
                raise KeyError(f"{name!r} is not produced by this configuration; available: "
                               f"{sorted(k for k, v in d.items() if isinstance(v, np.ndarray))}")
            items.append(d[name])
        return np.stack(items)

    def summary(self) -> dict[str, Any]:
        """Counts, skipped samples with reasons, and time per stage (seconds summed over workers)."""
        return {"clips": len(self.meta) + len(self.skipped), "done": len(self.meta),
                "computed": self.n_computed, "cached": self.n_cached, "skipped": dict(self.skipped),
                "timings": dict(self.timings), "cache": str(self.cache.root)}

    def close(self) -> None:
        """Remove a temporary result folder (only when the cache was off)."""
        if self._cleanup is not None:
            self._cleanup()


class _FlowImageItem(dict):
    """``result[sample_id]`` of a flow-image sample: asking it for what a flow image cannot give
    (face crops, frames, apex->offset flow) is a :class:`~mekit.errors.DataError` in one line,
    not a bare ``KeyError``. ``in`` and ``get`` behave as for any dict."""

    def __init__(self, sample_id: str, items: Mapping[str, Any]) -> None:
        super().__init__(items)
        self.sample_id = sample_id

    def __missing__(self, key: str) -> Any:
        raise DataError(f"sample {self.sample_id} is a precomputed flow image (loader flow_images): it has no "
                        f"{key!r}", expected=f"one of {sorted(self)}; face crops, sampled frames and apex->offset "
                                             "flow are not in a flow-image set")


# ---------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------
def _on_clip_done(meta: dict[str, Any]) -> None:
    """Called in the parent after each clip finishes (a seam for progress hooks and tests)."""


def preprocess(table: Any, config: PreprocessConfig | Mapping[str, Any] | None = None,
               progress: bool = True, executor: Any = None, address: str | None = None) -> PreprocessResult:
    """Align, spot, compute flow/strain and sample frames for every clip of ``table``; cached.

    ``config`` is a :class:`PreprocessConfig` or a mapping of its fields. Clips that fail are
    listed in ``result.skipped`` (sample id -> reason) and the rest go on; a
    :class:`~mekit.errors.ConfigError` (a setting every clip would fail on) stops the run.
    Progress is reported as events (stage ``preprocess``, one ``progress`` event per computed
    clip, see :mod:`mekit.events`) and shown by whoever listens; ``progress`` is kept for
    callers that pass it and no longer changes anything.

    Inside a planned preprocessing (:func:`planned`), a request that one of the planned results
    covers (:func:`covers`, over samples it holds with the same source rows) is answered by a
    view of that result: no clip is decoded, looked up in the cache or fingerprinted again (the
    view reads its entries when indexed, like any result). Anything else runs as it does outside
    one.

    ``executor`` says where the clips the cache lacks are computed: ``processes`` (the default:
    ``workers`` worker processes here), ``local`` (this process) or ``ray`` (one task per clip on
    the Ray cluster at ``address``, default ``$RAY_ADDRESS``; see :mod:`mekit.executors`), or an
    executor object. A clip computed elsewhere sends its cache entries back and they are written
    into this machine's cache, so the result is the same wherever a clip ran (the clips' frames
    must be readable there: a folder every machine mounts).
    """
    cfg = _as_config(config)
    view = _served(table, cfg)
    if view is not None:
        return view
    with _executor(executor, address) as ex:
        run = _Pass(table, cfg)
        run.compute(executor=ex)
    return run.result()


@contextlib.contextmanager
def _executor(executor: Any, address: str | None) -> Iterator[Any]:
    """``None``, ``"local"`` and ``"processes"`` (this module's own pool) as they are; any other
    name as the executor registered under it (:func:`mekit.executors.get_executor`, named by a
    string: executors sit above this layer), closed afterwards; an executor object as it is."""
    if executor is not None and not isinstance(executor, str):
        yield executor
        return
    if executor in (None, "local", "processes") and not address:
        yield executor
        return
    from mekit.registry import resolve

    with resolve("mekit.executors:get_executor")(executor, address=address) as ex:
        yield ex


def _as_config(config: PreprocessConfig | Mapping[str, Any] | None) -> PreprocessConfig:
    return config if isinstance(config, PreprocessConfig) else PreprocessConfig.from_dict(config or {})


class _Pass:
    """One pass of the pipeline over a table with one configuration.

    Split in steps so a planned preprocessing can report all its passes as one stage whose size
    is known before any clip is computed: the constructor computes every clip's keys and takes
    the clips whose final products are all cached (the fast path, no worker); :meth:`compute`
    runs the rest; :meth:`result` wraps it up.
    """

    def __init__(self, table: Any, cfg: PreprocessConfig) -> None:
        t_start = time.perf_counter()
        _check_runtime(cfg)
        self.cfg = cfg
        self.tmpdir: str | None = None
        if cfg.cache:
            self.cache = Cache(cfg.cache_dir, enabled=True, fsync=cfg.fsync)
        else:
            self.tmpdir = tempfile.mkdtemp(prefix="mekit-preprocess-")
            self.cache = Cache(self.tmpdir, enabled=True, fsync=False)

        self.rows = _rows(table)
        self.order = [r["sample_id"] for r in self.rows]
        self.timings = dict.fromkeys(TIMING_KEYS, 0.0)
        self.keys: dict[str, dict[str, str]] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self.todo: list[dict[str, Any]] = []
        cache, keys, meta = self.cache, self.keys, self.meta

        # Fast path: clips whose final products are all cached (and verified) need no worker.
        t0 = time.perf_counter()
        for row in self.rows:
            sid = row["sample_id"]
            k = keys[sid] = stage_keys(row, cfg)
            info = None
            for stage in _final_stages(k):
                hit = cache.load(stage, k[stage], sid)
                if hit is None:
                    info = None
                    break
                info = info or {kk: v for kk, v in hit[1].items()
                                if kk not in ("stage", "key", "sample_id", "roi_names", "alignment")}
            if info is not None and k and "align" in k and "crop_outside" not in info:
                info = _with_crop_outside(cache, k["align"], sid, info)
            if info is not None and k:
                if row["media"] not in ("image", "flow"):
                    # an entry made from a spotted apex does not depend on the annotation: report today's
                    info["apex_annotated"] = row.get("apex")
                meta[sid] = {"sample_id": sid, **info, "computed": []}
            else:
                self.todo.append(row)
        self.timings["read"] += time.perf_counter() - t0
        self.elapsed = time.perf_counter() - t_start

    def compute(self, stage: events.Stage | None = None, executor: Any = None) -> None:
        """Compute the clips the cache lacks, each reported to ``stage`` (default: a
        ``preprocess`` stage of this pass alone, opened only when there is work), on
        ``executor`` (None or ``"processes"``: this module's pool; see :func:`preprocess`)."""
        t0 = time.perf_counter()
        if self.todo:
            _check_writable(self.cache.root)
            _run(self.todo, self.cfg, self.keys, self.cache, self.meta, self.skipped, self.timings, stage,
                 executor)
        self.elapsed += time.perf_counter() - t0

    def result(self) -> PreprocessResult:
        t0 = time.perf_counter()
        _warn_outside(self.meta, self.order)
        self.timings["total"] = self.elapsed + time.perf_counter() - t0
        result = PreprocessResult(self.cfg, self.cache, self.keys, self.meta, self.skipped, self.timings, self.order)
        if self.tmpdir is not None:
            result._cleanup = weakref.finalize(result, shutil.rmtree, self.tmpdir, True)
        log.info("preprocessed %d clips (%d computed, %d cached, %d skipped) in %.1f s",
                 len(self.order), result.n_computed, result.n_cached, len(self.skipped), self.timings["total"])
        return result


# ---------------------------------------------------------------------------------------
# planned preprocessing: several configurations run once each, then read by many
# ---------------------------------------------------------------------------------------
#: fields that change how a pass runs, never what it computes
_HOW_FIELDS = ("workers", "worker_timeout", "fsync")
#: fields applied when a result is read (the u/v/strain stacks are derived from the flow entry
#: on access), so one computed result serves any value of them
ACCESS_FIELDS = ("stack_sizes", "normalise")
#: the fields that define a clip's sampled frames; one pass holds one set of them per clip
FRAME_FIELDS = ("sampling", "frame_size", "magnify")


def covers(held: PreprocessConfig, wanted: PreprocessConfig) -> bool:
    """Whether a result computed with ``held`` holds every entry a request with ``wanted`` reads.

    Both must agree on every setting that enters a cache key or decides where entries live (face
    stage, apex spotting, crop size, flow method and parameters, strain, decoding, the cache
    switch and folder); ``held`` must compute the flow of every pair ``wanted`` asks for (more
    pairs are fine: each pair's flow is computed on its own from the same three crops, so its
    arrays do not depend on the other pairs) and, when ``wanted`` samples frames, sample them
    the same way (:data:`FRAME_FIELDS`). :data:`ACCESS_FIELDS` may differ (a view applies
    ``wanted``'s when read), and so may the fields that only change how a pass runs.
    """
    h, w = held.to_dict(), wanted.to_dict()
    if not set(w["pairs"]) <= set(h["pairs"]):
        return False
    if w["sampling"] is not None and any(h[k] != w[k] for k in FRAME_FIELDS):
        return False
    free = {"pairs", *FRAME_FIELDS, *ACCESS_FIELDS, *_HOW_FIELDS}
    return all(h[k] == w[k] for k in h if k not in free)


@dataclass(frozen=True)
class _Held:
    """A result of a planned preprocessing and the source rows (see :func:`_rows`) it was
    computed from, so a request on other rows under the same sample ids is never served."""

    result: PreprocessResult
    rows: dict[str, dict[str, Any]]


#: the results of the planned preprocessings open in this context (innermost last)
_HELD: contextvars.ContextVar[tuple[_Held, ...]] = contextvars.ContextVar("mekit_preprocess_held", default=())


@contextlib.contextmanager
def planned(runs: Sequence[tuple[Any, PreprocessConfig | Mapping[str, Any]]]) -> Iterator[list[PreprocessResult]]:
    """Run each ``(table, config)`` pass of a plan once; until the block ends, answer the
    requests they cover from their results. Yields the results, in the order of ``runs``.

    All passes are reported as ONE ``preprocess`` events stage, opened even when every clip is
    cached so that a run shows its preprocessing as a step of its own, and spanning the cache
    lookups too (they are most of the time of a cached run). Its ``total`` (clips to compute,
    summed over passes) is known once every pass has looked into the cache: it is announced then
    with a ``progress`` event at 0 and carried by the later events, with ``cached`` (clips found
    in the cache); ``runs`` is the number of passes. Each clip's files are fingerprinted once for
    the whole block (not across blocks, so a frame edited between two runs is seen by the
    second). Which configurations can share a pass is the planner's decision
    (:func:`mekit.features.plan_preprocessing`); this only runs the plan.
    """
    memo = _FINGERPRINTS.get()
    fp_token = _FINGERPRINTS.set({} if memo is None else memo)  # a nested plan shares its outer one's
    try:
        passes: list[_Pass] = []
        if runs:
            with events.Stage("preprocess", runs=len(runs)) as stage:
                passes = [_Pass(table, _as_config(config)) for table, config in runs]
                stage.total = sum(len(p.todo) for p in passes)
                stage.data["cached"] = sum(len(p.meta) for p in passes)
                if stage.total:
                    stage.advance(0)
                for p in passes:
                    p.compute(stage)
        results = [p.result() for p in passes]
        held = tuple(_Held(r, {row["sample_id"]: row for row in p.rows}) for p, r in zip(passes, results))
        token = _HELD.set((*_HELD.get(), *held))
        try:
            yield results
        finally:
            _HELD.reset(token)
    finally:
        _FINGERPRINTS.reset(fp_token)


def _served(table: Any, cfg: PreprocessConfig) -> PreprocessResult | None:
    """A view of a held result that covers this request, or None (the request then runs)."""
    held = _HELD.get()
    if not held:
        return None
    rows = _rows(table)
    for h in reversed(held):  # the innermost plan first
        if covers(h.result.config, cfg) and all(h.rows.get(r["sample_id"]) == r for r in rows):
            view = _view(h.result, rows, cfg)
            if view is not None:
                log.debug("served %d clips from a planned preprocessing", len(rows))
                return view
    return None


def _view(res: PreprocessResult, rows: list[dict[str, Any]], cfg: PreprocessConfig) -> PreprocessResult | None:
    """``res`` restricted to ``rows`` and read as ``cfg`` asks: per clip, the stages ``cfg``
    has, with ``res``'s entries; its skipped samples restricted likewise.

    :func:`covers` promises that every stage but the flow has the very key ``cfg`` would give
    it (the flow entry holds a superset of the pairs, so its key differs); that is checked on
    the keys themselves, so a view never reads an entry the request would not have read. The
    view keeps ``res`` alive (its temporary folder when the cache is off) and closing it
    removes nothing.
    """
    keys: dict[str, dict[str, str]] = {}
    meta: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for row in rows:
        sid = row["sample_id"]
        have = res._keys.get(sid, {})
        want = stage_keys(row, cfg)
        if any(s not in have or (s != "flow" and have[s] != k) for s, k in want.items()):
            return None
        keys[sid] = {s: have[s] for s in want}
        if sid in res.skipped:
            skipped[sid] = res.skipped[sid]
        elif sid in res.meta:
            meta[sid] = res.meta[sid]
        else:
            return None
    view = PreprocessResult(cfg, res.cache, keys, meta, skipped, dict(res.timings), [r["sample_id"] for r in rows])
    view._source = res
    return view


def _with_crop_outside(cache: Cache, align_key: str, sid: str, info: dict[str, Any]) -> dict[str, Any] | None:
    """``info`` plus the crop's outside fraction, from the alignment entry (entries written before
    the fraction was recorded lack it; the alignment itself holds all it takes). None when the
    alignment entry is gone, so the clip is recomputed."""
    from mekit.preprocess.face import FaceAlignment

    hit = cache.load("align", align_key, sid)
    if hit is None:
        return None
    al = FaceAlignment.from_dict(hit[1]["alignment"])
    return {**info, "crop_outside": round(al.outside_fraction(), 4)}


#: samples named one by one in the past-the-border warning; the rest are counted
_OUTSIDE_NAMED = 10


def _warn_outside(meta: dict[str, dict[str, Any]], order: list[str]) -> None:
    """Warn about every sample whose crop runs past its frame by more than face.OUTSIDE_WARN
    (cached ones too: their crops still carry the replicated border), and record it in the
    sample's meta under ``warnings``."""
    from mekit.preprocess.face import OUTSIDE_WARN

    over = [s for s in order if s in meta and (meta[s].get("crop_outside") or 0.0) > OUTSIDE_WARN]
    for i, sid in enumerate(over):
        frac = float(meta[sid]["crop_outside"])
        msg = (f"face crop runs past the frame: {frac:.0%} of the crop is replicated border "
               f"(over {OUTSIDE_WARN:.0%}; detector {meta[sid].get('face_source')!r})")
        warns = meta[sid].setdefault("warnings", [])
        if msg not in warns:
            warns.append(msg)
        if i < _OUTSIDE_NAMED:
            log.warning("sample %s: %s; lower preprocess.margin, or use detector 'none' if the frames are "
                        "already face crops", sid, msg)
    if len(over) > _OUTSIDE_NAMED:
        log.warning("%d more samples have a face crop more than %.0f%% outside the frame (see "
                    "result.meta[sample_id]['crop_outside'])", len(over) - _OUTSIDE_NAMED, OUTSIDE_WARN * 100)


def _check_writable(root: Path) -> None:
    """Stop once, before any clip, when the cache folder cannot be written (a read-only or
    full disk would otherwise fail every clip with the same error and throw the work away).
    A read-only cache that already holds every entry is fine: nothing needs writing then."""
    try:
        from mekit.paths import probe_writable

        root.mkdir(parents=True, exist_ok=True)
        probe_writable(root)
    except OSError as e:
        raise ConfigError(f"preprocessing cache folder {root} is not writable ({e.strerror or e}); expected a "
                          f"writable folder: set preprocess.cache_dir or MEKIT_CACHE to one, or preprocess.cache=false "
                          f"to keep results in a temporary folder") from None


def _check_runtime(cfg: PreprocessConfig) -> None:
    """Fail once, before any clip, on settings every clip would fail on (e.g. a flow parameter)."""
    if cfg.pairs:
        from mekit.preprocess.flow import compute_flow

        z = np.zeros((16, 16), np.uint8)
        compute_flow(z, z, cfg.flow, **cfg.flow_params)


def _run(todo: list[dict[str, Any]], cfg: PreprocessConfig, keys: dict[str, dict[str, str]], cache: Cache,
         meta: dict[str, dict[str, Any]], skipped: dict[str, str], timings: dict[str, float],
         stage: events.Stage | None = None, executor: Any = None) -> None:
    cfg_dict = cfg.to_dict()
    tasks = [(row, cfg_dict, keys[row["sample_id"]], str(cache.root), cache.fsync) for row in todo]
    where = getattr(executor, "name", executor)
    elsewhere = where not in (None, "local", "processes")  # an executor object of another kind (ray)
    n_workers = 1 if elsewhere or where == "local" else min(cfg.n_workers, len(tasks))
    if n_workers > 1 and _needs_mediapipe(cfg):
        from mekit.preprocess.face import mediapipe_started

        if mediapipe_started():
            # A child forked after this process ran MediaPipe (a face tracker, a clip processed
            # in-process) aborts when it creates graphs of its own, and spawned workers would
            # re-run a user's script that has no `if __name__ == "__main__"` guard: the clips
            # are processed here, one at a time.
            log.info("preprocessing in this process: MediaPipe already runs here, so workers cannot be forked")
            n_workers = 1
    pool = None
    if n_workers > 1:
        import multiprocessing as mp

        # fork starts workers in milliseconds with mekit, numpy and cv2 already imported, and,
        # unlike spawn/forkserver, works from a user's script or notebook that has no
        # `if __name__ == "__main__"` guard. The initializer drops anything that must not cross
        # a fork (MediaPipe graphs). A worker that still hangs (a lock held by some library
        # thread at the moment of the fork) is caught by the per-clip timeout below and the
        # remaining clips run in-process.
        import cv2

        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # inherited by the workers: one OpenCV thread each, the pool is the parallelism
        try:
            pool = mp.get_context(method).Pool(n_workers, initializer=_init_worker, initargs=(os.getpid(),))
        finally:
            cv2.setNumThreads(threads)
    # one progress event per computed clip, emitted here in the parent whichever process computed
    # it (events raised in a worker would stay there); clips found in the cache are counted apart
    # (inside a planned preprocessing, the plan's one stage counts the clips of all its passes)
    own = events.Stage("preprocess", total=len(tasks), cached=len(meta)) if stage is None else None
    with (own if own is not None else contextlib.nullcontext(stage)) as stage:
        try:
            if elsewhere:  # clip paths made absolute: a worker runs in a folder of its own
                tasks = [({**t[0], "path": os.path.abspath(t[0]["path"])} if isinstance(t[0].get("path"), str)
                          else t[0], *t[1:]) for t in tasks]
                results = (res for _, res in executor.map(_clip_work(), tasks))
            elif pool is not None:
                results = _watched(pool, tasks, cfg.worker_timeout)
            else:
                results = map(_process_clip, tasks)
            for res in results:
                sid = res["sample_id"]
                for k, v in res.pop("timings", {}).items():
                    timings[k] = timings.get(k, 0.0) + v
                if res.pop("ok"):
                    meta[sid] = res
                else:
                    skipped[sid] = res["reason"]
                    log.warning("skipped %s: %s", sid, res["reason"])
                stage.advance(sample_id=sid)
                _on_clip_done(res)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            else:
                _close_state()


def _clip_unit(task: tuple, state: Any = None) -> dict[str, Any]:
    """One clip as an executor's unit (:func:`_process_clip`; clips share no state)."""
    return _process_clip(task)


def _clip_root(task: tuple) -> str:
    """The folder a clip writes to: the cache's root."""
    return task[3]


def _clip_at(task: tuple, folder: Path) -> tuple:
    """The clip writing its cache entries under ``folder`` (an executor's scratch folder) instead."""
    row, cfg_dict, keys, _, fsync = task
    return row, cfg_dict, keys, str(folder), fsync


def _clip_entries(task: tuple) -> list[str]:
    """The cache entries a clip may reuse (its stages' entries, where they exist), relative to
    the cache's root: sent with a clip computed elsewhere, so a cached alignment is not redone."""
    from mekit.preprocess.cache import sample_filename

    row, _, keys, _, _ = task
    return [f"{stage}/{key}/{sample_filename(row['sample_id'])}" for stage, key in keys.items()]


def _clip_work() -> Any:
    """The clips as a unit of work of :mod:`mekit.executors` (named by a string: it sits above
    this layer)."""
    from mekit.registry import resolve

    return resolve("mekit.executors.base:Work")(_clip_unit, None, folder=_clip_root, relocate=_clip_at,
                                                  inputs=_clip_entries, what="clip")


def _watched(pool: Any, tasks: list[tuple], timeout: float) -> Iterator[dict[str, Any]]:
    """Results from the pool; if no clip finishes for ``timeout`` seconds, the pool is
    presumed hung: it is terminated and the clips not yet returned run in this process."""
    import multiprocessing as mp

    pending = {t[0]["sample_id"]: t for t in tasks}
    it = pool.imap_unordered(_process_clip, tasks, chunksize=1)
    while pending:
        try:
            res = it.next(timeout=timeout)
        except StopIteration:
            break
        except mp.TimeoutError:
            log.warning("no clip finished in %.0f s: worker processes presumed hung; terminating them and "
                        "processing the %d remaining clips in this process", timeout, len(pending))
            pool.terminate()
            for t in list(pending.values()):
                yield _process_clip(t)
            return
        pending.pop(res["sample_id"], None)
        yield res


__all__ = ["ACCESS_FIELDS", "FRAME_FIELDS", "PreprocessConfig", "PreprocessResult", "STAGE_VERSIONS", "covers",
           "planned", "preprocess", "stage_keys"]

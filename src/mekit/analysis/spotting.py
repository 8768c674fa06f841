"""Spotting micro- and macro-expressions in a stream of aligned face crops.

A spotter takes one aligned grey face crop at a time (from the face tracker, eye line level)
and returns the expression intervals that have closed so far, so a long video or a camera is
analysed frame by frame in bounded memory, and an interval is known as soon as the evidence
for its end has arrived.

Two spotters are registered in :data:`SPOTTERS`:

- ``"motion"``: :class:`MotionSpotter`, training-free: local motion in the facial regions
  against moving reference frames, head motion compensated, thresholded against the running
  noise level. Nothing is fitted to data, so it needs no training split.
- ``"fixed_windows"``: :class:`FixedWindowSpotter`, fixed-length windows every N frames; the
  floor any spotter has to beat in a benchmark.

A learned spotter (thresholds or a model fitted on training subjects only) plugs into the same
seam: the :class:`Spotter` protocol (``push``, ``flush``, ``to_dict``/``from_dict``) and a name in
:data:`SPOTTERS`; :func:`spotter_from_dict` rebuilds any registered spotter from what
``to_dict`` saved.

How :class:`MotionSpotter` measures motion
------------------------------------------

The published training-free spotters compare a frame with frames a fixed lag ``k`` away:

- Moilanen, Zhao & Pietikäinen, ICPR 2014 ("Spotting rapid facial movements from videos using
  appearance-based feature difference analysis"): chi-squared distance of LBP histograms
  between frame ``t`` and the mean of frames ``t - k`` and ``t + k``, ``k = (N - 1) / 2`` for a
  "micro interval" of N frames (N = 9 at 25 fps on SMIC, 21 at 60 fps on CASME: ``k`` of about
  0.16 s); threshold ``mean + p * (max - mean)`` over the whole video.
- MDMD (Wang et al., Neurocomputing 2017; the MEGC 2020 baseline of He et al.,
  arXiv:1912.11985, code github.com/HeyingGithub/Baseline-project-for-MEGC2020_spotting,
  ``MDMD_codes/MDMD.m`` and ``cmd.m``): optical flow from a "head" frame ``t - k`` to frame
  ``t`` MINUS the flow from the head to a "tail" frame ``t + k``, so a movement counts only
  where the face has come back by ``t + k``; ``k`` = 12 frames at 30 fps (0.4 s) for micro, 39
  (1.3 s) for macro, 80 and 260 at 200 fps.
- SOFTNet (Liong, See & Wong 2021, arXiv:2106.06489, the MEGC 2021/2022 reference): optical
  flow between frames ``t`` and ``t + k``, ``k`` half the average expression length of the
  training set.

A lag of half an expression makes the score a temporal *derivative*: it rises on the onset
and again on the offset and dips at the apex, so those methods report peaks and draw a
fixed-width window around each; the duration that tells micro from macro is never measured.
This spotter measures *displacement from the rest face on both sides* instead. For frame
``t`` and each facial region, with ``d`` the motion measure below in noise units,

    a(t) = d(t, t - K)    b(t) = d(t, t + K)    g(t) = d(t - K, t + K)
    S(t) = min(a, b) - max(g, 0) / 2

with ``K`` the longest event to measure (``span``, default the macro maximum, 4 s). For an
event shorter than ``K`` both references lie outside it, so ``S`` follows the event's own
intensity from onset through apex to offset, and the interval's length IS its duration.
``min(a, b)`` needs the face to differ from both sides, so one reference spoilt by another
movement makes no event. ``g`` is MDMD's "minus the tail": what differs between the two
references themselves. A face passing from one lasting state to another (a new posture, an
expression that stays, a slow drift) is at every moment a blend of the two, so (pixel by
pixel, up to noise) ``a + b = g`` and ``min(a, b) <= g / 2``: subtracting half of ``g``
removes exactly such transitions, while a movement that returns only partly (the face
settling a little away from where it started, common in CASME II clips) keeps what exceeds
the transition. Subtracting all of ``g`` loses those: a synthetic lip-corner movement that
comes back only half-way is missed, and of every 12th CASME II clip set between rest frames
(the ``realdata`` test) 11 of 21 were spotted as micro with IoU >= 0.5 against 12 with half.

The price of the span is latency: an interval is known ``K`` after its offset (4 s by
default; a smaller ``span`` trades the longest measurable event for latency). ``b(t)`` is
``a(t + K)``, so each frame costs two measurements.

The motion measure ``d`` of two frames, per region:

1. Each crop is blurred (anti-aliasing, see :meth:`MotionSpotter._prepare`), shrunk to
   ``work_size`` pixels by area averaging (which also averages sensor noise) and normalised
   to zero mean and unit spread, so a global change of brightness or contrast cancels.
2. *Head motion.* The tracker re-aligns every crop, so the rigid motion left (a nod, a turn,
   tracker jitter in position, angle and scale) is a small similarity transform of the whole
   crop. It is estimated between the two frames by Lucas-Kanade steps over the whole crop
   (:func:`_similarity`) and both frames are moved half-way towards each other. An
   expression covers a few percent of the crop and barely moves that estimate.
3. The mean absolute difference over the region minus the median over a grid of cells
   covering the crop (``baseline="median"``): what no rigid motion explains but is
   everywhere (residual warping, compression noise, light on the whole face). The nose alone
   (``"nose"``) is the rigid reference some spotters use, but AU9 moves it and it is small.
4. Noise units: a robust z-score against the region's own noise level, estimated from the
   lower quantiles of its last ``noise_window`` seconds (:meth:`MotionSpotter._update_stats`),
   so one threshold serves every camera and person. Moilanen's ``mean + p * (max - mean)``
   needs the whole video's maximum and cannot stream.

Intervals: ``S`` is smoothed over ``smooth`` seconds (5 frames at 200 fps, none at 30); a run
of frames where the largest region score ``Z = max_r S_r`` stays at or above ``release``
(gaps up to ``merge_gap`` bridged) whose peak reaches ``threshold`` is one interval, apex at the
peak. Its extent is read on the regions that carry it, followed down to ``foot`` and then, by a
matched filter, to where the movement's own spatial pattern fades to ``rel_extent`` of the
apex (:meth:`MotionSpotter._refine`), so onset and offset are where the movement starts and
ends. The duration decides the kind: ``micro`` from 1/25 s to 0.5 s (Ekman's 1/25 to 1/5 s
widened to the 0.5 s of Yan et al., J Nonverbal Behav 2013, as in the MEGC challenges),
``macro`` up to 4 s; longer, or cut by the span (the references disagree next to the interval),
is ``other`` and dropped unless ``keep_other``.

Blinks: a blink closes both eyes for about 100-400 ms. An interval with both eye regions above
``release`` and at least ``blink_share`` of its summed region score in them, no longer than
``blink_max`` (0.4 s), is a blink and dropped (or flagged, ``blinks="flag"``). An action of one
eye only (AU7 on one side, say) is kept; both lids tightening (AU7) for under 0.4 s cannot be
told from a blink by motion alone and is dropped with the blinks.

Region names: boxes come from the tracker in crop pixels; names in ``eye_regions`` (default
``left_eye``, ``right_eye``) drive the blink test, ``reference_region`` (default ``nose``) is
never an expression region, every other name is. The names are fixed when the spotter is made
(the constructor's ``rois``, default :data:`mekit.preprocess.face.DEFAULT_ROIS`); ``push`` may
give each frame's boxes for those names.

Cost and memory: :func:`measure_cost` gives 0.4-0.7 ms a frame on one core (128 px crops,
64 px work size, at 30 and 200 fps); faces with tracking jitter take up to about 1 ms, their
larger motions needing more Lucas-Kanade steps. Ring buffers hold ``2K + 1`` small frames
(float16), ``K + 2`` rows of region measures, ``noise_window`` seconds of noise history and
twice ``macro[1]`` of scores: all sized from ``fps``, ``span``, ``macro`` and ``noise_window``,
none from the stream's length (:meth:`MotionSpotter.nbytes`: 2 MB at 30 fps, 13 MB at 200 fps
with the defaults).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import cv2
import numpy as np

from mekit.errors import ConfigError, DataError
from mekit.preprocess.face import DEFAULT_ROIS
from mekit.registry import Registry

log = logging.getLogger(__name__)

#: A region box (x0, y0, x1, y1) in crop pixels, x1 and y1 exclusive, as
#: :meth:`mekit.preprocess.face.FaceAlignment.rois` gives it.
Box = tuple[int, int, int, int]

KINDS = ("micro", "macro", "other")

# Below this estimated shift (pixels of the shrunk crop) the frames are compared as they are:
# resampling costs more than it saves and smooths both frames a little.
_MIN_SHIFT_PX = 0.02
# Anti-aliasing blur before shrinking a crop, in pixels of the shrunk crop (see _prepare).
_BLUR = 0.85
# Cells per side of the grid whose median is the global baseline; the outer ring of cells is
# left out (new content enters there when the head moves).
_GRID = 8


# ---------------------------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """One spotted expression: frame indices (inclusive) as pushed, and the same in seconds.

    ``kind`` is ``"micro"``, ``"macro"`` or ``"other"``. ``score`` is the peak region score in
    noise units (robust z), ``regions`` the regions above the release level at the apex,
    strongest first, ``flags`` notes such as ``"blink"`` or ``"truncated"`` (the stream or the
    face ended before the interval could be closed normally).
    """

    onset: int
    apex: int
    offset: int
    onset_s: float
    apex_s: float
    offset_s: float
    kind: str
    score: float
    duration_s: float = float("nan")
    regions: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    @property
    def n_frames(self) -> int:
        return self.offset - self.onset + 1

    def iou(self, other: Interval | tuple[int, int]) -> float:
        """Temporal intersection over union with another interval or an (onset, offset) pair,
        frames inclusive. The MEGC spotting protocol counts a hit at IoU >= 0.5 (Li et al.,
        FG 2019, the MEGC 2019 spotting baseline; kept in MEGC 2020-2022)."""
        on, off = (other.onset, other.offset) if isinstance(other, Interval) else other
        inter = min(self.offset, off) - max(self.onset, on) + 1
        if inter <= 0:
            return 0.0
        return inter / (max(self.offset, off) - min(self.onset, on) + 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["regions"], d["flags"] = list(self.regions), list(self.flags)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Interval:
        d = dict(d)
        d["regions"], d["flags"] = tuple(d.get("regions", ())), tuple(d.get("flags", ()))
        return cls(**d)


@dataclass(frozen=True)
class FrameScore:
    """One frame's motion scores as :class:`MotionSpotter` decided them.

    ``index`` is the frame's source index; ``score`` the largest smoothed expression-region
    score ``Z`` (noise units; NaN while the noise level is not yet known); ``regions`` the
    per-region measures, shape (5, R) in the order of ``region_names()``: ``S`` as measured,
    the z-scores ``za``, ``zb`` and ``zg`` of the backward, forward and reference-to-reference
    differences, and ``S`` smoothed in time (NaN where not measured).
    """

    index: int
    score: float
    regions: np.ndarray


# ---------------------------------------------------------------------------------------------
# the seam
# ---------------------------------------------------------------------------------------------
@runtime_checkable
class Spotter(Protocol):
    """What ``mekit analyze`` drives: frames in, closed intervals out.

    ``push`` takes the frame's index in the source, its aligned grey crop (uint8, [S, S]) or
    ``None`` where the tracker found no face, and optionally that frame's region boxes in crop
    pixels; it returns the intervals that closed with this frame. ``flush`` closes what is
    still open at the end of the stream. ``to_dict`` saves everything needed to rebuild the
    spotter (its registered name, parameters and, for a learned spotter, what was fitted: on
    training subjects only) and ``from_dict`` rebuilds it.
    """

    name: ClassVar[str]
    fps: float

    def push(self, index: int, crop: np.ndarray | None,
             rois: Mapping[str, Box] | None = None) -> list[Interval]: ...

    def flush(self) -> list[Interval]: ...

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Spotter: ...


#: Spotters by name; each entry is a class following :class:`Spotter`.
SPOTTERS: Registry[Any] = Registry("spotter")


def make_spotter(name: str, fps: float, **params: Any) -> Spotter:
    """The spotter registered as ``name``, for a stream at ``fps`` frames per second; a ``name``
    that is no registered spotter but an existing file is a saved spotter
    (:func:`mekit.analysis.learned_spotter.load_spotter`)."""
    from pathlib import Path

    from mekit.registry import resolve

    if name not in SPOTTERS and Path(name).is_file():
        from mekit.analysis.learned_spotter import load_spotter

        return load_spotter(name, fps, **params)
    return resolve(SPOTTERS.get(name))(fps, **params)


def spotter_from_dict(d: Mapping[str, Any]) -> Spotter:
    """Rebuild any registered spotter from its ``to_dict()``."""
    from mekit.registry import resolve

    if not isinstance(d, Mapping) or "name" not in d:
        raise ConfigError(f"a saved spotter is a mapping with a 'name'; got {d!r}")
    return resolve(SPOTTERS.get(str(d["name"]))).from_dict(d)


def spot(frames: Iterable[np.ndarray | None], fps: float, *, spotter: str = "motion", start: int = 0,
         **params: Any) -> list[Interval]:
    """All intervals of a whole stream of crops (frame ``i`` has index ``start + i``; ``None``
    where there is no face), with the spotter registered as ``spotter`` made with ``params``.

    The same pushes and flush as a live stream, so the result never depends on how the
    stream was cut into batches.
    """
    sp = make_spotter(spotter, fps, **params)
    out: list[Interval] = []
    for i, crop in enumerate(frames):
        out += sp.push(start + i, crop)
    return out + sp.flush()


def _check_fps(fps: Any) -> float:
    from mekit.media import positive_number

    return positive_number(fps, f"spotter fps: expected a positive number, got {fps!r}")


def _check_range(name: str, value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"spotter {name}: expected (min seconds, max seconds), got {value!r}") from None
    if not (0 <= lo < hi and math.isfinite(hi)):
        raise ConfigError(f"spotter {name}: expected 0 <= min < max seconds, got {value!r}")
    return lo, hi


# ---------------------------------------------------------------------------------------------
# the training-free spotter
# ---------------------------------------------------------------------------------------------
@dataclass
class _Segment:
    """An open candidate interval: a run of positions where ``Z >= release`` (gaps of at most
    ``merge_gap`` below it allowed), in positions of the current run."""

    start: int
    end: int
    peak: float
    apex: int
    gap: int = 0


class MotionSpotter:
    """Training-free streaming spotter of micro- and macro-expressions (see the module notes).

    Parameters (durations in seconds; every default is argued where it is used):

    - ``fps``: frames per second of the stream.
    - ``crop_size``: side of the crops the constructor's ``rois`` refer to (default ROIs:
      :data:`mekit.preprocess.face.DEFAULT_ROIS` scaled to it). Crops of another size are
      accepted; boxes scale with them.
    - ``rois``: name -> (x0, y0, x1, y1) in crop pixels, x1 and y1 exclusive.
    - ``micro``, ``macro``: (min, max) durations of the two kinds.
    - ``span``: the reference lag ``K`` (default ``macro[1]``): the longest event whose extent
      is measured, and the latency.
    - ``work_size``: side of the shrunk crop (a multiple of 8). 64: at 32 px the eyes and mouth
      are a pixel or two wide, and on synthetic 128 px faces a rigid shift of 1-5 px left
      residues of 6-10 noise units, as large as a 1 px local movement's 5-19; at 64 px they
      were 2-4 against 12-45, for the same cost (about 0.5 ms a frame).
    - ``threshold``: peak score (noise units) an interval must reach. 6: on 10 minutes of
      synthetic neutral face at 30 fps (sensor noise of 2 grey levels, brightness flicker, a
      1 px tracking jump in a tenth of the frames) no run passed 4.1 with 64 px crops; with
      128 px crops nine runs reached 6-9.6, seven of them a single frame (a tracking jump,
      shorter than the shortest micro-expression), and one was reported (0.1 a minute). A
      0.7 px movement of the lip corner in a 128 px crop scored 11-14 at 30 and at 200 fps.
    - ``release``: a run of frames ends below this (2 noise units: the largest region score of
      a face at rest reaches it in about 2 % of frames; ``merge_gap`` bridges such dips).
    - ``foot``, ``rel_extent``, ``refine``: how far the onset and offset are followed out (to
      1 noise unit, then to 10 % of the apex's own pattern; ``refine=False`` skips the second).
    - ``merge_gap``: runs closer than this are one interval (0.1 s, a third of a typical
      micro-expression: a dip inside one movement does not split it).
    - ``smooth``: temporal smoothing of the score (0.025 s: 5 frames at 200 fps, none at 30;
      well under the shortest micro-expression).
    - ``max_gap``: missing frames (no face) bridged without ending the run (0.1 s: a tracker
      losing the face for up to 3 frames at 30 fps, in a fast turn or motion blur, does not
      cut the stream and restart the span).
    - ``noise_window``: seconds of history for the noise level (20 s: long enough that a 4 s
      macro-expression, which spoils 8 s of it, leaves the lower quantiles clean).
    - ``head_motion``: compensate whole-crop motion (False only to show what it does).
    - ``baseline``: ``"median"`` of the cell grid, ``"nose"`` region, or ``"none"``.
    - ``eye_regions``, ``reference_region``: region names of the eyes (blink test) and of the
      rigid reference (never an expression region).
    - ``blinks``: ``"drop"`` or ``"flag"``; ``blink_share`` (0.5: on synthetic faces a blink put
      62-68 % of its score in the eye boxes, the rest in the brow boxes that overlap them, and
      a brow movement 27 %), ``blink_max`` (0.4 s, the longest ordinary blink).
    - ``keep_other``: also return ``other`` intervals (too long or not measurable).
    """

    name: ClassVar[str] = "motion"
    VERSION: ClassVar[int] = 1

    def __init__(self, fps: float, *, crop_size: int = 128, rois: Mapping[str, Box] | None = None,
                 micro: tuple[float, float] = (1 / 25, 0.5), macro: tuple[float, float] = (0.5, 4.0),
                 span: float | None = None, work_size: int = 64, threshold: float = 6.0,
                 release: float = 2.0, foot: float = 1.0, rel_extent: float = 0.1, refine: bool = True,
                 merge_gap: float = 0.1, smooth: float = 0.025, max_gap: float = 0.1,
                 noise_window: float = 20.0,
                 head_motion: bool = True, baseline: str = "median",
                 eye_regions: Sequence[str] = ("left_eye", "right_eye"), reference_region: str = "nose",
                 blinks: str = "drop", blink_share: float = 0.5, blink_max: float = 0.4,
                 keep_other: bool = False) -> None:
        self.fps = _check_fps(fps)
        self.crop_size = int(crop_size)
        if self.crop_size < 8:
            raise ConfigError(f"spotter crop_size: expected at least 8 pixels, got {crop_size!r}")
        self.micro = _check_range("micro", micro)
        self.macro = _check_range("macro", macro)
        self.span = float(span) if span is not None else self.macro[1]
        if not (self.span > 0 and math.isfinite(self.span)):
            raise ConfigError(f"spotter span: expected a positive number of seconds, got {span!r}")
        self.work_size = int(work_size)
        if self.work_size < 16 or self.work_size % _GRID:
            raise ConfigError(f"spotter work_size: expected a multiple of {_GRID}, at least 16; got {work_size!r}")
        self.threshold, self.release = float(threshold), float(release)
        if not 0 < self.release < self.threshold:
            raise ConfigError(f"spotter thresholds: expected 0 < release < threshold, got release={release!r}, "
                              f"threshold={threshold!r}")
        self.foot = float(foot)
        if not self.foot <= self.release:
            raise ConfigError(f"spotter foot: expected at most release ({release!r}), got {foot!r}")
        self.rel_extent, self.refine = float(rel_extent), bool(refine)
        if not 0 < self.rel_extent < 1:
            raise ConfigError(f"spotter rel_extent: expected a fraction in (0, 1), got {rel_extent!r}")
        self.merge_gap = float(merge_gap)
        self.smooth = float(smooth)
        if not 0 <= self.smooth <= self.micro[0] * 2:
            raise ConfigError(f"spotter smooth: expected 0 to twice the shortest micro-expression "
                              f"({2 * self.micro[0]:.3f} s), got {smooth!r}")
        self.max_gap = float(max_gap)
        if not self.max_gap >= 0:
            raise ConfigError(f"spotter max_gap: expected seconds >= 0, got {max_gap!r}")
        self.noise_window = float(noise_window)
        if self.merge_gap < 0 or self.noise_window <= 0:
            raise ConfigError(f"spotter merge_gap >= 0 and noise_window > 0 seconds expected; got "
                              f"{merge_gap!r}, {noise_window!r}")
        self.head_motion = bool(head_motion)
        if baseline not in ("median", "nose", "none"):
            raise ConfigError(f"spotter baseline: expected 'median', 'nose' or 'none', got {baseline!r}")
        self.baseline = baseline
        if blinks not in ("drop", "flag"):
            raise ConfigError(f"spotter blinks: expected 'drop' or 'flag', got {blinks!r}")
        self.blinks = blinks
        self.blink_share, self.blink_max = float(blink_share), float(blink_max)
        self.keep_other = bool(keep_other)
        self.eye_regions = tuple(eye_regions)
        self.reference_region = str(reference_region)

        boxes = dict(rois) if rois is not None else {k: tuple(round(v * self.crop_size) for v in b)
                                                      for k, b in DEFAULT_ROIS.items()}
        if not boxes:
            raise ConfigError("spotter rois: expected at least one region")
        self.rois: dict[str, Box] = {str(k): tuple(int(v) for v in b) for k, b in boxes.items()}  # type: ignore[misc]
        self._names = list(self.rois)
        self._unit = np.array([[v / self.crop_size for v in self.rois[n]] for n in self._names], np.float64)
        self._expr = np.array([n != self.reference_region for n in self._names])
        if not self._expr.any():
            raise ConfigError(f"spotter rois: every region is the reference region {self.reference_region!r}")
        self._eyes = np.array([n in self.eye_regions for n in self._names])
        self._ref = self._names.index(self.reference_region) if self.reference_region in self._names else None
        if baseline == "nose" and self._ref is None:
            raise ConfigError(f"spotter baseline 'nose' needs a region named {self.reference_region!r}")

        # derived frame counts
        self._k = max(1, round(self.span * self.fps))
        self._gap = round(self.merge_gap * self.fps)
        self._h = round(self.smooth * self.fps / 2)   # half-width of the temporal smoothing
        self._max_missing = round(self.max_gap * self.fps)
        self._min_core = max(2, round(self.micro[0] * self.fps / 2))
        self._max_frames = math.floor(self.macro[1] * self.fps + 1e-9)
        self._nwin = max(8, round(self.noise_window * self.fps))
        # Noise statistics are refreshed four times a second (a median over the window every
        # frame would cost more than the rest of the spotter) and used once a second's worth
        # (at least 8 values) has been seen.
        self._stats_every = max(1, round(self.fps / 4))
        self._min_count = max(8, round(self.fps))
        self._box_cache: dict[tuple[int, int], np.ndarray] = {}
        self._last_boxes = self._to_work(self._unit)
        self._score_log: list[FrameScore] | None = None
        self._alloc()

    # -- state --------------------------------------------------------------------------------
    def _alloc(self) -> None:
        w, r, k = self.work_size, len(self._names), self._k
        # float16 halves the largest buffer; its 11-bit mantissa resolves 1/500 of the
        # normalised image's spread, below the sensor noise of any camera.
        self._frames = np.zeros((2 * k + 1, w, w), np.float16)
        self._a = np.full((k + 2, r), np.nan, np.float32)
        # Scores of the last positions, per region: S, za, zb and zg as measured, and S smoothed
        # in time. Enough to look back over the longest interval, half of it again on either
        # side, the merge gap and the smoothing when an interval closes.
        n = self._max_frames + 2 * (self._max_frames // 2) + 3 * self._gap + 2 * self._h + 4
        self._scores = np.full((n, 5, r), np.nan, np.float32)
        # Source index of every position: frames missing in a bridged gap make them differ
        # from the run's first index plus the position. Held as long as frames or scores are.
        self._index = np.zeros(len(self._frames) + len(self._scores), np.int64)
        self._hist = np.zeros((self._nwin, r), np.float32)
        self._n_hist = 0
        self._med = np.zeros(r, np.float32)
        self._scale = np.ones(r, np.float32)
        self._ready = False
        self._last: int | None = None   # last source index pushed
        self._reset_run()

    def _reset_run(self) -> None:
        self._p = 0                     # frames in the current run
        self._last_face: int | None = None  # source index of the run's newest face
        self._seg: _Segment | None = None
        self._t = -1                    # last position scored
        self._suppress = False

    def reset(self) -> None:
        """Forget everything, noise statistics included (a new camera or person)."""
        self._alloc()

    def nbytes(self) -> int:
        """Bytes held in arrays: fixed by ``fps``, ``span``, ``macro`` and ``noise_window``."""
        return int(sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray)))

    @property
    def lag(self) -> int:
        """The reference lag ``K`` in frames (also the latency of every decision)."""
        return self._k

    @property
    def horizon(self) -> int:
        """How many frames back from the frame being pushed the onset of a micro or macro
        interval that ``push`` returns can lie: the span, the longest expression, the merge gap
        and the smoothing (8.2 s at 30 fps with the defaults). A consumer that keeps crops for
        recognising the returned intervals keeps this many."""
        return self._k + self._max_frames + self._gap + self._h + 2

    @property
    def warmup(self) -> int:
        """Frames a fresh spotter must be fed before frame ``f`` so that from ``f`` on it decides
        what one fed from the start would: the noise window (the noise level), the two spans the
        frame ring holds (references either side), the longest expression (an interval open at
        ``f``) and a second for the statistics' refresh phase. A resumed analysis replays this
        many frames before the first frame it has still to write."""
        return self._nwin + 2 * self._k + self._max_frames + math.ceil(self.fps)

    def region_names(self) -> list[str]:
        return list(self._names)

    def record_scores(self, on: bool = True) -> None:
        """Keep every frame's scores as they are decided, for :meth:`take_scores` (off by
        default; a consumer that turns it on drains them regularly, so memory stays bounded)."""
        self._score_log = [] if on else None

    def take_scores(self) -> list[FrameScore]:
        """The :class:`FrameScore` of every frame decided since the last call, in order. A
        frame's score is decided ``lag`` frames after it is pushed (its forward reference), or at
        the end of its run; frames without a face get none."""
        if self._score_log is None:
            raise ConfigError("spotter: call record_scores() before take_scores()")
        out, self._score_log = self._score_log, []
        return out

    # -- streaming ----------------------------------------------------------------------------
    def push(self, index: int, crop: np.ndarray | None,
             rois: Mapping[str, Box] | None = None) -> list[Interval]:
        """Add frame ``index``; returns the intervals that closed with it.

        ``crop`` is ``None`` where the tracker found no face. Up to ``max_gap`` seconds of
        missing frames (no face, or indices skipped) are bridged: the next face continues the
        run as if it followed directly. A longer gap ends the run as soon as it is known: what
        is open is closed as at the end of a stream, and measuring starts afresh with the next
        face (noise statistics are kept). Indices must increase.
        """
        index = int(index)
        if self._last is not None and index <= self._last:
            raise DataError(f"spotter: frame indices must increase; got {index} after {self._last}")
        self._last = index
        out: list[Interval] = []
        if self._last_face is not None:
            missing = index - self._last_face - (0 if crop is None else 1)
            if missing > self._max_missing:
                out = self._end_run()
        if crop is None:
            return out
        small = self._prepare(crop, index)
        boxes = self._work_boxes(crop.shape[:2], rois)
        p, k = self._p, self._k
        self._frames[p % len(self._frames)] = small
        self._index[p % len(self._index)] = index
        small = self._frame(p)   # as stored, so every pair sees the same pixels
        if p >= 1:
            a = self._pair(self._frame(max(p - k, 0)), small, boxes)
            self._a[p % len(self._a)] = a
            self._hist[self._n_hist % self._nwin] = a
            self._n_hist += 1
            if self._n_hist % self._stats_every == 0 or (not self._ready and self._n_hist >= self._min_count):
                self._update_stats()
        else:
            self._a[p % len(self._a)] = np.nan
        self._last_face = index
        self._p = p + 1
        if p >= k:
            t = p - k
            g = self._pair(self._frame(max(t - k, 0)), small, boxes)
            out += self._step(t, self._a[t % len(self._a)], self._a[p % len(self._a)], g)
        return out

    def push_many(self, start: int, crops: Iterable[np.ndarray | None],
                  rois: Mapping[str, Box] | None = None) -> list[Interval]:
        """Push consecutive frames ``start, start + 1, ...``."""
        out: list[Interval] = []
        for i, c in enumerate(crops):
            out += self.push(start + i, c, rois)
        return out

    def flush(self) -> list[Interval]:
        """Close everything at the end of the stream (references past the end are the last
        frame). The spotter can then take a new stream; its noise statistics are kept."""
        out = self._end_run()
        self._last = None
        return out

    def _end_run(self) -> list[Interval]:
        out: list[Interval] = []
        if self._p == 0:
            self._reset_run()
            return out
        last_p, k = self._p - 1, self._k
        last = self._frame(last_p)
        boxes = self._last_boxes
        for t in range(max(last_p - k + 1, 0), last_p + 1):
            b = self._pair(self._frame(t), last, boxes) if t < last_p else np.zeros(len(self._names), np.float32)
            g = self._pair(self._frame(max(t - k, 0)), last, boxes)
            out += self._step(t, self._a[t % len(self._a)], b, g)
        for u in range(max(last_p - self._h + 1, 0), last_p + 1):
            out += self._advance(u, last_p)
        if self._seg is not None:
            out += self._close(truncated=True)
        self._reset_run()
        return out

    # -- measuring ----------------------------------------------------------------------------
    def _frame(self, p: int) -> np.ndarray:
        return self._frames[p % len(self._frames)].astype(np.float32)

    def _prepare(self, crop: np.ndarray, index: int) -> np.ndarray:
        img = np.asarray(crop)
        if img.ndim == 3 and img.shape[2] in (3, 4):
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if img.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
        if img.ndim != 2 or min(img.shape) < 8:
            raise DataError(f"spotter: frame {index} is not a face crop", value=getattr(crop, "shape", crop),
                            expected="a grey image of at least 8 x 8 pixels")
        img = img.astype(np.float32, copy=False)
        n = self.work_size
        factor = max(img.shape) / n
        # Anti-aliasing: a Gaussian of 0.85 output pixels before shrinking. Area averaging
        # alone folds the sharp edges of eyes, brows and mouth back into the small image,
        # differently at every sub-pixel position of the head, and a rigid shift then survives
        # compensation at those edges. Measured on synthetic faces (128 px crops, 64 px work
        # size, sensor noise 2 grey levels): the worst residual of rigid shifts of 1-5 px fell
        # from 7.9 to 3.2 noise units (sigma 0.5 px: 7.9; 0.85: 3.2; 1.0: 5.0) while a 1 px
        # local movement still scored 13-52 (16-80 unblurred).
        if factor >= 1:
            small = cv2.resize(cv2.GaussianBlur(img, (0, 0), _BLUR * factor), (n, n), interpolation=cv2.INTER_AREA)
        else:
            small = cv2.GaussianBlur(cv2.resize(img, (n, n), interpolation=cv2.INTER_LINEAR), (0, 0), _BLUR)
        m, s = cv2.meanStdDev(small)
        return (small - np.float32(m[0, 0])) / np.float32(s[0, 0] + 1e-3)

    def _work_boxes(self, shape: tuple[int, int], rois: Mapping[str, Box] | None) -> np.ndarray:
        h, w = int(shape[0]), int(shape[1])
        if rois is None:
            boxes = self._box_cache.get((h, w))
            if boxes is None:
                boxes = self._to_work(self._unit)
                self._box_cache[(h, w)] = boxes
        else:
            unit = self._unit.copy()
            for i, n in enumerate(self._names):
                if n in rois:
                    x0, y0, x1, y1 = rois[n]
                    unit[i] = (x0 / w, y0 / h, x1 / w, y1 / h)
            boxes = self._to_work(unit)
        self._last_boxes = boxes
        return boxes

    def _to_work(self, unit: np.ndarray) -> np.ndarray:
        n = self.work_size
        lo = np.clip(np.floor(unit[:, :2] * n), 0, n - 1).astype(np.int64)
        hi = np.clip(np.ceil(unit[:, 2:] * n), 1, n).astype(np.int64)
        hi = np.maximum(hi, lo + 1)
        return np.concatenate([lo, hi], axis=1)  # x0, y0, x1, y1

    def _pair(self, a: np.ndarray, b: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Per-region motion between two prepared frames, head motion and global residue removed."""
        res = b - a
        if self.head_motion:
            res = self._compensate(a, b, res)
        ad = np.abs(res)
        ii = cv2.integral(ad)
        x0, y0, x1, y1 = boxes.T
        sums = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]
        means = sums / ((x1 - x0) * (y1 - y0))
        if self.baseline == "median":
            cells = cv2.resize(ad, (_GRID, _GRID), interpolation=cv2.INTER_AREA)[1:-1, 1:-1].ravel()
            mid = len(cells) // 2
            part = np.partition(cells, (mid - 1, mid))
            means = means - 0.5 * float(part[mid - 1] + part[mid])
        elif self.baseline == "nose":
            means = means - means[self._ref]
        return means.astype(np.float32)

    def _compensate(self, a: np.ndarray, b: np.ndarray, res: np.ndarray) -> np.ndarray:
        """``b - a`` after moving the two frames half-way towards each other by their estimated
        whole-crop similarity motion (unchanged where it moves no pixel by
        :data:`_MIN_SHIFT_PX`)."""
        motion = _similarity(a, b)
        if _largest_displacement(motion, a.shape) < _MIN_SHIFT_PX:
            return res
        # Both frames are resampled by half the motion, so both are smoothed alike by the
        # interpolation and the difference stays symmetric in them.
        return _warp_half(b, motion, -1.0) - _warp_half(a, motion, 1.0)

    def _update_stats(self) -> None:
        """Noise location and spread of every region from the LOWER quantiles of its history.

        A movement only ever adds to a region's difference, and each event spoils ``2 K`` of
        the history (every pair with the event at either end): a 2 s macro-expression with a
        4 s span spoils 8 s. A median and MAD break down when half the window is spoilt; the
        10th and 25th percentiles of a normal distribution (mu - 1.2816 sigma and
        mu - 0.6745 sigma) stay clean until three quarters are.
        """
        n = min(self._n_hist, self._nwin)
        h = self._hist[:n]
        i10, i25 = int(0.10 * (n - 1)), int(0.25 * (n - 1))
        part = np.partition(h, (i10, i25), axis=0)
        q10, q25 = part[i10], part[i25]
        # A floor on the spread keeps a noiseless (synthetic) stream from dividing by zero:
        # 3e-4 of the normalised image's spread is far below any visible movement.
        scale = np.maximum((q25 - q10) / (1.2816 - 0.6745), 3e-4)
        self._med = (q25 + 0.6745 * scale).astype(np.float32)
        self._scale = scale.astype(np.float32)
        self._ready = n >= self._min_count

    # -- deciding -----------------------------------------------------------------------------
    def _step(self, t: int, a: np.ndarray, b: np.ndarray, g: np.ndarray) -> list[Interval]:
        """Score position ``t`` from its three measurements, then advance the interval state
        machine by the position whose smoothing window is now complete."""
        row = self._scores[t % len(self._scores)]
        row[4] = np.nan
        if self._ready and not np.isnan(a).any():
            za = (a - self._med) / self._scale
            zb = (b - self._med) / self._scale
            zg = (g - self._med) / self._scale
            row[0] = np.minimum(za, zb) - 0.5 * np.maximum(zg, 0)
            row[1], row[2], row[3] = za, zb, zg
        else:
            row[:4] = np.nan
        u = t - self._h
        return self._advance(u, t) if u >= 0 else []

    def _advance(self, t: int, newest: int) -> list[Interval]:
        """Smooth position ``t`` over the window held (up to ``newest``) and run the state
        machine on it. A movement lasts at least the shortest micro-expression, so averaging
        over ``smooth`` seconds (5 frames at 200 fps, none at 30) loses none of it, while a
        one-frame spike (a failed head-motion estimate, a compression glitch) is divided by
        the window's length."""
        window = self._rows(max(t - self._h, 0), min(t + self._h, newest))[:, 0]
        valid = ~np.isnan(window[:, 0])
        row = self._scores[t % len(self._scores)]
        if valid.any():
            row[4] = window[valid].mean(axis=0)
            z = float(np.max(row[4][self._expr]))
        else:
            row[4] = np.nan
            z = -math.inf
        if self._score_log is not None:
            self._score_log.append(FrameScore(int(self._index[t % len(self._index)]),
                                              z if z > -math.inf else math.nan, row.copy()))
        self._t = t
        out: list[Interval] = []
        seg = self._seg
        if self._suppress:
            self._suppress = z >= self.release
        elif seg is None:
            if z >= self.release:
                self._seg = _Segment(start=t, end=t, peak=z, apex=t)
        elif z >= self.release:
            seg.end, seg.gap = t, 0
            if z > seg.peak:
                seg.peak, seg.apex = z, t
            if seg.end - seg.start + 1 > self._max_frames:
                out += self._close(too_long=True)
                self._suppress = True
        else:
            seg.gap += 1
            if seg.gap > self._gap:
                out += self._close()
        return out

    def _close(self, too_long: bool = False, truncated: bool = False) -> list[Interval]:
        seg, self._seg = self._seg, None
        if seg is None or seg.peak < self.threshold:
            return []
        iv = self._finish(seg, too_long=too_long, truncated=truncated)
        return [] if iv is None else [iv]

    def _rows(self, lo: int, hi: int) -> np.ndarray:
        """Scores of positions lo..hi (inclusive), shape (n, 5, R)."""
        return self._scores[np.arange(lo, hi + 1) % len(self._scores)]

    def _finish(self, seg: _Segment, too_long: bool = False, truncated: bool = False) -> Interval | None:
        # Every position whose scores are still held (the ring covers the longest interval and
        # half of it again on either side for the walks below).
        hi = self._t
        lo = max(hi - len(self._scores) + 1, 0)
        rows = self._rows(lo, hi)
        s = np.where(np.isnan(rows[:, 4]), -np.inf, rows[:, 4])          # (n, R), smoothed
        expr = np.where(self._expr)[0]
        core = slice(seg.start - lo, seg.end - lo + 1)
        # The regions that carry the interval: those reaching half its peak. Its extent is read
        # on their upper envelope, so noise in another region next to it does not widen it.
        active = expr[s[core][:, expr].max(axis=0) >= 0.5 * seg.peak]
        curve = s[:, active].max(axis=1)
        above = np.where(curve[core] >= self.release)[0] + seg.start - lo
        on, off = int(above[0]), int(above[-1])
        # A movement is smooth in time: at 30 fps even the shortest micro-expression (1/25 s)
        # spans two frames above the release level with its neighbours, while a one-frame
        # glitch (a tracking jump, a dropped frame) does not. Half the shortest duration, at
        # least two frames.
        if off - on + 1 < self._min_core:
            return None
        # Tails: walk outwards while the score stays above ``foot`` (near the noise level), at
        # most ``merge_gap`` frames, so the onset and offset are where the movement starts and
        # ends rather than where it crosses the release level.
        for _ in range(self._gap):
            if on - 1 >= 0 and curve[on - 1] >= self.foot:
                on -= 1
            else:
                break
        for _ in range(self._gap):
            if off + 1 < len(curve) and curve[off + 1] >= self.foot:
                off += 1
            else:
                break
        apex = seg.apex - lo
        top = int(active[np.argmax(s[apex, active])])
        half = 0.5 * float(s[apex, top])
        if self.refine and not too_long:
            on, off = self._refine(lo, on, apex, off, active)
        # Is the event longer than the span, so that only its middle was measured? Then before
        # the onset the face already differs from the earlier reference (za) and the two
        # references differ (zg), one of them lying inside the event; after the offset, the
        # mirror image (zb and zg). Before and after an event shorter than the span the face is
        # at rest against the near reference. (A movement that does not quite return, the face
        # settling a little away from where it started, differs the other way round: from the
        # later reference before its onset, from the earlier one after its offset; it is kept.)
        # Looked for over half the interval's length on either side (at least ``merge_gap``):
        # when the frames for the matched-filter walk were not held, the onset and offset are
        # where the score rose, which for a too-long event is already inside it.
        za, zb, zg = (np.nan_to_num(rows[:, c, top], nan=-np.inf) for c in (1, 2, 3))
        m = max(1, self._gap, (off - on + 1) // 2)
        pre = float(np.minimum(za, zg)[max(on - m, 0):max(on, 0)].max(initial=-np.inf))
        post = float(np.minimum(zb, zg)[max(off + 1, 0):max(off + 1 + m, 0)].max(initial=-np.inf))
        cut = bool(pre >= half or post >= half)
        on_i, ap_i, off_i = (int(self._index[(lo + q) % len(self._index)]) for q in (on, apex, off))
        dur = (off_i - on_i + 1) / self.fps
        flags: list[str] = []
        if too_long or cut or dur > self.macro[1]:
            kind = "other"
        elif dur < self.micro[0]:
            return None
        elif dur <= self.micro[1]:
            kind = "micro"
        elif self.macro[0] <= dur:
            kind = "macro"
        else:
            kind = "other"
        if truncated:
            flags.append("truncated")
        pos = np.maximum(s[max(on, 0):max(min(off + 1, len(s)), on + 1)], 0)
        if self._is_blink(pos, dur):
            if self.blinks == "drop":
                return None
            flags.append("blink")
        if kind == "other" and not self.keep_other:
            return None
        at_apex = s[apex]
        order = np.argsort(-at_apex, kind="stable")
        regions = tuple(self._names[i] for i in order if self._expr[i] and at_apex[i] >= self.release)
        return Interval(onset=on_i, apex=ap_i, offset=off_i, onset_s=on_i / self.fps, apex_s=ap_i / self.fps,
                        offset_s=off_i / self.fps, kind=kind, score=round(float(seg.peak), 3),
                        duration_s=dur, regions=regions, flags=tuple(flags))

    def _refine(self, lo: int, on: int, apex: int, off: int, active: np.ndarray) -> tuple[int, int]:
        """Onset and offset where the movement's own spatial pattern fades to ``rel_extent`` of
        its apex (positions relative to ``lo``; unchanged where the frames are not held).

        The region score is an energy: ``|signal + noise|`` hides a signal below the noise, so
        the faint start and end of a movement read as rest and the interval comes out short.
        Projecting each frame's difference from the rest face onto the apex's difference
        pattern (inside the active regions) is linear in the movement's intensity, with the
        noise of a whole region's worth of pixels averaged out: a matched filter. The onset is
        measured against the rest face before the movement, the offset against the one after
        it, so a face that settles a little away from where it started still ends where the
        movement does. On synthetic 0.3 s movements it raised the IoU with the truth from
        0.67 to 0.78 at 30 fps; on the CASME II clips of the ``realdata`` test, 12 of 21 were
        spotted with IoU >= 0.5 (median 0.88) against 10 (median 0.80) without it.
        """
        core = off - on + 1
        reach = max(self._gap, core // 2)
        first, last = lo + on - reach - 1, lo + off + reach + 1   # rest frames, run positions
        p = self._p - 1                                           # newest frame held
        if first - 1 < max(0, p - len(self._frames) + 1) or last + 1 > p:
            return on, off
        mask = np.zeros((self.work_size, self.work_size), bool)
        for x0, y0, x1, y1 in self._last_boxes[active]:
            mask[y0:y1, x0:x1] = True

        def diff(q: int, rest: np.ndarray) -> np.ndarray:
            f = self._frame(lo + q)
            res = f - rest
            return (self._compensate(rest, f, res) if self.head_motion else res)[mask]

        def walk(pattern_rest: int, rest: int, steps: range) -> int | None:
            # The pattern is taken against one rest frame and every frame measured against its
            # neighbour, so a rest frame's own noise is not common to all projections. Two
            # frames differ by noise sigma * sqrt 2 per pixel: the tail is followed down to
            # ``rel_extent`` of the apex, but not into three noise spreads.
            a, b = self._frame(pattern_rest), self._frame(rest)
            pat = diff(apex, a)
            norm = float(pat @ pat)
            if norm <= 0:
                return None
            r = (self._compensate(a, b, b - a) if self.head_motion else b - a)[mask]
            level = max(self.rel_extent, 3 * float(np.std(r)) / math.sqrt(norm))
            reached = None
            for q in steps:
                if float(diff(q, b) @ pat) / norm < level:
                    break
                reached = q
            return reached

        new_on = walk(first, first - 1, range(on - 1, on - reach - 1, -1))
        new_off = walk(last, last + 1, range(off + 1, off + reach + 1))
        return (on if new_on is None else new_on), (off if new_off is None else new_off)

    def _is_blink(self, pos: np.ndarray, dur: float) -> bool:
        """Both eyes above the release level and most of the interval's summed region score in
        the eyes, for no longer than ``blink_max``."""
        eyes = self._eyes & self._expr
        if eyes.sum() < 2 or dur > self.blink_max:
            return False
        if not (pos[:, eyes].max(axis=0) >= self.release).all():
            return False
        total = float(pos[:, self._expr].sum())
        return total > 0 and float(pos[:, eyes].sum()) / total >= self.blink_share

    # -- saving -------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {"crop_size": self.crop_size, "rois": {k: list(v) for k, v in self.rois.items()},
                "micro": list(self.micro), "macro": list(self.macro), "span": self.span,
                "work_size": self.work_size, "threshold": self.threshold, "release": self.release,
                "foot": self.foot, "rel_extent": self.rel_extent, "refine": self.refine,
                "merge_gap": self.merge_gap, "smooth": self.smooth, "max_gap": self.max_gap,
                "noise_window": self.noise_window,
                "head_motion": self.head_motion, "baseline": self.baseline,
                "eye_regions": list(self.eye_regions), "reference_region": self.reference_region,
                "blinks": self.blinks, "blink_share": self.blink_share, "blink_max": self.blink_max,
                "keep_other": self.keep_other}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.VERSION, "fps": self.fps, "params": self.params()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MotionSpotter:
        if d.get("name") != cls.name:
            raise ConfigError(f"not a saved {cls.name!r} spotter: {d.get('name')!r}")
        p = dict(d.get("params", {}))
        for key in ("micro", "macro"):
            if key in p:
                p[key] = tuple(p[key])
        if "rois" in p and p["rois"] is not None:
            p["rois"] = {k: tuple(v) for k, v in p["rois"].items()}
        return cls(d["fps"], **p)


def _similarity(a: np.ndarray, b: np.ndarray, iterations: int = 8) -> np.ndarray:
    """Whole-crop motion from ``a`` to ``b``: translation, scale and rotation about the centre,
    ``(dx, dy, ds, dr)``, with ``b(x) ~ a(x - u(x))`` and the displacement
    ``u = (dx + ds X - dr Y, dy + dr X + ds Y)`` at ``(X, Y)`` from the centre (small angles).

    Lucas-Kanade (Gauss-Newton) steps (Lucas & Kanade 1981; the similarity Jacobian as in
    Baker & Matthews 2004). Translation alone is not enough: a tracker that re-aligns every
    frame from landmarks jitters in angle and scale too (a 1 px landmark error on eyes 60 px
    apart tilts the crop by 1 degree), and on synthetic faces with 0.3 degree and 0.3 %
    per-frame jitter a translation-only spotter reported 49 false intervals in 2 minutes.
    The first step, from no motion, is close for the small motions of tracked crops (below
    0.1 px it is kept); larger ones are iterated, each step re-warping the two frames half-way
    (symmetric, so the estimate favours neither) until no pixel moves by more than 0.005 px.
    That precision is needed: the eyes' edges are steep, and a 0.03 px error left by a looser
    0.02 px tolerance on a 2.5 px nod showed in the eye region as 8 noise units. The frames
    are already anti-aliased (see :meth:`MotionSpotter._prepare`), so their gradients are
    those of smooth images. Gradients come from the mean of the two frames; the two outer
    pixels are left out, where a moving crop brings in new content.
    """
    inner = _inner_mask(a.shape)
    xs, ys = _centred_grid(a.shape)
    n = a.size
    jac = np.empty((4, n), np.float32)
    p = np.zeros(4)
    for it in range(iterations):
        aw, bw = (a, b) if it == 0 else (_warp_half(a, p, 1.0), _warp_half(b, p, -1.0))
        g = (aw + bw) * np.float32(0.5)
        gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
        gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
        gx *= inner
        gy *= inner
        jac[0], jac[1] = gx.ravel(), gy.ravel()
        jac[2] = (gx * xs + gy * ys).ravel()
        jac[3] = (gy * xs - gx * ys).ravel()
        h = (jac @ jac.T).astype(np.float64)
        rhs = (jac @ (bw - aw).ravel()).astype(np.float64)
        h[np.diag_indices(4)] += 1e-9 * float(np.trace(h)) + 1e-12
        try:
            step = -np.linalg.solve(h, rhs)
        except np.linalg.LinAlgError:   # a flat image: nothing to align on
            break
        p += step
        moved = _largest_displacement(step, a.shape)
        # A first step under 0.1 px is within a few percent of the answer (the linear model
        # holds); later ones stop at 0.005 px.
        if moved < (0.1 if it == 0 else 0.005):
            break
    return p


def _largest_displacement(p: np.ndarray, shape: tuple[int, ...]) -> float:
    """The largest displacement (pixels) that motion ``p`` gives a pixel of the crop."""
    r = 0.5 * max(shape) * math.sqrt(2)
    return float(math.hypot(p[0], p[1]) + r * math.hypot(p[2], p[3]))


def _warp_half(img: np.ndarray, p: np.ndarray, sign: float) -> np.ndarray:
    """``img`` moved by ``sign`` times half the motion ``p``: ``out(x) = img(x - sign u(x) / 2)``,
    border replicated."""
    dx, dy, ds, dr = (0.5 * sign) * p
    cy, cx = (img.shape[0] - 1) / 2, (img.shape[1] - 1) / 2
    m = np.array([[1 - ds, dr, -dx + ds * cx - dr * cy],
                  [-dr, 1 - ds, -dy + dr * cx + ds * cy]], np.float32)
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


_GRIDS: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}


def _centred_grid(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates relative to the image centre (float32, cached per shape)."""
    g = _GRIDS.get(shape)
    if g is None:
        ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
        g = (xs - (shape[1] - 1) / 2, ys - (shape[0] - 1) / 2)
        _GRIDS[shape] = g
    return g


_INNER: dict[tuple[int, ...], np.ndarray] = {}


def _inner_mask(shape: tuple[int, ...]) -> np.ndarray:
    """1 inside, 0 on the two outer rows and columns (float32, cached per shape)."""
    m = _INNER.get(shape)
    if m is None:
        m = np.zeros(shape, np.float32)
        m[2:-2, 2:-2] = 1
        _INNER[shape] = m
    return m


SPOTTERS.add("motion", MotionSpotter, help="training-free: local motion against references +/- span away, "
             "head motion compensated, robust running threshold, blinks dropped")


# ---------------------------------------------------------------------------------------------
# the floor
# ---------------------------------------------------------------------------------------------
class FixedWindowSpotter:
    """Fixed-length windows every ``stride`` seconds, whatever the face does.

    The floor for benchmarks: a spotter that cannot beat tiling the video with windows of a
    micro-expression's length (default 0.3 s, inside the 0.2-0.5 s where most fall) has
    learned nothing. Windows lie on a grid of frame indices (onset a multiple of the stride),
    so the output does not depend on where the stream was cut; a window is only reported when
    every frame in it had a face.
    """

    name: ClassVar[str] = "fixed_windows"
    VERSION: ClassVar[int] = 1

    def __init__(self, fps: float, *, window: float = 0.3, stride: float | None = None,
                 kind: str = "micro") -> None:
        self.fps = _check_fps(fps)
        self.window = float(window)
        self.stride = float(stride) if stride is not None else self.window
        if not (self.window > 0 and self.stride > 0):
            raise ConfigError(f"fixed_windows: window and stride must be positive seconds; got {window!r}, {stride!r}")
        if kind not in KINDS:
            raise ConfigError(f"fixed_windows kind: expected one of {KINDS}, got {kind!r}")
        self.kind = kind
        self._n = max(1, round(self.window * self.fps))
        self._step = max(1, round(self.stride * self.fps))
        self._face_since: int | None = None
        self._last: int | None = None

    def push(self, index: int, crop: np.ndarray | None,
             rois: Mapping[str, Box] | None = None) -> list[Interval]:
        """The window that ends with frame ``index``, if one does on the grid."""
        index = int(index)
        if self._last is not None and index <= self._last:
            raise DataError(f"spotter: frame indices must increase; got {index} after {self._last}")
        if crop is None or (self._last is not None and index != self._last + 1):
            self._face_since = None
        self._last = index
        if crop is None:
            return []
        if self._face_since is None:
            self._face_since = index
        onset = index - self._n + 1
        if onset % self._step or onset < self._face_since:
            return []
        apex = onset + (self._n - 1) // 2
        return [Interval(onset=onset, apex=apex, offset=index, onset_s=onset / self.fps, apex_s=apex / self.fps,
                         offset_s=index / self.fps, kind=self.kind, score=0.0, duration_s=self._n / self.fps)]

    @property
    def horizon(self) -> int:
        """How far back from the frame pushed a returned window's onset lies: one window."""
        return self._n

    @property
    def warmup(self) -> int:
        """Frames to replay before a frame for the same windows from it on: one window."""
        return self._n

    def flush(self) -> list[Interval]:
        """Nothing is open at the end (a partial window is not a window)."""
        self._face_since, self._last = None, None
        return []

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.VERSION, "fps": self.fps,
                "params": {"window": self.window, "stride": self.stride, "kind": self.kind}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FixedWindowSpotter:
        if d.get("name") != cls.name:
            raise ConfigError(f"not a saved {cls.name!r} spotter: {d.get('name')!r}")
        return cls(d["fps"], **dict(d.get("params", {})))


SPOTTERS.add("fixed_windows", FixedWindowSpotter,
             help="baseline floor: fixed-length windows every stride seconds")
SPOTTERS.add("learned", "mekit.analysis.learned_spotter:LearnedSpotter",
             help="a model over the motion scores fitted on training subjects; give a trained spotter file")


# ---------------------------------------------------------------------------------------------
# cost
# ---------------------------------------------------------------------------------------------
def measure_cost(fps: float = 30.0, *, crop_size: int = 128, seconds: float = 20.0, seed: int = 0,
                 spotter: str = "motion", **params: Any) -> dict[str, float]:
    """Per-frame cost of a spotter on a synthetic textured crop stream (for benchmarks).

    Returns milliseconds per frame (mean, median, 95th percentile) of ``push`` alone (making
    the frames is not timed), the frames timed and the frame rate that cost alone would allow.
    Logged at INFO as well.
    """
    rng = np.random.default_rng(seed)
    n = max(1, round(seconds * fps))
    base = cv2.GaussianBlur(rng.normal(128, 40, (crop_size, crop_size)).astype(np.float32), (0, 0), 2.0)
    noise = rng.normal(0, 2.0, (64, crop_size, crop_size)).astype(np.float32)
    frames = [np.clip(base + noise[i % 64], 0, 255).astype(np.uint8) for i in range(min(n, 64))]
    sp = make_spotter(spotter, fps, crop_size=crop_size, **params) if spotter == "motion" else \
        make_spotter(spotter, fps, **params)
    times = np.empty(n)
    for i in range(n):
        f = frames[i % len(frames)]
        t0 = time.perf_counter()
        sp.push(i, f)
        times[i] = time.perf_counter() - t0
    sp.flush()
    ms = times * 1e3
    out = {"frames": float(n), "ms_mean": float(ms.mean()), "ms_median": float(np.median(ms)),
           "ms_p95": float(np.percentile(ms, 95)), "max_fps": float(1e3 / ms.mean())}
    log.info("spotter %s at %.0f fps, %d px crops: %.3f ms/frame (median %.3f, p95 %.3f)", spotter, fps,
             crop_size, out["ms_mean"], out["ms_median"], out["ms_p95"])
    return out


__all__ = ["SPOTTERS", "Box", "FixedWindowSpotter", "FrameScore", "Interval", "MotionSpotter", "Spotter",
           "make_spotter", "measure_cost", "spot", "spotter_from_dict"]

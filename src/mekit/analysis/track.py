"""A streaming face track for long videos and live cameras: one call per frame, O(1) frames held.

:class:`FaceTracker` turns a stream of frames into a stream of :class:`TrackState`: where the
face is (a box that follows it every frame), the registered, eye-levelled grey crop a spotter
reads, ROIs in crop coordinates, and, for frames without a face, that there is none and why.

Why it is built this way (numbers measured on the project's 2-core machine, 640x480 frames
with a synthetic face of ~125 px, single-threaded OpenCV):

- **Detect rarely.** One :meth:`FaceAligner.fit <mekit.preprocess.face.FaceAligner.fit>`
  (BlazeFace + 468-point face mesh) costs 8-10 ms in a window around the track, ~10 ms on
  the whole frame, and 21-26 ms on a frame without a face (both BlazeFace models, the mesh's
  own detector, then Haar under ``"auto"``; Haar alone takes 20-26 ms with a face). At the
  60 frames/s target the whole pipeline (decode, track, spot) has 16.7 ms per frame, so the
  detector runs every :data:`REDETECT_EVERY` frames (see there for the arithmetic) and
  when the cheap check below asks for it.
- **Check cheaply every frame.** Between detections the face is followed by normalised
  cross-correlation (``cv2.TM_CCOEFF_NORMED``) of a :data:`DRIFT_GRID`-px grey crop against
  the template taken at the last detection: 0.04 ms for the match, 0.04 ms for its warp,
  0.12 ms for the frame's grey conversion (which the output crop needs anyway). Sparse
  optical flow (Lucas-Kanade, 30 corners, forward and backward for a consistency check)
  costs 0.9 ms at 640x480 for the same question, so it was not chosen. The correlation
  gives the face's shift in the crop (sub-pixel, parabolic peak fit) and a similarity that
  falls when the face leaves, is covered or changes: below ``min_similarity`` the detector
  is asked at once. A whole tracked frame (check, 128-px crop, state) costs ~0.6 ms, a
  detected one ~11 ms: ~520 frames/s at 640x480 on a face moving 1 px per frame
  (tests/analysis/test_track.py prints the numbers of the machine it runs on).
- **Registered crops.** The crop's alignment (eye-line rotation, scale, position: a
  :class:`~mekit.preprocess.face.FaceAlignment`) changes only at a detection that moved the
  smoothed pose by more than ``tolerance`` (the crop's corners would move by more than that
  fraction of its side). Between such moves consecutive crops use the same matrix, so a still
  face gives still crops and only the face's own motion shows; a move is flagged
  (:attr:`TrackState.realigned`) so a spotter can skip that one frame pair. A face drifting
  more than ``max_drift`` in the crop triggers the detection that realigns it.
- **Smooth the pose.** Every measurement (the detector's pose, the template's shift) enters
  an exponential moving average of centre, log-scale and eye angle; ``smoothing`` is the
  weight kept from the past. The detector's pose jitters by up to a pixel between frames of
  a still face under sensor noise, and jitter is fake motion to a spotter. See
  :data:`SMOOTHING` for the measured effect. A detection further than ``max_drift`` from the
  smoothed pose, or the first after a loss, is a real move and is taken as it is.
- **One identity.** A detection counts only near the track (centre within half the crop's
  side, scale within 1.5x); re-detection searches a window around the track first, so a
  second, larger face elsewhere is not taken. A face lost for more than ``forget_after``
  frames is forgotten and the next face found starts a new track (a new ``track_id``).
- **Never fail on a missing face.** A frame without a face gives a state with
  ``face == False`` and the reason. While lost, the detector runs every ``redetect_every``
  frames, or at once when the last template matches again where the face was.

Not thread-safe (the MediaPipe graphs are not): one tracker per stream.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from mekit.errors import ConfigError, DataError
from mekit.preprocess.face import DETECTORS, FaceAligner, FaceAlignment, NoFaceError

log = logging.getLogger(__name__)

#: Default frames between routine re-detections. Derived from the speed target: 60 frames/s
#: on 2 cores leaves 16.7 ms per frame for decoding, tracking and spotting together. A
#: detected frame costs ~11 ms here and a tracked one ~0.6 ms, so one detection in 10 frames
#: averages ~1.6 ms per frame, a tenth of the budget (one in 3 would take a quarter, one in
#: 30 would save only 0.7 ms more). Between routine detections the template check asks for a
#: detection at once on drift, loss or change, so the interval bounds only how stale the
#: face's scale, eye angle and landmarks may get: a third of a second at 30 frames/s. While
#: the face is lost a detection costs 21-26 ms, and it is tried at this interval too.
REDETECT_EVERY = 10

#: Default smoothing (the weight an exponential moving average keeps from the past). On a
#: still synthetic face under Gaussian sensor noise (sigma 3 grey levels) the face mesh's
#: pose differs between frames by 0.2-0.3 px in centre, 0.6 px in side and 0.4 degrees in eye
#: angle (standard deviations, 114-px crop); 0.6 shrinks that jitter's standard deviation by
#: sqrt((1 - 0.6) / (1 + 0.6)) = 0.5, while a face moving 1 px per frame lags by
#: 0.6 / 0.4 = 1.5 px. Measured on crops of a still face (blurred mean absolute difference of
#: consecutive 128-px crops, re-detecting every 5 frames, four faces): 2.1-3.3 grey levels at
#: the jumps without smoothing, 0.7-0.9 with the average alone, 0.28-0.31 (the sensor noise;
#: the crop never moves) with the average and the realignment tolerance together.
SMOOTHING = 0.6

#: Side (px) of the grey crop the template check runs on; with :data:`SEARCH` px of search on
#: each side the template is the central 40 px. At 64 px the match costs 0.04 ms, and the
#: shift it measures for a face moving 1.5 px per frame (640x480, 150-px crop, noise sigma 3)
#: is off by 0.05 px (standard deviation; 0.08 px at most) in frame pixels.
DRIFT_GRID = 64
#: How far (px of the :data:`DRIFT_GRID` crop, ~19 % of its side) the template is searched.
#: A shift that reaches the edge of the search is treated as a lost template.
SEARCH = 12

STATUSES = ("detected", "tracked", "lost")


# ---------------------------------------------------------------------------------------
# pose: the similarity transform behind a crop
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Pose:
    """The crop as (centre, side, angle): ``(cx, cy)`` is the frame point at the crop's centre,
    ``side`` the crop's side in frame pixels, ``angle`` the eye line's angle (radians) that the
    crop levels. Equivalent to a FaceAlignment's matrix without its landmarks."""

    cx: float
    cy: float
    side: float
    angle: float

    @classmethod
    def from_matrix(cls, m: np.ndarray | tuple) -> _Pose:
        m = np.asarray(m, dtype=np.float64)
        a, t = m[:, :2], m[:, 2]
        side = 1.0 / math.sqrt(abs(float(np.linalg.det(a))))
        angle = math.atan2(a[0, 1], a[0, 0])
        cx, cy = np.linalg.solve(a, np.array([0.5, 0.5]) - t)
        return cls(float(cx), float(cy), side, angle)

    def matrix(self) -> np.ndarray:
        """2x3 matrix from frame pixels to unit crop coordinates (as FaceAlignment.matrix)."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        a = np.array([[c, s], [-s, c]]) / self.side
        t = np.array([0.5, 0.5]) - a @ np.array([self.cx, self.cy])
        return np.hstack([a, t[:, None]])

    def to_frame(self, unit_pts: np.ndarray) -> np.ndarray:
        """Unit crop coordinates -> frame pixels."""
        m = self.matrix()
        return (np.asarray(unit_pts, dtype=np.float64) - m[:, 2]) @ np.linalg.inv(m[:, :2]).T

    def blend(self, other: _Pose, w: float, translation_only: bool = False) -> _Pose:
        """``w`` of ``other`` and ``1 - w`` of this pose (scale averaged in log, angle as angle)."""
        cx = self.cx + w * (other.cx - self.cx)
        cy = self.cy + w * (other.cy - self.cy)
        if translation_only:
            return _Pose(cx, cy, self.side, self.angle)
        side = math.exp(math.log(self.side) + w * (math.log(other.side) - math.log(self.side)))
        d = math.atan2(math.sin(other.angle - self.angle), math.cos(other.angle - self.angle))
        return _Pose(cx, cy, side, self.angle + w * d)

    def shifted(self, dx: float, dy: float) -> _Pose:
        return _Pose(self.cx + dx, self.cy + dy, self.side, self.angle)

    def corner_shift(self, other: _Pose) -> float:
        """How far the crop's corners move from this pose to ``other``, in units of the side."""
        unit = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        d = np.linalg.norm(self.to_frame(unit) - other.to_frame(unit), axis=1)
        return float(d.max() / self.side)


def _shift_matrix(m: np.ndarray | tuple, x0: int, y0: int) -> np.ndarray:
    """The matrix for the full frame from one fitted on the sub-image starting at (x0, y0)."""
    m = np.asarray(m, dtype=np.float64).copy()
    m[:, 2] -= m[:, :2] @ np.array([float(x0), float(y0)])
    return m


# ---------------------------------------------------------------------------------------
# the per-frame answer
# ---------------------------------------------------------------------------------------
class _Hold:
    """The current frame's grey image, released when the next frame arrives, so that a caller
    keeping every state keeps no frames."""

    __slots__ = ("grey",)

    def __init__(self, grey: np.ndarray | None) -> None:
        self.grey = grey


@dataclass(frozen=True, eq=False)
class TrackState:
    """What the tracker knows about one frame.

    ``status`` (one of :data:`STATUSES`) is ``"detected"`` (the detector found the tracked face
    in this frame), ``"tracked"`` (followed by the template check since the last detection) or
    ``"lost"`` (no face; ``reason`` says why). ``box`` is the face's (x0, y0, x1, y1) in frame
    pixels, from the smoothed pose (the face mesh's extent, or the detector's box without a
    mesh); ``alignment`` the crop's alignment in use. ``realigned`` is True when the alignment
    differs from the previous frame's, so this crop is not registered with the one before.
    ``similarity`` is the template check's correlation (NaN where it did not run). ``track_id``
    changes when a new face is taken up after the old one was forgotten.
    """

    index: int
    status: str
    box: tuple[float, float, float, float] | None
    alignment: FaceAlignment | None
    reason: str = ""
    realigned: bool = False
    similarity: float = float("nan")
    track_id: int = 0
    size: int = 128
    _crop: np.ndarray | None = field(default=None, repr=False)
    _hold: _Hold | None = field(default=None, repr=False)

    @property
    def face(self) -> bool:
        """Whether this frame has the tracked face (detected or tracked)."""
        return self.status != "lost"

    @property
    def detected(self) -> bool:
        return self.status == "detected"

    @property
    def lost(self) -> bool:
        return self.status == "lost"

    def crop(self, size: int | None = None) -> np.ndarray:
        """The aligned grey face crop (uint8, ``size`` x ``size``; default: the tracker's size).

        The tracker's size is computed with the frame and always available (read-only). Any
        other size is cut from the frame, which is held only until the next ``update``: ask
        for it before then. Raises :class:`~mekit.preprocess.face.NoFaceError` on a lost frame.
        """
        if self.alignment is None:
            raise NoFaceError(f"frame {self.index} has no face to crop: {self.reason}")
        if size is None or size == self.size:
            assert self._crop is not None
            return self._crop
        grey = None if self._hold is None else self._hold.grey
        if grey is None:
            raise DataError(f"frame {self.index} is no longer held, so a {size}-px crop cannot be cut "
                            f"from it; the tracker holds only the latest frame",
                            expected=f"crop({size}) before the next update, or FaceTracker(size={size})")
        return self.alignment.apply(grey, size)

    def rois(self, size: int | None = None) -> dict[str, tuple[int, int, int, int]]:
        """ROI boxes (eyebrows, eyes, nose, mouth, lip corners) in crop pixels of ``size``,
        from the face mesh of the detection the alignment came from (generic boxes without one)."""
        if self.alignment is None:
            raise NoFaceError(f"frame {self.index} has no face: {self.reason}")
        return self.alignment.rois(self.size if size is None else size)


# ---------------------------------------------------------------------------------------
# the tracker
# ---------------------------------------------------------------------------------------
class FaceTracker:
    """Streaming face tracker: call :meth:`update` once per frame, in order.

    ``detector`` is one of mekit's face detectors (:data:`mekit.preprocess.face.DETECTORS`);
    ``redetect_every`` frames between routine detections; ``size`` the side of the crop every
    state carries; ``margin`` the crop's margin around the face box (as FaceAligner's);
    ``smoothing`` in [0, 1) the weight an exponential moving average of the pose keeps from
    the past (0: every measurement taken as it is); ``max_drift`` how far (fraction of the crop
    side) the face may move in the crop before a detection is asked for; ``tolerance`` how far
    (same unit) the smoothed pose must move before the crop is realigned; ``min_similarity``
    the template correlation below which the face counts as gone or changed; ``forget_after``
    frames after which a lost face is forgotten and any face may start a new track.

    ``counts`` tallies frames, detector runs, detections, realignments and lost frames (for
    benchmarks and logs).
    """

    def __init__(self, detector: str = "auto", *, redetect_every: int = REDETECT_EVERY, size: int = 128,
                 margin: float = 0.2, smoothing: float = SMOOTHING, max_drift: float = 0.05,
                 tolerance: float = 0.02, min_similarity: float = 0.6, forget_after: int = 60) -> None:
        if detector not in DETECTORS:
            raise ConfigError(f"unknown face detector {detector!r}; expected one of: {', '.join(DETECTORS)}")
        for name, value in (("redetect_every", redetect_every), ("size", size), ("forget_after", forget_after)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"FaceTracker {name} must be a positive integer, got {value!r}")
        if not 0.0 <= float(smoothing) < 1.0:
            raise ConfigError(f"FaceTracker smoothing must be in [0, 1), got {smoothing!r}")
        if not 0.0 <= float(tolerance) < 0.5:
            raise ConfigError(f"FaceTracker tolerance must be in [0, 0.5), got {tolerance!r}")
        if not float(tolerance) <= float(max_drift) <= SEARCH / DRIFT_GRID:
            # a drift below the tolerance would ask for detections that never realign the crop
            raise ConfigError(f"FaceTracker max_drift must lie between tolerance ({tolerance}) and "
                              f"{SEARCH / DRIFT_GRID:.3f} (the template's search range), got {max_drift!r}")
        if not 0.0 < float(min_similarity) < 1.0:
            raise ConfigError(f"FaceTracker min_similarity must be in (0, 1), got {min_similarity!r}")
        self.detector = detector
        self.redetect_every = int(redetect_every)
        self.size = int(size)
        self.margin = float(margin)
        self.smoothing = float(smoothing)
        self.max_drift = float(max_drift)
        self.tolerance = float(tolerance)
        self.min_similarity = float(min_similarity)
        self.forget_after = int(forget_after)
        # FaceAligner validates the margin
        self._aligner = FaceAligner(detector, margin=self.margin, align=True, landmarks=True)
        self.counts = {"frames": 0, "detection_runs": 0, "detections": 0, "realignments": 0, "lost": 0}
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the track (the next face found starts a new one); keeps the detector graphs."""
        self._n = 0                                   # frames seen
        self._shape: tuple[int, int] | None = None
        self._pose: _Pose | None = None               # smoothed pose of the tracked face
        self._align: FaceAlignment | None = None      # crop alignment in use
        self._align_pose: _Pose | None = None
        self._unit_face = (0.0, 0.0, 1.0, 1.0)        # face box in unit crop coords of the fit
        self._template: np.ndarray | None = None
        self._capture: _Pose | None = None            # smoothed pose when the template was taken
        self._active = False                          # tracking (not lost)
        self._last_attempt = -(10 ** 9)               # frame count of the last detector run
        self._last_ok = False                         # whether that run found the face
        self._last_seen = -(10 ** 9)                  # frame count the face was last present
        self._track_id = 0
        self._hold: _Hold | None = None

    def close(self) -> None:
        """Release the detector's MediaPipe graphs."""
        self._aligner.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- per frame ------------------------------------------------------------------------
    def update(self, frame_bgr: np.ndarray, index: int | None = None) -> TrackState:
        """The track's state at this frame (BGR as OpenCV decodes it, BGRA or grey; uint8).

        ``index`` is the frame's number in its stream (default: frames seen so far); it is only
        reported. Frames must come in order; a frame of another size starts a new track.
        """
        grey = _grey(frame_bgr, index if index is not None else self._n)
        if self._hold is not None:
            self._hold.grey = None  # the previous state no longer pins its frame
        if self._shape is not None and grey.shape != self._shape:
            log.info("frame size changed from %s to %s; starting a new track", self._shape, grey.shape)
            tid = self._track_id
            self.reset()
            self._track_id = tid
        self._shape = grey.shape
        n = self._n
        self._n += 1
        self.counts["frames"] += 1
        idx = n if index is None else int(index)
        hold = self._hold = _Hold(grey)

        sim, shift, at_edge = float("nan"), (0.0, 0.0), False
        if self._template is not None and self._align is not None:
            sim, shift, at_edge = self._check(grey)

        if self._active:
            state = self._step_tracking(frame_bgr, grey, n, idx, sim, shift, at_edge, hold)
        else:
            state = self._step_lost(frame_bgr, grey, n, idx, sim, at_edge, hold)
        if state.lost:
            self.counts["lost"] += 1
        return state

    def _step_tracking(self, frame: np.ndarray, grey: np.ndarray, n: int, idx: int, sim: float,
                       shift: tuple[float, float], at_edge: bool, hold: _Hold) -> TrackState:
        assert self._pose is not None and self._capture is not None and self._align_pose is not None
        good = sim >= self.min_similarity and not at_edge
        if good:
            # the template's shift, converted from crop units to frame pixels
            a = np.asarray(self._align.matrix)[:, :2]
            dx, dy = np.linalg.solve(a, np.asarray(shift))
            measured = self._capture.shifted(float(dx), float(dy))
            self._pose = self._pose.blend(measured, 1.0 - self.smoothing, translation_only=True)
            self._last_seen = n
        drift = self._drift()
        due = n - self._last_attempt >= self.redetect_every
        why = None
        if not good:
            why = ("the face moved past the template search" if at_edge
                   else f"template similarity {sim:.2f} < {self.min_similarity}")
        elif drift > self.max_drift and (self._last_ok or due):
            # after a failed detection only the routine interval asks again, so a face the
            # detector cannot see but the template follows does not cost a detection a frame
            why = f"face drifted {drift:.3f} of the crop"
        elif due:
            why = "routine"
        if why is not None:
            found = self._detect(frame, n, near=self._pose)
            if found is not None:
                return self._accept(found, grey, n, idx, sim, hold, reason=why)
            if not good:
                self._active = False
                return self._lost_state(idx, hold, f"face lost ({why}) and no face detected near the track",
                                        sim)
        return self._state(idx, "tracked", grey, hold, sim, realigned=False)

    def _step_lost(self, frame: np.ndarray, grey: np.ndarray, n: int, idx: int, sim: float, at_edge: bool,
                   hold: _Hold) -> TrackState:
        remembered = self._pose is not None and n - self._last_seen <= self.forget_after
        back = remembered and sim >= self.min_similarity and not at_edge
        if not (back or n - self._last_attempt >= self.redetect_every):
            what = "face lost" if remembered else "no face"
            return self._lost_state(idx, hold, f"{what}; next detection within {self.redetect_every} frames",
                                    sim)
        found = self._detect(frame, n, near=self._pose if remembered else None)
        if found is None:
            if remembered:
                return self._lost_state(idx, hold, "no face detected near the lost track", sim)
            return self._lost_state(idx, hold, "no face detected", sim)
        if not remembered and self._pose is not None:
            log.info("frame %s: a face found %d frames after the old one was lost starts a new track",
                     idx, n - self._last_seen)
            self._track_id += 1
        self._pose = None  # a fresh start: the pose before the loss is stale, so no smoothing towards it
        return self._accept(found, grey, n, idx, sim, hold, reason="re-acquired")

    # -- pieces ---------------------------------------------------------------------------
    def _check(self, grey: np.ndarray) -> tuple[float, tuple[float, float], bool]:
        """Template correlation in the current crop: (similarity, shift in unit crop coords,
        whether the peak lies on the search's edge)."""
        assert self._align is not None and self._template is not None
        small = self._align.apply(grey, DRIFT_GRID)
        res = cv2.matchTemplate(small, self._template, cv2.TM_CCOEFF_NORMED)
        _, peak, _, (ix, iy) = cv2.minMaxLoc(res)
        h, w = res.shape
        at_edge = ix in (0, w - 1) or iy in (0, h - 1)
        fx = _parabola(res[iy, ix - 1], res[iy, ix], res[iy, ix + 1]) if 0 < ix < w - 1 else 0.0
        fy = _parabola(res[iy - 1, ix], res[iy, ix], res[iy + 1, ix]) if 0 < iy < h - 1 else 0.0
        shift = ((ix + fx - SEARCH) / DRIFT_GRID, (iy + fy - SEARCH) / DRIFT_GRID)
        return float(peak), shift, at_edge

    def _drift(self) -> float:
        """How far the smoothed face has moved away from where the crop's alignment puts it
        (largest corner shift, as a fraction of the crop's side)."""
        assert self._align_pose is not None and self._pose is not None
        return self._align_pose.corner_shift(self._pose)

    def _detect(self, frame: np.ndarray, n: int, near: _Pose | None) -> tuple[FaceAlignment, _Pose] | None:
        """Run the detector: in a window around ``near`` first, then on the whole frame. A
        detection away from ``near`` (another face) is refused to keep one identity."""
        self._last_attempt = n
        self._last_ok = False
        h, w = frame.shape[:2]
        tries: list[tuple[int, int, int, int]] = []
        if near is not None and self.detector != "none":  # 'none' takes any window for the face
            half = near.side  # a window twice the crop's side: the face and its surroundings
            x0, y0 = max(0, int(near.cx - half)), max(0, int(near.cy - half))
            x1, y1 = min(w, int(math.ceil(near.cx + half)) + 1), min(h, int(math.ceil(near.cy + half)) + 1)
            if x1 - x0 >= 32 and y1 - y0 >= 32 and (x1 - x0, y1 - y0) != (w, h):
                tries.append((x0, y0, x1, y1))
        tries.append((0, 0, w, h))
        for x0, y0, x1, y1 in tries:
            self.counts["detection_runs"] += 1
            try:
                fitted = self._aligner.fit(frame[y0:y1, x0:x1])
            except NoFaceError:
                continue
            m = _shift_matrix(fitted.matrix, x0, y0)
            pose = _Pose.from_matrix(m)
            if near is not None and not _same_face(near, pose):
                log.debug("a face at (%.0f, %.0f) is not the tracked one at (%.0f, %.0f); ignored",
                          pose.cx, pose.cy, near.cx, near.cy)
                continue
            al = FaceAlignment(matrix=tuple(map(tuple, m)), landmarks=fitted.landmarks, source=fitted.source,
                               angle=fitted.angle, frame_shape=(h, w), eyes_from=fitted.eyes_from)
            self.counts["detections"] += 1
            self._last_ok = True
            return al, pose
        return None

    def _accept(self, found: tuple[FaceAlignment, _Pose], grey: np.ndarray, n: int, idx: int, sim: float,
                hold: _Hold, reason: str) -> TrackState:
        fitted, pose = found
        # Smoothing is for jitter, which is small: between noisy frames of a still face the
        # mesh's pose moves its crop's corners by 0.2-0.6 % of the side on average, 1 % at most
        # (four synthetic faces, 13 frame pairs each). A detection further than max_drift from
        # the smoothed pose is a real move (the template lost a fast motion, say) and is taken
        # as it is: an average would leave the crop off the face for several detections, each
        # removing only a fraction 1 - smoothing of the error.
        fresh = self._pose is None or self._pose.corner_shift(pose) > self.max_drift
        self._pose = pose if fresh else self._pose.blend(pose, 1.0 - self.smoothing)
        # the face box in the fit's unit coordinates: the mesh's extent, else the detector's box
        if fitted.landmarks is not None and len(fitted.landmarks) >= 468:
            lm = fitted.landmarks
            self._unit_face = (float(lm[:, 0].min()), float(lm[:, 1].min()),
                               float(lm[:, 0].max()), float(lm[:, 1].max()))
        else:
            m = self.margin / (2.0 * (1.0 + self.margin))
            self._unit_face = (m, m, 1.0 - m, 1.0 - m)
        realign = fresh or self._align_pose is None or self._align_pose.corner_shift(self._pose) > self.tolerance
        if realign:
            lm = fitted.landmarks
            if lm is not None:  # re-expressed in the new crop's coordinates
                src = _Pose.from_matrix(fitted.matrix).to_frame(lm)
                mm = self._pose.matrix()
                lm = src @ mm[:, :2].T + mm[:, 2]
            self._align_pose = self._pose
            self._align = FaceAlignment(matrix=tuple(map(tuple, self._pose.matrix())), landmarks=lm,
                                        source=fitted.source, angle=math.degrees(self._pose.angle),
                                        frame_shape=grey.shape, eyes_from=fitted.eyes_from)
            self.counts["realignments"] += 1
            log.debug("frame %s: crop realigned (%s)", idx, reason)
        # a new template from this frame, under the alignment now in use
        small = self._align.apply(grey, DRIFT_GRID)
        self._template = np.ascontiguousarray(small[SEARCH:DRIFT_GRID - SEARCH, SEARCH:DRIFT_GRID - SEARCH])
        self._capture = self._pose
        self._active = True
        self._last_seen = n
        return self._state(idx, "detected", grey, hold, sim, realigned=realign)

    def _state(self, idx: int, status: str, grey: np.ndarray, hold: _Hold, sim: float,
               realigned: bool) -> TrackState:
        assert self._pose is not None and self._align is not None
        x0, y0, x1, y1 = self._unit_face
        corners = self._pose.to_frame(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
        box = (*(float(v) for v in corners.min(0)), *(float(v) for v in corners.max(0)))
        crop = self._align.apply(grey, self.size)
        crop.setflags(write=False)
        return TrackState(index=idx, status=status, box=box, alignment=self._align,  # type: ignore[arg-type]
                          realigned=realigned, similarity=sim, track_id=self._track_id, size=self.size,
                          _crop=crop, _hold=hold)

    def _lost_state(self, idx: int, hold: _Hold, reason: str, sim: float) -> TrackState:
        return TrackState(index=idx, status="lost", box=None, alignment=None, reason=reason, similarity=sim,
                          track_id=self._track_id, size=self.size, _hold=hold)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _grey(frame: np.ndarray, index: int) -> np.ndarray:
    """Grey uint8 copy of a grey, BGR or BGRA uint8 frame."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0 \
            or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        what = (frame.dtype, frame.shape) if isinstance(frame, np.ndarray) else type(frame).__name__
        raise DataError(f"frame {index} cannot be tracked", value=what,
                        expected="a uint8 image of shape (H, W), (H, W, 3) BGR or (H, W, 4) BGRA")
    if frame.ndim == 2:
        return frame.copy()
    if frame.shape[2] == 1:
        return frame[:, :, 0].copy()
    return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


def _parabola(a: float, b: float, c: float) -> float:
    """Sub-pixel offset of a peak ``b`` between neighbours ``a`` and ``c`` (within +-0.5)."""
    den = a - 2.0 * b + c
    return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def _same_face(track: _Pose, pose: _Pose) -> bool:
    """Whether a detection is the tracked face: centre within half the crop's side, scale
    within 1.5x. Faces of two people side by side are at least a face width apart."""
    d = math.hypot(pose.cx - track.cx, pose.cy - track.cy)
    return d <= 0.5 * track.side and 1 / 1.5 <= pose.side / track.side <= 1.5

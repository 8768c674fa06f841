"""Face alignment: detection, landmarks, eye-line levelling, one crop per clip, and ROIs.

A clip gets ONE :class:`FaceAlignment`, fitted on its onset frame (or the first frame of
the clip where a face is found) and applied unchanged to every frame. Published
micro-expression code often crops the onset and the apex independently and feeds the
misalignment between the two crops to its optical flow; a micro-expression moves the
face by a pixel or two, so even a one-pixel crop jitter is as large as the signal.
A single affine matrix per clip makes that impossible by construction.

The alignment is one 2x3 affine matrix from source-frame pixels to the unit square
``[0, 1]^2`` (the crop), so it is independent of the output size: ``apply(frame, 112)``
and ``apply(frame, 224)`` show exactly the same region. It includes the rotation that
levels the eye line, and ``apply`` performs rotation, crop and resize in a single
``cv2.warpAffine`` at the output size (no full-size intermediate image).

Backends (all offline):

- ``"mediapipe"``: BlazeFace (``mp.solutions.face_detection``, bundled with mediapipe
  0.10.21) finds the face; the 468-point face mesh (``mp.solutions.face_mesh``) gives
  landmarks. Detection about 1.5 ms and mesh about 3 ms per frame on one CPU core.
- ``"haar"``: OpenCV's frontal-face Haar cascade (and its eye cascade for the eye line
  when there is no mesh). Slower (tens of ms) and cruder; a fallback.
- ``"auto"``: mediapipe, falling back to Haar.
- ``"none"``: the frame is already a face crop (CASME II ``Cropped``, CK+48): no
  detection; the crop is the whole frame, rotated to level the eye line when landmarks
  are found, and resized to a square like every other crop.

Which of these a sample gets when the configuration says ``"auto"`` is decided per sample by
:func:`detector_for`: a loader that knows its frames are face crops marks the row
``face_cropped=True`` and ``"auto"`` then means ``"none"`` for it.

A crop box that runs past the frame is filled by replicating the frame's border. It is
measured (:meth:`FaceAlignment.outside_fraction`) and the pipeline warns above
:data:`OUTSIDE_WARN` rather than shrinking the box to fit: see that constant for why.

Coordinates follow OpenCV: pixel centres at integer coordinates. A unit-square
coordinate ``u`` corresponds to output pixel coordinate ``u * size - 0.5``.

"Left" and "right" in landmark sets and ROI names are the SUBJECT's left and right (as in
MediaPipe's ``FACEMESH_LEFT_EYE`` and in FACS, where ``L12`` is the subject's left lip
corner), so ``left_eye`` appears on the right half of an unmirrored image.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DETECTORS = ("auto", "mediapipe", "haar", "none")

#: Fraction of the crop's area lying outside the frame above which the pipeline warns about
#: the sample and records it in the sample's meta. With the default margin (0.2) a face box
#: that touches the frame's edge puts under 10 % of the crop outside (the margin strip on one
#: side is 0.1/1.2 = 8 % of the crop), so 10 % flags boxes that truly run past the frame. On
#: CASME II ``Cropped`` frames (faces filling the frame) detector 'auto' with the default margin
#: put 38-55 % of the crop outside (median 48 %, onset frames of every 12th clip, 21 clips),
#: which is why rows a loader marks as face crops get detector 'none' under 'auto'.
#: The box is NOT shrunk or shifted to fit: the margin fixes the face's scale in the crop for
#: every sample alike, and shrinking it only where the subject sits near the edge would make
#: the face's size (and a shifted box its position) depend on where each person sat, a
#: nuisance that follows the subject. The replicated border is the same in every frame of a
#: clip, so it adds no motion; the warning says which samples carry it and how much.
OUTSIDE_WARN = 0.10

ROI_NAMES = ("left_eyebrow", "right_eyebrow", "left_eye", "right_eye", "nose", "mouth",
             "left_lip_corner", "right_lip_corner")

# Landmark index sets of MediaPipe's 468-point face mesh. They are the point sets of
# mediapipe.python.solutions.face_mesh_connections.FACEMESH_* (a test checks that they
# still match), written out so that importing this module does not import mediapipe.
MESH_SETS: dict[str, tuple[int, ...]] = {
    "left_eye": (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466),
    "right_eye": (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246),
    "left_eyebrow": (276, 282, 283, 285, 293, 295, 296, 300, 334, 336),
    "right_eyebrow": (46, 52, 53, 55, 63, 65, 66, 70, 105, 107),
    "nose": (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294,
             326, 327, 344, 440),
    "mouth": (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181,
              185, 191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402,
              405, 409, 415),
}
#: Outer lip corners (cheilion) of the mesh: subject's left and right.
LEFT_LIP_CORNER, RIGHT_LIP_CORNER = 291, 61

# ROI padding, as a fraction of the crop side. Eyebrow boxes reach further up than down
# so that they cover the forehead skin that AU1/AU2 wrinkle; lip-corner boxes are squares
# around the cheilion, where AU12/AU14/AU15 act.
_PAD = {"eyebrow": (0.03, 0.06, 0.03, 0.03),   # left, top, right, bottom
        "eye": (0.03, 0.03, 0.03, 0.03),
        "nose": (0.02, 0.0, 0.02, 0.02),
        "mouth": (0.03, 0.03, 0.03, 0.03)}
_LIP_CORNER_HALF = 0.06

#: ROIs (x0, y0, x1, y1 in unit crop coordinates) used when no landmarks were found: a
#: typical frontal face, eye line levelled, filling the crop roughly from the upper
#: forehead to the chin. Generic proportions, deliberately generous.
DEFAULT_ROIS: dict[str, tuple[float, float, float, float]] = {
    "left_eyebrow": (0.52, 0.12, 0.92, 0.33),
    "right_eyebrow": (0.08, 0.12, 0.48, 0.33),
    "left_eye": (0.54, 0.26, 0.90, 0.44),
    "right_eye": (0.10, 0.26, 0.46, 0.44),
    "nose": (0.36, 0.30, 0.64, 0.66),
    "mouth": (0.26, 0.64, 0.74, 0.88),
    "left_lip_corner": (0.58, 0.66, 0.78, 0.86),
    "right_lip_corner": (0.22, 0.66, 0.42, 0.86),
}


#: whether this process has created a MediaPipe graph (see :func:`mediapipe_started`)
_MEDIAPIPE_STARTED = False


def mediapipe_started() -> bool:
    """Whether this process has created a MediaPipe graph. A process forked after that cannot
    create graphs of its own (MediaPipe aborts the child: its threads and global state do not
    survive a fork), so preprocessing then aligns in this process instead of forked workers."""
    return _MEDIAPIPE_STARTED


class NoFaceError(DataError):
    """No face was found where one was expected."""


def detector_for(detector: str, face_cropped: Any = None) -> str:
    """The detector one sample gets: ``"auto"`` becomes ``"none"`` for a row its loader marked
    as a face crop (``face_cropped`` true); any other setting, or an unmarked row, is kept.

    Decided per row, not per table, so a composite (MEGC 2019) or a concatenation of a cropped
    and an uncropped corpus gets each part right. An explicit detector always wins: a user
    who wants detection on ``Cropped`` frames asks for ``"mediapipe"`` or ``"haar"``.
    """
    if detector != "auto" or face_cropped is None:
        return detector
    try:
        import pandas as pd

        if pd.isna(face_cropped):
            return detector
    except (TypeError, ValueError):
        pass
    return "none" if bool(face_cropped) else detector


# ---------------------------------------------------------------------------------------
# the per-clip alignment
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FaceAlignment:
    """One box per clip: computed once (on the onset frame) and reused for every frame,
    so crop jitter never shows up as motion.

    ``matrix`` maps source-frame pixel coordinates to unit-square crop coordinates and
    includes the eye-line rotation. ``landmarks`` are the face-mesh points in unit crop
    coordinates (``None`` when no mesh was found). ``source`` names what placed the box:
    ``"mediapipe"``, ``"haar"``, ``"mesh"`` (the mesh's own detector, after the detectors
    failed) or ``"none"`` (the whole frame of a pre-cropped corpus).
    """

    matrix: tuple  # ((a, b, c), (d, e, f)): source pixels -> unit crop coordinates
    landmarks: np.ndarray | None
    source: str
    angle: float = 0.0  # degrees the image was rotated to level the eye line
    frame_shape: tuple[int, int] | None = None  # (height, width) of the frame it was fitted on
    eyes_from: str = "none"  # what gave the eye line: "mesh", "mediapipe", "haar" or "none"

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=np.float64)
        if m.shape != (2, 3) or not np.all(np.isfinite(m)):
            raise DataError("face alignment matrix must be a finite 2x3 affine matrix",
                            value=self.matrix)
        object.__setattr__(self, "matrix", tuple(tuple(float(v) for v in row) for row in m))
        if self.landmarks is not None:
            lm = np.array(self.landmarks, dtype=np.float32).reshape(-1, 2)
            lm.setflags(write=False)
            object.__setattr__(self, "landmarks", lm)

    # -- geometry -------------------------------------------------------------------------
    def warp_matrix(self, size: int) -> np.ndarray:
        """2x3 matrix mapping the source frame to a ``size`` x ``size`` crop (for cv2.warpAffine)."""
        size = _check_size(size)
        to_px = np.array([[size, 0.0, -0.5], [0.0, size, -0.5], [0.0, 0.0, 1.0]])
        return (to_px @ _h(np.asarray(self.matrix)))[:2]

    def apply(self, frame: np.ndarray, size: int, interpolation: int = cv2.INTER_AREA,
              border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """The aligned ``size`` x ``size`` crop of ``frame`` (grey or colour, as given).

        One ``cv2.warpAffine`` at the output size does rotation, crop and resize.
        ``warpAffine`` has no true area interpolation (it treats ``INTER_AREA`` as
        bilinear), so ``INTER_AREA`` here means anti-aliased: while the crop shrinks the
        face by 2x or more, the frame is first halved with ``cv2.pyrDown`` (a 5x5
        Gaussian), which keeps fine texture from aliasing into flicker that optical flow
        would read as motion. Any other flag is passed to ``warpAffine`` unchanged.
        The replicated border (where the box leaves the frame) is the same in every frame
        of the clip, so it adds no motion.
        """
        frame = np.asarray(frame)
        if frame.ndim not in (2, 3) or frame.size == 0:
            raise DataError("expected an image of shape (H, W) or (H, W, C)",
                            value=getattr(frame, "shape", None))
        m = self.warp_matrix(size)
        if interpolation == cv2.INTER_AREA:
            # source pixels per output pixel = 1 / scale of the linear part
            scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
            src = frame
            while scale < 0.5 and min(src.shape[:2]) >= 16:
                src = cv2.pyrDown(src)
                m = m @ np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
                scale *= 2.0
            return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
        return cv2.warpAffine(frame, m, (size, size), flags=interpolation, borderMode=border)

    def source_corners(self) -> np.ndarray:
        """The crop's corners (top-left, top-right, bottom-right, bottom-left) in frame pixels."""
        inv = np.linalg.inv(_h(np.asarray(self.matrix)))
        unit = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        return _affine(inv, unit)

    def outside_fraction(self, frame_shape: tuple[int, int] | None = None, grid: int = 64) -> float:
        """Fraction of the crop's area that lies outside the frame (0 when it lies inside).

        That part of the crop is replicated border, not image. Measured on a ``grid`` x
        ``grid`` lattice of crop-pixel centres mapped back to the frame (exact to 1/grid per
        side, and rotation is handled for free); the frame covers ``[-0.5, w - 0.5]`` x
        ``[-0.5, h - 0.5]`` in OpenCV's pixel-centre coordinates. ``frame_shape`` (height,
        width) defaults to the frame the alignment was fitted on; 0.0 when neither is known.
        """
        shape = frame_shape or self.frame_shape
        if shape is None:
            return 0.0
        h, w = int(shape[0]), int(shape[1])
        u = (np.arange(grid, dtype=np.float64) + 0.5) / grid
        pts = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)
        src = _affine(np.linalg.inv(_h(np.asarray(self.matrix))), pts)
        inside = (src[:, 0] >= -0.5) & (src[:, 0] <= w - 0.5) & (src[:, 1] >= -0.5) & (src[:, 1] <= h - 0.5)
        return float(1.0 - inside.mean())

    def landmarks_px(self, size: int) -> np.ndarray | None:
        """Landmarks in the pixel coordinates of a ``size`` x ``size`` crop (None without a mesh)."""
        size = _check_size(size)
        if self.landmarks is None:
            return None
        return self.landmarks.astype(np.float64) * size - 0.5

    def unit_rois(self) -> dict[str, tuple[float, float, float, float]]:
        """ROIs as (x0, y0, x1, y1) in unit crop coordinates, clipped to [0, 1]."""
        if self.landmarks is None or len(self.landmarks) < 468:
            return dict(DEFAULT_ROIS)
        lm = self.landmarks.astype(np.float64)
        out: dict[str, tuple[float, float, float, float]] = {}
        for name in ROI_NAMES:
            if name.endswith("lip_corner"):
                x, y = lm[LEFT_LIP_CORNER if name.startswith("left") else RIGHT_LIP_CORNER]
                h = _LIP_CORNER_HALF
                box = (x - h, y - h, x + h, y + h)
            else:
                pts = lm[list(MESH_SETS[name])]
                kind = name.split("_")[-1]
                pl, pt, pr, pb = _PAD[kind]
                box = (pts[:, 0].min() - pl, pts[:, 1].min() - pt,
                       pts[:, 0].max() + pr, pts[:, 1].max() + pb)
            out[name] = tuple(float(np.clip(v, 0.0, 1.0)) for v in box)  # type: ignore[assignment]
        return out

    def rois(self, size: int) -> dict[str, tuple[int, int, int, int]]:
        """ROIs as integer (x0, y0, x1, y1) boxes in a ``size`` x ``size`` crop (x1, y1 exclusive).

        From the landmarks where there are any (each eyebrow, each eye, the nose, the mouth
        and square boxes around the lip corners); otherwise :data:`DEFAULT_ROIS`. Every box
        is at least one pixel and lies inside the crop.
        """
        size = _check_size(size)
        out = {}
        for name, (x0, y0, x1, y1) in self.unit_rois().items():
            a, b = int(math.floor(x0 * size)), int(math.floor(y0 * size))
            c, d = int(math.ceil(x1 * size)), int(math.ceil(y1 * size))
            a, b = min(max(a, 0), size - 1), min(max(b, 0), size - 1)
            out[name] = (a, b, min(max(c, a + 1), size), min(max(d, b + 1), size))
        return out

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for the preprocessing cache)."""
        return {
            "matrix": [list(r) for r in self.matrix],
            "landmarks": None if self.landmarks is None
            else np.round(self.landmarks.astype(np.float64), 6).tolist(),
            "source": self.source,
            "angle": float(self.angle),
            "frame_shape": None if self.frame_shape is None else [int(v) for v in self.frame_shape],
            "eyes_from": self.eyes_from,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaceAlignment:
        """Inverse of :meth:`to_dict`; raises DataError naming what is malformed."""
        if not isinstance(d, dict) or "matrix" not in d or "source" not in d:
            raise DataError("not a face alignment record", value=type(d).__name__,
                            expected="a dict with 'matrix' and 'source' (from FaceAlignment.to_dict)")
        try:
            lm = d.get("landmarks")
            fs = d.get("frame_shape")
            return cls(matrix=tuple(tuple(float(v) for v in r) for r in d["matrix"]),
                       landmarks=None if lm is None else np.asarray(lm, dtype=np.float32),
                       source=str(d["source"]), angle=float(d.get("angle", 0.0)),
                       frame_shape=None if fs is None else (int(fs[0]), int(fs[1])),
                       eyes_from=str(d.get("eyes_from", "none")))
        except (TypeError, ValueError, IndexError) as exc:
            raise DataError(f"malformed face alignment record: {exc}",
                            expected="the output of FaceAlignment.to_dict") from None


# ---------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------
@dataclass
class _Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in source pixels
    eyes: tuple[np.ndarray, np.ndarray] | None  # (subject's right, subject's left) centres
    source: str
    score: float = 1.0


@contextlib.contextmanager
def _quiet_native_stderr(active: bool = True):
    """Silence native (C++) stderr while a MediaPipe graph starts and first runs: TFLite and
    absl print INFO/W lines there that no environment variable or Python logger controls.
    Only the first call of each graph is wrapped, so later warnings still show."""
    if not active:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured by a test runner)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass
class FaceAligner:
    """Finds the face in a frame and returns the :class:`FaceAlignment` for its clip.

    ``margin`` widens the square face box by that fraction of its side in total (0.2:
    10 % on each side). ``align`` levels the eye line; ``landmarks`` runs the face mesh
    (needed for landmark ROIs and the most accurate box and eye line).

    MediaPipe graphs are created lazily on first use and kept for later calls (creating
    them costs far more than running them); :meth:`close` releases them. An aligner is not
    thread-safe: use one per worker.
    """

    detector: str = "auto"
    margin: float = 0.2
    align: bool = True
    landmarks: bool = True
    refine: bool = False  # 478 points (irises) instead of 468
    min_confidence: float = 0.5
    _mp: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _mp_warm: set[str] = field(default_factory=set, init=False, repr=False)
    _cv: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _mp_error: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ConfigError(f"unknown face detector {self.detector!r}; expected one of: "
                              + ", ".join(DETECTORS))
        if not (0.0 <= float(self.margin) <= 3.0):
            raise ConfigError(f"face margin must be between 0 and 3 (a fraction of the face box), "
                              f"got {self.margin!r}")
        if not (0.0 < float(self.min_confidence) < 1.0):
            raise ConfigError(f"min_confidence must be in (0, 1), got {self.min_confidence!r}")

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Release the MediaPipe graphs (they are re-created if the aligner is used again)."""
        for obj in self._mp.values():
            try:
                obj.close()
            except Exception:  # noqa: BLE001 - closing twice or a half-built graph is harmless
                pass
        self._mp.clear()
        self._mp_warm.clear()

    def __enter__(self) -> FaceAligner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public ---------------------------------------------------------------------------
    def fit(self, frame: np.ndarray, name: str | None = None) -> FaceAlignment:
        """The alignment for the face in ``frame`` (BGR colour as cv2 reads it, or grey).

        ``name`` (e.g. the frame's path) only improves error messages.
        Raises :class:`NoFaceError` when no face is found.
        """
        bgr, gray = _as_bgr_gray(frame, name)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        h, w = gray.shape

        det: _Detection | None = None
        tried: list[str] = []
        if self.detector in ("mediapipe", "auto"):
            tried.append("MediaPipe BlazeFace")
            det = self._detect_mediapipe(rgb)
        if det is None and self.detector in ("haar", "auto"):
            tried.append("OpenCV Haar cascade")
            det = self._detect_haar(gray)

        lm = None
        if self.landmarks:
            region = None if det is None else _expand_box(det.box, 0.25, w, h)
            lm = self._mesh(rgb, region)
            if lm is None and region is not None and region != (0, 0, w, h):
                lm = self._mesh(rgb, None)
            if self.detector != "none" and det is None and lm is not None:
                # the mesh's own detector found a face the detectors missed
                det = _Detection(_bbox(lm), None, "mesh")
            if self.landmarks and lm is None and self._mp_error is None:
                tried.append("MediaPipe face mesh")

        if det is None and self.detector != "none":
            where = f"{name}: " if name else ""
            raise NoFaceError(
                f"{where}no face found in a {w}x{h} {'grey' if frame.ndim == 2 else 'colour'} frame "
                f"(tried {', '.join(tried) or 'nothing'}); expected a frame showing a frontal face. "
                "For a corpus of pre-cropped faces use detector='none'.")

        # eye line: mesh eye contours, else the detector's eye keypoints
        eyes, eyes_from = None, "none"
        if lm is not None:
            eyes = (lm[list(MESH_SETS["right_eye"])].mean(0), lm[list(MESH_SETS["left_eye"])].mean(0))
            eyes_from = "mesh"
        elif det is not None and det.eyes is not None:
            eyes, eyes_from = det.eyes, det.source
        angle = 0.0
        if self.align and eyes is not None:
            d = eyes[1] - eyes[0]  # subject's right eye -> subject's left eye: points image-right
            if d[0] > 0:
                angle = math.atan2(d[1], d[0])
            else:
                log.debug("eye keypoints in unexpected order (%s); eye line not levelled", eyes)
                eyes_from = "none"

        if self.detector == "none":
            # The frame is the face crop: rotate about its centre, keep the whole frame.
            centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
            rot = _rotation(angle, centre)
            to_unit = np.array([[1.0 / w, 0, 0.5 / w], [0, 1.0 / h, 0.5 / h], [0, 0, 1]])
            unit = to_unit @ rot
            source = "none"
        else:
            assert det is not None
            if lm is not None:
                centre = (eyes[0] + eyes[1]) / 2.0 if eyes is not None else lm.mean(0)
                rot = _rotation(angle, centre)
                box = _bbox(_affine(rot, lm))
            else:
                x0, y0, x1, y1 = det.box
                centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
                rot = _rotation(angle, centre)
                # the detector box was drawn on the unrotated frame; keep its size and centre
                box = det.box
            bx0, by0, bx1, by1 = box
            side = max(bx1 - bx0, by1 - by0) * (1.0 + float(self.margin))
            if side < 4:
                raise NoFaceError(f"{name + ': ' if name else ''}face box of {side:.1f} pixels is too "
                                  "small to crop; expected a face at least a few pixels wide")
            cx, cy = (bx0 + bx1) / 2.0, (by0 + by1) / 2.0
            # unit square: the box's continuous extent [c - side/2, c + side/2] -> [0, 1]
            to_unit = np.array([[1.0 / side, 0, (0.5 - (cx - side / 2.0)) / side],
                                [0, 1.0 / side, (0.5 - (cy - side / 2.0)) / side],
                                [0, 0, 1]])
            unit = to_unit @ rot
            source = det.source

        unit_lm = None if lm is None else _affine(unit, lm)
        return FaceAlignment(matrix=tuple(map(tuple, unit[:2])), landmarks=unit_lm, source=source,
                             angle=math.degrees(angle), frame_shape=(h, w), eyes_from=eyes_from)

    def fit_clip(self, frames: Sequence[np.ndarray], names: Sequence[str] | None = None) -> FaceAlignment:
        """The clip's alignment from the first of ``frames`` that shows a face.

        Pass the onset first, then fallbacks (e.g. apex, middle frame). Raises
        :class:`NoFaceError` listing what was tried when no frame has a face.
        """
        frames = list(frames)
        if not frames:
            raise NoFaceError("no frames given to find a face in; expected at least the onset frame")
        reasons = []
        for i, frame in enumerate(frames):
            label = names[i] if names is not None and i < len(names) else f"frame {i}"
            try:
                fitted = self.fit(frame, name=label)
            except NoFaceError as exc:
                reasons.append(str(exc))
                continue
            if i:
                log.info("no face in the first %d frame(s) tried; the clip's box comes from %s", i, label)
            return fitted
        raise NoFaceError(f"no face found in any of the {len(frames)} frames tried: "
                          + " | ".join(reasons))

    # -- backends -------------------------------------------------------------------------
    def _mediapipe(self, kind: str) -> Any | None:
        """Lazily created MediaPipe graph: 'det0' (short range), 'det1' (full range) or 'mesh'."""
        if kind in self._mp:
            return self._mp[kind]
        if self._mp_error is not None:
            return None
        try:
            import mediapipe as mp
            solutions = mp.solutions
        except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
            self._mp_error = f"{type(exc).__name__}: {exc}"
            if self.detector == "mediapipe":
                raise ConfigError("face detector 'mediapipe' needs mediapipe 0.10.21 "
                                  f"(the last release bundling face models); import failed: {exc}") from None
            log.warning("mediapipe is unavailable (%s): no BlazeFace detection or face mesh", exc)
            return None
        with _quiet_native_stderr():
            obj = self._new_graph(solutions, kind)
        self._mp[kind] = obj
        return obj

    def _new_graph(self, solutions: Any, kind: str) -> Any:
        global _MEDIAPIPE_STARTED
        _MEDIAPIPE_STARTED = True
        if kind == "mesh":
            obj = solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                               refine_landmarks=self.refine,
                                               min_detection_confidence=self.min_confidence)
        else:
            obj = solutions.face_detection.FaceDetection(model_selection=int(kind[-1]),
                                                         min_detection_confidence=self.min_confidence)
        return obj

    def _detect_mediapipe(self, rgb: np.ndarray) -> _Detection | None:
        h, w = rgb.shape[:2]
        # short-range model first (faces within ~2 m, the usual MER recording), then the
        # full-range model for small faces in wide shots
        for kind in ("det0", "det1"):
            fd = self._mediapipe(kind)
            if fd is None:
                return None
            with _quiet_native_stderr(kind not in self._mp_warm):
                res = fd.process(rgb)
            self._mp_warm.add(kind)
            if not res.detections:
                continue
            best = max(res.detections, key=lambda d: d.score[0] * _area(d))
            bb = best.location_data.relative_bounding_box
            box = (bb.xmin * w - 0.5, bb.ymin * h - 0.5, (bb.xmin + bb.width) * w - 0.5,
                   (bb.ymin + bb.height) * h - 0.5)
            kps = best.location_data.relative_keypoints
            eyes = None
            if len(kps) >= 2:  # BlazeFace keypoints: 0 right eye, 1 left eye (subject's)
                eyes = (np.array([kps[0].x * w - 0.5, kps[0].y * h - 0.5]),
                        np.array([kps[1].x * w - 0.5, kps[1].y * h - 0.5]))
            return _Detection(box, eyes, "mediapipe", float(best.score[0]))
        return None

    def _detect_haar(self, gray: np.ndarray) -> _Detection | None:
        if "face" not in self._cv:
            self._cv["face"] = _cascade("haarcascade_frontalface_default.xml")
            self._cv["eye"] = _cascade("haarcascade_eye.xml")
        h, w = gray.shape
        eq = cv2.equalizeHist(gray)
        # a face smaller than a fifth of the frame is not what a MER clip shows; the bound
        # also skips the many small scales that make the cascade slow
        min_side = max(24, min(h, w) // 5)
        faces = self._cv["face"].detectMultiScale(eq, scaleFactor=1.1, minNeighbors=5,
                                                  minSize=(min_side, min_side))
        if len(faces) == 0:
            return None
        x, y, fw, fh = max(faces, key=lambda f: f[2] * f[3])
        box = (float(x) - 0.5, float(y) - 0.5, float(x + fw) - 0.5, float(y + fh) - 0.5)
        eyes = None
        upper = eq[y:y + fh // 2 + fh // 10, x:x + fw]
        found = self._cv["eye"].detectMultiScale(upper, scaleFactor=1.1, minNeighbors=5,
                                                 minSize=(max(8, fw // 8), max(8, fw // 8)),
                                                 maxSize=(fw // 2, fw // 2))
        if len(found) >= 2:
            centres = [np.array([x + ex + ew / 2.0 - 0.5, y + ey + eh / 2.0 - 0.5]) for ex, ey, ew, eh in found]
            left_half = [c for c in centres if c[0] < x + fw / 2.0]
            right_half = [c for c in centres if c[0] >= x + fw / 2.0]
            if left_half and right_half:
                # subject's right eye is on the image's left
                eyes = (min(left_half, key=lambda c: c[1]), min(right_half, key=lambda c: c[1]))
        return _Detection(box, eyes, "haar")

    def _mesh(self, rgb: np.ndarray, region: tuple[int, int, int, int] | None) -> np.ndarray | None:
        """468 (478) landmarks in source pixels, or None; ``region`` (x0, y0, x1, y1) limits the search."""
        fm = self._mediapipe("mesh")
        if fm is None:
            return None
        x0, y0 = 0, 0
        img = rgb
        if region is not None:
            x0, y0, x1, y1 = region
            img = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            if img.shape[0] < 16 or img.shape[1] < 16:
                return None
        with _quiet_native_stderr("mesh" not in self._mp_warm):
            res = fm.process(img)
        self._mp_warm.add("mesh")
        if not res.multi_face_landmarks:
            return None
        ih, iw = img.shape[:2]
        pts = np.array([(p.x, p.y) for p in res.multi_face_landmarks[0].landmark], dtype=np.float64)
        pts[:, 0] = pts[:, 0] * iw - 0.5 + x0
        pts[:, 1] = pts[:, 1] * ih - 0.5 + y0
        return pts


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"crop size must be a positive integer number of pixels, got {size!r}")
    return int(size)


def _as_bgr_gray(frame: np.ndarray, name: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(BGR uint8, grey uint8) views of a grey, BGR or BGRA frame."""
    where = name
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise DataError("expected a non-empty image array", path=where,
                        value=type(frame).__name__ if not isinstance(frame, np.ndarray) else frame.shape)
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating) and frame.max() <= 1.0:
            frame = frame * 255.0
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        g = frame[:, :, 0]
        return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR), g
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        bgr = frame[:, :, :3] if frame.shape[2] == 4 else frame
        bgr = np.ascontiguousarray(bgr)
        return bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    raise DataError("expected a grey (H, W) or colour (H, W, 3) image", path=where, value=frame.shape)


def _h(m: np.ndarray) -> np.ndarray:
    """2x3 -> 3x3 homogeneous."""
    return np.vstack([np.asarray(m, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])


def _affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return pts @ m[:2, :2].T + m[:2, 2]


def _rotation(theta: float, centre: np.ndarray) -> np.ndarray:
    """3x3 matrix rotating by -theta about ``centre`` (y points down), which levels a line at angle theta."""
    c, s = math.cos(theta), math.sin(theta)
    r = np.array([[c, s], [-s, c]])
    t = centre - r @ centre
    return np.array([[r[0, 0], r[0, 1], t[0]], [r[1, 0], r[1, 1], t[1]], [0.0, 0.0, 1.0]])


def _bbox(pts: np.ndarray) -> tuple[float, float, float, float]:
    return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))


def _expand_box(box: tuple[float, float, float, float], frac: float, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * frac, (y1 - y0) * frac
    return (max(0, int(x0 - dx)), max(0, int(y0 - dy)), min(w, int(math.ceil(x1 + dx)) + 1),
            min(h, int(math.ceil(y1 + dy)) + 1))


def _area(det: Any) -> float:
    bb = det.location_data.relative_bounding_box
    return max(bb.width, 0.0) * max(bb.height, 0.0)


def _cascade(filename: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + filename
    clf = cv2.CascadeClassifier(path)
    if clf.empty():
        raise ConfigError(f"OpenCV Haar cascade {path} is missing; expected the file shipped with "
                          "opencv-contrib-python-headless 4.x (OpenCV 5 wheels ship none)")
    return clf

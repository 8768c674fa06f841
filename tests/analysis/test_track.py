"""The streaming face tracker on synthetic videos built in memory: a rendered head
(:func:`mekit.data.synthetic.render_photo`) pasted onto a static, textured 640x480 background,
moved slowly, removed and brought back, joined by a second head; sensor noise on every frame,
so the detector's pose jitters as it does on a camera."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from mekit.analysis.track import FaceTracker, TrackState
from mekit.data.synthetic import _identity, render_photo
from mekit.errors import ConfigError, DataError
from mekit.preprocess.face import NoFaceError

W, H = 640, 480
NOISE_BANK = 7  # distinct noise fields, cycled: coprime with the re-detection intervals used below


class Head:
    """A head of :func:`render_photo` (its face, hair, ears and neck, cut as render_photo cuts
    them) that can be pasted at any sub-pixel position; ``box`` is the face's true box in the
    tile (render_photo's ground truth: forehead to chin, cheek to cheek)."""

    def __init__(self, seed: int, face_size: int = 200) -> None:
        idn = _identity(np.random.default_rng([0, 1, seed]))
        pad = face_size // 5
        photo, box = render_photo(idn, canvas=face_size + 2 * pad, face_size=face_size,
                                  position=(pad, pad), seed=seed)
        self.img = photo.astype(np.float32)
        x0, y0, x1, y1 = box
        cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        alpha = np.zeros(photo.shape[:2], np.float32)
        cv2.ellipse(alpha, (int(cx), int(cy - 0.12 * hh)), (int(1.2 * hw), int(1.02 * hh)), 0, 0, 360, 1.0, -1)
        cv2.rectangle(alpha, (int(cx - 0.55 * hw), int(cy + 0.5 * hh)), (int(cx + 0.55 * hw), pad + face_size),
                      1.0, -1)
        self.alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
        self.box = box


class Scene:
    """Frames of heads at given positions over one static background, with sensor noise."""

    def __init__(self, seed: int = 0, noise: float = 3.0) -> None:
        rng = np.random.default_rng([seed, 99])
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        bg = 110 + 40 * (xx / W)[..., None] * np.array([1.0, 0.7, 0.4], np.float32) + 30 * (yy / H)[..., None]
        bg += cv2.GaussianBlur(rng.normal(0, 30, (H, W)).astype(np.float32), (0, 0), 5)[..., None]
        self.bg = bg
        self.noise = [rng.normal(0, noise, (H, W, 3)).astype(np.float32) for _ in range(NOISE_BANK)]
        self.k = 0

    def frame(self, heads: list[tuple[Head, tuple[float, float]]]) -> tuple[np.ndarray, list[tuple]]:
        """One uint8 BGR frame with each head's tile at (x, y) (top-left, sub-pixel), and the
        true face boxes in frame pixels."""
        out = self.bg + self.noise[self.k % NOISE_BANK]
        self.k += 1
        boxes = []
        for head, (x, y) in heads:
            ix, iy = int(np.floor(x)), int(np.floor(y))
            m = np.float32([[1, 0, x - ix], [0, 1, y - iy]])
            th, tw = head.img.shape[:2]
            img = cv2.warpAffine(head.img, m, (tw, th), borderMode=cv2.BORDER_REPLICATE)
            al = cv2.warpAffine(head.alpha, m, (tw, th))[..., None]
            a0, b0, a1, b1 = max(ix, 0), max(iy, 0), min(ix + tw, W), min(iy + th, H)
            if a1 > a0 and b1 > b0:  # any part inside the frame
                sl = (slice(b0 - iy, b1 - iy), slice(a0 - ix, a1 - ix))
                region = out[b0:b1, a0:a1]
                region[:] = region * (1 - al[sl]) + img[sl] * al[sl]
            b = head.box
            boxes.append((b[0] + x, b[1] + y, b[2] + x, b[3] + y))
        return np.clip(out, 0, 255).astype(np.uint8), boxes


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def crop_motion(states: list[TrackState]) -> np.ndarray:
    """Mean absolute difference between consecutive crops, blurred (sigma 2 px) so that what is
    left is the crop moving rather than sensor noise: the fake motion a spotter would see."""
    crops = [cv2.GaussianBlur(s.crop().astype(np.float32), (0, 0), 2.0) for s in states]
    return np.array([np.abs(a - b).mean() for a, b in zip(crops, crops[1:])])


@pytest.fixture(scope="module")
def heads() -> tuple[Head, Head]:
    return Head(0, 200), Head(5, 240)


def run(tracker: FaceTracker, frames: list[np.ndarray]) -> list[TrackState]:
    return [tracker.update(f, i) for i, f in enumerate(frames)]


# ---------------------------------------------------------------------------------------
def test_the_box_follows_a_slowly_moving_face(heads):
    scene, head = Scene(1), heads[0]
    video = [scene.frame([(head, (100 + 1.5 * k, 60 + 0.5 * k))]) for k in range(90)]
    with FaceTracker("auto") as tracker:
        states = run(tracker, [f for f, _ in video])
    assert all(s.face for s in states), [(s.index, s.reason) for s in states if not s.face]
    ious = [iou(s.box, boxes[0]) for s, (_, boxes) in zip(states, video)]
    # the box is the mesh's extent (brows to chin), the truth the whole oval (hairline to chin):
    # 0.73-0.78 when both are right; a box stuck where the face was falls below 0.5 within 40 frames
    assert min(ious) > 0.6, np.round(ious, 2)
    # and between detections it follows every frame: the box centre's offset from the true
    # centre (constant but for the smoothing's lag) varies by under 6 px while the face travels
    # 135 px (measured 3.9 px; a box moved only by the detector every 10 frames: 14.7 px)
    offset = np.array([[(s.box[0] + s.box[2] - t[0] - t[2]) / 2, (s.box[1] + s.box[3] - t[1] - t[3]) / 2]
                       for s, (_, (t,)) in zip(states, video)])
    assert np.ptp(offset[10:], axis=0).max() < 6.0, np.ptp(offset[10:], axis=0)
    assert {s.track_id for s in states} == {0}
    # tracked between detections, not detected every frame
    assert states[0].detected and states[0].realigned
    assert sum(s.detected for s in states) <= len(states) // 4
    assert tracker.counts["frames"] == 90 and tracker.counts["lost"] == 0
    # the crop stays on the face: its eye ROIs hold the darkest blobs of the upper half
    last = states[-1]
    crop, rois = last.crop(), last.rois()
    assert crop.shape == (128, 128) and crop.dtype == np.uint8
    for name in ("left_eye", "right_eye"):
        x0, y0, x1, y1 = rois[name]
        assert crop[y0:y1, x0:x1].min() < np.percentile(crop[: 64], 5), name


def test_a_still_face_gives_registered_crops_and_smoothing_is_what_keeps_them_still(heads):
    scene, head = Scene(2), heads[0]
    frames = [scene.frame([(head, (200.0, 90.0))])[0] for _ in range(60)]
    motion, realigned = {}, {}
    settings = {"default": {}, "average only": {"tolerance": 0.0},
                "none": {"smoothing": 0.0, "tolerance": 0.0}}
    for name, kw in settings.items():
        with FaceTracker("auto", redetect_every=5, **kw) as tracker:
            states = run(tracker, frames)
        assert all(s.face for s in states)
        assert sum(s.detected for s in states) == 12
        motion[name], realigned[name] = crop_motion(states), tracker.counts["realignments"]
    # default: the crop is placed once and never moves; what differs between crops is the
    # sensor noise left after blurring (~0.28), the same for every pair
    assert realigned["default"] == 1
    assert motion["default"].max() < 1.3 * np.median(motion["default"]) and motion["default"].max() < 0.5
    # without smoothing the crop follows the detector's jitter at every re-detection: a
    # measured jump of 2.1-3.3 against 0.28-0.31 (four seeds); the average alone halves it
    assert realigned["none"] == 12
    assert motion["none"].max() > 4 * motion["default"].max(), motion["none"].max()
    assert motion["average only"].max() < 0.6 * motion["none"].max()


def test_frames_without_the_face_are_reported_and_the_track_recovers(heads):
    scene, head = Scene(3), heads[0]
    video = [scene.frame([] if 20 <= k < 35 else [(head, (150.0, 80.0))]) for k in range(45)]
    video += [scene.frame([] if k < 10 else [(head, (190.0 + k, 70.0))]) for k in range(35)]
    with FaceTracker("auto", redetect_every=10) as tracker:
        states = run(tracker, [f for f, _ in video])
    lost = [s.index for s in states if s.lost]
    first_back = 45 + 10
    assert lost[:15] == list(range(20, 35)), lost
    # back where it was: the last template matches again and the detector runs at once
    assert states[35].detected and states[35].track_id == states[19].track_id == 0
    # back elsewhere: found by the next scheduled detection
    assert all(45 <= i < first_back + 10 for i in lost[15:]) and states[first_back + 10].face
    recovered = next(s.index for s in states[first_back:] if s.face)
    assert recovered - first_back < tracker.redetect_every
    for s in states:
        if s.lost:
            assert s.box is None and s.alignment is None and not s.face and s.reason
            assert "face" in s.reason
            with pytest.raises(NoFaceError, match=f"frame {s.index} has no face"):
                s.crop()
        else:
            assert iou(s.box, video[s.index][1][0]) > 0.6
    assert "template similarity" in states[20].reason  # why the track was dropped
    assert tracker.counts["lost"] == len(lost)


def test_with_two_faces_the_track_keeps_the_one_it_had(heads):
    scene, (a, b) = Scene(4), heads
    video = []
    for k in range(70):
        present = [(a, (80.0 + 0.3 * k, 100.0))] if not 25 <= k < 40 else []
        if k >= 10:
            present.append((b, (330.0, 60.0)))  # larger, so a fresh search would pick it
        video.append(scene.frame(present))
    with FaceTracker("auto") as tracker:
        states = run(tracker, [f for f, _ in video])
    for s, (_, boxes) in zip(states, video):
        if 25 <= s.index < 40:  # the tracked face is gone: lost, not switched to the other
            assert s.lost, (s.index, s.box)
        else:
            assert s.face and iou(s.box, boxes[0]) > 0.6, (s.index, s.box, boxes)
    assert {s.track_id for s in states} == {0}


def test_a_face_lost_for_longer_than_forget_after_starts_a_new_track(heads):
    scene, head = Scene(5), heads[0]
    frames = [scene.frame([] if 10 <= k < 40 else [(head, (150.0, 80.0))])[0] for k in range(55)]
    with FaceTracker("auto", forget_after=20) as tracker:
        states = run(tracker, frames)
    assert states[0].track_id == 0 and states[-1].face and states[-1].track_id == 1
    assert states[-1].realigned or any(s.realigned for s in states[40:])


def test_only_the_latest_frame_is_held(heads):
    scene, head = Scene(6), heads[0]
    frames = [scene.frame([(head, (150.0, 80.0))])[0] for _ in range(12)]
    with FaceTracker("auto", size=96) as tracker:
        states = run(tracker, frames)
        # crops at the tracker's size stay; other sizes only from the frame still held
        assert all(s.crop().shape == (96, 96) for s in states)
        assert states[-1].crop(48).shape == (48, 48)
        grey = cv2.cvtColor(frames[-1], cv2.COLOR_BGR2GRAY)
        np.testing.assert_array_equal(states[-1].crop(48), states[-1].alignment.apply(grey, 48))
        with pytest.raises(DataError, match="no longer held"):
            states[0].crop(48)
        assert all(s._hold.grey is None for s in states[:-1])
        # the tracker itself keeps no frame: its largest array is the 40x40 template
        arrays = [v for v in vars(tracker).values() if isinstance(v, np.ndarray)]
        assert max(a.nbytes for a in arrays) <= 40 * 40
        with pytest.raises(DataError, match="frame 7 cannot be tracked"):
            tracker.update(frames[0].astype(np.float32), 7)
        with pytest.raises(DataError, match="cannot be tracked"):
            tracker.update(np.zeros((4, 4, 2), np.uint8))
    # grey frames (a monochrome camera) are tracked too
    with FaceTracker("auto", size=96) as tracker:
        states = run(tracker, [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames[:3]])
    assert all(s.face for s in states) and states[0].detected


def test_rois_are_in_crop_coordinates_with_a_level_eye_line(heads):
    scene, head = Scene(7), heads[0]
    with FaceTracker("auto") as tracker:
        state = tracker.update(scene.frame([(head, (180.0, 70.0))])[0], 0)
    assert state.alignment is not None and state.alignment.landmarks is not None  # face mesh found
    assert abs(state.alignment.angle) < 2.0  # the rendered face is upright
    rois = state.rois(112)
    for name in ("left_eyebrow", "right_eyebrow", "left_eye", "right_eye", "nose", "mouth"):
        x0, y0, x1, y1 = rois[name]
        assert 0 <= x0 < x1 <= 112 and 0 <= y0 < y1 <= 112, name
    centre = {k: ((v[0] + v[2]) / 2, (v[1] + v[3]) / 2) for k, v in rois.items()}
    assert centre["right_eye"][0] < 56 < centre["left_eye"][0]  # subject's right on the image's left
    assert abs(centre["right_eye"][1] - centre["left_eye"][1]) <= 2
    assert centre["left_eyebrow"][1] < centre["left_eye"][1] < centre["nose"][1] < centre["mouth"][1]


@pytest.mark.parametrize("kw, match", [({"detector": "yunet"}, "unknown face detector"),
                                       ({"redetect_every": 0}, "redetect_every"),
                                       ({"smoothing": 1.0}, "smoothing"),
                                       ({"max_drift": 0.01, "tolerance": 0.02}, "max_drift"),
                                       ({"min_similarity": 1.5}, "min_similarity"),
                                       ({"margin": -1}, "margin")])
def test_bad_settings_are_one_clear_error(kw, match):
    with pytest.raises(ConfigError, match=match):
        FaceTracker(**kw)


@pytest.mark.slow
def test_speed_on_640x480(heads, capsys):
    """Frames/s of the tracker on 640x480 video of a slowly moving face, and what a detected
    and a tracked frame cost. Printed, not asserted: the machine is shared."""
    scene, head = Scene(8), heads[0]
    frames = [scene.frame([(head, (100 + 1.0 * k, 60 + 0.3 * k))])[0] for k in range(150)]
    with FaceTracker("auto") as tracker:
        tracker.update(frames[0])  # MediaPipe graphs start on first use (~0.7 s): not counted
        tracker.reset()
        cost: dict[str, list[float]] = {"detected": [], "tracked": [], "lost": []}
        t0 = time.perf_counter()
        for i, frame in enumerate(frames):
            t = time.perf_counter()
            state = tracker.update(frame, i)
            cost[state.status].append(time.perf_counter() - t)
        total = time.perf_counter() - t0
    ms = {k: 1000 * float(np.median(v)) for k, v in cost.items() if v}
    with capsys.disabled():
        print(f"\n[track speed] 640x480: {len(frames) / total:.0f} frames/s over {len(frames)} frames "
              f"({len(cost['detected'])} detections); median per frame: detected {ms.get('detected', 0):.2f} ms, "
              f"tracked (template check + crop) {ms.get('tracked', 0):.2f} ms")
    assert len(cost["detected"]) + len(cost["tracked"]) == len(frames)

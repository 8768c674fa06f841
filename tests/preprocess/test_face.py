"""Face alignment on real CASME II frames (skipped where the licensed data is absent),
plus the data-free parts (serialisation, default ROIs, errors)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from mekit.errors import ConfigError, DataError
from mekit.preprocess.face import (
    DEFAULT_ROIS,
    MESH_SETS,
    ROI_NAMES,
    FaceAligner,
    FaceAlignment,
    NoFaceError,
)

# sub01/EP02_01f: onset 46, apex 59 in the coding sheet
CLIP = ("sub01", "EP02_01f", 46, 59)


def _frame(root: Path, n: int, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    sub, ep = CLIP[:2]
    path = root / "Cropped" / sub / ep / f"reg_img{n}.jpg"
    img = cv2.imread(str(path), flags)
    assert img is not None, f"could not read {path}"
    return img


@pytest.fixture
def onset(casme2_root):
    return _frame(casme2_root, CLIP[2])


@pytest.fixture
def apex(casme2_root):
    return _frame(casme2_root, CLIP[3])


@pytest.fixture(scope="module")
def aligner():
    with FaceAligner("auto") as fa:
        yield fa


def _centre(al: FaceAlignment, name: str) -> np.ndarray:
    return al.landmarks[list(MESH_SETS[name])].mean(0)


def _eye_angle(al: FaceAlignment) -> float:
    r, l = _centre(al, "right_eye"), _centre(al, "left_eye")
    return math.degrees(math.atan2(l[1] - r[1], l[0] - r[0]))


def _check_face_layout(al: FaceAlignment) -> None:
    """Eyes in the upper half, mouth in the lower, nose between; eye line level."""
    assert al.landmarks is not None and al.landmarks.shape == (468, 2)
    eyes_y = [_centre(al, "right_eye")[1], _centre(al, "left_eye")[1]]
    nose_y, mouth_y = _centre(al, "nose")[1], _centre(al, "mouth")[1]
    assert all(0.0 < y < 0.5 for y in eyes_y)
    assert 0.5 < mouth_y < 1.0
    assert max(eyes_y) < nose_y < mouth_y
    # subject's right eye on the image's left, both inside the crop
    assert 0.0 < _centre(al, "right_eye")[0] < 0.5 < _centre(al, "left_eye")[0] < 1.0
    assert abs(_eye_angle(al)) < 2.0


def _rotate(img: np.ndarray, degrees: float, pad: int = 60) -> np.ndarray:
    big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    h, w = big.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    return cv2.warpAffine(big, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def test_mesh_sets_match_mediapipe():
    from mediapipe.python.solutions import face_mesh_connections as fmc

    for name, const in [("left_eye", "FACEMESH_LEFT_EYE"), ("right_eye", "FACEMESH_RIGHT_EYE"),
                        ("left_eyebrow", "FACEMESH_LEFT_EYEBROW"), ("right_eyebrow", "FACEMESH_RIGHT_EYEBROW"),
                        ("nose", "FACEMESH_NOSE"), ("mouth", "FACEMESH_LIPS")]:
        assert set(MESH_SETS[name]) == {i for e in getattr(fmc, const) for i in e}, name


# -- real frames --------------------------------------------------------------------------
@pytest.mark.realdata
def test_auto_box_and_landmarks_land_on_the_face(aligner, onset):
    al = aligner.fit(onset)
    assert al.source == "mediapipe" and al.eyes_from == "mesh"
    _check_face_layout(al)
    assert al.frame_shape == onset.shape[:2]


@pytest.mark.realdata
@pytest.mark.parametrize("tilt", [-9.0, 7.0])
def test_eye_line_is_levelled_on_a_tilted_face(aligner, onset, tilt):
    upright = aligner.fit(onset)
    al = aligner.fit(_rotate(onset, tilt))
    _check_face_layout(al)
    # cv2's positive angle turns the image counter-clockwise; levelling undoes it
    assert al.angle == pytest.approx(upright.angle - tilt, abs=1.5)
    # the levelled crop shows the same face: compare the crops of upright and tilted frames
    a = cv2.cvtColor(upright.apply(onset, 96), cv2.COLOR_BGR2GRAY).astype(float)
    b = cv2.cvtColor(al.apply(_rotate(onset, tilt), 96), cv2.COLOR_BGR2GRAY).astype(float)
    centre = slice(24, 72)
    assert np.corrcoef(a[centre, centre].ravel(), b[centre, centre].ravel())[0, 1] > 0.9


@pytest.mark.realdata
def test_one_alignment_applies_to_onset_and_apex(aligner, onset, apex):
    al = aligner.fit(onset)
    crop_on, crop_ap = al.apply(onset, 112), al.apply(apex, 112)
    assert crop_on.shape == crop_ap.shape == (112, 112, 3) and crop_on.dtype == np.uint8
    grey = al.apply(cv2.cvtColor(apex, cv2.COLOR_BGR2GRAY), 64)
    assert grey.shape == (64, 64)
    # a micro-expression changes little: the two crops of one clip agree closely
    assert np.abs(crop_on.astype(int) - crop_ap.astype(int)).mean() < 8
    px = al.landmarks_px(112)
    np.testing.assert_allclose(px, al.landmarks * 112 - 0.5, atol=1e-4)


@pytest.mark.realdata
def test_apply_matches_a_full_size_warp_then_area_resize(aligner, onset):
    """The single anti-aliased warp shows the same pixels as the slow two-step reference."""
    al = aligner.fit(onset)
    size = 48  # a strong reduction, so the pyramid path is used
    fast = al.apply(onset, size).astype(float)
    plain = al.apply(onset, size, interpolation=cv2.INTER_LINEAR).astype(float)
    big = 8 * size
    ref = cv2.resize(cv2.warpAffine(onset, al.warp_matrix(big), (big, big), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE), (size, size),
                     interpolation=cv2.INTER_AREA).astype(float)
    face = slice(size // 4, 3 * size // 4)  # inside the frame: away from the replicated border
    err = np.abs(fast - ref)[face, face].mean()
    assert err < 1.5
    assert err < 0.5 * np.abs(plain - ref)[face, face].mean()  # anti-aliasing does something
    # half a pixel off would show: a one-pixel shift is far worse
    assert np.abs(fast[:, 1:] - ref[:, :-1])[face, face].mean() > 4 * err


@pytest.mark.realdata
def test_greyscale_frames_work(aligner, casme2_root):
    grey = _frame(casme2_root, CLIP[2], cv2.IMREAD_GRAYSCALE)
    al = aligner.fit(grey)
    _check_face_layout(al)
    assert al.apply(grey, 80).shape == (80, 80)


@pytest.mark.realdata
def test_fit_clip_falls_back_to_the_next_frame(aligner, onset, apex):
    blank = np.zeros_like(onset)
    al = aligner.fit_clip([blank, apex, onset])
    _check_face_layout(al)
    np.testing.assert_allclose(al.matrix, aligner.fit(apex).matrix, atol=1e-6)


def test_blank_and_noise_raise_no_face_error(aligner):
    blank = np.full((240, 200, 3), 127, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (240, 200), dtype=np.uint8)
    with pytest.raises(NoFaceError, match=r"no face found in a 200x240 colour frame.*detector='none'"):
        aligner.fit(blank, name="clip/frame1.jpg")
    with pytest.raises(NoFaceError, match="no face found in a 200x240 grey frame"):
        aligner.fit(noise)
    with pytest.raises(NoFaceError, match="any of the 2 frames tried"):
        aligner.fit_clip([blank, noise])
    with pytest.raises(NoFaceError, match="no frames"):
        aligner.fit_clip([])
    assert issubclass(NoFaceError, DataError)


@pytest.mark.realdata
def test_detector_none_keeps_the_whole_precropped_frame(onset):
    with FaceAligner("none") as fa:
        al = fa.fit(onset)
    assert al.source == "none"
    _check_face_layout(al)
    h, w = onset.shape[:2]
    # the frame's centre stays the crop's centre; its corners map to about the unit corners
    m = np.asarray(al.matrix)
    centre = m[:, :2] @ [(w - 1) / 2, (h - 1) / 2] + m[:, 2]
    np.testing.assert_allclose(centre, [0.5, 0.5], atol=1e-9)
    corner = m[:, :2] @ [-0.5, -0.5] + m[:, 2]
    np.testing.assert_allclose(corner, [0.0, 0.0], atol=0.03)  # rotated by the small eye-line angle
    assert al.apply(onset, 112).shape == (112, 112, 3)


def test_detector_none_without_a_face_maps_the_frame_to_the_crop():
    frame = np.full((90, 60), 100, np.uint8)
    with FaceAligner("none") as fa:
        al = fa.fit(frame)
    assert al.landmarks is None and al.angle == 0.0 and al.source == "none"
    m = np.asarray(al.matrix)
    np.testing.assert_allclose(m[:, :2] @ [-0.5, -0.5] + m[:, 2], [0, 0], atol=1e-12)
    np.testing.assert_allclose(m[:, :2] @ [59.5, 89.5] + m[:, 2], [1, 1], atol=1e-12)
    assert al.unit_rois() == DEFAULT_ROIS
    with FaceAligner("none", landmarks=False) as fa:
        assert fa.fit(frame).landmarks is None


@pytest.mark.realdata
def test_haar_detector_finds_the_face(aligner, onset):
    # Haar needs some context round the face: give the tight CASME II crop a border
    padded = cv2.copyMakeBorder(onset, 80, 80, 80, 80, cv2.BORDER_REPLICATE)
    with FaceAligner("haar", landmarks=False) as fa:
        al = fa.fit(padded)
    assert al.source == "haar" and al.landmarks is None
    # the mesh's eyes and mouth (found independently) fall where a face crop has them
    ref = aligner.fit(padded)
    inv = cv2.invertAffineTransform(np.asarray(ref.matrix))
    src = ref.landmarks.astype(np.float64) @ inv[:, :2].T + inv[:, 2]
    unit = src @ np.asarray(al.matrix)[:, :2].T + np.asarray(al.matrix)[:, 2]
    eyes = np.r_[unit[list(MESH_SETS["left_eye"])], unit[list(MESH_SETS["right_eye"])]]
    mouth = unit[list(MESH_SETS["mouth"])]
    assert ((eyes > 0) & (eyes < 1)).all() and (eyes[:, 1] < 0.55).all()
    assert ((mouth > 0) & (mouth < 1)).all() and (mouth[:, 1] > 0.5).all()
    # with the mesh, the Haar path gives the mesh's box and a level eye line
    with FaceAligner("haar") as fa:
        meshed = fa.fit(padded)
    assert meshed.source == "haar"
    _check_face_layout(meshed)


@pytest.mark.realdata
def test_round_trip_through_json(aligner, onset):
    al = aligner.fit(onset)
    back = FaceAlignment.from_dict(json.loads(json.dumps(al.to_dict())))
    assert back.matrix == al.matrix
    np.testing.assert_allclose(back.landmarks, al.landmarks, atol=1e-6)
    assert (back.source, back.angle, back.frame_shape, back.eyes_from) == (
        al.source, al.angle, al.frame_shape, al.eyes_from)
    np.testing.assert_array_equal(back.apply(onset, 64), al.apply(onset, 64))
    assert back.rois(64) == al.rois(64)


def test_round_trip_without_landmarks_and_bad_records():
    al = FaceAlignment(matrix=((0.01, 0, 0.1), (0, 0.01, 0.2)), landmarks=None, source="haar", angle=3.5)
    back = FaceAlignment.from_dict(json.loads(json.dumps(al.to_dict())))
    assert back.matrix == al.matrix and back.landmarks is None and back.angle == 3.5
    with pytest.raises(DataError, match="not a face alignment record"):
        FaceAlignment.from_dict({"landmarks": None})
    with pytest.raises(DataError, match="2x3"):
        FaceAlignment.from_dict({"matrix": [[1, 0], [0, 1]], "source": "haar"})


def _check_rois(rois: dict, size: int) -> None:
    assert tuple(rois) == ROI_NAMES
    for name, (x0, y0, x1, y1) in rois.items():
        assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size, name
    cy = {k: (b[1] + b[3]) / 2 for k, b in rois.items()}
    cx = {k: (b[0] + b[2]) / 2 for k, b in rois.items()}
    for side in ("left", "right"):
        assert cy[f"{side}_eyebrow"] < cy[f"{side}_eye"] < cy["mouth"]
        assert cy[f"{side}_eye"] < cy["nose"] < cy["mouth"]
        assert abs(cy[f"{side}_lip_corner"] - cy["mouth"]) < size * 0.08
    # subject's left on the image's right
    assert cx["left_eye"] > cx["nose"] > cx["right_eye"]
    assert cx["left_lip_corner"] > cx["mouth"] > cx["right_lip_corner"]


@pytest.mark.realdata
def test_landmark_rois_lie_inside_the_crop_in_face_order(aligner, onset):
    al = aligner.fit(onset)
    rois = al.rois(112)
    _check_rois(rois, 112)
    assert rois != FaceAlignment(al.matrix, None, "mediapipe").rois(112)  # from the landmarks
    # each eye box holds its eye's landmarks
    px = al.landmarks_px(112)
    for name in ("left_eye", "right_eye", "mouth"):
        x0, y0, x1, y1 = rois[name]
        pts = px[list(MESH_SETS[name])]
        assert ((pts[:, 0] >= x0 - 1) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0 - 1) & (pts[:, 1] <= y1)).all()


def test_default_rois_without_landmarks():
    al = FaceAlignment(matrix=((0.01, 0, 0), (0, 0.01, 0)), landmarks=None, source="haar")
    _check_rois(al.rois(64), 64)
    _check_rois(al.rois(7), 7)  # tiny crops still give non-empty boxes inside the crop


def test_configuration_errors():
    with pytest.raises(ConfigError, match="unknown face detector 'yolo'"):
        FaceAligner("yolo")
    with pytest.raises(ConfigError, match="margin"):
        FaceAligner(margin=-1)
    al = FaceAlignment(matrix=((0.01, 0, 0), (0, 0.01, 0)), landmarks=None, source="haar")
    with pytest.raises(ConfigError, match="crop size"):
        al.warp_matrix(0)
    with pytest.raises(DataError, match="expected an image"):
        al.apply(np.zeros(5, np.uint8), 32)
    with pytest.raises(DataError, match="grey .* or colour"):
        FaceAligner("none").fit(np.zeros((10, 10, 2), np.uint8))

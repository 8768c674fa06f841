"""Hand-crafted descriptors: lengths, cases with a known answer, agreement with
scikit-image, determinism and bad input. Synthetic arrays only."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.feature import local_binary_pattern

from mekit.errors import ConfigError, DataError
from mekit.features.flow_features import hoof_descriptor
from mekit.features.handcrafted import (
    IBUG68_EYE_CORNERS,
    MEDIAPIPE_EYE_CORNERS,
    hog_descriptor,
    hoof_sequence,
    landmark_displacement,
    lbp_top,
    lbp_top_length,
    mdmo,
)

N_BINS = {"uniform": 10, "nri_uniform": 59, "default": 256}  # for P = 8


def _clip(t=12, h=24, w=28, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w)).astype(np.uint8)


def _hist(codes: np.ndarray, n: int) -> np.ndarray:
    h = np.bincount(codes.astype(int).ravel(), minlength=n).astype(float)
    return h / h.sum()


# ---------------------------------------------------------------------------------------
# LBP-TOP
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["uniform", "nri_uniform", "default"])
@pytest.mark.parametrize("radius", [1, 2])
def test_lbp_top_planes_match_skimage_per_slice(method, radius):
    """With one block and equal radii every plane histogram is skimage's LBP histogram of
    that plane's slices, over the centres whose neighbourhood lies inside the clip."""
    vol = _clip()
    n, r = N_BINS[method], radius
    got = lbp_top(vol, grid=1, radius=radius, n_points=8, method=method)
    assert got.shape == (3 * n,)

    def lbp(img):
        return local_binary_pattern(img, 8, r, method)[r:-r, r:-r]

    xy = np.concatenate([lbp(vol[t]) for t in range(r, vol.shape[0] - r)])
    xt = np.concatenate([lbp(vol[:, y, :]) for y in range(r, vol.shape[1] - r)])  # rows t, cols x
    yt = np.concatenate([lbp(vol[:, :, x]) for x in range(r, vol.shape[2] - r)])  # rows t, cols y
    np.testing.assert_allclose(got, np.concatenate([_hist(xy, n), _hist(xt, n), _hist(yt, n)]),
                               rtol=0, atol=1e-6)


def test_lbp_top_constant_clip_has_one_bin_per_plane():
    for method, bin_all_ones in (("uniform", 8), ("nri_uniform", 8 * 7 + 1)):
        out = lbp_top(np.full((9, 40, 40), 117, np.uint8), grid=(5, 5), method=method)
        hists = out.reshape(25, 3, N_BINS[method])
        expected = np.zeros(N_BINS[method])
        expected[bin_all_ones] = 1.0  # every neighbour >= centre: all-ones code
        np.testing.assert_array_equal(hists, np.broadcast_to(expected, hists.shape))


def test_lbp_top_elliptical_temporal_radius_on_brightening_clip():
    """Frames that brighten over time, flat in space: XY codes are all ones (bin P);
    in XT and YT the earlier neighbours (upper half of the ellipse) are darker, giving
    the uniform pattern 10001111 with five ones (riu2 bin 5), whatever R_T is."""
    vol = np.broadcast_to((np.arange(11) * 10)[:, None, None], (11, 16, 16)).astype(np.uint8)
    for radius in ((1, 1, 1), (1, 1, 3), (2, 1, 4)):
        hists = lbp_top(vol, grid=(2, 2), radius=radius).reshape(4, 3, 10)
        assert np.all(hists[:, 0, 8] == 1.0)
        assert np.all(hists[:, 1:, 5] == 1.0), radius


def test_lbp_top_temporal_radius_changes_only_the_temporal_planes():
    vol = _clip(t=14)
    a = lbp_top(vol, grid=1, radius=(1, 1, 1)).reshape(3, 10)
    b = lbp_top(vol, grid=1, radius=(1, 1, 4)).reshape(3, 10)
    # XY: same operator, only the frames 4..9 instead of 1..12 count
    xy_only = lbp_top(vol[3:11], grid=1, radius=1).reshape(3, 10)[0]
    np.testing.assert_allclose(b[0], xy_only, atol=1e-6)
    assert not np.allclose(a[1:], b[1:])


def test_lbp_top_lengths_and_normalisation():
    vol = _clip(t=10, h=64, w=64)
    assert lbp_top(vol).shape == (25 * 3 * 10,) == (lbp_top_length(),)
    assert lbp_top(vol, method="nri_uniform").shape == (25 * 3 * 59,) == (lbp_top_length(method="nri_uniform"),)
    per_plane = lbp_top(vol, grid=(4, 3), n_points=(8, 4, 4))
    assert per_plane.shape == (12 * (10 + 6 + 6),) == (lbp_top_length((4, 3), (8, 4, 4)),)
    hists = lbp_top(vol, grid=(5, 5)).reshape(25, 3, 10)
    np.testing.assert_allclose(hists.sum(axis=2), 1.0, atol=1e-5)
    assert lbp_top(vol).dtype == np.float32


def test_lbp_top_blocks_follow_the_frame_grid():
    """A clip whose right half is flat black: every right-block centre has neighbours >= 0,
    so its XY codes are all ones; the left block keeps random texture."""
    vol = _clip(t=5, h=20, w=20)
    vol[:, :, 10:] = 0
    hists = lbp_top(vol, grid=(1, 2)).reshape(2, 3, 10)
    assert hists[0, 0, 8] < 0.2
    assert hists[1, 0, 8] == 1.0


def test_lbp_top_is_deterministic_and_dtype_independent():
    vol = _clip()
    a = lbp_top(vol, radius=(1, 1, 2))
    np.testing.assert_array_equal(a, lbp_top(vol.copy(), radius=(1, 1, 2)))
    np.testing.assert_array_equal(a, lbp_top(vol.astype(np.uint16), radius=(1, 1, 2)))
    np.testing.assert_array_equal(a, lbp_top(vol.astype(np.float64), radius=(1, 1, 2)))


def test_lbp_top_bad_input():
    with pytest.raises(DataError, match="at least 9 frames"):
        lbp_top(_clip(t=8), radius=(1, 1, 4))
    with pytest.raises(DataError, match=r"\[T, H, W\]"):
        lbp_top(np.zeros((32, 32), np.uint8))
    with pytest.raises(DataError, match="NaN"):
        lbp_top(np.full((5, 16, 16), np.nan))
    with pytest.raises(ConfigError, match="unknown LBP method"):
        lbp_top(_clip(), method="ror")
    with pytest.raises(ConfigError, match="radius"):
        lbp_top(_clip(), radius=(1, 1))
    with pytest.raises(ConfigError, match="grid"):
        lbp_top(_clip(), grid=(0, 5))
    with pytest.raises(ConfigError, match="n_points"):
        lbp_top(_clip(), n_points=24)
    with pytest.raises(ConfigError, match="unknown LBP method"):
        lbp_top_length(method="riu")


def _edge(vertical: bool) -> np.ndarray:
    img = np.zeros((48, 48), np.uint8)
    if vertical:
        img[:, 21:] = 200   # dark left, bright right: gradient along x
    else:
        img[21:, :] = 200   # dark top, bright bottom: gradient along y
    return img


def test_hog_length_and_dtype():
    assert hog_descriptor(_edge(True)).shape == (5 * 5 * 2 * 2 * 9,)
    assert hog_descriptor(np.zeros((64, 72))).shape == (7 * 8 * 2 * 2 * 9,)
    assert hog_descriptor(_edge(True), pixels_per_cell=(16, 16), cells_per_block=(1, 1),
                          orientations=6).shape == (3 * 3 * 6,)
    assert hog_descriptor(_edge(True)).dtype == np.float32


def test_hog_vertical_edge_puts_energy_in_the_horizontal_gradient_bin():
    per_bin = hog_descriptor(_edge(True)).reshape(-1, 9).sum(axis=0)
    assert per_bin[0] > 0 and per_bin[0] / per_bin.sum() > 0.99
    per_bin = hog_descriptor(_edge(False)).reshape(-1, 9).sum(axis=0)
    assert per_bin.argmax() == 4 and per_bin[4] / per_bin.sum() > 0.99   # 80-100 degrees


def test_hog_bad_input():
    with pytest.raises(DataError, match="smaller than one HOG block"):
        hog_descriptor(np.zeros((10, 40)))
    with pytest.raises(DataError, match="greyscale"):
        hog_descriptor(np.zeros((48, 48, 3)))


# ---------------------------------------------------------------------------------------
# HOOF of several flow fields
# ---------------------------------------------------------------------------------------
def _uniform_flow(u: float, v: float, h=40, w=50) -> np.ndarray:
    f = np.empty((h, w, 2), np.float32)
    f[..., 0], f[..., 1] = u, v
    return f


def test_hoof_sequence_uniform_flows():
    right, down = _uniform_flow(2.0, 0.0), _uniform_flow(0.0, 3.0)
    out = hoof_sequence([right, down], grid=5, bins=8)
    assert out.shape == (2 * 25 * 8,)
    first, second = out[:200].reshape(25, 8), out[200:].reshape(25, 8)
    expected = np.zeros((25, 8))
    expected[:, 0] = 2.0                 # all mass in the angle-0 bin, mean magnitude 2
    np.testing.assert_allclose(first, expected, atol=1e-6)
    expected = np.zeros((25, 8))
    expected[:, 2] = 3.0                 # downward = +pi/2 = bin 2 of 8
    np.testing.assert_allclose(second, expected, atol=1e-6)


def test_hoof_sequence_is_hoof_descriptor_concatenated():
    rng = np.random.default_rng(1)
    flows = [rng.normal(size=(30, 30, 2)).astype(np.float32) for _ in range(3)]
    strains = [rng.random((30, 30)), None, rng.random((30, 30))]
    out = hoof_sequence(flows, grid=3, bins=6, strains=strains)
    expected = np.concatenate([hoof_descriptor(f, s, grid=3, bins=6) for f, s in zip(flows, strains)])
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.shape == (9 * 7 + 9 * 6 + 9 * 7,)


def test_hoof_sequence_bad_input():
    with pytest.raises(DataError, match="differ in shape"):
        hoof_sequence([_uniform_flow(1, 0), _uniform_flow(1, 0, h=20)])
    with pytest.raises(DataError, match="list of flow fields"):
        hoof_sequence(_uniform_flow(1, 0))
    with pytest.raises(DataError, match="no flow fields"):
        hoof_sequence([])
    with pytest.raises(DataError, match="strain map 0"):
        hoof_sequence([_uniform_flow(1, 0)], strains=[np.zeros((3, 3))])


# ---------------------------------------------------------------------------------------
# MDMO
# ---------------------------------------------------------------------------------------
ROIS = {"left_eye": (5, 5, 25, 15), "mouth": (10, 25, 40, 38)}


def test_mdmo_uniform_rightward_flow():
    out = mdmo(_uniform_flow(2.0, 0.0), ROIS)
    np.testing.assert_allclose(out, [2.0, 0.0, 2.0, 0.0], atol=1e-6)
    assert out.dtype == np.float32


def test_mdmo_leftward_and_downward():
    np.testing.assert_allclose(mdmo(_uniform_flow(-1.5, 0.0), ROIS), [1.5, math.pi] * 2, atol=1e-6)
    np.testing.assert_allclose(mdmo(_uniform_flow(0.0, 0.5), ROIS), [0.5, math.pi / 2] * 2, atol=1e-6)


def test_mdmo_main_direction_mean_across_angle_zero():
    """Half the ROI at +10 deg (|f| = 2), a quarter at -5 deg (|f| = 4), a quarter straight
    down (|f| = 10): the main bin is the one around 0 deg (75% of vectors), its mean
    magnitude is (0.5*2 + 0.25*4) / 0.75 and its mean angle (0.5*10 - 0.25*5) / 0.75 deg."""
    f = np.zeros((8, 8, 2))
    angles = np.radians(np.r_[[10.0] * 32, [-5.0] * 16, [90.0] * 16])
    mags = np.r_[[2.0] * 32, [4.0] * 16, [10.0] * 16]
    f[..., 0] = (mags * np.cos(angles)).reshape(8, 8)
    f[..., 1] = (mags * np.sin(angles)).reshape(8, 8)
    rho, theta = mdmo(f, {"roi": (0, 0, 8, 8)})
    assert rho == pytest.approx(2.0 / 0.75, rel=1e-6)
    assert theta == pytest.approx(math.radians(3.75 / 0.75), abs=1e-6)


def test_mdmo_normalise_and_order():
    f = _uniform_flow(1.0, 0.0)
    f[25:38, 10:40] = (0.0, -4.0)  # mouth moves up
    out = mdmo(f, ROIS)
    np.testing.assert_allclose(out, [1.0, 0.0, 4.0, -math.pi / 2], atol=1e-6)
    np.testing.assert_allclose(mdmo(f, ROIS, normalise=True), [0.25, 0.0, 1.0, -math.pi / 2], atol=1e-6)
    assert mdmo(np.zeros((40, 50, 2)), ROIS, normalise=True).tolist() == [0.0] * 4


def test_mdmo_bad_input():
    with pytest.raises(DataError, match="mouth"):
        mdmo(_uniform_flow(1, 0, h=30), ROIS)             # mouth box reaches row 38
    with pytest.raises(DataError, match="no ROIs"):
        mdmo(_uniform_flow(1, 0), {})
    with pytest.raises(DataError, match="flow field"):
        mdmo(np.zeros((40, 50)), ROIS)


# ---------------------------------------------------------------------------------------
# Landmark displacement
# ---------------------------------------------------------------------------------------
def _landmarks(n: int, right_eye: int, left_eye: int, seed=0) -> np.ndarray:
    lm = np.random.default_rng(seed).uniform(20, 200, (n, 2))
    lm[right_eye] = (100.0, 120.0)
    lm[left_eye] = (160.0, 120.0)        # inter-ocular distance 60
    return lm


def test_landmark_translation_gives_constant_normalised_displacement():
    onset = _landmarks(468, *MEDIAPIPE_EYE_CORNERS)
    out = landmark_displacement(onset, onset + (3.0, -6.0))
    assert out.shape == (2 * 468,)
    np.testing.assert_allclose(out.reshape(-1, 2), np.broadcast_to([0.05, -0.1], (468, 2)), atol=1e-6)
    onset = _landmarks(68, *IBUG68_EYE_CORNERS)
    np.testing.assert_allclose(landmark_displacement(onset, onset + (-1.2, 0.0)).reshape(-1, 2)[:, 0],
                               -0.02, atol=1e-6)


def test_landmark_displacement_is_scale_invariant_and_raw_when_asked():
    onset = _landmarks(478, *MEDIAPIPE_EYE_CORNERS)
    apex = onset + np.random.default_rng(3).normal(size=onset.shape)
    a = landmark_displacement(onset, apex)
    np.testing.assert_allclose(landmark_displacement(2.5 * onset, 2.5 * apex), a, rtol=1e-5)
    np.testing.assert_allclose(landmark_displacement(onset, apex, normalise="none"),
                               (apex - onset).ravel(), rtol=1e-6)


def test_landmark_explicit_eye_indices_and_centres():
    onset = np.zeros((10, 2))
    onset[[0, 1]] = [(0.0, 0.0), (10.0, 0.0)]    # right eye corners, centre (5, 0)
    onset[[2, 3]] = [(30.0, 0.0), (40.0, 0.0)]   # left eye corners, centre (35, 0)
    out = landmark_displacement(onset, onset + (6.0, 0.0), eye_indices=([0, 1], [2, 3]))
    np.testing.assert_allclose(out.reshape(-1, 2)[:, 0], 0.2, atol=1e-6)
    out = landmark_displacement(onset, onset + (6.0, 0.0), eye_indices=(0, 3))
    np.testing.assert_allclose(out.reshape(-1, 2)[:, 0], 0.15, atol=1e-6)


def test_landmark_bad_input():
    lm = _landmarks(468, *MEDIAPIPE_EYE_CORNERS)
    with pytest.raises(ConfigError, match="eye_indices"):
        landmark_displacement(lm[:30], lm[:30])
    with pytest.raises(DataError, match="same N"):
        landmark_displacement(lm, lm[:-1])
    same = lm.copy()
    same[263] = same[33]
    with pytest.raises(DataError, match="inter-ocular"):
        landmark_displacement(same, same)
    with pytest.raises(ConfigError, match="normalise"):
        landmark_displacement(lm, lm, normalise="face_width")
    with pytest.raises(ConfigError, match="not a valid index"):
        landmark_displacement(lm[:10], lm[:10], eye_indices=(0, 12))

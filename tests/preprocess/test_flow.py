"""Optical flow, strain, the u/v/strain stack and the HSV rendering."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from mekit.errors import ConfigError  # noqa: E402
from mekit.preprocess import flow as flowmod  # noqa: E402
from mekit.preprocess.flow import (  # noqa: E402
    FLOW_METHODS,
    compute_flow,
    flow_stack,
    flow_to_hsv_image,
    optical_strain,
)

METHODS = FLOW_METHODS.names()


def _texture(size: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (size, size)).astype(np.uint8), (0, 0), 2.0)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def _shifted_pair(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops of a texture before and after its content moves by (dx, dy) pixels."""
    big = _texture()
    a = big[16:144, 16:144]
    b = np.roll(big, (dy, dx), axis=(0, 1))[16:144, 16:144]
    return a, b


def test_registry_has_the_three_methods():
    assert set(METHODS) == {"tvl1", "farneback", "dis"}


@pytest.mark.parametrize("method", METHODS)
def test_identical_frames_give_zero_flow(method):
    img = _texture(96)
    f = compute_flow(img, img, method)
    assert f.shape == (96, 96, 2) and f.dtype == np.float32
    # Farneback leaves a few tenths of a pixel in the outermost corner pixels; the interior is 0
    assert np.abs(f[8:-8, 8:-8]).max() < 1e-3
    assert np.abs(f).mean() < 1e-2


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dx,dy", [(2, 1), (-1, 2)])
def test_known_shift_is_recovered_with_opencv_sign_convention(method, dx, dy):
    a, b = _shifted_pair(dx, dy)
    f = compute_flow(a, b, method)
    centre = f[32:96, 32:96].reshape(-1, 2)
    u, v = np.median(centre, axis=0)
    assert u == pytest.approx(dx, abs=0.15)  # content moving right has positive u
    assert v == pytest.approx(dy, abs=0.15)  # content moving down has positive v


def test_colour_and_float_inputs_match_grey_uint8():
    a, b = _shifted_pair(2, 0)
    ref = compute_flow(a, b, "dis")
    rgb = compute_flow(np.dstack([a] * 3), np.dstack([b] * 3), "dis")
    flt = compute_flow(a / 255.0, b / 255.0, "dis")
    np.testing.assert_allclose(rgb, ref, atol=1e-4)
    np.testing.assert_allclose(flt, ref, atol=1e-4)


def test_bad_method_params_and_sizes_raise():
    img = _texture(32)
    with pytest.raises(ConfigError, match="optical flow method"):
        compute_flow(img, img, "raft")
    with pytest.raises(ConfigError, match="unknown parameter"):
        compute_flow(img, img, "tvl1", n_scales=3)
    with pytest.raises(ConfigError, match="DIS preset"):
        compute_flow(img, img, "dis", preset="slow")
    with pytest.raises(ValueError, match="differ in size"):
        compute_flow(img, img[:16], "dis")


def test_tvl1_object_is_created_once_per_parameter_set(monkeypatch):
    monkeypatch.setattr(flowmod, "_OBJECTS", {})
    img = _texture(32)
    compute_flow(img, img, "tvl1")
    compute_flow(img, img, "tvl1")
    assert len(flowmod._OBJECTS) == 1
    compute_flow(img, img, "tvl1", warps=2)
    assert len(flowmod._OBJECTS) == 2
    (key,) = [k for k in flowmod._OBJECTS if ("warps", "2") in k[1]]
    assert ("nscales", "3") in key[1] and ("epsilon", "0.05") in key[1]  # the fast defaults


def test_strain_of_translation_is_zero_and_of_linear_fields_is_the_tensor_norm():
    h, w = 40, 50
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    translation = np.dstack([np.full((h, w), 1.5), np.full((h, w), -0.7)]).astype(np.float32)
    assert np.abs(optical_strain(translation)).max() < 1e-6
    # u = a x, v = b y: e_xx = a, e_yy = b, e_xy = 0
    a, b = 0.03, -0.02
    s = optical_strain(np.dstack([a * xx, b * yy]))
    np.testing.assert_allclose(s, np.hypot(a, b), rtol=1e-5)
    # u = c y (pure shear): e_xy = c / 2, magnitude sqrt(2 (c/2)^2) = c / sqrt(2)
    c = 0.04
    s = optical_strain(np.dstack([c * yy, np.zeros_like(yy)]))
    np.testing.assert_allclose(s, c / np.sqrt(2), rtol=1e-5)
    assert s.dtype == np.float32 and s.shape == (h, w)


@pytest.mark.parametrize("size", [28, 48, 112, 224, 17])
def test_flow_stack_minmax_shapes_and_ranges(size):
    a, b = _shifted_pair(2, 1)
    f = compute_flow(a, b, "dis")
    f[40:60, 40:60] += 1.0  # make every channel vary
    st = flow_stack(f, optical_strain(f), size)
    assert st.shape == (3, size, size) and st.dtype == np.float32
    np.testing.assert_allclose(st.reshape(3, -1).min(1), 0.0, atol=1e-6)
    np.testing.assert_allclose(st.reshape(3, -1).max(1), 1.0, atol=1e-6)


def test_flow_stack_fixed_and_none_normalisation():
    zero = np.zeros((64, 64, 2), np.float32)
    fixed = flow_stack(zero, None, 28, normalise="fixed")
    np.testing.assert_allclose(fixed[0], 0.5)  # no motion sits at the middle of [0, 1]
    np.testing.assert_allclose(fixed[1], 0.5)
    np.testing.assert_allclose(fixed[2], 0.0)
    # a uniform 1.6 px flow right on a 64 px crop = 2.5 % of the width = half of flow_scale 0.05
    right = np.zeros((64, 64, 2), np.float32)
    right[..., 0] = 1.6
    fixed = flow_stack(right, None, 28, normalise="fixed")
    np.testing.assert_allclose(fixed[0], 0.75, atol=1e-5)
    raw = flow_stack(right, None, 28, normalise="none")
    np.testing.assert_allclose(raw[0], 1.6, atol=1e-5)
    np.testing.assert_allclose(raw[2], 0.0, atol=1e-6)
    # a constant channel cannot be min-max scaled: it becomes 0, not NaN
    mm = flow_stack(right, None, 28, normalise="minmax")
    assert np.isfinite(mm).all() and mm.max() == 0.0
    with pytest.raises(ConfigError, match="normalisation"):
        flow_stack(right, None, 28, normalise="zscore")


def test_hsv_rendering_direction_and_magnitude():
    zero = np.zeros((8, 8, 2), np.float32)
    assert flow_to_hsv_image(zero).max() == 0  # no motion is black
    right = np.zeros((8, 8, 2), np.float32)
    right[..., 0] = 2.0
    img = flow_to_hsv_image(right)
    assert img.dtype == np.uint8 and img.shape == (8, 8, 3)
    assert tuple(img[0, 0]) == (255, 0, 0)  # rightward motion is red, full brightness
    half = flow_to_hsv_image(right, max_magnitude=4.0)
    assert 120 <= half[0, 0, 0] <= 135  # half the reference magnitude, half the brightness
    left = -right
    assert tuple(flow_to_hsv_image(left)[0, 0]) == (0, 255, 255)  # opposite hue: cyan

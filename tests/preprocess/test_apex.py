"""Apex spotting on synthetic clips whose apex is known by construction."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mekit.errors import ConfigError, DataError
from mekit.preprocess.apex import METHODS, motion_curve, spot_apex

SIZE = 64
ROI = {"mouth": (36, 36, 60, 60)}  # where the synthetic expression acts
OUTSIDE_CENTRE = (14, 14)  # a spot well outside ROI


def _texture(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Smooth random texture with the contrast of skin and features (float, 0..255)."""
    t = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 1.5)
    return np.clip(128 + 60 * t / t.std(), 0, 255)


def _warp(img: np.ndarray, centre: tuple[float, float], amp: float, radius: float = 6.0,
          shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Displace a Gaussian blob of ``img`` around ``centre`` by ``amp`` pixels (down-right),
    plus a global translation ``shift``."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    g = amp * np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * radius ** 2))
    mx, my = (xx - g - shift[0]).astype(np.float32), (yy - g - shift[1]).astype(np.float32)
    return cv2.remap(img.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _clip(t: int = 60, apex: int = 37, amp: float = 2.5, width: float = 6.0, seed: int = 0,
          centre: tuple[float, float] = (48, 48), noise: float = 3.0, ramp: float = 40.0,
          drift: float = 0.0, extra: tuple[int, float, tuple[float, float], float] | None = None) -> np.ndarray:
    """(t, SIZE, SIZE) uint8 clip: a local displacement peaking at ``apex`` and back to
    neutral at both ends, per-pixel noise, a global brightness ramp (+``ramp`` grey levels
    over the clip) and an optional global translation drift (``drift`` px over the clip).
    ``extra``: a second event (peak frame, amplitude, centre, radius)."""
    rng = np.random.default_rng(seed)
    base = _texture(rng)
    out = []
    for i in range(t):
        a = amp * np.exp(-((i - apex) ** 2) / (2 * width ** 2))
        s = drift * i / (t - 1)
        f = _warp(base, centre, a, shift=(s, 0.3 * s))
        if extra is not None:
            peak, amp2, c2, r2 = extra
            a2 = amp2 * np.exp(-((i - peak) ** 2) / (2 * width ** 2))
            f = _warp(f, c2, a2, radius=r2)
        f = f + ramp * i / (t - 1) + rng.normal(0, noise, f.shape)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("reference", ["ends", "onset"])
def test_localised_bump_is_spotted_despite_noise_and_brightness_ramp(method, reference):
    clip = _clip(apex=37)
    assert abs(spot_apex(clip, ROI, method=method, reference=reference) - 37) <= 1
    assert abs(spot_apex(clip, None, method=method, reference=reference) - 37) <= 1


@pytest.mark.parametrize("method", METHODS)
def test_apex_near_the_start_and_with_a_coarse_stride(method):
    clip = _clip(t=90, apex=21, seed=3)
    # stride 7 measures every 7th frame first; the refinement must still find the frame
    assert abs(spot_apex(clip, ROI, method=method, stride=7) - 21) <= 1


@pytest.mark.parametrize("method", METHODS)
def test_ends_reference_ignores_slow_head_drift(method):
    # the whole face drifts 3 px over the clip: onset-relative motion keeps growing to
    # the last frame, but the distance to both ends does not
    clip = _clip(apex=28, drift=3.0, seed=5)
    assert abs(spot_apex(clip, ROI, method=method, reference="ends") - 28) <= 2
    onset_only = spot_apex(clip, ROI, method=method, reference="onset")
    if method == "diff":
        assert onset_only > 40  # what the drift does to an onset-only difference curve
    else:
        assert abs(onset_only - 28) <= 2  # flow subtracts the median (global) motion


@pytest.mark.parametrize("method", METHODS)
def test_roi_restriction_selects_the_event_inside_the_rois(method):
    # a large event outside the ROI at frame 15, a smaller one inside it at frame 45
    clip = _clip(t=60, apex=45, amp=2.0, seed=7, extra=(15, 4.0, OUTSIDE_CENTRE, 10.0))
    assert abs(spot_apex(clip, None, method=method) - 15) <= 1
    assert abs(spot_apex(clip, ROI, method=method) - 45) <= 1


def test_motion_curve_shape_values_and_interpolation():
    clip = _clip(t=50, apex=25)
    full = motion_curve(clip, ROI, method="diff", stride=1, smooth_sigma=0, reference="onset")
    assert full.shape == (50,)
    assert full[0] == 0.0  # the onset against itself
    assert full[25] > 3 * full[3]  # the bump stands out of the noise floor
    coarse = motion_curve(clip, ROI, method="diff", stride=4, smooth_sigma=0, reference="onset")
    assert coarse.shape == (50,)
    np.testing.assert_allclose(coarse[::4], full[::4])  # sampled frames are measured exactly
    smooth = motion_curve(clip, ROI, method="diff", stride=1, smooth_sigma=3, reference="onset")
    assert np.std(np.diff(smooth)) < np.std(np.diff(full))


def test_colour_and_list_input_give_the_grey_answer():
    clip = _clip(t=40, apex=20)
    colour = np.repeat(clip[..., None], 3, axis=-1)
    assert spot_apex(colour, ROI, method="diff") == spot_apex(clip, ROI, method="diff")
    assert spot_apex(list(clip), ROI, method="diff") == spot_apex(clip, ROI, method="diff")


def test_degenerate_clips():
    one = _clip(t=60)[:1]
    assert spot_apex(one) == 0
    np.testing.assert_array_equal(motion_curve(one), [0.0])
    two = _clip(t=60)[:2]
    assert spot_apex(two) == 1
    assert motion_curve(two, reference="onset", smooth_sigma=0)[0] == 0.0
    three = _clip(t=60)[:3]
    assert spot_apex(three, reference="ends") == 1
    with pytest.raises(DataError, match="no frames"):
        spot_apex(np.zeros((0, SIZE, SIZE), np.uint8))
    with pytest.raises(DataError, match="no frames"):
        spot_apex([])


def test_bad_input_is_reported_clearly():
    clip = _clip(t=10)
    with pytest.raises(DataError, match=r"\(T, H, W\)"):
        spot_apex(clip[0])
    with pytest.raises(DataError, match="differ in shape"):
        spot_apex([clip[0], clip[1][:32]])
    with pytest.raises(DataError, match="'mouth' lies outside"):
        spot_apex(clip, {"mouth": (70, 70, 90, 90)})
    with pytest.raises(DataError, match="not a box"):
        spot_apex(clip, {"mouth": (1, 2)})
    with pytest.raises(ConfigError, match="unknown apex spotting method"):
        spot_apex(clip, method="magic")
    with pytest.raises(ConfigError, match="unknown apex reference"):
        spot_apex(clip, reference="apex")
    with pytest.raises(ConfigError, match="stride"):
        spot_apex(clip, stride=0)

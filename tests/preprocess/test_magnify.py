"""Eulerian magnification on synthetic clips: in-band changes grow by (1 + alpha), others do not."""

from __future__ import annotations

import numpy as np
import pytest

from mekit.errors import ConfigError, DataError
from mekit.preprocess.magnify import level_gains, magnify, max_levels

T, FPS = 64, 32.0  # 2 s: 2 Hz and 8 Hz sinusoids fit a whole number of periods
TIME = np.arange(T) / FPS


def clip(freq_hz: float, amp: float = 0.005, size: int = 32, pattern: np.ndarray | None = None,
         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A static textured face stand-in plus a small sinusoidal intensity change."""
    rng = np.random.default_rng(seed)
    base = (0.4 + 0.2 * rng.random((size, size))).astype(np.float64)
    p = np.ones((size, size)) if pattern is None else pattern
    change = amp * np.sin(2 * np.pi * freq_hz * TIME)[:, None, None] * p[None]
    return (base[None] + change).astype(np.float32), base


def gain(out: np.ndarray, x: np.ndarray, base: np.ndarray) -> float:
    mid = slice(T // 4, 3 * T // 4)  # away from filter edge effects
    return float(np.std(out[mid] - base[None]) / np.std(x[mid] - base[None]))


@pytest.mark.parametrize("method,band", [("ideal", (1.0, 3.0)), ("butterworth", (1.0, 4.0))])
def test_in_band_change_is_amplified_by_about_alpha(method, band):
    x, base = clip(2.0)
    out = magnify(x, FPS, *band, alpha=10, method=method)
    assert out.shape == x.shape and out.dtype == np.float32
    assert gain(out, x, base) == pytest.approx(11.0, rel=0.05)


def test_out_of_band_change_is_not_amplified():
    x, base = clip(8.0)
    out = magnify(x, FPS, 1.0, 3.0, alpha=10, method="ideal")
    assert gain(out, x, base) == pytest.approx(1.0, abs=0.01)
    out_bw = magnify(x, FPS, 1.0, 3.0, alpha=10, method="butterworth", order=2)
    in_bw = magnify(clip(2.0)[0], FPS, 1.0, 3.0, alpha=10, method="butterworth", order=2)
    assert gain(out_bw, x, base) < 1.6 < 9.0 < gain(in_bw, clip(2.0)[0], base)


def test_spatially_varying_change_without_attenuation_is_exact():
    # The pyramid reconstructs perfectly and every step is linear, so with alpha applied at
    # every level the output is x + alpha * bandpass(x) for any spatial pattern.
    yy, xx = np.mgrid[0:32, 0:32]
    blob = np.exp(-((yy - 12) ** 2 + (xx - 20) ** 2) / 18.0)
    x, base = clip(2.0, amp=0.01, pattern=blob)
    out = magnify(x, FPS, 1.0, 3.0, alpha=5, levels=4, lambda_c=None)
    np.testing.assert_allclose(out - base[None], 6.0 * (x - base[None]), atol=2e-5)


def test_small_motion_is_magnified():
    # A blob swaying 0.2 px at 2 Hz: its centroid should sway about (1 + alpha) times as far.
    yy, xx = np.mgrid[0:64, 0:64]
    shift = 0.2 * np.sin(2 * np.pi * 2.0 * TIME)
    x = np.stack([0.1 + 0.8 * np.exp(-((yy - 32) ** 2 + (xx - 32 - d) ** 2) / 72.0) for d in shift])
    x = x.astype(np.float32)
    out = magnify(x, FPS, 1.0, 3.0, alpha=10)

    def centroid_x(a):
        w = a - 0.1
        return (w * xx).sum(axis=(1, 2)) / w.sum(axis=(1, 2))

    ratio = np.std(centroid_x(out) - 32) / np.std(centroid_x(x) - 32)
    assert ratio == pytest.approx(11.0, rel=0.1)


def test_attenuation_lowers_fine_levels_only():
    g = level_gains(64, 64, 4, alpha=10, lambda_c=16)
    assert g[-1] == 10 and g[-2] == 10  # coarse levels: full alpha
    assert g[0] < g[1] < 10  # fine levels: attenuated (Wu et al. 2012, Eq. 14)
    assert level_gains(64, 64, 4, 10, None) == [10.0] * 4
    assert level_gains(64, 64, 4, 10, None, amplify_residual=False) == [10.0, 10.0, 10.0, 0.0]


@pytest.mark.parametrize("shape,dtype", [((20, 24, 32), np.uint8), ((20, 24, 32, 3), np.uint8),
                                         ((20, 24, 32, 3), np.float32), ((20, 24, 32), np.float64)])
def test_static_clip_unchanged_shape_dtype_kept(shape, dtype):
    rng = np.random.default_rng(1)
    frame = rng.random(shape[1:])
    frame = (frame * 255).astype(dtype) if dtype == np.uint8 else frame.astype(dtype)
    x = np.repeat(frame[None], shape[0], axis=0)
    for method in ("ideal", "butterworth"):
        out = magnify(x, 30.0, 0.5, 5.0, alpha=20, levels=3, method=method)
        assert out.shape == x.shape and out.dtype == x.dtype
        if dtype == np.uint8:
            assert np.array_equal(out, x)
        else:
            np.testing.assert_allclose(out, x, atol=1e-5)


def test_uint8_output_is_clipped_not_wrapped():
    # About 250 +- 3 grey levels at 2 Hz; magnified by 11 it swings past 255.
    wave = 250 + np.rint(3 * np.sin(2 * np.pi * 2.0 * TIME))
    x8 = np.broadcast_to(wave[:, None, None], (T, 16, 16)).astype(np.uint8)
    out = magnify(x8, FPS, 1.0, 3.0, alpha=10, lambda_c=None)
    assert out.dtype == np.uint8
    # Reference: the ideal band of the (spatially flat) signal, amplified, then clipped.
    spec = np.fft.rfft(wave)
    f = np.fft.rfftfreq(T, 1 / FPS)
    spec[(f < 1.0) | (f > 3.0)] = 0
    expected = np.clip(np.rint(wave + 10 * np.fft.irfft(spec, n=T)), 0, 255)
    assert expected.max() == 255 and expected.min() < 225
    np.testing.assert_allclose(out[:, 8, 8], expected, atol=1)
    assert (out == out[:, :1, :1]).all()  # flat frames stay flat


def test_alpha_zero_and_errors():
    x, _ = clip(2.0)
    assert np.array_equal(magnify(x, FPS, 1, 3, alpha=0), x)
    with pytest.raises(ConfigError, match=r"pass band 1..20 Hz at 32 fps"):
        magnify(x, FPS, 1, 20, alpha=5)
    with pytest.raises(ConfigError, match=r"0 < low_hz"):
        magnify(x, FPS, 0, 3, alpha=5, method="butterworth")
    with pytest.raises(ConfigError, match=r"levels=9 for 32x32 frames; expected 1..4"):
        magnify(x, FPS, 1, 3, alpha=5, levels=9)
    with pytest.raises(ConfigError, match="'lagrangian'"):
        magnify(x, FPS, 1, 3, alpha=5, method="lagrangian")
    with pytest.raises(DataError, match="at least 2 frames"):
        magnify(x[:1], FPS, 1, 3, alpha=5)
    assert max_levels(32, 32) == 4 and max_levels(200, 160) == 6

"""Frame samplers and temporal interpolation: exact outputs on small cases and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from mekit.errors import ConfigError, DataError
from mekit.preprocess.temporal import (
    SAMPLERS,
    around_apex,
    interpolate,
    sample_frames,
    uniform,
    window_sparse,
)


def eq(a, b):
    a = np.asarray(a)
    assert a.dtype == np.int64, a.dtype
    assert a.tolist() == list(b)


def test_uniform_exact():
    eq(uniform(10, 20, 3), [10, 15, 20])
    eq(uniform(0, 9, 4), [0, 3, 6, 9])
    eq(uniform(1, 10, 4), [1, 4, 7, 10])
    eq(uniform(0, 10, 4), [0, 3, 7, 10])  # 3.33 -> 3, 6.67 -> 7
    eq(uniform(0, 9, 1), [4])


def test_uniform_short_clip_repeats_and_single_frame():
    eq(uniform(0, 2, 5), [0, 1, 1, 2, 2])
    eq(uniform(5, 5, 3), [5, 5, 5])
    out = uniform(100, 103, 16)
    assert out[0] == 100 and out[-1] == 103 and np.all(np.diff(out) >= 0)
    assert set(out.tolist()) == {100, 101, 102, 103}


def test_around_apex_exact_and_clamped():
    eq(around_apex(0, 10, 30, 5), [8, 9, 10, 11, 12])
    eq(around_apex(0, 10, 30, 4), [9, 10, 11, 12])  # even n: apex is the left middle frame
    eq(around_apex(0, 0, 20, 3), [0, 1, 2])  # apex at the onset
    eq(around_apex(0, 20, 20, 5), [16, 17, 18, 19, 20])  # apex at the offset
    eq(around_apex(5, 6, 30, 6), [5, 6, 7, 8, 9, 10])
    eq(around_apex(0, None, 10, 3), [4, 5, 6])  # no apex: the middle
    eq(around_apex(7, 7, 7, 2), [7, 7])  # onset == offset
    eq(around_apex(0, 1, 2, 5), [0, 1, 1, 2, 2])  # shorter than n: uniform with repeats


def test_window_sparse_exact():
    eq(window_sparse(0, 10, 30, 3, 7), [0, 1, 2, 7, 9, 10, 11, 14, 21, 28, 29, 30])
    eq(window_sparse(0, 0, 4, 2, 10), [0, 1, 3, 4])  # apex at onset: windows merge, unique
    eq(window_sparse(3, 3, 3, 5, 1), [3])  # onset == offset: everything clipped to one frame
    eq(window_sparse(0, 5, 9, 1, 1), list(range(10)))  # stride 1 is every frame


def test_window_sparse_stride_error_names_value():
    with pytest.raises(ConfigError, match=r"stride must be a positive integer \(>= 1\); got 0"):
        window_sparse(0, 5, 10, 3, 0)
    with pytest.raises(ConfigError, match=r"stride .* got -2"):
        window_sparse(0, 5, 10, 3, -2)
    with pytest.raises(ConfigError, match=r"window .* got 0"):
        window_sparse(0, 5, 10, 0, 2)


def test_bad_clip_numbers():
    with pytest.raises(DataError, match="onset 9 is after offset 3"):
        uniform(9, 3, 2)
    with pytest.raises(DataError, match="apex 40 lies outside onset..offset 0..30"):
        around_apex(0, 40, 30, 3)
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        uniform(0, 3, 0)


def test_interpolate_linear_exact():
    x = np.array([0.0, 10.0, 20.0])
    np.testing.assert_allclose(interpolate(x, 5), [0, 5, 10, 15, 20])
    np.testing.assert_allclose(interpolate(x, 2), [0, 20])
    frames = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (0, 100, 200)])
    out = interpolate(frames, 4)  # times 0, 2/3, 4/3, 2
    assert out.shape == (4, 2, 2, 3) and out.dtype == np.uint8
    assert out[:, 0, 0, 0].tolist() == [0, 67, 133, 200]
    down = interpolate(np.arange(10, dtype=np.float32), 4)
    assert down.dtype == np.float32
    np.testing.assert_allclose(down, [0, 3, 6, 9])


def test_interpolate_cubic_and_edges():
    t = np.arange(6, dtype=float)
    np.testing.assert_allclose(interpolate(t**2, 11, method="cubic"), (np.arange(11) / 2) ** 2, atol=1e-9)
    one = interpolate(np.ones((1, 3, 3)), 4)
    assert one.shape == (4, 3, 3)
    with pytest.raises(ConfigError, match="length must be a positive integer"):
        interpolate(t, 0)
    with pytest.raises(ConfigError, match="'spline'"):
        interpolate(t, 3, method="spline")


def test_registry_names_and_dispatch():
    assert SAMPLERS.names() == ["apex", "uniform", "window"]
    assert SAMPLERS.meta("window")["function"] is window_sparse
    eq(sample_frames("uniform", 10, None, 20, n=3), [10, 15, 20])
    eq(sample_frames("apex", 0, 10, 30, n=5), [8, 9, 10, 11, 12])
    eq(sample_frames("window", 0, 10, 30, window=3, stride=7), window_sparse(0, 10, 30, 3, 7))
    with pytest.raises(ConfigError, match="missing \\['stride'\\]"):
        sample_frames("window", 0, 10, 30, window=3)
    with pytest.raises(ConfigError, match="unknown frame sampler 'tim'"):
        sample_frames("tim", 0, 10, 30, n=3)


@pytest.mark.parametrize("name", SAMPLERS.names())
@pytest.mark.parametrize("onset,apex,offset", [(0, 0, 0), (3, 3, 40), (3, 40, 40), (100, 130, 160)])
def test_every_sampler_stays_inside_the_clip(name, onset, apex, offset):
    params = {k: 4 for k in SAMPLERS.meta(name)["params"]}
    out = sample_frames(name, onset, apex, offset, **params)
    assert out.dtype == np.int64 and len(out) >= 1
    assert out.min() >= onset and out.max() <= offset
    assert np.all(np.diff(out) >= 0)

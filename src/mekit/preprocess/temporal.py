"""Which frames of a clip to use: frame numbers in, frame numbers out (pure numpy).

Samplers never touch pixels: they turn a clip's ``onset``/``apex``/``offset`` (as the
:class:`~mekit.data.schema.SampleTable` holds them, in the corpus's own frame numbering) into an
int64 array of frame numbers inside ``[onset, offset]``; the caller reads those frames
(``table.frame_path`` for frame folders, :func:`mekit.data.video.read_video_frames` for videos).
:func:`interpolate` is the one function here that works on pixel arrays: it resamples a stack
of frames to a fixed length along time.

Configs choose a sampler by name from :data:`SAMPLERS` and call it through
:func:`sample_frames` with one signature for all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mekit.errors import ConfigError, DataError
from mekit.registry import Registry


def _check_clip(onset: int, offset: int, apex: int | None = None) -> tuple[int, int, int | None]:
    try:
        on, off = int(onset), int(offset)
        ap = None if apex is None or (isinstance(apex, float) and apex != apex) else int(apex)
    except (TypeError, ValueError):
        raise DataError(f"frame numbers must be integers (got onset={onset!r}, apex={apex!r}, "
                        f"offset={offset!r})") from None
    if on > off:
        raise DataError(f"onset {on} is after offset {off}", expected="onset <= offset")
    if ap is not None and not on <= ap <= off:
        raise DataError(f"apex {ap} lies outside onset..offset {on}..{off}",
                        expected="onset <= apex <= offset")
    return on, off, ap


def _positive(name: str, value: Any) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        v = None
    if v is None or v != value or v < 1:
        raise ConfigError(f"{name} must be a positive integer (>= 1); got {value!r}")
    return v


def uniform(onset: int, offset: int, n: int) -> np.ndarray:
    """``n`` frame numbers spread evenly from ``onset`` to ``offset``, both included.

    Positions ``onset + k * (offset - onset) / (n - 1)`` rounded half up, so the first and last
    frames are always the onset and offset. When the clip has fewer than ``n`` frames, frames
    repeat in time order (``uniform(0, 2, 5)`` is ``[0, 1, 1, 2, 2]``; the two end frames cover
    half a step each, so they may repeat less often than middle ones): every clip reaches the
    length a model expects without inventing pixels (use :func:`interpolate` on the pixels for
    that). ``n = 1`` gives the middle frame.
    """
    on, off, _ = _check_clip(onset, offset)
    n = _positive("n", n)
    if n == 1:
        return np.array([(on + off) // 2], dtype=np.int64)
    pos = on + np.arange(n) * (off - on) / (n - 1)
    return np.floor(pos + 0.5).astype(np.int64)


def around_apex(onset: int, apex: int | None, offset: int, n: int) -> np.ndarray:
    """``n`` consecutive frames centred on the apex, shifted to lie inside ``[onset, offset]``.

    The window is ``apex - (n - 1) // 2 .. apex + n // 2`` (for even ``n`` the apex is the
    left of the two middle frames); where it crosses the onset or offset it is shifted
    inwards, so an apex at the clip's end gives the last ``n`` frames. A clip shorter than
    ``n`` falls back to :func:`uniform` (frames repeat). ``apex=None`` (corpora without apex
    annotations) uses the clip's middle frame.
    """
    on, off, ap = _check_clip(onset, offset, apex)
    n = _positive("n", n)
    if off - on + 1 < n:
        return uniform(on, off, n)
    if ap is None:
        ap = (on + off) // 2
    start = ap - (n - 1) // 2
    start = min(max(start, on), off - n + 1)
    return np.arange(start, start + n, dtype=np.int64)


def window_sparse(onset: int, apex: int | None, offset: int, window: int, stride: int) -> np.ndarray:
    """Key-frame windows plus a sparse sweep, sorted and unique.

    ``window`` frames at the onset (``onset .. onset + w - 1``), around the apex (centred as in
    :func:`around_apex`) and at the offset (``offset - w + 1 .. offset``), each clipped to the
    clip, plus every ``stride``-th frame from the onset (``onset, onset + s, ...``). The
    windows keep the frames where a micro-expression changes most densely sampled while the
    sweep covers the rest of the clip at low cost. ``apex=None`` uses the middle frame.

    Raises:
        ConfigError: ``window`` or ``stride`` is below 1 (the message names the value).
    """
    on, off, ap = _check_clip(onset, offset, apex)
    w = _positive("window", window)
    s = _positive("stride", stride)
    if ap is None:
        ap = (on + off) // 2
    a0 = ap - (w - 1) // 2
    parts = [np.arange(on, on + w), np.arange(a0, a0 + w), np.arange(off - w + 1, off + 1),
             np.arange(on, off + 1, s)]
    frames = np.unique(np.concatenate(parts))
    return frames[(frames >= on) & (frames <= off)].astype(np.int64)


def interpolate(frames: np.ndarray, length: int, method: str = "linear") -> np.ndarray:
    """Resample a stack of frames ``[T, ...]`` to ``length`` frames along time.

    Output frame ``j`` sits at time ``j * (T - 1) / (length - 1)`` of the input, so the first
    and last input frames are kept exactly. ``method='linear'`` blends the two neighbouring
    frames; ``'cubic'`` fits a cubic spline per pixel (needs ``T >= 4``; falls back to linear
    below that). The temporal interpolation model (TIM) of Zhou et al. (2011), used for
    micro-expressions by Pfister et al. (ICCV 2011), maps frames onto a curve learnt from the
    clip's own graph embedding; for the short, smooth clips of micro-expression corpora a
    linear or cubic path between the same frames is the common, much cheaper stand-in, and the
    one used here. Integer input is rounded and clipped back to its dtype; float input stays
    float. A single input frame is repeated.
    """
    arr = np.asarray(frames)
    if arr.ndim < 1 or arr.shape[0] < 1:
        raise DataError(f"cannot interpolate an empty stack of frames (shape {arr.shape})")
    length = _positive("length", length)
    if method not in ("linear", "cubic"):
        raise ConfigError(f"interpolation method {method!r}; expected 'linear' or 'cubic'")
    t_in = arr.shape[0]
    if t_in == 1 or length == 1:
        idx = np.zeros(length, dtype=np.int64) if t_in == 1 else np.array([0])
        return arr[idx].copy()
    pos = np.arange(length) * (t_in - 1) / (length - 1)
    work = arr.astype(np.float64)
    if method == "cubic" and t_in >= 4:
        from scipy.interpolate import CubicSpline

        out = CubicSpline(np.arange(t_in), work, axis=0)(pos)
    else:
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, t_in - 1)
        frac = (pos - lo).reshape((-1,) + (1,) * (arr.ndim - 1))
        out = work[lo] * (1.0 - frac) + work[hi] * frac
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(arr.dtype)
    if np.issubdtype(arr.dtype, np.floating):
        return out.astype(arr.dtype)
    return out


# -- registry -------------------------------------------------------------------------------
#: A sampler called through :func:`sample_frames`: ``(onset, apex, offset, **params) -> frames``.
Sampler = Callable[..., np.ndarray]

SAMPLERS: Registry[Sampler] = Registry("frame sampler")


@SAMPLERS.register("uniform", params={"n": int}, function=uniform,
                   help="n frames spread evenly from onset to offset (apex ignored)")
def _uniform(onset: int, apex: int | None, offset: int, n: int) -> np.ndarray:
    return uniform(onset, offset, n)


@SAMPLERS.register("apex", params={"n": int}, function=around_apex,
                   help="n consecutive frames centred on the apex, kept inside the clip")
def _apex(onset: int, apex: int | None, offset: int, n: int) -> np.ndarray:
    return around_apex(onset, apex, offset, n)


@SAMPLERS.register("window", params={"window": int, "stride": int}, function=window_sparse,
                   help="window frames at onset, apex and offset plus every stride-th frame")
def _window(onset: int, apex: int | None, offset: int, window: int, stride: int) -> np.ndarray:
    return window_sparse(onset, apex, offset, window, stride)


def sample_frames(name: str, onset: int, apex: int | None, offset: int, **params: Any) -> np.ndarray:
    """Frame numbers from the sampler registered as ``name`` (e.g. from a config).

    Raises:
        ConfigError: unknown sampler, or parameters it does not take / lacks.
    """
    fn = SAMPLERS.get(name)
    expected = SAMPLERS.meta(name)["params"]
    unknown = sorted(set(params) - set(expected))
    absent = sorted(set(expected) - set(params))
    if unknown or absent:
        raise ConfigError(f"frame sampler {name!r} takes parameters {sorted(expected)}; "
                          + (f"unknown {unknown}" if unknown else "") + ("; " if unknown and absent else "")
                          + (f"missing {absent}" if absent else ""))
    return fn(onset, apex, offset, **params)


__all__ = ["SAMPLERS", "around_apex", "interpolate", "sample_frames", "uniform", "window_sparse"]

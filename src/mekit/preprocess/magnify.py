"""Eulerian video magnification (Wu, Rubinstein, Shih, Guttag, Durand, Freeman: "Eulerian
Video Magnification for Revealing Subtle Changes in the World", SIGGRAPH 2012).

Micro-expressions move the face by a pixel or two; magnifying those motions before optical
flow or a network is an optional preprocessing stage in the literature (e.g. Le Ngo et al.,
"Eulerian emotion magnification for subtle expression recognition", ICASSP 2016). It is off by
default in mekit's configs: it changes the input distribution and can amplify noise.

The method, per clip:

1. decompose every frame into a Laplacian pyramid (``cv2.pyrDown`` / ``cv2.pyrUp``), each
   band keeping its lowpass residual at the top;
2. band-pass each pyramid coefficient over time (an ideal FFT band, or a zero-phase
   Butterworth filter from :mod:`scipy.signal`);
3. multiply the filtered signal by ``alpha``, attenuated at fine levels so that the
   magnified motion stays below the paper's bound ``(1 + alpha) * delta < lambda / 8``
   (Eq. 14): a level whose representative wavelength ``lambda`` is under ``lambda_c`` gets
   ``alpha_l = 2 * (lambda / (8 * delta) - 1)`` with ``delta = lambda_c / (8 * (1 + alpha))``,
   ``lambda`` starting at a third of the frame diagonal for the coarsest level and halving
   per level -- the constants of the authors' reference code
   (``amplify_spatial_lpyr_temporal_*.m``: ``lambda = sqrt(h^2 + w^2) / 3``,
   ``exaggeration_factor = 2``);
4. collapse the amplified bands (the pyramid is linear, so the collapsed change is added to
   the input frames) and clip to the input's value range.

Departures from the reference code, on purpose: colour channels are processed alike (the
reference works in YIQ and can attenuate chrominance; face crops here are mostly grey or RGB),
and the coarsest residual is amplified like any band unless ``amplify_residual=False``
(the reference zeroes it, which would discard a uniform intensity change).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

METHODS = ("ideal", "butterworth")

#: Reference-code constants (amplify_spatial_lpyr_temporal_ideal.m, Wu et al. 2012).
_LAMBDA_DIAGONAL_FRACTION = 1.0 / 3.0
_EXAGGERATION = 2.0


def max_levels(height: int, width: int) -> int:
    """Most pyramid levels (bands plus residual) that keep the residual at least 4 pixels wide."""
    return max(1, int(math.floor(math.log2(max(1, min(height, width)) / 4))) + 1)


def magnify(frames: np.ndarray, fps: float, low_hz: float, high_hz: float, alpha: float,
            levels: int | None = None, method: str = "ideal", lambda_c: float | None = 16.0, order: int = 1,
            amplify_residual: bool = True, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Magnify changes within ``[low_hz, high_hz]`` of a clip by about ``alpha``.

    Args:
        frames: ``[T, H, W]`` or ``[T, H, W, C]``, uint8 (or another integer type) or float.
        fps: the clip's frame rate (CASME II: 200).
        low_hz, high_hz: the temporal pass band in Hz, ``0 <= low < high <= fps / 2``
            (``low > 0`` for Butterworth).
        alpha: amplification of the band-passed signal; a change of amplitude ``a`` in the band
            comes out with amplitude about ``(1 + alpha) * a``. ``0`` returns the input.
        levels: pyramid levels including the lowpass residual, at most :func:`max_levels`;
            ``None`` uses that maximum, as the reference code does (``maxPyrHt``).
        method: ``'ideal'`` (FFT band: exact, assumes the clip repeats) or ``'butterworth'``
            (zero-phase ``sosfiltfilt`` of the given ``order``).
        lambda_c: the cutoff wavelength in pixels of the paper's Eq. 14; ``None`` applies
            ``alpha`` at every level.
        amplify_residual: amplify the pyramid's lowpass residual too (see module docstring).
        value_range: the range to clip the output to; default: the dtype's range for integers,
            ``[0, 1]`` for floats within it, ``[0, 255]`` for floats within that, else the
            input's own min and max widened by the magnified change (no clipping).

    Returns:
        The magnified frames, same shape and dtype as the input.

    Raises:
        ConfigError: a frequency, alpha, level count or method outside what is accepted.
        DataError: frames that are not a stack of at least 2 images.
    """
    import cv2

    arr = np.asarray(frames)
    if arr.ndim not in (3, 4) or arr.shape[0] < 2:
        raise DataError(f"frames of shape {arr.shape}",
                        expected="[T, H, W] or [T, H, W, C] with at least 2 frames")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"frames of dtype {arr.dtype}", expected="an integer or float array")
    t, h, w = arr.shape[:3]
    if method not in METHODS:
        raise ConfigError(f"magnification method {method!r}; expected one of {', '.join(METHODS)}")
    fps = float(fps)
    if not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive number; got {fps!r}")
    nyq = fps / 2
    if not (0 <= low_hz < high_hz <= nyq) or (method == "butterworth" and (low_hz <= 0 or high_hz >= nyq)):
        rule = "0 < low_hz < high_hz < fps/2" if method == "butterworth" else "0 <= low_hz < high_hz <= fps/2"
        raise ConfigError(f"pass band {low_hz}..{high_hz} Hz at {fps:g} fps; expected {rule} "
                          f"(fps/2 = {nyq:g})")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ConfigError(f"alpha must be a number >= 0; got {alpha!r}")
    top = max_levels(h, w)
    levels = top if levels is None else levels
    if not isinstance(levels, (int, np.integer)) or not 1 <= levels <= top:
        raise ConfigError(f"levels={levels!r} for {h}x{w} frames; expected 1..{top}")
    if lambda_c is not None and not lambda_c > 0:
        raise ConfigError(f"lambda_c must be > 0 or None; got {lambda_c!r}")
    if alpha == 0:
        return arr.copy()

    x = arr.astype(np.float32)
    squeeze = x.ndim == 3
    if squeeze:
        x = x[..., None]

    # 1. Laplacian pyramid of every frame; pyr[l] is [T, h_l, w_l, C], pyr[-1] the residual.
    pyr = _laplacian_stack(x, levels, cv2)

    # 2-3. Temporal band-pass and per-level amplification.
    gains = level_gains(h, w, levels, alpha, lambda_c, amplify_residual)
    bands = []
    for band, gain in zip(pyr, gains):
        if gain == 0:
            bands.append(np.zeros_like(band))
            continue
        bands.append(gain * _bandpass(band, fps, low_hz, high_hz, method, order))

    # 4. Collapse the amplified change and add it to the input.
    delta = _collapse(bands, cv2)
    out = x + delta
    if squeeze:
        out = out[..., 0]
    lo, hi = _value_range(arr, value_range, out)
    out = np.clip(out, lo, hi)
    if np.issubdtype(arr.dtype, np.integer):
        return np.rint(out).astype(arr.dtype)
    return out.astype(arr.dtype)


def level_gains(height: int, width: int, levels: int, alpha: float, lambda_c: float | None,
                amplify_residual: bool = True) -> list[float]:
    """The amplification applied to each pyramid level, finest first (see module docstring)."""
    if lambda_c is None:
        gains = [float(alpha)] * levels
    else:
        delta = lambda_c / 8.0 / (1.0 + alpha)
        lam = math.hypot(height, width) * _LAMBDA_DIAGONAL_FRACTION  # coarsest level
        gains = []
        for _ in range(levels):  # coarsest to finest, as the reference code walks them
            cur = (lam / delta / 8.0 - 1.0) * _EXAGGERATION
            gains.append(float(min(alpha, max(cur, 0.0))))
            lam /= 2.0
        gains.reverse()
    if not amplify_residual:
        gains[-1] = 0.0
    return gains


def _laplacian_stack(x: np.ndarray, levels: int, cv2) -> list[np.ndarray]:
    t = x.shape[0]
    per_level: list[list[np.ndarray]] = [[] for _ in range(levels)]
    for i in range(t):
        g = x[i]
        for lev in range(levels - 1):
            down = _as3(cv2.pyrDown(g), g.shape[-1])
            up = _as3(cv2.pyrUp(down, dstsize=(g.shape[1], g.shape[0])), g.shape[-1])
            per_level[lev].append(g - up)
            g = down
        per_level[-1].append(g)
    return [np.stack(level) for level in per_level]


def _collapse(bands: list[np.ndarray], cv2) -> np.ndarray:
    out = bands[-1]
    for band in reversed(bands[:-1]):
        h, w = band.shape[1:3]
        out = np.stack([_as3(cv2.pyrUp(f, dstsize=(w, h)), band.shape[-1]) for f in out]) + band
    return out


def _as3(img: np.ndarray, channels: int) -> np.ndarray:
    """OpenCV drops a trailing channel axis of 1; put it back."""
    return img[..., None] if img.ndim == 2 and channels == 1 else img


def _bandpass(band: np.ndarray, fps: float, low: float, high: float, method: str, order: int) -> np.ndarray:
    t = band.shape[0]
    if method == "ideal":
        spec = np.fft.rfft(band, axis=0)
        freqs = np.fft.rfftfreq(t, d=1.0 / fps)
        keep = (freqs >= low) & (freqs <= high)
        spec[~keep] = 0
        return np.fft.irfft(spec, n=t, axis=0).astype(np.float32)
    from scipy.signal import butter, sosfiltfilt

    sos = butter(order, [low, high], btype="bandpass", fs=fps, output="sos")
    # Remove the per-pixel mean first: the filter rejects DC anyway, and this keeps its edge
    # transients small on short clips. sosfiltfilt's default padding must fit the clip.
    centred = band - band.mean(axis=0, keepdims=True)
    padlen = min(3 * (2 * len(sos) + 1), t - 1)
    return sosfiltfilt(sos, centred, axis=0, padlen=padlen).astype(np.float32)


def _value_range(arr: np.ndarray, given: tuple[float, float] | None, out: np.ndarray) -> tuple[float, float]:
    if given is not None:
        lo, hi = float(given[0]), float(given[1])
        if not lo < hi:
            raise ConfigError(f"value_range {given!r}: expected (low, high) with low < high")
        return lo, hi
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return float(info.min), float(info.max)
    amin, amax = float(arr.min()), float(arr.max())
    if amin >= 0 and amax <= 1:
        return 0.0, 1.0
    if amin >= 0 and amax <= 255:
        return 0.0, 255.0
    return float(out.min()), float(out.max())


__all__ = ["METHODS", "level_gains", "magnify", "max_levels"]

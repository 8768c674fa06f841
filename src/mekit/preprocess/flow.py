"""Dense optical flow between two face crops, optical strain, and the u/v/strain input stack.

Conventions (the same for every method, checked by the tests with a known shift):

- inputs are greyscale (or colour, converted) crops of the same size, uint8 or float;
- ``flow[y, x] = (u, v)`` in pixels of the crop such that ``prev[y, x] ~= next[y + v, x + u]``:
  content that moves right between ``prev`` and ``next`` has positive ``u``, content that moves
  down has positive ``v`` (OpenCV's convention);
- arrays are ``float32``.

Methods are registered in :data:`FLOW_METHODS` under stable names (``tvl1``, ``farneback``,
``dis``); each takes keyword parameters that override its defaults. OpenCV flow objects are
created once per process and per parameter set, then reused: creating a TV-L1 object costs
about as much as a small flow computation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from mekit.errors import ConfigError
from mekit.registry import Registry

log = logging.getLogger(__name__)

FlowFn = Callable[..., np.ndarray]

#: name -> function(prev_grey_uint8, next_grey_uint8, **params) -> flow[H, W, 2] float32
FLOW_METHODS: Registry[FlowFn] = Registry("optical flow method")

#: TV-L1 defaults. OpenCV's own defaults (nscales=5, warps=5, epsilon=0.01) cost about 115 ms
#: per 128x128 pair on the project's reference machine; nscales=3, warps=3, epsilon=0.05 cost
#: about 18 ms (53 ms at 224 px). Micro-expression displacements are sub-pixel to a few pixels
#: at 128 px, so three pyramid levels (coarsest at 1/4 scale with scaleStep 0.5) still cover
#: them. Measured on a textured 20 px patch moved by a known amount in a 64 px crop: 0.8 px and
#: 1.2 px shifts are recovered within 0.05 px (like DIS and Farneback), but a 2.4 px shift reads
#: as 2.04 px (OpenCV's defaults: 2.32 px). Pass ``nscales=5, warps=5, epsilon=0.01`` for
#: OpenCV's defaults where motions are larger (macro-expressions, small crops of big faces).
TVL1_DEFAULTS: dict[str, Any] = {"nscales": 3, "warps": 3, "epsilon": 0.05}

#: Farneback defaults: the values of OpenCV's tutorial, used by most MER repositories.
FARNEBACK_DEFAULTS: dict[str, Any] = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3,
                                      "poly_n": 5, "poly_sigma": 1.2, "flags": 0}

#: DIS defaults: OpenCV's MEDIUM preset (about 1 ms per 128 px pair); ``preset`` may be
#: 'ultrafast', 'fast' or 'medium'; other keys set the object's properties (``finest_scale``,
#: ``patch_size``, ``patch_stride``, ``gradient_descent_iterations``,
#: ``variational_refinement_iterations``, ``variational_refinement_alpha``, ...).
DIS_DEFAULTS: dict[str, Any] = {"preset": "medium"}

# Per-process store of created OpenCV flow objects, keyed by method and parameters. Each
# worker process of the pipeline has its own (objects are not shared across processes).
_OBJECTS: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def _key(method: str, params: dict[str, Any]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    return method, tuple(sorted((k, repr(v)) for k, v in params.items()))


def _to_grey_u8(img: np.ndarray, name: str) -> np.ndarray:
    """Greyscale uint8 view of an image (colour assumed RGB; floats in [0, 1] or [0, 255])."""
    import cv2

    a = np.asarray(img)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3:
        if a.shape[2] == 4:
            a = a[..., :3]
        if a.shape[2] != 3:
            raise ValueError(f"{name}: expected a greyscale or RGB image, got shape {a.shape}")
        a = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D greyscale or HxWx3 image, got shape {a.shape}")
    if a.dtype != np.uint8:
        f = a.astype(np.float32)
        if f.size and float(np.nanmax(f)) <= 1.0 + 1e-6:
            f = f * 255.0
        a = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def _check_params(method: str, params: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} for flow method {method!r}; "
                          f"expected some of {sorted(allowed)}")


_TVL1_PARAMS = {"tau", "lambda_", "theta", "nscales", "warps", "epsilon", "innnerIterations",
                "outerIterations", "scaleStep", "gamma", "medianFiltering", "useInitialFlow"}


@FLOW_METHODS.register("tvl1", help="Dual TV-L1 (Zach et al. 2007), OpenCV contrib; fast defaults "
                                    "nscales=3, warps=3, epsilon=0.05")
def tvl1(prev: np.ndarray, nxt: np.ndarray, **params: Any) -> np.ndarray:
    """TV-L1 flow via ``cv2.optflow.DualTVL1OpticalFlow_create`` (the field's standard)."""
    import cv2

    p = {**TVL1_DEFAULTS, **params}
    _check_params("tvl1", p, _TVL1_PARAMS)
    k = _key("tvl1", p)
    obj = _OBJECTS.get(k)
    if obj is None:
        if not hasattr(cv2, "optflow"):
            raise ConfigError("TV-L1 flow needs cv2.optflow (opencv-contrib-python-headless)")
        obj = _OBJECTS[k] = cv2.optflow.DualTVL1OpticalFlow_create(**p)
    return obj.calc(prev, nxt, None)


@FLOW_METHODS.register("farneback", help="Farneback polynomial expansion (cv2.calcOpticalFlowFarneback)")
def farneback(prev: np.ndarray, nxt: np.ndarray, **params: Any) -> np.ndarray:
    """Farneback flow; parameters as :func:`cv2.calcOpticalFlowFarneback`'s keywords."""
    import cv2

    p = {**FARNEBACK_DEFAULTS, **params}
    _check_params("farneback", p, set(FARNEBACK_DEFAULTS))
    return cv2.calcOpticalFlowFarneback(prev, nxt, None, **p)


_DIS_PRESETS = {"ultrafast": "DISOPTICAL_FLOW_PRESET_ULTRAFAST", "fast": "DISOPTICAL_FLOW_PRESET_FAST",
                "medium": "DISOPTICAL_FLOW_PRESET_MEDIUM"}
_DIS_SETTERS = {"finest_scale": "setFinestScale", "patch_size": "setPatchSize",
                "patch_stride": "setPatchStride",
                "gradient_descent_iterations": "setGradientDescentIterations",
                "variational_refinement_iterations": "setVariationalRefinementIterations",
                "variational_refinement_alpha": "setVariationalRefinementAlpha",
                "variational_refinement_delta": "setVariationalRefinementDelta",
                "variational_refinement_gamma": "setVariationalRefinementGamma",
                "use_mean_normalization": "setUseMeanNormalization",
                "use_spatial_propagation": "setUseSpatialPropagation"}


@FLOW_METHODS.register("dis", help="Dense Inverse Search (Kroeger et al. 2016), cv2.DISOpticalFlow; fastest")
def dis(prev: np.ndarray, nxt: np.ndarray, **params: Any) -> np.ndarray:
    """DIS flow via ``cv2.DISOpticalFlow_create`` with a preset plus optional property overrides."""
    import cv2

    p = {**DIS_DEFAULTS, **params}
    _check_params("dis", p, {"preset", *_DIS_SETTERS})
    k = _key("dis", p)
    obj = _OBJECTS.get(k)
    if obj is None:
        preset = str(p["preset"]).lower()
        if preset not in _DIS_PRESETS:
            raise ConfigError(f"unknown DIS preset {p['preset']!r}; expected one of {sorted(_DIS_PRESETS)}")
        obj = cv2.DISOpticalFlow_create(getattr(cv2, _DIS_PRESETS[preset]))
        for name, setter in _DIS_SETTERS.items():
            if name in p:
                getattr(obj, setter)(p[name])
        _OBJECTS[k] = obj
    return obj.calc(prev, nxt, None)


def compute_flow(prev: np.ndarray, next: np.ndarray, method: str = "tvl1", **params: Any) -> np.ndarray:  # noqa: A002
    """Dense flow from ``prev`` to ``next`` (``float32[H, W, 2]``, pixels; see the module's conventions).

    Colour inputs (RGB) are converted to grey; float inputs in [0, 1] are scaled to 0..255.
    ``params`` override the method's defaults (:data:`TVL1_DEFAULTS`, :data:`FARNEBACK_DEFAULTS`,
    :data:`DIS_DEFAULTS`); unknown names raise :class:`~mekit.errors.ConfigError`.
    """
    fn = FLOW_METHODS.get(method)
    a = _to_grey_u8(prev, "prev")
    b = _to_grey_u8(next, "next")
    if a.shape != b.shape:
        raise ValueError(f"flow frames differ in size: {a.shape} vs {b.shape}")
    flow = fn(a, b, **params)
    return np.asarray(flow, dtype=np.float32)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Magnitude of the optical strain tensor of a flow field (``float32[H, W]``).

    With ``u, v`` the flow components, the infinitesimal strain tensor has
    ``e_xx = du/dx``, ``e_yy = dv/dy`` and ``e_xy = e_yx = (du/dy + dv/dx) / 2``; its magnitude is
    ``sqrt(e_xx^2 + e_yy^2 + e_xy^2 + e_yx^2) = sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2)``, which is the
    ``sqrt(u_x^2 + v_y^2 + 0.5 (u_y + v_x)^2)`` of Shreve et al. (2011) as used by OFF-ApexNet
    (Gan et al. 2019), STSTNet (Liong et al. 2019) and HTNet's published preprocessing.
    Derivatives are central differences (one-sided at the borders, :func:`numpy.gradient`), where
    those repositories use forward differences; the difference is a half-pixel shift.
    """
    f = np.asarray(flow, dtype=np.float32)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"expected a flow field of shape (H, W, 2), got {f.shape}")
    if min(f.shape[:2]) < 2:
        return np.zeros(f.shape[:2], np.float32)
    u_y, u_x = np.gradient(f[..., 0])
    v_y, v_x = np.gradient(f[..., 1])
    e_xy = 0.5 * (u_y + v_x)
    return np.sqrt(u_x ** 2 + v_y ** 2 + 2.0 * e_xy ** 2).astype(np.float32)


#: Normalisations of :func:`flow_stack`.
NORMALISATIONS = ("minmax", "fixed", "none")


def flow_stack(flow: np.ndarray, strain: np.ndarray | None = None, size: int = 28,
               normalise: str = "minmax", flow_scale: float = 0.05,
               strain_scale: float = 0.1) -> np.ndarray:
    """The standard 3-channel ``(u, v, strain)`` network input, ``float32[3, size, size]``.

    The channels are resized (area interpolation when shrinking, linear when enlarging) to
    ``size x size`` (28 for STSTNet/HTNet-style nets, 48, 112 or 224 for CNN backbones; any
    size works). ``normalise``:

    - ``'minmax'`` (default): each channel of each sample min-max scaled to [0, 1], exactly as
      the published STSTNet/HTNet preprocessing does (``perChannelNormalize`` after the resize).
      It discards the absolute amplitude, so a faint and a strong expression look alike.
    - ``'fixed'``: a fixed scale that keeps amplitudes comparable across samples: ``u`` and ``v``
      are expressed as fractions of the flow crop's width, divided by ``flow_scale`` (default
      0.05, i.e. 5 % of the crop width maps to 1) and mapped from [-1, 1] to [0, 1] (0.5 = no
      motion); strain (dimensionless) is divided by ``strain_scale`` and clipped to [0, 1].
    - ``'none'``: raw values (pixels of the flow crop, strain).

    ``strain`` defaults to :func:`optical_strain` of ``flow``.
    """
    import cv2

    f = np.asarray(flow, dtype=np.float32)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"expected a flow field of shape (H, W, 2), got {f.shape}")
    if normalise not in NORMALISATIONS:
        raise ConfigError(f"unknown flow normalisation {normalise!r}; expected one of {NORMALISATIONS}")
    size = int(size)
    if size < 1:
        raise ConfigError(f"flow stack size must be a positive number of pixels (got {size})")
    s = optical_strain(f) if strain is None else np.asarray(strain, dtype=np.float32)
    if s.shape != f.shape[:2]:
        raise ValueError(f"strain shape {s.shape} does not match flow shape {f.shape[:2]}")
    h, w = s.shape
    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    chans = np.dstack([f, s])
    out = cv2.resize(chans, (size, size), interpolation=interp) if (h, w) != (size, size) else chans
    out = np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)
    if normalise == "minmax":
        lo = out.reshape(3, -1).min(axis=1)[:, None, None]
        hi = out.reshape(3, -1).max(axis=1)[:, None, None]
        # a channel that is constant up to float rounding (resizing a uniform field leaves
        # ~1e-7 ripples) maps to 0 rather than having its rounding noise stretched to [0, 1]
        varies = (hi - lo) > 1e-5 * np.maximum(np.abs(lo), np.abs(hi))
        rng = np.where(varies, hi - lo, 1.0)
        out = np.where(varies, (out - lo) / rng, 0.0).astype(np.float32)
    elif normalise == "fixed":
        out[:2] = np.clip(out[:2] / (w * flow_scale), -1.0, 1.0) * 0.5 + 0.5
        out[2] = np.clip(out[2] / strain_scale, 0.0, 1.0)
    return out


def flow_from_image(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Onset->apex flow and strain recovered from a precomputed flow image (STSTNet/HTNet form).

    ``image`` is ``float32[3, H, W]`` in [0, 1], channels (u, v, strain), as
    :func:`mekit.preprocess.io.read_flow_image` returns it. The published sets (and those
    :func:`mekit.preprocess.export.export_flow_image_set` writes) scale each channel of each
    sample separately to [0, 1] (``flow_stack(normalise='minmax')``, STSTNet's and HTNet's
    ``perChannelNormalize``), so only part of the flow survives and this is what is rebuilt:

    - ``u`` and ``v``: the channel minus its median, in units of that sample's own u (or v)
      range. The median stands for zero motion because most of a face does not move between
      onset and apex. Lost: the absolute magnitude (pixels), the zero point (estimated), the
      relative scale of u and v (each is stretched to [0, 1] on its own, so directions are
      skewed when their ranges differ), the resolution (the image's, 28x28 in the published
      sets, instead of the face crop's) and the 8-bit quantisation (1/255 of the range).
    - ``strain``: the channel as it is (0 = the sample's least strain, 1 = its most).

    Returns ``(uv float32[H, W, 2], strain float32[H, W])``.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f"expected a flow image of shape (3, H, W), got {img.shape}")
    uv = img[:2] - np.median(img[:2].reshape(2, -1), axis=1)[:, None, None]
    return np.ascontiguousarray(uv.transpose(1, 2, 0)), np.ascontiguousarray(img[2])


def flow_to_hsv_image(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Colour rendering of a flow field, ``uint8[H, W, 3]`` RGB (hue = direction, value = speed).

    The usual HSV coding (OpenCV's tutorial; also the input of ResNet-on-flow-image baselines):
    hue is the angle of ``(u, v)`` (0 = right, red), saturation is full, value is the magnitude
    divided by ``max_magnitude`` (default: this field's maximum, so the strongest motion is
    brightest) and clipped to 1. Zero flow is black.
    """
    import cv2

    f = np.asarray(flow, dtype=np.float32)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"expected a flow field of shape (H, W, 2), got {f.shape}")
    mag, ang = cv2.cartToPolar(f[..., 0], f[..., 1], angleInDegrees=True)
    top = float(mag.max()) if max_magnitude is None else float(max_magnitude)
    hsv = np.empty(f.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = (ang / 2.0).astype(np.uint8) % 180  # OpenCV hue runs 0..179
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / top * 255.0, 0, 255).astype(np.uint8) if top > 0 else 0
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def flow_method_help() -> dict[str, str]:
    """Registered flow methods with their one-line help (for menus and ``--help``)."""
    return {name: str(FLOW_METHODS.meta(name).get("help", "")) for name in FLOW_METHODS.names()}


__all__ = ["FLOW_METHODS", "TVL1_DEFAULTS", "FARNEBACK_DEFAULTS", "DIS_DEFAULTS", "NORMALISATIONS",
           "compute_flow", "optical_strain", "flow_stack", "flow_from_image", "flow_to_hsv_image", "flow_method_help"]

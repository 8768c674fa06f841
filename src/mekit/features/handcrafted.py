"""Hand-crafted descriptors for mekit's classical pipelines: pure functions on arrays.

Each function takes pixels, flow fields or landmarks that preprocessing has already
produced and returns one flat ``float32`` vector; none reads files or caches anything, so
an extractor (see :mod:`mekit.features`) can call them per clip and stack the rows into a
:class:`~mekit.features.base.FeatureSet`.

- :func:`lbp_top`: local binary patterns on three orthogonal planes of a greyscale clip
  (Zhao & Pietikäinen 2007), the texture baseline of CASME II, SMIC and SAMM.
- :func:`hog_descriptor`: histograms of oriented gradients of one image (Dalal & Triggs
  2005) through :func:`skimage.feature.hog`.
- :func:`hoof_sequence`: HOOF of several flow fields (e.g. onset->apex and apex->offset),
  concatenated; it reuses :func:`mekit.features.flow_features.hoof_descriptor`, which is
  also mekit's "histogram of oriented flow on a grid".
- :func:`mdmo`: Main Directional Mean Optical-flow per facial region (Liu et al. 2016).
- :func:`landmark_displacement`: onset->apex landmark displacements normalised by the
  inter-ocular distance.

Conventions shared with :mod:`mekit.preprocess`: arrays are indexed ``[row, column]``
(``y``, ``x``); a flow field is ``[H, W, 2]`` holding ``(u, v)`` = (rightward, downward)
displacement in pixels, so an angle of ``+pi/2`` is downward motion on the image; ROIs are
integer ``(x0, y0, x1, y1)`` pixel boxes with ``x1``/``y1`` exclusive, as
:meth:`mekit.preprocess.face.FaceAlignment.rois` returns them; "left" and "right" are the
subject's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from mekit.errors import ConfigError, DataError
from mekit.features.flow_features import hoof_descriptor

__all__ = [
    "LBP_METHODS",
    "MEDIAPIPE_EYE_CORNERS",
    "IBUG68_EYE_CORNERS",
    "lbp_top",
    "lbp_top_length",
    "hog_descriptor",
    "hoof_sequence",
    "mdmo",
    "landmark_displacement",
]

#: LBP code mappings, named as in :func:`skimage.feature.local_binary_pattern`:
#: ``"uniform"`` is the rotation-invariant uniform mapping (riu2, ``P + 2`` bins; Ojala et al.
#: 2002), ``"nri_uniform"`` the uniform mapping without rotation invariance (u2,
#: ``P * (P - 1) + 3`` bins, 59 for ``P = 8``; Ahonen et al. 2006, the one Zhao &
#: Pietikäinen 2007 use), ``"default"`` the raw code (``2**P`` bins).
LBP_METHODS = ("uniform", "nri_uniform", "default")

#: MediaPipe face mesh (468 points, or 478 with ``refine_landmarks``): outer eye corners
#: (exocanthion), subject's right then left; 133 and 362 are the inner corners. On
#: scikit-image's ``astronaut()`` photograph ``mp.solutions.face_mesh`` gives
#: x(33) < x(133) < x(362) < x(263).
MEDIAPIPE_EYE_CORNERS = (33, 263)
#: iBUG 300-W 68-point scheme (dlib, OpenFace; 0-based): outer eye corners, subject's
#: right then left.
IBUG68_EYE_CORNERS = (36, 45)


# ---------------------------------------------------------------------------------------
# LBP-TOP
# ---------------------------------------------------------------------------------------
def _triple(name: str, value, kind: type) -> tuple:
    """``value`` as three numbers (one number is used for all three)."""
    vals = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else (value,) * 3
    if len(vals) != 3:
        raise ConfigError(f"{name} must be one number or three; got {value!r}")
    try:
        out = tuple(kind(v) for v in vals)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be numbers; got {value!r}") from None
    if any(o != v for o, v in zip(out, vals)) and kind is int:
        raise ConfigError(f"{name} must be integers; got {value!r}")
    return out


def _grid(grid) -> tuple[int, int]:
    g = tuple(grid) if isinstance(grid, (tuple, list)) else (grid, grid)
    if len(g) != 2 or any(not isinstance(v, (int, np.integer)) or v < 1 for v in g):
        raise ConfigError(f"grid must be a positive integer or (rows, columns); got {grid!r}")
    return int(g[0]), int(g[1])


@lru_cache(maxsize=None)
def _lbp_lut(n_points: int, method: str) -> tuple[np.ndarray, int]:
    """Lookup table raw code -> bin for ``method``, and the number of bins.

    Reproduces :func:`skimage.feature.local_binary_pattern` exactly (bit ``p`` is neighbour
    ``p`` at angle ``2 pi p / P``; the same numbering of uniform patterns), which a test
    checks; a table lets the whole volume be mapped with one fancy-indexing step.
    """
    P = n_points
    codes = np.arange(2 ** P)
    if method == "default":
        return codes.astype(np.int64), 2 ** P
    bits = (codes[:, None] >> np.arange(P)) & 1
    changes = np.count_nonzero(np.diff(bits, axis=1), axis=1)  # skimage counts P - 1 pairs
    uniform = changes <= 2                                   # (same set as circular U <= 2)
    n_ones = bits.sum(axis=1)
    if method == "uniform":
        return np.where(uniform, n_ones, P + 1).astype(np.int64), P + 2
    # nri_uniform: 0 for no ones, P(P-1)+1 for all ones, 1 + (n-1)P + rotation otherwise,
    # P(P-1)+2 for non-uniform codes.
    first_one = np.argmax(bits == 1, axis=1)
    first_zero = np.argmax(bits == 0, axis=1)
    rot = np.where(first_one == 0, n_ones - first_zero, P - first_one)
    lut = np.where(n_ones == 0, 0, np.where(n_ones == P, P * (P - 1) + 1, 1 + (n_ones - 1) * P + rot))
    lut = np.where(uniform, lut, P * (P - 1) + 2)
    return lut.astype(np.int64), P * (P - 1) + 3


# Plane -> (axis of the code image's rows, axis of its columns) in a [T, H, W] volume.
_PLANES = {"xy": (1, 2), "xt": (0, 2), "yt": (0, 1)}


def _plane_codes(vol: np.ndarray, margins: tuple[int, int, int], plane: str,
                 r_rows: float, r_cols: float, n_points: int) -> np.ndarray:
    """Raw LBP codes of every interior voxel of ``vol`` in one plane, all slices at once.

    Neighbour ``p`` of a centre sits at ``(-r_rows sin a_p, r_cols cos a_p)``, ``a_p = 2 pi
    p / P``, in (row, column) of the plane, offsets rounded to 5 decimals and bilinearly
    interpolated, as skimage does; with ``r_rows != r_cols`` the circle becomes the ellipse
    of Zhao & Pietikäinen 2007. Interpolation is written ``a + f (b - a)`` so that equal
    grey levels interpolate to exactly that level (a flat patch gives all-ones codes).
    """
    T, H, W = vol.shape
    mt, my, mx = margins
    centre_sl = (slice(mt, T - mt), slice(my, H - my), slice(mx, W - mx))
    centre = vol[centre_sl]
    row_ax, col_ax = _PLANES[plane]

    def shifted(dr: int, dc: int) -> np.ndarray:
        sl = list(centre_sl)
        for ax, d in ((row_ax, dr), (col_ax, dc)):
            s = sl[ax]
            sl[ax] = slice(s.start + d, s.stop + d)
        return vol[tuple(sl)]

    codes = np.zeros(centre.shape, dtype=np.int64)
    for p in range(n_points):
        a = 2.0 * math.pi * p / n_points
        dr = round(-r_rows * math.sin(a), 5)
        dc = round(r_cols * math.cos(a), 5)
        r0, c0 = math.floor(dr), math.floor(dc)
        fr, fc = dr - r0, dc - c0
        top = shifted(r0, c0)
        if fc:
            top = top + fc * (shifted(r0, c0 + 1) - top)
        if fr:
            bottom = shifted(r0 + 1, c0)
            if fc:
                bottom = bottom + fc * (shifted(r0 + 1, c0 + 1) - bottom)
            top = top + fr * (bottom - top)
        codes |= (top >= centre).astype(np.int64) << p
    return codes


def _lbp_params(n_points, method: str) -> tuple[int, ...]:
    if method not in LBP_METHODS:
        raise ConfigError(f"unknown LBP method {method!r}; expected one of {', '.join(LBP_METHODS)}")
    pts = _triple("n_points", n_points, int)
    if any(not 1 <= p <= 16 for p in pts):
        raise ConfigError(f"n_points must be between 1 and 16; got {n_points!r}")
    return pts


def lbp_top_length(grid=(5, 5), n_points=8, method: str = "uniform") -> int:
    """Length of the :func:`lbp_top` vector for these parameters."""
    gy, gx = _grid(grid)
    return gy * gx * sum(_lbp_lut(p, method)[1] for p in _lbp_params(n_points, method))


def lbp_top(frames: np.ndarray, grid=(5, 5), radius=(1, 1, 1), n_points=8,
            method: str = "uniform") -> np.ndarray:
    """LBP-TOP of a greyscale clip ``frames`` [T, H, W]: block histograms, concatenated.

    Local binary patterns on three orthogonal planes (Zhao & Pietikäinen, "Dynamic texture
    recognition using local binary patterns with an application to facial expressions",
    IEEE TPAMI 29(6), 2007): every voxel gets one LBP code in its XY plane (appearance) and
    one in each of its XT and YT planes (horizontal and vertical motion texture). The
    face is cut into a ``grid`` of blocks (rows, columns); each block contributes an XY, an
    XT and a YT histogram, each normalised to sum 1, so the vector is ordered
    ``[block (row-major)][plane xy, xt, yt][bin]`` and has :func:`lbp_top_length` values.

    ``radius`` is ``(R_X, R_Y, R_T)`` (one number for all three): the XY neighbourhood is an
    ellipse with radii ``R_X``, ``R_Y``, the XT one ``R_X``, ``R_T`` and the YT one ``R_Y``,
    ``R_T``. ``n_points`` is ``P`` for all planes or ``(P_XY, P_XT, P_YT)``; ``method``
    is one of :data:`LBP_METHODS` (default ``"uniform"``: riu2, 10 bins for ``P = 8``).

    Literature settings: CASME II's baseline (Yan et al., PLoS ONE 9(1) e86041, 2014)
    used 5x5 blocks and radii ``R_X = R_Y = 1``, ``R_T = 4``, i.e. ``grid=(5, 5),
    radius=(1, 1, 4)``, which needs at least 9 frames. mekit's defaults (5x5 blocks,
    radius 1, 8 points, riu2) are the plain operator.

    Which voxels count: as in Zhao's reference implementation, only centres whose whole
    neighbourhood lies inside the clip (``ceil(R)`` voxels from every face of the volume),
    the same set for the three planes; so XY histograms come from frames ``ceil(R_T)`` ..
    ``T - ceil(R_T) - 1`` and a clip needs at least ``2 ceil(R_T) + 1`` frames. A block
    belongs to the voxels whose centre lies in it (blocks split the full ``H`` x ``W``
    frame, like :func:`~mekit.features.flow_features.hoof_descriptor`'s grid).

    Implementation: skimage's ``local_binary_pattern`` has one circular radius per image,
    so it cannot give LBP-TOP's elliptical XT/YT neighbourhoods (``R_T != R_X``); the codes
    are computed here with numpy on the whole volume at once (no loop over slices, and
    every XT/YT slice is used, none sampled), reproducing skimage's codes and bin numbering
    exactly where the radii are equal (tested). Measured on a shared 2-core machine (one
    thread): 6-15 ms for a [20, 64, 64] uint8 clip and 40-110 ms for [30, 128, 128]
    depending on load; 244 clips of [30, 128, 128] with radius ``(1, 1, 4)`` in about 13 s.
    Integer (``uint8``) frames avoid ties lost to rounding; float frames are used as given.
    """
    pts = _lbp_params(n_points, method)
    vol = np.asarray(frames)
    if vol.ndim != 3 or not (np.issubdtype(vol.dtype, np.integer) or np.issubdtype(vol.dtype, np.floating)):
        raise DataError("lbp_top needs a greyscale clip", value=f"array {vol.shape} {vol.dtype}",
                        expected="a numeric [T, H, W] array (convert colour frames to grey first)")
    gy, gx = _grid(grid)
    rx, ry, rt = _triple("radius", radius, float)
    if min(rx, ry, rt) <= 0:
        raise ConfigError(f"radius must be positive; got {radius!r}")
    margins = (math.ceil(rt), math.ceil(ry), math.ceil(rx))
    T, H, W = vol.shape
    for name, size, m in (("frames", T, margins[0]), ("rows", H, margins[1]), ("columns", W, margins[2])):
        if size < 2 * m + 1:
            raise DataError(f"clip too small for LBP-TOP with radius (R_X, R_Y, R_T) = {(rx, ry, rt)}",
                            value=f"{size} {name}", expected=f"at least {2 * m + 1} {name}")
    if gy > H or gx > W:
        raise ConfigError(f"grid {(gy, gx)} has more blocks than the frame {H}x{W} has pixels")
    # Integer grey levels are exact in float32, which halves memory traffic (about 2.8x
    # faster than float64 on 30x128x128, with identical codes on the tests' random clips);
    # float frames keep float64 so that their small differences survive.
    int_input = np.issubdtype(vol.dtype, np.integer) and vol.dtype.itemsize <= 2
    vol = vol.astype(np.float32 if int_input else np.float64, copy=False)
    if not np.isfinite(vol).all():
        raise DataError("clip has NaN or infinite grey levels", expected="finite values")

    # Block of every interior centre, from the frame-wide grid.
    mt, my, mx = margins
    ys = np.linspace(0, H, gy + 1).astype(int)
    xs = np.linspace(0, W, gx + 1).astype(int)
    by = np.searchsorted(ys, np.arange(my, H - my), side="right") - 1
    bx = np.searchsorted(xs, np.arange(mx, W - mx), side="right") - 1
    block = (by[:, None] * gx + bx[None, :])[None]            # [1, Hi, Wi]
    n_blocks = gy * gx

    per_plane = []
    for plane, p, (r_rows, r_cols) in zip(("xy", "xt", "yt"), pts, ((ry, rx), (rt, rx), (rt, ry))):
        lut, n_bins = _lbp_lut(p, method)
        bins = lut[_plane_codes(vol, margins, plane, r_rows, r_cols, p)]
        hist = np.bincount((block * n_bins + bins).ravel(), minlength=n_blocks * n_bins)
        hist = hist.reshape(n_blocks, n_bins).astype(np.float64)
        total = hist.sum(axis=1, keepdims=True)
        per_plane.append(np.divide(hist, total, out=np.zeros_like(hist), where=total > 0))
    return np.concatenate(per_plane, axis=1).ravel().astype(np.float32)


# ---------------------------------------------------------------------------------------
# HOG
# ---------------------------------------------------------------------------------------
def hog_descriptor(image: np.ndarray, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                   orientations: int = 9, block_norm: str = "L2-Hys") -> np.ndarray:
    """HOG of one greyscale image [H, W] via :func:`skimage.feature.hog`.

    Dalal & Triggs (CVPR 2005): gradient orientation histograms (unsigned, 0-180 degrees,
    ``orientations`` bins, bin 0 starting at 0 = horizontal gradient, i.e. a vertical edge)
    in cells of ``pixels_per_cell``, contrast-normalised over overlapping blocks of
    ``cells_per_block`` cells. The defaults are theirs (9 bins, 8x8 cells, 2x2 blocks,
    L2-Hys). The vector is skimage's ``feature_vector`` order ``[block row][block col]
    [cell row][cell col][orientation]``; a 48x48 CK+ face gives 5*5*2*2*9 = 900 values.
    """
    from skimage.feature import hog

    img = np.asarray(image)
    if img.ndim != 2 or not (np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating)):
        raise DataError("hog_descriptor needs one greyscale image", value=f"array {img.shape} {img.dtype}",
                        expected="a numeric [H, W] array")
    ppc = tuple(int(v) for v in pixels_per_cell)
    cpb = tuple(int(v) for v in cells_per_block)
    need = (ppc[0] * cpb[0], ppc[1] * cpb[1])
    if img.shape[0] < need[0] or img.shape[1] < need[1]:
        raise DataError("image smaller than one HOG block", value=f"{img.shape[0]}x{img.shape[1]}",
                        expected=f"at least {need[0]}x{need[1]} pixels for pixels_per_cell={ppc}, "
                                 f"cells_per_block={cpb}")
    if not np.isfinite(img).all():
        raise DataError("image has NaN or infinite values", expected="finite values")
    return hog(img, orientations=int(orientations), pixels_per_cell=ppc, cells_per_block=cpb,
               block_norm=block_norm, feature_vector=True).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Flow descriptors
# ---------------------------------------------------------------------------------------
def _check_flow(flow, what: str = "flow") -> np.ndarray:
    f = np.asarray(flow)
    if f.ndim != 3 or f.shape[2] != 2 or not np.issubdtype(f.dtype, np.number):
        raise DataError(f"{what} must be a flow field", value=f"array {f.shape} {f.dtype}",
                        expected="a numeric [H, W, 2] array of (u, v) displacements")
    if not np.isfinite(f).all():
        raise DataError(f"{what} has NaN or infinite values", expected="finite displacements")
    return f.astype(np.float64, copy=False)


def hoof_sequence(flows: Sequence[np.ndarray], grid: int = 5, bins: int = 8,
                  strains: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
    """HOOF of each flow field in ``flows`` (e.g. onset->apex, apex->offset), concatenated.

    Each field gives :func:`mekit.features.flow_features.hoof_descriptor` (Chaudhry et al.
    2009 as used for micro-expressions: magnitude-weighted orientation histograms on a
    ``grid`` x ``grid`` face grid, divided by the cell area, ``bins`` bins from angle 0;
    plus the cell's mean strain where ``strains`` gives one for that field). The phases
    of a clip stay apart instead of being summed, so "brow raised then lowered" and "brow
    lowered then raised" differ. All fields must have one shape.
    """
    if isinstance(flows, np.ndarray) and flows.ndim == 3:
        raise DataError("hoof_sequence takes a list of flow fields", value=f"one array {flows.shape}",
                        expected="[flow0, flow1, ...], each [H, W, 2]; use hoof_descriptor for one")
    fields = [_check_flow(f, f"flow {i}") for i, f in enumerate(flows)]
    if not fields:
        raise DataError("hoof_sequence got no flow fields", expected="at least one [H, W, 2] array")
    if any(f.shape != fields[0].shape for f in fields):
        raise DataError("flow fields differ in shape", value=[f.shape for f in fields],
                        expected="one [H, W, 2] shape for all")
    if strains is not None and len(strains) != len(fields):
        raise DataError(f"{len(strains)} strain maps for {len(fields)} flow fields",
                        expected="one strain map (or None) per flow field")
    parts = []
    for i, f in enumerate(fields):
        s = None if strains is None else strains[i]
        if s is not None:
            s = np.asarray(s, dtype=np.float64)
            if s.shape != f.shape[:2]:
                raise DataError(f"strain map {i} does not match its flow field", value=s.shape,
                                expected=f"{f.shape[:2]}")
        parts.append(hoof_descriptor(f, s, grid=grid, bins=bins))
    return np.concatenate(parts).astype(np.float32)


def mdmo(flow: np.ndarray, rois: Mapping[str, Sequence[int]], bins: int = 8,
         normalise: bool = False) -> np.ndarray:
    """Main Directional Mean Optical-flow of ``flow`` [H, W, 2] in each ROI.

    Liu et al., "A Main Directional Mean Optical Flow Feature for Spontaneous
    Micro-Expression Recognition", IEEE Trans. Affective Computing 7(4), 2016: in each
    region the flow vectors are sorted into ``bins`` (8 there) direction bins; the bin
    holding the most vectors is the main direction, and the region is described by the
    mean magnitude ``rho`` and mean angle ``theta`` of the vectors in that bin. Liu et al.
    use 36 ROIs from 66 landmarks and average the per-frame vectors over a clip; for an
    onset->apex field pass mekit's ROIs (:meth:`~mekit.preprocess.face.FaceAlignment.rois`,
    8 regions) or any ``{name: (x0, y0, x1, y1)}`` pixel boxes (``x1``, ``y1`` exclusive).

    Output: ``[rho_1, theta_1, rho_2, theta_2, ...]`` in the order of ``rois`` (2 values per
    ROI), ``theta`` in radians in ``(-pi, pi]``, 0 = rightward, ``+pi/2`` = downward. The
    bins are centred on the directions ``2 pi k / bins`` (bin 0 spans ``+-pi/bins`` around
    rightward), so motion along an axis falls in one bin instead of straddling two; the
    mean angle is taken relative to the bin centre, so the bin around 0 has no wrap-around.
    Ties between bins go to the lower index; an ROI at rest (all vectors zero) gives
    ``rho = 0`` in bin 0. ``normalise=True`` divides every ``rho`` by the largest one, as
    Liu et al. do to remove a subject's overall expression intensity (all zeros stay zero).
    """
    f = _check_flow(flow)
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ConfigError(f"bins must be a positive integer; got {bins!r}")
    if not rois:
        raise DataError("mdmo got no ROIs", expected="{name: (x0, y0, x1, y1)} with at least one box")
    H, W = f.shape[:2]
    u, v = f[..., 0], f[..., 1]
    mag = np.hypot(u, v)
    ang = np.arctan2(v, u)                       # (-pi, pi]
    width = 2 * math.pi / bins
    b = np.mod(np.floor(ang / width + 0.5), bins).astype(np.int64)
    out = np.empty((len(rois), 2), dtype=np.float64)
    for k, (name, box) in enumerate(rois.items()):
        try:
            x0, y0, x1, y1 = (int(c) for c in box)
        except (TypeError, ValueError):
            raise DataError(f"ROI {name!r} is not a box", value=box,
                            expected="(x0, y0, x1, y1) integer pixel coordinates") from None
        if not (0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H):
            raise DataError(f"ROI {name!r} is empty or outside the {W}x{H} flow field", value=box,
                            expected="0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height")
        rb = b[y0:y1, x0:x1].ravel()
        main = int(np.argmax(np.bincount(rb, minlength=bins)))
        sel = rb == main
        centre = main * width
        rel = np.angle(np.exp(1j * (ang[y0:y1, x0:x1].ravel()[sel] - centre)))  # in [-pi/bins, pi/bins]
        theta = float(np.angle(np.exp(1j * (centre + rel.mean()))))
        if theta == -math.pi:
            theta = math.pi
        out[k] = (mag[y0:y1, x0:x1].ravel()[sel].mean(), theta)
    if normalise:
        top = out[:, 0].max()
        if top > 0:
            out[:, 0] /= top
    return out.ravel().astype(np.float32)


# ---------------------------------------------------------------------------------------
# Landmarks
# ---------------------------------------------------------------------------------------
def _eye_points(lm: np.ndarray, eye_indices) -> tuple[np.ndarray, np.ndarray]:
    n = len(lm)
    if eye_indices is None:
        if n in (468, 478):
            eye_indices = MEDIAPIPE_EYE_CORNERS
        elif n == 68:
            eye_indices = IBUG68_EYE_CORNERS
        else:
            raise ConfigError(f"no default eye landmarks for a {n}-point scheme; pass eye_indices="
                              "(right, left), each an index or a list of indices to average")
    if len(eye_indices) != 2:
        raise ConfigError(f"eye_indices must be (right, left); got {eye_indices!r}")
    pts = []
    for side in eye_indices:
        idx = np.atleast_1d(np.asarray(side))
        if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < -n or idx.max() >= n:
            raise ConfigError(f"eye index {side!r} is not a valid index into {n} landmarks")
        pts.append(lm[idx].mean(axis=0))
    return pts[0], pts[1]


def landmark_displacement(onset_landmarks: np.ndarray, apex_landmarks: np.ndarray,
                          normalise: str = "interocular", eye_indices=None) -> np.ndarray:
    """Onset->apex displacement of every landmark, ``[dx_0, dy_0, dx_1, dy_1, ...]`` (2N values).

    Geometric baseline of facial-expression work (e.g. the shape features of Lucey et al.,
    CK+, CVPR-W 2010): how far each point moved. With ``normalise="interocular"`` the
    displacements are divided by the distance between the two eyes in the onset frame, so
    they do not depend on face size or crop resolution; ``"none"`` keeps the input units.

    The eyes are the outer eye corners by default: MediaPipe points 33 and 263
    (:data:`MEDIAPIPE_EYE_CORNERS`) for a 468- or 478-point mesh, iBUG points 36 and 45
    (:data:`IBUG68_EYE_CORNERS`) for 68 points. For another scheme, or to use eye centres,
    pass ``eye_indices=(right, left)``, each one index or a list of indices whose mean is
    taken (e.g. the 16 points of each eye in ``mekit.preprocess.face.MESH_SETS``).
    """
    on = np.asarray(onset_landmarks, dtype=np.float64)
    ap = np.asarray(apex_landmarks, dtype=np.float64)
    if on.ndim != 2 or on.shape[1] != 2 or on.shape != ap.shape or len(on) == 0:
        raise DataError("onset and apex landmarks must be two [N, 2] arrays of one shape",
                        value=f"{on.shape} and {ap.shape}", expected="[N, 2] (x, y) points, same N")
    if not (np.isfinite(on).all() and np.isfinite(ap).all()):
        raise DataError("landmarks have NaN or infinite coordinates", expected="finite (x, y) points")
    disp = ap - on
    if normalise == "interocular":
        right, left = _eye_points(on, eye_indices)
        iod = float(np.hypot(*(left - right)))
        if not iod > 1e-9:
            raise DataError("inter-ocular distance is zero: the two eye points coincide",
                            value=iod, expected="distinct eye landmarks")
        disp = disp / iod
    elif normalise != "none":
        raise ConfigError(f"unknown normalise {normalise!r}; expected 'interocular' or 'none'")
    return disp.ravel().astype(np.float32)

"""Intensity targets: what an intensity model is trained and scored against.

Four sources, keyed by ``sample_id`` (never by position):

``"timing"`` (per frame)
    A curve built from the annotated onset, apex and offset alone: 0 at the onset, 1 at the
    apex, 0 again at the offset (:func:`timing_curve`). It is the only per-frame target the
    real corpora support: none of them codes intensity frame by frame, but all of them
    (except where the apex is missing) code the three phases. The shape between them is an
    assumption; :data:`PROFILES` holds the choices.
``"synthetic"`` (per frame)
    The ground-truth curve the synthetic corpus rendered its clips with (the
    ``intensity_curve`` column of :func:`mekit.data.synthetic.load_synthetic`).
``"facs"`` (per clip)
    The strongest FACS intensity letter among the clip's action units, A..E -> 0.2..1.0
    (:func:`mekit.data.schema.au_intensity`). CASME II, SAMM and CAS(ME)^3 write letters on
    some AUs only, so many clips have none and are left out (and reported).
``"rating"`` (per clip)
    A numeric column (by default the table's ``intensity``) rescaled from its rating scale to
    0-1 (:func:`rating_intensity`).

A per-frame target is an array whose element ``i`` belongs to frame ``onset + i``, from the
onset to the offset inclusive; :func:`frame_targets_table` unrolls a dict of them into the
long ``sample_id, subject, frame, target`` table that :func:`mekit.intensity.metrics.intensity_report`
reads (with a ``pred`` column added).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mekit.data.schema import LoadReport, au_intensity, parse_action_units
from mekit.errors import ConfigError, DataError
from mekit.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from mekit.data.schema import SampleTable

log = logging.getLogger(__name__)

#: A timing profile maps the phase ``u`` (0 at the onset or offset end of a side, 1 at the
#: apex) of the frames on one side of the apex to 0..1. It is also given the side's length in
#: frames and the optional ``sigma`` (frames), which only the Gaussian uses.
Profile = Callable[[np.ndarray, float, "float | None"], np.ndarray]

#: Registered timing profiles, by name.
PROFILES: Registry[Profile] = Registry("intensity profile")

#: Sources :func:`intensity_targets` understands, and whether each is per frame.
SOURCES: dict[str, str] = {"timing": "frame", "synthetic": "frame", "facs": "clip", "rating": "clip"}


@PROFILES.register("triangular", help="piecewise linear: straight rise to the apex, straight fall")
def _triangular(u: np.ndarray, side: float, sigma: float | None) -> np.ndarray:
    return u


@PROFILES.register("cosine", help="raised cosine 0.5 - 0.5 cos(pi u): zero slope at onset, apex and offset")
def _cosine(u: np.ndarray, side: float, sigma: float | None) -> np.ndarray:
    # The same shape the synthetic corpus renders with (mekit.data.synthetic.intensity_curve),
    # after the onset-apex-offset description of Yan et al., PLoS ONE 2013.
    return 0.5 - 0.5 * np.cos(np.pi * u)


@PROFILES.register("gaussian", help="exp(-(f - apex)^2 / (2 sigma^2)) per side, sigma = side length / 3 "
                                    "unless given, rescaled to be exactly 0 at onset and offset")
def _gaussian(u: np.ndarray, side: float, sigma: float | None) -> np.ndarray:
    if side <= 0:
        return np.ones_like(u)
    # sigma = side/3 puts the onset (and offset) three standard deviations from the apex, where
    # the raw Gaussian is exp(-4.5) = 0.011; subtracting that floor and rescaling makes the ends
    # exactly 0 and the apex exactly 1, like the other profiles.
    s = side / 3.0 if sigma is None else float(sigma)
    d = (1.0 - u) * side
    g = np.exp(-(d**2) / (2 * s**2))
    g0 = math.exp(-(side**2) / (2 * s**2))
    if g0 >= 1.0 - 1e-12:  # sigma far larger than the side: the curve is flat; fall back to linear
        return u
    return (g - g0) / (1.0 - g0)


# -- per-frame targets -------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    """A finite number, or None for None / NaN / pandas' NA."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def timing_curve(onset: int, apex: int | None, offset: int, frames: Sequence[float] | np.ndarray | None = None,
                 profile: str = "triangular", sigma: float | None = None) -> np.ndarray:
    """Intensity at each frame from the onset, apex and offset: 0 at the onset, 1 at the apex, 0 at the offset.

    Args:
        onset, apex, offset: frame numbers (``onset <= apex <= offset``).
        frames: frame numbers to evaluate (default every frame ``onset..offset``). Frames
            outside the clip get 0 (no expression there); fractional frames are allowed.
        profile: a :data:`PROFILES` name: ``"triangular"`` (piecewise linear), ``"cosine"``
            (half-cosine rise and fall, 0.5 - 0.5 cos) or ``"gaussian"`` (a Gaussian around the
            apex, ``sigma`` per side = that side's length / 3 unless ``sigma`` is given in frames,
            shifted and rescaled so onset and offset are exactly 0).
        sigma: Gaussian width in frames (both sides); ignored by the other profiles.

    Each side of the apex is shaped on its own, so an early apex gives a steep rise and a slow
    fall. An apex on the onset (or offset) has no rise (or fall): the curve starts (or ends) at 1.
    A one-frame clip (onset == offset) is 1 at that frame.

    Raises:
        DataError: the apex is missing (spot it first, e.g. with
            :func:`mekit.preprocess.apex.spot_apex`), or the three are missing or out of order.
    """
    fn = PROFILES.get(profile)
    on, ap, off = _number(onset), _number(apex), _number(offset)
    if on is None or off is None:
        raise DataError("onset and offset are needed for a timing intensity curve",
                        value=(onset, offset), expected="two frame numbers")
    if ap is None:
        raise DataError("the apex is missing, and a timing intensity curve peaks at the apex; spot the "
                        "apex first (mekit.preprocess.apex.spot_apex) or use a per-clip source "
                        "('facs' or 'rating')", value=apex, expected="an apex frame number")
    if not on <= ap <= off:
        raise DataError("onset, apex and offset are out of order", value=(onset, apex, offset),
                        expected="onset <= apex <= offset")
    if sigma is not None and not sigma > 0:
        raise ConfigError(f"timing curve: sigma={sigma!r}; expected a positive width in frames")
    f = np.arange(on, off + 1, dtype=np.float64) if frames is None else np.asarray(frames, dtype=np.float64)
    out = np.zeros(f.shape, dtype=np.float64)
    inside = (f >= on) & (f <= off)
    out[inside & (f == ap)] = 1.0
    rise = inside & (f < ap)          # only possible when apex > onset
    if rise.any():
        side = ap - on
        out[rise] = fn((f[rise] - on) / side, side, sigma)
    fall = inside & (f > ap)          # only possible when offset > apex
    if fall.any():
        side = off - ap
        out[fall] = fn((off - f[fall]) / side, side, sigma)
    return np.clip(out, 0.0, 1.0)


# -- per-clip targets --------------------------------------------------------------------------
def facs_intensity(action_units: Sequence[str] | str | None) -> float | None:
    """Strongest FACS intensity letter among a clip's action units, A..E -> 0.2..1.0.

    ``action_units`` is the table's tuple of tokens (``('4', 'L12A', '15C')`` -> 0.6) or an AU
    cell as a corpus writes it (``'4+L12A'``). None when no token carries a letter.
    """
    if action_units is None:
        return None
    tokens = parse_action_units(action_units) if isinstance(action_units, str) else list(action_units)
    return au_intensity(tokens)


def rating_intensity(value: Any, scale: tuple[float, float] = (0.0, 1.0), strict: bool = False) -> float:
    """A rating on ``scale = (lo, hi)`` rescaled to 0-1: ``(value - lo) / (hi - lo)``.

    Values outside the scale are clipped to 0 or 1, or raise when ``strict`` (a rating of 7
    on a 1-5 scale is usually a wrong scale, not a strong expression).
    """
    lo, hi = (float(scale[0]), float(scale[1]))
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ConfigError(f"rating scale {scale!r}; expected (lo, hi) with lo < hi")
    v = _number(value)
    if v is None:
        raise DataError("no rating", value=value, expected=f"a number on the scale {lo:g}..{hi:g}")
    if strict and not lo <= v <= hi:
        raise DataError("rating outside its scale", value=value, expected=f"a number within {lo:g}..{hi:g}")
    return float(min(1.0, max(0.0, (v - lo) / (hi - lo))))


def soft_labels(row: Mapping[str, Any] | pd.Series, classes: Sequence[str], prefix: str = "score_",
                label_key: str = "label") -> np.ndarray:
    """Per-class 0-1 scores for one sample, in the order of ``classes``.

    Where an annotation gives graded scores they are used: columns ``<prefix><class>`` (as an
    ``annotations.csv`` with ``score_negative, score_positive, ...`` would give), or a plain
    mapping ``{class: score}``. Classes without a score get 0; scores of classes not in
    ``classes`` (dropped by a label scheme) are ignored. The scores are not renormalised: a
    blend of two emotions may score both high. Without any score the result is the one-hot
    vector of ``row[label_key]``.
    """
    classes = list(classes)
    if not classes:
        raise ConfigError("soft labels: no classes given")
    keys = set(row.keys())
    scores = {c: row[f"{prefix}{c}"] for c in classes if f"{prefix}{c}" in keys}
    if not any(_number(v) is not None for v in scores.values()):
        scores = {c: row[c] for c in classes if c in keys and _number(row[c]) is not None}
    scores = {c: v for c, v in scores.items() if _number(v) is not None}
    if scores:
        out = np.zeros(len(classes), dtype=np.float64)
        for i, c in enumerate(classes):
            if c in scores:
                v = _number(scores[c])
                if not 0.0 <= v <= 1.0:
                    raise DataError(f"score of class {c!r} outside 0-1", value=scores[c],
                                    expected="a score between 0 and 1")
                out[i] = v
        return out
    label = row[label_key] if label_key in keys else None
    if label is None or (not isinstance(label, str) and bool(pd.isna(label))):
        raise DataError("neither per-class scores nor a label", value=dict(row) if len(keys) < 20 else None,
                        expected=f"columns {prefix}<class> or a {label_key!r}")
    if label not in classes:
        raise DataError("label is not among the classes", value=label, expected=f"one of {classes}")
    out = np.zeros(len(classes), dtype=np.float64)
    out[classes.index(label)] = 1.0
    return out


# -- whole tables ------------------------------------------------------------------------------
def _curve_from_cell(cell: Any) -> np.ndarray:
    if isinstance(cell, str):  # a table written to CSV and read back holds the curve as text
        cell = json.loads(cell.replace("(", "[").replace(")", "]"))
    arr = np.asarray(cell, dtype=np.float64).ravel()
    if arr.size == 0 or not np.isfinite(arr).all():
        raise DataError("empty or non-finite intensity curve", expected="a finite value per frame")
    return arr


def intensity_targets(table: SampleTable | pd.DataFrame, source: str = "timing", *, profile: str = "triangular",
                      sigma: float | None = None, column: str | None = None,
                      scale: tuple[float, float] | None = None, strict: bool = False,
                      report: LoadReport | None = None) -> dict[str, np.ndarray | float]:
    """Intensity targets for every sample of a table, keyed by ``sample_id``.

    Args:
        table: a :class:`~mekit.data.schema.SampleTable` (or its DataFrame).
        source: ``"timing"`` or ``"synthetic"`` (per frame: an array, element ``i`` = frame
            ``onset + i``), ``"facs"`` or ``"rating"`` (per clip: a float in 0-1).
        profile, sigma: the timing profile (:func:`timing_curve`).
        column: the column read by ``"synthetic"`` (default ``intensity_curve``) and
            ``"rating"`` (default ``intensity``).
        scale: the rating scale ``(lo, hi)`` for ``"rating"`` (default (0, 1)).
        strict: for ``"rating"``, out-of-scale values are problems rather than clipped.
        report: where a sample that has no target is recorded (its problem names the sample
            and why); it is left out of the result either way, and the rest are kept.

    Raises:
        ConfigError: unknown source or profile, or the column is absent from the table.
    """
    if source not in SOURCES:
        raise ConfigError(f"unknown intensity source {source!r}; expected one of: {', '.join(SOURCES)}")
    PROFILES.get(profile)  # an unknown profile is a config error, not a per-sample problem
    df = table.df if hasattr(table, "df") else table
    col = column or {"synthetic": "intensity_curve", "rating": "intensity"}.get(source)
    if col is not None and col not in df.columns:
        hint = " (only the synthetic corpus carries a ground-truth curve)" if source == "synthetic" else ""
        raise ConfigError(f"intensity source {source!r} reads column {col!r}, which the table lacks{hint}; "
                          f"columns: {list(df.columns)}")
    out: dict[str, np.ndarray | float] = {}
    problems: list[tuple[str, str]] = []
    for rec in df.to_dict("records"):
        sid = str(rec["sample_id"])
        try:
            if source == "timing":
                out[sid] = timing_curve(rec["onset"], rec["apex"], rec["offset"], profile=profile, sigma=sigma)
            elif source == "synthetic":
                curve = _curve_from_cell(rec[col])
                on, off = _number(rec.get("onset")), _number(rec.get("offset"))
                if on is not None and off is not None and curve.size != int(off - on + 1):
                    raise DataError(f"intensity curve has {curve.size} values for frames {int(on)}..{int(off)}",
                                    expected=f"{int(off - on + 1)} values, one per frame")
                out[sid] = curve
            elif source == "facs":
                v = facs_intensity(rec["action_units"])
                if v is None:
                    raise DataError("no FACS intensity letter among the action units",
                                    value=tuple(rec["action_units"]), expected="a token like '12C'")
                out[sid] = v
            else:
                out[sid] = rating_intensity(rec[col], scale or (0.0, 1.0), strict=strict)
        except DataError as e:
            problems.append((sid, f"no {source} intensity target: {e}"))
    for sid, reason in problems:
        if report is not None:
            report.add_problem(sid, reason)
    if problems:
        log.warning("intensity targets (%s): %d of %d samples left out, e.g. %s: %s", source, len(problems),
                    len(df), problems[0][0], problems[0][1])
    return out


def frame_targets_table(table: SampleTable | pd.DataFrame,
                        targets: Mapping[str, np.ndarray | float]) -> pd.DataFrame:
    """Per-frame targets unrolled into rows ``sample_id, subject, frame, target``.

    Frame ``onset + i`` gets element ``i``. Samples absent from ``targets`` are skipped;
    per-clip (scalar) targets cannot be unrolled and raise.
    """
    df = table.df if hasattr(table, "df") else table
    rows = df.set_index("sample_id")
    parts = []
    for sid, t in targets.items():
        arr = np.asarray(t, dtype=np.float64)
        if arr.ndim != 1:
            raise DataError(f"sample {sid}: a per-clip target cannot be laid out per frame",
                            expected="a per-frame source ('timing' or 'synthetic')")
        if sid not in rows.index:
            raise DataError(f"sample {sid} has a target but is not in the table")
        onset = _number(rows.at[sid, "onset"])
        if onset is None:
            raise DataError(f"sample {sid} has no onset frame to number its targets from")
        parts.append(pd.DataFrame({"sample_id": sid, "subject": rows.at[sid, "subject"],
                                   "frame": np.arange(arr.size, dtype=np.int64) + int(onset), "target": arr}))
    if not parts:
        return pd.DataFrame({"sample_id": [], "subject": [], "frame": np.array([], np.int64), "target": []})
    return pd.concat(parts, ignore_index=True)

"""Metrics for continuous intensity: agreement of predicted and target intensity, and peak timing.

Error (MAE, RMSE) says how far off the values are; Pearson and Spearman say whether the
prediction rises and falls with the target whatever its scale; Lin's concordance
correlation coefficient (CCC) and ICC(3,1) say whether the two agree on one scale. CCC is
the usual headline of continuous affect challenges (AVEC; Ringeval et al., AVEC 2017),
ICC(3,1) that of facial action unit intensity (DISFA, FERA 2015; Valstar et al., FG 2015).
The peak metrics ask the question a micro-expression analyst asks of an intensity curve:
does it peak where the annotated apex is?

Correlations of a constant input are undefined and come back as NaN (never a crash or a
warning), e.g. for a clip whose predictions are all equal.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mekit.errors import DataError

log = logging.getLogger(__name__)

#: The metrics :func:`regression_metrics` returns (besides ``n``).
REGRESSION_METRICS = ("mae", "rmse", "pearson", "spearman", "ccc", "icc")

#: Default tolerance of :func:`peak_metrics`: a predicted peak within 10 % of the clip's length
#: of the annotated apex counts as on the apex.
PEAK_TOLERANCE = 0.10

NAN = float("nan")


# -- agreement -----------------------------------------------------------------------------------
def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r; NaN where either input is constant (or fewer than two pairs)."""
    if x.size < 2:
        return NAN
    dx, dy = x - x.mean(), y - y.mean()
    sx, sy = math.sqrt(float(dx @ dx)), math.sqrt(float(dy @ dy))
    # A spread at rounding level of the values is a constant input, not a tiny signal.
    tol = 1e-12 * max(1.0, float(np.abs(x).max()), float(np.abs(y).max())) * math.sqrt(x.size)
    if sx <= tol or sy <= tol:
        return NAN
    return float(np.clip((dx @ dy) / (sx * sy), -1.0, 1.0))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the (average-tie) ranks, as scipy.stats.spearmanr."""
    from scipy.stats import rankdata

    return _pearson(rankdata(x), rankdata(y)) if x.size >= 2 else NAN


def concordance_cc(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Lin's concordance correlation coefficient (Lin, Biometrics 1989).

    ``2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2)`` with the 1/n moments of Lin's
    definition. 1 only when the pairs lie on the identity line: a shift or a rescaling lowers
    it below Pearson's r. NaN where both inputs are the same constant (0/0).
    """
    x, y = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    if x.size < 2:
        return NAN
    mx, my = x.mean(), y.mean()
    cov = float(np.mean((x - mx) * (y - my)))
    den = float(x.var() + y.var() + (mx - my) ** 2)
    if den <= 1e-24 * max(1.0, float(np.abs(x).max()) ** 2):
        return NAN
    return float(np.clip(2 * cov / den, -1.0, 1.0))


def icc_3_1(ratings: np.ndarray | Sequence[Sequence[float]]) -> float:
    """ICC(3,1) of an ``n targets x k raters`` matrix: two-way mixed, consistency, single rater.

    From the two-way ANOVA mean squares (Shrout & Fleiss, Psychological Bulletin 1979, Table 2):
    ``(BMS - EMS) / (BMS + (k - 1) EMS)``, with BMS the between-targets mean square and EMS the
    residual mean square. Consistency: a constant offset between raters does not lower it (a
    rescaling does). NaN with fewer than two targets or no variance at all.
    """
    x = np.asarray(ratings, np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise DataError("ICC needs a matrix of targets x raters", value=x.shape, expected="shape (n, k >= 2)")
    n, k = x.shape
    if n < 2:
        return NAN
    gm = x.mean()
    ss_total = float(((x - gm) ** 2).sum())
    ss_rows = k * float(((x.mean(axis=1) - gm) ** 2).sum())
    ss_cols = n * float(((x.mean(axis=0) - gm) ** 2).sum())
    ss_err = max(0.0, ss_total - ss_rows - ss_cols)
    bms = ss_rows / (n - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    den = bms + (k - 1) * ems
    if den <= 1e-24 * max(1.0, float(np.abs(x).max()) ** 2):
        return NAN
    return float((bms - ems) / den)


def regression_metrics(y_true: Sequence[float] | np.ndarray,
                       y_pred: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """MAE, RMSE, Pearson, Spearman, CCC and ICC(3,1) of predictions against targets.

    ICC treats target and prediction as the two raters of each item. Pairs where either value
    is NaN are left out (and counted in ``n_dropped``, with a warning); ``n`` is the pairs scored.

    Raises:
        DataError: the two have different lengths, or no pair is left to score.
    """
    t = np.asarray(y_true, np.float64).ravel()
    p = np.asarray(y_pred, np.float64).ravel()
    if t.shape != p.shape:
        raise DataError("targets and predictions differ in length", value=(t.size, p.size),
                        expected="one prediction per target")
    ok = np.isfinite(t) & np.isfinite(p)
    dropped = int(t.size - ok.sum())
    if dropped:
        log.warning("intensity metrics: %d of %d pairs are not finite and left out", dropped, t.size)
        t, p = t[ok], p[ok]
    if t.size == 0:
        raise DataError("no target/prediction pairs to score", expected="at least one finite pair")
    err = p - t
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(math.sqrt(float(np.mean(err**2)))),
        "pearson": _pearson(t, p),
        "spearman": _spearman(t, p),
        "ccc": concordance_cc(t, p),
        "icc": icc_3_1(np.stack([t, p], axis=1)),
        "n": int(t.size),
        "n_dropped": dropped,
    }


# -- peak timing ---------------------------------------------------------------------------------
def _nanmean(values: list[float]) -> float:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else NAN


def peak_metrics(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], apex: Mapping[str, Any],
                 onset: Mapping[str, Any] | None = None, offset: Mapping[str, Any] | None = None,
                 tolerance: float = PEAK_TOLERANCE) -> dict[str, Any]:
    """Where each predicted curve peaks, against the annotated apex.

    Args:
        curves: ``{sample_id: (frames, predicted intensity)}``.
        apex: ``{sample_id: apex frame}``; clips without one are skipped (``n_without_apex``).
        onset, offset: ``{sample_id: frame}``; where absent, the first and last frame of the curve.
        tolerance: fraction of the clip length counted as "on the apex" for ``peak_within_tolerance``.

    The clip length is its number of frames, ``offset - onset + 1``. The peak is the first
    frame of the largest prediction. Per clip: ``peak_frame``, ``peak_value``, ``apex``,
    ``error_frames`` (peak minus apex, signed: negative = predicted too early),
    ``abs_error_frames``, ``error_fraction`` (absolute error / clip length) and ``within_10pct``.
    Summary: ``peak_within_10pct`` (share of clips whose peak is within 10 % of the clip
    length of the apex), ``peak_within_tolerance``, and the mean and median absolute errors.
    """
    onset, offset = onset or {}, offset or {}
    per_clip: dict[str, dict[str, Any]] = {}
    no_apex: list[str] = []
    for sid, (frames, pred) in curves.items():
        f = np.asarray(frames, np.float64).ravel()
        y = np.asarray(pred, np.float64).ravel()
        if f.shape != y.shape or f.size == 0:
            raise DataError(f"sample {sid}: frames and predicted curve differ in length or are empty",
                            value=(f.size, y.size), expected="one prediction per frame")
        a = apex.get(sid)
        a = None if a is None or pd.isna(a) else float(a)
        if a is None or not np.isfinite(y).any():
            no_apex.append(sid)
            continue
        on = onset.get(sid)
        off = offset.get(sid)
        on = float(f.min()) if on is None or pd.isna(on) else float(on)
        off = float(f.max()) if off is None or pd.isna(off) else float(off)
        length = off - on + 1.0
        i = int(np.nanargmax(y))
        err = float(f[i] - a)
        frac = abs(err) / length
        per_clip[str(sid)] = {
            "peak_frame": int(f[i]) if float(f[i]).is_integer() else float(f[i]),
            "peak_value": float(y[i]), "apex": int(a) if a.is_integer() else a,
            "length": int(length) if length.is_integer() else length,
            "error_frames": err, "abs_error_frames": abs(err), "error_fraction": frac,
            # a small epsilon so an error of exactly 10 % (3 frames of 30) counts as within
            "within_10pct": bool(frac <= PEAK_TOLERANCE + 1e-9),
            "within_tolerance": bool(frac <= tolerance + 1e-9),
        }
    if no_apex:
        log.info("peak metrics: %d clips without an apex or a finite prediction skipped", len(no_apex))
    rows = list(per_clip.values())
    abs_err = [r["abs_error_frames"] for r in rows]
    return {
        "peak_within_10pct": _nanmean([r["within_10pct"] for r in rows]),
        "peak_within_tolerance": _nanmean([r["within_tolerance"] for r in rows]),
        "tolerance": float(tolerance),
        "mean_abs_peak_error_frames": _nanmean(abs_err),
        "median_abs_peak_error_frames": float(np.median(abs_err)) if abs_err else NAN,
        "mean_peak_error_fraction": _nanmean([r["error_fraction"] for r in rows]),
        "mean_peak_error_frames": _nanmean([r["error_frames"] for r in rows]),
        "n_clips": len(rows),
        "n_without_apex": len(no_apex),
        "per_clip": per_clip,
    }


# -- the whole report ----------------------------------------------------------------------------
REQUIRED_COLUMNS = ("sample_id", "frame", "target", "pred")


def _clip_apex(d: pd.DataFrame) -> float:
    """The clip's annotated apex: its ``apex`` column, else the frame where the target peaks."""
    if "apex" in d.columns and d["apex"].notna().any():
        return float(d["apex"].dropna().iloc[0])
    if d["target"].notna().any():
        return float(d["frame"].iloc[int(np.nanargmax(d["target"].to_numpy(np.float64)))])
    return NAN


def _peaks_of(df: pd.DataFrame, tolerance: float) -> dict[str, Any]:
    """:func:`peak_metrics` of a per-frame predictions table (sorted by sample and frame)."""
    curves, apex, onset, offset = {}, {}, {}, {}
    for sid, c in df.groupby("sample_id", sort=True):
        curves[sid] = (c["frame"].to_numpy(), c["pred"].to_numpy(np.float64))
        apex[sid] = _clip_apex(c)
        for key, store in (("onset", onset), ("offset", offset)):
            if key in c.columns and c[key].notna().any():
                store[sid] = float(c[key].dropna().iloc[0])
    return peak_metrics(curves, apex, onset, offset, tolerance=tolerance)


def _summary(d: pd.DataFrame, tolerance: float) -> dict[str, Any]:
    """Frame-level metrics and the peak summary of one group of frames (a subject, a fold)."""
    m = regression_metrics(d["target"], d["pred"])
    pk = _peaks_of(d, tolerance)
    m.update({"peak_within_10pct": pk["peak_within_10pct"],
              "mean_abs_peak_error_frames": pk["mean_abs_peak_error_frames"],
              "n_clips": int(d["sample_id"].nunique())})
    return m


def intensity_report(pred_frames: pd.DataFrame, tolerance: float = PEAK_TOLERANCE) -> dict[str, Any]:
    """Every intensity metric of a per-frame predictions table.

    ``pred_frames`` has one row per frame: ``sample_id, frame, target, pred`` and optionally
    ``subject``, ``fold``, ``apex``, ``onset``, ``offset`` (per-clip values repeated on its rows).

    Returns a dict with:

    - top level: the frame-level :func:`regression_metrics` pooled over all frames of all clips
      (``mae, rmse, pearson, spearman, ccc, icc, n``), ``peak_within_10pct`` and the other
      peak summaries, ``n_frames``, ``n_clips``, ``n_subjects``;
    - ``per_clip``: metrics over clips, one pair per clip, of two clip summaries:
      ``mean`` (the clip's mean target vs mean prediction: overall strength) and ``peak`` (the
      clip's maximum target vs maximum prediction: strength at the apex, the quantity FACS
      letters grade; with timing targets every clip peaks at 1, so there only its MAE and RMSE
      are informative and its correlations are NaN); plus ``within_clip``, the mean over clips of each clip's own MAE,
      Pearson and CCC (does each predicted curve follow its own target's shape);
    - ``peaks``: :func:`peak_metrics`, with per-clip peak frames. The annotated apex is the
      ``apex`` column where given, else the frame where the target peaks (the apex itself for
      timing targets); onset and offset likewise default to the clip's first and last frame;
    - ``per_subject`` (if a ``subject`` column) and ``per_fold`` (if a ``fold`` column):
      frame-level metrics and ``peak_within_10pct`` per group.

    Raises:
        DataError: a required column is absent, or a clip has a frame twice.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in pred_frames.columns]
    if missing:
        raise DataError(f"intensity predictions lack columns {missing}", value=list(pred_frames.columns),
                        expected=f"columns {list(REQUIRED_COLUMNS)} (+ optional subject, fold, apex)")
    df = pred_frames.copy()
    df["sample_id"] = df["sample_id"].astype(str)
    dup = df.duplicated(["sample_id", "frame"])
    if dup.any():
        first = df.loc[dup].iloc[0]
        raise DataError(f"sample {first['sample_id']} has frame {first['frame']} more than once",
                        expected="one row per (sample_id, frame)")
    df = df.sort_values(["sample_id", "frame"], kind="stable")
    out: dict[str, Any] = regression_metrics(df["target"], df["pred"])

    clip_rows = []
    within = []
    for _, c in df.groupby("sample_id", sort=True):
        t = c["target"].to_numpy(np.float64)
        p = c["pred"].to_numpy(np.float64)
        ok = np.isfinite(t) & np.isfinite(p)
        if ok.any():
            clip_rows.append((t[ok].mean(), p[ok].mean(), t[ok].max(), p[ok].max()))
            within.append((float(np.mean(np.abs(p[ok] - t[ok]))), _pearson(t[ok], p[ok]),
                           concordance_cc(t[ok], p[ok])))
    peaks = _peaks_of(df, tolerance)
    for key in ("peak_within_10pct", "peak_within_tolerance", "mean_abs_peak_error_frames",
                "median_abs_peak_error_frames", "mean_peak_error_fraction"):
        out[key] = peaks[key]
    out["n_frames"] = out["n"]
    out["n_clips"] = int(df["sample_id"].nunique())
    out["n_subjects"] = int(df["subject"].nunique()) if "subject" in df.columns else None

    arr = np.asarray(clip_rows, np.float64).reshape(-1, 4)
    w = np.asarray(within, np.float64).reshape(-1, 3)
    out["per_clip"] = {
        "mean": regression_metrics(arr[:, 0], arr[:, 1]) if len(arr) else {},
        "peak": regression_metrics(arr[:, 2], arr[:, 3]) if len(arr) else {},
        "within_clip": {"mae": _nanmean(list(w[:, 0])), "pearson": _nanmean(list(w[:, 1])),
                        "ccc": _nanmean(list(w[:, 2])), "n_clips": int(len(w)),
                        "n_clips_with_correlation": int(np.isfinite(w[:, 1]).sum())},
    }
    out["peaks"] = peaks
    for col, key in (("subject", "per_subject"), ("fold", "per_fold")):
        if col in df.columns:
            out[key] = {str(g): _summary(d, tolerance) for g, d in df.groupby(col, sort=True)}
    return out

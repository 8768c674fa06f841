"""Figures of predicted intensity curves against their targets, for reports.

Each panel shows one clip: the target and the predicted intensity over the clip's frames,
the annotated onset, apex and offset as labelled vertical lines, and the predicted peak as a
marker, so that a reader sees at once whether the prediction rises and falls with the
expression and whether it peaks at the apex. matplotlib runs on its Agg backend (no display).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mekit.errors import ConfigError, DataError
from mekit.intensity.metrics import REQUIRED_COLUMNS

log = logging.getLogger(__name__)

#: Orders :func:`plot_intensity_grid` can pick clips in.
SELECTIONS = ("first", "worst", "best")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _draw(ax: Any, frames: np.ndarray, target: np.ndarray | None, pred: np.ndarray,
          onset: Any, apex: Any, offset: Any, title: str) -> None:
    """One clip's curves and markers on a matplotlib axis (the caller draws the legend)."""
    if target is not None:
        ax.plot(frames, target, color="0.35", lw=1.6, ls="--", label="target")
    ax.plot(frames, pred, color="tab:blue", lw=1.6, label="predicted")
    if np.isfinite(pred).any():
        i = int(np.nanargmax(pred))
        ax.plot([frames[i]], [pred[i]], marker="v", ms=8, color="tab:red", ls="none", label="predicted peak")
        ax.annotate(f"{frames[i]:g}", (frames[i], pred[i]), xytext=(0, 7), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, color="tab:red",
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    values = np.concatenate([pred, target if target is not None else pred])
    values = values[np.isfinite(values)]
    lo = min(0.0, float(values.min())) if values.size else 0.0
    hi = max(1.0, float(values.max())) if values.size else 1.0
    # headroom above the curves for the phase labels, so they never sit on the data
    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.22 * (hi - lo))
    for name, value, colour in (("onset", onset, "tab:green"), ("apex", apex, "tab:orange"),
                                ("offset", offset, "tab:purple")):
        v = _finite(value)
        if v is None:
            continue
        ax.axvline(v, color=colour, lw=1.0, alpha=0.8)
        # in axis coordinates vertically, so the label stays at the top whatever the values
        ha = "left" if name == "onset" else "right" if name == "offset" else "center"
        ax.text(v, 0.985, name, transform=ax.get_xaxis_transform(), va="top", ha=ha, fontsize=7,
                color=colour, bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_xlabel("frame")
    ax.set_ylabel("intensity")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def _figure_legend(fig: Any, ax: Any) -> float:
    """One legend under the panels; returns the fraction of the figure height it takes."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    return 0.32 / fig.get_figheight()


def _as_curve(name: str, values: Any, n: int) -> np.ndarray:
    a = np.asarray(values, np.float64).ravel()
    if a.size != n:
        raise DataError(f"intensity plot: {name} has {a.size} values for {n} frames",
                        expected="one value per frame")
    return a


def plot_intensity_curve(frames: Sequence[float] | np.ndarray, target: Sequence[float] | np.ndarray | None,
                         pred: Sequence[float] | np.ndarray, onset: int | None = None, apex: int | None = None,
                         offset: int | None = None, title: str = "", path: str | Path = "intensity.png") -> Path:
    """Write a PNG of one clip's predicted intensity against its target; returns its path.

    ``target`` may be None (a clip without one). Onset, apex and offset are drawn where given.
    """
    f = np.asarray(frames, np.float64).ravel()
    if f.size == 0:
        raise DataError("intensity plot: no frames", expected="at least one frame")
    y = _as_curve("pred", pred, f.size)
    t = None if target is None else _as_curve("target", target, f.size)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    try:
        _draw(ax, f, t, y, onset, apex, offset, title)
        fig.tight_layout(rect=(0, _figure_legend(fig, ax), 1, 1))
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=120)
    finally:
        plt.close(fig)
    return out


def _clips(pred_frames: pd.DataFrame) -> dict[str, pd.DataFrame]:
    df = pred_frames.copy()
    df["sample_id"] = df["sample_id"].astype(str)
    return {sid: c.sort_values("frame") for sid, c in df.groupby("sample_id", sort=True)}


def select_clips(pred_frames: pd.DataFrame, max_clips: int = 12, select: str = "first") -> list[str]:
    """Sample ids of up to ``max_clips`` clips: the ``"first"`` by sample id, or the ``"worst"``
    / ``"best"`` by per-clip mean absolute error (ties broken by sample id)."""
    return _select(_clips(pred_frames), max_clips, select)


def _select(groups: dict[str, pd.DataFrame], max_clips: int, select: str) -> list[str]:
    if select not in SELECTIONS:
        raise ConfigError(f"intensity grid: select={select!r}; expected one of {SELECTIONS}")
    ids = list(groups)
    if select != "first":
        mae = {}
        for sid, c in groups.items():
            err = np.abs(c["pred"].to_numpy(np.float64) - c["target"].to_numpy(np.float64))
            err = err[np.isfinite(err)]
            # a clip with nothing to score goes last either way
            mae[sid] = float(err.mean()) if err.size else (-np.inf if select == "worst" else np.inf)
        ids.sort(key=lambda s: (-mae[s] if select == "worst" else mae[s], s))
    return ids[:max_clips]


def plot_intensity_grid(pred_frames: pd.DataFrame, out_dir: str | Path, max_clips: int = 12,
                        per_figure: int = 6, ncols: int = 3, select: str = "first",
                        prefix: str = "intensity_curves") -> list[Path]:
    """Figures of several clips each (``per_figure`` panels) from a per-frame predictions table.

    ``pred_frames`` is the table :func:`mekit.intensity.metrics.intensity_report` reads
    (``sample_id, frame, target, pred`` and optional ``apex, onset, offset``). As in that
    report, where these are absent the onset and offset are the clip's first and last frame
    and the apex is the frame where the target peaks. ``select`` picks ``max_clips`` clips
    (:func:`select_clips`): the ``"first"`` by sample id, or the ``"worst"`` / ``"best"`` by
    per-clip mean absolute error. Files are ``<prefix>_01.png, ...`` in ``out_dir``; returns
    their paths.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in pred_frames.columns]
    if missing:
        raise DataError(f"intensity predictions lack columns {missing}", value=list(pred_frames.columns),
                        expected=f"columns {list(REQUIRED_COLUMNS)}")
    if max_clips < 1 or per_figure < 1 or ncols < 1:
        raise ConfigError("intensity grid: max_clips, per_figure and ncols must be at least 1")
    groups = _clips(pred_frames)
    ids = _select(groups, max_clips, select)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    paths: list[Path] = []
    for start in range(0, len(ids), per_figure):
        chunk = ids[start:start + per_figure]
        cols = min(ncols, len(chunk))
        rows = math.ceil(len(chunk) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False)
        try:
            first_ax = axes.ravel()[0]
            for k, ax in enumerate(axes.ravel()):
                if k >= len(chunk):
                    ax.axis("off")
                    continue
                sid = chunk[k]
                c = groups[sid]
                f = c["frame"].to_numpy(np.float64)

                def first(col: str, default: Any = None, c: pd.DataFrame = c) -> Any:
                    return c[col].dropna().iloc[0] if col in c.columns and c[col].notna().any() else default

                t = c["target"].to_numpy(np.float64)
                target_peak = f[int(np.nanargmax(t))] if np.isfinite(t).any() else None
                _draw(ax, f, t, c["pred"].to_numpy(np.float64), first("onset", f.min()),
                      first("apex", target_peak), first("offset", f.max()), sid)
            fig.tight_layout(rect=(0, _figure_legend(fig, first_ax), 1, 1))
            path = out_dir / f"{prefix}_{start // per_figure + 1:02d}.png"
            fig.savefig(path, dpi=110)
        finally:
            plt.close(fig)
        paths.append(path)
    log.info("intensity curves of %d clips drawn in %d figures under %s", len(ids), len(paths), out_dir)
    return paths

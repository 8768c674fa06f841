"""Reviewing finished analyses: what a viewer of :func:`mekit.analysis.analyze.analyze`'s output
folders needs beyond the files themselves.

- :func:`timeline_data`: a folder's timeline as plain data (curves brought down to a few
  thousand points, the intervals, the spotter's threshold), for a page to draw;
- :func:`read_markers` / :func:`write_markers`: event markers (a stimulus onset, a question
  asked) the user places on a recording's time axis, kept as ``markers.json`` beside it;
- :func:`aligned_response`: the average response across recordings aligned on their markers
  (motion score, intensity, the share of time inside an interval and the rate of interval
  onsets, in a window of seconds before and after each marker): the event-related average of
  psychophysiology, applied to expressions;
- :func:`web_video`: the annotated video re-encoded as VP8 in WebM, which browsers play.

Why a WebM copy: ``annotated.mp4`` is MPEG-4 Part 2 (``mp4v``), the one mp4 codec the encoder of
the opencv-python wheels can write, and no browser's ``<video>`` plays it (Chromium answers
MEDIA_ERR_SRC_NOT_SUPPORTED). H.264 is not available from those wheels (only a hardware encoder
is found, and it fails), but VP8 in WebM is, and every Chromium and Firefox plays it with
seeking. Re-encoding ran at about 55 frames/s at 668x408 on one core of a 2-core x86-64
machine (OpenCV 4.14): a 12 s recording at 30 fps took 6.4 s, about as long as its analysis.
VP9 compresses better but encoded 10x slower.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mekit.errors import ConfigError, DataError

#: the markers file beside an analysis's outputs
MARKERS = "markers.json"
#: markers kept per recording, and the longest label
MAX_MARKERS = 1000
MAX_LABEL = 60
#: the browser-playable copy of the annotated video
WEB_VIDEO = "annotated.webm"


# -- the timeline -------------------------------------------------------------------------------
def _clean(values: Any) -> list[float | None]:
    return [None if v is None or not math.isfinite(float(v)) else round(float(v), 4) for v in values]


def timeline_data(out_dir: str | Path, points: int = 2000) -> dict[str, Any]:
    """A finished analysis's timeline as JSON-ready data: ``curves`` (``time_s``, ``motion``,
    ``intensity``, ``tracked``: at most ``points`` each, the highest value per bin, read from
    frames.csv in chunks), ``intervals`` (intervals.json's rows), ``classes``, ``fps``,
    ``duration_s`` and the spotter's ``threshold``."""
    from mekit.analysis.analyze import timeline_curves

    out = Path(out_dir)
    try:
        summary = json.loads((out / "analysis.json").read_text())
        intervals = json.loads((out / "intervals.json").read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the analysis ({e})", path=out,
                        expected="analysis.json and intervals.json as `mekit analyze` writes them") from None
    curves = timeline_curves(out / "frames.csv", points=points)
    fps = float(summary.get("fps") or 0.0) or 30.0
    data: dict[str, Any] = {"time_s": [], "motion": [], "intensity": [], "tracked": []}
    duration = 0.0
    if curves is not None:
        for k in data:
            if k in curves:
                data[k] = _clean(curves[k].to_numpy(float))
        if len(curves):
            duration = float(curves["time_s"].iloc[-1]) + 1.0 / fps
    frames = int(summary.get("frames") or 0)
    duration = max(duration, frames / fps if frames else 0.0)
    threshold = (summary.get("spotter") or {}).get("params", {}).get("threshold")
    return {"curves": data, "intervals": intervals, "classes": list(summary.get("classes") or []), "fps": fps,
            "duration_s": round(duration, 4), "frames": frames,
            "threshold": float(threshold) if isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
            else None}


# -- markers -------------------------------------------------------------------------------------
def check_markers(markers: Any, duration_s: float | None = None) -> list[dict[str, Any]]:
    """Markers as ``[{"t": seconds, "label": text}]``, sorted by time; anything else is a
    :class:`ConfigError` naming the marker and what was expected. A bare number is a marker
    without a label."""
    if not isinstance(markers, (list, tuple)):
        raise ConfigError(f"markers must be a list of {{t, label}}; got {type(markers).__name__}")
    if len(markers) > MAX_MARKERS:
        raise ConfigError(f"at most {MAX_MARKERS} markers per recording; got {len(markers)}")
    out = []
    for i, m in enumerate(markers):
        t, label = (m, "") if isinstance(m, (int, float)) and not isinstance(m, bool) else \
            (m.get("t"), m.get("label", "")) if isinstance(m, Mapping) else (None, None)
        try:
            t = float(t)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            t = math.nan
        if not math.isfinite(t) or t < 0:
            raise ConfigError(f"marker {i + 1}: its time must be a number of seconds >= 0; got {m!r}")
        if duration_s is not None and t > duration_s + 1e-6:
            raise ConfigError(f"marker {i + 1}: {t:g} s is after the end of the recording ({duration_s:g} s)")
        label = "" if label is None else str(label).strip()
        if len(label) > MAX_LABEL:
            raise ConfigError(f"marker {i + 1}: its label is longer than {MAX_LABEL} characters")
        out.append({"t": round(t, 4), "label": label})
    return sorted(out, key=lambda m: m["t"])


def read_markers(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """A markers file (recording key -> markers); an absent file is no markers."""
    p = Path(path)
    if not p.is_file():
        return {}
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the markers ({e})", path=p, expected="a JSON object of marker lists") from None
    if not isinstance(doc, dict):
        raise DataError("the markers file is not a JSON object", path=p, expected="{recording: [{t, label}]}")
    return {str(k): check_markers(v) for k, v in doc.items()}


def write_markers(path: str | Path, key: str, markers: Any, duration_s: float | None = None) -> list[dict[str, Any]]:
    """Set one recording's markers in the markers file (checked; written atomically); returns them."""
    p = Path(path)
    clean = check_markers(markers, duration_s)
    doc = read_markers(p)
    doc[str(key)] = clean
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, p)
    return clean


# -- the aligned average --------------------------------------------------------------------------
def _bins(values_t: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per bin of ``edges`` (NaN where a bin holds no value)."""
    ok = np.isfinite(values)
    idx = np.searchsorted(edges, values_t[ok], side="right") - 1
    keep = (idx >= 0) & (idx < len(edges) - 1)
    sums = np.bincount(idx[keep], weights=values[ok][keep], minlength=len(edges) - 1)
    counts = np.bincount(idx[keep], minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _mean_sem(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.vstack(rows)
    n = np.isfinite(a).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-empty bin: NaN, said by n = 0
        mean = np.nanmean(a, axis=0)
        sd = np.nanstd(a, axis=0, ddof=1) if a.shape[0] > 1 else np.full(a.shape[1], np.nan)
    sem = np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, sem, n


def aligned_response(recordings: Sequence[Mapping[str, Any]], *, before_s: float = 2.0, after_s: float = 5.0,
                     bin_s: float = 0.1) -> dict[str, Any]:
    """The average response across recordings aligned on their markers.

    Each recording is a mapping with ``frames`` (a DataFrame with ``time_s`` and, where present,
    ``motion`` and ``intensity``: frames.csv), ``intervals`` (a DataFrame with ``onset_s`` and
    ``offset_s``: intervals.csv), ``markers`` (times in seconds, or ``{t}`` dicts) and a
    ``name``. Every marker opens an epoch from ``-before_s`` to ``+after_s`` around it, cut in
    bins of ``bin_s``; per bin an epoch gives the mean motion score and intensity of its frames
    (an intensity left empty by analyze counts as 0 there, when the recording has any intensity
    at all), the share of its frames inside a spotted interval (``active``) and the interval
    onsets in it per second (``onset_rate``). Bins outside the recording stay empty.

    The average is the grand average of psychophysiology: epochs are first averaged within
    each recording, then the recordings' means are averaged, so a recording with many markers
    does not outweigh one with few; ``sem`` is the standard error across recordings and ``n``
    the recordings contributing to a bin. Recordings without markers are listed and left out.
    """
    import pandas as pd

    for name, v in (("before_s", before_s), ("after_s", after_s)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 600):
            raise ConfigError(f"{name} must be a number of seconds from 0 to 600; got {v!r}")
    if not (isinstance(bin_s, (int, float)) and math.isfinite(bin_s) and 0.001 <= bin_s <= 60):
        raise ConfigError(f"bin_s must be a number of seconds from 0.001 to 60; got {bin_s!r}")
    if before_s + after_s <= 0:
        raise ConfigError("the window is empty: give before_s or after_s above 0")
    n_bins = max(1, int(math.ceil((before_s + after_s) / bin_s - 1e-9)))
    rel_edges = -before_s + bin_s * np.arange(n_bins + 1)
    measures = ("motion", "intensity", "active", "onset_rate")
    per_rec: dict[str, list[np.ndarray]] = {m: [] for m in measures}
    listed = []
    for k, rec in enumerate(recordings):
        name = str(rec.get("name") or f"recording {k + 1}")
        times = sorted(float(m["t"] if isinstance(m, Mapping) else m) for m in (rec.get("markers") or []))
        frames = rec.get("frames")
        if frames is None or not isinstance(frames, pd.DataFrame) or "time_s" not in frames:
            raise DataError(f"{name}: no frames table with a time_s column", expected="analyze's frames.csv")
        listed.append({"name": name, "epochs": len(times)})
        if not times:
            continue
        t = frames["time_s"].to_numpy(float)
        motion = frames["motion"].to_numpy(float) if "motion" in frames else np.full(len(t), np.nan)
        inten = frames["intensity"].to_numpy(float) if "intensity" in frames else np.full(len(t), np.nan)
        if np.isfinite(inten).any():
            inten = np.where(np.isfinite(inten), inten, 0.0)
        iv = rec.get("intervals")
        on = iv["onset_s"].to_numpy(float) if iv is not None and len(iv) else np.zeros(0)
        off = iv["offset_s"].to_numpy(float) if iv is not None and len(iv) else np.zeros(0)
        active = np.zeros(len(t))
        for a, b in zip(on, off):
            active[(t >= a) & (t <= b)] = 1.0
        t_end = float(t[-1]) if len(t) else 0.0
        epochs: dict[str, list[np.ndarray]] = {m: [] for m in measures}
        for m0 in times:
            edges = m0 + rel_edges
            epochs["motion"].append(_bins(t, motion, edges))
            epochs["intensity"].append(_bins(t, inten, edges))
            epochs["active"].append(_bins(t, active, edges))
            counts = np.histogram(on, bins=edges)[0].astype(float)
            inside = (edges[1:] > 0) & (edges[:-1] <= t_end)  # bins the recording covers
            epochs["onset_rate"].append(np.where(inside, counts / bin_s, np.nan))
        for m in measures:
            mean, _, _ = _mean_sem(epochs[m])
            per_rec[m].append(mean)
    used = [r for r in listed if r["epochs"]]
    if not used:
        raise ConfigError("no recording has a marker: add markers (stimulus onsets) before averaging")
    centres = (rel_edges[:-1] + rel_edges[1:]) / 2
    result: dict[str, Any] = {"t": _clean(centres), "before_s": float(before_s), "after_s": float(after_s),
                              "bin_s": float(bin_s), "recordings": listed, "n_recordings": len(used),
                              "n_epochs": sum(r["epochs"] for r in used)}
    for m in measures:
        mean, sem, n = _mean_sem(per_rec[m])
        result[m] = {"mean": _clean(mean), "sem": _clean(sem), "n": [int(x) for x in n]}
    return result


def read_recording(out_dir: str | Path, markers: Any, name: str | None = None) -> dict[str, Any]:
    """One finished analysis folder as :func:`aligned_response` takes it."""
    import pandas as pd

    out = Path(out_dir)
    try:
        frames = pd.read_csv(out / "frames.csv", usecols=lambda c: c in ("time_s", "motion", "intensity"))
        intervals = pd.read_csv(out / "intervals.csv")
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the analysis ({e})", path=out,
                        expected="frames.csv and intervals.csv as `mekit analyze` writes them") from None
    return {"name": name or out.name, "frames": frames, "intervals": intervals, "markers": check_markers(markers)}


def aligned_response_csv(result: Mapping[str, Any], path: str | Path) -> Path:
    """:func:`aligned_response`'s average as a CSV (one row per bin)."""
    import pandas as pd

    cols: dict[str, Any] = {"t": result["t"]}
    for m in ("motion", "intensity", "active", "onset_rate"):
        cols[f"{m}_mean"] = result[m]["mean"]
        cols[f"{m}_sem"] = result[m]["sem"]
        cols[f"{m}_n"] = result[m]["n"]
    p = Path(path)
    pd.DataFrame(cols).to_csv(p, index=False)
    return p


# -- the playable video ----------------------------------------------------------------------------
def web_video(src: str | Path, dst: str | Path | None = None, progress: Any = None) -> Path:
    """``src`` (the annotated video) re-encoded as VP8 in WebM, which browsers play (see the
    module docstring); ``dst`` defaults to ``annotated.webm`` beside it. Written under a
    temporary name and renamed when complete. ``progress(done, total)`` is called about once a
    second of video."""
    import cv2

    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_name(WEB_VIDEO)
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        cap.release()
        raise DataError("cannot open the video", path=src, expected="the annotated video an analysis wrote")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    fps = fps if math.isfinite(fps) and fps > 0 else 30.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    tmp = dst.with_name(f".{dst.stem}.tmp-{os.getpid()}{dst.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"VP80"), fps, (w, h))
    try:
        if not writer.isOpened():
            raise DataError("this OpenCV cannot write VP8 WebM video", path=dst,
                            expected="an OpenCV with its FFmpeg video backend (opencv-python wheels have it)")
        n, step = 0, max(1, int(round(fps)))
        while True:
            ok, img = cap.read()
            if not ok:
                break
            writer.write(img)
            n += 1
            if progress is not None and n % step == 0:
                progress(n, max(total, n))
        writer.release()
        if n == 0:
            raise DataError("the video holds no frames", path=src, expected="the annotated video an analysis wrote")
        os.replace(tmp, dst)
    finally:
        writer.release()
        cap.release()
        tmp.unlink(missing_ok=True)
    return dst


__all__ = ["MARKERS", "WEB_VIDEO", "aligned_response", "aligned_response_csv", "check_markers", "read_markers",
           "read_recording", "timeline_data", "web_video", "write_markers"]

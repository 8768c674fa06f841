"""Analyse a recording: spot the micro- and macro-expressions of a video, a frame folder or a
camera, recognise each one with a classification bundle and measure its intensity with an
intensity bundle.

The pipeline runs frame by frame, with memory bounded whatever the recording's length:

    frame source (mekit.media) -> face track (analysis.track.FaceTracker: detection every few
    frames, template tracking between, a smoothed pose so consecutive crops are registered)
    -> spotter (analysis.spotting: a registered one; "motion" is training-free) -> for each
    interval as it closes: its aligned face crops (kept in a ring buffer as long as the
    longest expression) through the bundles -> one row per interval.

Each closed interval is emitted as an ``interval`` event (:mod:`mekit.events`) as soon as it is
known, and progress as ``progress`` events (frames done, frames per second, frames without a
face, dropped frames of a live source). :func:`analyze` collects everything and, given an
output folder, writes:

- ``intervals.csv`` and ``intervals.json``: one row per interval (onset, apex, offset as frame
  numbers and seconds, kind micro/macro, spotting score, the class and its probabilities, the
  intensity peak and its frame);
- ``frames.csv``: one row per frame (time, tracking status, face box), written as the frames
  go, never held in memory;
- ``megc_spotting.csv``: the intervals in the MEGC spotting submission layout;
- ``timeline.png``: the face's presence and the intervals over time, coloured by class;
- ``analysis.json``: the input, the settings, counts and speed.

A bundle labels a recognised interval from the aligned crops the tracker made (the eye line
levelled, the face filling the crop), so its preprocessing is told those frames are face crops
(no second face detection).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mekit import events
from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: side of the colour face crops kept for recognition (bundles resize to their own input size)
RECOGNITION_SIZE = 128
#: seconds of crops kept for recognition beyond the spotter's horizon (how long after its onset
#: an interval can be returned)
BUFFER_MARGIN_S = 1.0
#: the frames.csv columns
FRAME_COLUMNS = ("index", "time_s", "status", "x0", "y0", "x1", "y1")


@dataclass
class AnalysisResult:
    """What :func:`analyze` found: one row per interval, and the run's figures."""

    intervals: Any  # pandas.DataFrame
    summary: dict[str, Any]
    out_dir: Path | None = None
    classes: list[str] = field(default_factory=list)


class _CropBuffer:
    """The last ``n`` aligned colour crops by frame index: what recognition reads once an
    interval closes (at most the longest expression plus a margin, so memory stays bounded)."""

    def __init__(self, n: int) -> None:
        self._items: deque[tuple[int, np.ndarray]] = deque(maxlen=max(int(n), 2))

    def add(self, index: int, crop: np.ndarray) -> None:
        self._items.append((index, crop))

    def frames(self, onset: int, offset: int) -> list[tuple[int, np.ndarray]]:
        return [(i, c) for i, c in self._items if onset <= i <= offset]


class _Recogniser:
    """Labels an interval's crops with a classification bundle and measures them with an intensity
    bundle, through mekit's ordinary prediction path (a temporary frame folder of the crops)."""

    def __init__(self, model: Any = None, intensity: Any = None, device: str | None = None) -> None:
        from mekit.engine.bundle import load_bundle

        self.model = load_bundle(model, device=device) if isinstance(model, (str, Path)) else model
        self.intensity = load_bundle(intensity, device=device) if isinstance(intensity, (str, Path)) else intensity
        if self.model is not None and self.model.meta.get("task", "classification") != "classification":
            raise ConfigError(f"--model {model}: a classification bundle is needed (this one is for task "
                              f"{self.model.meta.get('task')!r}); give intensity bundles with --intensity")
        if self.intensity is not None and self.intensity.meta.get("task") != "intensity":
            raise ConfigError(f"--intensity {intensity}: an intensity bundle is needed (trained with task: intensity)")
        self.classes = list(self.model.classes) if self.model is not None else []
        self.active = self.model is not None or self.intensity is not None
        self._tmp = Path(tempfile.mkdtemp(prefix="mekit-analyze-"))

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __call__(self, iv: Any, crops: list[tuple[int, np.ndarray]], fps: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.model is None and self.intensity is None:
            return out
        if len(crops) < 2:
            out["recognition_note"] = "the interval's face crops were not available"
            return out
        import cv2

        from mekit.data.schema import SampleTable

        folder = self._tmp / f"interval_{iv.onset}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, crop in crops:
            cv2.imwrite(str(folder / f"img{i}.png"), crop)
        from mekit.engine.predict import input_record

        first, last = crops[0][0], crops[-1][0]
        record = {**input_record(folder.name, "frames", folder, "img{frame}.png", first, last, fps),
                  "apex": min(max(int(iv.apex), first), last), "face_cropped": True}
        table = SampleTable.from_records([record], name="input")
        try:
            if self.model is not None:
                from mekit.engine.predict import predict_table

                df = predict_table(self.model, table, progress=False, cache=False)
                if len(df):
                    row = df.iloc[0]
                    out["label"] = str(row["pred"])
                    out.update({f"p_{c}": float(row[f"p_{c}"]) for c in self.classes})
            if self.intensity is not None:
                from mekit.tasks.intensity import predict_curves

                curve = predict_curves(self.intensity, table)
                if len(curve) and "frame" in curve:
                    k = int(np.argmax(curve["pred"].to_numpy()))
                    out["intensity_peak"] = float(curve["pred"].iloc[k])
                    out["intensity_peak_frame"] = int(curve["frame"].iloc[k])
                    out["intensity_mean"] = float(curve["pred"].mean())
        except (DataError, ConfigError) as e:  # one interval that cannot be read never stops the stream
            out["recognition_note"] = str(e)
            log.warning("interval %d-%d not recognised: %s", iv.onset, iv.offset, e)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return out


def stream(input: str | Path | None = None, *, camera: int | None = None, model: Any = None, intensity: Any = None,
           fps: float | None = None, spotter: str = "motion", spotter_params: dict[str, Any] | None = None,
           detector: str = "auto", crop_size: int = 128, live: bool = False, start: int = 0,
           max_frames: int | None = None, frames_csv: Path | None = None, device: str | None = None,
           stats: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Yield one dict per spotted interval of the recording, as soon as it closes (see the module
    docstring). ``live`` plays a file or folder at its real frame rate as a camera would (frames the
    pipeline cannot keep up with are dropped and counted); a camera is always live. ``stats``, when
    given, is filled with the run's counts and speed as it goes."""
    from mekit.analysis.spotting import make_spotter
    from mekit.analysis.track import FaceTracker
    from mekit.media import PacedSource, open_source

    source = open_source(input, fps=fps, start=start, camera=camera)
    if live and camera is None:
        source = PacedSource(source)
    st = stats if stats is not None else {}
    st.update(input=str(input) if camera is None else f"camera {camera}", fps=float(source.fps),
              size=list(source.size), frames=0, frames_without_face=0, intervals=0, start=start)
    sp = make_spotter(spotter, float(source.fps), **dict(spotter_params or {}))
    recognise = _Recogniser(model, intensity, device)
    st["classes"] = recognise.classes
    # an interval is returned up to the spotter's horizon (frames) after its onset: keep that many
    horizon = int(getattr(sp, "horizon", 0)) or math.ceil(source.fps * 8.0)
    buffer = _CropBuffer(horizon + math.ceil(source.fps * BUFFER_MARGIN_S))
    writer = _FramesWriter(frames_csv)
    t0 = time.perf_counter()
    latencies: list[float] = []

    video = f"camera{camera}" if camera is not None else Path(str(input)).stem

    def finish(iv: Any) -> dict[str, Any]:
        row = {"video": video, "onset": iv.onset, "apex": iv.apex, "offset": iv.offset, "onset_s": round(iv.onset_s, 4),
               "apex_s": round(iv.apex_s, 4), "offset_s": round(iv.offset_s, 4), "kind": iv.kind,
               "score": round(float(iv.score), 3), "flags": ";".join(iv.flags)}
        row.update(recognise(iv, buffer.frames(iv.onset, iv.offset), float(source.fps)))
        st["intervals"] += 1
        events.emit("interval", **{("interval_kind" if k == "kind" else k): v for k, v in row.items()
                                   if not k.startswith("p_")})
        return row

    try:
        with FaceTracker(detector=detector, size=RECOGNITION_SIZE) as tracker, \
                events.Stage("analyze", source.n_frames, input=st["input"]) as stage:
            for frame in source:
                state = tracker.update(frame.image, frame.index)
                crop = None
                if state.face:
                    crop = state.crop(crop_size)
                    if recognise.active:  # the colour crop, with the alignment of the grey one
                        buffer.add(frame.index, state.alignment.apply(frame.image, RECOGNITION_SIZE))
                else:
                    st["frames_without_face"] += 1
                writer.write(frame, state)
                for iv in sp.push(frame.index, crop, state.rois(crop_size) if state.face else None):
                    yield finish(iv)
                st["frames"] += 1
                if frame.captured_s == frame.captured_s:  # a live source stamps capture times
                    latencies.append(time.monotonic() - frame.captured_s)
                stage.advance(1)
                if max_frames is not None and st["frames"] >= max_frames:
                    break
            for iv in sp.flush():
                yield finish(iv)
    finally:
        elapsed = time.perf_counter() - t0
        st.update(seconds=round(elapsed, 3), frames_per_s=round(st["frames"] / elapsed, 1) if elapsed > 0 else None,
                  dropped=int(getattr(source, "dropped", 0)), skipped=int(getattr(source, "skipped", 0)),
                  spotter=sp.to_dict() if hasattr(sp, "to_dict") else {"name": spotter})
        if latencies:
            st["latency_ms"] = {"p50": round(1000 * float(np.percentile(latencies, 50)), 2),
                                "p95": round(1000 * float(np.percentile(latencies, 95)), 2)}
        writer.close()
        recognise.close()
        source.close()


class _FramesWriter:
    """Appends one row per frame to frames.csv as frames go (nothing kept in memory)."""

    def __init__(self, path: Path | None) -> None:
        self._f = None
        if path is not None:
            import csv

            self._f = open(path, "w", newline="")  # noqa: SIM115 - closed by close()
            self._w = csv.writer(self._f)
            self._w.writerow(FRAME_COLUMNS)

    def write(self, frame: Any, state: Any) -> None:
        if self._f is None:
            return
        box = [round(float(v), 1) for v in state.box] if state.box is not None else ["", "", "", ""]
        self._w.writerow([frame.index, round(frame.time_s, 4), state.status, *box])

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def analyze(input: str | Path | None = None, *, out: str | Path | None = None, **options: Any) -> AnalysisResult:
    """Spot, recognise and measure the expressions of a recording (see the module docstring);
    ``options`` are those of :func:`stream`. With ``out``, writes the report folder."""
    import pandas as pd

    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        from mekit.paths import prepare_out_dir

        prepare_out_dir(out_dir, "output folder")
    stats: dict[str, Any] = {}
    rows = list(stream(input, frames_csv=None if out_dir is None else out_dir / "frames.csv", stats=stats,
                       **options))
    classes = stats.get("classes", [])
    cols = ["video", "onset", "apex", "offset", "onset_s", "apex_s", "offset_s", "kind", "score", "flags"]
    intervals = pd.DataFrame(rows, columns=list(dict.fromkeys([*cols, *(k for r in rows for k in r)])))
    summary = {**stats, "kinds": {k: int(v) for k, v in intervals["kind"].value_counts().items()}}
    result = AnalysisResult(intervals, summary, out_dir, list(classes))
    if out_dir is not None:
        write_outputs(result, out_dir)
    return result


def write_outputs(result: AnalysisResult, out_dir: Path) -> None:
    """intervals.csv/.json, megc_spotting.csv, timeline.png and analysis.json (frames.csv is
    written while the frames go)."""
    from mekit.analysis.spot_metrics import write_megc_submission

    iv = result.intervals
    iv.to_csv(out_dir / "intervals.csv", index=False)
    (out_dir / "intervals.json").write_text(json.dumps(json.loads(iv.to_json(orient="records")), indent=2))
    rows = [{"video": r.video, "onset": int(r.onset), "offset": int(r.offset), "kind": r.kind,
             **({"emotion": str(r.label)} if isinstance(getattr(r, "label", None), str) else {})}
            for r in iv.itertuples() if r.kind in ("micro", "macro")]
    write_megc_submission(rows, out_dir / "megc_spotting.csv")
    (out_dir / "analysis.json").write_text(json.dumps(result.summary, indent=2, default=str))
    plot_timeline(result, out_dir / "timeline.png")


def plot_timeline(result: AnalysisResult, path: Path) -> Path:
    """The recording's timeline: where a face was tracked, and each interval as a band coloured
    by its class (grey where no classification bundle was given), micro above, macro below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fps = float(result.summary.get("fps") or 1.0)
    frames_csv = path.parent / "frames.csv"
    fig, ax = plt.subplots(figsize=(12, 2.8))
    if frames_csv.is_file():
        fr = pd.read_csv(frames_csv, usecols=["time_s", "status"])
        step = max(1, len(fr) // 5000)  # at most a few thousand points, whatever the length
        fr = fr.iloc[::step]
        ax.fill_between(fr["time_s"], 0, (fr["status"] != "lost").astype(float) * 0.15, step="post",
                        color="#9ecae1", label="face tracked")
    palette = plt.get_cmap("tab10")
    colours = {c: palette(i % 10) for i, c in enumerate(result.classes)}
    seen: set[str] = set()
    for r in result.intervals.itertuples():
        label = getattr(r, "label", None)
        c = colours.get(label, "0.4") if isinstance(label, str) else "0.4"
        y0, y1 = (0.55, 0.95) if r.kind == "micro" else (0.2, 0.5)
        name = f"{label}" if isinstance(label, str) else r.kind
        ax.axvspan(r.onset_s, r.offset_s + 1.0 / fps, ymin=y0, ymax=y1, color=c, alpha=0.85,
                   label=None if name in seen else name)
        seen.add(name)
    ax.set_yticks([0.35, 0.75])
    ax.set_yticklabels(["macro", "micro"])
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_title(f"{Path(str(result.summary.get('input', ''))).name}: {len(result.intervals)} intervals "
                 f"({result.summary.get('kinds', {})})")
    if seen or frames_csv.is_file():
        ax.legend(loc="upper right", fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

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
- ``frames.csv``: one row per frame (time, tracking status, face box, the spotter's motion
  score, the intensity inside a recognised interval), written as the frames go through a delay
  line as long as the spotter's horizon (:class:`_FrameRows`), never held in memory;
- ``annotated.mp4``: the recording with the face box, the motion score, each interval marked
  with its kind, class probability bars and intensity, and a timeline strip
  (:mod:`mekit.analysis.annotate`; drawn through the same delay line, ``video=False`` skips it);
- ``megc_spotting.csv``: the intervals in the MEGC spotting submission layout;
- ``timeline.png``: the motion score against the spotter's threshold, the intensity, the face's
  presence and the intervals over time, coloured by class;
- ``analysis.json``: the input, the settings, counts and speed (and, for a resumed run, from
  which frame it was resumed).

Resuming an interrupted analysis (``resume=True``, ``mekit analyze ... --resume``) is done by
REPLAY, not by saving state. While it runs, the output folder holds ``frames.csv`` (flushed row
by row), ``intervals.partial.jsonl`` (each interval as it closes, flushed line by line) and,
every few seconds, ``progress.json``: the input and everything that changes a result (spotter
name and parameters, detector, crop size, the bundles and their fingerprints), the last frame
whose frames.csv row is written and the file's length at that moment. A resumed run checks that
record against the new run's settings, cuts frames.csv back to the recorded length, restarts
the source :func:`warmup_frames` before the first frame it still has to write, feeds the warm-up
frames through a fresh tracker and spotter without writing their rows, drops the intervals it
finds again (onset at or before what was already recorded), and carries on. Why replay: an
output folder never holds pickled state (it is safe to open whatever its origin), it works
unchanged for every registered spotter and tracker (none has to learn to save itself), and it
costs only the warm-up's seconds of re-analysis (33 s of video for the ``motion`` spotter's
defaults, however long the recording). A fresh tracker and spotter are not bit-identical to ones
that ran from the start (the tracker's smoothed pose and detection phase, the spotter's noise
level refresh phase), so the onset or offset of an interval found after the resume point can
differ by a frame or two from the uninterrupted run's (2 frames at most in the tests, at 30 fps);
intervals before it are those recorded.

A bundle labels a recognised interval from the aligned crops the tracker made (the eye line
levelled, the face filling the crop), so its preprocessing is told those frames are face crops
(no second face detection).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
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
#: the frames.csv columns (``motion``: the spotter's per-frame score, empty where it gives none;
#: ``intensity``: the intensity bundle's value inside a recognised interval, empty elsewhere)
FRAME_COLUMNS = ("index", "time_s", "status", "x0", "y0", "x1", "y1", "motion", "intensity")
#: what an interrupted run leaves beside frames.csv (removed when the run finishes)
PARTIAL_INTERVALS = "intervals.partial.jsonl"
#: the annotated video (MJPG .avi where the mp4 writer cannot open)
ANNOTATED = "annotated.mp4"
PROGRESS = "progress.json"
#: the key of an interval's intensity curve in intervals.partial.jsonl (not an interval column)
CURVE_KEY = "_intensity_curve"
#: what a finished run writes at the end
FINAL_OUTPUTS = ("intervals.csv", "intervals.json", "megc_spotting.csv", "timeline.png", "analysis.json")
#: seconds between two writes of progress.json (a resumed run redoes at most this much beyond
#: its warm-up)
PROGRESS_EVERY_S = 2.0
#: warm-up (seconds) replayed before the resume point for a spotter that does not say its own
#: (a ``warmup`` property, in frames): longer than the memory of any spotter shipped
WARMUP_FALLBACK_S = 30.0
#: the most points the timeline draws per curve, whatever the recording's length
TIMELINE_POINTS = 4000


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

    def __call__(self, iv: Any, crops: list[tuple[int, np.ndarray]],
                 fps: float) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray] | None]:
        """The interval's row fields (label, probabilities, intensity summary) and its intensity
        curve as (frame indices, values), None without an intensity bundle or per-frame curve."""
        out: dict[str, Any] = {}
        curve_out: tuple[np.ndarray, np.ndarray] | None = None
        if self.model is None and self.intensity is None:
            return out, curve_out
        if len(crops) < 2:
            out["recognition_note"] = "the interval's face crops were not available"
            return out, curve_out
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
                    curve_out = (curve["frame"].to_numpy(np.int64), curve["pred"].to_numpy(np.float64))
        except (DataError, ConfigError) as e:  # one interval that cannot be read never stops the stream
            out["recognition_note"] = str(e)
            log.warning("interval %d-%d not recognised: %s", iv.onset, iv.offset, e)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return out, curve_out


def is_frame_source(x: Any) -> bool:
    """Whether ``x`` is a frame source object (:class:`mekit.media.FrameSource`) rather than a
    path or a camera index: :func:`stream` and :func:`analyze` read such a source as it is."""
    return x is not None and not isinstance(x, (str, os.PathLike, int)) and hasattr(x, "__iter__") \
        and hasattr(x, "fps") and hasattr(x, "size")


def warmup_frames(sp: Any, fps: float) -> int:
    """Frames to replay before the first frame a resumed run still has to write, so that a fresh
    spotter decides from there on what the interrupted one would have: the spotter's own
    ``warmup`` (for :class:`~mekit.analysis.spotting.MotionSpotter`: noise window + 2 spans +
    the longest expression + 1 s), or :data:`WARMUP_FALLBACK_S` seconds for a spotter that does
    not say. The tracker needs less than a second of it (its smoothed pose settles in a few
    frames, it re-detects every few frames)."""
    w = getattr(sp, "warmup", None)
    if isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 0:
        return int(w)
    return math.ceil(WARMUP_FALLBACK_S * float(fps))


def stream(input: str | Path | None = None, *, camera: int | None = None, model: Any = None, intensity: Any = None,
           fps: float | None = None, spotter: str = "motion", spotter_params: dict[str, Any] | None = None,
           detector: str = "auto", crop_size: int = 128, live: bool = False, start: int = 0,
           max_frames: int | None = None, frames_csv: Path | None = None, device: str | None = None,
           stats: dict[str, Any] | None = None, journal: _Journal | None = None,
           annotated: Path | None = None) -> Iterator[dict[str, Any]]:
    """Yield one dict per spotted interval of the recording, as soon as it closes (see the module
    docstring). ``input`` is a path, or a frame source object read as it is (a
    :class:`mekit.media.PushSource` fed from outside; it ends the run when it ends). ``live``
    plays a file or folder at its real frame rate as a camera would (frames the pipeline cannot
    keep up with are dropped and counted); a camera is always live. ``stats``, when
    given, is filled with the run's counts and speed as it goes. ``frames_csv`` receives one row per
    frame through a delay line of the spotter's horizon (memory bounded whatever the length).
    ``journal`` is :func:`analyze`'s record of a resumable run (it also decides, on a resume, where
    the source restarts and what is replayed without being written again). ``annotated`` is the
    path of the annotated video (:class:`mekit.analysis.annotate.AnnotatedVideo`), drawn through
    the same delay line; a resumed run writes the frames after its resume point to a second file
    beside it (``<stem>-from<frame>.mp4``: an mp4 cannot be appended to)."""
    from mekit.analysis.spotting import make_spotter
    from mekit.analysis.track import FaceTracker
    from mekit.media import PacedSource, open_source

    # a frame source given as the input (a PushSource fed from outside) is read as it is
    source = input if is_frame_source(input) else open_source(input, fps=fps, start=start, camera=camera)
    recognise = None
    writer = None
    video_out = None
    try:
        sp = make_spotter(spotter, float(source.fps), **dict(spotter_params or {}))
        replay = None
        if journal is not None:
            settings = run_settings(input, camera, source, sp, detector=detector, crop_size=crop_size, model=model,
                                    intensity=intensity, start=start, max_frames=max_frames, live=live)
            replay = journal.begin(settings, warmup_frames(sp, source.fps), start)
            if replay is not None and replay.start != start:
                source.close()
                source = open_source(input, fps=fps, start=replay.start, camera=camera)
        if live and camera is None:
            source = PacedSource(source)
        recognise = _Recogniser(model, intensity, device)
        writer = _FramesWriter(frames_csv, append=replay is not None)
        horizon = int(getattr(sp, "horizon", 0)) or math.ceil(source.fps * 8.0)
        margin = math.ceil(source.fps * BUFFER_MARGIN_S)
        if annotated is not None:
            from mekit.analysis.annotate import AnnotatedVideo

            path = Path(annotated)
            if replay is not None:
                path = path.with_name(f"{path.stem}-from{replay.rows_through + 1}{path.suffix}")
            threshold = getattr(sp, "threshold", None)
            video_out = AnnotatedVideo(path, float(source.fps), tuple(source.size), recognise.classes,
                                       delay_frames=horizon + margin,
                                       threshold=float(threshold) if isinstance(threshold, (int, float)) else None)
    except BaseException:
        if recognise is not None:
            recognise.close()
        if writer is not None:
            writer.close()
        source.close()
        raise
    st = stats if stats is not None else {}
    st.update(input=source.name if is_frame_source(input) else str(input) if camera is None else f"camera {camera}",
              fps=float(source.fps),
              size=list(source.size), frames=replay.rows if replay else 0,
              frames_without_face=replay.without_face if replay else 0,
              intervals=replay.intervals if replay else 0, start=start, classes=recognise.classes)
    if hasattr(sp, "record_scores"):
        sp.record_scores()
    # an interval is returned up to the spotter's horizon (frames) after its onset: keep that many
    buffer = _CropBuffer(horizon + margin)
    rows = _FrameRows(writer, horizon + margin, replay.curves if replay else ())
    st["delay_frames"] = rows.delay
    if journal is not None:
        journal.commit(rows)  # the record exists from the first frame on (frames.csv's header)
    t0 = time.perf_counter()
    latencies: deque[float] = deque(maxlen=10_000)  # the latest ones: bounded on a camera too
    processed = 0
    completed = False
    skip_rows = replay.rows_through if replay else -1
    skip_intervals = replay.intervals_through if replay else -1
    next_commit = time.monotonic() + PROGRESS_EVERY_S

    video = (f"camera{camera}" if camera is not None else source.name if is_frame_source(input)
             else Path(str(input)).stem)

    def finish(iv: Any) -> dict[str, Any]:
        row = {"video": video, "onset": iv.onset, "apex": iv.apex, "offset": iv.offset, "onset_s": round(iv.onset_s, 4),
               "apex_s": round(iv.apex_s, 4), "offset_s": round(iv.offset_s, 4), "kind": iv.kind,
               "score": round(float(iv.score), 3), "flags": ";".join(iv.flags)}
        fields, curve = recognise(iv, buffer.frames(iv.onset, iv.offset), float(source.fps))
        row.update(fields)
        if curve is not None:
            rows.intensity(iv.onset, iv.offset, *curve)
        st["intervals"] += 1
        if video_out is not None:
            video_out.interval(row)
        if journal is not None:
            journal.interval(row, curve)
        events.emit("interval", **{("interval_kind" if k == "kind" else k): v for k, v in row.items()
                                   if not k.startswith("p_")})
        return row

    def closed(found: list[Any]) -> Iterator[dict[str, Any]]:
        if hasattr(sp, "record_scores"):
            for fs in sp.take_scores():
                rows.score(fs.index, fs.score)
                if video_out is not None:
                    video_out.set_score(fs.index, fs.score)
        for iv in found:
            # a replayed interval already recorded (or found while the replay was warming up)
            if iv.onset <= skip_intervals:
                continue
            yield finish(iv)

    total = source.n_frames - (replay.start if replay else start) if source.n_frames else None
    try:
        with FaceTracker(detector=detector, size=RECOGNITION_SIZE) as tracker, \
                events.Stage("analyze", total, input=st["input"]) as stage:
            try:
                for frame in source:
                    state = tracker.update(frame.image, frame.index)
                    crop = None
                    if state.face:
                        crop = state.crop(crop_size)
                        if recognise.active:  # the colour crop, with the alignment of the grey one
                            buffer.add(frame.index, state.alignment.apply(frame.image, RECOGNITION_SIZE))
                    if frame.index > skip_rows:
                        rows.add(frame, state)
                        if video_out is not None:
                            video_out.frame(frame.index, frame.image, state.box, None, state.status)
                        st["frames"] += 1
                        st["frames_without_face"] += 0 if state.face else 1
                    yield from closed(sp.push(frame.index, crop, state.rois(crop_size) if state.face else None))
                    rows.release()
                    processed += 1
                    if frame.captured_s == frame.captured_s:  # a live source stamps capture times
                        latencies.append(time.monotonic() - frame.captured_s)
                    stage.advance(1)
                    if journal is not None and time.monotonic() >= next_commit:
                        journal.commit(rows)
                        next_commit = time.monotonic() + PROGRESS_EVERY_S
                    if max_frames is not None and st["frames"] >= max_frames:
                        break
            except KeyboardInterrupt:
                if camera is None:  # a file or folder stops here and can be resumed
                    raise
                # Ctrl-C is how a camera run ends: what was seen is closed and written as usual
                st["stopped"] = "interrupted"
                log.info("camera %s: stopped by the user after %d frames", camera, st["frames"])
            yield from closed(sp.flush())
            rows.release(everything=True)
            completed = True
    finally:
        elapsed = time.perf_counter() - t0
        st.update(seconds=round(elapsed, 3), frames_per_s=round(processed / elapsed, 1) if elapsed > 0 else None,
                  dropped=int(getattr(source, "dropped", 0)), skipped=int(getattr(source, "skipped", 0)),
                  spotter=sp.to_dict() if hasattr(sp, "to_dict") else {"name": spotter},
                  rows_held_max=rows.longest)
        if replay is not None:
            st["resume"] = {"resumed_from": replay.start, "rows_kept": replay.rows,
                            "intervals_kept": replay.intervals, "warmup_frames": replay.warmup,
                            "replayed_frames": max(0, min(processed, skip_rows - replay.start + 1)),
                            "resumes": replay.history}
        if latencies:
            st["latency_ms"] = {"p50": round(1000 * float(np.percentile(latencies, 50)), 2),
                                "p95": round(1000 * float(np.percentile(latencies, 95)), 2)}
        try:
            if journal is not None:
                # an interrupted run: the rows still in the delay line are not final and are
                # not written; the record says which rows are, so a resume starts from there
                journal.commit(rows)
        finally:
            writer.close()
            if video_out is not None:
                video_out.close(keep_through=None if completed else rows.last_written)
                st["annotated_video"] = video_out.path.name
            recognise.close()
            source.close()
            if journal is not None:
                journal.close()
        if not completed:
            log.info("analysis stopped after frame %s; %d rows written", rows.last_written, rows.written)


def run_settings(input: Any, camera: int | None, source: Any, sp: Any, *, detector: str, crop_size: int,
                 model: Any, intensity: Any, start: int, max_frames: int | None, live: bool) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one (as JSON): the input and its
    fingerprint, its frame count, rate and size, and every setting that changes a result."""
    from mekit.fingerprint import file_fingerprint

    settings = {"input": None if camera is not None else str(Path(str(input)).expanduser().resolve()),
                "input_fingerprint": None if camera is not None else file_fingerprint(Path(str(input)).expanduser()),
                "camera": camera, "n_frames": source.n_frames, "fps": float(source.fps), "size": list(source.size),
                "start": int(start), "max_frames": max_frames, "live": bool(live),
                "spotter": sp.to_dict() if hasattr(sp, "to_dict") else {"name": getattr(sp, "name", type(sp).__name__)},
                "detector": detector, "crop_size": int(crop_size),
                "model": _bundle_id(model), "intensity": _bundle_id(intensity)}
    return json.loads(json.dumps(settings, default=str))


def _bundle_id(bundle: Any) -> dict[str, Any] | None:
    """A bundle by path and file fingerprint (content hash up to 4 MB, else size + mtime), or,
    given as an object, by a hash of its meta."""
    if bundle is None:
        return None
    if isinstance(bundle, (str, Path)):
        from mekit.fingerprint import file_fingerprint

        p = Path(bundle).expanduser()
        return {"path": str(p.resolve()), "fingerprint": file_fingerprint(p)}
    import hashlib

    meta = json.dumps(getattr(bundle, "meta", {}), sort_keys=True, default=str)
    return {"object": type(bundle).__name__, "meta_sha": hashlib.sha256(meta.encode()).hexdigest()[:24]}


class _FramesWriter:
    """Appends rows to frames.csv, each flushed as it is written (so an interrupted run keeps
    every row it wrote); ``append`` continues a file a resumed run has cut back."""

    def __init__(self, path: Path | None, append: bool = False) -> None:
        self._f = None
        if path is not None:
            import csv

            # line buffering: one write per row, so a row is on disk once written
            self._f = open(path, "a" if append else "w", newline="", buffering=1)  # noqa: SIM115 - closed by close()
            self._w = csv.writer(self._f, lineterminator="\n")
            if not append:
                self._w.writerow(FRAME_COLUMNS)

    def write(self, row: list[Any]) -> None:
        if self._f is not None:
            self._w.writerow(row)

    def size(self) -> int | None:
        """Bytes written so far (all of them on disk: rows are flushed)."""
        if self._f is None:
            return None
        self._f.flush()
        return os.fstat(self._f.fileno()).st_size

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class _FrameRows:
    """frames.csv's delay line: each frame's row waits here until nothing can change it, then is
    written, in frame order, exactly once.

    A frame's motion score is decided ``lag`` frames after it (the spotter's forward reference),
    and its intensity when the interval holding it closes, up to the spotter's ``horizon`` frames
    after its onset. So a row is written once ``delay`` (the horizon plus a second) newer frames
    have come, or at the end of the stream. Memory: at most ``delay + 1`` rows of a few numbers
    each, fixed by the frame rate and the spotter's horizon, whatever the recording's length (a
    frame index and its row in a deque, and the same rows by index in a dict).

    An interval whose onset lies further back than the delay (possible only when bridged gaps
    without a face stretch its horizon in frames) finds some of its rows written already: they
    keep no intensity (the crop ring, sized alike, no longer holds those frames either)."""

    def __init__(self, writer: _FramesWriter | None, delay: int,
                 curves: Iterable[tuple[int, int, np.ndarray, np.ndarray]] = ()) -> None:
        self.delay = max(int(delay), 1)
        # intensity curves of intervals an interrupted run recorded whose rows it had not yet
        # written (onset, offset, frames, values): applied as a resumed run adds those rows
        self._curves = list(curves)
        self.writer = writer
        self._rows: deque[list[Any]] = deque()
        self._by_index: dict[int, list[Any]] = {}
        self.written = 0
        self.written_without_face = 0
        self.last_written = -1
        self.longest = 0
        self.late = 0  # intensity values that came after their row was written

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, frame: Any, state: Any) -> None:
        box = [round(float(v), 1) for v in state.box] if state.box is not None else ["", "", "", ""]
        row = [frame.index, round(frame.time_s, 4), state.status, *box, "", ""]
        self._rows.append(row)
        self._by_index[frame.index] = row
        if self._curves:
            self._curves = [c for c in self._curves if c[1] >= frame.index]
            for on, off, frames, values in self._curves:
                if on <= frame.index:
                    self.intensity(frame.index, frame.index, frames, values)
        self.longest = max(self.longest, len(self._rows))

    def score(self, index: int, value: float) -> None:
        row = self._by_index.get(int(index))
        if row is not None and value == value:  # NaN: the noise level was not known yet
            row[7] = round(float(value), 3)

    def intensity(self, onset: int, offset: int, frames: np.ndarray, values: np.ndarray) -> None:
        """Set the intensity of the rows of frames onset..offset from the bundle's curve (frame
        indices and values; between the frames it sampled, interpolated; outside them, none)."""
        if len(frames) == 0:
            return
        order = np.argsort(frames)
        frames, values = frames[order], values[order]
        lo, hi = max(onset, int(frames[0])), min(offset, int(frames[-1]))
        for i in range(lo, hi + 1):
            row = self._by_index.get(i)
            if row is None:
                self.late += 1 if i <= self.last_written else 0
                continue
            row[8] = round(float(np.interp(i, frames, values)), 4)

    def release(self, everything: bool = False) -> None:
        """Write the rows nothing can change any more (all of them at the end of the stream)."""
        keep = 0 if everything else self.delay
        while len(self._rows) > keep:
            row = self._rows.popleft()
            del self._by_index[row[0]]
            if self.writer is not None:
                self.writer.write(row)
            self.written += 1
            self.written_without_face += row[2] == "lost"
            self.last_written = row[0]


@dataclass
class _Replay:
    """Where a resumed run picks up what an interrupted one left."""

    start: int              # the frame the source restarts at
    rows_through: int       # the last frame whose frames.csv row is kept
    intervals_through: int  # a replayed interval with an onset at or before this is not emitted again
    rows: int               # frames.csv rows kept, and how many of them had no face
    without_face: int
    intervals: int          # intervals kept (intervals.partial.jsonl)
    warmup: int
    history: list[int]      # every frame this run was resumed from, the latest last
    curves: list[tuple[int, int, np.ndarray, np.ndarray]]  # recorded intensity curves past rows_through


class _Journal:
    """The record of a run in an output folder that makes it resumable: ``progress.json`` (the
    input and settings; the frames.csv rows written and the file's length at the moment it was
    written) and ``intervals.partial.jsonl`` (each interval as it closes).

    ``progress.json`` is written whole to a temporary file and renamed over the old one, so it is
    always one complete record; frames.csv may have grown past it (rows written after the last
    record): a resume cuts it back to the recorded length and replays those frames."""

    def __init__(self, out_dir: Path, resume: bool) -> None:
        self.out_dir = out_dir
        self.resume = resume
        self.recorded: list[dict[str, Any]] = []
        self._header: dict[str, Any] = {}
        self._rows0 = (0, 0, -1)  # rows, rows without a face, last index: kept from the earlier run
        self._n_intervals = 0
        self._history: list[int] = []
        self._curves: list[Any] = []
        self._f = None

    @staticmethod
    def state(out_dir: Path) -> str:
        """``"partial"`` (an interrupted run's record is there), ``"finished"`` or ``"empty"``."""
        if (out_dir / PROGRESS).is_file():
            return "partial"
        if (out_dir / "analysis.json").is_file():
            return "finished"
        return "empty"

    def begin(self, settings: dict[str, Any], warmup: int, start: int) -> _Replay | None:
        """Start the record: afresh, or (resuming) check the earlier one against ``settings``,
        cut frames.csv back to its recorded length, read the recorded intervals, and say where
        the replay starts."""
        self._header = {"format": 1, "settings": settings}
        jsonl = self.out_dir / PARTIAL_INTERVALS
        if not self.resume:
            self._f = open(jsonl, "w", buffering=1)  # noqa: SIM115 - closed by close()
            return None
        old = self._read_progress()
        diff = _differences(old.get("settings", {}), settings)
        if diff:
            raise ConfigError(f"cannot resume the analysis in {self.out_dir}: {diff} (as recorded in {PROGRESS} "
                              f"-> as given now); resume with the same input and settings, or analyse into a new "
                              f"folder")
        rows = old.get("rows", {})
        try:
            n, without, last, size = (int(rows["count"]), int(rows["without_face"]), int(rows["last_index"]),
                                      int(rows["bytes"]))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{PROGRESS} has no usable 'rows' record", path=self.out_dir / PROGRESS, value=rows,
                            expected="count, without_face, last_index and bytes, as an analysis writes them") from None
        self._cut_frames_csv(size)
        lines = self._read_intervals(jsonl)
        self._curves = [r.pop(CURVE_KEY, None) for r in lines]
        self.recorded = lines
        self._f = open(jsonl, "a", buffering=1)  # noqa: SIM115 - closed by close()
        self._rows0 = (n, without, last)
        self._n_intervals = len(self.recorded)
        last_offset = max((int(r["offset"]) for r in self.recorded), default=-1)
        first = max(int(start), last - warmup + 1) if last >= 0 else int(start)
        self._history = [*(int(h) for h in old.get("resumes", [])), first]
        curves = [(int(r["onset"]), int(r["offset"]), np.asarray(c["frames"], np.int64),
                   np.asarray(c["values"], np.float64))
                  for r, c in zip(self.recorded, self._curves) if c is not None and int(r["offset"]) > last]
        replay = _Replay(start=first, rows_through=last, intervals_through=max(last_offset, last), rows=n,
                         without_face=without, intervals=len(self.recorded), warmup=warmup, history=self._history,
                         curves=curves)
        log.info("%s: resuming after frame %d (%d rows, %d intervals kept); replaying from frame %d", self.out_dir,
                 last, n, len(self.recorded), first)
        return replay

    def interval(self, row: dict[str, Any], curve: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Record a closed interval (one flushed line; with its intensity curve, for the rows a
        resumed run has still to write)."""
        if self._f is not None:
            rec = row if curve is None else {**row, CURVE_KEY: {"frames": curve[0].tolist(),
                                                                "values": curve[1].tolist()}}
            self._f.write(json.dumps(rec, default=_plain) + "\n")
            self._n_intervals += 1

    def commit(self, rows: _FrameRows) -> None:
        """Record the rows written so far (and frames.csv's length with them)."""
        n0, w0, last0 = self._rows0
        size = rows.writer.size() if rows.writer is not None else None
        self._write_progress(rows=n0 + rows.written, without_face=w0 + rows.written_without_face,
                             last=max(last0, rows.last_written), size=size, intervals=self._n_intervals)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def finish(self) -> None:
        """The run is finished and its outputs written: remove the record (progress.json last,
        so a crash before leaves a run that resumes and writes the outputs again)."""
        self.close()
        (self.out_dir / PARTIAL_INTERVALS).unlink(missing_ok=True)
        (self.out_dir / PROGRESS).unlink(missing_ok=True)

    def _write_progress(self, *, rows: int, without_face: int, last: int, size: int | None, intervals: int) -> None:
        if size is None:
            p = self.out_dir / "frames.csv"
            size = p.stat().st_size if p.is_file() else 0
        doc = {**self._header, "rows": {"count": rows, "without_face": without_face, "last_index": last, "bytes": size},
               "intervals_written": intervals, "resumes": self._history, "updated": time.time()}
        tmp = self.out_dir / (PROGRESS + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        os.replace(tmp, self.out_dir / PROGRESS)

    def _read_progress(self) -> dict[str, Any]:
        p = self.out_dir / PROGRESS
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read the interrupted run's record ({e})", path=p,
                            expected="the progress.json an interrupted `mekit analyze` wrote") from None
        if not isinstance(doc, dict) or doc.get("format") != 1:
            raise DataError("not a progress record this mekit writes", path=p, value=doc.get("format") if
                            isinstance(doc, dict) else type(doc).__name__, expected="format 1")
        return doc

    def _cut_frames_csv(self, size: int) -> None:
        p = self.out_dir / "frames.csv"
        have = p.stat().st_size if p.is_file() else -1
        if have < size:
            raise DataError(f"frames.csv is shorter ({max(have, 0)} bytes) than {PROGRESS} records", path=p,
                            value=size, expected="the frames.csv the interrupted run wrote; analyse again without "
                                                 "--resume")
        with open(p, "rb") as f:
            header = f.readline().decode("utf-8", "replace").strip()
        if header != ",".join(FRAME_COLUMNS):
            raise DataError("frames.csv has other columns than this mekit writes", path=p, value=header,
                            expected=",".join(FRAME_COLUMNS) + "; analyse again without --resume")
        if have > size:
            os.truncate(p, size)

    @staticmethod
    def _read_intervals(path: Path) -> list[dict[str, Any]]:
        """The recorded intervals; a last line cut by the interruption is dropped (and cut off)."""
        if not path.is_file():
            return []
        data = path.read_bytes()
        good = data[:data.rfind(b"\n") + 1]
        if len(good) < len(data):
            os.truncate(path, len(good))
        out = []
        for k, line in enumerate(good.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                raise DataError(f"line {k} is not a JSON interval", path=path, value=line[:80],
                                expected="one interval per line as an analysis writes them") from None
        return out


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def _differences(old: Any, new: Any, key: str = "") -> str:
    """What differs between the recorded settings and this run's, as ``key: old -> new`` (the
    first three; where two records name different things, the name alone)."""
    found: list[str] = []

    def walk(a: Any, b: Any, k: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            names = ["name"] if "name" in a and a.get("name") != b.get("name") else dict.fromkeys([*a, *b])
            for name in names:
                walk(a.get(name), b.get(name), f"{k}.{name}" if k else str(name))
        elif a != b:
            found.append(f"{k} {_short(a)} -> {_short(b)}")

    walk(old, new, key)
    return "; ".join(found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")


def _short(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def analyze(input: str | Path | None = None, *, out: str | Path | None = None, resume: bool = False,
            video: bool = True, **options: Any) -> AnalysisResult:
    """Spot, recognise and measure the expressions of a recording (see the module docstring);
    ``options`` are those of :func:`stream`. With ``out``, writes the report folder (with
    ``video``, the annotated video ``annotated.mp4`` too).

    ``resume`` continues the run interrupted in ``out`` (see the module docstring): with the same
    input and settings, else refused naming what differs; a finished folder is reported and left
    as it is; a folder without a run is analysed from the start. Without ``resume``, a folder
    holding an interrupted run is refused (so its work is not lost by accident), and a finished
    one is analysed again over its outputs."""
    out_dir = Path(out) if out is not None else None
    journal = None
    if resume and out_dir is None:
        raise ConfigError("resume: give the output folder of the interrupted analysis (out=... / --out)")
    if resume and options.get("camera") is not None:
        raise ConfigError(f"resume: camera {options['camera']} is live and cannot be resumed; analyse it afresh")
    if out_dir is not None:
        from mekit.paths import prepare_out_dir

        prepare_out_dir(out_dir, "output folder")
        state = _Journal.state(out_dir)
        if state == "partial" and not resume:
            raise DataError("the output folder holds an interrupted analysis", path=out_dir / PROGRESS,
                            expected="--resume (resume=True) to continue it, or another --out folder (or remove "
                                     "this one to start again)")
        if state == "finished" and resume:
            log.info("%s: the analysis there is finished; nothing to resume", out_dir)
            return read_result(out_dir)
        if state != "partial":
            for name in (*FINAL_OUTPUTS, PARTIAL_INTERVALS):
                (out_dir / name).unlink(missing_ok=True)
            for old in out_dir.glob("annotated*.*"):  # the video (and a resumed run's parts) of a run before
                old.unlink()
        if options.get("camera") is None and not is_frame_source(input):  # a live source cannot be resumed
            journal = _Journal(out_dir, resume=state == "partial")
    stats: dict[str, Any] = {}
    rows = list(stream(input, frames_csv=None if out_dir is None else out_dir / "frames.csv", stats=stats,
                       journal=journal, annotated=out_dir / ANNOTATED if out_dir is not None and video else None,
                       **options))
    if journal is not None:
        rows = journal.recorded + rows
    result = _result(rows, stats, out_dir)
    if out_dir is not None:
        write_outputs(result, out_dir)
        if journal is not None:
            journal.finish()
    return result


def _result(rows: list[dict[str, Any]], stats: dict[str, Any], out_dir: Path | None) -> AnalysisResult:
    import pandas as pd

    cols = ["video", "onset", "apex", "offset", "onset_s", "apex_s", "offset_s", "kind", "score", "flags"]
    intervals = pd.DataFrame(rows, columns=list(dict.fromkeys([*cols, *(k for r in rows for k in r)])))
    summary = {**stats, "resumed_from": stats.get("resume", {}).get("resumed_from"),
               "kinds": {k: int(v) for k, v in intervals["kind"].value_counts().items()}}
    return AnalysisResult(intervals, summary, out_dir, list(stats.get("classes", [])))


def read_result(out_dir: str | Path) -> AnalysisResult:
    """A finished analysis read back from its folder (intervals.csv and analysis.json)."""
    import pandas as pd

    out_dir = Path(out_dir)
    try:
        summary = json.loads((out_dir / "analysis.json").read_text())
        intervals = pd.read_csv(out_dir / "intervals.csv", keep_default_na=True)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the finished analysis ({e})", path=out_dir,
                        expected="intervals.csv and analysis.json as `mekit analyze` writes them") from None
    if "flags" in intervals:
        intervals["flags"] = intervals["flags"].astype(object).where(intervals["flags"].notna(), "")
    return AnalysisResult(intervals, {**summary, "already_finished": True}, out_dir, list(summary.get("classes", [])))


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


def timeline_curves(frames_csv: Path, points: int = TIMELINE_POINTS) -> Any:
    """frames.csv brought down to at most ``points`` rows for plotting, read in chunks (memory
    bounded whatever the length): per bin of consecutive frames, its first time, the share of
    frames with a face, and the HIGHEST motion score and intensity (a peak of one frame stays
    visible). None when the file is missing or empty."""
    import pandas as pd

    if not frames_csv.is_file():
        return None
    with open(frames_csv, "rb") as f:
        header = f.readline().decode("utf-8", "replace").strip().split(",")
        n = sum(1 for _ in f)
    if n == 0 or "time_s" not in header:
        return None
    step = max(1, math.ceil(n / max(int(points), 1)))
    cols = [c for c in ("time_s", "status", "motion", "intensity") if c in header]
    parts = []
    # chunks hold whole bins (a multiple of the step), so no bin is split between two chunks
    for chunk in pd.read_csv(frames_csv, usecols=cols, chunksize=step * 2000):
        chunk = chunk.assign(tracked=(chunk["status"] != "lost").astype(float) if "status" in chunk else 1.0)
        agg = {"time_s": "first", "tracked": "mean", **{c: "max" for c in ("motion", "intensity") if c in chunk}}
        parts.append(chunk.groupby(np.arange(len(chunk)) // step).agg(agg))
    return pd.concat(parts, ignore_index=True)


def plot_timeline(result: AnalysisResult, path: Path) -> Path:
    """The recording's timeline. Top (when the spotter gave scores): the motion score over time
    against the spotter's threshold, the intensity bundle's values inside the recognised
    intervals on a second axis, and the intervals shaded by class. Bottom: where a face was
    tracked, and each interval as a band coloured by its class (grey where no classification
    bundle was given), micro above, macro below. Curves are read back from frames.csv, at most
    :data:`TIMELINE_POINTS` points each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fps = float(result.summary.get("fps") or 1.0)
    curves = timeline_curves(path.parent / "frames.csv")
    has_motion = curves is not None and "motion" in curves and bool(curves["motion"].notna().any())
    has_intensity = curves is not None and "intensity" in curves and bool(curves["intensity"].notna().any())
    if has_motion or has_intensity:
        fig, (top, ax) = plt.subplots(2, 1, figsize=(12, 5.2), sharex=True,
                                      gridspec_kw={"height_ratios": [2.2, 1.0]})
    else:
        fig, ax = plt.subplots(figsize=(12, 2.8))
        top = None
    palette = plt.get_cmap("tab10")
    colours = {c: palette(i % 10) for i, c in enumerate(result.classes)}

    def colour(label: Any, kind: str) -> Any:
        if isinstance(label, str):
            return colours.get(label, "0.4")
        return "0.3" if kind == "micro" else "0.6"

    if curves is not None:
        ax.fill_between(curves["time_s"], 0, curves["tracked"] * 0.15, step="post", color="#9ecae1",
                        label="face tracked")
    seen: set[str] = set()
    for r in result.intervals.itertuples():
        label = getattr(r, "label", None)
        y0, y1 = (0.55, 0.95) if r.kind == "micro" else (0.2, 0.5)
        name = f"{label}" if isinstance(label, str) else r.kind
        ax.axvspan(r.onset_s, r.offset_s + 1.0 / fps, ymin=y0, ymax=y1, color=colour(label, r.kind), alpha=0.85,
                   label=None if name in seen else name)
        seen.add(name)
        if top is not None:
            top.axvspan(r.onset_s, r.offset_s + 1.0 / fps, color=colour(label, r.kind), alpha=0.18, lw=0)
    ax.set_yticks([0.35, 0.75])
    ax.set_yticklabels(["macro", "micro"])
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    if seen or curves is not None:
        ax.legend(loc="upper right", fontsize=7, ncol=6, framealpha=0.8)
    title = (f"{Path(str(result.summary.get('input', ''))).name}: {len(result.intervals)} intervals "
             f"({result.summary.get('kinds', {})})")
    if top is not None:
        handles = []
        if has_motion:
            m = curves["motion"]
            handles += top.plot(curves["time_s"], m, color="#1f4e79", lw=0.7, label="motion score (max per point)")
            threshold = (result.summary.get("spotter") or {}).get("params", {}).get("threshold")
            if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
                handles.append(top.axhline(float(threshold), color="#c0392b", ls="--", lw=1.0,
                                           label=f"threshold {float(threshold):g}"))
            # symlog: linear around the threshold, logarithmic above, so the threshold and a
            # faint micro-expression stay readable beside a blink or a head turn 50x higher
            top.set_yscale("symlog", linthresh=10.0)
            top.set_ylim(float(np.nanmin(m)) - 1.0, max(float(np.nanmax(m)) * 1.3, 20.0))
            top.set_ylabel("motion (noise units)")
        else:
            top.set_yticks([])
        if has_intensity:
            right = top.twinx()
            v = curves["intensity"]
            handles += right.plot(curves["time_s"], v, color="#222222", lw=1.3, marker=".", ms=3,
                                  label="intensity (in intervals)")
            right.set_ylim(0, max(1.0, float(np.nanmax(v))) * 1.05)
            right.set_ylabel("intensity")
        # above the plot, beside the title: no curve is ever hidden behind it
        top.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, fontsize=7,
                   frameon=False)
        top.set_title(title, loc="left", fontsize=10)
    else:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

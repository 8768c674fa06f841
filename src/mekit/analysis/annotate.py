"""The annotated video of ``mekit analyze``: the recording as it was analysed, with what was found.

Each written frame shows, on the (downscaled) source frame, the face box coloured by tracking
status (none when the face is lost) and, while the frame lies inside a spotted interval, a
border in the interval's colour; beside it a panel with the time, the tracking status, the
motion score as a scrolling sparkline (with the spotting threshold when given) and, inside an
interval, a banner with its kind (micro/macro), its class and the probability bars of every
class, and its intensity; below both, a timeline strip of the intervals near the current time
(micro above, macro below). Class colours are those of ``timeline.png`` (matplotlib's tab10),
so the two outputs read alike. Nothing is drawn over the face: panels sit beside and below.

**Why frames are held.** The spotter returns an interval, and recognition labels it, only when
the interval closes: up to its horizon after the interval's onset (8.2 s at 30 fps with the
motion spotter's defaults). A frame can therefore only be drawn once ``delay_frames`` newer
frames have been pushed; until then it waits in a delay line. To keep that cheap whatever the
recording's length, a held frame is stored downscaled (longest side at most ``max_side``) and
JPEG-compressed (quality 85): 18 KB for a 640x480 frame of the synthetic recordings, so 250
held frames (8.3 s at 30 fps) take about 5 MB where raw frames would take 230 MB. Frames are
drawn when they leave the line, so an interval given late still marks its onset frame.

**Dropped frames.** A live source skips indices for frames it could not keep up with. With
``fill_gaps`` (the default) each missing index is written as a copy of the frame before it,
marked "frame dropped", so frame ``k`` of the file is always source frame ``first + k`` and
the file plays in step with the recording and with the intervals' seconds.

**Cost.** Measured with ``time.perf_counter`` on a shared 2-core machine that other jobs kept
busy (load average 2.5-4.8), OpenCV 4.14, 640x480 frames of a synthetic recording, 30 fps,
``delay_frames=250``, output 890x544: :meth:`AnnotatedVideo.frame` costs 6.2-8.5 ms per frame
amortised over 600 frames (``close`` included). Its CPU time (``time.process_time``) is
5.5-6.4 ms: JPEG encode 1.0 ms, decode 1.1 ms, drawing 0.6-0.9 ms and the mp4v encoder
2.9 ms (1.8 ms of it for the 640x480 picture, the rest for the panels). Drawing was 2.4 ms
before the interval part of the panel was cached (it changes only at an interval's edges, its
apex and its intensity peak, so it is drawn once per state and copied). In ``mekit analyze``'s
loop (face tracker and motion spotter, no recognition bundle) on a 20 s synthetic recording
on the same busy machine, 83-120 frames/s without this output became 63-70 frames/s with it,
above the 60 frames/s target even there. Everything is drawn with OpenCV primitives on the
downscaled frame; nothing per frame goes through matplotlib. The encoder can run in a writer
thread (``background``, the default): the file is the same, and where a core is free the
encoder overlaps the analysis (on the busy machine above it made no measurable difference).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: JPEG quality of the held frames: at 85 a 640x480 frame is ~18 KB and the decoded frame is
#: visually the same (the written video is lossy anyway).
HOLD_QUALITY = 85
#: Codecs tried for each container when ``codec="auto"`` (mp4v: the encoder the opencv-python
#: wheels' FFmpeg has; see :func:`mekit.data.synthetic_long.generate_long_video`).
AUTO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}
#: The score sparkline's top in thresholds. The motion spotter's scores are noise units: ~1-2
#: at rest, threshold 6, expressions 11-52 on its test recordings (analysis.spotting); on a
#: square-root scale up to 8 thresholds the rest level, the threshold (35 % of the height) and
#: most peaks all show.
SCORE_TOP = 8.0
#: Tracking statuses and their box colours (BGR); "dropped" marks a frame the source skipped.
STATUS_COLOURS = {"detected": (80, 220, 80), "tracked": (0, 215, 255), "dropped": (170, 170, 170)}
#: Interval colours (BGR) where the interval has no class label.
KIND_COLOURS = {"micro": (220, 60, 240), "macro": (255, 170, 60), "other": (150, 150, 150)}
#: matplotlib's tab10 in BGR, the class colours of ``timeline.png``.
CLASS_COLOURS = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
                 (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23))

_BG = (28, 28, 28)
_FG = (235, 235, 235)
_DIM = (140, 140, 140)
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
_AA = 16  # cv2.LINE_AA


@dataclass
class _Held:
    """One frame waiting in the delay line: the JPEG of its downscaled image and what to draw."""

    index: int
    jpeg: np.ndarray
    box: tuple[float, float, float, float] | None
    score: float
    status: str


@dataclass
class _Mark:
    """One interval row reduced to what is drawn."""

    onset: int
    apex: int
    offset: int
    kind: str
    score: float
    flags: str
    label: str | None
    probs: dict[str, float]
    intensity_peak: float | None
    intensity_mean: float | None
    intensity_peak_frame: int | None
    serial: int = 0


class AnnotatedVideo:
    """Writes the annotated video of an analysis, one source frame at a time (module docstring).

    Args:
        path: the video file, ``.mp4`` (mp4v) or ``.avi`` (Motion-JPEG); its folder is created.
            If this OpenCV cannot open an mp4v writer, Motion-JPEG goes to ``<stem>.avi``
            instead (a warning says so; :attr:`path` is the file written).
        fps: the source's frame rate (also the file's).
        size: the source frames' (width, height).
        classes: the classification bundle's classes, in the order their bars are drawn
            (empty: the ``p_<class>`` columns of each row, in the row's order).
        delay_frames: how many frames after its onset an interval can be given (the spotter's
            horizon); frames are held that long.
        max_side: the longest side of the video picture (frames are downscaled, never enlarged).
        codec: ``"auto"`` or a FourCC for :class:`cv2.VideoWriter`.
        threshold: the spotter's threshold, drawn on the score sparkline.
        score_max: the sparkline's top (default :data:`SCORE_TOP` times the threshold, else the
            largest score seen); the sparkline is drawn on a square-root scale up to it.
        spark_s: seconds of score history in the sparkline.
        timeline_s: seconds shown by the timeline strip (60 % before the current frame).
        fill_gaps: write skipped source indices as copies of the frame before (see above).
        background: run the video encoder in a writer thread (the output is the same).

    In a streaming analysis: ``delay_frames`` is the spotter's ``horizon``; each frame is given
    with :meth:`frame` before the spotter sees it, each closed interval's row with
    :meth:`interval`, a score decided later (``record_scores``/``take_scores``) with
    :meth:`set_score`; after the spotter's ``flush``, :meth:`close` (also on error: the frames
    held are written). ``written`` counts the frames written, ``path`` is the file.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], classes: Sequence[str] = (),
                 delay_frames: int = 0, max_side: int = 640, codec: str = "auto", *,
                 threshold: float | None = None, score_max: float | None = None, spark_s: float = 4.0,
                 timeline_s: float = 10.0, fill_gaps: bool = True, background: bool = True) -> None:
        self.fps = _positive("fps", fps)
        self.size = _size(size)
        self.classes = [str(c) for c in classes] if not isinstance(classes, str) else [classes]
        self.delay_frames = _count("delay_frames", delay_frames, 0)
        self.max_side = _count("max_side", max_side, 64)
        self.threshold = None if threshold is None else _positive("threshold", threshold)
        self.score_max = None if score_max is None else _positive("score_max", score_max)
        self.spark_s = _positive("spark_s", spark_s)
        self.timeline_s = _positive("timeline_s", timeline_s)
        self.fill_gaps = bool(fill_gaps)
        target, fourcc = _choose_codec(Path(path), codec)

        w, h = self.size
        s = min(1.0, self.max_side / max(w, h))
        # even sides: mp4v and most players refuse odd ones
        self.frame_size = (max(2, int(round(w * s)) // 2 * 2), max(2, int(round(h * s)) // 2 * 2))
        self._sx, self._sy = self.frame_size[0] / w, self.frame_size[1] / h
        self._layout = _Layout(self.frame_size, max(len(self.classes), 4))
        self.out_size = self._layout.out_size

        self._held: deque[_Held] = deque()
        self._marks: list[_Mark] = []
        self._spark: deque[float] = deque(maxlen=max(2, int(round(self.spark_s * self.fps))))
        self._score_top = 1.0
        self._last: _Held | None = None
        self._first: int | None = None
        self._next_out: int | None = None  # the index the next written frame will have
        self._bg = self._layout.background()
        self.written = 0
        self.max_held = 0
        self.late_intervals = 0
        self._serial = 0
        self._recent: _Mark | None = None  # the last interval that ended before the frame written
        self._closed = False
        self.path, self._sink = _open_sink(target, fourcc, self.fps, self.out_size, codec == "auto", background)
        self.codec = self._sink.fourcc

    # -- the stream -----------------------------------------------------------------------
    def frame(self, index: int, image_bgr: np.ndarray, box: Sequence[float] | None = None,
              score: float | None = None, status: str = "tracked") -> None:
        """Push source frame ``index`` (indices increase; gaps are dropped frames) with its face
        box in source pixels (x0, y0, x1, y1), its motion score and its tracking status
        (``"detected"``, ``"tracked"`` or ``"lost"``). Writes the frames nothing can change any
        more: those ``delay_frames`` or more before ``index``."""
        self._check_open()
        index = _index(index, self._last.index if self._last is not None else None)
        if status not in ("detected", "tracked", "lost"):
            raise DataError(f"annotated video: frame {index}: unknown tracking status", value=status,
                            expected="'detected', 'tracked' or 'lost'")
        img = np.asarray(image_bgr)
        if img.ndim == 2:
            import cv2

            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if img.ndim != 3 or img.shape[2] != 3 or (img.shape[1], img.shape[0]) != self.size:
            raise DataError(f"annotated video: frame {index} has shape {img.shape}",
                            expected=f"a {self.size[0]}x{self.size[1]} BGR or grey image (the size given)")
        if self._first is None:
            self._first = self._next_out = index
        elif self.fill_gaps and index > self._last.index + 1:  # type: ignore[union-attr]
            prev = self._last
            for k in range(prev.index + 1, index):  # type: ignore[union-attr]
                self._push(_Held(k, prev.jpeg, prev.box, math.nan, "dropped"), index)  # type: ignore[union-attr]
        if status == "lost" or box is None:
            sbox = None
        else:
            x0, y0, x1, y1 = (float(v) for v in box)
            sbox = (x0 * self._sx, y0 * self._sy, x1 * self._sx, y1 * self._sy)
        self._push(_Held(index, self._encode(img), sbox, _score(score), status), index)

    def set_score(self, index: int, score: float | None) -> bool:
        """Attach a score decided after its frame was pushed (the motion spotter decides a
        frame's score ``lag`` frames later). False when that frame is already written or was
        never pushed."""
        for h in reversed(self._held):
            if h.index == index:
                h.score = _score(score)
                return True
            if h.index < index:
                break
        return False

    def interval(self, row: Mapping[str, Any]) -> None:
        """Add one closed interval (a row as :func:`mekit.analysis.analyze.stream` yields it):
        every frame from its onset to its offset still held will show it, and the timeline
        strip shows it from now on. An interval whose onset was written already (given more than
        ``delay_frames`` after it) marks only the frames still held; a warning says so."""
        self._check_open()
        m = _mark(row, self.classes)
        self._serial += 1
        m.serial = self._serial
        if self._next_out is not None and m.onset < self._next_out:
            self.late_intervals += 1
            if self.late_intervals == 1:  # once; close() gives the count
                log.warning("annotated video %s: interval %d-%d given after frame %d was written; its earlier "
                            "frames are not marked (delay_frames=%d is shorter than the spotter's horizon)",
                            self.path, m.onset, m.offset, self._next_out - 1, self.delay_frames)
        self._marks.append(m)

    def close(self, keep_through: int | None = None) -> None:
        """Write every frame still held and finalise the file (safe to call twice).

        ``keep_through``: write only the held frames up to this index and drop the later ones
        (an interrupted analysis: its later frames are not final, and the resumed run writes
        them to its own file, so the two files meet without a gap or an overlap)."""
        if self._closed:
            return
        self._closed = True
        try:
            while self._held and (keep_through is None or self._held[0].index <= keep_through):
                self._write(self._held.popleft())
            self._held.clear()
        finally:
            self._sink.close()
        if self.written == 0:
            log.warning("annotated video %s: no frames were given; the file is empty", self.path)
        if self.late_intervals > 1:
            log.warning("annotated video %s: %d intervals were given after their onset frame was written",
                        self.path, self.late_intervals)

    def __enter__(self) -> AnnotatedVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def held(self) -> int:
        """Frames in the delay line now."""
        return len(self._held)

    @property
    def held_bytes(self) -> int:
        """Bytes of the JPEGs in the delay line now."""
        return sum(h.jpeg.nbytes for h in self._held)

    # -- internals ------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"annotated video {self.path}: already closed")

    def _encode(self, img: np.ndarray) -> np.ndarray:
        import cv2

        if (img.shape[1], img.shape[0]) != self.frame_size:
            shrink = self.frame_size[0] < img.shape[1]
            img = cv2.resize(img, self.frame_size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, HOLD_QUALITY])
        if not ok:
            raise DataError("annotated video: a frame could not be JPEG-encoded", path=self.path)
        return buf

    def _push(self, item: _Held, newest: int) -> None:
        self._held.append(item)
        self._last = item
        while self._held and self._held[0].index < newest - self.delay_frames:
            self._write(self._held.popleft())
        self.max_held = max(self.max_held, len(self._held))

    def _write(self, h: _Held) -> None:
        import cv2

        canvas = self._bg.copy()
        fw, fh = self.frame_size
        canvas[:fh, :fw] = cv2.imdecode(h.jpeg, cv2.IMREAD_COLOR)
        if h.score == h.score:
            self._score_top = max(self._score_top, h.score)
        self._spark.append(h.score)
        # the intervals still in view of the timeline (all later frames are later still)
        back = 0.6 * self.timeline_s * self.fps
        self._marks = [m for m in self._marks if m.offset >= h.index - back]
        here = [m for m in self._marks if m.onset <= h.index <= m.offset]
        mark = max(here, key=lambda m: (m.onset, m.score)) if here else None
        for m in self._marks:
            if m.offset < h.index and (self._recent is None or m.offset > self._recent.offset):
                self._recent = m
        lay = self._layout
        lay.draw_box(canvas, h.box, h.status)
        top = self.score_max or (SCORE_TOP * self.threshold if self.threshold else self._score_top)
        lay.draw_panel(canvas, h, self.fps, self._spark, self.threshold, top, mark, self._recent, self.classes)
        newest = self._last.index if self._last is not None else h.index
        lay.draw_timeline(canvas, h.index, newest, self.fps, self.timeline_s, self._marks, self.classes)
        if mark is not None:
            lay.draw_border(canvas, _colour(mark, self.classes))
        self._sink.put(canvas)
        self.written += 1
        self._next_out = h.index + 1


# ---------------------------------------------------------------------------------------------
class _Layout:
    """Where everything goes on the output frame, sized from the picture's height so text stays
    legible at 640x480 (Hershey simplex at 0.45: ~10 px capitals) and grows with larger output."""

    def __init__(self, frame_size: tuple[int, int], n_classes: int) -> None:
        fw, fh = frame_size
        u = self.u = min(2.0, max(0.75, fh / 480))
        self.fw, self.fh = fw, fh
        self.pad = int(round(8 * u))
        self.lh = int(round(19 * u))           # text line height
        self.fs = 0.45 * u                     # font scale
        self.pw = int(round(250 * u)) // 2 * 2  # side panel width
        self.spark_h = int(round(46 * u))
        self.tl_h = int(round(64 * u)) // 2 * 2  # timeline strip height
        # the panel's tallest content: header, motion, banner, 3 lines, the classes, intensity
        need = self.pad * 4 + self.lh * (5 + n_classes + 2) + self.spark_h + int(round(26 * u))
        self.top_h = max(fh, need + (need % 2))
        self.out_size = (fw + self.pw, self.top_h + self.tl_h)
        self._sections: dict[tuple, np.ndarray] = {}
        self._spark_bg: tuple[tuple, np.ndarray] | None = None

    def background(self) -> np.ndarray:
        import cv2

        w, h = self.out_size
        bg = np.empty((h, w, 3), np.uint8)
        bg[:] = _BG
        y = self.top_h
        cv2.line(bg, (0, y), (w - 1, y), (70, 70, 70), 1)
        cv2.line(bg, (self.fw, 0), (self.fw, self.top_h), (70, 70, 70), 1)
        lane = self._lanes()
        for name, (y0, y1) in lane.items():
            self.text(bg, name, (self.pad, (y0 + y1) // 2 + int(4 * self.u)), _DIM)
        return bg

    def _lanes(self) -> dict[str, tuple[int, int]]:
        y = self.top_h + int(round(16 * self.u))
        lane = (self.out_size[1] - y - self.pad // 2) // 2
        return {"micro": (y, y + lane - 1), "macro": (y + lane + 1, y + 2 * lane)}

    def text(self, img: np.ndarray, s: str, org: tuple[int, int], colour: tuple[int, int, int] = _FG,
             scale: float = 1.0, bold: bool = False) -> None:
        import cv2

        cv2.putText(img, s, org, _FONT, self.fs * scale, colour, 2 if bold else 1, _AA)

    def draw_box(self, img: np.ndarray, box: tuple[float, float, float, float] | None, status: str) -> None:
        import cv2

        if box is None:
            return
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(img[: self.fh, : self.fw], (x0, y0), (x1, y1), STATUS_COLOURS.get(status, _DIM),
                      max(1, int(round(2 * self.u))), _AA)

    def draw_border(self, img: np.ndarray, colour: tuple[int, int, int]) -> None:
        import cv2

        t = max(2, int(round(6 * self.u)))
        cv2.rectangle(img, (t // 2, t // 2), (self.fw - 1 - t // 2, self.fh - 1 - t // 2), colour, t)

    def draw_panel(self, img: np.ndarray, h: _Held, fps: float, spark: Sequence[float], threshold: float | None,
                   top: float, mark: _Mark | None, last: _Mark | None, classes: Sequence[str]) -> None:
        """The side panel: time, tracking status, the score sparkline, then the interval the
        frame lies in (or the last one seen). The interval part changes only at the interval's
        edges, its apex and its intensity peak, so it is drawn once per state and copied."""
        import cv2

        u, pad, lh = self.u, self.pad, self.lh
        x0, x1 = self.fw + pad, self.fw + self.pw - pad
        y = pad + lh - int(5 * u)
        self.text(img, f"{h.index / fps:8.2f} s", (x0, y), _FG, 1.15, bold=True)
        self.text(img, f"frame {h.index}", (x0 + int(118 * u), y), _DIM)
        y += lh
        colour = STATUS_COLOURS.get(h.status, (70, 70, 235))
        sw = int(10 * u)
        what = {"lost": "no face", "dropped": "frame dropped"}.get(h.status, f"face {h.status}")
        cv2.rectangle(img, (x0, y - sw), (x0 + sw, y), colour, -1)
        self.text(img, what, (x0 + sw + int(6 * u), y), colour)
        # the motion score: a scrolling sparkline, the threshold dashed
        y += lh
        val = "--" if h.score != h.score else f"{h.score:.1f}"
        self.text(img, f"motion {val}", (x0, y), _FG)
        if threshold is not None:
            self.text(img, f"threshold {threshold:g}", (x1 - int(92 * u), y), (0, 140, 255))
        y += pad // 2
        self._sparkline(img, spark, threshold, top, (x0, y, x1, y + self.spark_h))
        y += self.spark_h + pad + int(4 * u)
        if mark is not None:
            key: tuple = (mark.serial, h.index == mark.apex, h.index == mark.intensity_peak_frame)
        else:
            key = (-1 if last is None else last.serial,)
        patch = self._sections.get(key)
        if patch is None:
            if len(self._sections) > 16:
                self._sections.clear()
            patch = np.empty((self.top_h - y, self.pw - 1, 3), np.uint8)
            patch[:] = _BG
            if mark is not None:
                self._section(patch, pad - 1, self.pw - pad - 1, mark, fps, classes, *key[1:])
            elif last is not None:
                self.text(patch, "no expression", (pad - 1, int(16 * u)), _DIM)
                self.text(patch, f"last: {last.kind}" + (f" {last.label}" if last.label else "") +
                          f" at {last.onset / fps:.2f} s", (pad - 1, int(16 * u) + lh), _DIM)
            else:
                self.text(patch, "no expression", (pad - 1, int(16 * u)), _DIM)
            self._sections[key] = patch
        img[y:self.top_h, self.fw + 1:self.fw + self.pw] = patch

    def _section(self, img: np.ndarray, x0: int, x1: int, mark: _Mark, fps: float, classes: Sequence[str],
                 apex: bool, peak: bool) -> None:
        import cv2

        u, pad, lh = self.u, self.pad, self.lh
        y = 0
        colour = _colour(mark, classes)
        bh = int(round(26 * u))
        cv2.rectangle(img, (x0 - pad // 2, y), (x1 + pad // 2, y + bh), colour, -1)
        ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
        dur = (mark.offset - mark.onset + 1) / fps
        self.text(img, f"{mark.kind.upper()}  {dur:.2f} s", (x0, y + bh - int(8 * u)), ink, 1.15, bold=True)
        if apex:
            self.text(img, "APEX", (x1 - int(44 * u), y + bh - int(8 * u)), ink, 1.0, bold=True)
        y += bh + lh
        if mark.label is not None:
            p = mark.probs.get(mark.label)
            self.text(img, mark.label + ("" if p is None else f"  {100 * p:.0f}%"), (x0, y), colour, 1.25, bold=True)
            y += lh + int(2 * u)
        self.text(img, f"frames {mark.onset}-{mark.offset}  apex {mark.apex}", (x0, y), _DIM)
        y += lh
        self.text(img, f"score {mark.score:.1f}" + (f"  {mark.flags}" if mark.flags else ""), (x0, y), _DIM)
        names = list(classes) or list(mark.probs)
        bx = x0 + int(82 * u)
        bw = x1 - int(40 * u) - bx
        for i, c in enumerate(names):
            if c not in mark.probs:
                continue
            y += lh
            p = min(max(mark.probs[c], 0.0), 1.0)
            cc = CLASS_COLOURS[i % len(CLASS_COLOURS)] if classes else _DIM
            self.text(img, c[:10], (x0, y), _FG if c == mark.label else _DIM)
            cv2.rectangle(img, (bx, y - int(10 * u)), (bx + bw, y), (60, 60, 60), -1)
            if p > 0:
                cv2.rectangle(img, (bx, y - int(10 * u)), (bx + max(1, int(round(bw * p))), y), cc, -1)
            self.text(img, f"{p:.2f}", (x1 - int(34 * u), y), _FG if c == mark.label else _DIM)
        if mark.intensity_peak is not None:
            y += lh + int(4 * u)
            self.text(img, "intensity" + ("  PEAK" if peak else ""), (x0, y), _FG)
            self.text(img, f"{mark.intensity_peak:.2f}", (x1 - int(34 * u), y), _FG)
            y += int(6 * u)
            cv2.rectangle(img, (x0, y), (x1, y + int(8 * u)), (60, 60, 60), -1)
            pk = min(max(mark.intensity_peak, 0.0), 1.0)
            if pk > 0:
                cv2.rectangle(img, (x0, y), (x0 + int(round((x1 - x0) * pk)), y + int(8 * u)), (0, 200, 255), -1)
            if mark.intensity_mean is not None:
                xm = x0 + int(round((x1 - x0) * min(max(mark.intensity_mean, 0.0), 1.0)))
                cv2.line(img, (xm, y - int(2 * u)), (xm, y + int(10 * u)), _FG, 1)

    def _sparkline(self, img: np.ndarray, spark: Sequence[float], threshold: float | None, top: float,
                   box: tuple[int, int, int, int]) -> None:
        import cv2

        x0, y0, x1, y1 = box
        key = (top, threshold)
        if self._spark_bg is None or self._spark_bg[0] != key:
            patch = np.empty((y1 - y0 + 1, x1 - x0 + 1, 3), np.uint8)
            patch[:] = (45, 45, 45)
            if threshold is not None and threshold <= top:
                yt = int(round((y1 - y0) * (1 - math.sqrt(threshold / top))))
                for xs in range(0, x1 - x0, 8):
                    cv2.line(patch, (xs, yt), (min(xs + 4, x1 - x0), yt), (0, 140, 255), 1)
            self._spark_bg = (key, patch)
        img[y0:y1 + 1, x0:x1 + 1] = self._spark_bg[1]
        n = spark.maxlen if isinstance(spark, deque) and spark.maxlen else len(spark)  # type: ignore[union-attr]
        v = np.asarray(spark, np.float32)
        if len(v) < 2:
            return
        xs = x1 - (len(v) - 1 - np.arange(len(v))) * (x1 - x0) / max(n - 1, 1)
        ok = v == v
        ys = y1 - (y1 - y0) * np.sqrt(np.clip(np.where(ok, v, 0) / top, 0, 1))
        pts = np.stack([xs, ys], 1).round().astype(np.int32)
        # break the line where scores are missing (NaN: not yet known, or no face)
        edges = np.flatnonzero(np.diff(np.r_[0, ok.astype(np.int8), 0]))
        lines = [pts[a:b] for a, b in zip(edges[::2], edges[1::2]) if b - a >= 2]
        if lines:
            cv2.polylines(img, lines, False, _FG, 1, _AA)
        if ok[-1]:
            c = (0, 140, 255) if threshold is not None and v[-1] >= threshold else _FG
            cv2.circle(img, (int(pts[-1, 0]), int(pts[-1, 1])), max(2, int(3 * self.u)), c, -1, _AA)

    def draw_timeline(self, img: np.ndarray, index: int, newest: int, fps: float, span_s: float,
                      marks: Sequence[_Mark], classes: Sequence[str]) -> None:
        import cv2

        u = self.u
        lanes = self._lanes()
        xa, xb = int(round(56 * u)), self.out_size[0] - self.pad
        ya, yb = lanes["micro"][0], lanes["macro"][1]
        t = index / fps
        t0 = t - 0.6 * span_s
        pps = (xb - xa) / span_s

        def x(ts: float) -> int:
            return int(round(xa + (ts - t0) * pps))

        cv2.rectangle(img, (xa, ya), (xb, yb), (45, 45, 45), -1)
        known = x((newest + 1) / fps)
        if known < xb:  # beyond the newest frame pushed nothing is known yet
            cv2.rectangle(img, (max(xa, known), ya), (xb, yb), (34, 34, 34), -1)
        for s in range(math.ceil(t0), math.floor(t0 + span_s) + 1):
            xs = x(s)
            cv2.line(img, (xs, ya - int(3 * u)), (xs, ya - 1), _DIM, 1)
            if s % 2 == 0 and s >= 0 and xs > xa + int(14 * u):
                self.text(img, f"{s}s", (xs - int(8 * u), ya - int(5 * u)), _DIM, 0.8)
        for m in marks:
            a, b = x(m.onset / fps), x((m.offset + 1) / fps)
            if b < xa or a > xb:
                continue
            y0, y1 = lanes["micro" if m.kind == "micro" else "macro"]
            if m.kind not in ("micro", "macro"):
                y0 = (y0 + y1) // 2
            cv2.rectangle(img, (max(a, xa), y0 + 1), (max(min(b, xb), max(a, xa) + 1), y1 - 1),
                          _colour(m, classes), -1)
        xc = x(t)
        cv2.line(img, (xc, ya - int(4 * u)), (xc, yb + 1), (255, 255, 255), max(1, int(round(2 * u))))


# ---------------------------------------------------------------------------------------------
def _colour(m: _Mark, classes: Sequence[str]) -> tuple[int, int, int]:
    if m.label is not None and m.label in classes:
        return CLASS_COLOURS[list(classes).index(m.label) % len(CLASS_COLOURS)]
    return KIND_COLOURS.get(m.kind, KIND_COLOURS["other"])


def _mark(row: Any, classes: Sequence[str]) -> _Mark:
    if not isinstance(row, Mapping):
        raise DataError("annotated video: an interval row must be a mapping", value=type(row).__name__,
                        expected="a dict with onset, apex, offset, kind, ... as analyze yields it")
    try:
        onset, offset = int(row["onset"]), int(row["offset"])
    except (KeyError, TypeError, ValueError):
        raise DataError("annotated video: interval row without integer onset and offset",
                        value={k: row.get(k) for k in ("onset", "offset")},
                        expected="frame numbers onset <= offset") from None
    if offset < onset:
        raise DataError("annotated video: interval row with offset before onset", value=(onset, offset),
                        expected="onset <= offset")
    apex = _opt_int(row.get("apex"))
    label = row.get("label")
    names = list(classes) or [k[2:] for k in row if isinstance(k, str) and k.startswith("p_")]
    probs = {c: float(row[f"p_{c}"]) for c in names if _num(row.get(f"p_{c}")) is not None}
    flags = row.get("flags", "")
    flags = ";".join(flags) if isinstance(flags, (list, tuple)) else ("" if _num(flags) is not None or not flags
                                                                      else str(flags))
    return _Mark(onset=onset, apex=min(max(apex if apex is not None else onset, onset), offset), offset=offset,
                 kind=str(row.get("kind") or "micro"), score=_num(row.get("score")) or 0.0, flags=flags,
                 label=label if isinstance(label, str) and label else None, probs=probs,
                 intensity_peak=_num(row.get("intensity_peak")), intensity_mean=_num(row.get("intensity_mean")),
                 intensity_peak_frame=_opt_int(row.get("intensity_peak_frame")))


def _num(v: Any) -> float | None:
    """A finite float, or None for missing values (None, NaN as pandas gives them, non-numbers)."""
    if isinstance(v, (bool, str)) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _opt_int(v: Any) -> int | None:
    f = _num(v)
    return None if f is None else int(round(f))


def _score(v: Any) -> float:
    f = _num(v)
    return math.nan if f is None else f


def _positive(name: str, v: Any) -> float:
    f = _num(v)
    if f is None or f <= 0:
        raise ConfigError(f"annotated video: {name}={v!r}; expected a positive number")
    return f


def _count(name: str, v: Any, least: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
        raise ConfigError(f"annotated video: {name}={v!r}; expected an integer >= {least}")
    return int(v)


def _size(v: Any) -> tuple[int, int]:
    try:
        w, h = v
        ok = all(not isinstance(s, bool) and isinstance(s, (int, np.integer)) and s > 0 for s in (w, h))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"annotated video: size={v!r}; expected the frames' (width, height) as positive integers")
    return int(w), int(h)


def _index(v: Any, last: int | None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise DataError("annotated video: frame index", value=v, expected="an integer >= 0")
    if last is not None and v <= last:
        raise DataError(f"annotated video: frame {int(v)} given after frame {last}", expected="increasing indices")
    return int(v)


def _choose_codec(path: Path, codec: str) -> tuple[Path, str]:
    suffix = path.suffix.lower()
    if codec == "auto":
        if suffix not in AUTO_CODECS:
            raise ConfigError(f"annotated video: cannot choose a codec for {path} (suffix {suffix!r}); expected a "
                              ".mp4 or .avi path, or an explicit codec")
        return path, AUTO_CODECS[suffix]
    if not (isinstance(codec, str) and len(codec) == 4):
        raise ConfigError(f"annotated video: codec={codec!r}; expected 'auto' or a four-character code such as "
                          "'mp4v' or 'MJPG'")
    return path, codec


class _Sink:
    """A :class:`cv2.VideoWriter`, optionally fed through a writer thread (OpenCV releases the
    interpreter lock while encoding, so the encoder overlaps the analysis). The queue holds a
    few frames, so memory stays bounded; a writer error is raised on the next put or close."""

    def __init__(self, writer: Any, fourcc: str, background: bool) -> None:
        self.writer, self.fourcc = writer, fourcc
        self._error: BaseException | None = None
        self._q: queue.Queue[np.ndarray | None] | None = None
        if background:
            self._q = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._run, name="mekit-annotated-video", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._q is not None
        while True:
            img = self._q.get()
            if img is None:
                return
            if self._error is None:
                try:
                    self.writer.write(img)
                except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                    self._error = e

    def put(self, img: np.ndarray) -> None:
        if self._error is not None:
            raise DataError(f"annotated video: the video writer failed ({self._error})")
        if self._q is None:
            self.writer.write(img)
        else:
            self._q.put(img)

    def close(self) -> None:
        if self._q is not None:
            self._q.put(None)
            self._thread.join()
            self._q = None
        self.writer.release()
        if self._error is not None:
            raise DataError(f"annotated video: the video writer failed ({self._error})")


def _open_sink(path: Path, fourcc: str, fps: float, size: tuple[int, int], auto: bool,
               background: bool) -> tuple[Path, _Sink]:
    import cv2

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"annotated video: cannot create the folder ({e.strerror or e})", path=path.parent,
                        expected="a writable folder") from None
    tried = []
    for target, code in [(path, fourcc)] + ([(path.with_suffix(".avi"), "MJPG")] if auto and fourcc == "mp4v"
                                            else []):
        w = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*code), fps, size)
        if w.isOpened():
            if target != path:
                log.warning("annotated video: this OpenCV cannot open an mp4v writer for %s; writing Motion-JPEG "
                            "to %s instead", path, target)
            return target, _Sink(w, code, background)
        w.release()
        tried.append(f"{code} in {target.name}")
    raise DataError(f"annotated video: cannot open a video writer ({', '.join(tried)})", path=path,
                    expected="a writable path and an OpenCV with its FFmpeg backend (opencv-python wheels have it)")

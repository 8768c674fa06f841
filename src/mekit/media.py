"""Decoding images and streams of frames: the bottom layer every reader of pixels goes through.

Both the loaders (``mekit.data``: a data check, flow-image corpora) and preprocessing
(``mekit.preprocess.io``, which re-exports these names) decode images here, so that what counts
as a damaged file is decided in one place: a truncated or corrupt file is a
:class:`~mekit.errors.DataError` naming it, never a half-grey picture.

Long recordings and live cameras are read as *frame sources* (:class:`FrameSource`): iterables
of :class:`Frame` that hold at most a couple of frames at a time, whatever the length of the
recording, so a spotter can run over hours of video or an endless camera stream in bounded
memory. :func:`open_source` picks the source for a video file, a folder of frames or a camera;
:class:`PacedSource` plays any of them at its real frame rate, as a camera would deliver it.
:class:`PushSource` is fed frames from outside (a browser's camera through the web app).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

REDUCTIONS = (1, 2, 4, 8)


def _imread_flag(reduce: int, grey: bool = False) -> int:
    import cv2

    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce}")
    if reduce == 1:
        return cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    return getattr(cv2, f"IMREAD_REDUCED_{'GRAYSCALE' if grey else 'COLOR'}_{reduce}")


#: What every image reader expects, for messages.
_EXPECTED_IMAGE = "a complete JPEG/PNG/BMP/TIFF image"

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def image_defect(data: bytes) -> str | None:
    """Why the encoded bytes of an image file are incomplete, or None when they look whole.

    Decoders do not say: given a truncated JPEG, libjpeg prints an anonymous "Premature end
    of JPEG file" on stderr and OpenCV returns an image whose lower part is grey, which would
    then be used as if it were real. So the file's own end is checked before decoding:

    - JPEG must end with the EOI marker ``FF D9``. That is the fast path (two bytes, every
      frame of CASME II passes it). Phones append data after EOI (motion photos, maker
      trailers), so a JPEG that does not end with EOI is walked marker by marker, which
      finds whether an EOI exists before the end (trailer: fine) or not (truncated);
    - PNG must hold its IEND chunk (the last 12 bytes, or anywhere for a trailer);
    - BMP and WebP must be at least as long as their header declares.

    Other formats (TIFF) have no cheap end marker and are left to the decoder. Checking
    before decoding also keeps libjpeg from printing its message for truncated files.
    """
    n = len(data)
    if n == 0:
        return "the file is empty (0 bytes)"
    head = bytes(data[:12])
    if head[:3] == b"\xff\xd8\xff":
        if bytes(data[-2:]) == b"\xff\xd9":
            return None
        end = _jpeg_end(bytes(data))
        if end is None:
            return f"truncated JPEG: no end-of-image marker (FF D9) in its {n} bytes"
        return None
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        if bytes(data[-12:]) == _PNG_END:
            return None
        at = bytes(data).rfind(b"IEND", 8)  # data appended after IEND is ignored by decoders
        if at >= 0 and at + 8 <= n:
            return None
        return f"truncated PNG: no IEND chunk in its {n} bytes"
    if head[:2] == b"BM" and n >= 14:
        declared = int.from_bytes(head[2:6], "little")
        if declared and declared > n:  # some writers leave the size 0: nothing to compare then
            return f"truncated BMP: its header declares {declared} bytes, the file holds {n}"
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        declared = int.from_bytes(head[4:8], "little") + 8
        if declared > n:
            return f"truncated WebP: its header declares {declared} bytes, the file holds {n}"
    return None


def _jpeg_end(buf: bytes) -> int | None:
    """Offset just past the EOI marker of a JPEG, walking its segments; None when it is cut off.

    Only reached when a JPEG does not end with EOI. Header segments are skipped by their
    length (an EXIF thumbnail holds an EOI of its own); entropy-coded data after SOS is
    scanned for the next marker (inside it an FF byte is always followed by 00 or a
    restart marker). A structure the walk does not understand is not called truncated:
    the decoder is then the judge, so an odd but valid file is never refused here.
    """
    n = len(buf)
    i = 2
    while i + 1 < n:
        if buf[i] != 0xFF:
            return n  # not a marker where one should be: leave it to the decoder
        m = buf[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m == 0xD9:
            return i + 2
        if m == 0x01 or 0xD0 <= m <= 0xD8:  # standalone markers
            i += 2
            continue
        if i + 4 > n:
            return None
        end = i + 2 + int.from_bytes(buf[i + 2:i + 4], "big")
        if end > n:
            return None
        if m != 0xDA:
            i = end
            continue
        j = end  # SOS: entropy-coded data runs to the next real marker
        while True:
            j = buf.find(b"\xff", j)
            if j < 0 or j + 1 >= n:
                return None
            nxt = buf[j + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                j += 2
            elif nxt == 0xFF:
                j += 1
            else:
                break
        i = j
    return None


def _read_bytes(p: Path) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError("frame file is missing", path=p, expected="an existing image file") from None
    except IsADirectoryError:
        raise DataError("is a folder, not an image file", path=p, expected="an image file") from None
    except OSError as e:
        raise DataError(f"cannot read image file ({e.strerror or e})", path=p,
                        expected="a readable image file") from None


def decode_image(path: str | Path, flag: int) -> np.ndarray:
    """The one place mekit decodes an image file: ``cv2.imdecode`` of its bytes with ``flag``.

    A missing, empty, truncated or undecodable file raises :class:`DataError` naming it
    (see :func:`image_defect`); reading the bytes ourselves costs no more than
    ``cv2.imread`` (which reads them too) and works for any path, non-ASCII ones included.
    """
    import cv2

    p = Path(path)
    data = _read_bytes(p)
    defect = image_defect(data)
    if defect is not None:
        raise DataError(defect, path=p, expected=_EXPECTED_IMAGE)
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    except cv2.error as e:
        raise DataError(f"cannot decode image ({str(e).strip().splitlines()[-1]})", path=p,
                        expected=_EXPECTED_IMAGE) from None
    if img is None:
        raise DataError("cannot decode image (corrupt, or not an image)", path=p, expected=_EXPECTED_IMAGE)
    return img


def read_image(path: str | Path, reduce: int = 1, rgb: bool = True) -> np.ndarray:
    """An image file as ``uint8[H, W, 3]`` (decoded at 1/``reduce`` scale).

    RGB by default; ``rgb=False`` returns OpenCV's BGR order and skips a conversion.
    A missing, empty, truncated or corrupt file raises :class:`DataError` naming it, so a
    caller that processes many samples (the preprocessing pipeline) skips that sample with
    the reason instead of using a half-grey image.
    """
    import cv2

    img = decode_image(path, _imread_flag(reduce))
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if rgb else img


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image from its header (PIL reads no pixels)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise DataError("frame file is missing", path=path, expected="an existing image file") from None
    except Exception as e:
        raise DataError(f"cannot read image header ({e})", path=path, expected="a readable image") from None
    return int(h), int(w)




# -- streams of frames ------------------------------------------------------------------------
#: File extensions opened as videos by :func:`open_source` (compared lower-cased). The same list
#: as ``mekit.data.video.VIDEO_EXTENSIONS``, defined here because this layer cannot import data.
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg",
                                     ".wmv", ".flv")

#: File extensions read as frames by :class:`FolderSource` (compared lower-cased). The same list
#: as ``mekit.data.image_folder.IMAGE_EXTENSIONS``, for the same reason.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

_VIDEO_KINDS = "a video file (" + ", ".join(e.lstrip(".") for e in VIDEO_EXTENSIONS) + ")"

#: Frame rate assumed for a camera whose driver reports none (many webcam drivers report 0).
#: 30 is what nearly every webcam delivers; camera frames are timed by the clock, not by it.
DEFAULT_CAMERA_FPS = 30.0

#: At most this many warnings are kept in a source's ``problems`` (and skipped files in
#: ``FolderSource.skipped_files``); the counts and the log stay complete.
MAX_PROBLEMS = 1000


@dataclass(frozen=True, slots=True, eq=False)  # no ==: comparing frames would compare pixel arrays
class Frame:
    """One frame of a stream.

    ``index`` is the 0-based position of the frame in the recording (decode order for a video,
    name order for a folder, delivery order for a camera); a skipped or dropped frame leaves a
    gap, so indices and times stay those of the recording. ``time_s`` is the frame's time in
    the recording, from its first frame. ``image`` is ``uint8[H, W, 3]`` in OpenCV's **BGR**
    order, as ``cv2`` decodes it: consumers that run OpenCV (face detection, optical flow) take
    it as it is, and the one conversion to RGB, where a model wants it, is theirs to make.
    ``captured_s`` is the clock time (``time.monotonic`` unless a :class:`PacedSource` was given
    another clock) at which the frame was captured or decoded: ``clock() - captured_s`` when a
    result for the frame is ready is the latency of a live pipeline.
    """

    index: int
    time_s: float
    image: np.ndarray
    captured_s: float = math.nan


@runtime_checkable
class FrameSource(Protocol):
    """What every stream of frames offers; :func:`open_source` returns one.

    A source is iterated once, as a stream: iterating it again continues where the last
    iteration stopped (a camera never rewinds; to re-read a file, open a new source, with
    ``start`` to begin mid-way). It holds at most a couple of decoded frames, whatever its
    length. ``n_frames`` is how many frames the recording holds (None for a camera; for a
    video, what the container declares, which a truncated file does not reach); ``size`` is
    ``(width, height)``; ``dropped`` counts frames a live source threw away because its
    consumer was busy, ``skipped`` frames that could not be decoded and were left out;
    ``problems`` lists, one line each, what was logged as a warning (for a run's report).
    """

    fps: float
    n_frames: int | None
    size: tuple[int, int]
    name: str
    dropped: int
    skipped: int
    problems: list[str]

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc: object) -> None: ...


class _Source:
    """What the sources share: counters, warnings that are also kept, the context manager."""

    fps: float
    n_frames: int | None
    size: tuple[int, int]
    name: str

    def __init__(self) -> None:
        self.dropped = 0
        self.skipped = 0
        self.problems: list[str] = []

    def _warn(self, message: str) -> None:
        log.warning("%s", message)
        # kept for a report, but bounded: a folder of a million damaged frames must not grow a list
        # of a million messages (every one is still logged)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)
        elif len(self.problems) == MAX_PROBLEMS:
            self.problems.append(f"{self.name}: further warnings are only logged")

    def close(self) -> None:
        """Release the file or device; iterating afterwards yields nothing more."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.size
        n = "live" if self.n_frames is None else f"{self.n_frames} frames"
        return f"{type(self).__name__}({self.name!r}, {n}, {self.fps:g} fps, {w}x{h})"


def positive_number(value: Any, error: str) -> float:
    """``value`` as a finite positive float, else a ConfigError with message ``error`` (a frame
    rate, a playing speed: every rate a stream is read at)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = math.nan
    if not (math.isfinite(f) and f > 0):
        raise ConfigError(error)
    return f


def _check_fps(fps: float | None, what: str) -> float | None:
    if fps is None:
        return None
    return positive_number(fps, f"the frame rate of {what} must be a positive number of frames per second; "
                                f"got {fps!r}")


def _check_start(start: int) -> int:
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ConfigError(f"start must be a frame index >= 0 (0 is the first frame); got {start!r}")
    return int(start)


def _cv2_reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


class VideoSource(_Source):
    """The frames of a video file (anything OpenCV's FFmpeg reads: mp4, avi, mov, mkv, ...).

    ``fps`` comes from the container unless given; a container that declares none (0 or NaN)
    is refused at once, since every time in a spotting result would be wrong. ``start`` begins
    at that frame (to resume a run): OpenCV seeks, and the position it reports afterwards is
    checked; seeking is frame-accurate for intra-only codecs (MJPEG) and for FFmpeg's usual
    files, but not guaranteed for every codec and container, so when it lands elsewhere the
    file is reopened and decoded forward to ``start`` (slower, always exact).

    Frame times are ``index / fps``, not OpenCV's ``CAP_PROP_POS_MSEC``: that property follows
    the container's timestamps, which may start at an offset (edit lists, clips cut from longer
    recordings), its meaning (this frame or the next) has differed between backends, and it is
    not defined after a failed read; index and fps are exact for the constant-rate recordings
    this field works with, do not depend on the backend, agree with the frame numbering of
    ``mekit.data.video`` (0-based, decode order), and with the ``fps`` a user passes for a
    high-speed recording stored at a nominal rate.

    A truncated or damaged file ends the stream early with a warning naming the file and its
    last good frame (also kept in ``problems``), never an exception after frames were
    delivered: the frames before the damage are real and a long analysis keeps them.

    Raises:
        DataError: the file is missing, cannot be opened or decoded, declares no frame rate,
            or ends before ``start``.
    """

    def __init__(self, path: str | Path, start: int = 0, fps: float | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = str(self.path)
        start = _check_start(start)
        fps = _check_fps(fps, str(self.path))
        if not self.path.is_file():
            raise DataError("video file does not exist" if not self.path.exists() else "is not a file",
                            path=self.path, expected=_VIDEO_KINDS)
        self._cap = self._open()
        if fps is None:
            declared = float(self._cap.get(_cv2().CAP_PROP_FPS))
            if not (math.isfinite(declared) and declared > 0):
                self._cap.release()
                raise DataError("the video declares no frame rate", path=self.path, value=declared,
                                expected="a positive frame rate: pass it explicitly (fps=..., or --fps on "
                                         "the command line)")
            fps = declared
        self.fps = fps
        count = int(self._cap.get(_cv2().CAP_PROP_FRAME_COUNT) or 0)
        self.n_frames = count if count > 0 else None
        self.start = start
        self._next = start
        self._ended = False
        if start:
            self._seek(start)
        # The first frame is decoded now: a file that opens but does not decode is refused here,
        # before anything was delivered, and the size is the decoded one (headers can lie).
        self._pending = self._read()
        if self._pending is None:
            if self.n_frames is None or start < self.n_frames:
                self._cap.release()
                raise DataError(f"cannot decode frame {start} of the video", path=self.path,
                                expected="a video whose frames OpenCV/FFmpeg can decode")
            self._ended = True  # a run resumed at its very end: nothing left, nothing wrong
        if self._pending is not None:
            h, w = self._pending.shape[:2]
        else:
            h = int(self._cap.get(_cv2().CAP_PROP_FRAME_HEIGHT))
            w = int(self._cap.get(_cv2().CAP_PROP_FRAME_WIDTH))
        self.size = (int(w), int(h))

    def _open(self):
        cv2 = _cv2()
        try:
            cap = cv2.VideoCapture(str(self.path))
        except cv2.error as e:
            raise DataError(f"cannot open the video ({_cv2_reason(e)})", path=self.path) from None
        if not cap.isOpened():
            cap.release()
            raise DataError("cannot open the video (damaged, or a format this OpenCV cannot read)",
                            path=self.path, expected="a video file OpenCV/FFmpeg can read (mp4, avi, mov, mkv)")
        return cap

    def _seek(self, start: int) -> None:
        cv2 = _cv2()
        try:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, start)
            landed = int(round(self._cap.get(cv2.CAP_PROP_POS_FRAMES)))
        except cv2.error:
            landed = -1
        if landed == start:
            return
        # Decision: an inexact seek is never used; decoding forward from frame 0 costs time but
        # resumes exactly where the last run stopped.
        log.info("%s: seeking to frame %d landed on %d; decoding forward instead", self.path, start, landed)
        self._cap.release()
        self._cap = self._open()
        for k in range(start):
            if not self._cap.grab():
                self._cap.release()
                raise DataError(f"cannot start at frame {start}: the video ends after {k} frames",
                                path=self.path, expected=f"a start frame of at most {k}")

    def _read(self) -> np.ndarray | None:
        cv2 = _cv2()
        try:
            ok, img = self._cap.read()
        except cv2.error as e:
            log.debug("%s: decoding frame %d failed: %s", self.path, self._next, _cv2_reason(e))
            return None
        return img if ok and img is not None else None

    def __iter__(self) -> Iterator[Frame]:
        while not self._ended:
            img, self._pending = self._pending, None
            if img is None:
                img = self._read()
            if img is None:
                self._finish()
                return
            i = self._next
            self._next += 1
            yield Frame(i, i / self.fps, img, time.monotonic())

    def _finish(self) -> None:
        self._ended = True
        n = self.n_frames
        if n is not None and self._next < n:
            last = f"frame {self._next - 1}" if self._next > 0 else "no frame"
            self._warn(f"{self.path}: the video ends early, its last good frame is {last} "
                       f"(its header declares {n} frames): the file looks truncated or damaged; "
                       f"frames {self._next}..{n - 1} are missing")

    def close(self) -> None:
        self._ended = True
        self._pending = None
        self._cap.release()


def _frame_number(name: str) -> int | None:
    """The frame number in a file name: the last run of digits of its stem (``img045.jpg``: 45)."""
    digits = re.findall(r"\d+", Path(name).stem)
    return int(digits[-1]) if digits else None


def _natural_key(name: str) -> list[object]:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name)]


class FolderSource(_Source):
    """The frames of a folder of images, ordered by the number in their file names.

    The number is the last run of digits of the name (``reg_img12.jpg``, ``s01_frame0012.png``:
    12), so ``img9`` comes before ``img10`` and zero padding does not matter; ties and names
    without a number fall back to natural order (those without one come last, with a warning).
    A frame's ``index`` is its position in that order, so ``start`` and the times
    (``index / fps``) follow the files present; a gap in the numbering is warned about, since
    the times after it then run early. Frames are decoded with :func:`read_image` (BGR); a
    damaged frame, or one whose size differs from the first, is skipped with a warning that
    names it, counted in ``skipped`` and listed in ``skipped_files`` (the first
    :data:`MAX_PROBLEMS`): one bad frame never sinks a long run. A folder has no frame rate
    of its own, so ``fps`` is required.

    Raises:
        DataError: the folder is missing, holds no image, ``start`` lies beyond its frames, or
            no frame from ``start`` on can be decoded.
    """

    def __init__(self, path: str | Path, fps: float, start: int = 0,
                 extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = str(self.path)
        start = _check_start(start)
        checked = _check_fps(fps, f"the frames in {self.path}")
        if checked is None:
            raise ConfigError(f"{self.path}: a folder of frames has no frame rate of its own; pass fps "
                              "(the rate the frames were recorded at)")
        self.fps = checked
        if not self.path.is_dir():
            raise DataError("frame folder does not exist" if not self.path.exists() else "is not a folder",
                            path=self.path, expected="a folder of image frames")
        exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        # Only the names are kept (a path per frame, no pixels): bounded by the folder, not the video.
        files = [f for f in self.path.iterdir()
                 if f.suffix.lower() in exts and not f.name.startswith(".") and f.is_file()]
        if not files:
            raise DataError("the folder holds no image frames", path=self.path,
                            expected="images named with their frame number ("
                                     + ", ".join(e.lstrip(".") for e in exts) + ")")
        numbers = {f: _frame_number(f.name) for f in files}
        files.sort(key=lambda f: (numbers[f] is None, numbers[f] or 0, _natural_key(f.name)))
        self._note_numbering(files, numbers)
        self.files = files
        self.n_frames = len(files)
        if start > len(files):
            raise DataError(f"cannot start at frame {start}: the folder holds {len(files)} frames",
                            path=self.path, expected=f"a start frame of at most {len(files)}")
        self.start = start
        self._next = start
        self.skipped_files: list[Path] = []
        self.size = (0, 0)
        self._pending: Frame | None = None
        if start < len(files):
            self._pending = self._decode_next(first=True)
            if self._pending is None:
                raise DataError(f"none of frames {start}..{len(files) - 1} can be decoded", path=self.path,
                                expected="image frames (see the warnings above for each file)")
        else:  # resumed at the very end: nothing left; the size is read from a header
            try:
                h, w = image_size(files[-1])
                self.size = (w, h)
            except DataError:
                pass

    def _note_numbering(self, files: list[Path], numbers: dict[Path, int | None]) -> None:
        bare = [f.name for f in files if numbers[f] is None]
        if bare:
            self._warn(f"{self.path}: {len(bare)} image(s) have no frame number in their name (e.g. "
                       f"{bare[0]!r}); they are played after the numbered frames")
        nums = [numbers[f] for f in files if numbers[f] is not None]
        if len(set(nums)) < len(nums):
            dup = next(a for a, b in zip(nums, nums[1:]) if a == b)  # nums is sorted
            names = [f.name for f in files if numbers[f] == dup]
            self._warn(f"{self.path}: several images carry frame number {dup} ({', '.join(names[:3])}); "
                       "they are ordered by name")
        elif nums and nums[-1] - nums[0] + 1 != len(nums):
            missing = nums[-1] - nums[0] + 1 - len(nums)
            self._warn(f"{self.path}: frame numbers run from {nums[0]} to {nums[-1]} but {missing} are "
                       "missing; frames are indexed by position, so times after a gap run early")

    def _decode_next(self, first: bool = False) -> Frame | None:
        """Decode from ``_next`` on until a frame decodes (None at the end), skipping bad ones."""
        while self._next < len(self.files):
            i = self._next
            self._next += 1
            f = self.files[i]
            try:
                img = read_image(f, rgb=False)
                h, w = img.shape[:2]
                if first:
                    self.size = (w, h)
                    first = False
                elif (w, h) != self.size:
                    raise DataError(f"frame {i} is {w}x{h} but the stream is {self.size[0]}x{self.size[1]}",
                                    path=f, expected="frames of one size")
            except DataError as e:
                self.skipped += 1
                if len(self.skipped_files) < MAX_PROBLEMS:
                    self.skipped_files.append(f)
                self._warn(f"frame {i} skipped: {e}")
                continue
            return Frame(i, i / self.fps, img, time.monotonic())
        return None

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame, self._pending = self._pending, None
            if frame is None:
                frame = self._decode_next()
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        self._pending = None
        self._next = len(self.files)


class CameraSource(_Source):
    """A live camera (``cv2.VideoCapture(index)``): endless, until it stops or is closed.

    ``fps`` asks the camera for that rate and is taken as the source's rate; without it the
    driver's reported rate is used, or :data:`DEFAULT_CAMERA_FPS` where it reports none. Frame
    times come from the clock (seconds since the first frame), not from ``index / fps``: a
    camera's real rate drifts from its nominal one and drops frames under load, and a spotter
    needs real time. A camera that stops delivering ends the stream with a warning.

    Raises:
        DataError: no camera opens at ``index``, or it opens but delivers no frame.
    """

    def __init__(self, index: int, fps: float | None = None) -> None:
        super().__init__()
        cv2 = _cv2()
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ConfigError(f"a camera index is a whole number >= 0 (0 is the first camera); got {index!r}")
        self.index = int(index)
        self.name = f"camera {self.index}"
        fps = _check_fps(fps, self.name)
        expected = ("the index of a connected camera (0 is the first; on Linux /dev/videoN is index N) "
                    "that no other program is using")
        try:
            self._cap = cv2.VideoCapture(self.index)
        except cv2.error as e:
            raise DataError(f"{self.name} cannot be opened ({_cv2_reason(e)})", expected=expected) from None
        if not self._cap.isOpened():
            self._cap.release()
            raise DataError(f"{self.name} cannot be opened", expected=expected)
        if fps is not None:
            self._cap.set(cv2.CAP_PROP_FPS, fps)  # a request; some drivers ignore it
        else:
            reported = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
            if math.isfinite(reported) and reported > 0:
                fps = reported
            else:
                fps = DEFAULT_CAMERA_FPS
                log.info("%s reports no frame rate; assuming %g fps", self.name, fps)
        self.fps = float(fps)
        self.n_frames = None
        self._next = 0
        self._t0: float | None = None
        self._ended = False
        self._pending = self._grab()
        if self._pending is None:
            self._cap.release()
            raise DataError(f"{self.name} opened but delivers no frames", expected=expected)
        h, w = self._pending.image.shape[:2]
        self.size = (int(w), int(h))

    def _grab(self) -> Frame | None:
        cv2 = _cv2()
        try:
            ok, img = self._cap.read()
        except cv2.error:
            ok, img = False, None
        if not ok or img is None:
            return None
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        i = self._next
        self._next += 1
        return Frame(i, now - self._t0, img, now)

    def __iter__(self) -> Iterator[Frame]:
        while not self._ended:
            frame, self._pending = self._pending, None
            if frame is None:
                frame = self._grab()
            if frame is None:
                self._ended = True
                self._warn(f"{self.name} stopped delivering frames after frame {self._next - 1}")
                return
            yield frame

    def close(self) -> None:
        self._ended = True
        self._pending = None
        self._cap.release()


class PacedSource(_Source):
    """Any source played at its real frame rate, as a live camera would deliver it.

    A reader thread takes frames from ``source`` and hands each over when it is due (its
    ``time_s`` after the first, divided by ``speed``), into a buffer of ONE frame. When the
    consumer is slower than the frame rate, the waiting frame is replaced by the newer one and
    counted in ``dropped`` (frames are dropped, not queued, so a slow consumer always gets the
    latest frame and never falls ever further behind): exactly what a camera does. That makes
    the live pipeline testable on a file, without a camera. Delivered frames keep their
    ``index`` and ``time_s`` (the gaps show what was dropped); ``captured_s`` is restamped with
    ``clock()`` at the moment a frame became available, so ``clock() - frame.captured_s`` is
    the latency a live consumer adds. ``clock`` must count seconds like ``time.monotonic``;
    waits are real sleeps.

    When ``source`` cannot decode as fast as the frame rate, frames come late rather than being
    skipped (the lateness shows in ``captured_s``). The reader starts with the first iteration;
    leaving the loop or :meth:`close` stops it. The source is owned: closing this closes it.
    """

    def __init__(self, source: FrameSource, speed: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # no _Source.__init__: dropped, skipped and problems are read through from the source
        self.source = source
        self.speed = positive_number(speed, f"the playing speed must be a positive factor (1 = real time); "
                                            f"got {speed!r}")
        self.clock = clock
        self.fps = source.fps
        self.n_frames = source.n_frames
        self.size = source.size
        self.name = source.name
        self._own_dropped = 0
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._done = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # dropped/skipped/problems include the wrapped source's, so a report reads one place
    @property
    def dropped(self) -> int:  # type: ignore[override]
        return self._own_dropped + getattr(self.source, "dropped", 0)

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return getattr(self.source, "skipped", 0)

    @property
    def problems(self) -> list[str]:  # type: ignore[override]
        return list(getattr(self.source, "problems", []))

    def _read(self) -> None:
        try:
            t0 = first = None
            for frame in self.source:
                if self._stop.is_set():
                    break
                if t0 is None:
                    t0, first = self.clock(), frame.time_s
                wait = t0 + (frame.time_s - first) / self.speed - self.clock()
                if wait > 0 and self._stop.wait(wait):
                    break
                frame = replace(frame, captured_s=self.clock())
                with self._cond:
                    if self._slot is not None:
                        self._own_dropped += 1
                    self._slot = frame
                    self._cond.notify()
        except BaseException as e:  # handed to the consumer, which raises it after the last frame
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name=f"mekit-paced-{self.name}", daemon=True)
            self._thread.start()
        try:
            while True:
                with self._cond:
                    while self._slot is None and not self._done:
                        self._cond.wait()
                    frame, self._slot = self._slot, None
                if frame is None:
                    break
                yield frame
        finally:
            self._stop.set()  # a live stream does not pause: leaving the loop ends it
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            if self._thread.is_alive():  # never release a capture another thread is reading
                log.warning("%s: the reader did not stop within 10 s; its source is left open", self.name)
                return
        with self._cond:
            self._slot = None
        self.source.close()


class PushSource(_Source):
    """Frames pushed in from outside (a browser's camera posting JPEGs, another program's
    capture loop), read as a live stream by whatever iterates the source (``analyze``'s
    :func:`~mekit.analysis.analyze.stream`, in another thread).

    Between the two sits a queue of at most ``maxsize`` frames. When it is full, the OLDEST
    waiting frame is dropped and counted in ``dropped``: like :class:`PacedSource`, a consumer
    slower than the frame rate gets recent frames and never falls ever further behind, and the
    pusher never blocks (a web request that hands over a frame returns at once). ``received``
    counts every frame pushed.

    Frame indices follow the frames' times: a frame pushed with ``time_s`` (seconds since the
    stream began, by the pusher's clock; without it, this source's clock since the first push)
    gets index ``round(time_s * fps)``, or the previous index + 1 when that is not larger. So a
    spotter that counts in frames at the nominal ``fps`` sees the real timing even when the
    pusher delivers irregularly, and a dropped frame leaves a gap, as for every live source.
    Frames of another size than the first are resized to it (a stream has one size).

    :meth:`end` says no more frames will come: the consumer still receives the waiting ones,
    then its loop ends normally (so an analysis writes its outputs). :meth:`close` ends at once
    and discards what waits.
    """

    def __init__(self, fps: float, size: tuple[int, int], *, maxsize: int = 8, name: str = "pushed frames",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.fps = positive_number(fps, f"the frame rate of {name} must be a positive number of frames per "
                                        f"second; got {fps!r}")
        try:
            w, h = (int(v) for v in size)
        except (TypeError, ValueError):
            w = h = 0
        if w < 2 or h < 2:
            raise ConfigError(f"the frame size of {name} must be (width, height) of at least 2 pixels; got {size!r}")
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigError(f"the queue of {name} must hold at least 1 frame; got maxsize={maxsize!r}")
        self.size = (w, h)
        self.name = name
        self.n_frames = None
        self.maxsize = maxsize
        self.received = 0
        self.clock = clock
        self._queue: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._ended = False
        self._t0: float | None = None
        self._last = -1
        #: set once the consumer starts iterating (a pusher may hold frames back until then)
        self.reading = threading.Event()

    def push(self, image: np.ndarray, time_s: float | None = None) -> bool:
        """Hand over one BGR ``uint8[H, W, 3]`` frame; False (and nothing kept) once ended."""
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                and image.shape[2] == 3):
            got = getattr(image, "shape", type(image).__name__)
            raise DataError(f"{self.name}: a frame must be a colour image uint8[H, W, 3]; got {got}")
        now = self.clock()
        with self._cond:
            if self._ended:
                return False
            if self._t0 is None:
                self._t0 = now - (float(time_s) if time_s is not None else 0.0)
            t = float(time_s) if time_s is not None and math.isfinite(float(time_s)) else now - self._t0
            index = max(self._last + 1, int(round(t * self.fps)))
            self._last = index
            self.received += 1
        h, w = image.shape[:2]
        if (w, h) != self.size:
            image = _cv2().resize(image, self.size, interpolation=_cv2().INTER_AREA)
        frame = Frame(index, index / self.fps, image, now)
        with self._cond:
            if self._ended:
                return False
            if len(self._queue) >= self.maxsize:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(frame)
            self._cond.notify()
        return True

    def push_encoded(self, data: bytes, time_s: float | None = None) -> bool:
        """Hand over one encoded image (JPEG, PNG, ...); a damaged one raises :class:`DataError`."""
        cv2 = _cv2()
        defect = image_defect(data)
        if defect is not None:
            raise DataError(f"{self.name}: {defect}", expected=_EXPECTED_IMAGE)
        try:
            img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as e:
            raise DataError(f"{self.name}: cannot decode the frame ({_cv2_reason(e)})",
                            expected=_EXPECTED_IMAGE) from None
        if img is None:
            raise DataError(f"{self.name}: cannot decode the frame (not an image)", expected=_EXPECTED_IMAGE)
        return self.push(img, time_s)

    @property
    def waiting(self) -> int:
        """Frames pushed and not yet taken by the consumer."""
        with self._cond:
            return len(self._queue)

    @property
    def ended(self) -> bool:
        return self._ended

    def end(self) -> None:
        """No more frames: the consumer takes those waiting, then its loop ends."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        self.reading.set()
        while True:
            with self._cond:
                while not self._queue and not self._ended:
                    self._cond.wait()
                if not self._queue:
                    return
                frame = self._queue.popleft()
            yield frame

    def close(self) -> None:
        with self._cond:
            self._ended = True
            self._queue.clear()
            self._cond.notify_all()


def _cv2():
    import cv2

    return cv2


def open_source(input: str | Path | int | None = None, fps: float | None = None, start: int = 0,
                camera: int | None = None) -> FrameSource:
    """The frame source for a video file, a folder of frames or a camera.

    ``camera`` (or an ``int`` input) opens that camera; a path with a video extension
    (:data:`VIDEO_EXTENSIONS`) a :class:`VideoSource`, where ``fps`` overrides the container's
    rate (high-speed recordings are often stored at a nominal 25 or 30 fps); a folder a
    :class:`FolderSource`, which needs ``fps``. ``start`` resumes a file or folder at a frame.

    Raises:
        DataError: the input does not exist or is neither a video nor a folder (and what the
            chosen source raises).
        ConfigError: contradictory or invalid arguments (a camera with an input or a start).
    """
    start = _check_start(start)
    if isinstance(input, (int, np.integer)) and not isinstance(input, bool):
        if camera is not None:
            raise ConfigError(f"two cameras given ({input} and {camera}); give one")
        input, camera = None, int(input)
    if camera is not None:
        if input is not None:
            raise ConfigError(f"give either an input ({input}) or a camera ({camera}), not both")
        if start:
            raise ConfigError(f"a camera cannot start at frame {start}: it is live")
        return CameraSource(camera, fps=fps)
    if input is None or str(input).strip() == "":
        raise DataError("no input given", expected="a video file, a folder of frames, or a camera index")
    path = Path(input).expanduser()
    kinds = _VIDEO_KINDS + ", a folder of image frames, or a camera index"
    if not path.exists():
        hint = f" (for camera {input}, give it as a camera index)" if str(input).strip().isdigit() else ""
        raise DataError(f"input does not exist{hint}", path=path, expected=kinds)
    if path.is_dir():
        if fps is None:
            raise ConfigError(f"{path}: a folder of frames has no frame rate of its own; pass fps "
                              "(the rate the frames were recorded at)")
        return FolderSource(path, fps, start=start)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return VideoSource(path, start=start, fps=fps)
    raise DataError(f"cannot stream this input (extension {path.suffix or '(none)'!r})", path=path,
                    expected=kinds)

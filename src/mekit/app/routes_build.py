"""The Build-a-dataset screen's API: open a recording, scrub it frame by frame, see the flow
between the marked onset and apex, preview frame sampling, ask the spotter for suggestions, and
export the marked clips as a dataset in a corpus layout (:func:`mekit.data.extract.extract_intervals`).

=================================  ==============================================================
``GET  /api/build/choices``        the menus: emotions, frame samplers (with their parameters),
                                   flow methods, sheet formats
``GET  /api/build/videos``         the videos in an allowed folder (``?folder=``), and how many
                                   image frames it holds (a folder of frames opens too)
``GET  /api/build/video``          a recording's frame count, frame rate, size (``?video=&fps=``)
``GET  /api/build/frame``          frame ``index`` as JPEG, ``size`` pixels wide
                                   (``?video=&index=&size=&fps=``)
``GET  /api/build/flow``           onset->apex optical flow in colour, as PNG
                                   (``?video=&onset=&apex=&method=&face=&fps=``)
``GET  /api/build/sampling``       the frames a sampler picks from a clip
                                   (``?sampler=&params=&onset=&apex=&offset=``)
``POST /api/build/spot``           start a spotting job (:func:`mekit.app.build_jobs.spot`)
``POST /api/build/export``         start an export job (:func:`mekit.app.build_jobs.export`)
=================================  ==============================================================

Frames are read with :func:`mekit.media.open_source`, the reader every other part of mekit
uses, so frame ``N`` here is frame ``N`` of an export and of ``mekit analyze`` (0-based, decode
order). Scrubbing asks for one frame after another, so the open sources are kept in a small
least-recently-used cache (:data:`MAX_OPEN`): a step forward decodes the next frame of the
source already open, a step back or a jump re-opens it at that frame (``start=``: an exact seek,
checked by :class:`~mekit.media.VideoSource`, 5-20 ms on the test videos), and the last frames
decoded and JPEGs sent are kept, so going back and forth over a few frames costs nothing.

The flow image is mekit's own: :func:`~mekit.preprocess.flow.compute_flow` and
:func:`~mekit.preprocess.flow.flow_to_hsv_image` (hue = direction, brightness = speed), as
``mekit preview`` draws it. With ``face=1`` both frames are cut with ONE face box found on the
onset frame (:class:`~mekit.preprocess.face.FaceAligner`, OpenCV's Haar cascade, which needs no
MediaPipe in the server process), as preprocessing does, so crop jitter never shows as motion;
where no face is found the whole frame is used and the response says so
(``X-Flow-Region``).

Export refuses a folder that is an allowed folder itself or holds the recording (overwriting it
would delete either); the rest (a non-empty folder without overwrite or append, a bad subject,
bad intervals) is refused by ``extract_intervals`` itself, whose one-line error the page shows.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from mekit.errors import ConfigError, DataError, MekitError

router = APIRouter(prefix="/api/build")
SCREEN = {"id": "build", "title": "Build a dataset", "script": "screens/build.js"}
_JOBS = "mekit.app.build_jobs"

#: recordings kept open at once (each holds a decoder and a few decoded frames)
MAX_OPEN = 4
#: a frame at most this many frames after the open source's position is reached by decoding
#: forward; further (or any frame before it) re-opens the source there
FORWARD_GAP = 48
#: decoded frames and JPEGs kept per recording
KEEP_FRAMES = 12
KEEP_JPEGS = 400
JPEG_QUALITY = 90
#: frame width limits of the frame route (pixels)
MIN_WIDTH, MAX_WIDTH = 16, 4096
#: the flow is computed on the face crop at this size, or on the whole frame shrunk to this width
FLOW_CROP = 192
FLOW_WIDTH = 480
#: files listed by /videos
MAX_LISTED = 500


class OutOfRange(MekitError):
    """A frame index past the recording's end, or a frame that cannot be decoded (HTTP 404)."""

    status = 404


# -- reading frames ---------------------------------------------------------------------------
class FrameReader:
    """Random access to the frames of one recording over :func:`mekit.media.open_source`
    (which streams): see the module docstring. One lock per reader: requests for the same
    recording are served one at a time, others in parallel."""

    def __init__(self, path: Path, fps: float | None) -> None:
        from mekit.media import open_source

        self.path, self.fps_given = path, fps
        self.lock = threading.Lock()
        self._open = open_source
        self._source: Any = None
        self._it: Any = None
        self._next = 0
        self._frames: OrderedDict[int, Any] = OrderedDict()
        self.jpegs: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._reopen(0)
        src = self._source
        self.fps, self.n_frames, self.size = float(src.fps), src.n_frames, tuple(src.size)

    def info(self) -> dict[str, Any]:
        n = self.n_frames
        return {"path": str(self.path), "name": self.path.name, "kind": "frames" if self.path.is_dir() else "video",
                "n_frames": n, "fps": self.fps, "width": self.size[0], "height": self.size[1],
                "duration_s": None if n is None else round(n / self.fps, 3)}

    def _reopen(self, start: int) -> None:
        self.close()
        self._source = self._open(self.path, fps=self.fps_given, start=start)
        self._it = iter(self._source)
        self._next = start

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
        self._source = self._it = None

    def frame(self, index: int) -> Any:
        """Frame ``index`` (BGR ``uint8[H, W, 3]``); the caller holds :attr:`lock`."""
        if self.n_frames is not None and index >= self.n_frames:
            raise OutOfRange(f"frame {index} is past the end of {self.path.name} (frames 0..{self.n_frames - 1})")
        if index in self._frames:
            self._frames.move_to_end(index)
            return self._frames[index]
        if self._source is None or index < self._next or index - self._next > FORWARD_GAP:
            try:
                self._reopen(index)
            except DataError as e:
                raise OutOfRange(f"frame {index} cannot be read from {self.path.name}: {e}") from None
        for fr in self._it:
            self._next = fr.index + 1
            self._frames[fr.index] = fr.image
            while len(self._frames) > KEEP_FRAMES:
                self._frames.popitem(last=False)
            if fr.index >= index:
                break
        if index not in self._frames:
            self.close()  # the stream ended early (a truncated file) or skipped this frame
            raise OutOfRange(f"frame {index} cannot be read from {self.path.name} (it ends before it, or the "
                             f"frame is damaged)")
        return self._frames[index]


def _readers(request: Request) -> tuple[threading.Lock, OrderedDict]:
    state = request.app.state
    if not hasattr(state, "build_readers"):
        state.build_readers = (threading.Lock(), OrderedDict())
    return state.build_readers


def _recording(request: Request, video: str) -> Path:
    """A recording inside the allowed folders: a video file or a folder of frames."""
    from mekit.media import VIDEO_EXTENSIONS

    path = request.app.state.sandbox.resolve(video)
    if not path.exists():
        from mekit.app.sandbox import NotFound

        raise NotFound(f"{video} does not exist; expected a video file or a folder of frames")
    if path.is_file() and path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise DataError(f"is not a video (extension {path.suffix or '(none)'!r})", path=video,
                        expected="a video file (" + ", ".join(e.lstrip(".") for e in VIDEO_EXTENSIONS)
                                 + ") or a folder of frames")
    return path


def _fps(fps: float | None) -> float | None:
    if fps is None:
        return None
    if not (fps > 0 and fps < 1e5):
        raise ConfigError(f"fps must be a positive frame rate; got {fps!r}")
    return float(fps)


def reader(request: Request, video: str, fps: float | None = None) -> FrameReader:
    """The cached reader of ``video`` (opened when not cached); keyed by the file's real path,
    modification time and size, so a file replaced on disk is read afresh."""
    path = _recording(request, video)
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size, _fps(fps))
    lock, cache = _readers(request)
    with lock:
        r = cache.get(key)
        if r is not None:
            cache.move_to_end(key)
            return r
    r = FrameReader(path, key[3])  # opened outside the cache's lock: other recordings stay served
    with lock:
        cache[key] = r
        while len(cache) > MAX_OPEN:
            _, old = cache.popitem(last=False)
            with old.lock:
                old.close()
    return r


def _resize(img: Any, width: int) -> Any:
    import cv2

    h, w = img.shape[:2]
    if width >= w:
        return img
    return cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def _encode(img: Any, ext: str, *params: int) -> bytes:
    import cv2

    ok, buf = cv2.imencode(ext, img, list(params))
    if not ok:
        raise DataError(f"cannot encode the image as {ext}")
    return buf.tobytes()


# -- routes -----------------------------------------------------------------------------------
@router.get("/choices")
def choices() -> dict[str, Any]:
    from mekit.app.server import _catalogue
    from mekit.data.extract import LAYOUTS, SHEET_FORMATS
    from mekit.data.labels import CANONICAL

    emotions = sorted(set(CANONICAL.values()) - {"others"}) + ["others"]
    return {"emotions": emotions, "samplers": _catalogue("frame_samplers"), "flow_methods": _catalogue("flow_methods"),
            "sheet_formats": list(SHEET_FORMATS), "layouts": list(LAYOUTS.names()), "flow_default": "farneback"}


@router.get("/videos")
def videos(request: Request, folder: str) -> dict[str, Any]:
    from mekit.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    path = request.app.state.sandbox.resolve(folder, want="dir")
    found, images = [], 0
    try:
        with os.scandir(path) as it:
            for e in it:
                if e.name.startswith(".") or not e.is_file():
                    continue
                ext = os.path.splitext(e.name)[1].lower()
                if ext in VIDEO_EXTENSIONS:
                    found.append({"name": e.name, "path": str(path / e.name), "bytes": e.stat().st_size})
                elif ext in IMAGE_EXTENSIONS:
                    images += 1
    except OSError as err:
        raise DataError(f"cannot list the folder ({err.strerror or err})", path=path) from None
    found.sort(key=lambda v: v["name"].lower())
    return {"folder": str(path), "videos": found[:MAX_LISTED], "truncated": len(found) > MAX_LISTED,
            "images": images}


@router.get("/video")
def video_info(request: Request, video: str, fps: float | None = None) -> dict[str, Any]:
    r = reader(request, video, fps)
    return r.info()


@router.get("/frame")
def frame(request: Request, video: str, index: int = Query(..., ge=0), size: int | None = None,
          fps: float | None = None) -> Response:
    import cv2

    r = reader(request, video, fps)
    width = r.size[0] if size is None else min(max(int(size), MIN_WIDTH), MAX_WIDTH)
    with r.lock:
        data = r.jpegs.get((index, width))
        if data is None:
            img = _resize(r.frame(index), width)
            data = _encode(img, ".jpg", int(cv2.IMWRITE_JPEG_QUALITY), JPEG_QUALITY)
            r.jpegs[(index, width)] = data
            while len(r.jpegs) > KEEP_JPEGS:
                r.jpegs.popitem(last=False)
        else:
            r.jpegs.move_to_end((index, width))
    return Response(data, media_type="image/jpeg", headers={"X-Frame-Index": str(index)})


@router.get("/flow")
def flow(request: Request, video: str, onset: int = Query(..., ge=0), apex: int = Query(..., ge=0),
         method: str = "farneback", face: bool = True, fps: float | None = None) -> Response:
    import cv2
    import numpy as np

    from mekit.preprocess.flow import FLOW_METHODS, compute_flow, flow_to_hsv_image

    FLOW_METHODS.get(method)  # ConfigError naming the methods
    if apex <= onset:
        raise ConfigError(f"the apex ({apex}) must come after the onset ({onset}) to show the flow between them")
    r = reader(request, video, fps)
    with r.lock:
        a, b = r.frame(onset).copy(), r.frame(apex).copy()
    region = "whole frame"
    if face:
        from mekit.preprocess.face import FaceAligner, NoFaceError

        try:
            box = FaceAligner(detector="haar", landmarks=False).fit(a)
            a, b = box.apply(a, FLOW_CROP), box.apply(b, FLOW_CROP)
            region = "face"
        except NoFaceError:
            region = "whole frame (no face found on the onset frame)"
    if region != "face":
        a, b = _resize(a, FLOW_WIDTH), _resize(b, FLOW_WIDTH)
    uv = compute_flow(a, b, method)
    top = float(np.linalg.norm(uv, axis=-1).max())
    png = _encode(cv2.cvtColor(flow_to_hsv_image(uv), cv2.COLOR_RGB2BGR), ".png")
    return Response(png, media_type="image/png",
                    headers={"X-Flow-Max": f"{top:.3f}", "X-Flow-Region": region, "X-Flow-Method": method})


@router.get("/sampling")
def sampling(sampler: str, onset: int = Query(..., ge=0), offset: int = Query(..., ge=0), apex: int | None = None,
             params: str = "{}") -> dict[str, Any]:
    import json

    from mekit.config import load_yaml
    from mekit.preprocess.temporal import SAMPLERS, sample_frames

    SAMPLERS.get(sampler)  # ConfigError naming the samplers
    try:
        raw = json.loads(params)
    except json.JSONDecodeError:
        raise ConfigError("sampler parameters must be a JSON object") from None
    if not isinstance(raw, dict):
        raise ConfigError("sampler parameters must be a JSON object")
    values = {}
    for k, v in raw.items():
        if isinstance(v, str):
            if not v.strip():
                raise ConfigError(f"give a value for the sampler's {k}")
            v = load_yaml(v, f"sampler parameter {k}")
        values[str(k)] = v
    frames = sample_frames(sampler, onset, apex, offset, **values)
    return {"sampler": sampler, "params": values, "frames": [int(f) for f in frames]}


class SpotRequest(BaseModel):
    video: str
    fps: float | None = None


class Clip(BaseModel):
    onset: int = Field(..., ge=0)
    apex: int | None = Field(None, ge=0)
    offset: int = Field(..., ge=0)
    emotion: str = ""
    action_units: str = ""
    kind: str = ""


class ExportRequest(BaseModel):
    video: str
    fps: float | None = None
    clips: list[Clip] = Field(..., max_length=10000)
    out: str
    subject: str = "1"
    sheet_format: str = "xlsx"
    context: float = Field(0.0, ge=0, le=10)
    overwrite: bool = False
    append: bool = False


@router.post("/spot")
def spot(request: Request, body: SpotRequest) -> dict[str, Any]:
    path = _recording(request, body.video)
    params = {"video": str(path), "fps": _fps(body.fps)}
    return request.app.state.jobs.submit("build.spot", f"{_JOBS}:spot", params).summary()


@router.post("/export")
def export(request: Request, body: ExportRequest) -> dict[str, Any]:
    sandbox = request.app.state.sandbox
    video = _recording(request, body.video)
    if not body.clips:
        raise ConfigError("no clips to export: mark at least one (onset, apex, offset) and add it")
    if not body.out.strip():
        raise ConfigError("choose an output folder for the dataset")
    out = sandbox.resolve(body.out)
    if out in sandbox.allowed:
        raise ConfigError(f"{out} is an allowed folder itself; choose a new folder inside it for the dataset")
    if video == out or video.is_relative_to(out):
        raise ConfigError(f"the dataset folder {out} holds the recording {video.name}; choose another folder")
    params = {"video": str(video), "fps": _fps(body.fps), "out": str(out), "subject": body.subject.strip() or "1",
              "sheet_format": body.sheet_format, "context": body.context, "overwrite": body.overwrite,
              "append": body.append, "clips": [c.model_dump() for c in body.clips]}
    return request.app.state.jobs.submit("build.export", f"{_JOBS}:export", params).summary()


__all__ = ["SCREEN", "FrameReader", "reader", "router"]

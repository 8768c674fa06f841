"""The Analyse screen's API: analyse one or many recordings (a batch) or the browser's camera
with optional bundles; review each recording's timeline with markers; average the response
across recordings aligned on the markers.

=============================================  =================================================
``GET  /api/analyse/choices``                  the menus: face detectors, camera defaults
``POST /api/analyse/batch``                    start a batch job (:func:`mekit.app.analyse_jobs.batch`)
``POST /api/analyse/live``                     start a live camera session (a job)
``POST /api/analyse/live/<id>/frame?t=<ms>``   one camera frame (the body, a JPEG)
``POST /api/analyse/live/<id>/stop``           end the session; the job writes its outputs
``GET  /api/analyse/<id>/markers``             the markers of a finished job's recordings
``PUT  /api/analyse/<id>/markers/<key>``       set one recording's markers (``{markers: [...]}``)
``POST /api/analyse/<id>/aligned``             the average response aligned on the markers
=============================================  =================================================

A batch names its recordings by path (uploads land in the work folder, which is allowed) and
its bundles the same way; every path is resolved in the sandbox (403 outside the allowed
folders) and must be a video or a bundle by its extension, checked here so a mistake is one
line before a job starts. Bundles are then loaded in the job by mekit's safe loader.

Camera frames travel as JPEG files into the session job's inbox (why: see
:mod:`mekit.app.analyse_jobs`); at most :data:`~mekit.app.analyse_jobs.INBOX_LIMIT` wait, and a
frame that finds the inbox full is refused with ``accepted: false`` (the page counts it
dropped), so nothing piles up when the analysis falls behind or has not started yet.
"""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from mekit.errors import ConfigError

router = APIRouter(prefix="/api/analyse")
SCREEN = {"id": "analyse", "title": "Analyse", "script": "screens/analyse.js"}

_JOBS = "mekit.app.analyse_jobs"
#: recordings one batch may hold
MAX_VIDEOS = 100
#: the largest camera frame accepted (a 640 px JPEG is some tens of kilobytes)
MAX_FRAME_BYTES = 2 * 1024 * 1024
#: the same lists as mekit.media.VIDEO_EXTENSIONS and the sandbox's bundle kind, kept here so the
#: server does not import numpy to check a name
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")
BUNDLE_EXTENSIONS = (".mekit", ".zip")
_seq_lock = threading.Lock()
_seqs: dict[str, Any] = {}


class Bundles(BaseModel):
    model: str | None = None
    intensity: str | None = None
    detector: str = "auto"
    web_video: bool = True


class BatchRequest(Bundles):
    videos: list[str] = Field(default_factory=list)


class LiveRequest(Bundles):
    size: tuple[int, int]
    fps: float = Field(15.0, gt=0, le=60)
    idle_s: float = Field(60.0, gt=0, le=3600)


class MarkersBody(BaseModel):
    markers: list[Any] = Field(default_factory=list)


class AlignedRequest(BaseModel):
    before_s: float = 2.0
    after_s: float = 5.0
    bin_s: float = 0.1


def _bundle_params(request: Request, body: Bundles) -> dict[str, Any]:
    from mekit.app.server import _catalogue

    sandbox = request.app.state.sandbox
    params: dict[str, Any] = {"web_video": body.web_video}
    for key in ("model", "intensity"):
        text = (getattr(body, key) or "").strip()
        if not text:
            continue
        path = sandbox.resolve(text, want="file")
        if path.suffix.lower() not in BUNDLE_EXTENSIONS:
            raise ConfigError(f"{key} bundle {path.name}: not a mekit bundle (expected a name ending in "
                              f"{', '.join(BUNDLE_EXTENSIONS)})")
        params[key], params[f"{key}_name"] = str(path), _display_name(path)
    detectors = {d["name"] for d in _catalogue("face_detectors")}
    if body.detector not in detectors:
        raise ConfigError(f"unknown face detector {body.detector!r}; expected one of {', '.join(sorted(detectors))}")
    params["detector"] = body.detector
    return params


def _display_name(path: Path) -> str:
    """An upload's name without the random token the sandbox put before it."""
    name = path.name
    head, sep, rest = name.partition("-")
    return rest if sep and len(head) == 16 and all(c in "0123456789abcdef" for c in head) else name


def _job(request: Request, job_id: str, kind: str | None = None) -> Any:
    from mekit.app.server import job_or_404

    return job_or_404(request, job_id, what="analysis",
                      accept=lambda job: job.kind.startswith("analyse.") and (not kind or job.kind == kind))


def _recordings(job: Any) -> dict[str, dict[str, Any]]:
    if job.state != "done" or not isinstance(job.result, dict):
        raise ConfigError(f"the analysis {job.id} is {job.state}: markers and averages need a finished one")
    return {r["key"]: r for r in job.result.get("recordings", [])}


@router.get("/choices")
def choices(request: Request) -> dict[str, Any]:
    from mekit.app.analyse_jobs import INBOX_LIMIT
    from mekit.app.server import _catalogue

    return {"face_detectors": _catalogue("face_detectors"), "video_extensions": list(VIDEO_EXTENSIONS),
            "bundle_extensions": list(BUNDLE_EXTENSIONS), "camera": {"fps": 12, "width": 480},
            "inbox_limit": INBOX_LIMIT, "max_videos": MAX_VIDEOS,
            "max_upload_bytes": request.app.state.settings.max_upload_bytes}


@router.post("/batch")
def batch(request: Request, body: BatchRequest) -> dict[str, Any]:
    sandbox = request.app.state.sandbox
    if not body.videos:
        raise ConfigError("choose at least one recording to analyse (upload one, or give its path)")
    if len(body.videos) > MAX_VIDEOS:
        raise ConfigError(f"at most {MAX_VIDEOS} recordings in one batch; got {len(body.videos)}")
    videos = []
    for text in body.videos:
        path = sandbox.resolve(text, want="file")
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise ConfigError(f"{path.name}: not a video (expected a name ending in {', '.join(VIDEO_EXTENSIONS)})")
        videos.append({"path": str(path), "name": _display_name(path)})
    params = {**_bundle_params(request, body), "videos": videos}
    return request.app.state.jobs.submit("analyse.batch", f"{_JOBS}:batch", params).summary()


@router.post("/live")
def live(request: Request, body: LiveRequest) -> dict[str, Any]:
    w, h = body.size
    if not (16 <= w <= 1920 and 16 <= h <= 1920):
        raise ConfigError(f"camera frames of {w}x{h} pixels: expected 16 to 1920 pixels a side")
    params = {**_bundle_params(request, body), "size": [w, h], "fps": body.fps, "idle_s": body.idle_s}
    job = request.app.state.jobs.submit("analyse.live", f"{_JOBS}:live", params)
    with _seq_lock:
        _seqs[job.id] = itertools.count()
    return job.summary()


@router.post("/live/{job_id}/frame")
async def live_frame(request: Request, job_id: str, t: int = 0) -> dict[str, Any]:
    from mekit.app.analyse_jobs import INBOX, INBOX_LIMIT, STOP
    from mekit.app.jobs import FINISHED

    job = _job(request, job_id, "analyse.live")
    inbox = job.out_dir / INBOX
    if job.state in FINISHED or (inbox / STOP).exists():
        raise ConfigError(f"the camera session {job_id} has ended ({job.state})")
    data = await request.body()
    if not data.startswith(b"\xff\xd8\xff") or len(data) > MAX_FRAME_BYTES:
        raise ConfigError(f"a camera frame must be a JPEG of at most {MAX_FRAME_BYTES} bytes")
    inbox.mkdir(exist_ok=True)
    waiting = sum(1 for n in os.listdir(inbox) if n.endswith(".jpg"))
    if waiting >= INBOX_LIMIT:
        return {"accepted": False, "waiting": waiting}
    with _seq_lock:
        seq = next(_seqs.setdefault(job.id, itertools.count()))
    name = f"{seq:08d}-{max(0, int(t))}.jpg"
    part = inbox / (name + ".part")
    part.write_bytes(data)
    os.replace(part, inbox / name)
    return {"accepted": True, "waiting": waiting + 1, "state": job.state}


@router.post("/live/{job_id}/stop")
def live_stop(request: Request, job_id: str) -> dict[str, Any]:
    from mekit.app.analyse_jobs import INBOX, STOP

    job = _job(request, job_id, "analyse.live")
    inbox = job.out_dir / INBOX
    inbox.mkdir(exist_ok=True)
    (inbox / STOP).touch()
    with _seq_lock:
        _seqs.pop(job.id, None)
    return job.summary()


@router.get("/{job_id}/markers")
def get_markers(request: Request, job_id: str) -> dict[str, Any]:
    from mekit.analysis.review import MARKERS, read_markers

    job = _job(request, job_id)
    return {"markers": read_markers(job.out_dir / MARKERS)}


@router.put("/{job_id}/markers/{key}")
def put_markers(request: Request, job_id: str, key: str, body: MarkersBody) -> dict[str, Any]:
    from mekit.analysis.review import MARKERS, write_markers

    job = _job(request, job_id)
    recs = _recordings(job)
    if key not in recs:
        raise HTTPException(404, f"no recording {key!r} in the analysis {job_id}")
    saved = write_markers(job.out_dir / MARKERS, key, body.markers, recs[key].get("duration_s"))
    return {"key": key, "markers": saved}


@router.post("/{job_id}/aligned")
def aligned(request: Request, job_id: str, body: AlignedRequest) -> dict[str, Any]:
    from mekit.analysis.review import MARKERS, aligned_response, aligned_response_csv, read_markers, read_recording

    job = _job(request, job_id)
    recs = _recordings(job)
    markers = read_markers(job.out_dir / MARKERS)
    inputs = [read_recording(job.out_dir / r["dir"], markers.get(key, []), r["name"]) for key, r in recs.items()]
    result = aligned_response(inputs, before_s=body.before_s, after_s=body.after_s, bin_s=body.bin_s)
    aligned_response_csv(result, job.out_dir / "aligned.csv")
    return {**result, "file": "aligned.csv"}


__all__ = ["SCREEN", "router"]

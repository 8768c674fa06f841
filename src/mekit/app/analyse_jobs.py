"""The Analyse screen's background jobs: a batch of recordings through
:func:`mekit.analysis.analyze.analyze`, and a live session fed by the browser's camera.

They run in job processes (:mod:`mekit.app.jobs`), so this module imports nothing heavy at the
top. ``params`` were checked by :mod:`mekit.app.routes_analyse` (paths resolved inside the
allowed folders); bundles are loaded here with mekit's safe loader
(:func:`mekit.engine.bundle.load_bundle`), once per job, so a bad bundle fails the job with its
one-line reason before any recording is read.

What a job leaves in its folder, per recording (``rec00``, ``rec01``, ... or ``live``): the
outputs of ``mekit analyze`` (intervals.csv/.json, frames.csv, annotated.mp4, timeline.png,
megc_spotting.csv, analysis.json), ``annotated.webm`` (the copy a browser plays, see
:mod:`mekit.analysis.review`) and ``timeline.json`` (what the page draws). Markers the user adds
later go to ``markers.json`` in the job folder.

The live session's transport: the server writes each frame the page posts as a JPEG file into
the job's ``inbox/`` (see :data:`INBOX`), named by its sequence number and its time in
milliseconds, and a ``STOP`` file when the user stops. A feeder thread here moves the files
into a :class:`mekit.media.PushSource` (a bounded queue that drops the oldest frame when the
analysis falls behind, and counts it) that :func:`~mekit.analysis.analyze.analyze` reads in the
job's main thread. Why files: the job runs in its own process (so the server never imports
MediaPipe or torch, and a session can be cancelled like any job), the job manager's only
channel runs from the job to the server, and a JPEG of a few tens of kilobytes written and
renamed ten times a second is nothing for a disk; the server caps how many wait
(:data:`INBOX_LIMIT`), so a session that is not consuming cannot fill it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from mekit import events

log = logging.getLogger(__name__)

#: the live session's inbox folder (in the job folder) and its stop file
INBOX = "inbox"
STOP = "STOP"
#: frames that may wait in the inbox; the server refuses more (the page counts them dropped)
INBOX_LIMIT = 30
#: frames the push source holds for the analysis (about half a second at 15 fps)
QUEUE_FRAMES = 8
#: a live session that receives no frame for this long ends by itself (a page closed mid-way)
IDLE_S = 60.0
#: seconds between two ``camera`` progress events
REPORT_EVERY_S = 0.5


def _bundles(params: dict[str, Any]) -> dict[str, Any]:
    """The bundles, loaded with the safe loader (a refused one fails the job in one line)."""
    from mekit.engine.bundle import load_bundle

    out: dict[str, Any] = {}
    for key in ("model", "intensity"):
        if params.get(key):
            events.emit("progress", stage="load bundles", done=0, total=None)
            out[key] = load_bundle(params[key])
    return out


def _options(params: dict[str, Any], bundles: dict[str, Any]) -> dict[str, Any]:
    return {"detector": params.get("detector") or "auto", **bundles}


def _finish_recording(folder: Path, out_dir: Path, key: str, name: str, result: Any, web: bool) -> dict[str, Any]:
    """The playable video and timeline.json of one analysed recording, and its entry in the
    job's result."""
    from mekit.analysis.review import WEB_VIDEO, timeline_data, web_video

    summary = result.summary
    video = folder / str(summary.get("annotated_video") or "annotated.mp4")
    files = {n: f"{key}/{n}" for n in ("intervals.csv", "intervals.json", "frames.csv", "megc_spotting.csv",
                                       "timeline.png", "analysis.json") if (folder / n).is_file()}
    if video.is_file():
        files["annotated"] = f"{key}/{video.name}"
        if web:
            def progress(done: int, total: int) -> None:
                events.emit("progress", stage="web video", done=done, total=total, video=name)

            web_video(video, folder / WEB_VIDEO, progress=progress)
            files["web_video"] = f"{key}/{WEB_VIDEO}"
    timeline = timeline_data(folder)
    (folder / "timeline.json").write_text(json.dumps(timeline))
    files["timeline"] = f"{key}/timeline.json"
    return {"key": key, "name": name, "dir": key, "files": files, "n_intervals": len(result.intervals),
            "kinds": summary.get("kinds", {}), "frames": summary.get("frames"), "fps": summary.get("fps"),
            "duration_s": timeline["duration_s"], "dropped": summary.get("dropped", 0),
            "frames_without_face": summary.get("frames_without_face"), "frames_per_s": summary.get("frames_per_s"),
            "classes": result.classes}


def batch(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """``mekit analyze`` on each recording in turn (``params["videos"]``: ``{path, name}``), each
    into its own folder; progress per recording (stage ``recordings``) and per frame."""
    from mekit.analysis.analyze import analyze

    videos = list(params.get("videos") or [])
    bundles = _bundles(params)
    options = _options(params, bundles)
    recordings = []
    with events.Stage("recordings", total=len(videos)) as stage:
        for i, v in enumerate(videos):
            key = f"rec{i:02d}"
            folder = out_dir / key
            events.emit("message", stage="recordings", text=f"analysing {v['name']}", index=i)
            result = analyze(v["path"], out=folder, video=True, **options)
            recordings.append(_finish_recording(folder, out_dir, key, v["name"], result,
                                                bool(params.get("web_video", True))))
            stage.advance(1)
    return {"recordings": recordings, "classes": recordings[0]["classes"] if recordings else [],
            "model": params.get("model_name"), "intensity": params.get("intensity_name")}


def _feed(inbox: Path, source: Any, idle_s: float) -> None:
    """Move the inbox's frames into the push source in order until the STOP file (or no frame
    for ``idle_s`` seconds); report the counts as ``camera`` progress events."""
    from mekit.errors import DataError

    # frames wait in the inbox (where the server caps them) until the analysis reads: frames
    # pushed while it loads its models would only be dropped by the source's short queue
    while not source.reading.wait(0.1) and not source.ended:
        pass
    last_frame = time.monotonic()
    next_report = 0.0
    bad = 0
    stop = False
    while not stop and not source.ended:  # ended from outside: the analysis stopped
        names = sorted(n for n in os.listdir(inbox) if n.endswith(".jpg"))
        stop = (inbox / STOP).exists() and not names
        for n in names:
            p = inbox / n
            try:
                data = p.read_bytes()
                p.unlink()
                t_ms = int(n.split("-")[1].split(".")[0])
                source.push_encoded(data, t_ms / 1000.0)
            except (DataError, ValueError, IndexError, OSError) as e:
                bad += 1
                log.warning("camera frame %s left out: %s", n, e)
            last_frame = time.monotonic()
        now = time.monotonic()
        if now - last_frame > idle_s:
            log.info("no camera frame for %.0f s: the session ends", idle_s)
            stop = True
        if now >= next_report or stop:
            events.emit("progress", stage="camera", done=source.received, total=None, dropped=source.dropped,
                        waiting=source.waiting, bad=bad)
            next_report = now + REPORT_EVERY_S
        if not names and not stop:
            time.sleep(0.02)
    source.end()


def live(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """A live session: the browser's camera frames (through the inbox) analysed as they come;
    intervals are ``interval`` events as they close; the STOP file ends it and the outputs are
    written as for a recording."""
    from mekit.analysis.analyze import analyze
    from mekit.media import PushSource

    inbox = out_dir / INBOX
    inbox.mkdir(exist_ok=True)
    bundles = _bundles(params)
    w, h = params["size"]
    source = PushSource(float(params.get("fps") or 15.0), (int(w), int(h)),
                        maxsize=int(params.get("queue", QUEUE_FRAMES)),
                        name="browser camera")
    ctx = contextvars.copy_context()  # the feeder's events reach this job's listener too
    feeder = threading.Thread(target=ctx.run, args=(_feed, inbox, source, float(params.get("idle_s", IDLE_S))),
                              name="mekit-camera-feeder", daemon=True)
    feeder.start()
    try:
        result = analyze(source, out=out_dir / "live", video=True, **_options(params, bundles))
    finally:
        source.close()
        feeder.join(timeout=5)
    entry = _finish_recording(out_dir / "live", out_dir, "live", "camera", result, bool(params.get("web_video", True)))
    entry["received"] = source.received
    return {"recordings": [entry], "classes": entry["classes"], "live": True,
            "model": params.get("model_name"), "intensity": params.get("intensity_name")}


__all__ = ["INBOX", "INBOX_LIMIT", "STOP", "batch", "live"]

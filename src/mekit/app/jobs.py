"""Background jobs: long work (a data check, preprocessing; later training, evaluation,
analysis) runs outside the web server, reports progress, and can be cancelled.

Why one process per job, started with the ``spawn`` method:

- Cancelling is ending a process. A thread running a library call cannot be stopped from
  outside; a process can, together with the worker processes it started (preprocessing and
  fold workers), because each job runs in its own process group and cancelling signals the group
  (SIGTERM, then SIGKILL after :data:`KILL_AFTER_S`).
- ``spawn`` starts a fresh interpreter: the server's threads, sockets and locks are not copied
  into the job (forking a threaded server is unsafe), and what the job imports and sets (torch,
  MediaPipe graphs, OpenCV thread pools, a CUDA context) dies with it. The server itself never
  imports torch, so it starts in about a second.
- The job process asks the kernel to kill it when the server dies (:func:`mekit.procs.die_with_parent`),
  so a killed server leaves no job behind. That signal fires when the *thread* that started the
  process ends, which is why processes are started by one long-lived launcher thread of the
  :class:`JobManager` and never by a request's (short-lived) worker thread.

Progress: the job process listens to mekit's progress events (:func:`mekit.events.listen`) and
sends each one through a queue to the server, where a watcher thread keeps the job's state, its
latest events (the last :data:`MAX_EVENTS`, numbered, so a page asks only for new ones), the
latest progress of each stage, and finally the result (JSON-ready) or a one-line error. A fault
that is not a :class:`~mekit.errors.MekitError` becomes one ``internal error:`` line too; its
traceback is written to ``error.txt`` in the job's folder, never sent to the page.

States: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled``. At most
``max_running`` jobs run at once; the rest wait, queued.

How to add a job (for a new screen):

1. Write a function ``def my_job(params: dict, out_dir: pathlib.Path) -> dict`` in a module that
   imports nothing heavy at the top (see :mod:`mekit.app.data_jobs`). It calls library functions
   only, writes its files under ``out_dir`` (the job's folder, ``<workdir>/jobs/<id>/``), and
   returns a JSON-ready dict (file names in it are relative to ``out_dir``; the page fetches them
   from ``/api/jobs/<id>/files/<name>``). ``params`` were checked by the route that submitted it
   (paths already resolved in the sandbox). Raise :class:`~mekit.errors.MekitError` for a user
   error: its message is what the page shows.
2. In the screen's route: ``job = request.app.state.jobs.submit("my_screen.my_job",
   "mekit.app.my_module:my_job", params)`` and return ``job.summary()``.
3. The page polls ``GET /api/jobs/<id>?since=<seq>`` (``watchJob`` in ``static/app.js``) and
   cancels with ``POST /api/jobs/<id>/cancel``.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import multiprocessing as mp
import os
import queue
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: events kept per job (the page polls often enough to see them all; a slow page still gets
#: the latest progress of every stage from ``stages``)
MAX_EVENTS = 200
#: seconds between SIGTERM and SIGKILL when a job is cancelled
KILL_AFTER_S = 3.0
STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = frozenset({"done", "failed", "cancelled"})


def jsonable(obj: Any) -> Any:
    """A copy of ``obj`` that :func:`json.dumps` writes as strict JSON: numpy scalars as numbers,
    NaN and infinities as None, paths and other objects as text."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        try:
            return jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    return str(obj)


def one_line(text: str, limit: int = 400) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


@dataclass
class Job:
    id: str
    kind: str
    target: str
    params: dict[str, Any]
    out_dir: Path
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    result: Any = None
    error: str | None = None
    pid: int | None = None
    events: collections.deque = field(default_factory=lambda: collections.deque(maxlen=MAX_EVENTS))
    seq: int = 0
    #: latest progress per stage: {stage: {done, total, eta_s, finished}}
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancel_requested: bool = False
    process: Any = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """State without the events and result (the job list, the answer to a submit)."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "created": self.created,
                "started": self.started, "ended": self.ended, "error": self.error,
                "progress": self.progress()}

    def progress(self) -> dict[str, Any] | None:
        """The stage that moved last, for a single progress bar."""
        if not self.stages:
            return None
        stage, st = max(self.stages.items(), key=lambda kv: kv[1]["seq"])
        return {"stage": stage, **{k: v for k, v in st.items() if k != "seq"}}

    def to_dict(self, since: int = 0) -> dict[str, Any]:
        return {**self.summary(), "params": self.params, "seq": self.seq,
                "events": [e for e in self.events if e["seq"] > since],
                "stages": {k: {kk: vv for kk, vv in v.items() if kk != "seq"} for k, v in self.stages.items()},
                "result": self.result}

    def _add_event(self, ev: dict[str, Any]) -> None:
        self.seq += 1
        ev = {**ev, "seq": self.seq}
        self.events.append(ev)
        stage = ev.get("stage")
        if ev.get("kind") in ("stage_start", "progress", "stage_end") and stage:
            st = self.stages.setdefault(str(stage), {"done": 0, "total": None, "eta_s": None, "finished": False})
            for k in ("done", "total", "eta_s"):
                if ev.get(k) is not None:
                    st[k] = ev[k]
            st["finished"] = ev["kind"] == "stage_end"
            st["seq"] = self.seq


class JobManager:
    """Starts, watches and cancels job processes; holds every job of this server's life."""

    def __init__(self, jobs_dir: Path, max_running: int = 2) -> None:
        self.jobs_dir = Path(jobs_dir)
        self.max_running = max_running
        self._ctx = mp.get_context("spawn")
        self._jobs: dict[str, Job] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._launcher = threading.Thread(target=self._launch_loop, name="mekit-job-launcher", daemon=True)
        self._launcher.start()

    # -- public --------------------------------------------------------------------------------
    def submit(self, kind: str, target: str, params: dict[str, Any]) -> Job:
        """Queue ``target`` (``"module:function"``) to run with ``params``; returns at once."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-") or "job"
        job_id = f"{stamp}-{slug}-{secrets.token_hex(3)}"
        out = self.jobs_dir / job_id
        out.mkdir(parents=True, exist_ok=False)
        job = Job(job_id, kind, target, jsonable(params), out)
        with self._cond:
            if self._stopping:
                raise RuntimeError("the job manager is shutting down")
            self._jobs[job_id] = job
            self._cond.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def cancel(self, job_id: str, wait: float = KILL_AFTER_S + 2) -> Job | None:
        """Stop a job: a queued one never starts; a running one's process group is ended.
        Returns when the job is finished (or ``wait`` seconds have passed)."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return job
            job.cancel_requested = True
            if job.state == "queued":
                self._finish(job, "cancelled")
                return job
            proc = job.process
        if proc is not None:
            _end_group(proc)
        deadline = time.time() + wait
        while job.state not in FINISHED and time.time() < deadline:
            time.sleep(0.05)
        return job

    def shutdown(self) -> None:
        """Cancel everything (the server is stopping)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            ids = [j.id for j in self._jobs.values() if j.state not in FINISHED]
        for i in ids:
            self.cancel(i)

    # -- internals -----------------------------------------------------------------------------
    def _running(self) -> int:
        return sum(1 for j in self._jobs.values() if j.state == "running")

    def _next(self) -> Job | None:
        if self._running() >= self.max_running:
            return None
        queued = [j for j in self._jobs.values() if j.state == "queued"]
        return min(queued, key=lambda j: j.created) if queued else None

    def _launch_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._next() is not None)
                if self._stopping:
                    return
                job = self._next()
                if job is None:
                    continue
                try:
                    self._start(job)
                except Exception as e:  # noqa: BLE001 - a job that cannot start fails, the server goes on
                    log.exception("job %s could not start", job.id)
                    job.error = f"the job could not start: {type(e).__name__}: {one_line(str(e))}"
                    self._finish(job, "failed")

    def _start(self, job: Job) -> None:
        q = self._ctx.Queue()
        proc = self._ctx.Process(target=_child_main, name=f"mekit-job-{job.id}",
                                 args=(job.target, job.params, str(job.out_dir), q, os.getpid()))
        proc.start()
        job.process, job.pid, job.state, job.started = proc, proc.pid, "running", time.time()
        threading.Thread(target=self._watch, args=(job, q), name=f"mekit-job-watch-{job.id}", daemon=True).start()

    def _watch(self, job: Job, q: Any) -> None:
        proc = job.process
        outcome: tuple[str, Any] | None = None
        while True:
            try:
                msg = q.get(timeout=0.2)
            except queue.Empty:
                if proc.is_alive():
                    continue
                # the process is gone: take what it sent last, then stop
                try:
                    msg = q.get(timeout=0.5)
                except queue.Empty:
                    break
            kind, payload = msg
            with self._cond:
                if kind == "event":
                    job._add_event(payload)
                else:
                    outcome = (kind, payload)
        proc.join(timeout=5)
        with self._cond:
            if outcome and outcome[0] == "result":  # finished before a cancel could stop it
                job.result = outcome[1]
                self._finish(job, "done")
            elif job.cancel_requested:
                self._finish(job, "cancelled")
            elif outcome and outcome[0] == "error":
                job.error = outcome[1]
                self._finish(job, "failed")
            else:
                job.error = f"the job's process ended without a result (exit code {proc.exitcode})"
                self._finish(job, "failed")
        q.close()

    def _finish(self, job: Job, state: str) -> None:
        """Set a final state (caller holds the lock) and record the job in its folder."""
        job.state, job.ended = state, time.time()
        job.process = None
        self._cond.notify_all()
        try:
            record = {k: v for k, v in job.to_dict().items() if k != "events"}
            (job.out_dir / "job.json").write_text(json.dumps({**record, "target": job.target}, indent=2))
        except OSError:
            log.warning("could not write %s", job.out_dir / "job.json")


def _end_group(proc: Any) -> None:
    """SIGTERM the job's process group, then SIGKILL what is left; reap the job process."""
    pid = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:  # the group is not there yet (the process has not called setpgid): the process alone
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        proc.join(timeout=KILL_AFTER_S if sig == signal.SIGTERM else 5)
        if not proc.is_alive():
            # the job is gone; workers in its group get SIGKILL too (they die with their parent anyway)
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return


def _child_main(target: str, params: dict[str, Any], out_dir: str, q: Any, parent: int) -> None:
    """What a job process runs: forward events, call the target, send its result or error."""
    from mekit.procs import die_with_parent

    die_with_parent(parent)
    try:
        os.setpgid(0, 0)  # own process group: cancelling ends the job's workers too
    except OSError:
        pass
    out = Path(out_dir)
    # nothing a job prints or logs goes to the server's terminal: it goes to the job's log
    logf = open(out / "job.log", "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    import sys

    sys.stdout = sys.stderr = logf
    logging.basicConfig(level=logging.INFO, stream=logf, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from mekit import events
    from mekit.errors import MekitError
    from mekit.registry import resolve

    def forward(ev: events.Event) -> None:
        q.put(("event", jsonable({"kind": ev.kind, "time": ev.time, **ev.data})))

    try:
        fn = resolve(target)
        with events.listen(forward):
            result = fn(params, out)
        q.put(("result", jsonable(result)))
    except MekitError as e:
        q.put(("error", one_line(str(e))))
    except Exception as e:  # noqa: BLE001 - a fault becomes one line; the traceback goes to a file
        import traceback

        (out / "error.txt").write_text(traceback.format_exc())
        first = str(e).splitlines()[0] if str(e) else ""
        q.put(("error", one_line(f"internal error: {type(e).__name__}: {first} (traceback in the job's "
                                 f"error.txt)")))
    finally:
        q.close()
        q.join_thread()
        logf.flush()


__all__ = ["FINISHED", "Job", "JobManager", "STATES", "jsonable", "one_line"]

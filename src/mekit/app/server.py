"""The web server of ``mekit app``: :func:`create_app` builds it from :class:`AppSettings`.

Why FastAPI + uvicorn and a hand-written page: both were already installed with mekit (MLflow
needs them), they serve offline, and a JSON API over the library functions is all the app needs.
The page is plain HTML, CSS and JavaScript modules shipped in ``mekit/app/static/``: no build
step, no external script, font or CDN, so the app works without a network (a Content-Security-
Policy header makes the browser refuse anything from elsewhere). FastAPI's ``/docs`` pages load
their scripts from a CDN, so they are switched off. Gradio and Streamlit were set aside: gradio
pins pillow below what mekit uses and its pages are hard to shape into a multi-screen tool;
streamlit needs a protobuf that breaks MediaPipe.

Start-up: ``mekit app`` answers its first request about 0.9 s after it is started on a
2-core x86-64 machine (measured from starting the command to the first answer of
``/api/info``: 0.79-0.99 s over 5 runs). The server imports FastAPI and mekit's light modules only; the
catalogue (OpenCV, pandas) is imported on the first request that needs it, and torch,
MediaPipe and the rest only in job processes (:mod:`mekit.app.jobs`).

Safety, on every request (see also :mod:`mekit.app.settings` and :mod:`mekit.app.sandbox`):

- with a password set (always when listening beyond 127.0.0.1), HTTP Basic auth: any user
  name, the password compared in constant time (:func:`hmac.compare_digest`); 401 otherwise;
- on 127.0.0.1 without a password, the ``Host`` header must name this machine, so a web page
  elsewhere cannot reach the app through a DNS name re-pointed at 127.0.0.1;
- a request that changes anything (not GET/HEAD) must carry the ``X-Mekit: 1`` header, which a
  page from another site cannot add without a CORS preflight the app never grants: no
  cross-site request can start a job or upload a file;
- errors are one line of JSON, ``{"error": "..."}``, never a traceback.

The API (every screen's routes are under ``/api/<screen>/``):

=====================================  ========================================================
``GET  /api/info``                     version, allowed folders, work folder, upload limit,
                                       the screens (tabs) and the script of each
``GET  /api/catalogue/<section>``      a section of :func:`mekit.catalogue.catalogue`
``GET  /api/browse?path=``             sub-folders of an allowed folder (the folder picker)
``POST /api/uploads?filename=&kind=``  the request body is the file (video, bundle, image)
``GET  /api/jobs``                     every job of this server, newest first
``GET  /api/jobs/<id>?since=<seq>``    a job: state, progress, events after ``seq``, result
``POST /api/jobs/<id>/cancel``         cancel it
``GET  /api/jobs/<id>/files/<path>``   a file the job wrote (a PNG, a CSV, a report)
=====================================  ========================================================

How to add a screen:

1. Write ``mekit/app/routes_<screen>.py`` with ``router = APIRouter(prefix="/api/<screen>")``
   and ``SCREEN = {"id": ..., "title": ..., "script": "screens/<screen>.js"}`` (see
   :mod:`mekit.app.routes_data`), and its jobs in a module that imports nothing heavy at the
   top (see :mod:`mekit.app.data_jobs` and :mod:`mekit.app.jobs`).
2. Name the routes module in :data:`SCREENS` below (the order is the order of the tabs).
3. Write ``static/screens/<screen>.js`` exporting ``mount(root, app)``; ``static/app.js`` gives it
   the shared helpers (API calls, job watching, tables, the folder picker, error lines).
4. Tests: API tests with the ``client`` fixture and a browser test with ``app_page`` from
   ``tests/app/conftest.py``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib
import re
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mekit import __version__
from mekit.app.jobs import JobManager, one_line
from mekit.app.sandbox import Sandbox
from mekit.app.settings import LOOPBACK, AppSettings
from mekit.errors import MekitError

STATIC = Path(__file__).parent / "static"

#: the screens, in the order of their tabs: a routes module (with ``router`` and ``SCREEN``), or
#: a planned screen (a dict with ``planned: True``) shown as a disabled tab
SCREENS: tuple[str | dict[str, Any], ...] = (
    "mekit.app.routes_data",
    "mekit.app.routes_build",
    "mekit.app.routes_train",
    "mekit.app.routes_analyse",
    "mekit.app.routes_litmap",
)

#: what the page may load: only this server's own files (no CDN, no inline script)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_JOB_ID = re.compile(r"^[A-Za-z0-9-]{1,80}$")


def create_app(settings: AppSettings | None = None) -> FastAPI:
    """The app: API routes, the page, auth and error handling, and a job manager whose
    processes are ended when the app shuts down."""
    settings = settings or AppSettings()
    sandbox = Sandbox(settings.roots, settings.workdir, settings.max_upload_bytes)
    jobs = JobManager(settings.jobs_dir, settings.max_running_jobs)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        jobs.shutdown()

    app = FastAPI(title="mekit", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.settings, app.state.sandbox, app.state.jobs = settings, sandbox, jobs

    _add_guards(app, settings)
    _add_error_handlers(app)
    screens = []
    for entry in SCREENS:
        if isinstance(entry, dict):
            screens.append(dict(entry))
            continue
        module = importlib.import_module(entry)
        app.include_router(module.router)
        screens.append(dict(module.SCREEN))
    app.state.screens = screens
    app.include_router(_core_router())

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


# -- the routes every screen shares -----------------------------------------------------------
def _core_router() -> APIRouter:
    r = APIRouter(prefix="/api")

    @r.get("/info")
    def info(request: Request) -> dict[str, Any]:
        st: AppSettings = request.app.state.settings
        return {"version": __version__, "roots": [str(p) for p in st.roots], "workdir": str(st.workdir),
                "max_upload_bytes": st.max_upload_bytes, "auth": st.auth_required,
                "screens": request.app.state.screens}

    @r.get("/catalogue/{section}")
    def catalogue_section(section: str) -> dict[str, Any]:
        return {"section": section, "entries": _catalogue(section)}

    @r.get("/browse")
    def browse(request: Request, path: str | None = None) -> dict[str, Any]:
        return request.app.state.sandbox.browse(path)

    @r.post("/uploads")
    async def upload(request: Request, filename: str, kind: str = "video") -> dict[str, Any]:
        length = request.headers.get("content-length")
        declared = int(length) if length and length.isdigit() else None
        path = await request.app.state.sandbox.save_upload(request.stream(), filename, kind, declared)
        return {"path": str(path), "name": path.name, "size": path.stat().st_size, "kind": kind}

    @r.get("/jobs")
    def list_jobs(request: Request) -> dict[str, Any]:
        return {"jobs": [j.summary() for j in request.app.state.jobs.list()]}

    @r.get("/jobs/{job_id}")
    def get_job(request: Request, job_id: str, since: int = 0) -> dict[str, Any]:
        return _job(request, job_id).to_dict(since=since)

    @r.post("/jobs/{job_id}/cancel")
    def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
        _job(request, job_id)
        return request.app.state.jobs.cancel(job_id).summary()

    @r.get("/jobs/{job_id}/files/{path:path}")
    def job_file(request: Request, job_id: str, path: str) -> FileResponse:
        job = _job(request, job_id)
        return FileResponse(request.app.state.sandbox.child(job.out_dir, path))

    return r


def job_or_404(request: Request, job_id: str, *, accept: Any = None, what: str = "job") -> Any:
    """The job ``job_id`` of this server (an id of the form jobs are given, and, with ``accept``,
    a job that predicate accepts: a screen's own kind), else HTTP 404 ``no <what> '<id>'``."""
    job = request.app.state.jobs.get(job_id) if _JOB_ID.match(job_id) else None
    if job is None or (accept is not None and not accept(job)):
        raise HTTPException(404, f"no {what} {job_id!r}")
    return job


def _job(request: Request, job_id: str) -> Any:
    return job_or_404(request, job_id)


@lru_cache(maxsize=None)
def _catalogue(section: str) -> list[dict[str, Any]]:
    from mekit.catalogue import catalogue

    return next(iter(catalogue(section).values()))


# -- guards: auth, host, cross-site requests, headers -----------------------------------------
def _host_name(host_header: str) -> str:
    h = host_header.strip().lower()
    if h.startswith("["):  # [::1]:8765
        return h[1:h.index("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def password_ok(header: str | None, password: str) -> bool:
    """Whether an ``Authorization: Basic ...`` header carries ``password`` (any user name)."""
    if not header or not header[:6].lower() == "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _, _, given = decoded.partition(b":")
    return hmac.compare_digest(given, password.encode("utf-8"))


def _add_guards(app: FastAPI, settings: AppSettings) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next):
        if settings.is_loopback and not settings.password:
            if _host_name(request.headers.get("host", "")) not in LOOPBACK:
                return _error(403, "refused: this app answers only requests addressed to 127.0.0.1 or localhost")
        if settings.password and not password_ok(request.headers.get("authorization"), settings.password):
            return JSONResponse({"error": "password required"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="mekit", charset="UTF-8"'})
        if request.method not in _SAFE_METHODS and request.headers.get("x-mekit") != "1":
            return _error(403, "refused: requests that change anything must come from the mekit page "
                               "(header X-Mekit: 1)")
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path == "/" or request.url.path.startswith(("/static/", "/api/")):
            response.headers.setdefault("Cache-Control", "no-cache")
        return response


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": one_line(message)}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MekitError)
    async def mekit_error(request: Request, e: MekitError) -> Response:
        return _error(int(getattr(e, "status", 400)), str(e))

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException and the router's 404/405
    async def http_error(request: Request, e: StarletteHTTPException) -> Response:
        return _error(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request")

    @app.exception_handler(Exception)
    async def fault(request: Request, e: Exception) -> Response:
        import logging

        logging.getLogger(__name__).exception("fault in %s %s", request.method, request.url.path)
        first = str(e).splitlines()[0] if str(e) else ""
        return _error(500, f"internal error: {type(e).__name__}: {first}")


def serve(settings: AppSettings) -> None:
    """Run the app with uvicorn until interrupted (what ``mekit app`` calls)."""
    import uvicorn

    app = create_app(settings)
    url = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}/"
    print(f"mekit app on {url} (Ctrl-C stops it); allowed folders: "  # noqa: T201 - the door speaks
          f"{', '.join(map(str, settings.roots))}; work folder: {settings.workdir}", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)


__all__ = ["CSP", "SCREENS", "create_app", "password_ok", "serve"]

"""The Literature screen's API: upload bibliographic exports (or take the example bibliography),
map the literature, and show and download what :func:`mekit.analysis.litmap.litmap` wrote.

================================  ==========================================================
``GET  /api/litmap/choices``      the menus: formats, keyphrase extractors, community
                                  methods, and every setting with its default
``POST /api/litmap/upload``       ``?filename=``; the request body is one export (.bib, .ris,
                                  .csv, .txt, .json, .jsonl), saved in the work folder
``POST /api/litmap/run``          ``{files, example, options}``: start the mapping job
================================  ==========================================================

Exports are text, which has no signature the shared upload check (:mod:`mekit.app.sandbox`)
could sniff, so they are taken here: the extension must be one of the formats', the file under
the app's upload limit and at most :data:`MAX_BYTES`, non-empty, and free of NUL bytes (text,
not a binary renamed). They go to ``<workdir>/uploads/`` under a generated name. Every file
and option is checked before the job starts: files (uploaded or typed) must resolve inside the
allowed folders, options are read like command-line overrides and validated by
:class:`~mekit.analysis.litmap.settings.LitmapSettings`, so a mistake is one line at once.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from mekit.app.sandbox import UploadRefused
from mekit.errors import ConfigError

router = APIRouter(prefix="/api/litmap")
SCREEN = {"id": "litmap", "title": "Literature", "script": "screens/litmap.js"}

#: what an export may be called
EXTENSIONS = (".bib", ".bibtex", ".ris", ".csv", ".txt", ".json", ".jsonl")
#: the most an export may weigh (a Scopus export of 20,000 records with abstracts is ~60 MB)
MAX_BYTES = 200 * 1024 * 1024
#: options that name a file
_FILE_OPTIONS = ("stopwords_file", "synonyms_file")


class RunRequest(BaseModel):
    files: list[str] = Field(default_factory=list)
    example: bool = False
    #: setting name -> value; text is read as YAML (the command line's key=value reading)
    options: dict[str, Any] = Field(default_factory=dict)


@router.get("/choices")
def choices() -> dict[str, Any]:
    from mekit.analysis.litmap import READERS, LitmapSettings
    from mekit.analysis.litmap.network import COMMUNITIES
    from mekit.analysis.litmap.settings import EXTRACTORS
    from mekit.analysis.litmap.terms import yake_available

    return {"formats": [{"name": n, "help": READERS.meta(n).get("help", "")} for n in READERS.names()],
            "extractors": list(EXTRACTORS), "yake": yake_available(),
            "communities": [{"name": n, "help": COMMUNITIES.meta(n).get("help", "")} for n in COMMUNITIES.names()],
            "defaults": LitmapSettings().to_dict(), "extensions": list(EXTENSIONS)}


@router.post("/upload")
async def upload(request: Request, filename: str) -> dict[str, Any]:
    name = os.path.basename(str(filename or "").replace("\\", "/"))
    stem, ext = os.path.splitext(name)
    ext = ext.lower()
    if ext not in EXTENSIONS:
        raise UploadRefused(f"refused: {filename!r} is not a bibliographic export; expected a name ending in "
                            f"{', '.join(EXTENSIONS)}", 415)
    sandbox = request.app.state.sandbox
    limit = min(sandbox.max_upload_bytes, MAX_BYTES)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise UploadRefused(f"refused: the upload is {length} bytes, over the limit of {limit} bytes", 413)
    folder = sandbox.workdir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60] or "export"
    target = folder / f"{secrets.token_hex(8)}-{safe}{ext}"
    part = target.with_name(target.name + ".part")
    size, ok = 0, False
    try:
        with open(part, "xb") as f:
            async for chunk in request.stream():
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise UploadRefused(f"refused: the upload is over the limit of {limit} bytes", 413)
                if b"\x00" in chunk:
                    raise UploadRefused(f"refused: {filename!r} is not a text file (it holds NUL bytes)", 415)
                f.write(chunk)
        if size == 0:
            raise UploadRefused("refused: the upload is empty")
        os.replace(part, target)
        ok = True
    finally:
        if not ok:
            part.unlink(missing_ok=True)
    return {"path": str(target), "name": name, "size": size}


def run_params(request: Request, body: RunRequest) -> dict[str, Any]:
    """The checked params of a mapping job: files resolved in the sandbox, options validated."""
    from mekit.analysis.litmap import LitmapSettings
    from mekit.config import load_yaml

    sandbox = request.app.state.sandbox
    if body.example == bool(body.files):
        raise ConfigError("upload bibliography files or choose the example (not both)" if body.files
                          else "upload bibliography files or choose the example")
    files = [str(sandbox.resolve(f, want="file")) for f in body.files]
    options: dict[str, Any] = {}
    for k, v in body.options.items():
        if isinstance(v, str):
            if not v.strip():
                continue
            v = v.strip() if k in _FILE_OPTIONS else load_yaml(v, f"litmap option {k}")
        options[str(k)] = v
    for k in _FILE_OPTIONS:
        if options.get(k):
            options[k] = str(sandbox.resolve(str(options[k]), want="file"))
    LitmapSettings.from_options(**options)  # ConfigError naming the option
    return {"files": files, "example": body.example, "options": options}


@router.post("/run")
def run(request: Request, body: RunRequest) -> dict[str, Any]:
    params = run_params(request, body)
    return request.app.state.jobs.submit("litmap.run", "mekit.app.litmap_jobs:run", params).summary()


__all__ = ["SCREEN", "router", "run_params"]

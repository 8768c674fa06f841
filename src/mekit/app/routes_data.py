"""The Data screen's API: choose a loader and a folder, check the dataset (table, missing clips,
problems, EDA plots), preview chosen samples, and preprocess with live progress.

=============================  ==============================================================
``GET  /api/data/choices``     the menus: loaders (with their options), label schemes, face
                               detectors, flow methods, preprocessing defaults
``POST /api/data/check``       start a check job (:func:`mekit.app.data_jobs.check`)
``POST /api/data/preview``     start a preview job for chosen samples
``POST /api/data/preprocess``  start a preprocessing job
=============================  ==============================================================

Each ``POST`` takes the dataset as ``{loader, root, label_scheme, options}`` (plus ``samples`` or
``settings``), checks it here, fast, so a mistake is one line before any job starts, and
answers with the job (``{id, state, ...}``), which the page then polls at ``/api/jobs/<id>``.

What is checked here: the loader is registered; the folder, every loader option that is a path
(a coding sheet, a frames folder) and a label scheme given as a YAML file resolve inside the
allowed folders (:mod:`mekit.app.sandbox`, 403 otherwise); option values, typed in the page as
text, are read like command-line overrides (YAML: ``20`` is a number, ``[20, 28]`` a list) and
checked against the loader's signature; preprocessing settings are validated by
:class:`~mekit.preprocess.pipeline.PreprocessConfig`, and a ``cache_dir`` must be an allowed
folder too. The synthetic corpus needs no folder (it is generated once in mekit's cache).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from mekit.errors import ConfigError

router = APIRouter(prefix="/api/data")
SCREEN = {"id": "data", "title": "Data", "script": "screens/data.js"}

#: loaders that need no folder
NO_ROOT = frozenset({"synthetic"})
_JOBS = "mekit.app.data_jobs"


class Dataset(BaseModel):
    loader: str
    root: str | None = None
    label_scheme: str | None = None
    #: option name -> value; text is read as YAML (the command line's key=value reading)
    options: dict[str, Any] = Field(default_factory=dict)


class CheckRequest(Dataset):
    check_images: bool = True
    duplicate_threshold: int | None = 4


class PreviewRequest(Dataset):
    samples: list[str] = Field(default_factory=list)
    limit: int = Field(4, ge=1, le=32)
    settings: dict[str, Any] = Field(default_factory=dict)


class PreprocessRequest(Dataset):
    settings: dict[str, Any] = Field(default_factory=dict)


def _values(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Form values: text read as YAML, empty text left out."""
    from mekit.config import load_yaml

    out = {}
    for k, v in raw.items():
        if isinstance(v, str):
            if not v.strip():
                continue
            v = load_yaml(v, f"{where} {k}")
        out[str(k)] = v
    return out


def dataset_params(request: Request, ds: Dataset) -> dict[str, Any]:
    """The checked, resolved dataset part of a job's params."""
    from mekit.data import LOADERS, check_options, loader_options
    from mekit.data.labels import SCHEMES

    sandbox = request.app.state.sandbox
    LOADERS.get(ds.loader)  # ConfigError naming the loaders
    root = None
    if ds.root and ds.root.strip():
        root = sandbox.resolve(ds.root, want=None if ds.loader in NO_ROOT else "dir")
    elif ds.loader not in NO_ROOT:
        raise ConfigError(f"choose a folder for the {ds.loader} loader")
    types = loader_options(ds.loader)
    options = _values(ds.options, "loader option")
    for name, value in list(options.items()):
        tp = str(types.get(name, ""))
        if "Callable" in tp:
            raise ConfigError(f"loader option {name!r} cannot be set from the app")
        if "Path" in tp and isinstance(value, str):
            options[name] = str(sandbox.resolve(value, base=root))
    options = check_options(ds.loader, options)
    scheme = (ds.label_scheme or "").strip() or None
    if scheme and scheme not in SCHEMES:
        scheme = str(sandbox.resolve(scheme, want="file", base=root))
    return {"loader": ds.loader, "root": None if root is None else str(root), "label_scheme": scheme,
            "options": options}


def preprocess_settings(request: Request, raw: dict[str, Any]) -> dict[str, Any]:
    """Checked preprocessing settings (a cache folder only inside the allowed folders)."""
    from mekit.preprocess.pipeline import PreprocessConfig

    settings = _values(raw, "setting")
    if settings.get("cache_dir"):
        settings["cache_dir"] = str(request.app.state.sandbox.resolve(str(settings["cache_dir"])))
    PreprocessConfig.from_dict(settings)  # ConfigError naming the setting
    return settings


@router.get("/choices")
def choices() -> dict[str, Any]:
    import dataclasses

    from mekit.app.server import _catalogue
    from mekit.preprocess.pipeline import PreprocessConfig

    loaders = []
    for entry in _catalogue("loaders"):
        opts = [o for o in entry["options"] if "Callable" not in o.get("type", "")]
        loaders.append({**entry, "options": opts, "needs_root": entry["name"] not in NO_ROOT})
    defaults = {f.name: f.default for f in dataclasses.fields(PreprocessConfig)
                if f.default is not dataclasses.MISSING}
    from mekit.app.jobs import jsonable

    return {"loaders": loaders, "label_schemes": _catalogue("label_schemes"),
            "face_detectors": _catalogue("face_detectors"), "flow_methods": _catalogue("flow_methods"),
            "preprocess_defaults": jsonable(defaults)}


@router.post("/check")
def check(request: Request, body: CheckRequest) -> dict[str, Any]:
    params = {**dataset_params(request, body), "check_images": body.check_images,
              "duplicate_threshold": body.duplicate_threshold}
    return request.app.state.jobs.submit("data.check", f"{_JOBS}:check", params).summary()


@router.post("/preview")
def preview(request: Request, body: PreviewRequest) -> dict[str, Any]:
    params = {**dataset_params(request, body), "samples": body.samples, "limit": body.limit,
              "settings": preprocess_settings(request, body.settings)}
    return request.app.state.jobs.submit("data.preview", f"{_JOBS}:preview", params).summary()


@router.post("/preprocess")
def preprocess(request: Request, body: PreprocessRequest) -> dict[str, Any]:
    params = {**dataset_params(request, body), "settings": preprocess_settings(request, body.settings)}
    return request.app.state.jobs.submit("data.preprocess", f"{_JOBS}:preprocess", params).summary()


__all__ = ["SCREEN", "dataset_params", "preprocess_settings", "router"]

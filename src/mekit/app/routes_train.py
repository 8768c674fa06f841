"""The Train and evaluate screen's API: build an experiment config (a ready one or menus filled
from mekit's catalogue, plus ``key=value`` overrides as on the command line), check it, run the
evaluation with live progress, train the final model into a bundle, compare runs and download a
run's report folder.

======================================  =========================================================
``GET  /api/train/choices``             the menus: ready configs, loaders (with options), label
                                        schemes, face detectors, flow methods, features,
                                        classifiers, neural models, samplers, losses, protocols
                                        (with params), devices, metrics
``POST /api/train/config``              check a config; answers its name, task, model and the
                                        resolved YAML (``mekit config show``)
``POST /api/train/evaluate``            start an evaluation job (:func:`mekit.experiment.run_experiment`)
``POST /api/train/bundle``              start a job training the final model into a ``.mekit``
                                        bundle (:func:`mekit.engine.predict.train_bundle`), with
                                        the config of a finished evaluation or a new one
``GET  /api/train/runs``                this server's finished evaluations, newest first
``POST /api/train/compare``             start a job comparing run folders
                                        (:func:`mekit.evaluation.compare.compare_runs`)
``GET  /api/train/report.zip?run=``     a run folder (inside the work folder) as a zip file
======================================  =========================================================

A config is ``{source, ready, menus, root, device, name, overrides}``: ``source`` ``"ready"``
starts from a ready config (``ready``: its id from ``/choices``), ``"menus"`` from mekit's
defaults with the menu values (``menus``) applied as overrides; then ``root`` (the dataset
folder), ``device``, ``name`` and the override lines, in that order. It is loaded and checked
here by the functions ``mekit evaluate`` uses (:func:`mekit.cli.common.parse_overrides`,
:func:`mekit.config.load_config`, :func:`mekit.evaluation.validate.validate_config`), so a
mistake is one line before any job starts. For a neural model that check imports torch into
the server the first time (a few seconds), as ``mekit config show`` would.

Ready configs are the YAML files shipped with mekit (``mekit/configs/``) and those in a
``configs/`` folder directly under an allowed folder (a mekit checkout started with
``--root .`` lists the repository's recipes).

Paths in a config go through the sandbox like every path the app is given: the dataset folder,
loader options that are paths and a label scheme given as a file (all via
:func:`mekit.app.routes_data.dataset_params`), ``preprocess.cache_dir``, and any text in
``features.params`` or ``model.params`` that names a file (pretrained weights). MLflow tracking
(``output.mlflow``) writes where its URI says, so it is refused here; it stays a command-line
option. ``output.dir`` is ignored: a run's report goes into its job's folder.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from mekit.errors import ConfigError

router = APIRouter(prefix="/api/train")
SCREEN = {"id": "train", "title": "Train and evaluate", "script": "screens/train.js"}

_JOBS = "mekit.app.train_jobs"
#: the prefix of a packaged config's id (``mekit:run_default.yaml``)
PACKAGED = "mekit:"
#: what ``compute.device`` accepts (:class:`mekit.config.ComputeConfig`); whether the device is
#: there is checked with the config, for neural models
DEVICES = (
    {"name": "auto", "help": "CUDA, then Apple MPS, then the CPU"},
    {"name": "cpu", "help": "the CPU"},
    {"name": "cuda", "help": "the first NVIDIA GPU (cuda:N for another: an override compute.device=cuda:1)"},
    {"name": "mps", "help": "Apple silicon GPU"},
)
#: text in features.params / model.params read as a file path: it has a folder separator, starts
#: with ~, or ends in a weights, array or config extension
_PATHLIKE = re.compile(r"([\\/]|^~|\.(pt|pth|ckpt|bin|safetensors|onnx|npz|npy|pkl|joblib|ya?ml|json|mekit)$)",
                       re.IGNORECASE)


class ConfigSpec(BaseModel):
    source: Literal["ready", "menus"] = "menus"
    #: a ready config's id (``/choices``: ``ready_configs[].id``)
    ready: str | None = None
    #: menu values (text is read as YAML, empty text left out): loader, root, label_scheme,
    #: options, detector, flow, size, model, features, class_weight, sampler, loss, protocol,
    #: protocol_params
    menus: dict[str, Any] = Field(default_factory=dict)
    #: the dataset folder (replaces data.root)
    root: str | None = None
    device: str | None = None
    name: str | None = None
    #: ``key=value`` lines, as after ``mekit evaluate``; blank lines and ``#`` comments skipped
    overrides: str = ""


class BundleRequest(ConfigSpec):
    #: a finished evaluation job whose config to train (the spec is ignored when given)
    job: str | None = None


class CompareRequest(BaseModel):
    #: run folders (as ``/api/train/runs`` lists them, or any allowed folder holding a run);
    #: the first is the baseline
    runs: list[str] = Field(min_length=1, max_length=50)


# -- ready configs ---------------------------------------------------------------------------------
def _packaged() -> dict[str, Any]:
    from importlib import resources

    folder = resources.files("mekit") / "configs"
    return {p.name: p for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith((".yaml", ".yml"))}


def _first_comment(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(" ".join(lines).split())


def ready_configs(sandbox: Any) -> list[dict[str, Any]]:
    """The ready configs: ``{id, name, where, help}`` (help: the file's opening comment)."""
    out = []
    for name, p in _packaged().items():
        out.append({"id": PACKAGED + name, "name": name.rsplit(".", 1)[0], "where": "mekit",
                    "help": _first_comment(p.read_text(encoding="utf-8"))})
    for root in sandbox.roots:
        folder = root / "configs"
        if not folder.is_dir() or not sandbox.is_allowed(folder):
            continue
        for p in sorted(folder.iterdir()):
            if p.suffix in (".yaml", ".yml") and p.is_file() and sandbox.is_allowed(p):
                try:
                    text = p.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                out.append({"id": str(p), "name": p.stem, "where": str(folder), "help": _first_comment(text)})
    return out


def _ready_path(request: Request, ready: str | None) -> Any:
    if not ready:
        raise ConfigError("choose a ready config")
    if ready.startswith(PACKAGED):
        packaged = _packaged()
        name = ready[len(PACKAGED):]
        if name not in packaged:
            raise ConfigError(f"no ready config {ready!r}; expected one of {[PACKAGED + n for n in packaged]}")
        return str(packaged[name])
    path = request.app.state.sandbox.resolve(ready, want="file")
    if path.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"{ready} is not a YAML config (expected a .yaml file)")
    return path


# -- building and checking a config ------------------------------------------------------------------
def _menu_overrides(menus: dict[str, Any]) -> dict[str, Any]:
    """The menus as dotted overrides of mekit's default config."""
    from mekit.app.routes_data import _values
    from mekit.models.classical import CLASSIFIERS

    raw = ("root", "label_scheme")  # paths and names: taken as written, never read as YAML
    m = _values({k: v for k, v in menus.items() if k not in ("options", "protocol_params", *raw)}, "menu")
    m.update({k: str(menus[k]).strip() for k in raw if str(menus.get(k) or "").strip()})
    o: dict[str, Any] = {}
    for key, dotted in (("loader", "data.loader"), ("root", "data.root"), ("label_scheme", "data.label_scheme"),
                        ("detector", "preprocess.detector"), ("flow", "preprocess.flow"),
                        ("size", "preprocess.size"), ("model", "model.name"), ("sampler", "imbalance.sampler"),
                        ("protocol", "protocol.name")):
        if m.get(key) is not None:
            o[dotted] = m[key]
    options = _values(dict(menus.get("options") or {}), "loader option")
    if options:
        o["data.options"] = options
    if "class_weight" in menus:  # "" or "none": no class weights
        o["imbalance.class_weight"] = "balanced" if m.get("class_weight") == "balanced" else None
    model = str(m.get("model") or "")
    if m.get("features") is not None and (not model or model in CLASSIFIERS):
        o["features.name"] = m["features"]  # a neural model reads its own input
    if m.get("loss") is not None and model and model not in CLASSIFIERS:
        o["model.params.loss"] = m["loss"]
    params = _values(dict(menus.get("protocol_params") or {}), "protocol parameter")
    if params:
        o["protocol.params"] = params
    return o


def _override_lines(text: str) -> list[str]:
    return [t for t in (line.strip() for line in (text or "").splitlines()) if t and not t.startswith("#")]


def _quoted(options: dict[str, Any]) -> dict[str, Any]:
    """Loader options as :func:`~mekit.app.routes_data.dataset_params` takes form values (text is
    read as YAML): a string written as a quoted YAML string, so it stays the same string."""
    import json

    return {k: json.dumps(v) if isinstance(v, str) else v for k, v in options.items()}


def _sandbox_params(sandbox: Any, value: Any, where: str) -> Any:
    """``value`` with every text that names a file resolved inside the allowed folders."""
    if isinstance(value, dict):
        return {k: _sandbox_params(sandbox, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_sandbox_params(sandbox, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and _PATHLIKE.search(value):
        return str(sandbox.resolve(value))
    return value


def experiment_config(request: Request, spec: ConfigSpec) -> Any:
    """The checked :class:`~mekit.config.ExperimentConfig` a spec describes, its paths resolved
    inside the allowed folders (ConfigError, or Forbidden for a path outside them)."""
    import dataclasses

    from mekit.app.routes_data import Dataset, dataset_params
    from mekit.cli.common import parse_overrides
    from mekit.config import DataConfig, load_config
    from mekit.evaluation.validate import validate_config

    sandbox = request.app.state.sandbox
    path = _ready_path(request, spec.ready) if spec.source == "ready" else None
    overrides = _menu_overrides(spec.menus) if spec.source == "menus" else {}
    if spec.root and spec.root.strip():
        overrides["data.root"] = spec.root.strip()
    if spec.device and spec.device.strip():
        overrides["compute.device"] = spec.device.strip()
    if spec.name and spec.name.strip():
        overrides["name"] = spec.name.strip()
    overrides.update(parse_overrides(_override_lines(spec.overrides)))
    cfg = load_config(path, overrides)
    if spec.source == "menus" and not (spec.name and spec.name.strip()) and "name" not in overrides:
        parts = [cfg.data.loader, cfg.features.name if cfg.model.name in _classifiers() else "",
                 cfg.model.name, cfg.protocol.name]
        cfg = dataclasses.replace(cfg, name="_".join(p for p in parts if p))
    # paths: through the sandbox, like every path the app is given
    ds = dataset_params(request, Dataset(loader=cfg.data.loader, root=cfg.data.root,
                                         label_scheme=cfg.data.label_scheme, options=_quoted(dict(cfg.data.options))))
    cfg = dataclasses.replace(cfg, data=DataConfig(ds["loader"], ds["root"], ds["label_scheme"], ds["options"]))
    if cfg.preprocess.cache_dir:
        cfg = dataclasses.replace(cfg, preprocess=dataclasses.replace(
            cfg.preprocess, cache_dir=str(sandbox.resolve(str(cfg.preprocess.cache_dir)))))
    cfg = dataclasses.replace(
        cfg, features=dataclasses.replace(cfg.features, params=_sandbox_params(sandbox, dict(cfg.features.params),
                                                                               "features.params")),
        model=dataclasses.replace(cfg.model, params=_sandbox_params(sandbox, dict(cfg.model.params), "model.params")))
    if cfg.output.mlflow:
        raise ConfigError("output.mlflow: MLflow tracking is a command-line option (mekit evaluate); the app writes "
                          "every run into its work folder. Remove output.mlflow")
    validate_config(cfg)
    return cfg


def _classifiers() -> set[str]:
    from mekit.models.classical import CLASSIFIERS

    return set(CLASSIFIERS.names())


def _finished_job(request: Request, job_id: str, kind: str) -> Any:
    job = request.app.state.jobs.get(job_id)
    if job is None or job.kind != kind:
        from mekit.app.sandbox import NotFound

        raise NotFound(f"no {kind.split('.')[-1]} job {job_id!r}")
    if job.state != "done":
        raise ConfigError(f"job {job_id} is {job.state}; only a finished one can be used")
    return job


# -- routes ----------------------------------------------------------------------------------------
@router.get("/choices")
def choices(request: Request) -> dict[str, Any]:
    from mekit.app.server import _catalogue

    loaders = []
    for entry in _catalogue("loaders"):
        from mekit.app.routes_data import NO_ROOT

        opts = [o for o in entry["options"] if "Callable" not in o.get("type", "")]
        loaders.append({**entry, "options": opts, "needs_root": entry["name"] not in NO_ROOT})
    return {"ready_configs": ready_configs(request.app.state.sandbox), "loaders": loaders,
            "label_schemes": _catalogue("label_schemes"), "face_detectors": _catalogue("face_detectors"),
            "flow_methods": _catalogue("flow_methods"), "features": _catalogue("features"),
            "classifiers": _catalogue("classifiers"), "models": _catalogue("models"),
            "samplers": _catalogue("samplers"), "losses": _catalogue("losses"),
            "protocols": _catalogue("protocols"), "metrics": _catalogue("metrics"), "devices": list(DEVICES)}


@router.post("/config")
def check_config(request: Request, spec: ConfigSpec) -> dict[str, Any]:
    import yaml

    from mekit.engine.factory import is_neural
    from mekit.evaluation.validate import resolved_config

    cfg = experiment_config(request, spec)
    return {"name": cfg.name, "task": cfg.task, "model": cfg.model.name, "loader": cfg.data.loader,
            "protocol": cfg.protocol.name, "neural": is_neural(cfg.model.name),
            "yaml": yaml.safe_dump(resolved_config(cfg), sort_keys=False)}


@router.post("/evaluate")
def evaluate(request: Request, spec: ConfigSpec) -> dict[str, Any]:
    cfg = experiment_config(request, spec)
    return request.app.state.jobs.submit("train.evaluate", f"{_JOBS}:evaluate", {"config": cfg.to_dict()}).summary()


@router.post("/bundle")
def bundle(request: Request, body: BundleRequest) -> dict[str, Any]:
    if body.job:
        config = _finished_job(request, body.job, "train.evaluate").params["config"]
        params = {"config": config, "evaluation": body.job}
    else:
        params = {"config": experiment_config(request, body).to_dict()}
    return request.app.state.jobs.submit("train.bundle", f"{_JOBS}:bundle", params).summary()


def _run_entry(job_id: str, result: dict[str, Any], ended: Any, live: bool) -> dict[str, Any]:
    return {"job": job_id, "live": live, "name": result.get("name"), "run_dir": result.get("run_dir"),
            "task": result.get("task"), "model": result.get("model"), "loader": result.get("loader"),
            "protocol": result.get("protocol"), "headline": result.get("headline"), "ended": ended}


@router.get("/runs")
def runs(request: Request) -> dict[str, Any]:
    """Finished evaluations, newest first: this server's (``live``: their results and files are
    served under ``/api/jobs/<id>``), then those an earlier server wrote in the same work folder
    (read from each job's ``job.json``; they can be compared and downloaded)."""
    import json

    out = []
    for job in request.app.state.jobs.list():
        if job.kind == "train.evaluate" and job.state == "done" and isinstance(job.result, dict):
            out.append(_run_entry(job.id, job.result, job.ended, True))
    seen = {r["job"] for r in out}
    folder = request.app.state.settings.jobs_dir
    earlier = []
    for record in folder.glob("*-train-evaluate-*/job.json") if folder.is_dir() else ():
        if record.parent.name in seen:
            continue
        try:
            j = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        r = j.get("result")
        if j.get("kind") == "train.evaluate" and j.get("state") == "done" and isinstance(r, dict) \
                and r.get("run_dir") and os.path.isdir(r["run_dir"]):
            earlier.append(_run_entry(str(j.get("id")), r, j.get("ended"), False))
    earlier.sort(key=lambda r: r["ended"] or 0, reverse=True)
    return {"runs": out + earlier}


@router.post("/compare")
def compare(request: Request, body: CompareRequest) -> dict[str, Any]:
    sandbox = request.app.state.sandbox
    folders = [str(sandbox.resolve(r, want="dir", base=sandbox.workdir)) for r in body.runs]
    return request.app.state.jobs.submit("train.compare", f"{_JOBS}:compare", {"runs": folders}).summary()


@router.get("/report.zip")
def report_zip(request: Request, run: str) -> Any:
    """The run folder ``run`` as a zip file. Only folders inside the work folder are served (a
    dataset folder under an allowed root is not a report), and only a run folder (one holding
    ``metrics.json``); links inside it are left out, so nothing outside it is ever packed."""
    import tempfile
    import zipfile

    from fastapi.responses import FileResponse
    from starlette.background import BackgroundTask

    from mekit.app.sandbox import Forbidden, NotFound

    sandbox = request.app.state.sandbox
    folder = sandbox.resolve(run, want="dir", base=sandbox.workdir)
    if not folder.is_relative_to(sandbox.workdir):
        raise Forbidden(f"refused: {run} is not inside the work folder {sandbox.workdir}; only runs made by this "
                        f"app can be downloaded")
    if not (folder / "metrics.json").is_file():
        raise NotFound(f"{run} is not a run folder (no metrics.json)")
    fd, tmp = tempfile.mkstemp(prefix="mekit-report-", suffix=".zip")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for dirpath, dirnames, filenames in os.walk(folder):  # links to folders are not followed
                dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
                for f in sorted(filenames):
                    p = os.path.join(dirpath, f)
                    if os.path.islink(p) or not os.path.isfile(p):
                        continue
                    z.write(p, os.path.join(folder.name, os.path.relpath(p, folder)))
    except BaseException:
        os.unlink(tmp)
        raise
    return FileResponse(tmp, media_type="application/zip", filename=f"{folder.name}.zip",
                        background=BackgroundTask(os.unlink, tmp))


__all__ = ["SCREEN", "ConfigSpec", "experiment_config", "ready_configs", "router"]

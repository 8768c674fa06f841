"""Trained-model bundles: one file that rebuilds the exact prediction pipeline.

A bundle is a zip archive (``.mekit``) holding exactly two members: ``meta.json`` (format
version, resolved config, classes, label scheme, preprocessing and feature parameters,
package versions) and one payload, ``weights.pt`` (a torch state dict) for neural models or
``model.skops`` (a fitted scikit-learn pipeline in skops' format) for classical ones.

A bundle is untrusted input: whoever hands one over decides every byte of it. Loading
therefore

- never unpickles anything: ``weights.pt`` goes through ``torch.load(weights_only=True)``,
  and ``model.skops`` is loaded only after every node of its ``schema.json`` has been checked
  against :data:`SKOPS_TYPES`, an exact list of the types mekit's own pipelines are made of
  (no module prefixes: ``builtins.`` alone would admit ``eval``);
- never inflates more than a member's limit (:data:`LIMITS`), whatever its header claims,
  and refuses archives with unexpected, duplicate or too many members, in the bundle and in
  the zip that a skops file itself is;
- drops every setting that says where or how (not what) to compute (:func:`strip_runtime`),
  so a bundle cannot choose the folders mekit writes to or the number of processes it starts;
- checks every field of ``meta.json`` it uses, and the fitted trees and support vectors
  native code indexes without bounds checks.

Anything else is refused with one :class:`~mekit.errors.DataError` line, before any of it runs.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mekit.errors import ConfigError, DataError

FORMAT = "mekit-bundle"
FORMAT_VERSION = 1

MiB = 1 << 20
#: Largest inflated size of each bundle member, in bytes. A member over its limit is refused
#: from its declared size before any byte is inflated, and again while it is read (in chunks)
#: should its header understate it, so memory never holds more than a limit of any member.
LIMITS = {
    # meta.json holds the config, the label scheme and the training sample ids: about 2 KB per
    # 100 samples, so 16 MiB is hundreds of times what the largest corpus (a few thousand clips)
    # writes.
    "meta.json": 16 * MiB,
    # weights.pt is a float32 state dict. The largest registered model, R(2+1)D-18, has about
    # 31.5 M parameters (126 MB); 512 MiB leaves room for four times that (a wider variant)
    # and still refuses a zip bomb long before memory runs short.
    "weights.pt": 512 * MiB,
    # model.skops: the largest pipelines mekit fits are a 300-tree random forest (about 8 MB)
    # and an SVM, which keeps at most every training vector: 5,000 samples x 10,000 float64
    # features is 400 MB. skops stores arrays uncompressed, so this is also the cap on the
    # arrays it holds (see SKOPS_LIMITS).
    "model.skops": 512 * MiB,
}
PAYLOADS = {"neural": "weights.pt", "classical": "model.skops"}
#: the zip inside model.skops: at most this many members, this much in total once inflated,
#: and a schema.json of at most this size (parsed JSON takes about ten times its size in
#: memory; a 300-tree forest writes 8 MB of schema, 64 MiB allows some 2,500 trees).
SKOPS_LIMITS = {"members": 32_768, "total": LIMITS["model.skops"], "schema.json": 64 * MiB}
_CHUNK = MiB
# The end-of-central-directory record: signature, disk numbers, entry counts, directory size
# and offset, comment length (APPNOTE 4.3.16). Its fixed part is 22 bytes and a comment
# adds at most 65,535.
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"

#: The exact types a classical bundle may contain, with the skops loader each is read by.
#: Derived by fitting every pipeline mekit builds -- each classifier of mekit.models.classical
#: (logreg, svm, random_forest, gbm, and flaml restricted to FLAML_LEARNERS), with and without
#: PCA, every sampler of mekit.imbalance and class weights on or off, and every intensity
#: regressor of mekit.intensity.models -- and collecting every (loader, module.class) pair of
#: their schema.json (tests/engine/test_bundle_security.py refits them all and checks that
#: each loads, so the list stays complete). Nothing callable that could reach the
#: interpreter, the file system or other processes is on it: no builtins but the plain data
#: containers, no os, subprocess, importlib, functools, operator, and no numpy or scipy
#: functions.
SKOPS_TYPES: dict[str, frozenset[str]] = {name: frozenset(loaders) for name, loaders in {
    # plain data containers; a TypeNode names the type of dict keys
    "builtins.dict": ("DictNode",),
    "builtins.list": ("ListNode",),
    "builtins.tuple": ("TupleNode",),
    "builtins.str": ("JsonNode", "TypeNode"),
    "collections.OrderedDict": ("DictNode", "TypeNode"),
    "collections.defaultdict": ("DefaultDictNode",),
    # arrays (read with allow_pickle=False) and numpy scalars. The scalar types follow the
    # dtype of the features and labels a model was fitted on, so the numeric family is allowed
    # whole (calling one of them with an array only converts it); as a TypeNode one names the
    # type of dict keys (numpy.str_ for class names, numpy.int64 for FLAML's encoded labels).
    "numpy.ndarray": ("NdArrayNode",),
    **{f"numpy.{t}": ("NdArrayNode", "TypeNode") for t in (
        "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64")},
    "numpy.str_": ("TypeNode", "NdArrayNode"),
    # mekit's own estimators and samplers. SoftmaxSVC is written under its module,
    # mekit.models.classical; bundles from before the classical pipelines moved there name
    # mekit.classical, an alias of that very module (so both names rebuild the same class).
    "mekit.models.classical.SoftmaxSVC": ("ObjectNode",),
    "mekit.classical.SoftmaxSVC": ("ObjectNode",),
    **{f"mekit.imbalance.samplers.{c}": ("ObjectNode",) for c in (
        "RandomOverSampler", "RandomUnderSampler", "ClassBalancedSampler", "SMOTESampler",
        "BorderlineSMOTESampler", "ADASYNSampler", "SMOTEENNSampler")},
    # imbalanced-learn: the pipeline and the samplers mekit's wrap (fitted, they stay in it)
    "imblearn.pipeline.Pipeline": ("ObjectNode",),
    "imblearn.over_sampling._smote.base.SMOTE": ("ObjectNode",),
    "imblearn.over_sampling._smote.filter.BorderlineSMOTE": ("ObjectNode",),
    "imblearn.over_sampling._adasyn.ADASYN": ("ObjectNode",),
    "imblearn.combine._smote_enn.SMOTEENN": ("ObjectNode",),
    "imblearn.under_sampling._prototype_selection._edited_nearest_neighbours.EditedNearestNeighbours":
        ("ObjectNode",),
    # scikit-learn: steps, classifiers, regressors and what they hold once fitted
    "sklearn.pipeline.Pipeline": ("ObjectNode",),
    "sklearn.preprocessing._data.StandardScaler": ("ObjectNode",),
    "sklearn.preprocessing._label.LabelEncoder": ("ObjectNode",),
    "sklearn.preprocessing._polynomial.SplineTransformer": ("ObjectNode",),
    "sklearn.decomposition._pca.PCA": ("ObjectNode",),
    "sklearn.linear_model._logistic.LogisticRegression": ("ObjectNode",),
    "sklearn.linear_model._ridge.Ridge": ("ObjectNode",),
    "sklearn.svm._classes.SVC": ("ObjectNode",),
    "sklearn.svm._classes.SVR": ("ObjectNode",),
    "sklearn.ensemble._forest.RandomForestClassifier": ("ObjectNode",),
    "sklearn.ensemble._forest.ExtraTreesClassifier": ("ObjectNode",),
    "sklearn.tree._classes.DecisionTreeClassifier": ("ObjectNode",),
    "sklearn.tree._classes.ExtraTreeClassifier": ("ObjectNode",),
    "sklearn.tree._tree.Tree": ("TreeNode",),
    "sklearn.neighbors._unsupervised.NearestNeighbors": ("ObjectNode",),
    "sklearn.neighbors._kd_tree.KDTree": ("ObjectNode",),
    "sklearn.metrics._dist_metrics.EuclideanDistance64": ("ObjectNode",),
    # the intensity reference position_prior: a fitted SplineTransformer keeps scipy BSplines,
    # which keep their array namespace's asarray (a FunctionNode: imported on load, not called)
    "scipy.interpolate._bsplines.BSpline": ("ObjectNode",),
    "scipy._lib.array_api_compat.numpy._aliases.asarray": ("FunctionNode",),
    # LightGBM: the estimators and their booster (held as LightGBM's own model text)
    "lightgbm.sklearn.LGBMClassifier": ("ObjectNode",),
    "lightgbm.sklearn.LGBMRegressor": ("ObjectNode",),
    "lightgbm.basic.Booster": ("ObjectNode",),
}.items()}

#: FLAML learners whose fitted estimator predicts exactly what FLAML's AutoML does on numeric
#: features (checked in the tests). A bundle stores that estimator, not the AutoML object: the
#: AutoML search state holds tuple-keyed dicts skops cannot write, and none of it is needed
#: to predict.
FLAML_LEARNERS = ("lgbm", "rf", "extra_tree", "lrl1", "lrl2")


@dataclass
class Bundle:
    meta: dict[str, Any]
    model: Any  # a fitted ClassicalModel-like or NeuralModel-like object with predict_proba

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])


def _versions() -> dict[str, str]:
    from mekit.environment import environment

    return environment(0)["packages"]


# ---------------------------------------------------------------------------------------
# runtime settings
# ---------------------------------------------------------------------------------------
#: PreprocessConfig fields that change how, not what, is computed: a training machine's cache
#: folder or core count means nothing on another machine, and a bundle must not pick them.
PREPROCESS_RUNTIME_FIELDS = ("workers", "worker_timeout", "cache", "cache_dir", "fsync")


def strip_runtime(meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``meta`` without any setting that says where or how to compute.

    Dropped: the preprocessing runtime fields (:data:`PREPROCESS_RUNTIME_FIELDS`, in
    ``meta['preprocess']`` and ``meta['config']['preprocess']``), ``config.data.root``,
    ``config.protocol.workers``, ``config.protocol.executor`` and ``.address`` (where the folds
    ran: a Ray cluster's address means nothing to whoever reads the bundle), the whole
    ``config.output`` section (results folder, MLflow URI) and the whole ``config.compute``
    section (device, precision). Applied when a bundle is written and again when one is read,
    so a hand-edited ``meta.json`` cannot choose where mekit writes.
    """
    meta = copy.deepcopy(meta)
    if isinstance(meta.get("preprocess"), dict):
        meta["preprocess"] = {k: v for k, v in meta["preprocess"].items() if k not in PREPROCESS_RUNTIME_FIELDS}
    cfg = meta.get("config")
    if isinstance(cfg, dict):
        if isinstance(cfg.get("preprocess"), dict):
            cfg["preprocess"] = {k: v for k, v in cfg["preprocess"].items() if k not in PREPROCESS_RUNTIME_FIELDS}
        if isinstance(cfg.get("data"), dict):
            cfg["data"].pop("root", None)
        if isinstance(cfg.get("protocol"), dict):
            for key in ("workers", "executor", "address"):
                cfg["protocol"].pop(key, None)
        cfg.pop("output", None)
        # the reading machine picks its own device (load_bundle's ``device``); where the model
        # was trained stays on record in meta['training']['selection']['compute']
        cfg.pop("compute", None)
    return meta


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------
def _persistable(pipeline: Any) -> Any:
    """``pipeline`` with a fitted FLAML step replaced by the estimator FLAML chose."""
    from mekit.models.classical import FlamlClassifier

    steps = getattr(pipeline, "steps", None)
    if not steps or not isinstance(steps[-1][1], FlamlClassifier):
        return pipeline
    automl = steps[-1][1].automl_
    if automl.best_estimator not in FLAML_LEARNERS:
        raise ConfigError(f"FLAML chose learner {automl.best_estimator!r}, which a bundle cannot hold; set "
                          f"model.params.estimator_list to some of {list(FLAML_LEARNERS)}")
    out = copy.copy(pipeline)
    out.steps = [*steps[:-1], (steps[-1][0], automl.model.estimator)]
    return out


def save_bundle(path: str | Path, model: Any, config: Any, classes: list[str], extra: dict | None = None) -> Path:
    """Write ``model`` (fitted ClassicalModel or NeuralModel) and what rebuilds its pipeline.

    The bundle is written to a temporary file next to ``path`` and moved over it, so a failed
    write never leaves a half bundle; an unwritable ``path`` is one DataError line.
    """
    path = Path(path)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_dict(),
            "classes": [str(c) for c in classes], "versions": _versions(), **(extra or {})}
    buf = io.BytesIO()
    if hasattr(model, "model_") and hasattr(model, "history_"):  # NeuralModel
        import torch

        meta.update(kind="neural", model_name=model.model_name, train=model.describe()["train"],
                    model_classes=[str(c) for c in model.classes_])
        torch.save(model.model_.state_dict(), buf)
        payload = "weights.pt"
    else:
        import skops.io as sio

        meta.update(kind="classical", model_name=str(config.model.name),
                    model_classes=[str(c) for c in model.classes_])
        data = sio.dumps(_persistable(model.model_))
        try:  # a bundle this mekit would refuse to load is not written at all
            _check_skops_archive(path, data)
        except DataError as e:
            raise ConfigError(f"model {config.model.name!r} cannot be bundled: {getattr(e, 'why', e)}") from None
        buf.write(data)
        payload = "model.skops"
    meta = strip_runtime(meta)
    text = json.dumps(meta, indent=2, default=str).encode()
    for name, size in (("meta.json", len(text)), (payload, buf.tell())):
        if size > LIMITS[name]:
            raise ConfigError(f"model {config.model.name!r}: its {name} would take {size} bytes, over the "
                              f"{LIMITS[name]} a bundle may hold")
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("meta.json", text)
            z.writestr(payload, buf.getbuffer())
        tmp.replace(path)
    except OSError as e:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write the bundle ({e.strerror or type(e).__name__})", path=path,
                        expected="a writable file path") from None
    return path


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------
def _refuse(path: Path, why: str) -> DataError:
    e = DataError(f"not a valid mekit bundle: {why}", path=path, expected="a .mekit file written by `mekit train`")
    e.why = why  # type: ignore[attr-defined]  # what save_bundle reports when it refuses its own payload
    return e


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _check_end_record(path: Path, f: Any, max_members: int, what: str) -> None:
    """Refuse a zip whose end record announces more than ``max_members`` members, before
    zipfile builds one object per member of its central directory."""
    f.seek(0, io.SEEK_END)
    size = f.tell()
    tail_len = min(size, _EOCD.size + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(_EOCD_SIG)
    if at < 0 or len(tail) - at < _EOCD.size:
        raise _refuse(path, f"{what} is not a zip archive (no end record; truncated?)")
    _, _, _, n_disk, n_total, _, _, _ = _EOCD.unpack_from(tail, at)
    if max(n_disk, n_total) > max_members:  # 0xFFFF (a ZIP64 archive) is over every limit here
        raise _refuse(path, f"{what} has {max(n_disk, n_total)} members; expected at most {max_members}")


def _members(path: Path, z: zipfile.ZipFile, allowed: Any, max_members: int, what: str) -> dict[str, zipfile.ZipInfo]:
    infos = z.infolist()
    if len(infos) > max_members:
        raise _refuse(path, f"{what} has {len(infos)} members; expected at most {max_members}")
    names = [i.filename for i in infos]
    dup = sorted(n for n, k in Counter(names).items() if k > 1)
    if dup:
        raise _refuse(path, f"{what} holds {dup[0]!r} twice")
    bad = [n for n in names if not allowed(n)]
    if bad:
        raise _refuse(path, f"{what} holds an unexpected member {bad[0][:80]!r}")
    for i in infos:
        if i.flag_bits & 0x1:
            raise _refuse(path, f"{what} member {i.filename!r} is encrypted")
    return {i.filename: i for i in infos}


def _read_member(path: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, what: str) -> io.BytesIO:
    """The inflated member, read in chunks and refused as soon as it passes ``limit``."""
    name = f"{what}{info.filename}"
    if info.file_size > limit or info.compress_size > limit:
        raise _refuse(path, f"{name} declares {max(info.file_size, info.compress_size)} bytes; "
                            f"at most {limit} are read")
    out = io.BytesIO()
    with z.open(info) as f:
        while chunk := f.read(_CHUNK):
            if out.tell() + len(chunk) > limit:
                raise _refuse(path, f"{name} inflates to more than {limit} bytes")
            out.write(chunk)
    out.seek(0)
    return out


#: errors the zip and zlib modules raise on damaged archives (a flipped header byte can turn
#: into any of them); all mean "this file is not a bundle".
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError, KeyError,
               IndexError, NotImplementedError, RuntimeError, struct.error, OverflowError, UnicodeError,
               OSError)


def load_bundle(path: str | Path, device: str | None = None) -> Bundle:
    """Read a bundle and rebuild its fitted model; refuse anything else without executing it.

    ``device`` (a ``compute.device`` value; default ``auto``) is where a neural model runs: its
    weights are read onto the CPU whatever device they were saved from, then moved there."""
    path = Path(path)
    if not path.exists():
        raise DataError("bundle file does not exist", path=path)
    if not path.is_file():
        raise _refuse(path, "it is a folder, not a file")
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; opening apart keeps its errors apart
    except OSError as e:
        raise DataError(f"cannot read the bundle ({e.strerror or type(e).__name__})", path=path) from None
    try:
        with f:
            _check_end_record(path, f, len(PAYLOADS) + 1, "the archive")
            with zipfile.ZipFile(f) as z:
                members = _members(path, z, lambda n: n in LIMITS, len(PAYLOADS) + 1, "the archive")
                if "meta.json" not in members:
                    raise _refuse(path, "meta.json is missing")
                raw = _read_member(path, z, members["meta.json"], LIMITS["meta.json"], "")
                meta = _parse_meta(path, raw.getvalue())
                payload = PAYLOADS[meta["kind"]]
                extra = sorted(set(members) - {"meta.json", payload})
                if payload not in members or extra:
                    raise _refuse(path, f"a {meta['kind']} bundle holds meta.json and {payload}; "
                                        f"found {sorted(members)}")
                data = _read_member(path, z, members[payload], LIMITS[payload], "")
    except DataError:
        raise
    except _ZIP_ERRORS as e:
        raise _refuse(path, f"the archive is damaged ({_first_line(e)})") from None
    if meta["kind"] == "neural":
        model = _load_neural(path, meta, data, device)
    else:
        model = _load_classical(path, meta, data)
    return Bundle(meta, model)


# -- meta.json ------------------------------------------------------------------------------
def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _parse_meta(path: Path, raw: bytes) -> dict[str, Any]:
    """meta.json parsed, checked field by field and stripped of runtime settings."""
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _refuse(path, "meta.json is not valid JSON") from None
    if not isinstance(meta, dict):
        raise _refuse(path, f"meta.json holds a {type(meta).__name__}; expected an object")
    if meta.get("format") != FORMAT:
        raise _refuse(path, f"meta.json format is {str(meta.get('format'))[:40]!r}; expected {FORMAT!r}")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _refuse(path, f"meta.json format_version is {str(version)[:40]!r}; expected the integer "
                            f"{FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise _refuse(path, f"format version {version} is newer than this mekit reads ({FORMAT_VERSION})")
    if version != FORMAT_VERSION:
        raise _refuse(path, f"format version {version} is not one this mekit reads ({FORMAT_VERSION})")

    def need(key: str, ok: bool, expected: str) -> None:
        if not ok:
            got = "missing" if key not in meta else f"a {type(meta[key]).__name__}"
            raise _refuse(path, f"meta.json {key} is {got}; expected {expected}")

    task = meta.get("task", "classification")
    need("task", task in ("classification", "intensity"), "'classification' or 'intensity'")
    need("kind", meta.get("kind") in PAYLOADS, f"one of {sorted(PAYLOADS)}")
    classes, model_classes = meta.get("classes"), meta.get("model_classes")
    need("classes", _is_str_list(classes) and len(set(classes or ())) == len(classes or ())
         and (task == "intensity" or len(classes) >= 2), "a list of distinct class names")
    need("model_classes", _is_str_list(model_classes) and set(model_classes or ()) <= set(classes)
         and len(set(model_classes or ())) == len(model_classes or ())
         and (task == "intensity" or len(model_classes) >= 2), "a list of distinct names from classes")
    need("model_name", isinstance(meta.get("model_name"), str) if meta["kind"] == "neural"
         else isinstance(meta.get("model_name", ""), str), "a model name")
    need("config", isinstance(meta.get("config"), dict), "an object")
    for key in ("preprocess", "features", "label_scheme", "training", "train", "versions", "intensity"):
        need(key, meta.get(key) is None or isinstance(meta[key], dict), "an object")
    feats = meta.get("features") or {}
    shape = feats.get("shape")
    need("features", shape is None or (isinstance(shape, list) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in shape)), "an object whose shape is a list of integers")
    need("features", all(isinstance(feats.get(k, []), list) for k in ("mean", "std"))
         and isinstance(feats.get("params", {}), dict), "an object with params, mean and std")
    scheme = meta.get("label_scheme") or {}
    need("label_scheme", _is_str_list(scheme.get("classes", [])) and isinstance(scheme.get("mapping") or {}, dict)
         and isinstance(scheme.get("per_dataset") or {}, dict)
         and all(isinstance(v, dict) for v in (scheme.get("per_dataset") or {}).values()),
         "an object with classes, mapping and per_dataset")
    need("training", _is_str_list((meta.get("training") or {}).get("sample_ids", [])),
         "an object whose sample_ids are a list of strings")
    meta = strip_runtime(meta)
    # The config and the preprocessing are rebuilt now, so a bad value is named here, with the
    # bundle, rather than half-way through a prediction.
    from mekit.config import ExperimentConfig, from_dict

    try:
        from_dict(ExperimentConfig, meta["config"])
        if meta.get("preprocess") is not None:
            from mekit.preprocess.pipeline import PreprocessConfig

            PreprocessConfig.from_dict(meta["preprocess"])
    except ConfigError as e:
        raise _refuse(path, f"meta.json {str(e).splitlines()[0][:300]}") from None
    return meta


# -- weights.pt -----------------------------------------------------------------------------
def _load_neural(path: Path, meta: dict, data: io.BytesIO, device: str | None = None):
    import numpy as np
    import torch

    from mekit.engine.trainer import NeuralModel

    try:
        state = torch.load(data, weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unpickling refusal or damage means "not a bundle"
        raise _refuse(path, f"weights.pt cannot be read safely ({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise _refuse(path, "weights.pt is not a state dict of tensors")
    try:
        nm = NeuralModel(meta["model_name"], meta.get("train") or {}, seed=0)
    except ConfigError as e:
        raise _refuse(path, f"meta.json model {str(e).splitlines()[0][:300]}") from None
    nm.classes_ = np.array(meta["model_classes"])
    try:
        model = nm._build(len(nm.classes_))
    except ConfigError as e:
        raise _refuse(path, f"meta.json train.model_params: {str(e).splitlines()[0][:300]}") from None
    except (TypeError, ValueError) as e:
        raise _refuse(path, f"model {meta['model_name']} cannot be built from meta.json ({_first_line(e)})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise _refuse(path, f"weights do not fit model {meta['model_name']} ({str(e).splitlines()[0][:200]})") from None
    model.eval()
    nm.model_ = model
    # the device is checked after the bundle itself, so a damaged file is reported as such first
    return nm.to(device or "auto")


# -- model.skops ----------------------------------------------------------------------------
class _FittedClassical:
    def __init__(self, pipeline, classes):
        import numpy as np

        self.model_ = pipeline
        self.classes_ = np.asarray(classes)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


_SKOPS_PROTOCOL: list[int] = []


def _skops_protocol() -> int:
    """The skops format protocol this installation writes (read from a file it writes, as
    skops exposes it only privately)."""
    if not _SKOPS_PROTOCOL:
        import skops.io as sio

        with zipfile.ZipFile(io.BytesIO(sio.dumps([]))) as z:
            _SKOPS_PROTOCOL.append(int(json.loads(z.read("schema.json"))["protocol"]))
    return _SKOPS_PROTOCOL[0]


def _skops_member(name: str) -> bool:
    # skops names arrays "<id>.npy" and byte strings "<uuid>.bin"; no folders, no other files
    stem, _, ext = name.rpartition(".")
    return name == "schema.json" or (ext in ("npy", "bin") and stem.replace("-", "").isalnum())


def check_skops_schema(schema: Any, sizes: dict[str, int] | None = None) -> list[str]:
    """Every type of a skops ``schema.json`` (parsed), checked against :data:`SKOPS_TYPES`.

    Walks every object of the schema, whatever key it hangs from (skops nodes nest under
    ``content``, ``attrs``, ``key_types``, ``__reduce__`` ...), so no node escapes the check:
    each object that names a loader must name one the type is read by on the allow-list, and
    no object may name a module or class without a loader. Array files an ``NdArrayNode``
    reads must be members of the archive (``sizes``: member -> inflated size), and all they
    add up to, counting a file read twice twice, stays within ``SKOPS_LIMITS['total']``.
    Returns the sorted type names found; raises ValueError naming the first refused one.
    """
    found: set[str] = set()
    read = 0
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if "__loader__" in node or "__module__" in node or "__class__" in node:
            loader, module, cls = node.get("__loader__"), node.get("__module__"), node.get("__class__")
            if not all(isinstance(v, str) for v in (loader, module, cls)):
                raise ValueError(f"a node names loader {str(loader)[:40]!r}, type "
                                 f"{str(module)[:60]}.{str(cls)[:60]}")
            name = f"{module}.{cls}"
            if loader not in SKOPS_TYPES.get(name, ()):
                raise ValueError(f"type {name[:120]} (loader {loader[:40]}) is not on the allow-list")
            found.add(name)
            if loader == "NdArrayNode" and node.get("type") != "json":
                file = node.get("file")
                if node.get("type") != "numpy" or not isinstance(file, str) or (sizes is not None and file not in sizes):
                    raise ValueError(f"an array refers to {str(file)[:60]!r}, which the file does not hold")
                read += (sizes or {}).get(file, 0)
                if read > SKOPS_LIMITS["total"]:
                    raise ValueError(f"its arrays add up to more than {SKOPS_LIMITS['total']} bytes")
        stack.extend(node.values())
    return sorted(found)


def _check_skops_archive(path: Path, data: bytes | io.BytesIO) -> list[str]:
    """Check the zip a skops file is (members, sizes, schema); the trusted type names."""
    f = data if isinstance(data, io.BytesIO) else io.BytesIO(data)
    what = "model.skops"
    try:
        _check_end_record(path, f, SKOPS_LIMITS["members"], what)
        f.seek(0)
        with zipfile.ZipFile(f) as z:
            members = _members(path, z, _skops_member, SKOPS_LIMITS["members"], what)
            if "schema.json" not in members:
                raise _refuse(path, "model.skops has no schema.json")
            total = sum(i.file_size for i in members.values())
            if total > SKOPS_LIMITS["total"]:
                raise _refuse(path, f"model.skops members declare {total} bytes; at most "
                                    f"{SKOPS_LIMITS['total']} are read")
            # Inflate every member once, in chunks, so a header that understates a size (or a
            # damaged member) is caught here, not while skops reads it whole.
            for info in members.values():
                if info.filename != "schema.json":
                    with z.open(info) as m:
                        n = 0
                        while chunk := m.read(_CHUNK):
                            n += len(chunk)
                            if n > info.file_size:
                                raise _refuse(path, f"{what}/{info.filename} inflates past its declared size")
            raw = _read_member(path, z, members["schema.json"], SKOPS_LIMITS["schema.json"], f"{what}/")
    except DataError:
        raise
    except _ZIP_ERRORS as e:
        raise _refuse(path, f"model.skops is damaged ({_first_line(e)})") from None
    finally:
        f.seek(0)
    try:
        schema = json.loads(raw.getvalue())
    except (ValueError, RecursionError):
        raise _refuse(path, "model.skops schema.json is not valid JSON") from None
    if not isinstance(schema, dict):
        raise _refuse(path, "model.skops schema.json is not an object")
    protocol = schema.get("protocol")
    if protocol != _skops_protocol() or isinstance(protocol, bool):
        raise _refuse(path, f"model.skops uses skops protocol {str(protocol)[:20]}; this installation reads "
                            f"{_skops_protocol()} (train the bundle again with this mekit)")
    try:
        return check_skops_schema(schema, {n: i.file_size for n, i in members.items()})
    except RecursionError:
        raise _refuse(path, "model.skops schema.json is nested too deeply") from None
    except ValueError as e:
        raise _refuse(path, f"model.skops {e}") from None


def _check_fitted(path: Path, pipe: Any, task: str, n_classes: int) -> None:
    """Structural checks of fitted parts that native code indexes without bounds checks.

    skops rebuilds objects of allowed types from the file, but cannot vouch for their
    content: a decision tree's child and feature indices and an SVM's support-vector counts
    are used as array offsets by scikit-learn's compiled code, so hand-edited values could
    read outside memory (skops leaves ``Tree`` off its own default list for this reason).
    """
    import numpy as np

    def parts(obj: Any, depth: int = 0):
        if depth > 4:
            return
        yield obj
        for _, step in getattr(obj, "steps", None) or ():
            yield from parts(step, depth + 1)
        for est in getattr(obj, "estimators_", None) or ():
            yield from parts(est, depth + 1)

    for part in parts(pipe):
        tree = getattr(part, "tree_", None)
        if tree is not None:
            n = int(tree.node_count)
            left, right, feat = (np.asarray(a) for a in (tree.children_left, tree.children_right, tree.feature))
            idx = np.arange(n)
            leaf = left == -1
            inner = ~leaf
            ok = (n >= 1 and left.shape == right.shape == feat.shape == (n,) and tree.value.shape[0] == n
                  and np.array_equal(leaf, right == -1)
                  and np.all((left[inner] > idx[inner]) & (left[inner] < n))
                  and np.all((right[inner] > idx[inner]) & (right[inner] < n))
                  and np.all((feat[inner] >= 0) & (feat[inner] < tree.n_features)))
            if not ok:
                raise _refuse(path, f"model.skops holds a {type(part).__name__} whose tree is not well formed")
        if hasattr(part, "support_vectors_") and hasattr(part, "_dual_coef_"):
            sv, dual = np.asarray(part.support_vectors_), np.asarray(part._dual_coef_)
            n_sv = sv.shape[0] if sv.ndim == 2 else -1
            ok = dual.ndim == 2 and dual.shape[1] == n_sv and np.asarray(part.support_).shape == (n_sv,)
            if hasattr(part, "classes_"):
                k = len(part.classes_)
                ns = np.asarray(part._n_support)
                ok = ok and ns.shape == (k,) and int(ns.sum()) == n_sv and bool(np.all(ns >= 0)) \
                    and dual.shape[0] == k - 1 and np.asarray(part._intercept_).shape == (k * (k - 1) // 2,)
            else:
                ok = ok and dual.shape[0] == 1 and np.asarray(part._intercept_).shape == (1,)
            if not ok:
                raise _refuse(path, f"model.skops holds a {type(part).__name__} whose support vectors do not agree")
    if task == "classification":
        if not hasattr(pipe, "predict_proba") or len(getattr(pipe, "classes_", ())) != n_classes:
            raise _refuse(path, f"model.skops is not a classifier of the {n_classes} model_classes of meta.json")


def _load_classical(path: Path, meta: dict, data: io.BytesIO):
    import skops.io as sio

    trusted = _check_skops_archive(path, data)
    # skops audits the tree again while loading; it is given only types already checked above.
    try:
        pipe = sio.load(data, trusted=trusted)
    except Exception as e:  # noqa: BLE001 - a damaged or crafted file fails in skops or in a __setstate__
        raise _refuse(path, f"model.skops cannot be loaded ({_first_line(e)})") from None
    _check_fitted(path, pipe, meta.get("task", "classification"), len(meta["model_classes"]))
    return _FittedClassical(pipe, meta["model_classes"])


__all__ = ["FLAML_LEARNERS", "FORMAT", "FORMAT_VERSION", "LIMITS", "PREPROCESS_RUNTIME_FIELDS", "SKOPS_LIMITS",
           "SKOPS_TYPES", "Bundle", "check_skops_schema", "load_bundle", "save_bundle", "strip_runtime"]

"""Trained-model bundles: one file that rebuilds the exact prediction pipeline.

A bundle is a zip archive (``.mekit``) holding ``meta.json`` (format version, resolved
config, classes, label scheme, preprocessing and feature parameters, package versions) and
one payload: ``weights.pt`` (a torch state dict, read with ``weights_only=True``) for
neural models, or ``model.skops`` (a scikit-learn pipeline, read with skops after checking
that every type in it is on an allow-list) for classical ones. Loading never unpickles
arbitrary objects: a file that is not a valid bundle is refused with a clear message and
nothing in it is executed.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mekit.errors import DataError

FORMAT = "mekit-bundle"
FORMAT_VERSION = 1
#: module prefixes whose types a classical bundle may contain
TRUSTED_PREFIXES = ("sklearn.", "imblearn.", "numpy.", "lightgbm.", "scipy.", "builtins.", "collections.",
                    "mekit.classical.", "flaml.", "xgboost.")


@dataclass
class Bundle:
    meta: dict[str, Any]
    model: Any  # a fitted ClassicalModel-like or NeuralModel-like object with predict_proba

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])


def _versions() -> dict[str, str]:
    from mekit.evaluation.report import environment

    return environment(0)["packages"]


def save_bundle(path: str | Path, model: Any, config: Any, classes: list[str], extra: dict | None = None) -> Path:
    """Write ``model`` (fitted ClassicalModel or NeuralModel) and what rebuilds its pipeline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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

        meta.update(kind="classical", model_classes=[str(c) for c in model.classes_])
        buf.write(sio.dumps(model.model_))
        payload = "model.skops"
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json", json.dumps(meta, indent=2, default=str))
        z.writestr(payload, buf.getvalue())
    tmp.replace(path)
    return path


def _refuse(path: Path, why: str) -> DataError:
    return DataError(f"not a valid mekit bundle: {why}", path=path,
                     expected="a .mekit file written by `mekit train`")


def load_bundle(path: str | Path) -> Bundle:
    """Read a bundle and rebuild its fitted model; refuse anything else without executing it."""
    path = Path(path)
    if not path.exists():
        raise DataError("bundle file does not exist", path=path)
    if not zipfile.is_zipfile(path):
        raise _refuse(path, "it is not a zip archive")
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        if "meta.json" not in names:
            raise _refuse(path, "meta.json is missing")
        try:
            meta = json.loads(z.read("meta.json"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _refuse(path, "meta.json is not valid JSON") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise _refuse(path, f"meta.json has format {meta.get('format') if isinstance(meta, dict) else None!r}")
        if int(meta.get("format_version", -1)) > FORMAT_VERSION:
            raise _refuse(path, f"format version {meta.get('format_version')} is newer than this mekit reads "
                                f"({FORMAT_VERSION})")
        kind = meta.get("kind")
        if kind == "neural" and "weights.pt" in names:
            model = _load_neural(path, meta, z.read("weights.pt"))
        elif kind == "classical" and "model.skops" in names:
            model = _load_classical(path, meta, z.read("model.skops"))
        else:
            raise _refuse(path, f"unknown kind {kind!r} or missing payload (files: {sorted(names)})")
    return Bundle(meta, model)


def _load_neural(path: Path, meta: dict, data: bytes):
    import numpy as np
    import torch

    from mekit.engine.trainer import NeuralModel

    try:
        state = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling refusal means "not a bundle"
        raise _refuse(path, f"weights.pt cannot be read safely ({type(e).__name__})") from None
    nm = NeuralModel(meta["model_name"], meta.get("train") or {}, seed=0)
    nm.classes_ = np.array(meta["model_classes"])
    model = nm._build(len(nm.classes_))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise _refuse(path, f"weights do not fit model {meta['model_name']} ({str(e).splitlines()[0]})") from None
    model.eval()
    nm.model_ = model
    return nm


class _FittedClassical:
    def __init__(self, pipeline, classes):
        import numpy as np

        self.model_ = pipeline
        self.classes_ = np.asarray(classes)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def _load_classical(path: Path, meta: dict, data: bytes):
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as e:  # noqa: BLE001
        raise _refuse(path, f"model.skops cannot be inspected ({type(e).__name__})") from None
    bad = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if bad:
        raise _refuse(path, f"model.skops contains types outside the allow-list: {bad[:5]}")
    pipe = sio.loads(data, trusted=untrusted)
    return _FittedClassical(pipe, meta["model_classes"])

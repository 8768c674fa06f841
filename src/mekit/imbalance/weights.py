"""Class weights and class priors, computed from the TRAINING labels of a fold only.

Every function takes the training labels explicitly; nothing here can see a held-out
subject unless a caller passes its labels, which the evaluation code never does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _labels(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError("training labels must be a non-empty 1-D sequence", value=arr.shape)
    return arr


def _counts(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    unknown = np.setdiff1d(np.unique(y), classes)
    if unknown.size:
        raise DataError("training labels contain classes outside the class list", value=unknown.tolist()[:5],
                        expected=f"labels among {classes.tolist()[:10]}")
    return np.array([(y == c).sum() for c in classes], dtype=np.int64)


def class_weights(y: Any, mode: str | Mapping[Any, float] | None = "balanced",
                  classes: Sequence[Any] | np.ndarray | None = None) -> np.ndarray:
    """Per-class weights aligned with ``classes`` (default: the sorted unique labels of ``y``).

    ``mode="balanced"``: ``n_samples / (n_classes * count_c)``, the formula of
    scikit-learn's ``compute_class_weight`` (King & Zeng 2001). A class listed in
    ``classes`` but absent from the training labels gets weight 0 (scikit-learn raises
    instead): in a leave-one-subject-out fold a rare class can be missing from training,
    and a class that never occurs as a target does not need a weight. A mapping gives the
    weights by class (unlisted classes 1.0); ``None`` gives all ones.
    """
    y = _labels(y)
    cls = np.unique(y) if classes is None else np.asarray(classes)
    if mode is None:
        return np.ones(len(cls), dtype=np.float64)
    if isinstance(mode, Mapping):
        extra = [k for k in mode if k not in set(cls.tolist())]
        if extra:
            raise ConfigError(f"class weights given for unknown classes {extra}; classes are {cls.tolist()}")
        return np.array([float(mode.get(c, 1.0)) for c in cls.tolist()], dtype=np.float64)
    if mode != "balanced":
        raise ConfigError(f"class weight mode {mode!r} is not 'balanced', a mapping class -> weight, or None")
    counts = _counts(y, cls)
    if (counts == 0).any():
        log.warning("classes %s have no training samples; their class weight is 0",
                    cls[counts == 0].tolist())
    with np.errstate(divide="ignore"):
        w = len(y) / (len(cls) * counts.astype(np.float64))
    w[counts == 0] = 0.0
    return w


def class_priors(y: Any, classes: Sequence[Any] | np.ndarray | None = None) -> np.ndarray:
    """Class frequencies of the training labels, aligned with ``classes``.

    A class absent from training gets a pseudo-count of 1 (priors renormalised), so its
    log-prior stays finite for logit adjustment; a warning is logged.
    """
    y = _labels(y)
    cls = np.unique(y) if classes is None else np.asarray(classes)
    counts = _counts(y, cls).astype(np.float64)
    if (counts == 0).any():
        log.warning("classes %s have no training samples; prior uses a pseudo-count of 1", cls[counts == 0].tolist())
        counts[counts == 0] = 1.0
    return counts / counts.sum()


def int_labels(y: Any, num_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Validate integer labels 0..K-1 (what a neural loss indexes) and return them with K."""
    arr = _labels(y)
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError("a neural loss needs integer class indices", value=str(arr.dtype),
                        expected="labels 0..K-1 (encode class names first)")
    k = int(arr.max()) + 1 if num_classes is None else int(num_classes)
    if arr.min() < 0 or arr.max() >= k:
        raise DataError("class index out of range", value=(int(arr.min()), int(arr.max())),
                        expected=f"indices in 0..{k - 1}")
    return arr, k

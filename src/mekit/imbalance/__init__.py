"""Class imbalance: samplers (imbalanced-learn style) and losses, fitted on training labels only.

Registries name components by stable strings and hold ``"module:attribute"`` paths, so
importing this package (and listing its choices) imports neither torch nor scikit-learn:

* ``SAMPLERS``: ``random_over``, ``random_under``, ``class_balanced`` (index samplers with
  ``sample_indices_``) and ``smote``, ``borderline_smote``, ``adasyn``, ``smoteenn``
  (feature space, imbalanced-learn) -- see :mod:`mekit.imbalance.samplers`.
* ``LOSSES``: ``cross_entropy``, ``focal``, ``logit_adjusted`` -- see
  :mod:`mekit.imbalance.losses`; built with ``build_loss(name, y_train, num_classes, ...)``.

Every function that learns something (weights, priors, resampling) takes the labels of the
training part of a fold as an argument; none reads a whole dataset.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from mekit.errors import ConfigError
from mekit.imbalance.weights import class_priors, class_weights
from mekit.registry import Registry

#: name -> "module:Class"
SAMPLERS: Registry[str] = Registry("sampler")
SAMPLERS.add("random_over", "mekit.imbalance.samplers:RandomOverSampler", indices=True,
             help="duplicate random rows of each class up to the target count")
SAMPLERS.add("random_under", "mekit.imbalance.samplers:RandomUnderSampler", indices=True,
             help="keep a random subset of each class down to the target count")
SAMPLERS.add("class_balanced", "mekit.imbalance.samplers:ClassBalancedSampler", indices=True,
             help="draw indices with probability 1/class count (a seeded DataLoader sampler)")
SAMPLERS.add("smote", "mekit.imbalance.samplers:SMOTESampler", indices=False,
             help="SMOTE on feature vectors (imbalanced-learn)")
SAMPLERS.add("borderline_smote", "mekit.imbalance.samplers:BorderlineSMOTESampler", indices=False,
             help="Borderline-SMOTE on feature vectors (imbalanced-learn)")
SAMPLERS.add("adasyn", "mekit.imbalance.samplers:ADASYNSampler", indices=False,
             help="ADASYN on feature vectors (imbalanced-learn)")
SAMPLERS.add("smoteenn", "mekit.imbalance.samplers:SMOTEENNSampler", indices=False,
             help="SMOTE then Edited Nearest Neighbours cleaning (imbalanced-learn)")

#: name -> "module:builder"; builders take (y_train, num_classes, **options)
LOSSES: Registry[str] = Registry("loss")
LOSSES.add("cross_entropy", "mekit.imbalance.losses:build_cross_entropy",
           help="cross-entropy; weight='balanced'|mapping|list, label_smoothing")
LOSSES.add("focal", "mekit.imbalance.losses:build_focal",
           help="focal loss (Lin et al. 2017); gamma, per-class alpha, label_smoothing")
LOSSES.add("logit_adjusted", "mekit.imbalance.losses:build_logit_adjusted",
           help="logit-adjusted cross-entropy (Menon et al. 2021); tau, priors from the training labels")


def _resolve(path: str) -> Any:
    mod, attr = path.split(":")
    return getattr(importlib.import_module(mod), attr)


def get_sampler(name: str, seed: int | None = None, **params: Any):
    """An unfitted sampler; ``seed`` becomes its ``random_state``. Unknown options raise a ConfigError."""
    cls = _resolve(SAMPLERS.get(name))
    if seed is not None and "random_state" in inspect.signature(cls).parameters:
        params.setdefault("random_state", seed)
    try:
        return cls(**params)
    except TypeError as e:
        raise ConfigError(f"sampler {name!r}: invalid options {sorted(params)}: {e}") from None


def build_loss(name: str, y_train: Any = None, num_classes: int | None = None, **options: Any):
    """A torch loss module built from the TRAINING labels (class weights, priors)."""
    builder = _resolve(LOSSES.get(name))
    try:
        return builder(y_train=y_train, num_classes=num_classes, **options)
    except TypeError as e:
        raise ConfigError(f"loss {name!r}: invalid options {sorted(options)}: {e}") from None


__all__ = ["LOSSES", "SAMPLERS", "build_loss", "class_priors", "class_weights", "get_sampler"]

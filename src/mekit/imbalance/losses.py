"""Losses for imbalanced classification, built from the training labels of a fold.

* ``cross_entropy`` -- with class weights ('balanced', a mapping, a sequence) and label
  smoothing (Szegedy et al. 2016).
* ``focal`` -- Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017:
  ``-alpha_t (1 - p_t)^gamma log p_t`` with per-class ``alpha``; gamma = 2 is the paper's
  choice. The mean is weighted like PyTorch's weighted cross-entropy (divided by the sum of
  the target weights), so ``gamma=0`` is exactly weighted cross-entropy, label smoothing
  included.
* ``logit_adjusted`` -- Menon et al., "Long-tail learning via logit adjustment", ICLR 2021:
  cross-entropy on ``logits + tau * log(prior)`` with priors from the training labels;
  tau = 1 is the paper's default. Predict with the raw logits: the adjustment only acts in
  training (``adjust_logits`` gives the paper's post-hoc variant for a model trained with
  plain cross-entropy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mekit.errors import ConfigError
from mekit.imbalance.weights import class_priors, class_weights, int_labels

WeightSpec = str | Mapping[int, float] | Sequence[float] | None


def resolve_class_weights(spec: WeightSpec, y_train: Any = None, num_classes: int | None = None) -> torch.Tensor | None:
    """A float tensor [K] from 'balanced' (needs ``y_train``), a mapping, a sequence, or None."""
    if spec is None:
        return None
    if isinstance(spec, str) or isinstance(spec, Mapping):
        if y_train is None:
            if isinstance(spec, str):
                raise ConfigError(f"class weights {spec!r} need the training labels (y_train)")
            if num_classes is None:
                raise ConfigError("class weights given as a mapping need num_classes")
            y_train = np.zeros(1, dtype=np.int64)
        y, k = int_labels(y_train, num_classes)
        return torch.tensor(class_weights(y, spec, classes=np.arange(k)), dtype=torch.float32)
    w = torch.as_tensor(np.asarray(spec, dtype=np.float32))
    if w.dim() != 1 or (num_classes is not None and len(w) != num_classes):
        raise ConfigError(f"class weights {list(spec)} must list one weight per class ({num_classes})")
    return w


class FocalLoss(nn.Module):
    def __init__(self, gamma: float = 2.0, alpha: torch.Tensor | None = None, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"focal loss gamma must be >= 0 (got {gamma})")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1) (got {label_smoothing})")
        if reduction not in ("mean", "sum", "none"):
            raise ConfigError(f"reduction {reduction!r} is not 'mean', 'sum' or 'none'")
        self.gamma = float(gamma)
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction
        self.register_buffer("alpha", None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=1)
        k = logits.shape[1]
        alpha = self.alpha if self.alpha is not None else logits.new_ones(k)
        # per-class term  -alpha_c (1 - p_c)^gamma log p_c   [B, K]
        term = -alpha * (1.0 - logp.exp()).pow(self.gamma) * logp if self.gamma else -alpha * logp
        loss = term.gather(1, target[:, None]).squeeze(1)
        if self.label_smoothing:
            eps = self.label_smoothing
            loss = (1.0 - eps) * loss + eps / k * term.sum(dim=1)
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / alpha[target].sum()


class LogitAdjustedLoss(nn.Module):
    def __init__(self, priors: torch.Tensor, tau: float = 1.0, weight: torch.Tensor | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.tau = float(tau)
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("adjustment", self.tau * torch.log(torch.as_tensor(priors, dtype=torch.float32)))
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + self.adjustment, target, weight=self.weight,
                               label_smoothing=self.label_smoothing)

    def adjust_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Post-hoc adjustment (Menon et al. sec. 4.1): ``logits - tau * log(prior)``."""
        return logits - self.adjustment


# -- registered builders: (y_train, num_classes, **options) -> nn.Module ---------------------------
def build_cross_entropy(y_train: Any = None, num_classes: int | None = None, weight: WeightSpec = None,
                        label_smoothing: float = 0.0) -> nn.CrossEntropyLoss:
    w = resolve_class_weights(weight, y_train, num_classes)
    return nn.CrossEntropyLoss(weight=w, label_smoothing=label_smoothing)


def build_focal(y_train: Any = None, num_classes: int | None = None, gamma: float = 2.0, alpha: WeightSpec = None,
                label_smoothing: float = 0.0) -> FocalLoss:
    a = resolve_class_weights(alpha, y_train, num_classes)
    return FocalLoss(gamma=gamma, alpha=a, label_smoothing=label_smoothing)


def build_logit_adjusted(y_train: Any = None, num_classes: int | None = None, tau: float = 1.0,
                         weight: WeightSpec = None, label_smoothing: float = 0.0) -> LogitAdjustedLoss:
    if y_train is None:
        raise ConfigError("the logit-adjusted loss needs the training labels (y_train) for its class priors")
    y, k = int_labels(y_train, num_classes)
    priors = torch.tensor(class_priors(y, classes=np.arange(k)), dtype=torch.float32)
    return LogitAdjustedLoss(priors, tau=tau, weight=resolve_class_weights(weight, y, k),
                             label_smoothing=label_smoothing)

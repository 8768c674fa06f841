"""The one contract every neural model answers (the :class:`MEModel` base) and weight loading.

The model registry, :func:`register_model` and :func:`build_model` are torch-free and live in
:mod:`mekit.models`; this module re-exports them for the family modules.

Contract (timm's, plus an optional intensity head):

* ``forward(x) -> logits [B, num_classes]`` -- always a tensor, never a dict, so a
  training loop written for classification works with every model unchanged.
* ``forward_features(x) -> [B, num_features]`` -- pooled features.
* ``forward_head(features) -> logits``; ``forward(x) == forward_head(forward_features(x))``.
* ``reset_classifier(num_classes)`` -- a new, freshly initialised classifier;
  ``num_classes=0`` leaves no classifier (``forward`` then returns the features), which is
  how one registered model is used as another's backbone.
* ``num_features``, ``num_classes``, ``input_kind`` attributes; ``data_config`` (input kind,
  size, channels, mean/std) is attached by :func:`build_model`, so preprocessing is derived
  from the model and never retyped.
* Intensity (``build_model(..., intensity_head=True)``): ``forward_intensity(x)`` returns the
  regression output, ``[B]`` per clip, or ``[B, T]`` per frame for sequence models;
  ``forward_with_intensity(x)`` returns ``{"logits": ..., "intensity": ...}`` from one
  feature pass (for a joint loss). The intensity output is a raw linear value: its scale is
  whatever the intensity targets use. ``forward`` is unaffected by the option.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mekit.errors import ConfigError, DataError

# The registry and the data contract need no torch, so they live in the package itself and
# ``import mekit.models`` stays light; they are re-exported here for the family modules.
from mekit.models import (CHANNEL_AXIS, IDENTITY_MEAN, IDENTITY_STD, IMAGE_KINDS, IMAGENET_MEAN,
                          IMAGENET_STD, INPUT_KINDS, MODELS, build_model, check_model_options, get_data_config,
                          register_model)

log = logging.getLogger(__name__)


class MEModel(nn.Module):
    """Base class: subclasses set ``num_features``/``num_classes``, build the classifier with
    ``_make_classifier`` under ``head_name`` and implement :meth:`forward_features`."""

    #: attribute holding the classifier (torchvision layouts call it ``fc``)
    head_name: str = "head"
    #: state-dict prefixes that belong to the classifier (dropped by load_backbone_weights)
    head_prefixes: tuple[str, ...] = ("head.",)
    input_kind: str = "flow"
    intensity_kind: str = "clip"

    num_classes: int
    num_features: int
    data_config: dict[str, Any]

    def __init__(self) -> None:
        super().__init__()
        self.intensity_head: nn.Module | None = None
        self.data_config = {}

    # -- classifier ---------------------------------------------------------------------
    def _make_classifier(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return getattr(self, self.head_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one with ``num_classes`` outputs (0: none)."""
        if num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0 (got {num_classes})")
        self.num_classes = int(num_classes)
        device = next(self.parameters()).device
        setattr(self, self.head_name, self._make_classifier(self.num_classes).to(device))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.get_classifier()(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    # -- intensity ----------------------------------------------------------------------
    def set_intensity_head(self, enabled: bool = True) -> None:
        """Add (or remove) the linear intensity regression head on the pooled features."""
        self.intensity_head = nn.Linear(self.num_features, 1) if enabled else None

    def _require_intensity(self) -> nn.Module:
        if self.intensity_head is None:
            raise ConfigError(f"{type(self).__name__} was built without an intensity head; "
                              "build it with intensity_head=True")
        return self.intensity_head

    def forward_with_intensity(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"logits": [B, K], "intensity": [B]}`` from one feature pass."""
        head = self._require_intensity()
        f = self.forward_features(x)
        return {"logits": self.forward_head(f), "intensity": head(f).squeeze(-1)}

    def forward_intensity(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_intensity(x)["intensity"]


def _expect_ndim(x: torch.Tensor, ndim: int, model: str, kind: str) -> None:
    if x.dim() != ndim:
        raise DataError(f"{model} expects input {INPUT_KINDS[kind]}", value=tuple(x.shape),
                        expected=f"a {ndim}-D tensor")


# -- weights -------------------------------------------------------------------------------
def _read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise DataError("weights file not found", path=p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused or not a torch file
        raise DataError(f"cannot read weights with torch.load(weights_only=True): {e}", path=p,
                        expected="a state dict saved with torch.save(model.state_dict())") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError("file does not hold a state dict of tensors", path=p)
    # checkpoints saved from nn.DataParallel prefix every key with "module."
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _listing(keys: Sequence[str], n: int = 5) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_backbone_weights(model: MEModel, path: str | Path) -> MEModel:
    """Load every non-classifier weight from a state dict file, strictly.

    The file's classifier (keys under ``model.head_prefixes``, e.g. an ImageNet ``fc``) is
    ignored and the model's own head is kept; every backbone key must be present with the
    same shape, and the file may hold nothing else. Loaded with ``weights_only=True``:
    a checkpoint that needs unpickling of code is refused.
    """
    sd = _read_state_dict(path)
    own = model.state_dict()

    def is_head(k: str) -> bool:
        return k.startswith(model.head_prefixes) or k.startswith("intensity_head.")

    want = {k for k in own if not is_head(k)}
    got = {k for k in sd if not is_head(k)}
    missing, unexpected = want - got, got - want
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} backbone keys missing from the file ({_listing(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} keys the model does not have ({_listing(unexpected)})")
        raise DataError("weights do not match " + type(model).__name__ + ": " + "; ".join(parts), path=path,
                        expected=f"the parameter layout of {type(model).__name__}")
    bad = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(want) if sd[k].shape != own[k].shape]
    if bad:
        raise DataError(f"{len(bad)} weights have the wrong shape ({_listing(bad, 3)})", path=path,
                        expected=f"the shapes of {type(model).__name__}")
    model.load_state_dict({k: sd[k] for k in want}, strict=False)
    log.info("loaded %d backbone tensors from %s into %s", len(want), path, type(model).__name__)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["CHANNEL_AXIS", "IDENTITY_MEAN", "IDENTITY_STD", "IMAGENET_MEAN", "IMAGENET_STD", "IMAGE_KINDS",
           "INPUT_KINDS", "MODELS", "MEModel", "build_model", "check_model_options", "count_parameters",
           "get_data_config", "load_backbone_weights", "register_model"]

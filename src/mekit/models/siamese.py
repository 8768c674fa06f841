"""Siamese network on onset and apex crops.

One shared backbone embeds the onset and the apex crop; the classifier sees the change
between them (apex minus onset, and optionally its absolute value), so identity-specific
appearance common to both frames cancels -- the reason onset/apex differencing is used in
micro-expression work. Input "pair": ``[B, 2, C, H, W]``, index 0 the onset, 1 the apex.
The backbone is any registered 2D model (``compact_cnn`` by default), built without its
classifier. The difference is standardised by a BatchNorm (``norm_diff``, on by default).
"""

from __future__ import annotations

from typing import Any

import torch

from mekit.errors import ConfigError, DataError
from mekit.models._base import (IDENTITY_MEAN, IDENTITY_STD, IMAGE_KINDS, MODELS, MEModel, _expect_ndim,
                                build_model, register_model)


def build_backbone(name: str, in_chans: int | None, kwargs: dict[str, Any] | None, owner: str) -> MEModel:
    """A registered 2D model without classifier, for use inside ``owner``."""
    kind = MODELS.meta(name)["input"]
    if kind not in IMAGE_KINDS:
        raise ConfigError(f"{owner}: backbone {name!r} consumes {kind!r} input; "
                          f"expected a 2D model (input one of {IMAGE_KINDS})")
    kw = dict(kwargs or {})
    if in_chans is not None:
        kw.setdefault("in_chans", in_chans)
    return build_model(name, num_classes=0, **kw)


class SiameseNet(MEModel):
    input_kind = "pair"

    def __init__(self, num_classes: int = 3, backbone: str = "compact_cnn", in_chans: int = 3,
                 abs_diff: bool = False, norm_diff: bool = True,
                 backbone_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone, in_chans, backbone_kwargs, "siamese")
        self.abs_diff = abs_diff
        self.num_features = self.backbone.num_features * (2 if abs_diff else 1)
        # The apex-minus-onset change of a micro-expression is tiny next to the embedding itself;
        # standardising it (a BatchNorm over the batch) lets the head see it.
        # Without it a from-scratch backbone on CASME II collapsed to predicting one class.
        self.diff_norm = torch.nn.BatchNorm1d(self.num_features) if norm_diff else torch.nn.Identity()
        self.num_classes = num_classes
        self.head = self._make_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _expect_ndim(x, 5, "siamese", "pair")
        if x.shape[1] != 2:
            raise DataError("siamese expects an onset and an apex crop per sample", value=tuple(x.shape),
                            expected="[B, 2, C, H, W]")
        b = x.shape[0]
        # one backbone pass over onset and apex together: identical weights and BN statistics
        emb = self.backbone.forward_features(x.flatten(0, 1)).view(b, 2, -1)
        diff = emb[:, 1] - emb[:, 0]
        feats = torch.cat([diff, diff.abs()], dim=1) if self.abs_diff else diff
        return self.diff_norm(feats)


@register_model("siamese", input="pair", input_size=(2, 3, 64, 64), channels=3, mean=IDENTITY_MEAN,
                std=IDENTITY_STD, min_input_size=(2, 3, 16, 16),
                help="Siamese onset/apex network: shared 2D backbone, classifier on the embedding difference")
def siamese(num_classes: int = 3, **kwargs) -> SiameseNet:
    return SiameseNet(num_classes=num_classes, **kwargs)

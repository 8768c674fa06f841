"""A compact 2D CNN: the default per-image backbone of ``siamese`` and ``cnn_lstm``.

Micro-expression corpora hold a few hundred samples; a backbone of ~0.1 M parameters is
hard to over-fit and fast on a CPU. Any registered 2D model can replace it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mekit.models._base import IDENTITY_MEAN, IDENTITY_STD, MEModel, _expect_ndim, register_model


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class CompactCNN(MEModel):
    """Stages of conv-BN-ReLU + 2x2 max-pool, global average pooling, dropout, linear."""

    input_kind = "image"

    def __init__(self, num_classes: int = 3, in_chans: int = 3, widths: Sequence[int] = (32, 64, 128),
                 drop_rate: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for w in widths:
            layers += [conv_bn_relu(cin, w), nn.MaxPool2d(2, ceil_mode=True)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.num_features = cin
        self.num_classes = num_classes
        self.head = self._make_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _expect_ndim(x, 4, "compact_cnn", "image")
        return self.drop(self.pool(self.features(x)).flatten(1))


@register_model("compact_cnn", input="image", input_size=(3, 64, 64), channels=3, mean=IDENTITY_MEAN,
                std=IDENTITY_STD, min_input_size=(3, 8, 8),
                help="compact 3-stage CNN (~0.1 M parameters); default backbone of siamese and cnn_lstm")
def compact_cnn(num_classes: int = 3, **kwargs) -> CompactCNN:
    return CompactCNN(num_classes=num_classes, **kwargs)
